"""Real-cluster backend of `OnlineBoutique(k8s=True)`: observe a namespace, scale it.

* `observe()` = the graph source's snapshot (Kiali or Prometheus: traffic, latency,
  errors, mTLS) merged with the Kubernetes source's (replicas, ready replicas, CPU and
  memory usage) through `GraphSnapshot.merged`, the same parsing code the collector uses.
* `apply(desired)` writes replica counts through each Deployment's ``scale`` subresource
  (`gnnrl.kube.client.KubeClient.read_scale` / `write_scale`,
  https://kubernetes.io/docs/reference/kubernetes-api/workload-resources/deployment-v1/),
  only where the desired count differs from the current one, then waits the waiting
  period so the next observation sees the effect (pods start, Prometheus scrapes).

Writes are conditional: the patch carries the ``resourceVersion`` that was read, so a
concurrent change (another controller, a person) answers 409 instead of being overwritten;
the backend then re-reads once and writes again only if still needed. A 429 waits the
server's ``Retry-After`` (at least `min_retry_after_s`) and retries once. 403/404 are not
retried. Every service's outcome is returned; an API failure never half-applies silently.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterable
from typing import Any, Protocol

from gnnrl.config import ConfigError, JsonConfig
from gnnrl.data.snapshot import GraphSnapshot
from gnnrl.kube.client import KubeClient
from gnnrl.kube.errors import K8sConflict, K8sError, K8sTooManyRequests
from gnnrl.sources.kubernetes import KubernetesSource


class GraphSource(Protocol):
    """What `K8sBackend` needs of Kiali/Prometheus (`KialiClient`, `PrometheusSource`)."""

    def snapshot(self, namespace: str, duration_s: int | None = None, query_time: Any = None,
                 known_services: Iterable[str] | None = None,
                 max_services: int | None = None) -> GraphSnapshot: ...


@dataclasses.dataclass
class K8sBackendConfig(JsonConfig):
    """Settings of `K8sBackend`.

    Attributes:
        namespace: the application's namespace.
        waiting_period_s: seconds between the start of `apply` and its return (the seed's
            waiting period; API calls count against it).
        graph_window_s: the graph source's query window, seconds (>= scrape interval).
        min_retry_after_s: the least wait after a 429 without a usable Retry-After.
        request_timeout_s: connect/read timeout of each scale call, seconds.
    """

    namespace: str = "default"
    waiting_period_s: float = 30.0
    graph_window_s: int = 60
    min_retry_after_s: float = 1.0
    request_timeout_s: float = 10.0

    def __post_init__(self) -> None:
        if not isinstance(self.namespace, str) or not self.namespace:
            raise ConfigError(f"namespace: expected a non-empty string, got {self.namespace!r}")
        for name in ("waiting_period_s", "min_retry_after_s", "request_timeout_s"):
            value = getattr(self, name)
            if not isinstance(value, int | float) or value < 0:
                raise ConfigError(f"{name}: expected a number >= 0, got {value!r}")
        if self.request_timeout_s == 0:
            raise ConfigError("request_timeout_s: must be > 0")
        if not isinstance(self.graph_window_s, int) or self.graph_window_s <= 0:
            raise ConfigError(f"graph_window_s: expected a positive integer, "
                              f"got {self.graph_window_s!r}")


@dataclasses.dataclass
class ScaleOutcome:
    """What `apply` did for one service.

    Attributes:
        status: "unchanged" (already at desired), "scaled", or "error".
        current: replicas read before the write (None if the read failed).
        desired: the requested replicas.
        error: the typed error's class name and message when status == "error".
    """

    status: str
    current: int | None
    desired: int
    error: str = ""


class K8sBackend:
    """Observe and scale one namespace of a real cluster (see the module docstring).

    Args:
        namespace: the application's namespace (or pass `config`).
        graph_source: a `KialiClient` or `PrometheusSource`.
        k8s_source: a `KubernetesSource` of the same namespace; its `api_client` writes.
        waiting_period_s: see `K8sBackendConfig`.
        known_services: the app's services; graph nodes outside it are skipped (counted).
        max_services: more services raise `TooManyServices`.
        clock, sleep: injectable time (tests use a fake clock; no real waiting).
    """

    def __init__(self, namespace: str, graph_source: GraphSource, k8s_source: KubernetesSource,
                 waiting_period_s: float = 30.0, *, config: K8sBackendConfig | None = None,
                 known_services: Iterable[str] | None = None, max_services: int | None = None,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.config = config or K8sBackendConfig(namespace=namespace,
                                                 waiting_period_s=waiting_period_s)
        if k8s_source.namespace != self.config.namespace:
            raise ConfigError(f"k8s_source.namespace: {k8s_source.namespace!r} differs from "
                              f"the backend's namespace {self.config.namespace!r}")
        self.graph_source = graph_source
        self.k8s_source = k8s_source
        self.known_services = None if known_services is None else list(known_services)
        self.max_services = max_services
        self.kube = KubeClient(k8s_source.api_client, self.config.namespace,
                               self.config.request_timeout_s)
        self.clock = clock
        self.sleep = sleep

    @property
    def namespace(self) -> str:
        return self.config.namespace

    def observe(self) -> GraphSnapshot:
        """One merged snapshot: graph metrics + Kubernetes replicas and usage.

        Raises the sources' typed errors (`SourceUnavailable`, `K8sError`, ...).
        """
        cluster = self.k8s_source.snapshot()
        if self.known_services is not None:
            keep = cluster.nodes["service"].isin(self.known_services)
            skipped = dict(cluster.skipped)
            if (~keep).any():
                skipped["not_known"] = skipped.get("not_known", 0) + int((~keep).sum())
            cluster = GraphSnapshot(cluster.ts, cluster.namespace,
                                    cluster.nodes[keep].reset_index(drop=True),
                                    cluster.edges, skipped)
        graph = self.graph_source.snapshot(self.namespace, duration_s=self.config.graph_window_s,
                                           known_services=self.known_services,
                                           max_services=self.max_services)
        return graph.merged(cluster)       # graph values first; Kubernetes fills the NaNs

    def _scale_one(self, name: str, desired: int) -> ScaleOutcome:
        current: int | None = None
        for attempt in range(2):           # the first try and at most one retry
            try:
                scale = self.kube.read_scale(name)
                current = scale.replicas
                if current == desired:
                    return ScaleOutcome("unchanged", current, desired)
                self.kube.write_scale(scale, desired)
                return ScaleOutcome("scaled", current, desired)
            except K8sConflict as exc:     # changed under us: re-read, recompute, once
                if attempt == 1:
                    return ScaleOutcome("error", current, desired, f"{type(exc).__name__}: {exc}")
            except K8sTooManyRequests as exc:
                if attempt == 1:
                    return ScaleOutcome("error", current, desired, f"{type(exc).__name__}: {exc}")
                self.sleep(max(exc.retry_after_s or 0.0, self.config.min_retry_after_s))
            except K8sError as exc:        # 403, 404, 5xx, timeouts: no retry storm
                return ScaleOutcome("error", current, desired, f"{type(exc).__name__}: {exc}")
        raise AssertionError("unreachable")

    def apply(self, desired: dict[str, int]) -> dict[str, ScaleOutcome]:
        """Scale each service to `desired[service]` replicas where it differs, then wait.

        Args:
            desired: service (Deployment name) -> replicas (int >= 0).

        Returns:
            service -> `ScaleOutcome` ("unchanged" / "scaled" / "error" with the reason).
            The call returns `waiting_period_s` after it started (API time included).
        """
        for name, replicas in desired.items():
            if isinstance(replicas, bool) or not isinstance(replicas, int) or replicas < 0:
                raise ValueError(f"desired[{name!r}]: expected an integer >= 0, "
                                 f"got {replicas!r}")
        start = self.clock()
        outcomes = {name: self._scale_one(name, replicas) for name, replicas in desired.items()}
        remaining = self.config.waiting_period_s - (self.clock() - start)
        if remaining > 0:
            self.sleep(remaining)
        return outcomes
