"""Every control in the registry: one estate that triggers it and one that does not."""

from __future__ import annotations

import json
import uuid
from dataclasses import replace
from datetime import timedelta

import pytest

from steward.domain.audit import (
    CONTROLS,
    AuditError,
    EstateInventory,
    Expectation,
    Finding,
    ImmutabilityState,
    InventoryGap,
    ProtectedItem,
    RoleAssignment,
    RoleAssignmentCount,
    RuleExpectations,
    SoftDeleteState,
    UniformExpectations,
    VaultRequirements,
    audit,
    inventory_from_json,
    inventory_to_json,
    overlapping,
    redundant_assignments,
)
from steward.rules_file import default_rules_text, load_rules
from tests.unit.audit.audit_estate_builders import (
    NOW,
    STRICT,
    SUB_A,
    SUB_B,
    backup_vault,
    disk,
    healthy_estate,
    instance_for,
    item_for,
    rs_vault,
    rules,
    vm,
)

TESTED_CONTROLS: set[str] = set()


def fired(inventory: EstateInventory, expectations: UniformExpectations | None = None) -> dict[str, list[str]]:
    result = audit(inventory, expectations or rules(), NOW)
    by_control: dict[str, list[str]] = {}
    for finding in result.findings:
        by_control.setdefault(finding.control_id, []).append(finding.resource_id)
    return by_control


def covers(*control_ids: str) -> None:
    TESTED_CONTROLS.update(control_ids)


def test_the_healthy_estate_fires_nothing() -> None:
    assert fired(healthy_estate()) == {}


# BKP-001 unprotected ------------------------------------------------------------------------------------
covers("BKP-001")


def test_bkp001_fires_for_a_required_resource_without_protection() -> None:
    estate = healthy_estate()
    stray = vm("vm-new")
    result = fired(replace(estate, resources=(*estate.resources, stray)))
    assert result == {"BKP-001": [stray.id]}


def test_bkp001_fires_when_the_only_item_is_soft_deleted() -> None:
    estate = healthy_estate()
    item = replace(estate.protected_items[0], soft_deleted=True, purge_at=NOW + timedelta(days=3))
    result = fired(replace(estate, protected_items=(item,)))
    assert result["BKP-001"] == [estate.resources[0].id]
    assert result["BKP-006"] == [item.id]


def test_bkp001_is_silent_when_the_rules_opt_the_resource_out() -> None:
    estate = healthy_estate()
    stray = vm("vm-optout")
    result = fired(replace(estate, resources=(*estate.resources, stray)), rules(must_protect=False))
    assert "BKP-001" not in result


# BKP-002 policy -----------------------------------------------------------------------------------------
covers("BKP-002")


def test_bkp002_fires_for_a_policy_other_than_the_rules() -> None:
    estate = healthy_estate()
    item = item_for(estate.resources[0], estate.vaults[0], policy="CheapPolicy")
    assert fired(replace(estate, protected_items=(item,))) == {"BKP-002": [estate.resources[0].id]}


def test_bkp002_compares_policy_names_case_insensitively_and_accepts_a_full_id() -> None:
    estate = healthy_estate()
    item = item_for(estate.resources[0], estate.vaults[0], policy="defaultpolicy")
    assert fired(replace(estate, protected_items=(item,))) == {}
    by_id = rules(vm_policy=f"{estate.vaults[0].id}/backupPolicies/DefaultPolicy")
    assert fired(estate, by_id) == {}


def test_bkp002_is_silent_when_the_rule_names_no_policy() -> None:
    estate = healthy_estate()
    item = item_for(estate.resources[0], estate.vaults[0], policy="Anything")
    assert fired(replace(estate, protected_items=(item,)), rules(vm_policy=None)) == {}


# BKP-003 placement --------------------------------------------------------------------------------------
covers("BKP-003")


def test_bkp003_fires_for_a_vault_in_another_region() -> None:
    estate = healthy_estate()
    far = rs_vault("rsv-neu", location="northeurope")
    item = item_for(estate.resources[0], far)
    result = fired(replace(estate, vaults=(*estate.vaults, far), protected_items=(item,)))
    assert result["BKP-003"] == [estate.resources[0].id]
    assert "VLT-005" in result  # the regional vault is now empty


def test_bkp003_fires_for_a_vm_in_a_vault_of_another_subscription() -> None:
    estate = healthy_estate()
    other = rs_vault("rsv-b", sub=SUB_B)
    item = item_for(estate.resources[0], other)
    result = fired(replace(estate, vaults=(*estate.vaults, other), protected_items=(item,)))
    assert result["BKP-003"] == [estate.resources[0].id]


def test_bkp003_allows_a_disk_in_a_backup_vault_of_another_subscription_same_region() -> None:
    estate = healthy_estate()
    other = backup_vault("bv-b", sub=SUB_B)
    d = estate.resources[1]
    instances = (instance_for(d, other), *estate.backup_instances[1:])
    result = fired(replace(estate, vaults=(*estate.vaults, other), backup_instances=instances))
    assert "BKP-003" not in result


# BKP-004 not running ------------------------------------------------------------------------------------
covers("BKP-004")


@pytest.mark.parametrize("state", ["ProtectionStopped", "ProtectionError", "BackupsSuspended", "ProtectionPaused"])
def test_bkp004_fires_for_a_recovery_services_item_that_is_not_backing_up(state: str) -> None:
    estate = healthy_estate()
    item = replace(estate.protected_items[0], protection_state=state)
    result = fired(replace(estate, protected_items=(item,)))
    assert result["BKP-004"] == [item.id]
    assert "BKP-001" not in result  # it is protected, just not running: one finding, not two


