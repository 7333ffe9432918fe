"""The one observation builder: `ClusterView` (one moment of a cluster) -> the policy's
observation.

Every path that feeds the policy builds its observation here, from the same
snapshot-shaped state, so training and serving cannot drift apart:

* the simulator env (`OnlineBoutique`): `view_from_metrics` of the step's (lagged) metrics;
* the env's real-cluster backend (`OnlineBoutique(k8s=True)`): `view_from_snapshot`;
* the in-cluster scaler (`gnnrl.scaler.observe.build_observation`): its own adapter from
  what one tick read (scale subresources, pods and their metrics, the Kiali/Prometheus graph).

The batched training path (`gnnrl.core.envs.observation.build_observations`, N copies in
one compiled kernel) keeps its kernel for speed; it takes the same observable inputs
(`observable_rates`, `observation.observable_inputs`) and is tested equal to this builder
(tests/test_env_observation_parity.py).

What a real cluster can show, and therefore what every path shows (docs/internals.md,
"Observation", has the sources and the reasons):

* request-level numbers (req/s, p95, error rate) exist only for HTTP and gRPC traffic:
  Istio proxies anything else as opaque TCP and records bytes, not requests
  (https://istio.io/latest/docs/ops/configuration/traffic-management/protocol-selection/);
  so a TCP (or Thrift, which Istio does not parse) edge keeps its place and mTLS share but
  shows 0 req/s, 0 ms and 0 errors, and a service's received/sent req/s count HTTP/gRPC
  requests only;
* the entry load (global_feats[3]) is what the observed services receive from outside
  them (ingress gateway, clients outside the mesh): each service's received req/s minus
  what its observed callers send it, summed;
* an edge is a call that carried traffic in the metrics window (Kiali and Prometheus
  know an edge only from its telemetry; `view_from_metrics` lists those);
* desired_replicas (the HPA formula) needs the CPU request and the bounds: a service
  without bounds is "not owned" (the scaler does not scale it) and shows its current
  count, with only "nothing" valid in the action mask;
* a value no source reported stays NaN (never a silent 0): the scaler refuses such an
  observation (`gnnrl.scaler.observe.check_observation`), the real-cluster env fills it
  (`fill_unknown`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Sequence
from typing import Any

import numpy as np

from gnnrl.contracts.observation import GLOBAL_DIM_RAW, NODE_DIM_RAW, TREND_LAGS, V1_NODE_DIM
from gnnrl.core.envs.dynamic_graph_space import DynamicGraphSpace
from gnnrl.core.envs.moves import INVALID_TABLE, NUM_MOVES, ONLY_NOTHING, valid_row
from gnnrl.core.envs.obs_extras import (
    LoadHistory,
    ObservationContext,
    nan_to_zero,
    node_tail,
    slo_share,
)
from gnnrl.core.envs.obs_kernel import (
    metrics_observation_kernel,
    metrics_view_kernel,
    unserved_share_kernel,
    unserved_terms_kernel,
    view_kernel,
)

#: Protocols that carry request-level telemetry in an Istio mesh (Kiali's ``http`` and
#: ``grpc`` rates; ``istio_requests_total``). Everything else is TCP-level.
REQUEST_PROTOCOLS = frozenset({"http", "grpc"})


def is_request_protocol(protocol: Any) -> bool:
    """True for a protocol with request-level telemetry (`REQUEST_PROTOCOLS`)."""
    return str(protocol).lower() in REQUEST_PROTOCOLS


def hpa_desired(cpu_m: np.ndarray, ready: np.ndarray, replicas: np.ndarray,
                cpu_request_m: np.ndarray, target: float, min_r: np.ndarray,
                max_r: np.ndarray) -> np.ndarray:
    """HPA's core formula as a feature: ceil(ready * utilisation / target), clamped.

    utilisation = cpu / (ready * request). With no ready pod, the current count.
    Shapes: (..., S) -> (..., S) float.
    """
    util_sum = cpu_m / np.maximum(cpu_request_m, 1e-9)  # = ready * utilisation
    desired = np.ceil(util_sum / target - 1e-9)
    desired = np.where(ready > 0, desired, replicas)
    np.maximum(desired, min_r, out=desired)  # = np.clip(desired, min_r, max_r)
    return np.minimum(desired, max_r, out=desired)


@dataclasses.dataclass(frozen=True)
class ClusterView:
    """What a cluster shows of one moment: its services and the traffic graph between them.

    Per service (shapes (S,), float64; NaN = no source reported it):
        services: names, tuple of S strings (the order decides the slots of new services).
        replicas: pods that exist, starting ones included (the count moves apply to).
        ready: pods serving.
        cpu_m: CPU usage of all its pods, millicores. mem_mi: memory of all pods, MiB.
        rps_in: HTTP/gRPC requests received, req/s (from any caller, outside ones too).
        cpu_request_m: CPU request of one pod, millicores.
        min_replicas, max_replicas: the bounds of a service the policy scales; NaN for a
            service it does not own.
    Per edge (shapes (E,); one row per (src, dst) pair, src != dst):
        edge_src, edge_dst: int64 indices into `services`.
        edge_qps (req/s), edge_p95_ms (ms), edge_err (0..1), edge_mtls (0..1): float64.
        edge_requests: bool, the edge's protocol carries request-level telemetry
            (`is_request_protocol`); qps, p95 and errors of other edges are not observable.
    Schema v2 additions (None = not read: every service shows the default named below):
        cpu_limit_m: (S,) CPU limit of one pod, millicores; 0 = the pod has no limit
            (default: 0).
        startup_s: (S,) seconds from pod creation to Ready (the spec's, or measured in the
            cluster); NaN = unknown (default: NaN).
        unserved: (S,) share 0..1 of the requests into the service that failed in the
            interval, as the mesh counts them (`edge_outcomes`; default: 0).
        e2e_p95_ms: end-to-end p95 at the entry, ms; NaN = unknown.
    """

    services: tuple[str, ...]
    replicas: np.ndarray
    ready: np.ndarray
    cpu_m: np.ndarray
    mem_mi: np.ndarray
    rps_in: np.ndarray
    cpu_request_m: np.ndarray
    min_replicas: np.ndarray
    max_replicas: np.ndarray
    edge_src: np.ndarray
    edge_dst: np.ndarray
    edge_qps: np.ndarray
    edge_p95_ms: np.ndarray
    edge_err: np.ndarray
    edge_mtls: np.ndarray
    edge_requests: np.ndarray
    cpu_limit_m: np.ndarray | None = None
    startup_s: np.ndarray | None = None
    unserved: np.ndarray | None = None
    e2e_p95_ms: float = float("nan")

    def check(self) -> ClusterView:
        """Raise ValueError naming the field whose shape or contents break the contract
        (the adapters call it; the simulator's per-step path builds valid views)."""
        S, E = len(self.services), len(self.edge_src)
        if len(set(self.services)) != S:
            raise ValueError("services: duplicate names")
        for name in ("replicas", "ready", "cpu_m", "mem_mi", "rps_in", "cpu_request_m",
                     "min_replicas", "max_replicas", "cpu_limit_m", "startup_s", "unserved"):
            if getattr(self, name) is None:
                continue
            if np.shape(getattr(self, name)) != (S,):
                raise ValueError(f"{name}: expected shape ({S},), got "
                                 f"{np.shape(getattr(self, name))}")
        for name in ("edge_dst", "edge_qps", "edge_p95_ms", "edge_err", "edge_mtls",
                     "edge_requests"):
            if np.shape(getattr(self, name)) != (E,):
                raise ValueError(f"{name}: expected shape ({E},), got "
                                 f"{np.shape(getattr(self, name))}")
        if E and (min(self.edge_src.min(), self.edge_dst.min()) < 0
                  or max(self.edge_src.max(), self.edge_dst.max()) >= S):
            raise ValueError("edge_src/edge_dst: an index outside the services")
        if (self.edge_src == self.edge_dst).any():
            raise ValueError("edge_src/edge_dst: a self-loop")
        if len({(int(s), int(d)) for s, d in zip(self.edge_src, self.edge_dst,
                                                  strict=True)}) != E:
            raise ValueError("edge_src/edge_dst: a (src, dst) pair twice")
        return self


@dataclasses.dataclass(frozen=True)
class ViewSlots:
    """Where a view's services and edges go in the padded observation.

    Attributes:
        node_slot: (S,) int64 slot of each service, -1 = not observed (overflowed).
        edge_slot: (E,) int64 slot of each edge, -1 = not observed (an endpoint not
            observed, or no edge slot left).
        max_nodes, max_edges: padded sizes.
    """

    node_slot: np.ndarray
    edge_slot: np.ndarray
    max_nodes: int
    max_edges: int


def view_slots(view: ClusterView | SimViewIndex, space: DynamicGraphSpace) -> ViewSlots:
    """The slots of `view` (or of the views a `SimViewIndex` makes) under `space`'s current
    mapping (the mapping is not changed)."""
    names = view.services
    nodes = space.node_mapping
    node_slot = np.fromiter((nodes.get(n, -1) for n in names), dtype=np.int64,
                            count=len(names))
    edges = space.edge_mapping
    edge_slot = np.fromiter(
        (edges.get((names[s], names[d]), -1) if node_slot[s] >= 0 and node_slot[d] >= 0
         else -1 for s, d in zip(view.edge_src.tolist(), view.edge_dst.tolist(), strict=True)),
        dtype=np.int64, count=len(view.edge_src))
    for arr in (node_slot, edge_slot):
        arr.flags.writeable = False
    return ViewSlots(node_slot, edge_slot, space.max_nodes, space.max_edges)


def map_view(view: ClusterView | SimViewIndex, space: DynamicGraphSpace
             ) -> tuple[ViewSlots, bool]:
    """Update `space` to hold exactly the view's services (survivors keep their slots, new
    ones take the lowest free slots in view order) and give its edges slots.

    Returns:
        (the view's slots, whether a service was added or removed).

    Raises:
        TooManyServicesError: more services or edges than slots (``overflow="error"``).
    """
    delta = space.update_node_mapping(view.services)
    names = view.services
    space.update_edge_mapping((names[s], names[d]) for s, d in
                              zip(view.edge_src.tolist(), view.edge_dst.tolist(), strict=True))
    return view_slots(view, space), bool(delta["added"] or delta["removed"])


def build_observation(view: ClusterView, space: DynamicGraphSpace, hpa_target: float = 0.7,
                      slots: ViewSlots | None = None, *, context: ObservationContext,
                      history: LoadHistory | None = None) -> tuple[dict[str, Any], bool]:
    """The policy's observation of `view`, and whether the slot mapping changed.

    Args:
        view: the cluster's state.
        space: the slot mapping; updated to the view's services (`map_view`) unless
            `slots` is given.
        hpa_target: CPU utilisation target of the desired_replicas feature (fraction of
            the request).
        slots: the view's slots when the caller keeps them (they must come from
            `view_slots` under the current mapping); then `space` is not touched.
        context: the SLO, control interval, dial and time of day.
        history: the observer's load history (read, then this moment recorded); None =
            no past (every trend 1).

    Returns:
        (observation, changed); see `observation_from_view`.
    """
    changed = False
    if slots is None:
        slots, changed = map_view(view, space)
    return observation_from_view(view, slots, hpa_target, context=context,
                                 history=history), changed


def _sum(values: np.ndarray) -> float:
    return float(np.add.reduce(values)) if len(values) else 0.0


def observation_from_view(view: ClusterView, slots: ViewSlots, hpa_target: float = 0.7,
                          backend: str = "numba", *, context: ObservationContext,
                          history: LoadHistory | None = None) -> dict[str, Any]:
    """Lay `view` out as the observation (schema v2, `gnnrl.contracts.observation`).

    The seed's columns (v1, below) come first, then the v2 columns of `widen_view`.

    Node rows: [num_pods, desired_replicas (HPA formula at `hpa_target` of the request;
    the current count for a service without bounds or request), cpu_m, mem_mi, received
    req/s, sent req/s (request-level qps of its observed outgoing edges)]. Edge rows: [src
    slot, dst slot, 1, qps, p95 ms, err 0..1, mtls 0..1] (qps, p95, err 0 on TCP-level
    edges). Globals: [total pods, cpu_m per pod, mem_mi per pod, entry req/s (received
    from outside the observed services)].

    ``backend="numba"`` runs one compiled pass for all the columns
    (`obs_kernel.view_kernel`); ``"numpy"`` the vectorised reference (the seed's columns,
    then `widen_view`); the results are equal bit for bit.

    Shapes:
        svc_df (max_nodes, NODE_DIM_RAW), edge_df (max_edges, 7), global_feats
        (GLOBAL_DIM_RAW,) float32; node_mask (max_nodes,), edge_mask (max_edges,) int8,
        1 = real; num_nodes int; invalid_action_mask (max_nodes * 15,) int8, 1 = INVALID,
        service-major.
    """
    if backend == "numpy":
        obs = _observation_from_view_numpy(view, slots, hpa_target)
        return widen_view(obs, view, slots, context, history)
    return _observation_from_view_kernel(view, slots, hpa_target, context, history)


def widen_view(obs: dict[str, Any], view: ClusterView, slots: ViewSlots,
               context: ObservationContext, history: LoadHistory | None) -> dict[str, Any]:
    """`obs` (the v1 columns of `view`) with the v2 columns appended
    (`gnnrl.core.envs.obs_extras`); unread v2 fields show their documented defaults. The
    numpy reference of what `obs_kernel.view_kernel` writes in its one pass."""
    S = len(view.services)
    on = np.flatnonzero(slots.node_slot >= 0)
    rows = slots.node_slot[on]
    rep = view.replicas
    owned = ~(np.isnan(view.min_replicas) | np.isnan(view.max_replicas))
    lo = np.where(owned, view.min_replicas, rep)
    hi = np.where(owned, view.max_replicas, rep)
    nan = np.full(S, np.nan)
    startup = nan if view.startup_s is None else view.startup_s
    limit = np.zeros(S) if view.cpu_limit_m is None else nan_to_zero(view.cpu_limit_m)
    unserved = np.zeros(S) if view.unserved is None else nan_to_zero(view.unserved)
    eon = slots.edge_slot >= 0  # the edges the observation shows
    share = slo_share(S, view.edge_dst[eon], view.edge_p95_ms[eon], view.edge_requests[eon],
                      view.rps_in, view.e2e_p95_ms, context.slo_ms)
    names = [view.services[k] for k in on]
    if history is None:
        trends = np.ones((len(on), len(TREND_LAGS)))
    else:
        trends = history.trends(names, view.rps_in[on])
    tail = node_tail(rep[on], view.ready[on], startup[on], nan_to_zero(view.cpu_request_m[on]),
                     limit[on], lo[on], hi[on], unserved[on], share[on], trends)
    return widen(obs, rows, tail, context.globals_tail(view.e2e_p95_ms))


def widen(obs: dict[str, Any], node_rows: np.ndarray, node_tail_rows: np.ndarray,
          globals_tail: np.ndarray) -> dict[str, Any]:
    """The v1 observation `obs` (with or without a leading copy axis) widened to v2:
    `node_tail_rows` (K, 12) scattered to the flat rows `node_rows` (K,) of svc_df, and
    `globals_tail` ((6,) or (N, 6)) appended to global_feats; float32, in place of the
    v1 arrays."""
    svc = obs["svc_df"]
    wide = np.zeros((*svc.shape[:-1], NODE_DIM_RAW), dtype=np.float32)
    wide[..., :V1_NODE_DIM] = svc
    wide.reshape(-1, NODE_DIM_RAW)[node_rows, V1_NODE_DIM:] = node_tail_rows
    obs["svc_df"] = wide
    obs["global_feats"] = np.concatenate(
        [obs["global_feats"], np.asarray(globals_tail, dtype=np.float32)], axis=-1)
    return obs


#: stand-ins of an absent load history (`view_kernel` reads no past, records nothing;
#: writable, as a history's arrays are: one compiled specialisation serves both)
_NO_RING = np.full((1, 0), np.nan)
_NO_COLUMNS = np.zeros(0, dtype=np.int64)
_NO_LAGS = np.array(TREND_LAGS, dtype=np.int64)
#: the unserved share's products not made yet (`metrics_observation_kernel`)
_NO_PRODUCT = np.zeros((1, 0))


def _or_full(values: np.ndarray | None, n: int, fill: float) -> np.ndarray:
    return np.full(n, fill) if values is None else values


def _outputs(slots: ViewSlots) -> tuple[np.ndarray, ...]:
    """Fresh observation arrays for the compiled builders (a caller may keep them): svc_df,
    node_mask, edge_df, edge_mask (zeroed), global_feats, invalid (overwritten)."""
    n, e = slots.max_nodes, slots.max_edges
    return (np.zeros((n, NODE_DIM_RAW), dtype=np.float32), np.zeros(n, dtype=np.int8),
            np.zeros((e, 7), dtype=np.float32), np.zeros(e, dtype=np.int8),
            np.empty(GLOBAL_DIM_RAW, dtype=np.float32), np.empty((n, NUM_MOVES), dtype=np.int8))


def _history_args(history: LoadHistory | None, services: tuple[str, ...]
                  ) -> tuple[np.ndarray, np.ndarray, int, np.ndarray]:
    """(ring, columns, step, lags) of `history` for the compiled builders; step -1 = none."""
    if history is None:
        return _NO_RING, _NO_COLUMNS, -1, _NO_LAGS
    cols = history.columns(services)  # first: it may grow the ring
    return history.ring, cols, history.t, history.lag_array


def _observation(outputs: tuple[np.ndarray, ...], num: int) -> dict[str, Any]:
    svc, node_mask, edge_df, edge_mask, global_feats, invalid = outputs
    return {"svc_df": svc, "edge_df": edge_df, "global_feats": global_feats,
            "node_mask": node_mask, "edge_mask": edge_mask, "num_nodes": int(num),
            "invalid_action_mask": invalid.reshape(-1)}


def _observation_from_view_kernel(view: ClusterView, slots: ViewSlots, hpa_target: float,
                                  context: ObservationContext, history: LoadHistory | None
                                  ) -> dict[str, Any]:
    """`observation_from_view` in one compiled pass (`obs_kernel.view_kernel`): the v2
    defaults of unread fields filled in, the load history read and advanced."""
    S = len(view.services)
    out = _outputs(slots)
    svc_df, node_mask, edge_df, edge_mask, global_feats, invalid = out
    ring, cols, t, lags = _history_args(history, view.services)
    num = view_kernel(
        view.replicas, view.ready, view.cpu_m, view.mem_mi, view.rps_in, view.cpu_request_m,
        view.min_replicas, view.max_replicas, view.edge_src, view.edge_dst, view.edge_qps,
        view.edge_p95_ms, view.edge_err, view.edge_mtls, view.edge_requests, slots.node_slot,
        slots.edge_slot, float(hpa_target), INVALID_TABLE, ONLY_NOTHING, np.empty((6, S)),
        svc_df, node_mask, edge_df, edge_mask, global_feats, invalid,
        _or_full(view.startup_s, S, np.nan), _or_full(view.cpu_limit_m, S, 0.0),
        _or_full(view.unserved, S, 0.0), float(view.e2e_p95_ms), float(context.slo_ms),
        float(context.interval_s), float(context.dial), float(context.time_of_day_s), ring,
        cols, t, lags)
    if history is not None:
        history.t += 1
    return _observation(out, num)


def _observation_from_view_numpy(view: ClusterView, slots: ViewSlots, hpa_target: float
                                 ) -> dict[str, Any]:
    """`observation_from_view`, the vectorised numpy reference."""
    n, e = slots.max_nodes, slots.max_edges
    S = len(view.services)
    on = slots.node_slot >= 0
    node_idx = np.flatnonzero(on)
    node_rows = slots.node_slot[node_idx]
    eon = np.flatnonzero(slots.edge_slot >= 0)
    src, dst = view.edge_src[eon], view.edge_dst[eon]
    req = view.edge_requests[eon]
    qps = np.where(req, view.edge_qps[eon], 0.0)
    p95 = np.where(req, view.edge_p95_ms[eon], 0.0)
    err = np.where(req, view.edge_err[eon], 0.0)

    rep = view.replicas
    owned = ~(np.isnan(view.min_replicas) | np.isnan(view.max_replicas))
    lo = np.where(owned, view.min_replicas, rep)
    hi = np.where(owned, view.max_replicas, rep)
    computable = owned & ~np.isnan(view.cpu_request_m)
    desired = np.where(computable,
                       hpa_desired(view.cpu_m, view.ready, rep,
                                   np.where(computable, view.cpu_request_m, 1.0),
                                   hpa_target, lo, hi), rep)
    sent = np.bincount(src, weights=qps, minlength=S) if len(eon) else np.zeros(S)
    got = np.bincount(dst, weights=qps, minlength=S) if len(eon) else np.zeros(S)

    feats = np.stack([rep, desired, view.cpu_m, view.mem_mi, view.rps_in, sent], axis=-1)
    svc = np.zeros((n, 6), dtype=np.float32)
    svc[node_rows] = feats[node_idx]
    node_mask = np.zeros(n, dtype=np.int8)
    node_mask[node_rows] = 1

    edge_df = np.zeros((e, 7), dtype=np.float32)
    edge_rows = slots.edge_slot[eon]
    edge_df[edge_rows] = np.stack([slots.node_slot[src], slots.node_slot[dst],
                                   np.ones(len(eon)), qps, p95, err,
                                   view.edge_mtls[eon]], axis=-1)
    edge_mask = np.zeros(e, dtype=np.int8)
    edge_mask[edge_rows] = 1

    pods = _sum(rep[node_idx])
    per_pod = max(pods, 1.0)
    # entry load: what the observed services receive from outside them (clamped at 0:
    # a rate window can see a caller's requests before the callee's)
    entry = _sum(np.maximum(view.rps_in[node_idx] - got[node_idx], 0.0))
    global_feats = np.array([pods, _sum(view.cpu_m[node_idx]) / per_pod,
                             _sum(view.mem_mi[node_idx]) / per_pod, entry], dtype=np.float32)

    rows = np.full(n, ONLY_NOTHING, dtype=np.int64)
    cur = np.nan_to_num(rep[node_idx]).astype(np.int64)
    rows[node_rows] = valid_row(cur, np.nan_to_num(lo[node_idx]).astype(np.int64),
                                np.nan_to_num(hi[node_idx]).astype(np.int64))
    return {
        "svc_df": svc, "edge_df": edge_df, "global_feats": global_feats,
        "node_mask": node_mask, "edge_mask": edge_mask, "num_nodes": len(node_idx),
        "invalid_action_mask": INVALID_TABLE.take(rows, axis=0).reshape(n * NUM_MOVES),
    }


def fill_unknown(obs: dict[str, Any]) -> dict[str, Any]:
    """`obs` with every NaN (a value no source reported) replaced by 0, in place: the
    real-cluster env's choice (a Gymnasium env must return a point of its observation
    space); the scaler refuses such an observation instead."""
    for key in ("svc_df", "edge_df", "global_feats"):
        np.nan_to_num(obs[key], copy=False, nan=0.0)
    return obs


# ---------------------------------------------------------------------------- simulator
@dataclasses.dataclass(frozen=True)
class SimObservables:
    """What of a `BatchedSim`'s metrics a cluster can observe: per-sim constants.

    Attributes:
        edge_requests: (E,) bool, the call's protocol has request-level telemetry.
        tcp_only: (S,) bool: every call into the service is TCP-level (and it is not the
            entry): Istio counts none of its requests.
        any_tcp: some call is TCP-level.
        src_inc, dst_inc: (E, S) float 0/1: edge e starts / ends at service s.
        edge_dst: (E,) int64 callee of each edge.
        entry: the entry service's column (its callers are outside the mesh).
        tcp_into: (service, its TCP-level incoming edges) for the other services called
            over TCP (also over HTTP/gRPC, or the entry).
    """

    edge_requests: np.ndarray
    tcp_only: np.ndarray
    any_tcp: bool
    src_inc: np.ndarray
    dst_inc: np.ndarray
    edge_dst: np.ndarray
    tcp_into: tuple[tuple[int, tuple[int, ...]], ...]
    entry: int


def sim_observables(sim) -> SimObservables:
    """`SimObservables` of `sim` (a `gnnrl.sim.BatchedSim`)."""
    S, E = sim.num_services, len(sim.edges)
    req = np.array([is_request_protocol(p) for p in sim.edge_protocols], dtype=bool)
    has_tcp_in = np.zeros(S, dtype=bool)
    has_tcp_in[sim.edge_dst[~req]] = True
    has_req_in = np.zeros(S, dtype=bool)
    has_req_in[sim.edge_dst[req]] = True
    tcp_only = has_tcp_in & ~has_req_in
    tcp_only[sim.index[sim.app.entry]] = False
    src_inc = np.zeros((E, S))
    dst_inc = np.zeros((E, S))
    src_inc[np.arange(E), sim.edge_src] = 1.0
    dst_inc[np.arange(E), sim.edge_dst] = 1.0
    for arr in (req, tcp_only, src_inc, dst_inc):
        arr.flags.writeable = False
    mixed = np.flatnonzero(has_tcp_in & ~tcp_only)
    tcp_into = tuple((int(s), tuple(int(e) for e in np.flatnonzero(~req & (sim.edge_dst == s))))
                     for s in mixed)
    return SimObservables(req, tcp_only, bool((~req).any()), src_inc, dst_inc,
                          np.ascontiguousarray(sim.edge_dst, dtype=np.int64), tcp_into,
                          int(sim.index[sim.app.entry]))


def observable_rates(m, obs: SimObservables) -> tuple[np.ndarray, np.ndarray, np.ndarray,
                                                       np.ndarray]:
    """The request-level rates of `m` (a `StepMetrics`), as Istio would count them.

    Returns (rps_in (N, S), edge_qps, edge_p95_ms, edge_err (N, E)): TCP-level edges show
    0 req/s, 0 ms and 0 errors; a service's received req/s leaves out what came over
    TCP-level edges (exactly 0 for a service called over TCP only). Without TCP-level
    edges, `m`'s own arrays.
    """
    if not obs.any_tcp:
        return m.rps_in, m.edge_qps, m.edge_p95_ms, m.edge_err
    req = obs.edge_requests
    rps = m.rps_in.copy()
    received = np.zeros(m.rps_in.shape[0])
    for s, edges in obs.tcp_into:  # req/s received over TCP, summed in edge order
        received[:] = 0.0
        for e in edges:
            received += m.edge_qps[:, e]
        rps[:, s] -= received
    rps[:, obs.tcp_only] = 0.0
    np.maximum(rps, 0.0, out=rps)
    return rps, m.edge_qps * req, m.edge_p95_ms * req, m.edge_err * req


@dataclasses.dataclass(frozen=True)
class SimViewIndex:
    """Which of a simulator's services and edges a view holds (its active ones), and the
    per-service constants; rebuilt when the topology changes (`sim_view_index`)."""

    services: tuple[str, ...]
    columns: np.ndarray  # (K,) sim columns of the services, in `services` order
    edges: np.ndarray  # (M,) sim edge indices between active services
    edge_src: np.ndarray  # (M,) indices into `services`
    edge_dst: np.ndarray
    cpu_request_m: np.ndarray  # (K,)
    min_replicas: np.ndarray  # (K,) float
    max_replicas: np.ndarray
    edge_requests: np.ndarray  # (M,) bool
    cpu_limit_m: np.ndarray  # (K,)
    startup_s: np.ndarray  # (K,) the spec's start-up time
    edge_shown: np.ndarray  # (1, E_sim) float 0/1: `edges` among all the sim's edges


def sim_unserved(edge_qps: np.ndarray, edge_err: np.ndarray, rps_in: np.ndarray,
                 e2e_err_rate: np.ndarray, observables: SimObservables,
                 edge_shown: np.ndarray) -> np.ndarray:
    """(N, S) the unserved share a mesh shows for the simulator's copies: what
    `edge_outcomes` computes from the graph a cluster would answer (the qps-weighted error
    share of the request-level calls into each service that carried traffic, and for the
    entry the ingress gateway's call: the entry's received req/s with the end-to-end
    error share). Queued requests are invisible to Istio until they complete or time out,
    so a backlog shows here only as errors.

    Args:
        edge_qps, edge_err: (N, E) of the metrics the observation shows (possibly the
            lagged view: its rates are what the graph shows); rps_in (N, S);
            e2e_err_rate (N,).
        edge_shown: (N, E) float 0/1 or bool, the edges the graph lists (both ends
            observed); an edge without traffic is left out here.
    """
    qps = edge_qps * (observables.edge_requests & (edge_qps > 0)) * edge_shown
    failed = (qps * np.clip(nan_to_zero(edge_err), 0.0, 1.0)) @ observables.dst_inc
    offered = qps @ observables.dst_inc
    e = observables.entry
    ext = np.maximum(nan_to_zero(rps_in[:, e]), 0.0)
    failed[:, e] += ext * np.clip(nan_to_zero(e2e_err_rate), 0.0, 1.0)
    offered[:, e] += ext
    return np.divide(failed, offered, out=np.zeros_like(offered), where=offered > 0)


def unserved_products(m, observables: SimObservables, edge_shown: np.ndarray
                      ) -> tuple[np.ndarray, np.ndarray]:
    """`sim_unserved`'s two products of `m` (a `StepMetrics`), (failed, offered) (N, S)
    req/s, before the entry's outside callers are added: the element-wise operands from
    one compiled pass (`obs_kernel.unserved_terms_kernel`), the products numpy's (BLAS sums
    in an order of its own, so the compiled builders take them from here). Both zeros when
    no failure is counted (every share is then +0 either way). edge_shown: (N, E) float
    0/1, as `sim_unserved` takes it."""
    offered_w = np.empty(m.edge_qps.shape)
    failed_w = np.empty(m.edge_qps.shape)
    if not unserved_terms_kernel(m.edge_qps, m.edge_err, observables.edge_requests,
                                 edge_shown, m.rps_in, m.e2e_err_rate, observables.entry,
                                 offered_w, failed_w):
        zeros = np.zeros(m.rps_in.shape)
        return zeros, zeros
    return failed_w @ observables.dst_inc, offered_w @ observables.dst_inc


def sim_view_index(sim, order: Sequence[str], active: np.ndarray,
                   observables: SimObservables) -> SimViewIndex:
    """The `SimViewIndex` of copy with `active` (S,) flags; `order` lists the service names
    in the order new services take slots (the env's universe order)."""
    names = tuple(s for s in order if active[sim.index[s]])
    cols = np.array([sim.index[s] for s in names], dtype=np.int64)
    local = {int(c): k for k, c in enumerate(cols)}
    edges = np.array([k for k, (i, j) in enumerate(sim.edges) if i in local and j in local],
                     dtype=np.int64)
    src = np.array([local[int(sim.edge_src[k])] for k in edges], dtype=np.int64)
    dst = np.array([local[int(sim.edge_dst[k])] for k in edges], dtype=np.int64)
    shown = np.zeros((1, len(sim.edges)))
    shown[0, edges] = 1.0
    out = SimViewIndex(names, cols, edges, src, dst, sim.cpu_request[cols].astype(float),
                       sim.min_replicas[cols].astype(float),
                       sim.max_replicas[cols].astype(float),
                       observables.edge_requests[edges] if len(edges)
                       else np.zeros(0, dtype=bool),
                       sim.cpu_limit[cols].astype(float), sim.startup[cols].astype(float),
                       shown)
    for arr in (cols, edges, src, dst, out.cpu_request_m, out.min_replicas,
                out.max_replicas, out.cpu_limit_m, out.startup_s, shown):
        arr.flags.writeable = False
    return out


def view_from_metrics(m, index: SimViewIndex, observables: SimObservables,
                      slots: ViewSlots, copy: int = 0, backend: str = "numba",
                      truth=None) -> tuple[ClusterView, ViewSlots]:
    """Copy `copy` of `m` (a `StepMetrics`, possibly the lagged view of the metrics
    pipelines) as a cluster would show it (`observable_rates`), and its slots.

    The unserved share is what the graph shows (`sim_unserved`); the end-to-end p95 comes
    from `truth` (the step's true metrics; default `m`; the lagged view keeps it).

    The view lists the calls that carried traffic in the step (Kiali and Prometheus know
    an edge only from its telemetry); `slots` are `view_slots(index, space)` (every call
    between active services) and the returned slots are those of the listed edges.
    ``backend="numba"`` gathers in one compiled pass (`obs_kernel.metrics_view_kernel`),
    ``"numpy"`` is the reference; the same values bit for bit.
    """
    if backend == "numpy":
        rps_all, qps_all, p95_all, err_all = observable_rates(m, observables)
        c = index.columns
        live = np.flatnonzero(m.edge_qps[copy, index.edges] > 0)
        k = index.edges[live]
        rep, rdy = m.replicas[copy, c].astype(np.float64), m.ready[copy, c].astype(np.float64)
        cpu, mem, rps = m.cpu_m[copy, c], m.mem_mi[copy, c], rps_all[copy, c]
        qps, p95, err, mtls = qps_all[copy, k], p95_all[copy, k], err_all[copy, k], \
            m.edge_mtls[copy, k]
        unserved = _copy_unserved(m, observables, index, copy)
    else:
        K, M, E = len(index.columns), len(index.edges), m.edge_qps.shape[1]
        nodes = np.empty((6, K))
        vals = np.empty((4, M))
        live = np.empty(M, dtype=np.int64)
        offered_w = np.empty((1, E))
        failed_w = np.empty((1, E))
        L, failures = metrics_view_kernel(
            m.replicas, m.ready, m.cpu_m, m.mem_mi, m.rps_in, m.edge_qps, m.edge_p95_ms,
            m.edge_err, m.edge_mtls, m.e2e_err_rate, copy, index.columns, index.edges,
            observables.edge_dst, observables.edge_requests, observables.tcp_only,
            observables.entry, index.edge_shown, nodes, vals, live, offered_w, failed_w)
        if failures:  # else every share is +0, as the kernel wrote it
            # numpy's products, as `sim_unserved` takes them (`unserved_products`)
            unserved_share_kernel(failed_w @ observables.dst_inc,
                                  offered_w @ observables.dst_inc, m.rps_in, m.e2e_err_rate,
                                  copy, observables.entry, index.columns, nodes[5])
        rep, rdy, cpu, mem, rps, unserved = nodes
        if L < M:
            vals, live = vals[:, :L], live[:L]
        qps, p95, err, mtls = vals
    if len(live) == len(index.edges):
        src, dst, reqs = index.edge_src, index.edge_dst, index.edge_requests
    else:
        src, dst, reqs = index.edge_src[live], index.edge_dst[live], index.edge_requests[live]
        slots = ViewSlots(slots.node_slot, slots.edge_slot[live], slots.max_nodes,
                          slots.max_edges)
    truth = m if truth is None else truth
    view = ClusterView(index.services, rep, rdy, cpu, mem, rps, index.cpu_request_m,
                       index.min_replicas, index.max_replicas, src, dst, qps, p95, err, mtls,
                       reqs, index.cpu_limit_m, index.startup_s, unserved,
                       float(truth.e2e_p95_ms[copy]))
    return view, slots


def observation_from_metrics(m, index: SimViewIndex, observables: SimObservables,
                             slots: ViewSlots, hpa_target: float = 0.7, backend: str = "numba",
                             *, context: ObservationContext, history: LoadHistory | None = None,
                             copy: int = 0, truth=None) -> dict[str, Any]:
    """The observation of copy `copy` of `m` (a `StepMetrics`): `observation_from_view` of
    `view_from_metrics` (the arguments are theirs), the same numbers bit for bit.

    With ``backend="numba"`` one compiled call does both (`obs_kernel.metrics_observation_
    kernel`: the same gathering and builder, without a `ClusterView` object between them);
    a step in which a failure is counted takes a second call, after numpy's products of
    the unserved share (`unserved_products`).
    """
    truth = m if truth is None else truth
    if backend == "numpy":
        view, slots = view_from_metrics(m, index, observables, slots, copy, backend, truth)
        return observation_from_view(view, slots, hpa_target, backend, context=context,
                                     history=history)
    out = _outputs(slots)
    ring, cols, t, lags = _history_args(history, index.services)
    E = m.edge_qps.shape[1]
    offered_w, failed_w = np.empty((1, E)), np.empty((1, E))
    head = (m.replicas, m.ready, m.cpu_m, m.mem_mi, m.rps_in, m.edge_qps, m.edge_p95_ms,
            m.edge_err, m.edge_mtls, m.e2e_err_rate, float(truth.e2e_p95_ms[copy]), copy,
            index.columns, index.edges, observables.edge_dst, observables.edge_requests,
            observables.tcp_only, observables.entry, index.edge_shown, offered_w, failed_w)
    tail = (index.edge_src, index.edge_dst, index.edge_requests, index.cpu_request_m,
            index.min_replicas, index.max_replicas, index.cpu_limit_m, index.startup_s,
            slots.node_slot, slots.edge_slot, float(hpa_target), INVALID_TABLE, ONLY_NOTHING,
            *out, float(context.slo_ms), float(context.interval_s), float(context.dial),
            float(context.time_of_day_s), ring, cols, t, lags)
    num = metrics_observation_kernel(*head, _NO_PRODUCT, _NO_PRODUCT, *tail)
    if num < 0:  # a failure counted: numpy's products, as `sim_unserved` takes them
        num = metrics_observation_kernel(*head, failed_w @ observables.dst_inc,
                                         offered_w @ observables.dst_inc, *tail)
    if history is not None:
        history.t += 1
    return _observation(out, num)


def _copy_unserved(m, observables: SimObservables, index: SimViewIndex, copy: int
                   ) -> np.ndarray:
    """`sim_unserved` of one copy, for the view's services (its edges: `index.edges`)."""
    c = slice(copy, copy + 1)
    return sim_unserved(m.edge_qps[c], m.edge_err[c], m.rps_in[c], m.e2e_err_rate[c],
                        observables, index.edge_shown)[0, index.columns]


# ---------------------------------------------------------------------------- snapshot
def _floats(frame, name: str) -> np.ndarray:
    return frame[name].to_numpy(dtype=np.float64, na_value=np.nan)


def view_from_snapshot(snapshot, app) -> ClusterView:
    """A `GraphSnapshot` (graph source merged with Kubernetes: `K8sBackend.observe`) as a
    view of the services `app` (an `AppSpec`) knows; all of them are owned, with the
    spec's CPU requests and limits, start-up times and bounds. Edges between them; a pair
    seen with several protocols is one edge (`merge_edge_rows`). The unserved shares and
    the end-to-end p95 come from every edge row (`edge_outcomes`, the app's services
    inside: the calls of its clients, the ingress gateway, ``unknown`` are from outside)."""
    nodes = snapshot.nodes[snapshot.nodes["service"].isin(list(app.services))]
    names = tuple(str(s) for s in nodes["service"])
    spec = [app.services[s] for s in names]
    edges = snapshot.edges
    rows = ([str(s) for s in edges["source"]], [str(t) for t in edges["target"]],
            [str(p) for p in edges["protocol"]],
            np.stack([_floats(edges, c) for c in ("qps", "p95_ms", "err_rate", "mtls")],
                     axis=-1) if len(edges) else np.zeros((0, 4)))
    src, dst, vals, reqs = merge_edge_rows(*rows, names)
    unserved, e2e = edge_outcomes(*rows, names, app.services)
    return ClusterView(
        names, _floats(nodes, "replicas"), _floats(nodes, "ready_replicas"),
        _floats(nodes, "cpu_m"), _floats(nodes, "mem_mi"), _floats(nodes, "rps_in"),
        np.array([s.cpu_request_m for s in spec], dtype=float),
        np.array([s.min_replicas for s in spec], dtype=float),
        np.array([s.max_replicas for s in spec], dtype=float),
        src, dst, vals[:, 0], vals[:, 1], vals[:, 2], vals[:, 3], reqs,
        cpu_limit_m=np.array([s.cpu_limit_m for s in spec], dtype=float),
        startup_s=np.array([s.startup_s for s in spec], dtype=float),
        unserved=unserved, e2e_p95_ms=e2e).check()


def merge_edge_rows(sources: Sequence[str], targets: Sequence[str], protocols: Sequence[str],
                    values: np.ndarray, services: Sequence[str]
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Graph edge rows -> the view's edges between `services` (self-loops dropped).

    `values` (R, 4): [qps, p95_ms, err_rate, mtls] per row. Rows of one (src, dst) pair
    (several protocols) become one edge, request-level if any of its rows is: qps summed
    over its request-level rows, p95 their max, err their qps-weighted mean; mtls the
    mean over all rows. Returns (src (E,), dst (E,) int64 indices into `services`,
    values (E, 4) float64, edge_requests (E,) bool).
    """
    index = {s: k for k, s in enumerate(services)}
    merged: dict[tuple[int, int], list[tuple[bool, np.ndarray]]] = {}
    for s, d, p, row in zip(sources, targets, protocols, values, strict=True):
        if s in index and d in index and s != d:
            merged.setdefault((index[s], index[d]), []).append((is_request_protocol(p), row))
    out = np.zeros((len(merged), 4))
    reqs = np.zeros(len(merged), dtype=bool)
    for k, rows in enumerate(merged.values()):
        if len(rows) == 1:
            reqs[k], out[k] = rows[0]
            continue
        reqs[k] = any(q for q, _ in rows)
        live = np.array([r for q, r in rows if q == reqs[k]])
        w = np.where(live[:, 0] > 0, live[:, 0], 0.0)
        w = w if w.sum() > 0 else np.ones(len(live))
        out[k] = [live[:, 0].sum(), np.fmax.reduce(live[:, 1]),
                  float((live[:, 2] * w).sum() / w.sum()),
                  float(np.mean([r[3] for _, r in rows]))]
    keys = list(merged)
    return (np.array([k[0] for k in keys], dtype=np.int64),
            np.array([k[1] for k in keys], dtype=np.int64), out, reqs)


def edge_outcomes(sources: Sequence[str], targets: Sequence[str], protocols: Sequence[str],
                  values: np.ndarray, services: Sequence[str], inside: Collection[str]
                  ) -> tuple[np.ndarray, float]:
    """What the graph's edge rows say of the requests the services failed and of the
    latency the application's callers see.

    Args:
        sources, targets, protocols: the rows' endpoints (names) and protocols; a source
            need not be a service (the ingress gateway, ``unknown``, a load generator).
        values: (R, 4) [qps, p95_ms, err_rate, mtls] per row (as `merge_edge_rows`).
        services: the view's services, in order.
        inside: the services of the application (those the policy scales); a row whose
            source is not one of them is a call from outside it.

    Returns:
        unserved: (S,) float64, per service the qps-weighted error share (0..1) of the
            request-level rows into it that carried traffic, from any caller (outside ones
            included: for the entry, the ingress gateway's rows); 0 when none did. The
            graph sources count 4xx, 5xx and requests without a response as errors
            (Kiali's ``http4xx`` / ``http5xx`` / ``httpNoResponse`` rates,
            `gnnrl.sources.kiali_graph`), so rejected, failed and timed-out requests
            count, queued ones not.
        e2e_p95_ms: the largest p95 of the request-level rows with traffic from outside
            `inside` into it (the entry's callers: what a user waits end to end); NaN when
            there is none or none reports a p95. The largest, as `merge_edge_rows` takes
            for one pair's protocols: quantiles of separate streams do not add up.
    """
    index = {s: k for k, s in enumerate(services)}
    offered = np.zeros(len(services))
    failed = np.zeros(len(services))
    e2e = float("nan")
    for s, d, p, row in zip(sources, targets, protocols, values, strict=True):
        k = index.get(d)
        qps = float(row[0])
        if k is None or not is_request_protocol(p) or not qps > 0:   # NaN qps too
            continue
        offered[k] += qps
        failed[k] += qps * min(max(float(np.nan_to_num(row[2])), 0.0), 1.0)
        if s not in inside and d in inside:
            e2e = float(np.fmax(e2e, row[1]))
    unserved = np.divide(failed, offered, out=np.zeros(len(services)), where=offered > 0)
    return unserved, e2e
