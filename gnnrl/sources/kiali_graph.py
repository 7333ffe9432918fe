"""`parse_graph`: a Kiali graph-API response -> `GraphSnapshot`.

The schema is Kiali's `graph/config/common/common.go` (`Config`, `NodeData`, `EdgeData`,
`ProtocolTraffic`): ``{"timestamp", "duration", "graphType", "elements": {"nodes":
[{"data": NodeData}], "edges": [{"data": EdgeData}]}}``. Edges reference nodes by their
hashed ``id``; we resolve ids to names (the seed looked edges up by name and lost them).

Node names and what is kept out of the service mapping (counted in `skipped` by reason):

==============  ===================================================================
reason          node
==============  ===================================================================
``box``         ``nodeType == "box"`` (compound app/namespace/cluster boxes)
``unknown``     ``nodeType == "unknown"`` or a name of ``"unknown"`` (traffic whose source
                has no Istio telemetry, e.g. from outside the mesh)
``dead``        ``isDead`` (workload with no running pods; deadNode appender)
``gateway``     ``isGateway`` set (ingress/egress/Gateway API) or ``isWaypoint``
``outside``     ``isOutside`` or a namespace other than the requested one
``<type>_node`` a node of another type than the graph's own (e.g. ``service_node`` in a
                workload graph: a request to a service no workload answered)
``not_known``   a name outside `known_services` (when given)
``invalid``     no usable name (empty workload/app/service field)
==============  ===================================================================

A node's name is its ``workload`` in a workload graph, ``app`` in an app /
versionedApp graph (versions of an app are one service), ``service`` in a service graph.
An edge from outside the application (a source skipped as ``unknown``, ``gateway``,
``outside`` or ``not_known``, e.g. a load generator) into a kept service is kept, its
source named by `outside_source` (e.g. ``istio-ingressgateway.istio-system``,
``unknown``): it carries what the application's callers see at the entry (the ingress
gateway's p95 and error rate are the end-to-end ones), as the simulator's snapshots show
their clients' calls (`gnnrl.data.sim_source`).
Every other edge touching a skipped node is dropped (counted as ``dropped_edges``); the
traffic of every edge still counts in the kept endpoint's ``rps_in`` / ``rx_kbps`` /
``tx_kbps`` (traffic from the ingress gateway is the entry service's load).

Numbers (Kiali sends them as strings, formatted with `%.*f`) and their defaults:

* ``qps`` (req/s): the protocol's total rate (``http``, ``grpc``). Kiali omits zero rates
  (`addEdgeTelemetry`: ``if rateVal > 0``), so a missing rate is **0**. A ``tcp`` edge has
  no request rate (Istio counts only bytes for tcp; Kiali's ``tcp`` rate is bytes/s): its
  ``qps`` is **NaN** and its byte rate is used as the edge's throughput.
* ``err_rate`` (0..1): ``httpPercentErr/100`` (Kiali counts 4xx, 5xx and no-response as
  errors); for grpc ``grpcPercentErr/100`` or, if absent, ``grpcErr/grpc``; tcp has no
  error notion: 0. Missing means no errors: **0**.
* ``p95_ms``: ``responseTime`` (ms; the quantile is the request's ``responseTime=95``).
  Absent without the responseTime appender and on tcp edges: **NaN** (unknown, never 0,
  which would read as "infinitely fast").
* ``mtls`` (0..1): ``isMTLS/100``. The securityPolicy appender only sets it when some
  traffic is mTLS (`applySecurityPolicy`: ``if mtls > 0``), so missing is **0**.
* node ``rps_in`` (req/s): sum of the incoming http/grpc edges' ``qps``, from any source
  (kept or skipped); 0 when nothing calls the service.
* node ``rx_kbps`` / ``tx_kbps``: sums of incoming / outgoing edges' ``throughput``
  (bytes/s x 8 / 1000; the client asks for request throughput, so rx is what callers
  send and tx what the service sends to its callees); NaN when no edge of the node
  carries throughput.
* node ``replicas``, ``ready_replicas``, ``cpu_m``, ``mem_mi``: NaN (Kiali does not know
  them; `GraphSnapshot.merged` fills them from Kubernetes).

Flags (``isDead``, ``isOutside``, ``isWaypoint``: booleans; ``isGateway``: an object
with the gateway's details, Kiali's ``GWInfo``) are also accepted as the strings
``"true"``/``"false"`` (any case): ``"false"`` is false, never "a non-empty string, so
true". An ``isGateway`` object counts as true, even when empty.

Refused with `MalformedPayload` (never summed or guessed): two edges with the same ``id``
(Kiali gives every edge a unique one; a repeat means a merged or replayed payload whose
rates would count twice), and sums of rates that overflow to infinity (rates near 1e308).
Anything else that breaks the schema raises `MalformedPayload` naming the JSON path.
"""