@pytest.mark.parametrize(
    "status", ["ProtectionStopped", "ProtectionError", "BackupSchedulesSuspended", "ConfiguringProtectionFailed"]
)
def test_bkp004_fires_for_a_backup_instance_that_is_not_backing_up(status: str) -> None:
    estate = healthy_estate()
    instance = replace(estate.backup_instances[0], protection_status=status)
    result = fired(replace(estate, backup_instances=(instance, *estate.backup_instances[1:])))
    assert result["BKP-004"] == [instance.id]


@pytest.mark.parametrize("state", ["Protected", "IRPending"])
def test_bkp004_is_silent_for_running_protection(state: str) -> None:
    estate = healthy_estate()
    item = replace(estate.protected_items[0], protection_state=state)
    assert "BKP-004" not in fired(replace(estate, protected_items=(item,)))


# BKP-005 RPO --------------------------------------------------------------------------------------------
covers("BKP-005")


def test_bkp005_fires_when_the_last_backup_is_older_than_the_rpo() -> None:
    estate = healthy_estate()
    item = replace(estate.protected_items[0], last_backup_time=NOW - timedelta(hours=30))
    result = audit(replace(estate, protected_items=(item,)), rules(rpo_hours=26), NOW)
    [finding] = result.findings
    assert finding.control_id == "BKP-005"
    assert finding.details["ageHours"] == "30.0"
    assert finding.details["rpoHours"] == "26"


def test_bkp005_is_silent_within_the_rpo_and_without_an_rpo() -> None:
    estate = healthy_estate()
    item = replace(estate.protected_items[0], last_backup_time=NOW - timedelta(hours=25, minutes=59))
    assert fired(replace(estate, protected_items=(item,)), rules(rpo_hours=26)) == {}
    old = replace(item, last_backup_time=NOW - timedelta(days=30))
    assert fired(replace(estate, protected_items=(old,)), rules(rpo_hours=None)) == {}


def test_bkp005_fires_for_a_protected_item_with_no_backup_recorded_but_not_for_a_pending_one() -> None:
    estate = healthy_estate()
    never = replace(estate.protected_items[0], last_backup_time=None)
    assert fired(replace(estate, protected_items=(never,))) == {"BKP-005": [estate.resources[0].id]}
    pending = replace(never, protection_state="IRPending")
    assert fired(replace(estate, protected_items=(pending,))) == {}


def test_bkp005_judges_a_backup_instance_only_when_its_last_backup_is_known() -> None:
    estate = healthy_estate()
    unknown = estate.backup_instances[0]
    assert unknown.last_backup_time is None
    assert fired(estate) == {}
    stale = replace(unknown, last_backup_time=NOW - timedelta(hours=48))
    result = fired(replace(estate, backup_instances=(stale, *estate.backup_instances[1:])))
    assert result == {"BKP-005": [estate.resources[1].id]}


# BKP-007 blob containers outside the vaulted backup ------------------------------------------------------------
covers("BKP-007")


def _with_blob_instance(containers: tuple[str, ...] | None, account: tuple[str, ...] | None,
                        **changes: object) -> EstateInventory:
    estate = healthy_estate()
    instances = list(estate.backup_instances)
    instances[1] = replace(instances[1], containers=containers, account_containers=account, **changes)
    return replace(estate, backup_instances=tuple(instances))


def test_bkp007_fires_for_containers_the_vaulted_instance_does_not_list() -> None:
    result = audit(_with_blob_instance(("logs",), ("logs", "invoices", "Archive")), rules(), NOW)
    [finding] = result.findings
    assert finding.control_id == "BKP-007" and finding.resource_id.endswith("/storageAccounts/st1")
    assert finding.details["leftOut"] == "Archive, invoices" and finding.details["reason"] == "not listed"
    assert "not backed up until the protection is modified" in finding.why


def test_bkp007_reports_the_101st_container_as_past_azures_limit() -> None:
    listed = tuple(f"c{i:03d}" for i in range(100))
    result = audit(_with_blob_instance(listed, (*listed, "c100")), rules(), NOW)
    [finding] = result.findings
    assert finding.details == {**finding.details, "leftOut": "c100", "listed": "100", "reason": "limit"}
    assert "the most vaulted blob backup allows (100)" in finding.why


def test_bkp007_is_silent_when_every_container_is_listed_or_nothing_was_read() -> None:
    assert fired(_with_blob_instance(("a", "b"), ("B", "a"))) == {}
    assert fired(_with_blob_instance(None, ("a",))) == {}  # operational: the whole account is covered
    assert fired(_with_blob_instance(("a",), None)) == {}  # containers not read: no claim
    assert "BKP-007" not in fired(_with_blob_instance(("a",), ("a", "b"), protection_status="ProtectionStopped"))


def test_bkp007_does_not_ask_for_system_containers_a_vaulted_backup_cannot_list() -> None:
    """$logs / $blobchangefeed are Azure's own containers; Microsoft's clients refuse them in containersList (only
    $root and $web may be listed): the audit does not report them as unprotected."""
    assert fired(_with_blob_instance(("a",), ("a", "$logs", "$blobchangefeed"))) == {}
    [finding] = audit(_with_blob_instance(("a",), ("a", "$logs", "$web")), rules(), NOW).findings
    assert finding.details["leftOut"] == "$web"


# BKP-006 soft-deleted -----------------------------------------------------------------------------------
covers("BKP-006")


