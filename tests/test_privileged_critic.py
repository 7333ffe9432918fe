"""The asymmetric critic (``PPOConfig.privileged_critic``): in training the value also reads
what only the simulator knows (the trace ahead, the true load and latency); the actor, and
so every served decision, never does."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from gnnrl.config import ConfigError
from gnnrl.core.agents.configs import PolicyConfig, PPOConfig
from gnnrl.core.agents.ppo_gnn import PPO_GNN, fit_critic_input
from gnnrl.core.agents.train import TrainConfig, train
from gnnrl.core.envs.vector import PRIVILEGED_AHEAD, PRIVILEGED_DIM, BatchedEnvPool
from gnnrl.encoders.graph_batch import obs_to_tensors
from gnnrl.sim.scenario import Scenario
from gnnrl.testing.apps import write_tiny_app
from gnnrl.testing.observation import make_observation, stack_observations

NODES = [[2, 3, 150, 100, 50, 80], [1, 1, 40, 60, 30, 0], [3, 2, 200, 120, 80, 40]]
EDGES = [(0, 1, 30, 20, 0.0, 1.0), (0, 2, 50, 40, 0.01, 1.0)]


def _tensors(batch: int = 4) -> dict[str, torch.Tensor]:
    obs = stack_observations([make_observation(NODES, EDGES, max_nodes=5, max_edges=4)] * batch)
    return obs_to_tensors(obs)[0]


def test_the_privileged_features_read_the_load_ahead_from_the_episode_trace():
    pool = BatchedEnvPool(3, run_seed=5, scenarios=[Scenario(trace="flash", peak_rps=200.0)],
                          max_steps=40, privileged=True)
    obs, _ = pool.reset()
    for _ in range(12):  # into the flash crowd's rise
        step = pool.step(np.zeros((3, 20), np.int64))
        obs = step.obs
    priv = obs["privileged"]
    assert priv.shape == (3, PRIVILEGED_DIM) and priv.dtype == np.float32
    rows = np.arange(3)
    now = pool.trace[rows, pool.t]
    for j, k in enumerate(PRIVILEGED_AHEAD):
        want = np.clip(np.log((pool.trace[rows, pool.t + k] + 1) / (now + 1)), -3, 3)
        np.testing.assert_allclose(priv[:, j], want, rtol=1e-5, atol=1e-6)
    slo = pool.app.slo_p95_ms
    np.testing.assert_allclose(priv[:, -1], np.clip(np.log(pool.m.e2e_p95_ms / slo), -3, 3),
                               rtol=1e-5, atol=1e-6)
    assert "privileged" not in BatchedEnvPool(1, scenarios=[Scenario()]).reset()[0]


def test_the_actor_never_reads_the_privileged_inputs_and_the_critic_does():
    torch.manual_seed(0)
    model = PPO_GNN(config=PolicyConfig(max_nodes=5, max_edges=4, hidden_dim=16,
                                        privileged_dim=PRIVILEGED_DIM)).eval()
    t = _tensors()
    quiet = {**t, "privileged": torch.zeros(4, PRIVILEGED_DIM)}
    surge = {**t, "privileged": torch.full((4, PRIVILEGED_DIM), 2.0)}
    with torch.no_grad():
        logits_q, value_q, _ = model(quiet, None)
        logits_s, value_s, _ = model(surge, None)
        logits_served, value_served, _ = model(t, None)  # serving: no privileged key
    assert torch.equal(logits_q, logits_s) and torch.equal(logits_q, logits_served)
    assert not torch.allclose(value_q, value_s)
    torch.testing.assert_close(value_served, value_q)  # absent = zeros


def test_a_warm_start_keeps_its_values_when_the_critic_gains_or_loses_privileged_inputs():
    torch.manual_seed(1)
    small = dict(max_nodes=5, max_edges=4, hidden_dim=16)
    plain = PPO_GNN(config=PolicyConfig(**small)).eval()
    wide = PPO_GNN(config=PolicyConfig(**small, privileged_dim=PRIVILEGED_DIM)).eval()
    wide.load_state_dict(fit_critic_input(plain.state_dict(), wide))
    t = _tensors()
    priv = {**t, "privileged": torch.randn(4, PRIVILEGED_DIM)}
    with torch.no_grad():
        logits_p, value_p, _ = plain(t, None)
        logits_w, value_w, _ = wide(priv, None)
    torch.testing.assert_close(logits_w, logits_p)
    torch.testing.assert_close(value_w, value_p)  # new inputs start with zero weight
    back = PPO_GNN(config=PolicyConfig(**small)).eval()
    back.load_state_dict(fit_critic_input(wide.state_dict(), back))
    with torch.no_grad():
        torch.testing.assert_close(back(t, None)[1], value_p)


def _config(tmp_path: Path, **ppo) -> TrainConfig:
    app = write_tiny_app(tmp_path)
    return TrainConfig(
        app=str(app), traces=("flash",), peaks=(100.0,), topology=("static",),
        max_steps=20, seed=3, eval_every=0, checkpoint_every=0, env_pool="batched",
        ppo=PPOConfig(**{"num_envs": 2, "num_steps": 20, "num_minibatches": 2,
                         "update_epochs": 2, "total_steps": 2 * 20 * 3, **ppo}),
        policy=PolicyConfig(max_nodes=4, max_edges=4, hidden_dim=16, tgn={"memory_dim": 8}),
    )


def test_training_with_a_privileged_critic_learns_to_read_it_and_serves_without_it(tmp_path):
    symmetric = train(_config(tmp_path, total_steps=40), tmp_path / "plain", progress=False)
    cfg = _config(tmp_path, privileged_critic=True).replace(warm_start=str(symmetric))
    final = train(cfg, tmp_path / "asym", progress=False)
    model = PPO_GNN.load(final)
    assert model.config.privileged_dim == PRIVILEGED_DIM
    # the warm start's critic had no privileged inputs: their weights started at zero and
    # the value loss moved them
    extra = model.head.critic[0].weight[:, -PRIVILEGED_DIM:]
    assert float(extra.detach().abs().sum()) > 0.0
    served = PPO_GNN.load(final)
    obs = make_observation(NODES[:2], EDGES[:1], max_nodes=4, max_edges=4)
    moves = served.act(obs, deterministic=True)
    assert moves.shape == (4,)


def test_a_privileged_critic_needs_the_batched_simulator(tmp_path):
    with pytest.raises(ConfigError, match="privileged_critic needs env_pool 'batched'"):
        _config(tmp_path, privileged_critic=True).replace(env_pool="single")


def test_the_parallel_learner_trains_the_privileged_critic_like_one_process(tmp_path):
    weights = []
    for processes in (1, 2):
        cfg = _config(tmp_path, privileged_critic=True, total_steps=80).replace(
            learner_processes=processes)
        model = PPO_GNN.load(train(cfg, tmp_path / f"p{processes}", progress=False))
        weights.append(dict(model.named_parameters()))
    single, parallel = weights
    for key in single:  # summation order differs: float rounding only
        np.testing.assert_allclose(parallel[key].detach().numpy(),
                                   single[key].detach().numpy(), rtol=1e-4, atol=1e-5,
                                   err_msg=key)
