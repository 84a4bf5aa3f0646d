"""validateForBackup and backup instances through the real SDK clients, pollers included."""

from __future__ import annotations

import pytest
from azure.core.exceptions import HttpResponseError

from sandbox.arm.config import OTHER_TENANT

from .conftest import (
    BLOB,
    CREATE_BODIES,
    DISK,
    FOREIGN_SUBSCRIPTION,
    PG,
    SECOND_SUBSCRIPTION,
    STORAGE,
    Estate,
    begin_raw,
    clients_in_tenant,
    error_code,
    make_vault,
    protected_disk,
)


def test_disk_validation_fails_without_the_roles_and_passes_once_both_are_granted(estate: Estate) -> None:
    rg, snap = estate.group("dp"), estate.group("snap")
    vault = make_vault(estate, rg)
    disk = estate.datasource(rg, DISK, "disk1")
    body = vault.instance_body(disk, DISK, vault.policy(DISK), estate.group_id(snap))

    with pytest.raises(HttpResponseError) as caught:
        vault.validate(body)
    assert error_code(caught.value) == "UserErrorMissingRequiredPermissions"
    assert "Disk Backup Reader" in str(caught.value)
    assert "Disk Snapshot Contributor" in str(caught.value)

    vault.grant("Disk Backup Reader", disk)
    with pytest.raises(HttpResponseError) as still:
        vault.validate(body)
    assert "Disk Snapshot Contributor" in str(still.value)
    assert "Disk Backup Reader" not in str(still.value)

    vault.grant("Disk Snapshot Contributor", estate.group_id(snap))
    result = vault.validate(body)
    assert result.object_type == "OperationJobExtendedInfo"
    assert result.job_id


def test_validation_polls_location_scoped_operation_status(estate: Estate) -> None:
    rg, snap = estate.group("dp"), estate.group("snap")
    vault = make_vault(estate, rg)
    disk = estate.datasource(rg, DISK, "disk1")
    body = vault.instance_body(disk, DISK, vault.policy(DISK), estate.group_id(snap))
    poller = estate.dp.backup_instances.begin_validate_for_backup(rg, "vault", {"backupInstance": body})
    initial = poller.polling_method()._initial_response.http_response
    assert initial.status_code == 202
    assert "/providers/Microsoft.DataProtection/locations/westus/operationStatus/" in \
        initial.headers["Azure-AsyncOperation"]
    assert "/providers/Microsoft.DataProtection/locations/westus/operationResults/" in initial.headers["Location"]
    with pytest.raises(HttpResponseError):
        poller.result()
    operation_id = initial.headers["Azure-AsyncOperation"].split("/operationStatus/")[1].split("?")[0]
    status = estate.dp.operation_status.get("westus", operation_id)
    assert status.status == "Failed"
    assert status.error.code == "UserErrorMissingRequiredPermissions"


def test_a_role_held_on_the_resource_group_or_subscription_counts(estate: Estate) -> None:
    rg = estate.group("blob")
    vault = make_vault(estate, rg)
    account = estate.datasource(rg, STORAGE, "account1")
    body = vault.instance_body(account, BLOB, vault.policy(BLOB))
    with pytest.raises(HttpResponseError):
        vault.validate(body)
    vault.grant("Storage Account Backup Contributor", estate.group_id(rg))
    assert vault.validate(body).object_type == "OperationJobExtendedInfo"

    other_vault = make_vault(estate, rg, name="other")
    other_account = estate.datasource(rg, STORAGE, "account2")
    other_body = other_vault.instance_body(other_account, BLOB, other_vault.policy(BLOB))
    other_vault.grant("Storage Account Backup Contributor", f"/subscriptions/{estate.subscription}")
    assert other_vault.validate(other_body).object_type == "OperationJobExtendedInfo"


