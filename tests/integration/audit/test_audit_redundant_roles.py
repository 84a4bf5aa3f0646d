"""CAP-004 on the real app and the sandbox: widening ``protect.roleScope`` leaves redundant role assignments.

Disks protected under ``roleScope: resource`` (the default) give the Backup vault identity one Disk Backup Reader per
disk. The operator widens the rule to ``resourceGroup`` (its vault named by id); the next disk of the group gets the
role once on the group. The per-disk assignments stay (the app never deletes role assignments) and still count
toward the subscription's 4,000, though the group's now grants the same: exactly what MicrosoftDocs/azure-docs
``articles/role-based-access-control/troubleshoot-limits.md`` ("Solution 2 - Remove redundant role assignments")
tells operators to find. The audit (the app's ARM inventory, its stored record, the pure controls) lists them; the
operator deletes them as ``az role assignment delete --ids`` does (``RoleAssignments_DeleteById`` through the
sandbox), the identity still holds the role on every disk through the group, and the finding resolves.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Iterator

import pytest

from benchmarks.common import APP_PRINCIPAL, AppStack, start_app_stack
from sandbox.arm import PropagationConfig
from sandbox.arm.config import DEFAULT_SUBSCRIPTION
from sandbox.arm.providers.authorization_model import RoleAssignments, guid_of_role_definition
from sandbox.estate import Estate
from steward import bootstrap
from steward.cloud.clients import CloudClients
from steward.cloud.inventory import ArmEstateReader, read_estate
from steward.domain.audit import AuditResult, Finding, audit, inventory_from_json, inventory_to_json
from steward.rules_file import load_rules
from tests.integration.protection.test_role_scope import _outcomes

SUB = DEFAULT_SUBSCRIPTION
REGION = "westeurope"
VAULT = f"/subscriptions/{SUB}/resourceGroups/rg-backup/providers/Microsoft.DataProtection/backupVaults/bv-weu"
GROUP = f"/subscriptions/{SUB}/resourceGroups/rg-app"
DISK_BACKUP_READER = "3e5e47e6-65f7-47ef-90b5-e5dd4d455f24"


def _rules(role_scope: str) -> str:
    return f"""\
version: 1
rules:
  - name: disks
    match: {{types: [Microsoft.Compute/disks]}}
    protect: {{vault: {{id: {VAULT}, region: {REGION}}}, policy: disk-default, roleScope: {role_scope}}}
"""


@pytest.fixture
def app() -> Iterator[AppStack]:
    """The real app on the discrete clock, rules at ``roleScope: resource``; RBAC propagation off (not shown)."""
    stack = start_app_stack(scale=20.0, seed=5, clock="discrete", throttle=False, latency=False,
                            settings={"STEWARD_RULES": _rules("resource")})
    stack.sandbox.configure_propagation(PropagationConfig(rbac_seconds=0))
    try:
        yield stack
    finally:
        stack.stop()


def _change_rules(text: str) -> None:
    """An app setting changed: Azure restarts the app with it; the local host's app reads its settings again."""
    os.environ["STEWARD_RULES"] = text  # given back by the stack's stop (it replaced this variable at start)
    bootstrap.reset()


def _audit(app: AppStack, rules_text: str, previous: AuditResult | None = None) -> AuditResult:
    """The audit as the activities run it: the ARM inventory, its stored record read back, the pure controls."""
    target = dataclasses.replace(app.sandbox.cloud_target(principal_id=APP_PRINCIPAL), polling_interval=0.05)
    part = read_estate(ArmEstateReader(CloudClients(target)), [SUB])
    inventory = inventory_from_json(json.loads(json.dumps(inventory_to_json(part))))
    return audit(inventory, load_rules(rules_text, "rules"), app.clock.now(), previous)


def _cap004(result: AuditResult) -> list[Finding]:
    return [f for f in result.findings if f.control_id == "CAP-004"]


def _disk_backup_readers(app: AppStack, principal: str) -> dict[str, str]:
    """The identity's Disk Backup Reader assignments: scope (lower-cased) -> assignment id."""
    return {str(r["properties"]["scope"]).lower(): str(r["id"]) for r in RoleAssignments(app.sandbox.ctx.store).all()
            if str(r["properties"]["principalId"]).lower() == principal.lower()
            and guid_of_role_definition(r["properties"]["roleDefinitionId"]) == DISK_BACKUP_READER}


def test_widening_the_role_scope_leaves_per_disk_assignments_that_cap004_lists_until_they_are_removed(
    app: AppStack,
) -> None:
    estate = Estate(app.creator, SUB)
    estate.resource_group("rg-backup", REGION)
    assert estate.backup_vault("rg-backup", "bv-weu", REGION).lower() == VAULT.lower()
    estate.resource_group("rg-app", REGION)
    app.settle()
    principal = str(app.sandbox.ctx.store.get(VAULT)["identity"]["principalId"])
    narrow = [estate.disk("rg-app", f"disk-{n}", REGION) for n in range(3)]
    assert [o["status"] for o in _outcomes(app, narrow).values()] == ["Protected"] * 3
    per_disk = _disk_backup_readers(app, principal)
    assert set(per_disk) == {d.lower() for d in narrow}  # one per disk, none on the group
    assert _cap004(_audit(app, _rules("resource"))) == []  # nothing wider yet: nothing redundant

    wide_rules = _rules("resourceGroup")
    _change_rules(wide_rules)
    late = estate.disk("rg-app", "disk-late", REGION)
    assert _outcomes(app, [late])[late.lower()]["status"] == "Protected"
    held = _disk_backup_readers(app, principal)
    assert set(held) == {d.lower() for d in narrow} | {GROUP.lower()}  # the old ones stay beside the group's

    first = _audit(app, wide_rules)
    [finding] = _cap004(first)
    assert finding.resource_id == f"/subscriptions/{SUB}" and finding.id in first.new_finding_ids
    assert finding.details["redundantAssignments"] == "3"
    assert sorted(finding.details["assignmentIds"].split()) == sorted(per_disk.values())
    assert finding.details["vaults"].lower() == VAULT.lower()
    assert finding.details["coveringAssignmentIds"] == held[GROUP.lower()]
    assert "3 Disk Backup Reader (held at its resource group)" in finding.why
    assert f"az role assignment delete --ids {finding.details['assignmentIds']}" in finding.fix

    roles = RoleAssignments(app.sandbox.ctx.store)
    before = roles.count_in_subscription(SUB)
    authorization = app.creator.authorization(SUB)
    for assignment_id in finding.details["assignmentIds"].split():  # as az role assignment delete --ids does
        authorization.role_assignments.delete_by_id(assignment_id)
    assert roles.count_in_subscription(SUB) == before - 3  # the quota they held is free
    assert set(_disk_backup_readers(app, principal)) == {GROUP.lower()}
    for disk in [*narrow, late]:  # the group's assignment still grants the role on every disk
        assert roles.holds_role(principal, DISK_BACKUP_READER, disk)

    later = _audit(app, wide_rules, first)
    assert _cap004(later) == []
    assert [f.id for f in later.resolved if f.control_id == "CAP-004"] == [finding.id]
