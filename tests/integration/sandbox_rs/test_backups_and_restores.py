"""Recovery Services backups that happen, jobs, recovery points and VM restore-disks, through the app's real
``azure-mgmt-recoveryservicesbackup`` client (sandbox module ``recoveryservices_jobs``; docs/azure-facts.md
"Backups, jobs, recovery points and restores")."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError

from sandbox.arm.config import SandboxConfig
from sandbox.arm.providers.recoveryservices import recovery_services
from sandbox.arm.providers.recoveryservices_jobs import (
    TARGET_GROUP_NOT_FOUND,
    RecoveryServicesJobs,
    job_error_number,
    recovery_services_jobs,
)
from sandbox.arm.providers.recoveryservices_model import Timing
from sandbox.arm.server import ArmSandbox
from steward.cloud.drills import API
from tests.integration.clock_held import held_by_the_test, on_a_discrete_clock
from tests.integration.sandbox_rs.conftest import DAY, HOUR, TIMING, Estate, error_code, provider_names, vm_names

#: Azure midnight, so the DefaultPolicy's 02:00 runs fall at known instants
START = datetime(2026, 3, 2, 0, 0, tzinfo=UTC)

DISKS_API = API["microsoft.compute/disks"]


@pytest.fixture(scope="module")
def sandbox() -> Iterator[ArmSandbox]:
    """The module's sandbox runs on the discrete-event clock the benchmarks use, installed as the app's
    ``azure_time``: Azure time moves only with ``advance`` and the SDK's clock waits (LRO polls), never with the
    machine's load. On a scaled clock (1 real s = 1 Azure hour) a slow test crossed 02:00 and the DefaultPolicy's
    scheduled backup added a recovery point the test did not ask for."""
    names = (*provider_names(), "recoveryservices_jobs")

    def timed(sb: ArmSandbox) -> None:
        recovery_services(sb).model.timing = Timing(**TIMING.__dict__)

    yield from on_a_discrete_clock(lambda clock: SandboxConfig(clock=clock, page_size=2, providers=names), START,
                                   ready=timed)


@pytest.fixture(autouse=True)
def test_holds_the_clock(sandbox: ArmSandbox) -> Iterator[None]:
    yield from held_by_the_test(sandbox)


def jobs_of(estate: Estate) -> RecoveryServicesJobs:
    return recovery_services_jobs(estate.sandbox)


def vm_with_disks(estate: Estate, rg: str, name: str = "vm1", location: str = "westeurope") -> str:
    """A VM record with a 64 GB OS disk and a 128 GB data disk (as the Compute provider keeps them)."""
    sub = estate.subscription
    base = f"/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.Compute"
    os_id, data_id = f"{base}/disks/{name}-os", f"{base}/disks/{name}-data"
    for disk_id, size in ((os_id, 64), (data_id, 128)):
        estate.sandbox.store.put({"id": disk_id, "name": disk_id.rsplit("/", 1)[-1], "type": "Microsoft.Compute/disks",
                                  "location": location, "sku": {"name": "Premium_LRS"},
                                  "properties": {"diskSizeGB": size, "provisioningState": "Succeeded"}})
    vm_id = f"{base}/virtualMachines/{name}"
    estate.sandbox.store.put({
        "id": vm_id, "name": name, "type": "Microsoft.Compute/virtualMachines", "location": location, "tags": {},
        "properties": {"provisioningState": "Succeeded", "hardwareProfile": {"vmSize": "Standard_D4s_v5"},
                       "storageProfile": {
                           "osDisk": {"name": f"{name}-os", "osType": "Linux", "managedDisk": {"id": os_id}},
                           "dataDisks": [{"name": f"{name}-data", "lun": 0, "managedDisk": {"id": data_id}}]}},
    })
    return vm_id


def storage(estate: Estate, rg: str, name: str, location: str = "westeurope") -> str:
    return estate.resource(rg, "Microsoft.Storage/storageAccounts", name, location)


def protected(estate: Estate) -> tuple[str, str, str, str]:
    rg = estate.group()
    estate.vault(rg)
    vm = vm_with_disks(estate, rg)
    estate.protect_vm(rg, "rsv", vm)
    estate.advance(7 * HOUR)  # the first backup (TIMING.first_backup = 6 h) has run
    container, item = vm_names(rg, "vm1")
    return rg, vm, container, item


def test_the_first_backup_is_a_completed_job_and_a_recovery_point(estate: Estate) -> None:
    rg, _vm, container, item = protected(estate)
    jobs = list(estate.rsb().backup_jobs.list("rsv", rg))
    assert [(j.properties.operation, j.properties.status) for j in jobs] == [("Backup", "Completed")]
    assert jobs[0].properties.entity_friendly_name == "vm1"
    points = list(estate.rsb().recovery_points.list("rsv", rg, "Azure", container, item))
    assert len(points) == 1
    assert points[0].properties.object_type == "IaasVMRecoveryPoint"
    got = estate.vm_item(rg, "rsv", _vm)
    assert got.properties.last_recovery_point == points[0].properties.recovery_point_time


def test_the_policy_schedule_makes_a_backup_job_and_a_point_every_day(estate: Estate) -> None:
    rg, vm, container, item = protected(estate)
    before = estate.vm_item(rg, "rsv", vm).properties.last_recovery_point
    estate.advance(3 * DAY)
    points = list(estate.rsb().recovery_points.list("rsv", rg, "Azure", container, item))
    times = sorted(p.properties.recovery_point_time for p in points)
    scheduled = times[1:]
    assert len(scheduled) == 3, times
    assert all(t.hour == 2 and t.minute == 0 for t in scheduled), "DefaultPolicy runs at 02:00 UTC"
    jobs = list(estate.rsb().backup_jobs.list("rsv", rg, filter="operation eq 'Backup' and status eq 'Completed'"))
    assert len(jobs) == 4
    after = estate.vm_item(rg, "rsv", vm).properties.last_recovery_point
    assert after > before and after == times[-1]


def test_on_demand_backup_answers_202_and_its_operation_names_a_job_that_makes_a_point(estate: Estate) -> None:
    rg, _vm, container, item = protected(estate)
    rsb = estate.rsb()
    with estate.frozen():
        body = {"properties": {"objectType": "IaasVMBackupRequest"}}
        headers = rsb.backups.trigger("rsv", rg, "Azure", container, item, body,
                                      cls=lambda p, d, h: dict(p.http_response.headers))
        assert "operationsStatus" in headers["Azure-AsyncOperation"]
        assert "operationResults" in headers["Location"]
        operation_id = headers["Azure-AsyncOperation"].split("/operationsStatus/")[1].split("?")[0]
        estate.advance(30)  # the trigger operation ends; the job runs on
        status = rsb.protected_item_operation_statuses.get("rsv", rg, "Azure", container, item, operation_id)
        assert status.status == "Succeeded"
        job_id = status.properties.job_id
        job = rsb.job_details.get("rsv", rg, job_id)
        assert (job.properties.operation, job.properties.status) == ("Backup", "InProgress")
        assert job.properties.extended_info.tasks_list[0].task_id == "Take Snapshot"
        estate.advance(jobs_of(estate).timing.rs_vm_backup)
        job = rsb.job_details.get("rsv", rg, job_id)
        assert job.properties.status == "Completed" and job.properties.end_time is not None
    points = list(rsb.recovery_points.list("rsv", rg, "Azure", container, item))
    assert len(points) == 2


def test_backup_jobs_filter_and_page_as_the_spec_allows(estate: Estate) -> None:
    rg, _vm, _container, _item = protected(estate)
    estate.advance(4 * DAY)
    rsb = estate.rsb()
    assert len(list(rsb.backup_jobs.list("rsv", rg))) == 5  # page_size=2: three pages followed
    assert list(rsb.backup_jobs.list("rsv", rg, filter="status eq 'Failed'")) == []
    now = estate.sandbox.clock.now()
    window = ((now - timedelta(days=2)).strftime("%Y-%m-%d %I:%M:%S %p"), now.strftime("%Y-%m-%d %I:%M:%S %p"))
    recent = list(rsb.backup_jobs.list("rsv", rg, filter=f"startTime eq '{window[0]}' and endTime eq '{window[1]}'"))
    assert len(recent) == 2
    with pytest.raises(HttpResponseError) as caught:
        list(rsb.backup_jobs.list("rsv", rg, filter="status ne 'Failed'"))
    assert caught.value.status_code == 400


def restore_body(rp: str, vm: str, **props: Any) -> dict[str, Any]:
    base = {"objectType": "IaasVMRestoreRequest", "recoveryPointId": rp, "recoveryType": "RestoreDisks",
            "sourceResourceId": vm, "region": "westeurope", "createNewCloudService": True,
            "originalStorageAccountOption": False, "encryptionDetails": {"encryptionEnabled": False}}
    base.update(props)
    return {"properties": {k: v for k, v in base.items() if v is not None}}


def test_restore_disks_refuses_a_missing_or_foreign_region_staging_account(estate: Estate) -> None:
    rg, vm, container, item = protected(estate)
    rp = next(iter(estate.rsb().recovery_points.list("rsv", rg, "Azure", container, item))).name
    far = storage(estate, rg, f"far{estate.tag}", "eastus")
    target = f"/subscriptions/{estate.subscription}/resourceGroups/{rg}"
    for body, code in ((restore_body(rp, vm, targetResourceGroupId=target), "UserErrorStorageAccountRequired"),
                       (restore_body(rp, vm, storageAccountId=far, targetResourceGroupId=target),
                        "UserErrorStorageAccountInDifferentRegion")):
        with pytest.raises(HttpResponseError) as caught:
            estate.rsb().restores.begin_trigger("rsv", rg, "Azure", container, item, rp, body).result()
        assert caught.value.status_code == 400 and error_code(caught.value) == code
    assert list(estate.rsb().backup_jobs.list("rsv", rg, filter="operation eq 'Restore'")) == []


def test_restore_disks_runs_a_restore_job_and_the_disks_appear_in_the_target_group(estate: Estate) -> None:
    rg, vm, container, item = protected(estate)
    drill_rg = estate.group("drill")
    staging = storage(estate, rg, f"stage{estate.tag}")
    rsb = estate.rsb()
    rp = next(iter(rsb.recovery_points.list("rsv", rg, "Azure", container, item))).name
    target = f"/subscriptions/{estate.subscription}/resourceGroups/{drill_rg}"
    rsb.restores.begin_trigger("rsv", rg, "Azure", container, item, rp,
                               restore_body(rp, vm, storageAccountId=staging, targetResourceGroupId=target)).result()
    [job] = list(rsb.backup_jobs.list("rsv", rg, filter="operation eq 'Restore'"))
    assert job.properties.status == "InProgress"
    assert list(estate.clients.resources(estate.subscription).resources.list_by_resource_group(drill_rg)) == []
    estate.advance(jobs_of(estate).timing.rs_vm_restore + 60)
    detail = rsb.job_details.get("rsv", rg, job.name)
    assert detail.properties.status == "Completed"
    bag = detail.properties.extended_info.property_bag
    assert bag["Job Type"] == "Recover disks" and bag["Target resource group"] == drill_rg
    assert bag["Target Storage Account Name"] == staging.rsplit("/", 1)[-1]
    restored = sorted(r.id for r in estate.clients.resources(estate.subscription).resources.list_by_resource_group(
        drill_rg))
    assert restored == sorted(jobs_of(estate).restored(job.name))
    sizes = sorted(estate.sandbox.store.get(r)["properties"]["diskSizeGB"] for r in restored)
    assert sizes == [64, 128]
    assert all(estate.sandbox.store.private(r)["restoredBy"]["restoreJobId"] == job.name for r in restored)


def restored_creation(estate: Estate, rg: str, vm: str, container: str, item: str) -> list[dict[str, Any]]:
    """Restore the item's first point into a new group; the restored disks' ``creationData``."""
    drill_rg = estate.group("drill")
    staging = storage(estate, rg, f"stage{estate.tag}")
    rsb = estate.rsb()
    rp = next(iter(rsb.recovery_points.list("rsv", rg, "Azure", container, item))).name
    target = f"/subscriptions/{estate.subscription}/resourceGroups/{drill_rg}"
    rsb.restores.begin_trigger("rsv", rg, "Azure", container, item, rp,
                               restore_body(rp, vm, storageAccountId=staging, targetResourceGroupId=target)).result()
    estate.advance(jobs_of(estate).timing.rs_vm_restore + 60)
    arm = estate.clients.resources(estate.subscription).resources
    return [dict(arm.get_by_id(r.id, api_version=DISKS_API).properties["creationData"])
            for r in arm.list_by_resource_group(drill_rg) if r.type == "Microsoft.Compute/disks"]


def test_disks_restored_from_the_snapshot_tier_are_created_with_restore(estate: Estate) -> None:
    rg, vm, container, item = protected(estate)
    created = restored_creation(estate, rg, vm, container, item)
    assert len(created) == 2 and {c["createOption"] for c in created} == {"Restore"}
    assert all("/restorePointCollections/AzureBackup_" in c["sourceResourceId"] for c in created)


def test_disks_restored_from_the_vault_tier_alone_are_imported_from_the_staging_account(estate: Estate) -> None:
    """INFERRED (docs/azure-facts.md, "Restore drills"): once the snapshot is gone the data comes from the vault
    through the staging account, so the disks are Compute's ``Import`` of VHD blobs there."""
    rg, vm, container, item = protected(estate)
    assert jobs_of(estate).expire_snapshots() > 0
    [rp] = list(estate.rsb().recovery_points.list("rsv", rg, "Azure", container, item))
    tiers = {t.type: t.status for t in rp.properties.recovery_point_tier_details}
    assert tiers == {"InstantRP": "Deleted", "HardenedRP": "Valid"}
    created = restored_creation(estate, rg, vm, container, item)
    assert len(created) == 2 and {c["createOption"] for c in created} == {"Import"}
    assert all(c["sourceUri"].endswith(".vhd") and "/stage" in c["storageAccountId"] for c in created)


