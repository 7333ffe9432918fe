"""Observe: the cluster's state -> the same padded observation the policy was trained on.

`ClusterState` is what one tick read (scales, pods with metrics, the traffic graph);
`build_observation` lays it out with the training code's `DynamicGraphSpace` (stable
service -> slot mapping: survivors keep their slot, so the TGN memory of a slot stays with
its service; `changed` tells the caller to remap the model's memory) as the observation
contract of docs/internals.md says (units in the names); `check_observation` refuses
non-finite or out-of-training-range inputs (S4).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from gnnrl.hpa.calculator import PodSample
from gnnrl.core.envs.dynamic_graph_space import DynamicGraphSpace
from gnnrl.core.envs.moves import NUM_MOVES, valid_moves
from gnnrl.core.envs.observation import hpa_desired
from gnnrl.data.snapshot import GraphSnapshot
from gnnrl.scaler.config import ScalerConfig

@dataclasses.dataclass(frozen=True)
class ScaleState:
    """A Deployment's scale subresource: `replicas` = spec.replicas, and the
    `resource_version` to write against; `selector` is status.selector."""

    name: str
    replicas: int
    resource_version: str
    selector: str


@dataclasses.dataclass
class ServiceState:
    """One Deployment as read this tick.

    Attributes:
        scale: its scale subresource (spec.replicas, resourceVersion, selector).
        pods: its pods (`PodSample`: request_m, usage_m | None, ready).
        mem_mi: memory usage of its pods with a sample (MiB); NaN when none has one.
    """

    scale: ScaleState
    pods: list[PodSample]
    mem_mi: float = math.nan

    @property
    def replicas(self) -> int:
        return self.scale.replicas

    @property
    def ready(self) -> int:
        return sum(1 for p in self.pods if p.ready)

    @property
    def cpu_m(self) -> float:
        """Total CPU usage of the pods with a sample (millicores); NaN when none has one."""
        used = [p.usage_m for p in self.pods if p.usage_m is not None]
        return float(sum(used)) if used else math.nan

    @property
    def cpu_request_m(self) -> float:
        """CPU request of one pod (millicores), NaN when there are no pods."""
        return float(self.pods[0].request_m) if self.pods else math.nan


@dataclasses.dataclass
class ClusterState:
    """Everything one tick read. `services` holds the scaled Deployments that could be read;
    `graph` the traffic graph (None when the graph source failed)."""

    services: dict[str, ServiceState]
    graph: GraphSnapshot | None


def _column(frame: Any, name: str) -> np.ndarray:
    return frame[name].to_numpy(dtype=np.float64, na_value=np.nan)


def _node_table(state: ClusterState) -> dict[str, dict[str, float]]:
    """service -> {replicas, ready, cpu_m, mem_mi, rps_in, request_m} merging the graph and
    the metrics API (the metrics API wins for the services the scaler owns)."""
    table: dict[str, dict[str, float]] = {}
    if state.graph is not None and len(state.graph.nodes):
        nodes = state.graph.nodes
        cols = {key: _column(nodes, col) for key, col in (
            ("replicas", "replicas"), ("ready", "ready_replicas"), ("cpu_m", "cpu_m"),
            ("mem_mi", "mem_mi"), ("rps_in", "rps_in"))}
        for i, service in enumerate(nodes["service"].tolist()):
            row = {key: float(v[i]) for key, v in cols.items()}
            row["request_m"] = math.nan
            table[str(service)] = row
    for name, svc in state.services.items():
        row = table.setdefault(name, {"mem_mi": math.nan, "rps_in": math.nan})
        row["replicas"] = float(svc.replicas)
        row["ready"] = float(svc.ready)
        row["cpu_m"] = svc.cpu_m
        row["request_m"] = svc.cpu_request_m
        if math.isfinite(svc.mem_mi):
            row["mem_mi"] = svc.mem_mi
    return table


def _edge_rows(graph: GraphSnapshot | None, table: Mapping[str, Any]
               ) -> list[tuple[str, str, list[float]]]:
    """(src, dst, [qps, p95_ms, err_rate, mtls]) of the edges between observed services."""
    if graph is None or not len(graph.edges):
        return []
    e = graph.edges
    vals = np.stack([_column(e, c) for c in ("qps", "p95_ms", "err_rate", "mtls")], axis=1)
    # Kiali and Istio report no response time or error rate for TCP edges (only bytes;
    # https://istio.io/latest/docs/reference/config/metrics/ - tcp_* metrics): 0 there, as
    # the simulator's TCP edges look to the model; NaN anywhere else stays NaN (refused).
    tcp = np.array([str(p).lower() == "tcp" for p in e["protocol"].tolist()], dtype=bool)
    vals[:, 1:3] = np.where(tcp[:, None] & np.isnan(vals[:, 1:3]), 0.0, vals[:, 1:3])
    out = []
    for i, (src, dst) in enumerate(zip(e["source"].tolist(), e["target"].tolist(),
                                       strict=True)):
        src, dst = str(src), str(dst)
        if src in table and dst in table and src != dst:
            out.append((src, dst, vals[i].tolist()))
    return out


def build_observation(state: ClusterState, space: DynamicGraphSpace,
                      cfg: ScalerConfig) -> tuple[dict[str, Any], bool]:
    """The padded observation of this tick, and whether the slot mapping changed.

    Uses the training code: `DynamicGraphSpace` for slots and padding and
    `gnnrl.core.envs.observation.hpa_desired` for the desired_replicas feature.
    Node rows: [num_pods, desired_replicas (HPA formula at the target utilisation of the
    CPU request), cpu_m (all pods), mem_mi (all pods), received req/s, sent req/s];
    edge rows: [src slot, dst slot, 1.0, qps, p95 ms, err 0..1, mtls 0..1];
    globals: [total pods, avg cpu_m per pod, avg mem_mi per pod, entry req/s] (the entry
    services are those no observed service calls). Unknown values stay NaN so
    `check_observation` can refuse them.

    Shapes:
        svc_df (max_nodes, 6), edge_df (max_edges, 7), global_feats (4,) float32;
        node_mask (max_nodes,), edge_mask (max_edges,) int8; num_nodes int;
        invalid_action_mask (max_nodes * 15,) int8, 1 = invalid (service-major).

    Raises:
        TooManyServicesError: more services or edges than slots (never truncated, C6).
    """
    table = _node_table(state)
    names = sorted(table)
    delta = space.update_node_mapping(names)
    changed = bool(delta["added"] or delta["removed"])
    pairs = _edge_rows(state.graph, table)
    space.update_edge_mapping((s, d) for s, d, _ in pairs)
    sent: dict[str, float] = {}
    for src, _, vals in pairs:
        sent[src] = sent.get(src, 0.0) + vals[0]
    feats = np.zeros((len(names), 6))
    for k, name in enumerate(names):
        row = table[name]
        lim = cfg.services.get(name)
        lo, hi = (lim.min_replicas, lim.max_replicas) if lim else (1, cfg.feature_max[1])
        if math.isfinite(row["request_m"]):
            desired = hpa_desired(np.array(row["cpu_m"]), np.array(row["ready"]),
                                  np.array(row["replicas"]), np.array(row["request_m"]),
                                  cfg.hpa.target_utilization, np.array(lo), np.array(hi))
        else:  # a service the scaler does not own: its request is unknown, it keeps its size
            desired = row["replicas"]
        feats[k] = [row["replicas"], float(desired), row["cpu_m"], row["mem_mi"],
                    row["rps_in"], sent.get(name, 0.0)]
    svc, node_mask = space.pad_node_features(feats, names=names)
    slot = space.node_mapping
    rows = [[slot[s], slot[d], 1.0, *vals] for s, d, vals in pairs]
    edge_df, edge_mask = space.pad_edge_features(np.asarray(rows, dtype=np.float32)
                                                 .reshape(-1, 7))
    callees = {d for _, d, _ in pairs}
    entry = sum(table[n]["rps_in"] for n in names if n not in callees)
    pods = float(svc[node_mask == 1, 0].sum())
    glob = np.array([pods, svc[:, 2].sum() / max(pods, 1.0), svc[:, 3].sum() / max(pods, 1.0),
                     entry], dtype=np.float32)
    obs = {"svc_df": svc, "edge_df": edge_df, "global_feats": glob, "node_mask": node_mask,
           "edge_mask": edge_mask, "num_nodes": int(node_mask.sum()),
           "invalid_action_mask": invalid_mask(svc[:, 0], node_mask, space.slot_names(), cfg)}
    return obs, changed


def invalid_mask(current: np.ndarray, node_mask: np.ndarray, names: Sequence[str | None],
                 cfg: ScalerConfig) -> np.ndarray:
    """Service-major (max_nodes * 15,) int8 mask, 1 = invalid: moves outside [min, max] of
    scaled services; only "nothing" for services the scaler does not own and for empty
    slots (`gnnrl.core.envs.moves.valid_moves`)."""
    cur = np.nan_to_num(np.asarray(current, dtype=np.float64)).astype(np.int64)
    lo = cur.copy()
    hi = cur.copy()
    for i, name in enumerate(names):
        if name is not None and name in cfg.services:
            lo[i] = cfg.services[name].min_replicas
            hi[i] = cfg.services[name].max_replicas
    valid = valid_moves(cur, lo, hi, np.asarray(node_mask, bool))
    return (~valid).reshape(len(names) * NUM_MOVES).astype(np.int8)


def check_observation(obs: Mapping[str, Any], feature_max: Sequence[float]) -> str | None:
    """None when the model may see `obs`; else "non_finite" or "out_of_range" (S4).

    Checks the active rows of svc_df against [0, feature_max] per column, and every active
    value of svc_df, edge_df and global_feats for NaN/inf.
    """
    mask = np.asarray(obs["node_mask"], bool)
    svc = np.asarray(obs["svc_df"], dtype=np.float64)[mask]
    edges = np.asarray(obs["edge_df"], dtype=np.float64)[np.asarray(obs["edge_mask"], bool)]
    glob = np.asarray(obs["global_feats"], dtype=np.float64)
    if not (np.isfinite(svc).all() and np.isfinite(edges).all() and np.isfinite(glob).all()):
        return "non_finite"
    if (svc < 0).any() or (svc > np.asarray(feature_max)[None, :]).any():
        return "out_of_range"
    return None
