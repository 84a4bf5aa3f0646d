"""Where a running teardown is, and the next thing its orchestrator does."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum
from typing import Any, Final

from steward.domain.kernel import (
    format_time,
    parse_time,
)
from steward.domain.teardown.inventory import Target
from steward.domain.teardown.plan import SettingChange, StepKind, TeardownPlan, TeardownStep


class StepOutcome(StrEnum):
    DONE = "done"
    SKIPPED = "skipped"
    FAILED = "failed"


@dataclass(frozen=True)
class StepProgress:
    kind: StepKind
    total: int
    done: int = 0
    failed: int = 0
    outcome: StepOutcome | None = None
    finished_at: datetime | None = None

    def to_record(self) -> dict[str, Any]:
        return {
            "kind": self.kind.value,
            "total": self.total,
            "done": self.done,
            "failed": self.failed,
            "outcome": self.outcome.value if self.outcome else None,
            "finishedAt": format_time(self.finished_at),
        }

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> StepProgress:
        outcome = record.get("outcome")
        return cls(
            kind=StepKind(str(record.get("kind"))),
            total=int(record.get("total", 0)),
            done=int(record.get("done", 0)),
            failed=int(record.get("failed", 0)),
            outcome=StepOutcome(outcome) if outcome else None,
            finished_at=parse_time(record.get("finishedAt")),
        )


@dataclass(frozen=True)
class TeardownProgress:
    """Where a running saga is: per-step counts, what it changed, what it deleted. Carried across
    ``continue_as_new`` and shown in the custom status."""

    steps: tuple[StepProgress, ...] = ()
    changed_settings: tuple[SettingChange, ...] = ()
    deleted: tuple[Mapping[str, Any], ...] = ()
    last_error: str | None = None

    @classmethod
    def start(cls, plan: TeardownPlan) -> TeardownProgress:
        return cls(steps=tuple(StepProgress(s.kind, s.count) for s in plan.steps))

    def of(self, kind: StepKind) -> StepProgress | None:
        return next((s for s in self.steps if s.kind is kind), None)

    def finished(self, kind: StepKind) -> bool:
        step = self.of(kind)
        return step is not None and step.outcome in (StepOutcome.DONE, StepOutcome.SKIPPED)

    def _replace_step(self, updated: StepProgress) -> tuple[StepProgress, ...]:
        return tuple(updated if s.kind is updated.kind else s for s in self.steps)

    def record_batch(
        self, kind: StepKind, done: Sequence[Mapping[str, Any]], failed: int = 0, error: str | None = None
    ) -> TeardownProgress:
        current = self.of(kind) or StepProgress(kind, 0)
        updated = replace(current, done=current.done + len(done), failed=current.failed + failed)
        deleted = self.deleted + tuple(d for d in done if d.get("effect") in DELETING_EFFECTS)
        return replace(
            self,
            steps=self._replace_step(updated),
            deleted=deleted,
            last_error=error if error is not None else self.last_error,
        )

    def finish_step(self, kind: StepKind, outcome: StepOutcome, at: datetime) -> TeardownProgress:
        current = self.of(kind) or StepProgress(kind, 0)
        return replace(self, steps=self._replace_step(replace(current, outcome=outcome, finished_at=at)))

    def record_setting(self, change: SettingChange) -> TeardownProgress:
        return replace(self, changed_settings=(*self.changed_settings, change))

    def with_error(self, error: str | None) -> TeardownProgress:
        return replace(self, last_error=error)

    def to_record(self) -> dict[str, Any]:
        return {
            "steps": [s.to_record() for s in self.steps],
            "changedSettings": [c.to_record() for c in self.changed_settings],
            "deleted": [dict(d) for d in self.deleted],
            "lastError": self.last_error,
        }

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> TeardownProgress:
        return cls(
            steps=tuple(StepProgress.from_record(s) for s in record.get("steps") or []),
            changed_settings=tuple(SettingChange.from_record(c) for c in record.get("changedSettings") or []),
            deleted=tuple(dict(d) for d in record.get("deleted") or []),
            last_error=record.get("lastError"),
        )


#: Effects that count as "deleted" in the report (soft-deleted data is deleted, purged at its date).
DELETING_EFFECTS: Final = frozenset({"deleted", "unregistered", "removed", "soft-deleted"})


class NextKind(StrEnum):
    RUN_STEP = "run-step"
    AWAIT_SECURITY_APPROVAL = "await-security-approval"
    FINISHED = "finished"


@dataclass(frozen=True)
class NextAction:
    kind: NextKind
    step: TeardownStep | None = None


def decide_next(plan: TeardownPlan, progress: TeardownProgress, *, security_approved: bool) -> NextAction:
    """The next thing the orchestrator does: run the first unfinished step in plan order, or park for MUA."""
    for step in plan.steps:
        if progress.finished(step.kind):
            continue
        if step.requires_security_approval and not security_approved:
            return NextAction(NextKind.AWAIT_SECURITY_APPROVAL, step)
        return NextAction(NextKind.RUN_STEP, step)
    return NextAction(NextKind.FINISHED)


def batches(targets: Sequence[Target], size: int) -> list[tuple[Target, ...]]:
    """Split a step's targets into fan-out batches of at most ``size`` (>= 1)."""
    size = max(1, size)
    return [tuple(targets[i : i + size]) for i in range(0, len(targets), size)]
