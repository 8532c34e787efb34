"""Structured logs: one JSON object per line on stderr (journald and `jq` both read it).

Code logs an event name as the message and its data as `extra={"fields": {...}}`:

    log.info("prediction.stored", extra={"fields": {"uuid": uuid, "latency_ms": 4.1}})

which prints `{"ts": "...", "level": "info", "logger": "device.daemon", "event": "prediction.stored",
"uuid": "...", "latency_ms": 4.1}`. Third-party records (waitress) come out in the same shape.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": record.getMessage(),
        }
        entry.update(getattr(record, "fields", None) or {})
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


def configure(level: str | int = "INFO", stream=None) -> None:
    """Route every logger (ours, waitress, werkzeug) through one JSON handler."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
