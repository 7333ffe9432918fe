"""Prometheus source: the service graph and node usage from Istio's standard metrics and
cAdvisor, for clusters with Prometheus but no Kiali. Same `GraphSnapshot` as `parse_graph`.

PromQL over ``GET {base_url}/api/v1/query`` (https://prometheus.io/docs/prometheus/latest/
querying/api/#instant-queries), all over the window ``[w]`` = `duration_s` ending at
``time`` = `query_time`, with ``reporter="destination"`` (every request is reported by both
sidecars; the destination's view includes the server's response code and mTLS policy).
Metric and label names: https://istio.io/latest/docs/reference/config/metrics/.

==========  =========================================================================
edge field  query (grouped by source/destination workload + namespace + protocol)
==========  =========================================================================
qps         ``sum by (...) (rate(istio_requests_total{reporter="destination"}[w]))``
err_rate    rate of ``response_code=~"5.."`` (http) or ``grpc_response_status!~"0|"``
            (grpc) over qps. Kiali also counts 4xx, so the two sources differ there.
mtls        rate with ``connection_security_policy="mutual_tls"`` over qps
p95_ms      ``histogram_quantile(0.95, sum by (le, ...) (rate(
            istio_request_duration_milliseconds_bucket{reporter="destination"}[w])))``;
            linear interpolation inside Istio's buckets, NaN without requests
throughput  ``rate(istio_request_bytes_sum[w])`` (request bytes/s; tcp edges:
            ``rate(istio_tcp_received_bytes_total[w])``, their qps is NaN)
==========  =========================================================================

Node usage from cAdvisor (kubelet): ``sum by (pod) (rate(container_cpu_usage_seconds_total
{namespace="ns", container!="", container!="POD", container!="istio-proxy"}[w]))`` x 1000
-> millicores, and ``container_memory_working_set_bytes`` with the same selector ->
MiB. ``container=""`` is the pod-level cgroup (it would double count), ``POD`` the pause
container, ``istio-proxy`` the sidecar. Pods are grouped to workloads by name: a
Deployment's pod is ``<deployment>-<template hash>-<5 chars>`` and a StatefulSet's
``<name>-<ordinal>`` (Kubernetes' naming, kube-controller-manager); pods matching neither
are counted as ``skipped["unmatched_pods"]``. (kube-state-metrics' ``kube_pod_owner`` would
need the ReplicaSet -> Deployment hop too; the name rule needs no extra exporter.)

Nodes are the namespace's workloads seen in the metrics; sources outside the namespace,
``unknown`` sources (no Istio telemetry) and Istio gateways are counted in `skipped`
exactly like `parse_graph` does, and their calls into the namespace's services (and those
of workloads outside `known_services`) are kept as edges from `outside_source` names
(``istio-ingressgateway.istio-system``, ``unknown``).
``replicas``/``ready_replicas`` are NaN (merge with the Kubernetes source).
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections import Counter, defaultdict
from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd

from gnnrl.config import ConfigError
from gnnrl.contracts.snapshot import EDGE_COLUMNS, NODE_COLUMNS, GraphSnapshot, empty_edges
from gnnrl.sources.errors import MalformedPayload, SourceError, TooManyServices
from gnnrl.sources.http import HttpConfig, HttpJsonClient
from gnnrl.sources.kiali import check_duration
from gnnrl.sources.kiali_graph import OUTSIDE_REASONS, outside_source

SOURCE = "prometheus"
_EDGE_BY = ("source_workload, source_workload_namespace, destination_workload, "
            "destination_workload_namespace, request_protocol")
_TCP_BY = ("source_workload, source_workload_namespace, destination_workload, "
           "destination_workload_namespace")
_CONTAINERS = 'container!="", container!="POD", container!="istio-proxy"'
#: Deployment pods: <name>-<pod-template-hash (<=10 chars)>-<5 random chars>;
#: StatefulSet pods: <name>-<ordinal>.
_DEPLOYMENT_POD = re.compile(r"^(?P<w>.+)-[a-z0-9]{1,10}-[a-z0-9]{5}$")
_STATEFULSET_POD = re.compile(r"^(?P<w>.+)-\d+$")
_GATEWAY = re.compile(r"^istio-(ingress|egress)gateway")
_LABEL_VALUE = re.compile(r"^[A-Za-z0-9._-]+$")


@dataclasses.dataclass
class PrometheusConfig(HttpConfig):
    """`HttpConfig` plus the query settings.

    Attributes:
        duration_s: rate window, seconds (at least the scrape interval; Prometheus advises
            4x the scrape interval for `rate`).
        scrape_interval_s: the server's scrape interval for Istio/cAdvisor targets.
        quantile: latency quantile, 0 < q < 1.
    """

    duration_s: int = 60
    scrape_interval_s: float = 15.0
    quantile: float = 0.95

    def __post_init__(self) -> None:
        super().__post_init__()
        if not isinstance(self.scrape_interval_s, int | float) or self.scrape_interval_s <= 0:
            raise ConfigError(f"scrape_interval_s: expected > 0, got {self.scrape_interval_s!r}")
        check_duration(self.duration_s, self.scrape_interval_s)
        if not isinstance(self.quantile, float) or not 0 < self.quantile < 1:
            raise ConfigError(f"quantile: expected 0 < q < 1, got {self.quantile!r}")


def pod_workload(pod: str) -> str | None:
    """The Deployment/StatefulSet name of a pod name, None if it matches neither rule."""
    for pattern in (_DEPLOYMENT_POD, _STATEFULSET_POD):
        m = pattern.match(pod)
        if m:
            return m["w"]
    return None


def _sample_value(sample: Any, path: str) -> tuple[dict[str, str], float]:
    if not isinstance(sample, dict):
        raise MalformedPayload("expected an object", path=path, source=SOURCE)
    metric, value = sample.get("metric"), sample.get("value")
    if not isinstance(metric, dict) or not all(isinstance(v, str) for v in metric.values()):
        raise MalformedPayload("expected a label map of strings", path=f"{path}.metric",
                               source=SOURCE)
    if not isinstance(value, list) or len(value) != 2 or not isinstance(value[1], str):
        raise MalformedPayload("expected [time, \"value\"]", path=f"{path}.value",
                               source=SOURCE)
    try:
        number = float(value[1])      # Prometheus writes NaN as "NaN", infinities as "+Inf"
    except ValueError:
        raise MalformedPayload(f"not a number: {value[1]!r:.40}", path=f"{path}.value",
                               source=SOURCE) from None
    return metric, number


class PrometheusSource:
    """Builds `GraphSnapshot`s from a Prometheus server (see the module docstring).

    Args:
        base_url: the server's root, e.g. ``http://prometheus.istio-system:9090``.
        **settings: other `PrometheusConfig` fields (token, verify, timeout_s, retries,
            duration_s, scrape_interval_s, quantile, ...).
    """

    def __init__(self, base_url: str, **settings: Any) -> None:
        self.config = PrometheusConfig(base_url=base_url, **settings)
        self._http = HttpJsonClient(self.config, source=SOURCE)

    def query(self, promql: str, query_time: Any = None, deadline: float | None = None
              ) -> list[tuple[dict[str, str], float]]:
        """Run an instant query; returns (labels, value) per series of the vector result.
        `deadline`: a `time.monotonic()` value the query must end by (None: the configured
        timeout and retries).

        Raises:
            SourceUnavailable / SourceAuthError / MalformedPayload; SourceError when
            Prometheus rejects the query (its errorType and error are quoted).
        """
        params: dict[str, str] = {"query": promql}
        if query_time is not None:
            params["time"] = f"{pd.Timestamp(query_time).timestamp():.3f}"
        try:
            body = self._http.get_json("/api/v1/query", params, deadline=deadline)
        except SourceError as exc:
            if type(exc) is SourceError:        # a 4xx: Prometheus explains in the body
                raise SourceError(f"{exc} (query: {promql})", source=SOURCE) from exc
            raise
        if not isinstance(body, dict) or body.get("status") != "success":
            detail = body.get("error") if isinstance(body, dict) else body
            raise MalformedPayload(f"query failed: {detail!r:.200}", path="status",
                                   source=SOURCE)
        data = body.get("data")
        if not isinstance(data, dict) or data.get("resultType") != "vector":
            raise MalformedPayload("expected a vector result", path="data.resultType",
                                   source=SOURCE)
        result = data.get("result")
        if not isinstance(result, list):
            raise MalformedPayload("expected a list", path="data.result", source=SOURCE)
        return [_sample_value(s, f"data.result[{i}]") for i, s in enumerate(result)]

    def queries(self, namespace: str, duration_s: int) -> dict[str, str]:
        """The PromQL of one snapshot, by name (exposed for docs, tests and debugging)."""
        if not _LABEL_VALUE.match(namespace):
            raise ConfigError(f"namespace: not a valid Kubernetes name: {namespace!r}")
        w = f"{duration_s}s"
        sel = f'reporter="destination", destination_workload_namespace="{namespace}"'
        req = f"istio_requests_total{{{sel}"
        q = self.config.quantile
        return {
            "qps": f"sum by ({_EDGE_BY}) (rate({req}}}[{w}]))",
            "errors": (f'sum by ({_EDGE_BY}) (rate({req}, request_protocol!="grpc", '
                       f'response_code=~"5.."}}[{w}])) or sum by ({_EDGE_BY}) (rate({req}, '
                       f'request_protocol="grpc", grpc_response_status!~"0|"}}[{w}]))'),
            "mtls": (f'sum by ({_EDGE_BY}) (rate({req}, '
                     f'connection_security_policy="mutual_tls"}}[{w}]))'),
            "p95": (f"histogram_quantile({q}, sum by (le, {_EDGE_BY}) (rate("
                    f"istio_request_duration_milliseconds_bucket{{{sel}}}[{w}])))"),
            "bytes": f"sum by ({_EDGE_BY}) (rate(istio_request_bytes_sum{{{sel}}}[{w}]))",
            "tcp": f"sum by ({_TCP_BY}) (rate(istio_tcp_received_bytes_total{{{sel}}}[{w}]))",
            "tcp_mtls": (f"sum by ({_TCP_BY}) (rate(istio_tcp_received_bytes_total{{{sel}, "
                         f'connection_security_policy="mutual_tls"}}[{w}]))'),
            "cpu": (f"sum by (pod) (rate(container_cpu_usage_seconds_total{{namespace="
                    f'"{namespace}", {_CONTAINERS}}}[{w}]))'),
            "mem": (f'sum by (pod) (container_memory_working_set_bytes{{namespace="{namespace}",'
                    f" {_CONTAINERS}}})"),
        }

    def snapshot(self, namespace: str, duration_s: int | None = None, query_time: Any = None,
                 known_services: Iterable[str] | None = None,
                 max_services: int | None = None, deadline: float | None = None
                 ) -> GraphSnapshot:
        """One `GraphSnapshot` of `namespace` over the window ending at `query_time`; all
        its queries end by `deadline` (a `time.monotonic()` value; None: no bound beyond
        the configured timeout and retries).

        Shapes:
            nodes (S, 8) `NODE_COLUMNS`; edges (E, 7) `EDGE_COLUMNS`.
        """
        duration = check_duration(self.config.duration_s if duration_s is None else duration_s,
                                  self.config.scrape_interval_s)
        results = {name: self.query(promql, query_time, deadline)
                   for name, promql in self.queries(namespace, duration).items()}
        stamp = (pd.Timestamp.now(tz="UTC").floor("s") if query_time is None
                 else pd.Timestamp(query_time))
        if stamp.tzinfo is None:
            stamp = stamp.tz_localize("UTC")
        return build_snapshot(results, namespace, stamp,
                              None if known_services is None else frozenset(known_services),
                              max_services)

    def secrets(self) -> tuple[str, ...]:
        """The credentials this client sends, for redacting error texts."""
        return self._http.secrets()

    def close(self) -> None:
        self._http.close()


#: Name used by `gnnrl.data.sources.make_source`.
PrometheusClient = PrometheusSource


def _edge_key(m: dict[str, str]) -> tuple[str, str, str, str, str]:
    return (m.get("source_workload", "unknown"), m.get("source_workload_namespace", "unknown"),
            m.get("destination_workload", "unknown"),
            m.get("destination_workload_namespace", ""), m.get("request_protocol", "tcp"))


def _by_key(rows: list[tuple[dict[str, str], float]]) -> dict[tuple[str, ...], float]:
    out: dict[tuple[str, ...], float] = defaultdict(float)
    for m, v in rows:
        out[_edge_key(m)] += v
    return out


def _classify(workload: str, ns: str, namespace: str, known: frozenset[str] | None) -> str | None:
    """Why a workload stays out of the mapping (parse_graph's reasons), None to keep it."""
    if workload in ("", "unknown"):
        return "unknown"
    if _GATEWAY.match(workload):
        return "gateway"
    if ns != namespace:
        return "outside"
    if known is not None and workload not in known:
        return "not_known"
    return None


def _node_traffic(services: list[str], flows: list[tuple[str, str, str, str, float, float]]
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(rps_in, rx_kbps, tx_kbps) per service from (src, dst, protocol, ns, req/s,
    bytes/s) flows; an empty src/dst is a skipped endpoint (its traffic still counts)."""
    index = {s: i for i, s in enumerate(services)}
    rps_in = np.zeros(len(services))
    rx = np.full(len(services), np.nan)
    tx = np.full(len(services), np.nan)
    for src, dst, _protocol, _ns, rate, throughput in flows:
        kbps = throughput * 8.0 / 1000.0
        if dst:
            rps_in[index[dst]] += 0.0 if math.isnan(rate) else rate
            if math.isfinite(kbps):
                rx[index[dst]] = np.nansum([rx[index[dst]], kbps])
        if src and math.isfinite(kbps):
            tx[index[src]] = np.nansum([tx[index[src]], kbps])
    return rps_in, rx, tx


def build_snapshot(results: dict[str, list[tuple[dict[str, str], float]]], namespace: str,
                   ts: pd.Timestamp, known: frozenset[str] | None = None,
                   max_services: int | None = None) -> GraphSnapshot:
    """Assemble the snapshot from the query results of `PrometheusSource.queries`."""
    qps, errors, mtls = (_by_key(results[k]) for k in ("qps", "errors", "mtls"))
    p95, nbytes = _by_key(results["p95"]), _by_key(results["bytes"])
    tcp, tcp_mtls = _by_key(results["tcp"]), _by_key(results["tcp_mtls"])

    skipped: Counter[str] = Counter()
    reasons: dict[tuple[str, str], str | None] = {}
    services: list[str] = []

    def keep(workload: str, ns: str) -> bool:
        if (workload, ns) not in reasons:
            reason = _classify(workload, ns, namespace, known)
            reasons[(workload, ns)] = reason
            if reason is None:
                services.append(workload)
            else:
                skipped[reason] += 1
        return reasons[(workload, ns)] is None

    usage_cpu: dict[str, float] = defaultdict(float)
    usage_mem: dict[str, float] = defaultdict(float)
    for name, store, scale in (("cpu", usage_cpu, 1000.0), ("mem", usage_mem, 1 / 2**20)):
        for m, v in results[name]:
            workload = pod_workload(m.get("pod", ""))
            if workload is None:
                skipped["unmatched_pods"] += 1 if name == "cpu" else 0
                continue
            if keep(workload, namespace) and math.isfinite(v):
                store[workload] += v * scale

    rows: list[tuple[Any, ...]] = []
    flows: list[tuple[str, str, str, str, float, float]] = []   # for rps_in / rx / tx
    for key, rate in list(qps.items()) + [(k, math.nan) for k in tcp]:
        src, src_ns, dst, dst_ns, protocol = key
        src_ok, dst_ok = keep(src, src_ns), keep(dst, dst_ns)
        if protocol == "tcp":
            throughput = tcp[key]
            err, share = 0.0, (tcp_mtls.get(key, 0.0) / throughput if throughput > 0 else 0.0)
            latency = math.nan
        else:
            throughput = nbytes.get(key, math.nan)
            err = errors.get(key, 0.0) / rate if rate > 0 else 0.0
            share = mtls.get(key, 0.0) / rate if rate > 0 else 0.0
            latency = p95.get(key, math.nan)
            latency = latency if math.isfinite(latency) else math.nan
        flows.append((src if src_ok else "", dst if dst_ok else "", protocol, src_ns,
                      rate, throughput))
        reason = reasons[(src, src_ns)]
        if dst_ok and not src_ok and reason in OUTSIDE_REASONS:
            src, src_ok = outside_source(src, src_ns, reason, namespace), True
        if not (src_ok and dst_ok):
            skipped["dropped_edges"] += 1
            continue
        rows.append((src, dst, protocol, rate, latency, min(max(err, 0.0), 1.0),
                     min(max(share, 0.0), 1.0)))

    if max_services is not None and len(services) > max_services:
        raise TooManyServices(len(services), max_services, source=SOURCE)
    rps_in, rx, tx = _node_traffic(services, flows)
    nodes = pd.DataFrame({
        "service": pd.Series(services, dtype="string"),
        "replicas": np.nan, "ready_replicas": np.nan,
        "cpu_m": [usage_cpu[s] if s in usage_cpu else np.nan for s in services],
        "mem_mi": [usage_mem[s] if s in usage_mem else np.nan for s in services],
        "rx_kbps": rx, "tx_kbps": tx, "rps_in": rps_in,
    })[list(NODE_COLUMNS)]
    edges = (pd.DataFrame(rows, columns=list(EDGE_COLUMNS)).astype(
        {"source": "string", "target": "string", "protocol": "string"}) if rows
        else empty_edges())
    return GraphSnapshot(ts, namespace, nodes, edges, {k: v for k, v in skipped.items() if v})
