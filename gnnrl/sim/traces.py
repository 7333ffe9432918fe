"""Traffic traces: requests/s at the application's entry, one value per control interval.

Kinds (all seeded, all scaled so their maximum is about ``peak_rps``):

* ``constant``  - flat at ``peak_rps`` with Poisson-scale noise.
* ``diurnal``   - one day compressed into the episode: a sinusoid between 20 % and 100 %
  of peak with a secondary lunchtime bump (the shape of web traffic in e.g. the Wikipedia
  and Azure Functions traces).
* ``flash``     - a flash crowd: base load at 30 % with a step to 100 % at a random time,
  held for a while, then a decay.
* ``ramp``      - linear ramp from 10 % to 100 % over the episode.
* ``fluctuating`` - a bounded multiplicative random walk (load that wanders).
* ``surge``     - a 10x surge: base load at 10 % with a step to 100 % in one interval,
  same timing as ``flash`` (a stress test: the pods sized for the base are swamped until
  new ones are Ready).
* a replay   - a real trace, by built-in name (``worldcup98``, ``aws-elb``) or file
  (``minute,count``, ``timestamp,value`` or ``t_s,rps``; CSV, CSV.gz or Parquet; see
  `gnnrl.sim.trace_io`), resampled to the control interval and rescaled to ``peak_rps``.

Trace specs (`trace_from_spec`, everywhere a trace is accepted: ``gnnrl train --trace``,
``gnnrl simulate --trace``, `Scenario.trace`): a kind, a built-in trace name, a file, or
a replay window ``SOURCE@START[+DURATION]`` (e.g. ``worldcup98@1622h30m+12h``) replayed
at the trace's own time scale (`window_trace`).
"""

from __future__ import annotations

import dataclasses
import os
import re
from pathlib import Path

import numpy as np

from gnnrl.sim.trace_io import (
    BUILTIN_TRACES,
    TraceError,
    check_window,
    parse_duration,
    read_trace,
    resample,
    rescale,
)

TRACE_KINDS = ("constant", "diurnal", "flash", "ramp", "fluctuating", "surge")
__all__ = ["BUILTIN_TRACES", "TRACE_KINDS", "TraceError", "TraceSpec", "load_trace",
           "make_trace", "parse_trace_spec", "trace_from_spec",
           "window_trace"]


def make_trace(kind: str, steps: int, interval_s: float = 15.0, peak_rps: float = 100.0,
               seed: int | None = 0, noise: float = 0.03) -> np.ndarray:
    """Build a synthetic trace.

    Args:
        kind: one of `TRACE_KINDS`.
        steps: number of control intervals.
        interval_s: seconds per interval (only affects nothing but documentation today; the
            shapes are defined over the episode).
        peak_rps: the trace's maximum, req/s.
        seed: RNG seed (noise, flash-crowd timing, random walk).
        noise: relative std of multiplicative noise per step.

    Returns:
        Shape (steps,) float64, req/s, all >= 0.
    """
    if steps <= 0:
        raise TraceError(f"steps: must be > 0, got {steps}")
    if peak_rps <= 0:
        raise TraceError(f"peak_rps: must be > 0, got {peak_rps}")
    rng = np.random.default_rng(seed)
    x = np.linspace(0.0, 1.0, steps, endpoint=False)
    if kind == "constant":
        base = np.ones(steps)
    elif kind == "diurnal":
        phase = rng.uniform(0, 0.15)
        day = 0.6 - 0.4 * np.cos(2 * np.pi * (x + phase))
        lunch = 0.15 * np.exp(-0.5 * ((x - 0.45 + phase) / 0.05) ** 2)
        base = (day + lunch) / 1.15
    elif kind in ("flash", "surge"):
        low = 0.3 if kind == "flash" else 0.1
        start = rng.uniform(0.25, 0.55)
        hold = rng.uniform(0.08, 0.15)
        base = np.full(steps, low)
        on = (x >= start) & (x < start + hold)
        base[on] = 1.0
        after = x >= start + hold
        base[after] = low + (1.0 - low) * np.exp(-(x[after] - start - hold) / 0.05)
    elif kind == "ramp":
        base = 0.1 + 0.9 * x
    elif kind == "fluctuating":
        walk = np.empty(steps)
        level = rng.uniform(0.4, 0.7)
        for i in range(steps):
            level = float(np.clip(level * np.exp(rng.normal(0, 0.06)), 0.15, 1.0))
            walk[i] = level
        base = walk
    else:
        raise TraceError(f"kind: unknown trace {kind!r} (known: {', '.join(TRACE_KINDS)}, "
                         "a built-in trace or a trace file)")
    rps = peak_rps * base * np.exp(rng.normal(0, noise, steps))
    return np.maximum(rps, 0.0)


