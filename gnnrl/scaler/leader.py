"""Leader election on a `coordination.k8s.io/v1` Lease, so two replicas never both write (S16).

The algorithm is client-go's `tools/leaderelection` (`tryAcquireOrRenew`):

* the Lease is free when it does not exist, names us, or its record has not changed for
  `leaseDurationSeconds` *as observed on our own clock* (client-go compares the local time at
  which it last saw the record change, never the remote `renewTime`, so clock skew between
  nodes does not matter);
* acquiring or renewing is an update with the read resourceVersion, so of two candidates
  only one succeeds (the other gets 409);
* a leader that has not renewed successfully for `renew_deadline_s` stops writing, which is
  shorter than the lease duration, so it stops before anyone else can take over.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import threading
from collections.abc import Callable

import kubernetes

from gnnrl.kube.client import call_api
from gnnrl.kube.errors import K8sError, K8sNotFound
from gnnrl.scaler.clock import Clock

log = logging.getLogger("gnnrl.scaler.leader")


@dataclasses.dataclass
class _Observed:
    record: tuple[str, str, str]  # holder, renewTime, resourceVersion
    at: float                     # our clock when the record last changed


class LeaseElector:
    """Acquires and renews one Lease; `is_leader()` says whether this replica may write.

    Args:
        api_client: a `kubernetes.client.ApiClient`.
        namespace, name: the Lease.
        identity: this replica's holder identity (its pod name).
        clock: the scaler's clock.
        lease_duration_s, renew_deadline_s: see `ScalerConfig`.
        timeout_s: per-request timeout.
    """

    def __init__(self, api_client: kubernetes.client.ApiClient, namespace: str, name: str,
                 identity: str, clock: Clock, lease_duration_s: float = 15.0,
                 renew_deadline_s: float = 10.0, timeout_s: float = 5.0) -> None:
        self.api = kubernetes.client.CoordinationV1Api(api_client)
        self.namespace, self.name, self.identity = namespace, name, identity
        self.clock = clock
        self.lease_duration_s = lease_duration_s
        self.renew_deadline_s = renew_deadline_s
        self.timeout = (timeout_s, timeout_s)
        self._renewed_at: float | None = None
        self._observed: _Observed | None = None

    def is_leader(self) -> bool:
        """True while our last successful acquire/renew is younger than the renew deadline."""
        return (self._renewed_at is not None
                and self.clock.monotonic() - self._renewed_at < self.renew_deadline_s)

    def try_acquire_or_renew(self) -> bool:
        """One election round (call every `retry_period_s`). Returns `is_leader()` after it.

        API errors are logged and count as a failed round (the renew deadline then decides).
        """
        try:
            self._round()
        except K8sError as exc:
            log.warning("lease %s/%s: %s", self.namespace, self.name, exc)
        return self.is_leader()

    def _spec(self, acquire: bool, transitions: int, old_acquire: object) -> dict:
        now = dt.datetime.now(dt.UTC)
        return {"holder_identity": self.identity,
                "lease_duration_seconds": max(1, round(self.lease_duration_s)),
                "acquire_time": now if acquire else old_acquire,
                "renew_time": now, "lease_transitions": transitions}

    def _round(self) -> None:
        now = self.clock.monotonic()
        what = f"lease {self.namespace}/{self.name}"
        try:
            lease = call_api(what, self.api.read_namespaced_lease, self.name, self.namespace,
                          _request_timeout=self.timeout)
        except K8sNotFound:
            body = kubernetes.client.V1Lease(
                metadata=kubernetes.client.V1ObjectMeta(name=self.name, namespace=self.namespace),
                spec=kubernetes.client.V1LeaseSpec(**self._spec(True, 0, None)))
            call_api(what, self.api.create_namespaced_lease, self.namespace, body,
                  _request_timeout=self.timeout)
            self._renewed_at = now
            return
        spec = lease.spec
        holder = spec.holder_identity or ""
        record = (holder, str(spec.renew_time), str(lease.metadata.resource_version))
        if self._observed is None or self._observed.record != record:
            self._observed = _Observed(record, now)
        duration = float(spec.lease_duration_seconds or self.lease_duration_s)
        if holder and holder != self.identity and now - self._observed.at < duration:
            self._renewed_at = None  # someone else holds a live lease
            return
        mine = holder == self.identity
        transitions = int(spec.lease_transitions or 0) + (0 if mine else 1)
        lease.spec = kubernetes.client.V1LeaseSpec(
            **self._spec(not mine, transitions, spec.acquire_time))
        call_api(what, self.api.replace_namespaced_lease, self.name, self.namespace, lease,
              _request_timeout=self.timeout)
        self._renewed_at = now
        if not mine:
            log.info("lease %s/%s acquired by %s", self.namespace, self.name, self.identity)


def renew_in_background(elector: LeaseElector, retry_period_s: float, stop: threading.Event,
                        on_round: Callable[[bool], None] | None = None) -> threading.Thread:
    """Run election rounds every `retry_period_s` on a daemon thread until `stop` is set
    (client-go renews on its own goroutine, so a long tick never delays a renewal).
    `on_round(is_leader)` is called after each round (e.g. to export the leader gauge)."""

    def loop() -> None:
        while not stop.is_set():
            leader = elector.try_acquire_or_renew()
            if on_round is not None:
                on_round(leader)
            stop.wait(retry_period_s)

    thread = threading.Thread(target=loop, name="gnnrl-scaler-lease", daemon=True)
    thread.start()
    return thread
