"""Backup vault backups that happen, jobs, recovery points, validateRestore and restores, through the app's real
``azure-mgmt-dataprotection`` client (sandbox module ``dataprotection_jobs``; docs/azure-facts.md "Backups, jobs,
recovery points and restores")."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError

from sandbox.arm.config import PropagationConfig, SandboxConfig
from sandbox.arm.providers.authorization_model import grant_built_in_role
from sandbox.arm.providers.dataprotection_jobs import DataProtectionJobs, data_protection_jobs
from sandbox.arm.server import ArmSandbox
from steward.cloud.drills import DrillOps
from tests.integration.sandbox_dp.conftest import (
    DISK,
    PG,
    PROVIDERS,
    SCALE,
    STORAGE,
    SUBSCRIPTIONS,
    Estate,
    Vault,
    error_code,
    make_vault,
    retention_rule,
)

HOUR = 3600.0
START = datetime(2026, 3, 2, 0, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def sandbox() -> Iterator[ArmSandbox]:
    sb = ArmSandbox(SandboxConfig(scale=SCALE, page_size=2, providers=(*PROVIDERS, "dataprotection_jobs"),
                                  subscriptions=SUBSCRIPTIONS, clock_start=START,
                                  # estates here are built straight through the adapters, as in conftest
                                  propagation=PropagationConfig(rbac_seconds=0))).start()
    try:
        yield sb
    finally:
        sb.stop()


def jobs_of(estate: Estate) -> DataProtectionJobs:
    return data_protection_jobs(estate.sandbox)


def backup_rule(name: str, store: str, period: str) -> dict[str, Any]:
    return {"name": name, "objectType": "AzureBackupRule",
            "backupParameters": {"objectType": "AzureBackupParams", "backupType": "Incremental"},
            "dataStore": {"dataStoreType": store, "objectType": "DataStoreInfoBase"},
            "trigger": {"objectType": "ScheduleBasedTriggerContext",
                        "schedule": {"repeatingTimeIntervals": [f"R/2021-01-01T02:00:00+00:00/{period}"]},
                        "taggingCriteria": [{"isDefault": True, "taggingPriority": 99,
                                             "tagInfo": {"tagName": "Default"}}]}}


def policy(vault: Vault, datasource_type: str, store: str, period: str) -> str:
    made = vault.estate.dp.backup_policies.create_or_update(vault.rg, vault.name, "schedule", {"properties": {
        "objectType": "BackupPolicy", "datasourceTypes": [datasource_type],
        "policyRules": [backup_rule("BackupRule", store, period), retention_rule(store)]}})
    return str(made.id)


def protected_disk(estate: Estate) -> tuple[Vault, str, str]:
    rg, snap = estate.group("dp"), estate.group("snap")
    vault = make_vault(estate, rg)
    disk = estate.datasource(rg, DISK, "disk1")
    body = vault.instance_body(disk, DISK, policy(vault, DISK, "OperationalStore", "PT4H"), estate.group_id(snap))
    vault.grant("Disk Backup Reader", disk)
    vault.grant("Disk Snapshot Contributor", estate.group_id(snap))
    vault.protect("bi", body)
    return vault, disk, rg


def protected_server(estate: Estate) -> tuple[Vault, str, str]:
    rg = estate.group("pg")
    vault = make_vault(estate, rg)
    server = estate.datasource(rg, PG, f"pg{estate.tag}")
    vault.grant("PostgreSQL Flexible Server Long Term Retention Backup Role", server)
    vault.grant("Reader", estate.group_id(rg))
    vault.protect("bi", vault.instance_body(server, PG, policy(vault, PG, "VaultStore", "P1D")))
    return vault, server, rg


def test_the_policy_schedule_makes_operational_snapshots_of_a_disk(estate: Estate) -> None:
    vault, _disk, rg = protected_disk(estate)
    estate.sandbox.advance(24 * HOUR)
    points = list(estate.dp.recovery_points.list(rg, vault.name, "bi"))
    assert len(points) in (5, 6, 7)  # every 4 hours from 02:00 (the clock also flows: 1 s = 1 h)
    details = points[0].properties.recovery_point_data_stores_details
    # the store as Azure names it in a recovery point (captured responses, docs/azure-facts.md; not the example's
    # "Snapshot")
    assert [d.type for d in details] == ["OperationalStore"]
    jobs = list(estate.dp.jobs.list(rg, vault.name))
    assert {j.properties.operation for j in jobs} == {"Backup"}
    assert {j.properties.status for j in jobs} <= {"Completed", "InProgress"}


def test_adhoc_backup_returns_the_job_and_the_job_makes_a_point(estate: Estate) -> None:
    vault, _server, rg = protected_server(estate)
    result = estate.dp.backup_instances.begin_adhoc_backup(
        rg, vault.name, "bi", {"backupRuleOptions": {"ruleName": "BackupRule",
                                                     "triggerOption": {"retentionTagOverride": "Default"}}}).result()
    job = estate.dp.jobs.get(rg, vault.name, result.job_id)
    assert job.properties.operation == "Backup" and job.properties.is_user_triggered
    estate.sandbox.advance(jobs_of(estate).timing.dp_backup["microsoft.dbforpostgresql/flexibleservers"] + 60)
    assert estate.dp.jobs.get(rg, vault.name, result.job_id).properties.status == "Completed"
    points = list(estate.dp.recovery_points.list(rg, vault.name, "bi"))
    assert any(d.type == "VaultStore" for p in points for d in p.properties.recovery_point_data_stores_details)


def test_adhoc_backup_needs_a_rule_of_the_policy(estate: Estate) -> None:
    vault, _disk, rg = protected_disk(estate)
    with pytest.raises(HttpResponseError) as caught:
        estate.dp.backup_instances.begin_adhoc_backup(
            rg, vault.name, "bi", {"backupRuleOptions": {"ruleName": "Nope", "triggerOption": {}}}).result()
    assert error_code(caught.value) == "UserErrorBackupRuleNotFound"


def latest_point(estate: Estate, rg: str, vault: Vault) -> str:
    estate.sandbox.advance(26 * HOUR)
    return str(next(iter(estate.dp.recovery_points.list(rg, vault.name, "bi"))).name)


def disk_restore(point: str, source: str, new_disk: str, location: str = "westus") -> dict[str, Any]:
    return {"objectType": "AzureBackupRecoveryPointBasedRestoreRequest", "recoveryPointId": point,
            "sourceDataStoreType": "OperationalStore", "sourceResourceId": source,
            "restoreTargetInfo": {"objectType": "RestoreTargetInfo", "recoveryOption": "FailIfExists",
                                  "restoreLocation": location,
                                  "datasourceInfo": {"objectType": "Datasource", "resourceID": new_disk,
                                                     "resourceName": new_disk.rsplit("/", 1)[-1],
                                                     "resourceType": DISK, "datasourceType": DISK}}}


def restore_right(estate: Estate, vault: Vault, role: str, scope: str) -> None:
    """The vault's identity may write the restore target (backup/restore-managed-disks.md; PS-man)."""
    grant_built_in_role(estate.sandbox.store, vault.principal_id, role, scope, estate.sandbox.clock.now())


