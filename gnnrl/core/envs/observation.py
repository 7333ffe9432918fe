"""The batched observation path: N simulator copies at once, for training speed.

The one observation builder is `gnnrl.core.envs.cluster_view` (the single env, the
real-cluster backend and the scaler use it). This module lays out N copies in one
compiled kernel (`gnnrl.core.envs.obs_kernel`, with the numpy reference kept beside it),
from the same observable inputs (`observable_inputs`: request-level rates only, the entry
load as received from outside the observed services); a test holds it equal to the one
builder copy by copy.

Observation (docs/internals.md), float32 unless noted:
    svc_df (max_nodes, 6): [num_pods (pods that exist, starting ones included),
        desired_replicas (HPA's formula at `hpa_target` of the CPU request),
        cpu_usage (millicores, all pods), mem_usage (MiB, all pods),
        received_traffic (req/s in), transmit_traffic (req/s sent to callees)]
    edge_df (max_edges, 7): [src slot, dst slot, active=1, qps, p95 (ms), err_rate (0..1),
        mtls (0..1)]
    global_feats (4,): [total_pods, avg_cpu (millicores/pod), avg_mem (MiB/pod),
        total_traffic (entry req/s)]
    node_mask (max_nodes,) int8, edge_mask (max_edges,) int8: 1 = real
    num_nodes: int, active services
    invalid_action_mask (max_nodes*15,) int8: 1 = INVALID move, service-major
        (index slot*15 + move). `OnlineBoutique.action_masks()` gives the opposite
        polarity (True = valid), as sb3-contrib's MaskablePPO expects.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

import numpy as np

from gnnrl.core.envs.cluster_view import (
    SimObservables,
    build_observation,
    fill_unknown,
    hpa_desired,
    observable_rates,
    sim_observables,
    sim_unserved,
    unserved_products,
    view_from_snapshot,
    widen,
)
from gnnrl.contracts.observation import GLOBAL_DIM_RAW, NODE_DIM_RAW, TREND_LAGS
from gnnrl.core.envs.obs_extras import (
    BatchedContext,
    BatchedLoadHistory,
    LoadHistory,
    ObservationContext,
    globals_tail,
    nan_to_zero,
    node_tail,
    time_of_day,
)
from gnnrl.core.envs.moves import INVALID_TABLE, NUM_MOVES, ONLY_NOTHING, valid_row
from gnnrl.core.envs.obs_kernel import observe_kernel

__all__ = ["INVALID_TABLE", "ObservationLayout", "build_observations", "hpa_desired",
           "observable_inputs", "observation_from_snapshot", "observation_layout", "observe"]


@functools.lru_cache(maxsize=64)
def _row_offsets(n: int, width: int) -> np.ndarray:
    """(n, 1) int64: ``i * width`` (start of copy i in a flattened (n * width) axis)."""
    out = (np.arange(n, dtype=np.int64) * width)[:, None]
    out.flags.writeable = False
    return out


@dataclasses.dataclass(frozen=True)
class ObservationLayout:
    """Where each service and edge of N copies goes in the padded observation.

    It depends only on the slot mapping and the active services, which change only with
    topology events and episode resets: callers that step often build it once with
    `observation_layout` and pass it to `build_observations` until the mapping changes.

    Attributes (flat indices count copies first: copy n, row r -> n * rows + r):
        on: (K,) flat (n * S + s) of observed services (mapped and active).
        node_rows: (K,) their flat rows in (N * max_nodes).
        active: (N, S) bool, observed services.
        edge_on: (M,) flat (n * E + e) of observed edges; edge_rows: (M,) flat rows in
            (N * max_edges).
        edge_ends: (M * 3,) float32: src slot, dst slot and 1 of the observed edges.
        node_flat: (K * 6,) positions in the flattened (N * max_nodes * 6) svc_df of the
            observed services' features; edge_flat_ends / edge_flat_dyn: (M * 3,) /
            (M * 4,) positions in the flattened edge_df of the observed edges' columns
            0..2 / 3..6 (scattering into a flat array is much faster than into rows).
        node_mask, edge_mask: (N, max_nodes) / (N, max_edges) int8.
        num_nodes: (N,) int64.
        observables: the simulator's `SimObservables` (what a cluster can count).
        edge_observed: (N, E) float 0/1, the observed edges.
    """

    on: np.ndarray
    node_rows: np.ndarray
    active: np.ndarray
    edge_on: np.ndarray
    edge_rows: np.ndarray
    edge_ends: np.ndarray
    node_flat: np.ndarray
    edge_flat_ends: np.ndarray
    edge_flat_dyn: np.ndarray
    node_mask: np.ndarray
    edge_mask: np.ndarray
    num_nodes: np.ndarray
    observables: SimObservables
    edge_observed: np.ndarray


def observation_layout(sim, slot_idx: np.ndarray, edge_slot: np.ndarray, active: np.ndarray,
                       max_nodes: int, max_edges: int) -> ObservationLayout:
    """The `ObservationLayout` of `sim`'s copies for `slot_idx` (N, S), `edge_slot` (N, E)
    and the simulator's `active` (N, S) flags (see `build_observations`)."""
    N = slot_idx.shape[0]
    observed = (slot_idx >= 0) & active
    on = observed.ravel().nonzero()[0]
    node_rows = (slot_idx + _row_offsets(N, max_nodes)).ravel().take(on)
    node_mask = np.zeros(N * max_nodes, dtype=np.int8)
    node_mask[node_rows] = 1
    edge_mask = np.zeros(N * max_edges, dtype=np.int8)
    edge_on = edge_rows = np.zeros(0, dtype=np.int64)
    edge_ends = np.zeros(0, dtype=np.float32)
    E = len(sim.edges)
    edge_observed = np.zeros(N * E)
    if E:
        edge_on = ((edge_slot >= 0) & observed.take(sim.edge_src, axis=1)
                   & observed.take(sim.edge_dst, axis=1)).ravel().nonzero()[0]
        edge_rows = (edge_slot + _row_offsets(N, max_edges)).ravel().take(edge_on)
        ends = np.empty((N, E, 3), dtype=np.float32)
        ends[..., 0] = slot_idx.take(sim.edge_src, axis=1)
        ends[..., 1] = slot_idx.take(sim.edge_dst, axis=1)
        ends[..., 2] = 1.0
        edge_ends = ends.reshape(N * E, 3).take(edge_on, axis=0).ravel()
        edge_mask[edge_rows] = 1
        edge_observed[edge_on] = 1.0
    node_flat = (node_rows[:, None] * 6 + np.arange(6)).ravel()
    edge_flat_ends = (edge_rows[:, None] * 7 + np.arange(3)).ravel()
    edge_flat_dyn = (edge_rows[:, None] * 7 + np.arange(3, 7)).ravel()
    for arr in (on, node_rows, observed, edge_on, edge_rows, edge_ends, node_mask, edge_mask,
                node_flat, edge_flat_ends, edge_flat_dyn, edge_observed):
        arr.flags.writeable = False
    return ObservationLayout(on, node_rows, observed, edge_on, edge_rows, edge_ends,
                             node_flat, edge_flat_ends, edge_flat_dyn,
                             node_mask.reshape(N, max_nodes), edge_mask.reshape(N, max_edges),
                             observed.sum(axis=1).astype(np.int64), sim_observables(sim),
                             edge_observed.reshape(N, E))


