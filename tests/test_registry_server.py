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
import time

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


def test_registry_round_trip_through_a_real_mlflow_server_survives_an_outage(
    tmp_path, mlflow_server, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    uri = mlflow_server.uri
    _, first = make_model(tmp_path, 0)
    v1 = register_and_gate(first, summary((0.01, 9.0)), "cand", tracking_uri=uri)
    assert v1.promoted and alias_version(uri, CHAMPION) == v1.version
    assert (tmp_path / "artifacts").is_dir(), "artifacts went through the server's proxy"

    mlflow_server.stop()
    _, second = make_model(tmp_path, 1)
    with pytest.raises(RegistryUnavailableError, match=uri.replace(".", r"\.")):
        register_and_gate(
            second, summary((0.0, 1.0), champion=(0.01, 9.0)), "cand",
            champion_policy="champion", champion_version_evaluated=v1.version,
            tracking_uri=uri,
        )

    # read the server's own database directly: the champion did not move, nothing half-done
    backend = f"sqlite:///{tmp_path / 'server.db'}"
    assert alias_version(backend, CHAMPION) == v1.version
    assert [r["version"] for r in list_versions(backend)] == [v1.version]
