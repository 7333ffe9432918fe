"""How sure a matched-SLO ratio is: the paired bootstrap of `gnnrl.evaluation.uncertainty`
tells a policy that wins everywhere from one that wins on average by one lucky scenario."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from gnnrl.evaluation.frontier import matched_table
from gnnrl.evaluation.uncertainty import (
    bootstrap_ratio,
    bootstrap_table,
    format_interval,
    matched_with_intervals,
    resample_weights,
    rules_with_intervals,
)

#: the HPA sweep of every scenario: knob -> (violation rate, replica-hours per unit of load)
SWEEP = {"hpa-50": (0.001, 1.4), "hpa-60": (0.003, 1.2), "hpa": (0.006, 1.05),
         "hpa-80": (0.012, 0.95), "hpa-90": (0.02, 0.9)}
SCENARIOS = ("s1", "s2", "s3", "s4", "s5", "s6")
SEEDS = (1000, 1001)


def _summary(policies: dict[str, dict[str, float]], load=None) -> pd.DataFrame:
    """Rows of the HPA sweep on every scenario (replica-hours scaled by the scenario's
    load) plus ``policies``: name -> {scenario: cost as a multiple of HPA-60's there}, each
    at HPA-60's violation rate."""
    load = load or {s: 10.0 * (i + 1) for i, s in enumerate(SCENARIOS)}
    rows = []
    for s in SCENARIOS:
        for seed in SEEDS:
            wiggle = 1.0 + 0.001 * (seed - 1000)
            for name, (v, c) in SWEEP.items():
                rows.append({"policy": name, "scenario": s, "seed": seed,
                             "slo_violation_rate": v, "replica_hours": c * load[s] * wiggle})
            for name, by_scenario in policies.items():
                rows.append({"policy": name, "scenario": s, "seed": seed,
                             "slo_violation_rate": SWEEP["hpa-60"][0],
                             "replica_hours": by_scenario[s] * SWEEP["hpa-60"][1] * load[s]
                             * wiggle})
    return pd.DataFrame(rows)


def test_a_policy_cheaper_on_every_scenario_has_an_interval_wholly_below_one():
    table = _summary({"good": dict.fromkeys(SCENARIOS, 0.8)})
    row = bootstrap_ratio(table, "good", list(SWEEP))
    assert row["ratio"] == pytest.approx(0.8)
    assert row["ratio_lo"] == pytest.approx(0.8) and row["ratio_hi"] == pytest.approx(0.8)
    assert row["p_below_1"] == 1.0 and row["defined"] == 1.0


def test_a_win_that_rests_on_one_scenario_gets_an_interval_across_one():
    # cheaper on average (0.86x), but only because of the largest scenario
    lucky = {**dict.fromkeys(SCENARIOS, 1.05), "s6": 0.5}
    table = _summary({"lucky": lucky})
    row = bootstrap_ratio(table, "lucky", list(SWEEP), n=4000)
    assert row["ratio"] < 0.9
    assert row["ratio_lo"] < 0.9 < 1.0 < row["ratio_hi"]
    assert 0.3 < row["p_below_1"] < 0.95


def test_redrawing_seeds_alone_is_narrower_than_redrawing_scenarios():
    table = _summary({"mixed": {"s1": 0.7, "s2": 1.2, "s3": 0.9, "s4": 1.1, "s5": 0.8,
                                "s6": 1.0}})
    scen = bootstrap_ratio(table, "mixed", list(SWEEP), unit="scenario")
    seed = bootstrap_ratio(table, "mixed", list(SWEEP), unit="seed")
    assert scen["ratio"] == seed["ratio"]
    assert (seed["ratio_hi"] - seed["ratio_lo"]) < 0.2 * (scen["ratio_hi"] - scen["ratio_lo"])


def test_the_point_estimate_is_the_matched_tables_ratio():
    table = _summary({"mixed": {"s1": 0.7, "s2": 1.2, "s3": 0.9, "s4": 1.1, "s5": 0.8,
                                "s6": 1.0}})
    matched = matched_table(table).set_index(["scenario", "policy"])
    assert bootstrap_ratio(table, "mixed", list(SWEEP))["ratio"] == pytest.approx(
        matched.loc[("all", "mixed"), "replica_hours_vs_hpa"])


def test_the_same_inputs_give_the_same_interval_whatever_else_is_in_the_table():
    one = _summary({"a": dict.fromkeys(SCENARIOS, 0.9) | {"s2": 1.3}})
    two = _summary({"a": dict.fromkeys(SCENARIOS, 0.9) | {"s2": 1.3},
                    "b": dict.fromkeys(SCENARIOS, 1.1)})
    first = bootstrap_table(one).set_index("policy").loc["a"]
    again = bootstrap_table(one).set_index("policy").loc["a"]
    beside = bootstrap_table(two).set_index("policy").loc["a"]
    assert first.equals(again)
    numbers = ["ratio", "ratio_lo", "ratio_hi", "p_below_1", "defined"]
    # equal up to float rounding: the policies are averaged in one matrix product
    assert np.allclose(first[numbers].astype(float), beside[numbers].astype(float),
                       rtol=1e-12, atol=0)


def test_resamples_draw_whole_scenarios_or_seeds_within_each():
    cells = pd.MultiIndex.from_product([SCENARIOS, SEEDS])
    rng = np.random.default_rng(0)
    by_scenario = resample_weights(cells, 200, "scenario", rng)
    assert (by_scenario.sum(axis=1) == len(cells)).all()
    assert (by_scenario[:, 0::2] == by_scenario[:, 1::2]).all()  # a scenario's seeds together
    by_seed = resample_weights(cells, 200, "seed", rng)
    assert (by_seed[:, 0::2] + by_seed[:, 1::2] == 2).all()  # each scenario keeps 2 draws
    with pytest.raises(ValueError, match="unit"):
        resample_weights(cells, 1, "episode", rng)


def test_matched_csv_carries_the_interval_and_leaves_it_blank_where_there_is_no_ratio():
    table = _summary({"good": dict.fromkeys(SCENARIOS, 0.8)})
    late = table[table["policy"] == "good"].assign(policy="late", slo_violation_rate=0.5)
    matched = matched_with_intervals(pd.concat([table, late], ignore_index=True))
    overall = matched[matched["scenario"] == "all"].set_index("policy")
    assert overall.loc["good", "replica_hours_vs_hpa_hi"] == pytest.approx(0.8)
    assert overall.loc["good", "p_cheaper_than_hpa"] == 1.0
    assert math.isnan(overall.loc["late", "replica_hours_vs_hpa"])  # above the sweep
    assert math.isnan(overall.loc["late", "replica_hours_vs_hpa_lo"])
    per_scenario = matched[matched["scenario"] != "all"]
    assert per_scenario["replica_hours_vs_hpa_lo"].isna().all()


def test_a_dial_point_against_a_rule_sweep_gets_an_interval():
    table = _summary({"gnnrl@0": dict.fromkeys(SCENARIOS, 0.8),
                      "gnnrl@1": dict.fromkeys(SCENARIOS, 1.0)})
    rules = table[table["policy"].str.startswith("hpa")].copy()
    rules["policy"] = rules["policy"].map(
        lambda p: "headroom" if p == "hpa" else p.replace("hpa", "headroom"))
    out = rules_with_intervals(pd.concat([table, rules], ignore_index=True))
    row = out.set_index("policy").loc["gnnrl@0"]
    assert row["replica_hours_vs_rule"] == pytest.approx(0.8)
    assert row["replica_hours_vs_rule_hi"] == pytest.approx(0.8)
    assert row["p_cheaper_than_rule"] == 1.0


def test_intervals_print_as_ratio_and_range():
    assert format_interval(0.891, 0.8, 1.012) == "0.89 (0.80-1.01)"
    assert format_interval(math.nan, 0.8, 1.0) == "-"
    assert format_interval(0.9, math.nan, math.nan) == "0.90"


def test_the_matched_script_pools_two_suites_into_one_interval(tmp_path, capsys):
    import importlib.util
    from pathlib import Path

    script = Path(__file__).resolve().parents[1] / "scripts" / "matched_vs_hpa.py"
    spec = importlib.util.spec_from_file_location("matched_vs_hpa", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    table = _summary({"good": dict.fromkeys(SCENARIOS, 0.8)})
    early = table[table["scenario"].isin(SCENARIOS[:3])]
    late = table[table["scenario"].isin(SCENARIOS[3:])]
    early.to_csv(tmp_path / "a.csv", index=False)
    late.to_csv(tmp_path / "b.csv", index=False)
    assert module.main([str(tmp_path / "a.csv"), str(tmp_path / "b.csv"),
                        "--policies", "good,hpa"]) == 0
    out = capsys.readouterr().out
    assert "6 scenarios x 2 seeds" in out
    assert "| good | 0.3000 % |" in out and "0.800 (0.800-0.800) | 100 % |" in out
    with pytest.raises(SystemExit):
        module.main([str(tmp_path / "a.csv"), "--policies", "nobody"])


def test_a_rule_interval_redraws_the_cells_its_point_is_computed_on():
    # a policy that ran only some scenarios narrows the table to those: so does the interval
    table = _summary({"gnnrl@0": {**dict.fromkeys(SCENARIOS, 1.0), "s1": 0.5},
                      "gnnrl@1": dict.fromkeys(SCENARIOS, 1.2)})
    rules = table[table["policy"].str.startswith("hpa")].copy()
    rules["policy"] = rules["policy"].map(
        lambda p: "headroom" if p == "hpa" else p.replace("hpa", "headroom"))
    partial = table[(table["policy"] == "hpa") & (table["scenario"] != "s1")].assign(
        policy="latecomer")
    out = rules_with_intervals(pd.concat([table, rules, partial], ignore_index=True))
    row = out.set_index("policy").loc["gnnrl@0"]
    assert row["replica_hours_vs_rule"] == pytest.approx(1.0)  # s1 is not a shared cell
    assert row["replica_hours_vs_rule_lo"] == pytest.approx(1.0)
    assert row["replica_hours_vs_rule_hi"] == pytest.approx(1.0)
