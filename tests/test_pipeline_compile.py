"""The compiled pipeline: committed YAML is current, loads with KFP, and says what it must."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import yaml
from kfp import components

from gnnrl.config import ConfigError
from gnnrl.pipeline.options import BuildOptions
from gnnrl.pipeline.runner import COMMITTED_YAML, PACKAGE_ROOT, compile_pipeline
from gnnrl.pipeline.steps import TOKEN_FILE

EXECUTORS = ("collect", "calibrate", "train", "evaluate", "register", "deploy")


def _docs(path):
    docs = list(yaml.safe_load_all(path.read_text()))
    spec = docs[0]
    platform = docs[1]["platforms"]["kubernetes"]["deploymentSpec"]["executors"] if len(
        docs) > 1 else {}
    return spec, platform


@pytest.fixture(scope="module")
def committed():
    return _docs(COMMITTED_YAML)


def test_committed_pipeline_yaml_is_not_stale(tmp_path):
    # compile in a clean process: the image default must not come from this shell's env
    env = {k: v for k, v in os.environ.items() if k != "GNNRL_IMAGE"}
    out = tmp_path / "fresh.yaml"
    subprocess.run(
        [sys.executable, "-m", "gnnrl.cli", "pipeline", "compile", "--out", str(out)],
        check=True, cwd=PACKAGE_ROOT, env=env, capture_output=True,
    )
    assert out.read_text() == COMMITTED_YAML.read_text(), (
        "gnnrl/pipeline/gnnrl_pipeline.yaml is stale: run "
        "`gnnrl pipeline compile --out gnnrl/pipeline/gnnrl_pipeline.yaml` and commit it"
    )


def test_committed_yaml_loads_with_kfps_own_loader_and_exposes_the_knobs():
    pipeline = components.load_component_from_file(str(COMMITTED_YAML))
    inputs = pipeline.component_spec.inputs
    for knob in ("source", "namespace", "kiali_url", "prometheus_url", "train_steps",
                 "train_seeds", "eval_seeds", "gate_slo_margin", "gate_cost_margin",
                 "mlflow_uri", "scaler_namespace", "scaler_mode", "dial"):
        assert knob in inputs, knob
        assert inputs[knob].optional, f"{knob} needs a default so the UI form can start a run"
    assert inputs["source"].default == "sim"


def test_train_task_requests_a_gpu_on_gpu_nodes(committed):
    spec, platform = committed
    resources = spec["deploymentSpec"]["executors"]["exec-train-op"]["container"]["resources"]
    assert resources["accelerator"]["resourceType"] == "nvidia.com/gpu"
    assert resources["accelerator"]["resourceCount"] == "1"
    train = platform["exec-train-op"]
    assert train["nodeSelector"]["labels"] == {"nvidia.com/gpu.present": "true"}
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in train[
        "tolerations"]
    for other in ("exec-collect-op", "exec-evaluate-op"):
        assert "accelerator" not in spec["deploymentSpec"]["executors"][other]["container"].get(
            "resources", {})


def test_gpu_request_and_scheduling_can_be_removed_at_compile_time(tmp_path):
    spec, platform = _docs(compile_pipeline(tmp_path / "cpu.yaml", BuildOptions(gpu=False)))
    container = spec["deploymentSpec"]["executors"]["exec-train-op"]["container"]
    assert "accelerator" not in container.get("resources", {})
    assert "nodeSelector" not in platform.get("exec-train-op", {})
    assert "tolerations" not in platform.get("exec-train-op", {})


def test_deploy_runs_only_inside_the_promoted_condition(committed):
    spec, _ = committed
    root = spec["root"]["dag"]["tasks"]
    assert "deploy-op" not in root
    (cond_name,) = [n for n, t in root.items() if "triggerPolicy" in t]
    cond = root[cond_name]
    assert cond["triggerPolicy"]["condition"] == (
        "inputs.parameter_values['pipelinechannel--register-op-Output'] == true"
    )
    assert cond["dependentTasks"] == ["register-op"]
    inner = spec["components"][cond["componentRef"]["name"]]["dag"]["tasks"]
    assert list(inner) == ["deploy-op"]


def test_training_fans_out_over_seeds_and_evaluation_collects_all_candidates(committed):
    spec, _ = committed
    root = spec["root"]["dag"]["tasks"]
    loop = root["for-loop-1"]
    assert loop["parameterIterator"]["items"] == {"inputParameter": "pipelinechannel--train_seeds"}
    assert loop["iteratorPolicy"]["parallelismLimit"] == BuildOptions().parallelism
    candidates = root["evaluate-op"]["inputs"]["artifacts"]["candidates"]
    assert candidates["taskOutputArtifact"]["producerTask"] == "for-loop-1"
    assert spec["components"]["comp-evaluate-op"]["inputDefinitions"]["artifacts"][
        "candidates"]["isArtifactList"] is True


def test_collection_retries_and_is_never_cached(committed):
    spec, _ = committed
    root = spec["root"]["dag"]["tasks"]
    assert root["collect-op"]["retryPolicy"]["maxRetryCount"] == 3
    assert not root["collect-op"].get("cachingOptions", {}).get("enableCache", False)
    assert not root["register-op"].get("cachingOptions", {}).get("enableCache", False)
    assert root["calibrate-op"]["cachingOptions"]["enableCache"] is True


def test_credentials_come_from_kubernetes_secrets(committed):
    _, platform = committed
    for executor in ("exec-train-op", "exec-evaluate-op", "exec-register-op", "exec-deploy-op"):
        (secret,) = platform[executor]["secretAsEnv"]
        assert secret["secretName"] == "gnnrl-mlflow"
        assert {e["envVar"] for e in secret["keyToEnv"]} == {
            "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"}
    (kiali,) = platform["exec-collect-op"]["secretAsVolume"]
    assert kiali["secretName"] == "gnnrl-kiali"
    assert TOKEN_FILE == kiali["mountPath"] + "/token", "the collect step reads it there"
    assert kiali["optional"] is True


@pytest.mark.parametrize("step", EXECUTORS)
def test_every_step_runs_in_the_project_image_without_installing_kfp(committed, step):
    spec, _ = committed
    container = spec["deploymentSpec"]["executors"][f"exec-{step}-op"]["container"]
    assert container["image"] == "ghcr.io/gnnrl/gnnrl:0.1.0"
    script = " ".join(container["command"])
    assert "pip install" not in script
    assert "from gnnrl." in container["command"][-1], "components are thin: they call gnnrl.*"


@pytest.mark.parametrize(
    ("field", "value"),
    [("parallelism", 0), ("accelerator_limit", 0), ("node_selector", "no-equals"),
     ("toleration", "key:Sometimes"), ("collect_retries", -1)],
)
def test_build_options_name_the_invalid_field(field, value):
    with pytest.raises(ConfigError, match=field):
        BuildOptions(**{field: value})
