"""The simple autoscaling rules next to HPA: floor, panic (Knative KPA), predictive (Crane
EHPA + DSP), and the knobs that move each along the cost/SLO frontier."""

from __future__ import annotations

import math

import numpy as np
import pytest

from gnnrl.baselines.base import Policy, rps_at_cpu_utilization
from gnnrl.baselines.dsp import DSPConfig, find_period, forecast_cycle, is_periodic
from gnnrl.baselines.floor import FloorPolicy, floor_replicas
from gnnrl.baselines.headroom import HeadroomPolicy
from gnnrl.baselines.hpa import HPAPolicy
from gnnrl.baselines.keda import KEDAPolicy
from gnnrl.baselines.panic import PanicConfig, PanicPolicy
from gnnrl.baselines.predictive import PredictiveConfig, PredictivePolicy
from gnnrl.config import ConfigError
from gnnrl.core.envs import OnlineBoutique
from gnnrl.evaluation.policies import make_policy, parse_policies
from gnnrl.sim import SimConfig, load_app_spec

APP = load_app_spec("onlineboutique")
QUIET = SimConfig(arrival_noise=False, metric_noise=0.0)
FE = APP.services["frontend"]


def _episode(policy, trace, peak_rps=None, **reset_kw):
    """Run ``policy`` over an array trace without noise; return per-step infos."""
    env = OnlineBoutique(trace=np.asarray(trace, float), max_steps=len(trace) - 1,
                         sim_config=QUIET, peak_rps=peak_rps)
    obs, info = env.reset(seed=1000)
    policy.reset(env, **reset_kw)
    infos = [info]
    for _ in range(env.max_steps):
        obs, _, _, trunc, info = env.step(policy.act(obs, info))
        infos.append(info)
        if trunc:
            break
    assert all(i["invalid_actions"] == 0 for i in infos)
    return env, infos


def _pods(infos, service="frontend"):
    slot = infos[0]["slot_names"].index(service)
    return np.array([int(i["replicas"][slot]) for i in infos])


# ------------------------------------------------------------------------------------ floor


@pytest.mark.parametrize(
    ("peak", "utilization", "expected"),
    [(200.0, 1.1, 7),     # 200 / 32.3 req/s per pod at 110 % of the request
     (200.0, 0.7, 10),    # 200 / 20
     (2.0, 1.1, 1),       # below one pod: the service's min
     (2000.0, 1.1, 15)],  # above max_replicas: its max
)
def test_floor_is_the_peak_over_the_per_pod_load_at_the_floor_utilization(
        peak, utilization, expected):
    assert floor_replicas(peak, FE, utilization) == expected


def test_floor_never_goes_below_the_floor_at_low_load():
    peak = 200.0
    policy = FloorPolicy(1.1)
    _, infos = _episode(policy, [10.0] * 30, peak_rps=peak)
    assert policy.peak_rps == peak
    floors = policy.floors
    assert floors["frontend"] == 7
    for info in infos[1:]:  # from the first decision on
        for i, name in enumerate(info["slot_names"]):
            if name is not None:
                assert info["replicas"][i] >= floors[name], name
    # the HPA alone would have kept the frontend at its one pod
    _, hpa = _episode(HPAPolicy(), [10.0] * 30, peak_rps=peak)
    assert _pods(hpa).max() < floors["frontend"]


def test_floor_lets_the_hpa_scale_above_it():
    policy = FloorPolicy(2.0)  # a thin floor: 200 req/s / 60 req/s per pod -> 4 pods
    _, infos = _episode(policy, [200.0] * 20, peak_rps=200.0)
    assert policy.floors["frontend"] == 4
    hpa_target = math.ceil(200.0 / rps_at_cpu_utilization(FE, 0.7) - 1e-9)  # 10
    assert _pods(infos)[-1] >= hpa_target - 1 > policy.floors["frontend"]


def test_floor_refuses_an_impossible_utilization():
    with pytest.raises(ConfigError, match="floor_utilization"):
        FloorPolicy(0.0)


# ------------------------------------------------------------------------------------ panic


def _kpa(**cfg):
    policy = PanicPolicy(PanicConfig(**cfg))
    env = OnlineBoutique(trace=np.full(8, 30.0), max_steps=4, sim_config=QUIET)
    env.reset(seed=1000)
    policy.reset(env)
    return policy