def test_owner_does_not_stand_in_for_the_documented_backup_roles(estate: Estate) -> None:
    rg = estate.group("owner")
    vault = make_vault(estate, rg)
    account = estate.datasource(rg, STORAGE, "account1")
    vault.grant("Owner", account)
    with pytest.raises(HttpResponseError) as caught:
        vault.validate(vault.instance_body(account, BLOB, vault.policy(BLOB)))
    assert error_code(caught.value) == "UserErrorMissingRequiredPermissions"


def test_a_role_held_by_another_principal_does_not_count(estate: Estate) -> None:
    rg = estate.group("someone")
    vault = make_vault(estate, rg)
    other = make_vault(estate, rg, name="other")
    account = estate.datasource(rg, STORAGE, "account1")
    vault.grant("Storage Account Backup Contributor", account, principal=other.principal_id)
    with pytest.raises(HttpResponseError):
        vault.validate(vault.instance_body(account, BLOB, vault.policy(BLOB)))


def test_postgresql_flexible_server_needs_ltr_role_on_server_and_reader_on_its_group(estate: Estate) -> None:
    rg = estate.group("pg")
    vault = make_vault(estate, rg)
    server = estate.datasource(rg, PG, "pg1")
    body = vault.instance_body(server, PG, vault.policy(PG))
    vault.grant("PostgreSQL Flexible Server Long Term Retention Backup Role", server)
    with pytest.raises(HttpResponseError) as caught:
        vault.validate(body)
    assert "'Reader' on the datasource's resource group" in str(caught.value)
    vault.grant("Reader", estate.group_id(rg))
    assert vault.protect("pg", body).properties.current_protection_state == "ProtectionConfigured"


def test_a_vault_without_identity_fails_validation(estate: Estate) -> None:
    rg = estate.group("noid")
    vault = make_vault(estate, rg, identity="None")
    account = estate.datasource(rg, STORAGE, "account1")
    with pytest.raises(HttpResponseError) as caught:
        vault.validate(vault.instance_body(account, BLOB, vault.policy(BLOB)))
    assert "no system-assigned identity" in str(caught.value)


def test_a_protected_datasource_cannot_be_validated_or_protected_in_another_vault(estate: Estate) -> None:
    protected = protected_disk(estate)
    rg = estate.group("second")
    second = make_vault(estate, rg, name="second")
    body = second.instance_body(protected.disk, DISK, second.policy(DISK), protected.snapshot_group)
    second.grant("Disk Backup Reader", protected.disk)
    second.grant("Disk Snapshot Contributor", protected.snapshot_group)

    with pytest.raises(HttpResponseError) as caught:
        estate.dp.backup_instances.begin_validate_for_backup(rg, "second", {"backupInstance": body})
    assert caught.value.status_code == 400
    assert error_code(caught.value) == "UserErrorDppDatasourceAlreadyProtected"
    assert protected.vault.id in str(caught.value)

    with pytest.raises(HttpResponseError) as again:
        estate.dp.backup_instances.begin_create_or_update(rg, "second", "bi", {"properties": body})
    assert error_code(again.value) == "UserErrorDppDatasourceAlreadyProtected"


def test_a_disk_must_be_in_the_vault_region(estate: Estate) -> None:
    rg, snap = estate.group("region"), estate.group("snap")
    vault = make_vault(estate, rg, location="eastus")
    disk = estate.datasource(rg, DISK, "disk1", location="westus")
    body = vault.instance_body(disk, DISK, vault.policy(DISK), estate.group_id(snap))
    with pytest.raises(HttpResponseError) as caught:
        estate.dp.backup_instances.begin_validate_for_backup(rg, "vault", {"backupInstance": body})
    assert error_code(caught.value) == "UserErrorDatasourceAndBackupVaultLocationMismatch"


def test_blob_region_is_not_constrained_because_no_such_rule_is_documented(estate: Estate) -> None:
    rg = estate.group("blobregion")
    vault = make_vault(estate, rg, location="eastus")
    account = estate.datasource(rg, STORAGE, "account1", location="westus")
    vault.grant("Storage Account Backup Contributor", account)
    assert vault.validate(vault.instance_body(account, BLOB, vault.policy(BLOB))).job_id


