"""`edge_outcomes`: the unserved share of each service and the end-to-end p95, from a
graph's edge rows (the one computation the scaler and the real-cluster env share)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from gnnrl.core.envs.cluster_view import edge_outcomes

SERVICES = ("frontend", "cart", "redis")
INSIDE = frozenset(SERVICES)


def outcomes(*rows):
    """rows: (source, target, protocol, qps, p95_ms, err_rate)."""
    src, dst, proto = ([r[k] for r in rows] for k in range(3))
    values = np.array([[r[3], r[4], r[5], 1.0] for r in rows]).reshape(len(rows), 4)
    return edge_outcomes(src, dst, proto, values, SERVICES, INSIDE)


@pytest.mark.parametrize(("rows", "frontend_unserved"), [
    # one caller: its error share
    ([("gw.istio-system", "frontend", "http", 50.0, 100.0, 0.1)], 0.1),
    # several callers, outside ones and inside ones alike: weighted by their req/s
    ([("gw.istio-system", "frontend", "http", 30.0, 100.0, 0.2),
      ("cart", "frontend", "grpc", 10.0, 5.0, 0.0)], 0.15),
    # a call without traffic in the window says nothing
    ([("gw.istio-system", "frontend", "http", 0.0, math.nan, 1.0)], 0.0),
    # TCP has no request-level errors (Istio counts bytes only)
    ([("cart", "frontend", "tcp", math.nan, math.nan, 0.5)], 0.0),
    # nobody calls it: nothing unserved
    ([], 0.0),
])
def test_unserved_is_the_qps_weighted_error_share_of_the_requests_offered(
        rows, frontend_unserved):
    unserved, _ = outcomes(*rows)
    assert unserved[0] == pytest.approx(frontend_unserved)


@pytest.mark.parametrize(("rows", "e2e"), [
    ([("gw.istio-system", "frontend", "http", 50.0, 120.0, 0.0),
      ("frontend", "cart", "grpc", 40.0, 300.0, 0.0)], 120.0),   # inside calls are not e2e
    ([("gw.istio-system", "frontend", "http", 50.0, 120.0, 0.0),
      ("unknown", "frontend", "http", 5.0, 150.0, 0.0)], 150.0),  # the slowest caller's
    ([("gw.istio-system", "frontend", "http", 50.0, math.nan, 0.0)], math.nan),  # no p95
    ([("frontend", "cart", "grpc", 40.0, 300.0, 0.0)], math.nan),  # nobody from outside
    ([("gw.istio-system", "frontend", "http", 0.0, 120.0, 0.0)], math.nan),  # no traffic
])
def test_e2e_p95_is_the_slowest_request_level_call_from_outside_the_app(rows, e2e):
    _, got = outcomes(*rows)
    assert got == pytest.approx(e2e, nan_ok=True)


def test_a_call_into_a_service_outside_the_view_is_ignored():
    unserved, e2e = outcomes(("gw.istio-system", "elsewhere", "http", 9.0, 80.0, 0.5))
    assert unserved.tolist() == [0.0, 0.0, 0.0] and math.isnan(e2e)