def observable_inputs(m, layout: ObservationLayout, entry_rps: np.ndarray | None = None
                      ) -> tuple[np.ndarray, ...]:
    """What of `m` a cluster can observe, as the builders' inputs (see
    `gnnrl.core.envs.cluster_view`: the one builder computes the same from a view).

    Returns (rps_in (N, S), out_rps (N, S), edge_qps, edge_p95_ms, edge_err (N, E),
    entry_rps (N,)): request-level rates only (`observable_rates`); out_rps the
    request-level req/s of each service's observed outgoing edges; entry_rps (unless
    given) what the observed services receive from outside them.
    """
    rps, qps, p95, err = observable_rates(m, layout.observables)
    seen = qps * layout.edge_observed
    out_rps = seen @ layout.observables.src_inc
    if entry_rps is None:
        got = seen @ layout.observables.dst_inc
        ext = np.maximum(rps - got, 0.0)
        ext *= layout.active
        entry_rps = np.add.reduce(ext, axis=1)
    return rps, out_rps, qps, p95, err, np.ascontiguousarray(entry_rps, dtype=np.float64)


def build_observations(
    m, sim, slot_idx: np.ndarray, edge_slot: np.ndarray, max_nodes: int, max_edges: int,
    hpa_target: float = 0.7, entry_rps: np.ndarray | None = None,
    layout: ObservationLayout | None = None, backend: str = "numba", *,
    context: BatchedContext, history: BatchedLoadHistory | None = None, truth=None,
) -> dict[str, np.ndarray]:
    """Observations for all N copies (schema v2).

    Args:
        m: `gnnrl.sim.StepMetrics` of the last step (arrays (N, S) / (N, E)).
        sim: the `BatchedSim` (for per-service constants).
        slot_idx: (N, S) int slot of each service, -1 when not mapped (inactive).
        edge_slot: (N, E) int slot of each edge, -1 when not mapped.
        entry_rps: (N,) entry req/s for global_feats (default: what the observed services
            receive from outside them, as the one builder computes it).
        layout: `observation_layout(sim, slot_idx, edge_slot, m.active, ...)`, when the
            caller keeps one (it must be rebuilt whenever the mapping or the active
            services change); computed here when None.
        backend: ``"numba"`` (one compiled kernel, `gnnrl.core.envs.obs_kernel`) or
            ``"numpy"`` (the vectorised reference); the same float32 values.
        context: the SLO, interval, and each copy's dial and time of day.
        history: the copies' load history (read and staged; the caller commits it).
        truth: the step's true metrics when `m` is the lagged view (default `m`).

    Returns:
        dict of fresh arrays with a leading N axis (see module docstring); the caller may
        keep them.
    """
    if layout is None:
        layout = observation_layout(sim, slot_idx, edge_slot, m.active, max_nodes, max_edges)
    if backend == "numpy":
        obs = _build_observations_numpy(m, sim, slot_idx, max_nodes, max_edges, hpa_target,
                                        entry_rps, layout)
        rps, _, _, p95, _, _ = observable_inputs(m, layout, entry_rps)
        return widen_batch(obs, m, m if truth is None else truth, sim, layout, rps, p95,
                           context, history)
    N = slot_idx.shape[0]
    return observe(m, sim, layout, N, max_nodes, max_edges, hpa_target, entry_rps,
                   leading_axis=True, context=context, history=history, truth=truth)


