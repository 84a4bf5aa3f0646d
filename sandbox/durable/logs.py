"""Structured JSON logs carrying the orchestration instance id and the correlation id.

The runner sets two context variables around everything it does for an instance (a replay, an activity, a
trigger invocation). ``DurableContextFilter`` copies them onto every log record, so the app's own log
lines (written with plain ``logging``, no sandbox import) carry them too once the filter is installed on
a handler; ``JsonLineFormatter`` writes one JSON object per line.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import IO, Any

instance_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("instance_id", default=None)
correlation_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("correlation_id", default=None)

RUNNER_LOGGER = "sandbox.durable"
HOST_LOGGER = "sandbox.host"

_RESERVED = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


@contextlib.contextmanager
def log_context(instance_id: str | None = None, correlation_id: str | None = None) -> Iterator[None]:
    """Bind the instance id and correlation id for the lines logged inside the block."""
    tokens = []
    if instance_id is not None:
        tokens.append((instance_id_var, instance_id_var.set(instance_id)))
    if correlation_id is not None:
        tokens.append((correlation_id_var, correlation_id_var.set(correlation_id)))
    try:
        yield
    finally:
        for var, token in reversed(tokens):
            var.reset(token)


class DurableContextFilter(logging.Filter):
    """Adds ``instance_id`` and ``correlation_id`` to every record (None outside an instance)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "instance_id", None) is None:
            record.instance_id = instance_id_var.get()
        if getattr(record, "correlation_id", None) is None:
            record.correlation_id = correlation_id_var.get()
        return True


class JsonLineFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, instance_id, correlation_id, extras."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "instance_id": getattr(record, "instance_id", instance_id_var.get()),
            "correlation_id": getattr(record, "correlation_id", correlation_id_var.get()),
        }
        for key, value in vars(record).items():
            if key not in _RESERVED and key not in line and not key.startswith("_"):
                line[key] = value
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


def json_handler(stream: IO[str] | None = None) -> logging.Handler:
    """A stream handler with the context filter and the JSON formatter."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.addFilter(DurableContextFilter())
    handler.setFormatter(JsonLineFormatter())
    return handler


def configure_json_logging(level: int = logging.INFO, stream: IO[str] | None = None) -> logging.Handler:
    """Route the root logger (runner, host and app lines alike) through one JSON handler."""
    root = logging.getLogger()
    handler = json_handler(stream)
    root.addHandler(handler)
    root.setLevel(level)
    return handler
