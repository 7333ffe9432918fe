"""Evaluate policies against baselines on a scenario suite; write tables, plots, a report.

Every policy meets the same traces, seeds (from 1000, disjoint from training seeds) and
topology events. The clairvoyant oracle always runs: replica-hours are also reported as
a multiple of its. Writes steps.parquet, services.parquet, summary.csv, frontier.csv
(cost vs violations per knob of each policy family: hpa-NN, keda-NN, gnnrl@DIAL,
FAMILY@KNOB), matched.csv (each policy's cost against the HPA sweep's, and GNNRL's dial
curve's, at the same violation rate), rules.csv (with rule settings such as headroom-50
and GNNRL dials: each rule's sweep at every dial point's violation rate), results.md,
report.html (plots embedded) and plots/*.png under --out.

suites: default (5 synthetic traces x 3 topologies), quick, real (WorldCup98 and AWS ELB
evaluation windows at their own time scale), real-late (four later windows, added after
the first real results), real-fresh (three WorldCup98 windows, added with the model
guard's scale-down cap), real-fresh-2 (the last unused WorldCup98 days, added with
the guard's last-pods window), real-validation (a real-traffic validation week, from
validation seeds: for choosing settings, not for claims), stress (10x surge and
30%->100% step with 30-60 s pod start-ups), apps (OnlineBoutique, socialNetwork and
evaluation-only generated apps). real, stress, apps and --trace run with realistic
cluster timing (--timing ideal switches it off). See docs/evaluation.md.

traces (--trace): a built-in real trace (worldcup98, aws-elb) or a file with a
minute,count / timestamp,value / t_s,rps header (CSV, CSV.gz, Parquet), replayed at its
own time scale (15 s steps) over --start/--duration, rescaled so the window's peak is
--peak-rps; --compress squeezes the window into --steps instead.

policies: hpa, hpa-NN (CPU target NN %), hpa-nb[-NN] (an HPA without behavior),
hpa[-NN]+rps (CPU + req/s), keda[-NN], static[-N], random, oracle, headroom[-NN],
floor[-NN], predictive[-NN], panic[-NN], mlp[:ZIP] (python -m gnnrl.baselines.mlp_ppo;
default: the shipped MLP), gnnrl[:MODEL_DIR][@DIAL] (as deployed; default: the shipped
model at dial 0.5; DIAL in [0, 1], 0 = cheapest, 1 = safest: gnnrl@0.8),
gnnrl[:MODEL_DIR]~GUARD[@DIAL] (behind another model guard: WINDOW-DELAY[-CAP] in
seconds, CAP as P%/Ts or Npods/Ts, e.g. gnnrl~120-360-50%/60s@0.5),
gnnrl-raw[:MODEL_DIR][@DIAL]; SPEC+graph adds the graph-wide scale-up. Prefix LABEL= to
name a row.

examples:
  # the README results table (default suite: 5 traces x 3 topologies x 5 seeds)
  gnnrl evaluate --policies hpa,keda,static,oracle,mlp:models/mlp.zip,gnnrl \\
      --suite default --seeds 5 --hpa-sweep 30,40,50,60,70,80,90 --out results/

  # GNNRL's cost/SLO curve: the one model at five dials (rows gnnrl@0 ... gnnrl@1)
  # against HPA's target sweep; matched.csv reads both curves at each violation rate
  gnnrl evaluate --policies hpa,gnnrl --dial-sweep 0,0.25,0.5,0.75,1 \\
      --hpa-sweep 40,50,60,80,90 --suite default --out results/dial

  # one model at a chosen dial, and a candidate's dial curve under its own label
  gnnrl evaluate --policies hpa,gnnrl@0.8,mine=gnnrl:runs/x/best --dial-sweep 0,0.5,1 \\
      --suite quick --out /tmp/eval-dial

  # the model behind two guards, each a dial curve, on the real-traffic validation week
  gnnrl evaluate --policies hpa,gnnrl,capped=gnnrl~120-360-50%/60s --dial-sweep 0,0.5,1 \\
      --suite real-validation --seeds 2 --workers 2 --out /tmp/guards

  # the same on 8 processes (identical results)
  gnnrl evaluate --policies hpa,keda,static,oracle --suite default --workers 8 --out results/

  # a fast smoke run (2 scenarios, 2 seeds, 60 steps)
  gnnrl evaluate --policies hpa,keda,static --suite quick --out /tmp/eval

  # 12 hours of WorldCup98 traffic at its own time scale (2880 steps of 15 s)
  gnnrl evaluate --policies hpa,headroom,oracle --trace worldcup98 --peak-rps 225 \\
      --start 294h --duration 12h --seeds 2 --hpa-sweep 40,50,60,80,90 --out /tmp/eval-wc

  # the real-trace evaluation windows, the start-up stress suite, unseen applications
  gnnrl evaluate --policies hpa,keda,gnnrl --suite real --hpa-sweep 50,60,80,90 --out /tmp/real
  gnnrl evaluate --policies hpa,headroom,gnnrl --suite real-late --seeds 2 \\
      --hpa-sweep 40,50,60,80,90 --out /tmp/real-late       # four later windows
  gnnrl evaluate --policies hpa,floor,panic,gnnrl --suite stress --out /tmp/stress
  gnnrl evaluate --policies hpa,floor,headroom,gnnrl --suite apps --hpa-sweep 40,60,90 \\
      --out /tmp/apps

  # replay your own trace (t_s,rps CSV) on your calibrated app, peak 300 req/s
  gnnrl evaluate --policies hpa,gnnrl:models/run1 --trace traffic.csv --peak-rps 300 \\
      --app app.yaml --seeds 3 --out /tmp/eval-mine

  # a whole day squeezed into one 240-step episode (the pre-window behaviour)
  gnnrl evaluate --policies hpa --trace aws-elb --start 11d --duration 1d --compress \\
      --steps 240 --out /tmp/eval-squeezed
"""

