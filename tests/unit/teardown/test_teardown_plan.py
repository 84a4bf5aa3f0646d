"""The teardown planner: order, blockers, waits, fingerprint, records."""

from __future__ import annotations

import json
from dataclasses import fields, replace
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from steward.domain.teardown import (
    BACKUP_VAULT_ORDER,
    RECOVERY_SERVICES_ORDER,
    BackupItem,
    BlockerKind,
    ContainerKind,
    ImmutabilityState,
    ItemKind,
    ItemState,
    NextKind,
    PlanStatus,
    ProtectionContainer,
    SiteRecoveryKind,
    SiteRecoveryObject,
    SoftDeleteState,
    StepKind,
    StepOutcome,
    TeardownPlan,
    TeardownProgress,
    VaultInventory,
    VaultKind,
    VaultSettings,
    batches,
    decide_next,
    documented_order,
    fingerprints_match,
    inventory_fingerprint,
    plan_teardown,
    purge_wait_until,
    remaining_contents,
)
from tests.unit.teardown.teardown_strategies import NOW, RS_VAULT, SUB, inventories, item, rs_inventories

# ------------------------------------------------------------------ fingerprint


@given(inventories, st.randoms(use_true_random=False))
def test_fingerprint_is_stable_under_reordering(inventory: VaultInventory, rnd) -> None:
    shuffled = inventory
    for f in fields(VaultInventory):
        value = getattr(inventory, f.name)
        if isinstance(value, tuple) and f.name != "access_denied":
            items = list(value)
            rnd.shuffle(items)
            shuffled = replace(shuffled, **{f.name: tuple(items)})
    shuffled = replace(shuffled, observed_at=NOW + timedelta(minutes=5))
    assert inventory_fingerprint(shuffled) == inventory_fingerprint(inventory)


def test_fingerprint_ignores_id_casing_only() -> None:
    a = VaultInventory(RS_VAULT, VaultKind.RECOVERY_SERVICES, items=(item("vm1"),))
    upper = replace(a.items[0], id=a.items[0].id.upper())
    assert inventory_fingerprint(replace(a, items=(upper,))) == inventory_fingerprint(a)


def _mutations(inventory: VaultInventory) -> list:
    """Every kind of change the plan would care about, applicable to this inventory."""
    s = inventory.settings
    changes = [
        lambda: replace(inventory, settings=replace(s, soft_delete_retention_days=s.soft_delete_retention_days + 1)),
        lambda: replace(inventory, settings=replace(s, mua_enabled=not s.mua_enabled)),
        lambda: replace(
            inventory,
            settings=replace(
                s,
                immutability=ImmutabilityState.LOCKED
                if s.immutability is not ImmutabilityState.LOCKED
                else ImmutabilityState.UNLOCKED,
            ),
        ),
        lambda: replace(
            inventory,
            settings=replace(
                s,
                soft_delete=SoftDeleteState.ALWAYS_ON
                if s.soft_delete is not SoftDeleteState.ALWAYS_ON
                else SoftDeleteState.ENABLED,
            ),
        ),
        lambda: replace(inventory, items=(*inventory.items, item("brand-new-vm"))),
        lambda: replace(inventory, tags=(*inventory.tags, ("zz-new-tag", "x"))),
    ]
    for index, existing in enumerate(inventory.items):

        def change_state(index: int = index, existing: BackupItem = existing) -> VaultInventory:
            new_state = ItemState.STOPPED if existing.state is not ItemState.STOPPED else ItemState.PROTECTED
            items = list(inventory.items)
            items[index] = replace(existing, state=new_state, deferred_delete_at=None)
            return replace(inventory, items=tuple(items))

        def remove(index: int = index) -> VaultInventory:
            return replace(inventory, items=inventory.items[:index] + inventory.items[index + 1 :])

        changes += [change_state, remove]
        if existing.state is ItemState.SOFT_DELETED and existing.deferred_delete_at is not None:

            def move_purge(index: int = index, existing: BackupItem = existing) -> VaultInventory:
                items = list(inventory.items)
                items[index] = replace(existing, deferred_delete_at=existing.deferred_delete_at + timedelta(days=1))
                return replace(inventory, items=tuple(items))

            changes.append(move_purge)
    for group in ("containers", "intents", "servers", "site_recovery", "private_endpoints", "instances", "policies"):
        values = getattr(inventory, group)
        if values:
            changes.append(lambda group=group, values=values: replace(inventory, **{group: values[1:]}))
    return changes


