"""`LoopbackServer`: a threaded HTTP server on 127.0.0.1 that starts and stops cleanly and
does not print a traceback when a client hangs up (a scraper stopped mid-scrape, a client
that timed out). Used by the Istio exporter and the test fakes; `free_port` for servers
started in another process."""

from __future__ import annotations

import http.server
import socket
import threading
from typing import Any


class LoopbackServer(http.server.ThreadingHTTPServer):
    """`ThreadingHTTPServer` bound to 127.0.0.1:`port` (0 = a free port), daemon threads."""

    daemon_threads = True

    def __init__(self, handler: type[http.server.BaseHTTPRequestHandler], port: int = 0,
                 name: str = "LoopbackServer") -> None:
        super().__init__(("127.0.0.1", port), handler)
        self._thread = threading.Thread(target=self.serve_forever, args=(0.05,), daemon=True,
                                        name=name)

    def start(self) -> LoopbackServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.shutdown()
        self.server_close()

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    def handle_error(self, request: Any, client_address: Any) -> None:
        import sys

        exc = sys.exc_info()[1]
        if isinstance(exc, ConnectionError | TimeoutError):
            return                        # the client went away: nothing to report
        super().handle_error(request, client_address)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now (for a server started in
    another process, or for a URL that must refuse connections)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
