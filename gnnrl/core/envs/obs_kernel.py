"""Compiled (numba) kernels of the env layer: observations, info rows and action moves.

They compute exactly what the numpy code in `gnnrl.core.envs.observation` and
`gnnrl.core.envs.online_boutique` computes (that code stays as the reference the tests
compare against), in one pass over the observed services and edges, writing through the
flat indices of an `ObservationLayout`. Sums that numpy computes with ``np.add.reduce``
use numpy's own pairwise order (`np_sum`), so float results are bit-identical.
"""

from __future__ import annotations

import numba
import numpy as np

from gnnrl.core.envs.moves import DELTAS, MAX_STEP, NUM_MOVES

_DELTAS = np.ascontiguousarray(DELTAS, dtype=np.int64)


@numba.njit(cache=True, inline="always")
def np_sum(values, n):
    """``np.add.reduce(values[:n])`` for a contiguous float64 vector, in numpy's order.

    numpy sums a contiguous run with 8 interleaved partial sums below 128 elements
    (``pairwise_sum`` in numpy's ``loops_utils.h.src``); a plain loop rounds differently.
    Beyond 128 elements this falls back to a plain loop (not bit-identical there).
    """
    if n < 8 or n > 128:
        res = 0.0
        for i in range(n):
            res += values[i]
        return res
    r0, r1, r2, r3 = values[0], values[1], values[2], values[3]
    r4, r5, r6, r7 = values[4], values[5], values[6], values[7]
    i = 8
    while i < n - (n % 8):
        r0 += values[i]
        r1 += values[i + 1]
        r2 += values[i + 2]
        r3 += values[i + 3]
        r4 += values[i + 4]
        r5 += values[i + 5]
        r6 += values[i + 6]
        r7 += values[i + 7]
        i += 8
    res = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
    while i < n:
        res += values[i]
        i += 1
    return res


@numba.njit(cache=True, inline="always")
def _valid_row(cur, lo, hi):
    """`gnnrl.core.envs.moves.valid_row` for one slot."""
    lowest = min(lo - cur, 1)
    highest = max(hi - cur, -1)
    return (min(max(lowest, -MAX_STEP), 1) + MAX_STEP) * 9 + min(highest, MAX_STEP) + 1


@numba.njit(cache=True)
def observe_kernel(replicas, ready, cpu_m, mem_mi, rps_in, out_rps, edge_qps, edge_p95,
                   edge_err, edge_mtls, entry_rps, cpu_request, min_r, max_r, hpa_target,
                   on, node_rows, active, edge_on, edge_rows, edge_ends, invalid_table,
                   only_nothing, work, svc, edge_df, global_feats, invalid):
    """`gnnrl.core.envs.observation.build_observations` into zeroed flat outputs.

    Shapes: replicas, ready (N, S) int64; cpu_m, mem_mi, rps_in, out_rps (N, S) float;
    edge_* (N, E) float; entry_rps (N,); cpu_request (S,) float, min_r / max_r (S,) int64;
    layout arrays as in `ObservationLayout` (active (N, S) bool); invalid_table (81, 15)
    int8; work (3, S) float scratch. Outputs: svc (N * max_nodes * 6,) float32 and edge_df
    (N * max_edges * 7,) float32, both zeroed; global_feats (N, 4) float32; invalid
    (N * max_nodes, 15) int8.
    """
    N, S = replicas.shape
    E = edge_qps.shape[1]
    for r in range(invalid.shape[0]):
        for m in range(invalid.shape[1]):
            invalid[r, m] = invalid_table[only_nothing, m]
    for k in range(on.shape[0]):
        i = on[k]
        n, s = i // S, i % S
        cur = replicas[n, s]
        # HPA's formula as a feature (see `hpa_desired`)
        util_sum = cpu_m[n, s] / max(cpu_request[s], 1e-9)
        desired = np.ceil(util_sum / hpa_target - 1e-9) if ready[n, s] > 0 else float(cur)
        desired = min(max(desired, float(min_r[s])), float(max_r[s]))
        row = node_rows[k]
        base = row * 6
        svc[base] = cur
        svc[base + 1] = desired
        svc[base + 2] = cpu_m[n, s]
        svc[base + 3] = mem_mi[n, s]
        svc[base + 4] = rps_in[n, s]
        svc[base + 5] = out_rps[n, s]
        vrow = _valid_row(cur, min_r[s], max_r[s])
        for m in range(invalid.shape[1]):
            invalid[row, m] = invalid_table[vrow, m]
    for k in range(edge_on.shape[0]):
        i = edge_on[k]
        n, e = i // E, i % E
        base = edge_rows[k] * 7
        edge_df[base] = edge_ends[3 * k]
        edge_df[base + 1] = edge_ends[3 * k + 1]
        edge_df[base + 2] = edge_ends[3 * k + 2]
        edge_df[base + 3] = edge_qps[n, e]
        edge_df[base + 4] = edge_p95[n, e]
        edge_df[base + 5] = edge_err[n, e]
        edge_df[base + 6] = edge_mtls[n, e]
    for n in range(N):
        pods = 0
        for s in range(S):
            if active[n, s]:
                pods += replicas[n, s]
                work[0, s] = cpu_m[n, s]
                work[1, s] = mem_mi[n, s]
            else:
                work[0, s] = 0.0
                work[1, s] = 0.0
        pods_safe = max(pods, 1)
        global_feats[n, 0] = pods
        global_feats[n, 1] = np_sum(work[0], S) / pods_safe
        global_feats[n, 2] = np_sum(work[1], S) / pods_safe
        global_feats[n, 3] = entry_rps[n]


