"""One bad file never makes a dataset unreadable: it is skipped with a warning naming it
and the rest reads; a file without `ts` is refused, never read with null timestamps."""

from __future__ import annotations

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from gnnrl.data.errors import DatasetFileError, UnreadableFileWarning
from gnnrl.data.reader import last_timestamp
from gnnrl.data.schema import NODES_SCHEMA
from gnnrl.data.snapshot import GraphSnapshot
from gnnrl.data.store import SnapshotWriter, read_dataset

T0 = pd.Timestamp("2026-03-01T12:00:00Z")


def write_good(root) -> None:
    nodes = pd.DataFrame([{"service": "frontend", "replicas": 2.0, "ready_replicas": 2.0,
                           "cpu_m": 150.0, "mem_mi": 128.0, "rx_kbps": 4.0, "tx_kbps": 8.0,
                           "rps_in": 30.0}])
    edges = pd.DataFrame([{"source": "frontend", "target": "cart", "protocol": "grpc",
                           "qps": 12.0, "p95_ms": 9.5, "err_rate": 0.0, "mtls": 1.0}])
    with SnapshotWriter(root) as w:
        for i in range(3):
            w.write(GraphSnapshot(T0 + pd.Timedelta(seconds=30 * i), "ns", nodes, edges))


def foreign_nodes(**columns) -> pa.Table:
    """A one-row nodes table as another tool would write it, with `columns` replaced."""
    row = {"ts": pa.array([T0 + pd.Timedelta(hours=1)], pa.timestamp("us", tz="UTC")),
           "namespace": ["ns"], "service": ["frontend"], "cpu_m": [1.0], "rps_in": [2.0]}
    row.update(columns)
    return pa.table({k: v for k, v in row.items() if v is not None})


def truncated(path):
    good = pq.write_table(foreign_nodes(), path) or path.read_bytes()
    path.write_bytes(good[: len(good) // 2])


def not_parquet(path):
    path.write_text("this is not parquet\n")


def text_column(path):
    pq.write_table(foreign_nodes(cpu_m=["lots"]), path)


def numeric_text_column(path):
    pq.write_table(foreign_nodes(cpu_m=["12.5"]), path)   # parseable, still not a number


@pytest.mark.parametrize(("name", "make", "reason"), [
    ("part-0.parquet", truncated, "not a readable Parquet file"),
    ("part-0.parquet", not_parquet, "not a readable Parquet file"),
    ("notes.txt", not_parquet, "not a .parquet file"),
    ("part-0.parquet", text_column, "column cpu_m is string, expected double"),
    ("part-0.parquet", numeric_text_column, "column cpu_m is string, expected double"),
])
def test_unreadable_file_is_skipped_with_a_warning_naming_it_and_the_rest_reads(
        tmp_path, name, make, reason):
    write_good(tmp_path)
    bad = tmp_path / "nodes" / "date=2026-03-01" / name
    make(bad)
    with pytest.warns(UnreadableFileWarning, match=reason) as caught:
        data = read_dataset(tmp_path)
    assert str(bad) in str(caught[0].message)
    assert len(data.nodes) == 3 and len(data.edges) == 3   # everything else
    with pytest.warns(UnreadableFileWarning):
        assert last_timestamp(tmp_path) == T0 + pd.Timedelta(seconds=60)


@pytest.mark.parametrize("column", ["ts", "service"])
def test_file_without_ts_or_service_is_refused_naming_the_file(tmp_path, column):
    write_good(tmp_path)
    bad = tmp_path / "nodes" / "date=2026-03-01" / "part-foreign.parquet"
    pq.write_table(foreign_nodes(**{column: None}), bad)
    with pytest.raises(DatasetFileError, match=rf"part-foreign.parquet: no {column} column"):
        read_dataset(tmp_path)


def test_foreign_file_with_compatible_types_still_reads(tmp_path):
    """Another tool's file with integer CPU and naive timestamps is not "foreign" in type:
    it reads, and the columns it lacks are null (schema version 0)."""
    write_good(tmp_path)
    table = foreign_nodes(cpu_m=pa.array([7], pa.int64()),
                          ts=pa.array([(T0 - pd.Timedelta(hours=1)).tz_localize(None)],
                                       pa.timestamp("ms")))
    assert "rx_kbps" not in table.column_names and "schema_version" not in table.column_names
    pq.write_table(table, tmp_path / "nodes" / "date=2026-03-01" / "part-other.parquet")
    nodes = read_dataset(tmp_path).nodes
    assert len(nodes) == 4 and nodes.cpu_m.tolist()[0] == 7.0
    assert nodes.rx_kbps.isna().sum() == 1 and nodes.schema_version.tolist()[0] == 0
    assert set(NODES_SCHEMA.names) <= set(nodes.columns)
