"""Step functions' own logic: candidate ranking, profile arguments, input checks."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from gnnrl.config import ConfigError
from gnnrl.pipeline.runner import PROFILES, profile_arguments
from gnnrl.pipeline.steps import (
    TRAIN_INFO,
    StepError,
    _divisor,
    calibrate_step,
    candidate_name,
    collect_step,
    rank_candidates,
)


def _summary(rows):
    return pd.DataFrame(
        [{"policy": p, "seed": s, "slo_violation_rate": slo, "replica_hours": cost}
         for p, slo, cost in rows for s in (1, 2)]
    )


@pytest.mark.parametrize(
    ("rows", "best_first"),
    [
        ([("a", 0.10, 5.0), ("b", 0.05, 9.0)], ["b", "a"]),  # SLO first
        ([("a", 0.05, 7.0), ("b", 0.05, 6.0)], ["b", "a"]),  # then cost
        ([("a", 0.0, 1.0), ("b", 0.0, 1.0), ("hpa", 0.0, 0.1)], ["a", "b"]),  # only candidates
    ],
)
def test_best_candidate_has_the_fewest_slo_violations_then_the_lowest_cost(rows, best_first):
    names = [r[0] for r in rows if r[0] != "hpa"]
    assert rank_candidates(_summary(rows), names) == best_first


def test_a_candidate_missing_from_the_evaluation_is_an_error():
    with pytest.raises(StepError, match="missing from the summary: c"):
        rank_candidates(_summary([("a", 0.0, 1.0)]), ["a", "c"])


def test_candidates_are_named_after_their_training_seed(tmp_path):
    (tmp_path / TRAIN_INFO).write_text(json.dumps({"seed": 4, "mlflow_run_id": "x"}))
    assert candidate_name(0, tmp_path) == "candidate-seed4"
    assert candidate_name(2, tmp_path / "elsewhere") == "candidate-2"


@pytest.mark.parametrize(("n", "want", "expected"), [(480, 4, 4), (63, 4, 3), (7, 4, 1)])
def test_minibatch_count_divides_the_batch(n, want, expected):
    assert _divisor(n, want) == expected


@pytest.mark.parametrize(("source", "missing"), [("kiali", "kiali_url"),
                                                 ("prometheus", "prometheus_url")])
def test_live_sources_need_their_url(tmp_path, source, missing):
    with pytest.raises(StepError, match=missing):
        collect_step(str(tmp_path / "out"), source=source)


def test_collect_and_calibrate_steps_write_what_the_cli_writes(tmp_path):
    """The steps run the commands' own functions (`gnnrl.data.collect_job`,
    `gnnrl.data.calibrate_job`): from the same snapshots, the same app spec and trace."""
    from gnnrl.cli import main
    from gnnrl.data.reader import read_dataset

    data = collect_step(str(tmp_path / "data"), count=12, interval_s=30.0)
    assert read_dataset(data).nodes.ts.nunique() == 12
    app, trace = calibrate_step(str(data), str(tmp_path / "app"), str(tmp_path / "trace"))
    cli_app, cli_trace = tmp_path / "cli.yaml", tmp_path / "cli.csv"
    assert main(["calibrate", str(data), "--out", str(cli_app),
                 "--trace-out", str(cli_trace)]) == 0
    assert app.read_text() == cli_app.read_text()
    assert trace.read_text() == cli_trace.read_text()


def test_collect_step_that_stores_nothing_fails_with_the_first_error(tmp_path):
    import socket

    with socket.socket() as s:       # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(StepError, match=r"collect: no snapshot collected in 2 tick\(s\); "
                                        r"first error: SourceUnavailable"):
        collect_step(str(tmp_path / "out"), source="kiali", count=2, interval_s=0.2,
                     namespace="shop", kiali_url=f"http://127.0.0.1:{port}/kiali",
                     token_file=str(tmp_path / "no-token"))


@pytest.mark.parametrize(("count", "reason"), [(0, "no usable snapshot"),
                                               (4, "only 4 usable snapshots")])
def test_calibrate_step_without_enough_snapshots_fails_saying_why(tmp_path, count, reason):
    data = tmp_path / "data"
    data.mkdir()
    if count:
        collect_step(str(data), count=count)
    with pytest.raises(StepError, match=f"calibrate: .*{reason}"):
        calibrate_step(str(data), str(tmp_path / "app"), str(tmp_path / "trace"))


def test_profiles_fill_the_pipeline_parameters_and_overrides_win():
    args = profile_arguments("quick", "sim", train_steps=99, kiali_url=None)
    assert args["source"] == "sim" and args["train_steps"] == 99
    assert "kiali_url" not in args
    assert args["eval_suite"] == PROFILES["quick"]["eval_suite"]
    assert profile_arguments("full", "kiali") == {"source": "kiali"}


@pytest.mark.parametrize(("param", "value"), [("train_teacher", "psychic"),
                                              ("train_teacher", "hpa-0"),
                                              ("train_warm_start", "yesterday")])
def test_a_bad_teacher_or_warm_start_is_refused_before_the_run(param, value):
    with pytest.raises(ConfigError, match=f"pipeline parameter {param}.*{value}"):
        profile_arguments("quick", "sim", **{param: value})


@pytest.mark.parametrize(("profile", "source"), [("huge", "sim"), ("quick", "ftp")])
def test_unknown_profile_or_source_is_refused(profile, source):
    with pytest.raises(ConfigError):
        profile_arguments(profile, source)


def test_pipeline_arguments_are_checked_against_the_compiled_parameters():
    """``--param gate_hpa_slo_margin=0`` parses as a JSON integer: it becomes the float the
    parameter is; a misspelt name or a wrong type is refused naming it, before KFP runs."""
    from gnnrl.pipeline.runner import check_arguments

    args = check_arguments({"gate_hpa_slo_margin": 0, "train_steps": 500, "dial": 0.8})
    assert args == {"gate_hpa_slo_margin": 0.0, "train_steps": 500, "dial": 0.8}
    assert isinstance(args["gate_hpa_slo_margin"], float)
    with pytest.raises(ConfigError, match=r"unknown pipeline parameter.*train_step[^s].*"
                                          r"train_steps"):
        check_arguments({"train_step": 5})
    with pytest.raises(ConfigError, match=r"train_steps takes a whole number, got 1\.5"):
        check_arguments({"train_steps": 1.5})
    with pytest.raises(ConfigError, match="dial takes a number, got True"):
        check_arguments({"dial": True})


def test_quick_profile_parameters_exist_in_the_pipeline():
    from kfp import components

    from gnnrl.pipeline.runner import COMMITTED_YAML

    inputs = components.load_component_from_file(str(COMMITTED_YAML)).component_spec.inputs
    for profile in PROFILES.values():
        assert set(profile) <= set(inputs)


def test_pipeline_training_uses_the_shipped_recipe_at_the_calibrated_peak(tmp_path):
    """Nightly candidates are trained like the shipped model (DAgger, a dial per episode,
    its cluster timings, PPO settings and serving margin; PPO draws with the margins and
    validates as deployed) on the calibrated app alone,
    around the traffic peak the cluster really saw, imitating the pipeline's teacher (the
    dial-following headroom rule unless told otherwise)."""
    from gnnrl.core.agents.train import TrainConfig
    from gnnrl.evaluation.gnnrl_policy import default_model_dir
    from gnnrl.pipeline.steps import (
        FULL_IMITATION_STEPS,
        SHORT_BC_DAGGER,
        SHORT_BC_ROUNDS,
        recipe_config,
    )

    trace = tmp_path / "trace.csv"
    trace.write_text("t_s,rps\n0,40\n15,120\n30,80\n45,60\n")
    shipped = TrainConfig.load(default_model_dir() / "train_config.json")
    full = recipe_config("onlineboutique", str(trace), (str(trace), "diurnal"),
                         FULL_IMITATION_STEPS, 240, 3, 8, 120)
    assert shipped.bc_teacher == "oracle@dial" and full.bc_teacher == "headroom@dial"
    assert full.dial == shipped.dial == "random" and full.timings == shipped.timings
    assert full.apps == () and full.app == "onlineboutique" and full.peak_scales == ()
    assert full.ppo.num_envs % len(full.timings) == 0
    assert (full.bc_rounds, full.bc_dagger) == (shipped.bc_rounds, shipped.bc_dagger)
    assert full.peaks == (96.0, 120.0, 144.0)
    assert full.policy.hold_margin == shipped.policy.hold_margin > 0
    assert full.ppo.learning_rate == shipped.ppo.learning_rate
    # PPO improves the served policy and keeps only what validates better as deployed
    assert full.ppo.served_margins and full.validate_as_deployed
    assert (full.seed, full.max_steps, full.ppo.total_steps) == (3, 240, FULL_IMITATION_STEPS)
    smoke = recipe_config("onlineboutique", str(trace), ("diurnal",), 1920, 60, 0, 8, 120,
                          teacher="oracle@dial")
    assert (smoke.bc_rounds, smoke.bc_dagger) == (SHORT_BC_ROUNDS, SHORT_BC_DAGGER) == (2, 2)
    assert smoke.bc_teacher == "oracle@dial"
    with pytest.raises(ConfigError, match="bc_teacher"):
        recipe_config("onlineboutique", str(trace), ("diurnal",), 1920, 60, 0, 8, 120,
                      teacher="psychic")
