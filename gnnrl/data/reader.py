"""`read_dataset`: read the snapshot dataset back as pandas frames, across schema versions.

Files written by an older schema version read with nulls (NaN) in the columns they lack
(`gnnrl.data.schema` lists which); a file written by a *newer* version is refused with
`SchemaVersionError` rather than misread. Temporary files (names starting with ``.`` or
``_``), part files of a flush whose commit marker is not there yet (being written, or a
flush that failed) and the quarantine are never read as data.

One bad file never makes the dataset unreadable: a file that is not Parquet, is truncated,
or stores a column as another type than the schema's (numbers as text) is skipped with an
`UnreadableFileWarning` naming it, and the rest is read. A file without a column no
reader can do without (``ts``, a row's key: `REQUIRED_COLUMNS`) is refused with
`DatasetFileError`, never read with null timestamps.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from gnnrl.data.errors import DatasetFileError, SchemaVersionError, UnreadableFileWarning
from gnnrl.data.schema import (
    COMMITS_DIR,
    FLUSH_PART,
    PARTITION_COLUMN,
    REQUIRED_COLUMNS,
    SCHEMA_VERSION,
    SCHEMAS,
    quarantine_schema,
    with_partition,
)

_PARTITIONING = ds.partitioning(pa.schema([(PARTITION_COLUMN, pa.string())]), flavor="hive")


class SnapshotData(NamedTuple):
    """The three datasets as frames (unpacks as ``nodes, edges, gaps = read_dataset(root)``).

    Columns are those of `gnnrl.data.schema` plus ``date`` (the partition). ``ts`` / ``start``
    / ``end`` are UTC timestamps; integer columns with nulls read as float64 with NaN.
    ``schema_version`` is 0 for rows from files written before the column existed.
    """

    nodes: pd.DataFrame
    edges: pd.DataFrame
    gaps: pd.DataFrame

    def max_services(self) -> int:
        """Most services seen in one snapshot (one ``(namespace, ts)``); 0 when empty.

        The env compares this with its ``max_nodes``: more services than slots is an error
        or a configured policy there (docs/reliability.md C6), never silent truncation here.
        """
        if self.nodes.empty:
            return 0
        return int(self.nodes.groupby(["namespace", "ts"])["service"].nunique().max())

    def services(self) -> list[str]:
        """Every service name seen in the data, sorted."""
        return sorted(str(s) for s in self.nodes["service"].dropna().unique())



def read_dataset(root: str | os.PathLike[str], *, quarantine: bool = False,
                 since: object = None, until: object = None) -> SnapshotData:
    """Read `root/nodes`, `root/edges`, `root/gaps` (or, with ``quarantine=True``, the
    quarantined node and edge rows with their ``reason``; gaps are then empty).

    `since` / `until` (anything `pd.Timestamp` takes; naive = UTC) keep rows with
    ``since <= ts < until`` (gaps: by ``start``); only the matching date partitions are read.

    Returns frames sorted by time. A missing dataset folder reads as an empty frame with the
    right columns, so a collection that only had outages still reads. Files that cannot be
    read are skipped with an `UnreadableFileWarning` (see the module docstring).

    Raises:
        FileNotFoundError: `root` does not exist.
        SchemaVersionError: a file has ``schema_version`` newer than this code's.
        DatasetFileError: a file lacks ``ts`` (``start`` for gaps) or a row key.
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"snapshot dataset folder not found: {root}")
    committed = committed_flushes(root)
    frames = []
    for name in ("nodes", "edges", "gaps"):
        if quarantine and name == "gaps":
            frames.append(_empty(SCHEMAS["gaps"]))
            continue
        folder = root / "quarantine" / name if quarantine else root / name
        frames.append(_read_one(folder, name, quarantine, _utc(since), _utc(until),
                                committed))
    return SnapshotData(*frames)


def committed_flushes(root: str | os.PathLike[str]) -> frozenset[str]:
    """Ids of the flushes of `root` whose commit marker exists (`gnnrl.data.schema`)."""
    try:
        names = os.listdir(Path(root) / COMMITS_DIR)
    except FileNotFoundError:
        return frozenset()
    return frozenset(n[:-5] for n in names if n.endswith(".json") and not n.startswith("."))


def _skip(path: Path, reason: str) -> None:
    warnings.warn(f"{path}: skipped, {reason}", UnreadableFileWarning, stacklevel=4)


def dataset_files(folder: Path, committed: frozenset[str]) -> list[Path]:
    """The part files of `folder` a reader reads, sorted: hidden/underscore names and
    uncommitted flushes left out; other files that are not ``*.parquet`` are skipped with
    an `UnreadableFileWarning`."""
    files = []
    for dirpath, dirs, names in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith((".", "_")))
        for name in sorted(names):
            if name.startswith((".", "_")):
                continue
            path = Path(dirpath) / name
            if not name.endswith(".parquet"):
                _skip(path, "not a .parquet file")
                continue
            match = FLUSH_PART.match(name)
            if match is not None and match["flush"] not in committed:
                continue  # its flush is being written (or failed): not there yet
            files.append(path)
    return files


def _compatible(expected: pa.DataType, got: pa.DataType) -> bool:
    """Whether a file's column type reads as the schema's without reinterpreting it."""
    if pa.types.is_dictionary(got):
        got = got.value_type
    if pa.types.is_null(got):
        return True
    if pa.types.is_string(expected) or pa.types.is_large_string(expected):
        return pa.types.is_string(got) or pa.types.is_large_string(got)
    if pa.types.is_timestamp(expected):
        return pa.types.is_timestamp(got)
    if pa.types.is_integer(expected) or pa.types.is_floating(expected):
        return pa.types.is_integer(got) or pa.types.is_floating(got)
    return got == expected


