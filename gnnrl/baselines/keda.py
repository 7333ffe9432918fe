"""KEDA-style autoscaling on requests per second per replica.

KEDA (https://keda.sh/docs/latest/concepts/scaling-deployments/) does not scale by itself:
a ScaledObject makes KEDA create an HPA whose metric is an *External* metric served by
KEDA's metrics adapter (here, a Prometheus query such as
``sum(rate(istio_requests_total{destination_workload="cartservice"}[1m]))``), with target
type ``AverageValue`` = the trigger's ``threshold``. The HPA controller then computes, in
`GetExternalPerPodMetricReplicas` (kubernetes/kubernetes
pkg/controller/podautoscaler/replica_calculator.go)::

    usageRatio = total / (target_per_pod * replicas)
    desired    = ceil(total / target_per_pod)   if |1 - usageRatio| > tolerance
                 replicas                       otherwise

and applies the same behaviour (stabilisation, rate limits, min/max) as for CPU. So the
KEDA baseline is the `HPAController` fed a different recommendation. The request rate is
the one over the interval that just ended (``info["rps_in"]``), as a ``rate(...[1m])``
query sees it.

Default threshold per service: the req/s at which one pod uses 70 % of its CPU request
(`rps_at_cpu_utilization`), i.e. HPA-70's operating point; KEDA differs from HPA only in
watching load (a leading signal) instead of CPU (a lagging one).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gnnrl.baselines.base import rps_at_cpu_utilization, service_specs
from gnnrl.baselines.hpa import HPAConfig, HPAPolicy
from gnnrl.hpa.calculator import external_per_pod_replicas
from gnnrl.config import ConfigError


def keda_recommendation(
    current_replicas: int, total: float, target_per_pod: float,
    tolerance: float | tuple[float, float] = 0.1,
) -> int | None:
    """Desired replicas for an External metric with an AverageValue target
    (`gnnrl.hpa.calculator.external_per_pod_replicas`).

    Args:
        current_replicas: pods of the target (the scale's status.replicas).
        total: the metric summed over the target (req/s); NaN = no metric.
        target_per_pod: the threshold (req/s per replica), > 0.
        tolerance: one number, or (scale-down, scale-up) tolerances.

    Returns:
        The recommendation, or None when the metric is missing (no rescale).
    """
    if target_per_pod <= 0:
        raise ConfigError(f"target_per_pod must be > 0, got {target_per_pod}")
    return external_per_pod_replicas(current_replicas, total, target_per_pod, tolerance)


class KEDAPolicy(HPAPolicy):
    """One KEDA ScaledObject (Prometheus trigger on req/s, AverageValue) per service.

    Args:
        target_rps: threshold in req/s per replica, one number for every service or a
            mapping service -> number; None = each service's HPA-equivalent operating
            point at ``utilization`` of its CPU request.
        utilization: used only when ``target_rps`` is None.
        config: the behaviour of the HPA that KEDA creates (defaults: autoscaling/v2's).
    """

    def __init__(
        self,
        target_rps: float | Mapping[str, float] | None = None,
        utilization: float = 0.7,
        config: HPAConfig | None = None,
        name: str | None = None,
    ) -> None:
        if not (0.0 < utilization <= 2.0):
            raise ConfigError(f"utilization must be in (0, 2], got {utilization}")
        if isinstance(target_rps, int | float) and target_rps <= 0:
            raise ConfigError(f"target_rps must be > 0, got {target_rps}")
        pct = round(utilization * 100)
        super().__init__(target=None, config=config,
                         name=name or ("keda" if pct == 70 else f"keda-{pct}"))
        self.target_rps = target_rps
        self.utilization = utilization
        self._targets: dict[str, float] = {}

    def reset(self, env: Any = None) -> None:
        super().reset(env)
        if isinstance(self.target_rps, int | float):
            self._targets = {}
        elif isinstance(self.target_rps, Mapping):
            self._targets = {k: float(v) for k, v in self.target_rps.items()}
        else:
            self._targets = {
                name: rps_at_cpu_utilization(spec, self.utilization)
                for name, spec in service_specs(env).items()
            }

    def threshold(self, service: str) -> float:
        """The req/s-per-replica threshold of ``service``."""
        if isinstance(self.target_rps, int | float):
            return float(self.target_rps)
        try:
            return self._targets[service]
        except KeyError:
            raise ConfigError(f"target_rps: no threshold for service {service!r}") from None

    def _recommend(self, i: int, current: int, info: dict) -> int | None:
        name = info["slot_names"][i]
        return keda_recommendation(
            current, float(info["rps_in"][i]), self.threshold(name), self.config.tolerances
        )
