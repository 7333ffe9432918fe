"""Apply: write a guarded replica count, with the Kubernetes API error policy (S11-S14).

The policy looks only at the error *type* (`gnnrl.kube.errors`), following Kopf's
`errors.py` and client-go's conventions:

* 409 `K8sConflict` -> re-read the scale, recompute the desired count from the fresh
  current count, write again at most once per tick; never write the stale value (S11);
* 429 `K8sTooManyRequests` -> wait at least `Retry-After` seconds
  (https://kubernetes.io/docs/reference/using-api/api-concepts/#retry-after), or give up
  when that wait would pass the tick's deadline (S12);
* timeout / 5xx `K8sUnavailable` -> the configured backoff delays, bounded by the deadline
  (S13);
* 403 `K8sForbidden` -> no retry at all; the caller disables the target until the config
  changes (S14); 404 -> the Deployment is gone, skipped this tick.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Protocol

from gnnrl.scaler.clock import Clock
from gnnrl.kube.client import ScaleState
from gnnrl.kube.errors import (
    K8sConflict,
    K8sError,
    K8sForbidden,
    K8sNotFound,
    K8sTooManyRequests,
    K8sUnavailable,
)


class ScaleAPI(Protocol):
    """The read and the write of a Deployment's scale (KubeCluster, SimCluster)."""

    def read_scale(self, name: str) -> ScaleState: ...

    def write_scale(self, scale: ScaleState, replicas: int) -> ScaleState: ...


@dataclasses.dataclass(frozen=True)
class ApplyResult:
    """What happened to one write.

    Attributes:
        status: "written", "unchanged" (desired == current after a re-read), "forbidden",
            "not_found", "deadline" (gave up: the next wait would pass the deadline),
            "conflict" (a second 409 in the tick), "unavailable" (backoffs exhausted),
            "error" (another API error).
        replicas: the count now in spec.replicas as far as we know.
        attempts: write attempts made.
        error: the last error, if any.
    """

    status: str
    replicas: int
    attempts: int = 0
    error: K8sError | None = None


def apply_scale(api: ScaleAPI, scale: ScaleState, desired: int,
                recompute: Callable[[ScaleState], int], clock: Clock, deadline: float,
                backoff_s: Sequence[float]) -> ApplyResult:
    """Write `desired` replicas to the Deployment of `scale`, within `deadline`.

    Args:
        scale: the scale read this tick (its resourceVersion guards the write).
        desired: the guarded count (the caller only calls when desired != scale.replicas).
        recompute: the freshly read scale -> the guarded desired count (used once, after a
            409; it re-decides from the fresh state, never from the stale one).
        clock: `now()` / `sleep(s)`; `deadline` is a `clock.monotonic()` value.
        backoff_s: delays before the retries of timeouts/5xx.

    Returns:
        ApplyResult; never raises a K8sError.
    """
    attempts, conflicts, unavailable, throttled = 0, 0, 0, 0
    current = scale.replicas
    while True:
        if desired == current:
            return ApplyResult("unchanged", current, attempts)
        attempts += 1
        try:
            done = api.write_scale(scale, desired)
            return ApplyResult("written", done.replicas, attempts)
        except K8sConflict as exc:
            conflicts += 1
            if conflicts > 1:
                return ApplyResult("conflict", current, attempts, exc)
            try:
                scale = api.read_scale(scale.name)
            except K8sError as read_exc:
                return ApplyResult(_status_of(read_exc), current, attempts, read_exc)
            current = scale.replicas
            desired = recompute(scale)
        except K8sTooManyRequests as exc:
            throttled += 1
            wait = _throttle_wait(exc, backoff_s)
            if throttled > len(backoff_s) or clock.monotonic() + wait > deadline:
                return ApplyResult("deadline", current, attempts, exc)
            clock.sleep(wait)
        except K8sUnavailable as exc:
            if unavailable >= len(backoff_s):
                return ApplyResult("unavailable", current, attempts, exc)
            wait = backoff_s[unavailable]
            unavailable += 1
            if clock.monotonic() + wait > deadline:
                return ApplyResult("deadline", current, attempts, exc)
            clock.sleep(wait)
        except K8sError as exc:
            return ApplyResult(_status_of(exc), current, attempts, exc)


def _throttle_wait(exc: K8sTooManyRequests, backoff_s: Sequence[float]) -> float:
    """At least Retry-After, and never less than the first backoff (no tight loop on 0)."""
    floor = backoff_s[0] if backoff_s else 1.0
    return max(exc.retry_after_s if exc.retry_after_s is not None else floor, floor)


def _status_of(exc: K8sError) -> str:
    if isinstance(exc, K8sForbidden):
        return "forbidden"
    if isinstance(exc, K8sNotFound):
        return "not_found"
    if isinstance(exc, K8sUnavailable | K8sTooManyRequests):
        return "unavailable"
    return "error"


def read_with_retry(api: ScaleAPI, name: str, clock: Clock, deadline: float,
                    backoff_s: Sequence[float]) -> ScaleState:
    """`api.read_scale(name)` with the same 429 / timeout policy as `apply_scale`.

    Raises:
        K8sError: the last error once retries or the deadline are exhausted; 403/404 at once.
    """
    tries = 0
    while True:
        try:
            return api.read_scale(name)
        except K8sTooManyRequests as exc:
            wait = _throttle_wait(exc, backoff_s)
            if clock.monotonic() + wait > deadline or tries >= len(backoff_s):
                raise
            tries += 1
            clock.sleep(wait)
        except K8sUnavailable:
            if tries >= len(backoff_s) or clock.monotonic() + backoff_s[tries] > deadline:
                raise
            clock.sleep(backoff_s[tries])
            tries += 1