def load_trace(path: str | os.PathLike[str], interval_s: float = 15.0,
               peak_rps: float | None = None, steps: int | None = None) -> np.ndarray:
    """Read a whole replay trace (a file in any `gnnrl.sim.trace_io` format, or a
    built-in trace name).

    The trace is resampled to ``interval_s`` (`gnnrl.sim.trace_io.resample`; gaps are
    interpolated), rescaled so its maximum is ``peak_rps`` when given, and tiled or cut to
    ``steps`` when given.

    Returns:
        Shape (n,) float64 req/s.
    """
    raw = read_trace(path)
    full = resample(raw, interval_s)
    if peak_rps is not None:
        full = rescale(full, float(full.max()), peak_rps, raw.source)
    if steps is not None:
        reps = int(np.ceil(steps / len(full)))
        full = np.tile(full, reps)[:steps]
    return full


def window_trace(source: str | os.PathLike[str], *, start: str | None = None,
                 duration: str | None = None, steps: int | None = None,
                 interval_s: float = 15.0, peak_rps: float | None = None,
                 compress: bool = False, seed: int | None = None) -> np.ndarray:
    """A window of a real trace, rescaled so the window's maximum is ``peak_rps``.

    Args:
        source: built-in trace name or file.
        start: offset from the trace's first timestamp (``"294h"``, ``"90m"``, ``"1d"``);
            None = 0.
        duration: the window's length; None = ``steps`` intervals (native) or the rest of
            the trace.
        steps: intervals to return. Native: default the window's own length
            (``duration / interval_s``: 12 h = 2880 steps of 15 s); more than the window
            continues with the trace's following data (its last value past its end);
            fewer takes a sub-window at a ``seed``-random offset inside the window (0 when
            ``seed`` is None), so a long training window yields varied episodes.
            Compressed: required, the number of intervals the window is squeezed into.
        interval_s: control interval, s.
        peak_rps: the window's maximum after rescaling; None = the trace's own req/s.
        compress: squeeze the whole window into ``steps`` intervals (each averages or
            interpolates ``duration / steps`` seconds of the trace) instead of replaying it
            at its own time scale.
        seed: picks the sub-window offset (see ``steps``).

    Returns:
        Shape (steps,) float64 req/s.

    Raises:
        TraceError: bad file or format, bad units, a window beyond the trace.
    """
    raw = read_trace(source)
    start_s = parse_duration(start, "start") if start is not None else 0.0
    dur_s = parse_duration(duration, "duration") if duration is not None else None
    if compress:
        if not steps or steps < 1:
            raise TraceError("steps: a compressed replay needs steps >= 1")
        dur_s = check_window(raw, start_s, dur_s)
        if duration is None:
            # to the last bucket's start, as earlier releases compressed whole files
            dur_s = max(float(raw.t_s[-1]) - start_s, 1e-9 * steps)
        series = resample(raw, dur_s / steps, start_s, steps)
        return rescale(series, float(series.max()), peak_rps, raw.source)
    if dur_s is None and steps is not None:
        dur_s = steps * interval_s
    dur_s = check_window(raw, start_s, dur_s)
    n_win = max(round(dur_s / interval_s), 1)
    n = steps or n_win
    window = resample(raw, interval_s, start_s, n_win)
    offset = 0
    if n < n_win and seed is not None:
        offset = int(np.random.default_rng(seed).integers(0, n_win - n + 1))
    series = window[offset:offset + n] if offset + n <= n_win else \
        resample(raw, interval_s, start_s + offset * interval_s, n)
    return rescale(series, float(window.max()), peak_rps, raw.source)