@numba.njit(cache=True)
def info_rows_kernel(replicas, ready, cpu_m, mem_mi, rps_in, p95_ms, active, cpu_request,
                     mapped, slots, block, work):
    """The single env's per-slot info rows and its cost; copy 0 of (1, S) metrics.

    Writes rows 0, 1, 2, 4, 5, 8 of `block` (9, max_nodes) (replicas, ready_replicas,
    cpu_m, mem_mi, rps_in, p95_ms: the order of `online_boutique._PER_SLOT`) at the slots
    of the mapped services; returns the cost: sum of pods x CPU request (cores) over the
    active services, summed as ``np.add.reduce`` does.
    """
    for k in range(mapped.shape[0]):
        s, slot = mapped[k], slots[k]
        block[0, slot] = replicas[0, s]
        block[1, slot] = ready[0, s]
        block[2, slot] = cpu_m[0, s]
        block[4, slot] = mem_mi[0, s]
        block[5, slot] = rps_in[0, s]
        block[8, slot] = p95_ms[0, s]
    S = replicas.shape[1]
    for s in range(S):
        work[s] = replicas[0, s] * cpu_request[s] if active[0, s] else 0.0
    return np_sum(work, S) / 1000.0


@numba.njit(cache=True, inline="always")
def _move(action, invalid_mask, i):
    """The move slot i executes: its action, or 0 if out of range or marked invalid."""
    m = min(max(action[i], 0), NUM_MOVES - 1)
    if m != action[i] or invalid_mask[i * NUM_MOVES + m] != 0:
        return 0
    return m


@numba.njit(cache=True)
def apply_moves_kernel(action, invalid_mask, replicas, mapped, slots, deltas, target):
    """Validate one action and turn it into pod targets.

    action (max_nodes,) int64 moves; invalid_mask (max_nodes * 15,) int8, 1 = invalid;
    replicas (S,) int64 now; mapped / slots (K,) the mapped services' columns and slots.
    A move out of 0..14 or marked invalid becomes "nothing". Writes target (S,) int64
    (replicas plus each mapped service's move) and returns the number of invalid moves.
    """
    bad = 0
    for i in range(action.shape[0]):
        if _move(action, invalid_mask, i) != action[i]:
            bad += 1
    for s in range(replicas.shape[0]):
        target[s] = replicas[s]
    for k in range(mapped.shape[0]):
        target[mapped[k]] += deltas[_move(action, invalid_mask, slots[k])]
    return bad


def deltas() -> np.ndarray:
    """(15,) int64 replica change of each move (contiguous, for the kernels)."""
    return _DELTAS


