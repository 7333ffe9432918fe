"""The scaler's view of the Kubernetes API: one tick's reads and the one write.

`KubeCluster` reads a Deployment's `scale` subresource (spec.replicas, resourceVersion, the
pod selector), its pods and their metrics.k8s.io usage, and writes `spec.replicas` through
the scale subresource with the resourceVersion it read, so a concurrent change answers 409
instead of being overwritten. The calls, the quantity parsing and the typed errors are
`gnnrl.kube`'s (`KubeClient`, `gnnrl.kube.errors.K8s*`); retry policy lives in
`gnnrl.scaler.apply`, never here.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

import kubernetes

from gnnrl.data.snapshot import GraphSnapshot
from gnnrl.hpa.calculator import PodSample, cpu_sample_is_unready
from gnnrl.kube.client import KubeClient, ScaleState
from gnnrl.kube.errors import K8sError, K8sNotFound
from gnnrl.kube.pods import median_startup_s, pod_cpu_limit_m, pod_cpu_request_m
from gnnrl.kube.quantities import (
    QuantityError,
    cpu_millicores,
    go_duration_s,
    memory_mib,
    timestamp_s,
)
from gnnrl.scaler.observe import ServiceState


class KubeCluster:
    """Reads and writes one namespace through `gnnrl.kube.client.KubeClient`.

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
        self.kube = KubeClient(api_client, namespace, timeout_s)
        self._graph = graph

    # ------------------------------------------------------------------ reads
    def deployment_names(self) -> list[str]:
        """Names of the namespace's Deployments (checked against the config at start, S18)."""
        return [d.metadata.name for d in self.kube.list_deployments()]

    def read_scale(self, name: str) -> ScaleState:
        """GET .../deployments/{name}/scale. Raises a typed K8sError."""
        return self.kube.read_scale(name)

    def read_service(self, scale: ScaleState) -> ServiceState:
        """The Deployment's pods with their CPU request and limit, metrics.k8s.io usage and
        start-up time.

        Grouped as the HPA's `groupPods` sees them: a Pending pod is `pending`; a pod
        metrics-server has no sample for has `usage_m=None` (missing, S6), whether it is
        Ready or not; a sample of a pod that is not Ready, or that is still in its CPU
        initialisation period with a sample older than a window since it became Ready, is
        `ready=False` (`cpu_sample_is_unready`). A pod with a container without a CPU
        request has `request_m=None` (the HPA rule then cannot compute); when the metrics
        API itself is absent (404) every pod is missing. The service's CPU limit is its
        first pod's (`pod_cpu_limit_m`: 0 = no limit; NaN without pods), its start-up time
        the median over its Ready pods (`median_startup_s`; None when none is Ready).
        """
        pods = self.kube.list_pods(scale.selector)
        try:
            metrics = self.kube.list_pod_metrics(scale.selector)
        except K8sNotFound:
            metrics = []
        usage: dict[str, float] = {}
        memory: dict[str, float] = {}
        sampled: dict[str, tuple[float | None, float]] = {}  # name -> (timestamp, window s)
        for item in metrics:
            try:
                name = item["metadata"]["name"]
                containers = item.get("containers", [])
                cpu = sum(cpu_millicores(c["usage"]["cpu"]) for c in containers)
                sampled[name] = (timestamp_s(item.get("timestamp")),
                                 go_duration_s(item.get("window")))
                usage[name] = cpu
            except (KeyError, TypeError, ValueError, ArithmeticError):  # QuantityError too
                continue  # a malformed sample is a missing sample
            try:
                memory[name] = sum(memory_mib(c["usage"]["memory"]) for c in containers)
            except (KeyError, TypeError, ValueError, ArithmeticError):
                pass  # memory is an observation feature only; the HPA rule needs CPU
        now = time.time()
        out, live = [], []
        for pod in pods:
            if pod.metadata.deletion_timestamp is not None or pod.status.phase in (
                    "Failed", "Succeeded"):
                continue
            live.append(pod)
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
            out.append(PodSample(request_m=pod_cpu_request_m(pod), usage_m=usage.get(name),
                                 ready=not unready, pending=pending))
        mem = [memory[p.metadata.name] for p in pods if p.metadata.name in memory]
        return ServiceState(scale, out, float(sum(mem)) if mem else math.nan,
                            cpu_limit_m=pod_cpu_limit_m(live[0]) if live else math.nan,
                            startup_s=median_startup_s(live))

    def graph(self, timeout_s: float) -> GraphSnapshot | None:
        """The traffic graph from the configured source, fetched within `timeout_s` seconds
        (None: no graph source)."""
        return self._graph(time.monotonic() + timeout_s) if self._graph is not None else None

    # ------------------------------------------------------------------ the write
    def write_scale(self, scale: ScaleState, replicas: int) -> ScaleState:
        """PATCH .../deployments/{name}/scale to `replicas`, guarded by the read's
        resourceVersion (a changed object answers 409, `K8sConflict`)."""
        return self.kube.write_scale(scale, replicas)


def _epoch(value: Any) -> float | None:
    """A pod timestamp in epoch seconds; None when absent or unreadable (the HPA's
    initialisation check then treats it as unknown)."""
    try:
        return timestamp_s(value)
    except QuantityError:
        return None


__all__ = ["K8sError", "KubeCluster", "ScaleState"]
