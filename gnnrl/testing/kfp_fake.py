"""An HTTP-level fake of the Kubeflow Pipelines v2beta1 API (what `kfp.Client` calls):
healthz, experiments (get-or-create), runs and recurring runs. It records every POST body
in `posts` and creates nothing.

Usage::

    with FakeKfp() as kfp:
        main(["pipeline", "submit", "--host", kfp.url, ...])
        ((path, body),) = [(p, b) for p, b in kfp.posts if p.endswith("/runs")]
"""

from __future__ import annotations

import http.server
import json
import threading
from typing import Any

from gnnrl.testing.base import LoopbackFake
from gnnrl.testing.loopback import LoopbackServer

_API = "/apis/v2beta1"


class FakeKfp(LoopbackFake):
    """Threaded fake KFP API server on 127.0.0.1 (one experiment, ``exp-1``)."""

    def __init__(self) -> None:
        #: (path, JSON body) of every POST, in order
        self.posts: list[tuple[str, Any]] = []
        self._lock = threading.Lock()
        self._server: LoopbackServer | None = None

    def start(self) -> FakeKfp:
        self._server = LoopbackServer(_make_handler(self), name="FakeKfp").start()
        return self

    @property
    def url(self) -> str:
        """The host to give `kfp.Client` (``--host``)."""
        return f"http://127.0.0.1:{self._port()}"

    def answer(self, method: str, path: str, body: Any) -> tuple[int, Any]:
        if method == "GET" and path == f"{_API}/healthz":
            return 200, {"multi_user": False}
        if method == "GET" and path == f"{_API}/experiments":
            return 200, {"experiments": [{"experiment_id": "exp-1", "display_name": "gnnrl"}],
                         "total_size": 1}
        if method == "POST":
            with self._lock:
                self.posts.append((path, body))
            created = {f"{_API}/runs": {"run_id": "run-1", "state": "PENDING"},
                       f"{_API}/recurringruns": {"recurring_run_id": "rec-1"},
                       f"{_API}/experiments": {"experiment_id": "exp-1"}}.get(path)
            if created is not None:
                return 200, {**body, **created}
        return 404, {"error": "not found"}


def _make_handler(fake: FakeKfp) -> type[http.server.BaseHTTPRequestHandler]:
    class FakeKfpHandler(http.server.BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _handle(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length) or b"{}") if self.command == "POST" \
                else None
            code, answer = fake.answer(self.command, self.path.split("?")[0], body)
            data = json.dumps(answer).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = _handle

    return FakeKfpHandler
