"""Every item kind a vault can hold, and the teardown steps for each, through the real backup client."""

from __future__ import annotations

import pytest
from azure.core.exceptions import HttpResponseError

from tests.integration.sandbox_rs.conftest import HOUR, STORAGE_TYPE, Estate, error_code


def _code(call: object) -> str:
    with pytest.raises(HttpResponseError) as caught:
        call()  # type: ignore[operator]
    return error_code(caught.value)


def _policy(estate: Estate, rg: str, vault: str, name: str, management: str) -> str:
    body = {"properties": {"backupManagementType": management, "workLoadType": "SQLDataBase"}}
    return str(estate.rsb().protection_policies.create_or_update(vault, rg, name, body).id)


def _sql_vault(estate: Estate, rg: str) -> tuple[str, str, str]:
    """A vault with a registered SQL-in-VM container and one protected database."""
    vault = estate.vault(rg)
    vm = estate.vm(rg, "sqlvm")
    container = f"VMAppContainer;compute;{rg};sqlvm"
    registered = (
        estate.rsb()
        .protection_containers.begin_register(
            "rsv",
            rg,
            "Azure",
            container,
            {
                "properties": {
                    "containerType": "VMAppContainer",
                    "backupManagementType": "AzureWorkload",
                    "sourceResourceId": vm,
                    "workloadType": "SQLDataBase",
                    "friendlyName": "sqlvm",
                }
            },
        )
        .result()
    )
    assert registered.properties["containerType"] == "VMAppContainer"
    policy = _policy(estate, rg, "rsv", "sqlpolicy", "AzureWorkload")
    estate.rsb().protected_items.begin_create_or_update(
        "rsv",
        rg,
        "Azure",
        container,
        "SQLDataBase;mssqlserver;db1",
        {"properties": {"protectedItemType": "AzureVmWorkloadSQLDatabase", "policyId": policy}},
    ).result()
    return vault.id, container, "SQLDataBase;mssqlserver;db1"


def test_sql_container_unregister_waits_for_items_and_auto_protection(estate: Estate) -> None:
    rg = estate.group()
    vault_id, container, item = _sql_vault(estate, rg)
    rsb = estate.rsb()
    intent_name = "sqlinstance-auto"
    rsb.protection_intent.create_or_update(
        "rsv",
        rg,
        "Azure",
        intent_name,
        {
            "properties": {
                "protectionIntentItemType": "AzureWorkloadSQLAutoProtectionIntent",
                "sourceResourceId": f"{vault_id}/backupFabrics/Azure/protectionContainers/{container}",
                "itemId": f"{vault_id}/backupFabrics/Azure/protectionContainers/{container}"
                "/protectableItems/sqlinstance;mssqlserver",
                "policyId": f"{vault_id}/backupPolicies/sqlpolicy",
            }
        },
    )
    assert [i.name for i in rsb.backup_protection_intent.list("rsv", rg)] == [intent_name]
    workload = list(rsb.backup_protected_items.list("rsv", rg, filter="backupManagementType eq 'AzureWorkload'"))
    assert [i.properties["workloadType"] for i in workload] == ["SQLDataBase"]

    assert _code(lambda: rsb.protection_containers.unregister("rsv", rg, "Azure", container)) == (
        "BMSUserErrorContainerHasDatasources"
    )
    rsb.backup_resource_vault_configs.put("rsv", rg, {"properties": {"softDeleteFeatureState": "Disabled"}})
    rsb.protected_items.delete("rsv", rg, "Azure", container, item)
    estate.advance(HOUR)
    assert _code(lambda: rsb.protection_containers.unregister("rsv", rg, "Azure", container)) == (
        "BMSUserErrorContainerHasAutoProtectionIntent"
    )
    rsb.protection_intent.delete("rsv", rg, "Azure", intent_name)
    rsb.protection_containers.unregister("rsv", rg, "Azure", container)
    estate.advance(HOUR)
    assert (
        list(rsb.backup_protection_containers.list("rsv", rg, filter="backupManagementType eq 'AzureWorkload'")) == []
    )
    estate.rs().vaults.begin_delete(rg, "rsv").result()


