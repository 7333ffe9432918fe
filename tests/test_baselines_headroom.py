"""The load-aware headroom rule (GNNRL's imitation teacher) through the environment."""

from __future__ import annotations

import math

import numpy as np
import pytest

from gnnrl.baselines.base import rps_at_cpu_utilization
from gnnrl.baselines.headroom import HeadroomConfig, HeadroomPolicy
from gnnrl.config import ConfigError
from gnnrl.core.envs import OnlineBoutique
from gnnrl.evaluation.policies import make_policy
from gnnrl.sim import SimConfig, load_app_spec
from tests.test_baselines_policies import _episode as policies_episode

APP = load_app_spec("onlineboutique")
QUIET = SimConfig(arrival_noise=False, metric_noise=0.0)


def _episode(policy, trace):
    """`tests.test_baselines_policies._episode` without noise; no move may be invalid."""
    _, infos = policies_episode(policy, trace, sim_config=QUIET)
    assert not any(np.any(i.get("invalid_actions", 0)) for i in infos)
    return infos


def _frontend(infos):
    slot = infos[0]["slot_names"].index("frontend")
    return np.array([int(i["replicas"][slot]) for i in infos])


def test_low_load_keeps_more_headroom_than_high_load():
    """Below the knee the rule sizes for low_target of the request, above it high_target:
    at the same per-service rate it asks for more pods when the app is quiet."""
    policy = HeadroomPolicy(HeadroomConfig(peak_rps=200.0, jump_ratio=1e9))  # no jumps
    _episode(policy, [60.0] * 4)
    fe = APP.services["frontend"]
    rate = 10 * rps_at_cpu_utilization(fe, 1.0)  # ten pods' worth at high_target
    quiet = policy.recommendation("frontend", rate, entry_rps=60.0)   # 60 < 0.5 x 200
    busy = policy.recommendation("frontend", rate, entry_rps=150.0)
    assert quiet == math.ceil(rate / rps_at_cpu_utilization(fe, 0.7) - 1e-9)
    assert busy == 10
    assert quiet > busy


def test_a_load_jump_scales_up_at_once_with_overshoot():
    cfg = HeadroomConfig(peak_rps=200.0, overshoot=1.5)
    infos = _episode(HeadroomPolicy(cfg), [30.0] * 6 + [180.0] * 6)
    pods = _frontend(infos)
    fe = APP.services["frontend"]
    steady = math.ceil(180.0 / rps_at_cpu_utilization(fe, 1.0) - 1e-9)
    # the step after the jump is observed: overshoot (capped by +7 per step and max replicas)
    after = pods[7]
    assert after > pods[6]
    assert after >= min(pods[6] + 7, math.ceil(steady * 1.5), fe.max_replicas) - 1


def test_scale_down_is_held_by_the_window():
    cfg = HeadroomConfig(peak_rps=200.0, window_steps=4)
    infos = _episode(HeadroomPolicy(cfg), [150.0] * 6 + [40.0] * 8)
    pods = _frontend(infos)
    high = pods[6]
    # the drop is observed at step 7; the window still holds the old maximum for 3 more
    assert (pods[7:10] == high).all()
    assert pods[-1] < high


def test_removed_services_do_not_keep_their_window():
    policy = HeadroomPolicy(HeadroomConfig(peak_rps=200.0))
    _episode(policy, [100.0] * 3)
    policy._history["ghost"] = type(next(iter(policy._history.values())))([9], maxlen=8)
    infos = _episode(policy, [100.0] * 3)
    assert "ghost" not in policy._history
    assert infos


@pytest.mark.parametrize(
    ("field", "value"),
    [("low_target", 0.0), ("high_target", 2.5), ("knee", 1.5), ("window_steps", 0),
     ("jump_ratio", 1.0), ("overshoot", 0.9), ("peak_rps", -1.0), ("peak_rps", math.inf)],
)
def test_bad_headroom_config_names_the_field(field, value):
    with pytest.raises(ConfigError, match=field):
        HeadroomConfig(**{field: value})


def test_headroom_spec_builds_the_rule_with_the_scenario_peak():
    policy = make_policy("headroom")
    assert isinstance(policy, HeadroomPolicy) and policy.name == "headroom"
    env = OnlineBoutique(trace="flash", peak_rps=240.0, max_steps=10)
    env.reset(seed=1000)
    policy.reset(env)
    assert policy.peak_rps == 240.0
