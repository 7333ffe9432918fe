"""The Kubernetes Horizontal Pod Autoscaler (autoscaling/v2) as a baseline policy.

`HPAPolicy` drives one HPA object per service of the `OnlineBoutique` environment through
the `Policy` protocol (docs/internals.md), with the port of the upstream controller in
`gnnrl.hpa` (calculator, behaviour, per-target state), so that "beats HPA" means beating
the real algorithm. Two shapes of HPA object are offered:

* ``hpa`` / ``hpa-NN``: an HPA with the `behavior` field at its documented defaults
  (https://kubernetes.io/docs/tasks/run-application/horizontal-pod-autoscale/#default-behavior):
  scale-up window 0 s and "+100 % or +4 pods per 15 s, whichever is larger"; scale-down
  window 300 s and "-100 % per 15 s"; tolerance 0.1; sync period 15 s. This is what "HPA"
  means in our results.
* ``hpa-nb`` / ``hpa-nb-NN``: an HPA written without `behavior` (the shortest manifest):
  scale-up at most max(2 x current, 4) per sync, scale-down after the controller's 300 s
  window, not rate-limited.

A second metric can be added: ``+rps`` adds a `Pods` metric "requests per second" with an
averageValue target at the same operating point as the CPU target (the req/s at which one
pod uses that fraction of its CPU request), and the controller takes the larger
recommendation (`combine_metrics`), as KEDA-style users configure it.

The names of the port are re-exported here for existing imports.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from gnnrl.baselines.base import rps_at_cpu_utilization, service_specs
from gnnrl.core.envs.moves import moves_to_replicas, replicas_to_moves
from gnnrl.hpa import (
    HPAConfig,
    HPAController,
    HPADecision,
    MissingRequestError,
    NoMetricsError,
    PodSample,
    ScalingPolicy,
    ScalingRules,
    TargetHistory,
    Tolerances,
    combine_metrics,
    normalize,
    pods_from_aggregate,
    pods_metric_replicas,
    resource_replicas,
    scale_down_limit,
    scale_up_limit,
    stabilize,
)

#: the calculator's CPU entry point under its historical name
hpa_recommendation = resource_replicas

__all__ = [
    "HPAConfig", "HPAController", "HPADecision", "HPAPolicy", "MissingRequestError",
    "NoMetricsError", "PodSample", "ScalingPolicy", "ScalingRules", "TargetHistory",
    "Tolerances", "hpa_recommendation", "normalize", "pods_from_aggregate",
    "scale_down_limit", "scale_up_limit", "stabilize",
]


# -------------------------------------------------------------------------------------- policy


class HPAPolicy:
    """The HPA as a `Policy` for the `OnlineBoutique` environment (one HPA per service).

    It sees what a real HPA sees: each service's CPU over the interval that just ended
    (``info["cpu_m"]``), its ready pods and its CPU request (and, with a req/s metric, the
    service's received requests/s ``info["rps_in"]``), and syncs every
    ``config.sync_period_s`` of simulated time (``info["t_s"]``). Its decisions are turned
    into moves with `replicas_to_moves` (at most 7 replicas a step, the action space's
    limit; the scale event records what was really written).

    Args:
        target: CPU target as a fraction of the request (overrides the config's); None =
            keep ``config.target_utilization``.
        config: the HPA object (`HPAConfig`); default autoscaling/v2's defaults.
        name: the row label; default ``hpa``/``hpa-NN`` (``hpa-nb...`` without behavior,
            ``...+rps`` with the req/s metric).
        rps_utilization: add a `Pods` req/s metric whose per-pod target is the load at
            which one pod uses this fraction of its CPU request (per service); None = none,
            unless ``config.target_rps_per_pod`` sets one target for every service.
    """

    def __init__(self, target: float | None = 0.7, config: HPAConfig | None = None,
                 name: str | None = None, rps_utilization: float | None = None) -> None:
        cfg = config or HPAConfig()
        if target is not None:
            cfg = cfg.replace(target_utilization=target)
        self.config = cfg
        self.rps_utilization = rps_utilization
        self.name = name or _default_name(cfg, rps_utilization)
        self._now = 0.0
        self._last_sync: float | None = None
        #: simulated times (s) at which the controller synced this episode
        self.sync_times: list[float] = []
        self._prev_ready: dict[str, int] = {}
        self._rps_targets: dict[str, float] = {}
        self.controller = HPAController(self.config, clock=lambda: self._now)

    def reset(self, env: Any) -> None:
        """Start an episode: fresh history (a new HPA object), nothing synced yet."""
        self._now = 0.0
        self._last_sync = None
        self.sync_times = []
        self._prev_ready = {}
        self.controller = HPAController(self.config, clock=lambda: self._now)
        self._rps_targets = {}
        if self.rps_utilization is not None and env is not None:
            self._rps_targets = {name: rps_at_cpu_utilization(spec, self.rps_utilization)
                                 for name, spec in service_specs(env).items()}

    def act(self, obs: dict, info: dict) -> np.ndarray:
        """Moves for every slot, shape (max_nodes,) int64 in 0..14 (0 = nothing)."""
        names = info["slot_names"]
        current = np.asarray(info["replicas"], dtype=np.int64)
        self._now = float(info.get("t_s", 0.0))
        due = self._last_sync is None or (
            self._now - self._last_sync >= self.config.sync_period_s - 1e-9
        )
        desired = current.copy()
        if due:
            self._last_sync = self._now
            self.sync_times.append(self._now)
            desired = self._desired(names, current, info)
        self._prev_ready = {n: int(info["ready_replicas"][i])
                            for i, n in enumerate(names) if n is not None}
        moves = np.asarray(replicas_to_moves(current, desired), dtype=np.int64)
        if due:
            written = np.asarray(moves_to_replicas(current, moves))
            for i, name in enumerate(names):
                if name is not None and written[i] != desired[i]:
                    self.controller.record_written(name, int(current[i]), int(written[i]))
        return moves

    def _desired(self, names: Sequence[str | None], current: np.ndarray, info: dict
                 ) -> np.ndarray:
        live = set(names)
        for key in self.controller.keys:
            if key not in live:  # the service was removed: its HPA object is deleted too
                self.controller.forget(key)
        desired = current.copy()
        for i, name in enumerate(names):
            if name is None:
                continue
            decision = self.controller.decide(
                name, int(current[i]), self._recommend(i, int(current[i]), info),
                int(info["min_replicas"][i]), int(info["max_replicas"][i]),
            )
            desired[i] = decision.replicas
        return desired

    def _recommend(self, i: int, current: int, info: dict) -> int | None:
        """The metrics' combined recommendation for slot ``i`` (None = no rescale)."""
        proposals: list[int | None] = []
        if self.config.target_utilization is not None:
            proposals.append(self._cpu_proposal(i, current, info))
        rps_target = self._rps_target(info["slot_names"][i])
        if rps_target is not None:
            ready = int(info["ready_replicas"][i])
            # a Pods metric ignores readiness (only Pending pods are unready), so the
            # service's req/s is spread over every ready pod
            pods = pods_from_aggregate(current, ready, float(info["rps_in"][i]), None)
            try:
                proposals.append(pods_metric_replicas(current, pods, rps_target,
                                                      self.config.tolerances))
            except NoMetricsError:
                proposals.append(None)
        return combine_metrics(current, proposals)

    def _cpu_proposal(self, i: int, current: int, info: dict) -> int | None:
        name = info["slot_names"][i]
        ready = int(info["ready_replicas"][i])
        pods = pods_from_aggregate(
            current, ready, float(info["cpu_m"][i]), float(info["cpu_request_m"][i]),
            settled=min(ready, self._prev_ready.get(name, ready)),
        )
        try:
            return resource_replicas(current, pods, float(self.config.target_utilization or 0),
                                     self.config.tolerances)
        except NoMetricsError:
            return None

    def _rps_target(self, name: str) -> float | None:
        if self.rps_utilization is not None:
            return self._rps_targets.get(name)
        return self.config.target_rps_per_pod


def _default_name(cfg: HPAConfig, rps_utilization: float | None) -> str:
    base = "hpa" if cfg.behavior else "hpa-nb"
    if cfg.target_utilization is not None:
        pct = round(cfg.target_utilization * 100)
        base = base if pct == 70 else f"{base}-{pct}"
    return base + ("+rps" if rps_utilization is not None or cfg.target_rps_per_pod else "")