def test_unregistering_a_container_of_soft_deleted_items_soft_deletes_it(estate: Estate) -> None:
    rg = estate.group()
    _, container, item = _sql_vault(estate, rg)
    rsb = estate.rsb()
    rsb.protected_items.delete("rsv", rg, "Azure", container, item)
    estate.advance(HOUR)
    rsb.protection_containers.unregister("rsv", rg, "Azure", container)
    estate.advance(HOUR)
    assert list(rsb.backup_protection_containers.list("rsv", rg)) == []
    deleted = list(rsb.deleted_protection_containers.list(resource_group_name=rg, vault_name="rsv"))
    assert [c.name for c in deleted] == [container]
    assert _code(lambda: estate.rs().vaults.begin_delete(rg, "rsv").result()) == (
        "ServiceResourceNotEmptyWithBackendMessage"
    )
    estate.advance(15 * 24 * HOUR)
    assert list(rsb.deleted_protection_containers.list(resource_group_name=rg, vault_name="rsv")) == []
    estate.rs().vaults.begin_delete(rg, "rsv").result()


def test_sap_hana_and_azure_files_items_live_in_registered_containers(estate: Estate) -> None:
    rg = estate.group()
    estate.vault(rg, soft_delete="Disabled")
    rsb = estate.rsb()
    account = estate.resource(rg, STORAGE_TYPE, "files1")
    storage = f"StorageContainer;Storage;{rg};files1"
    rsb.protection_containers.begin_register(
        "rsv",
        rg,
        "Azure",
        storage,
        {
            "properties": {
                "containerType": "StorageContainer",
                "sourceResourceId": account,
                "backupManagementType": "AzureStorage",
            }
        },
    ).result()
    afs_policy = _policy(estate, rg, "rsv", "afs", "AzureStorage")
    share = rsb.protected_items.begin_create_or_update(
        "rsv",
        rg,
        "Azure",
        storage,
        "AzureFileShare;share1",
        {
            "properties": {
                "protectedItemType": "AzureFileShareProtectedItem",
                "policyId": afs_policy,
                "sourceResourceId": account,
            }
        },
    ).result()
    assert share.properties.protection_state == "IRPending"

    hana_vm = estate.vm(rg, "hana1")
    hana = f"VMAppContainer;compute;{rg};hana1"
    rsb.protection_containers.begin_register(
        "rsv",
        rg,
        "Azure",
        hana,
        {
            "properties": {
                "containerType": "VMAppContainer",
                "sourceResourceId": hana_vm,
                "workloadType": "SAPHanaDatabase",
                "backupManagementType": "AzureWorkload",
            }
        },
    ).result()
    hana_policy = _policy(estate, rg, "rsv", "hana", "AzureWorkload")
    rsb.protected_items.begin_create_or_update(
        "rsv",
        rg,
        "Azure",
        hana,
        "SAPHanaDatabase;hxe;systemdb",
        {"properties": {"protectedItemType": "AzureVmWorkloadSAPHanaDatabase", "policyId": hana_policy}},
    ).result()
    kinds = sorted(i.properties.workload_type for i in rsb.backup_protected_items.list("rsv", rg))
    assert kinds == ["AzureFileShare", "SAPHanaDatabase"]
    containers = list(rsb.backup_protection_containers.list("rsv", rg, filter="backupManagementType eq 'AzureStorage'"))
    assert [c.properties.friendly_name for c in containers] == ["files1"]
    assert _code(lambda: estate.rs().vaults.begin_delete(rg, "rsv").result()) == (
        "ServiceResourceNotEmptyWithContainerDetails"
    )

    rsb.protected_items.delete("rsv", rg, "Azure", storage, "AzureFileShare;share1")
    rsb.protected_items.delete("rsv", rg, "Azure", hana, "SAPHanaDatabase;hxe;systemdb")
    estate.advance(HOUR)
    # Backup Contributor on the vault is not enough to unregister a storage account: Storage Account Contributor
    # on the account too (backup-rbac-rs-vault.md; the 403 code is inferred)
    group = f"/subscriptions/{estate.subscription}/resourceGroups/{rg}"
    account = f"{group}/providers/Microsoft.Storage/storageAccounts/files1"
    assert _code(lambda: rsb.protection_containers.unregister("rsv", rg, "Azure", storage)) == (
        "LinkedAuthorizationFailed"
    )
    estate.storage_account_contributor(account)
    rsb.protection_containers.unregister("rsv", rg, "Azure", storage)
    rsb.protection_containers.unregister("rsv", rg, "Azure", hana)
    estate.advance(HOUR)
    estate.rs().vaults.begin_delete(rg, "rsv").result()