def test_a_restore_into_a_missing_group_fails_in_the_job(estate: Estate) -> None:
    rg, vm, container, item = protected(estate)
    staging = storage(estate, rg, f"stage{estate.tag}")
    rp = next(iter(estate.rsb().recovery_points.list("rsv", rg, "Azure", container, item))).name
    gone = f"/subscriptions/{estate.subscription}/resourceGroups/nowhere-{estate.tag}"
    estate.rsb().restores.begin_trigger("rsv", rg, "Azure", container, item, rp,
                                        restore_body(rp, vm, storageAccountId=staging,
                                                     targetResourceGroupId=gone)).result()
    estate.advance(jobs_of(estate).timing.rs_vm_restore + 60)
    [job] = list(estate.rsb().backup_jobs.list("rsv", rg, filter="operation eq 'Restore'"))
    assert job.properties.status == "Failed"
    [error] = job.properties.error_details
    # errorCode is an integer (the spec's AzureIaaSVMErrorInfo, Microsoft's clients); the refusal is in errorString
    assert isinstance(error.error_code, int) and error.error_code == job_error_number(TARGET_GROUP_NOT_FOUND)
    assert "does not exist" in error.error_string


def test_an_injected_azure_side_failure_fails_the_next_restore_job(estate: Estate) -> None:
    rg, vm, container, item = protected(estate)
    staging = storage(estate, rg, f"stage{estate.tag}")
    drill_rg = estate.group("drill")
    rp = next(iter(estate.rsb().recovery_points.list("rsv", rg, "Azure", container, item))).name
    vault_id = f"/subscriptions/{estate.subscription}/resourceGroups/{rg}/providers/Microsoft.RecoveryServices/vaults/"
    vault_id += "rsv"
    jobs_of(estate).book.fail_next(vault_id, "Restore", "UserErrorDiskRestoreFailed", "injected")
    target = f"/subscriptions/{estate.subscription}/resourceGroups/{drill_rg}"
    estate.rsb().restores.begin_trigger("rsv", rg, "Azure", container, item, rp,
                                        restore_body(rp, vm, storageAccountId=staging,
                                                     targetResourceGroupId=target)).result()
    estate.advance(jobs_of(estate).timing.rs_vm_restore + 60)
    [job] = list(estate.rsb().backup_jobs.list("rsv", rg, filter="operation eq 'Restore'"))
    assert job.properties.status == "Failed"
    assert list(estate.clients.resources(estate.subscription).resources.list_by_resource_group(drill_rg)) == []


