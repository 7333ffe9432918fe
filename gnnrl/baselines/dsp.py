"""Crane's DSP predictor: find a load's period, forecast its next cycle.

A port of gocrane/crane ``pkg/prediction/dsp`` (the predictor behind Crane's Effective
HPA; https://gocrane.io/docs/core-concept/timeseriees-forecasting-by-dsp/), on samples
taken every control interval:

* `find_period` = ``Signal.FindPeriod`` (``signal.go``): frequencies whose FFT power
  beats the 99th-percentile max power of 100 random permutations of the samples are
  candidate periods; the candidate whose autocorrelation (``auto_correlation.go``) is a
  peak (``isPeak``, ``peak.go``: rising least-squares slope before it, falling after) and
  the highest wins. Upstream seeds the permutations from the clock; here from ``seed``,
  so a forecast is reproducible.
* `is_periodic` = ``Signal.IsPeriodic`` (``frequency_spectrum.go``): the check upstream
  runs for its fixed candidates (a day, then a week), used here when candidate periods are
  given: at least two whole cycles, and the cycle's frequency is the strongest of those
  not faster than it.
* `max_value_estimate` / `fft_estimate` = ``maxValueEstimator`` / ``fftEstimator``
  (``estimators.go``): the next cycle as the maximum at each phase over past cycles
  (margin 0), or as the low-pass reconstruction of the last cycle (keep every component
  slower than 1/24 of the cycle, the rest only if among the strongest; margin 10 %).
  Upstream zeroes the conjugate half of the spectrum by a different rule than the
  positive half (its frequency labels run to the sample rate); we filter the real FFT,
  so a kept component keeps its whole amplitude.
* `forecast_cycle` = ``updateAggregateSignals`` + ``bestEstimator`` (``prediction.go``):
  the estimator whose forecast of the last cycle from the earlier ones has the lowest
  error (``accuracy.PredictionError``: MAPE with under-prediction amplified, MAE when a
  sample is ~0) forecasts the cycle after the history.

Upstream's fixed "one hour" high-frequency cut and "four hours" ACF search radius are
taken relative to a 24-hour cycle (1/24 and 1/6 of the period), because our traces
compress a day into an episode.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import numpy as np

from gnnrl.config import ConfigError, JsonConfig


@dataclasses.dataclass
class DSPConfig(JsonConfig):
    """Crane DSP predictor settings (upstream defaults where upstream has one).

    Attributes:
        periods: candidate periods in control intervals, tried in order (upstream: a day,
            then a week); empty = find the period in the history (`find_period`).
        min_cycles: whole cycles of history needed before forecasting (upstream: 2).
        fft_margin / max_value_margin: factors (1 + margin) on the estimators' outputs.
        low_amplitude: upstream's ``lowAmplitudeThreshold``, in the signal's units
            (req/s): weaker components are noise unless among the strongest few.
        min_spectrum_items / max_spectrum_items: the strongest components always kept /
            the most ever kept (upstream: 3 / 100).
        permutations: shuffles behind the period-detection power threshold (upstream 100).
        seed: seed of those shuffles.
    """

    periods: tuple[int, ...] = ()
    min_cycles: int = 2
    fft_margin: float = 0.1
    max_value_margin: float = 0.0
    low_amplitude: float = 1.0
    min_spectrum_items: int = 3
    max_spectrum_items: int = 100
    permutations: int = 100
    seed: int = 0

    def __post_init__(self) -> None:
        if any(int(p) < 2 for p in self.periods):
            raise ConfigError(f"periods: every period must be >= 2 intervals, got {self.periods}")
        if self.min_cycles < 2:
            raise ConfigError(f"min_cycles: must be >= 2, got {self.min_cycles}")
        for name in ("fft_margin", "max_value_margin", "low_amplitude"):
            if not getattr(self, name) >= 0:
                raise ConfigError(f"{name}: must be >= 0, got {getattr(self, name)}")
        if not (1 <= self.min_spectrum_items <= self.max_spectrum_items):
            raise ConfigError("min_spectrum_items / max_spectrum_items: need 1 <= min <= max, "
                              f"got {self.min_spectrum_items} / {self.max_spectrum_items}")
        if self.permutations < 1:
            raise ConfigError(f"permutations: must be >= 1, got {self.permutations}")


def autocorrelation(x: np.ndarray) -> np.ndarray:
    """Circular autocorrelation of the standardised samples (upstream's ``AutoCorrelation``).

    Shapes: x (N,) -> (N,), lag 0 = 1 (0 everywhere for a constant signal).
    """
    x = np.asarray(x, dtype=float)
    std = x.std()
    if x.size == 0 or std == 0:
        return np.zeros(x.size)
    z = (x - x.mean()) / std
    f = np.fft.fft(z)
    return np.fft.ifft(np.abs(f) ** 2).real / x.size


def _is_peak(acf: np.ndarray, i: int, k: int) -> bool:
    """``isPeak``: least-squares slope > 0 over [i - k, i] and < 0 over [i, i + k]."""
    n = acf.size
    if i < 1 or i > n - 1:
        return False
    left = np.arange(max(0, i - k), i + 1)
    right = np.arange(i, min(n - 1, i + k) + 1)
    if left.size < 2 or right.size < 2:
        return False
    return bool(np.polyfit(left, acf[left], 1)[0] > 0 and np.polyfit(right, acf[right], 1)[0] < 0)


def find_period(x: np.ndarray, permutations: int = 100, seed: int = 0) -> int | None:
    """The signal's fundamental period in samples, or None (upstream's ``FindPeriod``).

    Shapes: x (N,) samples at a fixed interval.
    """
    x = np.asarray(x, dtype=float)
    n = x.size
    if n < 8 or x.std() == 0:
        return None
    rng = np.random.default_rng(seed)
    half = n // 2
    shuffled = np.stack([rng.permutation(x) for _ in range(permutations)])
    powers = np.abs(np.fft.fft(shuffled, axis=1))[:, 1:half].max(axis=1)
    threshold = np.sort(powers)[max(0, math.ceil(0.99 * permutations) - 1)]  # 99th of 100
    spectrum = np.abs(np.fft.fft(x))
    hints: list[int] = []
    for k in range(2, half):
        if spectrum[k] > threshold and (not hints or hints[-1] > n // k):
            hints.append(n // k)
    acf = autocorrelation(x)
    best, best_cor = None, 0.0
    for hint in hints:
        radius = max(1, hint // 6)  # upstream: 4 hours, of a 24-hour cycle
        if _is_peak(acf, hint, radius) and acf[hint] > best_cor:
            best, best_cor = hint, float(acf[hint])
    return best


def is_periodic(x: np.ndarray, period: int) -> bool:
    """Whether ``x`` repeats every ``period`` samples (upstream's ``IsPeriodic``).

    Truncated to its last whole cycles (at least two), the cycle's frequency must come,
    in descending amplitude, before any component slower than it.
    """
    x = np.asarray(x, dtype=float)
    cycles = x.size // period
    if cycles < 2:
        return False
    amps = np.abs(np.fft.rfft(x[x.size - cycles * period:]))[1:]
    for k in np.argsort(-amps, kind="stable") + 1:  # bin k = k cycles in the window
        if k < cycles:
            return False
        if k == cycles:
            return True
    return False


def max_value_estimate(x: np.ndarray, period: int, margin: float = 0.0) -> np.ndarray:
    """The next cycle as the max at each phase over the past whole cycles, x (1 + margin).

    Shapes: x (m * period,) -> (period,).
    """
    cycles = np.asarray(x, dtype=float)[-(x.size // period) * period:].reshape(-1, period)
    return cycles.max(axis=0) * (1.0 + margin)


def fft_estimate(x: np.ndarray, period: int, cfg: DSPConfig) -> np.ndarray:
    """The next cycle as the last cycle of the low-pass filtered signal, x (1 + margin).

    Components slower than period / 24 samples are always kept; faster ones only when at
    least as strong as the ``max_spectrum_items``-th strongest (and ``low_amplitude``), the
    ``min_spectrum_items`` strongest always. Non-positive values become 0.01 (upstream).
    Shapes: x (N,) -> (period,).
    """
    x = np.asarray(x, dtype=float)
    n = x.size
    spec = np.fft.rfft(x)
    amps = np.abs(spec) / n
    ranked = np.sort(amps[1:])[::-1]
    if ranked.size == 0:
        return np.full(period, max(float(x.mean()), 0.01) * (1.0 + cfg.fft_margin))
    min_amp = max(ranked[min(cfg.max_spectrum_items, ranked.size) - 1], cfg.low_amplitude)
    if ranked.size >= cfg.min_spectrum_items:
        min_amp = min(min_amp, ranked[cfg.min_spectrum_items - 1])
    bins = np.arange(spec.size)
    slow = bins < (n / period) * 24  # periods longer than period / 24 samples
    spec = np.where((amps < min_amp) & ~slow, 0.0, spec)
    y = np.fft.irfft(spec, n)[-period:]
    return np.where(y <= 0.0, 0.01, y) * (1.0 + cfg.fft_margin)


def _prediction_error(actual: np.ndarray, predicted: np.ndarray) -> float:
    """``accuracy.PredictionError``: MAPE with under-prediction amplified, else MAE."""
    if np.any(actual < 1e-3):
        return float(np.mean(np.abs(actual - predicted)))
    rel = (actual - predicted) / actual
    under = -np.log(1.0 - np.clip(rel, 0.0, 1.0 - 1e-12)) / math.log(1.25)
    return float(np.mean(np.where(predicted < actual, under, -rel)))


def forecast_cycle(x: Sequence[float] | np.ndarray, cfg: DSPConfig | None = None
                   ) -> np.ndarray | None:
    """The cycle after ``x``, or None when ``x`` shows no period with enough cycles.

    Returns:
        (period,) forecast: element j is the value expected j + 1 samples after the last
        sample of ``x`` (the forecast repeats with the period beyond that).
    """
    cfg = cfg or DSPConfig()
    arr = np.asarray(x, dtype=float)
    arr = arr[np.isfinite(arr)]
    if cfg.periods:
        period = next((int(p) for p in cfg.periods if is_periodic(arr, int(p))), None)
    else:
        period = find_period(arr, cfg.permutations, cfg.seed)
    if period is None or arr.size // period < cfg.min_cycles:
        return None
    cycles = arr.size // period
    arr = arr[arr.size - cycles * period:]

    def estimate(signal: np.ndarray, kind: str) -> np.ndarray:
        if kind == "max":
            return max_value_estimate(signal, period, cfg.max_value_margin)
        return fft_estimate(signal, period, cfg)

    past, last = arr[:-period], arr[-period:]
    best = min(("max", "fft"), key=lambda k: _prediction_error(last, estimate(past, k)))
    return estimate(arr, best)