def test_workload_items_need_a_registered_container(estate: Estate) -> None:
    rg = estate.group()
    estate.vault(rg)
    policy = _policy(estate, rg, "rsv", "sqlpolicy", "AzureWorkload")
    code = _code(
        lambda: (
            estate.rsb()
            .protected_items.begin_create_or_update(
                "rsv",
                rg,
                "Azure",
                f"VMAppContainer;compute;{rg};nosuchvm",
                "SQLDataBase;mssqlserver;db1",
                {"properties": {"protectedItemType": "AzureVmWorkloadSQLDatabase", "policyId": policy}},
            )
            .result()
        )
    )
    assert code == "BMSUserErrorContainerNotRegistered"


def test_mars_dpm_and_mabs_servers_block_deletion_until_unregistered(estate: Estate) -> None:
    rg = estate.group()
    vault = estate.vault(rg)
    model = estate.provider.model
    model.seed_mars_server(vault.id, "fileserver.contoso.com", items=("C:\\", "D:\\"))
    model.seed_backup_server(vault.id, "dpm01.contoso.com", kind="DPM")
    model.seed_backup_server(vault.id, "mabs01.contoso.com", kind="MABS", items=("SQLDB;db7",))
    rsb = estate.rsb()
    engines = {e.name: e.properties.backup_engine_type for e in rsb.backup_engines.list("rsv", rg)}
    assert engines == {"dpm01.contoso.com": "DpmBackupEngine", "mabs01.contoso.com": "AzureBackupServerEngine"}
    mars = list(rsb.backup_protected_items.list("rsv", rg, filter="backupManagementType eq 'MAB'"))
    assert len(mars) == 2
    with pytest.raises(HttpResponseError) as caught:
        estate.rs().vaults.begin_delete(rg, "rsv").result()
    assert error_code(caught.value) == "ServiceResourceNotEmptyWithContainerDetails"
    assert "fileserver.contoso.com" in caught.value.message

    rsb.backup_resource_vault_configs.put("rsv", rg, {"properties": {"enhancedSecurityState": "Disabled"}})
    for server in ("fileserver.contoso.com", "dpm01.contoso.com", "mabs01.contoso.com"):
        estate.rs().registered_identities.delete(rg, "rsv", server)
    assert list(rsb.backup_engines.list("rsv", rg)) == []
    assert list(rsb.backup_protected_items.list("rsv", rg)) == []
    estate.rs().vaults.begin_delete(rg, "rsv").result()


