"""Graph-wide scale-up: size downstream services from the upstream's *offered* load.

Why. When a surge saturates a service (say the frontend of OnlineBoutique), the services it
calls see only what it manages to serve: their received requests/s, CPU and latency all
look calm, so every per-service rule (HPA, KEDA, the headroom rule, a learned per-service
policy alike) leaves them as they are. Once the saturated service has been scaled up, the
full load reaches them at once, and they back up in turn: the surge costs a second round
of violating intervals, one per level of the call graph. The call graph says what is coming:
the traffic a caller *receives* predicts what its callees will receive, in the same tick.

What it sees (all in the observation, so the in-cluster scaler has the same inputs: Kiali's
graph gives requests/s per service and per edge, the HPA formula column needs the pods'
CPU from metrics.k8s.io):

* per service: received req/s (``svc_df[:, 4]``), the HPA formula's desired replicas
  (``svc_df[:, 1]``), existing pods (``svc_df[:, 0]``);
* per edge: requests/s from caller to callee (``edge_df[:, 3]``).

Per tick:

1. For every edge, the calls per received request, ``ratio = edge qps / caller's received
   req/s``. A saturated caller serves less than it receives, so the observed ratio drops
   below the true calls-per-request; the rule keeps a slowly decaying maximum
   (``ratio_hat = max(observed, decay x ratio_hat)``) so a saturation does not erase it.
2. The *latent* load of each service, in topological order of the observed call graph:
   entry services' latent load is what they receive; a callee's is
   ``max(received, sum over callers of latent(caller) x ratio_hat)``.
3. Where the latent load exceeds what the service receives by more than ``trigger``
   (20 % by default: a caller upstream is throttling it), the service needs
   ``ceil(hpa_desired x latent / received)`` replicas: the HPA formula's answer scaled to
   the load that is coming (CPU per pod grows with the requests a pod serves). The wrapped
   policy's decision is raised to that, never lowered.

`GraphScaleUp` wraps any `Policy` (the GNN policy in the ``gnnrl+graph`` row); the move
limits (at most 7 pods a step, [min, max]) still apply through the moves' valid mask.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np

from gnnrl.baselines.base import reset_policy
from gnnrl.config import ConfigError, JsonConfig
from gnnrl.core.envs.moves import moves_to_replicas, replicas_to_moves


@dataclasses.dataclass
class GraphScaleUpConfig(JsonConfig):
    """Attributes:
        trigger: latent / received load ratio above which a service is scaled for the
            latent load (1.2 = 20 % more is coming than it receives).
        decay: per-interval decay of the remembered calls-per-request ratio of an edge
            (0.98: a real drop of the ratio is followed within ~1 min at 15 s intervals).
        min_rps: services receiving less than this (req/s) are left alone (noise).
    """

    trigger: float = 1.2
    decay: float = 0.98
    min_rps: float = 0.5

    def __post_init__(self) -> None:
        if not self.trigger >= 1.0:
            raise ConfigError(f"trigger: must be >= 1, got {self.trigger}")
        if not 0.0 < self.decay <= 1.0:
            raise ConfigError(f"decay: must be in (0, 1], got {self.decay}")
        if not self.min_rps >= 0.0:
            raise ConfigError(f"min_rps: must be >= 0, got {self.min_rps}")


def latent_load(received: np.ndarray, edges: list[tuple[int, int, float]],
                ratio_hat: dict[tuple[int, int], float]) -> np.ndarray:
    """Latent req/s per slot (step 2 of the module docstring).

    Args:
        received: (max_nodes,) received req/s per slot.
        edges: (src slot, dst slot, qps) of the observed edges.
        ratio_hat: remembered calls per received request, per (src, dst).

    Returns:
        (max_nodes,) req/s, >= ``received``. Services on a cycle keep their received load.
    """
    n = len(received)
    callers: dict[int, list[tuple[int, float]]] = {}
    indeg = np.zeros(n, dtype=np.int64)
    for s, d, _ in edges:
        callers.setdefault(d, []).append((s, ratio_hat.get((s, d), 0.0)))
        indeg[d] += 1
    latent = np.asarray(received, dtype=np.float64).copy()
    out: dict[int, list[int]] = {}
    for s, d, _ in edges:
        out.setdefault(s, []).append(d)
    ready = [i for i in range(n) if indeg[i] == 0]
    while ready:  # Kahn's order: every caller before its callees
        i = ready.pop()
        if i in callers:
            latent[i] = max(latent[i], sum(latent[s] * r for s, r in callers[i]))
        for d in out.get(i, ()):
            indeg[d] -= 1
            if indeg[d] == 0:
                ready.append(d)
    return latent


class GraphLoad:
    """The rule's state across ticks (remembered calls-per-request per edge, by service
    names) and its answer: `needed_replicas`. Used by `GraphScaleUp` in the simulator and by
    the in-cluster scaler on its own observation."""

    def __init__(self, config: GraphScaleUpConfig | None = None) -> None:
        self.config = config or GraphScaleUpConfig()
        self._ratio: dict[tuple[str, str], float] = {}

    def reset(self) -> None:
        self._ratio = {}

    def needed_replicas(self, obs: dict, names: list[str | None]) -> np.ndarray:
        """(max_nodes,) replicas the graph asks for (0 where it asks for nothing); updates
        the remembered edge ratios."""
        cfg = self.config
        svc = np.asarray(obs["svc_df"], dtype=np.float64)
        mask = np.asarray(obs["node_mask"], dtype=bool)
        received = np.where(mask, svc[:, 4], 0.0)
        edge_df = np.asarray(obs["edge_df"], dtype=np.float64)
        emask = np.asarray(obs["edge_mask"], dtype=bool)
        edges: list[tuple[int, int, float]] = []
        ratio_hat: dict[tuple[int, int], float] = {}
        seen: set[tuple[str, str]] = set()
        for row in edge_df[emask]:
            s, d, qps = int(row[0]), int(row[1]), float(row[3])
            if s == d or not (mask[s] and mask[d]) or names[s] is None or names[d] is None:
                continue
            key = (str(names[s]), str(names[d]))
            seen.add(key)
            observed = qps / received[s] if received[s] > cfg.min_rps else 0.0
            remembered = max(observed, cfg.decay * self._ratio.get(key, 0.0))
            self._ratio[key] = remembered
            ratio_hat[(s, d)] = remembered
            edges.append((s, d, qps))
        for key in [k for k in self._ratio if k not in seen]:
            del self._ratio[key]  # an edge that disappeared (a service removed)
        latent = latent_load(received, edges, ratio_hat)
        need = np.zeros(len(received), dtype=np.int64)
        for i in np.flatnonzero(mask & (received > cfg.min_rps)):
            if latent[i] > cfg.trigger * received[i]:
                need[i] = math.ceil(max(svc[i, 1], 1.0) * latent[i] / received[i] - 1e-9)
        return need


class GraphScaleUp:
    """Wrap ``inner`` (any `Policy`) with the graph-wide scale-up (module docstring).

    Args:
        inner: the policy whose decisions are raised where the graph says load is coming.
        config: `GraphScaleUpConfig`.
        name: the row label; default ``<inner>+graph``.
    """

    def __init__(self, inner: Any, config: GraphScaleUpConfig | None = None,
                 name: str | None = None) -> None:
        self.inner = inner
        self.graph = GraphLoad(config)
        self.name = name or f"{inner.name}+graph"
        self.supports_topology_change = getattr(inner, "supports_topology_change", True)
        self.use_graph = True
        #: slot names raised by the rule at the last step (for tests and logs)
        self.raised: list[str] = []

    def reset(self, env: Any, history_rps: Any = None) -> None:
        """A new episode; ``history_rps`` reaches the wrapped policy when it forecasts."""
        reset_policy(self.inner, env, history_rps)
        self.graph.reset()
        self.raised = []

    def act(self, obs: dict, info: dict) -> np.ndarray:
        """The inner policy's moves, raised where needed. Returns (max_nodes,) int64."""
        moves = np.asarray(self.inner.act(obs, info), dtype=np.int64)
        names = list(info["slot_names"])
        need = self.graph.needed_replicas(obs, names)
        current = np.asarray(obs["svc_df"][:, 0], dtype=np.int64)
        desired = np.asarray(moves_to_replicas(current, moves), dtype=np.int64)
        raise_to = np.maximum(desired, need)
        self.raised = [str(names[i]) for i in np.flatnonzero(raise_to > desired)]
        if not self.raised:
            return moves
        lo = np.asarray(info.get("min_replicas", np.ones_like(current)), dtype=np.int64)
        hi = np.asarray(info.get("max_replicas", raise_to), dtype=np.int64)
        raise_to = np.clip(raise_to, np.minimum(lo, current), np.maximum(hi, current))
        return np.asarray(replicas_to_moves(current, raise_to), dtype=np.int64)
