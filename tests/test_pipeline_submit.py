"""`gnnrl pipeline submit|schedule` against an HTTP-level fake of the KFP v2beta1 API."""

from __future__ import annotations

import json

import pytest

from gnnrl.cli import main
from gnnrl.config import ConfigError
from gnnrl.pipeline.runner import validate_cron
from gnnrl.testing.kfp_fake import FakeKfp


@pytest.fixture
def kfp(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))  # kfp reads ~/.config/kfp/context.json
    with FakeKfp() as fake:
        yield fake


def test_schedule_creates_a_nightly_recurring_run_without_catchup(kfp, capsys):
    rc = main(["pipeline", "schedule", "--host", kfp.url, "--cron", "0 0 2 * * *",
               "--param", "train_steps=50000"])
    assert rc == 0, capsys.readouterr().err
    ((_, body),) = [(p, b) for p, b in kfp.posts if p.endswith("recurringruns")]
    assert body["trigger"]["cron_schedule"]["cron"] == "0 0 2 * * *"
    assert body["no_catchup"] is True
    assert int(body["max_concurrency"]) == 1
    assert body["mode"] == "ENABLE"
    assert body["experiment_id"] == "exp-1"
    # the package travels whole: pipeline spec plus the Kubernetes platform spec (GPU nodes)
    assert body["pipeline_spec"]["pipeline_spec"]["pipelineInfo"]["name"] == "gnnrl-retrain"
    platform = body["pipeline_spec"]["platform_spec"]["platforms"]["kubernetes"]
    assert "nodeSelector" in platform["deploymentSpec"]["executors"]["exec-train-op"]
    assert body["runtime_config"]["parameters"]["train_steps"] == 50000
    assert "rec-1" in capsys.readouterr().out


def test_submit_sends_the_committed_pipeline_with_parameters(kfp, capsys):
    rc = main(["pipeline", "submit", "--host", kfp.url, "--run-name", "try-1",
               "--param", "source=kiali", "--param", "train_seeds=[0,1]"])
    assert rc == 0, capsys.readouterr().err
    ((_, body),) = [(p, b) for p, b in kfp.posts if p.endswith("/runs")]
    assert body["display_name"] == "try-1"
    assert body["runtime_config"]["parameters"] == {"source": "kiali", "train_seeds": [0, 1]}
    assert "train-op" in json.dumps(body["pipeline_spec"])
    assert "run-1" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("cron", "ok"),
    [("0 0 2 * * *", True), ("0 */30 * * * *", True), ("0 2 * * *", False),
     ("@daily", False), ("", False)],
)
def test_cron_must_have_kfps_six_fields(cron, ok):
    if ok:
        assert validate_cron(cron) == cron
    else:
        with pytest.raises(ConfigError, match="6 fields"):
            validate_cron(cron)


def test_schedule_refuses_a_five_field_cron_before_calling_the_server(kfp, capsys):
    rc = main(["pipeline", "schedule", "--host", kfp.url, "--cron", "0 2 * * *"])
    assert rc == 2
    assert "6 fields" in capsys.readouterr().err
    assert kfp.posts == []
