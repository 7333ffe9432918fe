"""Run the simulator with one policy and print a per-step table or a progress bar and a summary.

Examples:
  gnnrl simulate                                     # OnlineBoutique, diurnal trace, HPA at 70 %
  gnnrl simulate --trace flash --policy static --steps 120
  gnnrl simulate --policy random --peak-rps 150 --table
  gnnrl simulate --app my-app.yaml --trace trace.csv --policy hpa-50
  gnnrl simulate --topology add --policy gnnrl        # a service appears mid-episode
  gnnrl simulate --policy hpa --out run.csv           # per-step CSV for plotting
"""

from __future__ import annotations

import argparse
import math
import sys

import numpy as np
import pandas as pd

TOPOLOGIES = ("static", "add", "remove")


def positive_number(text: str) -> float:
    """An argparse type: a finite number > 0 (``nan``, ``inf`` and negatives refused)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"expected a finite number > 0, got {text!r}")
    return value


def positive_int(text: str) -> int:
    """An argparse type: an integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}")
    return value


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--app", default="onlineboutique",
                   help="built-in app name or app spec file (YAML/JSON) [onlineboutique]")
    p.add_argument("--trace", default="diurnal",
                   help="constant|diurnal|flash|ramp|fluctuating or a CSV/Parquet file "
                        "with t_s,rps [diurnal]")
    p.add_argument("--peak-rps", type=positive_number, default=100.0,
                   help="peak entry req/s of the trace [100]")
    p.add_argument("--steps", type=positive_int, default=240,
                   help="control intervals of 15 s [240]")
    p.add_argument("--policy", default="hpa",
                   help="static | random | hpa | hpa-NN | keda | oracle | gnnrl[:PATH] [hpa]")
    p.add_argument("--topology", choices=TOPOLOGIES, default="static",
                   help="add a reviewservice or remove adservice a third of the way in")
    p.add_argument("--goal", choices=("latency", "cost"), default="latency",
                   help="reward preset [latency]")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--table", action="store_true", help="print one line per step")
    p.add_argument("--out", help="write the per-step results to this CSV")


def _scenario(args, app):
    from gnnrl.sim import Scenario, TopologyEvent
    from gnnrl.sim.onlineboutique import reviewservice

    at = max(1, args.steps // 3)
    events: tuple = ()
    if args.topology == "add":
        svc, calls = reviewservice()
        caller = "productcatalogservice" if "productcatalogservice" in app.services \
            else app.service_names[-1]
        calls = [c.__class__(caller, c.dst, c.per_request) for c in calls]
        events = (TopologyEvent(step=at, kind="add", service=svc, calls=tuple(calls)),)
    elif args.topology == "remove":
        leaf = "adservice" if "adservice" in app.services else app.service_names[-1]
        events = (TopologyEvent(step=at, kind="remove", service_name=leaf),)
    return Scenario(f"{args.trace}/{args.topology}", args.trace, args.peak_rps, events)


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from gnnrl.config import ConfigError
    from gnnrl.core.agents.ppo_gnn import ModelLoadError
    from gnnrl.core.envs import OnlineBoutique
    from gnnrl.evaluation.policies import make_policy
    from gnnrl.sim import AppSpecError, TraceError, load_app_spec

    try:
        app = load_app_spec(args.app)
        env = OnlineBoutique(app=app, scenario=_scenario(args, app), max_steps=args.steps,
                             goal_reward=args.goal)
        policy = make_policy(args.policy)
        obs, info = env.reset(seed=args.seed)
    except (AppSpecError, TraceError, ConfigError, ValueError, FileNotFoundError,
            ModelLoadError) as exc:
        print(f"gnnrl simulate: error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 2
    policy.reset(env)
    rows = []
    interval = env.sim_config.interval_s
    bar = tqdm(total=args.steps, disable=args.table or not sys.stderr.isatty(),
               desc=f"simulate {policy.name}", unit="step")
    if args.table:
        print(f"{'step':>5} {'t_s':>6} {'rps':>7} {'pods':>5} {'p95_ms':>8} {'err':>6} "
              f"{'reward':>7}  events")
    for _ in range(args.steps):
        action = policy.act(obs, info)
        obs, reward, _, truncated, info = env.step(action)
        pods = int(np.sum(info["replicas"]))
        rows.append({"step": info["step"], "t_s": info["t_s"], "entry_rps": info["entry_rps"],
                     "pods": pods, "cost_cores": info["cost"], "e2e_p95_ms": info["e2e_p95_ms"],
                     "slo_violated": info["slo_violated"], "error_rate": info["error_rate"],
                     "reward": reward, "events": ";".join(info["topology_events"])})
        if args.table:
            print(f"{info['step']:5d} {info['t_s']:6.0f} {info['entry_rps']:7.1f} {pods:5d} "
                  f"{info['e2e_p95_ms']:8.1f} {info['error_rate']:6.3f} {reward:7.3f}  "
                  f"{' '.join(info['topology_events'])}")
        bar.update(1)
        bar.set_postfix(p95=f"{info['e2e_p95_ms']:.0f}ms", pods=pods)
        if truncated:
            break
    bar.close()
    df = pd.DataFrame(rows)
    if args.out:
        from gnnrl.config import atomic_write_text

        atomic_write_text(args.out, df.to_csv(index=False))
    hours = interval / 3600.0
    print(f"\npolicy {policy.name} on {app.name}, trace {args.trace} "
          f"(peak {args.peak_rps:g} req/s), topology {args.topology}, {len(df)} steps "
          f"of {interval:g} s, seed {args.seed}")
    print(f"  SLO violations : {int(df.slo_violated.sum())} steps "
          f"({df.slo_violated.mean():.1%}; SLO p95 <= {app.slo_p95_ms:g} ms)")
    print(f"  e2e p95        : mean {df.e2e_p95_ms.mean():.1f} ms, "
          f"worst {df.e2e_p95_ms.max():.1f} ms")
    print(f"  errors         : {df.error_rate.mean():.2%} of requests")
    print(f"  replica-hours  : {df.pods.sum() * hours:.2f}  "
          f"(CPU-core-hours requested {df.cost_cores.sum() * hours:.2f})")
    print(f"  return         : {df.reward.sum():.2f}")
    return 0
