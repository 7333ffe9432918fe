"""`BatchedSim.step` as one compiled kernel (numba), the fast twin of the numpy reference.

`step_kernel` runs the model of `gnnrl.sim.core` (see its module docstring) for all N
copies, in phases that each loop over every copy (one call per phase and step, not per
copy):

1. `_scale`: pods move to the targets (pending pods go first when scaling down);
2. `_serve`: arrivals (Poisson noise from the normals drawn by the caller), effective
   ready pods, traffic, service, backlog and drops, in call-graph depth order (callers
   first: a service's offered load needs its callers' served requests);
3. `_own_latency`, `_add_callees`, `_latency`: each service's own latency terms, its
   callees' totals added deepest first, p95 / mean / error rate;
4. `_cpu_mem`, `_network`, `_edges`: resources, network and per-edge values;
5. `_advance_startup`: the start-up pipeline moves on.

The element-wise phases are written branch-free over flat (N x S) arrays, with the
per-service constants repeated per copy, so LLVM vectorises them; the slow functions
(log1p, expm1) run in separate loops, only where something was dropped.

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
from typing import Literal, TypedDict

import numba
import numpy as np

from gnnrl.sim.queueing import RHO_CAP, Z95

#: rows of the per-service constants (NUM_CONSTS, S) float64; the last three: per request
#: served, calls, response KiB and request KiB to the callees when all of them are active
(CAP, ST_S, IDLE_M, CPU_PER_REQ, MEM_BASE, MEM_PER_RPS, REQ_KB, RESP_KB, TIMEOUT_S, CALLS_ALL,
 RESP_ALL, REQ_ALL) = range(12)
NUM_CONSTS = 12
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
#: rows of the work buffer (WORK_ROWS, N, S): four latency totals per service (deterministic
#: delay, random mean, random variance, log P(no drop)); p95 before masking; effective
#: ready pods, capacity (req/s), backlog at the start of the step and dropped requests
(_T_DELAY, _T_MEAN, _T_VAR, _T_LOG_OK, _W_P95, _W_EFF, _W_CAP, _W_B_START,
 _W_DROPPED) = range(9)
WORK_ROWS = 9
#: rows of the per-service constants repeated for every copy (NUM_TILED, N, S) float64, so
#: the element-wise phases run as one flat, vectorised loop over N x S
T_CAP, T_ST_S, T_IDLE_M, T_CPU_PER_REQ, T_MEM_BASE, T_MEM_PER_RPS = range(6)
NUM_TILED = 6
TILED_FROM = (CAP, ST_S, IDLE_M, CPU_PER_REQ, MEM_BASE, MEM_PER_RPS)

# Kernels use error_model="numpy": a division by zero gives inf instead of raising (every
# divisor here is guarded or positive), so the per-service loops stay free of branches to
# exception handlers and LLVM vectorises them.
class _JitOptions(TypedDict):
    cache: bool
    error_model: Literal["python", "numpy"]


_JIT: _JitOptions = {"cache": True, "error_model": "numpy"}


@numba.njit(inline="always", **_JIT)
def _gamma_p95(mean: float, var: float) -> float:
    """`gnnrl.sim.queueing.gamma_p95` for one value, the same operations in the same order."""
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
    return q if mean > 0 else 0.0


@numba.njit(**_JIT)
def _scale(ready, pending, active, target, out_i):
    """Pods move to the targets (pending pods go first when scaling down); the pods that
    exist into out_i[REPLICAS]."""
    N, S = ready.shape
    K = pending.shape[0]
    for n in range(N):
        for s in range(S):
            rep = ready[n, s]
            for k in range(K):
                rep += pending[k, n, s]
            if target.shape[0] > 0:
                t = max(target[n, s], 0) if active[n, s] else 0
                if t > rep:
                    pending[0, n, s] += t - rep
                elif t < rep:  # newest pending pods first, then ready ones
                    down = rep - t
                    for k in range(K):
                        take = min(down, pending[k, n, s])
                        pending[k, n, s] -= take
                        down -= take
                    ready[n, s] -= min(down, ready[n, s])
                rep = t
            out_i[REPLICAS, n, s] = rep


@numba.njit(**_JIT)
def _serve(dt, entry_rps, z, consts, pending_frac, in_ptr, in_src, in_w, entry_col, ready,
           pending, backlog, active, work, out_f, out_i):
    """Arrivals, effective pods, traffic, service, backlog and drops, callers first.

    Writes offered and served req/s and the backlog at the end into out_f; effective pods,
    capacity, backlog at the start and dropped requests into work.
    """
    N, S = ready.shape
    K = pending.shape[0]
    for n in range(N):
        # Poisson arrival counts, normal approximation: sd = sqrt(lambda dt) requests
        entry = max(entry_rps[n], 0.0)
        if z.shape[0] > 0:
            entry = max(entry + z[n] * math.sqrt(entry / dt), 0.0)
        for s in range(S):
            # a starting pod serves the share of the step it is up
            eff = float(ready[n, s])
            if out_i[REPLICAS, n, s] > ready[n, s]:
                acc = 0.0
                for k in range(K):
                    acc += pending[k, n, s] * pending_frac[k, s]
                eff = ready[n, s] + acc
            # offered load: the entry's plus the calls of the callers' served requests
            x = 0.0
            for j in range(in_ptr[s], in_ptr[s + 1]):
                x += in_w[j] * out_f[SERVED, n, in_src[j]]
            if s == entry_col:
                x = entry + x
            lam = x if active[n, s] else 0.0
            # service; backlog capped at timeout x capacity, the rest dropped
            cap_t = eff * consts[CAP, s]
            b_start = backlog[n, s]
            w = lam * dt
            w = b_start + w
            done = min(w, cap_t * dt)
            left = w - done
            b_end = min(left, cap_t * consts[TIMEOUT_S, s])
            backlog[n, s] = b_end
            out_f[RPS_IN, n, s] = lam
            out_f[SERVED, n, s] = done / dt
            out_f[BACKLOG, n, s] = b_end
            work[_W_EFF, n, s] = eff
            work[_W_CAP, n, s] = cap_t
            work[_W_B_START, n, s] = b_start
            work[_W_DROPPED, n, s] = left - b_end


@numba.njit(**_JIT)
def _own_latency(dt, tiled, work, out_f):
    """Each service's own latency terms (`gnnrl.sim.queueing`; the same operations as the
    numpy reference) into the four total rows of work."""
    mu_a, st_a = tiled[T_CAP].reshape(-1), tiled[T_ST_S].reshape(-1)
    lam_a, b_end_a = out_f[RPS_IN].reshape(-1), out_f[BACKLOG].reshape(-1)
    eff_a, cap_a = work[_W_EFF].reshape(-1), work[_W_CAP].reshape(-1)
    b_start_a, dropped_a = work[_W_B_START].reshape(-1), work[_W_DROPPED].reshape(-1)
    delay_a, mean_a = work[_T_DELAY].reshape(-1), work[_T_MEAN].reshape(-1)
    var_a, log_ok_a = work[_T_VAR].reshape(-1), work[_T_LOG_OK].reshape(-1)
    for i in range(mu_a.shape[0]):  # branch-free: vectorised
        mu, eff, b_start, b_end = mu_a[i], eff_a[i], b_start_a[i], b_end_a[i]
        pos = eff > 0
        lam_pod = lam_a[i] / max(eff, 1e-9) if pos else 0.0
        rho = min(lam_pod / mu, RHO_CAP)
        r_mean = 1.0 / (mu * (1.0 - rho))
        only = 1.0 / mu
        over = b_end > 0  # overload: the fluid backlog carries the queueing
        delay = 0.5 * (b_start + b_end) / max(cap_a[i], 1e-9)
        queued = pos and (b_start > 0 or over)
        delay_a[i] = st_a[i] + (delay if queued else 0.0)
        mean_a[i] = only if over else r_mean
        var_a[i] = only * only if over else r_mean * r_mean
        log_ok_a[i] = 0.0
    for i in range(mu_a.shape[0]):
        dropped = dropped_a[i]
        if dropped > 0:  # (log1p is slow; without drops the term is exactly 0)
            offered = lam_a[i] * dt + b_start_a[i]
            share = dropped / max(offered, 1e-12) if offered > 0 else 0.0
            log_ok_a[i] = math.log1p(-min(max(share, 0.0), 1.0 - 1e-12))


@numba.njit(**_JIT)
def _add_callees(out_ptr, out_dst, out_w, active, work):
    """Callers add their active callees' latency totals (deepest first: services are in
    call-graph depth order)."""
    N, S = active.shape
    for n in range(N):
        for s in range(S - 1, -1, -1):
            a0 = a1 = a2 = a3 = 0.0
            for j in range(out_ptr[s], out_ptr[s + 1]):
                d = out_dst[j]
                if active[n, d]:
                    p = out_w[j]
                    a0 += p * work[_T_DELAY, n, d]
                    a1 += p * work[_T_MEAN, n, d]
                    a2 += p * work[_T_VAR, n, d]
                    a3 += p * work[_T_LOG_OK, n, d]
            work[_T_DELAY, n, s] += a0
            work[_T_MEAN, n, s] += a1
            work[_T_VAR, n, s] += a2
            work[_T_LOG_OK, n, s] += a3


@numba.njit(**_JIT)
def _latency(entry_col, active, work, out_f, out_g):
    """p95, mean (ms) and error rate per service from its totals; p95 unmasked into work
    for the edges; the entry's values into out_g."""
    on_a = active.reshape(-1)
    delay_a, mean_a = work[_T_DELAY].reshape(-1), work[_T_MEAN].reshape(-1)
    var_a, log_ok_a = work[_T_VAR].reshape(-1), work[_T_LOG_OK].reshape(-1)
    raw_a, p95_a = work[_W_P95].reshape(-1), out_f[P95_MS].reshape(-1)
    avg_a, err_a = out_f[MEAN_MS].reshape(-1), out_f[ERR_RATE].reshape(-1)
    for i in range(on_a.shape[0]):  # branch-free: vectorised
        p95_ms = (delay_a[i] + _gamma_p95(mean_a[i], var_a[i])) * 1000.0
        mean_ms = (delay_a[i] + mean_a[i]) * 1000.0
        raw_a[i] = p95_ms
        p95_a[i] = p95_ms if on_a[i] else 0.0
        avg_a[i] = mean_ms if on_a[i] else 0.0
        err_a[i] = 0.0
    for i in range(on_a.shape[0]):
        if log_ok_a[i] < 0 and on_a[i]:  # (expm1 is slow; without drops err is 0)
            err_a[i] = min(max(-math.expm1(log_ok_a[i]), 0.0), 1.0)
    for n in range(active.shape[0]):
        out_g[E2E_P95, n] = work[_W_P95, n, entry_col]
        out_g[E2E_MEAN, n] = (work[_T_DELAY, n, entry_col] + work[_T_MEAN, n, entry_col]) * 1000.0
        out_g[E2E_ERR, n] = out_f[ERR_RATE, n, entry_col]


