"""The pipeline's ``dial`` parameter: training is untouched; the gate judges the candidate at
the dial (``gnnrl:PATH@D``), the registered version records it, and deploy writes it into
the scaler's config."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import yaml

from gnnrl.cli import build_parser
from gnnrl.commands.pipeline import _params
from gnnrl.config import ConfigError
from gnnrl.core.agents.gnnrl_policy import GNNRLPolicy
from gnnrl.evaluation import runner as eval_runner
from gnnrl.pipeline.runner import COMMITTED_YAML, profile_arguments
from gnnrl.pipeline.steps import (
    DIAL_TAG,
    REGISTERED_FILE,
    deploy_step,
    evaluate_step,
    model_spec,
    register_step,
)
from gnnrl.scaler.config import ScalerConfig
from tests.registry_support import make_model, summary


@pytest.fixture
def sqlite_uri(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return f"sqlite:///{tmp_path / 'mlflow.db'}"


@pytest.mark.parametrize("dial, spec", [(0.5, "gnnrl:m/best@0.5"), (1, "gnnrl:m/best@1"),
                                        (0.25, "gnnrl:m/best@0.25")])
def test_a_candidate_is_judged_as_gnnrl_path_at_the_dial(dial, spec):
    assert model_spec("m/best", dial) == spec
    assert model_spec("m/best", dial, "candidate-seed0") == f"candidate-seed0={spec}"


@pytest.mark.parametrize("dial", [1.5, -0.2, float("nan")])
def test_a_dial_outside_0_1_is_refused_before_the_run(dial):
    with pytest.raises(ConfigError, match="pipeline parameter dial"):
        profile_arguments("quick", "sim", dial=dial)


def test_pipeline_run_dial_flag_becomes_the_dial_parameter():
    args = build_parser().parse_args(["pipeline", "run", "--dial", "0.8"])
    assert _params(args) == {"dial": 0.8}
    assert profile_arguments("quick", "sim", **_params(args))["dial"] == 0.8
    with pytest.raises(SystemExit):
        build_parser().parse_args(["pipeline", "run", "--dial", "x"])


def test_the_compiled_pipeline_passes_its_dial_to_evaluate_register_and_deploy():
    spec = next(yaml.safe_load_all(COMMITTED_YAML.read_text()))
    assert spec["root"]["inputDefinitions"]["parameters"]["dial"]["defaultValue"] == 0.5
    # every task, inside the seeds loop and the promoted condition too
    tasks = dict(spec["root"]["dag"]["tasks"])
    for component in spec["components"].values():
        tasks.update(component.get("dag", {}).get("tasks", {}))
    for step in ("evaluate-op", "register-op", "deploy-op"):
        param = tasks[step]["inputs"]["parameters"]["dial"]
        assert param["componentInputParameter"].endswith("dial"), step
    assert "dial" not in tasks["train-op"]["inputs"]["parameters"]  # training is unaffected


def test_the_gate_judges_every_candidate_and_the_champion_at_the_dial(
        tmp_path, sqlite_uri, monkeypatch):
    _, folder = make_model(tmp_path, seed=0)
    seen = {}

    def fake_evaluate(policies, suite, seeds, out, **kw):
        # stands for the simulator runs: the policies as the gate would run them
        seen["policies"] = policies
        (out / "report.html").write_text("<html></html>")
        (out / "results.md").write_text("# results")
        return pd.DataFrame([{"policy": p.name, "scenario": "s", "seed": 1000,
                              "slo_violation_rate": 0.0, "replica_hours": 1.0}
                             for p in policies])

    monkeypatch.setattr(eval_runner, "evaluate", fake_evaluate)
    out = tmp_path / "eval"
    result = evaluate_step([str(folder)], str(tmp_path), str(tmp_path), "quick", 1, str(out),
                           str(tmp_path / "best"), str(tmp_path / "r.html"),
                           str(tmp_path / "r.md"), mlflow_uri=sqlite_uri, dial=0.8)
    candidate = seen["policies"][0]
    assert candidate.name == result.best_policy == "candidate-0"
    inner = candidate
    while not isinstance(inner, GNNRLPolicy):
        inner = inner.inner
    assert inner.dial == 0.8
    selection = json.loads((out / "selection.json").read_text())
    assert selection["dial"] == 0.8
    assert selection["specs"]["candidate-0"] == f"gnnrl:{folder}@0.8"


def test_the_registered_version_records_the_dial_and_deploy_writes_it(
        tmp_path, sqlite_uri, monkeypatch):
    from gnnrl.registry.promote import show_version

    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    _, folder = make_model(tmp_path, seed=0)
    csv = tmp_path / "summary.csv"
    summary((0.01, 9.0)).to_csv(csv, index=False)
    record = tmp_path / "registered"
    record.mkdir()
    result = register_step(str(folder), str(csv), "cand", "", mlflow_uri=sqlite_uri,
                           record_out=str(record), dial=0.25)
    assert result.promoted
    assert show_version(result.version, sqlite_uri)["tags"][DIAL_TAG] == "0.25"
    assert json.loads((record / REGISTERED_FILE).read_text())["dial"] == 0.25

    deployed = deploy_step(str(record), str(tmp_path / "manifests"), "shop")
    docs = list(yaml.safe_load_all(deployed.rendered_path.read_text()))
    (cm,) = [d for d in docs if d["kind"] == "ConfigMap"]
    cfg = ScalerConfig.from_dict(json.loads(cm["data"]["scaler.json"]))
    assert cfg.dial == 0.25  # the dial the model was judged at, from the record
    again = deploy_step(str(record), str(tmp_path / "m2"), "shop", dial=0.75)
    (cm,) = [d for d in yaml.safe_load_all(again.rendered_path.read_text())
             if d["kind"] == "ConfigMap"]
    assert json.loads(cm["data"]["scaler.json"])["dial"] == 0.75


def test_the_nightly_gate_wants_a_win_that_survives_redrawing_the_scenarios(
        tmp_path, sqlite_uri):
    """The pipeline's default gate asks the candidate to pass in 90 % of scenario redraws;
    the quick profile (2 scenarios) does not. A candidate cheaper on average only thanks to
    one scenario is registered but not promoted, and says why."""
    from kfp import components

    inputs = components.load_component_from_file(str(COMMITTED_YAML)).component_spec.inputs
    assert inputs["gate_min_confidence"].default == 0.9
    assert profile_arguments("quick", "sim")["gate_min_confidence"] == 0.0
    assert "gate_min_confidence" not in profile_arguments("full", "sim")

    _, folder = make_model(tmp_path, seed=0)
    rows = [{"policy": p, "scenario": f"s{k}", "seed": seed, "slo_violation_rate": 0.0,
             "replica_hours": (4.0 if k == 7 else 10.2) if p == "cand" else 10.0}
            for p in ("cand", "hpa") for k in range(8) for seed in (1000, 1001)]
    csv = tmp_path / "summary.csv"
    pd.DataFrame(rows).to_csv(csv, index=False)
    result = register_step(str(folder), str(csv), "cand", "", mlflow_uri=sqlite_uri,
                           min_confidence=0.9)
    assert not result.promoted
    assert "redraws of the scenarios (min_confidence 0.9)" in result.decision.reasons[0]
    again = register_step(str(folder), str(csv), "cand", "", mlflow_uri=sqlite_uri)
    assert again.promoted  # the mean alone is a win