def _usable(path: Path, schema: pa.Schema, required: tuple[str, ...]) -> bool:
    """Check a file's footer: False (with a warning) if it is not readable Parquet or a
    column has an incompatible type; `DatasetFileError` if a required column is missing."""
    try:
        file_schema = pq.read_schema(path)
    except (pa.ArrowException, OSError) as exc:
        _skip(path, f"not a readable Parquet file ({type(exc).__name__}: {str(exc)[:120]})")
        return False
    names = set(file_schema.names)
    missing = [c for c in required if c not in names]
    if missing:
        raise DatasetFileError(f"{path}: no {', '.join(missing)} column; its rows would have "
                               "no time or no service (move the file out of the dataset)")
    for field in schema:
        if field.name in names:
            got = file_schema.field(field.name).type
            if not _compatible(field.type, got):
                _skip(path, f"column {field.name} is {got}, expected {field.type}")
                return False
    return True


def _scan(files: list[Path], folder: Path, schema: pa.Schema, filter_: object = None,
          columns: list[str] | None = None) -> pa.Table:
    dataset = ds.dataset([str(f) for f in files], schema=schema, format="parquet",
                         partitioning=_PARTITIONING, partition_base_dir=str(folder))
    return dataset.to_table(columns=columns, filter=filter_)


def _read_table(folder: Path, name: str, quarantine: bool, committed: frozenset[str],
                filter_: object = None, columns: list[str] | None = None) -> pa.Table:
    """The usable files of `folder` as one table of the (nullable) read schema. One scan;
    if it fails (data pages damaged behind an intact footer), file by file, skipping the
    files that fail with a warning."""
    schema = _read_schema(name, quarantine)
    required = ("ts",) if quarantine else REQUIRED_COLUMNS[name]
    files = [f for f in dataset_files(folder, committed) if _usable(f, schema, required)]
    if not files:
        empty = schema.empty_table()
        return empty.select(columns) if columns is not None else empty
    try:
        return _scan(files, folder, schema, filter_, columns)
    except (pa.ArrowException, OSError):
        tables = []
        for f in files:
            try:
                tables.append(_scan([f], folder, schema, filter_, columns))
            except (pa.ArrowException, OSError) as exc:
                _skip(f, f"unreadable ({type(exc).__name__}: {str(exc)[:120]})")
        if not tables:
            empty = schema.empty_table()
            return empty.select(columns) if columns is not None else empty
        return pa.concat_tables(tables)


def _utc(t: object) -> pd.Timestamp | None:
    if t is None:
        return None
    # pandas takes any timestamp-like value here (and raises on the rest); its stubs
    # list only some of them
    ts = pd.Timestamp(t)  # type: ignore[arg-type]
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def _read_schema(name: str, quarantine: bool) -> pa.Schema:
    schema = quarantine_schema(name) if quarantine else SCHEMAS[name]
    # Older files may lack any column, the version column included: read all as nullable.
    return with_partition(pa.schema([f.with_nullable(True) for f in schema]))


def _empty(schema: pa.Schema) -> pd.DataFrame:
    return with_partition(schema).empty_table().to_pandas()


def _time_filter(name: str, since: pd.Timestamp | None, until: pd.Timestamp | None):
    col = "start" if name == "gaps" else "ts"
    expr = None
    for bound, op in ((since, "ge"), (until, "lt")):
        if bound is None:
            continue
        day = ds.field(PARTITION_COLUMN)
        day_expr = (day >= bound.strftime("%Y-%m-%d")) if op == "ge" else \
            (day <= bound.strftime("%Y-%m-%d"))
        t = pa.scalar(bound.to_pydatetime(), type=pa.timestamp("us", tz="UTC"))
        cond = day_expr & ((ds.field(col) >= t) if op == "ge" else (ds.field(col) < t))
        expr = cond if expr is None else expr & cond
    return expr


def _read_one(folder: Path, name: str, quarantine: bool, since: pd.Timestamp | None = None,
              until: pd.Timestamp | None = None,
              committed: frozenset[str] | None = None) -> pd.DataFrame:
    schema = _read_schema(name, quarantine)
    if not folder.is_dir():
        return schema.empty_table().to_pandas()
    if committed is None:
        committed = committed_flushes(folder.parent.parent if quarantine else folder.parent)
    table = _read_table(folder, name, quarantine, committed, _time_filter(name, since, until))
    df = table.to_pandas()
    version = df["schema_version"].to_numpy(dtype=float, na_value=np.nan)
    newer = version[~np.isnan(version)] > SCHEMA_VERSION
    if newer.any():
        raise SchemaVersionError(
            f"{folder}: rows with schema_version {int(np.nanmax(version))} but this code "
            f"reads up to {SCHEMA_VERSION}; upgrade gnnrl to read it"
        )
    df["schema_version"] = np.nan_to_num(version, nan=0.0).astype(np.int16)
    time_col = "start" if name == "gaps" else "ts"
    return df.sort_values(time_col, kind="stable").reset_index(drop=True)


def last_timestamp(root: str | os.PathLike[str]) -> pd.Timestamp | None:
    """The latest ``ts`` of `root/nodes` / `root/edges` or ``end`` of `root/gaps` (UTC), or
    None for a missing or empty dataset. Reads only those columns (and, like
    `read_dataset`, skips unreadable files with a warning)."""
    latest = None
    committed = committed_flushes(root)
    for name, col in (("nodes", "ts"), ("edges", "ts"), ("gaps", "end")):
        folder = Path(root) / name
        if not folder.is_dir():
            continue
        column = _read_table(folder, name, False, committed, columns=[col]).column(col)
        if len(column) == 0 or column.null_count == len(column):
            continue
        value = pd.Timestamp(pc.max(column).as_py())
        latest = value if latest is None or value > latest else latest
    return latest
