"""A policy behind the in-cluster scaler's guard: what ``gnnrl scaler`` actually deploys.

The scaler never writes a model's raw decision: every tick it passes each service's
desired count through the guard (`gnnrl.hpa.model_guard.guard_model`: Kubernetes HPA's
stabilisation windows, rate limits and bounds with the model's shorter scale-down window,
the 7-pod step cap, and no scale-down soon after a scale-up) and records the
recommendation and the written change in the service's history exactly as
`gnnrl.scaler.loop` does (a service seen for the first time seeds its history with its
current count, so nothing scales down in the first window: S15). Evaluating the bare
policy would therefore score something no cluster runs. `GuardedPolicy` replays that path
in the simulator, with the same code and the scaler's `hpa` and `max_step` settings, so the
``gnnrl`` row of the results is the product as deployed; ``gnnrl-raw`` keeps the bare
policy for comparison.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from gnnrl.baselines.graph_scaleup import GraphScaleUp
from gnnrl.core.envs.moves import MAX_STEP, moves_to_replicas, replicas_to_moves
from gnnrl.hpa import HPAConfig, TargetHistory
from gnnrl.hpa.model_guard import ModelGuardConfig, guard_model_and_record


class GuardedPolicy:
    """Wrap ``inner`` (any `Policy`) with the scaler's guard.

    Args:
        inner: the policy whose moves are the raw decisions.
        hpa: the scaler's `hpa` setting (stabilisation, rate limits); default
            `HPAConfig()`, i.e. what ``gnnrl scaler`` runs without a config file.
        max_step: the scaler's `max_step` (default 7, the action space's limit).
        name: the row label; default the inner policy's.
        model_guard: the scaler's `model_guard` (the model's scale-down window and delay
            after a scale-up); default `ModelGuardConfig()`, the scaler's default;
            `ModelGuardConfig.hpa_only()` is the HPA object alone.
    """

    def __init__(self, inner: Any, hpa: HPAConfig | None = None, max_step: int = MAX_STEP,
                 name: str | None = None, model_guard: ModelGuardConfig | None = None
                 ) -> None:
        self.inner = inner
        self.hpa = hpa or HPAConfig()
        self.model_guard = model_guard or ModelGuardConfig()
        self.max_step = int(max_step)
        self.name = name or inner.name
        self.supports_topology_change = getattr(inner, "supports_topology_change", True)
        self.use_graph = getattr(inner, "use_graph", True)
        self._history: dict[str, TargetHistory] = {}

    def reset(self, env: Any) -> None:
        self.inner.reset(env)
        self._history = {}

    def act(self, obs: dict, info: dict) -> np.ndarray:
        """The inner policy's moves after the guard. Shapes: returns (max_nodes,) int64."""
        raw = np.asarray(self.inner.act(obs, info), dtype=np.int64)
        current = np.asarray(info["replicas"], dtype=np.int64)
        desired = np.asarray(moves_to_replicas(current, raw), dtype=np.int64)
        names = info["slot_names"]
        now = float(info.get("t_s", 0.0))
        for gone in set(self._history) - set(names):  # a removed service's history goes
            del self._history[gone]
        final = current.copy()
        for i, name in enumerate(names):
            if name is None:
                continue
            history = self._history.setdefault(name, TargetHistory())
            outcome = guard_model_and_record(history, int(desired[i]), int(current[i]),
                                             int(info["min_replicas"][i]),
                                             int(info["max_replicas"][i]), now, self.hpa,
                                             self.model_guard, self.max_step)
            final[i] = outcome.replicas
        return np.asarray(replicas_to_moves(current, final), dtype=np.int64)


def as_deployed(policy: Any, name: str | None = None,
                model_guard: ModelGuardConfig | None = None) -> GuardedPolicy:
    """``policy`` as the in-cluster scaler runs a model at its defaults: the graph-wide
    scale-up on its decisions (`ScalerConfig.graph_scaleup`), then the guard (with
    ``model_guard`` instead of the scaler's default one, when given)."""
    return GuardedPolicy(GraphScaleUp(policy), name=name or policy.name,
                         model_guard=model_guard)
