"""Simulator and environment speed, printed beside CartPole measured in the same run.

Run:  python benchmarks/bench_env.py [--copies 256] [--seconds 2]

Measures, on one thread:
  1. CartPole-v1 steps/s through the Gymnasium API (the reference);
  2. OnlineBoutique steps/s through the Gymnasium API (dict observation, 20 slots / 400 edges);
  3. the batched core's env-steps/s for N copies: state update only (fixed replicas, as the
     goal is stated), and with scaling actions every step (pods pending, as in training);
  4. the same including the full padded observations for all N copies (the observation
     layout cached, as `BatchedEnvPool` does between topology changes; and rebuilt);
  5. `BatchedEnvPool.step` for N copies (actions, rewards, observations and per-copy infos).
Goals: (2) within 5x of CartPole's step time; (3) state only >= 2M/s; (4) >= 500k/s.
Rows marked "numpy" run the vectorised reference implementation (``backend="numpy"``)
measured in the same run, so the speed-up of the compiled kernels is printed beside them.

The machine may be shared: the workloads are measured in interleaved rounds and each keeps
its best round (as `timeit` does), so a burst of load from elsewhere hits all of them alike
and a round that was descheduled does not count. ``--clock cpu`` times with the process's
CPU time instead of elapsed time (on a loaded machine elapsed time includes waiting for the
core).
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

import gymnasium as gym
import numpy as np

from gnnrl.core.envs import OnlineBoutique
from gnnrl.core.envs.obs_extras import BatchedContext, BatchedLoadHistory
from gnnrl.core.envs.observation import build_observations, observation_layout
from gnnrl.core.envs.vector import BatchedEnvPool
from gnnrl.sim import BatchedSim, load_app_spec


def best_rates(workloads: dict, seconds: float, rounds: int = 5,
               clock=time.perf_counter) -> dict[str, float]:
    """Calls/s of each workload: the best of `rounds` interleaved rounds of ~seconds/rounds,
    timed with `clock`."""
    for fn in workloads.values():  # warm-up
        for _ in range(10):
            fn()
    best = dict.fromkeys(workloads, 0.0)
    per_round = seconds / rounds
    for _ in range(rounds):
        for name, fn in workloads.items():
            n, t0 = 0, clock()
            while clock() - t0 < per_round:
                for _ in range(10):
                    fn()
                n += 10
            best[name] = max(best[name], n / (clock() - t0))
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--copies", type=int, default=256)
    ap.add_argument("--seconds", type=float, default=2.0,
                    help="measuring time per workload (split into 5 interleaved rounds)")
    ap.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                    help="wall: elapsed time; cpu: this process's CPU time (on a shared, "
                         "loaded machine: what the work costs one core, without the time "
                         "spent waiting for it)")
    args = ap.parse_args()

    cart = gym.make("CartPole-v1")
    cart.reset(seed=0)

    def cart_step():
        _, _, term, trunc, _ = cart.step(cart.action_space.sample())
        if term or trunc:
            cart.reset()

    env = OnlineBoutique(max_steps=200_000)
    env.reset(seed=0)
    env_np = OnlineBoutique(max_steps=200_000, sim_backend="numpy")
    env_np.reset(seed=0)
    noop = np.zeros(env.action_space.shape, dtype=np.int64)

    app = load_app_spec("onlineboutique")
    n = args.copies
    sim = BatchedSim(app, n, seed=0)
    sim.reset()
    sim_np = BatchedSim(app, n, seed=0, backend="numpy")
    sim_np.reset()
    rps = np.linspace(20, 120, n)
    slot = np.tile(np.arange(sim.num_services), (n, 1))
    eslot = np.tile(np.arange(len(sim.edges)), (n, 1))
    layout = observation_layout(sim, slot, eslot, sim.active, 20, 400)
    # schema v2 included: the per-copy context and the load history of the trends (as
    # `gnnrl benchmark env --json` measures them)
    context = BatchedContext(sim.app.slo_p95_ms, 15.0, np.full(n, 0.5), np.zeros(n))
    history = {b: BatchedLoadHistory(n, sim.num_services) for b in ("numba", "numpy")}
    # scaling: cycle through targets that move every service up or down by 1..2 pods
    rng = np.random.default_rng(0)
    lo, hi = sim.min_replicas, sim.max_replicas
    targets = [np.clip(lo + 2 + rng.integers(-2, 3, (n, sim.num_services)), lo, hi)
               for _ in range(16)]
    k = {"i": 0}

    def batch_scaling():
        k["i"] = (k["i"] + 1) % len(targets)
        sim.step(rps, targets[k["i"]])

    pool = BatchedEnvPool(n, run_seed=0, max_steps=200_000)
    pool.reset()
    pool_noop = np.zeros((n, 20), dtype=np.int64)

    rates = best_rates({
        "cart": cart_step,
        "env": lambda: env.step(noop),
        "env_numpy": lambda: env_np.step(noop),
        "state": lambda: sim.step(rps),
        "state_numpy": lambda: sim_np.step(rps),
        "scaling": batch_scaling,
        "full": lambda: build_observations(sim.step(rps), sim, slot, eslot, 20, 400,
                                           layout=layout, context=context,
                                           history=history["numba"]),
        "full_numpy": lambda: build_observations(sim_np.step(rps), sim_np, slot, eslot, 20,
                                                 400, layout=layout, backend="numpy",
                                                 context=context, history=history["numpy"]),
        "full_rebuilt": lambda: build_observations(sim.step(rps), sim, slot, eslot, 20, 400,
                                                   context=context, history=history["numba"]),
        "pool": lambda: pool.step(pool_noop),
    }, args.seconds, clock=time.process_time if args.clock == "cpu" else time.perf_counter)
    print(f"clock: {args.clock}")
    r_cart = rates["cart"]
    print(f"CartPole-v1 (Gymnasium API)          {r_cart:12,.0f} steps/s   "
          f"{1e6 / r_cart:8.1f} us/step   (reference)")
    for key, label in (("env", "OnlineBoutique (Gymnasium API)"),
                       ("env_numpy", "  the same, numpy reference")):
        r_env = rates[key]
        print(f"{label:36s} {r_env:12,.0f} steps/s   "
              f"{1e6 / r_env:8.1f} us/step   {r_cart / r_env:6.1f}x CartPole's step time")
    for key, label in (("state", "state only"), ("state_numpy", "state only, numpy"),
                       ("scaling", "state, scaling"), ("full", "+ full obs"),
                       ("full_numpy", "+ full obs, numpy"),
                       ("full_rebuilt", "+ obs, layout rebuilt"),
                       ("pool", "BatchedEnvPool.step")):
        r = rates[key] * n
        print(f"batched, {n} copies, {label:21s} {r:12,.0f} env-steps/s "
              f"{r / r_cart:6.1f}x CartPole's steps/s")


if __name__ == "__main__":
    main()
