"""What each pipeline step does. The KFP components in ``components/`` only call these.

Every function takes plain paths and values (no KFP types), so the same step runs from
the CLI, from a test, locally under ``kfp.local`` and in a cluster pod. Each raises
`StepError` (or a typed error of the module it calls) naming the step; KFP then marks the
task failed and downstream tasks do not run (docs/reliability.md T5).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd

from gnnrl.config import ConfigError, atomic_write_text
from gnnrl.contracts.observation import DEFAULT_DIAL, check_dial
from gnnrl.core.agents.dial import dial_label

#: where the collect task finds the Kiali/Prometheus bearer token (the Secret's volume)
TOKEN_FILE = "/var/run/secrets/gnnrl-kiali/token"
#: sidecar written next to a trained model: seed and MLflow run id of its training run
TRAIN_INFO = "gnnrl_train.json"
#: name of the current champion's policy in the evaluation summary
CHAMPION_POLICY = "champion"
#: where a candidate's training starts (`train_step`'s ``warm_start``)
WARM_STARTS = ("champion", "shipped", "none")
#: the rule a candidate imitates unless told otherwise (why: `recipe_config`)
DEFAULT_TEACHER = "headroom@dial"
#: registered-version tag holding the dial the model was judged at (and is deployed at)
DIAL_TAG = "gnnrl.dial"


def pipeline_dial(dial: float) -> float:
    """The pipeline's ``dial`` parameter as a checked float.

    Raises:
        ConfigError: not a number in [0, 1] (names the parameter).
    """
    try:
        return check_dial(dial)
    except ValueError as exc:
        raise ConfigError(f"pipeline parameter dial: {exc}") from None


def model_spec(model_dir: str | Path, dial: float, label: str | None = None) -> str:
    """The policy spec the gate judges a model folder by: ``[LABEL=]gnnrl:PATH@D``, the
    model as the scaler deploys it (graph-wide scale-up, guard) at the pipeline's dial."""
    spec = f"gnnrl:{model_dir}@{dial_label(pipeline_dial(dial))}"
    return f"{label}={spec}" if label else spec


def limit_torch_threads() -> int:
    """Cap torch's intra-op threads (``$GNNRL_TORCH_THREADS``, default 1); return the cap.

    Per-tick inference on graphs of <= 20 nodes gains nothing from intra-op parallelism,
    and on a shared CPU the spinning OpenMP workers slow evaluation ~9x (measured: the quick
    suite took 222 s with torch's default 2 threads on a loaded 2-core machine, 24 s with 1).
    """
    import torch

    threads = max(1, int(os.environ.get("GNNRL_TORCH_THREADS", "1")))
    torch.set_num_threads(threads)
    return threads


class StepError(RuntimeError):
    """A pipeline step failed; the message starts with the step's name."""


def collect_step(
    out_dir: str,
    source: str = "sim",
    count: int = 240,
    interval_s: float = 15.0,
    namespace: str = "online-boutique",
    kiali_url: str = "",
    prometheus_url: str = "",
    seed: int = 0,
    token_file: str = TOKEN_FILE,
) -> Path:
    """Collect ``count`` snapshots every ``interval_s`` seconds from ``source`` into
    ``out_dir`` (the Parquet dataset of docs/data.md). Uses ``token_file`` when it exists.

    The run of ``gnnrl collect`` (`gnnrl.data.collect_job`), with its defaults: SIGTERM
    flushes what was collected and ends the step successfully.

    Raises:
        StepError: a missing URL or bad setting, another collector writes ``out_dir``,
            nothing was stored, or the dataset could not be written.
    """
    from gnnrl.data.collect_job import CollectJob, collect_dataset, job_source
    from gnnrl.data.errors import WriterBusyError

    url = None
    if source == "kiali":
        if not kiali_url:
            raise StepError("collect: --source kiali needs kiali_url")
        url = kiali_url
    if source == "prometheus":
        if not prometheus_url:
            raise StepError("collect: --source prometheus needs prometheus_url")
        url = prometheus_url
    live = source != "sim"
    token = token_file if live and token_file and Path(token_file).is_file() else None
    try:
        job = CollectJob(source=source, namespace=namespace if live else None, url=url,
                         token_file=token, interval_s=float(interval_s), count=count,
                         seed=seed)
        snapshots = job_source(job)
    except (ValueError, ConfigError) as exc:
        raise StepError(f"collect: {exc}") from exc
    try:
        result = collect_dataset(job, snapshots, out_dir)
    except WriterBusyError as exc:
        raise StepError(f"collect: {exc}") from exc
    print(f"collected into {out_dir}")
    for line in result.summary.lines():
        print("  " + line)
    failure = result.failure()
    if failure:
        raise StepError(f"collect: {failure}")
    return Path(out_dir)


