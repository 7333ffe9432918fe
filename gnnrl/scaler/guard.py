"""The safety guard: stabilise, rate-limit, cap the step and clamp a desired replica count.

A pure function of (desired, current, bounds, history, now): it decides, it never writes.
The stabilisation, rate limits and bounds are the HPA controller's own
(`gnnrl.hpa.behavior.normalize`, a port of kubernetes/kubernetes
pkg/controller/podautoscaler/horizontal.go), configured by the scaler's nested
`HPAConfig`, so the guard and the HPA-rule fallback behave exactly like the HPA:

* stabilisation: the current count is kept between the lowest recommendation of the
  scale-up window and the highest of the scale-down window, so a drop is applied only once
  every recommendation of the last scale-down window agrees (S8), and the count never moves
  against what the decision asks for;
* rate limits: each `behavior` policy measures from the count at the start of its period
  (the scale events of both directions within it);
* a hard `max_step` per tick (the action space moves at most 7);
* finally [min, max]; a current count outside the bounds moves to the bound (S10);
* for a *model's* decision only (`ScalerConfig.model_guard`,
  `gnnrl.hpa.model_guard`): its own, shorter scale-down window, and no scale-down while
  the last scale-up is recent ("delayed_after_scale_up"). The HPA-rule fallback follows the
  HPA object alone.

The history is the HPA's per-target memory (`TargetHistory`, here `ServiceHistory`).
"""

from __future__ import annotations

import dataclasses

from gnnrl.hpa.behavior import TargetHistory
from gnnrl.hpa.behavior import guard as hpa_guard
from gnnrl.hpa.model_guard import guard_model
from gnnrl.scaler.config import ScalerConfig, ServiceLimits

#: What the guard remembers about one Deployment: the HPA's per-target history.
ServiceHistory = TargetHistory


@dataclasses.dataclass(frozen=True)
class GuardOutcome:
    """The guarded replica count and why it differs from the raw desired count.

    Attributes:
        replicas: the count to write (== current means "no write").
        recommendation: the unguarded desired count to record in the history.
        reasons: short machine-readable tags ("stabilized", "rate_limited", "max_step",
            "clamped_min", "clamped_max", "below_min", "above_max",
            "delayed_after_scale_up").
    """

    replicas: int
    recommendation: int
    reasons: tuple[str, ...] = ()


def guard(desired: int, current: int, limits: ServiceLimits, history: TargetHistory,
          now: float, cfg: ScalerConfig, model: bool = False) -> GuardOutcome:
    """Turn a raw desired count into the count that may be written this tick.

    Args:
        desired: the decision (policy or HPA rule), replicas.
        current: the Deployment's `spec.replicas` from the scale subresource (>= 1; 0 is
            hands-off and never reaches the guard).
        limits: the service's [min, max].
        history: the service's recommendations and written changes (not modified here).
        now: seconds on the scaler's clock.
        model: the decision is the model's (its guard, `cfg.model_guard`), not the rule's.

    Returns:
        GuardOutcome; `replicas` is always inside [min, max].
    """
    if model:
        out = guard_model(desired, current, limits.min_replicas, limits.max_replicas, history,
                          now, cfg.hpa, cfg.model_guard, cfg.max_step)
    else:
        out = hpa_guard(desired, current, limits.min_replicas, limits.max_replicas, history,
                        now, cfg.hpa, cfg.max_step)
    return GuardOutcome(int(out.replicas), int(desired), out.reasons)


def history_keep_s(cfg: ScalerConfig) -> float:
    """How long histories must be kept for the windows, rate periods and the model's
    delay after a scale-up of `cfg`."""
    return cfg.model_guard.history_keep_s(cfg.hpa)