def test_bkp006_fires_for_a_soft_deleted_item_and_says_when_it_purges() -> None:
    estate = healthy_estate()
    ghost_vm = vm("vm-gone-but-kept")
    ghost = item_for(ghost_vm, estate.vaults[0], soft_deleted=True, purge_at=NOW + timedelta(days=13, hours=12))
    result = audit(
        replace(estate, resources=(*estate.resources, ghost_vm), protected_items=(*estate.protected_items, ghost)),
        rules(),
        NOW,
    )
    soft = [f for f in result.findings if f.control_id == "BKP-006"]
    assert len(soft) == 1
    assert soft[0].details["purgeAt"] == "2026-12-08T20:00:00Z"
    assert "13.5 days left" in soft[0].why


def test_bkp006_fires_for_a_soft_deleted_backup_instance() -> None:
    estate = healthy_estate()
    gone = replace(estate.backup_instances[0], protection_status="SoftDeleted")
    result = fired(replace(estate, backup_instances=(gone, *estate.backup_instances[1:])))
    assert result["BKP-006"] == [gone.id]
    assert result["BKP-001"] == [estate.resources[1].id]


def test_bkp006_is_silent_without_soft_deleted_items() -> None:
    assert "BKP-006" not in fired(healthy_estate())


# VLT-001 .. VLT-004 vault settings ----------------------------------------------------------------------
covers("VLT-001", "VLT-002", "VLT-003", "VLT-004")


def _with_rs_vault(**settings: object) -> EstateInventory:
    estate = healthy_estate()
    return replace(estate, vaults=(replace(estate.vaults[0], **settings), estate.vaults[1]))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("state", "required", "fires"),
    [
        (SoftDeleteState.ON, SoftDeleteState.ALWAYS_ON, True),
        (SoftDeleteState.OFF, SoftDeleteState.ON, True),
        (SoftDeleteState.UNKNOWN, SoftDeleteState.ON, True),
        (SoftDeleteState.ALWAYS_ON, SoftDeleteState.ALWAYS_ON, False),
        (SoftDeleteState.ON, SoftDeleteState.ON, False),
        (SoftDeleteState.OFF, None, False),
    ],
)
def test_vlt001_soft_delete_weaker_than_required(
    state: SoftDeleteState, required: SoftDeleteState | None, fires: bool
) -> None:
    estate = _with_rs_vault(soft_delete=state)
    result = fired(estate, rules(requirements=replace(STRICT, soft_delete=required)))
    assert ("VLT-001" in result) is fires
    if fires:
        assert result["VLT-001"] == [estate.vaults[0].id]


@pytest.mark.parametrize(
    ("state", "required", "fires"),
    [
        (ImmutabilityState.DISABLED, ImmutabilityState.UNLOCKED, True),
        (ImmutabilityState.UNLOCKED, ImmutabilityState.LOCKED, True),
        (ImmutabilityState.UNLOCKED, ImmutabilityState.UNLOCKED, False),
        (ImmutabilityState.LOCKED, ImmutabilityState.UNLOCKED, False),
        (ImmutabilityState.DISABLED, None, False),
    ],
)
def test_vlt002_immutability_weaker_than_required(
    state: ImmutabilityState, required: ImmutabilityState | None, fires: bool
) -> None:
    result = fired(_with_rs_vault(immutability=state), rules(requirements=replace(STRICT, immutability=required)))
    assert ("VLT-002" in result) is fires


@pytest.mark.parametrize(
    ("enabled", "required", "fires"),
    [(False, True, True), (None, True, True), (True, True, False), (False, False, False)],
)
def test_vlt003_cross_region_restore(enabled: bool | None, required: bool, fires: bool) -> None:
    result = fired(
        _with_rs_vault(cross_region_restore=enabled), rules(requirements=replace(STRICT, cross_region_restore=required))
    )
    assert ("VLT-003" in result) is fires


@pytest.mark.parametrize(
    ("enabled", "required", "fires"), [(False, True, True), (True, True, False), (False, False, False)]
)
def test_vlt004_multi_user_authorization(enabled: bool, required: bool, fires: bool) -> None:
    result = fired(
        _with_rs_vault(multi_user_authorization=enabled),
        rules(requirements=replace(STRICT, multi_user_authorization=required)),
    )
    assert ("VLT-004" in result) is fires


def test_vault_requirements_come_from_the_rules_of_what_the_vault_protects() -> None:
    """A weak vault protecting only opted-out resources is not held to the protect rule's requirements."""
    estate = _with_rs_vault(soft_delete=SoftDeleteState.OFF)
    strict_vms_only = UniformExpectations(
        default=Expectation(must_protect=True, rule="loose", vault_requirements=VaultRequirements()),
        by_type={"Microsoft.Compute/disks": Expectation(must_protect=True, rule="disks", vault_requirements=STRICT)},
    )
    assert "VLT-001" not in fired(estate, strict_vms_only)


def test_the_strictest_requirement_of_the_vaults_resources_wins() -> None:
    weak, strong = (
        VaultRequirements(soft_delete=SoftDeleteState.ON),
        VaultRequirements(soft_delete=SoftDeleteState.ALWAYS_ON, immutability=ImmutabilityState.UNLOCKED),
    )
    assert weak.strictest(strong) == strong
    assert strong.strictest(weak) == strong
    assert VaultRequirements().strictest(weak) == weak


# VLT-005 empty vault ------------------------------------------------------------------------------------
covers("VLT-005")


