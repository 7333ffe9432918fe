"""What every policy implements, and helpers shared by the rule-based baselines.

The `Policy` protocol (docs/internals.md) is the only thing the evaluation runner and the
scaler know about a policy. Rule-based baselines decide *replica counts* per service;
`ReplicaTargetPolicy` turns those into the environment's moves (0 nothing, 1..7 add,
8..14 remove; at most 7 replicas a step).
"""

from __future__ import annotations

import abc
import inspect
from typing import Any, Protocol, runtime_checkable

import numpy as np

from gnnrl.sim.spec import ServiceSpec


@runtime_checkable
class Policy(Protocol):
    """A scaling policy for the `OnlineBoutique` environment.

    Attributes:
        name: the row label in evaluation results.
    """

    name: str

    def reset(self, env: Any) -> None:
        """Start of an episode (``env`` is the environment about to be stepped)."""

    def act(self, obs: dict, info: dict) -> np.ndarray:
        """Moves for every slot. Shapes: returns (max_nodes,) int64 in 0..14."""


def reset_policy(policy: Any, env: Any, history_rps: Any = None) -> None:
    """``policy.reset(env)``; a policy that forecasts from history (its ``reset`` takes
    ``history_rps``) also gets ``history_rps`` (the entry req/s before the episode, or
    None when the traffic has no past)."""
    if "history_rps" in inspect.signature(policy.reset).parameters:
        policy.reset(env, history_rps=history_rps)
    else:
        policy.reset(env)


def unwrapped(env: Any) -> Any:
    """The innermost environment (Gymnasium wrappers expose `.unwrapped`)."""
    return getattr(env, "unwrapped", env)


def service_specs(env: Any) -> dict[str, ServiceSpec]:
    """Every service that can exist in this episode (services added by events included).

    The simulator runs the scenario's *universe* (the app plus every added service), so
    its spec is the complete list.
    """
    base = unwrapped(env)
    sim = getattr(base, "sim", None)
    app = getattr(sim, "app", None) or base.app
    return dict(app.services)


def interval_s(env: Any) -> float:
    """Seconds per environment step."""
    sim = getattr(unwrapped(env), "sim", None)
    return float(sim.config.interval_s) if sim is not None else 15.0




def rps_at_cpu_utilization(spec: ServiceSpec, utilization: float) -> float:
    """Req/s at which one pod uses ``utilization`` of its CPU *request*.

    CPU per pod = idle + rps x CPU per request (the simulator's resource model), so this
    is the load a CPU-target HPA at ``utilization`` aims for; KEDA and static policies use
    it to run at the same operating point as HPA and differ only in what they watch.
    """
    assert spec.idle_cpu_m is not None  # filled in by ServiceSpec.__post_init__
    busy = utilization * spec.cpu_request_m - float(spec.idle_cpu_m)
    return max(busy, 1e-6) / spec.cpu_per_request_m


class ReplicaTargetPolicy(abc.ABC):
    """A policy that decides a replica count per service; `act` converts it to moves.

    Subclasses implement `desired_replicas`; the result is clamped to each service's
    [min, max] (so no move is ever invalid) and left alone for empty slots.
    """

    name: str = "replica-target"

    def reset(self, env: Any) -> None:
        self.env = env

    @abc.abstractmethod
    def desired_replicas(self, obs: dict, info: dict) -> np.ndarray:
        """Target replicas per slot. Shapes: (max_nodes,) int64."""

    def act(self, obs: dict, info: dict) -> np.ndarray:
        from gnnrl.core.envs.moves import replicas_to_moves

        current = np.asarray(info["replicas"], dtype=np.int64)
        desired = np.asarray(self.desired_replicas(obs, info), dtype=np.int64)
        active = np.array([n is not None for n in info["slot_names"]])
        lo = np.asarray(info["min_replicas"], dtype=np.int64)
        hi = np.asarray(info["max_replicas"], dtype=np.int64)
        desired = np.where(active, np.clip(desired, lo, hi), current)
        return replicas_to_moves(current, desired)
