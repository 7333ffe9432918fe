"""The HPA's replica calculator: one metric's recommendation from its pods' samples.

A port of kubernetes/kubernetes pkg/controller/podautoscaler/replica_calculator.go
(`GetResourceReplicas`, `GetMetricReplicas` / `calcPlainMetricReplicas`,
`GetExternalPerPodMetricReplicas`, `groupPods`, `calculatePodRequests`) and of the
metric combination in horizontal.go (`computeReplicasForMetrics`). Pure functions: no
clock, no state (that is `gnnrl.hpa.behavior`).

How pods are grouped (`groupPods`), in this order:

1. a Pending pod is *unready*;
2. a pod without a sample is *missing* (checked before readiness: a Running pod that is not
   Ready and has no metric is missing, not unready);
3. for the CPU metric only, a pod whose Ready condition is false, or whose sample was taken
   during its CPU initialisation period before a full metric window had passed since it
   became ready, is *unready* (`cpu_sample_is_unready`);
4. the rest are *ready*.

Unready pods are left out on a scale-down and count as 0 on a scale-up; missing pods count
as 0 on a scale-up and, on a scale-down, as ``max(100 %, target)`` of their request (CPU)
or exactly the target (Pods metric). If these fill-ins would reverse the direction of the
change or land within the tolerance, the current count is kept.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

#: replica_calculator.go defaults: `--horizontal-pod-autoscaler-cpu-initialization-period`
#: (5 min) and `--horizontal-pod-autoscaler-initial-readiness-delay` (30 s).
CPU_INITIALIZATION_PERIOD_S = 300.0
INITIAL_READINESS_DELAY_S = 30.0


class NoMetricsError(RuntimeError):
    """The calculator cannot compute a recommendation for this metric this sync.

    Upstream answers with an error ("did not receive metrics for targeted pods") and the
    metric is invalid for this sync; with no valid metric the controller does not rescale.
    """


class MissingRequestError(NoMetricsError):
    """A pod has a container without a CPU request: upstream refuses a utilisation metric."""


@dataclasses.dataclass(frozen=True)
class PodSample:
    """One pod as the replica calculator sees it.

    Attributes:
        request_m: CPU request of the pod (millicores, all containers); None when a
            container has no CPU request (`calculatePodRequests` then refuses).
        usage_m: the metric's sample for the pod (CPU millicores for the utilisation metric,
            the metric's own unit, e.g. req/s, for a Pods metric), or None when the metrics
            API returned no sample ("missing").
        ready: False when the pod's CPU sample is not to be trusted: Ready condition false,
            or still inside its CPU initialisation window (see `cpu_sample_is_unready`).
            Only the CPU metric looks at it.
        pending: the pod's phase is Pending (not started): unready for every metric.
    """

    request_m: float | None
    usage_m: float | None
    ready: bool = True
    pending: bool = False


@dataclasses.dataclass(frozen=True)
class Tolerances:
    """`Tolerances` of replica_calculator.go: no change while
    ``1 - down <= usage ratio <= 1 + up`` (both 0.1 by default)."""

    down: float = 0.1
    up: float = 0.1

    def within(self, ratio: float) -> bool:
        return (1.0 - self.down) <= ratio <= (1.0 + self.up)


def _tolerances(tol: float | Tolerances | tuple[float, float]) -> Tolerances:
    if isinstance(tol, Tolerances):
        return tol
    if isinstance(tol, tuple):
        return Tolerances(float(tol[0]), float(tol[1]))
    return Tolerances(float(tol), float(tol))


def cpu_sample_is_unready(now: float, start_time: float | None, ready: bool | None,
                          ready_since: float | None, sample_time: float | None,
                          sample_window_s: float,
                          cpu_init_period_s: float = CPU_INITIALIZATION_PERIOD_S,
                          readiness_delay_s: float = INITIAL_READINESS_DELAY_S) -> bool:
    """`groupPods`'s CPU readiness rule for a Running pod that has a sample.

    Args (seconds on one clock):
        now: the sync's time. start_time: the pod's status.startTime (None = unknown).
        ready: its Ready condition (None = no condition). ready_since: the condition's
            lastTransitionTime. sample_time / sample_window_s: the metric's timestamp and
            window.

    Within the initialisation period the sample is ignored if the pod is not ready or the
    sample's window began before the pod became ready; after it, only a pod that is not
    ready and has never been ready (its last transition within the initial readiness
    delay of its start) is ignored.
    """
    if ready is None or start_time is None:
        return True
    transition = ready_since if ready_since is not None else start_time
    if start_time + cpu_init_period_s > now:
        if not ready:
            return True
        return sample_time is not None and sample_time < transition + sample_window_s
    return (not ready) and start_time + readiness_delay_s > transition


def group_pods(pods: Sequence[PodSample], cpu: bool = True
               ) -> tuple[list[PodSample], list[PodSample], list[PodSample]]:
    """(ready, unready, missing) pods, in `groupPods`'s order of checks."""
    ready: list[PodSample] = []
    unready: list[PodSample] = []
    missing: list[PodSample] = []
    for p in pods:
        if p.pending:
            unready.append(p)
        elif p.usage_m is None:
            missing.append(p)
        elif cpu and not p.ready:
            unready.append(p)
        else:
            ready.append(p)
    return ready, unready, missing


