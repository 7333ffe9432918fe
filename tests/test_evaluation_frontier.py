"""Cost at matched SLO: envelope, interpolation and the matched table on a hand case."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from gnnrl.evaluation.frontier import (
    MATCHED_COLUMNS,
    envelope,
    frontier_at,
    frontier_table,
    matched_table,
    policy_family,
    rules_table,
    sweep_warnings,
)

# (violation rate, replica-hours) per policy, two identical seeds. Hand-computed envelope of
# the HPA sweep: hpa-60 (0.03, 9) is dominated by hpa-50 (0.01, 8); HPA-70 (0.02, 7.8) lies
# above the chord hpa-50 -> hpa-90, which at 0.02 costs 8 + (6 - 8) * 0.01 / 0.04 = 7.5.
POINTS = {"hpa-30": (0.0, 10.0), "hpa-50": (0.01, 8.0), "hpa": (0.02, 7.8),
          "hpa-60": (0.03, 9.0), "hpa-90": (0.05, 6.0), "keda-50": (0.0, 9.0),
          "keda": (0.04, 7.0), "gnnrl": (0.02, 6.0), "mlp": (0.06, 5.0)}


def _summary(points=POINTS, scenarios=("a",)):
    rows = [{"policy": p, "scenario": s, "seed": seed, "slo_violation_rate": v,
             "replica_hours": c}
            for p, (v, c) in points.items() for s in scenarios for seed in (1000, 1001)]
    return pd.DataFrame(rows)


@pytest.mark.parametrize("name, family", [
    ("hpa-50", ("hpa", 50.0)), ("hpa", ("hpa", 70.0)), ("keda-80", ("keda", 80.0)),
    ("keda", ("keda", 70.0)), ("gnnrl@0.2", ("gnnrl", 0.2)), ("static-3", ("static", 3.0)),
    ("hpa-nb", ("hpa-nb", 70.0)), ("hpa-nb-50", ("hpa-nb", 50.0)),
    ("hpa+rps", ("hpa+rps", 70.0)), ("hpa-50+rps", ("hpa+rps", 50.0)),
    ("gnnrl", ("gnnrl", 0.5)), ("gnnrl-raw", ("gnnrl-raw", 0.5)),
    ("gnnrl@0.25+graph", ("gnnrl+graph", 0.25)), ("gnnrl@1", ("gnnrl", 1.0)),
    ("mine@0", ("mine", 0.0)), ("oracle", None), ("gnnrl-no-tgn", None),
    ("gnnrl~120-360-50%/60s@0.25", ("gnnrl~120-360-50%/60s", 0.25)),
    ("gnnrl~300-360@0.5", ("gnnrl~300-360", 0.5)),
    ("gnnrl~120-360-last1/300s@0", ("gnnrl~120-360-last1/300s", 0.0)),
])
def test_policy_names_map_to_family_and_knob(name, family):
    assert policy_family(name) == family


def test_envelope_keeps_the_pareto_points_on_the_lower_convex_hull():
    x = [v for v, _ in list(POINTS.values())[:5]]
    y = [c for _, c in list(POINTS.values())[:5]]
    ex, ey = envelope(x, y)
    np.testing.assert_allclose(ex, [0.0, 0.01, 0.05])
    np.testing.assert_allclose(ey, [10.0, 8.0, 6.0])


def test_frontier_is_nan_outside_the_sweep_and_flat_past_its_last_vertex():
    assert frontier_at([0.0, 0.01, 0.05], [10, 8, 6], 0.03)[0] == pytest.approx(7.0)
    value, why = frontier_at([0.0, 0.01, 0.05], [10, 8, 6], 0.06, "violation rate")
    assert math.isnan(value) and "above the range [0, 0.05]" in why
    # all-zero violations: the cheapest setting dominates; the range is still [0, 0]
    assert frontier_at([0, 0, 0], [12.9, 9.96, 8.62], 0.0)[0] == pytest.approx(8.62)
    assert frontier_at([8.62, 9.96, 12.9], [0, 0, 0], 9.96)[0] == 0.0


def test_matched_table_against_a_hand_computed_case():
    table = matched_table(_summary())
    assert list(table.columns) == list(MATCHED_COLUMNS)
    m = table.set_index("policy")
    assert set(m["scenario"]) == {"all"}
    assert m.loc["gnnrl", "hpa_replica_hours_at_slo"] == pytest.approx(7.5)
    assert m.loc["gnnrl", "replica_hours_vs_hpa"] == pytest.approx(0.8)
    assert m.loc["hpa", "replica_hours_vs_hpa"] == pytest.approx(7.8 / 7.5)
    assert m.loc["hpa-60", "hpa_replica_hours_at_slo"] == pytest.approx(7.0)
    # outside the sweep's range: NaN and a note, never an extrapolation
    assert math.isnan(m.loc["mlp", "hpa_replica_hours_at_slo"])
    assert "above the range" in m.loc["mlp", "note"]
    # violations at HPA-70's cost (7.8): keda's curve (7, 0.04) -> (9, 0) gives 0.024;
    # HPA's own envelope (6, 0.05) -> (8, 0.01) gives 0.014; no family -> NaN
    assert m.loc["keda", "slo_violation_rate_at_hpa70_cost"] == pytest.approx(0.024)
    assert m.loc["keda-50", "slo_violation_rate_at_hpa70_cost"] == pytest.approx(0.024)
    assert m.loc["hpa", "slo_violation_rate_at_hpa70_cost"] == pytest.approx(0.014)
    assert math.isnan(m.loc["gnnrl", "slo_violation_rate_at_hpa70_cost"])


def test_frontier_table_has_one_row_per_knob_of_each_family():
    f = frontier_table(_summary())
    assert list(f.columns) == ["family", "knob", "slo_violation_rate", "replica_hours"]
    assert f[["family", "knob"]].apply(tuple, axis=1).tolist() == [
        ("gnnrl", 0.5), ("hpa", 30.0), ("hpa", 50.0), ("hpa", 60.0), ("hpa", 70.0),
        ("hpa", 90.0), ("keda", 50.0), ("keda", 70.0)]


def test_a_policy_missing_scenarios_is_matched_on_the_ones_it_ran():
    s = _summary(scenarios=("a", "b"))
    # on scenario b every HPA costs 10 more; mlp did not run b (n/a)
    s.loc[(s["scenario"] == "b") & s["policy"].str.startswith("hpa"), "replica_hours"] += 10
    s.loc[(s["scenario"] == "b") & (s["policy"] == "mlp"), "slo_violation_rate"] = np.nan
    s.loc[(s["scenario"] == "b") & (s["policy"] == "gnnrl"), "replica_hours"] += 10
    m = matched_table(s)
    overall = m[m["scenario"] == "all"].set_index("policy")
    assert overall.loc["gnnrl", "hpa_replica_hours_at_slo"] == pytest.approx(12.5)
    assert overall.loc["gnnrl", "replica_hours_vs_hpa"] == pytest.approx(11.0 / 12.5)
    per_b = m[m["scenario"] == "b"].set_index("policy")
    assert per_b.loc["mlp", "note"] == "not run"


def test_each_rule_sweep_is_read_at_every_dial_points_violation_rate():
    """The headroom sweep's envelope runs (0.01, 10) -> (0.03, 8) -> (0.05, 7), so it costs
    9 at a violation rate of 0.02 and 9.5 at 0.015. Outside the sweep's range there is no
    ratio, but domination is still read off the points."""
    points = {"headroom-50": (0.01, 10.0), "headroom": (0.03, 8.0), "headroom-90": (0.05, 7.0),
              "floor": (0.0, 20.0), "gnnrl@0": (0.02, 8.0), "gnnrl": (0.015, 9.0),
              "gnnrl@1": (0.0, 19.0), "hpa": (0.02, 7.0)}
    table = rules_table(_summary(points)).set_index(["rule", "policy"])
    assert set(table.index.get_level_values("rule")) == {"headroom", "floor"}
    assert table.loc[("headroom", "gnnrl@0"), "rule_replica_hours_at_slo"] == \
        pytest.approx(9.0)
    assert table.loc[("headroom", "gnnrl@0"), "replica_hours_vs_rule"] == pytest.approx(8 / 9)
    assert table.loc[("headroom", "gnnrl"), "replica_hours_vs_rule"] == pytest.approx(9 / 9.5)
    assert math.isnan(table.loc[("headroom", "gnnrl@1"), "replica_hours_vs_rule"])
    assert "below the range" in table.loc[("headroom", "gnnrl@1"), "note"]
    assert table.loc[("floor", "gnnrl@1"), "dominates"] == "floor"
    assert table.loc[("headroom", "gnnrl@0"), "dominated_by"] == ""
    raw = rules_table(_summary({**points, "gnnrl-raw@0": (0.04, 9.0)}), "gnnrl-raw")
    assert raw.set_index(["rule", "policy"]).loc[("headroom", "gnnrl-raw@0"),
                                                   "dominated_by"] == "headroom"


def test_the_rules_script_merges_runs_and_prints_a_table_per_rule(tmp_path, capsys):
    import importlib.util
    from pathlib import Path

    script = Path(__file__).resolve().parents[1] / "scripts" / "rules_vs_dial.py"
    spec = importlib.util.spec_from_file_location("rules_vs_dial", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    base = _summary({"gnnrl@0": (0.02, 8.0), "gnnrl": (0.01, 9.0), "headroom": (0.03, 8.0)})
    sweep = _summary({"headroom-50": (0.01, 10.0), "headroom": (0.03, 8.0)})
    base.to_csv(tmp_path / "a.csv", index=False)
    sweep.to_csv(tmp_path / "b.csv", index=False)
    assert module.main([str(tmp_path / "a.csv"), str(tmp_path / "b.csv")]) == 0
    out = capsys.readouterr().out
    assert "headroom" in out
    assert "| gnnrl@0 | 2.000 % | 8.0 | 9.0 | 0.889 (0.889-0.889) | 100 % |" in out
    assert module.main([str(tmp_path / "b.csv")]) == 1  # no dial points


def test_a_sweep_whose_cheapest_target_never_violates_is_flagged_with_what_to_run():
    assert sweep_warnings(_summary()) == []  # hpa-90 violates: the sweep spans the range
    clean = {"hpa-60": (0.0, 9.0), "hpa": (0.0, 8.0), "hpa-90": (0.0, 6.5), "gnnrl": (0.0, 6.0)}
    (warning,) = sweep_warnings(_summary(clean))
    assert "highest target (hpa-90) has no SLO violation" in warning
    assert "100,110,120" in warning
    assert sweep_warnings(_summary({"hpa": (0.0, 8.0), "gnnrl": (0.0, 6.0)})) == []
