"""scripts/combine_results.py: a re-run of some policies folded into an earlier evaluation."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pandas as pd
import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "combine_results.py"
# (policy, violation rate, replica-hours) per cell: an HPA sweep, a rule sweep, a dial curve
ROWS = [("hpa-50", 0.01, 30.0), ("hpa", 0.02, 25.0), ("hpa-90", 0.05, 20.0),
        ("headroom-50", 0.015, 26.0), ("headroom", 0.03, 22.0),
        ("gnnrl@0", 0.04, 19.0), ("gnnrl", 0.02, 23.0), ("gnnrl@1", 0.01, 27.0),
        ("oracle", 0.0, 15.0)]


def _summary(rows, seeds=(1000, 1001)) -> pd.DataFrame:
    out = []
    for policy, viol, rh in rows:
        for scenario in ("a/static", "b/static"):
            for seed in seeds:
                out.append({"policy": policy, "scenario": scenario, "trace": scenario[0],
                            "topology": "static", "seed": seed, "app": "onlineboutique",
                            "slo_violation_rate": viol, "replica_hours": rh,
                            "scaling_actions": 10.0, "direction_reversals": 1.0,
                            "replica_hours_vs_oracle": rh / 15.0})
    return pd.DataFrame(out)


@pytest.fixture(scope="module")
def combine():
    spec = importlib.util.spec_from_file_location("combine_results", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.combine


def _dirs(tmp_path: Path, base: pd.DataFrame, new: pd.DataFrame) -> tuple[Path, Path]:
    (tmp_path / "base").mkdir()
    (tmp_path / "new").mkdir()
    base.to_csv(tmp_path / "base" / "summary.csv", index=False)
    new.to_csv(tmp_path / "new" / "summary.csv", index=False)
    return tmp_path / "base", tmp_path / "new"


def test_a_re_run_replaces_its_policies_rows_and_keeps_the_others(tmp_path, combine):
    cheaper = [("gnnrl@0", 0.04, 18.0), ("gnnrl", 0.02, 21.0), ("gnnrl@1", 0.01, 26.0),
               ("oracle", 0.0, 15.0)]
    base, new = _dirs(tmp_path, _summary(ROWS), _summary(cheaper))
    merged = combine(base, new, tmp_path / "out")
    written = pd.read_csv(tmp_path / "out" / "summary.csv")
    assert len(written) == len(merged) == len(ROWS) * 4
    means = written.groupby("policy")["replica_hours"].mean()
    assert (means["gnnrl"], means["gnnrl@0"], means["hpa"]) == (21.0, 18.0, 25.0)
    matched = pd.read_csv(tmp_path / "out" / "matched.csv")
    overall = matched[matched["scenario"] == "all"].set_index("policy")
    assert overall.loc["gnnrl", "replica_hours"] == 21.0  # the tables follow the new rows
    rules = pd.read_csv(tmp_path / "out" / "rules.csv")  # rule settings and dials: written
    assert set(rules["rule"]) == {"headroom"}
    assert (tmp_path / "out" / "plots" / "frontier.png").stat().st_size > 0


def test_runs_of_other_scenarios_or_seeds_are_refused(tmp_path, combine):
    base, new = _dirs(tmp_path, _summary(ROWS), _summary(ROWS[:3], seeds=(1000, 1002)))
    with pytest.raises(SystemExit, match="different scenarios/seeds"):
        combine(base, new, tmp_path / "out")
    assert not (tmp_path / "out").exists()  # nothing half written