def test_a_restore_needs_the_vault_identitys_role_on_the_target(estate: Estate) -> None:
    """Disk Restore Operator on the target group (a disk); Storage Blob Data Contributor on the account (files)."""
    vault, disk, rg = protected_disk(estate)
    drill = estate.group("drill")
    point = latest_point(estate, rg, vault)
    new_disk = f"{estate.group_id(drill)}/providers/Microsoft.Compute/disks/restored"
    with pytest.raises(HttpResponseError) as caught:
        estate.dp.backup_instances.begin_validate_for_restore(
            rg, vault.name, "bi", {"restoreRequestObject": disk_restore(point, disk, new_disk)}).result()
    assert error_code(caught.value) == "UserErrorMissingRequiredPermissions"
    with pytest.raises(HttpResponseError) as caught:
        estate.dp.backup_instances.begin_trigger_restore(rg, vault.name, "bi",
                                                         disk_restore(point, disk, new_disk)).result()
    assert caught.value.status_code == 400 and "Disk Restore Operator" in str(caught.value)
    restore_right(estate, vault, "Disk Restore Operator", estate.group_id(rg))  # another group: not enough
    with pytest.raises(HttpResponseError):
        estate.dp.backup_instances.begin_validate_for_restore(
            rg, vault.name, "bi", {"restoreRequestObject": disk_restore(point, disk, new_disk)}).result()
    restore_right(estate, vault, "Disk Restore Operator", estate.group_id(drill))
    estate.dp.backup_instances.begin_validate_for_restore(
        rg, vault.name, "bi", {"restoreRequestObject": disk_restore(point, disk, new_disk)}).result()


