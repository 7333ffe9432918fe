"""Real-trace scenarios, the real and stress suites, and the evaluate CLI on a trace file."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from gnnrl.cli import main
from gnnrl.config import ConfigError
from gnnrl.evaluation.runner import evaluate
from gnnrl.evaluation.scenarios import SUITES, EvalScenario, Suite, get_suite
from gnnrl.sim.spec import load_app_spec
from gnnrl.sim.trace_io import check_window, parse_duration, read_trace
from gnnrl.sim.trace_windows import (
    ALL_EVAL_WINDOWS,
    EVAL_WINDOWS,
    FRESH_2_EVAL_WINDOWS,
    FRESH_EVAL_WINDOWS,
    LATE_EVAL_WINDOWS,
    TRAIN_WINDOWS,
    VALIDATION_WINDOWS,
    TraceWindow,
    overlapping_windows,
)


def test_training_validation_and_evaluation_windows_do_not_overlap():
    assert overlapping_windows(TRAIN_WINDOWS, ALL_EVAL_WINDOWS + VALIDATION_WINDOWS) == []
    assert overlapping_windows(VALIDATION_WINDOWS, ALL_EVAL_WINDOWS) == []
    sets = (EVAL_WINDOWS, LATE_EVAL_WINDOWS, FRESH_EVAL_WINDOWS, FRESH_2_EVAL_WINDOWS)
    for i, a in enumerate(sets):
        for b in sets[i + 1:]:
            assert overlapping_windows(a, b) == []
    names = [w.name for w in TRAIN_WINDOWS + ALL_EVAL_WINDOWS + VALIDATION_WINDOWS]
    assert len(set(names)) == len(names)


def test_the_validation_week_runs_from_validation_seeds_and_training_may_not_use_it():
    from gnnrl.contracts.seeds import VALIDATION_SEED_BASE
    from gnnrl.core.agents.scenario_mix import check_training_traces

    suite = get_suite("real-validation", seeds=2)
    assert suite.seeds == (VALIDATION_SEED_BASE, VALIDATION_SEED_BASE + 1)
    assert sum(s.steps for s in suite.scenarios) * 15 / 86400 == pytest.approx(7)
    fresh = get_suite("real-fresh", seeds=2)
    assert fresh.seeds == (1000, 1001)
    assert [s.trace_label for s in fresh.scenarios] == [w.name for w in FRESH_EVAL_WINDOWS]
    with pytest.raises(ValueError, match="overlaps the validation window 'wc98-group-end'"):
        check_training_traces(["worldcup98@1250h+2h"])
    with pytest.raises(ValueError, match="overlaps the evaluation window 'wc98-late-july'"):
        check_training_traces(["worldcup98@1860h+1d"])
    fresh2 = get_suite("real-fresh-2", seeds=2)
    assert sum(s.steps for s in fresh2.scenarios) * 15 / 86400 == pytest.approx(7)
    with pytest.raises(ValueError, match="overlaps the evaluation window 'wc98-last-days'"):
        check_training_traces(["worldcup98@2000h+1d"])


def test_the_overlap_check_catches_a_shared_hour():
    a = (TraceWindow("a", "worldcup98", "10h", "2h", ""),)
    b = (TraceWindow("b", "worldcup98", "11h", "1d", ""),
         TraceWindow("c", "aws-elb", "10h", "2h", ""),
         TraceWindow("d", "worldcup98", "12h", "1h", ""))
    assert [(x.name, y.name) for x, y in overlapping_windows(a, b)] == [("a", "b")]


@pytest.mark.parametrize("window", TRAIN_WINDOWS + ALL_EVAL_WINDOWS + VALIDATION_WINDOWS,
                         ids=lambda w: w.name)
def test_every_declared_window_lies_inside_its_trace(window):
    raw = read_trace(window.trace)
    check_window(raw, window.start_s, parse_duration(window.duration))


def test_real_suite_replays_the_evaluation_windows_at_native_resolution():
    suite = get_suite("real", seeds=1)
    assert [s.trace_label for s in suite.scenarios] == [w.name for w in EVAL_WINDOWS]
    steps = {s.trace_label: s.steps for s in suite.scenarios}
    assert steps["wc98-match-day"] == 2880  # 12 h of 15 s steps
    assert steps["wc98-three-days"] == 3 * 5760
    with pytest.raises(ConfigError, match="steps: the real suite"):
        get_suite("real", steps=240)


def test_the_late_suite_replays_the_later_windows_and_training_may_not_use_them():
    from gnnrl.core.agents.scenario_mix import check_training_traces

    suite = get_suite("real-late", seeds=2)
    assert suite.name == "real-late" and suite.seeds == (1000, 1001)
    assert [s.trace_label for s in suite.scenarios] == [w.name for w in LATE_EVAL_WINDOWS]
    assert {s.timing for s in suite.scenarios} == {"realistic"}
    assert sum(s.steps for s in suite.scenarios) * 15 / 86400 == pytest.approx(4.5)
    with pytest.raises(ConfigError, match="steps: the real-late suite"):
        get_suite("real-late", steps=240)
    with pytest.raises(ValueError, match="overlaps the evaluation window 'wc98-final-day'"):
        check_training_traces(["worldcup98@1730h+2h"])


def test_native_replay_steps_follow_the_window_and_compress_keeps_the_episode():
    assert EvalScenario("worldcup98", start="294h", duration="12h").steps == 2880
    assert EvalScenario("aws-elb", start="1d", duration="90m").steps == 360
    assert EvalScenario("aws-elb", steps=40).steps == 40  # 10 min from the start
    squeezed = EvalScenario("aws-elb", start="11d", duration="1d", compress=True)
    assert squeezed.steps == 240 and squeezed.name == "aws-elb@11d+1d/static"
    with pytest.raises(ConfigError, match="disagrees with the window 12h"):
        EvalScenario("worldcup98", steps=240, start="294h", duration="12h")


@pytest.mark.parametrize("kwargs, match", [
    (dict(trace="diurnal", duration="1h"), "synthetic"),
    (dict(trace="worldcup98", start="3y"), "start: cannot read"),
    (dict(trace="aws-elb", start="13d", duration="2d"), "ends beyond the trace"),
    (dict(trace="aws-elb", start="20d", duration="1h"), "beyond the trace"),
    (dict(trace="nonesuch"), "neither a trace kind"),
    (dict(trace="flash", timing="bogus"), "timing must be one of"),
    (dict(trace="flash", startup_s=-1.0), "startup_s must be >= 0"),
])
def test_bad_scenarios_are_refused_with_the_field_named(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        EvalScenario(**kwargs)


def test_default_suite_still_squeezes_the_shipped_day_into_one_episode():
    replay = [s for s in get_suite("default").scenarios if s.trace == "replay"]
    assert replay and all(s.compress and s.steps == 240 for s in replay)


def test_stress_suite_sets_every_service_start_up_to_30_and_60_s():
    suite = get_suite("stress", seeds=1)
    assert {(s.trace, s.startup_s) for s in suite.scenarios} == {
        ("surge", 30.0), ("surge", 60.0), ("flash", 30.0), ("flash", 60.0)}
    app = load_app_spec("onlineboutique")
    for sc in suite.scenarios:
        assert sc.is_flash
        assert {s.startup_s for s in sc.resolve_app(app).services.values()} == {sc.startup_s}


def test_cli_suite_names_match_the_suites():
    from gnnrl.commands import evaluate as cmd

    assert cmd.SUITES == SUITES


def test_a_scenario_runs_on_its_own_app_and_rows_say_which(tmp_path):
    tiny = load_app_spec({
        "name": "tiny", "entry": "web", "slo_p95_ms": 200,
        "services": {"web": {"cpu_request_m": 100, "mem_request_mi": 64, "capacity_rps": 50,
                             "service_time_ms": 5, "startup_s": 10}},
        "calls": []})
    suite = Suite("mixed", (EvalScenario("flash", steps=8, peak_rps=20.0),
                            EvalScenario("flash", steps=8, peak_rps=20.0,
                                         app="onlineboutique", label="flash-ob")), (1000,))
    summary = evaluate(["hpa"], suite=suite, app=tiny, out_dir=tmp_path, progress=False,
                       report=False)
    apps = summary.groupby("scenario")["app"].unique()
    assert list(apps["flash/static"]) == ["tiny"]
    assert list(apps["onlineboutique/flash-ob/static"]) == ["onlineboutique"]


def test_cli_evaluates_a_minute_count_trace_window_and_writes_the_matched_tables(tmp_path,
                                                                                capsys):
    t = pd.date_range("1998-06-01", periods=60, freq="min")
    counts = (3000 + 2000 * np.sin(np.arange(60) / 9.0)).astype(int)
    trace = tmp_path / "tiny.csv.gz"
    pd.DataFrame({"minute": t.strftime("%Y-%m-%d %H:%M:%S"), "count": counts}).to_csv(
        trace, index=False)
    out = tmp_path / "D"
    rc = main(["evaluate", "--policies", "hpa,static", "--trace", str(trace), "--peak-rps",
               "100", "--start", "10m", "--duration", "30m", "--seeds", "1", "--hpa-sweep",
               "50,90", "--out", str(out), "--no-progress"])
    assert rc == 0
    for name in ("summary.csv", "frontier.csv", "matched.csv", "report.html"):
        assert (out / name).stat().st_size > 0, name
    summary = pd.read_csv(out / "summary.csv")
    assert set(summary["scenario"]) == {"tiny@10m+30m/static"}
    assert set(summary["app"]) == {"onlineboutique"}
    steps = pd.read_parquet(out / "steps.parquet")
    assert steps.groupby("policy")["step"].max().eq(120).all()  # 30 min at 15 s
    assert steps["trace_rps"].max() == pytest.approx(100.0, rel=1e-6)
    frontier = pd.read_csv(out / "frontier.csv")
    assert list(frontier.columns) == ["family", "knob", "slo_violation_rate", "replica_hours"]
    assert sorted(frontier["knob"]) == [50.0, 70.0, 90.0]
    matched = pd.read_csv(out / "matched.csv")
    assert set(matched["policy"]) == {"hpa", "static", "hpa-50", "hpa-90", "oracle"}
    assert "Cost at matched SLO" in (out / "results.md").read_text()
    assert "frontier.png" in (out / "report.html").read_text()
    # gentle traffic: when even HPA-90 never violates, both the CLI and the report say so
    clean = summary.loc[summary["policy"] == "hpa-90", "slo_violation_rate"].max() == 0
    err = capsys.readouterr().err
    assert ("highest target (hpa-90) has no SLO violation" in err) == clean
    assert ("**warning**" in (out / "results.md").read_text()) == clean


def test_cli_window_flags_need_a_trace(tmp_path, capsys):
    rc = main(["evaluate", "--policies", "hpa", "--suite", "quick", "--start", "1h",
               "--out", str(tmp_path)])
    assert rc == 2 and "--start: only with --trace" in capsys.readouterr().err


def test_scenarios_are_picklable_for_worker_processes():
    import pickle

    sc = EvalScenario("worldcup98", start="294h", duration="12h", label="x")
    assert dataclasses.asdict(pickle.loads(pickle.dumps(sc))) == dataclasses.asdict(sc)


def test_timing_is_passed_to_the_simulator_where_it_models_timing():
    from gnnrl.sim.core import SimConfig

    cfg = EvalScenario("flash", timing="realistic").sim_config(SimConfig(metric_noise=0.0))
    if "timing" in {f.name for f in dataclasses.fields(SimConfig)}:
        assert cfg.timing == "realistic" and cfg.metric_noise == 0.0
    else:  # a simulator without timing models runs the ideal one
        assert cfg == SimConfig(metric_noise=0.0)
