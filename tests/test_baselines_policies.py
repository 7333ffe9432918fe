"""KEDA, static, random and oracle baselines; the HPA driven through the environment."""

from __future__ import annotations

import numpy as np
import pytest

from gnnrl.baselines.base import Policy, rps_at_cpu_utilization
from gnnrl.baselines.hpa import HPAPolicy
from gnnrl.baselines.keda import KEDAPolicy, keda_recommendation
from gnnrl.baselines.oracle import OraclePolicy, calibrate_safe_utilization
from gnnrl.baselines.random_policy import RandomMaskedPolicy
from gnnrl.baselines.static import StaticPolicy, peak_replicas
from gnnrl.config import ConfigError
from gnnrl.core.envs import OnlineBoutique
from gnnrl.evaluation.policies import make_policy, parse_policies
from gnnrl.sim import SimConfig, load_app_spec

APP = load_app_spec("onlineboutique")


def _episode(policy, trace, steps=None, sim_config=None):
    """Run ``policy`` over an array trace; return per-step infos."""
    env = OnlineBoutique(trace=np.asarray(trace, float), max_steps=steps or len(trace) - 1,
                         sim_config=sim_config)
    obs, info = env.reset(seed=1000)
    policy.reset(env)
    infos = [info]
    for _ in range(env.max_steps):
        obs, _, _, trunc, info = env.step(policy.act(obs, info))
        infos.append(info)
        if trunc:
            break
    return env, infos


def _replicas(infos, service):
    slot = infos[0]["slot_names"].index(service)
    return np.array([int(i["replicas"][slot]) for i in infos])


# ------------------------------------------------------------------------------------ KEDA

# upstream replica_calculator_test.go, external per-pod metric (AverageValue) cases
@pytest.mark.parametrize(
    ("case", "current", "total", "target", "expected"),
    [
        ("TestReplicaCalcScaleUpPerPodCMExternal", 3, 8600, 2150, 4),
        ("TestReplicaCalcScaleDownPerPodCMExternal", 5, 8600, 2867, 3),
        ("TestReplicaCalcTolerancePerPodCMExternal", 3, 8600, 2900, 3),
        ("no load scales to the floor", 4, 0.0, 20.0, 0),
        ("missing metric holds", 4, float("nan"), 20.0, None),
    ],
)
def test_keda_recommendation_is_total_over_target_per_pod(case, current, total, target, expected):
    assert keda_recommendation(current, total, target) == expected


def test_keda_default_threshold_is_hpa_70_operating_point():
    fe = APP.services["frontend"]
    # frontend: (0.7 * 100m - 5m idle) / (195m / 60 req/s) = 20 req/s per pod
    assert rps_at_cpu_utilization(fe, 0.7) == pytest.approx(20.0)
    policy = KEDAPolicy()
    env = OnlineBoutique(trace="diurnal", max_steps=4)
    env.reset(seed=1000)
    policy.reset(env)
    assert policy.threshold("frontend") == pytest.approx(20.0)


def test_keda_scales_to_load_over_threshold_at_constant_load():
    # 150 req/s (+- Poisson noise) at the frontend, 20 req/s per pod -> 8 pods
    _, infos = _episode(KEDAPolicy(), [150.0] * 12)
    assert _replicas(infos, "frontend")[-1] == 8
    assert all(i["invalid_actions"] == 0 for i in infos)


# ------------------------------------------------------------------------------------- HPA


def test_hpa_policy_scales_up_after_a_load_step_and_never_makes_invalid_moves():
    trace = [40.0] * 10 + [200.0] * 15
    _, infos = _episode(HPAPolicy(0.7), trace)
    fe = _replicas(infos, "frontend")
    assert fe[-1] >= 10 > fe[9]
    assert all(i["invalid_actions"] == 0 for i in infos)


def test_hpa_policy_holds_scale_down_for_the_stabilization_window():
    trace = [200.0] * 12 + [30.0] * 30  # 15 s steps: the window is 20 steps
    _, infos = _episode(HPAPolicy(0.7), trace)
    fe = _replicas(infos, "frontend")
    drop = 12
    assert (fe[drop:drop + 19] == fe[drop]).all()  # held for the 300 s window
    assert fe[-1] < fe[drop]


def test_hpa_policy_syncs_every_15_s_of_simulated_time_with_shorter_steps():
    policy = HPAPolicy(0.7)
    _episode(policy, [40.0] * 4 + [200.0] * 20, sim_config=SimConfig(interval_s=5.0))
    assert len(policy.sync_times) == 8  # 24 steps x 5 s = 120 s -> 8 syncs
    assert np.allclose(np.diff(policy.sync_times), 15.0)


def test_hpa_names_follow_the_target():
    assert HPAPolicy(0.7).name == "hpa"
    assert HPAPolicy(0.5).name == "hpa-50"


# ---------------------------------------------------------------------------------- static


def test_peak_replicas_rounds_up_at_the_operating_point():
    # 225 req/s at the frontend / 20 req/s per pod = 11.25 -> 12
    assert peak_replicas({"frontend": 225.0}, APP.services, 0.7) == {"frontend": 12}
    # never above max_replicas
    assert peak_replicas({"frontend": 10_000.0}, APP.services, 0.7) == {"frontend": 15}


