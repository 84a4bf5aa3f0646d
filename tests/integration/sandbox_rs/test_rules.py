"""Azure's Recovery Services rules, each watched coming back through the real SDK as HttpResponseError."""

from __future__ import annotations

import pytest
from azure.core.exceptions import HttpResponseError

from sandbox.arm.config import SECOND_SUBSCRIPTION, FaultConfig
from tests.integration.sandbox_rs.conftest import DAY, HOUR, Estate, error_code


def _code(call: object) -> str:
    with pytest.raises(HttpResponseError) as caught:
        call()  # type: ignore[operator]
    return error_code(caught.value)


# -- protection lifecycle ----------------------------------------------------------------------------------
def test_enabled_item_is_ir_pending_until_its_first_backup_then_protected(estate: Estate) -> None:
    rg = estate.group()
    estate.vault(rg)
    vm = estate.vm(rg)
    item = estate.protect_vm(rg, "rsv", vm)
    assert item.properties["protectionState"] == "IRPending"
    assert item.properties.get("lastRecoveryPoint") is None
    estate.advance(7 * HOUR)
    item = estate.vm_item(rg, "rsv", vm)
    assert item.properties["protectionState"] == "Protected"
    assert item.properties["lastBackupTime"]
    status = estate.rsb().backup_status.get("westeurope", {"resourceType": "VM", "resourceId": vm})
    assert status.protection_status == "Protected"
    assert status.vault_id.lower().endswith("/vaults/rsv")


def test_stop_protection_retains_data_and_keeps_the_item(estate: Estate) -> None:
    rg = estate.group()
    estate.vault(rg)
    vm = estate.vm(rg)
    estate.protect_vm(rg, "rsv", vm)
    container, name = estate.vm_item(rg, "rsv", vm).name.split(";", 1)[1], estate.vm_item(rg, "rsv", vm).name
    stopped = (
        estate.rsb()
        .protected_items.begin_create_or_update(
            "rsv",
            rg,
            "Azure",
            "IaasVMContainer;" + container,
            name,
            {
                "properties": {
                    "protectedItemType": "Microsoft.Compute/virtualMachines",
                    "sourceResourceId": vm,
                    "protectionState": "ProtectionStopped",
                }
            },
        )
        .result()
    )
    assert stopped.properties["protectionState"] == "ProtectionStopped"
    assert not stopped.properties["isScheduledForDeferredDelete"]


def test_delete_with_soft_delete_keeps_the_item_until_retention_passes_on_the_virtual_clock(estate: Estate) -> None:
    rg = estate.group()
    estate.vault(rg, days=20)
    vm = estate.vm(rg)
    estate.protect_vm(rg, "rsv", vm)
    estate.advance(7 * HOUR)
    with estate.frozen():
        headers = estate.delete_vm_backup(rg, "rsv", vm)
        assert "/backupOperations/" in headers["Azure-AsyncOperation"]
        assert "/backupOperationResults/" in headers["Location"]
        op_id = headers["Azure-AsyncOperation"].split("/backupOperations/")[1].split("?")[0]
        assert estate.rsb().backup_operation_statuses.get("rsv", rg, op_id).status == "InProgress"
        assert estate.vm_item(rg, "rsv", vm).properties["isScheduledForDeferredDelete"] is False
        estate.advance(HOUR)
        assert estate.rsb().backup_operation_statuses.get("rsv", rg, op_id).status == "Succeeded"

    item = estate.vm_item(rg, "rsv", vm).properties
    assert item["protectionState"] == "ProtectionStopped"
    assert item["isScheduledForDeferredDelete"] is True
    assert item["deferredDeleteTimeInUTC"]
    assert _code(lambda: estate.rs().vaults.begin_delete(rg, "rsv").result()) == (
        "ServiceResourceNotEmptyWithBackendMessage"
    )
    estate.advance(19 * DAY)
    assert len(list(estate.rsb().backup_protected_items.list("rsv", rg))) == 1
    estate.advance(2 * DAY)
    assert list(estate.rsb().backup_protected_items.list("rsv", rg)) == []
    estate.rs().vaults.begin_delete(rg, "rsv").result()


