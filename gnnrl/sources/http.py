"""Shared HTTP plumbing of the Kiali and Prometheus sources: a `requests.Session` with
urllib3 `Retry` (jittered exponential backoff), auth, TLS verification, a payload size cap,
and the mapping of failures onto `gnnrl.sources.errors`.

A caller with a deadline (the scaler's tick) passes ``deadline`` (a `time.monotonic()`
value): every attempt's timeout is cut to what is left, no retry starts past it, and a
`Retry-After` longer than what is left ends the call at once instead of sleeping through
the tick (urllib3's own `Retry` honours Retry-After without a bound, so that path does its
own retries).
"""

from __future__ import annotations

import dataclasses
import json
import time
from typing import Any

import requests
import urllib3
from requests.adapters import HTTPAdapter

from gnnrl.config import ConfigError, JsonConfig
from gnnrl.kube.errors import retry_after_s
from gnnrl.sources.errors import (
    MalformedPayload,
    PayloadTooLarge,
    SourceAuthError,
    SourceError,
    SourceUnavailable,
)
from gnnrl.sources.redact import redact

#: Statuses retried by urllib3 before giving up: rate limiting (429, honouring its
#: Retry-After) and gateway/proxy errors or overload (5xx).
RETRY_STATUSES = (429, 500, 502, 503, 504)
#: Bytes of a 4xx body read for the error message (redacted, then cut to `ERROR_TEXT_LIMIT`).
_ERROR_BODY_BYTES = 4096
#: Characters of a 4xx body kept in the error (and so in the gaps table).
ERROR_TEXT_LIMIT = 200


@dataclasses.dataclass
class HttpConfig(JsonConfig):
    """How to reach an HTTP source.

    Attributes:
        base_url: e.g. ``https://kiali.istio-system:20001/kiali`` (no trailing slash needed).
        token: bearer token (e.g. a ServiceAccount token); mutually exclusive with basic auth.
            Never shown by ``repr`` (nor is `password`).
        token_file: path read at each request instead of `token` (projected tokens rotate).
        username, password: HTTP basic auth.
        verify: True (system CAs), False (no TLS verification), or a CA bundle path.
        timeout_s: connect and read timeout of one attempt, seconds.
        retries: attempts after the first for 5xx / timeouts / connection errors.
        backoff_s: urllib3 backoff factor: sleeps backoff_s * 2**(n-1) before retry n.
        backoff_jitter_s: uniform random extra sleep in [0, backoff_jitter_s] per retry.
        max_payload_bytes: larger answers raise `MalformedPayload` (a huge payload, C4).
    """

    base_url: str = ""
    token: str | None = dataclasses.field(default=None, repr=False)
    token_file: str | None = None
    username: str | None = None
    password: str | None = dataclasses.field(default=None, repr=False)
    verify: bool | str = True
    timeout_s: float = 10.0
    retries: int = 3
    backoff_s: float = 0.5
    backoff_jitter_s: float = 0.5
    max_payload_bytes: int = 64 * 1024 * 1024

    def __post_init__(self) -> None:
        if not isinstance(self.base_url, str) or not self.base_url.startswith(("http://",
                                                                              "https://")):
            raise ConfigError(f"base_url: expected an http(s) URL, got {self.base_url!r}")
        if (self.token or self.token_file) and (self.username or self.password):
            raise ConfigError("token/token_file and username/password: choose one auth method")
        if (self.username is None) != (self.password is None):
            raise ConfigError("username and password must be given together")
        if not isinstance(self.verify, bool | str):
            raise ConfigError(f"verify: expected a bool or a CA bundle path, got {self.verify!r}")
        for name in ("timeout_s", "backoff_s", "backoff_jitter_s"):
            value = getattr(self, name)
            if not isinstance(value, int | float) or value < 0 or (name == "timeout_s"
                                                                   and value == 0):
                raise ConfigError(f"{name}: expected a non-negative number (timeout_s > 0), "
                                  f"got {value!r}")
        if not isinstance(self.retries, int) or self.retries < 0:
            raise ConfigError(f"retries: expected an integer >= 0, got {self.retries!r}")
        if not isinstance(self.max_payload_bytes, int) or self.max_payload_bytes <= 0:
            raise ConfigError(f"max_payload_bytes: expected a positive integer, "
                              f"got {self.max_payload_bytes!r}")