from __future__ import annotations

import datetime
import math
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any, cast

import numpy as np
import pandas as pd
import pyarrow as pa

from gnnrl.contracts.snapshot import EDGE_COLUMNS, NODE_COLUMNS, GraphSnapshot, empty_edges
from gnnrl.sources.errors import MalformedPayload, TooManyServices

SOURCE = "kiali"
_NAME_FIELD = {"workload": "workload", "app": "app", "versionedApp": "app",
               "service": "service"}
_PRIMARY_TYPE = {"workload": "workload", "app": "app", "versionedApp": "app",
                 "service": "service"}
#: Kiali's total-rate key, error-rate keys and percent-error key per protocol
#: (graph/types.go `Protocols`).
_TOTAL = {"http": "http", "grpc": "grpc", "tcp": "tcp"}
_ERR_KEYS = {"http": ("http4xx", "http5xx", "httpNoResponse"),
             "grpc": ("grpcErr", "grpcNoResponse")}
_PCT_ERR = {"http": "httpPercentErr", "grpc": "grpcPercentErr"}
#: The snapshot's string dtype, resolved once (resolving "string" per call is slow).
_STRING = cast(pd.StringDtype, pd.Series(dtype="string").dtype)
#: Column labels, built once; each frame gets a cheap view (`Index.view`), so renaming one
#: frame's columns can never rename another's.
_NODE_INDEX = pd.Index(list(NODE_COLUMNS))
_EDGE_INDEX = pd.Index(list(EDGE_COLUMNS))
_NODE_STRINGS = 1          # NODE_COLUMNS: "service", then 7 float columns
_EDGE_STRINGS = 3          # EDGE_COLUMNS: "source", "target", "protocol", then 4 floats
_FROM_BLOCKS = getattr(getattr(pd.api, "internals", None), "create_dataframe_from_blocks", None)


def _strings(values: list[str]) -> Any:
    """`values` as an array of the snapshot's ``"string"`` dtype. With pyarrow storage (the
    default) we hand pandas the Arrow array ourselves: ~6x cheaper than `pd.array`."""
    if getattr(_STRING, "storage", None) == "pyarrow":
        return pd.arrays.ArrowStringArray(pa.array(values, type=pa.large_string()))
    return pd.array(values, dtype=_STRING)


def _frame(columns: pd.Index, strings: list[list[str]], floats: np.ndarray) -> pd.DataFrame:
    """A frame whose first ``len(strings)`` columns are `strings` (``"string"`` dtype) and
    the rest the rows of `floats` (shape ``(len(columns) - len(strings), n)``, float64).

    Built from blocks (one 2-D float block + one per string column) with pandas' public
    `pandas.api.internals.create_dataframe_from_blocks` (pandas >= 3.0, made for exactly
    this: building frames from columnar data without per-column checks): ~8x cheaper than
    `pd.DataFrame(dict)`, which costs ~0.3 ms per frame and dominated the parse. Older
    pandas: the dict constructor (same values and dtypes).
    """
    n = floats.shape[1]
    k = len(strings)
    if _FROM_BLOCKS is None:
        data: dict[str, Any] = {c: _strings(v) for c, v in zip(columns[:k], strings, strict=True)}
        data.update(zip(columns[k:], floats, strict=True))
        return pd.DataFrame(data, index=pd.RangeIndex(n), copy=False)
    blocks: list[tuple[Any, np.ndarray]] = [(_strings(v), _PLACEMENT[i])
                                           for i, v in enumerate(strings)]
    blocks.append((floats, _FLOAT_PLACEMENT[k]))
    return _FROM_BLOCKS(blocks, index=pd.RangeIndex(n), columns=columns.view())


_PLACEMENT = [np.array([i]) for i in range(_EDGE_STRINGS)]
_FLOAT_PLACEMENT = {k: np.arange(k, len(cols)) for k, cols in
                    ((_NODE_STRINGS, NODE_COLUMNS), (_EDGE_STRINGS, EDGE_COLUMNS))}


