"""The model shipped in gnnrl/assets/models/default loads and acts out of the box."""

from __future__ import annotations

import json

import numpy as np

from gnnrl.contracts.observation import OBSERVATION_SCHEMA_VERSION
from gnnrl.core.agents.gnnrl_policy import DEFAULT_MODEL_DIR, GNNRLPolicy
from gnnrl.core.agents.ppo_gnn import PPO_GNN
from gnnrl.core.envs import OnlineBoutique


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
