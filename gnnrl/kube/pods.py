"""What a pod (or a pod template) says about a service: its CPU request and limit, and how
long it took to start.

* Requests and limits are per container; a pod's is the sum over its containers, as the
  HPA's ``calculatePodRequests`` sums them
  (https://github.com/kubernetes/kubernetes/blob/v1.30.0/pkg/controller/podautoscaler/replica_calculator.go).
  A container that leaves a quantity unset makes the pod's total unknown (`container_total`
  gives None): for a request, the HPA then refuses the utilisation metric; for a limit,
  the pod as a whole is not capped (`pod_cpu_limit_m` gives 0, "no limit").
* Start-up time is pod creation (``metadata.creationTimestamp``) to the ``Ready``
  condition's ``lastTransitionTime``
  (https://kubernetes.io/docs/concepts/workloads/pods/pod-lifecycle/#pod-conditions): what a
  scale-up waits before the new pod serves (scheduling, image pull, start, readiness
  probe). A pod that lost and regained readiness shows its latest transition, so the
  median over a service's Ready pods (`median_startup_s`) is what the observation uses.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np

from gnnrl.kube.quantities import QuantityError, cpu_millicores, timestamp_s


def container_total(containers: Sequence[Any] | None, kind: str, resource: str,
                    parse: Callable[[Any, str], float] = cpu_millicores,
                    path: str = "containers", skip: Iterable[str] = ()) -> float | None:
    """Sum of one quantity over containers (`V1Container`s), leaving out those named in
    `skip` (e.g. the Istio sidecar).

    Args:
        kind: "requests" or "limits"; resource: "cpu" or "memory".
        parse: quantity -> number (`cpu_millicores`, `memory_mib`).
        path: where the containers are, for error messages.

    Returns:
        The total (millicores or MiB), or None when no container is counted or one of
        them leaves the quantity unset. Raises `QuantityError` on a bad quantity.
    """
    left_out = set(skip)
    total, counted = 0.0, 0
    for c in containers or []:
        if c.name in left_out:
            continue
        values = getattr(c.resources, kind, None) if c.resources else None
        raw = (values or {}).get(resource)
        if raw is None:
            return None
        total += parse(raw, f"{path}.{c.name}.{kind}.{resource}")
        counted += 1
    return total if counted else None


def pod_cpu_request_m(pod: Any) -> float | None:
    """A pod's CPU request, millicores, summed over all its containers (sidecars included,
    as the HPA counts them); None when one of them has none."""
    return container_total(pod.spec.containers, "requests", "cpu",
                           path=f"pods/{pod.metadata.name}.spec.containers")


def pod_cpu_limit_m(pod: Any) -> float:
    """A pod's CPU limit, millicores, summed over all its containers; 0 = no limit (a
    container without a CPU limit can use any idle CPU of the node, so the pod is not
    capped)."""
    limit = container_total(pod.spec.containers, "limits", "cpu",
                            path=f"pods/{pod.metadata.name}.spec.containers")
    return 0.0 if limit is None else limit


def pod_startup_s(pod: Any) -> float | None:
    """Seconds from the pod's creation to its ``Ready`` condition turning True; None when it
    is not Ready or a timestamp is missing or unreadable (or the transition predates the
    creation, a clock skew)."""
    if pod.status is None:
        return None
    cond = next((c for c in pod.status.conditions or [] if c.type == "Ready"), None)
    if cond is None or cond.status != "True":
        return None
    try:
        created = timestamp_s(pod.metadata.creation_timestamp)
        ready = timestamp_s(cond.last_transition_time)
    except QuantityError:
        return None
    if created is None or ready is None or ready < created:
        return None
    return ready - created


def median_startup_s(pods: Iterable[Any]) -> float | None:
    """Median `pod_startup_s` over the pods that have one; None when none has."""
    times = [t for t in (pod_startup_s(p) for p in pods) if t is not None]
    return float(np.median(times)) if times else None