def test_vlt005_fires_for_a_vault_with_nothing_in_it() -> None:
    estate = healthy_estate()
    empty = rs_vault("rsv-empty")
    assert fired(replace(estate, vaults=(*estate.vaults, empty))) == {"VLT-005": [empty.id]}


def test_vlt005_is_silent_for_a_vault_holding_only_soft_deleted_items() -> None:
    estate = healthy_estate()
    item = replace(estate.protected_items[0], soft_deleted=True)
    assert "VLT-005" not in fired(replace(estate, protected_items=(item,)))


# CAP-001 vault above its fill threshold, CAP-002 policy-change budget nearly spent (issue 19) -----------------
covers("CAP-001", "CAP-002")


def _with_vm_items(estate: EstateInventory, count: int) -> EstateInventory:
    """The estate's vault listing ``count`` more VM items (of VMs outside the inventory)."""
    template = estate.protected_items[0]
    extra = tuple(replace(template, id=f"{template.id}-{n}", source_id=f"{template.source_id}-{n}")
                  for n in range(count))
    return replace(estate, protected_items=(*estate.protected_items, *extra))


def test_cap001_fires_for_a_vault_at_its_fill_threshold_and_says_when_azure_refuses() -> None:
    estate = healthy_estate()
    vault = estate.vaults[0]
    assert fired(_with_vm_items(estate, 899))["CAP-001"] == [vault.id]  # 900 of 1,000 = the default 90 %
    full = audit(_with_vm_items(estate, 999), rules(), NOW)
    finding = next(f for f in full.findings if f.control_id == "CAP-001")
    assert "Azure refuses the next one" in finding.why and finding.details["vms"] == "1000"


def test_cap001_is_silent_below_the_threshold_and_follows_the_configured_one() -> None:
    estate = _with_vm_items(healthy_estate(), 898)
    assert "CAP-001" not in fired(estate)  # 899 of 1,000
    strict = load_rules(default_rules_text(), "defaults", vault_fill_percent=50)
    assert "CAP-001" in {f.control_id for f in audit(_with_vm_items(healthy_estate(), 499), strict, NOW).findings}
    assert "CAP-001" not in {f.control_id for f in audit(_with_vm_items(healthy_estate(), 498), strict, NOW).findings}


def test_cap001_follows_the_configured_threshold_through_the_expectations_the_app_passes() -> None:
    """The timer's activity and the CLI hand ``audit`` a :class:`RuleExpectations`, not the RuleSet: the threshold
    (STEWARD_VAULT_FILL_PERCENT) must still reach CAP-001 (it read 90 % whatever was configured)."""
    strict = load_rules(default_rules_text(), "defaults", vault_fill_percent=50)
    estate = _with_vm_items(healthy_estate(), 499)  # 500 of 1,000
    assert "CAP-001" in {f.control_id for f in audit(estate, RuleExpectations(strict, estate.vaults), NOW).findings}


def test_cap002_fires_when_40_of_the_50_daily_policy_changes_are_spent() -> None:
    estate = healthy_estate()
    rsv, bv = estate.vaults
    busy = replace(estate, vaults=(replace(rsv, policy_changes_24h=40), bv))
    assert fired(busy) == {"CAP-002": [rsv.id]}
    spent = audit(replace(estate, vaults=(replace(rsv, policy_changes_24h=50), bv)), rules(), NOW)
    assert "refused" in next(f for f in spent.findings if f.control_id == "CAP-002").why


def test_cap002_is_silent_below_40_or_when_the_activity_log_was_not_read() -> None:
    estate = healthy_estate()
    rsv, bv = estate.vaults
    for changes in (None, 0, 39):
        assert "CAP-002" not in fired(replace(estate, vaults=(replace(rsv, policy_changes_24h=changes), bv)))


# CAP-003 subscription near Azure's 4,000 role assignments ---------------------------------------------------
covers("CAP-003")

VAULT_PRINCIPAL = "aaaaaaaa-0000-4000-8000-00000000000a"
OTHER_VAULT_PRINCIPAL = "aaaaaaaa-0000-4000-8000-00000000000b"  # a vault of another subscription


def _with_role_assignments(total: int, by_principal: dict[str, int] | None = None,
                           subscription: str = SUB_A) -> EstateInventory:
    estate = healthy_estate()
    rsv, bv = estate.vaults
    vaults = (rsv, replace(bv, principal_id=VAULT_PRINCIPAL.upper()),  # ARM may answer either case
              backup_vault("bv-other", sub=SUB_B, principal_id=OTHER_VAULT_PRINCIPAL))
    count = RoleAssignmentCount(subscription, total, by_principal or {})
    return replace(estate, vaults=vaults, role_assignments=(count,))


def _cap003(inventory: EstateInventory, percent: int | None = None) -> list[Finding]:
    result = audit(inventory, rules(), NOW) if percent is None else audit(
        inventory, rules(), NOW, role_assignment_percent=percent)
    return [f for f in result.findings if f.control_id == "CAP-003"]


def test_cap003_fires_at_80_percent_of_4000_and_not_one_below() -> None:
    assert _cap003(_with_role_assignments(3199)) == []
    [finding] = _cap003(_with_role_assignments(3200))
    assert finding.resource_id == f"/subscriptions/{SUB_A}" and finding.resource_type == "subscription"
    assert finding.details["roleAssignments"] == "3200" and finding.details["limit"] == "4000"
    assert "3,200 role assignments" in finding.why and "80%" in finding.why and "4,000" in finding.why
    assert "protect.roleScope: resourceGroup" in finding.why and "remove role assignments" in finding.why
    assert "refuses every new one" in finding.why


