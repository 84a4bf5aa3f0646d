"""The teardown adapters against the ARM sandbox through the real SDK clients: facts, idempotent effects,
and Azure's refusals arriving as the teardown's typed decisions."""

from __future__ import annotations

import pytest

from steward.cloud.teardown_errors import RefusalKind, TeardownRefusal
from steward.cloud.teardown_ops import TeardownOps
from steward.domain.teardown import (
    BackupItem,
    ContainerKind,
    ItemKind,
    ItemState,
    SiteRecoveryKind,
    SoftDeleteState,
    VaultRef,
    plan_teardown,
)

from .conftest import DAY, HOUR, Estate

GUARD = (
    "/subscriptions/00000000-0000-4000-8000-000000000001/resourceGroups/sec/providers/"
    "Microsoft.DataProtection/resourceGuards/g"
)


def test_inventory_reads_every_kind_across_pages(estate: Estate, ops: TeardownOps) -> None:
    vault_id = estate.full_vault(estate.group(), tags={"owner": "team-a"})
    inventory = ops.inventory(VaultRef.parse(vault_id), estate.sandbox.clock.now())
    assert inventory.exists and inventory.tag("OWNER") == "team-a"
    kinds = {item.kind for item in inventory.items}
    assert {
        ItemKind.VM,
        ItemKind.SQL,
        ItemKind.SAP_HANA,
        ItemKind.AZURE_FILES,
        ItemKind.MARS,
        ItemKind.DPM,
        ItemKind.MABS,
    } <= kinds
    assert len([i for i in inventory.items if i.kind is ItemKind.VM]) == 3  # page size 3: next links followed
    soft = [i for i in inventory.items if i.state is ItemState.SOFT_DELETED]
    assert len(soft) == 1 and soft[0].deferred_delete_at is not None
    assert {s.kind for s in inventory.servers} == {ContainerKind.MARS, ContainerKind.DPM, ContainerKind.MABS}
    assert {o.kind for o in inventory.site_recovery} == {
        SiteRecoveryKind.FABRIC,
        SiteRecoveryKind.PROTECTION_CONTAINER,
        SiteRecoveryKind.REPLICATED_ITEM,
        SiteRecoveryKind.CONTAINER_MAPPING,
        SiteRecoveryKind.NETWORK_MAPPING,
    }
    assert len(inventory.intents) == 1 and len(inventory.private_endpoints) == 1
    assert inventory.settings.soft_delete is SoftDeleteState.ENABLED


def test_a_vault_that_does_not_exist_is_reported_gone(estate: Estate, ops: TeardownOps) -> None:
    rg = estate.group()
    vault = VaultRef.parse(
        f"/subscriptions/{estate.subscription}/resourceGroups/{rg}/providers/Microsoft.RecoveryServices/vaults/nope"
    )
    assert not ops.inventory(vault, estate.sandbox.clock.now()).exists
    assert ops.delete_vault(vault).effect == "already-gone"


def test_every_effect_is_idempotent_a_second_run_finds_it_done(estate: Estate, ops: TeardownOps) -> None:
    rg = estate.group()
    vault_id = estate.rs_vault(rg, soft_delete="Disabled", enhanced="Disabled")
    estate.protect_vm(rg, "rsv", "vm-1")
    estate.model.seed_mars_server(vault_id, "mars-1")
    estate.model.seed_private_endpoint(vault_id, "pe-1")
    vault = VaultRef.parse(vault_id)
    inventory = ops.inventory(vault, estate.sandbox.clock.now())
    vm = next(i for i in inventory.items if i.kind is ItemKind.VM)
    assert ops.delete_item(vault, vm).effect == "deleted"
    assert ops.delete_item(vault, vm).effect == "already-gone"
    server = inventory.servers[0]
    assert ops.unregister_server(vault, server).effect == "unregistered"
    assert ops.unregister_server(vault, server).effect == "already-gone"
    connection = inventory.private_endpoints[0]
    assert ops.remove_private_endpoint(vault, connection).effect == "removed"
    assert ops.remove_private_endpoint(vault, connection).effect == "already-gone"
    assert ops.set_setting(vault, "softDelete", "Disabled").effect == "unchanged"
    assert ops.delete_vault(vault).effect == "deleted"
    assert ops.delete_vault(vault).effect == "already-gone"


