"""The Kubernetes Horizontal Pod Autoscaler (autoscaling/v2), CPU-utilisation metric.

A faithful re-implementation of the upstream controller so that "beats HPA" means beating
the real algorithm:

* `hpa_recommendation` is `ReplicaCalculator.GetResourceReplicas`
  (kubernetes/kubernetes, pkg/controller/podautoscaler/replica_calculator.go): the usage
  ratio over ready pods with metrics, the 0.1 tolerance, unready pods counted as 0 % on a
  scale-up and left out on a scale-down, pods with missing metrics counted as 100 % of their
  request on a scale-down and 0 % on a scale-up, and never a change of direction because
  of those fill-ins.
* `apply_behavior` is `normalizeDesiredReplicasWithBehaviors` (horizontal.go):
  stabilisation (min over the scale-up window, max over the scale-down window), then the
  rate limits of the scaling policies over their periods, then min/max replicas.
* `HPAController` is the per-target state of `HorizontalController.reconcileAutoscaler`:
  the recommendation history (seeded with the current replicas, like
  `recordInitialRecommendation`), the scale events, hands off when the target is at 0
  replicas, and moves a target outside [min, max] to the bound.
* `HPAPolicy` drives one controller per service of the `OnlineBoutique` environment
  through the `Policy` protocol (docs/internals.md).

Defaults are the documented autoscaling/v2 defaults
(https://kubernetes.io/docs/tasks/run-application/horizontal-pod-autoscale/#default-behavior):
scale-up window 0 s, policies "+100 % or +4 pods per 15 s, whichever is larger"; scale-down
window 300 s, policy "-100 % per 15 s"; tolerance 0.1
(`--horizontal-pod-autoscaler-tolerance`); sync period 15 s
(`--horizontal-pod-autoscaler-sync-period`).
"""

from __future__ import annotations

import dataclasses
import functools
import math
import time
from collections.abc import Callable, Sequence
from typing import Any, Literal

import numpy as np

from gnnrl.config import ConfigError, JsonConfig

SelectPolicy = Literal["Max", "Min", "Disabled"]
_SELECT = ("Max", "Min", "Disabled")


class NoMetricsError(RuntimeError):
    """No ready pod has a metric sample: the HPA cannot compute a recommendation.

    Upstream answers "did not receive metrics for any ready pods" and does not rescale.
    """


@dataclasses.dataclass(frozen=True)
class PodSample:
    """One pod as the HPA's replica calculator sees it.

    Attributes:
        request_m: CPU request of the pod (millicores, all containers).
        usage_m: CPU usage averaged over the metrics window (millicores), or None when the
            metrics API returned no sample for the pod ("missing").
        ready: False for pods the calculator ignores: Pending, unready, or still in the CPU
            initialisation period (`groupPods` in replica_calculator.go).
    """

    request_m: float
    usage_m: float | None
    ready: bool = True


@dataclasses.dataclass(frozen=True)
class ScalingPolicy:
    """One `HPAScalingPolicy`: change by at most `value` pods or percent per `period_s`."""

    kind: Literal["Pods", "Percent"]
    value: int
    period_s: float


@dataclasses.dataclass(frozen=True)
class ScalingRules:
    """One direction of `HorizontalPodAutoscalerBehavior` (scaleUp or scaleDown)."""

    stabilization_window_s: float
    policies: tuple[ScalingPolicy, ...]
    select: SelectPolicy = "Max"


