"""Cluster timing: lagged metrics for every policy, per-pod start-ups, the ideal default."""

import json
import math
import re

import numpy as np
import pytest

from gnnrl.config import ConfigError
from gnnrl.core.envs import OnlineBoutique
from gnnrl.core.envs.vector import BatchedEnvPool
from gnnrl.sim import BatchedSim, SimConfig, load_app_spec
from gnnrl.sim.timing import TimingConfig, ready_times_s, window_weights

DT = 15.0
QUIET_REALISTIC = SimConfig(arrival_noise=False, metric_noise=0.0,
                            timing=TimingConfig.realistic())
NOOP = np.zeros(20, dtype=np.int64)


def step_trace(low=40.0, high=60.0, k0=10):
    """req/s per env step: `low` before step k0, `high` from step k0 on."""
    return np.r_[np.full(k0, low), np.full(400, high)]


def run_noop(env, steps):
    return [env.step(NOOP) for _ in range(steps)]


def test_ideal_timing_is_the_default_and_changes_nothing():
    assert SimConfig().timing == TimingConfig.ideal()
    explicit = OnlineBoutique(max_steps=20, sim_config=SimConfig(timing=TimingConfig.ideal()))
    default = OnlineBoutique(max_steps=20)
    explicit.reset(seed=5)
    default.reset(seed=5)
    assert default.metrics_lag is None
    rng = np.random.default_rng(0)
    for _ in range(20):
        action = rng.integers(0, 15, 20)
        a, b = explicit.step(action), default.step(action)
        assert a[1] == b[1]
        for k in a[0]:
            np.testing.assert_array_equal(a[0][k], b[0][k])
        np.testing.assert_array_equal(a[4]["cpu_m"], b[4]["cpu_m"])


def test_sim_config_json_round_trip_keeps_timing_and_old_json_loads_ideal():
    cfg = SimConfig(interval_s=15.0, timing=TimingConfig.realistic())
    assert SimConfig.from_json(cfg.to_json()) == cfg
    old = json.dumps({"interval_s": 15.0, "arrival_noise": True, "metric_noise": 0.02})
    assert SimConfig.from_json(old).timing == TimingConfig.ideal()
    assert SimConfig(**json.loads(cfg.to_json())) == cfg


@pytest.mark.parametrize(("changes", "field"), [
    ({"cpu_window_s": -1.0}, "timing.cpu_window_s"),
    ({"rate_window_s": float("inf")}, "timing.rate_window_s"),
    ({"startup_cv": 0.2, "readiness_period_s": 0.0}, "timing.readiness_period_s"),
    ({"startup_cv": 3.0, "readiness_period_s": 10.0}, "timing.startup_cv"),
    ({"kubelet_age_max_s": "10"}, "timing.kubelet_age_max_s"),
])
def test_bad_timing_values_name_the_field(changes, field):
    with pytest.raises(ConfigError, match=re.escape(field)):
        TimingConfig(**changes)


@pytest.mark.parametrize("name", ["ideal", "realistic"])
def test_timing_presets_can_be_named(name):
    assert SimConfig(timing=name).timing == TimingConfig.preset(name)
    assert SimConfig(timing=name).timing == name  # a preset equals its name
    assert TimingConfig.realistic() != "ideal" and TimingConfig(startup_cv=0.0) == "ideal"
    assert SimConfig.from_dict({"timing": name}).timing == getattr(TimingConfig, name)()


def test_unknown_timing_preset_names_the_field():
    with pytest.raises(ConfigError, match="timing: must be one of"):
        SimConfig(timing="fast")


def test_interval_and_probe_period_without_a_common_grid_are_refused():
    with pytest.raises(ConfigError, match=r"timing\.readiness_period_s"):
        SimConfig(interval_s=7.3, timing=TimingConfig.realistic())


def test_cpu_lag_draws_match_the_documented_average_and_worst_case():
    timing = TimingConfig.realistic()
    lag = timing.cpu_lag_s(np.random.default_rng(0), 200_000)
    midpoint = lag + timing.cpu_window_s / 2  # how late the reading's window is centred
    assert midpoint.mean() == pytest.approx(27.5, abs=0.1)
    assert (lag + timing.cpu_window_s).max() <= 55.0  # a step in load is fully seen by then
    assert (lag + timing.cpu_window_s).max() > 50.0
    assert TimingConfig.ideal().cpu_lag_s(np.random.default_rng(0), 3).tolist() == [0, 0, 0]


