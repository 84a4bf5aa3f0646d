"""The teardown's errors: one root, one class per decision the orchestrator makes.

Adapters raise these (translated from ``steward.cloud.errors`` in ``steward.cloud.teardown_ops``); activities
turn the permanent ones into data (``{"ok": false, "refusal": {...}}``) because a Durable activity's
exception reaches the orchestrator only as text. Transient errors stay exceptions so the orchestration's
retry options retry them.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from steward.domain.errors import StewardError


class RefusalKind(StrEnum):
    NEEDS_SECURITY_APPROVAL = "needs-security-approval"
    MISSING_PERMISSION = "missing-permission"
    IMMUTABILITY_LOCKED = "immutability-locked"
    ALWAYS_ON = "always-on"
    NOT_EMPTY = "not-empty"
    REFUSED = "refused"


class TeardownError(StewardError):
    """Root of the teardown's errors."""


class TeardownRefusal(TeardownError):
    """Azure refused a teardown step for a reason retrying will not change."""

    def __init__(self, kind: RefusalKind, message: str, *, code: str | None = None, status: int | None = None):
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.code = code
        self.status = status

    def to_record(self) -> dict[str, Any]:
        return {"kind": self.kind.value, "code": self.code, "status": self.status, "message": self.message}


class TeardownStillRunning(TeardownError):
    """An Azure operation did not finish within the activity's time budget; retrying reads and resumes."""
