"""Compile, run locally, submit or schedule the Kubeflow pipeline.

Examples:
  # the whole loop on this machine (simulator -> calibrate -> train -> evaluate -> gate),
  # into ./mlflow.db; a few minutes on 2 cores
  gnnrl pipeline run --profile quick

  # judge and deploy the candidate at a safer dial (0 = cheapest .. 1 = safest; default 0.5)
  gnnrl pipeline run --profile quick --dial 0.8

  # the full budget, against your cluster's Kiali
  gnnrl pipeline run --profile full --source kiali \\
      --kiali-url http://kiali.istio-system:20001/kiali --namespace onlineboutique

  # the YAML to upload in the KFP UI (the committed copy is gnnrl/pipeline/gnnrl_pipeline.yaml)
  gnnrl pipeline compile --out pipeline.yaml
  gnnrl pipeline compile --out cpu.yaml --no-gpu           # no accelerator request

  # one run on a Kubeflow Pipelines, and a nightly retrain at 02:00 (6-field cron)
  gnnrl pipeline submit --host http://localhost:8080 --param train_steps=50000
  gnnrl pipeline schedule --host http://localhost:8080 --cron '0 0 2 * * *'

Run-time knobs are pipeline parameters (--param NAME=VALUE, JSON values); compile-time
options (GPU, node selector, toleration, secrets, fan-out width) are compile flags.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from gnnrl.config import ConfigError


def _add_build_options(p: argparse.ArgumentParser) -> None:
    from gnnrl.pipeline.options import BuildOptions

    d = BuildOptions()
    p.add_argument("--no-gpu", action="store_true", help="no accelerator on the train task")
    p.add_argument("--accelerator-type", default=d.accelerator_type,
                   help=f"accelerator resource ({d.accelerator_type})")
    p.add_argument("--accelerator-limit", type=int, default=d.accelerator_limit,
                   help="accelerators per train task (1)")
    p.add_argument("--node-selector", default=d.node_selector,
                   help=f"key=value for the train pod, '' for none ({d.node_selector})")
    p.add_argument("--toleration", default=d.toleration,
                   help=f"key:Effect the train pod tolerates, '' for none ({d.toleration})")
    p.add_argument("--parallelism", type=int, default=d.parallelism,
                   help=f"seeds trained at once ({d.parallelism})")
    p.add_argument("--mlflow-secret", default=d.mlflow_secret,
                   help=f"Secret with username/password for MLflow, '' for none "
                        f"({d.mlflow_secret})")
    p.add_argument("--kiali-secret", default=d.kiali_secret,
                   help=f"Secret with token for Kiali/Prometheus, '' for none ({d.kiali_secret})")


def _parse_params(items: list[str] | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in items or []:
        name, sep, raw = item.partition("=")
        if not sep or not name:
            raise ConfigError(f"--param must be NAME=VALUE, got {item!r}")
        try:
            out[name] = json.loads(raw)
        except json.JSONDecodeError:
            out[name] = raw
    return out


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)

    c = sub.add_parser("compile", help="write the KFP v2 pipeline YAML")
    c.add_argument("--out", required=True, help="YAML file to write")
    _add_build_options(c)

    r = sub.add_parser(
        "run", help="run the pipeline locally (KFP local subprocess runner)",
        formatter_class=parser.formatter_class,
        epilog="examples:\n"
               "  gnnrl pipeline run --profile quick            # ~1 min: sim data, ./mlflow.db\n"
               "  gnnrl pipeline run --profile quick --param train_warm_start=none\n"
               "  gnnrl pipeline run --profile quick --param train_teacher=oracle@dial\n"
               "  gnnrl pipeline run --profile full             # ~16 min: 3 seeds x 200k steps\n"
               "  gnnrl pipeline run --profile quick --dial 0.8  # judge + deploy at 0.8\n"
               "  gnnrl pipeline run --source kiali --kiali-url http://kiali:20001/kiali "
               "--namespace shop")
    r.add_argument("--profile", choices=("quick", "full"), default="quick")
    r.add_argument("--source", choices=("sim", "kiali", "prometheus"), default="sim")
    r.add_argument("--namespace", help="namespace to observe (kiali, prometheus)")
    r.add_argument("--kiali-url", help="Kiali web root")
    r.add_argument("--prometheus-url", help="Prometheus base URL")
    r.add_argument("--mlflow-uri", help="tracking URI (default: sqlite:///mlflow.db here)")
    r.add_argument("--workdir", default="runs/pipeline",
                   help="local outputs folder (runs/pipeline)")
    r.add_argument("--parallelism", type=int, help="seeds trained at once (2)")
    r.add_argument("--param", action="append", metavar="NAME=VALUE",
                   help="override a pipeline parameter (repeatable)")
    _add_dial(r)
    r.add_argument("--verbose", action="store_true",
                   help="show KFP's output (executor JSON, every step's logs); by default "
                        "one line per step, and the end of the output when a step fails")

    s = sub.add_parser("submit", help="start one run on a Kubeflow Pipelines server")
    s.add_argument("--host", required=True, help="KFP API/UI URL")
    s.add_argument("--package", help="compiled YAML (default: the committed one)")
    s.add_argument("--experiment", default="gnnrl")
    s.add_argument("--run-name")
    s.add_argument("--kfp-namespace", help="KFP user namespace (multi-user installs)")
    s.add_argument("--token", help="bearer token for the KFP API")
    s.add_argument("--param", action="append", metavar="NAME=VALUE")
    _add_dial(s)

    k = sub.add_parser("schedule", help="create a recurring run (6-field cron)")
    k.add_argument("--host", required=True, help="KFP API/UI URL")
    k.add_argument("--cron", required=True, help="e.g. '0 0 2 * * *' = 02:00 daily")
    k.add_argument("--package", help="compiled YAML (default: the committed one)")
    k.add_argument("--experiment", default="gnnrl")
    k.add_argument("--job-name", default="gnnrl-nightly")
    k.add_argument("--kfp-namespace", help="KFP user namespace (multi-user installs)")
    k.add_argument("--token", help="bearer token for the KFP API")
    k.add_argument("--param", action="append", metavar="NAME=VALUE")
    _add_dial(k)


def _dial(text: str) -> float:
    from gnnrl.core.agents.dial import parse_dial

    try:
        return parse_dial(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _add_dial(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dial", type=_dial, default=None,
                   help="the pipeline parameter dial: the cost/SLO preference (0 = cheapest, "
                        "1 = safest) at which the gate judges the candidate and the scaler "
                        "serves it; training is unaffected (default: 0.5)")


def _params(args: argparse.Namespace) -> dict[str, Any]:
    """--param NAME=VALUE pairs, with --dial as the ``dial`` parameter."""
    params = _parse_params(args.param)
    if args.dial is not None:
        params["dial"] = args.dial
    return params


def _options(args: argparse.Namespace) -> Any:
    from gnnrl.pipeline.options import BuildOptions

    return BuildOptions(
        gpu=not args.no_gpu, accelerator_type=args.accelerator_type,
        accelerator_limit=args.accelerator_limit, node_selector=args.node_selector,
        toleration=args.toleration, parallelism=args.parallelism,
        mlflow_secret=args.mlflow_secret, kiali_secret=args.kiali_secret,
    )


def _run_local(args: argparse.Namespace) -> int:
    from gnnrl.pipeline.runner import run_local

    overrides = _params(args)
    for name in ("namespace", "kiali_url", "prometheus_url"):
        if getattr(args, name):
            overrides[name] = getattr(args, name)
    print(f"gnnrl pipeline run: profile {args.profile}, source {args.source}; "
          f"one line per step follows (--verbose: all of KFP's output)", flush=True)
    try:
        summary = run_local(args.profile, args.source, workdir=args.workdir,
                            mlflow_uri=args.mlflow_uri, parallelism=args.parallelism,
                            verbose=args.verbose, **overrides)
    except RuntimeError as exc:
        print(f"gnnrl pipeline run: FAILED: {exc}", file=sys.stderr)
        print("the champion in the registry is unchanged (later steps did not run)",
              file=sys.stderr)
        return 1
    print("\n".join(["", "== GNNRL pipeline run ==", *summary.lines()]))
    return 0


def run(args: argparse.Namespace) -> int:
    from gnnrl.pipeline import runner
    from gnnrl.registry.tracking import RegistryUnavailableError

    try:
        if args.action == "compile":
            path = runner.compile_pipeline(args.out, _options(args))
            print(f"wrote {path} (upload it in the KFP UI, or `gnnrl pipeline submit`)")
            return 0
        if args.action == "run":
            return _run_local(args)
        package = args.package or runner.COMMITTED_YAML
        params = _params(args)
        if args.action == "submit":
            run_id = runner.submit(args.host, package, params, run_name=args.run_name,
                                   experiment=args.experiment, namespace=args.kfp_namespace,
                                   token=args.token)
            print(f"submitted run {run_id} to {args.host}")
            return 0
        job_id = runner.schedule(args.host, args.cron, package, params, job_name=args.job_name,
                                 experiment=args.experiment, namespace=args.kfp_namespace,
                                 token=args.token)
        print(f"scheduled recurring run {job_id} ({args.cron!r}, no catch-up, "
              f"max 1 concurrent) on {args.host}")
        return 0
    except (ConfigError, RegistryUnavailableError) as exc:
        print(f"gnnrl pipeline {args.action}: error: {exc}", file=sys.stderr)
        return 2
