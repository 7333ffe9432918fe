"""`SnapshotWriter`'s buffer: many snapshots (merged in runs as they arrive, for speed) read
back row for row in write order, and a refused snapshot buffers nothing."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from gnnrl.data.errors import SnapshotShapeError
from gnnrl.data.snapshot import EDGE_COLUMNS, NODE_COLUMNS, GraphSnapshot
from gnnrl.data.store import SnapshotWriter, read_dataset

T0 = pd.Timestamp("2026-03-01T12:00:00Z")


def snapshot(i: int) -> GraphSnapshot:
    """Snapshot `i`: 1-3 services, an empty edge list every 5th, an extra column and integer
    replicas every 7th (frames from other sources are not always the parser's dtypes)."""
    services = [f"svc-{k}" for k in range(1 + i % 3)]
    nodes = pd.DataFrame({"service": services, "replicas": [float(i)] * len(services),
                          "ready_replicas": 1.0, "cpu_m": [i * 10.0 + k for k in range(len(
                              services))], "mem_mi": np.nan, "rx_kbps": 1.5, "tx_kbps": 2.5,
                          "rps_in": 3.0})
    if i % 7 == 0:
        nodes["replicas"] = nodes["replicas"].astype(int)
        nodes["note"] = "extra column, not stored"
    edges = pd.DataFrame({"source": ["svc-0"], "target": [f"svc-{i}"], "protocol": ["http"],
                          "qps": [float(i)], "p95_ms": [np.nan], "err_rate": [0.0],
                          "mtls": [1.0]})
    if i % 5 == 0:
        edges = edges.iloc[:0]
    return GraphSnapshot(T0 + pd.Timedelta(seconds=30 * i), "boutique", nodes, edges)


@pytest.mark.parametrize("flush_snapshots", [1, 17, 1000])
def test_many_snapshots_read_back_row_for_row_in_write_order(tmp_path, flush_snapshots):
    snaps = [snapshot(i) for i in range(75)]      # several merged runs plus a remainder
    with SnapshotWriter(tmp_path, flush_snapshots=flush_snapshots) as writer:
        for snap in snaps:
            writer.write(snap)
    data = read_dataset(tmp_path)
    for name, columns in (("nodes", NODE_COLUMNS), ("edges", EDGE_COLUMNS)):
        frames = [getattr(s, name).assign(ts=s.ts) for s in snaps if len(getattr(s, name))]
        expected = pd.concat(frames, ignore_index=True)
        got = getattr(data, name)
        assert len(got) == len(expected) and writer.stats.quarantined == 0
        assert (got["ts"] == expected["ts"]).all()
        for col in columns:
            if expected[col].dtype.kind in "fi":
                np.testing.assert_array_equal(got[col].to_numpy(float, na_value=np.nan),
                                              expected[col].to_numpy(float))
            else:
                assert got[col].tolist() == expected[col].tolist()
    assert writer.stats.snapshots == 75
    assert writer.stats.edges == sum(1 for i in range(75) if i % 5)


def test_snapshot_refused_for_its_edges_buffers_none_of_its_nodes(tmp_path):
    bad = snapshot(1)
    bad.edges = bad.edges.drop(columns=["qps"])
    with SnapshotWriter(tmp_path) as writer:
        with pytest.raises(SnapshotShapeError, match=r"edges lacks column.*qps"):
            writer.write(bad)
        writer.write(snapshot(2))
    data = read_dataset(tmp_path)
    assert data.nodes["ts"].unique().tolist() == [snapshot(2).ts]
    assert writer.stats.snapshots == 1


def test_snapshot_whose_frame_is_not_a_dataframe_is_refused(tmp_path):
    bad = snapshot(1)
    bad.nodes = bad.nodes.to_dict("list")
    with SnapshotWriter(tmp_path) as writer, pytest.raises(SnapshotShapeError,
                                                           match="nodes is a dict"):
        writer.write(bad)
