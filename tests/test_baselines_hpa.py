"""The HPA port against the upstream controller's own test cases.

Replica-calculator rows are the cases of kubernetes/kubernetes
pkg/controller/podautoscaler/replica_calculator_test.go, by name (same pods, levels,
requests, targets and expected replicas; upstream's pods have two containers with the
level each, which leaves every ratio unchanged). Behaviour rows follow horizontal.go
(stabilisation with a fake clock, rate limits over both directions' events, min/max, hands
off at 0, the no-behavior path). The five places where an older port disagreed with
upstream are tests of their own, named after the behaviour, with upstream's value.
"""

from __future__ import annotations

import math

import pytest

from gnnrl.config import ConfigError
from gnnrl.hpa import (
    HPAConfig,
    HPAController,
    MissingRequestError,
    NoMetricsError,
    PodSample,
    ScalingPolicy,
    ScalingRules,
    TargetHistory,
    combine_metrics,
    cpu_sample_is_unready,
    external_per_pod_replicas,
    normalize,
    pods_from_aggregate,
    pods_metric_replicas,
    resource_replicas,
    scale_down_limit,
    scale_up_limit,
)
from gnnrl.testing.clock import TickingClock

hpa_recommendation = resource_replicas


def _pods(levels, readiness=None, requests=None, n=None, pending=None):
    """Pods like the upstream test builder: pod i has levels[i] if present, else missing;
    a not-ready pod with a sample is unready (started long ago, never ready)."""
    n = n or max(len(levels), len(readiness or []), len(requests or []), len(pending or []))
    readiness = readiness or [True] * n
    requests = requests or [1000] * n
    pending = pending or [False] * n
    return [
        PodSample(requests[i], levels[i] if i < len(levels) else None, readiness[i],
                  pending[i])
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
     _pods([100], [T, F, F, F, F], pending=[F, T, T, T, T]), 50, 1),
    # upstream drops failed and deleted pods before grouping (the callers here do too)
    ("TestReplicaCalcScaleUpIgnoresFailedPods", 2, _pods([500, 700]), 30, 4),
    ("TestReplicaCalcScaleDownIgnoresFailedPods", 5, _pods([100, 300, 500, 250, 250]), 50, 3),
    ("TestReplicaCalcMissingMetricsScaleDownTargetOver100", 4,
     _pods([200, 100, 100], [F, T, T, T], requests=[1000, 1000, 2000, 2000]), 300, 2),
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
    pods = pods_from_aggregate(replicas=3, ready=2, total=900.0, request_m=500.0)
    assert [(p.ready, p.pending) for p in pods] == [(True, False), (True, False), (False, True)]
    assert pods[0].usage_m == pytest.approx(450.0) and pods[2].usage_m is None
    nan_pods = pods_from_aggregate(replicas=2, ready=2, total=math.nan, request_m=500.0)
    assert all(p.usage_m is None and p.ready for p in nan_pods)


def test_pods_ready_for_only_part_of_the_metric_window_are_ignored():
    # 2 pods served the whole interval (800m), 2 became ready at its end: upstream ignores
    # the new ones' samples, so utilisation is 400m/pod, not a diluted 200m/pod.
    pods = pods_from_aggregate(replicas=4, ready=4, total=800.0, request_m=500.0, settled=2)
    assert [p.ready for p in pods] == [True, True, False, False]
    assert not any(p.pending for p in pods)  # they are running, with a sample
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
    half = ScalingRules.rate(percent=50)
    assert scale_down_limit(10, [], 100.0, half) == 5
    assert scale_down_limit(5, [(95.0, -5)], 100.0, half) == 5  # period start was 10


# (case, current, desired, min, max, recommendations (age s, replicas),
#  events (age s, signed change), expected)
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
    ("current", "desired", "lo", "hi", "recs", "events", "expected"),
    [c[1:] for c in BEHAVIOR_CASES],
    ids=[c[0] for c in BEHAVIOR_CASES],
)
def test_normalize_with_default_behavior(current, desired, lo, hi, recs, events, expected):
    now = 10_000.0
    hist = TargetHistory([(now - age, r) for age, r in recs],
                         [(now - age, d) for age, d in events])
    assert normalize(current, desired, lo, hi, hist, now, CFG).replicas == expected


# ----------------------------------------------- where an older port disagreed with upstream


