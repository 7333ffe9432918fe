"""The model's guard: a shorter scale-down window, and no scale-down soon after a scale-up."""

from __future__ import annotations

import pytest

from gnnrl.config import ConfigError
from gnnrl.hpa import HPAConfig, ScalingPolicy, ScalingRules, TargetHistory
from gnnrl.hpa.behavior import guard
from gnnrl.hpa.model_guard import (
    DELAYED,
    ModelGuardConfig,
    guard_model,
    guard_model_and_record,
    scaled_up_within,
)

HPA = HPAConfig()  # the HPA object's defaults: 300 s scale-down window
MODEL = ModelGuardConfig(scale_down_window_s=120.0)  # an operator's shorter window, 360 s delay


def _guard(desired, current, recs=(), events=(), now=1000.0, model=MODEL, bounds=(1, 50)):
    history = TargetHistory(list(recs), list(events))
    return guard_model(desired, current, *bounds, history, now, HPA, model, 7)


def test_the_default_guard_is_the_hpa_s_window_and_a_360_s_delay_after_a_scale_up():
    # chosen on the real-traffic validation week (docs/evaluation.md)
    assert ModelGuardConfig() == ModelGuardConfig(scale_down_window_s=300.0,
                                                  scale_down_delay_after_up_s=360.0)
    recs, events = [(850.0, 12), (900.0, 6), (950.0, 6)], [(-200.0, 7)]
    # a surge's pods stay for the HPA's five minutes after the load has gone
    assert _guard(6, 12, recs, events, model=ModelGuardConfig()).replicas == 12
    assert _guard(6, 12, recs, events, now=1160.0, model=ModelGuardConfig()).replicas == 6


def test_a_shorter_window_lets_a_surge_s_pods_go_after_two_minutes_instead_of_five():
    # the last high recommendation is 150 s old, the last scale-up 20 minutes old
    recs = [(850.0, 12), (900.0, 6), (950.0, 6)]
    events = [(-200.0, 7)]
    assert _guard(6, 12, recs, events).replicas == 6  # the model's 120 s window has passed
    history = TargetHistory(list(recs), list(events))
    hpa_alone = guard(6, 12, 1, 50, history, 1000.0, HPA, 7)
    assert (hpa_alone.replicas, hpa_alone.reasons) == (12, ("stabilized",))  # 300 s holds


def test_a_scale_down_soon_after_a_scale_up_is_held_and_says_why():
    out = _guard(4, 6, events=[(700.0, 2)])  # scaled up 300 s ago: inside the 360 s delay
    assert (out.replicas, out.reasons) == (6, (DELAYED,))
    assert _guard(4, 6, events=[(600.0, 2)]).replicas == 4  # 400 s ago: free to go
    assert _guard(4, 6, events=[(700.0, -2)]).replicas == 4  # a scale-down starts no delay


def test_the_delay_never_holds_a_scale_up_or_a_count_above_its_maximum():
    assert _guard(9, 6, events=[(700.0, 2)]).replicas == 9
    out = _guard(4, 12, events=[(990.0, 2)], bounds=(1, 10))
    assert (out.replicas, out.reasons) == (10, ("above_max",))


def test_hpa_only_is_the_hpa_guard_exactly():
    only = ModelGuardConfig.hpa_only()
    for desired in range(1, 12):
        for events in ([], [(990.0, 3)], [(700.0, -1)]):
            for recs in ([], [(800.0, 9)], [(950.0, 2), (990.0, 5)]):
                history = TargetHistory(list(recs), list(events))
                assert (guard_model(desired, 6, 1, 20, history, 1000.0, HPA, only, 7)
                        == guard(desired, 6, 1, 20, history, 1000.0, HPA, 7))