def widen_batch(obs: dict[str, Any], m, truth, sim, layout: ObservationLayout,
                rps: np.ndarray, p95: np.ndarray, context: BatchedContext,
                history: BatchedLoadHistory | None) -> dict[str, Any]:
    """The v1 observations `obs` of N copies widened to schema v2 (the same computation
    as `cluster_view.widen_view` on each copy's view; a test holds them equal): the numpy
    reference of what `obs_kernel.observe_kernel` writes in its one pass.

    Args:
        m: the metrics the observation shows (lagged or not); truth: the step's true
            metrics (the unserved share and the end-to-end p95).
        rps, p95: (N, S) / (N, E) the observable received req/s and edge p95s
            (`observable_inputs`).
        history: read, and staged (the caller commits it once per step); None = no past.
    """
    N, S = m.replicas.shape
    on = layout.on
    # slo share: the largest p95 of each service's shown request-level incoming edges
    share = np.zeros((N, S))
    has_in = np.zeros((N, S), dtype=bool)
    req = layout.observables.edge_requests
    shown = (layout.edge_observed > 0) & (m.edge_qps > 0)
    p95 = nan_to_zero(p95)
    for e in np.flatnonzero(req).tolist():
        d = int(layout.observables.edge_dst[e])
        live = shown[:, e]
        share[:, d] = np.where(live, np.maximum(share[:, d], p95[:, e]), share[:, d])
        has_in[:, d] |= live
    e2e = truth.e2e_p95_ms
    share = np.where(~has_in & (nan_to_zero(rps) > 0), nan_to_zero(e2e)[:, None], share)
    share = share / context.slo_ms
    if history is None:
        trends = np.ones((len(on), len(TREND_LAGS)))
    else:
        trends = history.trends(rps, layout.active).reshape(N * S, -1).take(on, axis=0)

    def flat(a: np.ndarray) -> np.ndarray:
        return np.broadcast_to(a, (N, S)).reshape(N * S).take(on)

    tail = node_tail(flat(m.replicas).astype(np.float64), flat(m.ready).astype(np.float64),
                     flat(sim.startup), flat(sim.cpu_request), flat(sim.cpu_limit),
                     flat(sim.min_replicas).astype(np.float64),
                     flat(sim.max_replicas).astype(np.float64),
                     flat(sim_unserved(m.edge_qps, m.edge_err, m.rps_in, m.e2e_err_rate,
                                       layout.observables, layout.edge_observed)),
                     flat(share), trends)
    gtail = globals_tail(e2e, context.slo_ms, context.interval_s, context.dial,
                         context.time_of_day_s)
    if obs["global_feats"].ndim == 1:
        gtail = gtail[0]
    return widen(obs, layout.node_rows, tail, gtail)


