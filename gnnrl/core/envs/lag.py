"""Delay lines between the simulator's true metrics and what the policies read.

A real controller reads CPU through metrics-server and request rates through Prometheus,
both late (`gnnrl.sim.timing` states the model and its sources). `MetricsLag` keeps the
last intervals' true metrics of N copies and returns, each step, a *lagged view*: a
`StepMetrics` whose metrics-server and Prometheus fields are means over the configured
windows, the rest (pods, Ready pods, end-to-end latency and errors, active services)
unchanged. The envs build observations and ``info`` from the view, and SLO, error and cost
numbers from the truth, so every policy (HPA, KEDA, the GNN) sees the same late numbers.

Before an episode's first interval the history holds the warm-start interval's metrics
(the cluster in steady state before t = 0).
"""

from __future__ import annotations

import copy

import numba
import numpy as np

from gnnrl.sim.core import StepMetrics
from gnnrl.sim.timing import TimingConfig, history_depth, window_weights

#: per-service fields kept, in the rows of the history: through metrics-server (CPU,
#: memory: per-copy lag), through Prometheus (request rates in and out; p95 weighted by
#: the requests in)
SERVICE_FIELDS = ("cpu_m", "mem_mi", "rps_in", "out_rps", "p95_ms")
#: per-edge fields kept: request rate; p95 and error rate weighted by the requests
EDGE_FIELDS = ("edge_qps", "edge_p95_ms", "edge_err")


@numba.njit(cache=True, inline="always")
def _weighted(value_x_weight, total_weight, plain):
    """A request-weighted mean; the plain mean where no request was counted."""
    return value_x_weight / max(total_weight, 1e-12) if total_weight > 0 else plain


@numba.njit(cache=True)
def lag_kernel(cpu_m, mem_mi, rps_in, out_rps, p95_ms, edge_qps, edge_p95, edge_err,
               hist_s, hist_e, head, cpu_w, rate_w, seen_s, seen_e):
    """Store the interval that just ended at ring slot `head`; write the lagged view.

    Shapes: the metrics (N, S) / (N, E); hist_s (D, 5, N, S) and hist_e (D, 3, N, E) ring
    buffers (rows: SERVICE_FIELDS / EDGE_FIELDS); cpu_w (N, D) and rate_w (D,) window
    weights of the intervals, newest first (`gnnrl.sim.timing.window_weights`); outputs
    seen_s (5, N, S), seen_e (3, N, E).
    """
    D = hist_s.shape[0]
    N, S = cpu_m.shape
    E = edge_qps.shape[1]
    for n in range(N):
        for s in range(S):
            hist_s[head, 0, n, s] = cpu_m[n, s]
            hist_s[head, 1, n, s] = mem_mi[n, s]
            hist_s[head, 2, n, s] = rps_in[n, s]
            hist_s[head, 3, n, s] = out_rps[n, s]
            hist_s[head, 4, n, s] = p95_ms[n, s]
        for e in range(E):
            hist_e[head, 0, n, e] = edge_qps[n, e]
            hist_e[head, 1, n, e] = edge_p95[n, e]
            hist_e[head, 2, n, e] = edge_err[n, e]
    for n in range(N):
        for s in range(S):
            cpu = mem = rps = out = p95 = p95_rps = 0.0
            for j in range(D):
                h = (head - j) % D
                wc, wr = cpu_w[n, j], rate_w[j]
                cpu += wc * hist_s[h, 0, n, s]
                mem += wc * hist_s[h, 1, n, s]
                rps += wr * hist_s[h, 2, n, s]
                out += wr * hist_s[h, 3, n, s]
                p95 += wr * hist_s[h, 4, n, s]
                p95_rps += wr * hist_s[h, 4, n, s] * hist_s[h, 2, n, s]
            seen_s[0, n, s], seen_s[1, n, s], seen_s[2, n, s] = cpu, mem, rps
            seen_s[3, n, s] = out
            seen_s[4, n, s] = _weighted(p95_rps, rps, p95)
        for e in range(E):
            qps = p95 = p95_q = err = err_q = 0.0
            for j in range(D):
                h = (head - j) % D
                wr = rate_w[j]
                q = hist_e[h, 0, n, e]
                qps += wr * q
                p95 += wr * hist_e[h, 1, n, e]
                p95_q += wr * hist_e[h, 1, n, e] * q
                err += wr * hist_e[h, 2, n, e]
                err_q += wr * hist_e[h, 2, n, e] * q
            seen_e[0, n, e] = qps
            seen_e[1, n, e] = _weighted(p95_q, qps, p95)
            seen_e[2, n, e] = _weighted(err_q, qps, err)


