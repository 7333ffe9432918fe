"""Kiali graph parsing (docs/reliability.md C3, C4, C6) and the Kiali HTTP client (C1)."""

from __future__ import annotations

import copy
import ipaddress
import json
import math
import socket
from pathlib import Path

import pandas as pd
import pytest
import urllib3
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gnnrl.config import ConfigError
from gnnrl.data.snapshot import EDGE_COLUMNS, NODE_COLUMNS
from gnnrl.sources.errors import (
    MalformedPayload,
    SourceAuthError,
    SourceError,
    SourceUnavailable,
    TooManyServices,
)
from gnnrl.sources.kiali import KialiClient, parse_graph
from gnnrl.testing.kiali_fake import FakeKiali

FIXTURES = Path(__file__).parent / "fixtures" / "kiali"
OB = "onlineboutique"


def load(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text())


@pytest.fixture(scope="module")
def ob_payload() -> dict:
    return load("onlineboutique_workload_graph.json")


def edge(snap, src, dst):
    rows = snap.edges[(snap.edges.source == src) & (snap.edges.target == dst)]
    assert len(rows) == 1, (src, dst, snap.edges)
    return rows.iloc[0]


def node(snap, name):
    rows = snap.nodes[snap.nodes.service == name]
    assert len(rows) == 1
    return rows.iloc[0]


# ----------------------------------------------------------------- parsing real responses
@pytest.mark.parametrize("name", sorted(p.name for p in FIXTURES.glob("*.json")))
def test_every_kiali_fixture_parses_into_the_snapshot_schema(name):
    snap = parse_graph(load(name))
    assert list(snap.nodes.columns) == list(NODE_COLUMNS)
    assert list(snap.edges.columns) == list(EDGE_COLUMNS)
    assert len(snap.nodes) > 0 and len(snap.edges) > 0
    assert set(snap.edges.target) <= set(snap.services)
    callers = set(snap.edges.source) - set(snap.services)   # calls from outside the app
    assert all(c == "unknown" or "." in c or c.startswith("istio-") for c in callers)
    assert snap.edges.err_rate.between(0, 1).all() and snap.edges.mtls.between(0, 1).all()
    assert snap.ts.tzinfo is not None


def test_edges_are_resolved_from_node_ids_to_workload_names():
    snap = parse_graph(load("test_workload_graph.expected.json"), namespace="bookinfo")
    got = {(r.source, r.target, r.protocol) for r in snap.edges.itertuples()}
    assert ("productpage-v1", "details-v1", "http") in got
    assert ("reviews-v2", "ratings-v1", "http") in got
    assert ("productpage-v1", "tcp-v1", "tcp") in got
    assert not any(len(s) == 64 for s in snap.edges.source)    # never a hashed node id


def test_rates_strings_become_numbers_and_percent_errors_fractions():
    snap = parse_graph(load("test_workload_graph.expected.json"), namespace="bookinfo")
    details = edge(snap, "productpage-v1", "details-v1")
    assert details.qps == 80.0
    assert details.err_rate == pytest.approx(0.5)     # httpPercentErr "50.0" (4xx + 5xx)
    assert edge(snap, "reviews-v3", "ratings-v1").err_rate == pytest.approx(0.333)


def test_app_graph_names_services_by_app():
    snap = parse_graph(load("test_app_graph.expected.json"), namespace="bookinfo")
    assert {"productpage", "reviews", "ratings", "details"} <= set(snap.services)
    assert node(snap, "reviews").rps_in == pytest.approx(20 + 40 + 40)   # v1 + v2 + v3


@pytest.mark.parametrize(("src", "dst", "qps", "p95", "err", "mtls"), [
    ("frontend", "checkoutservice", 6.0, 120.0, 0.0, 1.0),
    ("loadgenerator", "frontend", 30.0, 45.0, 0.02, 1.0),
    ("checkoutservice", "paymentservice", 6.0, 8.0, 0.05, 0.5),   # grpcErr / grpc, isMTLS 50
    ("recommendationservice", "productcatalogservice", 90.0, 5.0, 0.0, 1.0),
])
def test_onlineboutique_edge_values(ob_payload, src, dst, qps, p95, err, mtls):
    snap = parse_graph(ob_payload, namespace=OB)
    row = edge(snap, src, dst)
    assert (row.qps, row.p95_ms) == (qps, p95)
    assert row.err_rate == pytest.approx(err) and row.mtls == pytest.approx(mtls)


