"""The promotion gate: a table of evaluation summaries and the decision each must give."""

from __future__ import annotations

import pandas as pd
import pytest

from gnnrl.config import ConfigError
from gnnrl.registry.gate import GateConfig, decide

SEEDS = (100, 101)


def _summary(**policies: tuple[float, float]) -> pd.DataFrame:
    """policy=(slo_violation_rate, replica_hours) -> one row per (scenario, seed)."""
    rows = []
    for policy, (slo, cost) in policies.items():
        for seed in SEEDS:
            rows.append(
                {"policy": policy, "scenario": "diurnal", "seed": seed,
                 "slo_violation_rate": slo, "replica_hours": cost}
            )
    return pd.DataFrame(rows)


CASES = [
    # (name, summary, champion, config, promoted)
    ("beats_hpa_no_champion", _summary(new=(0.01, 9.0), hpa=(0.05, 10.0)), None,
     GateConfig(), True),
    ("worse_slo_than_hpa", _summary(new=(0.10, 9.0), hpa=(0.05, 10.0)), None,
     GateConfig(), False),
    ("costlier_than_hpa", _summary(new=(0.01, 11.0), hpa=(0.05, 10.0)), None,
     GateConfig(), False),
    ("beats_hpa_but_not_champion", _summary(new=(0.02, 9.0), hpa=(0.05, 10.0), champ=(0.01, 8.0)),
     "champ", GateConfig(), False),
    ("beats_both", _summary(new=(0.01, 7.0), hpa=(0.05, 10.0), champ=(0.02, 8.0)),
     "champ", GateConfig(), True),
    ("equal_to_champion_fails_positive_margin",
     _summary(new=(0.01, 8.0), hpa=(0.05, 10.0), champ=(0.01, 8.0)),
     "champ", GateConfig(slo_margin=0.0, cost_margin=0.01), False),
    ("a_tie_with_the_champion_keeps_the_champion",
     _summary(new=(0.01, 8.0), hpa=(0.05, 10.0), champ=(0.01, 8.0)), "champ", GateConfig(), False),
    ("tolerated_cost_regression_vs_hpa", _summary(new=(0.01, 10.5), hpa=(0.05, 10.0)), None,
     GateConfig(baseline_cost_margin=-0.10), True),
    ("slo_margin_demands_improvement_vs_hpa", _summary(new=(0.04, 9.0), hpa=(0.05, 10.0)),
     None, GateConfig(baseline_slo_margin=0.02), False),
    ("hpa_tolerance_does_not_loosen_the_champion_comparison",
     _summary(new=(0.30, 12.0), hpa=(0.05, 10.0), champ=(0.20, 11.0)), "champ",
     GateConfig(baseline_slo_margin=-1.0, baseline_cost_margin=-9.0), False),
    ("champion_margin_applies_to_the_champion_only",
     _summary(new=(0.04, 9.0), hpa=(0.05, 10.0), champ=(0.10, 12.0)), "champ",
     GateConfig(slo_margin=0.05), True),
    ("missing_baseline_rejects", _summary(new=(0.0, 1.0)), None, GateConfig(), False),
    ("missing_champion_rows_rejects", _summary(new=(0.0, 1.0), hpa=(0.05, 10.0)), "champ",
     GateConfig(), False),
]


@pytest.mark.parametrize(
    ("summary", "champion", "config", "promoted"),
    [c[1:] for c in CASES],
    ids=[c[0] for c in CASES],
)
def test_gate_promotes_only_a_challenger_that_beats_every_reference(
    summary, champion, config, promoted
):
    decision = decide(summary, "new", champion, config)
    assert decision.promoted is promoted
    assert decision.reasons, "every decision says why"
    tags = decision.as_tags()
    assert tags["gate.decision"] == ("promoted" if promoted else "rejected")


def test_gate_rejects_references_evaluated_on_other_seeds():
    summary = _summary(new=(0.0, 1.0), hpa=(0.05, 10.0))
    summary = summary[~((summary.policy == "hpa") & (summary.seed == 101))]
    decision = decide(summary, "new", None)
    assert not decision.promoted
    assert "other episodes" in decision.reasons[0]