def test_undelete_then_delete_with_soft_delete_off_empties_the_vault(estate: Estate) -> None:
    rg = estate.group()
    estate.vault(rg)
    vm = estate.vm(rg)
    estate.protect_vm(rg, "rsv", vm)
    estate.delete_vm_backup(rg, "rsv", vm)
    estate.advance(HOUR)
    rsb = estate.rsb()
    rsb.backup_resource_vault_configs.put(
        "rsv", rg, {"properties": {"softDeleteFeatureState": "Disabled", "enhancedSecurityState": "Disabled"}}
    )
    item = estate.vm_item(rg, "rsv", vm)
    container = "IaasVMContainer;" + item.properties["containerName"]
    undeleted = rsb.protected_items.begin_create_or_update(
        "rsv",
        rg,
        "Azure",
        container,
        item.name,
        {
            "properties": {
                "protectedItemType": "Microsoft.Compute/virtualMachines",
                "sourceResourceId": vm,
                "protectionState": "ProtectionStopped",
                "isRehydrate": True,
            }
        },
    ).result()
    assert undeleted.properties["isScheduledForDeferredDelete"] is False
    assert undeleted.properties["protectionState"] == "ProtectionStopped"
    estate.delete_vm_backup(rg, "rsv", vm)
    estate.advance(HOUR)
    assert list(rsb.backup_protected_items.list("rsv", rg)) == []
    assert list(rsb.backup_protection_containers.list("rsv", rg, filter="backupManagementType eq 'AzureIaasVM'")) == []
    estate.rs().vaults.begin_delete(rg, "rsv").result()


def test_vault_with_live_items_cannot_be_deleted(estate: Estate) -> None:
    rg = estate.group()
    estate.vault(rg)
    estate.protect_vm(rg, "rsv", estate.vm(rg))
    with pytest.raises(HttpResponseError) as caught:
        estate.rs().vaults.begin_delete(rg, "rsv").result()
    assert error_code(caught.value) == "ServiceResourceNotEmptyWithContainerDetails"
    assert caught.value.status_code == 400
    assert "Vault cannot be deleted as there are existing resources within the vault" in str(caught.value)


# -- security settings ---------------------------------------------------------------------------------------
def test_always_on_soft_delete_cannot_be_turned_off(estate: Estate) -> None:
    rg = estate.group()
    estate.vault(rg, soft_delete="AlwaysON")
    rsb = estate.rsb()
    code = _code(
        lambda: rsb.backup_resource_vault_configs.put("rsv", rg, {"properties": {"softDeleteFeatureState": "Disabled"}})
    )
    assert code == "BMSUserErrorDisablingSoftDeleteStateNotAllowed"
    code = _code(
        lambda: (
            estate.rs()
            .vaults.begin_update(
                rg, "rsv", {"properties": {"securitySettings": {"softDeleteSettings": {"softDeleteState": "Enabled"}}}}
            )
            .result()
        )
    )
    assert code == "BMSUserErrorDisablingSoftDeleteStateNotAllowed"
    assert rsb.backup_resource_vault_configs.get("rsv", rg).properties.soft_delete_feature_state == "AlwaysON"


def test_soft_delete_retention_outside_14_to_180_days_is_refused(estate: Estate) -> None:
    rg = estate.group()
    assert _code(lambda: estate.vault(rg, days=7)) == "BMSUserErrorInvalidSoftDeleteRetentionPeriod"
    assert _code(lambda: estate.vault(rg, days=181)) == "BMSUserErrorInvalidSoftDeleteRetentionPeriod"
    assert (
        estate.vault(
            rg, days=180
        ).properties.security_settings.soft_delete_settings.soft_delete_retention_period_in_days
        == 180
    )


