"""`evaluate`: determinism, n/a rows, the oracle yardstick, report files, the CLI."""

from __future__ import annotations

import base64
import io
from html.parser import HTMLParser

import matplotlib.image as mpimg
import numpy as np
import pandas as pd
import pytest

from gnnrl.baselines.hpa import HPAPolicy
from gnnrl.cli import main
from gnnrl.evaluation.runner import NA_TOPOLOGY, evaluate
from gnnrl.evaluation.scenarios import EvalScenario, Suite, get_suite

QUICK = dict(suite="quick", seeds=1, steps=24, progress=False)


class FixedGraphHPA(HPAPolicy):
    """Stands in for a policy whose input size is fixed (like the gym-hpa MLP)."""

    supports_topology_change = False

    def __init__(self) -> None:
        super().__init__(0.7, name="fixed-graph")


def test_same_seeds_give_the_same_summary(tmp_path):
    a = evaluate(["hpa", "random"], out_dir=tmp_path / "a", report=False, **QUICK)
    b = evaluate(["hpa", "random"], out_dir=tmp_path / "b", report=False, **QUICK)
    pd.testing.assert_frame_equal(a, b)
    steps_a = pd.read_parquet(tmp_path / "a" / "steps.parquet")
    steps_b = pd.read_parquet(tmp_path / "b" / "steps.parquet")
    pd.testing.assert_frame_equal(steps_a, steps_b)


def test_other_seeds_give_other_traces(tmp_path):
    evaluate(["hpa"], out_dir=tmp_path, report=False, suite="quick", seeds=[1000, 1001],
             steps=24, progress=False)
    steps = pd.read_parquet(tmp_path / "steps.parquet")
    one = steps[(steps.policy == "hpa") & (steps.scenario == "diurnal/static")]
    s0 = one[one.seed == 1000]["trace_rps"].to_numpy()
    s1 = one[one.seed == 1001]["trace_rps"].to_numpy()
    assert not np.allclose(s0, s1)


def test_every_policy_faces_the_same_trace_and_events(tmp_path):
    evaluate(["hpa", "static", "random"], out_dir=tmp_path, report=False, **QUICK)
    steps = pd.read_parquet(tmp_path / "steps.parquet")
    for _, df in steps.groupby(["scenario", "seed"]):
        traces = df.groupby("policy")["trace_rps"].apply(tuple)
        events = df.groupby("policy")["topology_events"].apply(tuple)
        assert traces.nunique() == 1 and events.nunique() == 1


def test_oracle_always_runs_and_is_the_unit_of_replica_hours(tmp_path):
    summary = evaluate(["hpa"], out_dir=tmp_path, report=False, **QUICK)
    assert set(summary.policy) == {"hpa", "oracle"}
    oracle = summary[summary.policy == "oracle"]
    assert np.allclose(oracle["replica_hours_vs_oracle"], 1.0)
    hpa = summary[summary.policy == "hpa"]
    assert (hpa["replica_hours_vs_oracle"] > 0).all()


def test_fixed_graph_policy_gets_na_rows_on_topology_changes(tmp_path):
    summary = evaluate([FixedGraphHPA()], out_dir=tmp_path, **QUICK)
    fixed = summary[summary.policy == "fixed-graph"].set_index("scenario")
    assert fixed.loc["flash/add", "note"] == NA_TOPOLOGY
    assert np.isnan(fixed.loc["flash/add", "slo_violation_rate"])
    assert fixed.loc["diurnal/static", "note"] == ""
    assert not np.isnan(fixed.loc["diurnal/static", "replica_hours"])
    md = (tmp_path / "results.md").read_text()
    row = next(line for line in md.splitlines()
               if line.startswith("| flash/add | fixed-graph"))
    assert "n/a" in row