def test_scale_up_limit_counts_the_scale_down_events_of_the_period_too():
    # calculateScaleUpLimitWithScalingRules: period start = current - added + removed.
    # 6 replicas after +4 and -2 within the period, Percent 300 per 300 s: start 4 -> 16.
    rules = ScalingRules((ScalingPolicy("Percent", 300, 300.0),))
    events = [(900.0, 4), (950.0, -2)]
    assert scale_up_limit(6, events, 1000.0, rules) == 16
    hist = TargetHistory([], events)
    cfg = HPAConfig(scale_up=rules)
    assert normalize(6, 24, 1, 100, hist, 1000.0, cfg).replicas == 16


def test_scale_down_limit_counts_the_scale_up_events_of_the_period_too():
    # calculateScaleDownLimitWithBehaviors: 10 replicas after +2 and -4 within the period,
    # Percent 50 per 180 s: start 10 - 2 + 4 = 12 -> at least 6.
    rules = ScalingRules((ScalingPolicy("Percent", 50, 180.0),))
    events = [(900.0, 2), (950.0, -4)]
    assert scale_down_limit(10, events, 1000.0, rules) == 6
    cfg = HPAConfig(scale_down=ScalingRules(rules.policies, stabilization_window_s=0.0))
    assert normalize(10, 1, 1, 100, TargetHistory([], events), 1000.0, cfg).replicas == 6


def test_stabilisation_never_moves_against_what_the_metric_asks_for():
    # stabilizeRecommendationWithBehaviors keeps the count between the scale-up window's
    # lowest and the scale-down window's highest recommendation. t=0: 4 replicas, the
    # metric asks for 20, the rate limit writes 8. t=15: it asks for 5; the scale-down
    # window still holds 20, but a drop to 5 must never become a scale-up: hold 8.
    clock = TickingClock()
    hpa = HPAController(HPAConfig(target_utilization=0.5), clock=clock)
    assert hpa.decide("svc", 4, 20, 1, 50).replicas == 8
    clock.t = 15.0
    decision = hpa.decide("svc", 8, 5, 1, 50)
    assert (decision.replicas, decision.reason) == (8, "Hold")


def test_missing_pods_count_at_the_target_when_it_is_above_100_percent_on_a_scale_down():
    # replica_calculator.go: fallbackUtilization = max(100, targetUtilization)
    pods = [PodSample(1000, 100)] * 2 + [PodSample(1000, None)] * 2
    # ready at 10 % of a 300 % target; missing at 300 %: (200 + 6000) / 4000 = 155 %
    # -> ratio 0.5167 -> ceil(0.5167 x 4) = 3 (at 100 % they would give 55 % -> 1)
    assert resource_replicas(4, pods, 3.0) == 3


def test_a_running_pod_that_is_not_ready_and_has_no_metric_is_missing_not_ignored():
    # groupPods checks for the metric before readiness. Two ready pods at 10 %, two
    # Running but not Ready without samples, target 50 %: as missing they count at 100 %
    # on this scale-down -> (200 + 2000) / 4000 = 55 % -> up: direction reverses -> hold 4.
    # (Ignored, as an older port had it, they would let it drop to 1.)
    pods = [PodSample(1000, 100)] * 2 + [PodSample(1000, None, ready=False)] * 2
    assert resource_replicas(4, pods, 0.5) == 4
    pending = [PodSample(1000, 100)] * 2 + [PodSample(1000, None, False, pending=True)] * 2
    assert resource_replicas(4, pending, 0.5) == 1


def test_a_pod_without_a_cpu_request_makes_the_utilisation_metric_refuse():
    # calculatePodRequests: "missing request for cpu" for any pod, counted or not
    # (TestReplicaCalcEmptyCPURequest)
    with pytest.raises(MissingRequestError):
        resource_replicas(1, [PodSample(None, 200)], 0.5)
    with pytest.raises(MissingRequestError):
        resource_replicas(2, [PodSample(1000, 900), PodSample(None, None, False, True)], 0.5)
    hpa = HPAController(HPAConfig(), clock=TickingClock())
    assert hpa.sync("svc", 2, [PodSample(1000, 900), PodSample(None, 900)], 1, 10).reason \
        == "NoMetrics"


# ------------------------------------------------------------- features of today's upstream


