"""Structured logs: one JSON object per line (time, level, logger, message, fields).

Fields passed as ``extra={"fields": {...}}`` are merged into the object, so a tick's
decisions are machine-readable (``kubectl logs ... | jq 'select(.msg == "tick")'``).
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


def configure(fmt: str = "json", level: str = "INFO") -> None:
    """Log to stderr as JSON ("json") or plain text ("text")."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(
        "%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger("gnnrl")
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