def test_summary_has_one_row_per_policy_scenario_seed_with_the_contract_columns(tmp_path):
    evaluate(["hpa", "keda"], out_dir=tmp_path, suite="quick", seeds=2, steps=16,
             progress=False, report=False)
    summary = pd.read_csv(tmp_path / "summary.csv")
    for col in ("policy", "scenario", "seed", "slo_violation_rate", "replica_hours"):
        assert col in summary.columns
    assert len(summary) == 3 * 2 * 2  # (hpa, keda, oracle) x 2 scenarios x 2 seeds
    assert not summary.duplicated(["policy", "scenario", "seed"]).any()


class _Images(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.srcs: list[str] = []
        self.tables = 0

    def handle_starttag(self, tag, attrs):
        if tag == "img":
            self.srcs.append(dict(attrs)["src"])
        if tag == "table":
            self.tables += 1


def test_report_files_exist_and_open(tmp_path):
    curve = tmp_path / "curve.csv"
    curve.write_text("env_steps,return,slo_violation_rate\n0,-5,0.5\n1000,-2,0.2\n2000,-1,0.1\n")
    evaluate(["hpa", "static"], out_dir=tmp_path, hpa_sweep=[50, 90],
             learning_curves=[curve], **QUICK)
    for name in ("summary.csv", "results.md", "report.html", "steps.parquet",
                 "services.parquet"):
        assert (tmp_path / name).stat().st_size > 0
    parser = _Images()
    parser.feed((tmp_path / "report.html").read_text())
    assert parser.tables >= 3
    assert len(parser.srcs) >= 3  # cost-vs-violations, timelines, learning curves
    for src in parser.srcs:
        assert src.startswith("data:image/png;base64,")
        img = mpimg.imread(io.BytesIO(base64.b64decode(src.split(",", 1)[1])), format="png")
        assert img.ndim == 3 and img.shape[0] > 100 and img.shape[1] > 100
    for png in (tmp_path / "plots").glob("*.png"):
        assert mpimg.imread(png).shape[0] > 100
    md = (tmp_path / "results.md").read_text()
    assert "| policy | SLO viol. % |" in md and "hpa-50" in md


def test_custom_trace_file_suite(tmp_path):
    trace = tmp_path / "t.csv"
    t = np.arange(0, 3600, 60)
    pd.DataFrame({"t_s": t, "rps": 50 + 40 * np.sin(t / 600.0)}).to_csv(trace, index=False)
    suite = Suite("mine", (EvalScenario(str(trace), "remove", 16, 120.0),), (1000,))
    summary = evaluate(["hpa"], suite=suite, out_dir=tmp_path / "out", progress=False,
                       report=False)
    assert set(summary.scenario) == {"t/remove"}
    assert summary["replica_hours"].notna().all()


def test_default_suite_is_five_traces_by_three_topologies_on_held_out_seeds():
    suite = get_suite("default")
    assert len(suite.scenarios) == 15 and len(suite.seeds) >= 5
    assert min(suite.seeds) >= 1000
    assert {s.trace for s in suite.scenarios} == {"diurnal", "flash", "ramp", "fluctuating",
                                                  "replay"}


def test_cli_writes_results_and_rejects_unknown_policies(tmp_path, capsys):
    out = tmp_path / "cli"
    rc = main(["evaluate", "--policies", "hpa", "--suite", "quick", "--seeds", "1",
               "--steps", "16", "--out", str(out), "--no-progress"])
    assert rc == 0
    assert "gnnrl evaluate --policies hpa --suite quick" in (out / "results.md").read_text()
    rc = main(["evaluate", "--policies", "hpa,bogus", "--suite", "quick", "--out", str(out)])
    assert rc == 2
    assert "unknown policy 'bogus'" in capsys.readouterr().err


@pytest.mark.slow
def test_default_suite_runs_end_to_end(tmp_path):
    summary = evaluate(["hpa", "keda", "static"], suite="default", seeds=5, out_dir=tmp_path,
                       hpa_sweep=[30, 50, 70, 90], progress=False)
    assert len(summary) == 7 * 15 * 5


def test_learning_curves_read_the_trainer_jsonl_and_the_mlp_csv(tmp_path):
    from gnnrl.evaluation.report import read_learning_curve

    jsonl = tmp_path / "metrics.jsonl"
    jsonl.write_text('{"global_step": 1024, "episode_return": -50.0, "slo_violation_rate": 0.3}\n'
                     '{"global_step": 1500, "eval/return": -40.0}\n'
                     '{"global_step": 2048, "episode_return": -20.0, "slo_violation_rate": 0.1}\n')
    df = read_learning_curve(jsonl)
    assert df["env_steps"].tolist() == [1024, 2048]
    assert df["return"].tolist() == [-50.0, -20.0]
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1,2\n")
    with pytest.raises(ValueError, match="learning curve needs"):
        read_learning_curve(bad)


def test_parallel_workers_give_the_same_tables_as_a_sequential_run(tmp_path):
    kw = dict(suite="quick", seeds=1, steps=12, progress=False, report=False)
    seq = evaluate(["hpa", "random"], out_dir=tmp_path / "seq", **kw)
    par = evaluate(["hpa", "random"], out_dir=tmp_path / "par", workers=2, **kw)
    pd.testing.assert_frame_equal(seq, par)
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "seq" / "services.parquet"),
                                  pd.read_parquet(tmp_path / "par" / "services.parquet"))