@pytest.mark.parametrize(("end_lag", "window", "expected"), [
    (0.0, 0.0, [1, 0, 0, 0, 0, 0]),  # ideal: the interval that just ended
    (15.0, 60.0, [0, 0.25, 0.25, 0.25, 0.25, 0]),  # rate(...[1m]) one scrape ago
    (20.0, 15.0, [0, 2 / 3, 1 / 3, 0, 0, 0]),
])
def test_window_weights_are_the_overlap_of_each_interval(end_lag, window, expected):
    w = window_weights(np.array([end_lag]), window, DT, 6)[0]
    np.testing.assert_allclose(w, expected, atol=1e-12)


def test_step_in_load_reaches_hpa_cpu_input_only_after_the_cpu_lag():
    k0 = 10
    env = OnlineBoutique(trace=step_trace(k0=k0), sim_config=QUIET_REALISTIC, max_steps=30)
    _, info = env.reset(seed=3)
    lag = float(env.metrics_lag.cpu_lag_s[0])
    assert 0.0 < lag <= 40.0
    slot = info["slot_names"].index("frontend")
    low = info["cpu_m"][slot]
    steps = run_noop(env, 20)
    cpu = np.array([s[4]["cpu_m"][slot] for s in steps])  # cpu[k - 1]: after step k
    high = cpu[-1]
    assert high > low * 1.2
    # the load rises at (k0 - 1) * dt; the reading after step k is the mean over
    # [k dt - lag - 15, k dt - lag]
    first = math.floor(k0 - 1 + lag / DT) + 1  # first step whose window overlaps the rise
    full = math.ceil(k0 - 1 + (lag + 15.0) / DT)  # first step whose window is all past it
    k = np.arange(1, 21)
    np.testing.assert_allclose(cpu[k < first], low, rtol=1e-12)
    np.testing.assert_allclose(cpu[k >= full], high, rtol=1e-12)
    assert all(low < c < high for c in cpu[(k >= first) & (k < full)])
    # the truth moves at once: SLO/cost numbers are not lagged
    assert steps[k0 - 1][4]["entry_rps"] == pytest.approx(60.0)
    assert steps[k0 - 2][4]["entry_rps"] == pytest.approx(40.0)


def test_request_rates_lag_by_one_scrape_and_average_over_the_rate_window():
    k0 = 10
    env = OnlineBoutique(trace=step_trace(k0=k0), sim_config=QUIET_REALISTIC, max_steps=30)
    _, info = env.reset(seed=1)
    slot = info["slot_names"].index("frontend")
    steps = run_noop(env, 18)
    rps = [s[4]["rps_in"][slot] for s in steps]
    # rate(...[1m]) evaluated one 15 s scrape late: a quarter of the step per interval
    expected = [40.0] * k0 + [45.0, 50.0, 55.0, 60.0, 60.0, 60.0, 60.0, 60.0]
    np.testing.assert_allclose(rps, expected, rtol=1e-12)


def test_every_policy_reads_the_same_lagged_view():
    env = OnlineBoutique(trace=step_trace(k0=4), sim_config=QUIET_REALISTIC, max_steps=12)
    env.reset(seed=2)
    for obs, _, _, _, info in run_noop(env, 10):
        on = obs["node_mask"] == 1
        svc = obs["svc_df"]
        # the GNN's features are HPA's / KEDA's inputs (float32 copies of them), except
        # the requests of a service called over TCP only, which no mesh counts
        np.testing.assert_allclose(svc[on, 2], info["cpu_m"][on], rtol=1e-6)
        tcp_only = np.array([n == "redis-cart" for n in info["slot_names"]])
        np.testing.assert_allclose(svc[on & ~tcp_only, 4], info["rps_in"][on & ~tcp_only],
                                   rtol=1e-6)
        assert (svc[tcp_only, 4] == 0).all() and (info["rps_in"][tcp_only] > 0).all()
        entry = info["slot_names"].index("frontend")
        assert obs["global_feats"][3] == pytest.approx(info["rps_in"][entry], rel=1e-6)


def test_per_pod_startups_vary_and_are_seeded():
    app = load_app_spec("onlineboutique")

    def ready_curve(seed):
        sim = BatchedSim(app, 2, QUIET_REALISTIC, seed=seed)
        sim.reset()
        i = sim.index["adservice"]  # startup_s 40 s: Ready at 40, 50 or 60 s mostly
        target = sim.replicas.copy()
        target[:, i] += 40
        curve = [sim.step(np.full(2, 30.0), target).ready[:, i].copy()]
        curve += [sim.step(np.full(2, 30.0)).ready[:, i].copy() for _ in range(5)]
        return np.array(curve)

    a, b, c = ready_curve(7), ready_curve(7), ready_curve(8)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert (a[-1] - a[0] == 40).all()
    # with one start-up for all (ideal) the 40 pods would join in one interval; here they
    # join over several
    for n in range(2):
        assert len(np.unique(a[:, n])) > 2, a[:, n]
    ideal = BatchedSim(app, 1, SimConfig(arrival_noise=False, metric_noise=0.0), seed=7)
    ideal.reset()
    target = ideal.replicas.copy()
    target[:, ideal.index["adservice"]] += 40
    curve = [ideal.step(np.full(1, 30.0), target).ready[0, ideal.index["adservice"]]]
    curve += [ideal.step(np.full(1, 30.0)).ready[0, ideal.index["adservice"]]
              for _ in range(5)]
    assert len(np.unique(curve)) == 2