@given(inventories, st.data())
def test_fingerprint_changes_under_any_change(inventory: VaultInventory, data) -> None:
    mutations = _mutations(inventory)
    mutate = data.draw(st.sampled_from(mutations))
    assert inventory_fingerprint(mutate()) != inventory_fingerprint(inventory)


def test_fingerprint_match_accepts_prefix_and_case() -> None:
    fp = inventory_fingerprint(VaultInventory(RS_VAULT, VaultKind.RECOVERY_SERVICES))
    assert fingerprints_match(fp, fp)
    assert fingerprints_match(fp.removeprefix("sha256:").upper(), fp)
    assert not fingerprints_match(None, fp)
    assert not fingerprints_match(fp[:-1] + ("0" if fp[-1] != "0" else "1"), fp)


# ------------------------------------------------------------------ order and coverage


@given(inventories)
def test_steps_are_always_in_the_documented_order(inventory: VaultInventory) -> None:
    plan = plan_teardown(inventory, NOW)
    order = documented_order(inventory.kind)
    positions = [order.index(step.kind) for step in plan.steps]
    assert positions == sorted(positions)
    assert len(set(positions)) == len(positions), "a step kind appears twice"
    if plan.steps:
        assert plan.steps[-1].kind is StepKind.DELETE_VAULT
        assert plan.steps[-2].kind is StepKind.VERIFY_EMPTY


@given(inventories)
def test_nothing_destructive_is_planned_when_blocked(inventory: VaultInventory) -> None:
    plan = plan_teardown(inventory, NOW)
    if any(b.hard for b in plan.blockers):
        assert plan.status is PlanStatus.BLOCKED
        assert not any(step.destructive for step in plan.steps)
        assert decide_next(plan, TeardownProgress.start(plan), security_approved=True).kind is NextKind.FINISHED


@given(rs_inventories())
def test_locked_immutability_with_data_blocks_everything(inventory: VaultInventory) -> None:
    inventory = replace(
        inventory,
        settings=replace(inventory.settings, immutability=ImmutabilityState.LOCKED),
        items=(*inventory.items, item("held-vm")),
    )
    plan = plan_teardown(inventory, NOW)
    assert plan.status is PlanStatus.BLOCKED
    assert plan.steps == ()
    assert any(b.kind is BlockerKind.IMMUTABILITY_LOCKED for b in plan.blockers)


@given(rs_inventories())
def test_every_object_is_in_exactly_one_step_unless_it_goes_with_its_parent(inventory: VaultInventory) -> None:
    unlocked = replace(inventory.settings, immutability=ImmutabilityState.DISABLED)
    inventory = replace(inventory, access_denied=(), settings=unlocked)
    plan = plan_teardown(inventory, NOW)
    targeted = [
        t.id.lower()
        for step in plan.steps
        if step.kind is not StepKind.UNDELETE_ITEMS
        for t in step.targets
        if t.type_name != "vault"
    ]
    assert len(targeted) == len(set(targeted)), "an object is acted on by two steps"
    stays = SoftDeleteState.ALWAYS_ON in (inventory.settings.soft_delete, inventory.settings.enhanced_security)
    server_containers = {s.container.lower() for s in inventory.servers if s.container}
    for obj in inventory.objects():
        if isinstance(obj, ProtectionContainer) and (obj.kind in (ContainerKind.VM, ContainerKind.OTHER)):
            continue
        if isinstance(obj, ProtectionContainer) and obj.name.lower() in server_containers | {
            s.name.lower() for s in inventory.servers
        }:
            continue
        if isinstance(obj, BackupItem) and obj.container.lower() in server_containers:
            continue
        if isinstance(obj, SiteRecoveryObject) and obj.kind is SiteRecoveryKind.PROTECTION_CONTAINER:
            assert obj.id.lower() not in targeted, "D-script never removes a protection container; its fabric does"
            continue
        if isinstance(obj, BackupItem) and stays and obj.state is ItemState.SOFT_DELETED:
            assert obj.id.lower() not in targeted, "an always-on soft-deleted item cannot be deleted again"
            continue
        assert obj.id.lower() in targeted, f"{obj.type_name} {obj.name} is not in the plan"