def test_replace_existing_is_refused_once_the_source_vm_is_gone(estate: Estate) -> None:
    rg, vm, container, item = protected(estate)
    staging = storage(estate, rg, f"stage{estate.tag}")
    rp = next(iter(estate.rsb().recovery_points.list("rsv", rg, "Azure", container, item))).name
    estate.sandbox.store.delete(vm)
    body = restore_body(rp, vm, recoveryType="OriginalLocation", storageAccountId=staging)
    with pytest.raises(HttpResponseError) as caught:
        estate.rsb().restores.begin_trigger("rsv", rg, "Azure", container, item, rp, body).result()
    assert error_code(caught.value) == "UserErrorReplaceExistingSourceVmNotFound"


def test_an_unknown_recovery_point_is_404(estate: Estate) -> None:
    rg, _vm, container, item = protected(estate)
    with pytest.raises(HttpResponseError) as caught:
        estate.rsb().recovery_points.get("rsv", rg, "Azure", container, item, "123")
    assert caught.value.status_code == 404


def test_a_cancelled_restore_job_ends_cancelled_and_creates_nothing(estate: Estate) -> None:
    rg, vm, container, item = protected(estate)
    drill_rg = estate.group("drill")
    staging = storage(estate, rg, f"stage{estate.tag}")
    rsb = estate.rsb()
    rp = next(iter(rsb.recovery_points.list("rsv", rg, "Azure", container, item))).name
    target = f"/subscriptions/{estate.subscription}/resourceGroups/{drill_rg}"
    rsb.restores.begin_trigger("rsv", rg, "Azure", container, item, rp,
                               restore_body(rp, vm, storageAccountId=staging, targetResourceGroupId=target)).result()
    [job] = list(rsb.backup_jobs.list("rsv", rg, filter="operation eq 'Restore'"))
    with estate.frozen():
        headers = rsb.job_cancellations.trigger("rsv", rg, job.name,
                                                cls=lambda p, d, h: dict(p.http_response.headers))
        assert "/operationResults/" in headers["Location"]
        assert rsb.job_details.get("rsv", rg, job.name).properties.status == "Cancelling"
    estate.advance(jobs_of(estate).timing.rs_vm_restore + 60)
    assert rsb.job_details.get("rsv", rg, job.name).properties.status == "Cancelled"
    assert list(estate.clients.resources(estate.subscription).resources.list_by_resource_group(drill_rg)) == []
    with pytest.raises(HttpResponseError) as caught:
        rsb.job_cancellations.trigger("rsv", rg, job.name)
    assert caught.value.status_code == 400


