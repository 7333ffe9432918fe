"""Episode metrics computed from hand-built per-step tables."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from gnnrl.evaluation.metrics import (
    count_reversals,
    episode_metrics,
    flash_onset,
    time_to_recover,
)

F, T = False, True


@pytest.mark.parametrize(
    ("case", "violated", "start", "expected"),
    [
        ("never broke", [F] * 10, 2, 0.0),
        ("broke for two steps", [F, F, T, T, F, F, F, F, F, F], 2, 30.0),
        ("a relapse inside the hold restarts the clock", [F, F, T, F, T, F, F, F, F, F], 2, 45.0),
        ("never recovered is censored at the episode end", [F, F, T, T, T, T], 2, 60.0),
        ("recovery at the very end counts", [F, F, T, F, F], 2, 15.0),
    ],
)
def test_time_to_recover(case, violated, start, expected):
    assert time_to_recover(np.array(violated), start, 15.0) == expected


def test_flash_onset_is_first_step_at_65_percent_of_peak():
    assert flash_onset(np.array([30, 31, 29, 70, 100, 100, 40.0])) == 3


def _changes(rows):
    return pd.DataFrame(rows, columns=["service", "step", "delta"])


@pytest.mark.parametrize(
    ("case", "rows", "expected"),
    [
        ("steady growth is not flapping", [("a", 1, 1), ("a", 2, 2), ("a", 5, 1)], 0),
        ("up then down within 300 s", [("a", 1, 2), ("a", 10, -1)], 1),
        ("up then down after 300 s", [("a", 1, 2), ("a", 22, -1)], 0),
        ("services are counted apart", [("a", 1, 1), ("b", 2, -1), ("a", 3, -1)], 1),
        ("up down up", [("a", 1, 1), ("a", 2, -1), ("a", 3, 1)], 2),
    ],
)
def test_direction_reversals(case, rows, expected):
    assert count_reversals(_changes(rows), 15.0) == expected


def test_episode_metrics_arithmetic():
    steps = pd.DataFrame({
        "step": [1, 2, 3, 4],
        "trace_rps": [100.0, 100.0, 200.0, 100.0],
        "e2e_p95_ms": [100.0, 300.0, 200.0, 100.0],
        "e2e_mean_ms": [50.0, 150.0, 100.0, 50.0],
        "slo_violated": [F, T, F, F],
        "error_rate": [0.0, 0.1, 0.0, 0.0],
    })
    # service a: 2,2,3,2 pods at 100m; b: 1 pod at 200m appearing at step 3
    services = pd.DataFrame({
        "step": [1, 2, 3, 4, 3, 4],
        "service": ["a", "a", "a", "a", "b", "b"],
        "replicas": [2, 2, 3, 2, 1, 1],
        "cpu_m": [100.0, 100.0, 150.0, 100.0, 100.0, 100.0],
        "cpu_request_m": [100.0, 100.0, 100.0, 100.0, 200.0, 200.0],
    })
    m = episode_metrics(steps, services, interval_s=900.0, topology_step=3)
    assert m["slo_violation_rate"] == 0.25
    assert m["mean_latency_ms"] == 87.5
    assert m["p95_latency_ms"] == 175.0
    assert m["error_rate"] == pytest.approx(10.0 / 500.0)
    # 11 pod-steps x 0.25 h
    assert m["replica_hours"] == pytest.approx(11 * 0.25)
    # (2+2+3+2) x 0.1 + 2 x 0.2 cores = 1.3 core-steps x 0.25 h
    assert m["cpu_core_hours"] == pytest.approx(1.3 * 0.25)
    assert m["mean_cpu_utilization"] == pytest.approx(650.0 / 1300.0)
    assert m["scaling_actions"] == 2  # a: +1 at step 3, -1 at step 4 (b appearing is not)
    assert m["direction_reversals"] == 0  # the reversal is 900 s later: not flapping
    assert m["recover_topology_s"] == 0.0
    assert math.isnan(m["recover_flash_s"])


def test_violations_are_split_between_events_and_everyday_control():
    n = 12
    violated = np.zeros(n, bool)
    violated[[2, 5, 6, 7, 10]] = True  # flash at 5: rows 5 and 6 are the event's
    steps = pd.DataFrame({"step": np.arange(1, n + 1), "trace_rps": np.full(n, 10.0),
                          "e2e_p95_ms": 100.0, "e2e_mean_ms": 50.0,
                          "slo_violated": violated, "error_rate": 0.0})
    services = pd.DataFrame({"step": np.arange(1, n + 1), "service": "a", "replicas": 1,
                             "cpu_m": 10.0, "cpu_request_m": 100.0})
    m = episode_metrics(steps, services, interval_s=15.0, flash_step=5, topology_step=10)
    assert m["event_violation_steps"] == 3  # rows 5, 6 (flash) and 10 (topology)
    assert m["other_violation_steps"] == 2  # rows 2 and 7
    quiet = episode_metrics(steps, services, interval_s=15.0)
    assert quiet["event_violation_steps"] == 0 and quiet["other_violation_steps"] == 5
