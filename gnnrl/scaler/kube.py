"""The only module of the scaler that talks to the Kubernetes API (reads and the one write).

`KubeCluster` reads a Deployment's `scale` subresource (spec.replicas, resourceVersion, the
pod selector), its pods and their metrics.k8s.io usage, and writes `spec.replicas` through
the scale subresource with the resourceVersion it read, so a concurrent change answers 409
instead of being overwritten (optimistic concurrency,
https://kubernetes.io/docs/reference/using-api/api-concepts/#resource-versions). Every
failure surfaces as a typed `gnnrl.sources.errors.K8s*` error; retry policy lives in
`gnnrl.scaler.apply`, never here.
"""

from __future__ import annotations

import datetime as dt
import math
import re
import time
from collections.abc import Callable
from typing import Any

import kubernetes
import urllib3

from gnnrl.hpa.calculator import PodSample, cpu_sample_is_unready
from gnnrl.data.snapshot import GraphSnapshot
from gnnrl.scaler.observe import ScaleState, ServiceState
from gnnrl.sources.errors import K8sError, K8sNotFound, k8s_error_from_api_exception

#: metrics.k8s.io resource of metrics-server (https://github.com/kubernetes-sigs/metrics-server)
METRICS_GROUP, METRICS_VERSION = "metrics.k8s.io", "v1beta1"


def cpu_millicores(quantity: Any) -> float:
    """A Kubernetes CPU quantity ("250m", "0.5", "120000000n", 2) in millicores."""
    return float(kubernetes.utils.parse_quantity(str(quantity))) * 1000.0


def mem_mebibytes(quantity: Any) -> float:
    """A Kubernetes memory quantity ("80Mi", "81920Ki", "1G") in MiB."""
    return float(kubernetes.utils.parse_quantity(str(quantity))) / 2**20


