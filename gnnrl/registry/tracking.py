"""MLflow tracking: where runs go, whether the store is reachable, and what a run logs.

The default tracking URI is a SQLite file in the working directory (``sqlite:///mlflow.db``,
MLflow's own default since 3.x; the file store is deprecated:
https://mlflow.org/docs/latest/self-hosting/migrate-from-file-store). ``MLFLOW_TRACKING_URI``
overrides it, an explicit ``--mlflow-uri`` overrides both.

Every write path starts with `check_reachable`, so an MLflow outage fails the step loudly
with the URI named (docs/reliability.md T4) before anything is registered.
"""

from __future__ import annotations

import json
import math
import os
import sqlite3
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import requests

#: The default tracking URI: a SQLite file in the current working directory.
DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"
#: The experiment every GNNRL run is logged under unless told otherwise.
DEFAULT_EXPERIMENT = "gnnrl"
#: Seconds the reachability probe waits for a tracking server.
PROBE_TIMEOUT_S = 5.0


class RegistryError(RuntimeError):
    """Base class of MLflow tracking/registry errors raised by GNNRL."""


class RegistryUnavailableError(RegistryError):
    """The MLflow tracking store cannot be reached; ``uri`` names it."""

    def __init__(self, uri: str, reason: str) -> None:
        super().__init__(f"MLflow tracking store {uri!r} is unreachable: {reason}")
        self.uri = uri
        self.reason = reason


def resolve_tracking_uri(uri: str | None = None) -> str:
    """The tracking URI to use: ``uri``, else ``$MLFLOW_TRACKING_URI``, else the default.

    A relative SQLite path (``sqlite:///mlflow.db``) is made absolute against the current
    working directory, so that pipeline steps running in other folders share one database.
    """
    chosen = uri or os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_TRACKING_URI
    if chosen.startswith("sqlite:///") and not chosen.startswith("sqlite:////"):
        rel = chosen[len("sqlite:///") :]
        if rel and rel != ":memory:":
            chosen = "sqlite:///" + str(Path(rel).resolve())
    return chosen


def sqlite_path(uri: str) -> Path | None:
    """The database file of a ``sqlite:///`` URI, or None for other schemes."""
    if not uri.startswith("sqlite:///"):
        return None
    # sqlite:///relative.db and sqlite:////abs/path.db (SQLAlchemy URL forms)
    return Path(uri[len("sqlite:///") :])


def check_reachable(uri: str, timeout_s: float = PROBE_TIMEOUT_S) -> None:
    """Raise `RegistryUnavailableError` naming ``uri`` unless the store answers.

    * ``sqlite:///PATH``: the folder exists and the file opens (created if missing).
    * ``http(s)://HOST``: ``GET /health`` answers 200 within ``timeout_s`` (the MLflow
      server's liveness route, mlflow/server/__init__.py ``health``).
    * ``databricks`` and other schemes are left to MLflow itself.
    """
    db = sqlite_path(uri)
    if db is not None:
        if not db.parent.is_dir():
            raise RegistryUnavailableError(uri, f"folder {db.parent} does not exist")
        try:
            con = sqlite3.connect(db, timeout=timeout_s)
            try:
                con.execute("select 1")
            finally:
                con.close()
        except sqlite3.Error as exc:
            raise RegistryUnavailableError(uri, f"cannot open {db}: {exc}") from exc
        return
    parsed = urlparse(uri)
    if parsed.scheme in ("http", "https"):
        url = uri.rstrip("/") + "/health"
        try:
            resp = requests.get(url, timeout=timeout_s)
        except requests.RequestException as exc:
            raise RegistryUnavailableError(uri, f"GET {url} failed: {exc}") from exc
        if resp.status_code != 200:
            raise RegistryUnavailableError(uri, f"GET {url} answered HTTP {resp.status_code}")
        return
    if parsed.scheme in ("", "file"):
        raise RegistryUnavailableError(
            uri, "the file store is deprecated and has no model registry; use sqlite:///mlflow.db"
        )


def artifact_root_for(uri: str) -> str | None:
    """Where a new experiment keeps artifacts: ``mlruns/`` beside a SQLite database.

    MLflow would otherwise use ``./mlruns`` relative to whichever folder the first run
    happened to start in. None (server-side default) for remote stores.
    """
    db = sqlite_path(uri)
    if db is None:
        return None
    return (db.parent / "mlruns").resolve().as_uri()


