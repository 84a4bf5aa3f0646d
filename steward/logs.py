"""Structured logs: every line carries the instance id and the triggering event's correlation id.

``bind(...)`` puts fields in a context variable for the duration of a block (a trigger, an activity);
``ContextFilter`` copies them onto every record; ``JsonFormatter`` writes one JSON object per line.
Values that look like secrets are never logged: keys named like one are redacted.
"""

from __future__ import annotations

import contextvars
import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, Final

_FIELDS: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar("steward_log_fields", default=None)

SECRET_MARKERS: Final = ("key", "secret", "token", "password", "connectionstring", "sas", "signature")
#: exact names that are secrets: ``code`` is how Functions keys travel in query strings
SECRET_NAMES: Final = frozenset({"code", "sig", "authorization"})
REDACTED: Final = "***"
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None)).keys()) | {"message", "asctime"}


def _is_secret(name: str) -> bool:
    lowered = name.replace("_", "").replace("-", "").lower()
    return lowered in SECRET_NAMES or any(marker in lowered for marker in SECRET_MARKERS)


def redact(fields: dict[str, Any]) -> dict[str, Any]:
    return {k: (REDACTED if _is_secret(k) else v) for k, v in fields.items()}


@contextmanager
def bind(**fields: Any) -> Iterator[None]:
    """Add ``fields`` (None values skipped) to every log line written inside the block."""
    current = dict(_FIELDS.get() or {})
    current.update({k: v for k, v in fields.items() if v is not None})
    token = _FIELDS.set(current)
    try:
        yield
    finally:
        _FIELDS.reset(token)


def bound_fields() -> dict[str, Any]:
    return dict(_FIELDS.get() or {})


class ContextFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        for key, value in (_FIELDS.get() or {}).items():
            if not hasattr(record, key):
                setattr(record, key, value)
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        extra = {k: v for k, v in vars(record).items() if k not in _STANDARD and not k.startswith("_")}
        payload.update(redact(extra))
        if record.exc_info:
            payload["exception"] = self.formatException(record.exc_info)
        return json.dumps(payload, default=str)


def configure(level: int = logging.INFO, stream: Any = None) -> None:
    """JSON lines on ``stream`` (stderr by default) for the ``steward`` loggers. Idempotent."""
    logger = logging.getLogger("steward")
    for handler in logger.handlers:
        if getattr(handler, "_steward", False):
            return
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(ContextFilter())
    handler._steward = True  # type: ignore[attr-defined]
    logger.addHandler(handler)
    logger.setLevel(level)
