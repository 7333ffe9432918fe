"""Typed errors of the data sources and of the Kubernetes API.

Callers decide on the *type*, never on message text (the model: Kopf's `errors.py`):

* `SourceUnavailable`: retryable (HTTP 5xx, timeouts, refused connections). The collector
  writes a `gaps` row and keeps running (docs/reliability.md C1).
* `SourceAuthError`: 401/403 from Kiali/Prometheus; retrying will not help.
* `MalformedPayload`: the answer is not what the schema says (bad JSON, wrong types, too
  large); the message names the offending path, e.g. ``elements.edges[3].data.target``
  (docs/reliability.md C4). `PayloadTooLarge` (a subclass): larger than the configured cap.
* `TooManyServices`: more services than the observation has slots (docs/reliability.md C6).

Kubernetes API errors (`K8s*`) are raised by `gnnrl.sources.kubernetes` and by the
scaler's writer; `k8s_error_from_api_exception` maps the official client's `ApiException`
onto them by HTTP status (https://kubernetes.io/docs/reference/using-api/api-concepts/).
"""

from __future__ import annotations

from typing import Any


class SourceError(Exception):
    """Base of every data-source error. `source` names the system ("kiali", ...)."""

    retryable: bool = False

    def __init__(self, message: str, *, source: str = "") -> None:
        super().__init__(f"{source}: {message}" if source else message)
        self.source = source


class SourceUnavailable(SourceError):
    """The source did not answer usefully: 5xx, timeout, connection refused. Retryable.
    `retry_after_s`: the server's `Retry-After` (seconds) when it sent one."""

    retryable = True

    def __init__(self, message: str, *, source: str = "",
                 retry_after_s: float | None = None) -> None:
        super().__init__(message, source=source)
        self.retry_after_s = retry_after_s


class SourceAuthError(SourceError):
    """401/403: credentials missing, wrong or not allowed. Not retryable."""


class MalformedPayload(SourceError):
    """The payload breaks the source's schema. `path` names the offending field."""

    def __init__(self, message: str, *, path: str = "", source: str = "") -> None:
        super().__init__(f"{path}: {message}" if path else message, source=source)
        self.path = path


class PayloadTooLarge(MalformedPayload):
    """The answer is larger than the configured cap (`max_payload_bytes`); refused before
    parsing, while streaming, so the process never holds more than the cap."""

    def __init__(self, message: str, *, limit: int, source: str = "") -> None:
        super().__init__(message, source=source)
        self.limit = limit


class TooManyServices(SourceError):
    """The graph has more services than allowed (`max_services`); never truncated silently."""

    def __init__(self, count: int, limit: int, *, source: str = "") -> None:
        super().__init__(f"{count} services exceed the limit of {limit} (raise max_nodes or "
                         "restrict the namespace)", source=source)
        self.count, self.limit = count, limit


# ------------------------------------------------------------------ Kubernetes API errors
class K8sError(SourceError):
    """A Kubernetes API call failed. `status` is the HTTP status (0 for a transport error)."""

    def __init__(self, message: str, *, status: int = 0, reason: str = "") -> None:
        super().__init__(message, source="kubernetes")
        self.status, self.reason = status, reason


class K8sConflict(K8sError):
    """409: the object changed since it was read (stale resourceVersion). Re-read, recompute."""


class K8sTooManyRequests(K8sError):
    """429: API priority and fairness or rate limit. Wait at least `retry_after_s` seconds
    (from the `Retry-After` header; None when the server sent none)."""

    retryable = True

    def __init__(self, message: str, *, retry_after_s: float | None = None, status: int = 429,
                 reason: str = "TooManyRequests") -> None:
        super().__init__(message, status=status, reason=reason)
        self.retry_after_s = retry_after_s


class K8sForbidden(K8sError):
    """401/403: RBAC does not allow the call. Do not retry until the configuration changes."""


class K8sNotFound(K8sError):
    """404: the object (or the API group, e.g. metrics.k8s.io) does not exist."""


class K8sUnavailable(K8sError):
    """5xx, timeout or connection error: retryable with backoff."""

    retryable = True


def _retry_after(headers: Any) -> float | None:
    """Seconds from a `Retry-After` header (delta-seconds form); None if absent/unparsable."""
    if headers is None:
        return None
    try:
        value = headers.get("Retry-After")
    except AttributeError:
        return None
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        return None
    return seconds if seconds >= 0 else None


def k8s_error_from_api_exception(exc: Any, what: str) -> K8sError:
    """Map a `kubernetes.client.ApiException` (or a transport error) to a typed `K8sError`.

    Args:
        exc: the exception raised by the official client.
        what: what was being done, for the message (e.g. "patch scale shop/cartservice").
    """
    status = int(getattr(exc, "status", 0) or 0)
    reason = str(getattr(exc, "reason", "") or "")
    message = f"{what}: HTTP {status} {reason}".strip() if status else f"{what}: {exc}"
    if status == 409:
        return K8sConflict(message, status=status, reason=reason)
    if status == 429:
        return K8sTooManyRequests(message, retry_after_s=_retry_after(getattr(exc, "headers",
                                                                             None)))
    if status in (401, 403):
        return K8sForbidden(message, status=status, reason=reason)
    if status == 404:
        return K8sNotFound(message, status=status, reason=reason)
    if status == 0 or status >= 500:
        return K8sUnavailable(message, status=status, reason=reason)
    return K8sError(message, status=status, reason=reason)
