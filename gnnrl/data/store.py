"""`SnapshotWriter`: buffered, validated, atomic writes of snapshots to the Parquet dataset.

Guarantees (`../shared/RELIABILITY.md`):

* C2: a part file is written under a hidden temporary name in its final folder, fsynced and
  renamed (`gnnrl.config.atomic_write_bytes`), so a reader never sees a partial
  ``part-*.parquet``; temporaries left by a killed writer are removed when the next writer
  opens the same root (and are invisible to readers meanwhile: pyarrow ignores names that
  start with ``.``).
* Bad rows never reach `nodes/` or `edges/`: they go to `quarantine/` with the reason
  (`gnnrl.data.validate`).
* A flush writes at most one file per (dataset, date partition), so many snapshots share a
  file (throughput: see ``benchmarks/bench_snapshots.py``).
* One writer per folder: an ``flock`` on ``ROOT/.gnnrl-writer.lock`` (released by the kernel
  when the process dies) refuses a second writer with `WriterBusyError`, which is what makes
  the orphan cleanup safe.

Reading is `gnnrl.data.reader.read_dataset` (re-exported here).
"""

from __future__ import annotations

import dataclasses
import fcntl
import os
import re
import uuid
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from gnnrl.config import atomic_write_bytes
from gnnrl.data.errors import SnapshotShapeError, WriterBusyError
from gnnrl.data.reader import SnapshotData, read_dataset
from gnnrl.data.schema import (
    PARTITION_COLUMN,
    SCHEMA_VERSION,
    SCHEMAS,
    TIME_COLUMN,
    quarantine_schema,
)
from gnnrl.data.snapshot import EDGE_COLUMNS, NODE_COLUMNS, GraphSnapshot
from gnnrl.data.validate import check_rows

__all__ = ["SnapshotData", "SnapshotWriter", "WriteStats", "read_dataset", "remove_orphans"]

#: Lock file held (flock) by the one writer of a dataset folder; released when the process
#: dies, so a killed collector never leaves a stale lock. Hidden from readers (leading dot).
LOCK_NAME = ".gnnrl-writer.lock"

#: Buffered frames per dataset concatenated into one as they arrive (see `_buffer`).
_MERGE_EVERY = 16

#: Temporaries written by `atomic_write_bytes` for a part file: ".part-<...>.parquet.<rnd>.tmp".
_ORPHAN = re.compile(r"^\.part-.*\.parquet\..*\.tmp$")


def remove_orphans(root: str | os.PathLike[str]) -> int:
    """Delete temporary part files left under `root` by a writer that died mid-write.

    Only call this while no other writer uses `root`. Returns the number removed.
    """
    removed = 0
    root = Path(root)
    if not root.exists():
        return 0
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            if _ORPHAN.match(name):
                try:
                    os.unlink(os.path.join(dirpath, name))
                    removed += 1
                except FileNotFoundError:
                    pass
    return removed


@dataclasses.dataclass
class WriteStats:
    """Running totals of one writer (rows, not snapshots, except `snapshots`)."""

    snapshots: int = 0
    nodes: int = 0
    edges: int = 0
    gaps: int = 0
    quarantined_nodes: int = 0
    quarantined_edges: int = 0
    files: int = 0
    orphans_removed: int = 0
    #: nodes the sources kept out of the service mapping, by reason (unknown, outside, dead...)
    skipped: dict[str, int] = dataclasses.field(default_factory=dict)

    @property
    def quarantined(self) -> int:
        return self.quarantined_nodes + self.quarantined_edges


