"""A discrete-event simulation (simpy) of the *same* network, to check the fluid model.

Every request is simulated: Poisson arrivals at the entry; at each service it is routed to
one of the ready pods uniformly at random (kube-proxy's random backend choice), waits FCFS
for that pod, is served for an exponential time with mean ``1 / capacity_rps``, spends the
fixed ``service_time_ms``, then calls each callee ``per_request`` times *sequentially*
(integer part always, fractional part with that probability) and answers when they have.

`gnnrl.sim.queueing` approximates exactly this system; `compare` runs both at a fixed load
and reports how close the mean and p95 of the end-to-end latency come. ``simpy`` is a
development dependency (``pip install -e .[dev]``).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from gnnrl.sim.core import BatchedSim, SimConfig
from gnnrl.sim.spec import AppSpec


@dataclasses.dataclass
class DESResult:
    """Latencies (ms) of requests that *arrived* in each control interval, pooled."""

    mean_ms: float
    p95_ms: float
    per_step_mean_ms: np.ndarray  # (steps,)
    completed: int


def run_des(app: AppSpec, replicas: dict[str, int], entry_rps: float, steps: int,
            interval_s: float = 15.0, seed: int = 0, warmup_steps: int = 1) -> DESResult:
    """Simulate `steps` intervals at a constant `entry_rps` with fixed `replicas`."""
    import simpy

    rng = np.random.default_rng(seed)
    env = simpy.Environment()
    pods = {s: [simpy.Resource(env, capacity=1) for _ in range(max(replicas[s], 0))]
            for s in app.services}
    callees: dict[str, list[tuple[str, float]]] = {s: [] for s in app.services}
    for c in app.calls:
        if c.src in app.services:
            callees[c.src].append((c.dst, c.per_request))
    lat: list[tuple[float, float]] = []  # (arrival time, latency s)

    def visit(service: str):
        spec = app.services[service]
        pool = pods[service]
        pod = pool[int(rng.integers(len(pool)))]
        with pod.request() as req:
            yield req
            yield env.timeout(rng.exponential(1.0 / spec.capacity_rps))
        yield env.timeout(spec.service_time_ms / 1000.0)
        for dst, n in callees[service]:
            k = int(n) + (1 if rng.random() < n - int(n) else 0)
            for _ in range(k):
                yield env.process(visit(dst))

    def request():
        t0 = env.now
        yield env.process(visit(app.entry))
        lat.append((t0, env.now - t0))

    def source():
        while True:
            yield env.timeout(rng.exponential(1.0 / entry_rps))
            env.process(request())

    env.process(source())
    horizon = steps * interval_s
    env.run(until=horizon + 30.0)  # let the last arrivals finish
    arr = np.array([x for x in lat if warmup_steps * interval_s <= x[0] < horizon])
    if len(arr) == 0:
        return DESResult(float("nan"), float("nan"), np.full(steps, np.nan), 0)
    step_of = (arr[:, 0] // interval_s).astype(int)
    per_step = np.array([arr[step_of == k, 1].mean() * 1000 if (step_of == k).any() else np.nan
                         for k in range(steps)])
    return DESResult(float(arr[:, 1].mean() * 1000), float(np.percentile(arr[:, 1], 95) * 1000),
                     per_step, len(arr))


def run_fluid(app: AppSpec, replicas: dict[str, int], entry_rps: float, steps: int,
              interval_s: float = 15.0) -> tuple[np.ndarray, np.ndarray]:
    """The fluid model at the same load: per-step (e2e mean ms, e2e p95 ms), shape (steps,)."""
    sim = BatchedSim(app, 1, SimConfig(interval_s=interval_s, arrival_noise=False,
                                       metric_noise=0.0))
    sim.reset(np.array([[replicas[s] for s in sim.service_names]]))
    means, p95s = [], []
    for _ in range(steps):
        m = sim.step(np.array([entry_rps]))
        means.append(m.e2e_mean_ms[0])
        p95s.append(m.e2e_p95_ms[0])
    return np.array(means), np.array(p95s)


def compare(app: AppSpec, replicas: dict[str, int], entry_rps: float, steps: int = 8,
            seed: int = 0) -> dict[str, float]:
    """Both models at one load; relative errors of the fluid model's steady mean and p95."""
    des = run_des(app, replicas, entry_rps, steps, seed=seed)
    mean, p95 = run_fluid(app, replicas, entry_rps, steps)
    fm, fp = float(mean[1:].mean()), float(p95[1:].mean())
    return {"entry_rps": entry_rps, "des_mean_ms": des.mean_ms, "fluid_mean_ms": fm,
            "des_p95_ms": des.p95_ms, "fluid_p95_ms": fp,
            "mean_err": fm / des.mean_ms - 1.0, "p95_err": fp / des.p95_ms - 1.0,
            "requests": des.completed}