APP_FILE = "app.yaml"
REGISTERED_FILE = "registered.json"
TRACE_FILE = "trace.csv"


def calibrate_step(snapshots: str, app_spec_out: str, trace_out: str) -> tuple[Path, Path]:
    """Fit the application spec and the entry traffic trace from snapshots.

    ``app_spec_out`` and ``trace_out`` are folders (KFP artifact paths); they receive
    `APP_FILE` (YAML app spec) and `TRACE_FILE` (CSV ``t_s,rps``). The run of
    ``gnnrl calibrate`` with its defaults (`gnnrl.data.calibrate_job`).

    Raises:
        StepError: no usable snapshot, or the data cannot support a fit (says why).
    """
    from gnnrl.data.calibrate import CalibrateConfig
    from gnnrl.data.calibrate_job import calibrate_to_files, read_snapshots
    from gnnrl.data.errors import DataError
    from gnnrl.sim.spec import AppSpecError

    app, trace = Path(app_spec_out) / APP_FILE, Path(trace_out) / TRACE_FILE
    app.parent.mkdir(parents=True, exist_ok=True)
    trace.parent.mkdir(parents=True, exist_ok=True)
    try:
        data = read_snapshots(snapshots, warn=lambda message: print(
            f"calibrate: warning: {message}", file=sys.stderr))
        result = calibrate_to_files(data, CalibrateConfig(), app, trace)
    except (ConfigError, FileNotFoundError, DataError, AppSpecError) as exc:
        raise StepError(f"calibrate: {exc}") from exc
    for line in result.report_lines():
        print(line)
    return app, trace


def _inside(path: str, name: str) -> str:
    """``path/name`` when ``path`` is a folder (a KFP artifact), else ``path``."""
    p = Path(path)
    return str(p / name) if p.is_dir() else str(p)


@dataclasses.dataclass(frozen=True)
class TrainResult:
    """A trained candidate: its folder, the MLflow run id, and final training metrics."""

    model_dir: Path
    run_id: str
    metrics: dict[str, float]