def observe(m, sim, layout: ObservationLayout, num_copies: int, max_nodes: int,
            max_edges: int, hpa_target: float = 0.7, entry_rps: np.ndarray | None = None,
            leading_axis: bool = True, *, context: BatchedContext,
            history: BatchedLoadHistory | None = None, truth=None) -> dict[str, Any]:
    """`build_observations` with the compiled kernel and a ready layout: every column (the
    seed's and schema v2's) in one pass (`obs_kernel.observe_kernel`), besides numpy's
    matrix products of the observable inputs and the unserved share.

    With ``leading_axis=False`` (one copy only) the arrays have no leading N axis and
    ``num_nodes`` is an int: the single env's observation, without a copy per field.
    """
    N, S = num_copies, sim.num_services
    truth = m if truth is None else truth
    rps, out_rps, qps, p95, err, entry_rps = observable_inputs(m, layout, entry_rps)
    failed, offered = unserved_products(m, layout.observables, layout.edge_observed)
    svc = np.zeros(N * max_nodes * NODE_DIM_RAW, dtype=np.float32)
    edge_df = np.zeros(N * max_edges * 7, dtype=np.float32)
    global_feats = np.empty((N, GLOBAL_DIM_RAW), dtype=np.float32)
    invalid = np.empty((N * max_nodes, NUM_MOVES), dtype=np.int8)
    if history is None:
        ring, staged, t, lags = _NO_RING, _NO_STAGED, -1, _NO_LAGS
    else:
        ring, staged, t, lags = history.ring, history.staged, history.t, history.lag_array
    obs_ = layout.observables
    observe_kernel(m.replicas, m.ready, m.cpu_m, m.mem_mi, rps, out_rps, qps, p95, err,
                   m.edge_mtls, entry_rps, sim.cpu_request, sim.min_replicas,
                   sim.max_replicas, float(hpa_target), layout.on, layout.node_rows,
                   layout.active, layout.edge_on, layout.edge_rows, layout.edge_ends,
                   INVALID_TABLE, ONLY_NOTHING, np.empty((4, S)), svc, edge_df, global_feats,
                   invalid, sim.startup, sim.cpu_limit, failed, offered, m.rps_in,
                   m.e2e_err_rate, obs_.entry, obs_.edge_requests, obs_.edge_dst,
                   layout.edge_observed, truth.e2e_p95_ms, float(context.slo_ms),
                   float(context.interval_s), _per_copy(context.dial, N),
                   *time_of_day(_per_copy(context.time_of_day_s, N)), ring, staged, t, lags)
    edge_mask = _drop_idle_edges(m, layout, edge_df)
    if not leading_axis:
        return {
            "svc_df": svc.reshape(max_nodes, NODE_DIM_RAW),
            "edge_df": edge_df.reshape(max_edges, 7),
            "global_feats": global_feats.reshape(GLOBAL_DIM_RAW),
            "node_mask": layout.node_mask[0].copy(),
            "edge_mask": edge_mask[0],
            "num_nodes": int(layout.num_nodes[0]),
            "invalid_action_mask": invalid.reshape(max_nodes * NUM_MOVES),
        }
    return {
        "svc_df": svc.reshape(N, max_nodes, NODE_DIM_RAW),
        "edge_df": edge_df.reshape(N, max_edges, 7),
        "global_feats": global_feats,
        "node_mask": layout.node_mask.copy(),
        "edge_mask": edge_mask,
        "num_nodes": layout.num_nodes.copy(),
        "invalid_action_mask": invalid.reshape(N, max_nodes * NUM_MOVES),
    }


