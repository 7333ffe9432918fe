"""Training for generality: several apps, timings and start-up times at once, real training
windows, a dial drawn per episode, and nothing of the evaluation set in training."""

from __future__ import annotations

import json

import numpy as np
import pytest

from gnnrl.baselines.dialled import DialledRule, slo_margin, target_pct
from gnnrl.config import ConfigError
from gnnrl.contracts.observation import DIAL_INDEX
from gnnrl.core.agents.pool_group import PoolGroup
from gnnrl.core.agents.scenario_mix import (
    check_training_traces,
    expand_apps,
    training_setups,
)
from gnnrl.core.agents.sim_pool import SimPool
from gnnrl.core.agents.train import TrainConfig, train
from gnnrl.core.envs import OnlineBoutique
from gnnrl.core.envs.reward import RewardConfig
from gnnrl.sim import load_app_spec
from gnnrl.sim.capacity import default_peak_rps
from gnnrl.contracts.seeds import EVAL_APP_SEEDS, TRAIN_APP_SEEDS
from gnnrl.sim.generator import generated_app_seed
from gnnrl.sim.trace_windows import EVAL_WINDOWS, TRAIN_WINDOWS


def test_generated_training_apps_come_from_training_seeds_only():
    names = expand_apps(["onlineboutique", "generated:5"], seed=3)
    seeds = [generated_app_seed(n) for n in names[1:]]
    assert names[0] == "onlineboutique" and len(set(seeds)) == 5
    assert all(s in TRAIN_APP_SEEDS for s in seeds)
    assert expand_apps(["generated:5"], seed=3) == names[1:]  # the run seed decides


def test_an_evaluation_app_is_refused_in_training():
    with pytest.raises(ValueError, match="evaluation app"):
        expand_apps([f"generated-{EVAL_APP_SEEDS[0]}"], seed=0)


@pytest.mark.parametrize("window", EVAL_WINDOWS, ids=lambda w: w.name)
def test_an_evaluation_window_is_refused_in_training(window):
    with pytest.raises(ValueError, match="overlaps the evaluation window"):
        check_training_traces([window.spec])


def test_the_training_windows_and_synthetic_kinds_are_accepted():
    check_training_traces(["diurnal", "surge", *(w.spec for w in TRAIN_WINDOWS)])
    with pytest.raises(ValueError, match="whole worldcup98 trace"):
        check_training_traces(["worldcup98"])


def test_each_app_gets_peaks_for_its_own_capacity_and_scaled_startups():
    setups = training_setups(["onlineboutique", "socialnetwork"], 0, ["diurnal"], [100.0],
                             [0.5, 1.0], ["static"], 60, ["ideal", "realistic"], [1.0, 3.0])
    assert [s.label for s in setups] == [
        "onlineboutique/ideal/startup1x", "onlineboutique/realistic/startup3x",
        "socialnetwork/ideal/startup3x", "socialnetwork/realistic/startup1x"]
    sn = load_app_spec("socialnetwork")
    peaks = sorted(sc.peak_rps for sc in setups[2].scenarios)
    assert peaks == pytest.approx([0.5 * default_peak_rps(sn), default_peak_rps(sn)])
    name = next(iter(sn.services))
    assert setups[2].app.services[name].startup_s == pytest.approx(
        3 * sn.services[name].startup_s)


def test_several_apps_need_the_batched_pool_and_a_dial_must_be_in_range():
    with pytest.raises(ConfigError, match="batched"):
        TrainConfig(apps=("onlineboutique", "socialnetwork"), env_pool="single")
    with pytest.raises(ConfigError, match="dial"):
        TrainConfig(dial=1.5)
    with pytest.raises(ConfigError, match="dial"):
        TrainConfig(dial="sometimes")
    assert TrainConfig(dial="random").dial == "random"


def test_the_dial_weighs_cost_geometrically_around_the_preset():
    cfg = RewardConfig()
    assert cfg.cost_scale(0.5) == 1.0
    assert cfg.cost_scale(0.0) == pytest.approx(4.0)
    assert cfg.cost_scale(1.0) == pytest.approx(0.25)


def test_a_random_dial_is_drawn_per_episode_and_shown_to_the_policy():
    env = OnlineBoutique(dial="random", max_steps=5)
    dials = set()
    for seed in range(5):
        obs, _ = env.reset(seed=seed)
        assert obs["global_feats"][DIAL_INDEX] == pytest.approx(env.dial)
        dials.add(round(env.dial, 6))
    assert len(dials) == 5
    fixed = OnlineBoutique(dial=0.2, max_steps=5)
    obs, _ = fixed.reset(seed=0)
    assert obs["global_feats"][DIAL_INDEX] == pytest.approx(0.2)


def test_the_teacher_follows_the_episode_dial():
    assert (target_pct(0.0), target_pct(0.5), target_pct(1.0)) == (90, 70, 50)
    assert slo_margin(0.0) > slo_margin(1.0)
    built = []

    def make(dial):
        built.append(dial)

        class Rule:
            name = "r"

            def reset(self, env):
                pass

            def act(self, obs, info):
                return np.zeros(20, dtype=np.int64)

        return Rule()

    teacher = DialledRule("headroom", make)
    env = OnlineBoutique(dial=0.3, max_steps=5)
    obs, info = env.reset(seed=0)
    teacher.reset(env)
    assert built == [0.3] and teacher.act(obs, info).shape == (20,)


def test_pools_side_by_side_act_as_one():
    a = SimPool(2, 0, app="onlineboutique", max_steps=4)
    b = SimPool(3, 1, app="socialnetwork", max_steps=6)
    group = PoolGroup([a, b])
    obs, infos = group.reset()
    assert group.num_envs == 5 and obs["svc_df"].shape[0] == 5 and len(infos) == 5
    for _ in range(6):
        step = group.step(np.zeros((5, 20), dtype=np.int64))
    assert step.rewards.shape == (5,)
    # both pools count episodes in the group's array (checkpoints restore it in place)
    assert group.episodes.tolist() == [2, 2, 2, 2, 2]
    group.episodes[:] = [7, 7, 8, 8, 8]
    assert a.episodes.tolist() == [7, 7] and b.episodes.tolist() == [8, 8, 8]
    state = json.loads(json.dumps(group.noise_state()))
    group.set_noise_state(state)


def test_a_short_run_trains_on_several_apps_with_a_random_dial(tmp_path):
    cfg = TrainConfig(apps=("onlineboutique", "generated:1"), timings=("ideal", "realistic"),
                      peak_scales=(1.0,), dial="random", traces=("flash", TRAIN_WINDOWS[0].spec),
                      topology=("static",), max_steps=20, env_pool="batched", eval_every=2,
                      checkpoint_every=0, bc_rounds=1, bc_epochs=1, bc_teacher="headroom@dial",
                      ppo={"total_steps": 160, "num_envs": 4, "num_steps": 20,
                           "num_minibatches": 2, "update_epochs": 1})
    out = train(cfg, tmp_path, progress=False)
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert (out / "weights.pt").exists() and rows[-1]["update"] == 2
    assert any(k.startswith("bc_") for k in rows[0])
    # best/ is chosen on episodes of both apps of the mix
    assert "eval/return" in rows[-1] and (tmp_path / "best" / "weights.pt").exists()
