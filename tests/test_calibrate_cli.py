"""`gnnrl calibrate` as a newcomer runs it (subprocess smoke tests)."""

from __future__ import annotations

import subprocess

import numpy as np

from gnnrl.sim import load_app_spec, load_trace
from gnnrl.testing.cli import run_gnnrl

def gnnrl(*args: str) -> subprocess.CompletedProcess:
    return run_gnnrl(*args, timeout=120)


def test_newcomer_path_collect_sim_then_calibrate_gives_a_loadable_app(tmp_path):
    data, app, trace = tmp_path / "data", tmp_path / "app.yaml", tmp_path / "trace.csv"
    collect = gnnrl("collect", "--source", "sim", "--count", "20", "--out", str(data))
    assert collect.returncode == 0, collect.stderr
    proc = gnnrl("calibrate", str(data), "--out", str(app), "--trace-out", str(trace))
    assert proc.returncode == 0, proc.stderr
    assert "R^2" in proc.stdout and f"wrote {app}" in proc.stdout
    spec = load_app_spec(str(app))
    assert spec.entry == "frontend" and len(spec.services) == 11
    assert spec.name == "onlineboutique-calibrated"
    rps = load_trace(str(trace), interval_s=30.0)
    assert rps.shape == (20,) and np.all(rps > 0)


def test_calibrate_refuses_too_little_data_with_exit_3_and_the_reason(tmp_path):
    data = tmp_path / "data"
    assert gnnrl("collect", "--source", "sim", "--count", "4", "--out", str(data)).returncode == 0
    proc = gnnrl("calibrate", str(data), "--out", str(tmp_path / "app.yaml"))
    assert proc.returncode == 3
    assert "only 4 usable snapshots (need 8)" in proc.stderr
    assert not (tmp_path / "app.yaml").exists()


def test_calibrate_missing_dataset_is_a_usage_error(tmp_path):
    proc = gnnrl("calibrate", str(tmp_path / "nope"), "--out", str(tmp_path / "app.yaml"))
    assert proc.returncode == 2 and "not found" in proc.stderr


def test_unloadable_app_base_is_a_usage_error_naming_the_flag(tmp_path):
    data = tmp_path / "data"
    assert gnnrl("collect", "--source", "sim", "--count", "10", "--out", str(data)).returncode == 0
    proc = gnnrl("calibrate", str(data), "--out", str(tmp_path / "app.yaml"), "--app-base",
                 str(tmp_path / "missing.yaml"))
    assert proc.returncode == 2 and "app_base:" in proc.stderr and "no such file" in proc.stderr


def test_calibrate_skips_a_non_parquet_part_file_with_a_one_line_warning(tmp_path):
    data = tmp_path / "data"
    assert gnnrl("collect", "--source", "sim", "--count", "10", "--out", str(data)).returncode == 0
    bogus = next((data / "nodes").iterdir()) / "part-0.parquet"
    bogus.write_text("not parquet at all\n")
    proc = gnnrl("calibrate", str(data), "--out", str(tmp_path / "app.yaml"))
    assert proc.returncode == 0, proc.stderr
    warning = [line for line in proc.stderr.splitlines() if "warning" in line]
    assert len(warning) == 1
    assert warning[0].startswith(f"gnnrl calibrate: warning: {bogus}: skipped, not a "
                                 "readable Parquet file")
    assert "Traceback" not in proc.stderr


def test_calibrate_with_no_usable_file_exits_2_with_one_line(tmp_path):
    folder = tmp_path / "data" / "nodes" / "date=2026-03-01"
    folder.mkdir(parents=True)
    (folder / "part-0.parquet").write_text("not parquet at all\n")
    proc = gnnrl("calibrate", str(tmp_path / "data"), "--out", str(tmp_path / "app.yaml"))
    assert proc.returncode == 2
    assert proc.stderr.splitlines()[-1].startswith(
        f"gnnrl calibrate: error: no usable snapshot in {tmp_path / 'data'} (1 file(s) skipped)")
    assert "Traceback" not in proc.stderr and not (tmp_path / "app.yaml").exists()
