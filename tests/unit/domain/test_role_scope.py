"""A rule's ``protect.roleScope`` (issue 15, production truth): where the Backup vault identity's roles go.

Azure RBAC allows 4,000 role assignments per subscription (``role-based-access-control/troubleshoot-limits.md``);
least privilege spends two per protected disk. Microsoft's own tooling assigns the same roles at a chosen scope:
``Set-AzDataProtectionMSIPermission -PermissionsScope Resource|ResourceGroup|Subscription``.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

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


def rules_with(scope: str | None, types: str = "", snapshot: str = "", vault: str = "") -> str:
    """One rule; its vault named by id (``BV``) unless ``vault`` gives another target: a ``roleScope`` other than
    ``resource`` is refused without an explicit vault (review finding 2)."""
    match = f"{{types: [{types}]}}" if types else "{}"
    lines = ["version: 1", "rules:", "  - name: bv", f"    match: {match}", "    protect:",
             f"      vault: {vault or f'{{id: {BV}, region: westeurope}}'}"]
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


def test_subscription_scope_puts_the_resource_and_group_roles_on_the_subscription() -> None:
    text = rules_with("subscription", snapshot="snaps")
    whole = f"/subscriptions/{SUB}"
    assert grants(DISK, text) == {"Disk Backup Reader": whole,
                                  "Disk Snapshot Contributor": f"/subscriptions/{SUB}/resourceGroups/snaps"}
    assert grants(STORAGE, text) == {"Storage Account Backup Contributor": whole}
    assert grants(PG, text) == {"PostgreSQL Flexible Server Long Term Retention Backup Role": whole,
                                "Reader": whole}


def test_subscription_scope_keeps_disk_snapshot_contributor_on_the_snapshot_group() -> None:
    """Review finding 1 (a deliberate deviation from Set-AzDataProtectionMSIPermission -PermissionsScope
    Subscription): Disk Snapshot Contributor also grants storageAccounts/listkeys/action, /write and /delete; on the
    subscription the vault identity could read the keys of, or delete, every storage account there. It stays on the
    snapshot group: the disk's own group by default, one assignment per snapshot group shared by its disks."""
    text = rules_with("subscription")
    whole = f"/subscriptions/{SUB}"
    elsewhere = f"/subscriptions/{SUB}/resourceGroups/other/providers/Microsoft.Compute/disks/d9"
    assert grants(DISK, text)["Disk Snapshot Contributor"] == GROUP
    assert grants(elsewhere, text) == {"Disk Backup Reader": whole,
                                       "Disk Snapshot Contributor": f"/subscriptions/{SUB}/resourceGroups/other"}
    assert all(scope != whole for scope in (grants(DISK, rules_with(s))["Disk Snapshot Contributor"]
                                            for s in (None, "resource", "resourceGroup", "subscription")))


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
    rsv = f"/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.RecoveryServices/vaults/rsv"
    text = rules_with("subscription", vault=f"{{id: {rsv}, region: westeurope}}")
    assert decide(VM, text).role_scope is PermissionsScope.RESOURCE


def test_a_vm_rule_with_role_scope_is_refused_at_load_naming_the_line_and_why() -> None:
    with pytest.raises(InvalidRules) as caught:
        load_rules(rules_with("resourceGroup", types="Microsoft.Compute/virtualMachines", vault="regional-default"),
                   "r.yaml")
    (problem,) = caught.value.problems  # the one reason that applies (not also "name the vault by id")
    assert problem.field == "rules[0].protect.roleScope"
    assert problem.line == 7
    assert "Recovery Services vault" in problem.message and "needs none" in problem.message


@pytest.mark.parametrize("scope", ["resourceGroup", "subscription"])
@pytest.mark.parametrize(("vault", "named"), [
    ("regional-default", "not regional-default"),
    (f"{{regionalDefault: {{subscription: {SUB}}}}}", "not regional-default"),
    ("{vaultSet: {namePrefix: bv-weu-}}", "not a vault set"),
    ("{vaultSet: {tag: {name: team, value: data}}}", "not a vault set"),
])
def test_a_wider_role_scope_without_a_vault_named_by_id_is_refused_at_load(scope: str, vault: str, named: str) -> None:
    """Review finding 2: the identity receiving a group- or subscription-wide grant must be one the operator
    pinned; the only vault of a region, or a vault admitted to a set by its name or tag, can be made by anyone who
    can create or tag a vault."""
    with pytest.raises(InvalidRules) as caught:
        load_rules(rules_with(scope, types="Microsoft.Compute/disks", vault=vault), "r.yaml")
    (problem,) = caught.value.problems
    assert problem.field == "rules[0].protect.roleScope" and problem.line == 7
    assert f"roleScope {scope}" in problem.message and named in problem.message
    assert "vault named by id (vault: {id: ..., region: ...})" in problem.message
    assert "create or tag a vault" in problem.message


