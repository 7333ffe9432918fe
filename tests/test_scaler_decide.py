"""Decide alone: the HPA rule wrapper (S6, S7) and the policy output checks (S5)."""

from __future__ import annotations

import numpy as np
import pytest

from gnnrl.contracts.observation import DIAL_INDEX, GLOBAL_DIM_RAW
from gnnrl.hpa import HPAConfig, PodSample
from gnnrl.scaler.decide import PolicyOutputError, hpa_rule, moves_from_output, policy_desired


def pods(*usage, ready=True, request=100.0):
    return [PodSample(request, u, ready) for u in usage]


@pytest.mark.parametrize("current, samples, expected", [
    (2, pods(140, 140), 4),                 # 200 % of target -> double
    (4, pods(70, 70, 70, 70), 4),           # at target
    (4, pods(10, 10, None, None), 4),       # idle + missing counted at 100 %: never down past
    (4, pods(150, 150, None, None), 4),     # hot + missing at 0 %: 2*150/400 < 70 %: hold
    (4, pods(210, 210, 210, None), 9),      # hot, one missing at 0 %: 630/400/0.7 x 4 -> 9
])
def test_hpa_rule_treats_missing_pods_like_the_hpa(current, samples, expected):
    assert hpa_rule(current, samples, HPAConfig()).replicas == expected


def test_hpa_rule_without_any_metric_cannot_compute():
    out = hpa_rule(3, pods(None, None, None), HPAConfig())
    assert out.replicas is None and out.reason == "no_metrics"


@pytest.mark.parametrize("raw", [
    np.array([0, 1, np.nan]), np.array([0, 1, 15]), np.array([0, -1, 2]),
    np.array([0.5, 1, 2]), np.zeros(4), np.zeros((2, 3)), "abc", np.array([0, np.inf, 1]),
])
def test_outputs_outside_the_action_space_are_refused(raw):
    with pytest.raises(PolicyOutputError):
        moves_from_output(raw, 3)


def test_moves_become_replica_counts_per_slot():
    class Fixed:
        def act(self, obs, deterministic=True):
            return np.array([3, 0, 9, 0])

    obs = {"global_feats": np.zeros(10, np.float32)}
    out = policy_desired(Fixed(), obs, ["a", None, "b", "c"], {"a": 2, "b": 5, "c": 1})
    assert out == {"a": 5, "b": 3, "c": 1}


@pytest.mark.parametrize("dial", [0.0, 0.5, 0.9, 1.0])
def test_the_model_sees_the_configured_dial_and_the_scalers_observation_is_untouched(dial):
    seen = []

    class Recording:
        def act(self, obs, deterministic=True):
            seen.append(obs)
            return np.zeros(2)

    obs = {"global_feats": np.full(GLOBAL_DIM_RAW, 7.0, np.float32)}
    policy_desired(Recording(), obs, ["a", "b"], {"a": 1, "b": 1}, dial=dial)
    assert seen[0]["global_feats"][DIAL_INDEX] == pytest.approx(dial)
    assert (obs["global_feats"] == 7.0).all()
