"""Backup vault moves (the cross-tenant veto) and the Event Grid events the provider's operations raise."""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError

from sandbox.arm.config import OTHER_TENANT

from .conftest import (
    DISK,
    FOREIGN_SUBSCRIPTION,
    MOVED_SUBSCRIPTION,
    Estate,
    clients_in_tenant,
    error_code,
    make_vault,
    protected_disk,
)


def test_a_vault_moves_within_the_tenant_with_its_instances(estate: Estate) -> None:
    protected = protected_disk(estate)
    v = protected.vault
    target = estate.group("target")
    estate.clients.resources(estate.subscription).resources.begin_move_resources(
        v.rg, {"resources": [v.id], "targetResourceGroup": estate.group_id(target)}).result()

    moved = estate.dp.backup_instances.get(target, v.name, "bi")
    assert moved.properties.policy_info.policy_id.lower() == \
        f"{estate.group_id(target)}/providers/Microsoft.DataProtection/backupVaults/{v.name}/backupPolicies/policy".lower()
    assert estate.dp.backup_vaults.get(target, v.name).identity.principal_id == v.principal_id


def test_a_vault_cannot_move_to_a_subscription_in_another_tenant(estate: Estate) -> None:
    rg = estate.group("leaving")
    vault = make_vault(estate, rg)
    foreign = clients_in_tenant(estate, OTHER_TENANT)
    target = f"far-{estate.tag}"
    foreign.resources(FOREIGN_SUBSCRIPTION).resource_groups.create_or_update(target, {"location": "westus"})

    resources = estate.clients.resources(estate.subscription).resources
    body = {"resources": [vault.id],
            "targetResourceGroup": f"/subscriptions/{FOREIGN_SUBSCRIPTION}/resourceGroups/{target}"}
    with pytest.raises(HttpResponseError) as validated:
        resources.begin_validate_move_resources(rg, body).result()
    assert error_code(validated.value) == "UserErrorCrossTenantMSIMoveNotSupported"
    with pytest.raises(HttpResponseError) as moved:
        resources.begin_move_resources(rg, body).result()
    assert error_code(moved.value) == "UserErrorCrossTenantMSIMoveNotSupported"
    assert estate.dp.backup_vaults.get(rg, "vault").id.lower() == vault.id.lower()


def test_after_its_subscription_changed_tenant_a_vault_with_an_old_identity_cannot_move(estate: Estate) -> None:
    estate.subscription = MOVED_SUBSCRIPTION
    rg = estate.group("stale")
    other = estate.group("next")
    make_vault(estate, rg)  # identity issued in the original tenant
    estate.sandbox.move_subscription(MOVED_SUBSCRIPTION, OTHER_TENANT)
    try:
        mover = clients_in_tenant(estate, OTHER_TENANT).resources(MOVED_SUBSCRIPTION).resources
        with pytest.raises(HttpResponseError) as caught:
            mover.begin_move_resources(rg, {
                "resources": [f"{estate.group_id(rg)}/providers/Microsoft.DataProtection/backupVaults/vault"],
                "targetResourceGroup": estate.group_id(other)}).result()
        assert error_code(caught.value) == "UserErrorCrossTenantMSIMoveNotSupported"
    finally:
        estate.sandbox.move_subscription(MOVED_SUBSCRIPTION, estate.sandbox.default_tenant)


def test_role_assignments_on_a_moved_disk_are_orphaned(estate: Estate) -> None:
    rg, target = estate.group("disks"), estate.group("disks2")
    disk = estate.datasource(rg, DISK, "disk1")
    vault = make_vault(estate, rg)
    vault.grant("Disk Backup Reader", disk)
    estate.clients.resources(estate.subscription).resources.begin_move_resources(
        rg, {"resources": [disk], "targetResourceGroup": estate.group_id(target)}).result()
    moved = disk.replace(f"/resourceGroups/{rg}/", f"/resourceGroups/{target}/")
    assert list(estate.auth.role_assignments.list_for_scope(moved, filter="atScope()")) == []


# -- events ----------------------------------------------------------------------------------------------------
def wait_for(events: list[dict[str, Any]], predicate: Any, timeout: float = 5.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for event in list(events):
            if predicate(event):
                return event
        time.sleep(0.02)
    raise AssertionError(f"no matching event among {[e['data']['operationName'] for e in events]}")


def test_writes_deletes_and_actions_raise_arm_events(estate: Estate) -> None:
    seen: list[dict[str, Any]] = []
    estate.sandbox.subscribe(seen.extend)
    protected = protected_disk(estate, soft_delete="Off")
    v = protected.vault
    with pytest.raises(HttpResponseError):
        estate.dp.backup_vaults.begin_delete(v.rg, v.name).result()
    estate.dp.backup_instances.begin_stop_protection(v.rg, v.name, "bi").result()
    estate.dp.backup_instances.begin_delete(v.rg, v.name, "bi").result()

    def named(operation: str, event_type: str, subject_end: str) -> Any:
        return lambda e: (e["data"]["operationName"].lower() == operation.lower()
                          and e["eventType"] == event_type
                          and e["subject"].lower().endswith(subject_end.lower()))

    wait_for(seen, named("Microsoft.DataProtection/backupVaults/write",
                         "Microsoft.Resources.ResourceWriteSuccess", f"/backupVaults/{v.name}"))
    wait_for(seen, named("Microsoft.DataProtection/backupVaults/backupInstances/write",
                         "Microsoft.Resources.ResourceWriteSuccess", "/backupInstances/bi"))
    wait_for(seen, named("Microsoft.Authorization/roleAssignments/write",
                         "Microsoft.Resources.ResourceWriteSuccess", ""))
    wait_for(seen, named("Microsoft.DataProtection/backupVaults/delete",
                         "Microsoft.Resources.ResourceDeleteFailure", f"/backupVaults/{v.name}"))
    wait_for(seen, named("Microsoft.DataProtection/backupVaults/backupInstances/stopProtection/action",
                         "Microsoft.Resources.ResourceActionSuccess", "/backupInstances/bi"))
    wait_for(seen, named("Microsoft.DataProtection/backupVaults/backupInstances/delete",
                         "Microsoft.Resources.ResourceDeleteSuccess", "/backupInstances/bi"))


def test_validation_raises_action_failure_then_action_success_events(estate: Estate) -> None:
    seen: list[dict[str, Any]] = []
    estate.sandbox.subscribe(seen.extend)
    rg = estate.group("evfail")
    vault = make_vault(estate, rg)
    account = estate.datasource(rg, "Microsoft.Storage/storageAccounts", "acct")
    policy = vault.policy("Microsoft.Storage/storageAccounts/blobServices")
    body = vault.instance_body(account, "Microsoft.Storage/storageAccounts/blobServices", policy)
    with pytest.raises(HttpResponseError):
        vault.validate(body)
    failure = wait_for(seen, lambda e: e["eventType"] == "Microsoft.Resources.ResourceActionFailure"
                       and e["subject"].lower() == vault.id.lower())
    assert failure["data"]["operationName"] == "Microsoft.DataProtection/backupVaults/validateForBackup/action"
    assert str(uuid.UUID(failure["data"]["correlationId"]))

    vault.grant("Storage Account Backup Contributor", account)
    vault.validate(body)
    success = wait_for(seen, lambda e: e["eventType"] == "Microsoft.Resources.ResourceActionSuccess"
                       and e["subject"].lower() == vault.id.lower())
    assert success["data"]["operationName"] == "Microsoft.DataProtection/backupVaults/validateForBackup/action"
