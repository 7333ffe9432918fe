"""`BatchedSim.step` as one compiled kernel (numba), the fast twin of the numpy reference.

The kernel runs the model of `gnnrl.sim.core` (see its module docstring) copy by copy,
service by service, in the order of the numpy reference's vectorised passes:

1. scaling (pending pods first out, new ones in the start-up pipeline);
2. arrivals (Poisson noise from the normals drawn by the caller), effective ready pods,
   traffic, service, backlog and drops, one service at a time in call-graph depth order
   (callers first), along with each service's own latency terms;
3. callees' latency totals added to their callers, deepest first;
4. outputs: latency, errors, resources, network, edges; the start-up pipeline advances.

Randomness: the kernel draws nothing. The caller passes the standard normals it drew from
the simulator's ``numpy.random.Generator`` in the same order and number as the numpy
reference, so both backends consume the same stream (identical results, and a saved
generator state resumes either one exactly).

Sums over the call graph run over the non-zero entries of the call matrix (CSR) where the
reference multiplies dense blocks with BLAS: results agree to float rounding (~1e-16
relative; tests/test_sim_kernel.py holds them to 1e-9 over long episodes).

Compiled once per machine (``cache=True`` keeps the machine code under ``__pycache__``),
so a new process loads it instead of compiling.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from gnnrl.sim.queueing import RHO_CAP, Z95

#: rows of the per-service constants (NUM_CONSTS, S) float64
CAP, ST_S, IDLE_M, CPU_PER_REQ, MEM_BASE, MEM_PER_RPS, REQ_KB, RESP_KB, TIMEOUT_S = range(9)
NUM_CONSTS = 9
#: rows of the float output block (NUM_FLOAT_OUT, N, S)
(RPS_IN, SERVED, CPU_M, MEM_MI, RX_KBPS, TX_KBPS, P95_MS, MEAN_MS, ERR_RATE, BACKLOG,
 OUT_RPS) = range(11)
NUM_FLOAT_OUT = 11
#: rows of the int output block (2, N, S): pods that exist, Ready pods
REPLICAS, READY = 0, 1
#: rows of the edge output block (4, N, E)
EDGE_QPS, EDGE_P95, EDGE_ERR, EDGE_MTLS = range(4)
#: rows of the entry output block (3, N)
E2E_P95, E2E_MEAN, E2E_ERR = range(3)
#: rows of the work buffer (WORK_ROWS, S): served, offered, p95 (unmasked), error rate,
#: four latency totals
_W_SERVED, _W_LAM, _W_P95, _W_ERR, _W_TOT = 0, 1, 2, 3, 4
WORK_ROWS = 8


@numba.njit(cache=True, inline="always")
def _gamma_p95(mean: float, var: float) -> float:
    """`gnnrl.sim.queueing.gamma_p95` for one value, the same operations in the same order."""
    if not mean > 0:
        return 0.0
    safe_mean = max(mean, 1e-12)
    k = (safe_mean * safe_mean) / max(var, 1e-18)
    k = max(k, 1e-3)
    k *= 9.0
    a = 1.0 / k
    r = math.sqrt(a)
    r *= Z95
    r += 1.0
    r -= a
    r = max(r, 0.0)
    q = r * r
    q *= r
    q *= safe_mean
    return q


@numba.njit(cache=True, inline="always")
def _scale(n, s, ready, pending, active, target, has_target):
    """Pods of service s in copy n move to the target; returns the pods that exist."""
    K = pending.shape[0]
    rep = ready[n, s]
    for k in range(K):
        rep += pending[k, n, s]
    if not has_target:
        return rep
    t = max(target[n, s], 0) if active[n, s] else 0
    delta = t - rep
    if delta > 0:
        pending[0, n, s] += delta
    elif delta < 0:  # newest pending pods first, then ready ones
        down = -delta
        for k in range(K):
            take = min(down, pending[k, n, s])
            pending[k, n, s] -= take
            down -= take
        ready[n, s] -= min(down, ready[n, s])
    return t


@numba.njit(cache=True, inline="always")
def _own_latency(s, mu, lam, eff, cap_t, b_start, b_end, dropped, dt, st_s, tot):
    """Service s's own latency terms into tot[:, s]: deterministic delay (s), random mean
    (s) and variance (s^2), log P(no drop)."""
    pos = eff > 0
    if b_end > 0:  # overload: the fluid backlog carries the queueing
        only = 1.0 / mu
        r_mean = only
        r_var = only * only
    else:
        lam_pod = lam / max(eff, 1e-9) if pos else 0.0
        rho = min(lam_pod / mu, RHO_CAP)
        r_mean = 1.0 / (mu * (1.0 - rho))
        r_var = r_mean * r_mean
    delay = 0.0
    if pos and (b_start > 0 or b_end > 0):
        delay = 0.5 * (b_start + b_end) / max(cap_t, 1e-9)
    tot[0, s] = st_s + delay
    tot[1, s] = r_mean
    tot[2, s] = r_var
    tot[3, s] = 0.0
    if dropped > 0:  # (log1p is slow; without drops the term is exactly 0)
        offered = lam * dt + b_start
        share = dropped / max(offered, 1e-12) if offered > 0 else 0.0
        share = min(max(share, 0.0), 1.0 - 1e-12)
        tot[3, s] = math.log1p(-share)


@numba.njit(cache=True)
def _forward(n, entry, dt, consts, pending_frac, in_ptr, in_src, in_w, entry_col, ready,
             pending, backlog, active, target, has_target, work, out_f, out_i):
    """Scaling, effective pods, traffic, service, backlog and drops of copy n, callers
    first; each service's own latency terms into the work buffer."""
    K, S = pending.shape[0], ready.shape[1]
    served, lam_s, tot = work[_W_SERVED], work[_W_LAM], work[_W_TOT:_W_TOT + 4]
    for s in range(S):
        rep = _scale(n, s, ready, pending, active, target, has_target)
        out_i[REPLICAS, n, s] = rep
        # a starting pod serves the share of the step it is up
        if rep > ready[n, s]:
            acc = 0.0
            for k in range(K):
                acc += pending[k, n, s] * pending_frac[k, s]
            eff = ready[n, s] + acc
        else:
            eff = float(ready[n, s])
        # offered load: the entry's plus the calls of the callers' served requests
        x = 0.0
        for j in range(in_ptr[s], in_ptr[s + 1]):
            x += in_w[j] * served[in_src[j]]
        if s == entry_col:
            x = entry + x
        lam = x if active[n, s] else 0.0
        # service; backlog capped at timeout x capacity, the rest dropped
        mu = consts[CAP, s]
        cap_t = eff * mu
        b_start = backlog[n, s]
        w = lam * dt
        w = b_start + w
        done = min(w, cap_t * dt)
        served[s] = done / dt
        lam_s[s] = lam
        left = w - done
        b_end = min(left, cap_t * consts[TIMEOUT_S, s])
        backlog[n, s] = b_end
        out_f[RPS_IN, n, s] = lam
        out_f[SERVED, n, s] = served[s]
        out_f[BACKLOG, n, s] = b_end
        _own_latency(s, mu, lam, eff, cap_t, b_start, b_end, left - b_end, dt,
                     consts[ST_S, s], tot)


