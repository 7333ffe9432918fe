"""Simulator and environment speed, printed beside CartPole measured in the same run.

Run:  python benchmarks/bench_env.py [--copies 256] [--seconds 2]

Measures, on one thread:
  1. CartPole-v1 steps/s through the Gymnasium API (the reference);
  2. OnlineBoutique steps/s through the Gymnasium API (dict observation, 20 slots / 400 edges);
  3. the batched core's env-steps/s for N copies: state update only;
  4. the same including the full padded observations for all N copies.
Goals (issue #2): (2) within 5x of CartPole's step time; (3) >= 1M/s; (4) >= 250k/s.
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

import gymnasium as gym  # noqa: E402
import numpy as np  # noqa: E402

from gnnrl.core.envs import OnlineBoutique  # noqa: E402
from gnnrl.core.envs.observation import build_observations  # noqa: E402
from gnnrl.sim import BatchedSim, load_app_spec  # noqa: E402


def rate(fn, seconds: float) -> float:
    """Calls of fn() per second over about `seconds` (after a short warm-up)."""
    for _ in range(10):
        fn()
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        for _ in range(50):
            fn()
        n += 50
    return n / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--copies", type=int, default=256)
    ap.add_argument("--seconds", type=float, default=2.0)
    args = ap.parse_args()

    cart = gym.make("CartPole-v1")
    cart.reset(seed=0)

    def cart_step():
        _, _, term, trunc, _ = cart.step(cart.action_space.sample())
        if term or trunc:
            cart.reset()

    env = OnlineBoutique(max_steps=200_000)
    env.reset(seed=0)
    noop = np.zeros(env.action_space.shape, dtype=np.int64)

    app = load_app_spec("onlineboutique")
    n = args.copies
    sim = BatchedSim(app, n, seed=0)
    sim.reset()
    rps = np.linspace(20, 120, n)
    slot = np.tile(np.arange(sim.num_services), (n, 1))
    eslot = np.tile(np.arange(len(sim.edges)), (n, 1))
    last = {"m": sim.step(rps)}

    def batch_state():
        last["m"] = sim.step(rps)

    def batch_full():
        m = sim.step(rps)
        build_observations(m, sim, slot, eslot, 20, 400)

    r_cart = rate(cart_step, args.seconds)
    r_env = rate(lambda: env.step(noop), args.seconds)
    r_state = rate(batch_state, args.seconds) * n
    r_full = rate(batch_full, args.seconds) * n
    print(f"CartPole-v1 (Gymnasium API)          {r_cart:12,.0f} steps/s   "
          f"{1e6 / r_cart:8.1f} us/step   (reference)")
    print(f"OnlineBoutique (Gymnasium API)       {r_env:12,.0f} steps/s   "
          f"{1e6 / r_env:8.1f} us/step   {r_cart / r_env:6.1f}x CartPole's step time")
    print(f"batched core, {n} copies, state only {r_state:12,.0f} env-steps/s "
          f"{r_state / r_cart:6.1f}x CartPole's steps/s")
    print(f"batched core, {n} copies, + full obs {r_full:12,.0f} env-steps/s "
          f"{r_full / r_cart:6.1f}x CartPole's steps/s")


if __name__ == "__main__":
    main()
