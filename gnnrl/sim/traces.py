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
* ``replay``    - a CSV or Parquet file with columns ``t_s, rps``, resampled to the
  control interval and rescaled to ``peak_rps`` when given.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

TRACE_KINDS = ("constant", "diurnal", "flash", "ramp", "fluctuating")


class TraceError(ValueError):
    """A trace cannot be built or read; the message names the problem."""


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
    elif kind == "flash":
        start = rng.uniform(0.25, 0.55)
        hold = rng.uniform(0.08, 0.15)
        base = np.full(steps, 0.3)
        on = (x >= start) & (x < start + hold)
        base[on] = 1.0
        after = x >= start + hold
        base[after] = 0.3 + 0.7 * np.exp(-(x[after] - start - hold) / 0.05)
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
                         "or a CSV/Parquet path)")
    rps = peak_rps * base * np.exp(rng.normal(0, noise, steps))
    return np.maximum(rps, 0.0)


def load_trace(path: str | os.PathLike[str], interval_s: float = 15.0,
               peak_rps: float | None = None, steps: int | None = None) -> np.ndarray:
    """Read a replay trace (CSV or Parquet with columns ``t_s, rps``).

    The trace is averaged into ``interval_s`` buckets (gaps are interpolated), rescaled so
    its maximum is ``peak_rps`` when given, and tiled or cut to ``steps`` when given.

    Returns:
        Shape (n,) float64 req/s.
    """
    path = Path(path)
    if not path.exists():
        raise TraceError(f"{path}: no such trace file")
    try:
        df = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)
    except Exception as exc:  # pandas raises many types for bad files
        raise TraceError(f"{path}: cannot read trace: {exc}") from exc
    missing = {"t_s", "rps"} - set(df.columns)
    if missing:
        raise TraceError(f"{path}: missing column(s) {', '.join(sorted(missing))}; "
                         "a trace needs t_s and rps")
    df = df[["t_s", "rps"]].apply(pd.to_numeric, errors="coerce").dropna()
    if df.empty:
        raise TraceError(f"{path}: no numeric rows")
    if (df["rps"] < 0).any():
        raise TraceError(f"{path}: rps must be >= 0")
    df = df.sort_values("t_s")
    bucket = ((df["t_s"] - df["t_s"].iloc[0]) // interval_s).astype(int)
    series = df.groupby(bucket)["rps"].mean()
    full = series.reindex(range(int(bucket.max()) + 1)).interpolate().to_numpy(float)
    if peak_rps is not None:
        top = full.max()
        if top <= 0:
            raise TraceError(f"{path}: all-zero trace cannot be rescaled to peak_rps")
        full = full * (peak_rps / top)
    if steps is not None:
        reps = int(np.ceil(steps / len(full)))
        full = np.tile(full, reps)[:steps]
    return full


def trace_from_spec(spec: str, steps: int, interval_s: float = 15.0, peak_rps: float = 100.0,
                    seed: int | None = 0) -> np.ndarray:
    """A kind name from `TRACE_KINDS` or a path to a replay file."""
    if spec in TRACE_KINDS:
        return make_trace(spec, steps, interval_s, peak_rps, seed)
    return load_trace(spec, interval_s, peak_rps, steps)


def save_trace_csv(rps: np.ndarray, path: str | os.PathLike[str], interval_s: float = 15.0) -> None:
    """Write a trace as CSV ``t_s,rps`` atomically."""
    from gnnrl.config import atomic_write_text

    t = np.arange(len(rps)) * interval_s
    atomic_write_text(path, pd.DataFrame({"t_s": t, "rps": rps}).to_csv(index=False))
