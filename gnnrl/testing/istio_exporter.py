"""A Prometheus exporter that serves Istio-format and cAdvisor-format metrics from a traffic
model (the simulator, or an explicit table): what a mesh would expose, on one machine.

It exists so that `PrometheusSource` is tested against a *real* Prometheus server scraping
real exposition text (tests start ``prometheus`` on loopback), and so a newcomer can run
the whole Prometheus path without a cluster.

Series, with the label names of Istio's standard metrics
(https://istio.io/latest/docs/reference/config/metrics/) and cAdvisor's:

* ``istio_requests_total`` (counter), for both ``reporter="source"`` and
  ``reporter="destination"`` (real sidecars report each request twice; a query that
  forgets ``reporter`` doubles every rate), split by ``response_code`` /
  ``grpc_response_status`` (errors: http 503, grpc 14 UNAVAILABLE with http 200) and
  ``connection_security_policy`` (``mutual_tls`` or ``none``);
* ``istio_request_duration_milliseconds`` (histogram, Istio's default buckets) with a
  log-normal latency distribution whose 95th percentile is the edge's p95;
* ``istio_request_bytes`` (histogram, ``_sum`` used for throughput);
* ``istio_tcp_sent_bytes_total`` / ``istio_tcp_received_bytes_total`` for tcp edges;
* ``container_cpu_usage_seconds_total`` (counter) and ``container_memory_working_set_bytes``
  (gauge) per pod and container, including an ``istio-proxy`` sidecar and the pod-level
  ``container=""`` cgroup series, which the source must exclude.

Counters grow by rate x elapsed time at each scrape (`clock` is injectable), so
``rate()`` over any window returns the model's rates while they are constant.

Usage::

    model = TrafficModel.from_sim("onlineboutique", entry_rps=100.0, namespace="shop")
    with IstioExporter(model) as exporter:
        print(exporter.url)        # http://127.0.0.1:PORT/metrics
"""

from __future__ import annotations

import dataclasses
import hashlib
import http.server
import math
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from statistics import NormalDist
from typing import Any

