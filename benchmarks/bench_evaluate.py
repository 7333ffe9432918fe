"""Wall time of a real-traffic evaluation: many policies x seeds x a 12 h native window x apps.

Run:  python benchmarks/bench_evaluate.py [--duration 12h] [--seeds 2] [--workers 2]

The workload is the one a user runs to compare policies on real traffic: 10 policies
(HPA, HPA without behavior, KEDA, floor, predictive, panic, headroom, oracle, static and
the shipped GNNRL model behind the scaler's guard) x ``--seeds`` seeds x the WorldCup98
match-day window replayed at its own time scale (12 h = 2,880 steps of 15 s) x two
applications (OnlineBoutique and socialNetwork), through `gnnrl.evaluation.runner.evaluate`
exactly as ``gnnrl evaluate`` runs it (the runner always adds the clairvoyant oracle). The
reference, measured in the same run, is the same evaluation with the ``static`` policy
(and the oracle) alone, close to the simulator's own cost per episode: the printed ratio
says how much the policies add on top of stepping the simulator.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time

from gnnrl.evaluation.runner import evaluate
from gnnrl.evaluation.scenarios import EvalScenario, Suite, eval_seeds
from gnnrl.sim.trace_windows import EVAL_WINDOWS

POLICIES = ("hpa,hpa-nb,keda,floor,predictive,panic,headroom,oracle,static,gnnrl")
APPS = ("onlineboutique", "socialnetwork")


def suite(duration: str, seeds: int) -> Suite:
    window = next(w for w in EVAL_WINDOWS if w.name == "wc98-match-day")
    scen = tuple(EvalScenario(window.trace, "static", None, None, start=window.start,
                              duration=duration, app=app, label=window.name) for app in APPS)
    return Suite("bench", scen, eval_seeds(seeds))


def timed(policies: str, duration: str, seeds: int, workers: int) -> tuple[float, int]:
    """(seconds, environment steps) of one evaluation."""
    the_suite = suite(duration, seeds)
    with tempfile.TemporaryDirectory() as out:
        t0 = time.perf_counter()
        summary = evaluate(policies.split(","), the_suite, out_dir=out, progress=False,
                           report=False, workers=workers)
        wall = time.perf_counter() - t0
    per_episode = the_suite.scenarios[0].steps or 0
    return wall, len(summary) * per_episode  # one summary row per episode


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--duration", default="12h", help="window length (default: %(default)s)")
    ap.add_argument("--seeds", type=int, default=2, help="seeds (default: %(default)s)")
    ap.add_argument("--workers", type=int, default=2, help="processes (default: %(default)s)")
    ap.add_argument("--json", action="store_true", help="last line: one JSON object")
    args = ap.parse_args()
    ref_s, ref_steps = timed("static", args.duration, args.seeds, args.workers)
    wall, steps = timed(POLICIES, args.duration, args.seeds, args.workers)
    n = len(POLICIES.split(","))
    print(f"evaluation: {n} policies (+ the oracle) x {args.seeds} seeds x {len(APPS)} apps x "
          f"{args.duration} native window = {steps:,} env steps")
    print(f"  wall {wall:.1f} s ({steps / wall:,.0f} env steps/s) on {args.workers} workers")
    print(f"  reference (static policy alone, same run): {ref_s:.1f} s "
          f"({ref_steps / ref_s:,.0f} env steps/s)")
    print(f"  cost per step vs the reference: {(wall / steps) / (ref_s / ref_steps):.2f}x")
    if args.json:
        print(json.dumps({"eval_wall_s": round(wall, 2), "eval_env_steps": steps,
                          "eval_env_steps_per_s": round(steps / wall, 1),
                          "static_env_steps_per_s": round(ref_steps / ref_s, 1)}))


if __name__ == "__main__":
    main()
