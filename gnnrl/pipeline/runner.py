"""Compile, run locally, submit and schedule the GNNRL pipeline (`gnnrl.pipeline.dag`).

* `compile_pipeline` writes the KFP v2 YAML (committed as ``gnnrl/pipeline/gnnrl_pipeline.yaml``,
  shipped with the package).
* `run_local` executes the *same* DAG on this machine with KFP's local runner
  (``kfp.local.SubprocessRunner(use_venv=False)``: every step is a subprocess of this Python)
  into a SQLite MLflow, and summarises where the report and the registered model are.
* `submit` / `schedule` send the compiled package to a Kubeflow Pipelines API server
  (``kfp.Client``): one run, or a recurring run with KFP's 6-field cron
  (``second minute hour day month weekday``), ``no_catchup`` and ``max_concurrency=1``.
"""

from __future__ import annotations

import builtins
import collections
import contextlib
import dataclasses
import importlib
import logging
import os
import re
import sys
import tempfile
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from gnnrl.config import ConfigError, atomic_write_text
from gnnrl.contracts.observation import check_dial
from gnnrl.pipeline.options import BuildOptions

#: the committed compiled pipeline (package data: an installed package has it too)
COMMITTED_YAML = Path(__file__).resolve().with_name("gnnrl_pipeline.yaml")
#: the folder holding the imported `gnnrl` package (what a local run's steps must import)
PACKAGE_ROOT = Path(__file__).resolve().parents[2]
SOURCES = ("sim", "kiali", "prometheus")

#: Run-time parameters per profile (pipeline parameters not named keep their defaults).
#: quick: the whole loop in about a minute on 2 cores: 40 snapshots, two seeds that
#: specialise the champion (or the shipped model) to the calibrated app by two DAgger
#: iterations and 1 920 PPO env steps, the 2-scenario x 2-seed "quick" suite, and the
#: same strict margins as ``full`` (docs/pipeline.md) but no confidence requirement:
#: with 2 scenarios a quarter of the redraws repeat the less favourable one.
PROFILES: dict[str, dict[str, Any]] = {
    "quick": {
        "snapshot_count": 40,
        "train_seeds": [0, 1],
        "train_steps": 1920,
        "episode_steps": 60,
        "train_traces": "calibrated,diurnal,flash",
        "eval_suite": "quick",
        "eval_seeds": 2,
        "gate_min_confidence": 0.0,
    },
    "full": {},
}
#: fan-out width of the local run per profile (2 cores: train two seeds side by side)
LOCAL_PARALLELISM = {"quick": 2, "full": 2}


def load_pipeline_module() -> Any:
    """The DAG's module, `gnnrl.pipeline.dag` (imported here: it needs kfp)."""
    return importlib.import_module("gnnrl.pipeline.dag")


def compile_pipeline(out: str | os.PathLike[str], options: BuildOptions | None = None) -> Path:
    """Compile the pipeline with ``options`` to the YAML file ``out`` (written atomically)."""
    from kfp import compiler

    module = load_pipeline_module()
    out = Path(out)
    with tempfile.TemporaryDirectory() as tmp:
        tmp_yaml = Path(tmp) / "pipeline.yaml"
        compiler.Compiler().compile(module.build_pipeline(options or BuildOptions()), str(tmp_yaml))
        atomic_write_text(out, tmp_yaml.read_text())
    return out


def profile_arguments(profile: str, source: str, **overrides: Any) -> dict[str, Any]:
    """Pipeline arguments of ``profile`` for ``source``, with non-None ``overrides``."""
    if profile not in PROFILES:
        raise ConfigError(f"profile must be one of {', '.join(PROFILES)}, got {profile!r}")
    if source not in SOURCES:
        raise ConfigError(f"source must be one of {', '.join(SOURCES)}, got {source!r}")
    args = {**PROFILES[profile], "source": source}
    args.update({k: v for k, v in overrides.items() if v is not None})
    if "dial" in args:  # refused here, not minutes later by the evaluate step
        try:
            args["dial"] = check_dial(args["dial"])
        except ValueError as exc:
            raise ConfigError(f"pipeline parameter dial: {exc}") from None
    if "train_teacher" in args:
        from gnnrl.core.agents.train import check_teacher

        try:
            check_teacher(args["train_teacher"])
        except ConfigError as exc:
            raise ConfigError(f"pipeline parameter train_teacher: {exc}") from None
    if "train_warm_start" in args:
        from gnnrl.pipeline.steps import WARM_STARTS

        if args["train_warm_start"] not in WARM_STARTS:
            raise ConfigError(f"pipeline parameter train_warm_start must be one of "
                              f"{', '.join(WARM_STARTS)}, got {args['train_warm_start']!r}")
    return args


