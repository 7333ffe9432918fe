"""`redact`: take credentials out of text before it is stored (gaps table) or logged.

An HTTP error body can echo the request: a misconfigured proxy answering 400 with the
headers it received would otherwise put the bearer token into ``gaps/*.parquet``. Every
error text that leaves a source goes through `redact`, which

1. replaces each configured secret (a token, a password) wherever it appears;
2. masks credentials recognisable by their shape: ``Authorization: ...`` header values,
   ``Bearer``/``Basic`` credentials, ``token=``/``password=``-style fields (JSON or
   query strings) and the user-info of URLs (``https://user:pass@host``);
3. truncates the result to `limit` characters (after redacting, so no cut can leave half
   a secret unmatched).

The patterns follow what HTTP and JSON carry credentials in (RFC 9110 section 11.6.2 for
``Authorization``, RFC 6750 for ``Bearer``, RFC 3986 section 3.2.1 for user-info).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

#: What replaces a secret.
MASK = "***"
#: Default length of a redacted error text (characters).
DEFAULT_LIMIT = 200
#: Shorter configured secrets are not replaced verbatim (they would mask ordinary words).
_MIN_SECRET = 4

_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    # Authorization / Proxy-Authorization header values, up to the end of the line or field
    (re.compile(r"(?i)((?:proxy-)?authorization[\"']?\s*[:=]\s*[\"']?)[^\"'\r\n,;}]+"),
     r"\1" + MASK),
    # "Bearer <credential>" / "Basic <credential>" anywhere else
    (re.compile(r"(?i)\b(bearer|basic)(\s+)[A-Za-z0-9._~+/=-]+"), r"\1\2" + MASK),
    # token=..., "access_token": "...", password: ..., api-key=..., secret=...
    (re.compile(r"(?i)((?:access_|id_|refresh_|auth_)?(?:token|password|passwd|secret|"
                r"api[_-]?key)[\"']?\s*[:=]\s*[\"']?)[^\"'\s,&;}]+"), r"\1" + MASK),
    # user-info of a URL
    (re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/@\s]+@"), r"\1" + MASK + "@"),
)


def redact(text: object, secrets: Iterable[str | None] = (), *,
           limit: int | None = DEFAULT_LIMIT) -> str:
    """`text` with `secrets` and credential-shaped substrings masked, at most `limit`
    characters long (None: no limit); a cut is marked with ``...``.

    Args:
        text: anything; converted with `str`.
        secrets: configured secret values (None and strings shorter than 4 are ignored).
        limit: longest result, characters.
    """
    out = str(text)
    for secret in sorted({s for s in secrets if s and len(s) >= _MIN_SECRET}, key=len,
                         reverse=True):
        out = out.replace(secret, MASK)
    for pattern, repl in _PATTERNS:
        out = pattern.sub(repl, out)
    if limit is not None and len(out) > limit:
        out = out[: max(0, limit - 3)] + "..."
    return out