@numba.njit(**_JIT)
def _cpu_mem(tiled, metric_noise, noise, out_f, out_i):
    """CPU (millicores) and memory (MiB) of all pods, with measurement noise."""
    idle, per_req = tiled[T_IDLE_M].reshape(-1), tiled[T_CPU_PER_REQ].reshape(-1)
    base, per_rps = tiled[T_MEM_BASE].reshape(-1), tiled[T_MEM_PER_RPS].reshape(-1)
    reps_a, srv_a = out_i[REPLICAS].reshape(-1), out_f[SERVED].reshape(-1)
    cpu_a, mem_a = out_f[CPU_M].reshape(-1), out_f[MEM_MI].reshape(-1)
    for i in range(idle.shape[0]):  # vectorised
        reps = float(reps_a[i])
        cpu_a[i] = idle[i] * reps + srv_a[i] * per_req[i]
        mem_a[i] = base[i] * reps + srv_a[i] * per_rps[i]
    if noise.shape[0] > 0:
        noise_a = noise.reshape(-1)
        for i in range(idle.shape[0]):
            f = max(1.0 + metric_noise * noise_a[i], 0.0)
            cpu_a[i] *= f
            mem_a[i] *= f


@numba.njit(**_JIT)
def _network(consts, out_ptr, out_dst, out_w, active, out_f):
    """Calls sent (req/s) and network (kbit/s in and out)."""
    N, S = active.shape
    for n in range(N):
        all_on = True
        for s in range(S):
            all_on = all_on and active[n, s]
        for s in range(S):
            # per request served: calls, response and request KiB to active callees
            calls, resp, req = consts[CALLS_ALL, s], consts[RESP_ALL, s], consts[REQ_ALL, s]
            if not all_on:
                calls = resp = req = 0.0
                for j in range(out_ptr[s], out_ptr[s + 1]):
                    if active[n, out_dst[j]]:
                        p = out_w[j]
                        calls += p
                        resp += p * consts[RESP_KB, out_dst[j]]
                        req += p * consts[REQ_KB, out_dst[j]]
            srv = out_f[SERVED, n, s]
            out_f[OUT_RPS, n, s] = srv * calls
            out_f[RX_KBPS, n, s] = 8.0 * (out_f[RPS_IN, n, s] * consts[REQ_KB, s] + srv * resp)
            out_f[TX_KBPS, n, s] = 8.0 * (srv * consts[RESP_KB, s] + srv * req)


