"""The data-parallel learner (``TrainConfig.learner_processes = 2``): same update, exact resume."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gnnrl.core.agents.configs import PPOConfig
from gnnrl.core.agents.gnnrl_policy import DEFAULT_MODEL_DIR
from gnnrl.core.agents.parallel import ParallelLearner
from gnnrl.core.agents.ppo import ppo_update
from gnnrl.core.agents.ppo_gnn import PPO_GNN
from tests.test_agents_ppo_update_reference import ENVS, STEPS, _batch, _load
from tests.test_train_loop import _config, assert_resume_is_exact


def test_two_process_update_equals_the_single_process_update():
    rollout, _ = _load()
    results = []
    for processes in (1, 2):
        model = PPO_GNN.load(DEFAULT_MODEL_DIR)
        opt = torch.optim.Adam(model.parameters(), lr=3e-4, eps=1e-5)
        cfg = PPOConfig(num_envs=ENVS, num_steps=STEPS, num_minibatches=2, update_epochs=2)
        gen = torch.Generator().manual_seed(0)
        if processes == 1:
            stats = ppo_update(model, opt, _batch(rollout), cfg, gen)
        else:
            with ParallelLearner(processes) as learner:
                stats = learner.update(model, opt, _batch(rollout), cfg, gen)
        results.append((model.state_dict(), stats))
    (single, s_stats), (parallel, p_stats) = results
    for key in single:
        # summation order differs (two half-minibatch sums): float rounding only
        np.testing.assert_allclose(parallel[key].numpy(), single[key].numpy(), rtol=1e-5,
                                   atol=1e-6, err_msg=key)
    for key in s_stats:
        assert p_stats[key] == pytest.approx(s_stats[key], rel=1e-4, abs=1e-6), key


def test_parallel_learner_training_resumes_exactly_where_the_uninterrupted_run_ends(tmp_path):
    cfg = _config(tmp_path, updates=3, update_epochs=2).replace(learner_processes=2)
    assert_resume_is_exact(cfg, tmp_path)


def test_train_command_learner_processes_flag_sets_the_config():
    import argparse

    from gnnrl.commands.train import add_arguments, build_config

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    cfg = build_config(parser.parse_args(["--out", "x", "--learner-processes", "2"]))
    assert cfg.learner_processes == 2
    assert build_config(parser.parse_args(["--out", "x"])).learner_processes == 1
