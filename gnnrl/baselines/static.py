"""Static provisioning: a fixed replica count per service for the whole episode.

The usual practice without an autoscaler: size every Deployment for the expected peak.
Here "peak" is computed, not guessed: the episode's maximum entry load
(``max(trace)``, read once at reset from `future_entry_rps`), propagated through the call
graph in force (`BatchedSim.propagate`) to each service's peak req/s, divided by the req/s
one pod serves at the HPA-70 operating point (70 % of its CPU request,
`rps_at_cpu_utilization`), rounded up and clamped to [min, max]. When the topology changes
(a service added or removed) the operator re-sizes the same way for the new graph.
A fixed count (``replicas=3``) or a per-service mapping is also accepted.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from gnnrl.baselines.base import (
    ReplicaTargetPolicy,
    rps_at_cpu_utilization,
    service_specs,
    unwrapped,
)
from gnnrl.config import ConfigError


def peak_replicas(peak_rps: Mapping[str, float], specs: Mapping[str, Any],
                  utilization: float) -> dict[str, int]:
    """Replicas per service for its peak req/s at ``utilization`` of the CPU request.

    Shapes: mappings service -> req/s, service -> ServiceSpec; returns service -> pods.
    """
    out = {}
    for name, rps in peak_rps.items():
        spec = specs[name]
        need = math.ceil(rps / rps_at_cpu_utilization(spec, utilization) - 1e-9)
        out[name] = int(min(max(need, spec.min_replicas), spec.max_replicas))
    return out


class StaticPolicy(ReplicaTargetPolicy):
    """Fixed replicas: ``replicas`` (int or mapping) or, by default, provisioned for peak.

    Args:
        replicas: None = provisioned for the episode's peak (see module docstring).
        utilization: CPU-request utilisation at peak used for the sizing (default 0.7).
    """

    def __init__(self, replicas: int | Mapping[str, int] | None = None,
                 utilization: float = 0.7, name: str = "static") -> None:
        if isinstance(replicas, int) and replicas < 0:
            raise ConfigError(f"replicas must be >= 0, got {replicas}")
        if not (0.0 < utilization <= 2.0):
            raise ConfigError(f"utilization must be in (0, 2], got {utilization}")
        self.replicas = replicas
        self.utilization = utilization
        self.name = name
        self._plan: dict[str, int] = {}
        self._peak_entry = 0.0

    def reset(self, env: Any) -> None:
        super().reset(env)
        base = unwrapped(env)
        self._specs = service_specs(env)
        if self.replicas is None:
            horizon = int(getattr(base, "max_steps", 240))
            self._peak_entry = float(np.max(base.future_entry_rps(horizon)))
        self._plan = self._size()

    def _size(self) -> dict[str, int]:
        if isinstance(self.replicas, int):
            return dict.fromkeys(self._specs, self.replicas)
        if isinstance(self.replicas, Mapping):
            return {k: int(v) for k, v in self.replicas.items()}
        sim = unwrapped(self.env).sim
        rates = sim.propagate(np.full(sim.n, self._peak_entry))[0]
        peak = {name: float(rates[sim.index[name]]) for name in sim.service_names}
        return peak_replicas(peak, self._specs, self.utilization)

    def desired_replicas(self, obs: dict, info: dict) -> np.ndarray:
        if info.get("topology_events") and self.replicas is None:
            self._plan = self._size()  # the operator re-sizes for the new graph
        current = np.asarray(info["replicas"], dtype=np.int64)
        return np.array(
            [current[i] if n is None else self._plan.get(n, current[i])
             for i, n in enumerate(info["slot_names"])],
            dtype=np.int64,
        )
