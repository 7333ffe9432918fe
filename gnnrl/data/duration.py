"""Parse human durations: ``30s``, ``5m``, ``2h``, ``1h30m``, ``1d``, ``250ms`` or plain seconds."""

from __future__ import annotations

import re

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")


def parse_duration(text: str | float | int) -> float:
    """Seconds in `text`.

    ``"90"`` and ``90`` are seconds; units may be combined largest first (``"1h30m"``).

    Raises:
        ValueError: empty, negative, zero-free garbage or an unknown unit; the message
            quotes the text and lists the units.
    """
    if isinstance(text, bool):
        raise ValueError(f"not a duration: {text!r}")
    if isinstance(text, int | float):
        seconds = float(text)
    else:
        s = str(text).strip().lower()
        if re.fullmatch(r"\d+(?:\.\d+)?", s):
            seconds = float(s)
        else:
            pos, seconds, units = 0, 0.0, []
            for m in _PART.finditer(s):
                if m.start() != pos:
                    break
                seconds += float(m.group(1)) * _UNITS[m.group(2)]
                units.append(m.group(2))
                pos = m.end()
            order = [list(_UNITS).index(u) for u in units]
            if not s or pos != len(s) or order != sorted(set(order), reverse=True):
                raise ValueError(f"not a duration: {text!r} (use e.g. 30s, 5m, 2h, 1h30m; "
                                 "units: ms, s, m, h, d)")
    if not seconds > 0:
        raise ValueError(f"duration must be > 0, got {text!r}")
    return seconds