class SnapshotWriter:
    """Append snapshots and gaps to the dataset at `root`; flush every `flush_snapshots`.

    Args:
        root: dataset folder (created if missing). Orphaned temporaries are removed now.
        flush_snapshots: buffered snapshots that trigger a flush (>= 1). Larger = fewer,
            bigger files and more throughput; smaller = less lost on SIGKILL.

    Use as a context manager, or call `close()`: both flush what is buffered.
    """

    def __init__(self, root: str | os.PathLike[str], flush_snapshots: int = 256) -> None:
        if flush_snapshots < 1:
            raise ValueError(f"flush_snapshots must be >= 1, got {flush_snapshots}")
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self._lock = _lock(self.root)
        self.flush_snapshots = int(flush_snapshots)
        self.stats = WriteStats(orphans_removed=remove_orphans(self.root))
        self._frames: dict[str, list[pd.DataFrame]] = {"nodes": [], "edges": []}
        #: runs of `_MERGE_EVERY` buffered frames already concatenated (see `write`)
        self._merged: dict[str, list[pd.DataFrame]] = {"nodes": [], "edges": []}
        self._keys: dict[str, list[tuple[int, str, int]]] = {"nodes": [], "edges": []}
        self._gaps: list[dict[str, object]] = []
        self._pending = 0
        self._closed = False

    # -- buffering -------------------------------------------------------------------------
    def write(self, snapshot: GraphSnapshot) -> None:
        """Buffer one snapshot (its nodes and edges); flush when the buffer is full.

        Raises:
            SnapshotShapeError: `snapshot` is not a GraphSnapshot or lacks a column.
        """
        self._check_open()
        if not isinstance(snapshot, GraphSnapshot):
            raise SnapshotShapeError(f"expected GraphSnapshot, got {type(snapshot).__name__}")
        ts_us = _to_us(snapshot.ts, "snapshot.ts")
        parts = (("nodes", snapshot.nodes, NODE_COLUMNS), ("edges", snapshot.edges, EDGE_COLUMNS))
        for name, frame, cols in parts:    # check both before buffering either
            if not isinstance(frame, pd.DataFrame):
                raise SnapshotShapeError(f"snapshot.{name} is a {type(frame).__name__}, "
                                         "not a DataFrame")
            missing = [c for c in cols if c not in frame.columns]
            if missing:
                raise SnapshotShapeError(f"snapshot.{name} lacks column(s) {', '.join(missing)}")
        for name, frame, _cols in parts:
            if len(frame):
                self._buffer(name, frame)
                self._keys[name].append((ts_us, str(snapshot.namespace), len(frame)))
        for reason, count in snapshot.skipped.items():
            self.stats.skipped[reason] = self.stats.skipped.get(reason, 0) + int(count)
        self._pending += 1
        self.stats.snapshots += 1
        if self._pending >= self.flush_snapshots:
            self.flush()

    def _buffer(self, name: str, frame: pd.DataFrame) -> None:
        """Keep `frame` until the flush; every `_MERGE_EVERY` frames are concatenated into
        one as they arrive. Same rows and order as one concat at the flush, but a full
        buffer holds a few big frames instead of thousands of small ones, whose many
        objects made every garbage-collector pass slower (~15% of ingest time)."""
        frames = self._frames[name]
        frames.append(frame)
        if len(frames) >= _MERGE_EVERY:
            self._merged[name].append(pd.concat(frames, ignore_index=True))
            self._frames[name] = []

    def write_gap(self, start: pd.Timestamp, end: pd.Timestamp, source: str, error: str) -> None:
        """Buffer one `gaps` row: no data could be collected from `source` in [start, end]."""
        self._check_open()
        s_us, e_us = _to_us(start, "gap start"), _to_us(end, "gap end")
        if e_us < s_us:
            raise ValueError(f"gap end {end} is before its start {start}")
        self._gaps.append({"start": s_us, "end": e_us, "source": str(source),
                           "error": str(error)})

    # -- flushing --------------------------------------------------------------------------
    def flush(self) -> None:
        """Validate and write everything buffered (one file per dataset and date)."""
        for name in ("nodes", "edges"):
            if self._frames[name] or self._merged[name]:
                self._flush_rows(name)
        if self._gaps:
            gaps = pd.DataFrame(self._gaps)
            self._gaps = []
            table = pa.table(
                {
                    "schema_version": pa.array(np.full(len(gaps), SCHEMA_VERSION, np.int16)),
                    "start": _ts_array(gaps["start"].to_numpy(np.int64)),
                    "end": _ts_array(gaps["end"].to_numpy(np.int64)),
                    "source": pa.array(gaps["source"].tolist(), pa.string()),
                    "error": pa.array(gaps["error"].tolist(), pa.string()),
                },
                schema=SCHEMAS["gaps"],
            )
            self._write_partitioned("gaps", table, gaps["start"].to_numpy(np.int64))
            self.stats.gaps += len(gaps)
        self._pending = 0

    def close(self) -> None:
        """Flush and refuse further writes. Idempotent."""
        if not self._closed:
            try:
                self.flush()
            finally:
                self._closed = True
                self._lock.close()  # releases the flock

    def __enter__(self) -> SnapshotWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- internals -------------------------------------------------------------------------
    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError("SnapshotWriter is closed")

    def _flush_rows(self, name: str) -> None:
        frames, keys = self._merged[name] + self._frames[name], self._keys[name]
        self._merged[name], self._frames[name], self._keys[name] = [], [], []
        cols = list(NODE_COLUMNS if name == "nodes" else EDGE_COLUMNS)
        # One concat, then one column selection: selecting per frame costs ~20x more.
        df = pd.concat(frames, ignore_index=True)[cols]
        counts = np.fromiter((k[2] for k in keys), dtype=np.int64, count=len(keys))
        ts = np.repeat(np.fromiter((k[0] for k in keys), np.int64, len(keys)), counts)
        df["namespace"] = np.repeat(np.array([k[1] for k in keys], dtype=object), counts)
        reasons = check_rows(name, df).to_numpy()
        bad = reasons != ""
        if bad.any():
            self._write_quarantine(name, df[bad], ts[bad], reasons[bad])
            setattr(self.stats, f"quarantined_{name}",
                    getattr(self.stats, f"quarantined_{name}") + int(bad.sum()))
        good = ~bad
        if good.any():
            table = _to_table(SCHEMAS[name], df[good], ts[good], SCHEMA_VERSION)
            self._write_partitioned(name, table, ts[good])
            setattr(self.stats, name, getattr(self.stats, name) + int(good.sum()))

    def _write_quarantine(self, name: str, df: pd.DataFrame, ts: np.ndarray,
                          reasons: np.ndarray) -> None:
        df = df.assign(reason=reasons)
        table = _to_table(quarantine_schema(name), df, ts, SCHEMA_VERSION)
        self._write_partitioned(f"quarantine/{name}", table, ts, TIME_COLUMN[name])

    def _write_partitioned(self, dataset: str, table: pa.Table, ts_us: np.ndarray,
                           time_col: str | None = None) -> None:
        days = ts_us // 86_400_000_000
        for day in np.unique(days):
            part = table.filter(pa.array(days == day)) if len(np.unique(days)) > 1 else table
            date = pd.Timestamp(int(day) * 86_400_000_000, unit="us").strftime("%Y-%m-%d")
            first = pd.Timestamp(int(ts_us[days == day].min()), unit="us")
            folder = self.root / dataset / f"{PARTITION_COLUMN}={date}"
            fname = f"part-{first:%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:12]}.parquet"
            sink = pa.BufferOutputStream()
            pq.write_table(part, sink, compression="zstd")
            atomic_write_bytes(folder / fname, sink.getvalue().to_pybytes())
            self.stats.files += 1


