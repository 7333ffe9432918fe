"""Kubernetes source against the HTTP-level fake API: replicas, usage, requests, errors."""

from __future__ import annotations

import math

import pytest

from gnnrl.config import ConfigError
from gnnrl.kube.errors import (
    K8sConflict,
    K8sForbidden,
    K8sNotFound,
    K8sTooManyRequests,
    K8sUnavailable,
)
from gnnrl.sources.kubernetes import DEPLOYMENT_COLUMNS, KubernetesSource
from gnnrl.kube.quantities import QuantityError
from gnnrl.testing.k8s_fake import Fault

NS = "shop"


@pytest.fixture
def kube(kube):
    kube.add_deployment("frontend", NS, 3, ready_replicas=2,
                        annotations={"gnnrl.io/min-replicas": "1",
                                     "gnnrl.io/max-replicas": "10"})
    kube.add_deployment("cartservice", NS, 2, cpu_request="0.2", mem_request="1Gi",
                        cpu_limit=None)
    kube.add_deployment("other-namespace", "elsewhere", 1)
    return kube


def source(kube, **kw) -> KubernetesSource:
    return KubernetesSource(kube.api_client(), namespace=NS, request_timeout_s=2.0, **kw)


def row(df, name):
    return df[df.service == name].iloc[0]


def test_deployments_report_replicas_requests_and_annotated_bounds(kube):
    deps = source(kube).deployments()
    assert list(deps.columns) == list(DEPLOYMENT_COLUMNS)
    assert list(deps.service) == ["cartservice", "frontend"]
    front = row(deps, "frontend")
    assert (front.desired_replicas, front.replicas, front.ready_replicas) == (3, 3, 2)
    assert (front.cpu_request_m, front.mem_request_mi, front.cpu_limit_m) == (100, 64, 200)
    assert (front.min_replicas, front.max_replicas) == (1, 10)
    cart = row(deps, "cartservice")
    assert (cart.cpu_request_m, cart.mem_request_mi) == (200, 1024)   # "0.2" and "1Gi"
    assert math.isnan(cart.cpu_limit_m) and math.isnan(cart.min_replicas)


def test_usage_sums_application_containers_of_each_deployments_pods(kube):
    kube.set_usage("frontend", NS, cpu_m_per_pod=150, mem_mi_per_pod=100,
                   sidecar_cpu_m=20, sidecar_mem_mi=50)
    kube.set_usage("cartservice", NS, cpu_m_per_pod=40.5, mem_mi_per_pod=300)
    snap = source(kube).snapshot(NS, ts="2026-01-01T00:00:00")
    front = row(snap.nodes, "frontend")
    assert (front.replicas, front.ready_replicas) == (3, 2)
    assert front.cpu_m == pytest.approx(450) and front.mem_mi == pytest.approx(300)
    assert row(snap.nodes, "cartservice").cpu_m == pytest.approx(81)
    assert snap.edges.empty and math.isnan(front.rps_in)
    assert snap.skipped == {} and str(snap.ts.tz) == "UTC"


def test_sidecar_is_counted_when_asked(kube):
    kube.set_usage("frontend", NS, cpu_m_per_pod=150, mem_mi_per_pod=100, sidecar_cpu_m=20)
    snap = source(kube, sidecar_containers=()).snapshot()
    assert row(snap.nodes, "frontend").cpu_m == pytest.approx(3 * 170)


def test_pods_without_metrics_are_counted_and_usage_is_nan_not_zero(kube):
    kube.set_usage("frontend", NS, cpu_m_per_pod=150, mem_mi_per_pod=100)
    snap = source(kube).snapshot()
    assert math.isnan(row(snap.nodes, "cartservice").cpu_m)
    assert snap.skipped == {"pods_without_metrics": 2}


@pytest.mark.parametrize("status", [404, 503, 403])
def test_missing_metrics_api_leaves_usage_unknown_but_keeps_replicas(kube, status):
    kube.inject(Fault(status=status, path="metrics.k8s.io"))
    snap = source(kube).snapshot()
    assert snap.nodes.cpu_m.isna().all() and list(snap.nodes.replicas) == [2, 3]
    assert snap.skipped == {"metrics_unavailable": 1}


def test_metrics_server_quantities_with_odd_suffixes_parse(kube):
    pod = kube.pods(NS)[0]["metadata"]["name"]     # a cartservice pod
    kube.set_pod_usage(pod, NS, {"server": {"cpu": "1.5e-1", "memory": "1Gi"}})
    snap = source(kube).snapshot()
    cart = row(snap.nodes, "cartservice")
    assert (cart.cpu_m, cart.mem_mi) == (pytest.approx(150), pytest.approx(1024))


@pytest.mark.parametrize(("status", "error"), [
    (409, K8sConflict), (403, K8sForbidden), (401, K8sForbidden), (404, K8sNotFound),
    (500, K8sUnavailable), (503, K8sUnavailable),
])
def test_api_errors_are_typed_by_status(kube, status, error):
    kube.inject(Fault(status=status, path="/deployments$"))
    with pytest.raises(error) as err:
        source(kube).deployments()
    assert err.value.status == status


def test_429_carries_retry_after_seconds(kube):
    kube.inject(Fault(status=429, retry_after_s=7, path="/deployments$"))
    with pytest.raises(K8sTooManyRequests) as err:
        source(kube).deployments()
    assert err.value.retry_after_s == 7 and err.value.retryable


def test_timeout_is_unavailable(kube):
    kube.inject(Fault(status=None, delay_s=0.6, path="/deployments$"))
    with pytest.raises(K8sUnavailable):
        KubernetesSource(kube.api_client(), namespace=NS, request_timeout_s=0.2).deployments()


def test_bad_request_quantity_names_the_container(kube):
    kube.add_deployment("broken", NS, 1, cpu_request="lots")
    with pytest.raises(QuantityError, match=r"broken.*server.*lots"):
        source(kube).deployments()


def test_snapshot_of_another_namespace_is_refused(kube):
    with pytest.raises(ConfigError, match="namespace"):
        source(kube).snapshot("elsewhere")