@numba.njit(**_JIT)
def _edges(edge_src, edge_dst, edge_p, edge_mtls, active, work, out_f, out_e):
    """Per-edge req/s, callee p95 and error rate, mTLS share (0 when an end is off)."""
    N = active.shape[0]
    for n in range(N):
        for e in range(edge_src.shape[0]):
            a, b = edge_src[e], edge_dst[e]
            on = 1.0 if active[n, a] and active[n, b] else 0.0
            out_e[EDGE_QPS, n, e] = out_f[SERVED, n, a] * edge_p[e] * on
            out_e[EDGE_P95, n, e] = work[_W_P95, n, b] * on
            out_e[EDGE_ERR, n, e] = out_f[ERR_RATE, n, b] * on
            out_e[EDGE_MTLS, n, e] = edge_mtls[e] * on


@numba.njit(**_JIT)
def _advance_startup(pending_done, shift, ready, pending, out_i):
    """Pods Ready by the step's end join; the others move `shift` slots along."""
    N, S = ready.shape
    K = pending.shape[0]
    for n in range(N):
        for s in range(S):
            if out_i[REPLICAS, n, s] > ready[n, s]:  # pods pending
                for k in range(K):
                    if pending_done[k, s]:
                        ready[n, s] += pending[k, n, s]
                for k in range(K - 1, shift - 1, -1):
                    pending[k, n, s] = 0 if pending_done[k - shift, s] else pending[k - shift, n, s]
                for k in range(min(shift, K)):
                    pending[k, n, s] = 0
            out_i[READY, n, s] = ready[n, s]