@pytest.mark.parametrize(("ratio_pct", "up_tol", "down_tol", "expected"), [
    (108, 0.05, 0.1, 5),    # +8 %: outside a 5 % scale-up tolerance -> ceil(4 x 1.08) = 5
    (108, 0.1, 0.1, 4),     # inside the default 10 %
    (92, 0.1, 0.05, 4),     # -8 %: outside a 5 % scale-down tolerance -> ceil(3.68) = 4
    (80, 0.1, 0.25, 4),     # -20 %: inside a 25 % scale-down tolerance -> hold
    (80, 0.1, 0.1, 4),      # -20 % with 10 %: ceil(4 x 0.8) = 4 (rounding holds it too)
    (70, 0.1, 0.25, 3),     # -30 %: outside 25 % -> ceil(2.8) = 3
    (112, 0.15, 0.1, 4),    # +12 % inside a 15 % scale-up tolerance
])
def test_each_direction_has_its_own_tolerance(ratio_pct, up_tol, down_tol, expected):
    # KEP-4951 (HPAConfigurableTolerance): behavior.scaleUp/scaleDown.tolerance
    cfg = HPAConfig(target_utilization=0.5,
                    scale_up=ScalingRules.rate(percent=100, pods=4, tolerance=up_tol,
                                               stabilization_window_s=0.0),
                    scale_down=ScalingRules.rate(percent=100, tolerance=down_tol))
    pods = [PodSample(1000, ratio_pct * 5)] * 4
    assert resource_replicas(4, pods, 0.5, cfg.tolerances) == expected


def test_tolerances_fall_back_to_the_controller_flag_per_direction():
    cfg = HPAConfig(tolerance=0.2, scale_up=ScalingRules.rate(pods=4, tolerance=0.05))
    assert cfg.tolerances == (0.2, 0.05)
    assert HPAConfig(tolerance=0.2, behavior=False,
                     scale_up=ScalingRules.rate(pods=4, tolerance=0.05)).tolerances == (0.2, 0.2)


def test_several_policies_of_one_type_with_their_own_periods():
    # +2 pods per 15 s and +6 pods per 60 s, Min: at most 2 a sync, and 6 a minute
    rules = ScalingRules((ScalingPolicy("Pods", 2, 15.0), ScalingPolicy("Pods", 6, 60.0)),
                         select="Min")
    assert scale_up_limit(4, [], 100.0, rules) == 6
    # 3 syncs later 6 were added within the minute: the 60 s policy allows no more
    events = [(55.0, 2), (70.0, 2), (85.0, 2)]
    assert scale_up_limit(10, events, 100.0, rules) == 10
    # Max instead: the 15 s policy alone (its period holds no event) allows +2
    assert scale_up_limit(10, events, 100.0, ScalingRules(rules.policies, "Max")) == 12


def test_disabled_direction_never_moves():
    cfg = HPAConfig(scale_down=ScalingRules.rate(percent=100, select="Disabled",
                                                 stabilization_window_s=0.0))
    assert normalize(8, 2, 1, 20, TargetHistory(), 0.0, cfg).replicas == 8


@pytest.mark.parametrize(("current", "desired", "hi", "expected"), [
    (1, 20, 50, 4),    # max(2 x 1, 4) = 4 (with behavior defaults: 1 + 4 = 5)
    (2, 20, 50, 4),    # max(4, 4) = 4 (with behavior defaults: 2 + 4 = 6)
    (10, 50, 50, 20),  # 2 x 10
    (10, 50, 15, 15),  # maxReplicas below the limit
    (3, 5, 50, 5),     # within the limit
])
def test_an_hpa_without_behavior_scales_up_at_most_to_twice_or_four(current, desired, hi,
                                                                    expected):
    # horizontal.go normalizeDesiredReplicas -> convertDesiredReplicasWithRules
    cfg = HPAConfig(behavior=False)
    assert normalize(current, desired, 1, hi, TargetHistory(), 0.0, cfg).replicas == expected


def test_an_hpa_without_behavior_has_no_memory_of_earlier_scale_ups():
    clock = TickingClock()
    hpa = HPAController(HPAConfig(behavior=False), clock=clock)
    assert hpa.decide("svc", 1, 20, 1, 50).replicas == 4
    clock.t = 5.0  # within 15 s of the last scale-up: still max(2 x 4, 4) = 8
    assert hpa.decide("svc", 4, 20, 1, 50).replicas == 8


def test_an_hpa_without_behavior_scales_down_after_the_controller_window_at_once():
    clock = TickingClock()
    hpa = HPAController(HPAConfig(behavior=False), clock=clock)
    assert hpa.decide("svc", 10, 10, 1, 50).replicas == 10
    clock.t = 299.0
    assert hpa.decide("svc", 10, 1, 1, 50).replicas == 10  # the 10 of t=0 is in the window
    clock.t = 600.0
    assert hpa.decide("svc", 10, 1, 1, 50).replicas == 1  # no rate limit on the way down