@dataclasses.dataclass
class HPAConfig(JsonConfig):
    """An HPA object's spec for one CPU `Resource` metric with `averageUtilization`.

    Attributes:
        target_utilization: target CPU usage as a fraction of the request (0.7 = 70 %).
        tolerance: relative band around the target with no change (upstream default 0.1).
        sync_period_s: how often the controller reconciles (upstream default 15 s).
        scale_up_stabilization_s / scale_down_stabilization_s: stabilisation windows.
        scale_up_percent, scale_up_pods, scale_up_period_s: scale-up policies (0 = absent).
        scale_down_percent, scale_down_pods, scale_down_period_s: scale-down policies.
        scale_up_select / scale_down_select: "Max" (default), "Min" or "Disabled".
    """

    target_utilization: float = 0.7
    tolerance: float = 0.1
    sync_period_s: float = 15.0
    scale_up_stabilization_s: float = 0.0
    scale_down_stabilization_s: float = 300.0
    scale_up_percent: int = 100
    scale_up_pods: int = 4
    scale_up_period_s: float = 15.0
    scale_down_percent: int = 100
    scale_down_pods: int = 0
    scale_down_period_s: float = 15.0
    scale_up_select: str = "Max"
    scale_down_select: str = "Max"

    def __post_init__(self) -> None:
        if not (0.0 < self.target_utilization <= 10.0):
            raise ConfigError(
                f"target_utilization must be a fraction of the request in (0, 10], "
                f"got {self.target_utilization}"
            )
        if not (0.0 <= self.tolerance < 1.0):
            raise ConfigError(f"tolerance must be in [0, 1), got {self.tolerance}")
        for name in ("sync_period_s", "scale_up_period_s", "scale_down_period_s"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"{name} must be > 0, got {getattr(self, name)}")
        for name in ("scale_up_stabilization_s", "scale_down_stabilization_s"):
            # autoscaling/v2 validation: 0 <= stabilizationWindowSeconds <= 3600
            if not (0.0 <= getattr(self, name) <= 3600.0):
                raise ConfigError(f"{name} must be in [0, 3600], got {getattr(self, name)}")
        for name in ("scale_up_percent", "scale_up_pods", "scale_down_percent", "scale_down_pods"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name} must be >= 0 (0 = no such policy)")
        for name in ("scale_up_select", "scale_down_select"):
            if getattr(self, name) not in _SELECT:
                raise ConfigError(f"{name} must be one of {_SELECT}, got {getattr(self, name)!r}")
        if self.scale_up_percent == 0 and self.scale_up_pods == 0:
            raise ConfigError("scale_up_percent/scale_up_pods: at least one policy is needed")
        if self.scale_down_percent == 0 and self.scale_down_pods == 0:
            raise ConfigError("scale_down_percent/scale_down_pods: at least one policy is needed")

    @functools.cached_property
    def scale_up(self) -> ScalingRules:
        return _rules(self.scale_up_stabilization_s, self.scale_up_percent,
                      self.scale_up_pods, self.scale_up_period_s, self.scale_up_select)

    @functools.cached_property
    def scale_down(self) -> ScalingRules:
        return _rules(self.scale_down_stabilization_s, self.scale_down_percent,
                      self.scale_down_pods, self.scale_down_period_s, self.scale_down_select)


def _rules(window: float, percent: int, pods: int, period: float, select: str) -> ScalingRules:
    policies: list[ScalingPolicy] = []
    if percent:
        policies.append(ScalingPolicy("Percent", percent, period))
    if pods:
        policies.append(ScalingPolicy("Pods", pods, period))
    return ScalingRules(window, tuple(policies), select)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- replica calculator


def _usage_ratio(pods: Sequence[PodSample], target: float) -> float:
    """`GetResourceUtilizationRatio`: utilisation over the pods given, relative to target.

    As upstream, values are integer millicores and the utilisation an integer percent
    (truncated), ``int(sum(usage) * 100 / sum(request)) / target_percent``.
    """
    usage = sum(round(p.usage_m or 0.0) for p in pods)
    request = sum(round(p.request_m) for p in pods)
    if request <= 0:
        raise NoMetricsError("pods with metrics have no CPU request")
    utilization_pct = (usage * 100) // request
    return utilization_pct / round(target * 100)


