"""The real-cluster env backend against a fake Kiali and a fake Kubernetes API (HTTP-level).

No real API server runs in CI: `FakeKubernetes` answers the official client's requests.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gnnrl.core.envs.k8s_backend import K8sBackend
from gnnrl.sources.kiali import KialiClient
from gnnrl.sources.kubernetes import KubernetesSource
from gnnrl.testing.clock import TickingClock
from gnnrl.testing.k8s_fake import Fault

NS = "onlineboutique"
FIXTURE = Path(__file__).parent / "fixtures" / "kiali" / "onlineboutique_workload_graph.json"
SERVICES = ["adservice", "cartservice", "checkoutservice", "currencyservice", "emailservice",
            "frontend", "paymentservice", "productcatalogservice", "recommendationservice",
            "redis-cart", "shippingservice"]


def api_time() -> TickingClock:
    """A clock that only moves when the code under test sleeps or reads it (each reading: a
    quarter second of API time)."""
    return TickingClock(t=1000.0, tick_s=0.25)


@pytest.fixture
def cluster(kube, kiali):
    for name in [*SERVICES, "loadgenerator"]:
        kube.add_deployment(name, NS, 3 if name == "frontend" else 1)
        kube.set_usage(name, NS, cpu_m_per_pod=50, mem_mi_per_pod=40)
    kiali.set_graph(NS, json.loads(FIXTURE.read_text()))
    return kube, kiali


def backend(cluster, fake_time, **kw) -> K8sBackend:
    kube, kiali = cluster
    graph = KialiClient(kiali.url, retries=0, backoff_s=0, backoff_jitter_s=0)
    k8s_source = KubernetesSource(kube.api_client(), namespace=NS)
    return K8sBackend(NS, graph, k8s_source, waiting_period_s=30, clock=fake_time,
                      sleep=fake_time.sleep, **kw)


def test_observe_merges_kiali_traffic_with_kubernetes_replicas_and_usage(cluster):
    snap = backend(cluster, api_time(), known_services=SERVICES).observe()
    assert sorted(snap.services) == SERVICES
    front = snap.nodes.set_index("service").loc["frontend"]
    assert front.rps_in == pytest.approx(150)                    # from Kiali
    assert (front.replicas, front.ready_replicas) == (3, 3)      # from Kubernetes
    assert front.cpu_m == pytest.approx(150)                     # 3 pods x 50m
    assert snap.skipped["not_known"] == 2                        # loadgenerator twice
    # 15 edges between the services, and the calls into frontend from outside them
    inside = snap.edges.source.isin(SERVICES)
    assert inside.sum() == 15
    assert sorted(snap.edges.source[~inside]) == [
        "istio-ingressgateway.istio-system", "loadgenerator", "unknown"]
    assert snap.is_finite()


def test_observe_asks_kiali_for_the_configured_window(cluster):
    backend(cluster, api_time()).observe()
    assert cluster[1].requests[-1].params["duration"] == "60s"


def test_apply_writes_only_services_whose_replicas_change_then_waits(cluster):
    kube, _ = cluster
    t = api_time()
    out = backend(cluster, t).apply({"frontend": 3, "cartservice": 4})
    assert kube.scale_writes() == [(NS, "cartservice", 4)]
    assert (out["frontend"].status, out["cartservice"].status) == ("unchanged", "scaled")
    assert out["cartservice"].current == 1
    assert len(t.slept) == 1 and 29 < t.slept[0] < 30   # API time counts against the wait


def test_the_same_decision_twice_writes_nothing_the_second_time(cluster):
    kube, _ = cluster
    b = backend(cluster, api_time())
    b.apply({"cartservice": 2})
    b.apply({"cartservice": 2})
    assert kube.scale_writes() == [(NS, "cartservice", 2)]


def test_conflict_rereads_and_writes_once_more(cluster):
    kube, _ = cluster
    kube.inject(Fault(status=409, method="PATCH", path="cartservice/scale"))
    out = backend(cluster, api_time()).apply({"cartservice": 5})
    assert out["cartservice"].status == "scaled" and kube.replicas("cartservice", NS) == 5
    reads = [r for r in kube.requests if r.method == "GET" and r.path.endswith("/scale")]
    assert len(reads) == 2


def test_a_stale_write_is_refused_by_the_server_and_never_overwrites(cluster):
    kube, _ = cluster
    kube.inject(Fault(status=409, method="PATCH", times=-1))
    out = backend(cluster, api_time()).apply({"cartservice": 5})
    assert out["cartservice"].status == "error" and "K8sConflict" in out["cartservice"].error
    assert kube.replicas("cartservice", NS) == 1
    assert len([r for r in kube.requests if r.method == "PATCH"]) == 2   # no retry storm


def test_patch_carries_the_resource_version_it_read(cluster):
    kube, _ = cluster
    rv = kube.deployment("cartservice", NS)["metadata"]["resourceVersion"]
    backend(cluster, api_time()).apply({"cartservice": 2})
    patch = next(r for r in kube.requests if r.method == "PATCH")
    assert patch.body == {"spec": {"replicas": 2}, "metadata": {"resourceVersion": rv}}


def test_429_waits_retry_after_then_retries(cluster):
    kube, _ = cluster
    kube.inject(Fault(status=429, retry_after_s=7, method="PATCH"))
    t = api_time()
    out = backend(cluster, t).apply({"cartservice": 3})
    assert out["cartservice"].status == "scaled"
    assert t.slept[0] == 7                       # waited at least Retry-After
    assert kube.replicas("cartservice", NS) == 3


@pytest.mark.parametrize(("status", "error"), [(403, "K8sForbidden"), (500, "K8sUnavailable")])
def test_forbidden_or_server_error_is_reported_without_retry(cluster, status, error):
    kube, _ = cluster
    kube.inject(Fault(status=status, method="PATCH", times=-1))
    out = backend(cluster, api_time()).apply({"cartservice": 3, "frontend": 3})
    assert out["cartservice"].status == "error" and error in out["cartservice"].error
    assert out["frontend"].status == "unchanged"
    assert len([r for r in kube.requests if r.method == "PATCH"]) == 1


def test_unknown_deployment_is_an_error_outcome(cluster):
    out = backend(cluster, api_time()).apply({"nosuchservice": 2})
    assert out["nosuchservice"].status == "error" and "K8sNotFound" in out["nosuchservice"].error


@pytest.mark.parametrize("bad", [-1, 2.5, True, "3"])
def test_invalid_desired_replicas_are_refused_before_any_write(cluster, bad):
    kube, _ = cluster
    with pytest.raises(ValueError, match="cartservice"):
        backend(cluster, api_time()).apply({"frontend": 4, "cartservice": bad})
    assert kube.writes == []