def parameter_types(package: str | os.PathLike[str] = COMMITTED_YAML) -> dict[str, str]:
    """The compiled pipeline's parameters and their KFP types (``NUMBER_DOUBLE``, ...)."""
    import yaml

    with open(package, encoding="utf-8") as fh:
        spec = next(yaml.safe_load_all(fh))
    params = spec["root"]["inputDefinitions"]["parameters"]
    return {name: str(p["parameterType"]) for name, p in params.items()}


def check_arguments(args: dict[str, Any],
                    package: str | os.PathLike[str] = COMMITTED_YAML) -> dict[str, Any]:
    """``args`` checked against the pipeline's parameters: an unknown name or a value of
    the wrong type is refused naming the parameter; a whole number given for a float
    parameter (``--param gate_hpa_slo_margin=0``) becomes a float, as KFP requires."""
    types = parameter_types(package)
    unknown = sorted(set(args) - set(types))
    if unknown:
        raise ConfigError(f"unknown pipeline parameter(s) {', '.join(unknown)}; the "
                          f"pipeline's parameters: {', '.join(sorted(types))}")
    wanted = {"NUMBER_DOUBLE": (int, float), "NUMBER_INTEGER": (int,), "STRING": (str,),
              "BOOLEAN": (bool,), "LIST": (list,), "STRUCT": (dict,)}
    said = {"NUMBER_DOUBLE": "a number", "NUMBER_INTEGER": "a whole number",
            "STRING": "a string", "BOOLEAN": "true or false", "LIST": "a JSON list",
            "STRUCT": "a JSON object"}
    out = dict(args)
    for name, value in args.items():
        kind = types[name]
        ok = isinstance(value, wanted.get(kind, (object,)))
        if isinstance(value, bool) and kind in ("NUMBER_DOUBLE", "NUMBER_INTEGER"):
            ok = False
        if not ok:
            raise ConfigError(f"pipeline parameter {name} takes {said.get(kind, kind)}, "
                              f"got {value!r}")
        if kind == "NUMBER_DOUBLE":
            out[name] = float(value)
    return out


@dataclasses.dataclass
class LocalRunSummary:
    """Where a local run left its results."""

    run_dir: Path | None
    report_html: Path | None
    report_md: Path | None
    deploy_manifests: Path | None
    model_version: str | None
    champion_version: str | None
    gate_decision: str
    gate_reason: str
    tracking_uri: str
    seconds: float

    def lines(self) -> list[str]:
        model = (f"models:/gnnrl-scaler/{self.model_version}" if self.model_version
                 else "(none registered)")
        out = [
            f"finished in {self.seconds:.0f} s",
            f"run outputs:      {self.run_dir}",
            f"report:           {self.report_html}",
            f"report (md):      {self.report_md}",
            f"registered model: {model}  ({self.gate_decision}: {self.gate_reason})",
            "champion:         "
            + (f"models:/gnnrl-scaler@champion = version {self.champion_version}"
               if self.champion_version else "(none)"),
            f"MLflow:           {self.tracking_uri}  (mlflow ui --backend-store-uri "
            f"{self.tracking_uri})",
        ]
        if self.deploy_manifests:
            out.append(f"scaler manifests: {self.deploy_manifests} (rendered, not applied)")
        return out


def _find_output(run_dir: Path | None, task_prefix: str, name: str) -> Path | None:
    if run_dir is None:
        return None
    hits = sorted(p for p in run_dir.glob(f"{task_prefix}*/{name}") if p.exists())
    if not hits:
        return None
    path = hits[-1]
    if path.is_dir():
        files = sorted(f for f in path.rglob("*") if f.is_file())
        return files[0] if len(files) == 1 else path
    return path


