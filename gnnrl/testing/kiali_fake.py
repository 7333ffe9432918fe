"""A local HTTP server that answers Kiali's graph API with stored responses (tests only).

It serves ``GET {prefix}/api/namespaces/graph`` with the JSON payload set for the requested
namespace (a real Kiali response, e.g. one of ``tests/fixtures/kiali/*.json``), records
every request's query parameters and headers, and can inject failures: an HTTP status
(500, 503, 401...) with extra headers (``Retry-After``) or a delay (longer than the client's
timeout = a timeout) for the next `times` requests, or a raw body (not JSON, truncated,
huge), sent with its Content-Length or chunked (no length announced: the client only learns
the size by reading). A test that needs every answer scripted (status, body, delay) gives a
list of them or a function of the query parameters with `script`.

Usage::

    with FakeKiali(prefix="/kiali") as kiali:
        kiali.set_graph("onlineboutique", json.loads(fixture.read_text()))
        kiali.inject(status=500, times=2)          # two 500s, then the payload
        client = KialiClient(kiali.url, retries=3, backoff_s=0)
        snap = client.snapshot("onlineboutique")
        assert len(kiali.requests) == 3
"""

from __future__ import annotations

import dataclasses
import http.server
import json
import ssl
import threading
import time
import urllib.parse
from collections.abc import Callable, Sequence
from typing import Any

from gnnrl.testing.loopback import LoopbackServer
from gnnrl.testing.base import LoopbackFake


@dataclasses.dataclass
class KialiFault:
    """The next `times` graph requests answer `status` (None: the payload) after `delay_s`,
    with `body` (bytes) instead of the payload if given, extra `headers`, and the body sent
    in chunks without a Content-Length when `chunked`."""

    status: int | None = 500
    times: int = 1
    delay_s: float = 0.0
    body: bytes | None = None
    headers: dict[str, str] = dataclasses.field(default_factory=dict)
    chunked: bool = False


#: a scripted answer: (HTTP status, body, seconds to wait before answering)
KialiAnswer = tuple[int, bytes, float]


@dataclasses.dataclass
class KialiRequest:
    path: str
    params: dict[str, str]
    headers: dict[str, str]
    t: float = dataclasses.field(default_factory=time.monotonic)


class FakeKiali(LoopbackFake):
    """Threaded HTTP server on 127.0.0.1 serving Kiali graph payloads per namespace."""

    def __init__(self, prefix: str = "/kiali", tls: tuple[str, str] | None = None) -> None:
        """`tls`: (certificate file, key file) to serve HTTPS instead of HTTP."""
        self.prefix = prefix.rstrip("/")
        self.tls = tls
        self.requests: list[KialiRequest] = []
        self._graphs: dict[str, Any] = {}
        self._faults: list[KialiFault] = []
        self._script: list[KialiAnswer] | Callable[[dict[str, str]], KialiAnswer] | None = None
        self._lock = threading.Lock()
        self._server: LoopbackServer | None = None

    def start(self) -> FakeKiali:
        server = LoopbackServer(_make_handler(self), name="FakeKiali")
        if self.tls is not None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(*self.tls)
            server.socket = context.wrap_socket(server.socket, server_side=True)
        self._server = server.start()
        return self

    @property
    def url(self) -> str:
        """Kiali's base URL (including the prefix), what `KialiClient` takes."""
        scheme = "https" if self.tls else "http"
        return f"{scheme}://127.0.0.1:{self._port()}{self.prefix}"

    def set_graph(self, namespace: str, payload: Any) -> None:
        """Serve `payload` (a JSON-serialisable object) for ``namespaces=<namespace>``."""
        with self._lock:
            self._graphs[namespace] = payload

    def inject(self, fault: KialiFault | None = None, **kwargs: Any) -> KialiFault:
        fault = fault or KialiFault(**kwargs)
        with self._lock:
            self._faults.append(fault)
        return fault

    def script(self, answers: Sequence[KialiAnswer] | Callable[[dict[str, str]], KialiAnswer]
               ) -> None:
        """Answer every request from `answers` instead of the graphs: a list used in order
        (the last repeating), or a function of the query parameters (Kiali's ``queryTime``
        tells the collector's ticks apart). Injected faults still come first."""
        with self._lock:
            self._script = answers if callable(answers) else list(answers)

    def _scripted(self, params: dict[str, str]) -> KialiAnswer | None:
        with self._lock:
            if self._script is None:
                return None
            if callable(self._script):
                return self._script(params)
            return self._script.pop(0) if len(self._script) > 1 else self._script[0]

    def _next_fault(self) -> KialiFault | None:
        with self._lock:
            if not self._faults:
                return None
            fault = self._faults[0]
            fault.times -= 1
            if fault.times <= 0:
                self._faults.pop(0)
            return fault

    def answer(self, path: str, params: dict[str, str]) -> tuple[int, bytes]:
        if path != f"{self.prefix}/api/namespaces/graph":
            return 404, b'{"error": "Not Found"}'
        with self._lock:
            payload = self._graphs.get(params.get("namespaces", ""))
        if payload is None:
            return 400, json.dumps({"error": f"namespace {params.get('namespaces')!r} "
                                             "is not accessible"}).encode()
        return 200, json.dumps(payload).encode()


def _make_handler(fake: FakeKiali) -> type[http.server.BaseHTTPRequestHandler]:
    class FakeKialiHandler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            url = urllib.parse.urlsplit(self.path)
            params = dict(urllib.parse.parse_qsl(url.query))
            with fake._lock:
                fake.requests.append(KialiRequest(url.path, params, dict(self.headers)))
            fault = fake._next_fault()
            if fault is not None and fault.delay_s:
                time.sleep(fault.delay_s)
            scripted = fake._scripted(params) if fault is None else None
            if scripted is not None:
                code, body, delay_s = scripted
                time.sleep(delay_s)
            elif fault is not None and fault.status is not None:
                code, body = fault.status, fault.body or json.dumps(
                    {"error": f"injected HTTP {fault.status}"}).encode()
            else:
                code, body = fake.answer(url.path, params)
                if fault is not None and fault.body is not None:
                    body = fault.body
            chunked = fault is not None and fault.chunked
            try:
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                for name, value in (fault.headers if fault is not None else {}).items():
                    self.send_header(name, value)
                if chunked:
                    self.send_header("Transfer-Encoding", "chunked")
                    self.end_headers()
                    for i in range(0, len(body), 1 << 16):
                        part = body[i:i + (1 << 16)]
                        self.wfile.write(f"{len(part):x}\r\n".encode() + part + b"\r\n")
                    self.wfile.write(b"0\r\n\r\n")
                else:
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
            except (BrokenPipeError, ConnectionResetError):
                pass

    return FakeKialiHandler