def test_locked_immutability_is_irreversible_and_blocks_delete_with_data(estate: Estate) -> None:
    rg = estate.group()
    estate.vault(rg, immutability="Locked")
    vm = estate.vm(rg)
    estate.protect_vm(rg, "rsv", vm)
    estate.advance(7 * HOUR)  # a recovery point exists now
    assert (
        _code(lambda: estate.delete_vm_backup(rg, "rsv", vm)) == "BMSUserErrorOperationNotAllowedOnLockedImmutableVault"
    )
    code = _code(
        lambda: (
            estate.rs()
            .vaults.begin_update(
                rg, "rsv", {"properties": {"securitySettings": {"immutabilitySettings": {"state": "Unlocked"}}}}
            )
            .result()
        )
    )
    assert code == "BMSUserErrorImmutabilityLockedCannotBeChanged"


def test_mua_protected_operations_need_the_security_admins_grant(estate: Estate) -> None:
    rg = estate.group()
    vault = estate.vault(rg)
    vm = estate.vm(rg)
    estate.protect_vm(rg, "rsv", vm)
    rsb = estate.rsb()
    guard = (
        f"/subscriptions/{estate.subscription}/resourceGroups/{rg}/providers/Microsoft.DataProtection/resourceGuards/g1"
    )
    rsb.resource_guard_proxy.put("rsv", rg, "VaultProxy", {"properties": {"resourceGuardResourceId": guard}})
    assert estate.rs().vaults.get(rg, "rsv").properties.security_settings.multi_user_authorization == "Enabled"

    mua = "BMSUserErrorCriticalOperationNotAuthorizedByResourceGuard"
    disable = {"properties": {"softDeleteFeatureState": "Disabled"}}
    assert _code(lambda: rsb.backup_resource_vault_configs.put("rsv", rg, disable)) == mua
    assert _code(lambda: estate.delete_vm_backup(rg, "rsv", vm)) == mua
    item_id = estate.vm_item(rg, "rsv", vm).id
    unlock = {
        "resourceGuardOperationRequests": [f"{guard}/deleteProtectedItemRequests/default"],
        "resourceToBeDeleted": item_id,
    }
    assert _code(lambda: rsb.resource_guard_proxy.unlock_delete("rsv", rg, "VaultProxy", unlock)) == mua

    estate.provider.model.grant_resource_guard_access(vault.id, minutes=60)  # the security admin approves
    # the grant is not enough: the critical request names the guarded operation (azure-cli set_backup_properties)
    assert _code(lambda: rsb.backup_resource_vault_configs.put("rsv", rg, disable)) == mua
    every = [f"{guard}/disableSoftDeleteRequests/default", f"{guard}/deleteProtectedItemRequests/default"]
    too_many = {"properties": {"softDeleteFeatureState": "Disabled", "resourceGuardOperationRequests": every}}
    assert _code(lambda: rsb.backup_resource_vault_configs.put("rsv", rg, too_many)) == mua
    disable["properties"]["resourceGuardOperationRequests"] = [f"{guard}/disableSoftDeleteRequests/default"]
    rsb.backup_resource_vault_configs.put("rsv", rg, disable)
    # an unlockDelete names exactly the request of the delete it unlocks
    all_requests = {**unlock, "resourceGuardOperationRequests": every}
    assert _code(lambda: rsb.resource_guard_proxy.unlock_delete("rsv", rg, "VaultProxy", all_requests)) == mua
    assert rsb.resource_guard_proxy.unlock_delete("rsv", rg, "VaultProxy", unlock).unlock_delete_expiry_time
    estate.delete_vm_backup(rg, "rsv", vm)

    proxy_id = f"{vault.id}/backupResourceGuardProxies/VaultProxy"
    estate.advance(2 * HOUR)  # the grant lapsed
    assert _code(lambda: rsb.resource_guard_proxy.delete("rsv", rg, "VaultProxy")) == mua
    estate.provider.model.grant_resource_guard_access(vault.id, minutes=60)
    disable_mua = {
        "resourceGuardOperationRequests": [f"{guard}/deleteResourceGuardProxyRequests/default"],
        "resourceToBeDeleted": proxy_id,
    }
    rsb.resource_guard_proxy.unlock_delete("rsv", rg, "VaultProxy", disable_mua)
    rsb.resource_guard_proxy.delete("rsv", rg, "VaultProxy")
    assert estate.rs().vaults.get(rg, "rsv").properties.security_settings.multi_user_authorization == "Disabled"


