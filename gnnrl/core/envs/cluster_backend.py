"""`ClusterBackend`: a real cluster behind `OnlineBoutique(k8s=True)`.

It drives a `gnnrl.core.envs.k8s_backend.K8sBackend` (or anything with its ``observe()``
and ``apply(desired)``): the observation is the one builder's observation of the merged
Kiali/Prometheus + Kubernetes snapshot (`observation_from_snapshot`), at the snapshot's
own time of day; an action becomes each service's desired replica count, written through
the Deployments' scale subresource. `K8sBackend.apply` returns after its waiting period,
so the control interval has passed when `advance` is called.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from gnnrl.core.envs.backend import EpisodeSettings
from gnnrl.core.envs.dynamic_graph_space import DynamicGraphSpace
from gnnrl.core.envs.moves import moves_to_replicas, validated_moves
from gnnrl.core.envs.obs_extras import LoadHistory
from gnnrl.core.envs.observation import observation_from_snapshot
from gnnrl.sim.spec import AppSpec


class ClusterBackend:
    """One namespace of a real cluster (see the module docstring).

    Args:
        cluster: a `K8sBackend` (``observe() -> GraphSnapshot``,
            ``apply({service: replicas}) -> {service: ScaleOutcome}``).
        app: the application spec (services, bounds, CPU requests, SLO, entry).
        graph_space: the env's slot mapping (updated from each snapshot).
        history: the env's load history (trend features).
        settings: the env's dial (a real cluster's time of day is the snapshot's).
        hpa_target: CPU utilisation target of the ``desired_replicas`` feature.

    Raises:
        ValueError: no `cluster` given (the message says what to pass).
        TypeError: `cluster` has no ``observe()`` or ``apply()``.
    """

    def __init__(self, cluster: Any, app: AppSpec, graph_space: DynamicGraphSpace,
                 history: LoadHistory, settings: EpisodeSettings, hpa_target: float) -> None:
        if cluster is None:
            raise ValueError(
                "k8s=True needs backend=gnnrl.core.envs.k8s_backend.K8sBackend(namespace, "
                "graph_source, k8s_source) (see README, 'Real cluster')")
        for method in ("observe", "apply"):
            if not callable(getattr(cluster, method, None)):
                raise TypeError(f"backend: {type(cluster).__name__} has no {method}()")
        self.cluster = cluster
        self.app = app
        self.graph_space = graph_space
        self.history = history
        self.settings = settings
        self.hpa_target = hpa_target
        # the reward's cost_min: the app spec's floor (the cluster's services are its own)
        self.cost_min = sum(s.min_replicas * s.cpu_request_m
                            for s in app.services.values()) / 1000.0
        self._obs: dict[str, np.ndarray] | None = None
        self._per_slot: dict[str, np.ndarray] = {}

    def reset(self, rng: np.random.Generator) -> None:
        """Nothing to draw or restart: the cluster runs on (the episode counts from here)."""

    def apply_scale(self, action: np.ndarray, t: int) -> dict[str, Any]:
        """Each mapped service's desired replicas (current + the move) through
        `K8sBackend.apply`; returns ``invalid_actions`` and ``scale_outcomes``."""
        assert self._obs is not None, "call reset() first"
        moves, invalid = validated_moves(action, self._obs["invalid_action_mask"])
        current = self._per_slot["replicas"]
        desired = {name: int(moves_to_replicas(current[slot], moves[slot]))
                   for slot, name in enumerate(self.graph_space.slot_names())
                   if name is not None}
        return {"invalid_actions": invalid, "scale_outcomes": self.cluster.apply(desired)}

    def advance(self, t: int) -> None:
        """Nothing: `K8sBackend.apply` returned after the waiting period."""

    def observe_state(self, t: int) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        before = set(self.graph_space.node_mapping)
        snap = self.cluster.observe()
        ts = snap.ts
        tod = ts.hour * 3600.0 + ts.minute * 60.0 + ts.second
        obs, per_slot = observation_from_snapshot(snap, self.graph_space, self.app,
                                                  self.hpa_target, self.settings.context(tod),
                                                  self.history)
        after = set(self.graph_space.node_mapping)
        events = [f"add {n}" for n in sorted(after - before)] + \
            [f"remove {n}" for n in sorted(before - after)]
        inbound = snap.edges[snap.edges["target"] == self.app.entry]
        qps = inbound["qps"].fillna(0.0).to_numpy(float)
        p95 = float(np.nan_to_num(inbound["p95_ms"].max(), nan=0.0)) if len(inbound) else 0.0
        err = float((inbound["err_rate"].fillna(0.0).to_numpy(float) * qps).sum()
                    / max(qps.sum(), 1e-9))
        cost = float((per_slot["replicas"] * per_slot["cpu_request_m"]).sum() / 1000.0)
        self._obs, self._per_slot = obs, per_slot
        info = {"slot_names": self.graph_space.slot_names(), **per_slot,
                "e2e_p95_ms": p95, "slo_p95_ms": self.app.slo_p95_ms,
                "slo_violated": bool(p95 > self.app.slo_p95_ms), "error_rate": err,
                "cost": cost, "entry_rps": float(qps.sum()), "invalid_actions": 0,
                "topology_events": events, "t_s": float(snap.ts.timestamp()), "step": t,
                "scenario": "k8s", "skipped_nodes": dict(snap.skipped)}
        return obs, info

    def render(self) -> str | None:
        """None: the cluster's own dashboards show it."""
        return None