def test_cli_replays_a_trace_file_on_a_custom_app(tmp_path):
    import json

    app = {"name": "tiny", "entry": "web", "slo_p95_ms": 200,
           "services": {
               "web": {"cpu_request_m": 100, "mem_request_mi": 64, "capacity_rps": 50,
                       "service_time_ms": 5, "startup_s": 10},
               "api": {"cpu_request_m": 100, "mem_request_mi": 64, "capacity_rps": 100,
                       "service_time_ms": 3, "startup_s": 10},
               "db": {"cpu_request_m": 200, "mem_request_mi": 128, "capacity_rps": 200,
                      "service_time_ms": 2, "startup_s": 20}},
           "calls": [{"from": "web", "to": "api", "per_request": 1.5},
                     {"from": "api", "to": "db", "per_request": 1.0}]}
    (tmp_path / "app.json").write_text(json.dumps(app))
    t = np.arange(0, 7200, 30)
    pd.DataFrame({"t_s": t, "rps": 30 + 20 * np.sin(t / 900.0)}).to_csv(
        tmp_path / "traffic.csv", index=False)
    out = tmp_path / "out"
    rc = main(["evaluate", "--policies", "hpa,keda", "--trace", str(tmp_path / "traffic.csv"),
               "--topologies", "static,remove", "--peak-rps", "60", "--app",
               str(tmp_path / "app.json"), "--seeds", "1", "--steps", "16", "--out", str(out),
               "--no-progress"])
    assert rc == 0
    summary = pd.read_csv(out / "summary.csv")
    assert set(summary.scenario) == {"traffic/static", "traffic/remove"}
    steps = pd.read_parquet(out / "steps.parquet")
    assert "remove db" in set(steps["topology_events"])  # the least-loaded leaf
    assert "tiny" in (out / "results.md").read_text()


def test_event_windows_start_at_the_interval_the_event_happens(tmp_path):
    """HPA breaks the SLO in the event's own interval and the next (seed 1000): recovery is
    timed from the first of them and both count as the event's violations."""
    from gnnrl.evaluation.runner import run_episode
    from gnnrl.sim import SimConfig, load_app_spec

    app = load_app_spec("onlineboutique")
    for sc in (EvalScenario("flash", "static"), EvalScenario("diurnal", "add")):
        ep = run_episode(HPAPolicy(0.7), sc, 1000, app, tmp_path, SimConfig())
        violated = ep.steps["slo_violated"].to_numpy(bool)
        rows = np.flatnonzero(violated)
        assert len(rows) == 2 and rows[1] == rows[0] + 1, sc.name
        recover = (ep.metrics["recover_flash_s"] if sc.is_flash
                   else ep.metrics["recover_topology_s"])
        assert recover == 30.0, sc.name
        assert ep.metrics["event_violation_steps"] == 2, sc.name
        assert ep.metrics["other_violation_steps"] == 0, sc.name