def test_tcp_edge_has_no_request_rate_but_feeds_throughput(ob_payload):
    snap = parse_graph(ob_payload, namespace=OB)
    row = edge(snap, "cartservice", "redis-cart")
    assert row.protocol == "tcp" and math.isnan(row.qps) and math.isnan(row.p95_ms)
    assert node(snap, "redis-cart").rx_kbps == pytest.approx(51200 * 8 / 1000)
    assert node(snap, "redis-cart").rps_in == 0.0


def test_unknown_gateway_and_dead_nodes_are_counted_not_mapped(ob_payload):
    snap = parse_graph(ob_payload, namespace=OB)
    assert snap.skipped == {"unknown": 1, "gateway": 1, "dead": 1, "dropped_edges": 1}
    assert not {"unknown", "istio-ingressgateway", "adservice-v2"} & set(snap.services)
    # the entry's load still includes traffic from the gateway and the unknown source
    assert node(snap, "frontend").rps_in == pytest.approx(100 + 20 + 30)


def test_calls_from_outside_the_app_stay_edges_with_the_entrys_end_to_end_numbers(ob_payload):
    snap = parse_graph(ob_payload, namespace=OB)
    into = snap.edges[snap.edges.target == "frontend"].set_index("source")
    gateway = into.loc["istio-ingressgateway.istio-system"]     # named for its namespace
    assert (gateway.qps, gateway.p95_ms, gateway.err_rate) == (100, 48, 0)
    unknown = into.loc["unknown"]
    assert (unknown.qps, unknown.p95_ms, unknown.err_rate) == (20, 52, pytest.approx(0.05))
    assert "adservice-v2" not in set(snap.edges.source)       # a dead workload's edge: dropped


def test_known_services_keep_other_workloads_out(ob_payload):
    known = [s for s in parse_graph(ob_payload).services if s != "loadgenerator"]
    snap = parse_graph(ob_payload, namespace=OB, known_services=known)
    assert "loadgenerator" not in snap.services
    assert snap.skipped["not_known"] == 1
    assert node(snap, "frontend").rps_in == pytest.approx(150)


def test_nodes_of_another_namespace_are_outside(ob_payload):
    snap = parse_graph(ob_payload, namespace="other")
    assert snap.services == [] and snap.skipped["outside"] == 12


def test_more_services_than_allowed_is_a_clear_error(ob_payload):
    with pytest.raises(TooManyServices, match="12 services exceed the limit of 10"):
        parse_graph(ob_payload, namespace=OB, max_services=10)


def test_timestamp_comes_from_the_payload_or_the_caller(ob_payload):
    assert parse_graph(ob_payload).ts == pd.Timestamp("2026-01-01", tz="UTC")
    assert parse_graph(ob_payload, ts="2026-02-01T10:00").ts == pd.Timestamp(
        "2026-02-01T10:00", tz="UTC")


# ----------------------------------------------------------------- missing values (C3)
def _edge_data(payload, src, dst):
    ids = {n["data"].get("workload"): n["data"]["id"] for n in payload["elements"]["nodes"]}
    for e in payload["elements"]["edges"]:
        if e["data"]["source"] == ids[src] and e["data"]["target"] == ids[dst]:
            return e["data"]
    raise KeyError((src, dst))


@pytest.mark.parametrize(("drop", "column", "expected"), [
    ("responseTime", "p95_ms", math.nan),     # unknown latency: NaN, never 0
    ("isMTLS", "mtls", 0.0),                  # securityPolicy omits it when no mTLS
    ("traffic", "qps", 0.0),                  # Kiali omits zero rates
    ("throughput", "qps", 6.0),               # throughput only feeds node rx/tx
])
def test_missing_edge_fields_become_documented_defaults(ob_payload, drop, column, expected):
    payload = copy.deepcopy(ob_payload)
    del _edge_data(payload, "checkoutservice", "paymentservice")[drop]
    value = edge(parse_graph(payload, namespace=OB), "checkoutservice", "paymentservice")[column]
    assert (math.isnan(value) and math.isnan(expected)) or value == expected