def _bad(path: str, message: str) -> MalformedPayload:
    return MalformedPayload(message, path=path, source=SOURCE)


def parse_number(value: Any, path: str, *, default: float, upper: float | None = None) -> float:
    """A Kiali number (a string like ``"20.00"``, or a JSON number) as a finite float >= 0.

    None (absent) gives `default`. Raises `MalformedPayload` naming `path` for anything
    else: non-numeric strings, booleans, negative, NaN/inf, or above `upper`.
    """
    if value is None:
        return default
    kind = type(value)
    if kind is not str and kind is not float and kind is not int:   # bool is not int here
        raise _bad(path, f"expected a number or numeric string, got {kind.__name__}")
    try:
        number = float(value)
    except (ValueError, OverflowError):
        raise _bad(path, f"not a number: {value!r:.40}") from None
    if not (0.0 <= number < math.inf):     # also False for NaN
        raise _bad(path, f"expected a finite number >= 0, got {value!r:.40}")
    if upper is not None and number > upper:
        raise _bad(path, f"expected at most {upper:g}, got {value!r:.40}")
    return number


def _mapping(value: Any, path: str, *, optional: bool = False) -> Mapping[str, Any]:
    if type(value) is dict:                # the common case, without the ABC check
        return value
    if value is None and optional:
        return {}
    if not isinstance(value, Mapping):
        raise _bad(path, f"expected an object, got {type(value).__name__}")
    return value


def _list(value: Any, path: str) -> list[Any]:
    if value is None:        # Go marshals an empty slice of a nil map as null
        return []
    if not isinstance(value, list):
        raise _bad(path, f"expected a list, got {type(value).__name__}")
    return value


def _text(value: Any, path: str) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise _bad(path, f"expected a string, got {type(value).__name__}")
    return value


def _number(value: Any) -> float | None:
    """Fast path of `parse_number`: a finite float >= 0 from a str/float/int, else None
    (absent or bad: the caller asks `parse_number`, which returns the default or raises
    the exact typed error). Saves the path strings and the call on every good number."""
    kind = type(value)
    if kind is str or kind is float or kind is int:
        try:
            number = float(value)
        except (ValueError, OverflowError):
            return None
        if 0.0 <= number < math.inf:        # also False for NaN
            return number
    return None


def _node_path(i: int) -> str:
    return f"elements.nodes[{i}].data"


def _edge_path(i: int) -> str:
    return f"elements.edges[{i}].data"


def _data(wrapper: Any, i: int, kind: str) -> Mapping[str, Any]:
    """``elements.<kind>[i].data`` as a mapping (typed error naming the path otherwise)."""
    if type(wrapper) is dict:
        data = wrapper.get("data")
        if type(data) is dict:
            return data
    return _mapping(_mapping(wrapper, f"elements.{kind}[{i}]").get("data"),
                    f"elements.{kind}[{i}].data")


def _field_text(data: Mapping[str, Any], key: str, path: Any, suffix: str) -> str:
    """`data[key]` as a string ("" if absent); `path()` + `suffix` names it in errors."""
    value = data.get(key)
    if type(value) is str:
        return value
    return _text(value, f"{path()}.{suffix}")


_TRUE = frozenset({"true"})
_FALSE = frozenset({"false", ""})


def _flag(data: Mapping[str, Any], key: str, path: Any, *, info: bool = False) -> bool:
    """A node flag: absent/None/False -> False, True -> True, the strings ``"true"`` /
    ``"false"`` (any case, spaces ignored) -> their value; with `info` (``isGateway``,
    whose value is Kiali's ``GWInfo`` object) any object -> True. Anything else raises
    `MalformedPayload` naming ``path().key``."""
    value = data.get(key)
    if value is None or value is False:
        return False
    if value is True:
        return True
    if type(value) is str:
        word = value.strip().lower()
        if word in _TRUE:
            return True
        if word in _FALSE:
            return False
        raise _bad(f"{path()}.{key}", f"expected a boolean, got {value!r:.40}")
    if info and isinstance(value, Mapping):
        return True
    raise _bad(f"{path()}.{key}", f"expected a boolean{' or an object' if info else ''}, "
                                  f"got {type(value).__name__}")


#: Skip reasons of a node outside the application whose calls into it are kept as edges.
OUTSIDE_REASONS = frozenset({"unknown", "gateway", "outside", "not_known"})


