"""The schema-v2 columns: what a policy needs to generalise beyond the seed's 6 columns.

`gnnrl.contracts.observation` names and orders them. This module computes them in numpy:
the reference (``backend="numpy"``) of the one-view builder (`gnnrl.core.envs.cluster_view`,
S services) and of the batched training path (`gnnrl.core.envs.observation`, the services
of N copies stacked), which the compiled kernels (`gnnrl.core.envs.obs_kernel`, the
default) equal bit for bit (tests/test_observation_kernels.py).

Two inputs are not part of one moment of the cluster:

* `ObservationContext`: the SLO, the control interval, the operator's dial and the time
  of day (from the app spec and the scaler's config; the simulator's episode);
* the load history (`LoadHistory` by service name for one cluster, `BatchedLoadHistory`
  by simulator column for N copies): the received req/s of the last 16 intervals, for the
  trend columns.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import numpy as np

from gnnrl.contracts.observation import DEFAULT_DIAL, TREND_LAGS, check_dial

#: seconds in a day, and radians per second of it (time-of-day encoding)
DAY_S = 86_400.0
TOD_RADIANS_PER_S = 2.0 * math.pi / DAY_S


def nan_to_zero(x: np.ndarray) -> np.ndarray:
    """`x` with NaN (a value no source reported) as 0; infinities are kept, so a scaler
    still refuses them. A fraction of `np.nan_to_num`'s cost on the per-step path."""
    x = np.asarray(x, dtype=np.float64)
    return np.where(np.isnan(x), 0.0, x)


@dataclasses.dataclass(frozen=True)
class ObservationContext:
    """What the observation needs besides the cluster's state.

    Attributes:
        slo_ms: the end-to-end p95 objective, ms (the app spec's ``slo_p95_ms``).
        interval_s: the control interval, s.
        dial: the operator's preference in [0, 1] (0 = cheapest, 1 = safest). A serving
            policy overwrites it with its own setting (`gnnrl@D`); in training the env
            draws one per episode.
        time_of_day_s: seconds since 00:00 UTC of the moment observed.
    """

    slo_ms: float
    interval_s: float = 15.0
    dial: float = DEFAULT_DIAL
    time_of_day_s: float = 0.0

    def __post_init__(self) -> None:
        if not (self.slo_ms > 0 and math.isfinite(self.slo_ms)):
            raise ValueError(f"slo_ms must be a finite number > 0, got {self.slo_ms!r}")
        if not (self.interval_s > 0 and math.isfinite(self.interval_s)):
            raise ValueError(f"interval_s must be a finite number > 0, got {self.interval_s!r}")
        check_dial(self.dial)

    def globals_tail(self, e2e_p95_ms: float) -> np.ndarray:
        """The v2 globals (6,) float64: [slo_slack, dial, slo_ms, interval_s, tod_sin,
        tod_cos] (`globals_tail` for one copy)."""
        return globals_tail(np.array([e2e_p95_ms]), self.slo_ms, self.interval_s,
                            np.array([self.dial]), np.array([self.time_of_day_s]))[0]


@dataclasses.dataclass
class BatchedContext:
    """`ObservationContext` of N copies: one SLO and interval, a dial and a time of day
    per copy (shapes (N,))."""

    slo_ms: float
    interval_s: float
    dial: np.ndarray
    time_of_day_s: np.ndarray


def globals_tail(e2e_p95_ms: np.ndarray, slo_ms: float, interval_s: float, dial: np.ndarray,
                 time_of_day_s: np.ndarray) -> np.ndarray:
    """The v2 globals of N copies, (N, 6) float64: [slo_slack (e2e p95 / SLO; NaN when the
    p95 is unknown), dial, slo_ms, interval_s, sin and cos of the time of day]."""
    p95 = np.asarray(e2e_p95_ms, dtype=np.float64)
    tod_sin, tod_cos = time_of_day(time_of_day_s)
    return np.stack([p95 / slo_ms, np.asarray(dial, dtype=np.float64),
                     np.full(len(p95), float(slo_ms)), np.full(len(p95), float(interval_s)),
                     tod_sin, tod_cos], axis=-1)


