"""`gnnrl simulate` smoke runs (CleanRL-style subprocess tests with tiny budgets)."""

import pandas as pd
import pytest

from gnnrl.testing.cli import run_gnnrl


def gnnrl(*args):
    return run_gnnrl(*args, timeout=120)


@pytest.mark.parametrize("policy", ["static", "random", "hpa"])
def test_simulate_prints_a_summary_with_violations_and_replica_hours(policy):
    proc = gnnrl("simulate", "--policy", policy, "--steps", "20", "--trace", "flash")
    assert proc.returncode == 0, proc.stderr
    assert "SLO violations" in proc.stdout and "replica-hours" in proc.stdout


def test_simulate_writes_per_step_csv_with_topology_event(tmp_path):
    out = tmp_path / "run.csv"
    proc = gnnrl("simulate", "--steps", "9", "--topology", "add", "--table", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    df = pd.read_csv(out)
    assert len(df) == 9
    assert df["events"].fillna("").str.contains("add reviewservice").sum() == 1


def test_simulate_with_bad_app_spec_fails_with_a_clear_message(tmp_path):
    bad = tmp_path / "app.yaml"
    bad.write_text("name: x\nentry: a\nslo_p95_ms: -1\nservices: {}\n")
    proc = gnnrl("simulate", "--app", str(bad), "--steps", "2")
    assert proc.returncode == 2
    assert "slo_p95_ms" in proc.stderr or "services" in proc.stderr