from __future__ import annotations

import argparse
import shlex
import sys
from typing import TYPE_CHECKING

from gnnrl.commands.simulate import positive_int, positive_number
from gnnrl.config import ConfigError

if TYPE_CHECKING:
    from gnnrl.evaluation.scenarios import Suite

#: `gnnrl.evaluation.scenarios.SUITES` (spelled out: the parser is built without importing
#: the simulator; a test keeps the two equal).
SUITES = ("default", "quick", "real", "real-late", "real-fresh", "real-fresh-2",
          "real-validation", "stress", "apps")


def _int_list(text: str) -> list[int]:
    try:
        return [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated integers, got {text!r}") from None


def _dial_list(text: str) -> list[float]:
    from gnnrl.core.agents.dial import parse_dial

    try:
        return [parse_dial(x.strip()) for x in text.split(",") if x.strip()]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated dials in [0, 1], got {text!r}: {exc}") from None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--policies", default="hpa,keda,static,oracle",
                        help="comma-separated policy specs (default: %(default)s)")
    src = parser.add_mutually_exclusive_group()
    src.add_argument("--suite", choices=SUITES, default=None,
                     help="named scenario suite (default: default)")
    src.add_argument("--trace", metavar="NAME|FILE",
                     help="replay a built-in trace (worldcup98, aws-elb) or a trace file "
                          "(minute,count / timestamp,value / t_s,rps; CSV, CSV.gz, Parquet) "
                          "instead of a suite")
    parser.add_argument("--start", default=None,
                        help="with --trace: window start, offset from the trace's first "
                             "timestamp, e.g. 294h, 90m, 1d (default: 0)")
    parser.add_argument("--duration", default=None,
                        help="with --trace: window length, e.g. 12h (default: --steps "
                             "intervals, else the rest of the trace)")
    parser.add_argument("--compress", action="store_true",
                        help="with --trace: squeeze the window into --steps (default 240) "
                             "intervals instead of replaying it at its own time scale")
    parser.add_argument("--topologies", default="static",
                        help="with --trace: comma-separated static,add,remove "
                             "(default: %(default)s)")
    parser.add_argument("--peak-rps", type=positive_number, default=None,
                        help="trace peak, req/s (default: 25%% of the bottleneck's capacity)")
    parser.add_argument("--app", default=None,
                        help="application spec: built-in name or YAML/JSON path "
                             "(default: onlineboutique)")
    parser.add_argument("--seeds", type=positive_int, default=None,
                        help="number of evaluation seeds, from 1000 (default: the suite's)")
    parser.add_argument("--steps", type=positive_int, default=None,
                        help="episode length in 15 s steps (default: the suite's; a replay "
                             "at its own time scale lasts its window)")
    parser.add_argument("--hpa-sweep", type=_int_list, default=[],
                        help="HPA CPU targets in %% for the cost-vs-violations frontier, "
                             "e.g. 30,40,50,60,70,80,90")
    parser.add_argument("--dial-sweep", type=_dial_list, default=[],
                        help="dials in [0, 1] at which every gnnrl policy given without one "
                             "also runs (rows gnnrl@D): GNNRL's curve in frontier.csv, "
                             "e.g. 0,0.25,0.5,0.75,1")
    parser.add_argument("--learning-curves", nargs="*", default=[], metavar="CSV",
                        help="training logs (env_steps, return[, slo_violation_rate]) to chart")
    parser.add_argument("--out", required=True, help="output directory")
    parser.add_argument("--workers", type=positive_int, default=1,
                        help="processes running episodes in parallel (same results; "
                             "default: %(default)s)")
    parser.add_argument("--timing", choices=("ideal", "realistic"), default=None,
                        help="cluster timing: realistic = metrics lag and per-pod start-ups "
                             "(docs/simulator.md); default: realistic for --trace and the "
                             "real, stress and apps suites, ideal for default and quick")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def command_line(args: argparse.Namespace) -> str:
    """The command that reproduces this run (written into results.md and report.html)."""
    parts = ["gnnrl", "evaluate", "--policies", args.policies]
    if args.trace:
        parts += ["--trace", args.trace, "--topologies", args.topologies]
        for flag, value in (("--start", args.start), ("--duration", args.duration)):
            if value is not None:
                parts += [flag, value]
        if args.compress:
            parts.append("--compress")
    else:
        parts += ["--suite", args.suite or "default"]
    for flag, value in (("--peak-rps", args.peak_rps), ("--app", args.app),
                        ("--seeds", args.seeds), ("--steps", args.steps),
                        ("--timing", args.timing)):
        if value is not None:
            parts += [flag, str(value)]
    if args.hpa_sweep:
        parts += ["--hpa-sweep", ",".join(str(p) for p in args.hpa_sweep)]
    if args.dial_sweep:
        from gnnrl.core.agents.dial import dial_label

        parts += ["--dial-sweep", ",".join(dial_label(d) for d in args.dial_sweep)]
    if args.learning_curves:
        parts += ["--learning-curves", *args.learning_curves]
    parts += ["--out", args.out]
    return " ".join(shlex.quote(p) for p in parts)