def time_of_day(time_of_day_s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(sin, cos) of `time_of_day_s` (N,) seconds since 00:00 UTC on the unit circle, (N,)
    float64 each."""
    angle = TOD_RADIANS_PER_S * np.mod(np.asarray(time_of_day_s, dtype=np.float64), DAY_S)
    return np.sin(angle), np.cos(angle)


def trend_ratio(now: np.ndarray, past: np.ndarray) -> np.ndarray:
    """(now + 1) / (past + 1), and 1 where `past` is unknown (NaN). Same shape."""
    out = (np.asarray(now, dtype=np.float64) + 1.0) / (np.asarray(past, dtype=np.float64) + 1.0)
    return np.where(np.isnan(past), 1.0, out)


def _check_lags(lags: Sequence[int]) -> tuple[int, ...]:
    """`lags` as ints >= 1 (a step's own row is written while the past is read)."""
    out = tuple(int(k) for k in lags)
    if not out or min(out) < 1:
        raise ValueError(f"lags: intervals back, each >= 1, got {lags!r}")
    return out


class LoadHistory:
    """The received req/s of one cluster's services over the last ``max(lags)`` intervals.

    `trends` is called once per observation: it reads the past and records now. A service
    that was not observed K intervals ago has an unknown past there (trend 1).

    Stored as a ring of ``max(lags) + 1`` rows by a column per service name ever seen
    (`columns`), NaN where a service was not recorded; the compiled builder
    (`gnnrl.core.envs.obs_kernel.view_kernel`) reads and writes the same ring.
    """

    def __init__(self, lags: Sequence[int] = TREND_LAGS) -> None:
        self.lags = _check_lags(lags)
        self.lag_array = np.array(self.lags, dtype=np.int64)
        #: (max(lags) + 1, C) req/s by step mod the ring's length and column
        self.ring = np.full((max(self.lags) + 1, 8), np.nan)
        self._columns: dict[str, int] = {}
        self._last: tuple[tuple[str, ...], np.ndarray] | None = None
        self.t = 0

    def reset(self) -> None:
        self.ring[:] = np.nan
        self.t = 0

    def columns(self, services: Sequence[str]) -> np.ndarray:
        """(S,) int64 the ring columns of `services` (new names get new columns; the
        answer for the last tuple asked about is kept, as a view's names are one tuple
        while the topology holds)."""
        if self._last is not None and services is self._last[0]:
            return self._last[1]
        cols = np.empty(len(services), dtype=np.int64)
        for k, name in enumerate(services):
            cols[k] = self._columns.setdefault(name, len(self._columns))
        if len(self._columns) > self.ring.shape[1]:
            grown = np.full((self.ring.shape[0], 2 * len(self._columns)), np.nan)
            grown[:, :self.ring.shape[1]] = self.ring
            self.ring = grown
        if isinstance(services, tuple):
            self._last = (services, cols)
        return cols

    def trends(self, services: Sequence[str], rx: np.ndarray) -> np.ndarray:
        """(S, len(lags)) trend ratios of `rx` (S,) req/s against K intervals ago."""
        cols = self.columns(services)
        L = self.ring.shape[0]
        past = np.full((len(services), len(self.lags)), np.nan)
        for j, k in enumerate(self.lags):
            if self.t - k >= 0:
                past[:, j] = self.ring[(self.t - k) % L, cols]
        now = np.asarray(rx, dtype=np.float64)
        out = trend_ratio(now[:, None], past)
        self.ring[self.t % L] = np.nan
        self.ring[self.t % L, cols] = now
        self.t += 1
        return out


class BatchedLoadHistory:
    """`LoadHistory` for N simulator copies, by simulator column (N, S).

    One ring for all copies (they step together); `reset_copy` forgets one copy's past
    (its new episode starts with an unknown past, trend 1). The compiled batched builder
    (`gnnrl.core.envs.obs_kernel.observe_kernel`) reads `ring` and stages into `staged`
    as `trends` does.
    """

    def __init__(self, num_copies: int, num_services: int,
                 lags: Sequence[int] = TREND_LAGS) -> None:
        self.lags = _check_lags(lags)
        self.lag_array = np.array(self.lags, dtype=np.int64)
        #: (max(lags) + 1, N, S) committed req/s by step mod the ring's length
        self.ring = np.full((max(self.lags) + 1, num_copies, num_services), np.nan)
        #: (N, S) this step's values until `commit`
        self.staged = np.full((num_copies, num_services), np.nan)
        self.t = 0

    def reset_copy(self, i: int) -> None:
        self.ring[:, i, :] = np.nan

    def trends(self, rx: np.ndarray, observed: np.ndarray) -> np.ndarray:
        """(N, S, len(lags)) trend ratios of `rx` (N, S) against the committed past;
        `observed` (N, S) bool marks the services a cluster shows now (the others will
        record an unknown value). The values are staged until `commit`, so an observation
        rebuilt in the same step (after some copies reset) reads the same past."""
        L = self.ring.shape[0]
        past = np.stack([self.ring[(self.t - k) % L] for k in self.lags], axis=-1)
        self.staged = np.where(observed, rx, np.nan)
        return trend_ratio(rx[..., None], past)

    def commit(self) -> None:
        """Record the last staged values as this interval's and move to the next."""
        self.ring[self.t % self.ring.shape[0]] = self.staged
        self.t += 1


def slo_share(num_services: int, edge_dst: np.ndarray, edge_p95_ms: np.ndarray,
              edge_requests: np.ndarray, rx: np.ndarray, e2e_p95_ms: float,
              slo_ms: float) -> np.ndarray:
    """(S,) each service's p95 as a share of the SLO.

    The largest p95 of its incoming request-level edges; a service with none that receives
    traffic (the entry: its callers are outside the mesh view) gets the end-to-end p95; one
    with neither, 0. Unknown p95s (NaN) read as 0.
    """
    share = np.zeros(num_services)
    has_in = np.zeros(num_services, dtype=bool)
    req = np.asarray(edge_requests, dtype=bool)
    if req.any():
        dst = edge_dst[req]
        np.maximum.at(share, dst, nan_to_zero(edge_p95_ms[req]))
        has_in[dst] = True
    e2e = 0.0 if math.isnan(e2e_p95_ms) else float(e2e_p95_ms)
    share = np.where(~has_in & (nan_to_zero(rx) > 0), e2e, share)
    return share / slo_ms


def node_tail(replicas: np.ndarray, ready: np.ndarray, startup_s: np.ndarray,
              cpu_request_m: np.ndarray, cpu_limit_m: np.ndarray, lo: np.ndarray,
              hi: np.ndarray, unserved: np.ndarray, share: np.ndarray,
              trends: np.ndarray) -> np.ndarray:
    """The 12 v2 node columns of K services (`NODE_COLUMNS[6:]`), (K, 12) float64.

    Inputs (K,) except trends (K, len(TREND_LAGS)); lo/hi are the bounds as the action
    mask uses them (the current count for a service the policy does not own).
    """
    starting = np.maximum(replicas - ready, 0.0)
    return np.concatenate([np.stack([ready, starting, startup_s, cpu_request_m, cpu_limit_m,
                                     lo, hi, np.clip(unserved, 0.0, 1.0), share], axis=-1),
                           trends], axis=-1)
