"""Snapshot store: atomic writes (C2), quarantine, older schema versions (C5), partitions."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from gnnrl.data.errors import MissingDataError, SchemaVersionError, SnapshotShapeError
from gnnrl.data.missing import MissingPolicy, resolve_missing
from gnnrl.data.schema import NODES_SCHEMA, SCHEMA_VERSION
from gnnrl.data.snapshot import GraphSnapshot
from gnnrl.data.store import SnapshotWriter, read_dataset

T0 = pd.Timestamp("2026-03-01T12:00:00Z")


def node_frame(**overrides) -> pd.DataFrame:
    row = {"service": "frontend", "replicas": 2.0, "ready_replicas": 2.0, "cpu_m": 150.0,
           "mem_mi": 128.0, "rx_kbps": 40.0, "tx_kbps": 80.0, "rps_in": 30.0}
    row.update(overrides)
    return pd.DataFrame([row])


def edge_frame(**overrides) -> pd.DataFrame:
    row = {"source": "frontend", "target": "cartservice", "protocol": "grpc", "qps": 12.0,
           "p95_ms": 9.5, "err_rate": 0.01, "mtls": 1.0}
    row.update(overrides)
    return pd.DataFrame([row])


def snap(i: int = 0, nodes=None, edges=None) -> GraphSnapshot:
    return GraphSnapshot(T0 + pd.Timedelta(seconds=30 * i), "boutique",
                         node_frame() if nodes is None else nodes,
                         edge_frame() if edges is None else edges)


def test_written_snapshots_read_back_with_units_and_nulls(tmp_path):
    nodes = pd.concat([node_frame(), node_frame(service="cartservice", cpu_m=np.nan,
                                                replicas=np.nan)], ignore_index=True)
    with SnapshotWriter(tmp_path) as w:
        w.write(snap(0, nodes=nodes))
        w.write(snap(1))
    data = read_dataset(tmp_path)
    assert len(data.nodes) == 3 and len(data.edges) == 2
    cart = data.nodes[data.nodes.service == "cartservice"].iloc[0]
    assert np.isnan(cart.cpu_m) and np.isnan(cart.replicas)  # unknown stays unknown
    assert data.nodes.ts.iloc[-1] == T0 + pd.Timedelta(seconds=30)
    assert (data.nodes.schema_version == SCHEMA_VERSION).all()
    assert data.edges.p95_ms.tolist() == [9.5, 9.5]
    assert data.max_services() == 2


def test_rows_are_partitioned_by_utc_date(tmp_path):
    late = GraphSnapshot(pd.Timestamp("2026-03-01T23:59:50Z"), "ns", node_frame(), edge_frame())
    early = GraphSnapshot(pd.Timestamp("2026-03-02T00:00:20Z"), "ns", node_frame(),
                          edge_frame())
    with SnapshotWriter(tmp_path) as w:
        w.write(late)
        w.write(early)
    dates = sorted(p.name for p in (tmp_path / "nodes").iterdir())
    assert dates == ["date=2026-03-01", "date=2026-03-02"]
    assert read_dataset(tmp_path).nodes.date.tolist() == ["2026-03-01", "2026-03-02"]


@pytest.mark.parametrize(
    ("dataset", "bad", "reason"),
    [
        ("nodes", {"replicas": -1.0}, "replicas negative"),
        ("nodes", {"replicas": 1.5}, "replicas not an integer"),
        ("nodes", {"cpu_m": np.inf}, "cpu_m not finite"),
        ("nodes", {"rps_in": -0.1}, "rps_in negative"),
        ("nodes", {"service": None}, "service missing"),
        ("edges", {"err_rate": 1.2}, "err_rate above 1"),
        ("edges", {"mtls": -0.5}, "mtls negative"),
        ("edges", {"qps": -np.inf}, "qps not finite"),
        ("edges", {"target": ""}, "target missing"),
    ],
)
def test_bad_rows_go_to_quarantine_with_reason(tmp_path, dataset, bad, reason):
    good = node_frame(service="cartservice") if dataset == "nodes" else edge_frame(target="ad")
    frame = pd.concat([good, (node_frame if dataset == "nodes" else edge_frame)(**bad)],
                      ignore_index=True)
    kwargs = {dataset: frame}
    with SnapshotWriter(tmp_path) as w:
        w.write(snap(0, **kwargs))
    data = read_dataset(tmp_path)
    assert len(getattr(data, dataset)) == 1  # the good row is kept
    quarantined = getattr(read_dataset(tmp_path, quarantine=True), dataset)
    assert len(quarantined) == 1
    assert reason in quarantined.reason.iloc[0]
    assert getattr(w.stats, f"quarantined_{dataset}") == 1


def test_outage_is_a_gap_row_not_data(tmp_path):
    with SnapshotWriter(tmp_path) as w:
        w.write_gap(T0, T0 + pd.Timedelta(seconds=27), "kiali", "KialiHTTPError: 500")
    data = read_dataset(tmp_path)
    assert data.nodes.empty and data.edges.empty
    assert data.gaps[["source", "error"]].values.tolist() == [["kiali", "KialiHTTPError: 500"]]
    assert data.gaps.end.iloc[0] - data.gaps.start.iloc[0] == pd.Timedelta(seconds=27)


def test_snapshot_without_a_column_is_refused(tmp_path):
    with SnapshotWriter(tmp_path) as w, pytest.raises(SnapshotShapeError, match="cpu_m"):
        w.write(snap(0, nodes=node_frame().drop(columns=["cpu_m"])))


def test_buffer_flushes_every_n_snapshots_into_one_file(tmp_path):
    w = SnapshotWriter(tmp_path, flush_snapshots=4)
    for i in range(3):
        w.write(snap(i))
    assert not (tmp_path / "nodes").exists()  # still buffered
    w.write(snap(3))
    assert len(list((tmp_path / "nodes").rglob("part-*.parquet"))) == 1
    w.close()


# -- C5: older schema versions ----------------------------------------------------------------
def write_v0_nodes(root: Path) -> None:
    """A version-0 file: no schema_version column and no rx_kbps/tx_kbps (schema.py)."""
    old = NODES_SCHEMA.remove(NODES_SCHEMA.get_field_index("tx_kbps"))
    old = old.remove(old.get_field_index("rx_kbps")).remove(0)
    table = pa.table({
        "ts": pa.array([T0 - pd.Timedelta(hours=1)], old.field("ts").type),
        "namespace": ["boutique"], "service": ["frontend"],
        "replicas": pa.array([3], pa.int32()), "ready_replicas": pa.array([3], pa.int32()),
        "cpu_m": [200.0], "mem_mi": [100.0], "rps_in": [50.0],
    }, schema=old)
    folder = root / "nodes" / "date=2026-03-01"
    folder.mkdir(parents=True)
    pq.write_table(table, folder / "part-v0.parquet")


def test_older_schema_version_reads_with_nulls_for_new_columns(tmp_path):
    write_v0_nodes(tmp_path)
    with SnapshotWriter(tmp_path) as w:
        w.write(snap(0))
    nodes = read_dataset(tmp_path).nodes
    assert nodes.schema_version.tolist() == [0, SCHEMA_VERSION]
    assert nodes.rx_kbps.isna().tolist() == [True, False]
    assert nodes.tx_kbps.isna().tolist() == [True, False]
    assert nodes.cpu_m.tolist() == [200.0, 150.0]


def test_consumer_refuses_old_rows_by_default_naming_columns(tmp_path):
    write_v0_nodes(tmp_path)
    nodes = read_dataset(tmp_path).nodes
    with pytest.raises(MissingDataError, match=r"rx_kbps \(1 nulls\).*version\(s\) \[0\]"):
        resolve_missing(nodes, ["rx_kbps", "cpu_m"], MissingPolicy(), what="training")


@pytest.mark.parametrize(("strategy", "expected"), [("zero", [0.0, 40.0]),
                                                    ("median", [40.0, 40.0])])
def test_consumer_imputes_only_when_configured(tmp_path, strategy, expected):
    write_v0_nodes(tmp_path)
    with SnapshotWriter(tmp_path) as w:
        w.write(snap(0))
    nodes = read_dataset(tmp_path).nodes
    filled, counts = resolve_missing(nodes, ["rx_kbps"],
                                     MissingPolicy(action="impute", strategy=strategy),
                                     group_by=["service"])
    assert counts == {"rx_kbps": 1}
    assert filled.rx_kbps.tolist() == expected


def test_newer_schema_version_is_refused(tmp_path):
    with SnapshotWriter(tmp_path) as w:
        w.write(snap(0))
    part = next((tmp_path / "nodes").rglob("part-*.parquet"))
    table = pq.read_table(part, partitioning=None)
    table = table.set_column(0, "schema_version",
                             pa.array([SCHEMA_VERSION + 1], pa.int16()))
    pq.write_table(table, part)
    with pytest.raises(SchemaVersionError, match="upgrade gnnrl"):
        read_dataset(tmp_path)


# -- C2: killed mid-write ---------------------------------------------------------------------
def test_orphaned_temp_file_is_invisible_and_removed_at_next_start(tmp_path):
    with SnapshotWriter(tmp_path) as w:
        w.write(snap(0))
    folder = next((tmp_path / "nodes").iterdir())
    # exactly the name gnnrl.config.atomic_write_bytes gives its temporary
    fd, orphan = tempfile.mkstemp(prefix=".part-x.parquet.", suffix=".tmp", dir=folder)
    os.write(fd, b"PAR1 half a file")
    os.close(fd)
    assert len(read_dataset(tmp_path).nodes) == 1  # readers skip it
    w2 = SnapshotWriter(tmp_path)
    assert w2.stats.orphans_removed == 1
    assert not Path(orphan).exists()


WRITER_LOOP = textwrap.dedent("""
    import sys, numpy as np, pandas as pd
    from gnnrl.data.snapshot import GraphSnapshot
    from gnnrl.data.store import SnapshotWriter
    n = 20000
    nodes = pd.DataFrame({"service": [f"s{i}" for i in range(n)], "replicas": 1.0,
                          "ready_replicas": 1.0, "cpu_m": np.arange(n, dtype=float),
                          "mem_mi": 1.0, "rx_kbps": 1.0, "tx_kbps": 1.0, "rps_in": 1.0})
    w = SnapshotWriter(sys.argv[1], flush_snapshots=1)
    i = 0
    while True:
        w.write(GraphSnapshot(pd.Timestamp("2026-03-01", tz="UTC") + pd.Timedelta(seconds=i),
                              "ns", nodes))
        i += 1
