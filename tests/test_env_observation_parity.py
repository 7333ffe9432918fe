"""One observation builder: the scaler, the batched training pool and the simulator env
observe the same state identically (no train/serve skew).

The scaler's side goes the way a real cluster goes: the simulated step becomes the Kiali
graph a mesh with that traffic would answer (`kiali_payload`, parsed by the production
`parse_graph`), merged with what the Kubernetes source reports, and per-Deployment reads
(scale subresource, pods with metrics samples); `gnnrl.scaler.observe.build_observation`
turns that into the observation.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from gnnrl.core.envs import DynamicGraphSpace, OnlineBoutique
from gnnrl.core.envs.cluster_view import (
    ClusterView,
    build_observation,
    map_view,
    observation_from_view,
    sim_observables,
    sim_view_index,
    view_from_metrics,
    view_slots,
)
from gnnrl.core.envs.obs_extras import BatchedContext, LoadHistory, ObservationContext
from gnnrl.core.envs.observation import build_observations
from gnnrl.core.envs.vector import BatchedEnvPool
from gnnrl.data.snapshot import EDGE_COLUMNS, NODE_COLUMNS, GraphSnapshot
from gnnrl.scaler import observe
from gnnrl.scaler.config import ScalerConfig
from gnnrl.scaler.sim_cluster import graph_snapshot, service_state
from gnnrl.sim import BatchedSim, Scenario, SimConfig, TopologyEvent, load_app_spec
from gnnrl.sim.onlineboutique import reviewservice
from gnnrl.sim.timing import TimingConfig

NS = "shop"
CONTEXT = ObservationContext(slo_ms=200.0)
FLOAT_KEYS = ("svc_df", "edge_df", "global_feats")
EXACT_KEYS = ("node_mask", "edge_mask", "invalid_action_mask")


def flash_crowd_with_a_service_added() -> Scenario:
    svc, calls = reviewservice()
    return Scenario("flash-add", "flash", 450.0, (
        TopologyEvent(step=60, kind="add", service=svc, calls=tuple(calls)),
        TopologyEvent(step=200, kind="remove", service_name="adservice")))


def random_valid_actions(rng: np.random.Generator, valid: np.ndarray) -> np.ndarray:
    """Mostly "nothing", sometimes a random valid move: replicas change, pods start."""
    moves = np.where(valid, rng.random(valid.shape), -1).argmax(-1)
    return np.where(rng.random(moves.shape) < 0.3, moves, 0)


def scaler_reads(env: OnlineBoutique, step: int) -> observe.ClusterState:
    """What the scaler reads from Kubernetes and Kiali for the env's current state."""
    sim, m = env.sim, env.observed_metrics
    services = {}
    for name in sim.service_names:
        if m.active[0, sim.index[name]]:
            scale = observe.ScaleState(name, int(m.replicas[0, sim.index[name]]), "1",
                                       f"app={name}")
            services[name] = service_state(sim, m, scale)
    return observe.ClusterState(services, graph_snapshot(sim, m, NS, 1.7e9 + 15.0 * step))


def assert_same_observation(got: dict, want: dict, where: str) -> None:
    for key in FLOAT_KEYS:
        np.testing.assert_allclose(got[key], want[key], rtol=1e-6, atol=1e-6,
                                   err_msg=f"{where}: {key}")
    for key in EXACT_KEYS:
        np.testing.assert_array_equal(got[key], want[key], err_msg=f"{where}: {key}")
    assert got["num_nodes"] == want["num_nodes"], where


@pytest.mark.parametrize("timing", ["ideal", "realistic"])
def test_the_scaler_sees_what_the_policy_was_trained_on(timing):
    env = OnlineBoutique(scenario=flash_crowd_with_a_service_added(), max_steps=300,
                         sim_config=SimConfig(timing=TimingConfig.preset(timing)))
    obs, _ = env.reset(seed=3)
    # the scaler owns every service of the application, with the spec's bounds, and
    # decides at the env's HPA target
    cfg = ScalerConfig(services={n: {"min_replicas": s.min_replicas,
                                     "max_replicas": s.max_replicas}
                                 for n, s in env.app_universe.services.items()})
    assert cfg.hpa.target_utilization == env.hpa_target
    # slot numbers are each process's history; start the scaler from the env's mapping
    # so that the arrays compare slot for slot (both then follow the same rules)
    space = DynamicGraphSpace(env.graph_config)
    space.node_mapping.update(env.graph_space.node_mapping)
    space.edge_mapping.update(env.graph_space.edge_mapping)
    rng = np.random.default_rng(0)
    seen = {"tcp_edge": False, "added": False, "starting_pods": False, "refused": 0}
    history = LoadHistory()  # the scaler's, as its loop keeps it
    for t in range(301):
        got, changed = observe.build_observation(scaler_reads(env, t), space, cfg,
                                                 time_of_day_s=15.0 * t, history=history)
        assert_same_observation(got, obs, f"step {t}")
        assert space.slot_names() == env.graph_space.slot_names()
        if observe.check_observation(got, cfg.feature_max) is not None:
            seen["refused"] += 1
        m = env.observed_metrics
        seen["added"] |= changed and "reviewservice" in space.node_mapping
        seen["starting_pods"] |= bool((m.ready < m.replicas).any())
        seen["tcp_edge"] |= "redis-cart" in space.node_mapping
        if t == 300:
            break
        valid = env.action_masks().reshape(-1, 15)
        obs, *_ = env.step(random_valid_actions(rng, valid))
    assert seen == {"tcp_edge": True, "added": True, "starting_pods": True, "refused": 0}, seen