def hpa_recommendation(
    current_replicas: int,
    pods: Sequence[PodSample],
    target_utilization: float,
    tolerance: float = 0.1,
) -> int:
    """Desired replicas for one CPU-utilisation metric (`GetResourceReplicas`).

    ``desired = ceil(ready_pods * usage / (request * target))``, held at ``current_replicas``
    when the ratio is within ``tolerance`` of 1 or when the fill-ins for unready and
    missing pods would reverse the direction of the change.

    Args:
        current_replicas: the scale subresource's spec.replicas.
        pods: every pod of the target (see `PodSample`); failed/deleted pods excluded.
        target_utilization: target as a fraction of the request (0.7 = 70 %).
        tolerance: no change while |ratio - 1| <= tolerance.

    Raises:
        NoMetricsError: no ready pod has a metric (upstream: no rescale this sync).
    """
    ready = [p for p in pods if p.ready and p.usage_m is not None]
    ignored = [p for p in pods if not p.ready]
    missing = [p for p in pods if p.ready and p.usage_m is None]
    if not ready:
        raise NoMetricsError("did not receive metrics for any ready pods")
    ratio = _usage_ratio(ready, target_utilization)

    # replica_calculator.go: unready pods only matter on a scale-up ("rebalanceIgnored").
    rebalance_ignored = bool(ignored) and ratio > 1.0
    if not rebalance_ignored and not missing:
        if abs(1.0 - ratio) <= tolerance:
            return current_replicas
        return math.ceil(ratio * len(ready))

    filled = list(ready)
    if missing:
        if ratio < 1.0:  # scale-down: missing pods count as 100 % of their request
            filled += [PodSample(p.request_m, p.request_m * 1.0) for p in missing]
        elif ratio > 1.0:  # scale-up: missing pods count as 0 %
            filled += [PodSample(p.request_m, 0.0) for p in missing]
    if rebalance_ignored:  # scale-up: unready pods count as 0 %
        filled += [PodSample(p.request_m, 0.0) for p in ignored]

    new_ratio = _usage_ratio(filled, target_utilization)
    # "return the current replicas if the change would be too small, or if the new usage
    # ratio would cause a change in scale direction"
    if (
        abs(1.0 - new_ratio) <= tolerance
        or (ratio < 1.0 < new_ratio)
        or (ratio > 1.0 > new_ratio)
    ):
        return current_replicas
    new_replicas = math.ceil(new_ratio * len(filled))
    if (new_ratio < 1.0 and new_replicas > current_replicas) or (
        new_ratio > 1.0 and new_replicas < current_replicas
    ):
        return current_replicas
    return new_replicas


def pods_from_aggregate(
    replicas: int, ready: int, cpu_m: float, request_m: float, settled: int | None = None
) -> list[PodSample]:
    """Per-pod samples from service totals, as the simulator reports them.

    The simulator gives the total CPU of the service over the last interval; it is spread
    evenly over the pods whose sample counts. Pods that exist but are not ready are ignored
    by the calculator. ``settled`` (default: all ready pods) is how many were already ready
    when the interval began: upstream `groupPods` also ignores a pod, within its CPU
    initialisation period, whose metric window started before it became ready (its
    sample would under-state the load), so ready-but-unsettled pods are ignored too.
    A NaN ``cpu_m`` means the metrics API returned nothing: every ready pod is missing.

    Shapes: scalars; ``cpu_m`` and ``request_m`` in millicores.
    """
    ready = max(0, min(int(ready), int(replicas)))
    counted = ready if settled is None else max(0, min(int(settled), ready))
    ignored = int(replicas) - counted
    per_pod: float | None = None if not math.isfinite(cpu_m) else cpu_m / max(counted, 1)
    return [PodSample(request_m, per_pod, True) for _ in range(counted)] + [
        PodSample(request_m, None, False) for _ in range(ignored)
    ]


# ----------------------------------------------------------------------------------- behaviour


