"""Values of Kubernetes API objects as numbers: resource quantities ("250m", "1.5Gi",
"123456789n", "1e3"), Go durations ("30s", "1m0s") and timestamps (RFC 3339).

The grammar is apimachinery's `resource.Quantity`
(https://kubernetes.io/docs/reference/kubernetes-api/common-definitions/quantity/):
``<signedNumber><suffix>`` where suffix is a binary SI suffix (Ki Mi Gi Ti Pi Ei, powers
of 1024), a decimal SI suffix (n u m "" k M G T P E, powers of 1000) or a decimal exponent
(``e<n>`` / ``E<n>``). metrics-server reports CPU in nanocores (``n``) and memory in
``Ki``; pod specs usually use ``m`` and ``Mi``/``Gi``.

Durations are Go's `time.Duration` strings (https://pkg.go.dev/time#ParseDuration), as
metrics.k8s.io writes a sample's ``window``; timestamps are RFC 3339 (``metav1.Time``), or
the `datetime` the official client already made of them.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from decimal import Decimal, InvalidOperation
from typing import Any

from gnnrl.kube.errors import K8sMalformed

_BINARY = {"Ki": 1024, "Mi": 1024**2, "Gi": 1024**3, "Ti": 1024**4, "Pi": 1024**5,
           "Ei": 1024**6}
_DECIMAL = {"n": Decimal("1e-9"), "u": Decimal("1e-6"), "m": Decimal("1e-3"), "": Decimal(1),
            "k": Decimal("1e3"), "M": Decimal("1e6"), "G": Decimal("1e9"), "T": Decimal("1e12"),
            "P": Decimal("1e15"), "E": Decimal("1e18")}
_QUANTITY = re.compile(
    r"^([+-]?(?:\d+\.?\d*|\.\d+))(?:([eE][+-]?\d+)|(Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE])?)$")
_MIB = Decimal(1024**2)


class QuantityError(K8sMalformed, ValueError):
    """A string that is not a Kubernetes quantity (or duration, or timestamp); a
    `ValueError` too, so a reader that skips malformed samples catches it as one."""


def parse_quantity(value: str | int | float, path: str = "quantity") -> Decimal:
    """The exact value of a quantity in base units (cores, bytes, ...).

    Raises:
        QuantityError: not a quantity (the message quotes it and names `path`).
    """
    if isinstance(value, bool):
        raise QuantityError(f"expected a quantity, got {value!r}", path=path)
    if isinstance(value, int | float):
        return Decimal(str(value))
    if not isinstance(value, str):
        raise QuantityError(f"expected a quantity string, got {type(value).__name__}", path=path)
    m = _QUANTITY.match(value.strip())
    if m is None:
        raise QuantityError(f"not a Kubernetes quantity: {value!r:.40}", path=path)
    number, exponent, suffix = m.group(1), m.group(2), m.group(3) or ""
    try:
        base = Decimal(number)
        if exponent:
            return base * Decimal(10) ** int(exponent[1:])
    except (InvalidOperation, ValueError, ArithmeticError):
        raise QuantityError(f"not a Kubernetes quantity: {value!r:.40}", path=path) from None
    if suffix in _BINARY:
        return base * _BINARY[suffix]
    return base * _DECIMAL[suffix]


def cpu_millicores(value: str | int | float, path: str = "cpu") -> float:
    """CPU quantity -> millicores (``"250m"`` -> 250.0, ``"1"`` -> 1000.0,
    ``"123456789n"`` -> 123.456789). Negative values raise `QuantityError`."""
    return _finite(parse_quantity(value, path) * 1000, value, path)


def memory_mib(value: str | int | float, path: str = "memory") -> float:
    """Memory quantity -> MiB (``"64Mi"`` -> 64.0, ``"1Gi"`` -> 1024.0,
    ``"65536Ki"`` -> 64.0, ``"1e9"`` -> 953.67...). Negative values raise `QuantityError`."""
    return _finite(parse_quantity(value, path) / _MIB, value, path)


def _finite(q: Decimal, value: object, path: str) -> float:
    number = float(q)
    if not math.isfinite(number) or number < 0:
        raise QuantityError(f"expected a finite non-negative quantity, got {value!r:.40}",
                            path=path)
    return number


_GO_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_GO_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def go_duration_s(text: Any, path: str = "duration") -> float:
    """A Go duration string as metrics.k8s.io writes `window` ("30s", "1m0s", "10.5s")
    in seconds; 0 when absent. Raises `QuantityError` on anything else."""
    if text is None or text == "":
        return 0.0
    parts = _GO_DURATION.findall(str(text))
    if not parts or "".join(n + u for n, u in parts) != str(text):
        raise QuantityError(f"not a duration: {text!r:.40}", path=path)
    return sum(float(n) * _GO_UNITS[u] for n, u in parts)


def timestamp_s(value: Any, path: str = "timestamp") -> float | None:
    """A Kubernetes timestamp (a `datetime`, or an RFC 3339 string such as
    ``2026-01-01T00:00:30Z``) in seconds since the epoch; None when absent; a naive one is
    UTC. Raises `QuantityError` on anything else."""
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        stamp = value
    else:
        try:
            stamp = dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        except ValueError:
            raise QuantityError(f"not a timestamp: {value!r:.40}", path=path) from None
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=dt.UTC)
    return stamp.timestamp()