def test_batched_pool_observations_equal_the_one_builder():
    svc, calls = reviewservice()
    scenarios = [flash_crowd_with_a_service_added(),
                 Scenario("add-early", "ramp", 300.0, (
                     TopologyEvent(step=2, kind="add", service=svc, calls=tuple(calls)),)),
                 Scenario("d", "diurnal", 150.0)]
    pool = BatchedEnvPool(3, run_seed=4, max_steps=12, scenarios=scenarios,
                          sim_config=SimConfig(timing=TimingConfig.realistic()),
                          dial="random", time_of_day_s="random")
    pool.reset()
    sim = pool.sim
    observables = sim_observables(sim)
    rng = np.random.default_rng(1)
    # each copy observed alone, as one cluster would be: its own load history, restarted
    # with its episodes
    histories = [LoadHistory() for _ in range(pool.num_envs)]
    dt = pool.sim_config.interval_s
    for t in range(30):  # crosses episode boundaries (auto-reset) and topology events
        for i in range(pool.num_envs):
            if pool.steps_in_episode[i] == 0:
                histories[i].reset()
            index = sim_view_index(sim, pool.universe.service_names, sim.active[i],
                                   observables)
            view, slots = view_from_metrics(pool.seen, index, observables,
                                            view_slots(index, pool.spaces[i]), copy=i,
                                            truth=pool.m)
            context = ObservationContext(pool.app.slo_p95_ms, dt, float(pool.dial[i]),
                                         float(pool.tod0[i] + pool.t[i] * dt))
            one = observation_from_view(view, slots, pool.hpa_target, context=context,
                                        history=histories[i])
            assert_same_observation(one, {k: v[i] for k, v in pool.obs.items()},
                                    f"step {t}, copy {i}")
        valid = pool.obs["invalid_action_mask"].reshape(3, 20, 15) == 0
        pool.step(random_valid_actions(rng, valid))


@pytest.mark.parametrize("backend", ["numba", "numpy"])
def test_a_call_without_traffic_is_not_an_edge_on_any_path(backend):
    # Kiali and Prometheus know an edge only from its telemetry in the window
    sim = BatchedSim(load_app_spec("onlineboutique"), 2, seed=0)
    sim.reset()
    m = sim.step(np.full(2, 100.0))
    k = next(k for k, (i, j) in enumerate(sim.edges) if sim.service_names[j] == "redis-cart")
    m.edge_qps[0, k] = 0.0  # copy 0: cartservice sent nothing to redis-cart this window
    observables = sim_observables(sim)
    slot = np.tile(np.arange(sim.num_services), (2, 1))
    eslot = np.tile(np.arange(len(sim.edges)), (2, 1))
    slo = sim.app.slo_p95_ms
    batched = build_observations(m, sim, slot, eslot, 20, 400, backend=backend,
                                 context=BatchedContext(slo, 15.0, np.full(2, 0.5),
                                                        np.zeros(2)))
    for i in range(2):
        space = DynamicGraphSpace()
        index = sim_view_index(sim, sim.service_names, sim.active[i], observables)
        slots, _ = map_view(index, space)
        view, slots = view_from_metrics(m, index, observables, slots, copy=i)
        one = observation_from_view(view, slots, context=ObservationContext(slo))
        assert_same_observation(one, {key: v[i] for key, v in batched.items()}, f"copy {i}")
        assert one["edge_mask"][k] == i  # the idle call is gone from copy 0 only


def tiny_view(protocol_bc: str = "tcp", owned_c: bool = True) -> ClusterView:
    """a -> b (grpc) -> c (`protocol_bc`); a gets 10 req/s from outside."""
    nan = np.nan
    return ClusterView(
        ("a", "b", "c"), replicas=np.array([2.0, 3.0, 1.0]), ready=np.array([2.0, 3.0, 0.0]),
        cpu_m=np.array([280.0, 90.0, 5.0]), mem_mi=np.array([64.0, 96.0, 32.0]),
        rps_in=np.array([10.0, 20.0, 0.0]), cpu_request_m=np.array([100.0, 100.0, 50.0]),
        min_replicas=np.array([1.0, 1.0, 1.0 if owned_c else nan]),
        max_replicas=np.array([3.0, 8.0, 4.0 if owned_c else nan]),
        edge_src=np.array([0, 1]), edge_dst=np.array([1, 2]),
        edge_qps=np.array([20.0, nan]), edge_p95_ms=np.array([12.0, nan]),
        edge_err=np.array([0.01, 0.0]), edge_mtls=np.array([1.0, 1.0]),
        edge_requests=np.array([True, protocol_bc in ("http", "grpc")])).check()