def test_panic_scales_to_the_short_window_demand_within_one_interval():
    policy = _kpa()  # frontend: 20 req/s per pod at 70 %
    for k in range(4):
        assert policy.scale("frontend", 15.0, 1, 15.0 * k) == 1  # stable, 1 pod ready
    assert not policy.panicking("frontend")
    # the load jumps: 90 req/s needs 5 pods, >= 2 x the ready one -> panic
    desired = policy.scale("frontend", 90.0, 1, 60.0)
    assert policy.panicking("frontend")
    assert desired == math.ceil(90.0 / 20.0)
    # what the stable window alone would ask for (mean of 15, 15, 15, 90 req/s)
    assert desired > math.ceil(np.mean([15.0, 15.0, 15.0, 90.0]) / 20.0)


def test_panic_never_scales_down_until_a_stable_window_without_overload():
    policy = _kpa()
    for k in range(4):
        policy.scale("frontend", 15.0, 1, 15.0 * k)
    assert policy.scale("frontend", 90.0, 1, 60.0) == 5
    held = [policy.scale("frontend", 10.0, 5, 60.0 + 15.0 * k) for k in range(1, 5)]
    assert held == [5, 5, 5, 5]  # 60 s after the last overload: still panicking
    assert policy.panicking("frontend")
    after = policy.scale("frontend", 10.0, 5, 60.0 + 15.0 * 5)  # > 60 s: un-panic
    assert not policy.panicking("frontend")
    assert after < 5
    assert after >= math.floor(5 / 2)  # max-scale-down-rate 2


def test_a_new_autoscaler_with_several_pods_starts_in_panic_and_holds_them():
    policy = _kpa()
    assert policy.scale("frontend", 0.0, 6, 0.0) == 6
    assert policy.panicking("frontend")


def test_panic_through_the_environment_reaches_the_jump_load_at_the_next_step():
    trace = [40.0] * 6 + [100.0] * 3 + [40.0] * 12
    _, infos = _episode(PanicPolicy(), trace)
    pods = _pods(infos)
    jump = 6  # infos[6] is the first observation at 100 req/s
    assert pods[jump - 1] == 2
    assert pods[jump + 1] == math.ceil(100.0 / 20.0)
    # over the threshold only when the jump was seen (5 pods carry 100 req/s); panic holds
    # them for a stable window (60 s) after that, though the load is 40 req/s from step 9
    assert (pods[jump + 1:jump + 6] == 5).all()
    assert pods[jump + 6] < 5


# ------------------------------------------------------------------------------ predictive


def _day(phase: np.ndarray, period: int) -> np.ndarray:
    """A day of entry load: 40 req/s, 160 req/s from 50 % to 75 % of the day."""
    x = (phase % period) / period
    return np.where((x >= 0.5) & (x < 0.75), 160.0, 40.0)


@pytest.mark.parametrize(
    ("signal", "period"),
    [("daily sinusoid", 96), ("daily square wave", 80), ("white noise", None)],
)
def test_find_period_finds_the_daily_cycle_and_none_in_noise(signal, period):
    rng = np.random.default_rng(3)
    t = np.arange(4 * (period or 96))
    if signal == "daily sinusoid":
        x = 100 * (0.6 - 0.4 * np.cos(2 * np.pi * t / period)) * np.exp(rng.normal(0, .05, t.size))
    elif signal == "daily square wave":
        x = _day(t, period) * np.exp(rng.normal(0, 0.05, t.size))
    else:
        x = rng.normal(50.0, 5.0, t.size)
    assert find_period(x) == period


def test_is_periodic_needs_two_whole_cycles():
    x = _day(np.arange(160), 80)
    assert is_periodic(x, 80)
    assert not is_periodic(x[:150], 80)


def test_forecast_repeats_the_last_cycles():
    cycle = forecast_cycle(_day(np.arange(240), 80))
    assert cycle is not None and cycle.shape == (80,)
    assert cycle[:35].max() < 60 and cycle[45:55].min() > 150  # peak: phases 40..59
    assert forecast_cycle(_day(np.arange(100), 80)) is None  # one cycle: no forecast


