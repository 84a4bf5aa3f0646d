"""Every event Backup Steward publishes, built in one place: its ``eventType``, ``subject``, ``data`` and the
``dataVersion`` of that data's shape. The README's "Events" section documents each one (the schema table) and
``tests/unit/test_published_events.py`` holds the two to each other: a key published and not documented, or
documented and not published, fails it."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Final

from steward.cloud.publisher import DATA_VERSION, OutcomeEvent
from steward.domain import drill_flow
from steward.domain.audit import AuditResult, Finding
from steward.domain.protection import OUTCOME_DATA_VERSION, ProtectionOutcome

OPENED: Final = "BackupSteward.Audit.FindingOpened"
RESOLVED: Final = "BackupSteward.Audit.FindingResolved"
RECONCILED: Final = "BackupSteward.Teardown.Reconciled"
RECONCILE_FAILED: Final = "BackupSteward.Teardown.ReconcileFailed"
REJECTED: Final = "BackupSteward.Event.Rejected"
TEARDOWN_PREFIX: Final = "BackupSteward.Teardown."

#: ``dataVersion`` of each published event type's ``data`` (README "Events"). Protection's is 2.0 (camelCase
#: keys since the record codec); the others have had camelCase keys from the start and are 1.0.
TEARDOWN_DATA_VERSION: Final = DATA_VERSION
RECONCILE_DATA_VERSION: Final = DATA_VERSION
AUDIT_DATA_VERSION: Final = DATA_VERSION
DRILL_DATA_VERSION: Final = DATA_VERSION
REJECTED_DATA_VERSION: Final = DATA_VERSION


def protection_events(outcomes: Iterable[ProtectionOutcome]) -> list[OutcomeEvent]:
    """``BackupSteward.Protection.<Status>`` for each outcome: its record (plus ``legacyStatus`` where a status
    was renamed), :data:`OUTCOME_DATA_VERSION`."""
    return [OutcomeEvent(o.event_type, o.resource_id, o.event_data(), OUTCOME_DATA_VERSION) for o in outcomes]


def teardown_outcome_event(report: Mapping[str, Any], stored: Mapping[str, Any], name: str) -> OutcomeEvent:
    """``BackupSteward.Teardown.<Outcome>`` (the report's ``outcome`` in PascalCase) for a finished teardown
    whose report was stored as ``stored`` (``ReportLinks.to_record()``) under ``name``."""
    outcome = str(report.get("outcome") or "finished")
    return OutcomeEvent(
        TEARDOWN_PREFIX + "".join(p.capitalize() for p in outcome.split("-")),
        str(report.get("vaultId") or name),
        {
            "instanceId": report.get("instanceId"),
            "outcome": outcome,
            "reason": report.get("reason"),
            "requestedBy": report.get("requestedBy"),
            "report": dict(stored),
            "deletedCount": len(report.get("deleted") or []),
            "remainingCount": len(report.get("remaining") or []),
        },
        TEARDOWN_DATA_VERSION,
    )


def reconcile_event(result: Mapping[str, Any]) -> OutcomeEvent:
    """``BackupSteward.Teardown.Reconciled`` (or ``.ReconcileFailed``): the reconciler's result for one vault
    a lost teardown left weakened."""
    failed = result.get("effect") == "failed"
    return OutcomeEvent(
        RECONCILE_FAILED if failed else RECONCILED, str(result["vaultId"]), dict(result), RECONCILE_DATA_VERSION
    )


def _finding_data(finding: Finding, result: AuditResult, state: str) -> dict[str, object]:
    return {
        **finding.to_json(),
        "state": state,
        "auditGeneratedAt": result.generated_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


def finding_events(result: AuditResult) -> list[OutcomeEvent]:
    """Opened events for findings new in this run, resolved events for those gone since the previous run."""
    opened = [
        OutcomeEvent(OPENED, f.resource_id, _finding_data(f, result, "open"), AUDIT_DATA_VERSION)
        for f in result.new_findings
    ]
    resolved = [
        OutcomeEvent(RESOLVED, f.resource_id, _finding_data(f, result, "resolved"), AUDIT_DATA_VERSION)
        for f in result.resolved
    ]
    return opened + resolved


def drill_events(report: Mapping[str, Any]) -> list[OutcomeEvent]:
    """``BackupSteward.Drill.<Outcome>`` for each drilled resource: ``drillId`` and its result."""
    return [
        OutcomeEvent(
            drill_flow.event_type(str(result["outcome"])),
            str(result["resourceId"]),
            {"drillId": report["id"], **result},
            DRILL_DATA_VERSION,
        )
        for result in report.get("results") or []
    ]


def restore_ready_event(ready: Mapping[str, Any]) -> OutcomeEvent:
    """``BackupSteward.Drill.RestoreReady``: a drilled resource's restored objects are checked and the drill waits,
    until ``waitUntil``, for ``POST /api/drills/{drillId}/validation`` (the user's validation hook)."""
    return OutcomeEvent(
        drill_flow.RESTORE_READY,
        str(ready["resourceId"]),
        {"drillId": ready["drillId"], "resourceId": ready["resourceId"], "workload": ready.get("workload"),
         "restored": list(ready.get("restored") or []), "waitUntil": ready["waitUntil"],
         "validationUrl": f"/api/drills/{ready['drillId']}/validation"},
        DRILL_DATA_VERSION,
    )


def rejected_event(subject: object, event_id: object, reason: str, excerpt: str) -> OutcomeEvent:
    """``BackupSteward.Event.Rejected``: a delivered event that could not be trusted or understood."""
    return OutcomeEvent(
        REJECTED,
        str(subject or "/unknown")[:1024],
        {"eventId": event_id, "reason": reason, "excerpt": excerpt},
        REJECTED_DATA_VERSION,
    )