def run(args: argparse.Namespace) -> int:
    from gnnrl.core.agents.ppo_gnn import ModelLoadError
    from gnnrl.evaluation.runner import evaluate
    from gnnrl.evaluation.scenarios import TOPOLOGIES, trace_suite
    from gnnrl.sim.spec import AppSpecError
    from gnnrl.sim.traces import TraceError

    import os

    fresh_out = not os.path.exists(args.out)
    try:
        policies = [p.strip() for p in args.policies.split(",") if p.strip()]
        if not policies:
            raise ConfigError("policies: at least one policy is needed")
        suite: Suite | str  # a suite built from --trace, or a suite's name
        if args.trace:
            topos = tuple(t.strip() for t in args.topologies.split(",") if t.strip())
            bad = [t for t in topos if t not in TOPOLOGIES]
            if bad:
                raise ConfigError(f"topologies: unknown {', '.join(bad)} (known: "
                                  f"{', '.join(TOPOLOGIES)})")
            suite = trace_suite(args.trace, seeds=args.seeds or 5, steps=args.steps,
                                peak_rps=args.peak_rps, topologies=topos, start=args.start,
                                duration=args.duration, compress=args.compress,
                                timing=args.timing or "realistic")
            first = suite.scenarios[0]
            how = "compressed" if first.compress else "at its own time scale"
            # a whole multi-week trace is a long run: say how long before it starts
            print(f"replaying {first.trace_label} {how}: {first.steps} steps of 15 s per "
                  "episode", file=sys.stderr)
        else:
            given = [f for f, v in (("--start", args.start), ("--duration", args.duration),
                                    ("--compress", args.compress)) if v]
            if given:
                raise ConfigError(f"{', '.join(given)}: only with --trace")
            suite = args.suite or "default"
        summary = evaluate(
            policies, suite, seeds=args.seeds, out_dir=args.out, app=args.app,
            hpa_sweep=args.hpa_sweep, steps=args.steps, peak_rps=args.peak_rps,
            learning_curves=args.learning_curves, progress=not args.no_progress,
            command=command_line(args), workers=args.workers, timing=args.timing,
            dial_sweep=args.dial_sweep,
        )
    except (ConfigError, AppSpecError, TraceError, FileNotFoundError, ValueError,
            ModelLoadError) as exc:
        print(f"gnnrl evaluate: error: {' '.join(str(exc).split())}", file=sys.stderr)
        if fresh_out:  # leave no empty --out behind (rmdir removes only an empty folder)
            try:
                os.rmdir(args.out)
            except OSError:
                pass
        return 2
    rules = ", rules.csv" if os.path.isfile(os.path.join(args.out, "rules.csv")) else ""
    print(f"{len(summary)} runs -> {args.out}/summary.csv, frontier.csv, matched.csv"
          f"{rules}, results.md, report.html")
    from gnnrl.evaluation.frontier import sweep_warnings

    for warning in sweep_warnings(summary):
        print(f"gnnrl evaluate: warning: {warning}", file=sys.stderr)
    return 0
