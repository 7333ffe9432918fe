"""`read_dataset`: read the snapshot dataset back as pandas frames, across schema versions.

Files written by an older schema version read with nulls (NaN) in the columns they lack
(`gnnrl.data.schema` lists which); a file written by a *newer* version is refused with
`SchemaVersionError` rather than misread. Temporary files (names starting with ``.``) and the
quarantine are never read as data.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds

from gnnrl.data.errors import SchemaVersionError
from gnnrl.data.schema import (
    PARTITION_COLUMN,
    SCHEMA_VERSION,
    SCHEMAS,
    quarantine_schema,
    with_partition,
)


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
        or a configured policy there (RELIABILITY C6), never silent truncation here.
        """
        if self.nodes.empty:
            return 0
        return int(self.nodes.groupby(["namespace", "ts"])["service"].nunique().max())

    def services(self) -> list[str]:
        """Every service name seen in the data, sorted."""
        return sorted(str(s) for s in self.nodes["service"].dropna().unique())

    def schema_versions(self) -> dict[str, list[int]]:
        """Schema versions present, per dataset (e.g. ``{"nodes": [0, 1], ...}``)."""
        out = {}
        for name, df in zip(("nodes", "edges", "gaps"), self, strict=True):
            out[name] = sorted(int(v) for v in df["schema_version"].unique()) if len(df) else []
        return out


def read_dataset(root: str | os.PathLike[str], *, quarantine: bool = False,
                 since: object = None, until: object = None) -> SnapshotData:
    """Read `root/nodes`, `root/edges`, `root/gaps` (or, with ``quarantine=True``, the
    quarantined node and edge rows with their ``reason``; gaps are then empty).

    `since` / `until` (anything `pd.Timestamp` takes; naive = UTC) keep rows with
    ``since <= ts < until`` (gaps: by ``start``); only the matching date partitions are read.

    Returns frames sorted by time. A missing dataset folder reads as an empty frame with the
    right columns, so a collection that only had outages still reads.

    Raises:
        FileNotFoundError: `root` does not exist.
        SchemaVersionError: a file has ``schema_version`` newer than this code's.
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"snapshot dataset folder not found: {root}")
    frames = []
    for name in ("nodes", "edges", "gaps"):
        if quarantine and name == "gaps":
            frames.append(_empty(SCHEMAS["gaps"]))
            continue
        folder = root / "quarantine" / name if quarantine else root / name
        frames.append(_read_one(folder, name, quarantine, _utc(since), _utc(until)))
    return SnapshotData(*frames)


def _utc(t: object) -> pd.Timestamp | None:
    if t is None:
        return None
    ts = pd.Timestamp(t)
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
              until: pd.Timestamp | None = None) -> pd.DataFrame:
    schema = _read_schema(name, quarantine)
    if not folder.is_dir():
        return schema.empty_table().to_pandas()
    dataset = ds.dataset(
        folder,
        schema=schema,
        format="parquet",
        partitioning=ds.partitioning(pa.schema([(PARTITION_COLUMN, pa.string())]),
                                     flavor="hive"),
    )
    df = dataset.to_table(filter=_time_filter(name, since, until)).to_pandas()
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
    None for a missing or empty dataset. Reads only those columns."""
    latest = None
    for name, col in (("nodes", "ts"), ("edges", "ts"), ("gaps", "end")):
        folder = Path(root) / name
        if not folder.is_dir():
            continue
        schema = _read_schema(name, False)
        dataset = ds.dataset(folder, schema=schema, format="parquet",
                             partitioning=ds.partitioning(
                                 pa.schema([(PARTITION_COLUMN, pa.string())]), flavor="hive"))
        column = dataset.to_table(columns=[col]).column(col)
        if len(column) == 0 or column.null_count == len(column):
            continue
        value = pd.Timestamp(pc.max(column).as_py())
        latest = value if latest is None or value > latest else latest
    return latest

