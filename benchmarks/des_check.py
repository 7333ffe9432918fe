"""Check the fluid queueing model against a discrete-event simulation of the same network.

Run:  python benchmarks/des_check.py            (about a minute on 2 cores)

Prints, for a 3-service network (a -> b x2, b -> c, a -> c x0.5) from idle to overload,
the end-to-end mean and p95 latency of both models and the fluid model's relative error,
then the per-step mean latency during an overload (backlog growth), where the fluid
backlog term takes over from the stationary M/M/1 term.
"""

from __future__ import annotations

import numpy as np

from gnnrl.sim import load_app_spec
from gnnrl.sim.des import compare, run_des, run_fluid

APP = {
    "name": "chain", "entry": "a", "slo_p95_ms": 200,
    "services": {s: {"cpu_request_m": 100, "mem_request_mi": 64, "capacity_rps": 100,
                     "service_time_ms": 2, "startup_s": 10, "timeout_ms": 60_000}
                 for s in "abc"},
    "calls": [{"from": "a", "to": "b", "per_request": 2},
              {"from": "b", "to": "c", "per_request": 1},
              {"from": "a", "to": "c", "per_request": 0.5}],
}
REPLICAS = {"a": 2, "b": 3, "c": 4}  # a saturates at 200 req/s, b at 150, c at 160


def main() -> None:
    app = load_app_spec(APP)
    print("steady state (constant load, 8 intervals of 15 s, first dropped)")
    print(f"{'entry':>6} {'rho_max':>7} {'DES mean':>9} {'fluid':>7} {'err':>6} "
          f"{'DES p95':>8} {'fluid':>7} {'err':>6}")
    for rps in (10, 40, 70, 100, 120, 135):
        r = compare(app, REPLICAS, rps, steps=8)
        rho = max(rps / 200, 2 * rps / 300, 2.5 * rps / 400)
        print(f"{rps:6.0f} {rho:7.2f} {r['des_mean_ms']:9.1f} {r['fluid_mean_ms']:7.1f} "
              f"{r['mean_err']:+6.1%} {r['des_p95_ms']:8.1f} {r['fluid_p95_ms']:7.1f} "
              f"{r['p95_err']:+6.1%}")
    print("\noverload: b at 110 % of capacity (165 req/s at the entry), per-interval mean ms")
    des = run_des(app, REPLICAS, 82.5 * 2, 6, seed=1, warmup_steps=0)
    fmean, _ = run_fluid(app, REPLICAS, 165.0, 6)
    for k in range(6):
        print(f"  interval {k}: DES {des.per_step_mean_ms[k]:9.1f}   fluid {fmean[k]:9.1f}")
    print("\n(the fluid model charges a request the *average* backlog of its interval; the "
          "DES sees the backlog grow within it)")
    np.set_printoptions(precision=1)


if __name__ == "__main__":
    main()
