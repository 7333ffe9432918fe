"""Prometheus source against a REAL Prometheus server (Debian package `prometheus`) scraping
our Istio/cAdvisor exporter, whose rates come from the simulator's steady state.

The server is started on a free loopback port with a 1 s scrape interval and a temporary
TSDB; a short run (~10 s) is in the default suite, a longer one (a load step) is `slow`.
"""

from __future__ import annotations

import math
import time

import pandas as pd
import pytest

from gnnrl.config import ConfigError
from gnnrl.sources.errors import (
    MalformedPayload,
    SourceError,
    SourceUnavailable,
    TooManyServices,
)
from gnnrl.testing.istio_exporter import (
    ISTIO_DURATION_BUCKETS_MS,
    EdgeTraffic,
    IstioExporter,
    TrafficModel,
    lognormal_cdf,
)
from gnnrl.sources.prometheus import PrometheusSource, build_snapshot, pod_workload
from gnnrl.testing.loopback import free_port
from gnnrl.testing.prometheus_fake import PROMETHEUS, CannedPrometheus, PrometheusServer
from gnnrl.testing.sim_driver import SimDriver

NS = "shop"
WINDOW_S = 5
needs_prometheus = pytest.mark.skipif(
    PROMETHEUS is None, reason="the `prometheus` binary is not installed "
                               "(apt-get install prometheus; .ci/run installs it)")
REPLICAS = {"frontend": 3, "productcatalogservice": 2, "currencyservice": 2}


def make_model(entry_rps: float = 40.0) -> TrafficModel:
    """The simulator's OnlineBoutique, plus what a mesh adds: a gateway and an unknown
    source calling the frontend, an edge with errors and half of its traffic in mTLS."""
    model = TrafficModel.from_sim("onlineboutique", entry_rps, namespace=NS, replicas=REPLICAS)
    for e in model.edges:
        if (e.source, e.target) == ("checkoutservice", "paymentservice"):
            e.err_rate, e.mtls = 0.1, 0.5
        if (e.source, e.target) == ("frontend", "adservice"):
            e.err_rate = 0.02
    model.edges += [
        EdgeTraffic("istio-ingressgateway", "frontend", "http", 12.0, p95_ms=40.0,
                    source_namespace="istio-system"),
        EdgeTraffic("unknown", "frontend", "http", 3.0, err_rate=0.5, mtls=0.0, p95_ms=30.0,
                    source_namespace="unknown"),
    ]
    return model


@pytest.fixture(scope="module")
def mesh(tmp_path_factory):
    if PROMETHEUS is None:
        pytest.skip("the `prometheus` binary is not installed")
    model = make_model()
    with IstioExporter(model) as exporter:
        server = PrometheusServer(tmp_path_factory.mktemp("prometheus"), exporter.address)
        try:
            server.wait_for_samples(WINDOW_S + 2)
            yield model, exporter, server
        finally:
            server.stop()


def source(url: str) -> PrometheusSource:
    return PrometheusSource(url, duration_s=WINDOW_S, scrape_interval_s=1.0, retries=1,
                            backoff_s=0.0, backoff_jitter_s=0.0, timeout_s=5.0)


def expected_quantile(p95_ms: float, q: float = 0.95) -> float:
    """What histogram_quantile computes on the exporter's buckets (linear interpolation)."""
    lower, cum_lower = 0.0, 0.0
    for le in ISTIO_DURATION_BUCKETS_MS:
        cum = lognormal_cdf(le, p95_ms)
        if cum >= q:
            return lower + (le - lower) * (q - cum_lower) / (cum - cum_lower)
        lower, cum_lower = le, cum
    return math.inf


@needs_prometheus
def test_prometheus_snapshot_recovers_the_simulated_mesh(mesh):
    model, _, server = mesh
    snap = source(server.url).snapshot(NS)
    got = {(r.source, r.target, r.protocol): r for r in snap.edges.itertuples()}

    def caller(e):  # calls from outside the namespace keep their edge, named for their origin
        if e.source_namespace is None:
            return e.source
        return "unknown" if e.source == "unknown" else f"{e.source}.{e.source_namespace}"

    assert set(got) == {(caller(e), e.target, e.protocol) for e in model.edges}
    for e in model.edges:
        row = got[(caller(e), e.target, e.protocol)]
        if e.protocol == "tcp":
            assert math.isnan(row.qps) and math.isnan(row.p95_ms)
            continue
        # rate() of counters that grow linearly: exact up to scrape-time jitter
        assert row.qps == pytest.approx(e.rps, rel=0.03), e
        assert row.err_rate == pytest.approx(e.err_rate, abs=0.005), e
        assert row.mtls == pytest.approx(e.mtls, abs=0.005), e
        assert row.p95_ms == pytest.approx(expected_quantile(e.p95_ms), rel=0.03), e


@needs_prometheus
def test_prometheus_nodes_have_usage_without_sidecar_and_entry_load_from_all_sources(mesh):
    model, _, server = mesh
    snap = source(server.url).snapshot(NS)
    nodes = snap.nodes.set_index("service")
    for w in model.workloads:
        assert nodes.loc[w.workload, "cpu_m"] == pytest.approx(w.pods * w.cpu_m_per_pod,
                                                               rel=0.03), w
        assert nodes.loc[w.workload, "mem_mi"] == pytest.approx(w.pods * w.mem_mi_per_pod), w
    entry = sum(e.rps for e in model.edges if e.target == "frontend")
    assert nodes.loc["frontend", "rps_in"] == pytest.approx(entry, rel=0.03)
    redis = next(e for e in model.edges if e.protocol == "tcp")
    assert nodes.loc["redis-cart", "rx_kbps"] == pytest.approx(redis.rps * 8 / 1000, rel=0.03)
    assert snap.skipped == {"gateway": 1, "unknown": 1}   # their calls in are edges
    assert nodes["replicas"].isna().all()       # Kubernetes' job


