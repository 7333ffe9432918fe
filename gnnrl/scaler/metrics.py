"""Prometheus metrics and the /metrics, /healthz, /readyz endpoints of the scaler.

Metric names follow the Prometheus naming guide
(https://prometheus.io/docs/practices/naming/): a `gnnrl_scaler_` prefix, `_total` for
counters, base units (seconds). Each `ScalerMetrics` has its own `CollectorRegistry`, so
tests and several scalers in one process do not share state.
"""

from __future__ import annotations

import http.server
import threading
from collections.abc import Callable

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    generate_latest,
)

from gnnrl.scaler.fallback import REASONS

#: tick latency buckets, seconds (the goal is p99 <= 50 ms without network)
TICK_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class ScalerMetrics:
    """All the scaler's metrics in one registry.

    Metrics:
        gnnrl_scaler_decisions_total{service, source, direction}: decisions per tick
            (source "model" | "rule"; direction "up" | "down" | "hold").
        gnnrl_scaler_desired_replicas{service}: the guarded count it would write (shadow
            mode exports what it would do here).
        gnnrl_scaler_current_replicas{service}: spec.replicas as read.
        gnnrl_scaler_applied_changes_total{service, direction}: writes that succeeded.
        gnnrl_scaler_api_errors_total{kind}: Kubernetes API failures by type.
        gnnrl_scaler_fallback_active{reason}: 1 for the active fallback reason, else 0.
        gnnrl_scaler_invalid_observations_total{reason}: ticks whose input the model did
            not see (non_finite, out_of_range).
        gnnrl_scaler_skipped_total{service, reason}: services held (no_metrics,
            scaling_disabled, forbidden, not_leader ...).
        gnnrl_scaler_tick_seconds: tick latency histogram.
        gnnrl_scaler_graph_errors_total{kind}: ticks without a graph (the source's error
            type, or "deadline").
        gnnrl_scaler_tick_failures_total: ticks that raised (a bug; logged with traceback).
        gnnrl_scaler_leader: 1 while this replica holds the Lease.
        gnnrl_scaler_model: info (version, sha256, uri).
    """

    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        self.decisions = Counter("gnnrl_scaler_decisions", "Decisions taken, per service",
                                 ["service", "source", "direction"], registry=r)
        self.desired = Gauge("gnnrl_scaler_desired_replicas",
                             "Guarded desired replicas (what it writes or would write)",
                             ["service"], registry=r)
        self.current = Gauge("gnnrl_scaler_current_replicas", "spec.replicas as read",
                             ["service"], registry=r)
        self.applied = Counter("gnnrl_scaler_applied_changes", "Successful scale writes",
                               ["service", "direction"], registry=r)
        self.api_errors = Counter("gnnrl_scaler_api_errors", "Kubernetes API failures",
                                  ["kind"], registry=r)
        self.fallback = Gauge("gnnrl_scaler_fallback_active",
                              "1 while the HPA rule replaces the model, by reason", ["reason"],
                              registry=r)
        for reason in REASONS:
            self.fallback.labels(reason).set(0)
        self.invalid = Counter("gnnrl_scaler_invalid_observations",
                               "Ticks whose observation the model did not see", ["reason"],
                               registry=r)
        self.skipped = Counter("gnnrl_scaler_skipped", "Services held without a decision",
                               ["service", "reason"], registry=r)
        self.tick = Histogram("gnnrl_scaler_tick_seconds", "Tick latency", buckets=TICK_BUCKETS,
                              registry=r)
        self.graph_errors = Counter("gnnrl_scaler_graph_errors",
                                    "Ticks without a traffic graph, by error type "
                                    "(deadline: no time left in the tick)", ["kind"],
                                    registry=r)
        self.tick_failures = Counter("gnnrl_scaler_tick_failures",
                                     "Ticks that raised an unexpected error (logged)",
                                     registry=r)
        self.leader = Gauge("gnnrl_scaler_leader", "1 while this replica holds the Lease",
                            registry=r)
        self.model = Info("gnnrl_scaler_model", "The model in use", registry=r)

    def set_fallback(self, reason: str | None) -> None:
        """Exactly one reason at 1 (or none in model mode)."""
        for r in REASONS:
            self.fallback.labels(r).set(1 if r == reason else 0)

    def value(self, name: str, labels: dict[str, str] | None = None) -> float:
        """A sample's current value (0.0 when absent); for tests and the CLI summary."""
        got = self.registry.get_sample_value(name, labels or {})
        return 0.0 if got is None else float(got)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


class HealthServer:
    """Serves /metrics, /healthz (live: ticks are happening) and /readyz (ready: started).

    Args:
        metrics: the registry to expose.
        live: returns True while the loop is alive (ticked recently).
        ready: returns True once the scaler has started (also on the HPA rule: S2).
        port: TCP port (0 = any free port; see `port` after `start`).
    """

    def __init__(self, metrics: ScalerMetrics, live: Callable[[], bool],
                 ready: Callable[[], bool], port: int = 9090, host: str = "0.0.0.0") -> None:
        self.metrics, self.live, self.ready = metrics, live, ready
        self._server = http.server.ThreadingHTTPServer((host, port), self._handler())
        self._server.daemon_threads = True
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True,
                                        name="gnnrl-scaler-http")

    def _handler(self) -> type[http.server.BaseHTTPRequestHandler]:
        outer = self

        class MetricsHandler(http.server.BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                path = self.path.split("?", 1)[0]
                if path == "/metrics":
                    code, ctype, body = 200, CONTENT_TYPE_LATEST, outer.metrics.exposition()
                elif path in ("/healthz", "/readyz"):
                    ok = outer.live() if path == "/healthz" else outer.ready()
                    code, ctype = (200 if ok else 503), "text/plain"
                    body = b"ok\n" if ok else b"not ok\n"
                else:
                    code, ctype, body = 404, "text/plain", b"not found\n"
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        return MetricsHandler

    def start(self) -> HealthServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