#: how much history before a window a forecasting policy is given (two weeks: enough for
#: weekly periods, two whole cycles)
HISTORY_S = 14 * 86400.0


def history_before(source: str | os.PathLike[str], *, start: str | None,
                   duration: str | None, interval_s: float = 15.0,
                   peak_rps: float | None = None, max_s: float = HISTORY_S
                   ) -> np.ndarray | None:
    """The trace before a native window, on the window's scale: what a cluster's
    monitoring would hold when the window starts (oldest first, one value per interval).

    Rescaled with the window's own factor (`window_trace`), so history and window are in
    the same req/s. Up to ``max_s`` seconds; None when the window starts at the trace's
    first timestamp. Shape (n,) float64 req/s.
    """
    start_s = parse_duration(start, "start") if start is not None else 0.0
    n_hist = int(min(start_s, max_s) // interval_s)
    if n_hist < 1:
        return None
    raw = read_trace(source)
    dur_s = check_window(raw, start_s, parse_duration(duration, "duration")
                         if duration is not None else None)
    window = resample(raw, interval_s, start_s, max(round(dur_s / interval_s), 1))
    hist = resample(raw, interval_s, start_s - n_hist * interval_s, n_hist)
    return rescale(hist, float(window.max()), peak_rps, raw.source)


@dataclasses.dataclass(frozen=True)
class TraceSpec:
    """A parsed replay spec: ``source`` (built-in name or file) and an optional window."""

    source: str
    start: str | None = None
    duration: str | None = None

    @property
    def windowed(self) -> bool:
        return self.start is not None or self.duration is not None

    def __str__(self) -> str:
        if not self.windowed:
            return self.source
        return f"{self.source}@{self.start or '0s'}" + (
            f"+{self.duration}" if self.duration else "")


_SPEC_WINDOW = re.compile(r"^(?P<src>.+)@(?P<start>[0-9.smhd]+)(?:\+(?P<dur>[0-9.smhd]+))?$",
                          re.IGNORECASE)


def parse_trace_spec(spec: str) -> TraceSpec:
    """``"worldcup98@1622h30m+12h"`` -> TraceSpec("worldcup98", "1622h30m", "12h").

    An existing file whose name contains ``@`` is taken as a whole; units are checked by
    `window_trace`.
    """
    m = _SPEC_WINDOW.match(spec)
    if m is None or Path(spec).exists():
        return TraceSpec(spec)
    return TraceSpec(m.group("src"), m.group("start"), m.group("dur"))


def trace_from_spec(spec: str, steps: int, interval_s: float = 15.0, peak_rps: float = 100.0,
                    seed: int | None = 0) -> np.ndarray:
    """A kind from `TRACE_KINDS`, a built-in trace name, a file, or a replay window
    ``SOURCE@START[+DURATION]`` at the trace's own time scale (`window_trace`).

    A whole trace (no window) is resampled, rescaled to its maximum and tiled, as before
    windows existed. Returns shape (steps,) float64 req/s.
    """
    if spec in TRACE_KINDS:
        return make_trace(spec, steps, interval_s, peak_rps, seed)
    parsed = parse_trace_spec(spec)
    if not parsed.windowed:
        return load_trace(parsed.source, interval_s, peak_rps, steps)
    return window_trace(parsed.source, start=parsed.start, duration=parsed.duration,
                        steps=steps, interval_s=interval_s, peak_rps=peak_rps, seed=seed)


