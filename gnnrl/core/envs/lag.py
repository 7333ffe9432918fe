"""Delay lines between the simulator's true metrics and what the policies read.

A real controller reads CPU through metrics-server and request rates through Prometheus,
both late (`gnnrl.sim.timing` states the model and its sources). `MetricsLag` keeps the
last intervals' true metrics of N copies and returns, each step, a *lagged view*: a
`StepMetrics` whose metrics-server and Prometheus fields are means over the configured
windows, the rest (pods, Ready pods, latency, errors, active services) unchanged. The envs
build observations and ``info`` from the view, and SLO, error and cost numbers from the
truth, so every policy (HPA, KEDA, the GNN) sees the same late numbers.

Before an episode's first interval the history holds the warm-start interval's metrics
(the cluster in steady state before t = 0).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from gnnrl.sim.core import StepMetrics
from gnnrl.sim.timing import TimingConfig, history_depth, window_weights

#: fields that come through metrics-server: (N, S)
CPU_FIELDS = ("cpu_m", "mem_mi")
#: fields that come through Prometheus as rates: (N, S) or (N, E)
RATE_FIELDS = ("rps_in", "out_rps", "edge_qps")
#: Prometheus-derived fields averaged with the request rate as weight: field -> weight
WEIGHTED_FIELDS = {"p95_ms": "rps_in", "edge_p95_ms": "edge_qps", "edge_err": "edge_qps"}


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
        self._hist: dict[str, np.ndarray] = {}
        self._head = 0  # ring index of the interval that just ended

    def _fields(self) -> tuple[str, ...]:
        return (*CPU_FIELDS, *RATE_FIELDS, *WEIGHTED_FIELDS)

    def reset(self, m: StepMetrics, copies: np.ndarray | slice, cpu_lag_s: np.ndarray,
              m_copies: np.ndarray | slice = slice(None)) -> None:
        """Start episodes in `copies`: their history is filled with rows `m_copies` of
        `m` (the warm-start interval) and their CPU lag set to `cpu_lag_s` (s)."""
        if not self._hist:
            self._hist = {k: np.zeros((self.depth, self.n, getattr(m, k).shape[1]))
                          for k in self._fields()}
        for k in self._fields():
            self._hist[k][:, copies] = getattr(m, k)[m_copies][None]
        self.cpu_lag_s[copies] = cpu_lag_s
        self._cpu_w[copies] = window_weights(np.atleast_1d(self.cpu_lag_s[copies]),
                                             self.timing.cpu_window_s, self.dt, self.depth)

    def push(self, m: StepMetrics) -> StepMetrics:
        """Record the interval that just ended (`m`, the truth); return the lagged view."""
        assert self._hist, "call reset() first"
        self._head = (self._head + 1) % self.depth
        for k in self._fields():
            self._hist[k][self._head] = getattr(m, k)
        order = (self._head - np.arange(self.depth)) % self.depth  # newest first
        seen: dict[str, np.ndarray] = {}
        for k in CPU_FIELDS:  # per-copy weights: (N, D) x (D, N, S) -> (N, S)
            seen[k] = np.einsum("nd,dns->ns", self._cpu_w, self._hist[k][order])
        for k in RATE_FIELDS:
            seen[k] = np.tensordot(self._rate_w, self._hist[k][order], axes=1)
        for k, weight in WEIGHTED_FIELDS.items():
            v, q = self._hist[k][order], self._hist[weight][order]
            total = np.tensordot(self._rate_w, q, axes=1)
            plain = np.tensordot(self._rate_w, v, axes=1)
            weighted = np.tensordot(self._rate_w, v * q, axes=1) / np.maximum(total, 1e-12)
            seen[k] = np.where(total > 0, weighted, plain)
        return dataclasses.replace(m, **seen)
