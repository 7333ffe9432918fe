"""The cost-vs-violations plot: policies on the same point stay visible (HPA and KEDA often
land together)."""

from __future__ import annotations

import itertools

import pandas as pd

from gnnrl.evaluation.report import plot_cost_vs_violations, point_styles


def test_each_policy_has_its_own_colour_and_marker():
    styles = point_styles(9)
    assert len({s["color"] for s in styles}) == 9
    assert len({s["marker"] for s in styles}) == 9
    assert len({(s["color"], s["marker"]) for s in point_styles(40)}) == 40


def test_a_point_drawn_later_is_smaller_so_it_never_hides_an_earlier_one():
    styles = point_styles(6)
    assert all(a["zorder"] < b["zorder"] and a["s"] > b["s"]
               for a, b in itertools.pairwise(styles))
    assert point_styles(1)[0]["s"] > 0


def test_hpa_and_keda_on_the_same_point_both_render():
    rows = [{"policy": p, "scenario": "s", "seed": 1000, "replica_hours": 10.0,
             "slo_violation_rate": 0.05} for p in ("hpa", "keda")]
    rows.append({"policy": "static", "scenario": "s", "seed": 1000, "replica_hours": 20.0,
                 "slo_violation_rate": 0.0})
    png = plot_cost_vs_violations(pd.DataFrame(rows), hpa_sweep=())
    assert png.startswith(b"\x89PNG")