def test_rates_given_as_json_numbers_parse_like_strings(ob_payload):
    payload = copy.deepcopy(ob_payload)
    data = _edge_data(payload, "checkoutservice", "paymentservice")
    data["traffic"]["rates"] = {"grpc": 6, "grpcErr": 0.3}
    data["responseTime"] = 8
    row = edge(parse_graph(payload, namespace=OB), "checkoutservice", "paymentservice")
    assert (row.qps, row.p95_ms, row.err_rate) == (6.0, 8.0, pytest.approx(0.05))


def test_empty_graph_is_an_empty_snapshot():
    snap = parse_graph({"timestamp": 1, "graphType": "workload",
                        "elements": {"nodes": None, "edges": None}})
    assert snap.nodes.empty and snap.edges.empty and snap.skipped == {}


# ----------------------------------------------------------------- malformed (C4)
def _set(payload, path, value):
    target = payload
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return payload


@pytest.mark.parametrize(("path", "value", "named"), [
    (("elements",), [], "elements"),
    (("elements", "nodes"), {"a": 1}, "elements.nodes"),
    (("elements", "nodes", 0, "data", "id"), 7, "elements.nodes[0].data.id"),
    (("elements", "nodes", 1, "data", "workload"), ["x"], "elements.nodes[1].data.name"),
    (("elements", "edges", 2, "data", "target"), "nope", "elements.edges[2].data.target"),
    (("elements", "edges", 3, "data", "traffic", "rates", "grpc"), "fast",
     "elements.edges[3].data.traffic.rates.grpc"),
    (("elements", "edges", 3, "data", "responseTime"), "-5",
     "elements.edges[3].data.responseTime"),
    (("elements", "edges", 3, "data", "isMTLS"), "250", "elements.edges[3].data.isMTLS"),
    (("elements", "edges", 3, "data", "traffic", "rates", "grpc"), "nan",
     "elements.edges[3].data.traffic.rates.grpc"),
    (("elements", "edges", 3, "data", "traffic"), True, "elements.edges[3].data.traffic"),
    (("timestamp",), "yesterday", "timestamp"),
])
def test_schema_violations_raise_malformed_payload_naming_the_path(ob_payload, path, value,
                                                                   named):
    payload = _set(copy.deepcopy(ob_payload), path, value)
    with pytest.raises(MalformedPayload) as err:
        parse_graph(payload, namespace=OB)
    assert err.value.path == named


def test_non_object_payload_is_malformed():
    with pytest.raises(MalformedPayload, match=r"\$"):
        parse_graph([1, 2, 3])


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True)
    | st.text(max_size=8) | st.sampled_from(["20.00", "-1", "1e400", "unknown", "box"]),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
        st.sampled_from(["id", "data", "nodes", "edges", "source", "target", "traffic",
                         "rates", "http", "grpc", "protocol", "nodeType", "workload",
                         "isDead", "responseTime", "isMTLS", "elements", "timestamp"]),
        inner, max_size=5),
    max_leaves=20)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(payload=json_values)
def test_fuzzed_json_raises_only_typed_errors(payload):
    try:
        parse_graph(payload, max_services=50)
    except (MalformedPayload, TooManyServices):
        pass


_FIELD_PATHS = [
    ("elements", "nodes", i, "data", key) for i in (0, 3, 12)
    for key in ("id", "nodeType", "workload", "namespace", "isDead", "isOutside", "isGateway")
] + [
    ("elements", "edges", i, "data", key) for i in (0, 5, 18)
    for key in ("source", "target", "traffic", "responseTime", "throughput", "isMTLS")
] + [("elements", "edges", 5, "data", "traffic", "rates"),
     ("elements", "edges", 5, "data", "traffic", "protocol"), ("timestamp",), ("graphType",)]


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(path=st.sampled_from(_FIELD_PATHS), value=json_values)
def test_fuzzed_fields_of_a_real_graph_raise_only_typed_errors(ob_payload, path, value):
    payload = _set(copy.deepcopy(ob_payload), path, value)
    try:
        snap = parse_graph(payload, namespace=OB)
    except (MalformedPayload, TooManyServices):
        return
    assert snap.edges.err_rate.between(0, 1).all() and snap.edges.mtls.between(0, 1).all()