def test_a_disk_in_another_subscription_is_fine_but_its_snapshot_group_must_be_in_the_disk_subscription(
    estate: Estate,
) -> None:
    rg = estate.group("cross")
    vault = make_vault(estate, rg)
    far = estate.group("far", subscription=SECOND_SUBSCRIPTION)
    disk = estate.datasource(far, DISK, "disk1", subscription=SECOND_SUBSCRIPTION)
    wrong_snap = estate.group("snap")  # in the vault's subscription, not the disk's
    policy = vault.policy(DISK)
    with pytest.raises(HttpResponseError) as caught:
        estate.dp.backup_instances.begin_validate_for_backup(rg, "vault", {"backupInstance": vault.instance_body(
            disk, DISK, policy, estate.group_id(wrong_snap))})
    assert error_code(caught.value) == "UserErrorInvalidSnapshotResourceGroup"

    snap = estate.group_id(estate.group("snap2", subscription=SECOND_SUBSCRIPTION), SECOND_SUBSCRIPTION)
    vault.grant("Disk Backup Reader", disk)
    vault.grant("Disk Snapshot Contributor", snap)
    assert vault.protect("bi", vault.instance_body(disk, DISK, policy, snap)).properties.provisioning_state == \
        "Succeeded"


def test_the_datasource_and_the_policy_must_exist(estate: Estate) -> None:
    rg = estate.group("missing")
    vault = make_vault(estate, rg)
    policy = vault.policy(BLOB)
    ghost = f"{estate.group_id(rg)}/providers/{STORAGE}/ghost"
    with pytest.raises(HttpResponseError) as caught:
        vault.validate(vault.instance_body(ghost, BLOB, policy))
    assert error_code(caught.value) == "UserErrorDatasourceNotFound"

    account = estate.datasource(rg, STORAGE, "account1")
    with pytest.raises(HttpResponseError) as no_policy:
        vault.validate(vault.instance_body(account, BLOB, policy.replace("/policy", "/nope")))
    assert error_code(no_policy.value) == "UserErrorPolicyNotFound"

    disk_policy = vault.policy(DISK, name="disks")
    with pytest.raises(HttpResponseError) as wrong_kind:
        vault.validate(vault.instance_body(account, BLOB, disk_policy))
    assert error_code(wrong_kind.value) == "UserErrorPolicyNotApplicableForDatasourceType"


def test_protect_without_roles_fails_the_poller_and_leaves_a_failed_instance(estate: Estate) -> None:
    rg = estate.group("noroles")
    vault = make_vault(estate, rg)
    account = estate.datasource(rg, STORAGE, "account1")
    body = vault.instance_body(account, BLOB, vault.policy(BLOB))
    with pytest.raises(HttpResponseError) as caught:
        vault.protect("bi", body)
    assert error_code(caught.value) == "UserErrorMissingRequiredPermissions"
    failed = estate.dp.backup_instances.get(rg, "vault", "bi")
    assert failed.properties.current_protection_state == "ConfiguringProtectionFailed"

    vault.grant("Storage Account Backup Contributor", account)  # a failed configuration protects nothing:
    assert vault.validate(body).job_id  # the datasource is not "already protected"
    assert vault.protect("bi", body).properties.current_protection_state == "ProtectionConfigured"


def test_instances_are_listed_in_pages(estate: Estate) -> None:
    rg = estate.group("many")
    vault = make_vault(estate, rg)
    policy = vault.policy(BLOB)
    vault.grant("Storage Account Backup Contributor", estate.group_id(rg))
    for index in range(3):
        account = estate.datasource(rg, STORAGE, f"account{index}")
        vault.protect(f"bi{index}", vault.instance_body(account, BLOB, policy))
    assert sorted(i.name for i in estate.dp.backup_instances.list(rg, "vault")) == ["bi0", "bi1", "bi2"]