from prometheus_client.core import (
    CollectorRegistry,
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

from gnnrl.testing.loopback import LoopbackServer

#: Istio's default buckets for istio_request_duration_milliseconds (ms).
ISTIO_DURATION_BUCKETS_MS = (0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000,
                             30000, 60000, 300000, 600000, 1800000, 3600000)
_BYTES_BUCKETS = (100, 10000, 1000000)
#: Spread of the log-normal latency distribution (log-space standard deviation).
LATENCY_SIGMA = 0.5
_Z95 = NormalDist().inv_cdf(0.95)


@dataclasses.dataclass
class EdgeTraffic:
    """One caller -> callee pair. rps: req/s (for tcp: bytes/s sent); err_rate, mtls: 0..1;
    p95_ms: ms (ignored for tcp); req_bytes: mean request size, bytes."""

    source: str
    target: str
    protocol: str
    rps: float
    err_rate: float = 0.0
    mtls: float = 1.0
    p95_ms: float = 10.0
    req_bytes: float = 500.0
    source_namespace: str | None = None     # None: the model's namespace


@dataclasses.dataclass
class WorkloadUsage:
    """A Deployment's pods: count, CPU millicores and memory MiB per pod (app container)."""

    workload: str
    pods: int
    cpu_m_per_pod: float
    mem_mi_per_pod: float


@dataclasses.dataclass
class TrafficModel:
    """Rates the exporter turns into counters. Replace `edges`/`workloads` at any time."""

    namespace: str
    edges: list[EdgeTraffic]
    workloads: list[WorkloadUsage]

    @classmethod
    def from_sim(cls, app: Any = "onlineboutique", entry_rps: float = 100.0, *,
                 namespace: str = "onlineboutique", replicas: dict[str, int] | None = None,
                 warmup_steps: int = 8, seed: int = 0) -> TrafficModel:
        """The simulator's steady state at a constant entry load.

        Steps `gnnrl.sim.core.BatchedSim` (one copy, no arrival or metric noise) for
        `warmup_steps` intervals at `entry_rps` with `replicas` (default: each service's
        min), then reads edge qps / p95 / errors / mTLS and per-service CPU and memory.
        Client edges (e.g. loadgenerator -> frontend) carry the entry load.
        """
        import numpy as np

        from gnnrl.sim import load_app_spec
        from gnnrl.sim.core import BatchedSim, SimConfig

        spec = load_app_spec(app)
        sim = BatchedSim(spec, 1, SimConfig(interval_s=15.0, arrival_noise=False,
                                            metric_noise=0.0), seed=seed)
        target = sim.min_replicas.copy()
        for name, count in (replicas or {}).items():
            target[sim.index[name]] = count
        sim.reset(target)
        for _ in range(warmup_steps):
            m = sim.step(np.array([entry_rps]), target[None, :])
        return cls.from_metrics(sim, m, entry_rps, namespace)

    @classmethod
    def from_metrics(cls, sim: Any, m: Any, entry_rps: float, namespace: str,
                     copy: int = 0) -> TrafficModel:
        """The rates of one simulator step: `sim` a `BatchedSim`, `m` its `StepMetrics`,
        `entry_rps` the step's entry load (req/s), `copy` which of the N copies."""
        names = sim.service_names
        edges = []
        for c in sim.app.calls:
            if c.src in sim.index:
                continue
            j = sim.index[c.dst]   # a client (e.g. loadgenerator) sends the entry load
            edges.append(EdgeTraffic(c.src, c.dst, c.protocol, float(entry_rps),
                                     float(m.err_rate[copy, j]), c.mtls,
                                     float(m.p95_ms[copy, j]), float(sim.req_kb[j] * 1000.0)))
        for k, (i, j) in enumerate(sim.edges):
            protocol = sim.edge_protocols[k]
            qps = float(m.edge_qps[copy, k])
            req_bytes = float(sim.req_kb[j] * 1000.0)
            edges.append(EdgeTraffic(
                names[i], names[j], protocol, qps * req_bytes if protocol == "tcp" else qps,
                float(m.edge_err[copy, k]), float(m.edge_mtls[copy, k]),
                float(m.edge_p95_ms[copy, k]), req_bytes))
        workloads = [WorkloadUsage(n, int(m.replicas[copy, i]),
                                   float(m.cpu_m[copy, i] / max(m.replicas[copy, i], 1)),
                                   float(m.mem_mi[copy, i] / max(m.replicas[copy, i], 1)))
                     for i, n in enumerate(names) if m.replicas[copy, i] > 0]
        return cls(namespace, edges, workloads)


def pod_names(workload: str, pods: int) -> list[str]:
    """Deployment-style pod names: ``<workload>-<10-char template hash>-<5-char suffix>``."""
    h = hashlib.sha1(workload.encode()).hexdigest()
    return [f"{workload}-{h[:10]}-{hashlib.sha1(f'{workload}{i}'.encode()).hexdigest()[:5]}"
            for i in range(pods)]


def lognormal_cdf(x_ms: float, p95_ms: float) -> float:
    """P(latency <= x) for the log-normal with 95th percentile `p95_ms`."""
    if x_ms <= 0 or p95_ms <= 0:
        return 0.0 if x_ms <= 0 else 1.0
    mu = math.log(p95_ms) - _Z95 * LATENCY_SIGMA
    return NormalDist().cdf((math.log(x_ms) - mu) / LATENCY_SIGMA)


class _Counters:
    """Cumulative counts per edge and per pod, advanced by rate x dt."""

    def __init__(self) -> None:
        self.requests: dict[tuple[Any, ...], float] = {}
        self.cpu_s: dict[tuple[str, str], float] = {}

    def add(self, store: dict[Any, float], key: Any, value: float) -> None:
        store[key] = store.get(key, 0.0) + value


class IstioExporter:
    """Serves ``/metrics`` for `model` on 127.0.0.1 (port 0 = a free port)."""

    def __init__(self, model: TrafficModel, port: int = 0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.model = model
        self.clock = clock
        self._counts = _Counters()
        self._last: float | None = None
        self._lock = threading.Lock()
        self._port = port
        self._server: LoopbackServer | None = None
        self.scrapes = 0

    # ----------------------------------------------------------------- counters
    def advance(self) -> None:
        """Grow every counter by its current rate times the time since the last call."""
        now = self.clock()
        dt = 0.0 if self._last is None else max(now - self._last, 0.0)
        self._last = now
        c = self._counts
        for e in self.model.edges:
            c.add(c.requests, ("e", e.source, e.target, e.protocol), e.rps * dt)
        for w in self.model.workloads:
            for pod in pod_names(w.workload, w.pods):
                c.add(c.cpu_s, (w.workload, pod), w.cpu_m_per_pod / 1000.0 * dt)

    def set_model(self, model: TrafficModel) -> None:
        """Switch to new rates; counters keep growing from where the old rates left them."""
        with self._lock:
            self.advance()
            self.model = model

    def render(self) -> bytes:
        """The exposition text (advances the counters first)."""
        with self._lock:
            self.advance()
            self.scrapes += 1
            registry = CollectorRegistry()
            registry.register(_ModelCollector(self))
            return generate_latest(registry)

    # ----------------------------------------------------------------- serving
    def start(self) -> IstioExporter:
        exporter = self

        class ExporterHandler(http.server.BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                if self.path.split("?")[0] != "/metrics":
                    self.send_error(404)
                    return
                body = exporter.render()
                self.send_response(200)
                self.send_header("Content-Type", CONTENT_TYPE_LATEST)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self._server = LoopbackServer(ExporterHandler, self._port, name="IstioExporter").start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None

    def __enter__(self) -> IstioExporter:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def address(self) -> str:
        """host:port to put in a Prometheus scrape config."""
        if self._server is None:
            raise RuntimeError("IstioExporter is not started")
        return f"127.0.0.1:{self._server.server_address[1]}"

    @property
    def url(self) -> str:
        return f"http://{self.address}/metrics"


_EDGE_LABELS = ("reporter", "source_workload", "source_workload_namespace",
                "source_canonical_service", "destination_workload",
                "destination_workload_namespace", "destination_service_name",
                "destination_canonical_service", "request_protocol", "response_code",
                "grpc_response_status", "response_flags", "connection_security_policy")


class _ModelCollector:
    """Builds the metric families of one scrape from the exporter's counters."""

    def __init__(self, exporter: IstioExporter) -> None:
        self.x = exporter

    def _edge_splits(self, e: EdgeTraffic, total: float
                     ) -> Iterator[tuple[list[str], float]]:
        """(labels without reporter, count) for ok/error x mtls/plaintext."""
        ns = self.x.model.namespace
        src_ns = e.source_namespace or ns
        for failed, share in ((False, 1.0 - e.err_rate), (True, e.err_rate)):
            if e.protocol == "grpc":
                code, grpc_status = "200", ("14" if failed else "0")
            else:
                code, grpc_status = ("503" if failed else "200"), ""
            for policy, pshare in (("mutual_tls", e.mtls), ("none", 1.0 - e.mtls)):
                labels = [e.source, src_ns, e.source, e.target, ns, e.target, e.target,
                          e.protocol, code, grpc_status, "UF" if failed else "-", policy]
                yield labels, total * share * pshare

    def collect(self) -> Iterable[Any]:
        counts = self.x._counts.requests
        requests = CounterMetricFamily("istio_requests_total", "Requests (Istio standard).",
                                       labels=_EDGE_LABELS)
        duration = HistogramMetricFamily("istio_request_duration_milliseconds",
                                         "Request duration, ms.", labels=_EDGE_LABELS)
        req_bytes = HistogramMetricFamily("istio_request_bytes", "Request size, bytes.",
                                          labels=_EDGE_LABELS)
        tcp_labels = ("reporter", "source_workload", "source_workload_namespace",
                      "destination_workload", "destination_workload_namespace",
                      "destination_service_name", "connection_security_policy")
        tcp_sent = CounterMetricFamily("istio_tcp_sent_bytes_total", "TCP bytes sent.",
                                       labels=tcp_labels)
        tcp_recv = CounterMetricFamily("istio_tcp_received_bytes_total",
                                       "TCP bytes received.", labels=tcp_labels)
        ns = self.x.model.namespace
        for e in self.x.model.edges:
            total = counts.get(("e", e.source, e.target, e.protocol), 0.0)
            for reporter in ("source", "destination"):
                if e.protocol == "tcp":
                    for policy, share in (("mutual_tls", e.mtls), ("none", 1.0 - e.mtls)):
                        if share <= 0:
                            continue
                        labels = [reporter, e.source, e.source_namespace or ns, e.target, ns,
                                  e.target, policy]
                        tcp_recv.add_metric(labels, total * share)
                        tcp_sent.add_metric(labels, total * share * 0.2)  # replies
                    continue
                for labels, n in self._edge_splits(e, total):
                    if n <= 0:       # Istio creates a series at its first request only
                        continue
                    full = [reporter, *labels]
                    requests.add_metric(full, n)
                    buckets = [(f"{le:g}", n * lognormal_cdf(le, e.p95_ms))
                               for le in ISTIO_DURATION_BUCKETS_MS]
                    mean_ms = e.p95_ms * math.exp(-_Z95 * LATENCY_SIGMA + LATENCY_SIGMA**2 / 2)
                    duration.add_metric(full, [*buckets, ("+Inf", n)], n * mean_ms)
                    size = [(f"{le:g}", n if e.req_bytes <= le else 0.0) for le in _BYTES_BUCKETS]
                    req_bytes.add_metric(full, [*size, ("+Inf", n)], n * e.req_bytes)
        yield from (requests, duration, req_bytes, tcp_sent, tcp_recv)
        yield from self._cadvisor()

    def _cadvisor(self) -> Iterable[Any]:
        ns = self.x.model.namespace
        labels = ("namespace", "pod", "container")
        cpu = CounterMetricFamily("container_cpu_usage_seconds_total", "CPU seconds (cAdvisor).",
                                  labels=labels)
        mem = GaugeMetricFamily("container_memory_working_set_bytes", "Working set (cAdvisor).",
                                labels=labels)
        for w in self.x.model.workloads:
            for pod in pod_names(w.workload, w.pods):
                seconds = self.x._counts.cpu_s.get((w.workload, pod), 0.0)
                app_mem = w.mem_mi_per_pod * 2**20
                cpu.add_metric([ns, pod, "server"], seconds)
                cpu.add_metric([ns, pod, "istio-proxy"], seconds * 0.3)   # sidecar: excluded
                cpu.add_metric([ns, pod, ""], seconds * 1.3)              # pod cgroup total
                mem.add_metric([ns, pod, "server"], app_mem)
                mem.add_metric([ns, pod, "istio-proxy"], 40 * 2**20)
                mem.add_metric([ns, pod, ""], app_mem + 40 * 2**20)
        yield cpu
        yield mem