def test_soft_deleted_items_are_undeleted_then_deleted_after_soft_delete_is_off() -> None:
    gone = item("vm-gone", state=ItemState.SOFT_DELETED, deferred=NOW + timedelta(days=10))
    live = item("vm-live")
    inventory = VaultInventory(
        RS_VAULT,
        VaultKind.RECOVERY_SERVICES,
        settings=VaultSettings(soft_delete=SoftDeleteState.ENABLED, enhanced_security=SoftDeleteState.ENABLED),
        items=(live, gone),
    )
    plan = plan_teardown(inventory, NOW)
    kinds = [s.kind for s in plan.steps]
    assert kinds == [
        StepKind.DISABLE_SOFT_DELETE,
        StepKind.DISABLE_ENHANCED_SECURITY,
        StepKind.UNDELETE_ITEMS,
        StepKind.DELETE_VM_ITEMS,
        StepKind.VERIFY_EMPTY,
        StepKind.DELETE_VAULT,
    ]
    assert plan.step(StepKind.UNDELETE_ITEMS).targets == (gone,)
    assert {t.name for t in plan.step(StepKind.DELETE_VM_ITEMS).targets} == {live.name, gone.name}
    assert plan.status is PlanStatus.READY
    assert plan.estimated_purge_at is None


def test_always_on_soft_delete_waits_until_the_latest_purge_date_instead_of_failing() -> None:
    first = item("a", state=ItemState.SOFT_DELETED, deferred=NOW + timedelta(days=3))
    last = item("b", state=ItemState.SOFT_DELETED, deferred=NOW + timedelta(days=9))
    live = item("c")
    inventory = VaultInventory(
        RS_VAULT,
        VaultKind.RECOVERY_SERVICES,
        settings=VaultSettings(soft_delete=SoftDeleteState.ALWAYS_ON, soft_delete_retention_days=14),
        items=(first, last, live),
    )
    plan = plan_teardown(inventory, NOW)
    assert plan.status is PlanStatus.READY
    wait = plan.step(StepKind.AWAIT_PURGE)
    # the live item deleted now stays soft-deleted for the retention period: that is the latest date.
    assert wait is not None and wait.wait_until == NOW + timedelta(days=14)
    assert [t.name for t in plan.step(StepKind.DELETE_VM_ITEMS).targets] == [live.name]
    assert plan.step(StepKind.UNDELETE_ITEMS) is None
    blocker = next(b for b in plan.blockers if b.kind is BlockerKind.ALWAYS_ON_SOFT_DELETE)
    assert not blocker.hard and blocker.until == NOW + timedelta(days=14)


def test_mua_makes_the_settings_steps_wait_for_a_security_admin() -> None:
    inventory = VaultInventory(
        RS_VAULT,
        VaultKind.RECOVERY_SERVICES,
        settings=VaultSettings(soft_delete=SoftDeleteState.ENABLED, mua_enabled=True, resource_guard_id="/rg/guard"),
        items=(item("vm"),),
    )
    plan = plan_teardown(inventory, NOW)
    assert plan.status is PlanStatus.NEEDS_SECURITY_APPROVAL
    blocker = next(b for b in plan.blockers if b.kind is BlockerKind.MUA)
    assert "/rg/guard" in blocker.action_needed and "SecurityApprovalGranted" in blocker.action_needed
    progress = TeardownProgress.start(plan)
    parked = decide_next(plan, progress, security_approved=False)
    assert parked.kind is NextKind.AWAIT_SECURITY_APPROVAL and parked.step.kind is StepKind.DISABLE_SOFT_DELETE
    assert decide_next(plan, progress, security_approved=True).kind is NextKind.RUN_STEP


def test_missing_permission_blocks() -> None:
    inventory = VaultInventory(
        RS_VAULT, VaultKind.RECOVERY_SERVICES, items=(item("vm"),), access_denied=("backupProtectedItems/read",)
    )
    plan = plan_teardown(inventory, NOW)
    assert plan.status is PlanStatus.BLOCKED and plan.steps == ()
    assert "backupProtectedItems/read" in plan.blockers[0].reason


