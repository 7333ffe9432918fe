"""The schema-v2 fields of the scaler's view of a cluster, from fake Kubernetes and Kiali
answers: CPU limit per pod, start-up time, unserved share, end-to-end p95."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from scaler_support import NS, config

from gnnrl.scaler.kube import KubeCluster
from gnnrl.scaler.observe import ClusterState, cluster_view
from gnnrl.sources.kiali import KialiClient
from gnnrl.testing.kiali_fake import FakeKiali

OB = "onlineboutique"
FIXTURE = Path(__file__).parent / "fixtures" / "kiali" / "onlineboutique_workload_graph.json"
#: the OnlineBoutique services a scaler would own (loadgenerator is a client, not scaled)
OB_SERVICES = ("frontend", "cartservice", "productcatalogservice", "currencyservice",
               "paymentservice", "shippingservice", "emailservice", "checkoutservice",
               "recommendationservice", "adservice", "redis-cart")


def read(kube, name: str):
    cluster = KubeCluster(kube.api_client(), NS, 2.0)
    return cluster.read_service(cluster.read_scale(name))


def view_of(services: dict, graph=None, owned=("cartservice", "frontend")):
    """The view of the read `services` and `graph`, the scaler owning `owned`."""
    cfg = config({n: (1, 10) for n in owned})
    return cluster_view(ClusterState(services, graph), cfg)


# ------------------------------------------------------------------ CPU limit
@pytest.mark.parametrize(("cpu_limit", "sidecar", "expected_m"), [
    ("200m", True, 2200.0),   # server 200m + istio-proxy 2000m: the pod's limit is the sum
    ("1", False, 1000.0),
    (None, True, 0.0),        # one container without a limit: the pod is not capped
    (None, False, 0.0),
])
def test_cpu_limit_is_the_sum_of_the_pods_containers_and_0_means_no_limit(
        kube, cpu_limit, sidecar, expected_m):
    kube.add_deployment("cartservice", NS, 2, cpu_limit=cpu_limit, sidecar=sidecar)
    svc = read(kube, "cartservice")
    assert svc.cpu_limit_m == expected_m
    assert view_of({"cartservice": svc}).cpu_limit_m.tolist() == [expected_m]


# ------------------------------------------------------------------ start-up time
def test_start_up_time_is_measured_from_creation_to_ready(kube):
    kube.add_deployment("cartservice", NS, 2)
    kube.set_startup("cartservice", NS, 12)
    svc = read(kube, "cartservice")
    assert svc.startup_s == 12.0
    assert view_of({"cartservice": svc}).startup_s.tolist() == [12.0]


def test_start_up_time_is_the_median_over_the_ready_pods_only(kube):
    kube.add_deployment("cartservice", NS, 4, ready_replicas=3)
    kube.set_startup("cartservice", NS, [10, 40, 12, 5])   # the 4th pod is not Ready
    assert read(kube, "cartservice").startup_s == 12.0


@pytest.mark.parametrize(("own_startup_s", "expected_s"), [(None, 45.0), (25.0, 25.0)])
def test_no_ready_pod_falls_back_to_the_services_or_the_default_start_up_time(
        kube, own_startup_s, expected_s):
    kube.add_deployment("cartservice", NS, 2, ready_replicas=0)
    svc = read(kube, "cartservice")
    assert svc.startup_s is None
    limits = {"min_replicas": 1, "max_replicas": 10}
    if own_startup_s is not None:
        limits["startup_s"] = own_startup_s
    cfg = config({}, startup_s_default=45.0).replace(services={"cartservice": limits})
    view = cluster_view(ClusterState({"cartservice": svc}, None), cfg)
    assert view.startup_s.tolist() == [expected_s]


# ------------------------------------------------------------------ unserved and e2e p95
def kiali_graph(payload: dict, namespace: str):
    """The graph as the scaler fetches it: the fake Kiali answering `payload` through
    `KialiClient`."""
    with FakeKiali(prefix="/kiali") as fake:
        fake.set_graph(namespace, payload)
        client = KialiClient(fake.url, retries=0)
        return client.snapshot(namespace, duration_s=60)


def shop_payload(gateway_err_pct: str = "8.0") -> dict:
    """Kiali's workload graph (graph/config/common/common.go) of a 2-service shop behind
    the Istio ingress gateway."""
    def node(i, name, ns=NS, **flags):
        return {"data": {"id": i, "nodeType": "workload", "namespace": ns, "workload": name,
                         "app": name, **flags}}

    def edge(i, src, dst, protocol, rate, err_pct, p95):
        return {"data": {"id": i, "source": src, "target": dst, "responseTime": p95,
                         "traffic": {"protocol": protocol, "rates": {
                             protocol: rate, f"{protocol}PercentErr": err_pct}}}}

    return {"timestamp": 1767225600, "graphType": "workload", "elements": {
        "nodes": [node("gw", "istio-ingressgateway", "istio-system",
                       isGateway={"ingressInfo": {"hostnames": ["*"]}}, isOutside=True),
                  node("fe", "frontend"), node("cart", "cartservice")],
        "edges": [edge("e1", "gw", "fe", "http", "50.00", gateway_err_pct, "120"),
                  edge("e2", "fe", "cart", "grpc", "30.00", "0.0", "20")]}}


def test_the_entrys_unserved_share_is_the_ingress_edges_error_rate():
    graph = kiali_graph(shop_payload(gateway_err_pct="8.0"), NS)
    view = view_of({}, graph)
    unserved = dict(zip(view.services, view.unserved.tolist(), strict=True))
    assert unserved == {"cartservice": 0.0, "frontend": pytest.approx(0.08)}


def test_e2e_p95_comes_from_the_ingress_edge_not_from_calls_inside_the_app():
    view = view_of({}, kiali_graph(shop_payload(), NS))
    assert view.e2e_p95_ms == 120.0          # gateway -> frontend, not frontend -> cartservice


def test_every_caller_from_outside_counts_for_the_entry_in_a_real_kiali_answer():
    """OnlineBoutique's frontend is called by the ingress gateway (100 req/s, no errors,
    p95 48 ms), a caller without telemetry (20 req/s, 5 %, 52 ms) and the load generator
    (30 req/s, 2 %, 45 ms), none of them scaled."""
    payload = json.loads(FIXTURE.read_text())
    graph = kiali_graph(payload, OB)
    cfg = config({n: (1, 10) for n in OB_SERVICES}, namespace=OB)
    view = cluster_view(ClusterState({}, graph), cfg)
    front = view.services.index("frontend")
    assert view.unserved[front] == pytest.approx((0.05 * 20 + 0.02 * 30) / 150)
    assert view.e2e_p95_ms == 52.0           # the slowest of the callers' p95s


def test_a_service_only_the_graph_shows_has_an_unknown_cpu_limit(kube):
    kube.add_deployment("cartservice", NS, 1)
    view = view_of({"cartservice": read(kube, "cartservice")}, kiali_graph(shop_payload(), NS))
    limits = dict(zip(view.services, view.cpu_limit_m.tolist(), strict=True))
    assert limits["cartservice"] == 2200.0 and math.isnan(limits["frontend"])


def test_without_a_graph_unserved_and_e2e_p95_are_unknown(kube):
    kube.add_deployment("cartservice", NS, 1)
    view = view_of({"cartservice": read(kube, "cartservice")})
    assert math.isnan(view.unserved[0]) and math.isnan(view.e2e_p95_ms)
