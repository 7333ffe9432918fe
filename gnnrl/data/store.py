"""`SnapshotWriter`: buffered, validated, atomic writes of snapshots to the Parquet dataset.

Guarantees (the fault table of docs/data.md):

* C2: a part file is written under a hidden temporary name in its final folder, fsynced and
  renamed (`gnnrl.config.atomic_write_bytes`), so a reader never sees a partial
  ``part-*.parquet``; temporaries left by a killed writer are removed when the next writer
  opens the same root (and are invisible to readers meanwhile: pyarrow ignores names that
  start with ``.``).
* One flush is one commit: its part files (nodes, edges, gaps, quarantine) are named after
  the flush and become visible together when its commit marker ``_commits/<flush>.json`` is
  written, after all of them (and their folders) are fsynced. A reader never sees a
  snapshot's nodes without its edges; a flush interrupted by a kill or a full disk leaves
  only invisible files, removed when the next writer opens the root.
* The buffer is kept until its flush is committed: a failed write (disk full, file too
  large...) raises `StoreWriteError`, removes what the flush had written, and loses nothing
  that was buffered; `flush()` may be called again.
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
import json
import os
import re
import uuid
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from gnnrl.config import atomic_write_bytes
from gnnrl.data.errors import SnapshotShapeError, StoreWriteError, WriterBusyError
from gnnrl.data.reader import SnapshotData, committed_flushes, read_dataset
from gnnrl.data.schema import (
    COMMITS_DIR,
    FLUSH_PART,
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

#: Temporaries written by `atomic_write_bytes`: ".part-<...>.parquet.<rnd>.tmp" (a part
#: file) or ".<flush>.json.<rnd>.tmp" (a commit marker).
_ORPHAN = re.compile(r"^\.(part-.*\.parquet|[0-9a-f]{16}\.json)\..*\.tmp$")


def remove_orphans(root: str | os.PathLike[str]) -> int:
    """Delete what a writer that died (or failed) mid-flush left under `root`: temporary
    files and the part files of flushes without a commit marker (invisible to readers).

    Only call this while no other writer uses `root`. Returns the number removed.
    """
    removed = 0
    root = Path(root)
    if not root.exists():
        return 0
    committed = committed_flushes(root)
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            match = FLUSH_PART.match(name)
            if _ORPHAN.match(name) or (match is not None and match["flush"] not in committed):
                try:
                    os.unlink(os.path.join(dirpath, name))
                    removed += 1
                except FileNotFoundError:
                    pass
    return removed


@dataclasses.dataclass
class WriteStats:
    """Running totals of one writer (rows, not snapshots, except `snapshots`)."""

    #: snapshots handed to `write` (buffered or stored)
    snapshots: int = 0
    #: snapshots whose flush is committed (readable)
    stored_snapshots: int = 0
    nodes: int = 0
    edges: int = 0
    gaps: int = 0
    quarantined_nodes: int = 0
    quarantined_edges: int = 0
    files: int = 0
    flushes: int = 0
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
        #: first and last timestamp (us) of the buffered snapshots
        self._span: tuple[int, int] | None = None
        self._closed = False

    @property
    def pending_snapshots(self) -> int:
        """Snapshots buffered and not yet committed."""
        return self._pending

    def pending_span(self) -> tuple[pd.Timestamp, pd.Timestamp] | None:
        """(first, last) UTC timestamp of the buffered snapshots; None when none is."""
        if self._span is None:
            return None
        return tuple(pd.Timestamp(t, unit="us", tz="UTC") for t in self._span)  # type: ignore[return-value]

    def discard_pending(self) -> int:
        """Drop the buffered snapshots (not the gap rows); returns how many. For a caller
        that gives up after `StoreWriteError` and records the lost span as a gap."""
        dropped = self._pending
        for name in ("nodes", "edges"):
            self._frames[name], self._merged[name], self._keys[name] = [], [], []
        self._pending, self._span = 0, None
        return dropped

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
        self._span = (ts_us, ts_us) if self._span is None else (
            min(self._span[0], ts_us), max(self._span[1], ts_us))
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
        """Validate and write everything buffered as one commit (one file per dataset and
        date, then the commit marker). The buffer is emptied only once the commit is done.

        Raises:
            StoreWriteError: a file could not be written (the `OSError` is the cause);
                nothing of this flush is visible and the buffer is intact.
        """
        if not (self._pending or self._gaps):
            return
        flush_id = uuid.uuid4().hex[:16]
        plan, counts = self._plan()
        written: list[Path] = []
        try:
            for dataset, table, ts_us, time_col in plan:
                written += self._write_partitioned(dataset, table, ts_us, time_col,
                                                   flush_id, len(written))
            if written:
                self._commit(flush_id, written)
        except OSError as exc:
            for path in written:       # invisible without the marker; tidy up anyway
                try:
                    path.unlink()
                except OSError:
                    pass
            raise StoreWriteError(
                f"{self.root}: cannot write the flush of {self._pending} snapshot(s) and "
                f"{len(self._gaps)} gap row(s): {exc.strerror or exc} "
                f"({getattr(exc, 'filename', None) or 'dataset folder'}); they stay buffered",
                errno=exc.errno) from exc
        for key, value in counts.items():
            setattr(self.stats, key, getattr(self.stats, key) + value)
        self.stats.files += len(written)
        self.stats.flushes += 1 if written else 0
        self.stats.stored_snapshots += self._pending
        for name in ("nodes", "edges"):
            self._frames[name], self._merged[name], self._keys[name] = [], [], []
        self._gaps = []
        self._pending, self._span = 0, None

    def _plan(self) -> tuple[list[tuple[str, pa.Table, np.ndarray, str | None]],
                             dict[str, int]]:
        """The tables one flush writes, (dataset, table, ts in us, time column), and the
        row counts to add to the stats once it is committed. Reads the buffer only."""
        plan: list[tuple[str, pa.Table, np.ndarray, str | None]] = []
        counts: dict[str, int] = {}
        for name in ("nodes", "edges"):
            if self._frames[name] or self._merged[name]:
                plan += self._plan_rows(name, counts)
        if self._gaps:
            gaps = pd.DataFrame(self._gaps)
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
            plan.append(("gaps", table, gaps["start"].to_numpy(np.int64), None))
            counts["gaps"] = len(gaps)
        return plan, counts

    def _commit(self, flush_id: str, written: list[Path]) -> None:
        """Make the flush visible: fsync the folders its files were renamed into (so the
        marker never survives a power loss that its files do not), then write the marker."""
        for folder in sorted({p.parent for p in written}):
            _fsync_dir(folder)
        marker = self.root / COMMITS_DIR / f"{flush_id}.json"
        body = {"flush": flush_id, "files": [str(p.relative_to(self.root)) for p in written],
                "snapshots": self._pending, "gaps": len(self._gaps)}
        atomic_write_bytes(marker, json.dumps(body).encode())
        _fsync_dir(marker.parent)

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

    def _plan_rows(self, name: str, counts: dict[str, int]
                   ) -> list[tuple[str, pa.Table, np.ndarray, str | None]]:
        frames, keys = self._merged[name] + self._frames[name], self._keys[name]
        cols = list(NODE_COLUMNS if name == "nodes" else EDGE_COLUMNS)
        # One concat, then one column selection: selecting per frame costs ~20x more.
        df = pd.concat(frames, ignore_index=True)[cols]
        counts_ = np.fromiter((k[2] for k in keys), dtype=np.int64, count=len(keys))
        ts = np.repeat(np.fromiter((k[0] for k in keys), np.int64, len(keys)), counts_)
        df["namespace"] = np.repeat(np.array([k[1] for k in keys], dtype=object), counts_)
        reasons = check_rows(name, df).to_numpy()
        bad = reasons != ""
        plan: list[tuple[str, pa.Table, np.ndarray, str | None]] = []
        if bad.any():
            qdf = df[bad].assign(reason=reasons[bad])
            plan.append((f"quarantine/{name}",
                         _to_table(quarantine_schema(name), qdf, ts[bad], SCHEMA_VERSION),
                         ts[bad], TIME_COLUMN[name]))
            counts[f"quarantined_{name}"] = int(bad.sum())
        good = ~bad
        if good.any():
            plan.append((name, _to_table(SCHEMAS[name], df[good], ts[good], SCHEMA_VERSION),
                         ts[good], None))
            counts[name] = int(good.sum())
        return plan

    def _write_partitioned(self, dataset: str, table: pa.Table, ts_us: np.ndarray,
                           time_col: str | None, flush_id: str, seq: int) -> list[Path]:
        """Write `table` as one part file per UTC date of `ts_us`; returns their paths. A
        failure leaves the files already written in place (the caller removes them)."""
        days = ts_us // 86_400_000_000
        written: list[Path] = []
        for day in np.unique(days):
            part = table.filter(pa.array(days == day)) if len(np.unique(days)) > 1 else table
            date = pd.Timestamp(int(day) * 86_400_000_000, unit="us").strftime("%Y-%m-%d")
            first = pd.Timestamp(int(ts_us[days == day].min()), unit="us")
            folder = self.root / dataset / f"{PARTITION_COLUMN}={date}"
            fname = f"part-{first:%Y%m%dT%H%M%S}-f{flush_id}-{seq + len(written)}.parquet"
            sink = pa.BufferOutputStream()
            pq.write_table(part, sink, compression="zstd")
            atomic_write_bytes(folder / fname, sink.getvalue().to_pybytes())
            written.append(folder / fname)
        return written


def _fsync_dir(folder: Path) -> None:
    """fsync a folder so the renames into it survive a power loss (POSIX: a rename is
    durable once its directory is synced)."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


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
        t = pd.Timestamp(ts)  # type: ignore[arg-type]  # anything; raises on a non-timestamp
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
