"""A flush is one commit: nodes and edges appear together or not at all, and a write that
fails (a full disk, simulated with RLIMIT_FSIZE: a real EFBIG from the kernel) loses
nothing that was buffered."""

from __future__ import annotations

import contextlib
import errno
import json
import resource
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pandas as pd
import pytest

from gnnrl.data.errors import StoreWriteError
from gnnrl.data.snapshot import GraphSnapshot
from gnnrl.data.store import SnapshotWriter, read_dataset

T0 = pd.Timestamp("2026-03-01T12:00:00Z")


@contextlib.contextmanager
def file_size_limit(max_bytes: int):
    """Files may not grow beyond `max_bytes` (as on a full disk, write() fails, here with
    EFBIG); SIGXFSZ is ignored so the write raises OSError instead of killing us."""
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    old = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (max_bytes, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, old)


def snap(i: int, n_edges: int = 1) -> GraphSnapshot:
    """One service and `n_edges` edges with distinct random numbers (they compress badly,
    so the edges file is the big one)."""
    rng = np.random.default_rng(i)
    nodes = pd.DataFrame([{"service": "frontend", "replicas": 1.0, "ready_replicas": 1.0,
                           "cpu_m": 10.0, "mem_mi": 64.0, "rx_kbps": 1.0, "tx_kbps": 1.0,
                           "rps_in": 5.0}])
    edges = pd.DataFrame({"source": "frontend", "target": [f"svc-{k}" for k in range(n_edges)],
                          "protocol": "http", "qps": rng.random(n_edges) * 100,
                          "p95_ms": rng.random(n_edges) * 50, "err_rate": 0.0, "mtls": 1.0})
    return GraphSnapshot(T0 + pd.Timedelta(seconds=30 * i), "ns", nodes, edges)


def visible_parts(root) -> list[str]:
    return sorted(p.name for p in root.rglob("part-*.parquet"))


def test_failed_flush_keeps_the_buffer_and_shows_no_nodes_without_edges(tmp_path):
    w = SnapshotWriter(tmp_path, flush_snapshots=10_000)
    for i in range(30):
        w.write(snap(i, n_edges=40))
    with file_size_limit(16_000), pytest.raises(StoreWriteError, match="File too large") as err:
        w.flush()   # the nodes file fits, the edges file does not
    assert err.value.errno == errno.EFBIG
    data = read_dataset(tmp_path)
    assert data.nodes.empty and data.edges.empty      # neither without the other
    assert visible_parts(tmp_path) == []              # what the flush wrote is removed
    assert w.pending_snapshots == 30
    w.flush()                                         # room again: the same buffer goes out
    w.close()
    data = read_dataset(tmp_path)
    assert data.nodes.ts.nunique() == 30 and data.edges.ts.nunique() == 30
    assert w.stats.stored_snapshots == 30 and w.stats.flushes == 1


def test_flush_without_its_commit_marker_is_invisible_and_removed_at_next_start(tmp_path):
    with SnapshotWriter(tmp_path) as w:
        w.write(snap(0))
    marker = next((tmp_path / "_commits").iterdir())
    parts = visible_parts(tmp_path)
    assert len(parts) == 2 and all(marker.stem in p for p in parts)
    marker.unlink()           # as if the writer died between its part files and the marker
    data = read_dataset(tmp_path)
    assert data.nodes.empty and data.edges.empty
    w2 = SnapshotWriter(tmp_path)
    assert w2.stats.orphans_removed == 2 and visible_parts(tmp_path) == []
    w2.close()


def test_part_files_of_an_older_writer_or_another_tool_still_read(tmp_path):
    """Files named without a flush id (written before commit markers existed) have nothing
    to wait for."""
    with SnapshotWriter(tmp_path) as w:
        w.write(snap(0))
    for part in tmp_path.rglob("part-*.parquet"):
        part.rename(part.with_name("part-20260301T120000-0123456789ab.parquet"))
    for marker in (tmp_path / "_commits").iterdir():
        marker.unlink()
    SnapshotWriter(tmp_path).close()   # not an orphan: kept
    data = read_dataset(tmp_path)
    assert len(data.nodes) == 1 and len(data.edges) == 1


COLLECT_UNDER_A_FULL_DISK = textwrap.dedent("""
    import json, resource, signal, sys
    import numpy as np
    import pandas as pd
    from gnnrl.data.clock import VirtualClock
    from gnnrl.data.collector import CollectConfig, run_collection
    from gnnrl.data.snapshot import GraphSnapshot

    class Growing:
        '''10 small snapshots, then snapshots too big for the disk that is left.'''
        name = "growing"
        n = 0
        def fetch(self, ts):
            self.n += 1
            k = 1 if self.n <= 10 else 2000
            nodes = pd.DataFrame({"service": [f"svc-{i}" for i in range(k)],
                                  "replicas": 1.0, "ready_replicas": 1.0,
                                  "cpu_m": np.random.random(k), "mem_mi": 1.0,
                                  "rx_kbps": 1.0, "tx_kbps": 1.0, "rps_in": 1.0})
            edges = pd.DataFrame({"source": ["svc-0"], "target": ["svc-0"],
                                  "protocol": ["http"], "qps": [1.0], "p95_ms": [1.0],
                                  "err_rate": [0.0], "mtls": [1.0]})
            return GraphSnapshot(ts, "ns", nodes, edges)

    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (20_000, 20_000))
    summary = run_collection(Growing(), sys.argv[1],
                             CollectConfig(interval_s=30, count=30, flush_every=10),
                             VirtualClock("2026-03-01T00:00:00Z"))
    print(json.dumps({"stored": summary.stored, "snapshots": summary.snapshots,
                      "unstored": summary.unstored, "store_error": summary.store_error,
                      "gaps": summary.gaps}))
""")


def test_full_disk_mid_collection_is_a_store_gap_and_loses_no_stored_snapshot(tmp_path):
    out = tmp_path / "data"
    proc = subprocess.run([sys.executable, "-c", COLLECT_UNDER_A_FULL_DISK, str(out)],
                          capture_output=True, text=True, timeout=120,
                          env={"PYTHONDONTWRITEBYTECODE": "1", "PATH": "/usr/bin:/bin",
                               "PYTHONPATH": ":".join(sys.path)})
    assert proc.returncode == 0, proc.stderr      # the collector survived to report
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    assert "File too large" in summary["store_error"]
    # the first flush (10 small snapshots) was stored; the one that failed ended the run
    assert summary["stored"] == 10 and summary["snapshots"] == 20
    assert summary["unstored"] == 10
    data = read_dataset(out)
    assert sorted(data.nodes.ts.unique()) == sorted(data.edges.ts.unique())
    assert data.nodes.ts.nunique() == 10
    store_gap = data.gaps[data.gaps.source == "store"].iloc[0]
    assert "File too large" in store_gap.error
    # the gap covers exactly the snapshots that were dropped (ticks 10..19)
    assert store_gap.start == pd.Timestamp("2026-03-01T00:05:00Z")
    assert store_gap.end >= pd.Timestamp("2026-03-01T00:09:30Z")