""")


def test_writer_killed_mid_write_never_leaves_a_partial_part_file(tmp_path):
    proc = subprocess.Popen([sys.executable, "-c", WRITER_LOOP, str(tmp_path)])
    try:
        deadline = time.monotonic() + 30
        while len(list(tmp_path.glob("_commits/*.json"))) < 3:   # 3 flushes committed
            assert time.monotonic() < deadline, "writer produced no files"
            time.sleep(0.02)
        time.sleep(0.037)  # land somewhere inside a later write
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    for part in tmp_path.rglob("part-*.parquet"):
        assert pq.read_metadata(part).num_rows == 20000  # every visible file is whole
    nodes = read_dataset(tmp_path).nodes
    assert len(nodes) % 20000 == 0 and len(nodes) >= 60000
    SnapshotWriter(tmp_path).close()
    assert not [p for p in tmp_path.rglob(".*.tmp") if p.is_file()]


def test_reading_a_time_window_keeps_only_its_rows(tmp_path):
    with SnapshotWriter(tmp_path) as w:
        for i in range(4):
            w.write(snap(i))  # T0, +30 s, +60 s, +90 s
        w.write(GraphSnapshot(T0 + pd.Timedelta(days=1), "boutique", node_frame(),
                              edge_frame()))
    nodes = read_dataset(tmp_path, since=T0 + pd.Timedelta(seconds=30),
                         until="2026-03-01T12:01:30").nodes
    assert [(t - T0).total_seconds() for t in nodes.ts] == [30.0, 60.0]
    assert len(read_dataset(tmp_path, since=T0 + pd.Timedelta(hours=1)).edges) == 1


def test_writer_counts_nodes_kept_out_of_the_mapping(tmp_path):
    with SnapshotWriter(tmp_path) as w:
        w.write(GraphSnapshot(T0, "ns", node_frame(), edge_frame(),
                              skipped={"unknown": 1, "dead": 2}))
        w.write(GraphSnapshot(T0, "ns", node_frame(), edge_frame(), skipped={"unknown": 1}))
    assert w.stats.skipped == {"unknown": 2, "dead": 2}


def test_second_writer_on_the_same_folder_is_refused_until_the_first_closes(tmp_path):
    from gnnrl.data.errors import WriterBusyError

    first = SnapshotWriter(tmp_path)
    with pytest.raises(WriterBusyError, match="another SnapshotWriter"):
        SnapshotWriter(tmp_path)
    first.close()
    SnapshotWriter(tmp_path).close()  # free again
