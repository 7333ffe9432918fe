"""`gnnrl scaler run` as a user runs it, and the scaler's HTTP endpoints."""

from __future__ import annotations

import json
import logging
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from gnnrl.cli import main
from test_cli_bad_inputs import CYCLE  # the invalid app spec both CLIs refuse
from gnnrl.commands.scaler import parse_duration
from gnnrl.scaler.metrics import HealthServer, ScalerMetrics
from gnnrl.testing.cli import run_gnnrl

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _restore_logging():
    """`gnnrl scaler run` configures the `gnnrl` logger; put it back for the other tests."""
    logger = logging.getLogger("gnnrl")
    saved = (list(logger.handlers), logger.level)
    yield
    logger.handlers[:], logger.level = saved[0], saved[1]


def gnnrl(*args: str, timeout: float = 240) -> subprocess.CompletedProcess:
    return run_gnnrl("scaler", *args, timeout=timeout, cwd=ROOT)


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


def test_changed_config_file_is_applied_and_an_invalid_one_is_ignored(tmp_path):
    import argparse

    from gnnrl.commands.scaler import ConfigWatcher
    from gnnrl.scaler.clock import FakeClock
    from gnnrl.scaler.loop import Scaler
    from gnnrl.scaler.sim_cluster import SimCluster

    path = tmp_path / "scaler.json"
    base = {"namespace": "sim", "source": "sim",
            "services": {"frontend": {"min_replicas": 1, "max_replicas": 5}}}
    path.write_text(json.dumps(base))
    args = argparse.Namespace(config=str(path), namespace=None, model=None, mode=None,
                              interval=None, source=None, metrics_port=None, identity=None,
                              sim=True)
    from gnnrl.scaler.config import load_config

    clock = FakeClock()
    scaler = Scaler(load_config(path), SimCluster("onlineboutique", clock), clock)
    scaler.forbidden.add("frontend")  # disabled by a 403 earlier
    watcher = ConfigWatcher(args, scaler)
    watcher.check()
    assert scaler.forbidden == {"frontend"}  # unchanged file: nothing happens
    base["services"]["frontend"]["max_replicas"] = 8
    path.write_text(json.dumps(base, indent=1))
    watcher.check()
    assert scaler.config.services["frontend"].max_replicas == 8 and not scaler.forbidden
    base["services"]["frontend"]["min_replicas"] = 9
    path.write_text(json.dumps(base, indent=2))
    watcher.check()
    assert scaler.config.services["frontend"].min_replicas == 1  # invalid: kept the old one


def test_lease_is_renewed_on_a_background_thread():
    import threading
    import time

    from scaler_support import NS

    from gnnrl.scaler.clock import MonotonicClock
    from gnnrl.scaler.leader import LeaseElector, renew_in_background
    from gnnrl.testing.k8s_fake import FakeKubernetes

    kube = FakeKubernetes().start()
    stop = threading.Event()
    rounds = []
    try:
        elector = LeaseElector(kube.api_client(), NS, "gnnrl-scaler", "pod-a", MonotonicClock(),
                               lease_duration_s=3, renew_deadline_s=2)
        thread = renew_in_background(elector, 0.05, stop, rounds.append)
        deadline = time.monotonic() + 10
        while len(rounds) < 3 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert rounds[:3] == [True, True, True] and elector.is_leader()
        assert kube.lease("gnnrl-scaler", NS)["spec"]["holderIdentity"] == "pod-a"
    finally:
        stop.set()
        thread.join(timeout=5)
        kube.stop()


def test_cluster_mode_end_to_end_against_fake_kubernetes_and_kiali(tmp_path):
    """The production wiring: kubeconfig -> the official client -> the fake API server; a
    Kiali server answering the real workload-graph fixture; active mode with leader
    election, Events and the metrics port."""
    import yaml
    from scaler_support import usage_for

    from gnnrl.testing.k8s_fake import FakeKubernetes
    from gnnrl.testing.kiali_fake import FakeKiali

    fixture = Path(__file__).parent / "fixtures" / "kiali" / "test_workload_graph.expected.json"
    kiali = FakeKiali(prefix="").start()
    kiali.set_graph("bookinfo", json.loads(fixture.read_text()))
    kube = FakeKubernetes().start()
    try:
        for name in ("productpage-v1", "details-v1", "ratings-v1", "reviews-v1", "reviews-v2",
                     "reviews-v3"):
            kube.add_deployment(name, "bookinfo", replicas=2)
            kube.set_usage(name, "bookinfo", cpu_m_per_pod=usage_for(0.7), mem_mi_per_pod=50)
        kube.set_usage("details-v1", "bookinfo", cpu_m_per_pod=usage_for(1.4),
                       mem_mi_per_pod=50)
        kubeconfig = tmp_path / "kubeconfig"
        kubeconfig.write_text(yaml.safe_dump({
            "apiVersion": "v1", "kind": "Config", "current-context": "fake",
            "clusters": [{"name": "fake", "cluster": {"server": kube.url}}],
            "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "u"}}],
            "users": [{"name": "u", "user": {"token": "t"}}]}))
        cfg = tmp_path / "scaler.json"
        cfg.write_text(json.dumps({
            "namespace": "bookinfo", "interval_s": 0.5, "api_timeout_s": 2.0,
            "metrics_port": 0, "lease_duration_s": 3, "renew_deadline_s": 2,
            "retry_period_s": 0.1, "identity": "pod-a",
            "services": {"details-v1": {"min_replicas": 1, "max_replicas": 6},
                         "ratings-v1": {"min_replicas": 1, "max_replicas": 6}}}))
        proc = gnnrl("run", "--config", str(cfg), "--kubeconfig", str(kubeconfig),
                     "--mode", "active", "--source", "kiali", "--kiali-url", kiali.url,
                     "--ticks", "3")
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert json.loads(proc.stdout.strip().splitlines()[-1])["ticks"] == 3
        # per-pod usage stays at 2x the target however many pods run: 2 -> 4 -> 6 (max)
        assert kube.scale_writes() == [("bookinfo", "details-v1", 4),
                                       ("bookinfo", "details-v1", 6)]
        assert kube.lease("gnnrl-scaler", "bookinfo")["spec"]["holderIdentity"] == "pod-a"
        assert "SuccessfulRescale" in [e["reason"] for e in kube.events]
    finally:
        kube.stop()
        kiali.stop()


