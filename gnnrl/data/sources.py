"""Adapters from the data sources (`gnnrl.sources`, the simulator) to the collector's
`SnapshotSource` protocol: ``name`` and ``fetch(ts) -> GraphSnapshot``.

Kiali and Prometheus give the graph and traffic; Kubernetes gives replicas, CPU and memory.
With a Kubernetes source attached, the two views of the same moment are combined with
`GraphSnapshot.merged` (the graph source's values win, Kubernetes fills the rest).
"""

from __future__ import annotations

from typing import Any, Protocol

import pandas as pd

from gnnrl.data.snapshot import GraphSnapshot


class _Snapshotter(Protocol):
    def snapshot(self, namespace: str, *args: Any, **kwargs: Any) -> GraphSnapshot: ...


class ClientSource:
    """A `SnapshotSource` over any client with ``snapshot(namespace, query_time=ts)``
    (`gnnrl.sources.kiali.KialiClient`, `gnnrl.sources.prometheus.PrometheusSource`),
    optionally completed with a Kubernetes client's ``snapshot(namespace, ts=ts)``
    (`gnnrl.sources.kubernetes.KubernetesSource`: replicas, CPU, memory).

    Args:
        name: source name written in gap rows (``kiali``, ``prometheus``).
        client: the graph client.
        namespace: the Kubernetes namespace to collect.
        kubernetes: optional client adding replicas/CPU/memory.
    """

    def __init__(self, name: str, client: _Snapshotter, namespace: str,
                 kubernetes: _Snapshotter | None = None) -> None:
        self.name = name
        self.client = client
        self.namespace = namespace
        self.kubernetes = kubernetes

    def fetch(self, ts: pd.Timestamp) -> GraphSnapshot:
        snap = self.client.snapshot(self.namespace, query_time=ts)
        if self.kubernetes is not None:
            snap = snap.merged(self.kubernetes.snapshot(self.namespace, ts=ts))
        return snap

    def secrets(self) -> tuple[str, ...]:
        """Credentials the clients send (the collector redacts them from error texts)."""
        out: list[str] = []
        for c in (self.client, self.kubernetes):
            get = getattr(c, "secrets", None)
            if callable(get):
                out += get()
        return tuple(out)

    def close(self) -> None:
        for c in (self.client, self.kubernetes):
            close = getattr(c, "close", None)
            if close is not None:
                close()


SOURCE_KINDS = ("kiali", "prometheus", "sim")


def make_source(kind: str, namespace: str | None, *, url: str | None = None,
                http: dict[str, Any] | None = None, with_kubernetes: bool = False,
                sim: Any = None) -> Any:
    """Build the `SnapshotSource` for ``gnnrl collect --source KIND``.

    Args:
        kind: ``kiali``, ``prometheus`` or ``sim``.
        namespace: namespace to collect (required except for ``sim``).
        url: Kiali or Prometheus base URL.
        http: other `gnnrl.sources.http.HttpConfig` fields (token_file, verify, timeout_s,
            retries...).
        with_kubernetes: also read replicas/CPU/memory from the Kubernetes API (kubeconfig
            or in-cluster config).
        sim: a `SimSourceConfig` for ``sim``.

    Raises:
        gnnrl.config.ConfigError: a required option is missing (the message names the flag).
    """
    from gnnrl.config import ConfigError

    if kind == "sim":
        from gnnrl.data.sim_source import SimSource, SimSourceConfig

        return SimSource(sim or SimSourceConfig())
    if kind not in SOURCE_KINDS:
        raise ConfigError(f"--source: must be one of {SOURCE_KINDS}, got {kind!r}")
    if not namespace:
        raise ConfigError(f"--namespace: required for --source {kind}")
    if not url:
        raise ConfigError(f"--{kind}-url: required for --source {kind}")
    if kind == "kiali":
        from gnnrl.sources.kiali import KialiClient

        client: Any = KialiClient(url, **(http or {}))
    else:
        from gnnrl.sources.prometheus import PrometheusSource

        client = PrometheusSource(url, **(http or {}))
    kube = None
    if with_kubernetes:
        from kubernetes.config import ConfigException

        from gnnrl.sources.kubernetes import KubernetesSource

        try:
            kube = KubernetesSource(namespace=namespace)
        except ConfigException as exc:
            raise ConfigError(f"--with-kubernetes: no in-cluster ServiceAccount and no usable "
                              f"kubeconfig ({exc})") from exc
    return ClientSource(kind, client, namespace, kube)