@pytest.mark.parametrize(("proposals", "current", "expected"), [
    ([5, 8], 6, 8),          # the largest recommendation wins
    ([3, 4], 6, 4),          # a scale-down when every metric agrees
    ([None, 8], 6, 8),       # one metric invalid: a scale-up still happens
    ([None, 4], 6, None),    # one invalid and the rest would scale down: no rescale
    ([None, None], 6, None),
])
def test_several_metrics_take_the_largest_and_a_broken_one_blocks_scale_down(
        proposals, current, expected):
    # horizontal.go computeReplicasForMetrics
    assert combine_metrics(current, proposals) == expected


# Pods metric (calcPlainMetricReplicas): values in milli-units
PODS_METRIC_CASES = [
    ("TestReplicaCalcScaleUpCM", 3, [20.0, 10.0, 30.0], None, 15.0, 4),
    ("TestReplicaCalcScaleUpCMUnreadyHotCpuNoLessScale", 3, [50.0, 10.0, 30.0], [T, T, F],
     15.0, 6),
    ("TestReplicaCalcScaleUpCMUnreadyHotCpuScaleWouldScaleDown", 3, [50.0, 15.0, 30.0],
     [F, T, F], 15.0, 7),
    ("TestReplicaCalcScaleDownCM", 5, [12.0] * 5, None, 20.0, 3),
    ("TestReplicaCalcToleranceCM", 3, [20.0, 21.0, 21.0], None, 20.0, 3),
]


@pytest.mark.parametrize(
    ("current", "values", "readiness", "target", "expected"),
    [c[1:] for c in PODS_METRIC_CASES], ids=[c[0] for c in PODS_METRIC_CASES])
def test_pods_metric_matches_upstream(current, values, readiness, target, expected):
    # a Pods metric ignores the Ready condition: only Pending pods are unready
    pods = _pods(values, readiness)
    assert pods_metric_replicas(current, pods, target) == expected


def test_pods_metric_counts_missing_pods_at_the_target_on_a_scale_down():
    pods = [PodSample(None, 2.0)] * 2 + [PodSample(None, None)] * 2
    # ready avg 2 of target 10 -> down; missing at 10: (2+2+10+10)/4 = 6 -> ceil(2.4) = 3
    assert pods_metric_replicas(4, pods, 10.0) == 3


def test_external_per_pod_metric_is_keda_s_formula():
    assert external_per_pod_replicas(4, 100.0, 10.0) == 10
    assert external_per_pod_replicas(4, 42.0, 10.0) == 4   # within tolerance
    assert external_per_pod_replicas(4, float("nan"), 10.0) is None


def test_hpa_policy_with_cpu_and_rps_metrics_follows_the_larger():
    from gnnrl.baselines.hpa import HPAPolicy

    policy = HPAPolicy(0.7, config=HPAConfig(target_rps_per_pod=10.0))
    info = {"slot_names": ["a"], "ready_replicas": [2], "cpu_m": [140.0],
            "cpu_request_m": [100.0], "rps_in": [60.0]}
    # CPU: 70 % of request -> hold 2; req/s: 60 over 2 pods at 10 each -> 6
    assert policy._recommend(0, 2, info) == 6
    assert policy.name == "hpa+rps"


@pytest.mark.parametrize(("age_s", "ready", "ready_for_s", "sample_age_s", "unready"), [
    (3600.0, True, 3000.0, 0.0, False),   # long running, ready
    (3600.0, False, 3000.0, 0.0, False),  # not ready now, but it was ready once: counted
    (3600.0, False, 3600.0, 0.0, True),   # never ready since it started: ignored
    (100.0, True, 90.0, 0.0, False),      # in its init period, ready 90 s, sample window 60 s
    (100.0, True, 30.0, 0.0, True),       # ready only 30 s: the 60 s window began before
    (100.0, False, 90.0, 0.0, True),      # in its init period and not ready
])
def test_cpu_samples_of_starting_pods_are_ignored_like_upstream(age_s, ready, ready_for_s,
                                                               sample_age_s, unready):
    now = 10_000.0
    assert cpu_sample_is_unready(now, now - age_s, ready, now - ready_for_s,
                                 now - sample_age_s, 60.0) is unready


# ------------------------------------------------------------------------------ controller


def _at(util: float, n: int, request: float = 1000.0) -> list[PodSample]:
    return [PodSample(request, util * request)] * n