def test_removing_a_private_endpoint_connection_removes_the_endpoint_too(estate: Estate, ops: TeardownOps) -> None:
    """The official script removes the connection and then the endpoint (Remove-AzPrivateEndpointConnection,
    Remove-AzPrivateEndpoint; MicrosoftDocs/azure-docs backup/scripts/delete-recovery-services-vault.md)."""
    from azure.core.exceptions import ResourceNotFoundError

    rg = estate.group()
    vault_id = estate.rs_vault(rg, soft_delete="Disabled", enhanced="Disabled")
    endpoint_id = estate.private_endpoint(vault_id, "pe-script")
    vault = VaultRef.parse(vault_id)
    connection = ops.inventory(vault, estate.sandbox.clock.now()).private_endpoints[0]
    assert connection.private_endpoint_id == endpoint_id
    resources = estate.clients.resources(estate.subscription).resources
    assert resources.get_by_id(endpoint_id, api_version="2024-05-01").name == "pe-script"
    assert ops.remove_private_endpoint(vault, connection).effect == "removed"
    with pytest.raises(ResourceNotFoundError):
        resources.get_by_id(endpoint_id, api_version="2024-05-01")
    assert ops.inventory(vault, estate.sandbox.clock.now()).private_endpoints == ()
    assert ops.remove_private_endpoint(vault, connection).effect == "already-gone"


def test_with_soft_delete_on_a_deleted_item_is_soft_deleted_with_its_purge_date(
    estate: Estate, ops: TeardownOps
) -> None:
    rg = estate.group()
    vault_id = estate.rs_vault(rg, soft_delete="Enabled", days=20)
    estate.protect_vm(rg, "rsv", "vm-1")
    vault = VaultRef.parse(vault_id)
    vm = ops.inventory(vault, estate.sandbox.clock.now()).items[0]
    effect = ops.delete_item(vault, vm)
    assert effect.effect == "soft-deleted" and effect.purge_at is not None
    assert (effect.purge_at - estate.sandbox.clock.now()).days in (19, 20)
    again = ops.inventory(vault, estate.sandbox.clock.now()).items[0]
    assert again.state is ItemState.SOFT_DELETED
    assert ops.undelete_item(vault, again).effect == "undeleted"
    assert ops.inventory(vault, estate.sandbox.clock.now()).items[0].state is ItemState.STOPPED
    assert ops.undelete_item(vault, again).effect == "unchanged"


def test_always_on_soft_delete_cannot_be_turned_off(estate: Estate, ops: TeardownOps) -> None:
    rg = estate.group()
    vault = VaultRef.parse(estate.rs_vault(rg, soft_delete="AlwaysON"))
    with pytest.raises(TeardownRefusal) as refused:
        ops.set_setting(vault, "softDelete", "Disabled")
    assert refused.value.kind is RefusalKind.ALWAYS_ON


def test_locked_immutability_refuses_delete_with_data(estate: Estate, ops: TeardownOps) -> None:
    rg = estate.group()
    vault = VaultRef.parse(estate.rs_vault(rg, immutability="Locked"))
    estate.protect_vm(rg, "rsv", "vm-1")
    estate.sandbox.advance(3 * HOUR)
    item: BackupItem = ops.inventory(vault, estate.sandbox.clock.now()).items[0]
    assert item.has_data
    with pytest.raises(TeardownRefusal) as refused:
        ops.delete_item(vault, item)
    assert refused.value.kind is RefusalKind.IMMUTABILITY_LOCKED
    assert plan_teardown(ops.inventory(vault, estate.sandbox.clock.now()), estate.sandbox.clock.now()).blocked


