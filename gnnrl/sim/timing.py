"""Cluster timing: how late the controllers see the metrics, and when a new pod serves.

`TimingConfig.ideal()` (the default of `gnnrl.sim.SimConfig`) is the idealised timing
every result so far was produced with: a controller deciding at the end of an interval
reads that interval's average CPU and request rates, and a new pod serves exactly
``startup_s`` after its creation. `TimingConfig.realistic()` adds what a Kubernetes
cluster adds (sources in docs/simulator.md, "Cluster timing"):

* **CPU metrics lag** (metrics-server -> HPA). The CPU the controller reads is the mean
  over one metrics-server resolution window (``cpu_window_s``, 15 s) that ended ``lag``
  seconds before the decision, where, once per episode and copy::

      lag = U(0, cpu_scrape_age_max_s) + U(0, kubelet_age_max_s) + U(0, hpa_sync_phase_max_s)

  the age of metrics-server's newest sample when the controller syncs (its scrape ticker
  and the controller's sync ticker are not aligned), the age of the kubelet's stats when
  metrics-server scrapes them (cAdvisor housekeeping), and the wait from a change to the
  controller's next sync (the stepped simulator changes load only at decision times, so
  the real sync phase is added here). With the defaults (15, 10, 15 s) the reading lags
  the load by 27.5 s on average (window midpoint: 7.5 + 20 s) and reflects a step in load
  fully after at most 55 s (15 + 40 s): the upstream maintainers' figures. The tickers
  all run at the 15 s period of the control interval, so their phases, hence the lag,
  stay put over an episode. Memory comes through the same pipeline and lags alike.
* **Request-rate lag** (Prometheus -> Kiali/KEDA). A ``rate(...[rate_window_s])`` query
  (60 s) evaluated at the decision sees samples up to one scrape interval old
  (``rate_scrape_s``, 15 s): the rate is the mean over the window ending one scrape ago.
  It applies to every Prometheus-derived number a policy reads: request rates in and out,
  edge request rates, edge p95 and error rates (the last two weighted by the requests).
* **Pod start-up** per pod: the container is up after ``U ~ LogNormal`` with mean the
  spec's ``startup_s`` and coefficient of variation ``startup_cv`` (0.2), capped at the
  mean's ``exp(4 sigma)`` multiple; it is Ready at the first readiness probe at or after
  ``U``, probes ticking every ``readiness_period_s`` (10 s, Kubernetes' default
  ``periodSeconds``) from the pod's start: ``ready = period * ceil(U / period)``.

The lags live in the env layer (`gnnrl.core.envs.lag`): every policy reads the lagged view
through the observation and ``info``, while SLO, error and cost metrics use the truth. The
start-ups live in the simulator (`gnnrl.sim.core.BatchedSim`).
"""

from __future__ import annotations

import dataclasses
import math
from fractions import Fraction

import numpy as np

from gnnrl.config import ConfigError, JsonConfig

#: names of the `TimingConfig.preset` timings
TIMING_PRESETS = ("ideal", "realistic")
#: start-ups are capped at exp(mu + STARTUP_TAIL_SIGMAS * sigma) (a 1-in-30,000 tail)
STARTUP_TAIL_SIGMAS = 4.0
#: the finest start-up grid (s): the interval and the probe period need a common divisor
_MIN_GRID_S = 0.5
#: the longest start-up pipeline, in grid slots
_MAX_GRID_SLOTS = 4096


