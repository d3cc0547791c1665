"""JSON logs, one object per line, carrying function, ce-id, ce-type and trace id."""

from __future__ import annotations

import json
import logging
import sys
from contextvars import ContextVar
from datetime import UTC, datetime

from functions.runtime import tracing

# Set for the duration of one event, so every log line inside a handler carries them.
event_id: ContextVar[str | None] = ContextVar("event_id", default=None)
event_type: ContextVar[str | None] = ContextVar("event_type", default=None)


class JsonFormatter(logging.Formatter):
    def __init__(self, function: str) -> None:
        super().__init__()
        self.function = function

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "function": self.function,
        }
        for name, value in (
            ("ce_id", event_id.get()),
            ("ce_type", event_type.get()),
            ("trace_id", tracing.current_trace_id()),
        ):
            if value:
                entry[name] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def configure(function: str, level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(function))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # One line per HTTP call made would drown the events themselves.
    logging.getLogger("httpx").setLevel(logging.WARNING)
