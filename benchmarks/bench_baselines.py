"""Cost of the baseline policies' decisions, as a ratio of the environment step they drive.

Run:  python benchmarks/bench_baselines.py [--steps 240] [--repeats 3]

For each policy it runs one evaluation episode (diurnal trace, service added at 1/3)
and times ``policy.act`` and ``env.step`` separately; it prints the decision time per
step and its ratio to the environment step measured in the same run (the reference),
plus whole-episode throughput. A ratio well below 1 means the evaluation's wall time is
the simulator's, not the baselines'.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from gnnrl.core.envs import OnlineBoutique
from gnnrl.evaluation.policies import make_policy
from gnnrl.evaluation.scenarios import EvalScenario
from gnnrl.sim import load_app_spec


def time_episode(spec: str, steps: int, work_dir: str) -> tuple[float, float]:
    """(seconds in act per step, seconds in env.step per step) for one episode."""
    app = load_app_spec("onlineboutique")
    scen = EvalScenario("diurnal", "add", steps).to_sim_scenario(app, work_dir)
    policy = make_policy(spec)
    env = OnlineBoutique(app=app, scenario=scen, max_steps=steps,
                         use_graph=getattr(policy, "use_graph", True))
    obs, info = env.reset(seed=1000)
    policy.reset(env)
    t_act = t_env = 0.0
    for _ in range(steps):
        t0 = time.perf_counter()
        moves = np.asarray(policy.act(obs, info))
        t1 = time.perf_counter()
        obs, _, _, _, info = env.step(moves)
        t2 = time.perf_counter()
        t_act += t1 - t0
        t_env += t2 - t1
    return t_act / steps, t_env / steps


def main() -> None:
    import tempfile

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=240)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--policies", default="hpa,keda,static,random,oracle")
    args = ap.parse_args()
    print(f"{'policy':10s} {'act ms/step':>12s} {'env ms/step':>12s} {'act/env':>8s} "
          f"{'episodes/s':>11s}")
    with tempfile.TemporaryDirectory() as work:
        for spec in args.policies.split(","):
            runs = [time_episode(spec, args.steps, work) for _ in range(args.repeats)]
            act = statistics.median(r[0] for r in runs)
            env = statistics.median(r[1] for r in runs)
            print(f"{spec:10s} {act * 1e3:12.3f} {env * 1e3:12.3f} {act / env:8.2f} "
                  f"{1.0 / ((act + env) * args.steps):11.2f}")


if __name__ == "__main__":
    main()
