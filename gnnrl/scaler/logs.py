"""Structured logs: one JSON object per line (time, level, logger, message, fields).

Fields passed as ``extra={"fields": {...}}`` are merged into the object, so a tick's
decisions are machine-readable (``kubectl logs ... | jq 'select(.msg == "tick")'``). The
text format shows the same decisions on one line per tick (`tick_line`).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import sys
from typing import Any


class JsonFormatter(logging.Formatter):
    """Formats a record as one JSON line."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(),
            "level": record.levelname.lower(), "logger": record.name,
            "msg": record.getMessage()}
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            out.update(fields)
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str, sort_keys=False)


def tick_line(fields: dict[str, Any]) -> str:
    """A tick's fields (`Scaler._log`) as one readable line, e.g.
    ``mode=rule fallback=model_missing 3.1ms | cartservice 2->4->4 rule written |
    adservice 0 held skipped=scaling_disabled``: per service current -> desired -> guarded,
    the source, the guard's reasons, a skip reason and the write's status."""
    head = [f"mode={fields.get('mode')}"]
    if fields.get("fallback_reason"):
        head.append(f"fallback={fields['fallback_reason']}")
    if fields.get("invalid_observation"):
        head.append(f"invalid={fields['invalid_observation']}")
    if fields.get("latency_ms") is not None:
        head.append(f"{fields['latency_ms']:.1f}ms")
    parts = [" ".join(head)]
    for name, svc in (fields.get("services") or {}).items():
        if svc.get("desired") is None:
            text = f"{name} {svc.get('current')} held"
        else:
            text = (f"{name} {svc.get('current')}->{svc.get('desired')}->{svc.get('guarded')} "
                    f"{svc.get('source') or '?'}")
        if svc.get("reasons"):
            text += f" [{','.join(svc['reasons'])}]"
        if svc.get("skipped"):
            text += f" skipped={svc['skipped']}"
        if svc.get("write"):
            text += f" {svc['write']}"
        parts.append(text)
    return " | ".join(parts)


class TextFormatter(logging.Formatter):
    """Plain text; a tick's record gets its decisions appended (`tick_line`), other records
    with fields get them as ``key=value``."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        fields = getattr(record, "fields", None)
        if not isinstance(fields, dict) or not fields:
            return text
        if record.getMessage() == "tick":
            return f"{text} {tick_line(fields)}"
        return text + " " + " ".join(f"{k}={v}" for k, v in fields.items() if k != "config")


def configure(fmt: str = "json", level: str = "INFO") -> None:
    """Log to stderr as JSON ("json") or plain text ("text", `TextFormatter`)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger("gnnrl")
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
