"""The registry against a real `mlflow server` process on loopback (not only the SQLite file).

The fixture starts ``mlflow server --workers 1`` on a free port with its own SQLite backend
and artifact folder, waits for ``/health``, and stops it (SIGTERM, then SIGKILL) after.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from gnnrl.registry.promote import CHAMPION, alias_version, list_versions, register_and_gate
from gnnrl.registry.tracking import RegistryUnavailableError
from tests.registry_support import make_model, summary


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class MlflowServer:
    def __init__(self, root, port: int) -> None:
        self.root, self.port = root, port
        self.uri = f"http://127.0.0.1:{port}"
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        cmd = [
            sys.executable, "-m", "mlflow", "server",
            "--backend-store-uri", f"sqlite:///{self.root / 'server.db'}",
            "--artifacts-destination", str(self.root / "artifacts"),
            "--host", "127.0.0.1", "--port", str(self.port), "--workers", "1",
        ]
        self.proc = subprocess.Popen(
            cmd, cwd=self.root, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            start_new_session=True,
        )
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"mlflow server exited: {self.proc.stderr.read().decode()}")
            try:
                if requests.get(self.uri + "/health", timeout=1).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.5)
        self.stop()
        raise RuntimeError("mlflow server did not become healthy in 90 s")

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)  # our own process group, nobody else's
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=5)


@pytest.fixture
def mlflow_server(tmp_path):
    server = MlflowServer(tmp_path, _free_port())
    server.start()
    yield server
    server.stop()


class FlakyProxy(BaseHTTPRequestHandler):
    """Forwards to the real server; answers 503 to alias writes (MLflow dies mid-registration)."""

    upstream = ""
    refused: list = []  # noqa: RUF012 (test-local state)

    def log_message(self, *args):
        pass

    def _forward(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        path = self.path.split("?")[0]
        if self.command == "POST" and path.endswith("/registered-models/alias"):
            type(self).refused.append(path)
            self.send_response(503)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        resp = requests.request(self.command, self.upstream + self.path, data=body,
                                headers={k: v for k, v in self.headers.items()
                                         if k.lower() not in ("host", "content-length")},
                                timeout=30)
        self.send_response(resp.status_code)
        for key, value in resp.headers.items():
            if key.lower() not in ("content-length", "transfer-encoding", "connection",
                                   "content-encoding"):
                self.send_header(key, value)
        self.send_header("Content-Length", str(len(resp.content)))
        self.end_headers()
        self.wfile.write(resp.content)

    do_GET = do_POST = do_PATCH = do_DELETE = do_PUT = _forward


def _flaky_proxy(upstream: str) -> ThreadingHTTPServer:
    FlakyProxy.upstream, FlakyProxy.refused = upstream, []
    proxy = ThreadingHTTPServer(("127.0.0.1", 0), FlakyProxy)
    threading.Thread(target=proxy.serve_forever, daemon=True).start()
    return proxy


def test_mlflow_server_failures_never_move_the_champion(tmp_path, mlflow_server, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    uri = mlflow_server.uri
    _, first = make_model(tmp_path, 0)
    v1 = register_and_gate(first, summary((0.01, 9.0)), "cand", tracking_uri=uri)
    assert v1.promoted and alias_version(uri, CHAMPION) == v1.version
    assert (tmp_path / "artifacts").is_dir(), "artifacts went through the server's proxy"
    better = summary((0.0, 1.0), champion=(0.01, 9.0))
    gate_args = {"champion_policy": "champion", "champion_version_evaluated": v1.version}

    # 1. the server dies between "version created" and "aliases set": no new champion
    proxy = _flaky_proxy(uri)
    try:
        _, second = make_model(tmp_path, 1)
        with pytest.raises(Exception, match=r"503|alias"):
            register_and_gate(second, better, "cand", tracking_uri=
                              f"http://127.0.0.1:{proxy.server_address[1]}", **gate_args)
    finally:
        proxy.shutdown()
        proxy.server_close()
    assert FlakyProxy.refused, "the alias write was attempted and refused"
    assert alias_version(uri, CHAMPION) == v1.version
    assert [r["version"] for r in list_versions(uri)] == ["2", v1.version]

    # 2. the server is down: the step fails naming the URI before writing anything
    mlflow_server.stop()
    _, third = make_model(tmp_path, 2)
    with pytest.raises(RegistryUnavailableError, match=uri.replace(".", r"\.")):
        register_and_gate(third, better, "cand", tracking_uri=uri, **gate_args)
    # read the server's own database directly: the champion did not move, nothing new
    backend = f"sqlite:///{tmp_path / 'server.db'}"
    assert alias_version(backend, CHAMPION) == v1.version
    assert [r["version"] for r in list_versions(backend)] == ["2", v1.version]


def test_server_killed_right_after_the_version_is_created_leaves_no_new_champion(
        tmp_path, mlflow_server, monkeypatch):
    """The `mlflow server` process is SIGKILLed at the client boundary between
    `register_model` (the version exists) and the first tag/alias call."""
    from mlflow.tracking import MlflowClient

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "5")
    uri = mlflow_server.uri
    _, first = make_model(tmp_path, 0)
    v1 = register_and_gate(first, summary((0.01, 9.0)), "cand", tracking_uri=uri)
    assert v1.promoted
    real_tag = MlflowClient.set_model_version_tag

    def kill_then_tag(self, *args, **kwargs):
        if mlflow_server.proc.poll() is None:
            os.killpg(mlflow_server.proc.pid, signal.SIGKILL)
            mlflow_server.proc.wait(timeout=10)
        return real_tag(self, *args, **kwargs)

    monkeypatch.setattr(MlflowClient, "set_model_version_tag", kill_then_tag)
    _, second = make_model(tmp_path, 1)
    with pytest.raises(Exception):  # noqa: B017 - whatever the client raises, it must raise
        register_and_gate(second, summary((0.0, 1.0), champion=(0.01, 9.0)), "cand",
                          tracking_uri=uri, champion_policy="champion",
                          champion_version_evaluated=v1.version)
    backend = f"sqlite:///{tmp_path / 'server.db'}"  # the dead server's own database
    assert alias_version(backend, CHAMPION) == v1.version
    versions = {r["version"]: r for r in list_versions(backend)}
    assert set(versions) == {"2", v1.version}
    assert versions["2"]["tags"].get("gate.decision") is None  # not marked as gated either
