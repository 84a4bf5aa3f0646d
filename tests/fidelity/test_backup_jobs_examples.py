"""Fidelity of the backup/restore job modules (``recoveryservices_jobs``, ``dataprotection_jobs``) against
Microsoft's published REST examples.

These examples are not (yet) in ``../shared/fixtures``; each check below lists the fields the example's response
shows, by path and JSON type (read from Azure/azure-rest-api-specs at the commit named), and sends the example's
request over HTTPS: status code, LRO headers, and every listed field present with that type (values may differ;
the sandbox may answer more). ``[]`` in a path means "in every element of a non-empty array".

Deliberate differences, and why:

- validateRestore's final result has no ``jobId``: a validation starts no job in the sandbox (the example shows
  one; what it would name is not documented).
- ListRecoveryPoints shows ``expiryTime`` on one point only: the sandbox leaves it out (an optional field).
- ListRecoveryPoints spells the data stores ``Snapshot`` / ``BackupStorage``; Azure's captured answers say
  ``OperationalStore`` / ``VaultStore`` (MicrosoftDocs
  ``backup/backup-azure-dataprotection-use-rest-api-restore-disks.md``,
  ``backup-azure-database-postgresql-flex-use-rest-api-restore.md``): the sandbox answers those.
- A Backup vault restore's Succeeded operation status carries ``properties.jobId``, the job's ARM id (the same
  articles' captured status); the examples show none.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from sandbox.arm import ArmSandbox, SandboxConfig
from sandbox.arm.providers.authorization_model import grant_built_in_role
from tests.fidelity.test_dataprotection_examples import Answer, RawArm

SUB = "00000000-0000-4000-8000-000000000001"
RG = f"/subscriptions/{SUB}/resourceGroups/rg"
RS_API, DP_API = "2025-02-01", "2025-07-01"
RSV = f"{RG}/providers/Microsoft.RecoveryServices/vaults/rsv"
CONTAINER, ITEM = "IaasVMContainer;iaasvmcontainerv2;rg;vm1", "VM;iaasvmcontainerv2;rg;vm1"
RS_ITEM = f"{RSV}/backupFabrics/Azure/protectionContainers/{CONTAINER}/protectedItems/{ITEM}"
BV = f"{RG}/providers/Microsoft.DataProtection/backupVaults/bv"
DISK = f"{RG}/providers/Microsoft.Compute/disks/disk1"
SPEC = "specification/{}/resource-manager/Microsoft.{}/stable/{}/examples/{}"

#: example -> (commit read, fields of its response: path -> JSON type)
RS_JOB_FIELDS = {
    "id": "string", "name": "string", "type": "string", "properties.jobType": "string",
    "properties.duration": "string", "properties.virtualMachineVersion": "string",
    "properties.entityFriendlyName": "string", "properties.backupManagementType": "string",
    "properties.operation": "string", "properties.status": "string", "properties.startTime": "string",
    "properties.activityId": "string",
}
GET_JOB_DETAILS = dict(RS_JOB_FIELDS, **{  # Common/GetJobDetails.json @ d3dece2679ea00a3c1fe6bfc3ab5d9730af0a150
    "properties.extendedInfo.tasksList[].taskId": "string", "properties.extendedInfo.tasksList[].duration": "string",
    "properties.extendedInfo.tasksList[].status": "string", "properties.extendedInfo.propertyBag": "object",
})
#: Common/ListJobsWithAllSupportedFilters.json @ 2d60d755b7e56b77e40e84731ede79461a7f5303
LIST_JOBS = {f"value[].{k}": v for k, v in RS_JOB_FIELDS.items()}
#: AzureIaasVm/RecoveryPoints_List.json @ d3dece2679ea00a3c1fe6bfc3ab5d9730af0a150
RS_POINTS = {f"value[].{k}": v for k, v in {
    "id": "string", "name": "string", "type": "string", "properties.objectType": "string",
    "properties.recoveryPointType": "string", "properties.recoveryPointTime": "string",
    "properties.recoveryPointAdditionalInfo": "string", "properties.sourceVMStorageType": "string",
    "properties.isSourceVMEncrypted": "boolean", "properties.isInstantIlrSessionActive": "boolean",
    "properties.recoveryPointTierDetails[].type": "string", "properties.recoveryPointTierDetails[].status": "string",
    "properties.recoveryPointMoveReadinessInfo": "object", "properties.isManagedVirtualMachine": "boolean",
    "properties.virtualMachineSize": "string", "properties.originalStorageAccountOption": "boolean",
}.items()}
#: JobCRUD/GetJob.json @ effada5d4819899eed3a04f6bdccd8ef29332761
DP_JOB = {"id": "string", "name": "string", "type": "string", **{f"properties.{k}": v for k, v in {
    "activityID": "string", "subscriptionId": "string", "backupInstanceId": "string", "policyId": "string",
    "dataSourceId": "string", "vaultName": "string", "backupInstanceFriendlyName": "string", "policyName": "string",
    "sourceResourceGroup": "string", "dataSourceSetName": "string", "dataSourceName": "string",
    "progressEnabled": "boolean", "sourceSubscriptionID": "string", "startTime": "string",
    "dataSourceType": "string", "operationCategory": "string", "operation": "string", "status": "string",
    "isUserTriggered": "boolean", "supportedActions": "array", "duration": "string", "dataSourceLocation": "string",
    "extendedInfo.subTasks[].taskId": "number", "extendedInfo.subTasks[].taskName": "string",
    "extendedInfo.subTasks[].taskStatus": "string", "extendedInfo.additionalDetails": "object",
}.items()}}
#: BackupInstanceOperations/ListRecoveryPoints.json @ 16c9ca7681ac3c81b41c6159d60e8bfabb32bc65
DP_POINTS = {f"value[].{k}": v for k, v in {
    "id": "string", "name": "string", "type": "string", "properties.objectType": "string",
    "properties.recoveryPointTime": "string", "properties.recoveryPointType": "string",
    "properties.friendlyName": "string", "properties.recoveryPointState": "string",
    "properties.recoveryPointDataStoresDetails[].id": "string",
    "properties.recoveryPointDataStoresDetails[].type": "string",
    "properties.recoveryPointDataStoresDetails[].creationTime": "string",
    "properties.recoveryPointDataStoresDetails[].metaData": "string",
}.items()}
#: TriggerBackup.json, TriggerRestoreAsFiles.json (200 after the LRO)
JOB_INFO = {"jobId": "string", "objectType": "string"}


def kind(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    return {dict: "object", list: "array", str: "string", int: "number", float: "number"}.get(type(value), "null")


def missing(body: Any, fields: dict[str, str]) -> list[str]:
    """Fields of ``fields`` absent from ``body`` or of another JSON type."""
    problems = []
    for path, wanted in fields.items():
        values = [body]
        for part in path.split("."):
            many = part.endswith("[]")
            key = part[:-2] if many else part
            nxt = []
            for value in values:
                if not isinstance(value, dict) or key not in value:
                    continue
                item = value[key]
                if many:
                    nxt += item if isinstance(item, list) else []
                else:
                    nxt.append(item)
            values = nxt
        if not values:
            problems.append(f"{path}: missing")
        problems += [f"{path}: {kind(v)} != {wanted}" for v in values if kind(v) != wanted]
    return problems


def test_the_shape_check_catches_missing_fields_and_wrong_types() -> None:
    fields = {"value[].a.b": "string", "c": "boolean"}
    assert missing({"value": [{"a": {"b": "x"}}], "c": True}, fields) == []
    assert missing({"value": [{"a": {}}], "c": "no"}, fields) == ["value[].a.b: missing", "c: string != boolean"]


@pytest.fixture(scope="module")
def sb() -> Iterator[ArmSandbox]:
    providers = ("resources", "authorization", "compute", "storage", "postgresql", "recoveryservices",
                 "recoveryservices_jobs", "dataprotection", "dataprotection_jobs")
    with ArmSandbox(SandboxConfig(scale=1.0, providers=providers, retry_after="azure")).start() as sandbox:
        sandbox.clock.set_scale(1e-9)  # only advance() moves Azure time: every LRO is observed mid-flight
        yield sandbox


@pytest.fixture(scope="module")
def arm(sb: ArmSandbox) -> RawArm:
    return RawArm(sb)


def call(arm: RawArm, method: str, path: str, api: str, body: Any = None) -> Answer:
    return arm.call(method, f"{arm.sb.endpoint}{path}?api-version={api}", body)


def follow(arm: RawArm, answer: Answer, seconds: float = 7200) -> Answer:
    """Documented LRO headers present; after ``seconds`` of Azure time the Location answers the result."""
    assert answer.status == 202, answer.body
    for header in ("location", "azure-asyncoperation", "retry-after"):
        assert answer.header(header), f"{header} missing"
    arm.sb.advance(seconds)
    return arm.call("GET", str(answer.header("location")))


def put_record(sb: ArmSandbox, rid: str, full_type: str, **extra: Any) -> None:
    sb.store.put({"id": rid, "name": rid.rsplit("/", 1)[-1], "type": full_type, "location": "westus", "tags": {},
                  **extra})


@pytest.fixture(scope="module")
def rs_item(sb: ArmSandbox, arm: RawArm) -> str:
    call(arm, "PUT", RG, "2024-11-01", {"location": "westus"})
    put_record(sb, DISK, "Microsoft.Compute/disks", sku={"name": "Standard_LRS"},
               properties={"diskSizeGB": 32, "provisioningState": "Succeeded"})
    put_record(sb, f"{RG}/providers/Microsoft.Compute/virtualMachines/vm1", "Microsoft.Compute/virtualMachines",
               properties={"storageProfile": {"osDisk": {"name": "disk1", "managedDisk": {"id": DISK}}}})
    put_record(sb, f"{RG}/providers/Microsoft.Storage/storageAccounts/stage", "Microsoft.Storage/storageAccounts",
               properties={})
    assert call(arm, "PUT", RSV, RS_API, {"location": "westus", "sku": {"name": "Standard"},
                                          "properties": {"publicNetworkAccess": "Enabled"}}).status in (200, 201)
    answer = call(arm, "PUT", RS_ITEM, RS_API, {"properties": {
        "protectedItemType": "Microsoft.Compute/virtualMachines",
        "sourceResourceId": f"{RG}/providers/Microsoft.Compute/virtualMachines/vm1",
        "policyId": f"{RSV}/backupPolicies/DefaultPolicy"}})
    assert answer.status == 202
    sb.advance(2 * 3600 + 120)  # configure + the first backup
    return RS_ITEM


def test_trigger_backup_post(arm: RawArm, rs_item: str) -> None:
    """Common/TriggerBackup_Post.json @ 2d60d755b7e56b77e40e84731ede79461a7f5303: 202 + LRO headers."""
    answer = call(arm, "POST", f"{rs_item}/backup", RS_API, {"properties": {"objectType": "IaasVMBackupRequest"}})
    status = arm.call("GET", str(answer.header("azure-asyncoperation")))
    assert status.body["properties"]["jobId"] == status.body["name"]
    done = follow(arm, answer)
    assert done.status in (200, 204)


def test_list_jobs_with_all_supported_filters_and_get_job_details(arm: RawArm, rs_item: str) -> None:
    del rs_item
    query = ("startTime eq '2000-01-01 00:00:00 AM' and endTime eq '2100-11-29 00:00:00 AM' and operation eq "
             "'Backup' and backupManagementType eq 'AzureIaasVM' and status eq 'Completed'")
    listed = arm.call("GET", f"{arm.sb.endpoint}{RSV}/backupJobs?api-version={RS_API}&$filter="
                             + query.replace(" ", "%20"))
    assert listed.status == 200 and listed.body["value"], listed.body
    assert missing(listed.body, LIST_JOBS) == []
    one = call(arm, "GET", f"{RSV}/backupJobs/{listed.body['value'][0]['name']}", RS_API)
    assert one.status == 200 and missing(one.body, GET_JOB_DETAILS) == []


def test_recovery_points_list_get_and_restore_disks(arm: RawArm, rs_item: str) -> None:
    listed = call(arm, "GET", f"{rs_item}/recoveryPoints", RS_API)
    assert listed.status == 200 and missing(listed.body, RS_POINTS) == []
    point = listed.body["value"][0]
    got = call(arm, "GET", f"{rs_item}/recoveryPoints/{point['name']}", RS_API)
    assert got.status == 200 and missing({"value": [got.body]}, RS_POINTS) == []
    # AzureIaasVm/TriggerRestore_RestoreDisks_IaasVMRestoreRequest.json @ 1ff4e03b33ef636b338e2bea608c253162353835
    body = {"properties": {"objectType": "IaasVMRestoreRequest", "recoveryPointId": point["name"],
                           "recoveryType": "RestoreDisks", "sourceResourceId":
                               f"{RG}/providers/Microsoft.Compute/virtualMachines/vm1",
                           "storageAccountId": f"{RG}/providers/Microsoft.Storage/storageAccounts/stage",
                           "region": "westus", "createNewCloudService": True, "originalStorageAccountOption": False,
                           "encryptionDetails": {"encryptionEnabled": False}, "targetResourceGroupId": RG}}
    answer = call(arm, "POST", f"{rs_item}/recoveryPoints/{point['name']}/restore", RS_API, body)
    assert follow(arm, answer, 60).status in (200, 204)
    job_id = arm.call("GET", str(answer.header("azure-asyncoperation"))).body["properties"]["jobId"]
    # Common/TriggerCancelJob.json @ 11aef454358bdd09317981aeed9d0679cfbac173: 202 + Location + Retry-After;
    # Common/CancelJobOperationResult.json @ 2d60d755b7e56b77e40e84731ede79461a7f5303: 202 while running, then 204
    cancel = call(arm, "POST", f"{RSV}/backupJobs/{job_id}/cancel", RS_API)
    assert cancel.status == 202 and cancel.header("location") and cancel.header("retry-after")
    assert f"/backupJobs/{job_id}/operationResults/" in str(cancel.header("location"))
    assert arm.call("GET", str(cancel.header("location"))).status == 202
    arm.sb.advance(120)
    assert arm.call("GET", str(cancel.header("location"))).status == 204
    assert call(arm, "GET", f"{RSV}/backupJobs/{job_id}", RS_API).body["properties"]["status"] == "Cancelled"


@pytest.fixture(scope="module")
def dp_instance(sb: ArmSandbox, arm: RawArm, rs_item: str) -> str:
    del rs_item  # the group and the disk
    created = call(arm, "PUT", BV, DP_API, {"location": "westus", "identity": {"type": "SystemAssigned"},
                                            "properties": {"storageSettings": [{"datastoreType": "VaultStore",
                                                                                "type": "LocallyRedundant"}]}})
    assert created.status in (200, 201), created.body
    sb.advance(120)
    principal = call(arm, "GET", BV, DP_API).body["identity"]["principalId"]
    for role, scope in (("3e5e47e6-65f7-47ef-90b5-e5dd4d455f24", DISK), ("7efff54f-a5b4-42b5-a1c5-5411624893ce", RG)):
        answer = call(arm, "PUT", f"{scope}/providers/Microsoft.Authorization/roleAssignments/{role}", "2022-04-01",
                      {"properties": {"roleDefinitionId": f"/subscriptions/{SUB}/providers/Microsoft.Authorization/"
                                                          f"roleDefinitions/{role}", "principalId": principal}})
        assert answer.status in (200, 201), answer.body
    rule = {"name": "BackupHourly", "objectType": "AzureBackupRule",
            "backupParameters": {"objectType": "AzureBackupParams", "backupType": "Incremental"},
            "dataStore": {"dataStoreType": "OperationalStore", "objectType": "DataStoreInfoBase"},
            "trigger": {"objectType": "ScheduleBasedTriggerContext",
                        "schedule": {"repeatingTimeIntervals": ["R/2021-01-01T02:00:00+00:00/PT4H"]},
                        "taggingCriteria": [{"isDefault": True, "taggingPriority": 99,
                                             "tagInfo": {"tagName": "Default"}}]}}
    retention = {"name": "Default", "objectType": "AzureRetentionRule", "isDefault": True, "lifecycles": [
        {"deleteAfter": {"objectType": "AbsoluteDeleteOption", "duration": "P7D"},
         "sourceDataStore": {"dataStoreType": "OperationalStore", "objectType": "DataStoreInfoBase"}}]}
    policy = call(arm, "PUT", f"{BV}/backupPolicies/p", DP_API, {"properties": {
        "objectType": "BackupPolicy", "datasourceTypes": ["Microsoft.Compute/disks"],
        "policyRules": [rule, retention]}})
    assert policy.status == 200, policy.body
    instance = call(arm, "PUT", f"{BV}/backupInstances/bi", DP_API, {"properties": {
        "objectType": "BackupInstance",
        "dataSourceInfo": {"objectType": "Datasource", "resourceID": DISK, "resourceType": "Microsoft.Compute/disks",
                           "datasourceType": "Microsoft.Compute/disks", "resourceLocation": "westus"},
        "policyInfo": {"policyId": f"{BV}/backupPolicies/p", "policyParameters": {"dataStoreParametersList": [
            {"objectType": "AzureOperationalStoreParameters", "dataStoreType": "OperationalStore",
             "resourceGroupId": RG}]}}}})
    assert instance.status == 201, instance.body
    sb.advance(6 * 3600)
    return f"{BV}/backupInstances/bi"


def test_trigger_backup_and_get_job(arm: RawArm, dp_instance: str) -> None:
    """BackupInstanceOperations/TriggerBackup.json @ 16c9ca7681ac3c81b41c6159d60e8bfabb32bc65."""
    answer = call(arm, "POST", f"{dp_instance}/backup", DP_API,
                  {"backupRuleOptions": {"ruleName": "BackupHourly", "triggerOption": {"retentionTagOverride": "x"}}})
    result = follow(arm, answer, 60)
    assert result.status == 200 and missing(result.body, JOB_INFO) == []
    job = call(arm, "GET", f"{BV}/backupJobs/{result.body['jobId']}", DP_API)
    assert job.status == 200 and missing(job.body, DP_JOB) == [], json.dumps(job.body)[:400]
    listed = call(arm, "GET", f"{BV}/backupJobs", DP_API)
    assert listed.status == 200 and missing(listed.body, {f"value[].{k}": v for k, v in DP_JOB.items()}) == []


def test_list_recovery_points_validate_restore_and_restore(sb: ArmSandbox, arm: RawArm, dp_instance: str) -> None:
    # the vault's identity restores: Disk Restore Operator on the target group (backup/restore-managed-disks.md),
    # effective once propagated
    vault_identity = str(sb.store.get(BV)["identity"]["principalId"])
    grant_built_in_role(sb.store, vault_identity, "Disk Restore Operator", RG, sb.clock.now())
    sb.advance(600)
    listed = call(arm, "GET", f"{dp_instance}/recoveryPoints", DP_API)
    assert listed.status == 200 and missing(listed.body, DP_POINTS) == []
    point = listed.body["value"][0]["name"]
    request = {"objectType": "AzureBackupRecoveryPointBasedRestoreRequest", "recoveryPointId": point,
               "sourceDataStoreType": "OperationalStore", "sourceResourceId": DISK,
               "restoreTargetInfo": {"objectType": "RestoreTargetInfo", "recoveryOption": "FailIfExists",
                                     "restoreLocation": "westus",
                                     "datasourceInfo": {"objectType": "Datasource", "resourceID": f"{DISK}-restored",
                                                        "datasourceType": "Microsoft.Compute/disks"}}}
    # BackupInstanceOperations/ValidateRestore.json @ 082545102d7c9f4e428ba85e72c1d73785555863
    validated = follow(arm, call(arm, "POST", f"{dp_instance}/validateRestore", DP_API,
                                 {"restoreRequestObject": request}), 60)
    assert validated.status == 200 and validated.body["objectType"] == "OperationJobExtendedInfo"
    # BackupInstanceOperations/TriggerRestoreAsFiles.json @ d5f408d719e9db2b367b67453ff48881d41a419b (headers)
    accepted = call(arm, "POST", f"{dp_instance}/restore", DP_API, request)
    restored = follow(arm, accepted, 60)
    assert restored.status == 200 and missing(restored.body, JOB_INFO) == []
    # the status names the job by its ARM id once Succeeded (captured in backup-azure-dataprotection-use-rest-api-
    # restore-disks.md, "Track the Azure-AsyncOperation header")
    status = arm.call("GET", str(accepted.header("azure-asyncoperation")))
    assert status.body["status"] == "Succeeded"
    assert status.body["properties"] == {"jobId": f"{BV}/backupJobs/{restored.body['jobId']}",
                                         "objectType": "OperationJobExtendedInfo"}
    stores = {d["type"] for p in listed.body["value"] for d in p["properties"]["recoveryPointDataStoresDetails"]}
    assert stores == {"OperationalStore"}  # as Azure names them, not the example's "Snapshot"


def test_a_restore_without_the_specs_required_properties_is_refused(arm: RawArm, dp_instance: str) -> None:
    """RestoreTargetInfoBase.recoveryOption, TargetDetails.filePrefix/url/restoreTargetLocationType and the
    request's recoveryPointId are required (S-DP 2025-07-01); the sandbox used to accept a request without them."""
    point = call(arm, "GET", f"{dp_instance}/recoveryPoints", DP_API).body["value"][0]["name"]
    target = {"objectType": "RestoreTargetInfo", "restoreLocation": "westus",
              "datasourceInfo": {"objectType": "Datasource", "resourceID": f"{DISK}-norecoveryoption",
                                 "datasourceType": "Microsoft.Compute/disks"}}
    request = {"objectType": "AzureBackupRecoveryPointBasedRestoreRequest", "recoveryPointId": point,
               "sourceDataStoreType": "OperationalStore", "sourceResourceId": DISK, "restoreTargetInfo": target}
    refused = call(arm, "POST", f"{dp_instance}/restore", DP_API, request)
    assert refused.status == 400 and "restoreTargetInfo.recoveryOption" in json.dumps(refused.body)
    files = dict(request, restoreTargetInfo={"objectType": "RestoreFilesTargetInfo", "recoveryOption": "FailIfExists",
                                             "targetDetails": {"url": "https://stage.blob.core.windows.net/c"}})
    refused = call(arm, "POST", f"{dp_instance}/restore", DP_API, dict(files, recoveryPointId=""))
    said = json.dumps(refused.body)
    assert refused.status == 400 and "recoveryPointId" in said and "targetDetails.filePrefix" in said


