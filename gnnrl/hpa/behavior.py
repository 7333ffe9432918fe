"""The HPA controller's behaviour: stabilisation, rate limits, min/max, per-target state.

A port of kubernetes/kubernetes pkg/controller/podautoscaler/horizontal.go:

* `normalize` is `normalizeDesiredReplicasWithBehaviors` (an HPA with a `behavior`) or
  `normalizeDesiredReplicas` (an HPA without one), chosen by `HPAConfig.behavior`;
* `stabilize` is `stabilizeRecommendationWithBehaviors`: the count is kept between the
  lowest recommendation of the scale-up window and the highest of the scale-down window
  (both including the new one), so it never moves against what the metric asks for;
* `scale_up_limit` / `scale_down_limit` are `calculateScaleUpLimitWithScalingRules` /
  `calculateScaleDownLimitWithBehaviors`: each policy measures from the count at the start
  of its period, ``current - added + removed`` over the scale events of *both* directions
  within the period;
* `TargetHistory` is the controller's per-target memory (`recommendations`,
  `scaleUpEvents`, `scaleDownEvents`), and `HPAController` the part of
  `reconcileAutoscaler` around them (the initial recommendation, hands off at 0 replicas,
  a target outside [min, max] moved to the bound, no rescale without metrics).

Everything here is a pure function of (desired, current, bounds, history, now, config)
except `TargetHistory`'s record methods and `HPAController`, which hold the state. The
in-cluster scaler's guard and the evaluation's guarded row use the same functions.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable, Sequence

from gnnrl.hpa.calculator import NoMetricsError, PodSample, resource_replicas
from gnnrl.hpa.config import HPAConfig, ScalingRules

#: horizontal.go, HPAs without `behavior`: "do not scale up too much to prevent incorrect
#: rapid increase of the number of master replicas caused by bogus CPU usage report"
SCALE_UP_LIMIT_FACTOR = 2.0
SCALE_UP_LIMIT_MINIMUM = 4.0


@dataclasses.dataclass
class TargetHistory:
    """What the controller remembers about one target.

    Attributes:
        recommendations: (t s, replicas) of the metric's recommendations, oldest first.
        scale_events: (t s, signed change) of every change really written (+ up, - down).
    """

    recommendations: list[tuple[float, int]] = dataclasses.field(default_factory=list)
    scale_events: list[tuple[float, int]] = dataclasses.field(default_factory=list)

    def seeded(self) -> bool:
        return bool(self.recommendations)

    def record_recommendation(self, now: float, replicas: int, keep_s: float) -> None:
        """Append a recommendation; forget those older than ``keep_s`` seconds."""
        self.recommendations.append((float(now), int(replicas)))
        self.recommendations = [(t, r) for t, r in self.recommendations if now - t <= keep_s]

    def record_scale_event(self, now: float, delta: int, keep_s: float) -> None:
        """Record a written change of ``delta`` replicas (positive = up)."""
        if delta:
            self.scale_events.append((float(now), int(delta)))
        self.scale_events = [(t, d) for t, d in self.scale_events if now - t <= keep_s]

    def correct_last_event(self, now: float, delta: int) -> None:
        """Replace the change recorded at ``now`` by what was really written."""
        if self.scale_events and self.scale_events[-1][0] == float(now):
            self.scale_events.pop()
        if delta:
            self.scale_events.append((float(now), int(delta)))


# ------------------------------------------------------------------------------ stabilise


def stabilize(current: int, desired: int, recommendations: Sequence[tuple[float, int]],
              now: float, config: HPAConfig) -> int:
    """The stabilised recommendation (without recording ``desired``).

    With `behavior`: ``current`` clamped to [min of the scale-up window, max of the
    scale-down window], each window including ``desired`` (a recommendation counts when
    it is strictly newer than the window's cutoff, `rec.timestamp.After(cutoff)`).
    Without: the highest recommendation of the controller's downscale window, ``desired``
    included (one-sided; a recommendation exactly at the cutoff counts).

    Args:
        recommendations: (timestamp s, desired replicas) of earlier syncs.
        now: the current time (s, same clock as the timestamps).
    """
    if not config.behavior:
        cutoff = now - config.downscale_stabilization_s
        return max([desired] + [r for t, r in recommendations if t >= cutoff])
    up_cut, down_cut = now - config.up_window_s, now - config.down_window_s
    up_rec = down_rec = desired
    for t, r in recommendations:
        if t > up_cut:
            up_rec = min(up_rec, r)
        if t > down_cut:
            down_rec = max(down_rec, r)
    return min(max(current, up_rec), down_rec)


# ---------------------------------------------------------------------------- rate limits


def change_in_period(events: Sequence[tuple[float, int]], period_s: float, now: float
                     ) -> tuple[int, int]:
    """`getReplicasChangePerPeriod` for both directions: (added, removed) by events
    strictly newer than ``now - period_s``."""
    cutoff = now - period_s
    added = sum(d for t, d in events if t > cutoff and d > 0)
    removed = sum(-d for t, d in events if t > cutoff and d < 0)
    return added, removed


def scale_up_limit(current: int, events: Sequence[tuple[float, int]], now: float,
                   rules: ScalingRules) -> int:
    """The most replicas the scale-up policies allow now.

    Each policy measures from the count at the start of its period,
    ``current - added + removed``; "Max" takes the largest proposal, "Min" the smallest.
    Percent proposals are rounded up so a small target can always grow.
    """
    if rules.select == "Disabled":
        return current
    proposals = []
    for pol in rules.policies:
        added, removed = change_in_period(events, pol.period_s, now)
        start = current - added + removed
        if pol.kind == "Pods":
            proposals.append(start + pol.value)
        else:
            proposals.append(math.ceil(start * (1 + pol.value / 100)))
    return max(proposals) if rules.select == "Max" else min(proposals)


def scale_down_limit(current: int, events: Sequence[tuple[float, int]], now: float,
                     rules: ScalingRules) -> int:
    """The fewest replicas the scale-down policies allow now (Go's int32() truncates)."""
    if rules.select == "Disabled":
        return current
    proposals = []
    for pol in rules.policies:
        added, removed = change_in_period(events, pol.period_s, now)
        start = current - added + removed
        if pol.kind == "Pods":
            proposals.append(start - pol.value)
        else:
            proposals.append(int(start * (1 - pol.value / 100)))
    return min(proposals) if rules.select == "Max" else max(proposals)


# ------------------------------------------------------------------------------ normalize


@dataclasses.dataclass(frozen=True)
class Normalized:
    """The count to write and why it differs from the recommendation.

    Attributes:
        replicas: the count (== current for no change).
        reasons: tags among "stabilized", "rate_limited", "clamped_min", "clamped_max".
    """

    replicas: int
    reasons: tuple[str, ...] = ()


def normalize(current: int, desired: int, min_replicas: int, max_replicas: int,
              history: TargetHistory, now: float, config: HPAConfig) -> Normalized:
    """Stabilise, rate-limit and clamp one recommendation; pure (records nothing).

    Args:
        current: current replicas (spec), inside [min_replicas, max_replicas].
        desired: the metrics' recommendation for this sync.
        history: the target's earlier recommendations and written changes.
        now: the current time (s).
    """
    stabilized = stabilize(current, desired, history.recommendations, now, config)
    reasons = ["stabilized"] if stabilized != desired else []
    if not config.behavior:  # convertDesiredReplicasWithRules
        limit = int(max(SCALE_UP_LIMIT_FACTOR * current, SCALE_UP_LIMIT_MINIMUM))
        upper = min(max_replicas, limit)
        if stabilized < min_replicas:
            return Normalized(min_replicas, (*reasons, "clamped_min"))
        if stabilized > upper:
            why = "rate_limited" if upper == limit < max_replicas else "clamped_max"
            return Normalized(upper, (*reasons, why))
        return Normalized(stabilized, tuple(reasons))
    # convertDesiredReplicasWithBehaviorRate
    if stabilized > current:
        limit = max(scale_up_limit(current, history.scale_events, now, config.scale_up),
                    current)
        upper = min(max_replicas, limit)
        if stabilized > upper:
            why = "rate_limited" if limit < max_replicas else "clamped_max"
            return Normalized(upper, (*reasons, why))
    elif stabilized < current:
        limit = min(scale_down_limit(current, history.scale_events, now, config.scale_down),
                    current)
        lower = max(min_replicas, limit)
        if stabilized < lower:
            why = "rate_limited" if limit > min_replicas else "clamped_min"
            return Normalized(lower, (*reasons, why))
    return Normalized(stabilized, tuple(reasons))


def guard(desired: int, current: int, min_replicas: int, max_replicas: int,
          history: TargetHistory, now: float, config: HPAConfig, max_step: int
          ) -> Normalized:
    """A decision made safe the way the in-cluster scaler writes it: a current count
    outside [min, max] moves to the bound ("below_min" / "above_max", as the controller
    does), otherwise `normalize` and then at most ``max_step`` replicas per tick
    ("max_step"; the action space moves at most 7). Pure."""
    if current < min_replicas:
        return Normalized(min_replicas, ("below_min",))
    if current > max_replicas:
        return Normalized(max_replicas, ("above_max",))
    out = normalize(current, desired, min_replicas, max_replicas, history, now, config)
    if abs(out.replicas - current) <= max_step:
        return out
    step = max_step if out.replicas > current else -max_step
    return Normalized(current + step, (*out.reasons, "max_step"))


def guard_and_record(history: TargetHistory, desired: int, current: int, min_replicas: int,
                     max_replicas: int, now: float, config: HPAConfig, max_step: int,
                     decide: Callable[..., Normalized] | None = None,
                     keep_s: float | None = None) -> Normalized:
    """One tick of `guard` with its bookkeeping, for a target whose write always succeeds.

    Seeds a fresh history with the current count (no scale-down in the first window, as
    `recordInitialRecommendation`), guards, records the recommendation and the change.
    The scaler's loop does the same in steps, recording the change only once the write
    succeeded; the evaluation's guarded row uses this. ``decide`` replaces `guard` (same
    arguments; `gnnrl.hpa.model_guard` passes the model's guard) and ``keep_s`` the
    history's length (default: what ``config`` needs).
    """
    keep = config.history_keep_s if keep_s is None else keep_s
    if not history.seeded():
        history.record_recommendation(now, current, keep)
    out = (decide or guard)(desired, current, min_replicas, max_replicas, history, now,
                            config, max_step)
    history.record_recommendation(now, desired, keep)
    if out.replicas != current:
        history.record_scale_event(now, out.replicas - current, keep)
    return out


# ---------------------------------------------------------------------------- controller


@dataclasses.dataclass
class HPADecision:
    """What one sync decided for one target.

    Attributes:
        replicas: replicas to run after this sync (== current when nothing is written).
        recommendation: the metrics' raw recommendation (None when not computed).
        reason: "ScalingDisabled", "AboveMax", "BelowMin", "NoMetrics", "Rescale" or "Hold".
    """

    replicas: int
    recommendation: int | None
    reason: str


class HPAController:
    """The stateful part of the HPA controller for any number of targets (keys).

    Holds each target's `TargetHistory`; the decision itself is the calculator +
    `normalize`. Time comes from ``clock`` (seconds), so tests drive it with a fake clock
    and the evaluation with simulated time.
    """

    def __init__(self, config: HPAConfig | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.config = config or HPAConfig()
        self.clock = clock
        self._state: dict[str, TargetHistory] = {}

    def forget(self, key: str) -> None:
        """Drop a target's history (its workload or HPA object was deleted)."""
        self._state.pop(key, None)

    @property
    def keys(self) -> list[str]:
        """Targets with history."""
        return list(self._state)

    def history(self, key: str) -> TargetHistory | None:
        return self._state.get(key)

    def sync(self, key: str, current_replicas: int, pods: Sequence[PodSample],
             min_replicas: int, max_replicas: int) -> HPADecision:
        """One `reconcileAutoscaler` pass for a CPU-utilisation HPA on target ``key``."""
        target = self.config.target_utilization
        rec: int | None = None  # an HPA without a CPU metric has nothing to say here
        if target is not None:
            try:
                rec = resource_replicas(current_replicas, pods, target,
                                        self.config.tolerances)
            except NoMetricsError:
                rec = None
        return self.decide(key, current_replicas, rec, min_replicas, max_replicas)

    def decide(self, key: str, current_replicas: int, recommendation: int | None,
               min_replicas: int, max_replicas: int) -> HPADecision:
        """`reconcileAutoscaler` given the metrics' combined recommendation (None = no
        valid metric; see `gnnrl.hpa.calculator.combine_metrics`)."""
        now = float(self.clock())
        keep = self.config.history_keep_s
        state = self._state.get(key)
        if state is None:  # recordInitialRecommendation: no scale-down in the first window
            state = self._state[key] = TargetHistory()
            state.record_recommendation(now, current_replicas, keep)
        if current_replicas == 0 and min_replicas != 0:
            return HPADecision(0, None, "ScalingDisabled")  # hands off: someone set 0
        if current_replicas > max_replicas:
            return self._write(state, now, current_replicas, max_replicas, None, "AboveMax")
        if current_replicas < min_replicas:
            return self._write(state, now, current_replicas, min_replicas, None, "BelowMin")
        if recommendation is None:  # "did not receive metrics": no rescale this sync
            return HPADecision(current_replicas, None, "NoMetrics")
        desired = normalize(current_replicas, recommendation, min_replicas, max_replicas,
                            state, now, self.config).replicas
        state.record_recommendation(now, recommendation, keep)
        if desired == current_replicas:
            return HPADecision(current_replicas, recommendation, "Hold")
        return self._write(state, now, current_replicas, desired, recommendation, "Rescale")

    def record_written(self, key: str, previous: int, written: int) -> None:
        """Correct the last scale event when the actuator wrote less than decided.

        The environment's moves add or remove at most 7 replicas a step; the scale event
        must hold the change really made, or the rate limits would be computed from a
        count that never existed.
        """
        state = self._state.get(key)
        if state is not None:
            state.correct_last_event(float(self.clock()), written - previous)

    def _write(self, state: TargetHistory, now: float, current: int, desired: int,
               rec: int | None, reason: str) -> HPADecision:
        state.record_scale_event(now, desired - current, self.config.history_keep_s)
        return HPADecision(desired, rec, reason)
