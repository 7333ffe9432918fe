"""The HPA object's spec as the controller reads it: metrics targets and `behavior`.

Mirrors autoscaling/v2 (`HorizontalPodAutoscalerSpec`, `HorizontalPodAutoscalerBehavior`,
`HPAScalingRules`, `HPAScalingPolicy`) plus the two controller flags that reach into it
(`--horizontal-pod-autoscaler-tolerance`, `--horizontal-pod-autoscaler-downscale-
stabilization`). Defaults are the API server's and the controller's
(pkg/apis/autoscaling/v2/defaults.go `GenerateHPAScaleUpRules` /
`GenerateHPAScaleDownRules`;
https://kubernetes.io/docs/tasks/run-application/horizontal-pod-autoscale/#default-behavior):

* scale-up: stabilisation window 0 s, "+4 pods or +100 % per 15 s, whichever is larger";
* scale-down: window unset (the controller's 300 s), "-100 % per 15 s";
* tolerance 0.1 both ways, unless a direction sets its own (`behavior.scaleUp.tolerance`,
  `behavior.scaleDown.tolerance`; KEP-4951, feature gate HPAConfigurableTolerance).

`behavior=False` is an HPA object written without a `behavior` field at all (the shortest
manifest): upstream then takes another code path (`normalizeDesiredReplicas`): scale-up
limited to max(2 x current, 4) per sync with no memory of earlier syncs, scale-down
stabilised over the controller's window and not rate-limited. The rules are ignored there.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from gnnrl.config import ConfigError, JsonConfig

POLICY_KINDS = ("Pods", "Percent")
SELECT_POLICIES = ("Max", "Min", "Disabled")
#: autoscaling/v2 validation: 0 < periodSeconds <= 1800, stabilizationWindowSeconds <= 3600
MAX_PERIOD_S = 1800.0
MAX_WINDOW_S = 3600.0


@dataclasses.dataclass
class ScalingPolicy(JsonConfig):
    """One `HPAScalingPolicy`: change by at most `value` pods (or percent) per `period_s`."""

    kind: str
    value: int
    period_s: float = 15.0

    def __post_init__(self) -> None:
        if self.kind not in POLICY_KINDS:
            raise ConfigError(f"policies.kind: expected one of {POLICY_KINDS}, got {self.kind!r}")
        if isinstance(self.value, bool) or not isinstance(self.value, int) or self.value <= 0:
            raise ConfigError(f"policies.value: expected an integer > 0, got {self.value!r}")
        if not (isinstance(self.period_s, int | float) and 0 < self.period_s <= MAX_PERIOD_S):
            raise ConfigError(
                f"policies.period_s: must be in (0, {MAX_PERIOD_S:g}], got {self.period_s!r}")


@dataclasses.dataclass
class ScalingRules(JsonConfig):
    """One direction of `behavior` (`scaleUp` or `scaleDown`).

    Attributes:
        policies: the rate policies; `select` combines them.
        select: "Max" (the policy allowing the largest change, the default), "Min", or
            "Disabled" (no scaling in this direction).
        stabilization_window_s: seconds of recommendations the stabilisation looks at;
            None = the controller's default (0 s up, `downscale_stabilization_s` down).
        tolerance: this direction's tolerance; None = the controller's `tolerance`.
    """

    policies: tuple[ScalingPolicy, ...]
    select: str = "Max"
    stabilization_window_s: float | None = None
    tolerance: float | None = None

    def __post_init__(self) -> None:
        pols = tuple(p if isinstance(p, ScalingPolicy) else ScalingPolicy.from_dict(p)
                     for p in self.policies)
        object.__setattr__(self, "policies", pols)
        if not pols:
            raise ConfigError("policies: must specify at least one policy")
        if self.select not in SELECT_POLICIES:
            raise ConfigError(f"select: expected one of {SELECT_POLICIES}, got {self.select!r}")
        w = self.stabilization_window_s
        if w is not None and not (isinstance(w, int | float) and 0 <= w <= MAX_WINDOW_S):
            raise ConfigError(
                f"stabilization_window_s: must be in [0, {MAX_WINDOW_S:g}], got {w!r}")
        tol = self.tolerance
        if tol is not None and not (isinstance(tol, int | float) and 0 <= tol < 1):
            raise ConfigError(f"tolerance: must be in [0, 1), got {tol!r}")

    @classmethod
    def rate(cls, *, percent: int = 0, pods: int = 0, period_s: float = 15.0,
             select: str = "Max", stabilization_window_s: float | None = None,
             tolerance: float | None = None) -> ScalingRules:
        """Rules with a Percent and/or a Pods policy of one period (0 = no such policy)."""
        pols = [ScalingPolicy("Percent", percent, period_s)] if percent else []
        pols += [ScalingPolicy("Pods", pods, period_s)] if pods else []
        return cls(tuple(pols), select, stabilization_window_s, tolerance)

    @classmethod
    def default_up(cls) -> ScalingRules:
        """autoscaling/v2's scaleUp default: window 0 s, max(+4 pods, +100 %) per 15 s."""
        return cls((ScalingPolicy("Pods", 4, 15.0), ScalingPolicy("Percent", 100, 15.0)),
                   "Max", 0.0)

    @classmethod
    def default_down(cls) -> ScalingRules:
        """autoscaling/v2's scaleDown default: window from the controller, -100 % per 15 s."""
        return cls((ScalingPolicy("Percent", 100, 15.0),), "Max", None)

    @property
    def longest_period_s(self) -> float:
        return max(p.period_s for p in self.policies)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ScalingRules:
        if isinstance(data, dict) and isinstance(data.get("policies"), list):
            data = {**data, "policies": tuple(data["policies"])}
        return super().from_dict(data)