def test_static_policy_provisions_for_the_episode_peak_and_never_changes():
    trace = [50.0] * 10 + [180.0] * 3 + [50.0] * 10
    _, infos = _episode(StaticPolicy(), trace)
    fe = _replicas(infos, "frontend")
    assert fe[2] == 9  # ceil(180 / 20)
    assert (fe[2:] == fe[2]).all()


def test_static_policy_with_a_fixed_count():
    _, infos = _episode(StaticPolicy(3), [50.0] * 6)
    assert _replicas(infos, "cartservice")[-1] == 3
    with pytest.raises(ConfigError, match="replicas"):
        StaticPolicy(-1)


# ---------------------------------------------------------------------------------- random


def test_random_policy_only_makes_valid_moves_and_is_reproducible():
    _, a = _episode(RandomMaskedPolicy(seed=3), [80.0] * 20)
    _, b = _episode(RandomMaskedPolicy(seed=3), [80.0] * 20)
    assert all(i["invalid_actions"] == 0 for i in a)
    assert np.array_equal(_replicas(a, "frontend"), _replicas(b, "frontend"))
    assert len(set(_replicas(a, "frontend"))) > 1


# ---------------------------------------------------------------------------------- oracle


def test_safe_utilization_meets_the_slo_margin_and_grows_with_it():
    tight = calibrate_safe_utilization(APP, 0.6)
    loose = calibrate_safe_utilization(APP, 0.8)
    assert 0.2 < tight < loose < 0.95


def test_oracle_scales_up_before_the_load_arrives():
    trace = [40.0] * 20 + [200.0] * 10
    _, oracle = _episode(OraclePolicy(), trace)
    _, hpa = _episode(HPAPolicy(0.7), trace)
    # trace index k is served at step k; the frontend's pods take 15 s (1 step) to start
    fe_o, fe_h = _replicas(oracle, "frontend"), _replicas(hpa, "frontend")
    assert fe_o[20] > fe_o[18]  # already scaled when the step arrives
    assert fe_h[20] == fe_h[18]  # the HPA only sees it afterwards
    assert not any(i["slo_violated"] for i in oracle[1:])


def test_oracle_uses_fewer_replicas_than_static_peak_without_violations():
    trace = list(60 + 120 * np.sin(np.linspace(0, np.pi, 60)) ** 2)
    _, oracle = _episode(OraclePolicy(), trace)
    _, static = _episode(StaticPolicy(), trace)
    pods = lambda infos: sum(float(np.sum(i["replicas"])) for i in infos)  # noqa: E731
    assert pods(oracle) < pods(static)
    assert not any(i["slo_violated"] for i in oracle[1:])


def test_the_reactive_bound_sizes_for_the_load_just_served_and_is_late_on_a_jump():
    """``oracle-now``: the oracle's sizing of the true load of the interval just served,
    without the trace ahead. On a step up it scales one interval after the oracle."""
    trace = [40.0] * 20 + [200.0] * 10
    _, oracle = _episode(OraclePolicy(), trace)
    _, now = _episode(make_policy("oracle-now"), trace)
    fe_o, fe_n = _replicas(oracle, "frontend"), _replicas(now, "frontend")
    assert fe_n[20] == fe_n[18] < fe_o[20]  # it learns of the jump when it is served
    assert fe_n[22] == fe_o[22]  # then holds exactly what the oracle holds
    assert any(i["slo_violated"] for i in now[20:23])


def test_a_lower_utilisation_buys_the_bound_more_pods():
    trace = list(60 + 120 * np.sin(np.linspace(0, np.pi, 40)) ** 2)
    pods = lambda infos: sum(float(np.sum(i["replicas"])) for i in infos)  # noqa: E731
    tight, loose = (_episode(make_policy(s), trace)[1] for s in ("oracle-now-35",
                                                                  "oracle-now-60"))
    assert pods(tight) > pods(loose)


# --------------------------------------------------------------------------- policy specs


@pytest.mark.parametrize(
    ("spec", "cls", "name"),
    [("hpa", HPAPolicy, "hpa"), ("hpa-50", HPAPolicy, "hpa-50"), ("keda", KEDAPolicy, "keda"),
     ("static", StaticPolicy, "static"), ("static-3", StaticPolicy, "static-3"),
     ("random", RandomMaskedPolicy, "random"), ("oracle", OraclePolicy, "oracle"),
     ("oracle-45", OraclePolicy, "oracle-45"), ("oracle-now", OraclePolicy, "oracle-now"),
     ("oracle-now-40", OraclePolicy, "oracle-now-40")],
)
def test_policy_specs_build_policies(spec, cls, name):
    policy = make_policy(spec)
    assert isinstance(policy, cls) and policy.name == name
    assert isinstance(policy, Policy)


@pytest.mark.parametrize("bad", ["nope", "hpa-0", "hpa-500", "oracle:x", "oracle-now-100",
                                 "oracle-0", ""])
def test_bad_policy_specs_are_config_errors(bad):
    with pytest.raises(ConfigError, match="policies"):
        parse_policies(bad)


def test_a_label_names_the_row():
    policy = make_policy("hpa-tight=hpa-50")
    assert isinstance(policy, HPAPolicy) and policy.name == "hpa-tight"
    assert policy.config.target_utilization == 0.5


def test_duplicate_policy_names_are_rejected():
    with pytest.raises(ConfigError, match="duplicate"):
        parse_policies("hpa,hpa-70")