class HttpJsonClient:
    """GETs JSON from one base URL with retries and typed errors (`source` names it)."""

    def __init__(self, config: HttpConfig, source: str) -> None:
        self.config = config
        self.source = source
        self.session = requests.Session()
        retry = urllib3.Retry(
            total=config.retries, connect=config.retries, read=config.retries,
            status=config.retries, status_forcelist=RETRY_STATUSES,
            allowed_methods=frozenset({"GET", "POST"}), backoff_factor=config.backoff_s,
            backoff_jitter=config.backoff_jitter_s, respect_retry_after_header=True,
            raise_on_status=False,
        )
        adapter = HTTPAdapter(max_retries=retry)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        # one attempt per call: the deadline path retries itself (`get_json(deadline=...)`)
        self._once = requests.Session()
        once = HTTPAdapter(max_retries=urllib3.Retry(total=0, read=False, redirect=0,
                                                     raise_on_status=False))
        self._once.mount("http://", once)
        self._once.mount("https://", once)
        for session in (self.session, self._once):
            session.verify = config.verify
            if config.username is not None:
                session.auth = (config.username, config.password or "")
            session.headers["Accept"] = "application/json"
        #: the last token read from `token_file` (redacted from error texts like `token`)
        self._file_token: str | None = None

    def secrets(self) -> tuple[str, ...]:
        """The credentials this client sends (to redact them from any error text)."""
        return tuple(s for s in (self.config.token, self._file_token, self.config.password)
                     if s)

    def _auth_headers(self) -> dict[str, str]:
        token = self.config.token
        if self.config.token_file:
            try:
                with open(self.config.token_file, encoding="utf-8") as fh:
                    token = fh.read().strip()
            except OSError as exc:
                raise SourceAuthError(f"cannot read token_file {self.config.token_file}: "
                                      f"{exc.strerror or type(exc).__name__}",
                                      source=self.source) from exc
            self._file_token = token
        return {"Authorization": f"Bearer {token}"} if token else {}

    def get_json(self, path: str, params: dict[str, Any] | list[tuple[str, Any]],
                 deadline: float | None = None) -> Any:
        """GET ``base_url + path`` and decode JSON, raising typed `SourceError`s.

        Args:
            deadline: a `time.monotonic()` value the call must end by (None: the configured
                timeout and retries only). With it, each attempt times out at
                min(`timeout_s`, what is left), retries wait their backoff or `Retry-After`
                only if that ends before the deadline, and the body is read only until it.

        Error messages never carry a credential: 4xx bodies are redacted and cut to
        `ERROR_TEXT_LIMIT` characters, URLs lose their user-info (`gnnrl.sources.redact`).
        """
        try:
            if deadline is None:
                return self._get_json(path, params)
            return self._get_json_by(path, params, deadline)
        except SourceError as exc:
            text = str(exc)
            clean = redact(text, self.secrets(), limit=None)
            if clean == text:
                raise
            # same type, message without the secret (the chained cause may hold it: drop it)
            exc.args = (clean,)
            raise exc from None

    def _get_json_by(self, path: str, params: dict[str, Any] | list[tuple[str, Any]],
                     deadline: float) -> Any:
        """`_get_json` with one attempt at a time and every wait bounded by `deadline`."""
        url = self.config.base_url.rstrip("/") + path
        retry = 0
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise SourceUnavailable(f"no time left before the deadline: {url}",
                                        source=self.source)
            try:
                return self._get_json(path, params, session=self._once,
                                      timeout_s=min(self.config.timeout_s, left),
                                      deadline=deadline)
            except SourceUnavailable as exc:
                if retry >= self.config.retries:
                    raise
                wait = (exc.retry_after_s if exc.retry_after_s is not None
                        else self.config.backoff_s * 2 ** retry)
                if time.monotonic() + wait >= deadline:
                    raise SourceUnavailable(f"{exc}; the next try (in {wait:g} s) would pass "
                                            "the deadline", source="",
                                            retry_after_s=exc.retry_after_s) from exc
                retry += 1
                time.sleep(wait)

    def _get_json(self, path: str, params: dict[str, Any] | list[tuple[str, Any]],
                  session: requests.Session | None = None, timeout_s: float | None = None,
                  deadline: float | None = None) -> Any:
        url = self.config.base_url.rstrip("/") + path
        try:
            # verify per request: requests lets REQUESTS_CA_BUNDLE override session.verify
            resp = (session or self.session).get(
                url, params=params, headers=self._auth_headers(),
                timeout=timeout_s or self.config.timeout_s, stream=True,
                verify=self.config.verify)
        except requests.exceptions.SSLError as exc:      # before ConnectionError, its base
            raise SourceError(f"TLS verification of {url} failed (set verify to the server's "
                              f"CA bundle): {exc}", source=self.source) from exc
        except requests.exceptions.Timeout as exc:
            raise SourceUnavailable(f"{self._timeout_text(session, timeout_s)}: {url}",
                                    source=self.source) from exc
        except requests.exceptions.RetryError as exc:
            raise SourceUnavailable(f"still failing after {self.config.retries} retries: {url}",
                                    source=self.source) from exc
        except requests.exceptions.ConnectionError as exc:
            if _timed_out(exc):   # urllib3 gave up on read timeouts: say so, briefly
                raise SourceUnavailable(f"{self._timeout_text(session, timeout_s)}: {url}",
                                        source=self.source) from exc
            raise SourceUnavailable(f"cannot connect to {url}: {exc}",
                                    source=self.source) from exc
        except requests.exceptions.RequestException as exc:
            raise SourceError(f"request to {url} failed: {exc}", source=self.source) from exc
        with resp:
            self._check_status(resp, url)
            body = self._read_capped(resp, url, deadline)
        try:
            return json.loads(body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise MalformedPayload(f"response of {url} is not JSON: {exc}",
                                   source=self.source) from exc
        except RecursionError:
            # json's decoder recurses once per nesting level: "[[[[...]]]]" 100k deep
            # exhausts the interpreter's stack (a payload no real source sends)
            raise MalformedPayload(f"response of {url} is nested deeper than the JSON "
                                   "decoder allows", source=self.source) from None

    def _timeout_text(self, session: requests.Session | None, timeout_s: float | None) -> str:
        if session is None:  # urllib3 retried
            return f"timeout after {self.config.retries} retries"
        return f"no answer within {timeout_s or self.config.timeout_s:.3g} s"

    def _check_status(self, resp: requests.Response, url: str) -> None:
        if resp.status_code in (401, 403):
            raise SourceAuthError(f"HTTP {resp.status_code} from {url} (check the token or "
                                  "credentials and their permissions)", source=self.source)
        if resp.status_code in RETRY_STATUSES or resp.status_code >= 500:  # retries spent
            raise SourceUnavailable(f"HTTP {resp.status_code} from {url}",
                                    source=self.source,
                                    retry_after_s=retry_after_s(resp.headers))
        if resp.status_code >= 400:
            # the body may echo the request (a proxy printing its headers): redact, then cut
            raw = resp.raw.read(_ERROR_BODY_BYTES, decode_content=True)
            snippet = redact(raw.decode("utf-8", "replace"), self.secrets(),
                             limit=ERROR_TEXT_LIMIT)
            raise SourceError(f"HTTP {resp.status_code} from {url}: {snippet}",
                              source=self.source)

    def _read_capped(self, resp: requests.Response, url: str,
                     deadline: float | None = None) -> bytes:
        """The body, streamed: refused (`PayloadTooLarge`) as soon as it passes
        `max_payload_bytes` (by its Content-Length, or while reading when it has none), and
        `SourceUnavailable` when it is still arriving at the deadline."""
        limit = self.config.max_payload_bytes
        declared = resp.headers.get("Content-Length")
        if declared and declared.isdigit() and int(declared) > limit:
            raise PayloadTooLarge(f"payload of {declared} bytes exceeds max_payload_bytes="
                                  f"{limit}: {url}", limit=limit, source=self.source)
        chunks, size = [], 0
        try:
            for chunk in resp.iter_content(chunk_size=1 << 16):
                size += len(chunk)
                if size > limit:
                    raise PayloadTooLarge(f"payload exceeds max_payload_bytes={limit}: {url}",
                                          limit=limit, source=self.source)
                if deadline is not None and time.monotonic() > deadline:
                    raise SourceUnavailable(f"still reading {url} at the deadline",
                                            source=self.source)
                chunks.append(chunk)
        except requests.exceptions.RequestException as exc:
            raise SourceUnavailable(f"connection broke while reading {url}: {exc}",
                                    source=self.source) from exc
        return b"".join(chunks)

    def close(self) -> None:
        self.session.close()
        self._once.close()


def _timed_out(exc: requests.exceptions.ConnectionError) -> bool:
    """Whether requests' ConnectionError wraps urllib3's retries ending on a timeout."""
    reason = getattr(exc.args[0] if exc.args else None, "reason", None)
    # urllib3's NewConnectionError (refused, unresolvable) subclasses ConnectTimeoutError
    return (isinstance(reason, urllib3.exceptions.TimeoutError)
            and not isinstance(reason, urllib3.exceptions.NewConnectionError))
