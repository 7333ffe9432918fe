"""Observe: the cluster's state -> the same observation the policy was trained on.

`ClusterState` is what one tick read (scales, pods with metrics, the traffic graph);
`cluster_view` turns it into the env layer's `ClusterView`, and `build_observation` lays
that out with the one observation builder the simulator env trains with
(`gnnrl.core.envs.cluster_view`), on the training code's `DynamicGraphSpace` (stable
service -> slot mapping: survivors keep their slot, so the TGN memory of a slot stays with
its service; `changed` tells the caller to remap the model's memory), as the observation
contract of docs/internals.md ("Observation") says; `check_observation` refuses non-finite
or out-of-training-range inputs (S4).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from gnnrl.core.envs import cluster_view as cv
from gnnrl.core.envs.dynamic_graph_space import DynamicGraphSpace
from gnnrl.core.envs.obs_extras import LoadHistory, ObservationContext
from gnnrl.data.snapshot import GraphSnapshot
from gnnrl.hpa.calculator import PodSample
from gnnrl.kube.client import ScaleState
from gnnrl.scaler.config import ScalerConfig


@dataclasses.dataclass
class ServiceState:
    """One Deployment as read this tick.

    Attributes:
        scale: its scale subresource (spec.replicas, resourceVersion, selector).
        pods: its pods (`PodSample`: request_m, usage_m | None, ready).
        mem_mi: memory usage of its pods with a sample (MiB); NaN when none has one.
        cpu_limit_m: CPU limit of one pod (millicores, summed over its containers); 0 = no
            limit (a container without one); NaN = not read (no pod).
        startup_s: median seconds from pod creation to Ready over its Ready pods; None =
            none measured (the config's `startup_s` of the service, or `startup_s_default`,
            stands in).
    """

    scale: ScaleState
    pods: list[PodSample]
    mem_mi: float = math.nan
    cpu_limit_m: float = math.nan
    startup_s: float | None = None

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
        """CPU request of one pod (millicores), NaN when there are no pods or a container
        has no CPU request."""
        request = self.pods[0].request_m if self.pods else None
        return math.nan if request is None else float(request)


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
    the per-pod reads: for the services read this tick, spec.replicas (the count moves
    apply to), the ready pods, the pods' CPU request, and CPU / memory summed over their
    metrics.k8s.io samples where any pod has one (else the graph's, which comes from the
    same metrics API); the graph gives the rest (`GraphSnapshot`: Kiali or Prometheus
    merged with the Kubernetes source). A service the traffic source did not list had no
    traffic in its window (Kiali and Prometheus know a workload only from its
    telemetry): it received 0 req/s, once the traffic source answered for any service."""
    table: dict[str, dict[str, float]] = {}
    if state.graph is not None and len(state.graph.nodes):
        nodes = state.graph.nodes
        cols = {key: _column(nodes, col) for key, col in (
            ("replicas", "replicas"), ("ready", "ready_replicas"), ("cpu_m", "cpu_m"),
            ("mem_mi", "mem_mi"), ("rps_in", "rps_in"))}
        if np.isfinite(cols["rps_in"]).any():
            cols["rps_in"] = np.where(np.isnan(cols["rps_in"]), 0.0, cols["rps_in"])
        for i, service in enumerate(nodes["service"].tolist()):
            row = {key: float(v[i]) for key, v in cols.items()}
            row["request_m"] = math.nan
            table[str(service)] = row
    for name, svc in state.services.items():
        row = table.setdefault(name, {"cpu_m": math.nan, "mem_mi": math.nan,
                                      "rps_in": math.nan})
        row["replicas"] = float(svc.replicas)
        row["ready"] = float(svc.ready)
        row["request_m"] = svc.cpu_request_m
        for key, value in (("cpu_m", svc.cpu_m), ("mem_mi", svc.mem_mi)):
            if math.isfinite(value):
                row[key] = value
    return table


def _startup_s(name: str, state: ClusterState, cfg: ScalerConfig) -> float:
    """The service's start-up time: measured on its Ready pods this tick, else its
    configured `startup_s`, else `cfg.startup_s_default`."""
    svc = state.services.get(name)
    if svc is not None and svc.startup_s is not None:
        return svc.startup_s
    lim = cfg.services.get(name)
    return lim.startup_s if lim is not None and lim.startup_s is not None \
        else cfg.startup_s_default