@numba.njit(cache=True)
def view_kernel(replicas, ready, cpu_m, mem_mi, rps_in, cpu_request, min_r, max_r, edge_src,
                edge_dst, edge_qps, edge_p95, edge_err, edge_mtls, edge_requests, node_slot,
                edge_slot, hpa_target, invalid_table, only_nothing, work, svc, node_mask,
                edge_df, edge_mask, global_feats, invalid):
    """`gnnrl.core.envs.cluster_view.observation_from_view` of one `ClusterView`.

    Shapes: per service (S,) float64 (NaN = unknown; NaN bounds = not owned), per edge
    (E,) float64 (edge_requests bool), node_slot (S,) / edge_slot (E,) int64 (-1 = not
    observed); invalid_table (81, 15) int8; work (4, S) float64 scratch. Outputs, zeroed:
    svc (max_nodes, 6) float32, node_mask (max_nodes,) int8, edge_df (max_edges, 7)
    float32, edge_mask (max_edges,) int8; global_feats (4,) float32 and invalid
    (max_nodes, 15) int8 are overwritten. Sums run in numpy's order over the observed
    services (`np_sum`), so the result equals the numpy reference bit for bit.
    Returns the number of observed services.
    """
    S = replicas.shape[0]
    sent = work[0]
    got = work[1]
    for s in range(S):
        sent[s] = 0.0
        got[s] = 0.0
    for e in range(edge_src.shape[0]):
        row = edge_slot[e]
        if row < 0:
            continue
        i, j = edge_src[e], edge_dst[e]
        req = edge_requests[e]
        qps = edge_qps[e] if req else 0.0
        sent[i] += qps
        got[j] += qps
        edge_df[row, 0] = node_slot[i]
        edge_df[row, 1] = node_slot[j]
        edge_df[row, 2] = 1.0
        edge_df[row, 3] = qps
        edge_df[row, 4] = edge_p95[e] if req else 0.0
        edge_df[row, 5] = edge_err[e] if req else 0.0
        edge_df[row, 6] = edge_mtls[e]
        edge_mask[row] = 1
    for r in range(invalid.shape[0]):
        for m in range(invalid.shape[1]):
            invalid[r, m] = invalid_table[only_nothing, m]
    k = 0
    for s in range(S):
        row = node_slot[s]
        if row < 0:
            continue
        cur = replicas[s]
        owned = not (np.isnan(min_r[s]) or np.isnan(max_r[s]))
        lo = min_r[s] if owned else cur
        hi = max_r[s] if owned else cur
        desired = cur
        if owned and not np.isnan(cpu_request[s]):
            # HPA's formula as a feature (see `hpa_desired`); NaN CPU stays NaN
            if ready[s] > 0:
                desired = np.ceil(cpu_m[s] / max(cpu_request[s], 1e-9) / hpa_target - 1e-9)
            desired = min(max(desired, lo), hi) if desired == desired else desired
        svc[row, 0] = cur
        svc[row, 1] = desired
        svc[row, 2] = cpu_m[s]
        svc[row, 3] = mem_mi[s]
        svc[row, 4] = rps_in[s]
        svc[row, 5] = sent[s]
        node_mask[row] = 1
        c = int(cur) if cur == cur else 0
        vrow = _valid_row(c, int(lo) if lo == lo else 0, int(hi) if hi == hi else 0)
        for m in range(invalid.shape[1]):
            invalid[row, m] = invalid_table[vrow, m]
        # gathered in service order for the sums below
        work[2, k] = cur
        x = rps_in[s] - got[s]
        work[3, k] = x if (x > 0.0 or x != x) else 0.0  # np.maximum(x, 0): NaN stays
        k += 1
    pods = np_sum(work[2], k)
    entry = np_sum(work[3], k)
    k = 0
    for s in range(S):
        if node_slot[s] >= 0:
            work[2, k] = cpu_m[s]
            work[3, k] = mem_mi[s]
            k += 1
    per_pod = max(pods, 1.0)
    global_feats[0] = pods
    global_feats[1] = np_sum(work[2], k) / per_pod
    global_feats[2] = np_sum(work[3], k) / per_pod
    global_feats[3] = entry
    return k


@numba.njit(cache=True)
def metrics_view_kernel(replicas, ready, cpu_m, mem_mi, rps_in, edge_qps, edge_p95, edge_err,
                        edge_mtls, copy, cols, edges, edge_dst, edge_requests, tcp_only):
    """`gnnrl.core.envs.cluster_view.view_from_metrics`'s arrays for copy `copy`, in one pass.

    Inputs: a `StepMetrics`' (N, S) / (N, E) arrays; cols (K,) the view's sim columns;
    edges (M,) the sim edges between them; edge_dst (E,) and edge_requests (E,) bool of
    every sim edge; tcp_only (S,) bool (`SimObservables`). Sums run in edge order, as
    `observable_rates` does, so the values equal the numpy path bit for bit.

    Returns (replicas, ready, cpu_m, mem_mi, rps_in (K,) float64, live (L,) int64 positions
    in `edges` of the calls with traffic, qps, p95, err, mtls (L,) float64).
    """
    S = replicas.shape[1]
    tcp = np.zeros(S)
    for e in range(edge_qps.shape[1]):
        if not edge_requests[e]:
            tcp[edge_dst[e]] += edge_qps[copy, e]
    K = cols.shape[0]
    rep = np.empty(K)
    rdy = np.empty(K)
    cpu = np.empty(K)
    mem = np.empty(K)
    rps = np.empty(K)
    for k in range(K):
        c = cols[k]
        rep[k] = replicas[copy, c]
        rdy[k] = ready[copy, c]
        cpu[k] = cpu_m[copy, c]
        mem[k] = mem_mi[copy, c]
        x = 0.0 if tcp_only[c] else rps_in[copy, c] - tcp[c]
        rps[k] = x if (x > 0.0 or x != x) else 0.0
    L = 0
    for k in range(edges.shape[0]):
        if edge_qps[copy, edges[k]] > 0:
            L += 1
    live = np.empty(L, dtype=np.int64)
    qps = np.empty(L)
    p95 = np.empty(L)
    err = np.empty(L)
    mtls = np.empty(L)
    i = 0
    for k in range(edges.shape[0]):
        e = edges[k]
        if edge_qps[copy, e] > 0:
            w = 1.0 if edge_requests[e] else 0.0
            live[i] = k
            qps[i] = edge_qps[copy, e] * w
            p95[i] = edge_p95[copy, e] * w
            err[i] = edge_err[copy, e] * w
            mtls[i] = edge_mtls[copy, e]
            i += 1
    return rep, rdy, cpu, mem, rps, live, qps, p95, err, mtls