def call_api(what: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Call the official client and turn any failure into a typed `K8sError` naming `what`."""
    try:
        return fn(*args, **kwargs)
    except kubernetes.client.ApiException as exc:
        raise k8s_error_from_api_exception(exc, what) from exc
    except (urllib3.exceptions.HTTPError, OSError) as exc:  # timeouts, refused connections
        raise k8s_error_from_api_exception(exc, what) from exc


class KubeCluster:
    """Reads and writes one namespace through the official client.

    Args:
        api_client: a configured `kubernetes.client.ApiClient` (in-cluster or a kubeconfig).
        namespace: the namespace of the Deployments.
        timeout_s: per-request timeout (connect, read), seconds.
        graph: the traffic graph (Kiali/Prometheus source) from a `time.monotonic()`
            deadline it must end by, or None when absent.
    """

    def __init__(self, api_client: kubernetes.client.ApiClient, namespace: str,
                 timeout_s: float = 5.0,
                 graph: Callable[[float], GraphSnapshot | None] | None = None) -> None:
        self.namespace = namespace
        self.timeout = (timeout_s, timeout_s)
        self.apps = kubernetes.client.AppsV1Api(api_client)
        self.core = kubernetes.client.CoreV1Api(api_client)
        self.custom = kubernetes.client.CustomObjectsApi(api_client)
        self._graph = graph

    # ------------------------------------------------------------------ reads
    def deployment_names(self) -> list[str]:
        """Names of the namespace's Deployments (checked against the config at start, S18)."""
        out = call_api(f"list deployments {self.namespace}", self.apps.list_namespaced_deployment,
                    self.namespace, _request_timeout=self.timeout)
        return [d.metadata.name for d in out.items]

    def read_scale(self, name: str) -> ScaleState:
        """GET .../deployments/{name}/scale. Raises a typed K8sError."""
        scale = call_api(f"read scale {self.namespace}/{name}",
                      self.apps.read_namespaced_deployment_scale, name, self.namespace,
                      _request_timeout=self.timeout)
        return ScaleState(name, int(scale.spec.replicas or 0),
                          str(scale.metadata.resource_version or ""),
                          str(scale.status.selector or f"app={name}"))

    def read_service(self, scale: ScaleState) -> ServiceState:
        """The Deployment's pods with their CPU request and metrics.k8s.io usage.

        Grouped as the HPA's `groupPods` sees them: a Pending pod is `pending`; a pod
        metrics-server has no sample for has `usage_m=None` (missing, S6), whether it is
        Ready or not; a sample of a pod that is not Ready, or that is still in its CPU
        initialisation period with a sample older than a window since it became Ready, is
        `ready=False` (`cpu_sample_is_unready`). A pod with a container without a CPU
        request has `request_m=None` (the HPA rule then cannot compute); when the metrics
        API itself is absent (404) every pod is missing.
        """
        pods = call_api(f"list pods {self.namespace} {scale.selector}",
                     self.core.list_namespaced_pod, self.namespace,
                     label_selector=scale.selector, _request_timeout=self.timeout)
        try:
            metrics = call_api(f"list pod metrics {self.namespace}",
                            self.custom.list_namespaced_custom_object, METRICS_GROUP,
                            METRICS_VERSION, self.namespace, "pods",
                            label_selector=scale.selector, _request_timeout=self.timeout)
        except K8sNotFound:
            metrics = {"items": []}
        usage: dict[str, float] = {}
        memory: dict[str, float] = {}
        sampled: dict[str, tuple[float | None, float]] = {}  # name -> (timestamp, window s)
        for item in metrics.get("items", []):
            try:
                name = item["metadata"]["name"]
                containers = item.get("containers", [])
                cpu = sum(cpu_millicores(c["usage"]["cpu"]) for c in containers)
                sampled[name] = (_epoch(item.get("timestamp")),
                                 go_duration_s(item.get("window")))
                usage[name] = cpu
            except (KeyError, TypeError, ValueError, ArithmeticError):
                continue  # a malformed sample is a missing sample
            try:
                memory[name] = sum(mem_mebibytes(c["usage"]["memory"]) for c in containers)
            except (KeyError, TypeError, ValueError, ArithmeticError):
                pass  # memory is an observation feature only; the HPA rule needs CPU
        now = time.time()
        out = []
        for pod in pods.items:
            if pod.metadata.deletion_timestamp is not None or pod.status.phase in (
                    "Failed", "Succeeded"):
                continue
            request = _cpu_request_m(pod)
            name = pod.metadata.name
            pending = pod.status.phase == "Pending"
            cond = next((c for c in (pod.status.conditions or []) if c.type == "Ready"), None)
            unready = True
            if name in sampled and not pending:
                stamp, window = sampled[name]
                unready = cpu_sample_is_unready(
                    now, _epoch(pod.status.start_time),
                    None if cond is None else cond.status == "True",
                    None if cond is None else _epoch(cond.last_transition_time),
                    stamp, window)
            out.append(PodSample(request_m=request, usage_m=usage.get(name),
                                 ready=not unready, pending=pending))
        mem = [memory[p.metadata.name] for p in pods.items if p.metadata.name in memory]
        return ServiceState(scale, out, float(sum(mem)) if mem else math.nan)

    def graph(self, timeout_s: float) -> GraphSnapshot | None:
        """The traffic graph from the configured source, fetched within `timeout_s` seconds
        (None: no graph source)."""
        return self._graph(time.monotonic() + timeout_s) if self._graph is not None else None

    # ------------------------------------------------------------------ the write
    def write_scale(self, scale: ScaleState, replicas: int) -> ScaleState:
        """PATCH .../deployments/{name}/scale to `replicas`, guarded by the read's
        resourceVersion (a changed object answers 409, `K8sConflict`)."""
        body = {"metadata": {"resourceVersion": scale.resource_version},
                "spec": {"replicas": int(replicas)}}
        out = call_api(f"patch scale {self.namespace}/{scale.name}",
                    self.apps.patch_namespaced_deployment_scale, scale.name, self.namespace,
                    body, _request_timeout=self.timeout)
        return ScaleState(scale.name, int(out.spec.replicas or 0),
                          str(out.metadata.resource_version or ""), scale.selector)


_GO_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_GO_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def go_duration_s(text: Any) -> float:
    """A Go duration string as metrics.k8s.io writes `window` ("30s", "1m0s", "10.5s")
    in seconds; 0 when absent. Raises ValueError on anything else."""
    if text is None or text == "":
        return 0.0
    parts = _GO_DURATION.findall(str(text))
    if not parts or "".join(n + u for n, u in parts) != str(text):
        raise ValueError(f"not a duration: {text!r}")
    return sum(float(n) * _GO_UNITS[u] for n, u in parts)


def _cpu_request_m(pod: Any) -> float | None:
    """A pod's CPU request, millicores: the sum over its containers; None when one of them
    has none (calculatePodRequests: "missing request for cpu")."""
    total = 0.0
    for c in pod.spec.containers:
        req = (c.resources.requests or {}) if c.resources else {}
        if "cpu" not in req:
            return None
        total += cpu_millicores(req["cpu"])
    return total


def _epoch(value: Any) -> float | None:
    """A Kubernetes timestamp (datetime or RFC 3339 string) in seconds since the epoch."""
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        stamp = value
    else:
        stamp = dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=dt.UTC)
    return stamp.timestamp()


__all__ = ["K8sError", "KubeCluster", "ScaleState", "cpu_millicores", "mem_mebibytes"]
