"""The versioned Parquet schema of the snapshot dataset (`nodes/`, `edges/`, `gaps/`).

The layout on disk (docs/data.md, "The dataset")::

    ROOT/nodes/date=YYYY-MM-DD/part-*.parquet       one row per (ts, service)
    ROOT/edges/date=YYYY-MM-DD/part-*.parquet       one row per (ts, caller -> callee, protocol)
    ROOT/gaps/date=YYYY-MM-DD/part-*.parquet        one row per outage (no data for [start, end])
    ROOT/quarantine/{nodes,edges}/date=.../part-*.parquet   rows that failed validation + reason
    ROOT/_commits/<flush id>.json                   one per flush: its part files are visible

A flush of `gnnrl.data.store.SnapshotWriter` names its part files
``part-<first ts>-f<flush id>-<n>.parquet`` (`FLUSH_PART`) and writes the flush's commit
marker ``_commits/<flush id>.json`` after all of them: readers read such a file only once
its marker exists, so the nodes and edges of a snapshot appear together or not at all.
Part files with other names (an older writer, another tool, a hand-written file) have no
flush to wait for and are read as they are.

Every row carries ``schema_version``. Version history:

* ``0``: files without a ``schema_version`` column (written before versioning, by other
  tools or by hand); a row without the column reads as version 0. Whatever columns such a
  file lacks read as null; `ADDED_IN_V1` names those the tests write it without.
* ``1`` (current): the columns below.

A reader given an older file fills the columns that file lacks with nulls (never with a made
up number); consumers decide explicitly what to do with them (`gnnrl.data.missing`).
Numbers use null for "the source does not know" (e.g. Kiali knows no CPU).
"""

from __future__ import annotations

import re

import pyarrow as pa

#: The version written by this code. Bump it (and document the change above) whenever a
#: column is added, removed or changes meaning.
SCHEMA_VERSION = 1

#: Hive partition key: the UTC date of the row's timestamp (`ts`, or `start` for gaps).
PARTITION_COLUMN = "date"

TS_TYPE = pa.timestamp("us", tz="UTC")

NODES_SCHEMA = pa.schema(
    [
        pa.field("schema_version", pa.int16(), nullable=False),
        pa.field("ts", TS_TYPE, nullable=False),
        pa.field("namespace", pa.string(), nullable=False),
        pa.field("service", pa.string(), nullable=False),
        pa.field("replicas", pa.int32()),          # pods that exist, starting ones included
        pa.field("ready_replicas", pa.int32()),    # pods passing readiness
        pa.field("cpu_m", pa.float64()),           # millicores, all pods of the service
        pa.field("mem_mi", pa.float64()),          # MiB, all pods of the service
        pa.field("rx_kbps", pa.float64()),         # kbit/s received
        pa.field("tx_kbps", pa.float64()),         # kbit/s sent
        pa.field("rps_in", pa.float64()),          # requests/s received
    ],
    metadata={"gnnrl.dataset": "nodes", "gnnrl.schema_version": str(SCHEMA_VERSION)},
)

EDGES_SCHEMA = pa.schema(
    [
        pa.field("schema_version", pa.int16(), nullable=False),
        pa.field("ts", TS_TYPE, nullable=False),
        pa.field("namespace", pa.string(), nullable=False),
        pa.field("source", pa.string(), nullable=False),
        pa.field("target", pa.string(), nullable=False),
        pa.field("protocol", pa.string(), nullable=False),  # http | grpc | tcp
        pa.field("qps", pa.float64()),             # requests/s caller -> callee
        pa.field("p95_ms", pa.float64()),          # 95th percentile response time, ms
        pa.field("err_rate", pa.float64()),        # fraction of failed requests, 0..1
        pa.field("mtls", pa.float64()),            # fraction of traffic under mTLS, 0..1
    ],
    metadata={"gnnrl.dataset": "edges", "gnnrl.schema_version": str(SCHEMA_VERSION)},
)

GAPS_SCHEMA = pa.schema(
    [
        pa.field("schema_version", pa.int16(), nullable=False),
        pa.field("start", TS_TYPE, nullable=False),   # first failed attempt
        pa.field("end", TS_TYPE, nullable=False),     # last failed attempt gave up
        pa.field("source", pa.string(), nullable=False),  # kiali | prometheus | sim | ...
        pa.field("error", pa.string(), nullable=False),   # "ErrorType: message"
    ],
    metadata={"gnnrl.dataset": "gaps", "gnnrl.schema_version": str(SCHEMA_VERSION)},
)

SCHEMAS: dict[str, pa.Schema] = {
    "nodes": NODES_SCHEMA,
    "edges": EDGES_SCHEMA,
    "gaps": GAPS_SCHEMA,
}

#: Folder (under the dataset root) of the flushes' commit markers.
COMMITS_DIR = "_commits"

#: Name of a part file written by a flush; ``flush`` is its commit marker's name.
FLUSH_PART = re.compile(r"^part-.*-f(?P<flush>[0-9a-f]{16})-\d+\.parquet$")

#: Columns without which a file's rows mean nothing (no time, no service): a file lacking
#: one is refused (`gnnrl.data.errors.DatasetFileError`), never read with nulls there.
REQUIRED_COLUMNS: dict[str, tuple[str, ...]] = {
    "nodes": ("ts", "service"),
    "edges": ("ts", "source", "target"),
    "gaps": ("start",),
}

#: Column that decides a row's date partition, per dataset.
TIME_COLUMN: dict[str, str] = {"nodes": "ts", "edges": "ts", "gaps": "start"}

#: Columns a version-0 file is tested without (any missing column reads as null).
ADDED_IN_V1: dict[str, tuple[str, ...]] = {
    "nodes": ("rx_kbps", "tx_kbps"),
    "edges": ("mtls",),
    "gaps": (),
}


def quarantine_schema(name: str) -> pa.Schema:
    """Schema of `quarantine/<name>/`: the dataset's columns with every number as float64
    (so a bad value such as ``-1.5`` replicas or ``inf`` is kept exactly as received),
    nullable keys, plus ``reason`` (which rule the row broke)."""
    fields = []
    for f in SCHEMAS[name]:
        if pa.types.is_integer(f.type) and f.name != "schema_version":
            fields.append(pa.field(f.name, pa.float64()))
        elif f.name == "schema_version":
            fields.append(f)
        else:
            fields.append(pa.field(f.name, f.type))
    fields.append(pa.field("reason", pa.string(), nullable=False))
    return pa.schema(fields, metadata={"gnnrl.dataset": f"quarantine/{name}"})


def with_partition(schema: pa.Schema) -> pa.Schema:
    """`schema` plus the hive partition column (read back as a string)."""
    return schema.append(pa.field(PARTITION_COLUMN, pa.string()))
