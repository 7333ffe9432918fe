"""`gnnrl calibrate` as a newcomer runs it (subprocess smoke tests)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np

from gnnrl.sim import load_app_spec, load_trace

GNNRL = [sys.executable, "-m", "gnnrl.cli"]


def gnnrl(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*GNNRL, *args], capture_output=True, text=True, timeout=120)


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
