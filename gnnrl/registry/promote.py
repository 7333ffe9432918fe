"""Register a trained policy as ``gnnrl-scaler``, run the gate, move the aliases.

Order of operations (docs/reliability.md T3/T4): (1) probe the store -- an outage fails here with
the URI named, before anything is written; (2) log the pyfunc model and create the model
version; (3) write the gate's decision and numbers as version tags; (4) only then set
``challenger``, and ``champion`` last and only when the gate passed. A failure at any
step leaves the previous champion where it was.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
from pathlib import Path
from typing import Any

import pandas as pd

from gnnrl.registry.gate import GateConfig, GateDecision, decide
from gnnrl.registry.pyfunc_model import MODEL_NAME, log_pyfunc
from gnnrl.registry.tracking import (
    RegistryError,
    check_reachable,
    resolve_tracking_uri,
    tracked_run,
)

CHAMPION = "champion"
#: version tag holding the sha256 of ``weights.pt`` (read by gnnrl.scaler.model_source)
SHA_TAG = "weights_sha256"
WEIGHTS_FILE = "weights.pt"
CHALLENGER = "challenger"


@dataclasses.dataclass(frozen=True)
class PromotionResult:
    """What `register_and_gate` did: the new version, whether it is champion, and why."""

    version: str
    model_uri: str
    promoted: bool
    decision: GateDecision
    previous_champion: str | None
    run_id: str


def _client(uri: str) -> Any:
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def alias_version(uri: str, alias: str, name: str = MODEL_NAME) -> str | None:
    """The version number behind ``name@alias``, or None when unset or the model is new."""
    from mlflow.exceptions import MlflowException

    try:
        return str(_client(uri).get_model_version_by_alias(name, alias).version)
    except MlflowException as exc:
        if getattr(exc, "error_code", "") in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
            return None
        raise


def register_and_gate(
    model_dir: str | os.PathLike[str],
    summary: pd.DataFrame,
    challenger_policy: str,
    champion_policy: str | None = None,
    champion_version_evaluated: str | None = None,
    gate: GateConfig | None = None,
    tracking_uri: str | None = None,
    run_id: str | None = None,
    tags: dict[str, str] | None = None,
) -> PromotionResult:
    """Register ``model_dir`` as a new ``gnnrl-scaler`` version and gate it.

    Args:
        model_dir: the trained model folder (state_dict + JSON config).
        summary: the evaluation summary in which challenger, champion and baseline ran on
            the same scenarios and seeds (see `gnnrl.registry.gate.score_policy`).
        challenger_policy / champion_policy: their policy names in ``summary``.
        champion_version_evaluated: the champion version that ``champion_policy`` was
            loaded from; if the champion moved since, the gate refuses (stale comparison).
        gate: margins; run_id: attach the model to this (training) run instead of a new one.

    Raises:
        RegistryUnavailableError: the store is unreachable (nothing was written).
    """
    uri = resolve_tracking_uri(tracking_uri)
    check_reachable(uri)
    current = alias_version(uri, CHAMPION)
    if current is not None and champion_version_evaluated != current:
        decision = GateDecision(
            False,
            (
                f"champion is version {current} but the evaluation compared against "
                f"{champion_version_evaluated or 'no champion'}; re-run the evaluation",
            ),
            {},
            gate or GateConfig(),
        )
    else:
        decision = decide(
            summary, challenger_policy, champion_policy if current else None, gate
        )
    with tracked_run(uri, "register", run_id=run_id, tags={"gnnrl.step": "register"}) as run:
        info = log_pyfunc(model_dir)
        import mlflow

        mv = mlflow.register_model(info.model_uri, MODEL_NAME, tags=dict(tags or {}))
        active_run_id = run.info.run_id
    client = _client(uri)
    version = str(mv.version)
    version_tags = {**decision.as_tags(), "gate.previous_champion": current or ""}
    weights = Path(model_dir) / WEIGHTS_FILE
    if weights.is_file():  # the scaler checks the weights against this tag (model_source.py)
        version_tags[SHA_TAG] = hashlib.sha256(weights.read_bytes()).hexdigest()
    for key, value in version_tags.items():
        client.set_model_version_tag(MODEL_NAME, version, key, value)
    client.set_registered_model_alias(MODEL_NAME, CHALLENGER, version)
    if decision.promoted:
        client.set_registered_model_alias(MODEL_NAME, CHAMPION, version)
    return PromotionResult(
        version=version,
        model_uri=f"models:/{MODEL_NAME}/{version}",
        promoted=decision.promoted,
        decision=decision,
        previous_champion=current,
        run_id=active_run_id,
    )


def promote_manually(version: str, reason: str, tracking_uri: str | None = None) -> str | None:
    """Make ``version`` the champion without the gate (an operator's decision, e.g. rollback).

    The reason and the previous champion are recorded as version tags. Returns the previous
    champion version.
    """
    if not reason.strip():
        raise RegistryError("a manual promotion needs a reason (it is recorded on the version)")
    uri = resolve_tracking_uri(tracking_uri)
    check_reachable(uri)
    client = _client(uri)
    client.get_model_version(MODEL_NAME, version)  # raises if the version does not exist
    previous = alias_version(uri, CHAMPION)
    client.set_model_version_tag(MODEL_NAME, version, "gate.decision", "promoted-manually")
    client.set_model_version_tag(MODEL_NAME, version, "gate.reason", reason)
    client.set_model_version_tag(MODEL_NAME, version, "gate.previous_champion", previous or "")
    client.set_registered_model_alias(MODEL_NAME, CHAMPION, version)
    return previous


def list_versions(tracking_uri: str | None = None) -> list[dict[str, Any]]:
    """All ``gnnrl-scaler`` versions, newest first: version, aliases, run id, gate tags."""
    uri = resolve_tracking_uri(tracking_uri)
    check_reachable(uri)
    client = _client(uri)
    from mlflow.exceptions import MlflowException

    try:
        versions = client.search_model_versions(f"name = '{MODEL_NAME}'")
        aliases = dict(getattr(client.get_registered_model(MODEL_NAME), "aliases", {}) or {})
    except MlflowException:
        return []
    by_version: dict[str, list[str]] = {}
    for alias, number in aliases.items():
        by_version.setdefault(str(number), []).append(alias)
    rows = []
    for mv in sorted(versions, key=lambda m: int(m.version), reverse=True):
        rows.append(
            {
                "version": str(mv.version),
                "aliases": sorted(by_version.get(str(mv.version), [])),
                "run_id": mv.run_id,
                "created": pd.Timestamp(mv.creation_timestamp, unit="ms").isoformat(),
                "tags": dict(mv.tags or {}),
            }
        )
    return rows


def show_version(ref: str, tracking_uri: str | None = None) -> dict[str, Any]:
    """One version (number or alias such as ``champion``) with its tags and source."""
    uri = resolve_tracking_uri(tracking_uri)
    check_reachable(uri)
    client = _client(uri)
    mv = (
        client.get_model_version(MODEL_NAME, ref)
        if ref.isdigit()
        else client.get_model_version_by_alias(MODEL_NAME, ref)
    )
    return {
        "version": str(mv.version),
        "aliases": sorted(getattr(mv, "aliases", []) or []),
        "run_id": mv.run_id,
        "source": mv.source,
        "status": mv.status,
        "tags": dict(mv.tags or {}),
        "model_uri": f"models:/{MODEL_NAME}/{mv.version}",
    }


def read_summary(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Read an evaluation ``summary.csv`` (a folder containing one is accepted too)."""
    p = Path(path)
    if p.is_dir():
        p = p / "summary.csv"
    if not p.is_file():
        raise FileNotFoundError(f"evaluation summary {p} does not exist")
    return pd.read_csv(p)
