"""Observe alone: a hand-built 3-service cluster state -> the training observation layout."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from gnnrl.baselines.hpa import PodSample
from gnnrl.core.envs.dynamic_graph_space import DynamicGraphSpace
from gnnrl.data.snapshot import EDGE_COLUMNS, NODE_COLUMNS, GraphSnapshot
from gnnrl.scaler.config import ScalerConfig
from gnnrl.scaler.observe import (
    ClusterState,
    ScaleState,
    ServiceState,
    build_observation,
    check_observation,
)

GATEWAY = "istio-ingressgateway.istio-system"  # the app's callers: outside it
CFG = ScalerConfig(services={"a": {"min_replicas": 1, "max_replicas": 3},
                             "b": {"min_replicas": 2, "max_replicas": 8}})


def state(services=("a", "b", "c"), p95=12.0, protocol="grpc") -> ClusterState:
    nodes = pd.DataFrame([(n, 9.0, 9.0, 999.0, 50.0, 1.0, 1.0, 10.0 * (i + 1))
                          for i, n in enumerate(services)], columns=list(NODE_COLUMNS))
    edges = pd.DataFrame([(s, d, protocol, 5.0, p95, 0.01, 1.0)
                          for s, d in (("a", "b"), ("b", "c")) if s in services and d in services]
                         + [(GATEWAY, "a", "http", 10.0, 30.0, 0.0, 1.0)] * ("a" in services),
                         columns=list(EDGE_COLUMNS))
    graph = GraphSnapshot(pd.Timestamp("2026-01-01", tz="UTC"), "ns", nodes, edges)
    owned = {"a": 2, "b": 4}
    svcs = {n: ServiceState(ScaleState(n, r, "1", f"app={n}"),
                            [PodSample(100.0, 140.0, True)] * r, mem_mi=64.0 * r)
            for n, r in owned.items() if n in services}
    return ClusterState(svcs, graph)


def test_observation_has_the_training_layout_and_units():
    space = DynamicGraphSpace()
    obs, changed = build_observation(state(), space, CFG)
    assert changed and obs["num_nodes"] == 3
    a, b, c = (space.node_mapping[n] for n in "abc")
    # a: 2 pods from the scale subresource, 280 m used, HPA formula ceil(280/100/0.7) = 4
    # clamped to max 3; memory from metrics.k8s.io; 10 req/s in; 5 req/s sent to b
    np.testing.assert_allclose(obs["svc_df"][a, :6], [2, 3, 280, 128, 10, 5])
    # c is not owned: values from the graph; its CPU request is unknown, desired = current
    np.testing.assert_allclose(obs["svc_df"][c, :6], [9, 9, 999, 50, 30, 0])
    rows = obs["edge_df"][obs["edge_mask"] == 1]
    assert {(int(r[0]), int(r[1])) for r in rows} == {(a, b), (b, c)}
    inv = obs["invalid_action_mask"].reshape(-1, 15)
    assert inv[a, 1] == 0 and inv[a, 2] == 1  # a: 2 -> +1 ok, +2 > max 3
    assert inv[b, 9] == 0 and inv[b, 10] == 1  # b: 4 -> -2 ok, -3 < min 2
    assert inv[c, 1:].all() and not inv[c, 0]  # not owned: only "nothing"
    assert check_observation(obs, CFG.feature_max) is None


def test_surviving_services_keep_their_slots_when_one_disappears():
    space = DynamicGraphSpace()
    build_observation(state(), space, CFG)
    before = dict(space.node_mapping)
    obs, changed = build_observation(state(services=("a", "c")), space, CFG)
    assert changed and "b" not in space.node_mapping
    assert space.node_mapping["a"] == before["a"] and space.node_mapping["c"] == before["c"]
    assert obs["node_mask"][before["b"]] == 0
    _, again = build_observation(state(services=("a", "c")), space, CFG)
    assert not again


def test_missing_latency_is_refused_except_on_tcp_edges():
    space = DynamicGraphSpace()
    obs, _ = build_observation(state(p95=math.nan), space, CFG)
    assert check_observation(obs, CFG.feature_max) == "non_finite"
    obs, _ = build_observation(state(p95=math.nan, protocol="tcp"), DynamicGraphSpace(), CFG)
    assert check_observation(obs, CFG.feature_max) is None


def test_values_beyond_the_training_range_are_refused():
    obs, _ = build_observation(state(), DynamicGraphSpace(), CFG)
    obs["svc_df"][0, 4] = 1e9
    assert check_observation(obs, CFG.feature_max) == "out_of_range"