def outside_source(name: str, node_ns: str, reason: str, namespace: str | None) -> str:
    """The edge-source name of a node outside the application (`OUTSIDE_REASONS`):
    ``unknown`` for traffic without Istio telemetry, else ``<name>.<namespace>`` when the
    node lives in another namespace (a name no Deployment of `namespace` can collide
    with), else its name."""
    if reason == "unknown" or not name:
        return "unknown"
    return f"{name}.{node_ns}" if node_ns and node_ns != namespace else name


def _skip_reason(data: Mapping[str, Any], i: int, graph_type: str, namespace: str | None,
                 known: frozenset[str] | None) -> tuple[str | None, str, str]:
    """(reason to skip or None, name, namespace) of node `i`; see the module docstring."""
    path = lambda: _node_path(i)  # noqa: E731  (built only for an error message)
    node_type = _field_text(data, "nodeType", path, "nodeType")
    name = _field_text(data, _NAME_FIELD.get(graph_type, "workload"), path, "name")
    node_ns = _field_text(data, "namespace", path, "namespace")
    if node_type == "box" or data.get("isBox"):     # isBox is the box's kind, a string
        return "box", name, node_ns
    if node_type == "unknown" or name == "unknown":
        return "unknown", name, node_ns
    if _flag(data, "isDead", path):
        return "dead", name, node_ns
    if _flag(data, "isGateway", path, info=True) or _flag(data, "isWaypoint", path):
        return "gateway", name, node_ns
    if _flag(data, "isOutside", path) or (namespace is not None and node_ns != namespace):
        return "outside", name, node_ns
    if node_type != _PRIMARY_TYPE.get(graph_type, "workload"):
        return f"{node_type or 'untyped'}_node", name, node_ns
    if not name:
        return "invalid", name, node_ns
    if known is not None and name not in known:
        return "not_known", name, node_ns
    return None, name, node_ns


def _value(data: Mapping[str, Any], key: str, path: Any, *, default: float,
           upper: float | None = None) -> float:
    """`parse_number(data[key])`, with `path()` built only when the value is not a plain
    valid number (absent, bad, or above `upper`)."""
    value = data.get(key)
    if value is None:
        return default
    number = _number(value)
    if number is None or (upper is not None and number > upper):
        return parse_number(value, f"{path()}.{key}", default=default, upper=upper)
    return number


def _edge_row(data: Mapping[str, Any], i: int) -> tuple[str, float, float, float, float, float]:
    """(protocol, qps, p95_ms, err_rate, mtls, throughput bytes/s) of edge `i`."""
    path = lambda: _edge_path(i)  # noqa: E731  (built only for an error message)
    traffic = data.get("traffic")
    if type(traffic) is not dict:
        traffic = _mapping(traffic, f"{path()}.traffic", optional=True)
    protocol = _field_text(traffic, "protocol", lambda: f"{path()}.traffic",
                           "protocol") or "unknown"
    rates = traffic.get("rates")
    if type(rates) is not dict:
        rates = _mapping(rates, f"{path()}.traffic.rates", optional=True)
    rpath = lambda: f"{path()}.traffic.rates"  # noqa: E731
    parsed: dict[str, float] = {}
    for key, value in rates.items():       # every rate must be a number, even unused ones
        number = _number(value)
        if number is None:
            number = parse_number(value, f"{rpath()}.{key}", default=0.0)
        parsed[key] = number
    qps = parsed.get(_TOTAL.get(protocol, protocol), 0.0)
    err = 0.0
    if protocol in _PCT_ERR and rates.get(_PCT_ERR[protocol]) is not None:
        err = _value(rates, _PCT_ERR[protocol], rpath, default=0.0, upper=100.0) / 100.0
    elif protocol in _ERR_KEYS and qps > 0:
        errors = 0.0
        for key in _ERR_KEYS[protocol]:
            errors += parsed.get(key, 0.0)
        if errors == math.inf:
            raise _bad(rpath(), "error rates sum to infinity (overflow)")
        err = min(errors / qps, 1.0)
    p95 = _value(data, "responseTime", path, default=math.nan)
    mtls = _value(data, "isMTLS", path, default=0.0, upper=100.0) / 100.0
    throughput = _value(data, "throughput", path, default=math.nan)
    if protocol == "tcp":
        if math.isnan(throughput):
            throughput = qps
        qps = math.nan
    return protocol, qps, p95, err, mtls, throughput