def _utilization_ratio(samples: Sequence[tuple[int, int]], target_pct: int) -> float:
    """`GetResourceUtilizationRatio` over (usage m, request m) integer pairs."""
    usage = sum(u for u, _ in samples)
    request = sum(r for _, r in samples)
    if request <= 0:
        raise NoMetricsError("no metrics returned matched known pods")
    return ((usage * 100) // request) / target_pct


def resource_replicas(current: int, pods: Sequence[PodSample], target_utilization: float,
                      tolerance: float | Tolerances | tuple[float, float] = 0.1) -> int:
    """Desired replicas for a CPU `Resource` metric with an averageUtilization target
    (`GetResourceReplicas`).

    ``desired = ceil(ready_pods * usage / (request * target))``, held at ``current`` within
    the tolerance or when the fill-ins for unready and missing pods would reverse the
    change. As upstream, values are integer millicores and the utilisation an integer
    percent (truncated).

    Args:
        current: the scale subresource's spec.replicas.
        pods: every pod of the target (deleted and failed pods left out by the caller).
        target_utilization: fraction of the request (0.7 = 70 %).
        tolerance: one number for both directions, or (down, up), or `Tolerances`.

    Raises:
        NoMetricsError: no ready pod has a sample.
        MissingRequestError: a pod has no CPU request.
    """
    tol = _tolerances(tolerance)
    target_pct = round(target_utilization * 100)
    ready, unready, missing = group_pods(pods, cpu=True)
    if not ready:
        raise NoMetricsError("did not receive metrics for targeted pods (pods might be unready)")
    if any(p.request_m is None for p in pods):
        raise MissingRequestError("missing CPU request for a container of a pod")
    req = {id(p): round(p.request_m or 0.0) for p in pods}
    samples = [(round(p.usage_m or 0.0), req[id(p)]) for p in ready]
    ratio = _utilization_ratio(samples, target_pct)

    scale_up_with_unready = bool(unready) and ratio > 1.0
    if not scale_up_with_unready and not missing:
        if tol.within(ratio):
            return current
        return math.ceil(ratio * len(ready))

    if missing:
        if ratio < 1.0:  # scale-down: missing pods at max(100 %, target) of their request
            fallback_pct = max(100, target_pct)
            samples += [(req[id(p)] * fallback_pct // 100, req[id(p)]) for p in missing]
        elif ratio > 1.0:  # scale-up: missing pods at 0 %
            samples += [(0, req[id(p)]) for p in missing]
    if scale_up_with_unready:  # scale-up: unready pods at 0 %
        samples += [(0, req[id(p)]) for p in unready]
    new_ratio = _utilization_ratio(samples, target_pct)
    return _rebalanced(current, ratio, new_ratio, len(samples), tol)


def _rebalanced(current: int, ratio: float, new_ratio: float, counted: int,
                tol: Tolerances) -> int:
    """The tail shared by the resource and plain-metric calculations."""
    # "return the current replicas if the change would be too small, or if the new usage
    # ratio would cause a change in scale direction"
    if tol.within(new_ratio) or (ratio < 1.0 < new_ratio) or (ratio > 1.0 > new_ratio):
        return current
    new_replicas = math.ceil(new_ratio * counted)
    if (new_ratio < 1.0 and new_replicas > current) or (
            new_ratio > 1.0 and new_replicas < current):
        return current
    return new_replicas


def pods_metric_replicas(current: int, pods: Sequence[PodSample], target_per_pod: float,
                         tolerance: float | Tolerances | tuple[float, float] = 0.1) -> int:
    """Desired replicas for a `Pods` metric with an averageValue target
    (`GetMetricReplicas` -> `calcPlainMetricReplicas`), e.g. requests/s per pod.

    Values are compared in milli-units with an integer average, as upstream's
    `GetMetricUsageRatio`. Readiness is not looked at (only Pending pods are unready).

    Raises:
        NoMetricsError: no pod has a sample.
    """
    tol = _tolerances(tolerance)
    target = round(target_per_pod * 1000)
    if target <= 0:
        raise NoMetricsError("target_per_pod must be > 0")
    ready, unready, missing = group_pods(pods, cpu=False)
    if not ready:
        raise NoMetricsError("did not receive metrics for targeted pods (pods might be unready)")
    values = [round((p.usage_m or 0.0) * 1000) for p in ready]
    ratio = (sum(values) // len(values)) / target

    scale_up_with_unready = bool(unready) and ratio > 1.0
    if not scale_up_with_unready and not missing:
        if tol.within(ratio):
            return current
        return math.ceil(ratio * len(ready))
    if missing:  # scale-down: missing pods at exactly the target; otherwise at 0
        values += [target if ratio < 1.0 else 0] * len(missing)
    if scale_up_with_unready:
        values += [0] * len(unready)
    new_ratio = (sum(values) // len(values)) / target
    return _rebalanced(current, ratio, new_ratio, len(values), tol)


def external_per_pod_replicas(status_replicas: int, total: float, target_per_pod: float,
                              tolerance: float | Tolerances | tuple[float, float] = 0.1
                              ) -> int | None:
    """Desired replicas for an `External` metric with an averageValue target
    (`GetExternalPerPodMetricReplicas`): what KEDA's ScaledObjects create.

    ``usage ratio = total / (target * replicas)``; outside the tolerance
    ``ceil(total / target)``. Values in milli-units, as upstream.

    Args:
        status_replicas: the target's current pods (status.replicas).
        total: the metric summed over its series (e.g. req/s); NaN = no metric.
        target_per_pod: the averageValue target, > 0.

    Returns:
        The recommendation, or None when the metric is missing (invalid this sync).
    """
    if not math.isfinite(total):
        return None
    tol = _tolerances(tolerance)
    usage, target = round(total * 1000), round(target_per_pod * 1000)
    if target <= 0:
        raise ValueError(f"target_per_pod must be > 0, got {target_per_pod}")
    if status_replicas <= 0:
        return math.ceil(usage / target)
    ratio = usage / (target * status_replicas)
    if not tol.within(ratio):
        return math.ceil(usage / target)
    return status_replicas


def combine_metrics(current: int, proposals: Sequence[int | None]) -> int | None:
    """`computeReplicasForMetrics`: the largest recommendation over the HPA's metrics.

    ``None`` entries are metrics that could not be computed this sync. With every metric
    invalid, or some invalid and the rest asking for a scale-down, there is no rescale
    (None): a broken metric never lets the others scale the target down.
    """
    valid = [p for p in proposals if p is not None]
    if not valid:
        return None
    best = max(valid)
    if len(valid) < len(proposals) and best < current:
        return None
    return best


def pods_from_aggregate(replicas: int, ready: int, total: float, request_m: float | None,
                        settled: int | None = None) -> list[PodSample]:
    """Per-pod samples from service totals, as the simulator reports them.

    ``total`` (the service's CPU millicores over the last interval, or any per-service
    metric such as req/s) is spread evenly over the pods whose sample counts. Pods that
    exist but are not ready yet are Pending (no sample). ``settled`` (default: all ready
    pods) is how many were ready when the interval began: a pod that became ready during
    the metric's window is inside its CPU initialisation period with a sample that started
    before it was ready, so its sample is ignored (`cpu_sample_is_unready`). A NaN
    ``total`` means the metrics API returned nothing: every started pod is missing.

    Shapes: scalars; ``total`` and ``request_m`` in millicores (or the metric's unit).
    """
    ready = max(0, min(int(ready), int(replicas)))
    counted = ready if settled is None else max(0, min(int(settled), ready))
    known = math.isfinite(total)
    per_pod = total / max(counted, 1) if known else None
    return ([PodSample(request_m, per_pod, True) for _ in range(counted)]
            + [PodSample(request_m, per_pod, False) for _ in range(ready - counted)]
            + [PodSample(request_m, None, False, pending=True)
               for _ in range(int(replicas) - ready)])