#: stand-ins of an absent load history (`observe_kernel` reads no past, stages nothing;
#: writable, as a history's arrays are: one compiled specialisation serves both)
_NO_RING = np.full((1, 1, 1), np.nan)
_NO_STAGED = np.full((1, 1), np.nan)
_NO_LAGS = np.array(TREND_LAGS, dtype=np.int64)


def _per_copy(values, n: int) -> np.ndarray:
    """(n,) float64, a fresh array, of a per-copy context field (a number: every copy's)."""
    out = np.empty(n)
    out[:] = values
    return out


def _drop_idle_edges(m, layout: ObservationLayout, edge_df: np.ndarray) -> np.ndarray:
    """Zero the rows of observed edges that carried no traffic in `m` (a cluster's graph
    source knows an edge only from its telemetry) in the flat `edge_df`; returns the
    (N, max_edges) edge mask without them."""
    edge_mask = layout.edge_mask.copy()
    if len(layout.edge_on):
        idle = m.edge_qps.ravel().take(layout.edge_on) <= 0
        if idle.any():
            rows = layout.edge_rows[idle]
            edge_df.reshape(-1, 7)[rows] = 0.0
            edge_mask.reshape(-1)[rows] = 0
    return edge_mask


def _build_observations_numpy(m, sim, slot_idx: np.ndarray, max_nodes: int, max_edges: int,
                              hpa_target: float, entry_rps: np.ndarray | None,
                              layout: ObservationLayout) -> dict[str, np.ndarray]:
    """`build_observations`, the vectorised numpy reference.

    Rows are computed per service (N, S) and scattered into the zeroed padded arrays
    through flat indices (one numpy call per array, no per-copy loop); the action mask is
    a lookup in `gnnrl.core.envs.moves.VALID_TABLE`.
    """
    N, S = slot_idx.shape
    on, node_rows = layout.on, layout.node_rows
    cur = m.replicas
    desired = hpa_desired(m.cpu_m, m.ready, cur, sim.cpu_request, hpa_target,
                          sim.min_replicas, sim.max_replicas)
    feats = np.empty((N, S, 6), dtype=np.float32)
    feats[..., 0] = cur
    feats[..., 1] = desired
    feats[..., 2] = m.cpu_m
    feats[..., 3] = m.mem_mi
    rps, out_rps, qps, p95, err, entry_rps = observable_inputs(m, layout, entry_rps)
    feats[..., 4] = rps
    feats[..., 5] = out_rps
    svc = np.zeros(N * max_nodes * 6, dtype=np.float32)
    svc[layout.node_flat] = feats.reshape(N * S, 6).take(on, axis=0).ravel()

    edge_df = np.zeros(N * max_edges * 7, dtype=np.float32)
    E = len(sim.edges)
    if E:
        edge_df[layout.edge_flat_ends] = layout.edge_ends
        rows = np.empty((N, E, 4), dtype=np.float32)
        rows[..., 0] = qps
        rows[..., 1] = p95
        rows[..., 2] = err
        rows[..., 3] = m.edge_mtls
        edge_df[layout.edge_flat_dyn] = rows.reshape(N * E, 4).take(layout.edge_on,
                                                                    axis=0).ravel()

    edge_mask = _drop_idle_edges(m, layout, edge_df)
    active = layout.active
    pods = np.add.reduce(cur * active, axis=1)
    cpu = np.add.reduce(m.cpu_m * active, axis=1)
    mem = np.add.reduce(m.mem_mi * active, axis=1)
    pods_safe = np.maximum(pods, 1)
    global_feats = np.empty((N, 4), dtype=np.float32)
    global_feats[:, 0] = pods
    global_feats[:, 1] = cpu / pods_safe
    global_feats[:, 2] = mem / pods_safe
    global_feats[:, 3] = entry_rps

    # action mask per slot: the row of VALID_TABLE of each service, "only nothing" for
    # empty slots
    rows_valid = np.full(N * max_nodes, ONLY_NOTHING, dtype=np.int64)
    rows_valid[node_rows] = valid_row(cur, sim.min_replicas, sim.max_replicas).ravel().take(on)
    invalid = INVALID_TABLE.take(rows_valid, axis=0).reshape(N, max_nodes * NUM_MOVES)
    return {
        "svc_df": svc.reshape(N, max_nodes, 6),
        "edge_df": edge_df.reshape(N, max_edges, 7),
        "global_feats": global_feats,
        "node_mask": layout.node_mask.copy(),
        "edge_mask": edge_mask,
        "num_nodes": layout.num_nodes.copy(),
        "invalid_action_mask": invalid,
    }


