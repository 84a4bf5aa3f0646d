"""A rule's ``protect.roleScope`` (issue 15, production truth): where the Backup vault identity's roles go.

Azure RBAC allows 4,000 role assignments per subscription (``role-based-access-control/troubleshoot-limits.md``);
least privilege spends two per protected disk. Microsoft's own tooling assigns the same roles at a chosen scope:
``Set-AzDataProtectionMSIPermission -PermissionsScope Resource|ResourceGroup|Subscription``.
"""

from __future__ import annotations

import pytest

from steward.domain import protection_flow as flow
from steward.domain.errors import InvalidRules
from steward.domain.ids import ResourceId
from steward.domain.rules import Protect, ResourceFacts, decision_from_record, route
from steward.domain.workloads import PermissionsScope
from steward.rules_file import load_rules

SUB = "00000000-0000-4000-8000-000000000001"
BV = f"/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.DataProtection/backupVaults/bv"
GROUP = f"/subscriptions/{SUB}/resourceGroups/data"
DISK = f"{GROUP}/providers/Microsoft.Compute/disks/d1"
STORAGE = f"{GROUP}/providers/Microsoft.Storage/storageAccounts/sa1"
PG = f"{GROUP}/providers/Microsoft.DBforPostgreSQL/flexibleServers/pg1"
VM = f"{GROUP}/providers/Microsoft.Compute/virtualMachines/vm1"


def rules_with(scope: str | None, types: str = "", snapshot: str = "") -> str:
    match = f"{{types: [{types}]}}" if types else "{}"
    lines = ["version: 1", "rules:", "  - name: bv", f"    match: {match}", "    protect:",
             "      vault: regional-default"]
    if scope is not None:
        lines.append(f"      roleScope: {scope}")
    if snapshot:
        lines.append(f"      datastore: {{snapshotResourceGroup: {snapshot}}}")
    return "\n".join(lines) + "\n"


def decide(resource_id: str, text: str) -> Protect:
    facts = ResourceFacts(ResourceId.parse(resource_id), "westeurope")
    decision = route(facts, load_rules(text, "r.yaml"))
    assert isinstance(decision, Protect)
    return decision


def grants(resource_id: str, text: str) -> dict[str, str]:
    found = flow.role_grants(decide(resource_id, text), {"id": resource_id, "location": "westeurope"},
                             {"id": BV, "principal_id": "p"})
    return {g.role: g.scope for g in found}


def test_the_default_is_least_privilege_on_the_resource() -> None:
    assert decide(DISK, rules_with(None)).role_scope is PermissionsScope.RESOURCE
    assert grants(DISK, rules_with(None)) == grants(DISK, rules_with("resource")) == {
        "Disk Backup Reader": DISK, "Disk Snapshot Contributor": GROUP}


def test_resource_group_scope_moves_resource_roles_to_the_group_and_keeps_the_snapshot_group() -> None:
    text = rules_with("resourceGroup", snapshot="snaps")
    assert grants(DISK, text) == {"Disk Backup Reader": GROUP,
                                  "Disk Snapshot Contributor": f"/subscriptions/{SUB}/resourceGroups/snaps"}
    assert grants(STORAGE, text) == {"Storage Account Backup Contributor": GROUP}
    assert grants(PG, text) == {"PostgreSQL Flexible Server Long Term Retention Backup Role": GROUP,
                                "Reader": GROUP}


def test_subscription_scope_puts_every_role_on_the_subscription_snapshot_group_included() -> None:
    text = rules_with("subscription", snapshot="snaps")
    whole = f"/subscriptions/{SUB}"
    assert grants(DISK, text) == {"Disk Backup Reader": whole, "Disk Snapshot Contributor": whole}
    assert grants(STORAGE, text) == {"Storage Account Backup Contributor": whole}
    assert grants(PG, text) == {"PostgreSQL Flexible Server Long Term Retention Backup Role": whole,
                                "Reader": whole}


def test_many_disks_of_one_group_share_the_same_grants_at_group_scope() -> None:
    text = rules_with("resourceGroup")
    scopes = {tuple(sorted(grants(f"{GROUP}/providers/Microsoft.Compute/disks/d{i}", text).items()))
              for i in range(5)}
    assert len(scopes) == 1
    least = {tuple(sorted(grants(f"{GROUP}/providers/Microsoft.Compute/disks/d{i}", rules_with(None)).items()))
             for i in range(5)}
    assert len(least) == 5


def test_the_decision_record_carries_the_scope_and_reads_records_without_it() -> None:
    decision = decide(DISK, rules_with("resourceGroup"))
    record = decision.to_record()
    assert record["roleScope"] == "resourceGroup"
    assert decision_from_record(record) == decision
    plain = decide(DISK, rules_with(None)).to_record()
    assert "roleScope" not in plain  # as recorded before the option existed
    assert decision_from_record(plain).role_scope is PermissionsScope.RESOURCE  # type: ignore[union-attr]


def test_a_vm_routed_by_a_rule_without_types_keeps_the_default() -> None:
    assert decide(VM, rules_with("subscription")).role_scope is PermissionsScope.RESOURCE


def test_a_vm_rule_with_role_scope_is_refused_at_load_naming_the_line_and_why() -> None:
    with pytest.raises(InvalidRules) as caught:
        load_rules(rules_with("resourceGroup", types="Microsoft.Compute/virtualMachines"), "r.yaml")
    (problem,) = caught.value.problems
    assert problem.field == "rules[0].protect.roleScope"
    assert problem.line == 7
    assert "Recovery Services vault" in problem.message and "needs none" in problem.message


def test_an_unknown_role_scope_is_refused_by_the_schema() -> None:
    with pytest.raises(InvalidRules) as caught:
        load_rules(rules_with("managementGroup"), "r.yaml")
    assert any("roleScope" in p.field for p in caught.value.problems), caught.value.problems