def test_a_disk_restores_as_a_new_disk_never_over_the_source(estate: Estate) -> None:
    vault, disk, rg = protected_disk(estate)
    drill = estate.group("drill")
    restore_right(estate, vault, "Disk Restore Operator", estate.group_id(drill))
    point = latest_point(estate, rg, vault)
    with pytest.raises(HttpResponseError) as caught:
        estate.dp.backup_instances.begin_validate_for_restore(
            rg, vault.name, "bi", {"restoreRequestObject": disk_restore(point, disk, disk)}).result()
    assert error_code(caught.value) == "UserErrorOriginalLocationRestoreNotSupported"
    new_disk = f"{estate.group_id(drill)}/providers/Microsoft.Compute/disks/restored"
    with pytest.raises(HttpResponseError) as caught:
        estate.dp.backup_instances.begin_trigger_restore(
            rg, vault.name, "bi", disk_restore(point, disk, new_disk, "eastus")).result()
    assert caught.value.status_code == 400
    estate.dp.backup_instances.begin_validate_for_restore(
        rg, vault.name, "bi", {"restoreRequestObject": disk_restore(point, disk, new_disk)}).result()
    result = estate.dp.backup_instances.begin_trigger_restore(
        rg, vault.name, "bi", disk_restore(point, disk, new_disk)).result()
    job = estate.dp.jobs.get(rg, vault.name, result.job_id)
    assert (job.properties.operation, job.properties.status) == ("Restore", "InProgress")
    assert estate.sandbox.store.get(new_disk) is None
    estate.sandbox.advance(jobs_of(estate).timing.dp_restore["microsoft.compute/disks"] + 60)
    made = estate.sandbox.store.get(new_disk)
    assert made is not None and made["properties"]["diskSizeGB"] == 32
    assert estate.sandbox.store.private(new_disk)["restoredBy"]["restoreJobId"] == result.job_id
    assert estate.dp.jobs.get(rg, vault.name, result.job_id).properties.status == "Completed"
    assert jobs_of(estate).restored(result.job_id) == [new_disk]


def files_restore(point: str, source: str, url: str, kind: str = "RestoreFilesTargetInfo") -> dict[str, Any]:
    return {"objectType": "AzureBackupRecoveryPointBasedRestoreRequest", "recoveryPointId": point,
            "sourceDataStoreType": "VaultStore", "sourceResourceId": source,
            "restoreTargetInfo": {"objectType": kind, "recoveryOption": "FailIfExists", "restoreLocation": "westus",
                                  "targetDetails": {"url": url, "filePrefix": "drill",
                                                    "restoreTargetLocationType": "AzureBlobs"}}}