# ----------------------------------------------------------------- HTTP client (C1)
@pytest.fixture
def kiali(kiali, ob_payload):
    kiali.set_graph(OB, ob_payload)
    return kiali


def fast_client(url: str, **kw) -> KialiClient:
    kw = {"retries": 2, "backoff_s": 0.0, "backoff_jitter_s": 0.0, "timeout_s": 2.0} | kw
    return KialiClient(url, **kw)


def test_client_sends_the_graph_query_kiali_expects(kiali):
    snap = fast_client(kiali.url, token="s3cret").snapshot(
        OB, query_time=pd.Timestamp("2026-01-01T00:00:00Z"))
    (req,) = kiali.requests
    assert req.path == "/kiali/api/namespaces/graph"
    assert req.params == {
        "namespaces": OB, "graphType": "workload", "duration": "60s",
        "appenders": "responseTime,throughput,securityPolicy,deadNode", "responseTime": "95",
        "throughputType": "request", "injectServiceNodes": "false",
        "queryTime": "1767225600"}
    assert req.headers["Authorization"] == "Bearer s3cret"
    assert "frontend" in snap.services


def test_client_uses_basic_auth(kiali):
    fast_client(kiali.url, username="admin", password="pw").fetch_graph(OB)
    assert kiali.requests[0].headers["Authorization"].startswith("Basic ")


def test_transient_500s_are_retried_then_parsed(kiali):
    kiali.inject(status=500, times=2)
    snap = fast_client(kiali.url).snapshot(OB)
    assert len(kiali.requests) == 3 and len(snap.services) == 12


def test_rate_limited_answer_is_retried(kiali):
    kiali.inject(status=429, times=1)
    assert "elements" in fast_client(kiali.url).fetch_graph(OB)
    assert len(kiali.requests) == 2


def test_persistent_500_is_source_unavailable_after_the_retries(kiali):
    kiali.inject(status=503, times=100)
    with pytest.raises(SourceUnavailable, match="503") as err:
        fast_client(kiali.url).fetch_graph(OB)
    assert err.value.retryable and len(kiali.requests) == 3


def test_timeouts_are_retried_then_source_unavailable(kiali):
    kiali.inject(status=None, delay_s=0.4, times=100)
    with pytest.raises(SourceUnavailable, match="timeout"):
        fast_client(kiali.url, timeout_s=0.1, retries=1).fetch_graph(OB)
    assert len(kiali.requests) == 2


def test_connection_refused_is_source_unavailable():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(SourceUnavailable):
        fast_client(f"http://127.0.0.1:{port}/kiali", retries=0).fetch_graph(OB)


def test_401_is_an_auth_error_without_retries(kiali):
    kiali.inject(status=401, times=100)
    with pytest.raises(SourceAuthError):
        fast_client(kiali.url).fetch_graph(OB)
    assert len(kiali.requests) == 1


def test_unknown_namespace_is_a_source_error(kiali):
    with pytest.raises(SourceError, match="400"):
        fast_client(kiali.url).fetch_graph("nope")


def test_non_json_answer_is_malformed(kiali):
    kiali.inject(status=None, body=b"<html>proxy error</html>")
    with pytest.raises(MalformedPayload, match="not JSON"):
        fast_client(kiali.url).fetch_graph(OB)


def test_huge_payload_is_refused(kiali):
    kiali.inject(status=None, body=b"[" + b"1," * 60_000 + b"1]")
    with pytest.raises(MalformedPayload, match="max_payload_bytes"):
        fast_client(kiali.url, max_payload_bytes=100_000).fetch_graph(OB)


