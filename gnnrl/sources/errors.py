"""Typed errors of the HTTP data sources (Kiali, Prometheus).

Callers decide on the *type*, never on message text (the model: Kopf's `errors.py`):

* `SourceUnavailable`: retryable (HTTP 5xx, timeouts, refused connections). The collector
  writes a `gaps` row and keeps running (docs/reliability.md C1).
* `SourceAuthError`: 401/403 from Kiali/Prometheus; retrying will not help.
* `MalformedPayload`: the answer is not what the schema says (bad JSON, wrong types, too
  large); the message names the offending path, e.g. ``elements.edges[3].data.target``
  (docs/reliability.md C4). `PayloadTooLarge` (a subclass): larger than the configured cap.
* `TooManyServices`: more services than the observation has slots (docs/reliability.md C6).

Kubernetes API errors (`K8sError` and its subclasses) live with the Kubernetes I/O, in
`gnnrl.kube.errors`; they carry the same `retryable` and `source` attributes, so a caller
that retries a data source catches ``(SourceError, K8sError)``.
"""

from __future__ import annotations


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