def train_step(
    app_spec: str,
    trace: str,
    out_dir: str,
    seed: int,
    total_steps: int,
    episode_steps: int = 240,
    mlflow_uri: str = "",
    traces: str = "calibrated,diurnal,flash",
    num_envs: int = 8,
    warm_start: str = "champion",
    teacher: str = DEFAULT_TEACHER,
) -> TrainResult:
    """Train one PPO_GNN candidate on the calibrated app with the shipped model's recipe
    (`recipe_config`); log it to MLflow.

    Args:
        traces: comma-separated training traces; ``calibrated`` is the ``trace`` file.
        warm_start: where training starts: ``champion`` (the registry's champion, or the
            shipped model when there is none: nightly retraining continues from the model
            in production), ``shipped`` (the model shipped with the package) or ``none``
            (the recipe's imitation warm start from scratch).
        teacher: the rule the candidate imitates by DAgger before PPO (a warm start is
            specialised to the calibrated app this way): ``headroom@dial`` by default, or
            any `TrainConfig.bc_teacher` (``oracle@dial``, ``hpa@dial``, ``hpa-70``, ...).
        total_steps: env steps summed over ``num_envs`` environments.
        episode_steps: control intervals per episode.

    ``out_dir`` receives the model folder (state_dict + JSON config) plus `TRAIN_INFO`.
    """
    import mlflow

    from gnnrl.core.agents.train import train
    from gnnrl.registry.tracking import (
        check_reachable,
        resolve_tracking_uri,
        tracked_run,
        training_tracker,
    )

    uri = resolve_tracking_uri(mlflow_uri or None)
    check_reachable(uri)  # fail before an hour of training, not after (docs/reliability.md T4)
    app_spec, trace = _inside(app_spec, APP_FILE), _inside(trace, TRACE_FILE)
    kinds = tuple(trace if t.strip() == "calibrated" else t.strip()
                  for t in traces.split(",") if t.strip())
    num_steps = max(8, min(120, int(total_steps) // max(1, num_envs)))
    config = recipe_config(app_spec, trace, kinds, int(total_steps), int(episode_steps),
                           int(seed), num_envs, num_steps, teacher=teacher)
    out = Path(out_dir)
    # checkpoints stay in a scratch folder; the artifact gets the final model, the
    # config and the per-update metrics (what the MLflow run also holds)
    with tempfile.TemporaryDirectory(prefix="gnnrl-train-") as scratch:
        work = Path(scratch) / "run"
        config = config.replace(
            warm_start=_warm_start_dir(warm_start, uri, Path(scratch) / "warm-start"))
        os.environ["MLFLOW_TRACKING_URI"] = uri  # the trainer's tracker logs the run there
        final = Path(train(config, work, progress=False, tracker=training_tracker))
        # like the shipped model: the best validation policy when the run picked one
        model_dir = work / "best" if (work / "best" / "config.json").is_file() else final
        last = mlflow.last_active_run()
        run_id = last.info.run_id if last is not None else ""
        if out.exists():
            shutil.rmtree(out)
        shutil.copytree(model_dir, out)
        for name in ("metrics.jsonl", "train_config.json"):
            if (work / name).is_file():
                shutil.copyfile(work / name, out / name)
        metrics = _read_train_metrics(work)
    if run_id:
        with tracked_run(uri, "train", run_id=run_id):
            mlflow.log_artifacts(str(out), artifact_path="model_dir")
    atomic_write_text(out / TRAIN_INFO, json.dumps({"seed": int(seed), "mlflow_run_id": run_id}))
    return TrainResult(out, run_id, metrics)


def _warm_start_dir(which: str, uri: str, scratch: Path) -> str:
    """The model folder training starts from (see `train_step`); "" for ``none``."""
    from gnnrl.evaluation.gnnrl_policy import default_model_dir
    from gnnrl.registry.promote import CHAMPION, alias_version
    from gnnrl.registry.pyfunc_model import MODEL_NAME, download_model_dir

    if which not in WARM_STARTS:
        raise StepError(f"train: warm_start must be champion, shipped or none, got {which!r}")
    if which == "none":
        return ""
    if which == "champion":
        version = alias_version(uri, CHAMPION) or ""
        if version:
            folder = download_model_dir(f"models:/{MODEL_NAME}/{version}", scratch, uri)
            return str(folder)
    return str(default_model_dir())


#: below this many env steps a pipeline run is a short one: two DAgger iterations of two
#: episodes per env (the shipped recipe's 5 iterations would dwarf its PPO budget)
FULL_IMITATION_STEPS = 50_000
SHORT_BC_ROUNDS, SHORT_BC_DAGGER = 2, 2


def recipe_config(app_spec: str, trace: str, traces: tuple[str, ...], total_steps: int,
                  episode_steps: int, seed: int, num_envs: int, num_steps: int,
                  teacher: str = DEFAULT_TEACHER) -> Any:
    """The shipped model's training recipe (its ``train_config.json``: DAgger, dial drawn
    per episode, cluster timings and start-up scales, PPO hyper-parameters, serving margin)
    on the calibrated app and traffic: this one app instead of the recipe's mix of apps
    and real windows, imitating ``teacher``; its PPO samples with the serving margins
    (`PPOConfig.served_margins`) and validates the model as deployed
    (`TrainConfig.validate_as_deployed`; docs/policy.md, "Training the served policy").

    Peak loads are the calibrated trace's own peak x (0.8, 1, 1.2), so the synthetic traces
    and the replayed one span the traffic envelope the cluster really sees.

    Why the teacher is ``headroom@dial`` here and ``oracle@dial`` in the shipped recipe:
    specialising the generalist on one app in a few DAgger iterations, a history-only
    student learns a history-only rule's moves; the clairvoyant oracle's (it scales before
    a flash crowd arrives) it cannot reproduce in that budget, and its students broke the
    SLO in one interval more per flash crowd than HPA (docs/policy.md, "The pipeline's
    specialisation").
    """
    from gnnrl.core.agents.train import TrainConfig
    from gnnrl.evaluation.gnnrl_policy import default_model_dir
    from gnnrl.sim.traces import load_trace

    base = TrainConfig.load(default_model_dir() / "train_config.json")
    peak = float(load_trace(trace).max())
    if not (peak > 0 and math.isfinite(peak)):
        raise StepError(f"train: the calibrated trace {trace} has no positive load")
    small = total_steps < FULL_IMITATION_STEPS
    # one pool per cluster timing: the envs must split evenly between them
    setups = len(base.timings)
    num_envs = max(setups, num_envs - num_envs % setups)
    # PPO improves the policy as served (the hold margins in its draws) and keeps an update
    # only when the policy as deployed (behind the guard) validates better
    ppo = base.ppo.replace(total_steps=total_steps, num_envs=num_envs, num_steps=num_steps,
                           num_minibatches=_divisor(num_envs * num_steps, 4),
                           served_margins=True)
    return base.replace(
        app=app_spec, apps=(), peak_scales=(), traces=traces,
        peaks=(round(0.8 * peak, 3), round(peak, 3), round(1.2 * peak, 3)),
        max_steps=episode_steps, seed=seed, device="auto", ppo=ppo, bc_teacher=teacher,
        bc_rounds=SHORT_BC_ROUNDS if small else base.bc_rounds,
        bc_dagger=SHORT_BC_DAGGER if small else base.bc_dagger,
        checkpoint_every=10, eval_every=10, validate_as_deployed=True)


def _divisor(n: int, want: int) -> int:
    """The largest divisor of ``n`` that is <= ``want`` (PPO minibatches must divide n)."""
    return max(d for d in range(1, want + 1) if n % d == 0)


def _read_train_metrics(work: Path) -> dict[str, float]:
    """The last row of the trainer's ``metrics.jsonl`` (finite scalars only)."""
    path = work / "metrics.jsonl"
    if not path.is_file():
        return {}
    lines = [ln for ln in path.read_text().splitlines() if ln.strip()]
    if not lines:
        return {}
    row = json.loads(lines[-1])
    return {k.replace("/", "_"): float(v) for k, v in row.items()
            if isinstance(v, int | float) and math.isfinite(v)}


@dataclasses.dataclass(frozen=True)
class EvaluateResult:
    """The evaluation of all candidates, the champion and the baselines on one suite."""

    best_policy: str
    champion_version: str  # "" when the registry had no champion
    summary: pd.DataFrame
    metrics: dict[str, float]


def candidate_name(index: int, model_dir: str | Path) -> str:
    """Policy name of a candidate in the summary: ``candidate-seed<seed>`` when known."""
    info = Path(model_dir) / TRAIN_INFO
    if info.is_file():
        return f"candidate-seed{json.loads(info.read_text())['seed']}"
    return f"candidate-{index}"


def rank_candidates(summary: pd.DataFrame, names: list[str]) -> list[str]:
    """Candidates best first: lowest mean slo_violation_rate, then lowest replica_hours."""
    means = (
        summary[summary["policy"].isin(names)]
        .groupby("policy")[["slo_violation_rate", "replica_hours"]]
        .mean()
        .sort_values(["slo_violation_rate", "replica_hours"])
    )
    missing = sorted(set(names) - set(means.index))
    if missing:
        raise StepError(f"evaluate: candidates missing from the summary: {', '.join(missing)}")
    return list(means.index)


def evaluate_step(
    candidates: list[str],
    app_spec: str,
    trace: str,
    suite: str,
    seeds: int,
    out_dir: str,
    best_model_out: str,
    report_html_out: str,
    report_md_out: str,
    mlflow_uri: str = "",
    baseline: str = "hpa",
    dial: float = DEFAULT_DIAL,
) -> EvaluateResult:
    """Evaluate every candidate, the registry's champion (if any) and ``baseline`` on the
    same suite and seeds; copy the best candidate to ``best_model_out``; write the report.

    Models are evaluated as the scaler deploys them: with the graph-wide scale-up and
    behind its guard (`as_deployed`), at ``dial`` (the candidate's spec is
    ``candidate-seedN=gnnrl:PATH@D``, `model_spec`; the champion is judged at the same
    dial). Training does not depend on the dial; the gate's verdict does."""
    from gnnrl.evaluation.policies import make_policy
    from gnnrl.evaluation.runner import evaluate
    from gnnrl.registry.promote import CHAMPION, alias_version
    from gnnrl.registry.pyfunc_model import MODEL_NAME, download_model_dir
    from gnnrl.registry.tracking import check_reachable, log_evaluation, resolve_tracking_uri

    if not candidates:
        raise StepError("evaluate: no candidate models")
    dial = pipeline_dial(dial)
    limit_torch_threads()
    app_spec, trace = _inside(app_spec, APP_FILE), _inside(trace, TRACE_FILE)
    uri = resolve_tracking_uri(mlflow_uri or None)
    check_reachable(uri)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    policies: list[Any] = []
    names = []
    specs: dict[str, str] = {}

    def deployed(folder: str | Path, name: str) -> Any:
        # the gate judges what the scaler would run: the model behind its guard, at the dial
        specs[name] = model_spec(folder, dial)
        return make_policy(f"{name}={specs[name]}")

    for i, path in enumerate(candidates):
        policy = deployed(path, candidate_name(i, path))
        names.append(policy.name)
        policies.append(policy)
    champion_version = alias_version(uri, CHAMPION) or ""
    if champion_version:
        folder = download_model_dir(
            f"models:/{MODEL_NAME}/{champion_version}", out / "_champion", uri
        )
        policies.append(deployed(folder, CHAMPION_POLICY))
    policies.append(make_policy(baseline))
    chosen: Any = suite
    if suite == "calibrated":
        from gnnrl.evaluation.scenarios import trace_suite

        # the whole calibrated collection, squeezed into one hour-long episode as before:
        # a quick collection spans minutes, too short to replay at its own time scale
        chosen = trace_suite(trace, seeds=seeds, steps=240, compress=True)
    summary = evaluate(policies, chosen, seeds, out, app=app_spec, progress=False)
    best = rank_candidates(summary, names)[0]
    best_dir = candidates[names.index(best)]
    shutil.copytree(best_dir, best_model_out, dirs_exist_ok=True)
    _copy_report(out, report_html_out, report_md_out)
    per_policy = (
        summary.groupby("policy")[["slo_violation_rate", "replica_hours"]].mean().reset_index()
    )
    rows = [{str(k): v for k, v in r.items()} for r in per_policy.to_dict("records")]
    log_evaluation(uri, "evaluate", rows, out, params={"suite": suite, "seeds": seeds,
                                                        "best": best,
                                                        "champion_version": champion_version,
                                                        "dial": dial_label(dial)})
    metrics = {f"{r['policy']}.{k}": float(r[k]) for r in rows
               for k in ("slo_violation_rate", "replica_hours")}
    atomic_write_text(out / "selection.json", json.dumps(
        {"best_policy": best, "ranking": rank_candidates(summary, names),
         "champion_version": champion_version, "dial": dial, "specs": specs}, indent=2))
    return EvaluateResult(best, champion_version, summary, metrics)


def _copy_report(out: Path, html_out: str, md_out: str) -> None:
    """Copy results/report to the KFP HTML/Markdown artifacts (shown in the KFP UI)."""
    pairs = ((out / "report.html", Path(html_out)), (out / "results.md", Path(md_out)))
    for src, dst in pairs:
        if not src.is_file():
            raise StepError(f"evaluate: the evaluation did not write {src.name}")
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dst)


def register_step(
    model_dir: str,
    summary: str,
    best_policy: str,
    champion_version: str,
    slo_margin: float = 0.0,
    cost_margin: float = 0.0,
    hpa_slo_margin: float = 0.0,
    hpa_cost_margin: float = 0.0,
    baseline_policy: str = "hpa",
    mlflow_uri: str = "",
    run_id: str = "",
    record_out: str = "",
    dial: float = DEFAULT_DIAL,
    min_confidence: float = 0.0,
) -> Any:
    """Register the best candidate as ``gnnrl-scaler`` and gate it (see
    `gnnrl.registry.promote.register_and_gate`); returns its `PromotionResult`.

    ``dial``: the dial the evaluation judged it at, recorded as the version's
    `DIAL_TAG` tag and in the record (deploy writes it into the scaler's config).
    ``record_out`` (a folder) receives `REGISTERED_FILE`: version, model URI, decision, dial.
    ``min_confidence``: `GateConfig.min_confidence` (share of scenario redraws to win in).
    """
    dial = pipeline_dial(dial)
    from gnnrl.registry.gate import GateConfig
    from gnnrl.registry.promote import read_summary, register_and_gate

    info = Path(model_dir) / TRAIN_INFO
    if not run_id and info.is_file():
        run_id = json.loads(info.read_text()).get("mlflow_run_id", "")
    df = read_summary(summary)
    result = register_and_gate(
        model_dir,
        df,
        challenger_policy=best_policy,
        champion_policy=CHAMPION_POLICY if champion_version else None,
        champion_version_evaluated=champion_version or None,
        gate=GateConfig(slo_margin=slo_margin, cost_margin=cost_margin,
                        baseline_slo_margin=hpa_slo_margin,
                        baseline_cost_margin=hpa_cost_margin, baseline_policy=baseline_policy,
                        min_confidence=min_confidence),
        tracking_uri=mlflow_uri or None,
        run_id=run_id or None,
        tags={"gnnrl.policy": best_policy, "gnnrl.source": os.environ.get("GNNRL_SOURCE", ""),
              DIAL_TAG: dial_label(dial)},
    )
    verdict = "PROMOTED to champion" if result.promoted else "not promoted"
    print(f"register: {result.model_uri} {verdict}: {'; '.join(result.decision.reasons)}")
    if record_out:
        atomic_write_text(Path(record_out) / REGISTERED_FILE, json.dumps({
            "version": result.version, "model_uri": result.model_uri,
            "promoted": result.promoted, "previous_champion": result.previous_champion,
            "reasons": list(result.decision.reasons), "dial": dial,
        }, indent=2))
    return result


def deploy_step(registered: str, out_dir: str, namespace: str, mode: str = "shadow",
                mlflow_uri: str = "", image: str = "", dial: float | None = None) -> Any:
    """Deploy the version recorded by `register_step` (see `gnnrl.pipeline.deploy.deploy`)
    at the dial it was judged at: ``dial``, else the record's, else `DEFAULT_DIAL`."""
    from gnnrl.pipeline.deploy import deploy

    record = json.loads(Path(_inside(registered, REGISTERED_FILE)).read_text())
    if not record.get("promoted"):
        raise StepError(f"deploy: version {record.get('version')} was not promoted")
    if dial is None:
        dial = float(record.get("dial", DEFAULT_DIAL))
    return deploy(model_version=str(record["version"]), namespace=namespace, out_dir=out_dir,
                  mode=mode, mlflow_uri=mlflow_uri or None, image=image or None,
                  dial=pipeline_dial(dial))
