"""The HTTP-level fake Kubernetes API behaves like kube-apiserver for the official client."""

from __future__ import annotations

import pytest
import urllib3
from kubernetes import client
from kubernetes.client.rest import ApiException

from gnnrl.testing.k8s_fake import Fault


@pytest.fixture
def kube(kube):
    kube.add_deployment("cartservice", namespace="shop", replicas=2)
    kube.add_deployment("frontend", namespace="shop", replicas=1, ready_replicas=0)
    return kube


def test_scale_patch_through_the_official_client_changes_replicas_and_pods(kube):
    apps = client.AppsV1Api(kube.api_client())
    scale = apps.read_namespaced_deployment_scale("cartservice", "shop")
    assert scale.spec.replicas == 2 and scale.status.selector == "app=cartservice"
    apps.patch_namespaced_deployment_scale("cartservice", "shop", {"spec": {"replicas": 4}})
    assert kube.replicas("cartservice", "shop") == 4
    core = client.CoreV1Api(kube.api_client())
    pods = core.list_namespaced_pod("shop", label_selector="app=cartservice").items
    assert len(pods) == 4
    assert kube.scale_writes() == [("shop", "cartservice", 4)]


def test_json_patch_on_scale_is_applied(kube):
    apps = client.AppsV1Api(kube.api_client())
    apps.patch_namespaced_deployment_scale(
        "cartservice", "shop", [{"op": "replace", "path": "/spec/replicas", "value": 3}])
    assert kube.replicas("cartservice", "shop") == 3
    assert kube.scale_writes() == [("shop", "cartservice", 3)]


def test_stale_resource_version_answers_409_and_changes_nothing(kube):
    apps = client.AppsV1Api(kube.api_client())
    scale = apps.read_namespaced_deployment_scale("cartservice", "shop")
    apps.patch_namespaced_deployment_scale("cartservice", "shop", {"spec": {"replicas": 3}})
    scale.spec.replicas = 5
    with pytest.raises(ApiException) as err:
        apps.replace_namespaced_deployment_scale("cartservice", "shop", scale)
    assert err.value.status == 409
    assert kube.replicas("cartservice", "shop") == 3


@pytest.mark.parametrize("status", [403, 404, 409, 500, 503])
def test_injected_status_reaches_the_client_and_is_not_applied(kube, status):
    kube.inject(Fault(status=status, method="PATCH", path=r"/scale$"))
    apps = client.AppsV1Api(kube.api_client())
    with pytest.raises(ApiException) as err:
        apps.patch_namespaced_deployment_scale("cartservice", "shop", {"spec": {"replicas": 9}})
    assert err.value.status == status
    assert kube.replicas("cartservice", "shop") == 2
    # the fault was used up: the next write goes through
    apps.patch_namespaced_deployment_scale("cartservice", "shop", {"spec": {"replicas": 9}})
    assert kube.replicas("cartservice", "shop") == 9


def test_429_carries_retry_after(kube):
    kube.inject(status=429, retry_after_s=7, path="/scale")
    apps = client.AppsV1Api(kube.api_client())
    with pytest.raises(ApiException) as err:
        apps.read_namespaced_deployment_scale("cartservice", "shop")
    assert err.value.status == 429
    assert err.value.headers["Retry-After"] == "7"


def test_delay_longer_than_client_timeout_is_a_timeout(kube):
    kube.inject(status=None, delay_s=0.5, method="GET")
    apps = client.AppsV1Api(kube.api_client())
    with pytest.raises(urllib3.exceptions.ReadTimeoutError):
        # the client only honours an int or a (connect, read) tuple, not a float
        apps.read_namespaced_deployment("cartservice", "shop", _request_timeout=(0.1, 0.1))


def test_pod_metrics_are_served_as_metrics_server_quantities(kube):
    kube.set_usage("cartservice", "shop", cpu_m_per_pod=120, mem_mi_per_pod=80)
    custom = client.CustomObjectsApi(kube.api_client())
    got = custom.list_namespaced_custom_object("metrics.k8s.io", "v1beta1", "shop", "pods")
    items = got["items"]
    assert len(items) == 2        # frontend has no usage yet: metrics-server has no sample
    server = next(c for c in items[0]["containers"] if c["name"] == "server")
    assert server["usage"] == {"cpu": "120000000n", "memory": "81920Ki"}


def test_not_ready_pods_are_reported_not_ready(kube):
    core = client.CoreV1Api(kube.api_client())
    pods = core.list_namespaced_pod("shop", label_selector="app=frontend").items
    assert [c.status for p in pods for c in p.status.conditions] == ["False"]


def test_lease_create_conflict_and_update(kube):
    coord = client.CoordinationV1Api(kube.api_client())
    body = {"metadata": {"name": "gnnrl-scaler"}, "spec": {"holderIdentity": "a"}}
    created = coord.create_namespaced_lease("shop", body)
    with pytest.raises(ApiException) as err:
        coord.create_namespaced_lease("shop", body)
    assert err.value.status == 409
    created.spec.holder_identity = "b"
    coord.replace_namespaced_lease("gnnrl-scaler", "shop", created)
    assert kube.lease("gnnrl-scaler", "shop")["spec"]["holderIdentity"] == "b"
    with pytest.raises(ApiException) as err:   # created's resourceVersion is now stale
        coord.replace_namespaced_lease("gnnrl-scaler", "shop", created)
    assert err.value.status == 409


def test_events_are_recorded(kube):
    core = client.CoreV1Api(kube.api_client())
    core.create_namespaced_event("shop", {
        "metadata": {"generateName": "gnnrl."}, "reason": "ScaledUp", "message": "2 -> 3",
        "involvedObject": {"kind": "Deployment", "name": "cartservice", "namespace": "shop"}})
    assert [e["reason"] for e in kube.events] == ["ScaledUp"]


def test_unknown_deployment_is_404(kube):
    apps = client.AppsV1Api(kube.api_client())
    with pytest.raises(ApiException) as err:
        apps.read_namespaced_deployment_scale("nope", "shop")
    assert err.value.status == 404