def test_workload_containers_are_unregistered_in_their_workload_step() -> None:
    sql_c = "VMAppContainer;compute;rg;sqlvm"
    hana_c = "VMAppContainer;compute;rg;hanavm"
    inventory = VaultInventory(
        RS_VAULT,
        VaultKind.RECOVERY_SERVICES,
        items=(
            item("db1", ItemKind.SQL, container=sql_c),
            item("h1", ItemKind.SAP_HANA, container=hana_c),
            item("share", ItemKind.AZURE_FILES, container="storagecontainer;Storage;rg;acct"),
        ),
        containers=tuple(
            ProtectionContainer(f"{RS_VAULT}/backupFabrics/Azure/protectionContainers/{n}", n, "Azure", k)
            for n, k in (
                (sql_c, ContainerKind.VM_APP),
                (hana_c, ContainerKind.VM_APP),
                ("storagecontainer;Storage;rg;acct", ContainerKind.STORAGE),
                ("iaasvmcontainer;iaasvmcontainerv2;rg;vm", ContainerKind.VM),
            )
        ),
    )
    plan = plan_teardown(inventory, NOW)
    by_kind = {s.kind: [t.name for t in s.targets] for s in plan.steps}
    assert by_kind[StepKind.UNREGISTER_SQL_CONTAINERS] == [sql_c]
    assert by_kind[StepKind.UNREGISTER_SAP_HANA_CONTAINERS] == [hana_c]
    assert by_kind[StepKind.UNREGISTER_STORAGE_CONTAINERS] == ["storagecontainer;Storage;rg;acct"]
    assert all("iaasvm" not in name for names in by_kind.values() for name in names)


def test_backup_vault_order_instances_policies_vault() -> None:
    from steward.domain.teardown import BackupInstance, BackupPolicy
    from tests.unit.teardown.teardown_strategies import BV_VAULT

    inventory = VaultInventory(
        BV_VAULT,
        VaultKind.BACKUP,
        settings=VaultSettings(soft_delete=SoftDeleteState.ENABLED),
        instances=(
            BackupInstance(f"{BV_VAULT}/backupInstances/a", "a", "Microsoft.Compute/disks", ItemState.PROTECTED),
            BackupInstance(
                f"{BV_VAULT}/backupInstances/b",
                "b",
                "Microsoft.Compute/disks",
                ItemState.SOFT_DELETED,
                purge_at=NOW + timedelta(days=2),
            ),
        ),
        policies=(BackupPolicy(f"{BV_VAULT}/backupPolicies/p", "p"),),
    )
    plan = plan_teardown(inventory, NOW)
    assert [s.kind for s in plan.steps] == [
        StepKind.DISABLE_SOFT_DELETE,
        StepKind.UNDELETE_INSTANCES,
        StepKind.STOP_INSTANCES,
        StepKind.DELETE_INSTANCES,
        StepKind.DELETE_POLICIES,
        StepKind.VERIFY_EMPTY,
        StepKind.DELETE_VAULT,
    ]
    assert plan.step(StepKind.DELETE_INSTANCES).count == 2
    assert set(BACKUP_VAULT_ORDER).isdisjoint({StepKind.DELETE_VM_ITEMS})
    assert StepKind.DELETE_INSTANCES not in RECOVERY_SERVICES_ORDER


def test_a_vault_that_is_gone_has_nothing_to_do() -> None:
    plan = plan_teardown(VaultInventory(RS_VAULT, VaultKind.RECOVERY_SERVICES, exists=False), NOW)
    assert plan.status is PlanStatus.NOTHING_TO_DO and plan.steps == ()


# ------------------------------------------------------------------ records


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(inventories)
def test_records_round_trip_through_json(inventory: VaultInventory) -> None:
    again = VaultInventory.from_record(json.loads(json.dumps(inventory.to_record())))
    assert again == inventory
    plan = plan_teardown(inventory, NOW)
    assert TeardownPlan.from_record(json.loads(json.dumps(plan.to_record()))) == plan
    progress = TeardownProgress.start(plan)
    assert TeardownProgress.from_record(json.loads(json.dumps(progress.to_record()))) == progress


# ------------------------------------------------------------------ after the steps


def test_decide_next_walks_the_plan_in_order_and_finishes() -> None:
    inventory = VaultInventory(RS_VAULT, VaultKind.RECOVERY_SERVICES, items=(item("a"), item("b")))
    plan = plan_teardown(inventory, NOW)
    progress = TeardownProgress.start(plan)
    seen = []
    while (action := decide_next(plan, progress, security_approved=False)).kind is NextKind.RUN_STEP:
        seen.append(action.step.kind)
        progress = progress.finish_step(action.step.kind, StepOutcome.DONE, NOW)
    assert seen == [s.kind for s in plan.steps]