def _lock(root: Path):
    """Take the folder's writer lock (non-blocking) or raise `WriterBusyError`. Orphan
    cleanup deletes temporaries, which is only safe with a single writer."""
    fh = open(root / LOCK_NAME, "a+b")  # held open for the writer's lifetime
    try:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError as exc:
        fh.close()
        raise WriterBusyError(f"{root}: another SnapshotWriter (e.g. a running gnnrl collect) "
                              "writes to this folder; use another --out or stop it") from exc
    return fh


def _to_us(ts: object, what: str) -> int:
    try:
        t = pd.Timestamp(ts)
    except (TypeError, ValueError) as exc:
        raise SnapshotShapeError(f"{what} is not a timestamp: {ts!r}") from exc
    if t is pd.NaT:
        raise SnapshotShapeError(f"{what} is missing (NaT)")
    t = t.tz_localize("UTC") if t.tzinfo is None else t.tz_convert("UTC")
    return int(t.value // 1000)


def _ts_array(us: np.ndarray) -> pa.Array:
    return pa.array(us.astype(np.int64), type=SCHEMAS["gaps"].field("start").type)


def _to_table(schema: pa.Schema, df: pd.DataFrame, ts_us: np.ndarray,
              version: int) -> pa.Table:
    """Build a table of `schema` from `df` (+ ts in µs); NaN numbers become nulls."""
    arrays = []
    for field in schema:
        if field.name == "schema_version":
            arrays.append(pa.array(np.full(len(df), version, np.int16)))
        elif field.name in ("ts", "start"):
            arrays.append(_ts_array(ts_us))
        elif pa.types.is_string(field.type):
            # "string" dtype: None/NaN become nulls, anything else its text
            arrays.append(pa.array(df[field.name].astype("string"), type=pa.string(),
                                   from_pandas=True))
        else:
            v = pd.to_numeric(df[field.name], errors="coerce").to_numpy(float, na_value=np.nan)
            mask = np.isnan(v)
            if pa.types.is_integer(field.type):
                v = np.where(mask, 0, v).astype(field.type.to_pandas_dtype())
            arrays.append(pa.array(v, type=field.type, mask=mask))
    return pa.Table.from_arrays(arrays, schema=schema)
