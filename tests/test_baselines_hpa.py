"""The HPA baseline against the upstream controller's own test cases.

Replica-calculator rows are the cases of kubernetes/kubernetes
pkg/controller/podautoscaler/replica_calculator_test.go (same pods, levels, targets and
expected replicas); behaviour rows follow horizontal_test.go (stabilisation with a fake
clock, scale-up rate limits, min/max, hands off at 0).
"""

from __future__ import annotations

import math

import pytest

from gnnrl.baselines.hpa import (
    HPAConfig,
    HPAController,
    NoMetricsError,
    PodSample,
    apply_behavior,
    hpa_recommendation,
    pods_from_aggregate,
    scale_down_limit,
    scale_up_limit,
)
from gnnrl.config import ConfigError


def _pods(levels, readiness=None, requests=None, n=None):
    """Pods like the upstream test builder: pod i has levels[i] if present, else missing."""
    n = n or max(len(levels), len(readiness or []), len(requests or []))
    readiness = readiness or [True] * n
    requests = requests or [1000] * n
    return [
        PodSample(requests[i], levels[i] if i < len(levels) else None, readiness[i])
        for i in range(n)
    ]


T, F = True, False

# (upstream test name, current, pods, target %, expected replicas)
CALCULATOR_CASES = [
    ("TestReplicaCalcScaleUp", 3, _pods([300, 500, 700]), 30, 5),
    ("TestReplicaCalcScaleUpUnreadyLessScale", 3, _pods([300, 500, 700], [F, T, T]), 30, 4),
    ("TestReplicaCalcScaleUpUnreadyNoScale", 3, _pods([400, 500, 700], [T, F, F]), 30, 3),
    ("TestReplicaCalcScaleDown", 5, _pods([100, 300, 500, 250, 250]), 50, 3),
    ("TestReplicaCalcScaleDownIgnoresUnreadyPods", 5,
     _pods([100, 300, 500, 250, 250], [T, T, T, F, F]), 50, 2),
    ("TestReplicaCalcScaleDownExcludeUnscheduledPods", 5,
     [PodSample(1000, 100)] + [PodSample(1000, None, False)] * 4, 50, 1),
    ("TestReplicaCalcTolerance", 3,
     _pods([1010, 1030, 1020], requests=[900, 1000, 1100]), 100, 3),
    ("TestReplicaCalcMissingMetrics", 4, _pods([400, 95], n=4), 100, 3),
    ("TestReplicaCalcMissingMetricsNoChangeEq", 2, _pods([1000], n=2), 100, 2),
    ("TestReplicaCalcMissingMetricsNoChangeGt", 2, _pods([1900], n=2), 100, 2),
    ("TestReplicaCalcMissingMetricsNoChangeLt", 2, _pods([600], n=2), 100, 2),
    ("TestReplicaCalcMissingMetricsUnreadyChange", 3, _pods([100, 450], [F, T, T]), 50, 3),
    ("TestReplicaCalcMissingMetricsUnreadyScaleUp", 3, _pods([100, 2000], [F, T, T]), 50, 4),
    ("TestReplicaCalcMissingMetricsUnreadyScaleDown", 4,
     _pods([100, 100, 100], [F, T, T, T]), 50, 3),
]


@pytest.mark.parametrize(
    ("current", "pods", "target_pct", "expected"),
    [c[1:] for c in CALCULATOR_CASES],
    ids=[c[0] for c in CALCULATOR_CASES],
)
def test_recommendation_matches_upstream_replica_calculator(current, pods, target_pct, expected):
    assert hpa_recommendation(current, pods, target_pct / 100) == expected


@pytest.mark.parametrize(
    ("utilization", "expected"),
    [(0.70, 4), (0.76, 4), (0.64, 4), (0.78, 5), (0.60, 4), (0.35, 2)],
)
def test_no_change_within_tolerance_of_target(utilization, expected):
    # 4 pods at `utilization` of a 1000m request, target 70 %: 76 % and 64 % are within
    # 10 % of the target (held); 78 % -> ceil(4 * 78/70) = 5; 60 % -> ceil(3.43) = 4.
    pods = [PodSample(1000, utilization * 1000)] * 4
    assert hpa_recommendation(4, pods, 0.7) == expected


def test_missing_metrics_never_cause_a_scale_down():
    # one pod idle, three pods report nothing: treated as 100 % on a scale-down
    pods = [PodSample(1000, 0.0)] + [PodSample(1000, None)] * 3
    assert hpa_recommendation(4, pods, 0.7) == 4


def test_unready_pods_count_as_zero_on_scale_up():
    # 2 ready pods at 140 %, 2 starting: (2800 + 0) / 4000 = 70 % -> within tolerance
    pods = [PodSample(1000, 1400)] * 2 + [PodSample(1000, None, False)] * 2
    assert hpa_recommendation(4, pods, 0.7) == 4


def test_no_metrics_for_any_ready_pod_is_an_error():
    with pytest.raises(NoMetricsError):
        hpa_recommendation(3, [PodSample(1000, None)] * 3, 0.7)
    with pytest.raises(NoMetricsError):
        hpa_recommendation(3, [PodSample(1000, 500, False)] * 3, 0.7)


