"""Decide: the desired replicas of each service, from the policy or from the HPA rule.

Pure functions of an observation; nothing here talks to Kubernetes.

* `hpa_rule` is the HorizontalPodAutoscaler's CPU replica calculation
  (`gnnrl.hpa.calculator.resource_replicas`, a port of replica_calculator.go
  `GetResourceReplicas`;
  https://kubernetes.io/docs/tasks/run-application/horizontal-pod-autoscale/#algorithm-details):
  missing pods count as max(100 %, target) of the request on a scale-down and 0 % on a
  scale-up, unready
  pods as 0 % on a scale-up, and if that rebalancing would reverse the direction of the
  change or land within the tolerance, the current count is kept (S6). With no metrics at
  all nothing can be computed (S7).
* `policy_desired` runs the model on the padded observation, at the operator's dial
  (written into a copy: `gnnrl.core.agents.dial.with_dial`), and converts its moves into
  replica counts, refusing NaN or out-of-space outputs (S5).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np

from gnnrl.contracts.moves import MAX_STEP, NUM_MOVES
from gnnrl.contracts.observation import DEFAULT_DIAL
from gnnrl.core.agents.dial import with_dial
from gnnrl.hpa.calculator import NoMetricsError, PodSample, resource_replicas
from gnnrl.hpa.config import HPAConfig


@dataclasses.dataclass(frozen=True)
class RuleDecision:
    """`replicas` is None when nothing can be computed (the caller holds, S7)."""

    replicas: int | None
    reason: str


def hpa_rule(current: int, pods: Sequence[PodSample], hpa: HPAConfig) -> RuleDecision:
    """The HPA CPU-utilisation rule for one Deployment (`gnnrl.hpa`).

    Args:
        current: the Deployment's current `spec.replicas` (>= 1).
        pods: its pods (`PodSample`).
        hpa: the HPA object: its CPU target (fraction of the request) and tolerances.

    Returns:
        RuleDecision(replicas, reason); reason "no_metrics" (replicas None) when no ready
        pod has a metric or a pod has no CPU request, else "computed".
    """
    try:
        return RuleDecision(resource_replicas(current, pods, hpa.target_utilization or 0.7,
                                              hpa.tolerances), "computed")
    except NoMetricsError:
        return RuleDecision(None, "no_metrics")


class ServingModel(Protocol):
    """What the scaler needs from a model (PPO_GNN implements it).

    `act(obs, deterministic=True)` returns moves of shape (max_nodes,), ints in 0..14.
    """

    def act(self, obs: dict[str, Any], deterministic: bool = True) -> Any: ...


class PolicyOutputError(ValueError):
    """The policy returned something outside the action space (NaN, wrong shape, bad move)."""


def moves_from_output(raw: Any, max_nodes: int) -> np.ndarray:
    """Validate a policy output and return it as moves.

    Shapes:
        raw: (max_nodes,) (a leading batch axis of 1 is accepted) -> (max_nodes,) int64.

    Raises:
        PolicyOutputError: non-numeric, non-finite, non-integer, wrong shape or a move
            outside 0..14.
    """
    if hasattr(raw, "detach"):
        raw = raw.detach().cpu().numpy()
    try:
        arr = np.asarray(raw, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise PolicyOutputError(f"policy output is not numeric: {exc}") from exc
    if arr.ndim == 2 and arr.shape[0] == 1:
        arr = arr[0]
    if arr.shape != (max_nodes,):
        raise PolicyOutputError(f"policy output shape {arr.shape}, expected ({max_nodes},)")
    if not np.isfinite(arr).all():
        raise PolicyOutputError("policy output contains NaN or inf")
    if (arr != np.round(arr)).any() or arr.min() < 0 or arr.max() >= NUM_MOVES:
        raise PolicyOutputError(f"policy output outside the action space 0..{NUM_MOVES - 1}")
    return arr.astype(np.int64)


def move_delta(move: int) -> int:
    """Replica change of one move: 0 -> 0, 1..7 -> +k, 8..14 -> -(k-7)."""
    return move if move <= MAX_STEP else -(move - MAX_STEP)


def policy_desired(policy: ServingModel, obs: dict[str, Any], slot_names: Sequence[str | None],
                   current: dict[str, int], dial: float = DEFAULT_DIAL) -> dict[str, int]:
    """Desired replicas of every observed service from one deterministic policy step.

    Args:
        obs: the padded observation (same layout as training); not changed.
        slot_names: service name of each slot (None for empty slots), length max_nodes.
        current: current replicas of the services in `slot_names`.
        dial: the operator's preference (`ScalerConfig.dial`), written into a copy of
            ``obs["global_feats"]`` the model sees.

    Returns:
        service -> desired replicas (current + move delta, at least 0; the guard clamps).

    Raises:
        PolicyOutputError: the output is not in the action space (S5).
    """
    moves = moves_from_output(policy.act(with_dial(obs, dial), deterministic=True),
                              len(slot_names))
    out: dict[str, int] = {}
    for slot, name in enumerate(slot_names):
        if name is None or name not in current:
            continue
        out[name] = max(0, current[name] + move_delta(int(moves[slot])))
    return out
