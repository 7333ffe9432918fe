"""The Kubernetes API calls GNNRL makes, through the official client (`kubernetes` 30.1.0).

`call_api` turns every failure of one call into a typed `gnnrl.kube.errors.K8sError`;
`KubeClient` holds the calls of one namespace with one per-request timeout:

* ``apps/v1`` Deployments (list) and their ``scale`` subresource: `read_scale` gives
  spec.replicas, the ``resourceVersion`` and status.selector; `write_scale` patches
  spec.replicas *with the resourceVersion it read*, so a concurrent change answers 409
  (`K8sConflict`) instead of being overwritten (optimistic concurrency,
  https://kubernetes.io/docs/reference/using-api/api-concepts/#resource-versions;
  https://kubernetes.io/docs/reference/kubernetes-api/workload-resources/deployment-v1/);
* ``core/v1`` Pods (list, optionally by label selector);
* ``metrics.k8s.io/v1beta1`` PodMetrics of metrics-server
  (https://github.com/kubernetes-sigs/metrics-server), through `CustomObjectsApi`.

Retry policy is the caller's (the scaler's `apply`, the env backend): this module makes one
attempt per call.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import kubernetes
import urllib3

from gnnrl.kube.errors import K8sUnavailable, error_from_api_exception

T = TypeVar("T")

#: metrics.k8s.io resource of metrics-server
METRICS_GROUP, METRICS_VERSION = "metrics.k8s.io", "v1beta1"


def load_api_client(kubeconfig: str | None = None, context: str | None = None,
                    in_cluster: bool | None = None) -> kubernetes.client.ApiClient:
    """An `ApiClient` from the pod's ServiceAccount (in a cluster) or a kubeconfig.

    `in_cluster=None` tries the ServiceAccount first, then the kubeconfig.
    """
    from kubernetes import config as k8s_config

    configuration = kubernetes.client.Configuration()
    if in_cluster or in_cluster is None:
        try:
            k8s_config.load_incluster_config(client_configuration=configuration)
            return kubernetes.client.ApiClient(configuration)
        except k8s_config.ConfigException:
            if in_cluster:
                raise
    k8s_config.load_kube_config(config_file=kubeconfig, context=context,
                                client_configuration=configuration)
    return kubernetes.client.ApiClient(configuration)


def call_api(what: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Call the official client and turn its failures into typed `K8sError`s naming `what`
    (HTTP statuses by `error_from_api_exception`; timeouts and refused connections are
    `K8sUnavailable`)."""
    try:
        return fn(*args, **kwargs)
    except kubernetes.client.ApiException as exc:
        raise error_from_api_exception(exc, what) from exc
    except (urllib3.exceptions.HTTPError, OSError) as exc:
        raise K8sUnavailable(f"{what}: {type(exc).__name__}: {exc}") from exc


def selector_matches(selector: Any, labels: Mapping[str, str]) -> bool:
    """A `V1LabelSelector` (matchLabels + matchExpressions) against a pod's labels
    (https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/)."""
    if selector is None:
        return False
    for key, value in (selector.match_labels or {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.match_expressions or []:
        present, value = expr.key in labels, labels.get(expr.key)
        values = expr.values or []
        ok = {"In": present and value in values, "NotIn": not present or value not in values,
              "Exists": present, "DoesNotExist": not present}.get(expr.operator, False)
        if not ok:
            return False
    return True


@dataclasses.dataclass(frozen=True)
class ScaleState:
    """A Deployment's scale subresource: `replicas` = spec.replicas, and the
    `resource_version` to write against; `selector` is status.selector (the pods')."""

    name: str
    replicas: int
    resource_version: str
    selector: str


class KubeClient:
    """The API calls of one namespace (see the module docstring).

    Args:
        api_client: a configured `kubernetes.client.ApiClient` (`load_api_client`).
        namespace: the namespace of the Deployments.
        timeout_s: connect and read timeout of each call, seconds.
    """

    def __init__(self, api_client: kubernetes.client.ApiClient, namespace: str,
                 timeout_s: float = 10.0) -> None:
        self.api_client = api_client
        self.namespace = namespace
        # the client honours only an int or a (connect, read) tuple (rest.py), not a float
        self.timeout = (float(timeout_s), float(timeout_s))
        self.apps = kubernetes.client.AppsV1Api(api_client)
        self.core = kubernetes.client.CoreV1Api(api_client)
        self.custom = kubernetes.client.CustomObjectsApi(api_client)

    def list_deployments(self) -> list[Any]:
        """The namespace's `V1Deployment`s."""
        return call_api(f"list deployments in {self.namespace}",
                        self.apps.list_namespaced_deployment, self.namespace,
                        _request_timeout=self.timeout).items

    def list_pods(self, selector: str | None = None) -> list[Any]:
        """The namespace's `V1Pod`s, those matching the label `selector` when given."""
        kw = {} if selector is None else {"label_selector": selector}
        where = self.namespace + (f" ({selector})" if selector else "")
        return call_api(f"list pods in {where}", self.core.list_namespaced_pod,
                        self.namespace, _request_timeout=self.timeout, **kw).items

    def list_pod_metrics(self, selector: str | None = None) -> list[dict[str, Any]]:
        """metrics.k8s.io PodMetrics items (dicts: metadata, timestamp, window, containers
        with usage cpu/memory). Raises `K8sNotFound` when the metrics API is absent."""
        kw = {} if selector is None else {"label_selector": selector}
        out = call_api(f"list pod metrics in {self.namespace}",
                       self.custom.list_namespaced_custom_object, METRICS_GROUP,
                       METRICS_VERSION, self.namespace, "pods", _request_timeout=self.timeout,
                       **kw)
        return list((out or {}).get("items") or [])

    def read_scale(self, name: str) -> ScaleState:
        """GET .../deployments/{name}/scale. Raises a typed `K8sError`."""
        scale = call_api(f"read scale {self.namespace}/{name}",
                         self.apps.read_namespaced_deployment_scale, name, self.namespace,
                         _request_timeout=self.timeout)
        return ScaleState(name, int(scale.spec.replicas or 0),
                          str(scale.metadata.resource_version or ""),
                          str(scale.status.selector or f"app={name}"))

    def write_scale(self, scale: ScaleState, replicas: int) -> ScaleState:
        """PATCH .../deployments/{name}/scale to `replicas`, guarded by the read's
        resourceVersion (a changed object answers 409, `K8sConflict`; an empty version
        writes unconditionally). Returns the scale the server answered."""
        body: dict[str, Any] = {"spec": {"replicas": int(replicas)}}
        if scale.resource_version:
            body["metadata"] = {"resourceVersion": scale.resource_version}
        out = call_api(f"patch scale {self.namespace}/{scale.name}",
                       self.apps.patch_namespaced_deployment_scale, scale.name, self.namespace,
                       body, _request_timeout=self.timeout)
        return ScaleState(scale.name, int(out.spec.replicas or 0),
                          str(out.metadata.resource_version or ""), scale.selector)