def test_gate_tags_record_the_numbers_compared():
    decision = decide(_summary(new=(0.01, 9.0), hpa=(0.05, 10.0)), "new", None)
    tags = decision.as_tags()
    assert tags["gate.challenger.slo_violation_rate"] == "0.01"
    assert tags["gate.baseline.replica_hours"] == "10"
    assert tags["gate.baseline.episodes"] == "2"


def test_gate_rejects_nan_metrics_instead_of_promoting():
    summary = _summary(new=(float("nan"), 9.0), hpa=(0.05, 10.0))
    decision = decide(summary, "new", None)
    assert not decision.promoted
    assert "non-finite" in decision.reasons[0]


@pytest.mark.parametrize(
    ("field", "value"),
    [("slo_margin", 2.0), ("cost_margin", 1.0), ("baseline_slo_margin", -1.5),
     ("baseline_cost_margin", -10.0), ("baseline_policy", "")],
)
def test_gate_config_names_the_invalid_field(field, value):
    with pytest.raises(ConfigError, match=field):
        GateConfig(**{field: value})


def test_a_tolerated_regression_is_reported_as_worse_not_as_a_win():
    summary = _summary(new=(0.01, 10.5), hpa=(0.05, 10.0))
    d = decide(summary, "new", None, GateConfig(baseline_cost_margin=-0.10))
    assert d.promoted
    assert "worse than baseline 'hpa'" in d.reasons[0] and "beats" not in d.reasons[0]


def _per_scenario(**policies: dict[str, float]) -> pd.DataFrame:
    """policy={scenario: replica_hours}, every episode at a 1 % violation rate."""
    return pd.DataFrame([{"policy": p, "scenario": sc, "seed": seed,
                          "slo_violation_rate": 0.01, "replica_hours": cost}
                         for p, by_scenario in policies.items()
                         for sc, cost in by_scenario.items() for seed in SEEDS])


SCENARIOS = ("a", "b", "c", "d", "e", "f", "g", "h")
HPA = dict.fromkeys(SCENARIOS, 10.0)


def test_a_win_in_every_scenario_passes_a_confidence_requirement():
    summary = _per_scenario(new=dict.fromkeys(SCENARIOS, 9.0), hpa=HPA)
    decision = decide(summary, "new", None, GateConfig(min_confidence=0.95))
    assert decision.promoted, decision.reasons
    assert decision.confidence == {"baseline": 1.0}
    assert "100.0 % of the scenario redraws vs baseline" in decision.reasons[0]
    assert decision.as_tags()["gate.baseline.confidence"] == "1"


def test_a_win_that_rests_on_one_scenario_is_refused_by_the_confidence_requirement():
    # 5 % cheaper on the whole evaluation, but only thanks to scenario "h"
    lucky = {**dict.fromkeys(SCENARIOS, 10.2), "h": 4.5}
    summary = _per_scenario(new=lucky, hpa=HPA)
    assert decide(summary, "new", None, GateConfig()).promoted  # the mean alone passes
    decision = decide(summary, "new", None, GateConfig(min_confidence=0.9))
    assert not decision.promoted
    assert 0.3 < decision.confidence["baseline"] < 0.9
    assert "redraws of the scenarios (min_confidence 0.9)" in decision.reasons[0]


def test_the_confidence_requirement_applies_to_the_champion_too():
    summary = _per_scenario(new={**dict.fromkeys(SCENARIOS, 9.0), "h": 8.0},
                            champ={**dict.fromkeys(SCENARIOS, 8.9), "h": 12.0}, hpa=HPA)
    decision = decide(summary, "new", "champ", GateConfig(min_confidence=0.9))
    assert decision.confidence["baseline"] == 1.0
    assert not decision.promoted and "vs champion" in decision.reasons[0]


def test_a_confidence_requirement_without_per_episode_rows_is_a_clear_rejection():
    summary = pd.DataFrame({"policy": ["new", "hpa"], "slo_violation_rate": [0.0, 0.1],
                            "replica_hours": [9.0, 10.0]})
    decision = decide(summary, "new", None, GateConfig(min_confidence=0.5))
    assert not decision.promoted
    assert "per-episode rows" in decision.reasons[0]


@pytest.mark.parametrize("bad", [-0.1, 1.0, "high"])
def test_min_confidence_out_of_range_is_refused_by_name(bad):
    with pytest.raises(ConfigError, match="min_confidence"):
        GateConfig(min_confidence=bad)
