"""Evaluate policies against baselines on a scenario suite; write tables, plots, a report.

Every policy meets the same traces, seeds (from 1000, disjoint from training seeds) and
topology events. The clairvoyant oracle always runs: replica-hours are also reported as
a multiple of its. Writes steps.parquet, services.parquet, summary.csv, results.md,
report.html (plots embedded) and plots/*.png under --out.

policies: hpa, hpa-NN (CPU target NN %), keda, keda-NN, static, static-N, random, oracle,
mlp[:ZIP] (python -m gnnrl.baselines.mlp_ppo; default: the shipped MLP),
gnnrl[:MODEL_DIR] (default: the shipped model). Prefix LABEL= to name a row.

examples:
  # the README results table (default suite: 5 traces x 3 topologies x 5 seeds)
  gnnrl evaluate --policies hpa,keda,static,oracle,mlp:models/mlp.zip,gnnrl \\
      --suite default --seeds 5 --hpa-sweep 30,40,50,60,70,80,90 --out results/

  # the same on 8 processes (identical results)
  gnnrl evaluate --policies hpa,keda,static,oracle --suite default --workers 8 --out results/

  # a fast smoke run (2 scenarios, 2 seeds, 60 steps)
  gnnrl evaluate --policies hpa,keda,static --suite quick --out /tmp/eval

  # replay your own trace (t_s,rps CSV) on your calibrated app, peak 300 req/s
  gnnrl evaluate --policies hpa,gnnrl:models/run1 --trace traffic.csv --peak-rps 300 \\
      --app app.yaml --seeds 3 --out /tmp/eval-mine
"""

from __future__ import annotations

import argparse
import shlex
import sys

from gnnrl.config import ConfigError


def _int_list(text: str) -> list[int]:
    try:
        return [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated integers, got {text!r}") from None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--policies", default="hpa,keda,static,oracle",
                        help="comma-separated policy specs (default: %(default)s)")
    src = parser.add_mutually_exclusive_group()
    src.add_argument("--suite", choices=("default", "quick"), default=None,
                     help="named scenario suite (default: default)")
    src.add_argument("--trace", metavar="FILE",
                     help="replay a t_s,rps CSV/Parquet file instead of a suite")
    parser.add_argument("--topologies", default="static",
                        help="with --trace: comma-separated static,add,remove "
                             "(default: %(default)s)")
    parser.add_argument("--peak-rps", type=float, default=None,
                        help="trace peak, req/s (default: 25%% of the bottleneck's capacity)")
    parser.add_argument("--app", default=None,
                        help="application spec: built-in name or YAML/JSON path "
                             "(default: onlineboutique)")
    parser.add_argument("--seeds", type=int, default=None,
                        help="number of evaluation seeds, from 1000 (default: the suite's)")
    parser.add_argument("--steps", type=int, default=None,
                        help="episode length in 15 s steps (default: the suite's)")
    parser.add_argument("--hpa-sweep", type=_int_list, default=[],
                        help="HPA CPU targets in %% for the cost-vs-violations frontier, "
                             "e.g. 30,40,50,60,70,80,90")
    parser.add_argument("--learning-curves", nargs="*", default=[], metavar="CSV",
                        help="training logs (env_steps, return[, slo_violation_rate]) to chart")
    parser.add_argument("--out", required=True, help="output directory")
    parser.add_argument("--workers", type=int, default=1,
                        help="processes running episodes in parallel (same results; "
                             "default: %(default)s)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def command_line(args: argparse.Namespace) -> str:
    """The command that reproduces this run (written into results.md and report.html)."""
    parts = ["gnnrl", "evaluate", "--policies", args.policies]
    if args.trace:
        parts += ["--trace", args.trace, "--topologies", args.topologies]
    else:
        parts += ["--suite", args.suite or "default"]
    for flag, value in (("--peak-rps", args.peak_rps), ("--app", args.app),
                        ("--seeds", args.seeds), ("--steps", args.steps)):
        if value is not None:
            parts += [flag, str(value)]
    if args.hpa_sweep:
        parts += ["--hpa-sweep", ",".join(str(p) for p in args.hpa_sweep)]
    if args.learning_curves:
        parts += ["--learning-curves", *args.learning_curves]
    parts += ["--out", args.out]
    return " ".join(shlex.quote(p) for p in parts)


def run(args: argparse.Namespace) -> int:
    from gnnrl.evaluation.runner import evaluate
    from gnnrl.evaluation.scenarios import TOPOLOGIES, trace_suite
    from gnnrl.sim.spec import AppSpecError
    from gnnrl.sim.traces import TraceError

    try:
        policies = [p.strip() for p in args.policies.split(",") if p.strip()]
        if not policies:
            raise ConfigError("policies: at least one policy is needed")
        if args.trace:
            topos = tuple(t.strip() for t in args.topologies.split(",") if t.strip())
            bad = [t for t in topos if t not in TOPOLOGIES]
            if bad:
                raise ConfigError(f"topologies: unknown {', '.join(bad)} (known: "
                                  f"{', '.join(TOPOLOGIES)})")
            suite = trace_suite(args.trace, seeds=args.seeds or 5, steps=args.steps or 240,
                                peak_rps=args.peak_rps, topologies=topos)
        else:
            suite = args.suite or "default"
        summary = evaluate(
            policies, suite, seeds=args.seeds, out_dir=args.out, app=args.app,
            hpa_sweep=args.hpa_sweep, steps=args.steps, peak_rps=args.peak_rps,
            learning_curves=args.learning_curves, progress=not args.no_progress,
            command=command_line(args), workers=args.workers,
        )
    except (ConfigError, AppSpecError, TraceError, FileNotFoundError, ValueError) as exc:
        print(f"gnnrl evaluate: error: {exc}", file=sys.stderr)
        return 2
    print(f"{len(summary)} runs -> {args.out}/summary.csv, results.md, report.html")
    return 0
