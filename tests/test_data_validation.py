"""Row validation and small parsers: property-based (hypothesis) and table-driven."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gnnrl.data.duration import parse_duration
from gnnrl.data.fit import fit_linear
from gnnrl.data.snapshot import GraphSnapshot
from gnnrl.data.store import SnapshotWriter, read_dataset
from gnnrl.data.validate import check_rows

numbers = st.one_of(st.floats(allow_nan=True, allow_infinity=True, width=64),
                    st.integers(-5, 50).map(float))
names = st.one_of(st.none(), st.just(""), st.text("abcdef-", min_size=1, max_size=8))
node_rows = st.fixed_dictionaries({
    "service": names, "replicas": numbers, "ready_replicas": numbers, "cpu_m": numbers,
    "mem_mi": numbers, "rx_kbps": numbers, "tx_kbps": numbers, "rps_in": numbers})
edge_rows = st.fixed_dictionaries({
    "source": names, "target": names, "protocol": st.sampled_from(["http", "grpc", "tcp", ""]),
    "qps": numbers, "p95_ms": numbers, "err_rate": numbers, "mtls": numbers})


@settings(max_examples=30, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(nodes=st.lists(node_rows, max_size=6), edges=st.lists(edge_rows, max_size=6))
def test_every_row_is_either_stored_valid_or_quarantined(tmp_path_factory, nodes, edges):
    root = tmp_path_factory.mktemp("prop")
    nf = pd.DataFrame(nodes) if nodes else GraphSnapshot(pd.Timestamp(0, tz="UTC"), "n").nodes
    ef = pd.DataFrame(edges) if edges else GraphSnapshot(pd.Timestamp(0, tz="UTC"), "n").edges
    with SnapshotWriter(root) as w:
        w.write(GraphSnapshot(pd.Timestamp("2026-03-01", tz="UTC"), "ns", nf, ef))
    data, bad = read_dataset(root), read_dataset(root, quarantine=True)
    assert len(data.nodes) + len(bad.nodes) == len(nodes)
    assert len(data.edges) + len(bad.edges) == len(edges)
    for name, frame in (("nodes", data.nodes), ("edges", data.edges)):
        if len(frame):
            assert (check_rows(name, frame) == "").all()  # stored rows pass every rule
    num = data.nodes.drop(columns=["service", "namespace", "ts", "date"]).to_numpy(float)
    assert not np.isinf(num).any() and not (num < 0).any()
    assert ((data.edges.err_rate.dropna() <= 1) & (data.edges.mtls.dropna() <= 1)).all()


@pytest.mark.parametrize(("text", "seconds"), [
    ("30s", 30.0), ("5m", 300.0), ("2h", 7200.0), ("1h30m", 5400.0), ("1d", 86400.0),
    ("250ms", 0.25), ("90", 90.0), (45, 45.0), ("1.5h", 5400.0), (" 2H ", 7200.0)])
def test_durations_parse_to_seconds(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "5x", "30m1h", "0s", "-5s", "s", "1h 30m", "h1", True])
def test_bad_durations_are_refused_quoting_the_text(text):
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)


def test_perfect_fit_has_r2_one_and_collinear_columns_are_flagged():
    X = np.array([[1.0, 1.0], [2.0, 1.0], [3.0, 2.0], [5.0, 2.0]])
    y = X @ np.array([2.0, 10.0])
    fit = fit_linear(X, y)
    assert fit.coef == pytest.approx([2.0, 10.0]) and fit.r2 == pytest.approx(1.0)
    assert fit.rmse == pytest.approx(0.0, abs=1e-9)
    collinear = fit_linear(np.array([[1.0, 2.0], [2.0, 4.0], [3.0, 6.0]]), np.array([1, 2, 3.0]))
    assert collinear.cond > 1e12


def test_relative_fit_recovers_coefficients_under_multiplicative_noise():
    rng = np.random.default_rng(0)
    X = np.column_stack([rng.uniform(1, 400, 300), rng.integers(1, 6, 300)])
    y = (X @ np.array([0.8, 10.0])) * np.exp(rng.normal(0, 0.02, 300))
    assert fit_linear(X, y, relative=True).coef == pytest.approx([0.8, 10.0], rel=0.03)