def test_a_flapping_model_never_scales_down_within_the_delay_of_a_scale_up():
    history, count, last_up, downs = TargetHistory(), 5, -1e9, 0
    for tick in range(480):  # two hours at 15 s: -1 asked every tick, +1 every 20th
        now = 15.0 * tick
        desired = count + (1 if tick % 20 == 0 else -1)
        out = guard_model_and_record(history, desired, count, 1, 50, now, HPA, MODEL, 7)
        if out.replicas > count:
            last_up = now
        elif out.replicas < count:
            downs += 1
            assert now - last_up >= 360.0
        count = out.replicas
    assert downs == 0  # a scale-up every 300 s keeps the 360 s delay running
    history, count, downs = TargetHistory(), 5, 0
    for tick in range(480):  # the same, +1 every 40th tick (10 min): room to scale down
        desired = count + (1 if tick % 40 == 0 else -1)
        out = guard_model_and_record(history, desired, count, 1, 50, 15.0 * tick, HPA, MODEL, 7)
        downs += out.replicas < count
        count = out.replicas
    assert downs > 0


def test_the_history_outlives_the_hpa_window_for_the_delay():
    history = TargetHistory()
    guard_model_and_record(history, 8, 5, 1, 50, 0.0, HPA, MODEL, 7)  # a scale-up at t=0
    for t in (15.0, 330.0):  # 330 s: past the HPA's 300 s, inside the 360 s delay
        guard_model_and_record(history, 8, 8, 1, 50, t, HPA, MODEL, 7)
    assert scaled_up_within(history.scale_events, 345.0, 360.0)
    assert guard_model_and_record(history, 3, 8, 1, 50, 345.0, HPA, MODEL, 7).replicas == 8


def test_the_model_window_replaces_a_behavior_window_too():
    hpa = HPAConfig(scale_down=ScalingRules.rate(percent=100, stabilization_window_s=600.0))
    assert MODEL.hpa_for_model(hpa).down_window_s == 120.0
    assert ModelGuardConfig(scale_down_window_s=None).hpa_for_model(hpa).down_window_s == 600.0


HALF_A_MINUTE = ModelGuardConfig(scale_down_policy=ScalingPolicy("Percent", 50, 60.0))


def test_a_capped_model_steps_down_after_the_hold_instead_of_dropping_to_one():
    # a front end held at 5 pods by the delay while the model asked for 1 all along
    history = TargetHistory([(t, 1) for t in range(640, 1000, 15)], [(630.0, 2)])
    assert guard_model(1, 5, 1, 50, history, 1000.0, HPA, MODEL, 7).replicas == 1
    counts, count = [], 5
    for tick in range(12):  # from the moment the delay runs out
        out = guard_model_and_record(history, 1, count, 1, 50, 1000.0 + 15 * tick, HPA,
                                     HALF_A_MINUTE, 7)
        count = out.replicas
        counts.append(count)
    # 50 % a minute, truncated as the HPA truncates: 5 -> int(2.5) = 2, a minute later 1
    assert counts == [2, 2, 2, 2, 1, 1, 1, 1, 1, 1, 1, 1]
    quarter = ModelGuardConfig(scale_down_policy=ScalingPolicy("Percent", 25, 60.0))
    history = TargetHistory([(t, 1) for t in range(640, 1000, 15)], [(630.0, 2)])
    counts, count = [], 5
    for tick in range(13):
        count = guard_model_and_record(history, 1, count, 1, 50, 1000.0 + 15 * tick, HPA,
                                       quarter, 7).replicas
        counts.append(count)
    assert counts == [3] * 4 + [2] * 4 + [1] * 5  # int(3.75), int(2.25), int(1.5)


def test_the_cap_says_why_never_holds_a_scale_up_and_never_goes_below_the_minimum():
    out = _guard(1, 8, model=HALF_A_MINUTE)
    assert (out.replicas, out.reasons) == (4, ("rate_limited",))
    assert _guard(12, 8, model=HALF_A_MINUTE).replicas == 12
    assert _guard(1, 3, model=HALF_A_MINUTE, bounds=(3, 10)).replicas == 3
    one_pod = ModelGuardConfig(scale_down_policy=ScalingPolicy("Pods", 1, 30.0))
    assert _guard(1, 8, model=one_pod).replicas == 7
    assert _guard(1, 8, events=[(980.0, -1)], model=one_pod).replicas == 8  # spent