def _summarise(root: Path, before: set[Path], uri: str, seconds: float) -> LocalRunSummary:
    from gnnrl.registry.promote import CHAMPION, alias_version, list_versions

    runs = sorted((p for p in root.glob("*") if p.is_dir() and p not in before),
                  key=lambda p: p.stat().st_mtime)
    run_dir = runs[-1] if runs else None
    versions = list_versions(uri)
    newest = versions[0] if versions else None
    tags = newest["tags"] if newest else {}
    return LocalRunSummary(
        run_dir=run_dir,
        report_html=(_find_output(run_dir, "evaluate", "report.html")
                     or _find_output(run_dir, "evaluate", "report")),
        report_md=_find_output(run_dir, "evaluate", "report_md"),
        deploy_manifests=_find_output(run_dir, "deploy", "manifests"),
        model_version=newest["version"] if newest else None,
        champion_version=alias_version(uri, CHAMPION),
        gate_decision=tags.get("gate.decision", "n/a"),
        gate_reason=tags.get("gate.reason", ""),
        tracking_uri=uri,
        seconds=seconds,
    )


def run_local(
    profile: str = "quick",
    source: str = "sim",
    workdir: str | os.PathLike[str] = "runs/pipeline",
    mlflow_uri: str | None = None,
    parallelism: int | None = None,
    verbose: bool = True,
    progress: Callable[[str], None] | None = None,
    **overrides: Any,
) -> LocalRunSummary:
    """Run the pipeline on this machine with KFP's subprocess runner.

    Args:
        profile: ``quick`` (minutes) or ``full`` (the pipeline's defaults).
        source: ``sim``, ``kiali`` or ``prometheus`` (the latter two need URLs).
        workdir: where KFP writes each task's outputs (``workdir/local_outputs``).
        mlflow_uri: tracking URI (default ``sqlite:///mlflow.db`` in the working folder).
        parallelism: seeds trained at once (default 2).
        verbose: pass KFP's output through (executor JSON, each step's logs); False keeps
            one line per step (`progress`) and, when a step fails, the end of its output.
        progress: where the quiet mode's lines go (default: print to stdout).
        overrides: any pipeline parameter (``train_steps=...``, ``gate_slo_margin=...``).

    Raises:
        RegistryUnavailableError: MLflow is unreachable (checked before any step runs).
        RuntimeError: a step failed (KFP's message names the task); later steps did not run.
    """
    # numba before KFP: KFP's local runner swaps builtins.print for a closure while a task
    # runs, and numba first imported inside that window registers the closure as `print`,
    # so every later njit compile in this process fails to resolve it
    import numba  # noqa: F401
    from kfp import local

    from gnnrl.registry.tracking import check_reachable, ensure_experiment, resolve_tracking_uri

    uri = resolve_tracking_uri(mlflow_uri)
    # bad arguments are refused before anything is created (a SQLite store included)
    args = check_arguments(profile_arguments(profile, source, mlflow_uri=uri, **overrides))
    check_reachable(uri)
    # Create the store's schema once, here: parallel train steps would race on a fresh
    # SQLite file's migrations ("table _alembic_tmp_metrics already exists").
    ensure_experiment(uri)
    root = Path(workdir).resolve() / "local_outputs"
    root.mkdir(parents=True, exist_ok=True)
    before = {p for p in root.glob("*") if p.is_dir()}
    # Steps are subprocesses of this interpreter: they import the same `gnnrl` as this
    # process (a source checkout's, whatever an editable install elsewhere maps).
    os.environ["PYTHONPATH"] = os.pathsep.join(
        [str(PACKAGE_ROOT), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    )
    os.environ.setdefault("GNNRL_SOURCE", source)
    local.init(
        runner=local.SubprocessRunner(use_venv=False),
        pipeline_root=str(root),
        raise_on_error=True,
    )
    options = BuildOptions(
        gpu=False,
        mlflow_secret="",
        kiali_secret="",
        parallelism=parallelism or LOCAL_PARALLELISM[profile],
        # no task-level retries on this machine: the collector already retries within each
        # interval (docs/reliability.md C1), and a source that is down here should fail the
        # run at once, not after 30 + 60 + 120 s of backoff
        collect_retries=0,
    )
    pipeline = load_pipeline_module().build_pipeline(options)
    start = time.monotonic()
    quiet = restores_print_and_logging() if verbose else quiet_kfp(progress or _print_now)
    with warnings.catch_warnings(), quiet:
        # Expected locally: the steps run in this Python, not in the project image, and
        # Kubernetes resource requests mean nothing to a subprocess.
        warnings.filterwarnings("ignore", message=".*non-Python base image")
        warnings.filterwarnings("ignore", message=".*have no effect in the current local runner")
        pipeline(**args)
    return _summarise(root, before, uri, time.monotonic() - start)


_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_STEP_STARTED = re.compile(r"Executing task '(?P<task>[^']+)'")
_STEP_DONE = re.compile(r"Task '(?P<task>[^']+)' finished with status (?P<status>[A-Z]+)")
#: lines of a quiet run kept to show when a step fails
QUIET_TAIL_LINES = 60


def _print_now(line: str) -> None:
    # the real stdout: while KFP runs, sys.stdout is the filter that calls this, and
    # builtins.print may be KFP's indenting one (which writes its indent to sys.stdout)
    stream = sys.__stdout__
    if stream is not None:
        stream.write(line + "\n")
        stream.flush()


class _KfpOutputFilter:
    """A text stream standing in for stdout/stderr while KFP's local runner runs: it keeps
    the last `QUIET_TAIL_LINES` lines (ANSI colour codes removed), and turns KFP's
    "Executing task" / "finished with status" log records (`record`, fed by `_LogWatch`)
    into one progress line per step."""

    def __init__(self, progress: Callable[[str], None]) -> None:
        self.progress = progress
        self.tail: collections.deque[str] = collections.deque(maxlen=QUIET_TAIL_LINES)
        self._partial = ""
        # the start times of each task name, oldest first: a ParallelFor runs several
        # tasks of one name at once (the train step, once per seed)
        self._started: dict[str, collections.deque[float]] = collections.defaultdict(
            collections.deque)
        # re-entrant: a progress callback that prints to sys.stdout comes back here
        self._lock = threading.RLock()

    def write(self, text: str) -> int:
        with self._lock:
            lines = (self._partial + text).split("\n")
            self._partial = lines.pop()
            self.tail.extend(_ANSI.sub("", line) for line in lines)
        return len(text)

    def record(self, message: str) -> None:
        """One log record of the run: a task's start or end becomes progress."""
        message = _ANSI.sub("", message)
        with self._lock:
            done = _STEP_DONE.search(message)
            if done:
                starts = self._started[done["task"]]
                took = f" ({time.monotonic() - starts.popleft():.0f} s)" if starts else ""
                self.progress(f"  {done['task']:<24} {done['status'].lower()}{took}")
                return
            started = _STEP_STARTED.search(message)
            if started:
                self._started[started["task"]].append(time.monotonic())

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return False


class _LogWatch(logging.Filter):
    """A filter on the root logger that hands every record logged there to `record`.

    KFP logs a task's start and end with ``logging.info`` on the root logger, inside a
    context that swaps the root's handlers; the tasks of a ParallelFor swap them from
    several threads at once, so a record can reach no handler at all (the third seed's
    "finished" line used to vanish). A logger's filters are not swapped: every record is
    seen here, whatever handlers it then reaches."""

    def __init__(self, record: Callable[[str], None]) -> None:
        super().__init__()
        self._record = record

    def filter(self, record: logging.LogRecord) -> bool:
        self._record(record.getMessage())
        return True


@contextlib.contextmanager
def restores_print_and_logging(watch: Callable[[str], None] | None = None) -> Iterator[None]:
    """Put ``builtins.print`` and the root logger back as they were when KFP's local run
    ends, however it ends; with ``watch``, every record logged on the root logger meanwhile
    is passed to it.

    KFP indents each task's logs by swapping builtins.print for an indenting one and back,
    and sets the root logger's level and handlers per task and back; the tasks of a
    ParallelFor do both from several threads at once, which can leave the indenting print
    (every later print would start with 4 spaces), a handler on a stream that is gone, or
    the level of another task in place after the run. The level is INFO for the whole run,
    so that no task restores a level that silences another's records.
    """
    saved = builtins.print
    root = logging.getLogger()
    level, handlers = root.level, root.handlers[:]
    watcher = _LogWatch(watch) if watch else None
    root.setLevel(logging.INFO)
    if watcher:
        root.addFilter(watcher)
    try:
        yield
    finally:
        builtins.print = saved
        if watcher:
            root.removeFilter(watcher)
        root.setLevel(level)
        root.handlers[:] = handlers


@contextlib.contextmanager
def quiet_kfp(progress: Callable[[str], None]) -> Iterator[_KfpOutputFilter]:
    """Hide KFP's local runner output (its logging and each step's streamed logs go to
    sys.stdout) behind one progress line per step; when the run fails, the end of the
    output is written to stderr before the error goes on. ``print`` and the root logger
    are restored, and progress comes from the log records
    (`restores_print_and_logging`)."""
    out = _KfpOutputFilter(progress)
    saved = sys.stdout, sys.stderr
    sys.stdout = sys.stderr = out
    try:
        with restores_print_and_logging(out.record):
            yield out
    except BaseException:
        sys.stdout, sys.stderr = saved
        if out._partial:
            out.tail.append(_ANSI.sub("", out._partial))
        print("\n".join(["--- end of the pipeline's output ---", *out.tail]), file=sys.stderr)
        raise
    finally:
        sys.stdout, sys.stderr = saved


def _client(host: str, namespace: str | None = None, token: str | None = None) -> Any:
    import kfp

    kwargs: dict[str, Any] = {"host": host}
    if namespace:
        kwargs["namespace"] = namespace
    if token:
        kwargs["existing_token"] = token
    return kfp.Client(**kwargs)


def submit(
    host: str,
    package: str | os.PathLike[str] = COMMITTED_YAML,
    arguments: dict[str, Any] | None = None,
    run_name: str | None = None,
    experiment: str = "gnnrl",
    namespace: str | None = None,
    token: str | None = None,
) -> str:
    """Start one run of the compiled ``package`` on the KFP at ``host``; return its run id."""
    arguments = check_arguments(dict(arguments or {}), package)
    client = _client(host, namespace, token)
    result = client.create_run_from_pipeline_package(
        str(package),
        arguments=arguments,
        run_name=run_name or f"gnnrl-{time.strftime('%Y%m%d-%H%M%S')}",
        experiment_name=experiment,
        namespace=namespace,
    )
    return str(result.run_id)


def validate_cron(cron: str) -> str:
    """Check KFP's 6-field cron (``second minute hour day-of-month month day-of-week``).

    KFP's ScheduledWorkflow uses robfig/cron with seconds, so ``'0 0 2 * * *'`` is 02:00
    every day; a 5-field crontab line is the classic mistake and is refused here.
    """
    fields = cron.split()
    if len(fields) != 6:
        raise ConfigError(
            f"cron must have 6 fields (second minute hour day month weekday), got {cron!r}; "
            "e.g. '0 0 2 * * *' for 02:00 daily"
        )
    return cron


def schedule(
    host: str,
    cron: str,
    package: str | os.PathLike[str] = COMMITTED_YAML,
    arguments: dict[str, Any] | None = None,
    job_name: str = "gnnrl-nightly",
    experiment: str = "gnnrl",
    namespace: str | None = None,
    token: str | None = None,
) -> str:
    """Create a recurring run (no catch-up, at most one at a time); return its id."""
    validate_cron(cron)
    arguments = check_arguments(dict(arguments or {}), package)
    client = _client(host, namespace, token)
    exp = client.create_experiment(experiment, namespace=namespace)
    job = client.create_recurring_run(
        experiment_id=exp.experiment_id,
        job_name=job_name,
        cron_expression=cron,
        max_concurrency=1,
        no_catchup=True,
        params=arguments,
        pipeline_package_path=str(package),
        enabled=True,
    )
    return str(job.recurring_run_id)
