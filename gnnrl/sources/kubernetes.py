"""Kubernetes source: replicas, pod CPU/memory usage and resource requests per Deployment.

Read with the official client (`kubernetes` 30.1.0):

* ``apps/v1`` Deployments: ``status.replicas`` (pods that exist, starting ones
  included), ``status.readyReplicas``, ``spec.replicas`` (desired), the pod template's
  requests/limits, and min/max replicas from annotations (``gnnrl.io/min-replicas``,
  ``gnnrl.io/max-replicas``) when present;
* ``core/v1`` Pods, matched to Deployments by the Deployment's ``spec.selector``
  (https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/);
* ``metrics.k8s.io/v1beta1`` PodMetrics (metrics-server, through `CustomObjectsApi`):
  per-container CPU (nanocores, ``n``) and working-set memory (``Ki``). The Istio sidecar
  container (``istio-proxy``) is left out by default, like the Prometheus source's cAdvisor
  query, so usage compares with the application container's requests.

A Deployment's ``cpu_m`` / ``mem_mi`` is the sum over its pods that have metrics; pods
without a metrics sample (just started, metrics-server lagging) are counted in
``skipped["pods_without_metrics"]``, and if metrics.k8s.io itself is missing or failing
the usage is NaN and ``skipped["metrics_unavailable"] = 1`` (never 0: 0 would look idle
and invite a scale-down).

The API calls and quantity parsing are `gnnrl.kube`'s; failures raise its typed errors
(`gnnrl.kube.errors`: K8sConflict, K8sTooManyRequests(retry_after_s), K8sForbidden,
K8sNotFound, K8sUnavailable; a bad quantity `QuantityError`).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from kubernetes import client as k8s

from gnnrl.config import ConfigError, JsonConfig
from gnnrl.contracts.snapshot import NODE_COLUMNS, GraphSnapshot
from gnnrl.kube.client import KubeClient, load_api_client, selector_matches
from gnnrl.kube.errors import K8sError
from gnnrl.kube.pods import container_total
from gnnrl.kube.quantities import cpu_millicores, memory_mib

_log = logging.getLogger(__name__)

#: Columns of `KubernetesSource.deployments()`. Units: replicas; millicores and MiB per pod.
DEPLOYMENT_COLUMNS: tuple[str, ...] = (
    "service", "desired_replicas", "replicas", "ready_replicas", "cpu_request_m",
    "mem_request_mi", "cpu_limit_m", "mem_limit_mi", "min_replicas", "max_replicas",
)


@dataclasses.dataclass
class KubernetesSourceConfig(JsonConfig):
    """Settings of `KubernetesSource`.

    Attributes:
        namespace: the namespace whose Deployments are the services.
        request_timeout_s: connect and read timeout of each API call, seconds.
        sidecar_containers: containers left out of usage and requests (Istio's proxy).
        min_annotation, max_annotation: Deployment annotations with the replica bounds.
    """

    namespace: str = "default"
    request_timeout_s: float = 10.0
    sidecar_containers: tuple[str, ...] = ("istio-proxy",)
    min_annotation: str = "gnnrl.io/min-replicas"
    max_annotation: str = "gnnrl.io/max-replicas"

    def __post_init__(self) -> None:
        if not isinstance(self.namespace, str) or not self.namespace:
            raise ConfigError(f"namespace: expected a non-empty string, got {self.namespace!r}")
        if not isinstance(self.request_timeout_s, int | float) or self.request_timeout_s <= 0:
            raise ConfigError(f"request_timeout_s: expected > 0, got {self.request_timeout_s!r}")
        self.sidecar_containers = tuple(self.sidecar_containers)


def _int_annotation(annotations: Mapping[str, str] | None, key: str) -> float:
    value = (annotations or {}).get(key)
    try:
        return float(int(value)) if value is not None else np.nan
    except ValueError:
        return np.nan


class KubernetesSource:
    """Reads a namespace's Deployments, pods and pod metrics (see the module docstring).

    Args:
        api_client: a configured `kubernetes.client.ApiClient`; None loads the in-cluster
            ServiceAccount or the kubeconfig (`load_api_client`).
        config: `KubernetesSourceConfig`, or its fields as keywords.
    """

    def __init__(self, api_client: k8s.ApiClient | None = None,
                 config: KubernetesSourceConfig | None = None, **settings: Any) -> None:
        self.config = config or KubernetesSourceConfig(**settings)
        self.api_client = api_client if api_client is not None else load_api_client()
        self.kube = KubeClient(self.api_client, self.config.namespace,
                               self.config.request_timeout_s)

    @property
    def namespace(self) -> str:
        return self.config.namespace

    def _list_deployments(self) -> list[Any]:
        return self.kube.list_deployments()

    def _requests_row(self, dep: Any) -> dict[str, float]:
        """Per-pod requests/limits of the template's application containers (NaN when a
        container leaves that quantity unset: it is then unbounded / scheduler default)."""
        path = f"deployments/{dep.metadata.name}.spec.template.spec.containers"
        totals: dict[str, float] = {}
        for kind, key, parse, column in (
            ("requests", "cpu", cpu_millicores, "cpu_request_m"),
            ("requests", "memory", memory_mib, "mem_request_mi"),
            ("limits", "cpu", cpu_millicores, "cpu_limit_m"),
            ("limits", "memory", memory_mib, "mem_limit_mi"),
        ):
            total = container_total(dep.spec.template.spec.containers, kind, key, parse, path,
                                    skip=self.config.sidecar_containers)
            totals[column] = np.nan if total is None else total
        return totals

    def deployments(self, raw: list[Any] | None = None) -> pd.DataFrame:
        """One row per Deployment, columns `DEPLOYMENT_COLUMNS`, sorted by name.

        Args:
            raw: already listed `V1Deployment`s (one API call per snapshot); None lists them.

        Shapes:
            (D, 10): replicas as floats (NaN when the status is not reported yet),
            requests/limits per pod in millicores / MiB.
        """
        rows = []
        for dep in raw if raw is not None else self._list_deployments():
            status, meta = dep.status, dep.metadata
            rows.append({
                "service": meta.name,
                "desired_replicas": float(dep.spec.replicas if dep.spec.replicas is not None
                                          else 1),       # apps/v1 defaults spec.replicas to 1
                "replicas": float(status.replicas or 0) if status else np.nan,
                "ready_replicas": float(status.ready_replicas or 0) if status else np.nan,
                **self._requests_row(dep),
                "min_replicas": _int_annotation(meta.annotations, self.config.min_annotation),
                "max_replicas": _int_annotation(meta.annotations, self.config.max_annotation),
            })
        df = pd.DataFrame(rows, columns=list(DEPLOYMENT_COLUMNS))
        df["service"] = df["service"].astype("string")
        return df.sort_values("service", ignore_index=True)

    def usage(self, deployments: list[Any] | None = None) -> tuple[pd.DataFrame, dict[str, int]]:
        """Summed CPU (millicores) and memory (MiB) of each Deployment's pods.

        Returns:
            (frame with columns service, cpu_m, mem_mi, pods_with_metrics; skipped counts).
            Raises a `K8sError` only for the pod list; a failing metrics API gives NaN
            usage and ``{"metrics_unavailable": 1}``.
        """
        deps = deployments if deployments is not None else self._list_deployments()
        pods = self.kube.list_pods()
        owner: dict[str, str] = {}
        for pod in pods:
            labels = pod.metadata.labels or {}
            for dep in deps:
                if selector_matches(dep.spec.selector, labels):
                    owner[pod.metadata.name] = dep.metadata.name
                    break
        names = sorted(d.metadata.name for d in deps)
        cpu = dict.fromkeys(names, 0.0)
        mem = dict.fromkeys(names, 0.0)
        seen = dict.fromkeys(names, 0)
        skipped: dict[str, int] = {}
        try:
            metrics = self.kube.list_pod_metrics()
        except K8sError as exc:
            _log.warning("pod usage unknown (metrics.k8s.io failed): %s", exc)
            nan = [np.nan] * len(names)
            return (pd.DataFrame({"service": names, "cpu_m": nan, "mem_mi": nan,
                                  "pods_with_metrics": [0] * len(names)}),
                    {"metrics_unavailable": 1})
        for i, item in enumerate(metrics):
            pod_name = (item.get("metadata") or {}).get("name")
            dep_name = None if pod_name is None else owner.get(pod_name)
            if dep_name is None:
                continue
            for c in item.get("containers") or []:
                if c.get("name") in self.config.sidecar_containers:
                    continue
                usage = c.get("usage") or {}
                path = f"podmetrics.items[{i}].containers.{c.get('name')}.usage"
                cpu[dep_name] += cpu_millicores(usage.get("cpu", "0"), path + ".cpu")
                mem[dep_name] += memory_mib(usage.get("memory", "0"), path + ".memory")
            seen[dep_name] += 1
        missing = len(owner) - sum(seen.values())
        if missing > 0:
            skipped["pods_without_metrics"] = missing
        frame = pd.DataFrame({
            "service": names,
            "cpu_m": [cpu[n] if seen[n] else np.nan for n in names],
            "mem_mi": [mem[n] if seen[n] else np.nan for n in names],
            "pods_with_metrics": [seen[n] for n in names],
        })
        return frame, skipped

    def snapshot(self, namespace: str | None = None, ts: Any = None) -> GraphSnapshot:
        """The namespace's nodes (replicas, ready_replicas, cpu_m, mem_mi; traffic columns
        NaN) as a `GraphSnapshot` with no edges; merge it with a graph source's snapshot.

        Args:
            namespace: must be None or the configured namespace (a guard against reading
                one namespace while scaling another).
            ts: the snapshot time; default now (UTC).
        """
        if namespace is not None and namespace != self.namespace:
            raise ConfigError(f"namespace: this source reads {self.namespace!r}, "
                              f"asked for {namespace!r}")
        raw = self._list_deployments()
        deps = self.deployments(raw)
        usage, skipped = self.usage(raw)
        nodes = deps[["service", "replicas", "ready_replicas"]].merge(
            usage[["service", "cpu_m", "mem_mi"]], on="service", how="left")
        for column in ("rx_kbps", "tx_kbps", "rps_in"):
            nodes[column] = np.nan
        nodes = nodes[list(NODE_COLUMNS)]
        nodes["service"] = nodes["service"].astype("string")
        stamp = pd.Timestamp.now(tz="UTC").floor("s") if ts is None else pd.Timestamp(ts)
        if stamp.tzinfo is None:
            stamp = stamp.tz_localize("UTC")
        return GraphSnapshot(stamp, self.namespace, nodes, skipped=skipped)