def observation_from_snapshot(snapshot, space, app, hpa_target: float = 0.7,
                              context: ObservationContext | None = None,
                              history: LoadHistory | None = None
                              ) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """The observation of a real cluster from a `GraphSnapshot` (k8s backend), built by the
    one builder (`gnnrl.core.envs.cluster_view`) from `view_from_snapshot`.

    Services in the snapshot that the app spec does not know are left out (the policy
    cannot scale what it has no bounds for). Missing numbers (NaN: a source that did not
    report them) become 0 (`fill_unknown`). The mapping in `space` is updated.

    Returns:
        (observation dict without the leading batch axis, per-slot arrays "replicas",
        "min_replicas", "max_replicas", "cpu_request_m" of shape (max_nodes,), 0 for
        empty slots and unknown values)
    """
    view = view_from_snapshot(snapshot, app)
    if context is None:
        context = ObservationContext(app.slo_p95_ms)
    obs, _ = build_observation(view, space, hpa_target, context=context, history=history)
    fill_unknown(obs)
    slots = np.array([space.node_mapping[s] for s in view.services], dtype=np.int64)
    per_slot = {}
    for key, values in (("replicas", view.replicas), ("min_replicas", view.min_replicas),
                        ("max_replicas", view.max_replicas),
                        ("cpu_request_m", view.cpu_request_m)):
        per_slot[key] = np.zeros(space.max_nodes)
        per_slot[key][slots] = np.nan_to_num(values, nan=0.0)
    return obs, per_slot