def test_cap003_follows_the_configured_threshold_and_says_when_azure_refuses() -> None:
    assert _cap003(_with_role_assignments(1999), percent=50) == []
    assert len(_cap003(_with_role_assignments(2000), percent=50)) == 1
    assert _cap003(_with_role_assignments(3999), percent=100) == []
    [full] = _cap003(_with_role_assignments(4000), percent=100)
    assert "RoleAssignmentLimitExceeded" in full.why and "new protections of disks" in full.why
    with pytest.raises(AuditError, match=r"1\.\.100"):
        _cap003(_with_role_assignments(4000), percent=0)


def test_cap003_counts_the_backup_vault_identities_share_wherever_the_vault_is() -> None:
    by_principal = {VAULT_PRINCIPAL: 1500, OTHER_VAULT_PRINCIPAL: 900, "cccccccc-0000-4000-8000-00000000000c": 1000}
    [finding] = _cap003(_with_role_assignments(3400, by_principal))
    assert finding.details["vaultIdentityAssignments"] == "2400"  # 1,500 + 900 of another subscription's vault
    assert finding.details["vaultIdentities"] == "2" and finding.details["vaultSharePercent"] == "71"
    assert "2,400 of them (71%) belong to 2 Backup vault identities" in finding.why
    [none_mine] = _cap003(_with_role_assignments(3400, {"cccccccc-0000-4000-8000-00000000000c": 3400}))
    assert none_mine.details["vaultIdentityAssignments"] == "0"


def test_cap003_is_silent_where_the_role_assignments_were_not_read() -> None:
    estate = _with_role_assignments(3900)
    assert _cap003(replace(estate, role_assignments=())) == []
    # one finding per subscription read, each on its own subscription
    two = replace(estate, role_assignments=(*estate.role_assignments, RoleAssignmentCount(SUB_B, 3300, {})))
    assert sorted(f.resource_id for f in _cap003(two)) == [f"/subscriptions/{SUB_A}", f"/subscriptions/{SUB_B}"]


def test_cap003_inputs_survive_the_inventory_record() -> None:
    estate = _with_role_assignments(3300, {VAULT_PRINCIPAL: 3000})
    again = inventory_from_json(json.loads(json.dumps(inventory_to_json(estate))))
    assert again.role_assignments == estate.role_assignments
    assert [v.principal_id for v in again.vaults] == [v.principal_id for v in estate.vaults]
    older = inventory_to_json(healthy_estate())
    assert "roleAssignments" not in older and inventory_from_json(older).role_assignments == ()


# CAP-004 Backup vault identity's redundant role assignments ------------------------------------------------
covers("CAP-004")

DBR = "3e5e47e6-65f7-47ef-90b5-e5dd4d455f24"  # Disk Backup Reader
DSC = "7efff54f-a5b4-42b5-a1c5-5411624893ce"  # Disk Snapshot Contributor
STRANGER = "cccccccc-0000-4000-8000-00000000000c"  # another team's service principal
WHOLE_A = f"/subscriptions/{SUB_A}"


def _grant(principal: str, role: str, scope: str, condition: str | None = None) -> RoleAssignment:
    name = uuid.uuid5(uuid.NAMESPACE_URL, f"{principal}|{role}|{scope}|{condition}")
    return RoleAssignment(f"{scope}/providers/Microsoft.Authorization/roleAssignments/{name}", principal, role, scope,
                          condition)


def _disk_scope(group: str, name: str) -> str:
    return f"{WHOLE_A}/resourceGroups/{group}/providers/Microsoft.Compute/disks/{name}"


def _with_grants(*grants: RoleAssignment, total: int = 100) -> EstateInventory:
    """What the inventory keeps of SUB_A's list (``overlapping``) when it holds ``grants``."""
    estate = _with_role_assignments(total)
    kept = overlapping(SUB_A, grants)
    return replace(estate, role_assignments=(RoleAssignmentCount(SUB_A, total, {}, kept),))


def _cap004(inventory: EstateInventory) -> list[Finding]:
    return [f for f in audit(inventory, rules(), NOW).findings if f.control_id == "CAP-004"]


def test_cap004_lists_the_per_disk_roles_a_group_assignment_already_grants() -> None:
    group = f"{WHOLE_A}/resourceGroups/rg-app"
    per_disk = [_grant(VAULT_PRINCIPAL, DBR, _disk_scope("rg-app", f"disk-{n}")) for n in range(3)]
    elsewhere = _grant(VAULT_PRINCIPAL, DBR, _disk_scope("rg-other", "disk-x"))  # its group holds no DBR
    wide = _grant(VAULT_PRINCIPAL, DBR, group)
    snapshot = _grant(VAULT_PRINCIPAL, DSC, group)  # another role at the group: nothing below it
    [finding] = _cap004(_with_grants(*per_disk, elsewhere, wide, snapshot))
    assert finding.resource_id == WHOLE_A and finding.resource_type == "subscription"
    assert finding.severity.value == "low"
    assert finding.details["redundantAssignments"] == "3"
    assert sorted(finding.details["assignmentIds"].split()) == sorted(a.id for a in per_disk)
    vault = backup_vault().id
    assert finding.details["vaults"] == vault
    assert "3 Disk Backup Reader (held at its resource group)" in finding.why
    assert finding.fix.startswith("Remove them: az role assignment delete --ids ")
    assert all(a.id in finding.fix for a in per_disk) and elsewhere.id not in finding.fix
    assert "never deletes" in finding.fix
    # after a narrowing it is the wider one that should go: the finding names it
    assert finding.details["coveringAssignmentIds"] == wide.id and wide.id in finding.fix