@pytest.mark.parametrize(("settings_", "field"), [
    ({"duration_s": 5, "scrape_interval_s": 15}, "duration_s"),
    ({"duration_s": 60.5}, "duration_s"),
    ({"timeout_s": 0}, "timeout_s"),
    ({"retries": -1}, "retries"),
    ({"token": "t", "username": "u", "password": "p"}, "token"),
    ({"response_time_quantile": 90}, "response_time_quantile"),
])
def test_invalid_client_settings_name_the_field(settings_, field):
    with pytest.raises(ConfigError, match=field):
        KialiClient("http://kiali:20001/kiali", **settings_)


def test_window_shorter_than_the_scrape_interval_is_refused_per_call(kiali):
    with pytest.raises(ConfigError, match="shorter than the scrape interval"):
        fast_client(kiali.url).fetch_graph(OB, duration_s=5)
    assert kiali.requests == []


def test_bad_base_url_is_refused():
    with pytest.raises(ConfigError, match="base_url"):
        KialiClient("kiali:20001")


def test_token_file_is_read_at_every_request(kiali, tmp_path):
    token = tmp_path / "token"
    token.write_text("first\n")
    client = fast_client(kiali.url, token_file=str(token))
    client.fetch_graph(OB)
    token.write_text("rotated")                    # projected tokens rotate on disk
    client.fetch_graph(OB)
    assert [r.headers["Authorization"] for r in kiali.requests] == ["Bearer first",
                                                                    "Bearer rotated"]


