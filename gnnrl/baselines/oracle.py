"""A clairvoyant policy: the practical limit of replica-hours at a safe utilisation.

The oracle reads the trace ahead (`OnlineBoutique.future_entry_rps`), turns it into each
service's req/s with the simulator's own call-graph propagation (`BatchedSim.propagate`,
linear in the entry load, at the topology in force), and keeps every service at or below
a safe utilisation rho_safe of its pods' capacity:

    need[s, j] = ceil(rps[s, j] / (rho_safe * capacity_rps[s]))    for the interval j ahead
    replicas[s] = max(need[s, 0 .. L_s]),   L_s = ceil(startup_s[s] / interval_s)

so a pod is requested L_s intervals before it must serve (the simulator's start-up delay),
and released as soon as no interval within the start-up horizon needs it.

rho_safe is *calibrated*, not assumed: `calibrate_safe_utilization` runs the simulator at
steady load with every service at the same utilisation rho on a grid and returns the
largest rho whose end-to-end p95 stays within ``slo_margin`` (default 0.8) of the SLO.
In the simulator a pod is an M/M/1 queue fed an equal share of the load
(`gnnrl.sim.queueing`), so each hop's latency depends only on rho; the margin leaves room
for Poisson arrival noise and the transient of a step change. For the built-in
OnlineBoutique (SLO 250 ms) this gives rho_safe = 0.52 (printed by
``python -m gnnrl.baselines.oracle``).

What it does not know: topology events ahead (it adapts at the step they happen, like
everyone else) and the arrival noise of the coming interval.

``lookahead=False`` is its reactive twin (``oracle-now``): the same sizing of the load
*just served*, read exactly (no metrics lag, no noise, no estimation), and no look-ahead.
No policy that only sees the past can know more than it, so its frontier over ``rho``
(``oracle-now-NN``) bounds what a history-only policy can buy with better estimation
alone; what is left between it and the oracle is the price of not seeing the future.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from gnnrl.baselines.base import ReplicaTargetPolicy, interval_s, unwrapped
from gnnrl.config import ConfigError
from gnnrl.sim.core import BatchedSim, SimConfig
from gnnrl.sim.spec import AppSpec

#: Utilisation grid searched by `calibrate_safe_utilization`.
RHO_GRID = np.round(np.arange(0.20, 0.96, 0.01), 2)


def calibrate_safe_utilization(app: AppSpec, slo_margin: float = 0.8,
                               grid: np.ndarray = RHO_GRID) -> float:
    """Largest per-pod utilisation rho keeping the steady-state e2e p95 <= margin x SLO.

    Runs ``len(grid)`` copies of the simulator (no arrival or metric noise) at an entry
    load big enough that rounding replicas up changes rho by < 2 %, every service at
    ``ceil(rps / (rho * capacity))`` pods (bounds ignored: this measures the queueing
    model, not the app's limits), two steps, and reads ``e2e_p95_ms``.

    Returns:
        rho_safe in (0, 1); the grid's smallest value if none satisfies the bound.
    """
    if not (0.0 < slo_margin <= 1.0):
        raise ConfigError(f"slo_margin must be in (0, 1], got {slo_margin}")
    sim = BatchedSim(app, num_copies=len(grid),
                     config=SimConfig(arrival_noise=False, metric_noise=0.0), seed=0)
    unit = sim.propagate(np.ones(sim.n))[0]  # req/s per entry req/s
    used = unit > 0
    entry = 60.0 * float(np.min(sim.cap[used] / unit[used]))  # >= 60 pods everywhere
    rps = entry * unit
    pods = np.ceil(rps[None, :] / (grid[:, None] * sim.cap[None, :]) - 1e-9).astype(np.int64)
    pods = np.maximum(pods, 1)
    sim.reset(pods)
    sim.step(np.full(sim.n, entry), pods)  # two steps; the second one is read
    p95 = sim.step(np.full(sim.n, entry), pods).e2e_p95_ms
    ok = np.flatnonzero(p95 <= slo_margin * app.slo_p95_ms)
    return float(grid[ok.max()]) if len(ok) else float(grid[0])


class OraclePolicy(ReplicaTargetPolicy):
    """Clairvoyant minimum-replica policy (see the module docstring).

    Args:
        utilization: rho_safe; None = calibrated for the episode's application.
        slo_margin: share of the SLO the calibration aims for.
        lookahead: read the trace ahead (the oracle); False sizes for the true load of
            the interval just served instead (the reactive bound, ``oracle-now``).
    """

    def __init__(self, utilization: float | None = None, slo_margin: float = 0.8,
                 name: str = "oracle", lookahead: bool = True) -> None:
        if utilization is not None and not (0.0 < utilization < 1.0):
            raise ConfigError(f"utilization must be in (0, 1), got {utilization}")
        self.utilization = utilization
        self.slo_margin = slo_margin
        self.name = name
        self.lookahead = lookahead
        self._cache: dict[str, float] = {}

    def reset(self, env: Any) -> None:
        super().reset(env)
        sim = unwrapped(env).sim
        key = f"{sim.app.name}:{hash(repr(sim.app.to_dict()))}"
        if self.utilization is not None:
            self.rho = self.utilization
        else:
            if key not in self._cache:
                self._cache[key] = calibrate_safe_utilization(sim.app, self.slo_margin)
            self.rho = self._cache[key]
        dt = interval_s(env)
        self._lead = np.ceil(sim.startup / dt - 1e-9).astype(np.int64)  # (S,) steps

    def desired_replicas(self, obs: dict, info: dict) -> np.ndarray:
        base = unwrapped(self.env)
        sim = base.sim
        if self.lookahead:
            horizon = int(self._lead.max()) + 1
            future = np.asarray(base.future_entry_rps(horizon), dtype=float)
        else:  # one "interval ahead": the load just served, known exactly
            future = np.array([base.current_entry_rps()])
        if future.size == 0:
            return np.asarray(info["replicas"], dtype=np.int64)
        unit = sim.propagate(np.ones(sim.n))[0]  # (S,) at the topology in force
        rates = future[:, None] * unit[None, :]  # (k, S)
        need = np.ceil(rates / (self.rho * sim.cap[None, :]) - 1e-9)
        ahead = np.arange(len(future))[:, None] <= self._lead[None, :]
        want = np.where(ahead, need, 0).max(axis=0).astype(np.int64)  # (S,)
        current = np.asarray(info["replicas"], dtype=np.int64)
        return np.array(
            [current[i] if n is None else want[sim.index[n]]
             for i, n in enumerate(info["slot_names"])],
            dtype=np.int64,
        )


def _main() -> None:  # pragma: no cover - prints the calibrated number for the docs
    from gnnrl.sim import load_app_spec

    app = load_app_spec("onlineboutique")
    rho = calibrate_safe_utilization(app)
    print(f"{app.name}: rho_safe = {rho:.2f} (e2e p95 <= 0.8 x {app.slo_p95_ms:.0f} ms)")


if __name__ == "__main__":  # pragma: no cover
    _main()