# -- where a VM may be protected ------------------------------------------------------------------------------
def test_vm_only_in_a_vault_of_its_own_region(estate: Estate) -> None:
    rg = estate.group()
    estate.vault(rg, location="westeurope")
    vm = estate.vm(rg, location="northeurope")
    assert _code(lambda: estate.protect_vm(rg, "rsv", vm)) == "BMSUserErrorVmAndVaultNotInSameRegion"


def test_vm_only_in_a_vault_of_its_own_subscription(estate: Estate) -> None:
    rg = estate.group()
    other_rg = estate.group(subscription=SECOND_SUBSCRIPTION)
    estate.vault(rg)
    vm = estate.vm(other_rg, subscription=SECOND_SUBSCRIPTION)
    assert _code(lambda: estate.protect_vm(rg, "rsv", vm)) == "BMSUserErrorCrossSubscriptionBackupNotSupported"


def test_vm_in_one_vault_at_a_time_and_backup_data_stays_in_its_vault(estate: Estate) -> None:
    rg = estate.group()
    estate.vault(rg, "first")
    estate.vault(rg, "second")
    vm = estate.vm(rg)
    estate.protect_vm(rg, "first", vm)
    estate.advance(7 * HOUR)
    assert _code(lambda: estate.protect_vm(rg, "second", vm)) == "BMSUserErrorProtectableItemAlreadyProtected"

    estate.delete_vm_backup(rg, "first", vm)  # soft-deleted: may be registered elsewhere (D-esd)
    estate.advance(HOUR)
    fresh = estate.protect_vm(rg, "second", vm)
    assert fresh.properties["protectionState"] == "IRPending"
    assert fresh.properties.get("lastRecoveryPoint") is None  # no recovery point came along
    old = estate.vm_item(rg, "first", vm).properties
    assert old["isScheduledForDeferredDelete"] is True and old["lastRecoveryPoint"]


def test_unknown_vm_cannot_be_protected(estate: Estate) -> None:
    rg = estate.group()
    estate.vault(rg)
    ghost = f"/subscriptions/{estate.subscription}/resourceGroups/{rg}/providers/Microsoft.Compute/virtualMachines/x"
    assert _code(lambda: estate.protect_vm(rg, "rsv", ghost)) == "BMSUserErrorDatasourceNotFound"


# -- injected LRO failures leave Azure's state, not half a change ----------------------------------------------
def test_failed_configure_protection_leaves_no_item_and_failed_delete_keeps_the_data(estate: Estate) -> None:
    rg = estate.group()
    estate.vault(rg, "first")
    estate.vault(rg, "second")
    vm = estate.vm(rg)
    estate.sandbox.configure_faults(FaultConfig(seed=7, lro_fail=1.0))
    try:
        with pytest.raises(HttpResponseError):
            estate.protect_vm(rg, "first", vm)
    finally:
        estate.sandbox.configure_faults(FaultConfig())
    assert list(estate.rsb().backup_protected_items.list("first", rg)) == []
    estate.protect_vm(rg, "second", vm)  # nothing holds the VM: it may go to another vault
    estate.advance(7 * HOUR)

    estate.sandbox.configure_faults(FaultConfig(seed=7, lro_fail=1.0))
    try:
        headers = estate.delete_vm_backup(rg, "second", vm)
        estate.advance(HOUR)
        op_id = headers["Azure-AsyncOperation"].split("/backupOperations/")[1].split("?")[0]
        assert estate.rsb().backup_operation_statuses.get("second", rg, op_id).status == "Failed"
    finally:
        estate.sandbox.configure_faults(FaultConfig())
    item = estate.vm_item(rg, "second", vm).properties
    assert item["protectionState"] == "Protected"
    assert item["isScheduledForDeferredDelete"] is False
    estate.delete_vm_backup(rg, "second", vm)  # and it can be asked again
    estate.advance(HOUR)
    assert estate.vm_item(rg, "second", vm).properties["isScheduledForDeferredDelete"] is True