def test_the_cap_is_stricter_than_a_permissive_hpa_object_and_keeps_a_stricter_one():
    permissive = HPAConfig(scale_down=ScalingRules.rate(percent=100, period_s=15.0))
    history = TargetHistory()
    assert guard_model(1, 10, 1, 50, history, 1000.0, permissive, HALF_A_MINUTE,
                       20).replicas == 5
    strict = HPAConfig(scale_down=ScalingRules.rate(pods=1, period_s=60.0))
    assert guard_model(1, 10, 1, 50, history, 1000.0, strict, HALF_A_MINUTE,
                       20).replicas == 9


def test_the_cap_reads_from_a_scaler_config_and_history_covers_its_period():
    guard_cfg = ModelGuardConfig.from_json(
        '{"scale_down_policy": {"kind": "Pods", "value": 2, "period_s": 900}}')
    assert guard_cfg.scale_down_policy == ScalingPolicy("Pods", 2, 900.0)
    assert guard_cfg.history_keep_s(HPA) >= 900.0
    assert ModelGuardConfig.from_json(guard_cfg.to_json()) == guard_cfg


@pytest.mark.parametrize("field, value", [
    ("scale_down_window_s", -1.0), ("scale_down_window_s", 4000.0),
    ("scale_down_delay_after_up_s", True), ("scale_down_delay_after_up_s", float("nan")),
    ("scale_down_policy", {"kind": "Percent", "value": 0}),
    ("scale_down_policy", {"kind": "Fraction", "value": 5}), ("scale_down_policy", 50),
    ("last_pods", -1), ("last_pods", 1.5), ("last_pods", True),
    ("last_pods_window_s", -5.0), ("last_pods_window_s", 4000.0),
])
def test_bad_model_guard_settings_are_refused_by_name(field, value):
    with pytest.raises(ConfigError, match=field):
        ModelGuardConfig(**{field: value})


LAST_POD = ModelGuardConfig(scale_down_window_s=120.0, last_pods=1, last_pods_window_s=300.0)


def test_the_last_pod_waits_the_longer_window_while_larger_counts_go_after_the_short_one():
    # the model asked for 2 pods 150 s ago and for 1 since: 2 -> 1 is the last pod
    recs = [(850.0, 2), (900.0, 1), (950.0, 1)]
    assert _guard(1, 2, recs, model=MODEL).replicas == 1  # 120 s: gone
    out = _guard(1, 2, recs, model=LAST_POD)
    assert (out.replicas, out.reasons) == (2, ("stabilized",))
    assert _guard(1, 2, recs, now=1160.0, model=LAST_POD).replicas == 1  # after 300 s
    # a surge's pods: 12 -> 6 goes after the short window, the last pods do not
    recs = [(850.0, 12), (900.0, 6), (950.0, 6)]
    assert _guard(6, 12, recs, model=LAST_POD).replicas == 6
    recs = [(750.0, 3), (850.0, 2), (900.0, 1), (950.0, 1)]
    assert _guard(1, 3, recs, model=LAST_POD).replicas == 3  # the longer window's max
    assert _guard(1, 12, recs, model=LAST_POD).replicas == 5  # 7 a tick: not the last pod


def test_the_last_pods_window_adds_nothing_when_not_longer_and_keeps_its_history():
    recs = [(850.0, 2), (900.0, 1), (950.0, 1)]
    same = ModelGuardConfig(last_pods=1, last_pods_window_s=300.0)  # the model's own 300 s
    assert same.hpa_for_last_pods(HPA) is None
    assert _guard(1, 2, recs, model=same).replicas == 2
    long = ModelGuardConfig(scale_down_window_s=60.0, last_pods=2, last_pods_window_s=900.0)
    assert long.history_keep_s(HPA) >= 900.0
    cfg = ModelGuardConfig.from_json('{"scale_down_window_s": 120, "last_pods": 1}')
    assert (cfg.last_pods, cfg.last_pods_window_s) == (1, 300.0)
    assert ModelGuardConfig.from_json(cfg.to_json()) == cfg
