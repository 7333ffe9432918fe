"""The guard alone (pure): stabilisation, rate limits, maximum step, bounds."""

from __future__ import annotations

import pytest

from gnnrl.scaler.config import ScalerConfig, ServiceLimits
from gnnrl.scaler.guard import ServiceHistory, guard

CFG = ScalerConfig(services={"a": ServiceLimits(1, 20)})
LIM = ServiceLimits(1, 20)


def hist(recs=(), events=()):
    return ServiceHistory(list(recs), list(events))


@pytest.mark.parametrize("desired, current, recs, events, expected, reasons", [
    # no history: plain desired
    (5, 4, [], [], 5, ()),
    # scale-down held: a higher recommendation inside the 300 s window
    (2, 6, [(900.0, 6)], [], 6, ("stabilized",)),
    # ... partially: the max over the window is 4
    (2, 6, [(900.0, 4), (800.0, 3)], [], 4, ("stabilized",)),
    # ... released once the high recommendation is older than the window
    (2, 6, [(600.0, 6)], [], 2, ()),
    # scale-up: max(4 pods, 100 %) per 15 s -> from 3: max(7, 6) = 7
    (15, 3, [], [], 7, ("rate_limited",)),
    # ... of which 3 pods were already added 5 s ago (start of period: 3)
    (15, 6, [], [(995.0, 3)], 7, ("rate_limited",)),
    # hard max_step of 7 even where the rate allows more: from 10, 100 % -> 20
    (20, 10, [], [], 17, ("max_step",)),
    # bounds
    (40, 18, [], [], 20, ("clamped_max",)),
    (0, 1, [], [], 1, ("clamped_min",)),
    (3, 25, [], [], 20, ("above_max",)),
])
def test_guard_table(desired, current, recs, events, expected, reasons):
    out = guard(desired, current, LIM, hist(recs, events), 1000.0, CFG)
    assert (out.replicas, out.reasons) == (expected, reasons)


def test_guarded_count_is_always_within_bounds():
    lim = ServiceLimits(2, 9)
    for desired in range(0, 40):
        for current in range(1, 12):
            out = guard(desired, current, lim, hist(), 0.0, CFG)
            assert 2 <= out.replicas <= 9


def test_history_forgets_what_the_windows_no_longer_need():
    h = ServiceHistory()
    h.record_recommendation(0.0, 3, keep_s=300)
    h.record_recommendation(301.0, 4, keep_s=300)
    assert h.recommendations == [(301.0, 4)]


def test_a_scale_down_cap_in_the_scaler_config_slows_the_models_decisions_only():
    cfg = ScalerConfig.from_dict({
        "services": {"a": {"min_replicas": 1, "max_replicas": 20}},
        "model_guard": {"scale_down_policy": {"kind": "Percent", "value": 25, "period_s": 60}},
    })
    out = guard(1, 8, LIM, hist(), 1000.0, cfg, model=True)
    assert (out.replicas, out.reasons) == (6, ("rate_limited",))  # int(8 x 0.75)
    assert guard(1, 8, LIM, hist(), 1000.0, cfg).replicas == 1  # the HPA rule: as written
    assert guard(1, 6, LIM, hist(events=[(980.0, -2)]), 1000.0, cfg, model=True).replicas == 6