@numba.njit(cache=True)
def _add_callees(n, out_ptr, out_dst, out_w, active, tot):
    """Callers add their active callees' latency totals (deepest first: services are in
    call-graph depth order)."""
    for s in range(tot.shape[1] - 1, -1, -1):
        a0 = a1 = a2 = a3 = 0.0
        for j in range(out_ptr[s], out_ptr[s + 1]):
            d = out_dst[j]
            if active[n, d]:
                p = out_w[j]
                a0 += p * tot[0, d]
                a1 += p * tot[1, d]
                a2 += p * tot[2, d]
                a3 += p * tot[3, d]
        tot[0, s] += a0
        tot[1, s] += a1
        tot[2, s] += a2
        tot[3, s] += a3


@numba.njit(cache=True, inline="always")
def _to_callees(n, s, out_ptr, out_dst, out_w, consts, active):
    """Per request served by s: calls, response KiB and request KiB to active callees."""
    calls = resp = req = 0.0
    for j in range(out_ptr[s], out_ptr[s + 1]):
        d = out_dst[j]
        if active[n, d]:
            p = out_w[j]
            calls += p
            resp += p * consts[RESP_KB, d]
            req += p * consts[REQ_KB, d]
    return calls, resp, req


@numba.njit(cache=True, inline="always")
def _advance_startup(n, s, pending_done, ready, pending):
    """Pods Ready by the step's end join; the others move one step along."""
    K = pending.shape[0]
    up = 0
    for k in range(K):
        if pending_done[k, s]:
            up += pending[k, n, s]
    ready[n, s] += up
    for k in range(K - 1, 0, -1):
        pending[k, n, s] = 0 if pending_done[k - 1, s] else pending[k - 1, n, s]
    pending[0, n, s] = 0


@numba.njit(cache=True)
def _outputs(n, consts, pending_done, out_ptr, out_dst, out_w, entry_col, ready, pending,
             active, metric_noise, noise, has_noise, work, out_f, out_i, out_g):
    """Latency, errors, resources and network of copy n; the start-up pipeline advances."""
    served, lam_s, tot = work[_W_SERVED], work[_W_LAM], work[_W_TOT:_W_TOT + 4]
    for s in range(ready.shape[1]):
        on = active[n, s]
        p95_ms = (tot[0, s] + _gamma_p95(tot[1, s], tot[2, s])) * 1000.0
        mean_ms = (tot[0, s] + tot[1, s]) * 1000.0
        err = 0.0
        if tot[3, s] < 0 and on:
            err = min(max(-math.expm1(tot[3, s]), 0.0), 1.0)
        work[_W_P95, s] = p95_ms  # unmasked, for the edges (masked by their own flag)
        work[_W_ERR, s] = err
        if s == entry_col:
            out_g[E2E_P95, n], out_g[E2E_MEAN, n], out_g[E2E_ERR, n] = p95_ms, mean_ms, err
        out_f[P95_MS, n, s] = p95_ms if on else 0.0
        out_f[MEAN_MS, n, s] = mean_ms if on else 0.0
        out_f[ERR_RATE, n, s] = err
        rep = out_i[REPLICAS, n, s]
        srv = served[s]
        cpu = consts[IDLE_M, s] * float(rep) + srv * consts[CPU_PER_REQ, s]
        mem = consts[MEM_BASE, s] * float(rep) + srv * consts[MEM_PER_RPS, s]
        if has_noise:
            f = max(1.0 + metric_noise * noise[n, s], 0.0)
            cpu *= f
            mem *= f
        out_f[CPU_M, n, s] = cpu
        out_f[MEM_MI, n, s] = mem
        calls, resp, req = _to_callees(n, s, out_ptr, out_dst, out_w, consts, active)
        out_f[OUT_RPS, n, s] = srv * calls
        out_f[RX_KBPS, n, s] = 8.0 * (lam_s[s] * consts[REQ_KB, s] + srv * resp)
        out_f[TX_KBPS, n, s] = 8.0 * (srv * consts[RESP_KB, s] + srv * req)
        if rep > ready[n, s]:
            _advance_startup(n, s, pending_done, ready, pending)
        out_i[READY, n, s] = ready[n, s]


