"""List, show and promote models in the MLflow registry (gnnrl-scaler).

Examples:
  gnnrl registry list                                  # versions, aliases, gate decisions
  gnnrl registry show champion                         # one version (number or alias)
  gnnrl registry show 3 --json

  # re-run the gate for version 3 on an evaluation summary (challenger policy name in it)
  gnnrl registry promote 3 --summary runs/eval/summary.csv --policy candidate-seed0

  # operator override (e.g. roll back): recorded as promoted-manually with the reason
  gnnrl registry promote 2 --force --reason "rollback: v3 flaps under flash crowds"

The tracking URI is --mlflow-uri, else $MLFLOW_TRACKING_URI, else sqlite:///mlflow.db in
the current folder (where `gnnrl pipeline run` creates it). These commands only read or
change an existing registry: a SQLite database that does not exist is an error (exit 2),
never silently created.
"""

from __future__ import annotations

import argparse
import json
import os
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--mlflow-uri",
                        help="tracking URI (default: $MLFLOW_TRACKING_URI, else "
                             "sqlite:///mlflow.db in this folder)")
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    fmt = parser.formatter_class
    sub.add_parser("list", help="all versions, newest first", formatter_class=fmt)
    s = sub.add_parser("show", help="one version with its tags", formatter_class=fmt)
    s.add_argument("ref", help="version number or alias (champion, challenger)")
    s.add_argument("--json", action="store_true", help="print JSON")
    p = sub.add_parser("promote", help="gate a version (or --force it) to champion",
                       formatter_class=fmt)
    p.add_argument("version", help="version number")
    p.add_argument("--summary", help="evaluation summary.csv (or its folder)")
    p.add_argument("--policy", help="the version's policy name in the summary")
    p.add_argument("--champion-policy", default="champion",
                   help="the champion's policy name in the summary")
    p.add_argument("--baseline-policy", default="hpa", help="HPA's policy name")
    p.add_argument("--slo-margin", type=float, default=0.0,
                   help="required drop of the SLO-violation rate against the champion "
                        "(absolute, 0..1; negative tolerates a rise)")
    p.add_argument("--cost-margin", type=float, default=0.0,
                   help="required relative drop of replica-hours against the champion "
                        "(0.05 = 5 %% cheaper; negative tolerates a rise)")
    p.add_argument("--hpa-slo-margin", type=float, default=0.0,
                   help="the same as --slo-margin, against HPA")
    p.add_argument("--hpa-cost-margin", type=float, default=0.0,
                   help="the same as --cost-margin, against HPA")
    p.add_argument("--min-confidence", type=float, default=0.0,
                   help="share of scenario redraws (paired bootstrap) the version must pass "
                        "in against each reference, e.g. 0.9; 0 = not checked")
    p.add_argument("--force", action="store_true", help="skip the gate (needs --reason)")
    p.add_argument("--reason", default="", help="why (recorded on the version)")


def _list(uri: str) -> int:
    from gnnrl.registry.promote import list_versions

    rows = list_versions(uri)
    if not rows:
        print("no gnnrl-scaler versions registered")
        return 0
    print(f"{'version':>7}  {'aliases':<22} {'decision':<18} {'created':<20} reason")
    for r in rows:
        tags = r["tags"]
        print(f"{r['version']:>7}  {','.join(r['aliases']) or '-':<22} "
              f"{tags.get('gate.decision', '-'):<18} {r['created'][:19]:<20} "
              f"{tags.get('gate.reason', '')[:80]}")
    return 0


def _show(uri: str, ref: str, as_json: bool) -> int:
    from gnnrl.registry.promote import show_version

    info = show_version(ref, uri)
    if as_json:
        print(json.dumps(info, indent=2, sort_keys=True))
        return 0
    for key in ("version", "model_uri", "aliases", "status", "run_id", "source"):
        print(f"{key:<10} {info[key]}")
    for key, value in sorted(info["tags"].items()):
        print(f"  {key} = {value}")
    return 0


def _promote(uri: str, args: argparse.Namespace) -> int:
    from gnnrl.registry.gate import GateConfig, decide
    from gnnrl.registry.promote import (
        CHAMPION,
        alias_version,
        promote_manually,
        read_summary,
        show_version,
    )

    if args.force:
        previous = promote_manually(args.version, args.reason, uri)
        print(f"version {args.version} is champion (was {previous or 'none'}): {args.reason}")
        return 0
    if not args.summary or not args.policy:
        print("gnnrl registry promote: --summary and --policy are needed (or --force)",
              file=sys.stderr)
        return 2
    show_version(args.version, uri)  # the version must exist
    champion = alias_version(uri, CHAMPION)
    gate = GateConfig(slo_margin=args.slo_margin, cost_margin=args.cost_margin,
                      baseline_slo_margin=args.hpa_slo_margin,
                      baseline_cost_margin=args.hpa_cost_margin,
                      baseline_policy=args.baseline_policy,
                      min_confidence=args.min_confidence)
    decision = decide(read_summary(args.summary), args.policy,
                      args.champion_policy if champion and champion != args.version else None,
                      gate)
    for line in decision.reasons:
        print(("PASS: " if decision.promoted else "FAIL: ") + line)
    if not decision.promoted:
        print(f"version {args.version} not promoted; champion stays {champion or 'none'}")
        return 1
    promote_manually(args.version, "gate passed: " + "; ".join(decision.reasons), uri)
    print(f"version {args.version} is champion (was {champion or 'none'})")
    return 0


def _existing_store(explicit: str | None) -> str:
    """The tracking URI to use, refusing a SQLite database that does not exist (opening it
    would create an empty ``mlflow.db`` wherever the command happens to run)."""
    from gnnrl.registry.tracking import RegistryError, resolve_tracking_uri, sqlite_path

    uri = resolve_tracking_uri(explicit)
    db = sqlite_path(uri)
    if db is not None and str(db) != ":memory:" and not db.is_file():
        origin = ("--mlflow-uri" if explicit else "$MLFLOW_TRACKING_URI"
                  if os.environ.get("MLFLOW_TRACKING_URI") else "the default")
        raise RegistryError(f"no MLflow registry at {db} ({origin}); run this where `gnnrl "
                            "pipeline run` created mlflow.db, or pass --mlflow-uri / set "
                            "MLFLOW_TRACKING_URI")
    return uri


def run(args: argparse.Namespace) -> int:
    from mlflow.exceptions import MlflowException

    from gnnrl.registry.tracking import RegistryError

    try:
        uri = _existing_store(args.mlflow_uri)
        if args.action == "list":
            return _list(uri)
        if args.action == "show":
            return _show(uri, args.ref, args.json)
        return _promote(uri, args)
    except (RegistryError, MlflowException, FileNotFoundError) as exc:
        print(f"gnnrl registry {args.action}: error: {exc}", file=sys.stderr)
        return 2
