"""The ``audit_estate`` orchestration's records: its input, each activity result it reads, its progress (custom
status) and its output (:class:`AuditSummary`).

On the one record codec (``steward/domain/records.py``), with the keys the orchestration read before these
records existed, so that an audit in flight replays its history unchanged (``audit_read_subscription`` still
writes ``subscription_id``; the codec reads a field's snake_case key when its camelCase key is absent).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from steward.domain.compensation import ReconcileAction, ReconcileResult, TeardownSnapshot
from steward.domain.protection import OutcomeStatus
from steward.domain.records import Record

__all__ = [
    "AuditPart",
    "AuditRequest",
    "AuditScope",
    "AuditSummary",
    "DrillLeftovers",
    "FindingsPublished",
    "LeftVault",
    "ReconcileResult",
    "RemediationPlanned",
    "RemediationStarted",
    "RemediationSummary",
    "RunSummary",
]


#: a field left out of the record while it is None: the key was absent where the record came from
_ABSENT: Final = {"omit_default": True}


@dataclass(frozen=True)
class AuditRequest(Record):
    """``audit_estate``'s input (``entrypoints/audit_timer.py``): what started it (``timer``/``http``), the
    subscriptions asked for (none: the configured ones) and the doorway's snapshot of running teardowns
    (absent, null or empty: none, and no teardown is reconciled)."""

    closed = True

    trigger: str = ""
    past_due: bool = False
    subscriptions: tuple[str, ...] = ()
    teardowns: TeardownSnapshot | None = None

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> AuditRequest:
        if isinstance(record, Mapping) and "teardowns" in record and not record.get("teardowns"):
            record = {k: v for k, v in record.items() if k != "teardowns"}  # {} or null: no snapshot
        return super().from_record(record)


@dataclass(frozen=True)
class LeftVault(Record):
    """What the audit reads of a vault ``reconcile_teardowns`` left as it was (an entry of its ``left``):
    unreadable markers become VLT-006 findings, passed on as they came."""

    vault_id: str
    action: ReconcileAction
    reason: str = ""


@dataclass(frozen=True)
class AuditScope(Record):
    """``audit_scope``'s result: the subscriptions this run audits."""

    subscriptions: tuple[str, ...] = ()


@dataclass(frozen=True)
class DrillLeftovers(Record):
    """``drill_reconcile_leftovers``' result: one record per expired drill leftover and what was done (passed on
    to the evaluation as DRL-003 material, unread)."""

    leftovers: tuple[Any, ...] = ()


@dataclass(frozen=True)
class AuditPart(Record):
    """``audit_read_subscription``'s result: the stored part of one subscription's inventory, and its counts."""

    part: str
    subscription_id: str = ""
    resources: int = 0
    vaults: int = 0
    items: int = 0
    gaps: int = 0


@dataclass(frozen=True)
class RunSummary(Record):
    """``audit_evaluate``'s result: the stored report's names and the run's summary (the start of the
    orchestration's output, :class:`AuditSummary`). A key the result did not have stays absent (None), so that a
    summary passes on as it came."""

    report: str
    html: str | None = field(default=None, metadata=_ABSENT)
    #: as the stored report writes it (``...Z``), passed on unchanged
    generated_at: str | None = field(default=None, metadata=_ABSENT)
    findings_by_severity: Mapping[str, int] | None = field(default=None, metadata=_ABSENT)
    findings: int | None = field(default=None, metadata=_ABSENT)
    new: int | None = field(default=None, metadata=_ABSENT)
    resolved: int | None = field(default=None, metadata=_ABSENT)
    #: the share of resources covered, 0..1, rounded to 4 places
    coverage: float | None = field(default=None, metadata=_ABSENT)
    resources: int | None = field(default=None, metadata=_ABSENT)


@dataclass(frozen=True)
class FindingsPublished(Record):
    """``audit_publish_findings``' result: the events of new and resolved findings, and how many went out."""

    events: int
    published: int = 0


@dataclass(frozen=True)
class RemediationPlanned(Record):
    """``audit_remediation_plan``'s result: whether remediation is on, its per-run limit, the resources to
    start protection for, how many wait for a later run, and those left to a person."""

    enabled: bool = False
    limit: int = 0
    protect: tuple[str, ...] = ()
    deferred: int = 0
    needs_person: tuple[str, ...] = ()


@dataclass(frozen=True)
class RemediationSummary(Record):
    """What the audit's remediation did: on or off, the per-run limit, the protections started and their
    outcomes counted by status, how many wait for a later run, and those left to a person."""

    enabled: bool = False
    limit: int = 0
    started: int = 0
    outcomes: Mapping[str, int] = field(default_factory=dict)
    deferred: int = 0
    needs_person: tuple[str, ...] = ()


@dataclass(frozen=True)
class AuditSummary(RunSummary):
    """``audit_estate``'s output: the run's summary (as ``audit_evaluate`` wrote it), then the subscriptions read,
    the inventory gaps, the finding events published, the remediation and the drill leftovers reconciled. Keys
    and their order as the plain output had them, so outputs recorded before read alike."""

    subscriptions: int = 0
    inventory_gaps: int = 0
    events: int = 0
    remediation: RemediationSummary = field(default_factory=RemediationSummary)
    drill_leftovers: int = 0


@dataclass(frozen=True)
class RemediationStarted(Record):
    """What the audit reads of a ``protect_resource`` it started: the outcome's status (the output is a
    ``ProtectionOutcome`` record; only its status is counted)."""

    status: OutcomeStatus