@pytest.mark.parametrize("content, field", [
    ({"api_backoff_s": "1"}, "api_backoff_s"),
    ({"api_backoff_s": 1}, "api_backoff_s"),
    ({"services": "frontend"}, "services"),
    ({"kiali": {"timeout_s": -1}}, "kiali.timeout_s"),
])
def test_config_of_the_wrong_type_exits_2_with_one_line_naming_the_field(tmp_path, capsys,
                                                                         content, field):
    cfg = tmp_path / "scaler.json"
    cfg.write_text(json.dumps(content))
    assert main(["scaler", "run", "--sim", "--ticks", "1", "--config", str(cfg)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and field in err and "Traceback" not in err




@pytest.mark.parametrize("flag, value, says", [
    ("--app", CYCLE, "cycle"),
    ("--app", "name: x\nservices: [a, b\n  c: :\n", "cannot parse"),
    ("--faults", "notjson", "--faults: not JSON"),
    ("--faults", '{"conflict": 2}', "--faults: conflict"),
    ("--faults", '{"typo": 0.1}', "--faults"),
])
def test_bad_sim_app_or_faults_exit_2_with_one_line(tmp_path, capsys, flag, value, says):
    if flag == "--app":
        (tmp_path / "app.yaml").write_text(value)
        value = str(tmp_path / "app.yaml")
    assert main(["scaler", "run", "--sim", "--ticks", "1", flag, value]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and says in err
    if flag == "--app":
        assert value in err


def test_sim_run_stops_by_itself_after_the_default_ticks_stated_in_help(capsys):
    from gnnrl.commands.scaler import SIM_DEFAULT_TICKS

    with pytest.raises(SystemExit):
        main(["scaler", "--help"])
    assert f"default: {SIM_DEFAULT_TICKS}" in " ".join(capsys.readouterr().out.split())
    assert main(["scaler", "run", "--sim", "--mode", "shadow", "--log-level", "WARNING"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["ticks"] == SIM_DEFAULT_TICKS == 240


def test_paced_sim_run_ticks_on_the_real_clock(capsys):
    assert main(["scaler", "run", "--sim", "--pace", "--interval", "50ms", "--ticks", "3",
                 "--metrics-port", "0", "--log-level", "WARNING"]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["ticks"] == 3


def test_text_log_shows_each_services_decision_on_the_tick_line(capsys):
    assert main(["scaler", "run", "--sim", "--mode", "active", "--ticks", "3",
                 "--log-format", "text"]) == 0
    ticks = [line for line in capsys.readouterr().err.splitlines() if "scaler: tick " in line]
    assert len(ticks) == 3
    assert "mode=rule" in ticks[0] and "frontend 1->" in ticks[0] and "-> " not in ticks[0]
    assert any(" written" in t for t in ticks)  # the rule scaled something up


def test_tick_line_names_current_desired_guarded_source_and_skip():
    from gnnrl.scaler.logs import tick_line

    line = tick_line({"mode": "rule", "fallback_reason": "model_missing", "latency_ms": 3.14,
                      "services": {
                          "cart": {"current": 2, "desired": 9, "guarded": 6, "source": "rule",
                                   "reasons": ["scale_up_limit"], "skipped": None,
                                   "write": "written"},
                          "ad": {"current": 0, "desired": None, "guarded": None, "source": "",
                                 "skipped": "scaling_disabled", "write": None}}})
    assert line == ("mode=rule fallback=model_missing 3.1ms | cart 2->9->6 rule "
                    "[scale_up_limit] written | ad 0 held skipped=scaling_disabled")


def test_invalid_config_on_reload_keeps_the_last_good_one_and_emits_an_event(tmp_path):
    import argparse

    from gnnrl.commands.scaler import ConfigWatcher
    from gnnrl.scaler.clock import FakeClock
    from gnnrl.scaler.config import load_config
    from gnnrl.scaler.loop import Scaler
    from gnnrl.scaler.sim_cluster import SimCluster

    path = tmp_path / "scaler.json"
    base = {"namespace": "sim", "source": "sim", "api_backoff_s": [0.5],
            "services": {"frontend": {"min_replicas": 1, "max_replicas": 5}}}
    path.write_text(json.dumps(base))
    args = argparse.Namespace(config=str(path), namespace=None, model=None, mode=None,
                              interval=None, source=None, metrics_port=None, identity=None,
                              sim=True)
    clock = FakeClock()
    scaler = Scaler(load_config(path), SimCluster("onlineboutique", clock), clock)
    watcher = ConfigWatcher(args, scaler)
    for bad in ({"api_backoff_s": 1}, {"services": "frontend"}):
        path.write_text(json.dumps({**base, **bad}) + " " * len(scaler.events.recorded))
        watcher.check()
        assert scaler.config.api_backoff_s == (0.5,)
        assert scaler.config.services["frontend"].max_replicas == 5
        kind, reason, _, message = scaler.events.recorded[-1]
        assert (kind, reason) == ("Warning", "InvalidConfig")
        assert next(iter(bad)) in message
