"""The model shipped in gnnrl/assets/models/default loads and acts out of the box."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from gnnrl.contracts.observation import OBSERVATION_SCHEMA_VERSION
from gnnrl.core.agents.dial import with_dial
from gnnrl.core.agents.gnnrl_policy import DEFAULT_MODEL_DIR, GNNRLPolicy
from gnnrl.core.agents.ppo_gnn import PPO_GNN
from gnnrl.core.envs import OnlineBoutique
from gnnrl.core.envs.moves import DELTAS
from gnnrl.encoders.graph_batch import obs_to_tensors


def test_default_model_is_small_and_records_its_schema_and_training_command():
    files = {p.name: p.stat().st_size for p in DEFAULT_MODEL_DIR.iterdir()}
    assert {"weights.pt", "config.json", "train_config.json"} <= set(files)
    assert sum(files.values()) < 2 * 1024 * 1024
    meta = json.loads((DEFAULT_MODEL_DIR / "config.json").read_text())
    assert meta["observation_schema_version"] == OBSERVATION_SCHEMA_VERSION == 2
    assert meta["policy"]["use_tgn"] is True
    # trained for the dial: one drawn per episode
    assert json.loads((DEFAULT_MODEL_DIR / "train_config.json").read_text())["dial"] == "random"


def test_default_model_acts_through_an_episode_with_topology_changes_and_valid_moves():
    from gnnrl.core.agents.scenario_mix import training_scenarios
    from gnnrl.sim import load_app_spec

    scenario = training_scenarios(load_app_spec("onlineboutique"), ["flash"], [300.0],
                                  ["churn"], 40)[0]
    env = OnlineBoutique(scenario=scenario, max_steps=40)
    policy = GNNRLPolicy.load()
    assert isinstance(policy.model, PPO_GNN)
    obs, info = env.reset(seed=1001)
    policy.reset(env)
    invalid_total = 0
    for _ in range(40):
        moves = policy.act(obs, info)
        assert moves.shape == (20,) and moves.dtype == np.int64
        assert ((moves >= 0) & (moves <= 14)).all()
        obs, _, terminated, truncated, info = env.step(moves)
        invalid_total += info["invalid_actions"]
        if terminated or truncated:
            break
    assert invalid_total == 0  # masked moves are never chosen


def _expected_pods(model: PPO_GNN, obs: dict, info: dict, dial: float) -> float:
    """Pods the model's move distribution asks for in expectation, summed over the
    services, from a fresh memory (the probabilities, not the arg-max: a serving margin
    may hold both dials at "nothing" on a calm state)."""
    bank = model.new_memory(1)
    t, _ = obs_to_tensors(with_dial(obs, dial))
    with torch.no_grad():
        logits, _, _ = model(t, (bank.memory, bank.last_update, bank.t + 1.0))
    probs = torch.softmax(logits[0], dim=-1).numpy()  # (max_nodes, 15)
    live = np.asarray(obs["node_mask"], bool)
    return float((np.asarray(info["replicas"]) + probs @ DELTAS)[live].sum())


@pytest.mark.parametrize("app", ["onlineboutique", "socialnetwork"])
def test_a_safer_dial_asks_for_at_least_as_many_pods_on_the_same_state(app):
    from gnnrl.baselines.hpa import HPAPolicy
    from gnnrl.sim import Scenario, load_app_spec
    from gnnrl.sim.capacity import default_peak_rps

    spec = load_app_spec(app)
    env = OnlineBoutique(app=spec, scenario=Scenario("f", "flash", default_peak_rps(spec)),
                         max_steps=60)
    obs, info = env.reset(seed=1000)
    driver = HPAPolicy(target=0.7)  # the states are the HPA's, not the model's
    driver.reset(env)
    model = PPO_GNN.load(DEFAULT_MODEL_DIR)
    totals = []
    for t in range(60):
        if t % 6 == 0:
            totals.append((_expected_pods(model, obs, info, 0.0),
                           _expected_pods(model, obs, info, 1.0)))
        obs, _, _, _, info = env.step(driver.act(obs, info))
    assert all(safe > cheap for cheap, safe in totals), totals
