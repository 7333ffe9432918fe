"""HPA above a peak-sized floor: ``minReplicas`` set from the application's nominal peak.

A common production practice next to an HPA: size every HorizontalPodAutoscaler's
``minReplicas`` (the bound the controller never goes below, Kubernetes documentation,
https://kubernetes.io/docs/tasks/run-application/horizontal-pod-autoscale/) for a share
of the expected peak and let the HPA scale above it. The floor removes what a reactive
HPA cannot fix, the first interval of a jump, at the price of pods idle in the trough.

Per service s:

    peak_s  = peak_rps x (req/s of s per entry req/s)       call graph in force
    floor_s = ceil(peak_s / rps_at_cpu_utilization(s, floor_utilization))   in [min, max]
    replicas_s = max(floor_s, HPA's decision)

``floor_utilization`` (default 1.1 = 110 % of the CPU request at the peak) is the knob:
below 1 the floor alone carries the peak at a safe operating point (static provisioning),
far above 1 the floor vanishes and the rule is the HPA. The HPA is the real port
(`HPAPolicy`, CPU target 70 % by default, autoscaling/v2's default behaviour) with its
``minReplicas`` raised to the floor, which is how an operator writes this rule: the
controller clamps its stabilised, rate-limited recommendation to [minReplicas,
maxReplicas] and moves a target below ``minReplicas`` up to it at once ("BelowMin").

What it sees: everything the HPA sees (each service's CPU over the last interval, its
ready pods, its CPU request; `HPAPolicy`), plus the application's nominal peak entry load,
``peak_rps``, exactly as the headroom rule gets it (`gnnrl.baselines.headroom`): the
scenario's ``peak_rps`` in the simulator (what the trace is scaled to), the measured peak
in a cluster. It is the traffic's envelope, not its timing. Per-service peaks come from
the call graph in force (`BatchedSim.propagate`; in a cluster, the per-service rates the
pipeline's collection measured), re-sized when a service is added or removed.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from gnnrl.baselines.base import rps_at_cpu_utilization, service_specs, unwrapped
from gnnrl.baselines.hpa import HPAConfig, HPAPolicy
from gnnrl.config import ConfigError
from gnnrl.sim.spec import ServiceSpec

#: Default floor operating point: 110 % of the CPU request at the nominal peak.
DEFAULT_FLOOR_UTILIZATION = 1.1


def floor_replicas(peak_rps: float, spec: ServiceSpec, utilization: float) -> int:
    """Pods one service needs for ``peak_rps`` (its own req/s at the app's peak) with
    each pod at ``utilization`` of its CPU request, clamped to [min, max]."""
    need = math.ceil(max(peak_rps, 0.0) / rps_at_cpu_utilization(spec, utilization) - 1e-9)
    return int(min(max(need, spec.min_replicas), spec.max_replicas))


class FloorPolicy(HPAPolicy):
    """An HPA whose ``minReplicas`` is each service's peak floor (see the module docstring).

    Args:
        floor_utilization: CPU-request utilisation at the peak that sizes the floor, in
            (0, 2] (1.1 = 110 %).
        target: the HPA's CPU target (fraction of the request).
        config: the HPA object (default autoscaling/v2's defaults).
        peak_rps: the application's peak entry load, req/s; None = the scenario's.
        name: the row label; default ``floor`` (``floor-NN`` off the default).
    """

    def __init__(self, floor_utilization: float = DEFAULT_FLOOR_UTILIZATION,
                 target: float | None = 0.7, config: HPAConfig | None = None,
                 peak_rps: float | None = None, name: str | None = None) -> None:
        if not (0.0 < floor_utilization <= 2.0):
            raise ConfigError(f"floor_utilization: must be in (0, 2] (of the CPU request), "
                              f"got {floor_utilization}")
        if peak_rps is not None and not (peak_rps > 0 and math.isfinite(peak_rps)):
            raise ConfigError(f"peak_rps: must be > 0, got {peak_rps}")
        pct = round(floor_utilization * 100)
        default = "floor" if pct == round(DEFAULT_FLOOR_UTILIZATION * 100) else f"floor-{pct}"
        super().__init__(target=target, config=config, name=name or default)
        self.floor_utilization = floor_utilization
        self.peak_rps_override = peak_rps
        self.peak_rps = 0.0
        #: service -> floor (pods) for the topology in force
        self.floors: dict[str, int] = {}

    def reset(self, env: Any) -> None:
        super().reset(env)
        self.env = env
        base = unwrapped(env)
        self.peak_rps = self.peak_rps_override or float(base.scenario.peak_rps)
        self.floors = self._size()

    def _size(self) -> dict[str, int]:
        """Floors per service at the topology in force (inactive services: their min)."""
        sim = unwrapped(self.env).sim
        rates = sim.propagate(np.full(sim.n, self.peak_rps))[0]  # (S,) req/s at the peak
        specs = service_specs(self.env)
        return {name: floor_replicas(float(rates[sim.index[name]]), specs[name],
                                     self.floor_utilization)
                for name in sim.service_names}

    def act(self, obs: dict, info: dict) -> np.ndarray:
        """The HPA's moves with ``minReplicas`` raised to the floors. Shapes: (max_nodes,)."""
        if info.get("topology_events"):
            self.floors = self._size()  # the operator re-sizes for the new graph
        lo = np.asarray(info["min_replicas"], dtype=np.int64)
        floors = np.array([lo[i] if n is None else max(int(lo[i]), self.floors.get(n, 0))
                           for i, n in enumerate(info["slot_names"])], dtype=np.int64)
        return super().act(obs, {**info, "min_replicas": floors})
