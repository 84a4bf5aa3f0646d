"""Each new or resolved finding of an audit as one outcome event (published through the shared publisher)."""

from __future__ import annotations

from typing import Final

from steward.cloud.publisher import OutcomeEvent
from steward.domain.audit import AuditResult, Finding

OPENED: Final = "BackupSteward.Audit.FindingOpened"
RESOLVED: Final = "BackupSteward.Audit.FindingResolved"


def _data(finding: Finding, result: AuditResult, state: str) -> dict[str, object]:
    return {
        **finding.to_json(),
        "state": state,
        "auditGeneratedAt": result.generated_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


def finding_events(result: AuditResult) -> list[OutcomeEvent]:
    """Opened events for findings new in this run, resolved events for those gone since the previous run."""
    opened = [OutcomeEvent(OPENED, f.resource_id, _data(f, result, "open")) for f in result.new_findings]
    resolved = [OutcomeEvent(RESOLVED, f.resource_id, _data(f, result, "resolved")) for f in result.resolved]
    return opened + resolved
