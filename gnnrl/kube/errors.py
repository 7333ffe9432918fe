"""Typed errors of the Kubernetes API.

Callers decide on the *type*, never on message text (the model: Kopf's `errors.py`):

* `K8sConflict` (409): the object changed since it was read (stale resourceVersion);
* `K8sTooManyRequests` (429): API priority and fairness; `retry_after_s` from the
  ``Retry-After`` header (https://kubernetes.io/docs/reference/using-api/api-concepts/#retry-after);
* `K8sForbidden` (401/403), `K8sNotFound` (404): not retryable;
* `K8sUnavailable` (5xx, timeouts, refused connections): retryable with backoff;
* `K8sMalformed`: the answer breaks the API's schema (`path` names the field).

`error_from_api_exception` maps the official client's `ApiException` onto them by HTTP
status (https://kubernetes.io/docs/reference/using-api/api-concepts/). `retry_after_s` is
the one ``Retry-After`` parser (the HTTP data sources use it too).
"""

from __future__ import annotations

from typing import Any


class K8sError(Exception):
    """A Kubernetes API call failed. `status` is the HTTP status (0 for a transport error);
    `retryable` says whether the same call may succeed later; `source` is "kubernetes"
    (the name the data sources' errors carry too)."""

    retryable: bool = False
    source = "kubernetes"

    def __init__(self, message: str, *, status: int = 0, reason: str = "") -> None:
        super().__init__(f"{self.source}: {message}")
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


class K8sMalformed(K8sError):
    """An API answer that breaks its schema (e.g. a quantity that is not one). `path` names
    the offending field; not retryable."""

    def __init__(self, message: str, *, path: str = "") -> None:
        super().__init__(f"{path}: {message}" if path else message)
        self.path = path


def retry_after_s(headers: Any) -> float | None:
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


def error_from_api_exception(exc: Any, what: str) -> K8sError:
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
        return K8sTooManyRequests(message, retry_after_s=retry_after_s(getattr(exc, "headers",
                                                                               None)))
    if status in (401, 403):
        return K8sForbidden(message, status=status, reason=reason)
    if status == 404:
        return K8sNotFound(message, status=status, reason=reason)
    if status == 0 or status >= 500:
        return K8sUnavailable(message, status=status, reason=reason)
    return K8sError(message, status=status, reason=reason)
