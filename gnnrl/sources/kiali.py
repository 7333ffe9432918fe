"""Kiali source: the namespace's workload graph from Kiali's graph API.

``GET {base_url}/api/namespaces/graph`` (Kiali serves it under its web root, usually
``/kiali``, so `base_url` is e.g. ``http://kiali.istio-system:20001/kiali``). The query
parameters are Kiali's graph options (https://kiali.io/docs/features/topology/ and
`graph/options.go`): ``namespaces``, ``graphType=workload``, ``duration`` (``60s``),
``appenders=responseTime,throughput,securityPolicy,deadNode``, ``responseTime=95``
(the quantile), ``throughputType=request``, ``injectServiceNodes=false`` (edges go
workload -> workload, no service hop) and ``queryTime`` (unix seconds, end of the window).

Usage::

    client = KialiClient("http://127.0.0.1:20001/kiali", token=open(token_path).read())
    snap = client.snapshot("onlineboutique", duration_s=60)
    snap.edges  # source, target, protocol, qps, p95_ms, err_rate, mtls

Failures raise `gnnrl.sources.errors` types: `SourceUnavailable` after the retries (5xx,
timeout, connection refused), `SourceAuthError` (401/403), `MalformedPayload` (not JSON,
too large, or not Kiali's schema).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Any

import pandas as pd

from gnnrl.config import ConfigError
from gnnrl.contracts.snapshot import GraphSnapshot
from gnnrl.sources.errors import MalformedPayload
from gnnrl.sources.http import HttpConfig, HttpJsonClient
from gnnrl.sources.kiali_graph import parse_graph

__all__ = ["APPENDERS", "KialiClient", "KialiConfig", "parse_graph"]

#: Appenders that fill the edge fields we read (Kiali `graph/telemetry/istio/appender`).
APPENDERS = ("responseTime", "throughput", "securityPolicy", "deadNode")


@dataclasses.dataclass
class KialiConfig(HttpConfig):
    """`HttpConfig` plus the graph query's settings.

    Attributes:
        duration_s: default query window, seconds (Kiali computes rates over it).
        scrape_interval_s: Prometheus' scrape interval; a window shorter than it has at
            most one sample per series and `rate()` returns nothing (the seed's 5 s window
            came back empty), so `duration_s` must be at least this.
        response_time_quantile: 95 -> p95 (Kiali's ``responseTime`` parameter).
    """

    duration_s: int = 60
    scrape_interval_s: float = 15.0
    response_time_quantile: int = 95

    def __post_init__(self) -> None:
        super().__post_init__()
        if not isinstance(self.scrape_interval_s, int | float) or self.scrape_interval_s <= 0:
            raise ConfigError(f"scrape_interval_s: expected > 0, got {self.scrape_interval_s!r}")
        check_duration(self.duration_s, self.scrape_interval_s)
        if self.response_time_quantile not in (50, 95, 99):
            raise ConfigError("response_time_quantile: Kiali supports 50, 95 or 99, got "
                              f"{self.response_time_quantile!r}")


def check_duration(duration_s: Any, scrape_interval_s: float) -> int:
    """Validate a query window: an integer of seconds >= the scrape interval."""
    if isinstance(duration_s, bool) or not isinstance(duration_s, int) or duration_s <= 0:
        raise ConfigError(f"duration_s: expected a positive integer of seconds, got "
                          f"{duration_s!r}")
    if duration_s < scrape_interval_s:
        raise ConfigError(f"duration_s: {duration_s}s is shorter than the scrape interval "
                          f"({scrape_interval_s:g}s); rates over it would be empty")
    return duration_s


class KialiClient:
    """HTTP client of Kiali's graph API (see the module docstring).

    Args:
        base_url: Kiali's web root, e.g. ``https://kiali.example.com/kiali``.
        **settings: any other `KialiConfig` field (token, token_file, username, password,
            verify, timeout_s, retries, backoff_s, backoff_jitter_s, max_payload_bytes,
            duration_s, scrape_interval_s, response_time_quantile).
    """

    def __init__(self, base_url: str, **settings: Any) -> None:
        self.config = KialiConfig(base_url=base_url, **settings)
        self._http = HttpJsonClient(self.config, source="kiali")


    def graph_params(self, namespace: str, duration_s: int | None = None,
                     query_time: Any = None) -> dict[str, str]:
        """The query parameters of one graph request (exposed for tests and logging)."""
        if not isinstance(namespace, str) or not namespace:
            raise ConfigError(f"namespace: expected a non-empty string, got {namespace!r}")
        duration = check_duration(self.config.duration_s if duration_s is None else duration_s,
                                  self.config.scrape_interval_s)
        params = {
            "namespaces": namespace,
            "graphType": "workload",
            "duration": f"{duration}s",
            "appenders": ",".join(APPENDERS),
            "responseTime": str(self.config.response_time_quantile),
            "throughputType": "request",
            "injectServiceNodes": "false",
        }
        if query_time is not None:
            params["queryTime"] = str(int(pd.Timestamp(query_time).timestamp()))
        return params

    def fetch_graph(self, namespace: str, duration_s: int | None = None,
                    query_time: Any = None, deadline: float | None = None) -> dict[str, Any]:
        """GET the workload graph of `namespace` over the `duration_s` window ending at
        `query_time` (default: now), ending by `deadline` (a `time.monotonic()` value; None:
        the configured timeout and retries). Returns the decoded JSON object.

        Raises:
            SourceUnavailable, SourceAuthError, MalformedPayload, SourceError; ConfigError
            for a window shorter than the scrape interval.
        """
        payload = self._http.get_json("/api/namespaces/graph",
                                      self.graph_params(namespace, duration_s, query_time),
                                      deadline=deadline)
        if not isinstance(payload, dict):
            raise MalformedPayload(f"expected a JSON object, got {type(payload).__name__}",
                                   path="$", source="kiali")
        return payload

    def snapshot(self, namespace: str, duration_s: int | None = None, query_time: Any = None,
                 known_services: Iterable[str] | None = None,
                 max_services: int | None = None, deadline: float | None = None
                 ) -> GraphSnapshot:
        """`fetch_graph` + `parse_graph` (nodes of other namespaces counted as outside)."""
        payload = self.fetch_graph(namespace, duration_s, query_time, deadline)
        return parse_graph(payload, namespace=namespace, known_services=known_services,
                           ts=query_time,
                           max_services=max_services)

    def secrets(self) -> tuple[str, ...]:
        """The credentials this client sends, for redacting error texts."""
        return self._http.secrets()

    def close(self) -> None:
        self._http.close()
