"""The pipeline end to end on this machine (KFP local subprocess runner, SQLite MLflow).

Default run: a shortened quick profile, twice into one registry -- the first run leaves
``gnnrl-scaler@champion``; the second, a challenger taught to over-provision that does not
beat it, leaves the champion where it was. A failing step and an unreachable MLflow change nothing.
The untouched quick profile, through the CLI, is the slow variant.
"""

from __future__ import annotations

import logging

import os
import subprocess
import sys

import numpy as np
import pytest
import yaml

from gnnrl.pipeline.runner import PACKAGE_ROOT, run_local
from gnnrl.registry.promote import CHALLENGER, CHAMPION, alias_version, list_versions, show_version
from gnnrl.registry.tracking import RegistryUnavailableError

#: the quick profile, shortened for the default test run (same DAG, smaller budget)
SHORT = {"snapshot_count": 24, "train_steps": 960, "eval_seeds": 1}


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    root = tmp_path_factory.mktemp("pipeline")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        mp.delenv("GNNRL_MANIFESTS", raising=False)
        mp.delenv("MLFLOW_TRACKING_URI", raising=False)
        mp.setenv("PYTHONPATH", os.environ.get("PYTHONPATH", ""))
        uri = f"sqlite:///{root / 'mlflow.db'}"
        lines: list[str] = []
        first = run_local("quick", "sim", workdir=root / "runs", mlflow_uri=uri,
                          verbose=False, progress=lines.append, **SHORT)
        first.progress = lines
        yield root, uri, first


def test_quick_local_run_registers_and_promotes_a_champion(workspace):
    _, uri, run = workspace
    assert run.model_version == "1" and run.champion_version == "1"
    assert alias_version(uri, CHAMPION) == "1" and alias_version(uri, CHALLENGER) == "1"
    tags = show_version("1", uri)["tags"]
    assert tags["gate.decision"] == "promoted"
    assert float(tags["gate.challenger.slo_violation_rate"]) >= 0.0
    assert len(tags["weights_sha256"]) == 64
    assert "<html" in run.report_html.read_text().lower()
    assert run.report_html.name == "report.html"  # opens as a page when downloaded
    assert run.report_md.read_text().strip()
    rendered = list(yaml.safe_load_all(run.deploy_manifests.read_text()))
    (deployment,) = [d for d in rendered if d["kind"] == "Deployment"]
    annotations = deployment["spec"]["template"]["metadata"]["annotations"]
    assert annotations["gnnrl.io/model-version"] == "1"


def test_training_and_evaluation_are_tracked_in_mlflow(workspace):
    from mlflow.tracking import MlflowClient

    _, uri, _ = workspace
    client = MlflowClient(tracking_uri=uri)
    exp = client.get_experiment_by_name("gnnrl")
    runs = client.search_runs([exp.experiment_id])
    steps = {r.data.tags.get("gnnrl.step") for r in runs}
    assert {"train", "evaluate"} <= steps
    train = next(r for r in runs if r.data.tags.get("gnnrl.step") == "train")
    assert "ppo.total_steps" in train.data.params and train.data.metrics
    evaluation = next(r for r in runs if r.data.tags.get("gnnrl.step") == "evaluate")
    assert "hpa.slo_violation_rate" in evaluation.data.metrics
    names = {a.path for a in client.list_artifacts(evaluation.info.run_id, "evaluation")}
    assert "evaluation/report.html" in names and "evaluation/summary.csv" in names


def test_champion_pyfunc_acts_like_the_in_process_policy_on_env_observations(workspace):
    import mlflow.pyfunc

    from gnnrl.core.agents.ppo_gnn import PPO_GNN
    from gnnrl.core.envs import OnlineBoutique
    from gnnrl.registry.pyfunc_model import act_sequence, download_model_dir, to_batch

    root, uri, _ = workspace
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    served = mlflow.pyfunc.load_model("models:/gnnrl-scaler@champion")
    policy = PPO_GNN.load(download_model_dir("models:/gnnrl-scaler/1", root / "dl", uri))
    env = OnlineBoutique(k8s=False, use_graph=True, max_steps=8)
    obs, info = env.reset(seed=3)
    names = [n or "" for n in info["slot_names"]]
    observations = []
    for _ in range(6):
        observations.append(obs)
        obs, *_ = env.step(np.zeros(env.action_space.shape, dtype=np.int64))
    batch = to_batch(observations)
    expected = act_sequence(policy, batch, reset=True, slot_names=names)
    got = served.predict(batch, params={"reset": True, "slot_names": names})
    np.testing.assert_array_equal(got, expected)