def test_ready_times_fall_on_probe_ticks_around_the_spec_startup():
    timing = TimingConfig.realistic()
    ready = ready_times_s(timing, np.full(100_000, 40.0), np.random.default_rng(0))
    assert np.allclose(ready / 10.0, np.round(ready / 10.0))
    assert ready.min() >= 10.0
    # up after ~LogNormal(mean 40 s, cv 0.2), Ready at the next 10 s tick: ~+5 s on average
    assert ready.mean() == pytest.approx(45.0, abs=1.0)
    ideal_like = TimingConfig(readiness_period_s=10.0)
    assert ready_times_s(ideal_like, np.array([40.0, 12.0]), np.random.default_rng(0)
                         ).tolist() == [40.0, 20.0]


def test_batched_pool_runs_with_realistic_timing_and_observes_the_lagged_view():
    pool = BatchedEnvPool(3, run_seed=1, max_steps=10,
                          sim_config=SimConfig(timing=TimingConfig.realistic()))
    pool.reset()
    assert (pool._lag.cpu_lag_s > 0).all()
    for _ in range(25):  # crosses two auto-resets
        step = pool.step(np.zeros((3, 20), dtype=np.int64))
        assert all(np.isfinite(v).all() for v in step.obs.values())
        assert not np.shares_memory(pool.seen.cpu_m, pool.m.cpu_m)


def test_lagged_view_is_the_window_mean_of_the_true_history():
    from gnnrl.core.envs.lag import MetricsLag
    from gnnrl.sim import StepMetrics

    N, S, E = 2, 4, 3
    rng = np.random.default_rng(0)

    def metrics():
        f = {k: rng.uniform(1.0, 100.0, (N, S)) for k in (
            "replicas", "ready", "rps_in", "served_rps", "cpu_m", "mem_mi", "rx_kbps",
            "tx_kbps", "p95_ms", "mean_ms", "err_rate", "backlog", "out_rps")}
        f |= {k: rng.uniform(0.0, 1.0, (N, E)) for k in (
            "edge_qps", "edge_p95_ms", "edge_err", "edge_mtls")}
        f |= {k: rng.uniform(1.0, 9.0, N) for k in ("e2e_p95_ms", "e2e_mean_ms",
                                                    "e2e_err_rate")}
        f["edge_qps"][0, 1] = 0.0  # no requests on an edge: plain means
        return StepMetrics(**f, active=np.ones((N, S), bool))

    timing = TimingConfig.realistic()
    lag = MetricsLag(timing, DT, N)
    first = metrics()
    cpu_lag = np.array([3.0, 31.0])
    lag.reset(first, slice(None), cpu_lag)
    truth = [first] * lag.depth
    for _ in range(12):
        m = metrics()
        truth.append(m)
        seen = lag.push(m)
        recent = truth[::-1][:lag.depth]  # newest first
        w_cpu = window_weights(cpu_lag, timing.cpu_window_s, DT, lag.depth)
        w_rate = window_weights(np.array([15.0]), 60.0, DT, lag.depth)[0]

        def mean(field, w, recent=recent):
            return sum(w[..., j, None] * getattr(x, field) for j, x in enumerate(recent))

        np.testing.assert_allclose(seen.cpu_m, mean("cpu_m", w_cpu), rtol=1e-12)
        np.testing.assert_allclose(seen.mem_mi, mean("mem_mi", w_cpu), rtol=1e-12)
        for field in ("rps_in", "out_rps", "edge_qps"):
            np.testing.assert_allclose(getattr(seen, field), mean(field, w_rate), rtol=1e-12)
        qps = mean("edge_qps", w_rate)
        err_q = sum(w_rate[j] * x.edge_err * x.edge_qps for j, x in enumerate(recent))
        expected = np.where(qps > 0, err_q / np.maximum(qps, 1e-12), mean("edge_err", w_rate))
        np.testing.assert_allclose(seen.edge_err, expected, rtol=1e-12)
        # not lagged: pods, Ready pods and the end-to-end truth
        for field in ("replicas", "ready", "e2e_p95_ms", "err_rate", "edge_mtls"):
            assert getattr(seen, field) is getattr(m, field)