@numba.njit(cache=True)
def _edges(n, edge_src, edge_dst, edge_p, edge_mtls, active, work, out_e):
    """Per-edge req/s, callee p95 and error rate, mTLS share of copy n (0 when off)."""
    for e in range(edge_src.shape[0]):
        a, b = edge_src[e], edge_dst[e]
        on = 1.0 if active[n, a] and active[n, b] else 0.0
        out_e[EDGE_QPS, n, e] = work[_W_SERVED, a] * edge_p[e] * on
        out_e[EDGE_P95, n, e] = work[_W_P95, b] * on
        out_e[EDGE_ERR, n, e] = work[_W_ERR, b] * on
        out_e[EDGE_MTLS, n, e] = edge_mtls[e] * on


@numba.njit(cache=True)
def step_kernel(dt, consts, pending_frac, pending_done, in_ptr, in_src, in_w, out_ptr,
                out_dst, out_w, edge_src, edge_dst, edge_p, edge_mtls, entry_col,
                ready, pending, backlog, active, entry_rps, z, metric_noise, noise, target,
                work, out_f, out_i, out_e, out_g):
    """Advance N copies by one interval of `dt` seconds, in place.

    Shapes (N copies, S services, K start-up steps, E edges, C non-zero calls):
        consts (NUM_CONSTS, S) float; pending_frac (K, S) float; pending_done (K, S) bool;
        in_ptr / out_ptr (S + 1,), in_src / out_dst (C,) int64, in_w / out_w (C,) float:
        the call matrix by callee / by caller; edge_src, edge_dst (E,) int64, edge_p,
        edge_mtls (E,) float; entry_col int.
        State, updated: ready (N, S) int64, pending (K, N, S) int64, backlog (N, S) float
        (requests); active (N, S) bool.
        Inputs: entry_rps (N,) req/s; z (N,) normals for the arrivals or (0,) for none;
        noise (N, S) normals for the CPU/memory measurements or (0, S) for none (scaled
        by `metric_noise`); target (N, S) int64 pod counts or (0, S) to keep them.
        work (WORK_ROWS, S) float scratch.
        Outputs, written: out_f (NUM_FLOAT_OUT, N, S), out_i (2, N, S) int64,
        out_e (4, N, E), out_g (3, N) (see the row names in this module).
    """
    has_target, has_z, has_noise = target.shape[0] > 0, z.shape[0] > 0, noise.shape[0] > 0
    tot = work[_W_TOT:_W_TOT + 4]
    for n in range(ready.shape[0]):
        # Poisson arrival counts, normal approximation: sd = sqrt(lambda dt) requests
        entry = max(entry_rps[n], 0.0)
        if has_z:
            entry = max(entry + z[n] * math.sqrt(entry / dt), 0.0)
        _forward(n, entry, dt, consts, pending_frac, in_ptr, in_src, in_w, entry_col, ready,
                 pending, backlog, active, target, has_target, work, out_f, out_i)
        _add_callees(n, out_ptr, out_dst, out_w, active, tot)
        _outputs(n, consts, pending_done, out_ptr, out_dst, out_w, entry_col, ready, pending,
                 active, metric_noise, noise, has_noise, work, out_f, out_i, out_g)
        _edges(n, edge_src, edge_dst, edge_p, edge_mtls, active, work, out_e)


def csr(matrix: np.ndarray, by_column: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Non-zero entries of a square (S, S) matrix, grouped by row (by_column=False) or by
    column. Returns ptr (S + 1,) int64, index of the other end (C,) int64, values (C,)."""
    m = matrix.T if by_column else matrix
    rows, cols = np.nonzero(m)  # row-major: grouped by row, ascending column
    ptr = np.zeros(m.shape[0] + 1, dtype=np.int64)
    np.add.at(ptr, rows + 1, 1)
    return (np.cumsum(ptr), cols.astype(np.int64),
            np.ascontiguousarray(m[rows, cols], dtype=np.float64))