def stabilize(
    current: int,
    desired: int,
    recommendations: Sequence[tuple[float, int]],
    now: float,
    config: HPAConfig,
) -> int:
    """`stabilizeRecommendationWithBehaviors` without the history update.

    Scaling up, the lowest recommendation newer than the scale-up window wins; scaling
    down, the highest newer than the scale-down window (so a scale-down happens only after
    the load stayed low for the whole window).

    Args:
        recommendations: (timestamp s, desired replicas) of earlier syncs.
        now: the current time (s, same clock as the timestamps).
    """
    if desired >= current:
        cutoff = now - config.scale_up_stabilization_s
        pick = min
    else:
        cutoff = now - config.scale_down_stabilization_s
        pick = max
    best = desired
    for ts, rec in recommendations:
        if ts > cutoff:  # upstream: rec.timestamp.After(cutoff)
            best = pick(best, rec)
    return best


def _change_in_period(period_s: float, events: Sequence[tuple[float, int]], now: float) -> int:
    """`getReplicasChangePerPeriod`: replicas changed by events newer than now - period."""
    return sum(change for ts, change in events if ts > now - period_s)


def scale_up_limit(
    current: int, up_events: Sequence[tuple[float, int]], now: float, rules: ScalingRules
) -> int:
    """`calculateScaleUpLimitWithScalingRules`: the most replicas the policies allow now.

    Each policy measures from the replica count at the start of its period (current minus
    what was added within it); "Max" takes the largest proposal, "Min" the smallest.
    """
    if rules.select == "Disabled":
        return current
    result: int | None = None
    for pol in rules.policies:
        start = current - _change_in_period(pol.period_s, up_events, now)
        if pol.kind == "Pods":
            proposed = start + pol.value
        else:  # rounded up so that a small target can always grow
            proposed = math.ceil(start * (1 + pol.value / 100))
        if result is None:
            result = proposed
        else:
            result = max(result, proposed) if rules.select == "Max" else min(result, proposed)
    return current if result is None else result


def scale_down_limit(
    current: int, down_events: Sequence[tuple[float, int]], now: float, rules: ScalingRules
) -> int:
    """`calculateScaleDownLimitWithBehaviors`: the fewest replicas the policies allow now."""
    if rules.select == "Disabled":
        return current
    result: int | None = None
    for pol in rules.policies:
        start = current + _change_in_period(pol.period_s, down_events, now)
        if pol.kind == "Pods":
            proposed = start - pol.value
        else:  # Go's int32() conversion truncates towards zero
            proposed = int(start * (1 - pol.value / 100))
        if result is None:
            result = proposed
        else:
            result = min(result, proposed) if rules.select == "Max" else max(result, proposed)
    return current if result is None else result


def apply_behavior(
    current: int,
    desired: int,
    min_replicas: int,
    max_replicas: int,
    recommendations: Sequence[tuple[float, int]],
    up_events: Sequence[tuple[float, int]],
    down_events: Sequence[tuple[float, int]],
    now: float,
    config: HPAConfig,
) -> int:
    """`normalizeDesiredReplicasWithBehaviors`: stabilise, rate-limit, clamp.

    Pure: the caller records ``(now, desired)`` in ``recommendations`` afterwards, and the
    change actually written in ``up_events``/``down_events``.

    Args:
        current: current replicas (spec), inside [min_replicas, max_replicas].
        desired: the calculator's recommendation for this sync.
        recommendations: (timestamp s, desired) of earlier syncs.
        up_events / down_events: (timestamp s, replicas added / removed) of earlier writes.
        now: the current time (s).

    Returns:
        The replica count to write (== current for no change).
    """
    stabilized = stabilize(current, desired, recommendations, now, config)
    if stabilized > current:
        limit = max(scale_up_limit(current, up_events, now, config.scale_up), current)
        return min(stabilized, max_replicas, limit)
    if stabilized < current:
        limit = min(scale_down_limit(current, down_events, now, config.scale_down), current)
        return max(stabilized, min_replicas, limit)
    return stabilized


