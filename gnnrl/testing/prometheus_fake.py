"""Prometheus for tests: the real `prometheus` binary on loopback scraping one target
(`PrometheusServer`), and a server that gives one canned answer to every query
(`CannedPrometheus`, for malformed or error answers a real server never gives).

Usage::

    with IstioExporter(model) as exporter:
        server = PrometheusServer(tmp_path, exporter.address)   # scrapes every second
        server.wait_for_samples(7)
        PrometheusSource(server.url, ...).snapshot("shop")
        server.stop()
    with CannedPrometheus({"status": "error", "error": "boom"}) as canned:
        PrometheusSource(canned.url, ...).query("up")           # MalformedPayload
"""

from __future__ import annotations

import http.server
import json
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import requests

from gnnrl.testing.base import LoopbackFake
from gnnrl.testing.loopback import LoopbackServer, free_port

#: the `prometheus` executable on PATH, or None (tests that need it skip)
PROMETHEUS = shutil.which("prometheus")


class PrometheusServer:
    """`prometheus` on loopback scraping `target` (host:port) every second, its TSDB and
    log in `tmp`. Starts at construction; `stop` ends it (SIGTERM, then SIGKILL)."""

    def __init__(self, tmp: Path, target: str) -> None:
        if PROMETHEUS is None:
            raise RuntimeError("the `prometheus` binary is not installed")
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = tmp / "prometheus.yml"
        config.write_text(
            "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
            "scrape_configs:\n"
            "  - job_name: mesh\n"
            "    scrape_interval: 1s\n"
            f"    static_configs: [{{targets: ['{target}']}}]\n")
        self.log = (tmp / "prometheus.log").open("w")
        self.proc = subprocess.Popen(
            [PROMETHEUS, f"--config.file={config}", f"--storage.tsdb.path={tmp / 'tsdb'}",
             f"--web.listen-address=127.0.0.1:{self.port}", "--log.level=warn",
             "--storage.tsdb.retention.time=1h"],
            stdout=self.log, stderr=subprocess.STDOUT)

    def wait_for_samples(self, samples: int, timeout_s: float = 40.0) -> None:
        """Until the target has been scraped `samples` times in a row."""
        deadline = time.monotonic() + timeout_s
        query = 'count_over_time(up{job="mesh"}[1m])'
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"prometheus exited with {self.proc.returncode}")
            try:
                r = requests.get(f"{self.url}/api/v1/query", params={"query": query},
                                 timeout=1).json()
                result = r["data"]["result"]
                if result and float(result[0]["value"][1]) >= samples:
                    return
            except (requests.RequestException, KeyError, ValueError):
                pass
            time.sleep(0.25)
        raise TimeoutError(f"prometheus did not collect {samples} scrapes in {timeout_s}s")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


class CannedPrometheus(LoopbackFake):
    """Answers every GET with HTTP 200 and `answer` (JSON-encoded) on 127.0.0.1."""

    def __init__(self, answer: Any) -> None:
        self.body = json.dumps(answer).encode()
        self._server: LoopbackServer | None = None

    def start(self) -> CannedPrometheus:
        self._server = LoopbackServer(_canned_handler(self.body),
                                      name="CannedPrometheus").start()
        return self

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._port()}"


def _canned_handler(body: bytes) -> type[http.server.BaseHTTPRequestHandler]:
    class CannedPrometheusHandler(http.server.BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    return CannedPrometheusHandler