def cluster_view(state: ClusterState, cfg: ScalerConfig) -> cv.ClusterView:
    """The `ClusterView` of one tick: every service of the graph or of the reads (sorted by
    name: new services take slots in that order), owned (with the configured bounds) when
    `cfg.services` names it; the graph's edges between them (`merge_edge_rows`: TCP-level
    edges carry no request numbers). Unknown values stay NaN.

    Schema v2 fields: the CPU limit per pod of the services read (0 = no limit; NaN for
    a service only the graph shows); the start-up time measured on the Ready pods, or the
    configured fallback (`_startup_s`); the unserved shares and the end-to-end p95 from
    every graph edge row, calls from outside the scaled services (`cfg.services`: the
    ingress gateway, ``unknown``, a load generator) included (`edge_outcomes`); NaN
    without a graph.
    """
    table = _node_table(state)
    names = tuple(sorted(table))
    col = {key: np.array([table[n][key] for n in names], dtype=np.float64)
           for key in ("replicas", "ready", "cpu_m", "mem_mi", "rps_in", "request_m")}
    lims = [cfg.services.get(n) for n in names]
    lo = np.array([lim.min_replicas if lim else math.nan for lim in lims], dtype=np.float64)
    hi = np.array([lim.max_replicas if lim else math.nan for lim in lims], dtype=np.float64)
    limit = np.array([state.services[n].cpu_limit_m if n in state.services else math.nan
                      for n in names], dtype=np.float64)
    startup = np.array([_startup_s(n, state, cfg) for n in names], dtype=np.float64)
    graph = state.graph
    unserved, e2e = np.full(len(names), math.nan), math.nan
    if graph is not None:
        e = graph.edges
        rows = ([str(x) for x in e["source"].tolist()], [str(x) for x in e["target"].tolist()],
                [str(x) for x in e["protocol"].tolist()],
                np.stack([_column(e, c) for c in ("qps", "p95_ms", "err_rate", "mtls")],
                         axis=1) if len(e) else np.zeros((0, 4)))
        src, dst, vals, reqs = cv.merge_edge_rows(*rows, names)
        unserved, e2e = cv.edge_outcomes(*rows, names, cfg.services)
    else:
        src = dst = np.zeros(0, dtype=np.int64)
        vals, reqs = np.zeros((0, 4)), np.zeros(0, dtype=bool)
    return cv.ClusterView(names, col["replicas"], col["ready"], col["cpu_m"], col["mem_mi"],
                          col["rps_in"], col["request_m"], lo, hi, src, dst, vals[:, 0],
                          vals[:, 1], vals[:, 2], vals[:, 3], reqs, cpu_limit_m=limit,
                          startup_s=startup, unserved=unserved, e2e_p95_ms=e2e).check()


def build_observation(state: ClusterState, space: DynamicGraphSpace, cfg: ScalerConfig,
                      time_of_day_s: float = 0.0, history: LoadHistory | None = None
                      ) -> tuple[dict[str, Any], bool]:
    """The padded observation of this tick, and whether the slot mapping changed.

    The one builder of training (`gnnrl.core.envs.cluster_view.build_observation`) on
    `cluster_view(state, cfg)`, at the rule's target utilisation for the desired_replicas
    feature. Services the scaler does not own show their current count as desired and
    allow only "nothing". Unknown values stay NaN so `check_observation` can refuse them.

    The context: the config's SLO and interval, `time_of_day_s` (seconds after 00:00 UTC
    of the tick) and the default dial (the serving policy writes its own). `history` is
    the scaler's load history (the trend columns), read and then given this tick.

    Shapes (schema v2, `gnnrl.contracts.observation`):
        svc_df (max_nodes, 18), edge_df (max_edges, 7), global_feats (10,) float32;
        node_mask (max_nodes,), edge_mask (max_edges,) int8; num_nodes int;
        invalid_action_mask (max_nodes * 15,) int8, 1 = invalid (service-major).

    Raises:
        TooManyServicesError: more services or edges than slots (never truncated, C6).
    """
    target = cfg.hpa.target_utilization
    assert target is not None  # ScalerConfig refuses an HPA config without a CPU target
    context = ObservationContext(cfg.slo_p95_ms, cfg.interval_s, time_of_day_s=time_of_day_s)
    return cv.build_observation(cluster_view(state, cfg), space, target, context=context,
                                history=history)


def check_observation(obs: Mapping[str, Any], feature_max: Sequence[float]) -> str | None:
    """None when the model may see `obs`; else "non_finite" or "out_of_range" (S4).

    Checks the active rows of svc_df against [0, feature_max] per column (the first
    ``len(feature_max)`` columns; the others must be >= 0), and every active value of
    svc_df, edge_df and global_feats for NaN/inf.
    """
    mask = np.asarray(obs["node_mask"], bool)
    svc = np.asarray(obs["svc_df"], dtype=np.float64)[mask]
    edges = np.asarray(obs["edge_df"], dtype=np.float64)[np.asarray(obs["edge_mask"], bool)]
    glob = np.asarray(obs["global_feats"], dtype=np.float64)
    if not (np.isfinite(svc).all() and np.isfinite(edges).all() and np.isfinite(glob).all()):
        return "non_finite"
    if (svc < 0).any() or (svc[:, :len(feature_max)] > np.asarray(feature_max)[None, :]).any():
        return "out_of_range"
    return None
