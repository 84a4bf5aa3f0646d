"""Remediation (optional, behind STEWARD_AUDIT_REMEDIATE_LIMIT): which findings to fix by starting protection."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, Final

from steward.domain.audit.inventory import iso
from steward.domain.audit.results import AuditResult
from steward.domain.kernel import (
    id_key,
)

#: The one control remediation acts on: a resource the rules require to be protected that nothing protects.
#: Starting protection is the same idempotent orchestration an Event Grid event starts; nothing is deleted.
REMEDIABLE_CONTROL: Final = "BKP-001"


@dataclass(frozen=True)
class RemediationPlan:
    """What one audit run starts protection for, and what it leaves (and why)."""

    protect: tuple[str, ...]  # resource ids: the protect_resource orchestration is started for each
    deferred: int  # over the per-run limit: a later run takes them
    needs_person: tuple[str, ...]  # only a soft-deleted item exists: undelete and resume it, not protect anew

    def to_record(self) -> dict[str, Any]:
        return {"protect": list(self.protect), "deferred": self.deferred, "needsPerson": list(self.needs_person)}


def remediation_plan(result: AuditResult, limit: int) -> RemediationPlan:
    """Up to ``limit`` resources of the run's BKP-001 findings. A resource whose only backup item is soft-deleted
    is left to a person: protecting it anew would start a second backup chain beside the recoverable one.

    Which ones go first rotates from run to run (ordered by a hash of the run's time and the resource), so a
    resource that cannot be protected (no vault in its region, say) does not hold the others back for ever."""
    if limit < 0:
        raise ValueError("the remediation limit is a count (0 turns remediation off)")
    unprotected = [f for f in result.findings if f.control_id == REMEDIABLE_CONTROL]
    soft = {id_key(f.resource_id): f.resource_id for f in unprotected if f.details.get("softDeleted") == "true"}
    open_ = {id_key(f.resource_id): f.resource_id for f in unprotected if id_key(f.resource_id) not in soft}
    salt = iso(result.generated_at)
    ordered = [open_[key] for key in sorted(open_, key=lambda k: hashlib.sha256(f"{salt}|{k}".encode()).hexdigest())]
    chosen = tuple(ordered[:limit])
    return RemediationPlan(
        protect=chosen, deferred=len(ordered) - len(chosen), needs_person=tuple(soft[key] for key in sorted(soft))
    )