PG = f"{RG}/providers/Microsoft.DBforPostgreSQL/flexibleServers/pg1"


@pytest.fixture(scope="module")
def pg_instance(sb: ArmSandbox, arm: RawArm, dp_instance: str) -> str:
    """A PostgreSQL flexible server in vaulted backup (the Backup vault and group of ``dp_instance``)."""
    del dp_instance
    put_record(sb, PG, "Microsoft.DBforPostgreSQL/flexibleServers", properties={"state": "Ready"})
    principal = str(sb.store.get(BV)["identity"]["principalId"])
    now = sb.clock.now()
    grant_built_in_role(sb.store, principal, "PostgreSQL Flexible Server Long Term Retention Backup Role", PG, now)
    grant_built_in_role(sb.store, principal, "Reader", RG, now)
    sb.advance(600)
    store = {"dataStoreType": "VaultStore", "objectType": "DataStoreInfoBase"}
    policy = call(arm, "PUT", f"{BV}/backupPolicies/pg", DP_API, {"properties": {
        "objectType": "BackupPolicy", "datasourceTypes": ["Microsoft.DBforPostgreSQL/flexibleServers"],
        "policyRules": [
            {"name": "BackupDaily", "objectType": "AzureBackupRule",
             "backupParameters": {"objectType": "AzureBackupParams", "backupType": "Full"}, "dataStore": store,
             "trigger": {"objectType": "ScheduleBasedTriggerContext",
                         "schedule": {"repeatingTimeIntervals": ["R/2021-01-01T02:00:00+00:00/P1D"]},
                         "taggingCriteria": [{"isDefault": True, "taggingPriority": 99,
                                              "tagInfo": {"tagName": "Default"}}]}},
            {"name": "Default", "objectType": "AzureRetentionRule", "isDefault": True, "lifecycles": [
                {"deleteAfter": {"objectType": "AbsoluteDeleteOption", "duration": "P30D"},
                 "sourceDataStore": store}]}]}})
    assert policy.status == 200, policy.body
    made = call(arm, "PUT", f"{BV}/backupInstances/pg", DP_API, {"properties": {
        "objectType": "BackupInstance",
        "dataSourceInfo": {"objectType": "Datasource", "resourceID": PG, "resourceName": "pg1",
                           "resourceType": "Microsoft.DBforPostgreSQL/flexibleServers",
                           "datasourceType": "Microsoft.DBforPostgreSQL/flexibleServers", "resourceLocation": "westus"},
        "policyInfo": {"policyId": f"{BV}/backupPolicies/pg"}}})
    assert made.status == 201, made.body
    sb.advance(3 * 24 * 3600)
    return f"{BV}/backupInstances/pg"