def ensure_experiment(uri: str, name: str = DEFAULT_EXPERIMENT) -> str:
    """Create (if needed) the experiment ``name`` in the store at ``uri``; return its id."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    exp = client.get_experiment_by_name(name)
    if exp is not None:
        return exp.experiment_id
    return client.create_experiment(name, artifact_location=artifact_root_for(uri))


@contextmanager
def tracked_run(
    uri: str,
    run_name: str,
    experiment: str = DEFAULT_EXPERIMENT,
    run_id: str | None = None,
    tags: Mapping[str, str] | None = None,
) -> Iterator[Any]:
    """Start (or resume, with ``run_id``) an MLflow run against ``uri``; yield the active run.

    The process-wide tracking URI is set for the duration and restored afterwards.
    """
    import mlflow

    check_reachable(uri)
    previous = (mlflow.get_tracking_uri(), mlflow.get_registry_uri())
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    try:
        exp_id = ensure_experiment(uri, experiment)
        with mlflow.start_run(
            run_id=run_id,
            run_name=None if run_id else run_name,
            experiment_id=None if run_id else exp_id,
            tags=dict(tags or {}),
        ) as run:
            yield run
    finally:
        mlflow.set_tracking_uri(previous[0])
        mlflow.set_registry_uri(previous[1])


def _flatten(prefix: str, value: Any, out: dict[str, Any]) -> None:
    if isinstance(value, Mapping):
        for k, v in value.items():
            _flatten(f"{prefix}.{k}" if prefix else str(k), v, out)
    elif isinstance(value, list | tuple):
        out[prefix] = json.dumps(list(value))
    else:
        out[prefix] = value


def flatten_params(params: Mapping[str, Any]) -> dict[str, str]:
    """Nested config dict -> ``{"ppo.lr": "0.0003", ...}`` (MLflow params are flat strings).

    Values are cut to MLflow's 6000-character parameter limit.
    """
    flat: dict[str, Any] = {}
    _flatten("", params, flat)
    return {k: str(v)[:6000] for k, v in flat.items()}


def log_evaluation(
    uri: str,
    run_name: str,
    summary_rows: list[dict[str, Any]],
    report_dir: str | os.PathLike[str],
    params: Mapping[str, Any] | None = None,
) -> str:
    """Log an evaluation: per-policy mean metrics (``<policy>.<metric>``) and the report folder.

    ``summary_rows`` are the per-policy aggregates of the evaluation summary (one dict per
    policy with a ``policy`` key and numeric columns). Returns the run id.
    """
    import mlflow

    with tracked_run(uri, run_name, tags={"gnnrl.step": "evaluate"}) as run:
        if params:
            mlflow.log_params(flatten_params(params))
        metrics: dict[str, float] = {}
        for row in summary_rows:
            policy = str(row["policy"])
            for key, value in row.items():
                if key != "policy" and isinstance(value, int | float):
                    metrics[_metric_key(f"{policy}.{key}")] = float(value)
        if metrics:
            mlflow.log_metrics(metrics)
        mlflow.log_artifacts(str(report_dir), artifact_path="evaluation")
        return run.info.run_id


def _metric_key(name: str) -> str:
    # MLflow metric names allow alphanumerics, _ - . space / (mlflow/utils/validation.py)
    return "".join(c if c.isalnum() or c in "_-. /" else "_" for c in name)


class MlflowTrainTracker:
    """A training run's rows in ``out/metrics.jsonl`` and in an MLflow run (the config as
    flattened params, every numeric value of a row as a metric at its step)."""

    def __init__(self, out: Path, config: Any, uri: str) -> None:
        import mlflow

        self.path = out / "metrics.jsonl"
        check_reachable(uri)
        mlflow.set_tracking_uri(uri)
        self.mlflow = mlflow
        self.run = mlflow.start_run(experiment_id=ensure_experiment(uri),
                                    run_name=f"train-{out.name}", tags={"gnnrl.step": "train"})
        items = list(flatten_params(config.to_dict()).items())
        for start in range(0, len(items), 100):  # MLflow takes at most 100 params a call
            mlflow.log_params(dict(items[start:start + 100]))

    def log(self, row: dict[str, Any], step: int) -> None:
        with self.path.open("a") as fh:
            fh.write(json.dumps(row, sort_keys=True) + "\n")
        numeric = {k: float(v) for k, v in row.items()
                   if isinstance(v, int | float) and math.isfinite(v)}
        self.mlflow.log_metrics(numeric, step=step)

    def close(self, status: str = "FINISHED") -> None:
        self.mlflow.end_run(status=status)


def training_tracker(out: Path, config: Any) -> Any:
    """The tracker `gnnrl.core.agents.train.train` should use: MLflow as well when
    ``MLFLOW_TRACKING_URI`` is set, else metrics.jsonl only."""
    if os.environ.get("MLFLOW_TRACKING_URI"):
        return MlflowTrainTracker(out, config, resolve_tracking_uri())
    from gnnrl.core.agents.train import JsonlTracker  # the training layer, below this one

    return JsonlTracker(out, config)