def _timestamp(payload: Mapping[str, Any], ts: Any) -> pd.Timestamp:
    if ts is not None:
        if type(ts) is pd.Timestamp and ts.tzinfo is datetime.UTC:
            return ts                      # already what the conversion below returns
        stamp = pd.Timestamp(ts)
        return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    raw = payload.get("timestamp")
    if raw is None:
        return pd.Timestamp.now(tz="UTC").floor("s")
    seconds = parse_number(raw, "timestamp", default=0.0, upper=4_102_444_800)  # < year 2100
    return pd.Timestamp(int(seconds), unit="s", tz="UTC")


_MISSING = object()


def _endpoint(data: Mapping[str, Any], end: str, names: Mapping[str, str | None],
              i: int) -> str | None:
    """The service name (None = skipped node) that edge `i`'s `end` id refers to."""
    node_id = data.get(end)
    name = names.get(node_id, _MISSING) if isinstance(node_id, str) else _MISSING
    if name is _MISSING:
        raise _bad(f"{_edge_path(i)}.{end}", f"references no node ({str(node_id)[:16]!r})")
    return name  # type: ignore[return-value]


def _check_finite(values: np.ndarray, what: tuple[str, ...], names: list[Any]) -> None:
    """Raise `MalformedPayload` if a sum in `values` (shape ``(len(what), len(names))``)
    overflowed to +-inf: each rate is finite, but rates near 1e308 add up to infinity.
    `names[j]` (a service, or a (source, target, protocol) key) names column j."""
    bad = np.isinf(values)
    if bad.any():
        row, col = (int(k[0]) for k in np.nonzero(bad))
        name = names[col] if isinstance(names[col], str) else " -> ".join(names[col][:2])
        raise _bad("elements.edges", f"{what[row]} of {name:.80} sums to infinity "
                                     "(rates too large)")


def _aggregate_edges(rows: list[tuple[str, str, str, float, float, float, float]]
                     ) -> pd.DataFrame:
    """One row per (source, target, protocol): qps summed, err/mtls qps-weighted, p95 max
    (several Kiali nodes can share a name, e.g. the same workload in two clusters).
    Plain Python: pandas' groupby costs more than the whole parse of a typical graph."""
    if not rows:
        return empty_edges()
    merged: dict[tuple[str, str, str], list[float]] = {}
    for src, dst, protocol, qps, p95, err, mtls in rows:
        key = (src, dst, protocol)
        w = qps if qps > 0 else 1e-12          # NaN (tcp) and 0 weigh equally
        acc = merged.get(key)
        if acc is None:
            merged[key] = [qps, p95, err * w, mtls * w, w]
            continue
        acc[0] = acc[0] + qps if not math.isnan(acc[0]) else qps
        acc[1] = p95 if math.isnan(acc[1]) else (acc[1] if math.isnan(p95) else max(acc[1], p95))
        acc[2] += err * w
        acc[3] += mtls * w
        acc[4] += w
    keys = list(merged)
    sums = np.array(list(merged.values()), dtype=float).reshape(len(keys), 5).T
    _check_finite(sums[[0, 2, 3, 4]], ("qps", "err_rate weight", "mtls weight", "qps weight"),
                  keys)
    floats = np.empty((4, len(keys)))
    floats[0] = sums[0]                    # qps
    floats[1] = sums[1]                    # p95_ms
    np.divide(sums[2], sums[4], out=floats[2])    # err_rate (qps-weighted mean)
    np.divide(sums[3], sums[4], out=floats[3])    # mtls (qps-weighted mean)
    return _frame(_EDGE_INDEX, [[k[0] for k in keys], [k[1] for k in keys],
                                [k[2] for k in keys]], floats)