def test_cap004_a_group_assignment_under_a_subscription_one_is_redundant_too() -> None:
    group = _grant(VAULT_PRINCIPAL, DBR, f"{WHOLE_A}/resourceGroups/rg-app")
    disk = _grant(VAULT_PRINCIPAL, DBR, _disk_scope("rg-app", "disk-0"))
    whole = _grant(VAULT_PRINCIPAL, DBR, WHOLE_A)
    [finding] = _cap004(_with_grants(group, disk, whole))
    assert sorted(finding.details["assignmentIds"].split()) == sorted([group.id, disk.id])  # never the widest
    assert "2 Disk Backup Reader (held at the subscription)" in finding.why
    found = redundant_assignments(SUB_A, [group, disk, whole])
    assert {r.assignment.id: r.covered_by.id for r in found} == {group.id: whole.id, disk.id: whole.id}
    # the subscription's alone is nothing to remove; nor is the same role in another subscription
    other_sub = RoleAssignment(f"/subscriptions/{SUB_B}/x", VAULT_PRINCIPAL, DBR,
                               f"/subscriptions/{SUB_B}/resourceGroups/rg-app")
    assert redundant_assignments(SUB_A, [whole, other_sub]) == []


def test_cap004_a_conditional_wider_assignment_does_not_make_one_redundant() -> None:
    group = f"{WHOLE_A}/resourceGroups/rg-app"
    disk = _grant(VAULT_PRINCIPAL, DBR, _disk_scope("rg-app", "disk-0"))
    conditional = _grant(VAULT_PRINCIPAL, DBR, group, condition="@Resource[Microsoft.Compute/disks:name] "
                                                                  "StringStartsWith 'disk-'")
    assert _cap004(_with_grants(disk, conditional)) == []
    assert overlapping(SUB_A, [disk, conditional]) == ()  # the inventory keeps nothing of them
    # the lower one conditional, the wider one not: the wider grants at least as much
    lower_conditional = _grant(VAULT_PRINCIPAL, DBR, _disk_scope("rg-app", "disk-1"), condition="true")
    [finding] = _cap004(_with_grants(lower_conditional, _grant(VAULT_PRINCIPAL, DBR, group)))
    assert finding.details["assignmentIds"] == lower_conditional.id


def test_cap004_another_role_at_the_wider_scope_does_not_count() -> None:
    group = f"{WHOLE_A}/resourceGroups/rg-app"
    disk = _grant(VAULT_PRINCIPAL, DBR, _disk_scope("rg-app", "disk-0"))
    assert _cap004(_with_grants(disk, _grant(VAULT_PRINCIPAL, DSC, group))) == []
    # nor the same role of another principal
    assert _cap004(_with_grants(disk, _grant(OTHER_VAULT_PRINCIPAL, DBR, group))) == []


def test_cap004_ignores_other_principals_and_counts_another_subscriptions_vault() -> None:
    group = f"{WHOLE_A}/resourceGroups/rg-app"
    theirs = [_grant(STRANGER, DBR, _disk_scope("rg-app", "disk-0")), _grant(STRANGER, DBR, group)]
    assert _cap004(_with_grants(*theirs)) == []  # another team's redundancy is theirs to judge
    # the identity of bv-other (a vault in SUB_B) holding roles in SUB_A is a vault identity all the same
    mine = [_grant(OTHER_VAULT_PRINCIPAL, DBR, _disk_scope("rg-app", "disk-0")), _grant(OTHER_VAULT_PRINCIPAL, DBR,
                                                                                           group)]
    [finding] = _cap004(_with_grants(*theirs, *mine))
    assert finding.details["assignmentIds"] == mine[0].id
    assert finding.details["vaults"] == backup_vault("bv-other", sub=SUB_B).id


def test_cap004_lists_twenty_ids_and_counts_them_all() -> None:
    group = f"{WHOLE_A}/resourceGroups/rg-app"
    per_disk = [_grant(VAULT_PRINCIPAL, DBR, _disk_scope("rg-app", f"disk-{n:02d}")) for n in range(25)]
    [finding] = _cap004(_with_grants(*per_disk, _grant(VAULT_PRINCIPAL, DBR, group), total=3000))
    assert finding.details["redundantAssignments"] == "25"
    assert len(finding.details["assignmentIds"].split()) == 20 and finding.details["assignmentIdsListed"] == "20"
    assert "the first 20 of 25" in finding.fix and "3,000 now" in finding.why


def test_cap004_is_silent_where_the_role_assignments_were_not_read_and_resolves_once_they_are_removed() -> None:
    group = f"{WHOLE_A}/resourceGroups/rg-app"
    redundant = _with_grants(_grant(VAULT_PRINCIPAL, DBR, _disk_scope("rg-app", "disk-0")),
                             _grant(VAULT_PRINCIPAL, DBR, group))
    assert _cap004(replace(redundant, role_assignments=())) == []
    first = audit(redundant, rules(), NOW)
    [opened] = [f for f in first.findings if f.control_id == "CAP-004"]
    assert opened.id in first.new_finding_ids
    removed = _with_grants(_grant(VAULT_PRINCIPAL, DBR, group))
    later = audit(removed, rules(), NOW + timedelta(hours=1), first)
    assert [f.id for f in later.resolved] == [opened.id]


