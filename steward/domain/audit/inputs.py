"""The audit's activity inputs as records of the one record codec (``steward/domain/records.py``).

``orchestrators/audit.py`` builds each as a record and ``activities/audit.py`` reads it back through the codec
(camelCase keys). Before these records ``audit_read_subscription`` was sent ``subscription_id``; an input queued in
the task hub when the app is deployed still has it, and the codec reads it for one release
(``tests/orchestrators/test_activity_input_history.py`` feeds the inputs recorded before the change to these
records, ``tests/integration/audit/test_audit_activity_records.py`` to the activity). Times keep the
``isoformat()`` text the orchestration sent before (``+00:00``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

from steward.domain.records import Record

__all__ = ["AuditEvaluation", "AuditScopeQuery", "LeftoversDue", "StoredReport", "SubscriptionRead"]

#: times written as ``datetime.isoformat()`` writes them, as the inputs before the records had them
_AS_BEFORE: Final = {"keep_offset": True}


@dataclass(frozen=True)
class AuditScopeQuery(Record):
    """``audit_scope``: the subscriptions named (none: the configured ones, else every readable one)."""

    subscriptions: tuple[str, ...] = ()


@dataclass(frozen=True)
class SubscriptionRead(Record):
    """``audit_read_subscription``: read one subscription's inventory into a part of ``run``; ``now`` (the audit's
    time) ends the activity log's window (none in runs started before it was sent)."""

    run: str
    subscription_id: str
    now: datetime | None = field(default=None, metadata=_AS_BEFORE)


@dataclass(frozen=True)
class AuditEvaluation(Record):
    """``audit_evaluate``: the stored ``parts`` to merge and audit at ``now``, with the teardowns reconciled before
    (VLT-006) and the drill leftovers handled (DRL-003), as their records."""

    parts: tuple[str, ...]
    now: datetime = field(metadata=_AS_BEFORE)
    interrupted_teardowns: tuple[Any, ...] = ()
    drill_leftovers: tuple[Any, ...] = ()


@dataclass(frozen=True)
class StoredReport(Record):
    """``audit_publish_findings`` and ``audit_remediation_plan``: the stored run's report (its name in the store)."""

    report: str


@dataclass(frozen=True)
class LeftoversDue(Record):
    """``drill_reconcile_leftovers``: the drill leftovers whose lifetime has ended by ``now``."""

    now: datetime = field(metadata=_AS_BEFORE)