@dataclasses.dataclass
class HPAConfig(JsonConfig):
    """One HPA object (per target) and the controller flags it depends on.

    Attributes:
        target_utilization: the CPU `Resource` metric's averageUtilization as a fraction of
            the request (0.7 = 70 %); None = no CPU metric.
        target_rps_per_pod: a `Pods` metric "requests per second" with an averageValue
            target (req/s per pod); None = no such metric. With both metrics the controller
            takes the larger recommendation.
        tolerance: the controller's `--horizontal-pod-autoscaler-tolerance` (0.1).
        downscale_stabilization_s: `--horizontal-pod-autoscaler-downscale-stabilization`
            (300 s): the scale-down window when the rules leave it unset, and the only
            window of the no-behavior path.
        sync_period_s: `--horizontal-pod-autoscaler-sync-period` (15 s).
        behavior: False = the HPA object has no `behavior` field (see the module docstring).
        scale_up / scale_down: the `behavior` rules (used only when ``behavior``).
    """

    target_utilization: float | None = 0.7
    target_rps_per_pod: float | None = None
    tolerance: float = 0.1
    downscale_stabilization_s: float = 300.0
    sync_period_s: float = 15.0
    behavior: bool = True
    scale_up: ScalingRules = dataclasses.field(default_factory=ScalingRules.default_up)
    scale_down: ScalingRules = dataclasses.field(default_factory=ScalingRules.default_down)

    def __post_init__(self) -> None:
        for name in ("scale_up", "scale_down"):
            value = getattr(self, name)
            if isinstance(value, dict):
                object.__setattr__(self, name, ScalingRules.from_dict(value))
            elif not isinstance(value, ScalingRules):
                raise ConfigError(f"{name}: expected scaling rules, got {value!r}")
        t = self.target_utilization
        if t is not None and not (_number(t) and 0.0 < t <= 10.0):
            raise ConfigError(f"target_utilization must be a fraction of the request in "
                              f"(0, 10], got {t!r}")
        r = self.target_rps_per_pod
        if r is not None and not (_number(r) and r > 0):
            raise ConfigError(f"target_rps_per_pod must be > 0 req/s, got {r!r}")
        if t is None and r is None:
            raise ConfigError("target_utilization / target_rps_per_pod: at least one metric "
                              "is needed")
        if not (_number(self.tolerance) and 0.0 <= self.tolerance < 1.0):
            raise ConfigError(f"tolerance must be in [0, 1), got {self.tolerance!r}")
        if not (_number(self.sync_period_s) and self.sync_period_s > 0):
            raise ConfigError(f"sync_period_s must be > 0, got {self.sync_period_s!r}")
        d = self.downscale_stabilization_s
        if not (_number(d) and 0.0 <= d <= MAX_WINDOW_S):
            raise ConfigError(f"downscale_stabilization_s must be in [0, {MAX_WINDOW_S:g}], "
                              f"got {d!r}")
        if not isinstance(self.behavior, bool):
            raise ConfigError(f"behavior: expected true or false, got {self.behavior!r}")

    # ---------------------------------------------------------------- resolved values
    @property
    def up_window_s(self) -> float:
        w = self.scale_up.stabilization_window_s
        return 0.0 if w is None else float(w)

    @property
    def down_window_s(self) -> float:
        w = self.scale_down.stabilization_window_s
        return self.downscale_stabilization_s if w is None else float(w)

    @property
    def tolerances(self) -> tuple[float, float]:
        """(scale-down, scale-up) tolerance; the no-behavior path uses the flag for both."""
        if not self.behavior:
            return self.tolerance, self.tolerance
        down, up = self.scale_down.tolerance, self.scale_up.tolerance
        return (self.tolerance if down is None else float(down),
                self.tolerance if up is None else float(up))

    @property
    def history_keep_s(self) -> float:
        """How long recommendations and scale events matter (windows and policy periods)."""
        if not self.behavior:
            return self.downscale_stabilization_s
        return max(self.up_window_s, self.down_window_s, self.scale_up.longest_period_s,
                   self.scale_down.longest_period_s)


def _number(x: Any) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)
