"""Kubernetes Events on scaling and on fallback changes (`kubectl describe deployment`).

Events are best effort, as in client-go's `record.EventRecorder`: a failure to create one is
logged and counted, never retried and never fails the tick. Reasons follow the HPA's
(`SuccessfulRescale`, `FailedRescale`, `FailedGetResourceMetric`;
pkg/controller/podautoscaler/horizontal.go) plus `FallbackEntered` / `FallbackLeft`.
"""

from __future__ import annotations

import datetime as dt
import logging

import kubernetes

from gnnrl.kube.client import call_api
from gnnrl.kube.errors import K8sError

log = logging.getLogger("gnnrl.scaler.events")

COMPONENT = "gnnrl-scaler"


class EventRecorder:
    """Creates core/v1 Events about Deployments of one namespace.

    Args:
        api_client: a `kubernetes.client.ApiClient`, or None to record nothing (shadow mode
            and the simulator: zero writes).
        namespace: where the Deployments (and so the Events) live.
        instance: this replica's identity (`reportingInstance`).
    """

    def __init__(self, api_client: kubernetes.client.ApiClient | None, namespace: str,
                 instance: str = "", timeout_s: float = 5.0) -> None:
        self.core = kubernetes.client.CoreV1Api(api_client) if api_client is not None else None
        self.namespace, self.instance = namespace, instance
        self.timeout = (timeout_s, timeout_s)
        self.failures = 0
        #: every event asked for (also when disabled): (type, reason, object, message)
        self.recorded: list[tuple[str, str, str, str]] = []

    def emit(self, deployment: str, reason: str, message: str, warning: bool = False) -> None:
        """Record one Event on Deployment `deployment` ("" = the scaler itself, no object)."""
        kind = "Warning" if warning else "Normal"
        self.recorded.append((kind, reason, deployment, message))
        log.info("event %s %s %s: %s", kind, reason, deployment or "-", message)
        if self.core is None:
            return
        now = dt.datetime.now(dt.UTC)
        ref = kubernetes.client.V1ObjectReference(
            api_version="apps/v1", kind="Deployment", name=deployment or COMPONENT,
            namespace=self.namespace)
        body = kubernetes.client.CoreV1Event(
            metadata=kubernetes.client.V1ObjectMeta(generate_name=f"{deployment or COMPONENT}.",
                                                    namespace=self.namespace),
            involved_object=ref, reason=reason, message=message[:1024], type=kind, count=1,
            first_timestamp=now, last_timestamp=now,
            source=kubernetes.client.V1EventSource(component=COMPONENT),
            reporting_component=COMPONENT, reporting_instance=self.instance or COMPONENT)
        try:
            call_api(f"create event {reason}", self.core.create_namespaced_event,
                     self.namespace, body, _request_timeout=self.timeout)
        except K8sError as exc:
            self.failures += 1
            log.warning("could not record event %s on %s: %s", reason, deployment, exc)