@dataclasses.dataclass
class TimingConfig(JsonConfig):
    """Cluster timing (see the module docstring for the model and its sources).

    Attributes (s unless noted; 0 switches a part off):
        cpu_window_s: CPU and memory are averaged over this window (metrics-server's
            ``--metric-resolution``); 0 = the control interval that just ended, no lag.
        cpu_scrape_age_max_s, kubelet_age_max_s, hpa_sync_phase_max_s: upper bounds of
            the three uniform parts of the per-episode CPU lag.
        rate_window_s: window of the ``rate(...[w])`` request-rate queries; 0 = the
            control interval that just ended, no lag.
        rate_scrape_s: age of the newest sample at the decision (Prometheus' scrape
            interval).
        startup_cv: coefficient of variation of each pod's start-up (lognormal around the
            spec's ``startup_s``); 0 = every pod is up after exactly ``startup_s``.
        readiness_period_s: readiness probe period: a pod is Ready at the first probe
            after it is up; 0 = Ready the moment it is up.
    """

    cpu_window_s: float = 0.0
    cpu_scrape_age_max_s: float = 0.0
    kubelet_age_max_s: float = 0.0
    hpa_sync_phase_max_s: float = 0.0
    rate_window_s: float = 0.0
    rate_scrape_s: float = 0.0
    startup_cv: float = 0.0
    readiness_period_s: float = 0.0

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if isinstance(v, bool) or not isinstance(v, int | float):
                raise ConfigError(f"timing.{f.name}: must be a number, got {v!r}")
            if not (v >= 0 and math.isfinite(v)):
                raise ConfigError(f"timing.{f.name}: must be >= 0 and finite, got {v}")
        if self.startup_cv > 2.0:
            raise ConfigError(f"timing.startup_cv: must be <= 2, got {self.startup_cv}")
        if self.startup_cv > 0 and self.readiness_period_s == 0:
            raise ConfigError("timing.readiness_period_s: must be > 0 when startup_cv > 0 "
                              "(random start-ups become Ready on probe ticks)")

    @classmethod
    def ideal(cls) -> TimingConfig:
        """Today's idealised timing: no metrics lag, every pod Ready after startup_s."""
        return cls()

    @classmethod
    def realistic(cls) -> TimingConfig:
        """Kubernetes' defaults: metrics-server at 15 s, HPA sync 15 s, Prometheus scrape
        15 s with ``rate(...[1m])`` queries, start-ups with cv 0.2, probes every 10 s."""
        return cls(cpu_window_s=15.0, cpu_scrape_age_max_s=15.0, kubelet_age_max_s=10.0,
                   hpa_sync_phase_max_s=15.0, rate_window_s=60.0, rate_scrape_s=15.0,
                   startup_cv=0.2, readiness_period_s=10.0)

    def __eq__(self, other: object) -> bool:
        # a preset equals its name, so ``SimConfig(timing="realistic").timing ==
        # "realistic"`` holds for code that names timings
        if isinstance(other, str):
            return other in TIMING_PRESETS and self == TimingConfig.preset(other)
        if not isinstance(other, TimingConfig):
            return NotImplemented
        return dataclasses.astuple(self) == dataclasses.astuple(other)

    # no __hash__: a class that defines __eq__ gets __hash__ = None, so instances are
    # unhashable (mutable, like every dataclass with eq)

    @classmethod
    def preset(cls, name: str) -> TimingConfig:
        """`ideal` or `realistic` by name (one of `TIMING_PRESETS`)."""
        if name == "ideal":
            return cls.ideal()
        if name == "realistic":
            return cls.realistic()
        raise ConfigError(f"timing: must be one of {TIMING_PRESETS}, got {name!r}")

    @property
    def lags_cpu(self) -> bool:
        return (self.cpu_window_s > 0 or self.cpu_scrape_age_max_s > 0
                or self.kubelet_age_max_s > 0 or self.hpa_sync_phase_max_s > 0)

    @property
    def lags_rates(self) -> bool:
        return self.rate_window_s > 0 or self.rate_scrape_s > 0

    @property
    def per_pod_startup(self) -> bool:
        """Whether pods start on probe ticks with random start-ups (else: startup_s)."""
        return self.readiness_period_s > 0

    def cpu_lag_s(self, rng: np.random.Generator, size: int) -> np.ndarray:
        """(size,) per-episode CPU lags (s): the sum of the three uniform parts, drawn in
        this order for each copy (no draw at all when every part is 0)."""
        parts = (self.cpu_scrape_age_max_s, self.kubelet_age_max_s, self.hpa_sync_phase_max_s)
        if not any(parts):
            return np.zeros(size)
        return (rng.random((size, 3)) * np.array(parts)).sum(axis=1)