def test_a_challenger_that_does_not_beat_the_champion_leaves_it_unchanged(workspace):
    root, uri, _ = workspace
    # worse on purpose: specialised towards a rule that over-provisions (HPA at 40 % CPU)
    second = run_local("quick", "sim", workdir=root / "runs", mlflow_uri=uri,
                       **{**SHORT, "train_steps": 64, "train_seeds": [0],
                          "train_teacher": "hpa-40"})
    assert second.model_version == "2"
    assert alias_version(uri, CHAMPION) == "1", "the champion did not move"
    assert alias_version(uri, CHALLENGER) == "2"
    tags = show_version("2", uri)["tags"]
    assert tags["gate.decision"] == "rejected"
    assert "champion" in tags["gate.reason"]
    assert tags["gate.previous_champion"] == "1"
    assert second.deploy_manifests is None, "deploy runs only for a promoted model"


def test_quiet_local_run_prints_one_line_per_step_and_no_executor_json(workspace):
    _, _, run = workspace
    steps = [line.split()[0] for line in run.progress]
    assert {"collect-op", "calibrate-op", "evaluate-op", "register-op"} <= set(steps)
    assert all("succeeded" in line or "success" in line for line in run.progress)
    assert not any("\x1b[" in line or "{" in line for line in run.progress)


def test_a_failing_step_stops_the_run_and_leaves_the_registry_alone(workspace, capsys):
    root, uri, _ = workspace
    before = [v["version"] for v in list_versions(uri)]
    champion = alias_version(uri, CHAMPION)
    with pytest.raises(RuntimeError, match="FAILURE"):
        run_local("quick", "kiali", workdir=root / "runs", mlflow_uri=uri,
                  kiali_url="http://127.0.0.1:9/kiali", namespace="shop",
                  snapshot_count=2, snapshot_interval_s=1.0, verbose=False,
                  progress=lambda line: None)
    # quiet, but the failing step's own words are shown
    assert "127.0.0.1:9" in capsys.readouterr().err
    assert [v["version"] for v in list_versions(uri)] == before
    assert alias_version(uri, CHAMPION) == champion


def test_unreachable_mlflow_fails_before_any_step_naming_the_uri(tmp_path):
    uri = "http://127.0.0.1:9"
    with pytest.raises(RegistryUnavailableError, match=r"http://127\.0\.0\.1:9"):
        run_local("quick", "sim", workdir=tmp_path, mlflow_uri=uri)
    assert not (tmp_path / "local_outputs").exists()