def test_predictive_prescales_before_the_daily_peak():
    period = 80
    history = _day(np.arange(3 * period), period)  # three days of entry load
    trace = _day(np.arange(period // 2 + 6), period)  # the next day, past its peak's start
    peak_at = period // 2  # infos[40] is the first interval at 160 req/s
    policy = PredictivePolicy()
    _, infos = _episode(policy, trace, history_rps=history)
    assert "frontend" in policy.cycles
    _, keda = _episode(KEDAPolicy(), trace)
    pods, live = _pods(infos), _pods(keda)
    live_need = math.ceil(40.0 / rps_at_cpu_utilization(FE, 0.7) - 1e-9)  # 2 pods
    # before the peak arrives the forecast has already added pods the live load doesn't
    # need (the HPA's rate limit: +4 pods per 15 s), and the peak's first interval runs
    # with the pods it needs, where KEDA still has the trough's
    assert pods[peak_at - 1] > live_need == live[peak_at - 1]
    assert pods[peak_at] >= math.ceil(160.0 / 20.0) > live[peak_at]
    # and long before the peak it is as lean as KEDA
    assert pods[5:peak_at - 4].max() == live[5:peak_at - 4].max()


def test_predictive_without_enough_history_is_keda():
    trace = _day(np.arange(50), 80)
    short = _day(np.arange(100), 80)  # less than two cycles
    policy = PredictivePolicy()
    _, infos = _episode(policy, trace, history_rps=short)
    assert policy.cycles == {}
    _, keda = _episode(KEDAPolicy(), trace)
    assert (_pods(infos) == _pods(keda)).all()


def test_predictive_takes_per_service_history_and_rejects_bad_history():
    policy = PredictivePolicy(PredictiveConfig(dsp=DSPConfig(periods=(80,))))
    _episode(policy, [40.0] * 4, history_rps={"frontend": _day(np.arange(240), 80)})
    assert set(policy.cycles) == {"frontend"}
    with pytest.raises(ConfigError, match="history_rps"):
        _episode(PredictivePolicy(), [40.0] * 4, history_rps={"frontend": [1.0, -2.0]})


# --------------------------------------------------------------------------- policy specs


@pytest.mark.parametrize(
    ("spec", "cls", "name", "attr", "value"),
    [("floor", FloorPolicy, "floor", "floor_utilization", 1.1),
     ("floor-90", FloorPolicy, "floor-90", "floor_utilization", 0.9),
     ("panic", PanicPolicy, "panic", "config.target_utilization", 0.7),
     ("panic-60", PanicPolicy, "panic-60", "config.target_utilization", 0.6),
     ("predictive", PredictivePolicy, "predictive", "utilization", 0.7),
     ("predictive-80", PredictivePolicy, "predictive-80", "utilization", 0.8),
     ("headroom", HeadroomPolicy, "headroom", "config.low_target", 0.7),
     ("headroom-90", HeadroomPolicy, "headroom-90", "config.high_target", 0.9 / 0.7),
     ("keda-60", KEDAPolicy, "keda-60", "utilization", 0.6),
     ("LABEL=floor", FloorPolicy, "LABEL", "floor_utilization", 1.1)],
)
def test_rule_specs_build_the_rule_with_its_knob(spec, cls, name, attr, value):
    policy = make_policy(spec)
    assert isinstance(policy, cls) and isinstance(policy, Policy)
    assert policy.name == name
    obj = policy
    for part in attr.split("."):
        obj = getattr(obj, part)
    assert obj == pytest.approx(value)


@pytest.mark.parametrize("bad", ["floor-0", "floor-201", "panic-0", "predictive-300",
                                 "headroom-150", "panic-x", "floor:x", "predictive-"])
def test_bad_rule_specs_are_config_errors(bad):
    with pytest.raises(ConfigError, match="policies"):
        parse_policies(bad)


# -------------------------------------------------------------------------------- configs


@pytest.mark.parametrize(
    ("cls", "changes"),
    [(PanicConfig, {"target_utilization": 0.6, "stable_window_s": 30.0}),
     (PredictiveConfig, {"utilization": 0.8, "dsp": DSPConfig(periods=(96, 672))})],
)
def test_rule_configs_round_trip_through_json(cls, changes):
    cfg = cls(**changes)
    assert cls.from_json(cfg.to_json()) == cfg


@pytest.mark.parametrize(
    ("build", "field"),
    [(lambda: PanicConfig(panic_threshold=1.0), "panic_threshold"),
     (lambda: PanicConfig(target_utilization=0.0), "target_utilization"),
     (lambda: PredictiveConfig(lookahead_intervals=0), "lookahead_intervals"),
     (lambda: DSPConfig(periods=(1,)), "periods"),
     (lambda: DSPConfig(min_cycles=1), "min_cycles")],
)
def test_bad_rule_settings_name_the_field(build, field):
    with pytest.raises(ConfigError, match=field):
        build()