def test_scale_down_is_held_by_stabilization_window():
    clock = TickingClock()
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
    clock = TickingClock()
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
    clock = TickingClock()
    cfg = HPAConfig(target_utilization=0.5,
                    scale_up=ScalingRules.rate(percent=100, pods=4, period_s=60.0,
                                               stabilization_window_s=0.0))
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
    hpa = HPAController(HPAConfig(), clock=TickingClock())
    decision = hpa.sync("svc", current, _at(0.7, current), lo, hi)
    assert (decision.replicas, decision.reason) == (expected, reason)


def test_all_metrics_missing_holds_replicas():
    hpa = HPAController(HPAConfig(), clock=TickingClock())
    decision = hpa.sync("svc", 5, [PodSample(1000, None)] * 5, 1, 10)
    assert (decision.replicas, decision.reason) == (5, "NoMetrics")


def test_each_target_keeps_its_own_history():
    clock = TickingClock()
    hpa = HPAController(HPAConfig(target_utilization=0.5), clock=clock)
    hpa.sync("a", 10, _at(0.5, 10), 1, 20)
    clock.t = 15.0
    # "b" is new: its own initial recommendation (2) is not held up by "a"'s 10
    assert hpa.sync("b", 2, _at(0.5, 2), 1, 20).replicas == 2
    assert hpa.sync("a", 10, _at(0.1, 10), 1, 20).replicas == 10


def test_rate_limit_counts_what_was_written_not_what_was_decided():
    clock = TickingClock()
    hpa = HPAController(HPAConfig(target_utilization=0.5), clock=clock)
    assert hpa.sync("svc", 8, _at(2.0, 8), 1, 50).replicas == 16  # +100 %
    hpa.record_written("svc", 8, 15)  # the actuator added only 7
    clock.t = 5.0
    # period start is 15 - 7 = 8 -> limit 16: the missing pod may still be added
    assert hpa.sync("svc", 15, _at(2.0, 15), 1, 50).replicas == 16


def test_forgetting_a_target_drops_its_history():
    clock = TickingClock()
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
    ("data", "field"),
    [
        ({"target_utilization": 0.0}, "target_utilization"),
        ({"tolerance": -0.1}, "tolerance"),
        ({"sync_period_s": 0.0}, "sync_period_s"),
        ({"downscale_stabilization_s": -1.0}, "downscale_stabilization_s"),
        ({"scale_up": {"policies": [{"kind": "Pods", "value": 4}], "select": "Fastest"}},
         "select"),
        ({"scale_up": {"policies": [{"kind": "Pods", "value": -1}]}}, "value"),
        ({"scale_up": {"policies": [{"kind": "Pods", "value": 1, "period_s": 2000}]}},
         "period_s"),
        ({"scale_down": {"policies": []}}, "policies"),
        ({"scale_down": {"policies": [{"kind": "Pods", "value": 1}],
                         "stabilization_window_s": 4000}}, "stabilization_window_s"),
        ({"scale_down": {"policies": [{"kind": "Pods", "value": 1}], "tolerance": 1.5}},
         "tolerance"),
        ({"target_utilization": None, "target_rps_per_pod": None}, "at least one metric"),
        ({"behavior": "yes"}, "behavior"),
    ],
)
def test_invalid_config_names_the_field(data, field):
    with pytest.raises(ConfigError, match=field):
        HPAConfig.from_dict(data)


def test_config_round_trips_through_json():
    cfg = HPAConfig(target_utilization=0.5, behavior=False, target_rps_per_pod=12.5,
                    scale_down=ScalingRules.rate(percent=50, pods=2, period_s=60.0,
                                                 tolerance=0.05))
    assert HPAConfig.from_json(cfg.to_json()) == cfg


@pytest.mark.parametrize(("spec", "name", "behavior", "rps"), [
    ("hpa", "hpa", True, None),
    ("hpa-50", "hpa-50", True, None),
    ("hpa-nb", "hpa-nb", False, None),
    ("hpa-nb-80", "hpa-nb-80", False, None),
    ("hpa+rps", "hpa+rps", True, 0.7),
    ("hpa-60+rps", "hpa-60+rps", True, 0.6),
])
def test_policy_specs_choose_the_hpa_object_shape(spec, name, behavior, rps):
    from gnnrl.evaluation.policies import make_policy

    policy = make_policy(spec)
    assert (policy.name, policy.config.behavior, policy.rps_utilization) == (name, behavior, rps)


def test_bad_hpa_specs_are_refused():
    from gnnrl.evaluation.policies import make_policy

    for spec in ("hpa-nb-0", "hpa-nb-300", "hpa+cpu"):
        with pytest.raises(ConfigError):
            make_policy(spec)
