"""Audit remediation end to end through the real app on the local host (``STEWARD_AUDIT_REMEDIATE_LIMIT``):
the timer's audit starts ``protect_resource`` for what the rules require and nothing protects (BKP-001),
leaves a resource whose only item is soft-deleted to a person, and the next audit finds those gaps closed."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.chaos.checker import protections
from tests.e2e.test_audit_timer import AuditStack, running_audit_stack
from tests.integration.audit.audit_sandbox_estate import build


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[AuditStack]:
    settings = {"STEWARD_REPORTS_DIR": str(tmp_path / "reports"), "STEWARD_AUDIT_REMEDIATE_LIMIT": "10"}
    with running_audit_stack(tmp_path, settings) as s:
        yield s


def _protected_sources(stack: AuditStack) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for _, vault, source in protections(stack.stack.sandbox):
        found.setdefault(source, []).append(vault)
    return found


@pytest.mark.slow
def test_the_audit_protects_what_the_rules_require_and_leaves_soft_deleted_items_to_a_person(
    stack: AuditStack,
) -> None:
    built = build(stack.stack.sandbox, stack.clients)
    ids = {name: rid.lower() for name, rid in built.ids.items()}
    before = _protected_sources(stack)
    assert ids["vm-naked"] not in before and ids["st-naked"] not in before
    softdel_items = len([s for s in before if s == ids["vm-softdel"]])

    first = stack.run_timer()
    assert first["runtimeStatus"] == "Completed", first
    remediation = first["output"]["remediation"]
    assert remediation["enabled"] is True and remediation["limit"] == 10
    # vm-naked, st-naked and the OS disk vm-gone left behind (detached now, so the disk rule applies) get
    # protected; vm-far (eastus) has no vault of its region: NoVault, and nothing is created
    assert remediation["started"] == 4, remediation
    assert remediation["outcomes"] == {"NoVault": 1, "Protected": 3}, remediation
    assert [r.lower() for r in remediation["needsPerson"]] == [ids["vm-softdel"]]

    after = _protected_sources(stack)
    assert after[ids["vm-naked"]] == [ids["rsv"]], "in the regional Recovery Services vault, once"
    assert after[ids["st-naked"]] == [ids["bv"]], "in the regional Backup vault, once"
    [left_disk] = [s for s in after if "/disks/vm-gone_osdisk" in s]
    assert after[left_disk] == [ids["bv"]]
    assert ids["vm-far"] not in after
    assert len([s for s in after if s == ids["vm-softdel"]]) == softdel_items, "no second chain beside the item"
    protected_events = [e for e in stack.events() if e["eventType"] == "BackupSteward.Protection.Protected"]
    assert {e["subject"].lower() for e in protected_events} >= {ids["vm-naked"], ids["st-naked"]}
    assert {e["data"]["correlationId"] for e in protected_events} == {first["instanceId"]}, "traced to the audit"

    stack.stack.sandbox.advance(2 * 3600)  # the first backups run
    second = stack.run_timer()
    assert second["runtimeStatus"] == "Completed", second
    again = second["output"]["remediation"]
    assert again["started"] == 1 and again["outcomes"] == {"NoVault": 1}, "only vm-far is still unprotected"
    resolved = {(e["data"]["control"], e["data"]["resourceId"].lower()) for e in stack.events()
                if e["eventType"] == "BackupSteward.Audit.FindingResolved"}
    assert {("BKP-001", ids["vm-naked"]), ("BKP-001", ids["st-naked"])} <= resolved