def window_weights(end_lag_s: np.ndarray, window_s: float, dt: float, depth: int
                   ) -> np.ndarray:
    """Weights of the last `depth` intervals in a mean over ``[-end_lag - window, -end_lag]``.

    Interval ``j`` (0 = the one that just ended) covers ``[-(j + 1) dt, -j dt]`` seconds
    relative to the decision; the metrics are constant within an interval, so the window's
    mean is the overlap-weighted mean of the intervals. ``window_s == 0`` means one
    interval (``window = dt``). Shapes: end_lag_s (N,) -> (N, depth), rows sum to 1.
    """
    w = float(window_s) or dt
    end = np.asarray(end_lag_s, dtype=float)[:, None]
    start = end + w
    lo = np.arange(depth, dtype=float)[None, :] * dt
    overlap = np.clip(np.minimum(start, lo + dt) - np.maximum(end, lo), 0.0, None)
    return overlap / w


def history_depth(timing: TimingConfig, dt: float) -> int:
    """Intervals a delay line keeps: enough for the longest window and lag."""
    cpu = (timing.cpu_window_s or dt) + timing.cpu_scrape_age_max_s \
        + timing.kubelet_age_max_s + timing.hpa_sync_phase_max_s
    rate = (timing.rate_window_s or dt) + timing.rate_scrape_s
    return math.ceil(max(cpu, rate) / dt - 1e-9) + 1


def startup_grid_s(timing: TimingConfig, dt: float) -> float:
    """The start-up pipeline's time step (s): the largest common divisor of the control
    interval and the probe period (Ready times fall on probe ticks, steps on intervals)."""
    a = Fraction(dt).limit_denominator(1000)
    b = Fraction(timing.readiness_period_s).limit_denominator(1000)
    g = Fraction(math.gcd(a.numerator * b.denominator, b.numerator * a.denominator),
                 a.denominator * b.denominator)
    if float(g) < _MIN_GRID_S or abs(float(a) - dt) > 1e-9 \
            or abs(float(b) - timing.readiness_period_s) > 1e-9:
        raise ConfigError(
            f"timing.readiness_period_s: {timing.readiness_period_s} s and interval_s {dt} s "
            f"need a common divisor >= {_MIN_GRID_S} s (e.g. 10 s and 15 s: 5 s)")
    return float(g)


def ready_times_s(timing: TimingConfig, startup_s: np.ndarray, rng: np.random.Generator
                  ) -> np.ndarray:
    """Per-pod seconds from creation to Ready, on probe ticks (see the module docstring).

    Shapes: startup_s (P,) the spec's mean start-up of each new pod's service -> (P,).
    Draws P standard normals from `rng` when ``startup_cv > 0`` (none otherwise).
    """
    startup_s = np.asarray(startup_s, dtype=float)
    up = startup_s
    if timing.startup_cv > 0:
        sigma = math.sqrt(math.log1p(timing.startup_cv ** 2))
        z = np.minimum(rng.standard_normal(startup_s.shape), STARTUP_TAIL_SIGMAS)
        # lognormal with mean startup_s: exp(mu + sigma z), mu = ln(mean) - sigma^2 / 2
        up = startup_s * np.exp(sigma * z - 0.5 * sigma * sigma)
    period = timing.readiness_period_s
    return period * np.ceil(up / period - 1e-9)


def max_ready_s(timing: TimingConfig, startup_s: float) -> float:
    """The longest Ready time `ready_times_s` can give for a mean start-up of startup_s."""
    up = startup_s
    if timing.startup_cv > 0:
        sigma = math.sqrt(math.log1p(timing.startup_cv ** 2))
        up = startup_s * math.exp(sigma * STARTUP_TAIL_SIGMAS - 0.5 * sigma * sigma)
    period = timing.readiness_period_s
    return period * math.ceil(up / period - 1e-9)


def check_grid_slots(slots: int) -> None:
    if slots > _MAX_GRID_SLOTS:
        raise ConfigError(f"timing.readiness_period_s: the start-up pipeline would need "
                          f"{slots} slots (> {_MAX_GRID_SLOTS}); use a coarser probe period")