# ---------------------------------------------------------------------------------- controller


@dataclasses.dataclass
class HPADecision:
    """What one sync decided for one target.

    Attributes:
        replicas: replicas to run after this sync (== current when nothing is written).
        recommendation: the calculator's raw recommendation (None when not computed).
        reason: "ScalingDisabled", "AboveMax", "BelowMin", "NoMetrics", "Rescale" or "Hold".
    """

    replicas: int
    recommendation: int | None
    reason: str


@dataclasses.dataclass
class _TargetState:
    recommendations: list[tuple[float, int]] = dataclasses.field(default_factory=list)
    up_events: list[tuple[float, int]] = dataclasses.field(default_factory=list)
    down_events: list[tuple[float, int]] = dataclasses.field(default_factory=list)


class HPAController:
    """The stateful part of the HPA controller for any number of targets (keys).

    Holds each target's recommendation history and scale events; the decision itself is
    `hpa_recommendation` + `apply_behavior`. Time comes from ``clock`` (seconds), so tests
    drive it with a fake clock and the evaluation with simulated time.
    """

    def __init__(
        self, config: HPAConfig | None = None, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.config = config or HPAConfig()
        self.clock = clock
        self._state: dict[str, _TargetState] = {}

    def forget(self, key: str) -> None:
        """Drop a target's history (its workload was deleted)."""
        self._state.pop(key, None)

    @property
    def keys(self) -> list[str]:
        """Targets with history."""
        return list(self._state)

    def sync(
        self,
        key: str,
        current_replicas: int,
        pods: Sequence[PodSample],
        min_replicas: int,
        max_replicas: int,
    ) -> HPADecision:
        """One `reconcileAutoscaler` pass for target ``key``; returns the replicas to write."""
        try:
            rec: int | None = hpa_recommendation(
                current_replicas, pods, self.config.target_utilization, self.config.tolerance
            )
        except NoMetricsError:
            rec = None
        return self.decide(key, current_replicas, rec, min_replicas, max_replicas)

    def decide(
        self,
        key: str,
        current_replicas: int,
        recommendation: int | None,
        min_replicas: int,
        max_replicas: int,
    ) -> HPADecision:
        """`reconcileAutoscaler` given the metric's recommendation (None = no metrics).

        Any metric source can feed the same controller: CPU (`hpa_recommendation`) or an
        external per-pod metric such as KEDA's requests/s (`gnnrl.baselines.keda`).
        """
        now = float(self.clock())
        state = self._state.get(key)
        if state is None:  # recordInitialRecommendation: no scale-down in the first window
            state = self._state[key] = _TargetState(recommendations=[(now, current_replicas)])
        self._prune(state, now)
        if current_replicas == 0 and min_replicas != 0:
            return HPADecision(0, None, "ScalingDisabled")  # hands off: someone set 0
        if current_replicas > max_replicas:
            return self._write(state, now, current_replicas, max_replicas, None, "AboveMax")
        if current_replicas < min_replicas:
            return self._write(state, now, current_replicas, min_replicas, None, "BelowMin")
        if recommendation is None:  # "did not receive metrics": no rescale this sync
            return HPADecision(current_replicas, None, "NoMetrics")
        desired = apply_behavior(
            current_replicas, recommendation, min_replicas, max_replicas,
            state.recommendations, state.up_events, state.down_events, now, self.config,
        )
        state.recommendations.append((now, recommendation))
        if desired == current_replicas:
            return HPADecision(current_replicas, recommendation, "Hold")
        return self._write(state, now, current_replicas, desired, recommendation, "Rescale")

    def record_written(self, key: str, previous: int, written: int) -> None:
        """Correct the last scale event when the actuator wrote less than decided.

        The environment's moves add or remove at most 7 replicas a step; the scale event
        must hold the change really made, or the rate limit would be computed from a
        count that never existed.
        """
        state = self._state.get(key)
        if state is None:
            return
        events = state.up_events if written >= previous else state.down_events
        if events and events[-1][0] == float(self.clock()):
            events[-1] = (events[-1][0], abs(written - previous))

    def _write(self, state: _TargetState, now: float, current: int, desired: int,
               rec: int | None, reason: str) -> HPADecision:
        if desired > current:
            state.up_events.append((now, desired - current))
        elif desired < current:
            state.down_events.append((now, current - desired))
        return HPADecision(desired, rec, reason)

    def _prune(self, state: _TargetState, now: float) -> None:
        cfg = self.config
        keep = max(cfg.scale_up_stabilization_s, cfg.scale_down_stabilization_s)
        state.recommendations = [r for r in state.recommendations if r[0] > now - keep]
        up = max((p.period_s for p in cfg.scale_up.policies), default=0.0)
        down = max((p.period_s for p in cfg.scale_down.policies), default=0.0)
        state.up_events = [e for e in state.up_events if e[0] > now - up]
        state.down_events = [e for e in state.down_events if e[0] > now - down]


# -------------------------------------------------------------------------------------- policy


class HPAPolicy:
    """The HPA as a `Policy` for the `OnlineBoutique` environment (one HPA per service).

    It sees what a real HPA sees: each service's CPU over the interval that just ended
    (``info["cpu_m"]``), its ready pods and its CPU request, and syncs every
    ``config.sync_period_s`` of simulated time (``info["t_s"]``). Its decisions are turned
    into moves with `replicas_to_moves` (at most 7 replicas a step, the action space's
    limit; the scale event records what was really written).
    """

    def __init__(self, target: float | None = 0.7, config: HPAConfig | None = None,
                 name: str | None = None) -> None:
        cfg = config or HPAConfig()
        if target is not None:
            cfg = cfg.replace(target_utilization=target)
        self.config = cfg
        pct = round(cfg.target_utilization * 100)
        self.name = name or ("hpa" if pct == 70 else f"hpa-{pct}")
        self._now = 0.0
        self._last_sync: float | None = None
        #: simulated times (s) at which the controller synced this episode
        self.sync_times: list[float] = []
        self._prev_ready: dict[str, int] = {}
        self.controller = HPAController(self.config, clock=lambda: self._now)

    def reset(self, env: Any = None) -> None:
        """Start an episode: fresh history (a new HPA object), nothing synced yet."""
        self._now = 0.0
        self._last_sync = None
        self.sync_times = []
        self._prev_ready: dict[str, int] = {}
        self.controller = HPAController(self.config, clock=lambda: self._now)

    def act(self, obs: dict, info: dict) -> np.ndarray:
        """Moves for every slot, shape (max_nodes,) int64 in 0..14 (0 = nothing)."""
        from gnnrl.core.envs.moves import replicas_to_moves

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
            from gnnrl.core.envs.moves import moves_to_replicas

            written = np.asarray(moves_to_replicas(current, moves))
            for i, name in enumerate(names):
                if name is not None and written[i] != desired[i]:
                    self.controller.record_written(name, int(current[i]), int(written[i]))
        return moves

    def _desired(self, names: Sequence[str | None], current: np.ndarray, info: dict) -> np.ndarray:
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
        """The metric's recommendation for slot ``i`` (None = no metrics this sync)."""
        name = info["slot_names"][i]
        ready = int(info["ready_replicas"][i])
        pods = pods_from_aggregate(
            current, ready, float(info["cpu_m"][i]), float(info["cpu_request_m"][i]),
            settled=min(ready, self._prev_ready.get(name, ready)),
        )
        try:
            return hpa_recommendation(
                current, pods, self.config.target_utilization, self.config.tolerance
            )
        except NoMetricsError:
            return None