def test_purge_wait_is_the_latest_future_purge_date() -> None:
    inventory = VaultInventory(
        RS_VAULT,
        VaultKind.RECOVERY_SERVICES,
        items=(
            item("a", state=ItemState.SOFT_DELETED, deferred=NOW + timedelta(days=1)),
            item("b", state=ItemState.SOFT_DELETED, deferred=NOW + timedelta(days=5)),
        ),
    )
    assert purge_wait_until(inventory, NOW) == NOW + timedelta(days=5)
    assert purge_wait_until(inventory, NOW + timedelta(days=6)) is None
    reasons = [r["reason"] for r in remaining_contents(inventory)]
    assert all("soft-deleted" in r for r in reasons)


@given(st.lists(st.integers(), max_size=40), st.integers(min_value=1, max_value=9))
def test_batches_keep_order_and_bound(values: list[int], size: int) -> None:
    targets = [item(f"v{i}") for i in range(len(values))]
    chunks = batches(targets, size)
    assert [t for chunk in chunks for t in chunk] == targets
    assert all(1 <= len(chunk) <= size for chunk in chunks)


def test_subscription_constant_is_a_guid() -> None:
    assert len(SUB) == 36
    with pytest.raises(ValueError, match="vault id"):
        VaultInventory(RS_VAULT.replace("vaults", "things"), VaultKind.RECOVERY_SERVICES).vault  # noqa: B018


def test_an_always_on_backup_vault_deletes_its_policies_only_after_the_purge_wait() -> None:
    """Soft-deleted instances keep their policy in use (UserErrorPolicyAssociatedWithSoftDeletedItems,
    terraform-provider-azurerm#25011): with AlwaysOn soft delete the policies wait for the purge."""
    from steward.domain.teardown import BackupInstance, BackupPolicy
    from tests.unit.teardown.teardown_strategies import BV_VAULT

    inventory = VaultInventory(
        BV_VAULT,
        VaultKind.BACKUP,
        settings=VaultSettings(soft_delete=SoftDeleteState.ALWAYS_ON),
        instances=(
            BackupInstance(f"{BV_VAULT}/backupInstances/a", "a", "Microsoft.Compute/disks", ItemState.PROTECTED),
        ),
        policies=(BackupPolicy(f"{BV_VAULT}/backupPolicies/p", "p"),),
    )
    kinds = [s.kind for s in plan_teardown(inventory, NOW).steps]
    assert kinds == [
        StepKind.STOP_INSTANCES,
        StepKind.DELETE_INSTANCES,
        StepKind.AWAIT_PURGE,
        StepKind.DELETE_POLICIES,
        StepKind.VERIFY_EMPTY,
        StepKind.DELETE_VAULT,
    ]


def test_site_recovery_follows_the_official_script_and_never_removes_a_protection_container() -> None:
    """D-script: per fabric, purge the replicated items and remove the container mappings, then the network
    mappings, then ``Remove-AzRecoveryServicesAsrFabric -Force``; it never calls
    ``replicationProtectionContainers/{c}/remove`` (the containers go with their fabric)."""
    from steward.domain.teardown import SiteRecoveryKind, SiteRecoveryObject

    fabric = f"{RS_VAULT}/replicationFabrics/f"
    container = f"{fabric}/replicationProtectionContainers/c"
    inventory = VaultInventory(
        RS_VAULT,
        VaultKind.RECOVERY_SERVICES,
        settings=VaultSettings(),
        site_recovery=(
            SiteRecoveryObject(f"{container}/replicationProtectedItems/i", "i", SiteRecoveryKind.REPLICATED_ITEM,
                               "f", container),
            SiteRecoveryObject(f"{container}/replicationProtectionContainerMappings/m", "m",
                               SiteRecoveryKind.CONTAINER_MAPPING, "f", container),
            SiteRecoveryObject(container, "c", SiteRecoveryKind.PROTECTION_CONTAINER, "f"),
            SiteRecoveryObject(fabric, "f", SiteRecoveryKind.FABRIC, "f"),
        ),
    )
    plan = plan_teardown(inventory, NOW)
    kinds = [s.kind for s in plan.steps]
    assert kinds == [
        StepKind.REMOVE_REPLICATED_ITEMS,
        StepKind.REMOVE_CONTAINER_MAPPINGS,
        StepKind.REMOVE_FABRICS,
        StepKind.VERIFY_EMPTY,
        StepKind.DELETE_VAULT,
    ]
    assert all(t.id != container for s in plan.steps for t in s.targets)