def test_a_postgresql_server_restores_as_files_into_a_storage_container(estate: Estate) -> None:
    vault, server, rg = protected_server(estate)
    account = estate.datasource(rg, STORAGE, "drill")
    url = f"https://{account.rsplit('/', 1)[-1]}.blob.core.windows.net/restores"
    point = latest_point(estate, rg, vault)
    with pytest.raises(HttpResponseError) as caught:
        estate.dp.backup_instances.begin_validate_for_restore(
            rg, vault.name, "bi", {"restoreRequestObject": files_restore(point, server, url, "RestoreTargetInfo")}
        ).result()
    assert error_code(caught.value) == "UserErrorAlternateLocationRestoreNotSupported"
    with pytest.raises(HttpResponseError) as caught:
        estate.dp.backup_instances.begin_validate_for_restore(
            rg, vault.name, "bi", {"restoreRequestObject": files_restore(point, server, url)}).result()
    assert error_code(caught.value) == "UserErrorMissingRequiredPermissions"
    restore_right(estate, vault, "Storage Blob Data Contributor", account)
    with pytest.raises(HttpResponseError) as caught:  # the target container must exist (inferred)
        estate.dp.backup_instances.begin_trigger_restore(rg, vault.name, "bi", files_restore(point, server, url))
    assert caught.value.status_code == 404 and "restores" in str(caught.value)
    estate.clients.resources(estate.subscription).resources.begin_create_or_update_by_id(
        f"{account}/blobServices/default/containers/restores", {"properties": {}}, api_version="2023-05-01").result()
    result = estate.dp.backup_instances.begin_trigger_restore(rg, vault.name, "bi",
                                                              files_restore(point, server, url)).result()
    estate.sandbox.advance(jobs_of(estate).timing.dp_restore["microsoft.dbforpostgresql/flexibleservers"] + 60)
    job = estate.dp.jobs.get(rg, vault.name, result.job_id)
    assert job.properties.status == "Completed"
    [written] = estate.sandbox.store.private(account)["restoredFiles"]
    assert written["container"] == "restores" and written["blob"].startswith("drill")
    assert written["restoreJobId"] == result.job_id


def test_an_injected_failure_ends_the_restore_job_failed_and_creates_nothing(estate: Estate) -> None:
    vault, disk, rg = protected_disk(estate)
    drill = estate.group("drill")
    point = latest_point(estate, rg, vault)
    new_disk = f"{estate.group_id(drill)}/providers/Microsoft.Compute/disks/restored"
    restore_right(estate, vault, "Disk Restore Operator", estate.group_id(drill))
    jobs_of(estate).book.fail_next(vault.id, "Restore", "UserErrorDiskRestoreFailed", "injected")
    result = estate.dp.backup_instances.begin_trigger_restore(
        rg, vault.name, "bi", disk_restore(point, disk, new_disk)).result()
    estate.sandbox.advance(jobs_of(estate).timing.dp_restore["microsoft.compute/disks"] + 60)
    job = estate.dp.jobs.get(rg, vault.name, result.job_id)
    assert job.properties.status == "Failed"
    assert estate.sandbox.store.get(new_disk) is None


def test_an_unknown_recovery_point_is_refused(estate: Estate) -> None:
    vault, disk, rg = protected_disk(estate)
    new_disk = f"{estate.group_id(rg)}/providers/Microsoft.Compute/disks/restored"
    with pytest.raises(HttpResponseError) as caught:
        estate.dp.backup_instances.begin_trigger_restore(rg, vault.name, "bi",
                                                         disk_restore("nope", disk, new_disk)).result()
    assert caught.value.status_code == 404


def test_operational_blob_backup_restores_only_in_place(estate: Estate) -> None:
    from tests.integration.sandbox_dp.conftest import BLOB

    rg = estate.group("blob")
    vault = make_vault(estate, rg)
    account = estate.datasource(rg, STORAGE, "src")
    other = estate.datasource(rg, STORAGE, "alt")
    vault.grant("Storage Account Backup Contributor", account)
    vault.protect("bi", vault.instance_body(account, BLOB, vault.policy(BLOB)))
    estate.sandbox.advance(2 * HOUR)

    def request(target: str) -> dict[str, Any]:
        return {"objectType": "AzureBackupRecoveryTimeBasedRestoreRequest", "sourceDataStoreType": "OperationalStore",
                "sourceResourceId": account, "recoveryPointTime": estate.sandbox.clock.now().isoformat(),
                "restoreTargetInfo": {"objectType": "ItemLevelRestoreTargetInfo", "recoveryOption": "FailIfExists",
                                      "restoreLocation": "westus", "restoreCriteria": [],
                                      "datasourceInfo": {"objectType": "Datasource", "resourceID": target,
                                                         "resourceType": STORAGE, "datasourceType": BLOB}}}

    with pytest.raises(HttpResponseError) as caught:
        estate.dp.backup_instances.begin_trigger_restore(rg, vault.name, "bi", request(other)).result()
    assert error_code(caught.value) == "UserErrorAlternateLocationRestoreNotSupported"
    estate.dp.backup_instances.begin_validate_for_restore(
        rg, vault.name, "bi", {"restoreRequestObject": request(account)}).result()


