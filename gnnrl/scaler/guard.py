"""The safety guard: stabilise, rate-limit, cap the step and clamp a desired replica count.

A pure function of (desired, current, bounds, history, now): it decides, it never writes.
The stabilisation and rate limits are Kubernetes' HPA controller's
(pkg/controller/podautoscaler/horizontal.go, `stabilizeRecommendationWithBehaviors`,
`calculateScaleUpLimitWithScalingRules`, `calculateScaleDownLimitWithBehaviors`), reused
from the baseline port `gnnrl.baselines.hpa` so the fallback behaves exactly like the HPA:

* stabilisation: the recommendation is held between the *minimum* of the recommendations of
  the scale-up window and the *maximum* of those of the scale-down window, so a drop is only
  applied once every recommendation of the last `scale_down_window_s` agrees (S8);
* rate limits: scale-up at most max(`scale_up_pods`, `scale_up_percent` %) and scale-down
  at most max(`scale_down_pods`, `scale_down_percent` %) relative to the replicas at the start
  of the current `rate_period_s` (HPA `selectPolicy: Max`);
* a hard `max_step` per tick (the action space moves at most 7);
* finally [min, max]; a current count outside the bounds moves to the bound (S10).
"""

from __future__ import annotations

import dataclasses

from gnnrl.baselines.hpa import scale_down_limit, scale_up_limit, stabilize
from gnnrl.scaler.config import ScalerConfig, ServiceLimits


@dataclasses.dataclass
class ServiceHistory:
    """What the guard remembers about one Deployment.

    Attributes:
        recommendations: (t seconds, replicas) of every tick's recommendation, oldest first.
        scale_events: (t seconds, replicas delta) of every change that was really written.
    """

    recommendations: list[tuple[float, int]] = dataclasses.field(default_factory=list)
    scale_events: list[tuple[float, int]] = dataclasses.field(default_factory=list)

    def seeded(self) -> bool:
        return bool(self.recommendations)

    def record_recommendation(self, now: float, replicas: int, keep_s: float) -> None:
        """Append a recommendation and forget those older than `keep_s` seconds."""
        self.recommendations.append((now, int(replicas)))
        self.recommendations = [(t, r) for t, r in self.recommendations if now - t <= keep_s]

    def record_scale_event(self, now: float, delta: int, keep_s: float) -> None:
        """Record a written change of `delta` replicas (positive = up)."""
        self.scale_events.append((now, int(delta)))
        self.scale_events = [(t, d) for t, d in self.scale_events if now - t <= keep_s]


@dataclasses.dataclass(frozen=True)
class GuardOutcome:
    """The guarded replica count and why it differs from the raw desired count.

    Attributes:
        replicas: the count to write (== current means "no write").
        recommendation: the unguarded desired count to record in the history.
        reasons: short machine-readable tags ("stabilized", "rate_limited", "max_step",
            "clamped_min", "clamped_max", "below_min", "above_max").
    """

    replicas: int
    recommendation: int
    reasons: tuple[str, ...] = ()


def guard(desired: int, current: int, limits: ServiceLimits, history: ServiceHistory,
          now: float, cfg: ScalerConfig) -> GuardOutcome:
    """Turn a raw desired count into the count that may be written this tick.

    Args:
        desired: the decision (policy or HPA rule), replicas.
        current: the Deployment's `spec.replicas` from the scale subresource (>= 1; 0 is
            hands-off and never reaches the guard).
        limits: the service's [min, max].
        history: the service's recommendations and written changes (not modified here).
        now: seconds on the scaler's clock.

    Returns:
        GuardOutcome; `replicas` is always inside [min, max].
    """
    reasons: list[str] = []
    lo, hi = limits.min_replicas, limits.max_replicas
    if current < lo:  # HPA: below minReplicas -> minReplicas, whatever the metrics say.
        return GuardOutcome(lo, desired, ("below_min",))
    if current > hi:
        return GuardOutcome(hi, desired, ("above_max",))
    hpa = cfg.hpa()
    replicas = stabilize(current, desired, history.recommendations, now, hpa)
    if replicas != desired:
        reasons.append("stabilized")
    if replicas > current:
        up = [(t, d) for t, d in history.scale_events if d > 0]
        limit = max(scale_up_limit(current, up, now, hpa.scale_up), current)
        if replicas > limit:
            replicas = limit
            reasons.append("rate_limited")
    elif replicas < current:
        down = [(t, -d) for t, d in history.scale_events if d < 0]
        limit = min(scale_down_limit(current, down, now, hpa.scale_down), current)
        if replicas < limit:
            replicas = limit
            reasons.append("rate_limited")
    if abs(replicas - current) > cfg.max_step:
        replicas = current + cfg.max_step * (1 if replicas > current else -1)
        reasons.append("max_step")
    if replicas < lo:
        replicas = lo
        reasons.append("clamped_min")
    elif replicas > hi:
        replicas = hi
        reasons.append("clamped_max")
    return GuardOutcome(int(replicas), int(desired), tuple(reasons))


def history_keep_s(cfg: ScalerConfig) -> float:
    """How long histories must be kept for the windows and rate periods of `cfg`."""
    return max(cfg.scale_down_window_s, cfg.scale_up_window_s, cfg.rate_period_s)
