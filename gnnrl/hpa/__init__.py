"""The Kubernetes Horizontal Pod Autoscaler, ported from upstream: the one HPA.

* `gnnrl.hpa.config`: the HPA object (metric targets, `behavior` rules) and the controller
  flags that reach into it;
* `gnnrl.hpa.calculator`: replica_calculator.go (one metric's recommendation);
* `gnnrl.hpa.behavior`: horizontal.go (stabilisation, rate limits, per-target state);
* `gnnrl.hpa.model_guard`: *not* upstream: what the scaler's guard adds for a model's
  decisions (a shorter scale-down window, no scale-down soon after a scale-up).

Used by the HPA and KEDA baselines, the in-cluster scaler's rule, guard and fallback, and
the evaluation's guarded row, so all of them behave as the HPA users run.
"""

from gnnrl.hpa.behavior import (
    HPAController,
    HPADecision,
    Normalized,
    TargetHistory,
    change_in_period,
    normalize,
    scale_down_limit,
    scale_up_limit,
    stabilize,
)
from gnnrl.hpa.calculator import (
    MissingRequestError,
    NoMetricsError,
    PodSample,
    Tolerances,
    combine_metrics,
    cpu_sample_is_unready,
    external_per_pod_replicas,
    group_pods,
    pods_from_aggregate,
    pods_metric_replicas,
    resource_replicas,
)
from gnnrl.hpa.config import HPAConfig, ScalingPolicy, ScalingRules

__all__ = [
    "HPAConfig", "HPAController", "HPADecision", "MissingRequestError", "NoMetricsError",
    "Normalized", "PodSample", "ScalingPolicy", "ScalingRules", "TargetHistory", "Tolerances",
    "change_in_period", "combine_metrics", "cpu_sample_is_unready",
    "external_per_pod_replicas", "group_pods", "normalize", "pods_from_aggregate",
    "pods_metric_replicas", "resource_replicas", "scale_down_limit", "scale_up_limit",
    "stabilize",
]