def vaulted_blob_restore(point: str, source: str, target: str, containers: list[str]) -> dict[str, Any]:
    """A vaulted blob restore as MicrosoftDocs/azure-docs ``includes/blob-vaulted-backup-restore-restapi.md`` sends
    it: ``ItemLevelRestoreTargetInfo``, one ``ItemPathBasedRestoreCriteria`` per container, the target account in
    ``datasourceInfo``."""
    from tests.integration.sandbox_dp.conftest import BLOB

    return {"objectType": "AzureBackupRecoveryPointBasedRestoreRequest", "recoveryPointId": point,
            "sourceDataStoreType": "VaultStore", "sourceResourceId": source,
            "restoreTargetInfo": {"objectType": "ItemLevelRestoreTargetInfo", "recoveryOption": "FailIfExists",
                                  "restoreLocation": "westus",
                                  "restoreCriteria": [{"objectType": "ItemPathBasedRestoreCriteria", "itemPath": c,
                                                       "isPathRelativeToBackupItem": True} for c in containers],
                                  "datasourceInfo": {"objectType": "Datasource", "resourceID": target,
                                                     "resourceType": STORAGE, "datasourceType": BLOB}}}


def test_vaulted_blob_backup_restores_to_an_alternate_storage_account(estate: Estate) -> None:
    """blob-restore.md (vaulted tab): only to another account, the vault holding Storage Account Backup Contributor
    on it; the restored containers appear there when the job completes."""
    from tests.integration.sandbox_dp.conftest import BLOB

    rg = estate.group("vblob")
    vault = make_vault(estate, rg)
    account = estate.datasource(rg, STORAGE, "src")
    drill = estate.datasource(rg, STORAGE, "drill")
    vault.grant("Storage Account Backup Contributor", account)
    # a vaulted blob backup lists its containers (Azure refuses one without: UserErrorNoContainersSelectedForOperation)
    for name in ("data", "logs"):
        estate.clients.resources(estate.subscription).resources.begin_create_or_update_by_id(
            f"{account}/blobServices/default/containers/{name}", {"properties": {}}, api_version="2023-05-01").result()
    body = vault.instance_body(account, BLOB, policy(vault, BLOB, "VaultStore", "P1D"))
    body["policyInfo"]["policyParameters"] = {"backupDatasourceParametersList": [
        {"objectType": "BlobBackupDatasourceParameters", "containersList": ["data", "logs"]}]}
    vault.protect("bi", body)
    point = latest_point(estate, rg, vault)

    def refused(request: dict[str, Any]) -> HttpResponseError:
        with pytest.raises(HttpResponseError) as caught:
            estate.dp.backup_instances.begin_trigger_restore(rg, vault.name, "bi", request).result()
        return caught.value

    in_place = refused(vaulted_blob_restore(point, account, account, ["data"]))
    assert error_code(in_place) == "UserErrorOriginalLocationRestoreNotSupported"
    no_role = refused(vaulted_blob_restore(point, account, drill, ["data", "logs"]))
    assert error_code(no_role) == "UserErrorMissingRequiredPermissions"
    assert "Storage Account Backup Contributor" in str(no_role)
    restore_right(estate, vault, "Storage Account Backup Contributor", drill)
    assert refused(vaulted_blob_restore(point, account, drill, ["nope"])).status_code == 400
    no_criteria = refused(vaulted_blob_restore(point, account, drill, []))
    # backup-azure-troubleshoot-blob-backup.md: "No containers selected for operation"
    assert no_criteria.status_code == 400 and error_code(no_criteria) == "UserErrorNoContainersSelectedForOperation"
    too_many = refused(vaulted_blob_restore(point, account, drill, ["data"] * 101))  # blob-restore.md: up to 100
    assert error_code(too_many) == "UserErrorTooManyRestoreCriteriaGivenForBlobRestore"
    estate.dp.backup_instances.begin_validate_for_restore(
        rg, vault.name, "bi", {"restoreRequestObject": vaulted_blob_restore(point, account, drill, ["data"])}).result()
    result = estate.dp.backup_instances.begin_trigger_restore(
        rg, vault.name, "bi", vaulted_blob_restore(point, account, drill, ["data", "logs"])).result()
    containers = [f"{drill}/blobServices/default/containers/{n}" for n in ("data", "logs")]
    assert not any(estate.sandbox.store.exists(c) for c in containers)  # not before the job ends
    estate.sandbox.advance(jobs_of(estate).timing.dp_restore["microsoft.storage/storageaccounts/blobservices"] + 60)
    assert estate.dp.jobs.get(rg, vault.name, result.job_id).properties.status == "Completed"
    listed = estate.clients.resources(estate.subscription).resources.get_by_id(containers[0], api_version="2023-05-01")
    assert listed.name == "data"
    assert all(estate.sandbox.store.private(c)["restoredBy"]["restoreJobId"] == result.job_id for c in containers)
    assert jobs_of(estate).restored(result.job_id) == containers
    again = refused(vaulted_blob_restore(point, account, drill, ["data"]))  # FailIfExists
    # backup-azure-troubleshoot-blob-backup.md: "The containers that are part of restore request shouldn't exist on
    # target storage account"
    assert again.status_code == 409 and error_code(again) == "UserErrorTargetContainersExistOnAccount"


