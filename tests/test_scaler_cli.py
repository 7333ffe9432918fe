"""`gnnrl scaler run` as a user runs it, and the scaler's HTTP endpoints."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from gnnrl.cli import main
from gnnrl.commands.scaler import parse_duration
from gnnrl.scaler.metrics import HealthServer, ScalerMetrics

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _restore_logging():
    """`gnnrl scaler run` configures the `gnnrl` logger; put it back for the other tests."""
    logger = logging.getLogger("gnnrl")
    saved = (list(logger.handlers), logger.level)
    yield
    logger.handlers[:], logger.level = saved[0], saved[1]


def gnnrl(*args: str, timeout: float = 240) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "gnnrl.cli", "scaler", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout)


def test_sim_closed_loop_runs_scales_and_logs_json():
    proc = gnnrl("run", "--sim", "--mode", "active", "--ticks", "40",
                 "--faults", '{"conflict": 0.1, "throttle": 0.1}')
    assert proc.returncode == 0, proc.stderr[-2000:]
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    assert summary["ticks"] == 40 and summary["writes"] > 0
    assert summary["fallback_reason"] == "model_missing"  # no model given: the HPA rule
    ticks = [json.loads(line) for line in proc.stderr.splitlines()
             if line.startswith("{") and '"msg": "tick"' in line]
    assert len(ticks) == 40 and {"mode", "services", "latency_ms"} <= set(ticks[0])


def test_sim_shadow_mode_writes_nothing(capsys):
    assert main(["scaler", "run", "--sim", "--mode", "shadow", "--ticks", "20",
                 "--log-format", "text", "--log-level", "WARNING"]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["writes"] == 0


def test_invalid_config_file_exits_2_naming_the_field(tmp_path, capsys):
    cfg = tmp_path / "scaler.json"
    cfg.write_text(json.dumps({"services": {"frontend": {"min_replicas": 5,
                                                         "max_replicas": 2}}}))
    assert main(["scaler", "run", "--sim", "--ticks", "1", "--config", str(cfg)]) == 2
    assert "min_replicas (5) > max_replicas (2)" in capsys.readouterr().err


def test_help_shows_examples(capsys):
    with pytest.raises(SystemExit) as done:
        main(["scaler", "--help"])
    out = capsys.readouterr().out
    assert done.value.code == 0 and "--sim" in out and "Examples" in out


@pytest.mark.parametrize("text, seconds", [("15s", 15.0), ("1m", 60.0), ("500ms", 0.5),
                                           ("2", 2.0)])
def test_interval_durations(text, seconds):
    assert parse_duration(text) == seconds


def test_metrics_health_and_readiness_endpoints():
    metrics = ScalerMetrics()
    metrics.set_fallback("model_load")
    state = {"ready": False}
    server = HealthServer(metrics, lambda: True, lambda: state["ready"], port=0,
                          host="127.0.0.1").start()
    base = f"http://127.0.0.1:{server.port}"
    try:
        body = urllib.request.urlopen(base + "/metrics").read().decode()
        assert 'gnnrl_scaler_fallback_active{reason="model_load"} 1.0' in body
        assert "gnnrl_scaler_tick_seconds_bucket" in body
        assert urllib.request.urlopen(base + "/healthz").status == 200
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(base + "/readyz")
        assert err.value.code == 503
        state["ready"] = True
        assert urllib.request.urlopen(base + "/readyz").status == 200
    finally:
        server.stop()