@numba.njit(**_JIT)
def step_kernel(dt, consts, tiled, pending_frac, pending_done, in_ptr, in_src, in_w, out_ptr,
                out_dst, out_w, edge_src, edge_dst, edge_p, edge_mtls, entry_col, shift,
                ready, pending, backlog, active, entry_rps, z, metric_noise, noise, target,
                work, out_f, out_i, out_e, out_g):
    """Advance N copies by one interval of `dt` seconds, in place.

    Shapes (N copies, S services, K start-up steps, E edges, C non-zero calls):
        consts (NUM_CONSTS, S) float; tiled (NUM_TILED, N, S) float: rows TILED_FROM of
        consts for every copy; pending_frac (K, S) float; pending_done (K, S) bool;
        in_ptr / out_ptr (S + 1,), in_src / out_dst (C,) int64, in_w / out_w (C,) float:
        the call matrix by callee / by caller; edge_src, edge_dst (E,) int64, edge_p,
        edge_mtls (E,) float; entry_col int; shift: start-up pipeline slots per step.
        State, updated: ready (N, S) int64, pending (K, N, S) int64, backlog (N, S) float
        (requests); active (N, S) bool.
        Inputs: entry_rps (N,) req/s; z (N,) normals for the arrivals or (0,) for none;
        noise (N, S) normals for the CPU/memory measurements or (0, S) for none (scaled
        by `metric_noise`); target (N, S) int64 pod counts or (0, S) to keep them.
        work (WORK_ROWS, N, S) float scratch.
        Outputs, written: out_f (NUM_FLOAT_OUT, N, S), out_i (2, N, S) int64,
        out_e (4, N, E), out_g (3, N) (see the row names in this module).

    Each phase loops over all copies (a call per copy and phase would cost more than the
    phase's arithmetic); the branch-free ones are vectorised by LLVM.
    """
    _scale(ready, pending, active, target, out_i)
    _serve(dt, entry_rps, z, consts, pending_frac, in_ptr, in_src, in_w, entry_col, ready,
           pending, backlog, active, work, out_f, out_i)
    _own_latency(dt, tiled, work, out_f)
    _add_callees(out_ptr, out_dst, out_w, active, work)
    _latency(entry_col, active, work, out_f, out_g)
    _cpu_mem(tiled, metric_noise, noise, out_f, out_i)
    _network(consts, out_ptr, out_dst, out_w, active, out_f)
    _edges(edge_src, edge_dst, edge_p, edge_mtls, active, work, out_f, out_e)
    _advance_startup(pending_done, shift, ready, pending, out_i)


def callee_sums(consts: np.ndarray, out_ptr: np.ndarray, out_dst: np.ndarray,
                out_w: np.ndarray) -> np.ndarray:
    """(3, S): per request served, calls, response KiB and request KiB to all callees,
    summed in the kernel's order (so the shortcut for fully active copies is exact)."""
    S = consts.shape[1]
    out = np.zeros((3, S))
    for s in range(S):
        calls = resp = req = 0.0
        for j in range(out_ptr[s], out_ptr[s + 1]):
            p, d = float(out_w[j]), int(out_dst[j])
            calls += p
            resp += p * float(consts[RESP_KB, d])
            req += p * float(consts[REQ_KB, d])
        out[:, s] = calls, resp, req
    return out


def csr(matrix: np.ndarray, by_column: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Non-zero entries of a square (S, S) matrix, grouped by row (by_column=False) or by
    column. Returns ptr (S + 1,) int64, index of the other end (C,) int64, values (C,)."""
    m = matrix.T if by_column else matrix
    rows, cols = np.nonzero(m)  # row-major: grouped by row, ascending column
    ptr = np.zeros(m.shape[0] + 1, dtype=np.int64)
    np.add.at(ptr, rows + 1, 1)
    return (np.cumsum(ptr), cols.astype(np.int64),
            np.ascontiguousarray(m[rows, cols], dtype=np.float64))
