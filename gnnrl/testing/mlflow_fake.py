"""MLflow for tests: a real ``mlflow server`` process on loopback, and a proxy in front of
it that can refuse chosen requests (the server dying mid-registration) or all of them (a
registry that is down).

Usage::

    with MlflowServer(tmp_path) as server:                # sqlite + artifacts in tmp_path
        with MlflowProxy(server.uri, refuse=alias_writes) as proxy:
            register_and_gate(..., tracking_uri=proxy.url)  # the alias write answers 503
        assert proxy.refused
    with MlflowProxy() as down:                           # every request answers 503
        RegistryResolver(down.url)
"""

from __future__ import annotations

import http.server
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Self

import requests

from gnnrl.testing.base import LoopbackFake
from gnnrl.testing.loopback import LoopbackServer, free_port

#: hop-by-hop and length headers the proxy does not copy from the upstream answer
_DROP_HEADERS = ("content-length", "transfer-encoding", "connection", "content-encoding")


class MlflowServer:
    """``mlflow server --workers 1`` on 127.0.0.1 with its SQLite backend
    (``root/server.db``) and artifact store (``root/artifacts``); `start` waits for
    ``/health``, `stop` sends SIGTERM (then SIGKILL) to its own process group."""

    def __init__(self, root: Path, port: int | None = None,
                 start_timeout_s: float = 90.0) -> None:
        self.root = Path(root)
        self.port = port or free_port()
        self.uri = f"http://127.0.0.1:{self.port}"
        self.start_timeout_s = start_timeout_s
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Self:
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
        deadline = time.monotonic() + self.start_timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                err = self.proc.stderr.read().decode() if self.proc.stderr else ""
                raise RuntimeError(f"mlflow server exited: {err}")
            try:
                if requests.get(self.uri + "/health", timeout=1).status_code == 200:
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.5)
        self.stop()
        raise RuntimeError(f"mlflow server did not become healthy in {self.start_timeout_s} s")

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)  # our own process group, nobody else's
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=5)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def alias_writes(method: str, path: str) -> bool:
    """`MlflowProxy.refuse` rule: the registry's "set alias" call (the champion moving)."""
    return method == "POST" and path.endswith("/registered-models/alias")


class MlflowProxy(LoopbackFake):
    """An HTTP proxy to `upstream` on 127.0.0.1. A request that `refuse(method, path)`
    picks answers 503 with no body and is recorded in `refused` (its path, query
    included); without `upstream` every request is refused."""

    def __init__(self, upstream: str | None = None,
                 refuse: Callable[[str, str], bool] | None = None) -> None:
        self.upstream = upstream
        self.refuse = refuse or (lambda method, path: True)
        self.refused: list[str] = []
        self._lock = threading.Lock()
        self._server: LoopbackServer | None = None

    def start(self) -> MlflowProxy:
        self._server = LoopbackServer(_proxy_handler(self), name="MlflowProxy").start()
        return self

    @property
    def url(self) -> str:
        """The tracking URI to give the client."""
        return f"http://127.0.0.1:{self._port()}"


def _proxy_handler(proxy: MlflowProxy) -> type[http.server.BaseHTTPRequestHandler]:
    class MlflowProxyHandler(http.server.BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _forward(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else None
            if proxy.upstream is None or proxy.refuse(self.command, self.path.split("?")[0]):
                with proxy._lock:
                    proxy.refused.append(self.path)
                self.send_response(503)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            resp = requests.request(self.command, proxy.upstream + self.path, data=body,
                                    headers={k: v for k, v in self.headers.items()
                                             if k.lower() not in ("host", "content-length")},
                                    timeout=30)
            self.send_response(resp.status_code)
            for key, value in resp.headers.items():
                if key.lower() not in _DROP_HEADERS:
                    self.send_header(key, value)
            self.send_header("Content-Length", str(len(resp.content)))
            self.end_headers()
            self.wfile.write(resp.content)

        do_GET = do_POST = do_PATCH = do_DELETE = do_PUT = _forward

    return MlflowProxyHandler