def test_tcp_calls_keep_their_edge_but_show_no_request_numbers():
    space = DynamicGraphSpace()
    obs, changed = build_observation(tiny_view(), space, context=CONTEXT)
    a, b, c = (space.node_mapping[n] for n in "abc")
    assert changed and obs["num_nodes"] == 3 and obs["edge_mask"].sum() == 2
    # b sends its requests to c over TCP: Istio counts bytes there, not requests
    np.testing.assert_allclose(obs["svc_df"][b, :6], [3, 2, 90, 96, 20, 0])
    np.testing.assert_allclose(obs["svc_df"][a, :6], [2, 3, 280, 64, 10, 20])  # 4 -> max 3
    bc = obs["edge_df"][space.edge_mapping[("b", "c")]]
    np.testing.assert_allclose(bc, [b, c, 1, 0, 0, 0, 1])
    # entry load: what a receives from outside (b's 20 req/s come from a)
    np.testing.assert_allclose(obs["global_feats"][:4], [6, 375 / 6, 192 / 6, 10])


def test_a_service_the_scaler_does_not_own_keeps_its_size_and_only_waits():
    space = DynamicGraphSpace()
    obs, _ = build_observation(tiny_view(owned_c=False), space, context=CONTEXT)
    c = space.node_mapping["c"]
    assert obs["svc_df"][c, 1] == 1  # desired = current: no bounds to compute with
    inv = obs["invalid_action_mask"].reshape(-1, 15)
    assert not inv[c, 0] and inv[c, 1:].all()


def test_an_idle_service_missing_from_the_traffic_graph_received_nothing():
    # Kiali lists a workload only when it had traffic in the window; Kubernetes lists it
    nodes = pd.DataFrame([("a", 1.0, 1.0, 50.0, 10.0, 1.0, 1.0, 5.0),
                          ("b", 1.0, 1.0, 20.0, 10.0, np.nan, np.nan, np.nan)],
                         columns=list(NODE_COLUMNS))
    ingress = pd.DataFrame([("istio-ingressgateway.istio-system", "a", "http", 5.0, 80.0,
                             0.0, 1.0)], columns=list(EDGE_COLUMNS))
    graph = GraphSnapshot(pd.Timestamp("2026-01-01", tz="UTC"), NS, nodes, ingress)
    cfg = ScalerConfig(services={"a": {}, "b": {}})  # the app: the gateway is outside it
    obs, _ = observe.build_observation(observe.ClusterState({}, graph), DynamicGraphSpace(),
                                       cfg)
    assert observe.check_observation(obs, cfg.feature_max) is None
    b = 1  # sorted names: a -> slot 0, b -> slot 1
    assert obs["svc_df"][b, 4] == 0


def test_traffic_without_an_end_to_end_latency_is_refused():
    # requests reach the app, but no source reported how long they took: never a silent 0
    nodes = pd.DataFrame([("a", 1.0, 1.0, 50.0, 10.0, 1.0, 1.0, 5.0)],
                         columns=list(NODE_COLUMNS))
    graph = GraphSnapshot(pd.Timestamp("2026-01-01", tz="UTC"), NS, nodes,
                          pd.DataFrame(columns=list(EDGE_COLUMNS)))
    obs, _ = observe.build_observation(observe.ClusterState({}, graph), DynamicGraphSpace(),
                                       ScalerConfig())
    assert observe.check_observation(obs, ScalerConfig().feature_max) == "non_finite"


@pytest.mark.parametrize("protocol_bc, owned_c, unknown", [
    ("tcp", True, None), ("grpc", True, None), ("tcp", False, None),
    ("grpc", True, "cpu_m"), ("grpc", False, "rps_in"), ("tcp", True, "edge_p95_ms"),
])
def test_compiled_builder_equals_the_numpy_reference(protocol_bc, owned_c, unknown):
    view = tiny_view(protocol_bc, owned_c)
    if unknown is not None:  # a value no source reported
        values = getattr(view, unknown).copy()
        values[1] = np.nan
        view = dataclasses.replace(view, **{unknown: values})
    space = DynamicGraphSpace()
    got, _ = build_observation(view, space, context=CONTEXT)
    ref = observation_from_view(view, view_slots(view, space), backend="numpy",
                                context=CONTEXT)
    for key, value in ref.items():
        np.testing.assert_array_equal(got[key], value, err_msg=key)