def _self_signed(tmp_path: Path) -> tuple[str, str]:
    x509 = pytest.importorskip("cryptography.x509")
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = pd.Timestamp.now(tz="UTC").to_pydatetime()
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(1)
            .not_valid_before(now - pd.Timedelta("1h")).not_valid_after(now + pd.Timedelta("1D"))
            .add_extension(x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_file, key_file = tmp_path / "tls.crt", tmp_path / "tls.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return str(cert_file), str(key_file)


def test_tls_with_the_servers_ca_bundle_works_and_without_it_is_refused(ob_payload, tmp_path):
    cert, key = _self_signed(tmp_path)
    with FakeKiali(tls=(cert, key)) as kiali:
        kiali.set_graph(OB, ob_payload)
        assert "frontend" in fast_client(kiali.url, verify=cert).snapshot(OB).services
        with pytest.raises(SourceError, match="TLS verification") as err:
            fast_client(kiali.url).fetch_graph(OB)          # system CAs do not know it
        assert not err.value.retryable
        with pytest.warns(urllib3.exceptions.InsecureRequestWarning):   # says it is unsafe
            assert "frontend" in fast_client(kiali.url, verify=False).snapshot(OB).services


def test_same_workload_in_two_clusters_is_one_service_with_summed_edges(ob_payload):
    payload = copy.deepcopy(ob_payload)
    nodes = payload["elements"]["nodes"]
    front = next(n for n in nodes if n["data"].get("workload") == "frontend")
    twin = copy.deepcopy(front)
    twin["data"].update(id="f" * 64, cluster="west")
    nodes.append(twin)
    edge_ = copy.deepcopy(_edge_data(ob_payload, "frontend", "cartservice"))
    edge_.update(id="e" * 64, source="f" * 64, responseTime="30", isMTLS="0")
    edge_["traffic"]["rates"] = {"grpc": "20.00", "grpcPercentErr": "10.0"}
    payload["elements"]["edges"].append({"data": edge_})
    snap = parse_graph(payload, namespace=OB)
    assert snap.services.count("frontend") == 1
    row = edge(snap, "frontend", "cartservice")
    assert row.qps == 80.0                                   # 60 + 20
    assert row.p95_ms == 30.0                                # the worse of 9 and 30 ms
    assert row.err_rate == pytest.approx(20 * 0.1 / 80)      # weighted by qps
    assert row.mtls == pytest.approx(60 / 80)


# ----------------------------------------------------------------- hardening
def test_duplicated_edge_id_is_refused_naming_the_id(ob_payload):
    payload = copy.deepcopy(ob_payload)
    first = payload["elements"]["edges"][0]
    payload["elements"]["edges"].append(copy.deepcopy(first))   # would double its traffic
    with pytest.raises(MalformedPayload, match=first["data"]["id"]) as err:
        parse_graph(payload, namespace=OB)
    assert err.value.path == f"elements.edges[{len(payload['elements']['edges']) - 1}].data.id"


def _node_data(payload, workload):
    return next(n["data"] for n in payload["elements"]["nodes"]
                if n["data"].get("workload") == workload)


@pytest.mark.parametrize(("field", "value", "kept"), [
    ("isGateway", "false", True),          # a non-empty string, but it says false
    ("isGateway", "False", True),
    ("isGateway", "true", False),
    ("isGateway", {}, False),               # Kiali's GWInfo object, even empty
    ("isDead", "true", False),
    ("isDead", "false", True),
    ("isOutside", "TRUE", False),
    ("isOutside", " false ", True),
    ("isWaypoint", "true", False),
])
def test_booleans_given_as_strings_are_parsed(ob_payload, field, value, kept):
    payload = copy.deepcopy(ob_payload)
    _node_data(payload, "cartservice")[field] = value
    assert ("cartservice" in parse_graph(payload, namespace=OB).services) is kept


@pytest.mark.parametrize("value", ["maybe", "1", 1, ["true"]])
def test_flag_that_is_no_boolean_is_malformed_naming_it(ob_payload, value):
    payload = copy.deepcopy(ob_payload)
    _node_data(payload, "cartservice")["isDead"] = value
    with pytest.raises(MalformedPayload) as err:
        parse_graph(payload, namespace=OB)
    assert err.value.path.endswith(".data.isDead")


@pytest.mark.parametrize(("edges", "what"), [
    ([("loadgenerator", "frontend"), ("istio-ingressgateway", "frontend")], "rps_in of frontend"),
    ([("frontend", "cartservice")] * 2, "rps_in of cartservice"),   # twin edges
])
def test_rates_near_1e308_that_sum_to_infinity_are_refused(ob_payload, edges, what):
    payload = copy.deepcopy(ob_payload)
    for k, (src, dst) in enumerate(edges):
        data = _edge_data(payload, src, dst)
        if k:   # a second edge between the same names: another cluster's twin
            data = copy.deepcopy(data)
            data["id"] = "d" * 64
            payload["elements"]["edges"].append({"data": data})
        rates = data["traffic"]["rates"]
        rates[data["traffic"]["protocol"]] = "1.7e308"      # finite, each on its own
        rates.pop("grpcPercentErr", None)
        rates.pop("httpPercentErr", None)
    with pytest.raises(MalformedPayload, match=f"{what} sums to infinity"):
        parse_graph(payload, namespace=OB)


def test_json_nested_100k_deep_is_a_typed_error_not_a_recursion_error(kiali):
    kiali.inject(status=None, body=b"[" * 100_000 + b"]" * 100_000)
    with pytest.raises(MalformedPayload, match="nested deeper"):
        fast_client(kiali.url).fetch_graph(OB)


SECRET = "s3cr3t-bearer-token-value-0123456789"


def test_error_body_is_redacted_and_cut_before_it_becomes_a_message(kiali):
    echo = (f'{{"error": "denied", "headers": {{"Authorization": "Bearer {SECRET}"}}, '
            f'"token": "{SECRET}", "pad": "{"y" * 5000}"}}').encode()
    kiali.inject(status=400, body=echo)
    with pytest.raises(SourceError) as err:
        fast_client(kiali.url, token=SECRET).fetch_graph(OB)
    message = str(err.value)
    assert SECRET not in message and SECRET[:12] not in message
    assert "HTTP 400" in message and "***" in message
    assert len(message.split(": ", 2)[-1]) <= 200


@pytest.mark.parametrize("module", ["kiali", "prometheus"])
def test_config_repr_hides_the_token_and_password(module):
    if module == "kiali":
        from gnnrl.sources.kiali import KialiConfig as Config
    else:
        from gnnrl.sources.prometheus import PrometheusConfig as Config
    with_token = Config(base_url="http://kiali:20001", token=SECRET)
    with_password = Config(base_url="http://kiali:20001", username="u", password=SECRET)
    for config in (with_token, with_password):
        assert SECRET not in repr(config) and SECRET not in str(config)
    assert "base_url='http://kiali:20001'" in repr(with_token)