def test_the_drills_adapter_finds_the_points_azure_lists(estate: Estate) -> None:
    """``DrillOps.recovery_points`` keeps the points with a copy in the policy's store, whichever spelling Azure
    uses for it ("OperationalStore" as captured from Azure; "Snapshot" in Microsoft's example). The app read only
    the example's spelling: every disk drill on Azure ended NoRecoveryPoint."""
    vault, _disk, rg = protected_disk(estate)
    estate.sandbox.advance(24 * HOUR)
    ops = DrillOps(estate.clients)
    points = ops.recovery_points(f"{vault.id}/backupInstances/bi", "OperationalStore")
    assert len(points) == len(list(estate.dp.recovery_points.list(rg, vault.name, "bi"))) > 0
    assert ops.recovery_points(f"{vault.id}/backupInstances/bi", "VaultStore") == []


def test_the_drills_adapter_names_the_restore_job_by_its_name(estate: Estate) -> None:
    """The restore's Succeeded operation status names the job by its ARM id (``properties.jobId``, as Azure
    answers it); the adapter hands back the job's name, which ``backupJobs/{name}`` reads."""
    vault, disk, rg = protected_disk(estate)
    drill = estate.group("drill")
    restore_right(estate, vault, "Disk Restore Operator", estate.group_id(drill))
    point = latest_point(estate, rg, vault)
    ops = DrillOps(estate.clients)
    new_disk = f"{estate.group_id(drill)}/providers/Microsoft.Compute/disks/restored"
    operation = ops.post(f"{vault.id}/backupInstances/bi/restore", disk_restore(point, disk, new_disk), "restore")
    assert operation is not None and operation["statusUrl"]
    estate.sandbox.advance(jobs_of(estate).timing.trigger_operation + 60)
    status = ops.operation_status(operation)
    assert status["state"] == "succeeded"
    assert "/" not in status["jobId"]
    assert ops.job(vault.id, status["jobId"])["status"] in ("InProgress", "Completed")
