"""Real request traces: read the formats users have, select a window, resample to the
control interval.

Formats, detected from the header (column names, case and surrounding spaces ignored):

===================  ========================================  ===========================
header               time column                               value column
===================  ========================================  ===========================
``minute,count``     date-time of the bucket's start           requests in the bucket
                     (WorldCup98 per-minute counts)
``timestamp,value``  date-time of the bucket's start           requests in the bucket
                     (NAB / AWS CloudWatch ``Sum`` per period)
``t_s,rps``          seconds                                   req/s (already a rate)
===================  ========================================  ===========================

from ``.csv``, ``.csv.gz`` (any compression pandas infers from the suffix) or
``.parquet``. Per-bucket counts become rates: count / bucket width, the width being the
median step between timestamps (CloudWatch and NAB stamp each period at its start:
https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/cloudwatch_concepts.html).

Resampling to the control interval (`resample`):

* buckets at least as wide as the interval (1- and 5-minute counts -> 15 s) are
  **linearly interpolated between bucket centres**. Holding each bucket's rate for its
  4 or 20 intervals would put a jump at every bucket edge, one interval wide, that the
  real traffic does not have: measured on WorldCup98, the per-minute growth at or above
  mean load has a 99th percentile of 1.11x, real surges are ramps over minutes. The
  interpolation keeps each bucket's mean (up to the curvature between neighbours) and
  removes the invented edges; a 15 s interval that equals the bucket width passes through
  unchanged;
* finer samples (1 s ``t_s,rps``) are averaged into the intervals.

Missing buckets are interpolated across the gap; before the first and after the last
bucket centre the edge value is held.

The built-in traces (`BUILTIN_TRACES`, shipped in ``gnnrl/assets/traces`` with their
attribution in its README) are accepted by name wherever a file is.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import os
import re
from pathlib import Path

import numpy as np
import pandas as pd

TRACE_ASSETS = Path(__file__).resolve().parent.parent / "assets" / "traces"

#: Built-in real traces by name (see gnnrl/assets/traces/README.md).
BUILTIN_TRACES = {
    "worldcup98": "worldcup98_requests_per_minute.csv.gz",
    "aws-elb": "aws_elb_requests_5min.csv",
}


class TraceError(ValueError):
    """A trace cannot be built or read; the message names the problem."""


@dataclasses.dataclass(frozen=True)
class TraceFormat:
    """One accepted header: time and value columns and what they hold."""

    time: str
    value: str
    time_kind: str  # "datetime" | "seconds"
    value_kind: str  # "count" (requests per bucket) | "rate" (req/s)

    @property
    def header(self) -> str:
        return f"{self.time},{self.value}"


FORMATS = (
    TraceFormat("minute", "count", "datetime", "count"),
    TraceFormat("timestamp", "value", "datetime", "count"),
    TraceFormat("t_s", "rps", "seconds", "rate"),
)


@dataclasses.dataclass(frozen=True, eq=False)
class RawTrace:
    """A trace as read, before resampling.

    Attributes:
        source: the file it came from.
        format: the detected header, e.g. ``"minute,count"``.
        t_s: (n,) float, seconds from the first bucket's start, increasing, t_s[0] = 0.
        rps: (n,) float, req/s over each bucket (>= 0).
        bucket_s: bucket width, s (median step; NaN for a one-row ``t_s,rps`` file).
        origin: date-time of the first bucket (None for ``t_s,rps``).
    """

    source: str
    format: str
    t_s: np.ndarray
    rps: np.ndarray
    bucket_s: float
    origin: pd.Timestamp | None

    @property
    def span_s(self) -> float:
        """Seconds from the first bucket's start to the last bucket's end."""
        width = self.bucket_s if math.isfinite(self.bucket_s) else 0.0
        return float(self.t_s[-1] + width)


def resolve_trace_path(source: str | os.PathLike[str]) -> Path:
    """A built-in trace name (`BUILTIN_TRACES`) or a file path -> the file.

    Raises:
        TraceError: neither a built-in name nor an existing file.
    """
    text = str(source)
    if text in BUILTIN_TRACES:
        return TRACE_ASSETS / BUILTIN_TRACES[text]
    path = Path(text)
    if not path.exists():
        raise TraceError(f"{path}: no such trace file (built-in traces: "
                         f"{', '.join(BUILTIN_TRACES)})")
    return path


def is_real_trace(source: str) -> bool:
    """True for a built-in trace name or an existing file."""
    return source in BUILTIN_TRACES or Path(source).is_file()


def detect_format(path: str | os.PathLike[str], columns: list[str]) -> TraceFormat:
    """The `FORMATS` entry whose two columns ``columns`` contains.

    Raises:
        TraceError: naming the file, the columns found and the accepted headers.
    """
    names = {str(c).strip().lower() for c in columns}
    for fmt in FORMATS:
        if fmt.time in names and fmt.value in names:
            return fmt
    found = ", ".join(str(c) for c in columns) or "none"
    known = "; ".join(f.header for f in FORMATS)
    raise TraceError(f"{path}: unknown trace format: columns {found} (a trace needs one of: "
                     f"{known})")


def _read_table(path: Path) -> pd.DataFrame:
    try:
        if path.suffix == ".parquet":
            return pd.read_parquet(path)
        return pd.read_csv(path)
    except Exception as exc:  # pandas and pyarrow raise many types for bad files
        raise TraceError(f"{path}: cannot read trace: {exc}") from exc


def read_trace(source: str | os.PathLike[str]) -> RawTrace:
    """Read a trace file or built-in trace (cached per file version).

    Raises:
        TraceError: missing file, unknown format, unparsable times, negative values,
            no usable rows.
    """
    path = resolve_trace_path(source)
    st = path.stat()
    return _read_trace_cached(str(path.resolve()), st.st_mtime_ns, st.st_size)


@functools.lru_cache(maxsize=8)
def _read_trace_cached(path_text: str, mtime_ns: int, size: int) -> RawTrace:
    del mtime_ns, size  # part of the cache key only: an edited file is read again
    path = Path(path_text)
    df = _read_table(path)
    fmt = detect_format(path, list(df.columns))
    cols = {str(c).strip().lower(): c for c in df.columns}
    t_raw, v_raw = df[cols[fmt.time]], df[cols[fmt.value]]
    values = pd.to_numeric(v_raw, errors="coerce")
    if fmt.time_kind == "datetime":
        try:
            times = pd.to_datetime(t_raw, errors="coerce")
        except (TypeError, ValueError) as exc:
            raise TraceError(f"{path}: column {fmt.time}: not date-times ({exc})") from exc
        if times.notna().sum() < len(times) / 2:
            raise TraceError(f"{path}: column {fmt.time}: most values are not date-times "
                             f"(e.g. {t_raw.iloc[0]!r})")
    else:
        times = pd.to_numeric(t_raw, errors="coerce")
    frame = pd.DataFrame({"t": times, "v": values}).dropna()
    if frame.empty:
        raise TraceError(f"{path}: no rows with a valid {fmt.time} and {fmt.value}")
    if (frame["v"] < 0).any():
        raise TraceError(f"{path}: column {fmt.value}: values must be >= 0")
    # duplicates: counts of one bucket add up, rates of one instant average
    per_t = frame.groupby("t", sort=True)["v"].agg(
        "sum" if fmt.value_kind == "count" else "mean")
    if fmt.time_kind == "datetime":
        t_idx = pd.DatetimeIndex(per_t.index)
        origin = pd.Timestamp(t_idx[0])
        t_s = (t_idx - origin).total_seconds().to_numpy(float)
    else:
        origin = None
        t_s = per_t.index.to_numpy(float) - float(per_t.index[0])
    steps = np.diff(t_s)
    if len(steps):
        bucket_s = float(np.median(steps))
    elif fmt.value_kind == "rate":
        bucket_s = math.nan
    else:
        raise TraceError(f"{path}: one row: the bucket width of a count trace cannot be "
                         "inferred")
    v = per_t.to_numpy(float)
    rps = v / bucket_s if fmt.value_kind == "count" else v
    return RawTrace(str(path), fmt.header, t_s, rps, bucket_s, origin)


# --------------------------------------------------------------------------- durations

_DURATION_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)([smhd])")


def parse_duration(text: str, what: str = "duration") -> float:
    """``"90m"``, ``"12h"``, ``"1d"``, ``"1562h30m"``, ``"1.5h"`` -> seconds.

    Units: s, m (minutes), h, d; parts add up. Raises TraceError naming ``what``.
    """
    s = str(text).strip().lower()
    pos, total = 0, 0.0
    for m in _DURATION_PART.finditer(s):
        if m.start() != pos:
            break
        total += float(m.group(1)) * _DURATION_UNITS[m.group(2)]
        pos = m.end()
    if not s or pos != len(s):
        raise TraceError(f"{what}: cannot read {text!r} as a duration (a number with a unit "
                         "s, m, h or d, e.g. 90m, 12h, 1d, 1562h30m)")
    return total


def format_duration(seconds: float) -> str:
    """Seconds -> the shortest exact ``parse_duration`` string (``43200`` -> ``12h``)."""
    for unit in ("d", "h", "m"):
        n = seconds / _DURATION_UNITS[unit]
        if n >= 1 and float(n).is_integer():
            return f"{int(n)}{unit}"
    return f"{seconds:g}s"


# --------------------------------------------------------------------------- resampling


def resample(raw: RawTrace, interval_s: float, start_s: float = 0.0,
             n: int | None = None) -> np.ndarray:
    """Req/s per control interval, the k-th covering
    ``[start_s + k * interval_s, start_s + (k + 1) * interval_s)`` (see the module
    docstring for interpolation vs averaging).

    Args:
        raw: the trace.
        interval_s: control interval, s.
        start_s: seconds from the trace's first bucket.
        n: intervals; None = up to the end of the trace.

    Returns:
        Shape (n,) float64 req/s. Intervals past the trace's end hold its last value.
    """
    if not interval_s > 0:
        raise TraceError(f"interval_s: must be > 0, got {interval_s}")
    if n is None:
        n = max(math.ceil(round((raw.span_s - start_s) / interval_s, 9)), 1)
    width = raw.bucket_s if math.isfinite(raw.bucket_s) else interval_s
    if width >= interval_s:
        centres = start_s + (np.arange(n) + 0.5) * interval_s
        return np.interp(centres, raw.t_s + width / 2.0, raw.rps)
    # finer than the interval: average the samples falling into each interval (a pandas
    # group-by mean, as earlier releases did, so replays of such files are unchanged)
    rel = raw.t_s - start_s
    sel = rel >= 0.0
    bucket = (rel[sel] // interval_s).astype(np.int64)
    keep = bucket < n
    if not keep.any():
        return np.full(n, float(raw.rps[sel][0] if sel.any() else raw.rps[-1]))
    means = pd.Series(raw.rps[sel][keep]).groupby(bucket[keep]).mean()
    return np.interp(np.arange(n), means.index.to_numpy(float), means.to_numpy(float))


def check_window(raw: RawTrace, start_s: float, duration_s: float | None,
                 what: str = "window") -> float:
    """Validate a window against the trace; return its duration, s (None = to the end).

    Raises:
        TraceError: negative start, empty window, or a window past the trace's end.
    """
    span = raw.span_s
    if start_s < 0:
        raise TraceError(f"{what}: start must be >= 0, got {start_s:g} s")
    if start_s >= span:
        raise TraceError(f"{raw.source}: start {format_duration(start_s)} is beyond the "
                         f"trace, which spans {format_duration(span)}")
    if duration_s is None:
        return span - start_s
    if duration_s <= 0:
        raise TraceError(f"{what}: duration must be > 0, got {duration_s:g} s")
    if start_s + duration_s > span + 1e-6:
        raise TraceError(f"{raw.source}: window {format_duration(start_s)} + "
                         f"{format_duration(duration_s)} ends beyond the trace, which "
                         f"spans {format_duration(span)}")
    return duration_s


def rescale(rps: np.ndarray, window_max: float, peak_rps: float | None,
            source: str) -> np.ndarray:
    """``rps`` x peak_rps / window_max (unchanged when ``peak_rps`` is None)."""
    if peak_rps is None:
        return rps
    if not window_max > 0:
        raise TraceError(f"{source}: the selected window is all zero and cannot be rescaled "
                         "to peak_rps")
    return rps * (peak_rps / window_max)