class MetricsLag:
    """Delay lines for N copies.

    Args:
        timing: the cluster timing (its CPU lag parts, windows and scrape age).
        dt: control interval, s.
        num_copies: N.

    Attributes:
        cpu_lag_s: (N,) this episode's CPU lag of each copy, s (set by `reset`).
        depth: intervals of history kept.
    """

    def __init__(self, timing: TimingConfig, dt: float, num_copies: int) -> None:
        self.timing = timing
        self.dt = float(dt)
        self.n = num_copies
        self.depth = history_depth(timing, dt)
        self.cpu_lag_s = np.zeros(num_copies)
        self._cpu_w = window_weights(self.cpu_lag_s, timing.cpu_window_s, self.dt, self.depth)
        self._rate_w = window_weights(np.array([timing.rate_scrape_s]), timing.rate_window_s,
                                      self.dt, self.depth)[0]
        self._hist_s: np.ndarray | None = None
        self._hist_e: np.ndarray | None = None
        self._head = 0  # ring index of the interval that just ended

    def reset(self, m: StepMetrics, copies: np.ndarray | slice, cpu_lag_s: np.ndarray,
              m_copies: np.ndarray | slice = slice(None)) -> None:
        """Start episodes in `copies`: their history is filled with rows `m_copies` of
        `m` (the warm-start interval) and their CPU lag set to `cpu_lag_s` (s)."""
        if self._hist_s is None:
            S, E = m.cpu_m.shape[1], m.edge_qps.shape[1]
            self._hist_s = np.zeros((self.depth, len(SERVICE_FIELDS), self.n, S))
            self._hist_e = np.zeros((self.depth, len(EDGE_FIELDS), self.n, E))
        assert self._hist_e is not None
        for row, k in enumerate(SERVICE_FIELDS):
            self._hist_s[:, row, copies] = getattr(m, k)[m_copies][None]
        for row, k in enumerate(EDGE_FIELDS):
            self._hist_e[:, row, copies] = getattr(m, k)[m_copies][None]
        self.cpu_lag_s[copies] = cpu_lag_s
        self._cpu_w[copies] = window_weights(np.atleast_1d(self.cpu_lag_s[copies]),
                                             self.timing.cpu_window_s, self.dt, self.depth)

    def push(self, m: StepMetrics) -> StepMetrics:
        """Record the interval that just ended (`m`, the truth); return the lagged view
        (fresh arrays for the lagged fields, `m`'s own for the others)."""
        assert self._hist_s is not None and self._hist_e is not None, "call reset() first"
        self._head = (self._head + 1) % self.depth
        seen_s = np.empty((len(SERVICE_FIELDS), *m.cpu_m.shape))
        seen_e = np.empty((len(EDGE_FIELDS), *m.edge_qps.shape))
        lag_kernel(m.cpu_m, m.mem_mi, m.rps_in, m.out_rps, m.p95_ms, m.edge_qps,
                   m.edge_p95_ms, m.edge_err, self._hist_s, self._hist_e, self._head,
                   self._cpu_w, self._rate_w, seen_s, seen_e)
        seen = copy.copy(m)
        for row, k in enumerate(SERVICE_FIELDS):
            setattr(seen, k, seen_s[row])
        for row, k in enumerate(EDGE_FIELDS):
            setattr(seen, k, seen_e[row])
        return seen