def test_stop_suspend_and_resume_move_the_protection_state(estate: Estate) -> None:
    protected = protected_disk(estate)
    v = protected.vault
    instances = estate.dp.backup_instances

    def state() -> object:
        return instances.get(v.rg, v.name, "bi").properties.current_protection_state

    instances.begin_suspend_backups(v.rg, v.name, "bi").result()
    assert state() == "BackupSchedulesSuspended"
    instances.begin_resume_backups(v.rg, v.name, "bi").result()
    assert state() == "ProtectionConfigured"
    instances.begin_stop_protection(v.rg, v.name, "bi").result()
    assert state() == "ProtectionStopped"
    with pytest.raises(HttpResponseError) as caught:
        instances.begin_suspend_backups(v.rg, v.name, "bi").result()
    assert error_code(caught.value) == "UserErrorInvalidOperationForCurrentProtectionState"
    begin_raw(estate.dp, "POST", f"{v.id}/backupInstances/bi/resumeProtection").result()
    assert state() == "ProtectionConfigured"


def test_reput_of_an_instance_is_an_update_answered_200(estate: Estate) -> None:
    protected = protected_disk(estate)
    v = protected.vault
    poller = estate.dp.backup_instances.begin_create_or_update(v.rg, v.name, "bi", {
        "tags": {"k": "v"}, "properties": protected.body})
    assert poller.polling_method()._initial_response.http_response.status_code == 200
    assert poller.result().tags == {"k": "v"}


def test_a_postgresql_flexible_server_must_share_the_vault_region_and_tenant(estate: Estate) -> None:
    rg = estate.group("pgregion")
    vault = make_vault(estate, rg, location="eastus")
    policy = vault.policy(PG)
    elsewhere = estate.datasource(rg, PG, "pgwest", location="westus")
    with pytest.raises(HttpResponseError) as region:
        estate.dp.backup_instances.begin_validate_for_backup(rg, "vault", {"backupInstance": vault.instance_body(
            elsewhere, PG, policy)})
    assert error_code(region.value) == "UserErrorDatasourceAndBackupVaultLocationMismatch"

    foreign_rg = f"pg-{estate.tag}"
    foreign = clients_in_tenant(estate, OTHER_TENANT).resources(FOREIGN_SUBSCRIPTION)
    foreign.resource_groups.create_or_update(foreign_rg, {"location": "eastus"})
    server = f"/subscriptions/{FOREIGN_SUBSCRIPTION}/resourceGroups/{foreign_rg}/providers/{PG}/pgfar"
    api_version, body = CREATE_BODIES[PG]
    foreign.resources.begin_create_or_update_by_id(server, {"location": "eastus", **body},
                                                   api_version=api_version).result()
    with pytest.raises(HttpResponseError) as tenant:
        estate.dp.backup_instances.begin_validate_for_backup(rg, "vault", {"backupInstance": vault.instance_body(
            server, PG, policy)})
    assert error_code(tenant.value) == "UserErrorDatasourceAndBackupVaultTenantMismatch"


def test_a_user_assigned_identity_named_by_the_instance_is_the_one_checked(estate: Estate) -> None:
    rg = estate.group("uami")
    vault = make_vault(estate, rg)
    account = estate.datasource(rg, STORAGE, "acct")
    uami = f"{estate.group_id(rg)}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/backup"
    uami_principal = "5ca1ab1e-0000-4000-8000-000000000001"
    estate.sandbox.store.put({"id": uami, "name": "backup", "type": "Microsoft.ManagedIdentity/userAssignedIdentities",
                              "location": "westus", "properties": {"principalId": uami_principal}})
    body = vault.instance_body(account, BLOB, vault.policy(BLOB))
    body["identityDetails"] = {"useSystemAssignedIdentity": False, "userAssignedIdentityArmUrl": uami}

    vault.grant("Storage Account Backup Contributor", account)  # the vault's own identity: not the one used
    with pytest.raises(HttpResponseError) as caught:
        vault.validate(body)
    assert "user-assigned identity" in str(caught.value)
    vault.grant("Storage Account Backup Contributor", account, principal=uami_principal)
    assert vault.validate(body).job_id