@pytest.mark.parametrize("vault", ["regional-default", "{vaultSet: {namePrefix: bv-weu-}}"])
def test_least_privilege_needs_no_pinned_vault(vault: str) -> None:
    for scope in (None, "resource"):
        rules = load_rules(rules_with(scope, types="Microsoft.Compute/disks", vault=vault), "r.yaml")
        assert rules.rules[0].protect is not None
        assert rules.rules[0].protect.role_scope is PermissionsScope.RESOURCE


def test_a_vault_id_that_does_not_parse_is_reported_once() -> None:
    with pytest.raises(InvalidRules) as caught:
        load_rules(rules_with("subscription", vault="{id: not-an-id, region: westeurope}"), "r.yaml")
    (problem,) = caught.value.problems
    assert problem.field == "rules[0].protect.vault.id"


def test_an_unknown_role_scope_is_refused_by_the_schema() -> None:
    with pytest.raises(InvalidRules) as caught:
        load_rules(rules_with("managementGroup"), "r.yaml")
    assert any("roleScope" in p.field for p in caught.value.problems), caught.value.problems


# ---- shared assignments still propagating (flow.rbac_fresh) --------------------------------------------------

NOW = datetime(2026, 12, 7, 6, 0, tzinfo=UTC)


def test_a_result_of_the_code_before_counts_from_the_grant() -> None:
    old = {"ok": True, "created": ["Disk Backup Reader"], "settle_seconds": 90, "probe": False}
    assert flow.rbac_fresh(old, NOW) == (old, NOW)


def test_an_assignment_another_protection_just_made_is_waited_for_from_its_creation() -> None:
    shared = {"ok": True, "created": [], "settle_seconds": 90, "probe": False,
              "created_on": "2026-12-07T05:59:00.000000Z"}  # a minute ago, by the first disk of the group
    view, since = flow.rbac_fresh(shared, NOW)
    assert since == NOW - timedelta(minutes=1)
    assert view["created"] and flow.rbac_settle_seconds(view) == 90  # waited for as if this grant had made it
    unknown = {**shared, "settle_seconds": None}
    assert flow.rbac_awaits_probe(flow.rbac_fresh(unknown, NOW)[0])  # the probe of the worker finds it out


def test_an_assignment_older_than_the_documented_bound_is_not_waited_for_even_when_put_again() -> None:
    old = {"ok": True, "created": ["Disk Backup Reader"], "settle_seconds": None, "probe": True,
           "created_on": "2026-12-07T05:49:59Z"}
    view, since = flow.rbac_fresh(old, NOW)
    assert since == NOW and view["created"] == [] and view["probe"] is False
    assert flow.rbac_settle_seconds(view) is None and not flow.rbac_awaits_probe(view)


def test_a_creation_time_ahead_of_the_orchestration_clock_counts_as_now() -> None:
    ahead = {"ok": True, "created": ["r"], "settle_seconds": 30, "created_on": "2026-12-07T06:00:05Z"}
    assert flow.rbac_fresh(ahead, NOW)[1] == NOW
    naive = NOW.replace(tzinfo=None)
    assert flow.rbac_fresh(ahead, naive)[1] == naive  # the orchestration's clock as it is


# ---- the subscription's role assignment limit ---------------------------------------------------------------

LIMIT = {"ok": False, "code": "RoleAssignmentLimitExceeded", "status": 400,
         "message": "No more role assignments can be created."}


@pytest.mark.parametrize(("scope", "fix"), [
    (None, "set protect.roleScope: resourceGroup on rule 'bv'"),
    ("resourceGroup", "set protect.roleScope: subscription on rule 'bv'"),
    ("subscription", "free role assignments in the subscription"),
])
def test_past_the_limit_the_reason_names_azures_4000_and_the_fix(scope: str | None, fix: str) -> None:
    decision = decide(DISK, rules_with(scope))
    reason, details = flow.role_grant_refused(LIMIT, decision, {"id": DISK, "location": "westeurope"})
    assert "4,000 role assignments" in reason and SUB in reason and fix in reason, reason
    assert "not retried" in reason and "No more role assignments can be created." in reason
    assert details == {"code": "RoleAssignmentLimitExceeded", "subscription": SUB,
                       "roleScope": decision.role_scope.value}


def test_past_the_limit_a_rule_without_a_pinned_vault_is_told_to_name_it_as_well() -> None:
    decision = decide(DISK, rules_with(None, vault="regional-default"))
    reason, _ = flow.role_grant_refused(LIMIT, decision, {"id": DISK, "location": "westeurope"})
    assert "set protect.roleScope: resourceGroup on rule 'bv' with its vault named by id" in reason, reason
    pinned, _ = flow.role_grant_refused(LIMIT, decide(DISK, rules_with(None)), {"id": DISK})
    assert "named by id" not in pinned  # the rule already names it


def test_another_refusal_keeps_azures_message() -> None:
    other = {"ok": False, "code": "AuthorizationFailed", "message": "no write"}
    assert flow.role_grant_refused(other, decide(DISK, rules_with(None)), {"id": DISK}) == (
        "role assignment refused: no write", {})