def test_pods_from_aggregate_spreads_cpu_over_ready_pods_and_marks_starting_ones():
    pods = pods_from_aggregate(replicas=3, ready=2, cpu_m=900.0, request_m=500.0)
    assert [p.ready for p in pods] == [True, True, False]
    assert pods[0].usage_m == pytest.approx(450.0)
    nan_pods = pods_from_aggregate(replicas=2, ready=2, cpu_m=math.nan, request_m=500.0)
    assert all(p.usage_m is None and p.ready for p in nan_pods)


def test_pods_ready_for_only_part_of_the_metric_window_are_ignored():
    # 2 pods served the whole interval (800m), 2 became ready at its end: upstream ignores
    # the new ones' samples, so utilisation is 400m/pod, not a diluted 200m/pod.
    pods = pods_from_aggregate(replicas=4, ready=4, cpu_m=800.0, request_m=500.0, settled=2)
    assert [p.ready for p in pods] == [True, True, False, False]
    assert pods[0].usage_m == pytest.approx(400.0)
    # 4 pods, 2 counted at 80 % of request, target 50 %: scale-up, ignored pods count 0 %
    # -> (800 + 0) / 2000 = 40 % < 50 %: the fill-in reverses the direction -> hold
    assert hpa_recommendation(4, pods, 0.5) == 4


# ---------------------------------------------------------------------------- rate limits

CFG = HPAConfig()

# (case, current, up events (age s, added), expected limit)
SCALE_UP_LIMIT_CASES = [
    ("small target grows by 4 pods", 1, [], 5),
    ("large target doubles", 10, [], 20),
    ("4 pods beat 100 % at 3", 3, [], 7),
    ("pods added within the period count against the limit", 5, [(5.0, 4)], 5),
    ("events exactly one period old are forgotten", 5, [(15.0, 4)], 10),
]


@pytest.mark.parametrize(
    ("current", "events", "expected"),
    [c[1:] for c in SCALE_UP_LIMIT_CASES],
    ids=[c[0] for c in SCALE_UP_LIMIT_CASES],
)
def test_scale_up_limit_is_the_larger_of_100_percent_and_4_pods_per_15s(current, events, expected):
    now = 1000.0
    evs = [(now - age, added) for age, added in events]
    assert scale_up_limit(current, evs, now, CFG.scale_up) == expected


def test_scale_down_limit_100_percent_allows_any_reduction_and_50_percent_halves():
    assert scale_down_limit(10, [], 100.0, CFG.scale_down) == 0
    half = HPAConfig(scale_down_percent=50)
    assert scale_down_limit(10, [], 100.0, half.scale_down) == 5
    assert scale_down_limit(5, [(95.0, 5)], 100.0, half.scale_down) == 5  # period start was 10


# (case, current, desired, min, max, recommendations (age s, replicas), up events, expected)
BEHAVIOR_CASES = [
    ("scale-up is rate limited to +4 pods at 1", 1, 20, 1, 30, [], [], 5),
    ("scale-up is rate limited to +100 % at 10", 10, 50, 1, 30, [], [], 20),
    ("scale-up is clamped to max", 5, 50, 1, 8, [], [], 8),
    ("scale-down is held by a higher recommendation in the window", 8, 2, 1, 30,
     [(200.0, 8)], [], 8),
    ("scale-down uses the highest recommendation in the window", 8, 2, 1, 30,
     [(200.0, 6), (100.0, 4)], [], 6),
    ("recommendations older than the window are forgotten", 8, 2, 1, 30,
     [(300.0, 8), (400.0, 8)], [], 2),
    ("scale-down is clamped to min", 8, 1, 3, 30, [], [], 3),
    ("scale-up waits while this period's budget is spent", 5, 9, 1, 30, [], [(10.0, 4)], 5),
]


@pytest.mark.parametrize(
    ("current", "desired", "lo", "hi", "recs", "ups", "expected"),
    [c[1:] for c in BEHAVIOR_CASES],
    ids=[c[0] for c in BEHAVIOR_CASES],
)
def test_apply_behavior(current, desired, lo, hi, recs, ups, expected):
    now = 10_000.0
    recs = [(now - age, r) for age, r in recs]
    ups = [(now - age, a) for age, a in ups]
    assert apply_behavior(current, desired, lo, hi, recs, ups, [], now, CFG) == expected


# ------------------------------------------------------------------------------ controller


class FakeClock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def _at(util: float, n: int, request: float = 1000.0) -> list[PodSample]:
    return [PodSample(request, util * request)] * n


def test_scale_down_is_held_by_stabilization_window():
    clock = FakeClock()
    hpa = HPAController(HPAConfig(target_utilization=0.5), clock=clock)
    # load drops to 10 % at t=0: the recommendation is 2, but the controller was created
    # with 10 replicas (initial recommendation) -> no scale-down for 300 s.
    held = []
    for t in range(0, 300, 15):
        clock.t = float(t)
        held.append(hpa.sync("svc", 10, _at(0.1, 10), 1, 20).replicas)
    assert held == [10] * 20
    clock.t = 300.0
    decision = hpa.sync("svc", 10, _at(0.1, 10), 1, 20)
    assert decision.replicas == 2 and decision.reason == "Rescale"


