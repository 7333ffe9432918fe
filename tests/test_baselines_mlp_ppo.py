"""The gym-hpa-style MLP-PPO baseline: trains, saves, loads, acts within the mask."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from gnnrl.baselines.mlp_ppo import SHIPPED_DIR, MLPPPOConfig, MLPPPOPolicy, main
from gnnrl.config import ConfigError
from gnnrl.core.envs import OnlineBoutique


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("mlp")
    rc = main(["--total-steps", "32", "--n-steps", "16", "--episode-steps", "8",
               "--out", str(out), "--no-progress"])
    assert rc == 0
    return out


def test_tiny_training_run_saves_a_model_that_acts_within_the_mask(trained):
    tmp_path = trained
    for name in ("mlp_ppo.zip", "mlp_ppo.json", "learning_curve.csv"):
        assert (tmp_path / name).stat().st_size > 0
    curve = pd.read_csv(tmp_path / "learning_curve.csv")
    assert list(curve.columns) == ["env_steps", "return", "slo_violation_rate"]
    assert len(curve) == 4  # 32 steps / 8-step episodes

    policy = MLPPPOPolicy.load(tmp_path)
    env = OnlineBoutique(use_graph=False, trace="ramp", max_steps=10)
    obs, info = env.reset(seed=1000)
    policy.reset(env)
    for _ in range(10):
        valid = env.action_masks().reshape(-1, 15)
        moves = policy.act(obs, info)
        assert moves.shape == (env.graph_config.max_nodes,)
        assert valid[np.arange(len(moves)), moves].all()
        obs, _, _, _, info = env.step(moves)
        assert info["invalid_actions"] == 0


def test_mlp_refuses_an_app_with_other_services(trained):
    policy = MLPPPOPolicy.load(trained / "mlp_ppo.zip")
    policy.services = [*policy.services, "reviewservice"]
    env = OnlineBoutique(use_graph=False, trace="ramp", max_steps=4)
    env.reset(seed=1000)
    with pytest.raises(ConfigError, match="cannot change"):
        policy.reset(env)


@pytest.mark.parametrize(
    ("field", "value"),
    [("total_steps", 0), ("seed", 1000), ("episode_steps", 2), ("goal_reward", "speed"),
     ("net_arch", ())],
)
def test_invalid_training_config_names_the_field(field, value):
    with pytest.raises(ConfigError, match=field):
        MLPPPOConfig(**{field: value})


def test_missing_model_is_a_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        MLPPPOPolicy.load(tmp_path / "nope.zip")
    if not (SHIPPED_DIR / "mlp_ppo.zip").exists():
        with pytest.raises(ConfigError, match="mlp:PATH"):
            MLPPPOPolicy.load(None)