@pytest.mark.slow
def test_readme_quick_pipeline_command_runs_end_to_end(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(PACKAGE_ROOT)}
    env.pop("MLFLOW_TRACKING_URI", None)
    proc = subprocess.run(
        [sys.executable, "-m", "gnnrl.cli", "pipeline", "run", "--profile", "quick"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "champion:         models:/gnnrl-scaler@champion = version 1" in proc.stdout
    assert (tmp_path / "mlflow.db").is_file()


def test_quiet_filter_turns_kfp_records_into_progress_and_keeps_the_tail():
    from gnnrl.pipeline.runner import _KfpOutputFilter

    lines: list[str] = []
    out = _KfpOutputFilter(lines.append)
    out.record("Executing task \x1b[96m'train-op'\x1b[0m")
    out.write('    {"executorOutput": {"artifacts": {}}}\n    step log li')
    out.write("ne\n12:00:01.000 - INFO - Task 'train-op' finished with status SUCCESS\n")
    assert lines == []  # printed text is only kept: progress comes from the log records
    out.record("Task \x1b[96m'train-op'\x1b[0m finished with status \x1b[92mSUCCESS\x1b[0m")
    assert len(lines) == 1 and lines[0].split()[:2] == ["train-op", "success"]
    assert "    step log line" in out.tail and not any("\x1b" in t for t in out.tail)


def test_parallel_tasks_of_one_name_each_report_their_own_duration(monkeypatch):
    """A ParallelFor starts the train step once per seed before the first one ends: each
    finished line reports the time since a start of its own, never a negative one."""
    from gnnrl.pipeline import runner

    clock = iter([0.0, 1.0, 2.0, 300.0, 310.0, 320.0])
    monkeypatch.setattr(runner.time, "monotonic", lambda: next(clock))
    lines: list[str] = []
    out = runner._KfpOutputFilter(lines.append)
    for _ in range(3):
        out.record("Executing task 'train-op'")
    for _ in range(3):
        out.record("Task 'train-op' finished with status SUCCESS")
    out.record("Task 'deploy-op' finished with status SUCCESS")  # start never seen
    assert [line.split()[-2:] for line in lines[:3]] == [["(300", "s)"], ["(309", "s)"],
                                                          ["(318", "s)"]]
    assert lines[3].split() == ["deploy-op", "success"]


def test_a_quiet_run_leaves_print_as_it_found_it(capfd):
    """KFP indents task logs by swapping builtins.print, from several threads at once in
    a ParallelFor, and can leave its indenting print behind: after the run every print
    would start with 4 spaces. The quiet run restores print, and its progress lines reach
    the real stdout unindented meanwhile."""
    import builtins

    from gnnrl.pipeline.runner import _print_now, quiet_kfp

    before = builtins.print
    with quiet_kfp(_print_now):
        original = builtins.print

        def indented(*args, **kwargs):
            original("    ", end="")
            return original(*args, **kwargs)

        builtins.print = indented  # what a lost race in KFP leaves behind
        logging.info("Executing task 'train-op'")
        print("streamed log of the step")
        logging.info("Task 'train-op' finished with status SUCCESS")
    assert builtins.print is before
    out = capfd.readouterr().out
    assert out.startswith("  train-op ") and "success" in out, repr(out)


def test_the_default_progress_line_does_not_deadlock_a_quiet_run(capfd):
    """The CLI's progress printer writes while KFP's output is redirected to the filter:
    it must reach the real stdout, not re-enter the filter (which used to hang forever
    when stdout was not a terminal, e.g. `gnnrl pipeline run > log`)."""
    import threading

    from gnnrl.pipeline.runner import _print_now, quiet_kfp

    def run() -> None:
        with quiet_kfp(_print_now):
            logging.info("Executing task 'collect-op'")
            logging.info("Task 'collect-op' finished with status SUCCESS")

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(timeout=10)
    assert not worker.is_alive(), "the quiet run deadlocked on its own progress line"
    assert "collect-op" in capfd.readouterr().out


def test_concurrent_tasks_lose_no_progress_line_and_leave_the_root_logger_as_found(capfd):
    """KFP's per-task logger contexts, entered and left by the tasks of a ParallelFor in
    an interleaved order, swap the root logger's handlers and level under each other: the
    "finished" record of a task still running reached no handler, so a quiet run with three
    seeds printed two train lines. Every line now arrives, and the root logger is restored."""
    from kfp.local.logging_utils import local_logger_context

    from gnnrl.pipeline.runner import _print_now, quiet_kfp

    root = logging.getLogger()
    level, handlers = root.level, root.handlers[:]
    with quiet_kfp(_print_now):
        a, b = local_logger_context(), local_logger_context()
        a.__enter__()
        logging.info("Executing task 'train-op'")
        b.__enter__()
        logging.info("Executing task 'train-op'")
        a.__exit__(None, None, None)  # restores the handlers and level b had replaced
        logging.info("Task 'train-op' finished with status SUCCESS")  # b's, still running
        b.__exit__(None, None, None)  # re-installs a's handler, on a stream now gone
        with local_logger_context():
            logging.info("Task 'train-op' finished with status SUCCESS")
    out = capfd.readouterr().out
    assert [line.split()[:2] for line in out.splitlines()] == [["train-op", "success"]] * 2
    assert (root.level, root.handlers) == (level, handlers)