def test_trigger_restore_as_files_example(sb: ArmSandbox, arm: RawArm, pg_instance: str) -> None:
    """BackupInstanceOperations/TriggerRestoreAsFiles.json @ d5f408d719e9db2b367b67453ff48881d41a419b: the
    example's request (its recovery point, source and region swapped for the sandbox's) into the example's
    container ``https://teststorage.blob.core.windows.net/restoretest``: 202 + LRO headers, then 200
    OperationJobExtendedInfo. The container must exist and the vault's identity needs Storage Blob Data Contributor
    on the account (docs/azure-facts.md)."""
    points = call(arm, "GET", f"{pg_instance}/recoveryPoints", DP_API).body["value"]
    assert points and {d["type"] for p in points for d in p["properties"]["recoveryPointDataStoresDetails"]} == \
        {"VaultStore"}
    account = f"{RG}/providers/Microsoft.Storage/storageAccounts/teststorage"
    put_record(sb, account, "Microsoft.Storage/storageAccounts", properties={})
    request = {"objectType": "AzureBackupRecoveryPointBasedRestoreRequest", "recoveryPointId": points[0]["name"],
               "sourceDataStoreType": "VaultStore", "sourceResourceId": PG,
               "restoreTargetInfo": {"targetDetails": {"url": "https://teststorage.blob.core.windows.net/restoretest",
                                                       "filePrefix": "restoredblob",
                                                       "restoreTargetLocationType": "AzureBlobs"},
                                     "restoreLocation": "westus", "recoveryOption": "FailIfExists",
                                     "objectType": "RestoreFilesTargetInfo"}}
    principal = str(sb.store.get(BV)["identity"]["principalId"])
    grant_built_in_role(sb.store, principal, "Storage Blob Data Contributor", account, sb.clock.now())
    sb.advance(600)
    missing_container = call(arm, "POST", f"{pg_instance}/restore", DP_API, request)
    assert missing_container.status == 404 and "restoretest" in json.dumps(missing_container.body)
    made = call(arm, "PUT", f"{account}/blobServices/default/containers/restoretest", "2023-05-01", {"properties": {}})
    assert made.status in (200, 201), made.body
    restored = follow(arm, call(arm, "POST", f"{pg_instance}/restore", DP_API, request), 60)
    assert restored.status == 200 and missing(restored.body, JOB_INFO) == []
    job = call(arm, "GET", f"{BV}/backupJobs/{restored.body['jobId']}", DP_API)
    assert job.status == 200 and job.body["properties"]["operation"] == "Restore"