def test_cap004_inputs_survive_the_inventory_record() -> None:
    group = f"{WHOLE_A}/resourceGroups/rg-app"
    estate = _with_grants(_grant(VAULT_PRINCIPAL, DBR, _disk_scope("rg-app", "disk-0"), condition="true"),
                          _grant(VAULT_PRINCIPAL, DBR, group))
    again = inventory_from_json(json.loads(json.dumps(inventory_to_json(estate))))
    assert again.role_assignments == estate.role_assignments and len(again.role_assignments[0].overlapping) == 2
    assert again.role_assignments[0].overlapping[0].condition == "true"


# VLT-006 vault left weakened by an interrupted teardown ----------------------------------------------------
covers("VLT-006")


def test_vlt006_fires_for_each_vault_the_reconciler_restored_or_could_not() -> None:
    estate = healthy_estate()
    vault = estate.vaults[0]
    reconciled = [
        {"vaultId": vault.id, "instanceId": "teardown-a", "effect": "reconciled",
         "restored": [{"setting": "softDelete", "from": "Disabled", "to": "Enabled", "effect": "changed"}]},
        {"vaultId": estate.vaults[1].id, "instanceId": "teardown-b", "effect": "failed",
         "restored": [{"setting": "softDelete", "from": "Disabled", "to": "Enabled", "effect": "failed",
                       "error": "needs a Resource Guard grant"}]},
    ]
    result = audit(estate, rules(), NOW, interrupted_teardowns=reconciled)
    findings = [f for f in result.findings if f.control_id == "VLT-006"]
    assert sorted(f.resource_id for f in findings) == sorted([vault.id, estate.vaults[1].id])
    restored = next(f for f in findings if f.resource_id == vault.id)
    assert "softDelete Disabled->Enabled" in restored.why and restored.details["instanceId"] == "teardown-a"
    failed = next(f for f in findings if f.resource_id == estate.vaults[1].id)
    assert "Resource Guard" in failed.why


def test_vlt006_is_silent_without_an_interrupted_teardown() -> None:
    assert "VLT-006" not in fired(healthy_estate())


# DRL-001/002/003 restore drills (issue 17) -------------------------------------------------------------
covers("DRL-001", "DRL-002", "DRL-003")


def _drill(resource_id: str, **last: object) -> dict[str, object]:
    return {"resourceId": resource_id, "rule": "weekly", "everySeconds": 7 * 24 * 3600, **last}


def test_drl001_fires_when_no_drill_succeeded_within_the_rules_period_or_ever() -> None:
    estate = healthy_estate()
    first, second = estate.resources[0].id, estate.resources[1].id
    drills = [
        _drill(first, lastSucceededAt=(NOW - timedelta(days=8)).isoformat(), lastOutcome="Succeeded"),
        _drill(second),  # never drilled
    ]
    result = audit(estate, rules(), NOW, drills=drills)
    findings = {f.resource_id: f for f in result.findings if f.control_id == "DRL-001"}
    assert set(findings) == {first, second}
    assert "192 h ago" in findings[first].why and "none ever succeeded" in findings[second].why
    recent = [_drill(first, lastSucceededAt=(NOW - timedelta(days=6)).isoformat(), lastOutcome="Succeeded")]
    assert [f for f in audit(estate, rules(), NOW, drills=recent).findings if f.control_id.startswith("DRL")] == []


def test_drl001_reads_a_success_time_without_a_zone_or_in_z_form_as_the_kernel_says() -> None:
    """A drill record's ``lastSucceededAt`` without a zone reads as none (never taken as UTC); ``Z`` is UTC."""
    estate = healthy_estate()
    first = estate.resources[0].id
    recent = NOW - timedelta(days=1)
    zoneless = [_drill(first, lastSucceededAt=recent.replace(tzinfo=None).isoformat(), lastOutcome="Succeeded")]
    [finding] = [f for f in audit(estate, rules(), NOW, drills=zoneless).findings if f.control_id == "DRL-001"]
    assert "none ever succeeded" in finding.why
    zulu = [_drill(first, lastSucceededAt=recent.strftime("%Y-%m-%dT%H:%M:%SZ"), lastOutcome="Succeeded")]
    assert [f for f in audit(estate, rules(), NOW, drills=zulu).findings if f.control_id.startswith("DRL")] == []


def test_drl002_fires_when_the_last_drill_failed_even_within_the_period() -> None:
    estate = healthy_estate()
    first = estate.resources[0].id
    drills = [_drill(first, lastSucceededAt=(NOW - timedelta(days=2)).isoformat(), lastOutcome="RestoreFailed",
                     lastDrillId="drill-b", lastDrillAt=(NOW - timedelta(days=1)).isoformat())]
    [finding] = [f for f in audit(estate, rules(), NOW, drills=drills).findings if f.control_id.startswith("DRL")]
    assert finding.control_id == "DRL-002" and "drill-b" in finding.why and "RestoreFailed" in finding.why
    cancelled = [dict(drills[0], lastOutcome="Cancelled")]
    assert [f for f in audit(estate, rules(), NOW, drills=cancelled).findings if f.control_id.startswith("DRL")] == []


