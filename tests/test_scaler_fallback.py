"""The fallback state machine alone (S20 hysteresis)."""

from __future__ import annotations

import pytest

from gnnrl.scaler.fallback import FallbackState


def test_fallback_needs_n_consecutive_failures_and_m_consecutive_healthy_ticks():
    f = FallbackState(2, 3, mode="model", reason=None)
    assert f.record(False, "model_output") is None and f.mode == "model"
    assert f.record(True) is None  # a healthy tick resets the failure count
    assert f.record(False, "model_output") is None
    t = f.record(False, "observation_invalid")
    assert (t.kind, t.reason, f.mode) == ("entered", "observation_invalid", "rule")
    assert f.record(True) is None and f.record(True) is None
    assert f.record(False, "model_output") is None  # a failure restarts the healthy count
    assert f.record(True) is None and f.record(True) is None
    t = f.record(True)
    assert (t.kind, t.reason, f.mode, f.reason) == ("left", "model_output", "model", None)


def test_forced_fallback_enters_at_once_and_unknown_reasons_are_refused():
    f = FallbackState(5, 1, mode="model", reason=None)
    assert f.force("model_load").kind == "entered" and f.reason == "model_load"
    with pytest.raises(ValueError):
        f.record(False, "bogus")
