"""protection_flow.role_grant_refused names the assignments a refused grant PUT before the refusal (review finding 5:
they stay - Azure answers a create and a re-create alike, so the app cannot prove one is not shared - and the
reason says so); the regrant's refusal is carried to the same outcome (finding 6)."""

from __future__ import annotations

from steward.domain import protection_flow as flow
from steward.domain.ids import ResourceId
from steward.domain.rules import Protect, ResourceFacts, route
from steward.rules_file import load_rules

SUB = "00000000-0000-4000-8000-000000000001"
DISK = f"/subscriptions/{SUB}/resourceGroups/data/providers/Microsoft.Compute/disks/d1"
RULES = "version: 1\nrules:\n  - name: bv\n    match: {}\n    protect:\n      vault: regional-default\n"

LIMIT = {"ok": False, "code": "RoleAssignmentLimitExceeded", "status": 400,
         "message": "No more role assignments can be created.", "created": ["Disk Backup Reader"]}


def test_the_assignment_put_before_the_refusal_is_named_as_kept() -> None:
    decision = route(ResourceFacts(ResourceId.parse(DISK), "westeurope"), load_rules(RULES, "r.yaml"))
    assert isinstance(decision, Protect)
    reason, details = flow.role_grant_refused(LIMIT, decision, {"id": DISK})
    assert "PUT before the refusal stay (Disk Backup Reader)" in reason and "4,000" in reason, reason
    assert details == {"code": "RoleAssignmentLimitExceeded", "subscription": SUB, "roleScope": "resource",
                       "kept": ["Disk Backup Reader"]}
    other, kept = flow.role_grant_refused({**LIMIT, "code": "AuthorizationFailed", "message": "no write"}, decision,
                                          {"id": DISK})
    assert other.startswith("role assignment refused: no write") and "(Disk Backup Reader)" in other
    assert kept == {"kept": ["Disk Backup Reader"]}


def test_a_refused_regrant_is_carried_to_the_first_grants_outcome() -> None:
    result = flow.regrant_refused(LIMIT)
    assert result["ok"] is False and result["code"] == "RoleAssignmentLimitExceeded"
    assert flow.grant_refusal(result) == LIMIT
    assert flow.grant_refusal({"ok": False, "code": "UserErrorMissingRequiredPermissions"}) is None
