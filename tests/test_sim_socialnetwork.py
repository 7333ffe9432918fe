"""The built-in DeathStarBench socialNetwork spec: upstream structure, mix-derived calls, and
behaviour in the simulator and the env."""

import numpy as np
import pytest

from gnnrl.core.envs import OnlineBoutique
from gnnrl.sim import BatchedSim, SimConfig, load_app_spec, save_app_spec
from gnnrl.sim.generator import unloaded_latency_ms
from gnnrl.sim.socialnetwork import BACKENDS, DROPPED, REQUEST_MIX, derive_calls

MAX_NODES = 20  # DynamicGraphConfig's default observation size


def test_socialnetwork_loads_by_name_and_fits_the_observation():
    app = load_app_spec("socialnetwork")
    assert app.entry == "nginx-thrift"
    assert len(app.services) <= MAX_NODES
    assert not set(DROPPED) & set(app.services)
    for name in BACKENDS:  # standalone datastores: one instance each
        assert app.services[name].max_replicas == 1
    # the helm chart's global resources: requests = limits = 100m CPU, 128Mi
    assert {(s.cpu_request_m, s.cpu_limit_m, s.mem_request_mi)
            for s in app.services.values()} == {(100, 100, 128)}


def test_socialnetwork_round_trips_through_yaml(tmp_path):
    app = load_app_spec("socialnetwork")
    save_app_spec(app, tmp_path / "sn.yaml")
    assert load_app_spec(tmp_path / "sn.yaml").to_dict() == app.to_dict()


def test_compose_post_fans_out_as_composeposthandler_does():
    app = load_app_spec("socialnetwork")
    callees = {c.dst for c in app.calls if c.src == "compose-post-service"}
    assert callees == {"text-service", "user-service", "media-service", "unique-id-service",
                       "post-storage-service", "user-timeline-service",
                       "home-timeline-service"}


@pytest.mark.parametrize(
    ("edge", "expected"),
    [
        # the wrk2 mix: 60 % home timeline, 30 % user timeline, 10 % compose
        (("nginx-thrift", "home-timeline-service"), 0.6),
        (("nginx-thrift", "user-timeline-service"), 0.3),
        (("nginx-thrift", "compose-post-service"), 0.1),
        # home-timeline serves 0.6 reads + 0.1 writes; only reads call post-storage
        (("home-timeline-service", "post-storage-service"), 0.6 / 0.7),
        (("home-timeline-service", "social-graph-service"), 0.1 / 0.7),
        (("home-timeline-service", "home-timeline-redis"), 1.0),
        # user-timeline serves 0.3 reads + 0.1 writes
        (("user-timeline-service", "post-storage-service"), 0.3 / 0.4),
    ],
)
def test_calls_per_request_follow_the_wrk2_mix(edge, expected):
    assert derive_calls()[edge] == pytest.approx(expected, abs=1e-3)
    assert sum(REQUEST_MIX.values()) == pytest.approx(1.0)


def test_every_post_storage_request_is_a_read_or_a_store():
    """post-storage serves one ReadPosts per timeline read and one StorePost per compose,
    i.e. exactly one call per entry request."""
    app = load_app_spec("socialnetwork")
    sim = BatchedSim(app, 1, SimConfig(arrival_noise=False, metric_noise=0.0), seed=0)
    lam = sim.propagate(np.array([100.0]))[0]
    assert lam[sim.index["post-storage-service"]] == pytest.approx(100.0)
    assert lam[sim.index["compose-post-service"]] == pytest.approx(10.0)


def test_slo_sits_above_the_unloaded_latency():
    app = load_app_spec("socialnetwork")
    p95, _ = unloaded_latency_ms(app)
    assert 1.3 * p95 <= app.slo_p95_ms <= 3.0 * p95


def test_slo_is_met_at_moderate_load_with_replicas_at_half_capacity():
    app = load_app_spec("socialnetwork")
    rps = 150.0
    sim = BatchedSim(app, 1, SimConfig(), seed=3)
    lam = sim.propagate(np.array([rps]))
    sim.reset(np.clip(np.ceil(lam / (0.5 * sim.cap)), sim.min_replicas, sim.max_replicas))
    p95 = np.array([sim.step(np.array([rps])).e2e_p95_ms[0] for _ in range(300)])
    assert np.isfinite(p95).all()
    assert (p95 <= app.slo_p95_ms).mean() >= 0.99


def test_socialnetwork_runs_through_the_env_without_nan():
    env = OnlineBoutique(app="socialnetwork", trace="diurnal", peak_rps=150.0, max_steps=200)
    obs, info = env.reset(seed=0)
    assert obs["num_nodes"] == len(env.app.services)
    violations = 0
    for _ in range(200):
        obs, reward, terminated, truncated, info = env.step(np.zeros(20, dtype=np.int64))
        assert np.isfinite(reward)
        assert all(np.isfinite(v).all() for v in obs.values() if isinstance(v, np.ndarray))
        violations += info["slo_violated"]
        if terminated or truncated:
            break
    assert np.isfinite(info["e2e_p95_ms"])
    assert violations < 200  # the warm start serves at least part of the day
