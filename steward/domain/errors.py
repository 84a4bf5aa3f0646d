"""Errors of the decision core. Every error the app raises on purpose derives from :class:`StewardError`.

The domain errors also derive from :class:`ValueError`: each one means "this input is not acceptable",
and callers at the edges (triggers, settings) turn them into a bounded, clear rejection.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

#: Azure's codes for an operation that failed on Azure's own side (not a refusal of what was asked): another try
#: is what Azure asks for. One list for the SDK error translation, VM protection and the teardown.
SERVER_SIDE_CODES: Final = frozenset(
    {"InternalServerError", "InternalError", "ServiceUnavailable", "GatewayTimeout", "OperationTimedOut"}
)


class StewardError(Exception):
    """Root of every error Backup Steward raises on purpose."""


class DomainError(StewardError):
    """Root of the decision core's errors."""


class InvalidResourceId(DomainError, ValueError):
    """An ARM resource id that is malformed or hostile. The message says what is wrong."""


class InvalidValue(DomainError, ValueError):
    """A value of the shared vocabulary (``steward.domain.kernel``: a vault id, a time, a state) that is
    malformed. The teardown knows it as ``InvalidTeardownInput``."""


class InvalidEvent(DomainError, ValueError):
    """An Event Grid / CloudEvents payload that cannot be trusted or understood."""


class InvalidRecord(DomainError, ValueError):
    """A JSON record that crossed the durable boundary and does not describe a known value."""


@dataclass(frozen=True)
class RuleProblem:
    """One problem in a rules file: where it is and what is wrong."""

    source: str
    line: int | None  # 1-based; None when the position is unknown
    field: str  # JSON-pointer-like path, e.g. "rules[2].match.tags"
    message: str

    def __str__(self) -> str:
        where = f"{self.source}:{self.line}" if self.line is not None else self.source
        return f"{where}: {self.field or '<document>'}: {self.message}"


class InvalidRules(DomainError, ValueError):
    """A rules document that does not validate. ``problems`` lists every problem found, in order."""

    def __init__(self, problems: list[RuleProblem]) -> None:
        self.problems = tuple(problems)
        lines = "\n".join(f"  {p}" for p in self.problems)
        super().__init__(f"invalid protection rules ({len(self.problems)} problem(s)):\n{lines}")