def test_with_hybrid_security_on_an_unregistered_servers_data_lingers_14_days(estate: Estate) -> None:
    rg = estate.group()
    vault = estate.vault(rg)
    estate.provider.model.seed_mars_server(vault.id, "fileserver.contoso.com")
    estate.rs().registered_identities.delete(rg, "rsv", "fileserver.contoso.com")
    rsb = estate.rsb()
    [item] = rsb.backup_protected_items.list("rsv", rg)
    assert item.properties.is_scheduled_for_deferred_delete is True
    assert _code(lambda: estate.rs().vaults.begin_delete(rg, "rsv").result()) == (
        "ServiceResourceNotEmptyWithBackendMessage"
    )
    estate.advance(15 * 24 * HOUR)
    assert list(rsb.backup_protected_items.list("rsv", rg)) == []
    estate.rs().vaults.begin_delete(rg, "rsv").result()


def test_private_endpoint_connections_block_deletion_until_removed(estate: Estate) -> None:
    rg = estate.group()
    vault = estate.vault(rg)
    estate.provider.model.seed_private_endpoint(vault.id, "pe1.backup")
    estate.provider.sync(estate.provider.model.vault(vault.id))
    connections = estate.rs().vaults.get(rg, "rsv").properties.private_endpoint_connections
    assert [c.id.rsplit("/", 1)[-1] for c in connections] == ["pe1.backup"]
    rsb = estate.rsb()
    assert rsb.private_endpoint_connection.get("rsv", rg, "pe1.backup").properties.private_link_service_connection_state
    assert _code(lambda: estate.rs().vaults.begin_delete(rg, "rsv").result()) == (
        "ServiceResourceNotEmptyWithContainerDetails"
    )
    rsb.private_endpoint_connection.begin_delete("rsv", rg, "pe1.backup").result()
    assert estate.rs().vaults.get(rg, "rsv").properties.private_endpoint_connections == []
    estate.rs().vaults.begin_delete(rg, "rsv").result()


def test_refresh_containers_discovers_unprotected_vms_of_the_vaults_region(estate: Estate) -> None:
    rg = estate.group()
    estate.vault(rg)
    estate.vm(rg, "here")
    estate.vm(rg, "elsewhere", location="eastus")
    protected = estate.vm(rg, "taken")
    estate.protect_vm(rg, "rsv", protected)
    rsb = estate.rsb()
    with estate.frozen():
        headers = rsb.protection_containers.refresh(
            "rsv", rg, "Azure", cls=lambda p, d, h: dict(p.http_response.headers)
        )
        location = headers["Location"]
        assert "/backupFabrics/Azure/operationResults/" in location
        op_id = location.split("/operationResults/")[1].split("?")[0]
        status = rsb.protection_container_refresh_operation_results.get(
            "rsv", rg, "Azure", op_id, cls=lambda p, d, h: p.http_response.status_code
        )
        assert status == 202
        estate.advance(HOUR)
        status = rsb.protection_container_refresh_operation_results.get(
            "rsv", rg, "Azure", op_id, cls=lambda p, d, h: p.http_response.status_code
        )
        assert status == 204
    found = list(rsb.backup_protectable_items.list("rsv", rg, filter="backupManagementType eq 'AzureIaasVM'"))
    names = sorted(i.properties["friendlyName"] for i in found)
    mine = [n for n in names if n in ("here", "elsewhere", "taken")]
    assert mine == ["here"]
    assert all(i.properties["protectionState"] == "NotProtected" for i in found)


def test_a_policy_in_use_cannot_be_deleted(estate: Estate) -> None:
    rg = estate.group()
    estate.vault(rg, soft_delete="Disabled")
    vm = estate.vm(rg)
    estate.protect_vm(rg, "rsv", vm)
    rsb = estate.rsb()
    code = _code(lambda: rsb.protection_policies.begin_delete("rsv", rg, "DefaultPolicy").result())
    assert code == "BMSUserErrorPolicyInUse"
    estate.delete_vm_backup(rg, "rsv", vm)
    estate.advance(HOUR)
    rsb.protection_policies.begin_delete("rsv", rg, "DefaultPolicy").result()
    assert [p.name for p in rsb.backup_policies.list("rsv", rg)] == ["EnhancedPolicy"]