@needs_prometheus
def test_known_services_and_max_services_apply(mesh):
    _, _, server = mesh
    known = ["frontend", "cartservice", "redis-cart"]
    snap = source(server.url).snapshot(NS, known_services=known)
    assert sorted(snap.services) == sorted(known)
    assert snap.skipped["not_known"] >= 9
    with pytest.raises(TooManyServices):
        source(server.url).snapshot(NS, max_services=5)


@needs_prometheus
def test_prometheus_rejecting_a_query_is_a_source_error_quoting_it(mesh):
    _, _, server = mesh
    with pytest.raises(SourceError, match=r"sum by \(\(") as err:
        source(server.url).query("sum by ((")
    assert not isinstance(err.value, SourceUnavailable)


@needs_prometheus
@pytest.mark.slow
def test_prometheus_follows_a_load_step_of_the_simulator_in_real_time(tmp_path):
    change = 25                     # the step at which the entry load doubles
    trace = [30.0] * change + [60.0] * 200
    with IstioExporter(TrafficModel(NS, [], [])) as exporter:
        driver = SimDriver(exporter, trace, tick_s=1.0, replicas=REPLICAS).start()
        server = PrometheusServer(tmp_path, exporter.address)
        try:
            server.wait_for_samples(WINDOW_S + 2)
            assert driver.step_index < change
            before = source(server.url).snapshot(NS)
            while driver.step_index < change + WINDOW_S + 2:
                time.sleep(0.5)
            after = source(server.url).snapshot(NS)
        finally:
            driver.stop()
            server.stop()
    entry = lambda s: edge_qps(s, "loadgenerator", "frontend")  # noqa: E731
    assert entry(before) == pytest.approx(30.0, rel=0.05)
    assert entry(after) == pytest.approx(60.0, rel=0.05)


def edge_qps(snap, src, dst) -> float:
    rows = snap.edges[(snap.edges.source == src) & (snap.edges.target == dst)]
    return float(rows.qps.iloc[0])


def test_counters_keep_growing_across_simulator_steps():
    now = [0.0]
    exporter = IstioExporter(TrafficModel(NS, [], []), clock=lambda: now[0])
    driver = SimDriver(exporter, [10.0, 20.0, 40.0], tick_s=1.0)
    exporter.advance()
    for _ in range(3):
        driver.step()            # sets the step's rates, accumulating the previous ones
        now[0] += 2.0            # two seconds at that rate
    exporter.advance()
    total = exporter._counts.requests[("e", "loadgenerator", "frontend", "http")]
    assert total == pytest.approx(2 * 10 + 2 * 20 + 2 * 40)
    assert {w.workload for w in exporter.model.workloads} >= {"frontend", "redis-cart"}


# ------------------------------------------------------------------ without a server
def test_prometheus_down_is_source_unavailable():
    with pytest.raises(SourceUnavailable):
        PrometheusSource(f"http://127.0.0.1:{free_port()}", retries=0).snapshot(NS)


def test_window_shorter_than_scrape_interval_is_refused():
    with pytest.raises(ConfigError, match="duration_s"):
        PrometheusSource("http://prom:9090", duration_s=10, scrape_interval_s=15)


def test_namespace_is_validated_before_it_reaches_promql():
    with pytest.raises(ConfigError, match="namespace"):
        PrometheusSource("http://prom:9090").queries('x"} or vector(1) #', 60)


@pytest.mark.parametrize(("pod", "workload"), [
    ("frontend-7d9c8b6f5d-x2k4p", "frontend"),
    ("cart-service-v2-5f6d7c8b9-abcde", "cart-service-v2"),
    ("redis-cart-0", "redis-cart"),
    ("standalone", None),
])
def test_pods_are_grouped_to_workloads_by_kubernetes_naming(pod, workload):
    assert pod_workload(pod) == workload


def test_query_results_build_the_documented_defaults():
    m = {"source_workload": "a", "source_workload_namespace": NS, "destination_workload": "b",
         "destination_workload_namespace": NS, "request_protocol": "http"}
    results = {k: [] for k in ("errors", "mtls", "bytes", "tcp", "tcp_mtls", "cpu", "mem")}
    results |= {"qps": [(m, 10.0)], "p95": [(m, math.nan)]}
    snap = build_snapshot(results, NS, pd.Timestamp("2026-01-01", tz="UTC"))
    (row,) = snap.edges.itertuples()
    assert (row.qps, row.err_rate, row.mtls) == (10.0, 0.0, 0.0)
    assert math.isnan(row.p95_ms)                         # no histogram: unknown, not 0
    assert snap.nodes.cpu_m.isna().all()


@pytest.mark.parametrize(("body", "path"), [
    ({"status": "error", "error": "boom"}, "status"),
    ({"status": "success", "data": {"resultType": "matrix", "result": []}}, "data.resultType"),
    ({"status": "success", "data": {"resultType": "vector", "result": [{"metric": {},
                                                                         "value": [1, 2]}]}},
     "data.result[0].value"),
    ({"status": "success", "data": {"resultType": "vector",
                                    "result": [{"metric": {"a": 1}, "value": [1, "2"]}]}},
     "data.result[0].metric"),
])
def test_malformed_prometheus_answers_name_the_field(body, path):
    with CannedPrometheus(body) as canned, pytest.raises(MalformedPayload) as err:
        source(canned.url).query("up")
    assert err.value.path == path

