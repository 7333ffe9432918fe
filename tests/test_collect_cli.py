"""`gnnrl collect` as a user runs it: subprocess smoke tests, SIGTERM (C7), argument errors."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import pytest

from gnnrl.cli import main
from gnnrl.data.store import read_dataset

GNNRL = [sys.executable, "-m", "gnnrl.cli"]


def test_collect_sim_count_writes_dataset_and_prints_summary(tmp_path):
    out = tmp_path / "data"
    proc = subprocess.run([*GNNRL, "collect", "--source", "sim", "--count", "20", "--out",
                           str(out)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "snapshots: 20" in proc.stdout and "gaps: 0" in proc.stdout
    data = read_dataset(out)
    assert data.nodes.ts.nunique() == 20
    assert data.max_services() == 11  # OnlineBoutique's scalable workloads
    steps = data.nodes.ts.drop_duplicates().diff().dropna().dt.total_seconds()
    assert (steps == 30).all()  # --interval default, simulated time


def test_sigterm_during_long_collection_flushes_and_exits_zero(tmp_path):
    out = tmp_path / "data"
    proc = subprocess.Popen(
        [*GNNRL, "collect", "--source", "sim", "--realtime", "--interval", "200ms",
         "--count", "100000", "--flush-every", "100000", "--out", str(out)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert "SIGTERM or Ctrl-C stops cleanly" in proc.stderr.readline()  # handler installed
    time.sleep(1.0)  # ~5 snapshots buffered, none flushed yet
    proc.send_signal(signal.SIGTERM)
    stdout, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 0, stderr
    assert "SIGTERM received" in stderr
    assert "stopped early by signal" in stdout
    nodes = read_dataset(out).nodes
    assert nodes.ts.nunique() >= 1  # the buffer was flushed on the way out
    assert not list(out.rglob(".part-*"))  # atomically: no temporaries left


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--source", "kiali", "--count", "1"], "--namespace"),
        (["--source", "kiali", "--namespace", "ns", "--count", "1"], "--kiali-url"),
        (["--source", "sim", "--interval", "5x", "--count", "1"], "not a duration"),
        (["--source", "sim", "--duration=-1h"], "not a duration"),
        (["--source", "sim", "--count", "0"], "count"),
    ],
)
def test_bad_collect_arguments_exit_2_naming_the_flag(tmp_path, capsys, argv, message):
    assert main(["collect", *argv, "--out", str(tmp_path / "d")]) == 2
    assert message in capsys.readouterr().err


def test_count_and_duration_are_mutually_exclusive(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["collect", "--source", "sim", "--count", "2", "--duration", "1m", "--out",
              str(tmp_path)])
    assert exc.value.code == 2


def test_collect_into_a_folder_another_collector_writes_is_refused(tmp_path):
    from gnnrl.data.store import SnapshotWriter

    out = tmp_path / "data"
    with SnapshotWriter(out):  # e.g. a gnnrl collect still running
        proc = subprocess.run([*GNNRL, "collect", "--source", "sim", "--count", "2", "--out",
                               str(out)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "another SnapshotWriter" in proc.stderr


def test_second_sim_collection_into_the_same_folder_appends_later_snapshots(tmp_path):
    out = tmp_path / "data"
    for _ in range(2):
        assert main(["collect", "--source", "sim", "--count", "5", "--out", str(out),
                     "--quiet"]) == 0
    nodes = read_dataset(out).nodes
    assert nodes.ts.nunique() == 10  # no repeated timestamps
    assert not nodes.duplicated(["ts", "service"]).any()


def test_collect_that_stores_no_snapshot_exits_1_and_prints_the_first_error(tmp_path):
    import socket

    with socket.socket() as s:       # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = tmp_path / "data"
    proc = subprocess.run([*GNNRL, "collect", "--source", "kiali", "--namespace", "shop",
                           "--kiali-url", f"http://127.0.0.1:{port}/kiali", "--count", "2",
                           "--interval", "200ms", "--timeout", "1s", "--out", str(out)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1, proc.stderr
    assert "no snapshot collected in 2 tick(s)" in proc.stderr
    assert f"first error: SourceUnavailable: kiali: cannot connect to http://127.0.0.1:{port}" \
        in proc.stderr
    assert len(read_dataset(out).gaps) == 2      # the cause is also in the dataset


FULL_DISK = """
import resource, signal, sys
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)     # write() then fails with EFBIG
resource.setrlimit(resource.RLIMIT_FSIZE, (10_000, 10_000))
from gnnrl.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_full_disk_is_a_store_gap_and_a_nonzero_exit_keeping_earlier_data(tmp_path):
    out = tmp_path / "data"
    assert main(["collect", "--source", "sim", "--count", "10", "--out", str(out),
                 "--quiet"]) == 0
    # the nodes file of a 20-snapshot flush (~12 KB) is over the 10 KB "free space"
    proc = subprocess.run([sys.executable, "-c", FULL_DISK, "collect", "--source", "sim",
                           "--count", "20", "--flush-every", "20", "--out", str(out),
                           "--quiet"], capture_output=True, text=True, timeout=120,
                          env={"PYTHONDONTWRITEBYTECODE": "1", "PATH": "/usr/bin:/bin",
                               "PYTHONPATH": ":".join(sys.path)})
    assert proc.returncode == 1, proc.stderr
    assert "the dataset could not be written" in proc.stderr
    assert "File too large" in proc.stderr
    assert "20 snapshot(s) not stored" in proc.stdout
    data = read_dataset(out)
    assert data.nodes.ts.nunique() == 10                        # the first run's, all of them
    assert sorted(data.nodes.ts.unique()) == sorted(data.edges.ts.unique())
    gap = data.gaps[data.gaps.source == "store"]
    assert len(gap) == 1 and "File too large" in gap.error.iloc[0]
    assert gap.start.iloc[0] > data.nodes.ts.max()             # the lost span, after them
