"""The GNNRL adapter: loads a saved PPO_GNN and acts through a topology change."""

from __future__ import annotations

import pytest

from gnnrl.config import ConfigError
from gnnrl.evaluation.policies import make_policy
from gnnrl.evaluation.runner import run_episode
from gnnrl.evaluation.scenarios import EvalScenario
from gnnrl.sim import load_app_spec


def test_saved_model_runs_through_a_service_being_added(tmp_path):
    from gnnrl.core.agents.ppo_gnn import PPO_GNN

    PPO_GNN().save(tmp_path / "model")
    policy = make_policy(f"gnnrl-untrained=gnnrl:{tmp_path / 'model'}")
    assert policy.name == "gnnrl-untrained"
    ep = run_episode(policy, EvalScenario("flash", "add", 9), 1000,
                     load_app_spec("onlineboutique"), tmp_path)
    assert "reviewservice" in set(ep.services["service"])  # it saw the new service
    assert (ep.steps["invalid_actions"] == 0).all()
    assert ep.metrics["replica_hours"] > 0


def test_missing_model_directory_is_a_load_error(tmp_path):
    from gnnrl.core.agents.ppo_gnn import ModelLoadError

    with pytest.raises((ModelLoadError, ConfigError)):
        make_policy(f"gnnrl:{tmp_path / 'nothing'}")