def test_drl003_reports_each_leftover_past_its_lifetime_and_what_the_reconciler_did() -> None:
    group = f"/subscriptions/{SUB_A}/resourceGroups/backup-steward-drill-westeurope"
    disk_id = f"{group}/providers/Microsoft.Compute/disks/d1"
    account = disk_id.replace("Microsoft.Compute/disks/d1", "Microsoft.Storage/storageAccounts/bsdrill1")
    expired = (NOW - timedelta(hours=1)).isoformat()
    leftovers = [
        {"id": disk_id, "drillId": "drill-a", "expiredAt": expired, "effect": "deleted"},
        {"id": account, "drillId": "drill-a", "expiredAt": expired, "effect": "kept",
         "reason": "it no longer carries the drill's tag"},
        {"id": account + "x", "drillId": "drill-a", "expiredAt": expired, "effect": "gone"},
    ]
    findings = {f.resource_id: f for f in audit(healthy_estate(), rules(), NOW, drill_leftovers=leftovers).findings
                if f.control_id == "DRL-003"}
    assert set(findings) == {disk_id, account}
    assert "deleted it" in findings[disk_id].why and "left alone" in findings[account].why
    assert findings[disk_id].resource_type == "Microsoft.Compute/disks"


# ORP-001 orphaned ---------------------------------------------------------------------------------------
covers("ORP-001")


def test_orp001_fires_for_an_item_whose_source_is_gone() -> None:
    estate = healthy_estate()
    orphan = item_for(vm("vm-deleted"), estate.vaults[0], state="ProtectionStopped")
    result = fired(replace(estate, protected_items=(*estate.protected_items, orphan)))
    assert result == {"ORP-001": [orphan.id]}  # no BKP-004: nobody needs the deleted VM backed up


def test_orp001_is_silent_for_present_sources_and_for_workloads_not_inventoried() -> None:
    estate = healthy_estate()
    sql = ProtectedItem(
        id=f"{estate.vaults[0].id}/backupFabrics/Azure/protectionContainers/c/protectedItems/SQLDataBase;x;db",
        vault_id=estate.vaults[0].id,
        source_id=f"/subscriptions/{SUB_A}/resourceGroups/rg/providers/Microsoft.SqlVirtualMachine/"
        "sqlVirtualMachines/sqlvm",
        policy_id=None,
        protection_state="Protected",
        last_backup_time=NOW,
    )
    assert fired(replace(estate, protected_items=(*estate.protected_items, sql))) == {}


# DRF-001 drift ------------------------------------------------------------------------------------------
covers("DRF-001")


def test_drf001_fires_for_a_protected_resource_the_rules_opt_out() -> None:
    estate = healthy_estate()
    result = fired(estate, rules(must_protect=False))
    assert sorted(result["DRF-001"]) == sorted(r.id for r in estate.resources)


def test_drf001_fires_for_protection_in_a_vault_other_than_the_rules_target() -> None:
    estate = healthy_estate()
    target = rs_vault("rsv-gold")
    result = fired(replace(estate, vaults=(*estate.vaults, target)), rules(vm_vault=target.id))
    assert result["DRF-001"] == [estate.resources[0].id]
    assert result["VLT-005"] == [target.id]


def test_drf001_is_silent_when_the_target_vault_is_the_one_used() -> None:
    estate = healthy_estate()
    assert fired(estate, rules(vm_vault=estate.vaults[0].id.upper())) == {}


# DRF-002 missing target vault ---------------------------------------------------------------------------
covers("DRF-002")


def test_drf002_fires_once_per_missing_target_vault() -> None:
    estate = healthy_estate()
    missing = rs_vault("rsv-not-created").id
    more = replace(estate, resources=(*estate.resources, vm("vm2"), vm("vm3")))
    result = fired(more, rules(vm_vault=missing))
    assert result["DRF-002"] == [missing]


def test_drf002_is_silent_for_opt_out_rules_naming_a_missing_vault() -> None:
    estate = healthy_estate()
    result = fired(replace(estate, protected_items=()), rules(must_protect=False, vm_vault=rs_vault("nope").id))
    assert "DRF-002" not in result


# INV-001 gaps -------------------------------------------------------------------------------------------
covers("INV-001")


def test_inv001_fires_for_each_scope_the_inventory_could_not_read() -> None:
    estate = replace(healthy_estate(), gaps=(InventoryGap(f"/subscriptions/{SUB_B}", "403 AuthorizationFailed"),))
    result = audit(estate, rules(), NOW)
    [gap] = result.findings
    assert gap.control_id == "INV-001"
    assert gap.subscription_id == SUB_B
    assert "AuthorizationFailed" in gap.why


def test_inv001_is_silent_for_a_complete_inventory() -> None:
    assert "INV-001" not in fired(healthy_estate())


def test_disk_in_error_and_vm_fine_are_reported_independently() -> None:
    estate = healthy_estate()
    broken = replace(estate.backup_instances[0], protection_status="ProtectionError")
    result = fired(replace(estate, backup_instances=(broken, *estate.backup_instances[1:])))
    assert result == {"BKP-004": [broken.id]}
    assert disk().id == broken.datasource_id


def test_every_declared_control_has_tests_here() -> None:
    assert set(CONTROLS) == TESTED_CONTROLS


def test_an_opted_out_resource_with_stopped_retained_protection_is_neither_bkp004_nor_drift() -> None:
    """Stop-and-retain is what opting a resource out leaves behind: not a finding."""
    estate = healthy_estate()
    item = replace(estate.protected_items[0], protection_state="ProtectionStopped")
    expectations = UniformExpectations(
        default=Expectation(must_protect=True, rule="protect-all", rpo_hours=26, vault_requirements=STRICT),
        by_type={"Microsoft.Compute/virtualMachines": Expectation(must_protect=False, rule="no-vms")},
    )
    assert fired(replace(estate, protected_items=(item,)), expectations) == {}
    running = replace(item, protection_state="Protected")
    assert fired(replace(estate, protected_items=(running,)), expectations) == {"DRF-001": [estate.resources[0].id]}