def parse_graph(
    payload: Any,
    namespace: str | None = None,
    known_services: Iterable[str] | None = None,
    ts: Any = None,
    max_services: int | None = None,
) -> GraphSnapshot:
    """Turn a Kiali ``/api/namespaces/graph`` response into a `GraphSnapshot`.

    Args:
        payload: the decoded JSON (a dict) of a workload, app, versionedApp or service graph.
        namespace: keep only nodes of this namespace (others are counted as ``outside``);
            None keeps every namespace and names the snapshot after the most common one.
        known_services: if given, names outside it are counted as ``not_known``.
        ts: the snapshot's time (anything `pd.Timestamp` takes); default the payload's
            ``timestamp`` (Kiali's queryTime, unix seconds).
        max_services: raise `TooManyServices` if more services remain (docs/reliability.md C6).

    Returns:
        `GraphSnapshot` with ``nodes`` (S rows, `NODE_COLUMNS`) and ``edges`` (E rows,
        `EDGE_COLUMNS`, endpoints are service names); see the module docstring for units
        and defaults.

    Raises:
        MalformedPayload: the payload breaks Kiali's schema (the message names the path).
        TooManyServices: more than `max_services` services.
    """
    payload = _mapping(payload, "$")
    graph_type = _text(payload.get("graphType"), "graphType") or "workload"
    elements = _mapping(payload.get("elements"), "elements")
    raw_nodes = _list(elements.get("nodes"), "elements.nodes")
    raw_edges = _list(elements.get("edges"), "elements.edges")
    known = frozenset(known_services) if known_services is not None else None
    stamp = _timestamp(payload, ts)

    names: dict[str, str | None] = {}          # node id -> service name (None = skipped)
    outside: dict[str, str] = {}               # node id -> edge-source name (OUTSIDE_REASONS)
    skipped: Counter[str] = Counter()
    namespaces: Counter[str] = Counter()
    index: dict[str, int] = {}                 # service name -> row (first-seen order)
    for i, wrapper in enumerate(raw_nodes):
        data = _data(wrapper, i, "nodes")
        node_id = data.get("id")
        if not isinstance(node_id, str) or not node_id:
            raise _bad(f"{_node_path(i)}.id", "expected a non-empty string id")
        if node_id in names:
            raise _bad(f"{_node_path(i)}.id", f"duplicate node id {node_id[:16]}")
        reason, name, node_ns = _skip_reason(data, i, graph_type, namespace, known)
        if reason is not None:
            skipped[reason] += 1
            names[node_id] = None
            if reason in OUTSIDE_REASONS:
                outside[node_id] = outside_source(name, node_ns, reason, namespace)
            continue
        names[node_id] = name
        namespaces[node_ns] += 1
        if name not in index:
            index[name] = len(index)
    services = list(index)
    if max_services is not None and len(services) > max_services:
        raise TooManyServices(len(services), max_services, source=SOURCE)

    rps_in = [0.0] * len(services)
    rx = [math.nan] * len(services)
    tx = [math.nan] * len(services)
    rows: list[tuple[str, str, str, float, float, float, float]] = []
    edge_ids: set[str] = set()
    for i, wrapper in enumerate(raw_edges):
        data = _data(wrapper, i, "edges")
        edge_id = data.get("id")
        if type(edge_id) is str:
            if edge_id in edge_ids:   # the same edge twice would count its traffic twice
                raise _bad(f"{_edge_path(i)}.id", f"duplicate edge id {edge_id[:64]}")
            edge_ids.add(edge_id)
        src, dst = _endpoint(data, "source", names, i), _endpoint(data, "target", names, i)
        protocol, qps, p95, err, mtls, throughput = _edge_row(data, i)
        kbps = throughput * 8.0 / 1000.0
        if dst is not None:
            d = index[dst]
            rps_in[d] += 0.0 if math.isnan(qps) else qps
            if not math.isnan(kbps):
                rx[d] = kbps if math.isnan(rx[d]) else rx[d] + kbps
        if src is not None and not math.isnan(kbps):
            s = index[src]
            tx[s] = kbps if math.isnan(tx[s]) else tx[s] + kbps
        caller = src or outside.get(data["source"])   # a call from outside is kept too
        if caller is None or dst is None:
            skipped["dropped_edges"] += 1
            continue
        rows.append((caller, dst, protocol, qps, p95, err, mtls))

    floats = np.full((7, len(services)), np.nan)   # replicas..mem_mi: Kiali knows none
    floats[4] = rx
    floats[5] = tx
    floats[6] = rps_in
    _check_finite(floats[4:], ("rx_kbps", "tx_kbps", "rps_in"), services)
    nodes = _frame(_NODE_INDEX, [services], floats)
    ns = namespace if namespace is not None else (namespaces.most_common(1)[0][0]
                                                  if namespaces else "")
    return GraphSnapshot(stamp, ns, nodes, _aggregate_edges(rows), dict(skipped))
