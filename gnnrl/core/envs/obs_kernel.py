"""Compiled (numba) kernels of the env layer: observations, info rows and action moves.

They compute exactly what the numpy code in `gnnrl.core.envs.observation`,
`gnnrl.core.envs.cluster_view`, `gnnrl.core.envs.obs_extras` and
`gnnrl.core.envs.online_boutique` computes (that code stays as the reference the tests
compare against), in one pass over the observed services and edges, writing through the
flat indices of an `ObservationLayout`. Sums that numpy computes with ``np.add.reduce``
use numpy's own pairwise order (`np_sum`), so float results are bit-identical. The two
matrix products of the unserved share stay numpy's (`unserved_terms_kernel` prepares
their operands): BLAS sums them in an order of its own that a loop does not reproduce.

The schema-v2 columns (`gnnrl.contracts.observation`) are written by the same kernels
as the seed's (`view_kernel` for one view, `observe_kernel` for N copies), straight into
the 18-column node rows and 10 globals.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from gnnrl.contracts.observation import GLOBAL_DIM_RAW, NODE_DIM_RAW, V1_GLOBAL_DIM, V1_NODE_DIM
from gnnrl.core.envs.moves import DELTAS, MAX_STEP, NUM_MOVES
from gnnrl.core.envs.obs_extras import DAY_S, TOD_RADIANS_PER_S

_DELTAS = np.ascontiguousarray(DELTAS, dtype=np.int64)
#: node row / globals widths (schema v2) and where the v2 columns start
_W = NODE_DIM_RAW
_V1 = V1_NODE_DIM
_G = GLOBAL_DIM_RAW
_G1 = V1_GLOBAL_DIM


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


@numba.njit(cache=True, inline="always")
def _nz(x):
    """`obs_extras.nan_to_zero` of one value."""
    return 0.0 if x != x else x


@numba.njit(cache=True, inline="always")
def _pos(x):
    """``np.maximum(x, 0.0)`` of one value (NaN stays NaN)."""
    return x if (x > 0.0 or x != x) else 0.0


@numba.njit(cache=True, inline="always")
def _clip01(x):
    """``np.clip(x, 0.0, 1.0)`` of one value (NaN stays NaN)."""
    if x < 0.0:
        return 0.0
    if x > 1.0:
        return 1.0
    return x


@numba.njit(cache=True, inline="always")
def _trend(now, past):
    """`obs_extras.trend_ratio` of one value: 1 when the past is unknown."""
    return 1.0 if past != past else (now + 1.0) / (past + 1.0)


@numba.njit(cache=True, inline="always")
def _unserved(failed, offered, entry_rps, e2e_err, is_entry):
    """`cluster_view.sim_unserved` of one service from its entries of the two products;
    the entry adds the ingress gateway's call (`entry_rps` req/s at the end-to-end error
    share)."""
    if is_entry:
        ext = _pos(_nz(entry_rps))
        failed = failed + ext * _clip01(_nz(e2e_err))
        offered = offered + ext
    return failed / offered if offered > 0 else 0.0


@numba.njit(cache=True, inline="always")
def _node_tail(row, rep, ready, startup, request, limit, lo, hi, unserved, share):
    """Node columns 6..14 of one service (`obs_extras.node_tail`) into `row` (18,)."""
    row[_V1] = ready
    row[_V1 + 1] = _pos(rep - ready)
    row[_V1 + 2] = startup
    row[_V1 + 3] = request
    row[_V1 + 4] = limit
    row[_V1 + 5] = lo
    row[_V1 + 6] = hi
    row[_V1 + 7] = _clip01(unserved)
    row[_V1 + 8] = share


@numba.njit(cache=True, inline="always")
def _globals_tail(g, e2e_p95, slo_ms, interval_s, dial, tod_sin, tod_cos):
    """Globals 4..9 of one copy (`obs_extras.globals_tail`) into `g` (10,)."""
    g[_G1] = e2e_p95 / slo_ms
    g[_G1 + 1] = dial
    g[_G1 + 2] = slo_ms
    g[_G1 + 3] = interval_s
    g[_G1 + 4] = tod_sin
    g[_G1 + 5] = tod_cos


@numba.njit(cache=True, inline="always")
def _time_of_day(time_of_day_s):
    """(sin, cos) of the time of day, as `obs_extras.globals_tail` computes them: Python's
    float % is np.mod's; numba's sin and cos are the C library's, numpy's its own SIMD
    loops. Measured equal bit for bit over 10^6 angles (numpy 2.4, x86-64 with AVX-512),
    and the observation stores float32, which hides a last-bit difference but for rare
    ties; the one-view tests compare the two. (The batched builder takes numpy's.)"""
    angle = TOD_RADIANS_PER_S * (time_of_day_s % DAY_S)
    return math.sin(angle), math.cos(angle)


@numba.njit(cache=True, inline="always")
def _share_finish(share, has_in, rps_in, e2e_p95, slo_ms):
    """`obs_extras.slo_share` after the incoming maxima: a service with no shown incoming
    request-level edge that receives traffic gets the end-to-end p95; then / SLO."""
    e2e = _nz(e2e_p95)
    for s in range(share.shape[0]):
        if has_in[s] == 0.0 and _nz(rps_in[s]) > 0:
            share[s] = e2e
        share[s] = share[s] / slo_ms


@numba.njit(cache=True, inline="always")
def _is_plus_zero(x):
    return x == 0.0 and math.copysign(1.0, x) > 0.0


@numba.njit(cache=True, inline="always")
def _unserved_terms(edge_qps, edge_err, edge_requests, shown, rps_in, e2e_err, entry, n, r,
                    offered_w, failed_w):
    """`unserved_terms_kernel` of copy n (shown's row n, or 0 when it has one) into row r
    of the outputs; True if the copy has a failure to count."""
    sr = n if shown.shape[0] > 1 else 0
    failures = not _is_plus_zero(_pos(_nz(rps_in[n, entry])) * _clip01(_nz(e2e_err[n])))
    for e in range(offered_w.shape[1]):
        q = edge_qps[n, e]
        q = q * (1.0 if (edge_requests[e] and q > 0) else 0.0)
        q = q * shown[sr, e]
        offered_w[r, e] = q
        failed_w[r, e] = q * _clip01(_nz(edge_err[n, e]))
        failures |= not _is_plus_zero(failed_w[r, e])
    return failures


@numba.njit(cache=True)
def unserved_terms_kernel(edge_qps, edge_err, edge_requests, shown, rps_in, e2e_err, entry,
                          offered_w, failed_w):
    """The element-wise operands of `cluster_view.sim_unserved`'s two products.

    edge_qps, edge_err (N, E) float64; edge_requests (E,) bool; shown (N, E) or (1, E)
    float 0/1; rps_in (N, S), e2e_err (N,) and entry as `sim_unserved` takes them. Writes
    offered_w = qps (request-level calls with traffic that the graph shows) and failed_w
    = qps x clip(err, 0, 1) (NaN err = 0), both (N, E) float64, as numpy's element-wise
    products give them (so ``offered_w @ dst_inc`` is numpy's bit for bit).

    Returns whether any copy has a failure to count: a failed_w, or the entry's outside
    calls' failed req/s, other than +0. Without one every unserved share is exactly +0
    (numpy's sums of +0 terms are +0, and +0 / x is +0), products or not.
    """
    failures = False
    for n in range(offered_w.shape[0]):
        failures |= _unserved_terms(edge_qps, edge_err, edge_requests, shown, rps_in,
                                    e2e_err, entry, n, n, offered_w, failed_w)
    return failures


@numba.njit(cache=True)
def unserved_share_kernel(failed, offered, rps_in, e2e_err, copy, entry, cols, out):
    """`cluster_view.sim_unserved` of copy `copy` for the sim columns `cols` (K,) into out
    (K,).

    failed, offered: (1, S) the products of `unserved_terms_kernel`'s operands for that
    copy; rps_in (N, S) and e2e_err (N,) the metrics' (the entry's outside callers).
    """
    for k in range(cols.shape[0]):
        c = cols[k]
        out[k] = _unserved(failed[0, c], offered[0, c], rps_in[copy, entry], e2e_err[copy],
                           c == entry)


@numba.njit(cache=True, inline="always")
def _copy_slo_share(n, share, has_in, edge_qps, edge_p95, edge_requests, edge_dst,
                    edge_observed, rps_in, e2e_p95, slo_ms):
    """`observation.widen_batch`'s SLO share of copy n into share (S,): the largest p95 of
    the shown request-level incoming calls with traffic (has_in (S,) scratch)."""
    for s in range(share.shape[0]):
        share[s] = 0.0
        has_in[s] = 0.0
    for e in range(edge_dst.shape[0]):
        if edge_requests[e] and edge_observed[n, e] > 0 and edge_qps[n, e] > 0:
            d = edge_dst[e]
            v = _nz(edge_p95[n, e])
            if v > share[d]:
                share[d] = v
            has_in[d] = 1.0
    _share_finish(share, has_in, rps_in[n], e2e_p95[n], slo_ms)


@numba.njit(cache=True, inline="always")
def _copy_v2(n, k, on, node_rows, replicas, ready, rps_in, active, startup, cpu_request,
             cpu_limit, min_r, max_r, failed, offered, sim_rps_in, e2e_err, entry, share,
             ring, back, staged, t, svc):
    """The v2 node columns of copy n's observed services, `on[k:]` while they are copy
    n's; returns the k after them. Reads the load history `ring` (L, N, S) at its rows
    `back` (J,) (step t minus each lag) and stages now into `staged` (N, S)
    (`BatchedLoadHistory.trends`); t < 0: no history."""
    S = replicas.shape[1]
    while k < on.shape[0] and on[k] < (n + 1) * S:  # `on` is ascending
        s = on[k] - n * S
        row = svc[node_rows[k] * _W:(node_rows[k] + 1) * _W]
        rep = float(replicas[n, s])
        u = _unserved(failed[n, s], offered[n, s], sim_rps_in[n, entry], e2e_err[n],
                      s == entry)
        _node_tail(row, rep, float(ready[n, s]), startup[s], cpu_request[s], cpu_limit[s],
                   float(min_r[s]), float(max_r[s]), u, share[s])
        for j in range(back.shape[0]):
            row[_V1 + 9 + j] = 1.0 if t < 0 else _trend(rps_in[n, s], ring[back[j], n, s])
        k += 1
    if t >= 0:
        for s in range(S):
            staged[n, s] = rps_in[n, s] if active[n, s] else np.nan
    return k


@numba.njit(cache=True)
def observe_kernel(replicas, ready, cpu_m, mem_mi, rps_in, out_rps, edge_qps, edge_p95,
                   edge_err, edge_mtls, entry_rps, cpu_request, min_r, max_r, hpa_target,
                   on, node_rows, active, edge_on, edge_rows, edge_ends, invalid_table,
                   only_nothing, work, svc, edge_df, global_feats, invalid, startup,
                   cpu_limit, failed, offered, sim_rps_in, e2e_err, entry, edge_requests,
                   edge_dst, edge_observed, e2e_p95, slo_ms, interval_s, dial, tod_sin,
                   tod_cos, ring, staged, t, lags):
    """`gnnrl.core.envs.observation.build_observations` (schema v2) into zeroed flat outputs.

    Shapes: replicas, ready (N, S) int64; cpu_m, mem_mi, rps_in, out_rps (N, S) float;
    edge_* (N, E) float; entry_rps (N,); cpu_request (S,) float, min_r / max_r (S,) int64;
    layout arrays as in `ObservationLayout` (active (N, S) bool; `on` ascending);
    invalid_table (81, 15) int8; work (4, S) float scratch. Outputs: svc
    (N * max_nodes * 18,) float32 and edge_df (N * max_edges * 7,) float32, both zeroed;
    global_feats (N, 10) float32; invalid (N * max_nodes, 15) int8.

    Schema v2 inputs: startup, cpu_limit (S,) float; failed, offered (N, S) the products
    of `unserved_terms_kernel`'s operands; sim_rps_in (N, S) and e2e_err (N,) of the
    metrics; entry the entry's column; edge_requests (E,) bool, edge_dst (E,) int64,
    edge_observed (N, E) float 0/1; e2e_p95 (N,) the true end-to-end p95; slo_ms,
    interval_s; dial, tod_sin, tod_cos (N,) (`obs_extras.time_of_day`: numpy's sin and
    cos, the reference's, at ~10 ns a value); the load history: ring (L, N, S), staged
    (N, S), step t (< 0: none, every trend 1) and lags (J,) int64.
    """
    N, S = replicas.shape
    E = edge_qps.shape[1]
    for r in range(invalid.shape[0]):
        for m in range(invalid.shape[1]):
            invalid[r, m] = invalid_table[only_nothing, m]
    n = 0
    for k in range(on.shape[0]):
        i = on[k]
        while i >= (n + 1) * S:  # n, s = divmod(i, S), `on` being ascending
            n += 1
        s = i - n * S
        cur = replicas[n, s]
        # HPA's formula as a feature (see `hpa_desired`)
        util_sum = cpu_m[n, s] / max(cpu_request[s], 1e-9)
        desired = np.ceil(util_sum / hpa_target - 1e-9) if ready[n, s] > 0 else float(cur)
        desired = min(max(desired, float(min_r[s])), float(max_r[s]))
        row = node_rows[k]
        base = row * _W
        svc[base] = cur
        svc[base + 1] = desired
        svc[base + 2] = cpu_m[n, s]
        svc[base + 3] = mem_mi[n, s]
        svc[base + 4] = rps_in[n, s]
        svc[base + 5] = out_rps[n, s]
        vrow = _valid_row(cur, min_r[s], max_r[s])
        for m in range(invalid.shape[1]):
            invalid[row, m] = invalid_table[vrow, m]
    n = 0
    for k in range(edge_on.shape[0]):
        i = edge_on[k]
        while i >= (n + 1) * E:  # n, e = divmod(i, E), `edge_on` being ascending
            n += 1
        e = i - n * E
        base = edge_rows[k] * 7
        edge_df[base] = edge_ends[3 * k]
        edge_df[base + 1] = edge_ends[3 * k + 1]
        edge_df[base + 2] = edge_ends[3 * k + 2]
        edge_df[base + 3] = edge_qps[n, e]
        edge_df[base + 4] = edge_p95[n, e]
        edge_df[base + 5] = edge_err[n, e]
        edge_df[base + 6] = edge_mtls[n, e]
    back = np.empty(lags.shape[0], dtype=np.int64)  # the history's rows the lags look at
    for j in range(lags.shape[0]):
        back[j] = (t - lags[j]) % ring.shape[0]
    k = 0
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
        _globals_tail(global_feats[n], e2e_p95[n], slo_ms, interval_s, dial[n], tod_sin[n],
                      tod_cos[n])
        _copy_slo_share(n, work[2], work[3], edge_qps, edge_p95, edge_requests, edge_dst,
                        edge_observed, rps_in, e2e_p95, slo_ms)
        k = _copy_v2(n, k, on, node_rows, replicas, ready, rps_in, active, startup,
                     cpu_request, cpu_limit, min_r, max_r, failed, offered, sim_rps_in,
                     e2e_err, entry, work[2], ring, back, staged, t, svc)


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


@numba.njit(cache=True, inline="always")
def _view_edges(edge_src, edge_dst, edge_qps, edge_p95, edge_err, edge_mtls, edge_requests,
                node_slot, edge_slot, sent, got, share, has_in, edge_df, edge_mask):
    """`view_kernel`'s pass over the shown edges: their rows and mask, each service's sent
    and received request-level req/s, and the largest p95 of its shown request-level
    incoming edges (share, has_in: the SLO share before `_share_finish`)."""
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
        if req:  # SLO share: the largest p95 of the shown request-level incoming edges
            v = _nz(edge_p95[e])
            if v > share[j]:
                share[j] = v
            has_in[j] = 1.0


@numba.njit(cache=True)
def _view(replicas, ready, cpu_m, mem_mi, rps_in, cpu_request, min_r, max_r, edge_src,
          edge_dst, edge_qps, edge_p95, edge_err, edge_mtls, edge_requests, node_slot,
          edge_slot, hpa_target, invalid_table, only_nothing, work, svc, node_mask,
          edge_df, edge_mask, global_feats, invalid, startup, cpu_limit, unserved,
          e2e_p95, slo_ms, interval_s, dial, time_of_day_s, ring, ids, t, lags):
    """`view_kernel`'s body (`metrics_observation_kernel` runs it too)."""
    S = replicas.shape[0]
    sent = work[0]
    got = work[1]
    share = work[4]
    has_in = work[5]
    for s in range(S):
        sent[s] = 0.0
        got[s] = 0.0
        share[s] = 0.0
        has_in[s] = 0.0
    _view_edges(edge_src, edge_dst, edge_qps, edge_p95, edge_err, edge_mtls, edge_requests,
                node_slot, edge_slot, sent, got, share, has_in, edge_df, edge_mask)
    _share_finish(share, has_in, rps_in, e2e_p95, slo_ms)
    for r in range(invalid.shape[0]):
        for m in range(invalid.shape[1]):
            invalid[r, m] = invalid_table[only_nothing, m]
    L = ring.shape[0]
    if t >= 0:
        ring[t % L, :] = np.nan  # row t: this moment, the observed services only
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
        _node_tail(svc[row], cur, ready[s], startup[s], _nz(cpu_request[s]),
                   _nz(cpu_limit[s]), lo, hi, _nz(unserved[s]), share[s])
        for j in range(lags.shape[0]):
            back = t - lags[j]
            svc[row, _V1 + 9 + j] = _trend(rps_in[s], ring[back % L, ids[s]] if back >= 0
                                           else np.nan)
        if t >= 0:
            ring[t % L, ids[s]] = rps_in[s]
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
    tod_sin, tod_cos = _time_of_day(time_of_day_s)
    _globals_tail(global_feats, e2e_p95, slo_ms, interval_s, dial, tod_sin, tod_cos)
    return k


@numba.njit(cache=True)
def view_kernel(replicas, ready, cpu_m, mem_mi, rps_in, cpu_request, min_r, max_r, edge_src,
                edge_dst, edge_qps, edge_p95, edge_err, edge_mtls, edge_requests, node_slot,
                edge_slot, hpa_target, invalid_table, only_nothing, work, svc, node_mask,
                edge_df, edge_mask, global_feats, invalid, startup, cpu_limit, unserved,
                e2e_p95, slo_ms, interval_s, dial, time_of_day_s, ring, ids, t, lags):
    """`gnnrl.core.envs.cluster_view.observation_from_view` (schema v2) of one `ClusterView`.

    Shapes: per service (S,) float64 (NaN = unknown; NaN bounds = not owned), per edge
    (E,) float64 (edge_requests bool), node_slot (S,) / edge_slot (E,) int64 (-1 = not
    observed); invalid_table (81, 15) int8; work (6, S) float64 scratch. Outputs, zeroed:
    svc (max_nodes, 18) float32, node_mask (max_nodes,) int8, edge_df (max_edges, 7)
    float32, edge_mask (max_edges,) int8; global_feats (10,) float32 and invalid
    (max_nodes, 15) int8 are overwritten. Sums run in numpy's order over the observed
    services (`np_sum`), so the result equals the numpy reference bit for bit.

    Schema v2 inputs: startup, cpu_limit, unserved (S,) float64 (the view's, with its
    defaults filled in); e2e_p95 ms; the `ObservationContext`'s slo_ms, interval_s, dial
    and time_of_day_s; the load history (`LoadHistory`): ring (L, C) float64, ids (S,)
    int64 the services' columns in it, step t (< 0: no history, every trend 1) and lags
    (J,) int64. The history's row t is rewritten with the observed services' req/s.
    Returns the number of observed services.
    """
    return _view(replicas, ready, cpu_m, mem_mi, rps_in, cpu_request, min_r, max_r, edge_src,
                 edge_dst, edge_qps, edge_p95, edge_err, edge_mtls, edge_requests, node_slot,
                 edge_slot, hpa_target, invalid_table, only_nothing, work, svc, node_mask,
                 edge_df, edge_mask, global_feats, invalid, startup, cpu_limit, unserved,
                 e2e_p95, slo_ms, interval_s, dial, time_of_day_s, ring, ids, t, lags)


@numba.njit(cache=True)
def _gather(replicas, ready, cpu_m, mem_mi, rps_in, edge_qps, edge_p95, edge_err,
            edge_mtls, e2e_err, copy, cols, edges, edge_dst, edge_requests, tcp_only, entry,
            edge_shown, nodes, edge_vals, live, offered_w, failed_w):
    """`metrics_view_kernel`'s body (`metrics_observation_kernel` runs it too)."""
    S = replicas.shape[1]
    tcp = np.zeros(S)
    for e in range(edge_qps.shape[1]):
        if not edge_requests[e]:
            tcp[edge_dst[e]] += edge_qps[copy, e]
    for k in range(cols.shape[0]):
        c = cols[k]
        nodes[0, k] = replicas[copy, c]
        nodes[1, k] = ready[copy, c]
        nodes[2, k] = cpu_m[copy, c]
        nodes[3, k] = mem_mi[copy, c]
        x = 0.0 if tcp_only[c] else rps_in[copy, c] - tcp[c]
        nodes[4, k] = x if (x > 0.0 or x != x) else 0.0
    i = 0
    for k in range(edges.shape[0]):
        e = edges[k]
        if edge_qps[copy, e] > 0:
            w = 1.0 if edge_requests[e] else 0.0
            live[i] = k
            edge_vals[0, i] = edge_qps[copy, e] * w
            edge_vals[1, i] = edge_p95[copy, e] * w
            edge_vals[2, i] = edge_err[copy, e] * w
            edge_vals[3, i] = edge_mtls[copy, e]
            i += 1
    for k in range(cols.shape[0]):
        nodes[5, k] = 0.0  # the unserved share, unless a failure is counted
    failures = _unserved_terms(edge_qps, edge_err, edge_requests, edge_shown, rps_in,
                               e2e_err, entry, copy, 0, offered_w, failed_w)
    return i, failures


@numba.njit(cache=True)
def metrics_view_kernel(replicas, ready, cpu_m, mem_mi, rps_in, edge_qps, edge_p95, edge_err,
                        edge_mtls, e2e_err, copy, cols, edges, edge_dst, edge_requests,
                        tcp_only, entry, edge_shown, nodes, edge_vals, live, offered_w,
                        failed_w):
    """`gnnrl.core.envs.cluster_view.view_from_metrics`'s arrays for copy `copy`, in one pass.

    Inputs: a `StepMetrics`' (N, S) / (N, E) arrays; cols (K,) the view's sim columns;
    edges (M,) the sim edges between them; edge_dst (E,) and edge_requests (E,) bool of
    every sim edge; tcp_only (S,) bool and entry (`SimObservables`); e2e_err (N,);
    edge_shown (1, E) float 0/1, `edges` among the sim's. Sums run in edge order, as
    `observable_rates` does, so the values equal the numpy path bit for bit.

    Writes (outputs allocated by the caller, so that no array is boxed on the way back):
    nodes (6, K) float64 rows replicas, ready, cpu_m, mem_mi, rps_in, and 0 (the unserved
    share when no failure is counted); live (M,) int64 positions in `edges` of the calls
    with traffic and edge_vals (4, M) float64 rows qps, p95, err, mtls, both in their first
    L columns; offered_w / failed_w (1, E) the copy's operands of the unserved share's
    products (`unserved_terms_kernel`). Returns (L, whether a failure is counted).
    """
    return _gather(replicas, ready, cpu_m, mem_mi, rps_in, edge_qps, edge_p95, edge_err,
                   edge_mtls, e2e_err, copy, cols, edges, edge_dst, edge_requests, tcp_only,
                   entry, edge_shown, nodes, edge_vals, live, offered_w, failed_w)


@numba.njit(cache=True)
def metrics_observation_kernel(replicas, ready, cpu_m, mem_mi, rps_in, edge_qps, edge_p95,
                               edge_err, edge_mtls, e2e_err, e2e_p95, copy, cols, edges,
                               edge_dst, edge_requests, tcp_only, entry, edge_shown, offered_w,
                               failed_w, failed, offered, view_src, view_dst, view_requests,
                               cpu_request, min_r, max_r, cpu_limit, startup, node_slot,
                               edge_slot, hpa_target, invalid_table, only_nothing, svc,
                               node_mask, edge_df, edge_mask, global_feats, invalid, slo_ms,
                               interval_s, dial, time_of_day_s, ring, ids, t, lags):
    """`view_kernel` of `metrics_view_kernel`'s view of copy `copy`, in one call: the
    single env's observation (`cluster_view.observation_from_metrics`), the same code
    without the `ClusterView` between them.

    Inputs: the metrics and `SimObservables` as `metrics_view_kernel` takes them, e2e_p95
    the true end-to-end p95 of the copy; offered_w, failed_w (1, E) written with the
    unserved share's operands; failed, offered (1, S) their products (numpy's) or (1, 0)
    when not made yet; the `SimViewIndex`'s view_src, view_dst, view_requests (M,) and
    per-service constants (K,); node_slot (K,) and edge_slot (M,) its `view_slots`; the
    rest as `view_kernel` takes it.

    Returns the number of observed services, or -1 when a failure is counted and the
    products are not given (call again with them), without writing the observation.
    """
    K, M = cols.shape[0], edges.shape[0]
    nodes = np.empty((6, K))
    vals = np.empty((4, M))
    live = np.empty(M, dtype=np.int64)
    L, failures = _gather(replicas, ready, cpu_m, mem_mi, rps_in, edge_qps, edge_p95,
                          edge_err, edge_mtls, e2e_err, copy, cols, edges, edge_dst,
                          edge_requests, tcp_only, entry, edge_shown, nodes, vals, live,
                          offered_w, failed_w)
    if failures:
        if failed.shape[1] == 0:
            return -1
        for k in range(K):  # `unserved_share_kernel`
            c = cols[k]
            nodes[5, k] = _unserved(failed[0, c], offered[0, c], rps_in[copy, entry],
                                    e2e_err[copy], c == entry)
    shown = live[:L]  # the calls with traffic: the view's edges
    vals = vals[:, :L]
    return _view(nodes[0], nodes[1], nodes[2], nodes[3], nodes[4], cpu_request, min_r, max_r,
                 view_src[shown], view_dst[shown], vals[0], vals[1], vals[2], vals[3],
                 view_requests[shown], node_slot, edge_slot[shown], hpa_target, invalid_table,
                 only_nothing, np.empty((6, K)), svc, node_mask, edge_df, edge_mask,
                 global_feats, invalid, startup, cpu_limit, nodes[5], e2e_p95, slo_ms,
                 interval_s, dial, time_of_day_s, ring, ids, t, lags)