def test_stopped_protection_takes_no_backups_and_resuming_does_not_backfill(estate: Estate) -> None:
    rg, vm, container, item = protected(estate)
    rsb = estate.rsb()
    policy = f"/subscriptions/{estate.subscription}/resourceGroups/{rg}/providers/Microsoft.RecoveryServices/vaults/"
    policy += "rsv/backupPolicies/DefaultPolicy"
    source = {"protectedItemType": "Microsoft.Compute/virtualMachines", "sourceResourceId": vm}
    rsb.protected_items.begin_create_or_update(
        "rsv", rg, "Azure", container, item,
        {"properties": dict(source, protectionState="ProtectionStopped", policyId="")}).result()
    estate.advance(3 * DAY)
    assert len(list(rsb.recovery_points.list("rsv", rg, "Azure", container, item))) == 1
    rsb.protected_items.begin_create_or_update(
        "rsv", rg, "Azure", container, item, {"properties": dict(source, policyId=policy)}).result()
    estate.advance(DAY + HOUR)
    assert len(list(rsb.recovery_points.list("rsv", rg, "Azure", container, item))) == 2


def test_restore_disks_refuses_a_zone_redundant_staging_account(estate: Estate) -> None:
    """(Last in the file: it moves the shared clock by hours, which the daily-schedule tests above count on.)
    "The storage account should be in the same region as the Recovery Services vault and shouldn't be zone
    redundant" (backup-azure-arm-userestapi-restoreazurevms.md); the code is inferred."""
    rg, vm, container, item = protected(estate)
    rp = next(iter(estate.rsb().recovery_points.list("rsv", rg, "Azure", container, item))).name
    zrs = storage(estate, rg, f"zrs{estate.tag}")
    record = estate.sandbox.store.get(zrs)
    estate.sandbox.store.put(dict(record, sku={"name": "Standard_ZRS"}))
    target = f"/subscriptions/{estate.subscription}/resourceGroups/{rg}"
    with pytest.raises(HttpResponseError) as caught:
        estate.rsb().restores.begin_trigger("rsv", rg, "Azure", container, item, rp,
                                            restore_body(rp, vm, storageAccountId=zrs,
                                                         targetResourceGroupId=target)).result()
    assert caught.value.status_code == 400 and error_code(caught.value) == "UserErrorStorageAccountZoneRedundant"
    # "Storage type: Blob storage isn't supported" (backup-azure-arm-restore-vms.md); the code is inferred
    estate.sandbox.store.put(dict(record, sku={"name": "Standard_LRS"}, kind="BlobStorage"))
    with pytest.raises(HttpResponseError) as caught:
        estate.rsb().restores.begin_trigger("rsv", rg, "Azure", container, item, rp,
                                            restore_body(rp, vm, storageAccountId=zrs,
                                                         targetResourceGroupId=target)).result()
    assert caught.value.status_code == 400 and error_code(caught.value) == "UserErrorStorageAccountTypeNotSupported"