def test_short_dip_does_not_scale_down_but_spike_scales_up_at_once():
    clock = FakeClock()
    hpa = HPAController(HPAConfig(target_utilization=0.5), clock=clock)
    assert hpa.sync("svc", 4, _at(0.5, 4), 1, 20).replicas == 4
    clock.t = 15.0
    assert hpa.sync("svc", 4, _at(0.1, 4), 1, 20).replicas == 4  # dip held
    clock.t = 30.0
    assert hpa.sync("svc", 4, _at(1.5, 4), 1, 20).replicas == 8  # +100 % (> +4)
    clock.t = 45.0
    # 8 pods, 4 of them starting; the ready ones still at 150 %: unready count as 0 %
    pods = _at(1.5, 4) + [PodSample(1000, None, False)] * 4
    assert hpa.sync("svc", 8, pods, 1, 20).replicas == 12  # ceil(8 * 0.75 / 0.5) = 12


def test_scale_up_rate_limit_spans_syncs_within_the_period():
    clock = FakeClock()
    cfg = HPAConfig(target_utilization=0.5, scale_up_period_s=60.0)
    hpa = HPAController(cfg, clock=clock)
    assert hpa.sync("svc", 2, _at(5.0, 2), 1, 50).replicas == 6  # max(4, 2+4)
    clock.t = 15.0
    # 6 pods, all hot; period start was 2 -> limit max(4, 6) = 6: no more within 60 s
    assert hpa.sync("svc", 6, _at(5.0, 6), 1, 50).replicas == 6
    clock.t = 60.0
    assert hpa.sync("svc", 6, _at(5.0, 6), 1, 50).replicas == 12


@pytest.mark.parametrize(
    ("current", "lo", "hi", "expected", "reason"),
    [
        (0, 1, 10, 0, "ScalingDisabled"),
        (12, 1, 10, 10, "AboveMax"),
        (1, 3, 10, 3, "BelowMin"),
    ],
)
def test_out_of_range_targets_move_to_the_bound_and_zero_means_hands_off(
    current, lo, hi, expected, reason
):
    hpa = HPAController(HPAConfig(), clock=FakeClock())
    decision = hpa.sync("svc", current, _at(0.7, current), lo, hi)
    assert (decision.replicas, decision.reason) == (expected, reason)


def test_all_metrics_missing_holds_replicas():
    hpa = HPAController(HPAConfig(), clock=FakeClock())
    decision = hpa.sync("svc", 5, [PodSample(1000, None)] * 5, 1, 10)
    assert (decision.replicas, decision.reason) == (5, "NoMetrics")


def test_each_target_keeps_its_own_history():
    clock = FakeClock()
    hpa = HPAController(HPAConfig(target_utilization=0.5), clock=clock)
    hpa.sync("a", 10, _at(0.5, 10), 1, 20)
    clock.t = 15.0
    # "b" is new: its own initial recommendation (2) is not held up by "a"'s 10
    assert hpa.sync("b", 2, _at(0.5, 2), 1, 20).replicas == 2
    assert hpa.sync("a", 10, _at(0.1, 10), 1, 20).replicas == 10


def test_rate_limit_counts_what_was_written_not_what_was_decided():
    clock = FakeClock()
    hpa = HPAController(HPAConfig(target_utilization=0.5), clock=clock)
    assert hpa.sync("svc", 8, _at(2.0, 8), 1, 50).replicas == 16  # +100 %
    hpa.record_written("svc", 8, 15)  # the actuator added only 7
    clock.t = 5.0
    # period start is 15 - 7 = 8 -> limit 16: the missing pod may still be added
    assert hpa.sync("svc", 15, _at(2.0, 15), 1, 50).replicas == 16


def test_forgetting_a_target_drops_its_history():
    clock = FakeClock()
    hpa = HPAController(HPAConfig(target_utilization=0.5), clock=clock)
    hpa.sync("svc", 10, _at(0.5, 10), 1, 20)
    hpa.forget("svc")
    assert hpa.keys == []
    clock.t = 15.0
    # re-created with 4 replicas: its initial recommendation is 4, not the old 10
    assert hpa.sync("svc", 4, _at(0.1, 4), 1, 20).replicas == 4
    clock.t = 320.0
    assert hpa.sync("svc", 4, _at(0.1, 4), 1, 20).replicas == 1


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("target_utilization", 0.0),
        ("tolerance", -0.1),
        ("sync_period_s", 0.0),
        ("scale_down_stabilization_s", -1.0),
        ("scale_up_select", "Fastest"),
        ("scale_up_pods", -1),
    ],
)
def test_invalid_config_names_the_field(field, value):
    with pytest.raises(ConfigError, match=field):
        HPAConfig(**{field: value})


def test_config_round_trips_through_json():
    cfg = HPAConfig(target_utilization=0.5, scale_down_percent=50)
    assert HPAConfig.from_json(cfg.to_json()) == cfg