def test_mua_refuses_until_the_security_admin_grants(estate: Estate, ops: TeardownOps) -> None:
    rg = estate.group()
    vault_id = estate.rs_vault(rg)
    estate.protect_vm(rg, "rsv", "vm-1")
    estate.rsb.resource_guard_proxy.put("rsv", rg, "VaultProxy", {"properties": {"resourceGuardResourceId": GUARD}})
    vault = VaultRef.parse(vault_id)
    inventory = ops.inventory(vault, estate.sandbox.clock.now())
    assert inventory.settings.mua_enabled and inventory.settings.resource_guard_id == GUARD
    with pytest.raises(TeardownRefusal) as refused:
        ops.set_setting(vault, "softDelete", "Disabled")
    assert refused.value.kind is RefusalKind.NEEDS_SECURITY_APPROVAL
    estate.model.grant_resource_guard_access(vault_id, minutes=60)
    assert ops.set_setting(vault, "softDelete", "Disabled").effect == "changed"
    # deleting backup data is protected too: the adapter asks the proxy to unlock that one delete
    assert ops.delete_item(vault, inventory.items[0]).effect == "deleted"


def test_the_vault_refuses_deletion_while_not_empty(estate: Estate, ops: TeardownOps) -> None:
    rg = estate.group()
    vault = VaultRef.parse(estate.rs_vault(rg, soft_delete="Disabled"))
    estate.protect_vm(rg, "rsv", "vm-1")
    with pytest.raises(TeardownRefusal) as refused:
        ops.delete_vault(vault)
    assert refused.value.kind is RefusalKind.NOT_EMPTY


def test_soft_deleted_data_is_purged_after_its_date(estate: Estate, ops: TeardownOps) -> None:
    rg = estate.group()
    vault_id = estate.rs_vault(rg, soft_delete="AlwaysON", days=14)
    container, item = estate.protect_vm(rg, "rsv", "vm-1")
    estate.sandbox.advance(2 * HOUR)
    estate.model.seed_soft_deleted_item(vault_id, container, item, days_left=3)
    vault = VaultRef.parse(vault_id)
    assert ops.inventory(vault, estate.sandbox.clock.now()).items[0].state is ItemState.SOFT_DELETED
    estate.sandbox.advance(4 * DAY)
    assert ops.inventory(vault, estate.sandbox.clock.now()).items == ()


def test_backup_vault_effects(estate: Estate, ops: TeardownOps) -> None:
    rg = estate.group()
    vault_id, names = estate.backup_vault_with_instances(rg, soft_deleted=1, live=1)
    vault = VaultRef.parse(vault_id)
    inventory = ops.inventory(vault, estate.sandbox.clock.now())
    states = {i.name: i.state for i in inventory.instances}
    assert states == {names[0]: ItemState.SOFT_DELETED, names[1]: ItemState.PROTECTED}
    assert inventory.settings.soft_delete is SoftDeleteState.ENABLED and len(inventory.policies) == 1
    assert ops.set_setting(vault, "softDelete", "Disabled").effect == "changed"
    soft = next(i for i in inventory.instances if i.state is ItemState.SOFT_DELETED)
    live = next(i for i in inventory.instances if i.state is ItemState.PROTECTED)
    assert ops.undelete_instance(vault, soft).effect == "undeleted"
    assert ops.stop_instance(vault, live).effect == "stopped"
    assert ops.stop_instance(vault, live).effect == "unchanged"
    for instance in (soft, live):
        assert ops.delete_instance(vault, instance).effect == "deleted"
        assert ops.delete_instance(vault, instance).effect == "already-gone"
    assert ops.delete_policy(vault, inventory.policies[0]).effect == "deleted"
    assert ops.delete_vault(vault).effect == "deleted"
