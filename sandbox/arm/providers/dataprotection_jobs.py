"""Backup vault backups that happen: scheduled and ad hoc backups, jobs, recovery points, restore validation and
restores (Microsoft.DataProtection, api-version 2025-07-01).

Extends :mod:`dataprotection` without touching its routes; reads its vaults, policies and backup instances from
the shared store. Shapes from the S-DP 2025-07-01 examples (``specification/dataprotection/resource-manager/
Microsoft.DataProtection/stable/2025-07-01/examples/``); rules and sources in docs/azure-facts.md ("Backups, jobs,
recovery points and restores"). ``BI`` = ``.../backupVaults/{v}/backupInstances/{bi}``.

==============================================  ==============================================================
operation                                       answer
==============================================  ==============================================================
POST BI/backup                                  202 + Location ``{group}/providers/Microsoft.DataProtection/
                                                backupInstances/{bi}/operationResults/{id}`` + Azure-AsyncOperation
                                                ``{vault}/operationStatus/{id}`` + Retry-After 60; the result is
                                                ``{"jobId", "objectType": "OperationJobExtendedInfo"}``
                                                (BackupInstanceOperations/TriggerBackup)
POST BI/validateRestore                         202 + Location ``{group}/providers/Microsoft.DataProtection/
                                                operationResults/{id}`` + Azure-AsyncOperation (ValidateRestore);
                                                a problem ends the operation Failed with the error
POST BI/restore                                 202 + the headers of TriggerBackup (TriggerRestoreAsFiles); the
                                                result names the restore job; a problem is a synchronous 400
GET BI/recoveryPoints[/{rp}]                    200 (ListRecoveryPoints, GetRecoveryPoint)
GET {vault}/backupJobs[/{jobId}]                200 (JobCRUD/ListJobs, GetJob)
==============================================  ==============================================================

Sources: D-diskmx = ``backup/disk-backup-overview.md`` / ``restore-managed-disks*.md`` ("the Original-Location
Recovery (OLR) option ... isn't supported"); D-pgflex = ``backup/backup-azure-database-postgresql-flex-support-
matrix.md`` (restored "in user specified storage containers"); D-blob = ``backup/blob-backup-overview.md``
(operational data "stored locally within the source storage account"); PS-man = Azure/azure-powershell
``src/DataProtection/DataProtection.Autorest/custom/manifests/{AzureDisk,AzureBlob,AzureDatabaseForPGFlexServer}.json``
(``allowedRestoreTargetTypes``, ``supportedDatastoreTypes``); D-blobrestore = ``backup/blob-restore.md``, vaulted
tab (restores only to another storage account; the vault needs Storage Account Backup Contributor on it); D-blobrest =
``includes/blob-vaulted-backup-restore-restapi.md`` (the vaulted request: ``ItemLevelRestoreTargetInfo``,
``ItemPathBasedRestoreCriteria`` with the container in ``itemPath``, the target account in ``datasourceInfo``);
D-blobtrouble = ``backup/backup-azure-troubleshoot-blob-backup.md`` (the blob restore error codes and messages). Codes
are INFERRED unless the examples or D-blobtrouble show them.

Restore permissions of the VAULT's identity on the target are checked (validateRestore fails, restore answers 400,
``UserErrorMissingRequiredPermissions`` as for validateForBackup): Disk Restore Operator on the target resource
group of a disk (``backup/restore-managed-disks.md``: "Assign Disk Restore Operator role to Backup Vault's managed
identity on the Resource group where the disk is to be restored"; validation "may fail if ... Backup vault managed
identity does not have valid role assignments on the Target resource group"), Storage Blob Data Contributor on the
target account of PostgreSQL files (PS-man AzureDatabaseForPGFlexServer.json ``storageAccountPermissionsForRestore``),
Storage Account Backup Contributor on the target account of a vaulted blob restore (D-blobrestore),
through assignments that have propagated. The code on the restore route is **inferred**.

Limits: jobs and recovery points live in memory (not in ``--state`` snapshots); an operational blob restore records
the restore on the account, a vaulted one creates the restored containers (ARM resources) in the target account (no
blob contents are modelled); no Cross Region Restore.

Sandbox controls (Python): :func:`data_protection_jobs` (sandbox) -> ``.timing``, ``.book.fail_next(vault_id,
"Restore", code, message)``, ``.restored(job_id)``.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from sandbox.arm.context import ProviderContext
from sandbox.arm.errors import ArmError, not_found
from sandbox.arm.http import Request, Response, ok
from sandbox.arm.ids import id_key, parse_id
from sandbox.arm.providers import _backups as bk
from sandbox.arm.providers.authorization_model import RoleAssignments
from sandbox.arm.providers.dataprotection import (
    API_VERSIONS,
    GROUP,
    INSTANCE_TYPE,
    NAMESPACE,
    STATUS_PROPERTIES,
    VAULT,
    VAULT_TYPE,
)
from sandbox.arm.providers.dataprotection_rules import BLOB, DISK, PG_FLEX, same_location
from sandbox.arm.providers.storage import CONTAINER_TYPE
from sandbox.arm.routing import Router

PROVIDER = NAMESPACE
BI = VAULT + "/backupInstances/{backupInstanceName}"
JOB_TYPE = "Microsoft.DataProtection/Backupvaults/backupJobs"  # spelled as GetJob.json spells it
RP_TYPE = "microsoft.dataprotection/backupvaults/backupInstances/recoveryPoints"  # as ListRecoveryPoints.json
CONFIGURED = "ProtectionConfigured"
#: error codes. INFERRED (Azure's codes for these refusals are not published; the refusals are cited)
INVALID = "UserErrorInvalidRequestParameter"
RP_NOT_FOUND = "UserErrorRecoveryPointNotFound"
RULE_NOT_FOUND = "UserErrorBackupRuleNotFound"
NOT_PROTECTED = "UserErrorBackupInstanceNotProtected"
OLR_NOT_SUPPORTED = "UserErrorOriginalLocationRestoreNotSupported"
ALR_NOT_SUPPORTED = "UserErrorAlternateLocationRestoreNotSupported"
TARGET_EXISTS = "UserErrorTargetResourceAlreadyExists"
WRONG_REGION = "UserErrorRestoreLocationNotSupported"
TARGET_NOT_FOUND = "UserErrorTargetNotFound"
STORE_NOT_IN_POINT = "UserErrorDataStoreNotAvailable"
NOT_MODELLED = "SandboxNotModelled"
MISSING_PERMISSIONS = "UserErrorMissingRequiredPermissions"  # documented for validateForBackup (D-diskrest)
#: a vaulted blob restore's refusals, codes and messages DOCUMENTED (D-blobtrouble): an existing container of a
#: restored name on the target, no container named, more containers than a restore takes (100: D-blobrestore,
#: "select up to 100 containers to restore"; that the REST limit is the portal's is INFERRED)
CONTAINERS_EXIST = "UserErrorTargetContainersExistOnAccount"
NO_CONTAINERS = "UserErrorNoContainersSelectedForOperation"
TOO_MANY_CONTAINERS = "UserErrorTooManyRestoreCriteriaGivenForBlobRestore"
RESTORE_CONTAINERS_MAX = 100


@dataclass
class Point:
    name: str
    time: datetime
    stores: tuple[str, ...]  # OperationalStore / VaultStore
    facts: dict[str, Any]  # what the datasource was at backup time (size, sku, location)
    expiry: datetime | None


@dataclass
class Ledger:
    points: list[Point] = field(default_factory=list)
    scheduled_through: datetime | None = None
    started: bool = False  # scheduling began once: a resumed instance starts from its resumption


class DataProtectionJobs:
    def __init__(self, ctx: ProviderContext) -> None:
        self.ctx = ctx
        self.store = ctx.store
        self.lock = threading.RLock()
        self.timing = bk.BackupTiming()
        self.book = bk.JobBook(done_status="Completed", failed_status="Failed")
        self.ledgers: dict[str, Ledger] = {}  # instance id key
        self.created: dict[str, list[str]] = {}
        self.waker = bk.Waker(ctx, self.settle)
        self.roles = RoleAssignments(ctx.store, now=ctx.clock.now,
                                     propagation_seconds=lambda: ctx.propagation.rbac_seconds)

    # -- time ------------------------------------------------------------------------------------------
    def settle(self) -> None:
        with self.lock:
            now = self.ctx.clock.now()
            for instance in self.store.list(resource_type=INSTANCE_TYPE):
                self._schedule(instance, now)
            self.book.settle(now)
            self.waker.ensure(self.book.next_end())

    def ledger(self, instance_id: str) -> Ledger:
        key = id_key(instance_id)
        found = self.ledgers.get(key)
        if found is None:
            found = self.ledgers[key] = Ledger()
        return found

    def _schedule(self, instance: dict[str, Any], now: datetime) -> None:
        props = instance.get("properties") or {}
        ledger = self.ledger(instance["id"])
        if props.get("currentProtectionState") != CONFIGURED:
            ledger.scheduled_through = None
            return
        if ledger.scheduled_through is None:
            created = (instance.get("systemData") or {}).get("createdAt")
            ledger.scheduled_through = bk.parse_iso(created) if created and not ledger.started else now
            ledger.started = True
        for rule, store, moment in self._due_runs(instance, ledger.scheduled_through, now):
            self._start_backup(instance, rule, store, moment, user=False)
        ledger.scheduled_through = now

    def _policy(self, instance: dict[str, Any]) -> dict[str, Any] | None:
        policy_id = str(((instance.get("properties") or {}).get("policyInfo") or {}).get("policyId") or "")
        return self.store.get(policy_id) if policy_id else None

    def backup_rules(self, instance: dict[str, Any]) -> list[dict[str, Any]]:
        policy = self._policy(instance) or {}
        rules = (policy.get("properties") or {}).get("policyRules") or []
        return [r for r in rules if str(r.get("objectType", "")).lower() == "azurebackuprule"]

    def _due_runs(self, instance: dict[str, Any], after: datetime, until: datetime) -> list[tuple[str, str, datetime]]:
        """(rule, data store, instant) of every scheduled run in (after, until]: AzureBackupRule ->
        trigger.schedule.repeatingTimeIntervals ``R/<start>/<period>`` (CreateOrUpdateBackupPolicy)."""
        runs = []
        for rule in self.backup_rules(instance):
            store = str((rule.get("dataStore") or {}).get("dataStoreType") or "VaultStore")
            schedule = ((rule.get("trigger") or {}).get("schedule") or {})
            for interval in schedule.get("repeatingTimeIntervals") or []:
                try:
                    anchor, period = bk.parse_repeating_interval(str(interval))
                except ValueError:
                    continue
                runs += [(str(rule.get("name")), store, m) for m in bk.interval_occurrences(anchor, period, after,
                                                                                            until)]
        return sorted(runs, key=lambda r: r[2])

    # -- backups ---------------------------------------------------------------------------------------
    def _start_backup(self, instance: dict[str, Any], rule: str, store: str, start: datetime, *, user: bool,
                      job_id: str | None = None) -> bk.Job:
        props = instance["properties"]
        info = props.get("dataSourceInfo") or {}
        kind = str(info.get("datasourceType") or "").lower()
        end = start + timedelta(seconds=self.timing.dp_backup.get(kind, 600.0))
        vault_id = instance["id"].rsplit("/backupInstances/", 1)[0]
        job = self.book.add(bk.Job(id=job_id or bk.new_job_id(), vault_id=vault_id, operation="Backup",
                                   entity=str(props.get("friendlyName") or info.get("resourceName") or ""),
                                   start=start, end=end, user_triggered=user))
        job.details.update({"instanceId": instance["id"], "rule": rule, "store": store})
        instance_id = instance["id"]

        def done(finished: bk.Job) -> None:
            current = self.store.get(instance_id)
            if current is None or current["properties"].get("currentProtectionState") != CONFIGURED:
                raise bk.JobFailed("UserErrorBackupInstanceNotFound", "The backup instance is no longer protected.")
            source = self.store.get(str(info.get("resourceID") or ""))
            if source is None:
                raise bk.JobFailed("UserErrorDatasourceNotFound",  # INFERRED code: the datasource was deleted
                                   f"The datasource '{info.get('resourceID')}' no longer exists.")
            facts = _facts(source)
            if kind == BLOB.lower():  # the containers this vaulted backup copied (the instance's list then)
                facts["containers"] = _listed_containers(current)
            point = Point(name=bk.new_job_id(), time=finished.start, stores=(store,), facts=facts, expiry=None)
            self.ledger(instance_id).points.append(point)
            finished.details["recoveryPoint"] = point.name

        job.on_done = done
        if end > self.ctx.clock.now():
            self.waker.ensure(end)
        return job

    # -- requests ----------------------------------------------------------------------------------------
    @staticmethod
    def vault_id(req: Request) -> str:
        p = req.params
        return (f"/subscriptions/{p['subscriptionId']}/resourceGroups/{p['resourceGroupName']}"
                f"/providers/Microsoft.DataProtection/backupVaults/{p['vaultName']}")

    def require_vault(self, req: Request) -> dict[str, Any]:
        vault = self.store.get(self.vault_id(req))
        if vault is None or str(vault.get("type", "")).lower() != VAULT_TYPE.lower():
            raise not_found(self.vault_id(req), VAULT_TYPE)
        return vault

    def require_instance(self, req: Request) -> tuple[dict[str, Any], dict[str, Any]]:
        vault = self.require_vault(req)
        instance_id = f"{vault['id']}/backupInstances/{req.params['backupInstanceName']}"
        record = self.store.get(instance_id)
        if record is None:
            raise not_found(instance_id, INSTANCE_TYPE)
        return vault, record

    def _accept(self, req: Request, vault: dict[str, Any], result: dict[str, Any], *,
                seconds: float, fail_with: ArmError | None = None, location: str | None = None) -> Response:
        p = req.params
        group = f"/subscriptions/{p['subscriptionId']}/resourceGroups/{p['resourceGroupName']}"
        op = self.ctx.operations.begin(
            req, duration=seconds, complete=lambda: result, fail_with=fail_with,
            async_url=f"{vault['id']}/operationStatus/{{operationId}}",
            location_url=location or (f"{group}/providers/Microsoft.DataProtection/backupInstances/"
                                      f"{p['backupInstanceName']}/operationResults/{{operationId}}"),
            retry_after=self.timing.retry_after)
        if result.get("jobId"):
            # the Succeeded operation status names the job by its full ARM id in ``properties.jobId`` (the
            # restore's status captured in backup-azure-dataprotection-use-rest-api-restore-disks.md, "Track the
            # Azure-AsyncOperation header"); the Location's 200 body keeps the bare id (TriggerRestoreAsFiles.json)
            op.extra[STATUS_PROPERTIES] = {"jobId": f"{vault['id']}/backupJobs/{result['jobId']}",
                                           "objectType": "OperationJobExtendedInfo"}
        return self.ctx.operations.accept(op, 202)

    def adhoc_backup(self, req: Request) -> Response:
        with self.lock:
            self.settle()
            vault, instance = self.require_instance(req)
            body = req.json_object()
            options = body.get("backupRuleOptions")
            rule = options.get("ruleName") if isinstance(options, dict) else None
            if not rule:
                # TriggerBackupRequest.backupRuleOptions and AdHocBackupRuleOptions.ruleName are required (S-DP)
                raise ArmError(400, INVALID, "backupRuleOptions.ruleName is required (TriggerBackup).")
            if instance["properties"].get("currentProtectionState") != CONFIGURED:
                raise ArmError(400, NOT_PROTECTED, "An on-demand backup needs a backup instance whose protection is "
                                                   f"configured; this one is "
                                                   f"'{instance['properties'].get('currentProtectionState')}'.")
            rules = {str(r.get("name")).lower(): r for r in self.backup_rules(instance)}
            chosen = rules.get(str(rule).lower())
            if chosen is None:
                raise ArmError(400, RULE_NOT_FOUND, f"The policy has no backup rule named '{rule}' (rules: "
                                                    f"{sorted(str(r.get('name')) for r in rules.values())}).")
            store = str((chosen.get("dataStore") or {}).get("dataStoreType") or "VaultStore")
            job = self._start_backup(instance, str(chosen.get("name")), store, self.ctx.clock.now(), user=True)
            result = {"jobId": job.id, "objectType": "OperationJobExtendedInfo"}
            return self._accept(req, vault, result, seconds=self.timing.trigger_operation)

    def validate_restore(self, req: Request) -> Response:
        with self.lock:
            self.settle()
            vault, instance = self.require_instance(req)
            body = req.json_object()
            request = body.get("restoreRequestObject")
            if not isinstance(request, dict):
                raise ArmError(400, INVALID, "restoreRequestObject is required (ValidateRestore).")
            problem: ArmError | None = None
            try:
                self._check_restore(vault, instance, request)
            except ArmError as exc:
                problem = exc
            p = req.params
            location = (f"/subscriptions/{p['subscriptionId']}/resourceGroups/{p['resourceGroupName']}/providers/"
                        "Microsoft.DataProtection/operationResults/{operationId}")
            return self._accept(req, vault, {"objectType": "OperationJobExtendedInfo"},
                                seconds=self.timing.validate_restore, fail_with=problem, location=location)

    def restore(self, req: Request) -> Response:
        with self.lock:
            self.settle()
            vault, instance = self.require_instance(req)
            request = req.json_object()
            plan = self._check_restore(vault, instance, request)
            kind = str((instance["properties"].get("dataSourceInfo") or {}).get("datasourceType") or "").lower()
            now = self.ctx.clock.now()
            end = now + timedelta(seconds=self.timing.dp_restore.get(kind, 1800.0))
            job = self.book.add(bk.Job(id=bk.new_job_id(), vault_id=vault["id"], operation="Restore",
                                       entity=str(instance["properties"].get("friendlyName") or ""),
                                       start=now, end=end, user_triggered=True))
            job.details.update({"instanceId": instance["id"], "plan": plan})
            job.on_done = lambda finished: self._restored(finished, plan)
            self.waker.ensure(end)
            return self._accept(req, vault, {"jobId": job.id, "objectType": "OperationJobExtendedInfo"},
                                seconds=self.timing.trigger_operation)

    # -- restore rules -------------------------------------------------------------------------------------
    def _check_restore(self, vault: dict[str, Any], instance: dict[str, Any],
                       request: dict[str, Any]) -> dict[str, Any]:
        """What the restore will create, or the ArmError Azure answers (docs/azure-facts.md, restores)."""
        kind = str(request.get("objectType") or "")
        info = instance["properties"].get("dataSourceInfo") or {}
        source_id = str(info.get("resourceID") or "")
        datasource_type = str(info.get("datasourceType") or "").lower()
        store = str(request.get("sourceDataStoreType") or "")
        if store.lower() not in ("operationalstore", "vaultstore", "archivestore"):
            raise ArmError(400, INVALID, "sourceDataStoreType must be OperationalStore, VaultStore or ArchiveStore.")
        target = request.get("restoreTargetInfo")
        if not isinstance(target, dict) or not target.get("objectType"):
            raise ArmError(400, INVALID, "restoreTargetInfo with an objectType is required.")
        target_kind = str(target["objectType"]).lower()
        missing = _missing_required(request, target, target_kind)
        if missing:
            # required by the spec (S-DP 2025-07-01 AzureBackupRecoveryPointBasedRestoreRequest, RestoreTargetInfoBase,
            # RestoreTargetInfo, RestoreFilesTargetInfo, TargetDetails; "Required" in azure-mgmt-dataprotection's
            # models generated from it); Azure's answer to a request without them (code, sync vs async) is INFERRED
            raise ArmError(400, INVALID, f"The restore request lacks required properties: {', '.join(missing)}.")
        location = str(target.get("restoreLocation") or "")
        if kind.lower() == "azurebackuprecoverypointbasedrestorerequest":
            point = self._point(instance, str(request.get("recoveryPointId") or ""))
            if not any(s.lower() == store.lower() for s in point.stores):
                raise ArmError(400, STORE_NOT_IN_POINT, f"Recovery point '{point.name}' has no copy in {store} "
                                                        f"(it is in {', '.join(point.stores)}).")
            facts, point_name = point.facts, point.name
        elif kind.lower() == "azurebackuprecoverytimebasedrestorerequest":
            if datasource_type != BLOB.lower():
                raise ArmError(400, INVALID, "a time-based restore applies to continuous (operational) backups.")
            facts, point_name = _facts(self.store.get(source_id) or {}), str(request.get("recoveryPointTime") or "")
        else:
            raise ArmError(400, INVALID, f"objectType '{kind}' is not a restore request this API takes "
                                         "(AzureBackupRecoveryPointBasedRestoreRequest, "
                                         "AzureBackupRecoveryTimeBasedRestoreRequest).")
        plan: dict[str, Any] = {"sourceId": source_id, "recoveryPoint": point_name, "facts": facts,
                                "instanceId": instance["id"]}
        if datasource_type == DISK.lower():
            return self._disk_plan(vault, source_id, target, target_kind, location=location, plan=plan)
        if datasource_type == PG_FLEX.lower():
            return self._files_plan(vault, target, target_kind, location=location, plan=plan,
                                    what="a PostgreSQL flexible server")
        if datasource_type == BLOB.lower():
            return self._blob_plan(vault, source_id, store, target, target_kind=target_kind, plan=plan)
        raise ArmError(400, NOT_MODELLED, f"restore of '{datasource_type}' is not modelled by the sandbox")

    def _disk_plan(self, vault: dict[str, Any], source_id: str, target: dict[str, Any], target_kind: str, *,
                   location: str, plan: dict[str, Any]) -> dict[str, Any]:
        if target_kind != "restoretargetinfo":
            raise ArmError(400, INVALID, "a disk restores as a new disk: restoreTargetInfo.objectType must be "
                                         "RestoreTargetInfo.")
        new_id = str((target.get("datasourceInfo") or {}).get("resourceID") or "")
        if not new_id or parse_id(new_id).full_type.lower() != DISK.lower():
            raise ArmError(400, INVALID, "restoreTargetInfo.datasourceInfo.resourceID must name the new disk.")
        if id_key(new_id) == id_key(source_id):
            # D-diskmx: "Original-Location Recovery (OLR) ... isn't supported"; restore creates a new disk
            raise ArmError(400, OLR_NOT_SUPPORTED, "A disk backup restores as a new disk only; replacing the source "
                                                   "disk (original-location recovery) isn't supported.")
        if self.store.exists(new_id):
            raise ArmError(409, TARGET_EXISTS, f"The target disk '{new_id}' already exists.")
        if location and not same_location(location, str(vault.get("location", ""))):
            # INFERRED: the restored disk is created in the vault's (= the source disk's, D-diskmx) region; no
            # cross-region restore for disks (PS-man AzureDisk.json supportCrossRegionRestore false)
            raise ArmError(400, WRONG_REGION, f"restoreLocation '{location}' differs from the vault's region "
                                              f"'{vault.get('location')}'.")
        group = parse_id(new_id).resource_group_id or ""
        if not self.store.exists(group):
            raise ArmError(404, TARGET_NOT_FOUND, f"The target resource group '{group}' was not found.")
        self._require_vault_role(vault, "Disk Restore Operator", group, "the target resource group")
        return dict(plan, kind="disk", targetId=new_id, location=location or vault.get("location"))

    def _files_plan(self, vault: dict[str, Any], target: dict[str, Any], target_kind: str, *, location: str,
                    plan: dict[str, Any], what: str) -> dict[str, Any]:
        if target_kind != "restorefilestargetinfo":
            # D-pgflex, PS-man AzureDatabaseForPGFlexServer.json allowedRestoreTargetTypes [RestoreAsFiles]: the
            # backup restores as files to a storage container; the server is rebuilt with native tools
            raise ArmError(400, ALR_NOT_SUPPORTED, f"a backup of {what} restores as files: restoreTargetInfo."
                                                   "objectType must be RestoreFilesTargetInfo.")
        details = target.get("targetDetails") or {}
        url = str(details.get("url") or "")
        parts = urlsplit(url)
        account_name = parts.hostname.split(".", 1)[0] if parts.hostname else ""
        container = parts.path.strip("/").split("/", 1)[0]
        if not account_name or not container or str(details.get("restoreTargetLocationType", "")).lower() != \
                "azureblobs":
            raise ArmError(400, INVALID, "targetDetails needs restoreTargetLocationType AzureBlobs and the url "
                                         "https://<account>.blob.core.windows.net/<container> (TriggerRestoreAsFiles).")
        account = next((a for a in self.store.list(resource_type="Microsoft.Storage/storageAccounts")
                        if str(a.get("name", "")).lower() == account_name.lower()), None)
        if account is None:
            raise ArmError(404, TARGET_NOT_FOUND, f"The storage account '{account_name}' was not found.")
        if location and not same_location(location, str(vault.get("location", ""))):
            # dataprotection_rules: the PostgreSQL flexible v2 support matrix requires the vault's region for a
            # restore target
            raise ArmError(400, WRONG_REGION, f"restoreLocation '{location}' differs from the vault's region "
                                              f"'{vault.get('location')}'.")
        self._require_vault_role(vault, "Storage Blob Data Contributor", str(account["id"]),
                                 "the target storage account")
        if not self.store.exists(f"{account['id']}/blobServices/default/containers/{container}"):
            # the restore writes into an existing container: Microsoft's REST guide has the caller "Fetch the URI of
            # the container, within the storage account" (backup-azure-database-postgresql-flex-use-rest-api-
            # restore.md, "Restore as files"); that Azure does not create a missing one, and this answer, are
            # INFERRED
            raise ArmError(404, TARGET_NOT_FOUND, f"The container '{container}' was not found in storage account "
                                                  f"'{account_name}'.")
        return dict(plan, kind="files", accountId=account["id"], container=container,
                    prefix=str(details.get("filePrefix") or ""), url=url)

    def _require_vault_role(self, vault: dict[str, Any], role: str, scope: str, what: str) -> None:
        """The vault's system-assigned identity holds ``role`` on ``scope`` (an assignment that has propagated)."""
        principal = str((vault.get("identity") or {}).get("principalId") or "")
        if principal and self.roles.holds_role(principal, role, scope):
            return
        raise ArmError(400, MISSING_PERMISSIONS, "Appropriate permissions to perform the operation is missing. "
                                                 f"The Backup vault's identity needs '{role}' on {what} '{scope}'.")

    def _blob_plan(self, vault: dict[str, Any], source_id: str, store: str, target: dict[str, Any], *,
                   target_kind: str, plan: dict[str, Any]) -> dict[str, Any]:
        target_id = str((target.get("datasourceInfo") or {}).get("resourceID") or source_id)
        same = id_key(target_id) == id_key(source_id)
        if store.lower() == "operationalstore" and not same:
            # D-blob: operational backup lives in the source account and restores there (point in time); an
            # alternate account needs vaulted backup (PS-man AzureBlob.json exclusiveSourceDataStores)
            raise ArmError(400, ALR_NOT_SUPPORTED, "Operational backup of blobs restores only to the source storage "
                                                   "account (alternate-location restore needs vaulted backup).")
        if store.lower() != "vaultstore":
            if not self.store.exists(target_id):
                raise ArmError(404, TARGET_NOT_FOUND, f"The target storage account '{target_id}' was not found.")
            return dict(plan, kind="blobs", targetId=target_id, inPlace=same, targetKind=target_kind)
        return self._vaulted_blob_plan(vault, target_id, same=same, target=target, target_kind=target_kind, plan=plan)

    def _vaulted_blob_plan(self, vault: dict[str, Any], target_id: str, *, same: bool, target: dict[str, Any],
                           target_kind: str, plan: dict[str, Any]) -> dict[str, Any]:
        """A vaulted blob restore: into ANOTHER storage account (D-blobrestore: "Vaulted backups only support
        restoring data to another storage account, which is different from the one that was backed up"), named by
        ``restoreTargetInfo.datasourceInfo`` of an ``ItemLevelRestoreTargetInfo`` whose ``restoreCriteria`` are
        ``ItemPathBasedRestoreCriteria`` with the container as ``itemPath`` (D-blobrest), the vault's identity holding
        Storage Account Backup Contributor on that account (D-blobrestore: "Ensure that the Backup vault has the
        Storage account backup contributor role assigned to the target storage account"). An existing container of a
        restored name on the target is refused (D-blobtrouble, ``UserErrorTargetContainersExistOnAccount``), as are
        no container (``UserErrorNoContainersSelectedForOperation``) and too many (D-blobtrouble). INFERRED: the other
        codes; the HTTP statuses; that the refusals come at the request (Azure may fail the job instead); that a
        container must be one the recovery point copied. A ``RestoreTargetInfo`` (the target account in its
        ``datasourceInfo``) restores every container of the point: the portal's "Restore all backed-up containers";
        CONFIRMED as the request Azure/azure-powershell ``Initialize-AzDataProtectionRestoreRequest`` builds for a
        vaulted blob restore to another account without ``-ItemLevelRecovery`` (``RestoreTargetInfo`` for "OLR ALR
        Full recovery", ``ItemLevelRestoreTargetInfo`` with ``ItemPathBasedRestoreCriteria`` per container with it);
        that it restores the point's containers, not the instance's current list, is INFERRED."""
        if same:
            raise ArmError(400, OLR_NOT_SUPPORTED, "Vaulted backup of blobs restores only to another storage account, "
                                                   "not the one that was backed up.")
        if parse_id(target_id).full_type.lower() != "microsoft.storage/storageaccounts":
            raise ArmError(400, INVALID, "restoreTargetInfo.datasourceInfo.resourceID must name the target storage "
                                         "account.")
        if target_kind not in ("itemlevelrestoretargetinfo", "restoretargetinfo"):
            raise ArmError(400, INVALID, "a vaulted blob restore takes restoreTargetInfo.objectType "
                                         "ItemLevelRestoreTargetInfo (or RestoreTargetInfo for every container).")
        available = [str(c) for c in plan["facts"].get("containers") or []]
        if target_kind == "restoretargetinfo":
            containers = available
        else:
            criteria = target.get("restoreCriteria")
            if not isinstance(criteria, list) or not criteria:
                raise ArmError(400, NO_CONTAINERS, "No containers selected for operation.")
            if len(criteria) > RESTORE_CONTAINERS_MAX:
                raise ArmError(400, TOO_MANY_CONTAINERS, "The count of containers passed in the restore request "
                                                         f"exceeds the supported limit ({RESTORE_CONTAINERS_MAX}).")
            containers = []
            for criterion in criteria:
                kind = str((criterion or {}).get("objectType") or "").lower() if isinstance(criterion, dict) else ""
                path = str(criterion.get("itemPath") or "") if isinstance(criterion, dict) else ""
                if kind != "itempathbasedrestorecriteria" or not path:
                    raise ArmError(400, INVALID, "each restoreCriteria of a vaulted blob restore is an "
                                                 "ItemPathBasedRestoreCriteria naming a container in itemPath.")
                containers.append(path)
        lowered = {c.lower() for c in available}
        unknown = [c for c in containers if c.lower() not in lowered]
        if unknown:
            raise ArmError(400, INVALID, f"The recovery point holds no container {', '.join(unknown)} "
                                         f"(it holds: {', '.join(available) or 'none'}).")
        if not self.store.exists(target_id):
            raise ArmError(404, TARGET_NOT_FOUND, f"The target storage account '{target_id}' was not found.")
        self._require_vault_role(vault, "Storage Account Backup Contributor", target_id, "the target storage account")
        existing = [c for c in containers
                    if self.store.exists(f"{target_id}/blobServices/default/containers/{c}")]
        if existing:
            raise ArmError(409, CONTAINERS_EXIST, "The containers that are part of restore request shouldn't exist "
                                                  f"on target storage account: {', '.join(existing)}.")
        return dict(plan, kind="vaultedBlobs", targetId=target_id, containers=containers, targetKind=target_kind)

    def _restored(self, job: bk.Job, plan: dict[str, Any]) -> None:
        """The job ends: what the request named appears, recording what restored it."""
        record_of = {"restoreJobId": job.id, "recoveryPoint": plan["recoveryPoint"], "sourceResourceId":
                     plan["sourceId"], "backupInstanceId": plan["instanceId"]}
        created: list[str] = []
        if plan["kind"] == "disk":
            target = str(plan["targetId"])
            group = parse_id(target).resource_group_id or ""
            if not self.store.exists(group):
                raise bk.JobFailed(TARGET_NOT_FOUND, f"The target resource group '{group}' no longer exists.")
            if self.store.exists(target):
                raise bk.JobFailed(TARGET_EXISTS, f"The target disk '{target}' already exists.")
            facts = plan["facts"]
            self.store.put({
                "id": target, "name": parse_id(target).name, "type": "Microsoft.Compute/disks",
                "location": str(plan["location"]), "tags": {},
                "sku": {"name": facts.get("sku") or "Standard_LRS",
                        "tier": str(facts.get("sku") or "Standard_LRS").split("_")[0]},
                "properties": {"provisioningState": "Succeeded", "diskState": "Unattached",
                               "diskSizeGB": facts.get("sizeGB") or 32, "creationData": {"createOption": "Restore"},
                               "timeCreated": bk.iso(job.end)},
            }, {"restoredBy": record_of})
            created.append(target)
        elif plan["kind"] == "files":
            account = str(plan["accountId"])
            if not self.store.exists(account):
                raise bk.JobFailed(TARGET_NOT_FOUND, f"The storage account '{account}' no longer exists.")
            private = self.store.private(account)
            name = f"{plan['prefix']}{parse_id(plan['sourceId']).name}_{job.start.strftime('%Y%m%d%H%M%S')}.sql"
            private.setdefault("restoredFiles", []).append(dict(record_of, container=plan["container"], blob=name))
            self.store.set_private(account, private)
            created.append(f"{account}/blobServices/default/containers/{plan['container']}/blobs/{name}")
        elif plan["kind"] == "vaultedBlobs":
            account = str(plan["targetId"])
            if not self.store.exists(account):
                raise bk.JobFailed(TARGET_NOT_FOUND, f"The storage account '{account}' no longer exists.")
            for name in plan["containers"]:  # the restored containers appear in the target account
                container_id = f"{account}/blobServices/default/containers/{name}"
                if self.store.exists(container_id):
                    raise bk.JobFailed(CONTAINERS_EXIST, "The containers that are part of restore request shouldn't "
                                                         f"exist on target storage account: '{name}' in '{account}'.")
                self.store.put({"id": container_id, "name": name, "type": CONTAINER_TYPE,
                                "properties": {"publicAccess": "None", "lastModifiedTime": bk.iso(job.end)}},
                               {"restoredBy": record_of})
                created.append(container_id)
        else:
            account = str(plan["targetId"])
            private = self.store.private(account)
            private.setdefault("blobRestores", []).append(dict(record_of, inPlace=plan["inPlace"]))
            self.store.set_private(account, private)
            if not plan["inPlace"]:
                created.append(account)
        self.created[job.id.lower()] = created

    def restored(self, job_id: str) -> list[str]:
        self.settle()
        return list(self.created.get(job_id.lower(), []))

    def _point(self, instance: dict[str, Any], name: str) -> Point:
        for point in self.ledger(instance["id"]).points:
            if point.name.lower() == name.lower():
                return point
        raise ArmError(404, RP_NOT_FOUND, f"The recovery point '{name}' was not found for backup instance "
                                          f"'{instance['name']}'.")

    # -- reads -----------------------------------------------------------------------------------------------
    def list_points(self, req: Request) -> Response:
        with self.lock:
            self.settle()
            _vault, instance = self.require_instance(req)
            wanted = self.ctx.filter(req, ("startDate", "endDate"), error_code=INVALID)
            start = bk.parse_filter_time(wanted["startDate"], "startDate", INVALID) if "startDate" in wanted else None
            end = bk.parse_filter_time(wanted["endDate"], "endDate", INVALID) if "endDate" in wanted else None
            points = [p for p in self.ledger(instance["id"]).points
                      if (start is None or p.time >= start) and (end is None or p.time <= end)]
            points.sort(key=lambda p: p.time, reverse=True)
            return self.ctx.page(req, [self.point_json(instance, p) for p in points])

    def get_point(self, req: Request) -> Response:
        with self.lock:
            self.settle()
            _vault, instance = self.require_instance(req)
            return ok(self.point_json(instance, self._point(instance, req.params["recoveryPointId"])))

    @staticmethod
    def point_json(instance: dict[str, Any], point: Point) -> dict[str, Any]:
        # ``type`` names the data store as Azure answers it: "OperationalStore" / "VaultStore" (responses captured
        # in MicrosoftDocs/azure-docs ``backup/backup-azure-dataprotection-use-rest-api-restore-disks.md`` and
        # ``restore-managed-disks-cli.md``; "VaultStore" in ``restore-blobs-storage-account-cli.md``, 2024). Microsoft's
        # ListRecoveryPoints.json example spells them "Snapshot" / "BackupStorage"; the app must read both.
        stores = [{"id": f"{point.name}-{i}", "type": "OperationalStore" if s.lower() == "operationalstore" else
                   "VaultStore", "creationTime": bk.iso(point.time), "metaData": "", "visible": True,
                   "state": "COMMITTED"} for i, s in enumerate(point.stores)]
        props: dict[str, Any] = {
            "objectType": "AzureBackupDiscreteRecoveryPoint",
            "recoveryPointTime": bk.iso(point.time),
            "recoveryPointType": "Full",
            "friendlyName": point.name[:8],
            "recoveryPointDataStoresDetails": stores,
            "recoveryPointState": "Completed",
        }
        if point.expiry is not None:
            props["expiryTime"] = bk.iso(point.expiry)
        return {"id": f"{instance['id']}/recoveryPoints/{point.name}", "name": point.name, "type": RP_TYPE,
                "properties": props}

    def list_jobs(self, req: Request) -> Response:
        with self.lock:
            self.settle()
            vault = self.require_vault(req)
            now = self.ctx.clock.now()
            jobs = sorted(self.book.of_vault(vault["id"]), key=lambda j: j.start, reverse=True)
            return self.ctx.page(req, [self.job_json(vault, j, now) for j in jobs])

    def get_job(self, req: Request) -> Response:
        with self.lock:
            self.settle()
            vault = self.require_vault(req)
            job = self.book.get(req.params["jobId"])
            if job is None or id_key(job.vault_id) != id_key(vault["id"]):
                raise not_found(f"{vault['id']}/backupJobs/{req.params['jobId']}", JOB_TYPE)
            return ok(self.job_json(vault, job, self.ctx.clock.now()))

    def job_json(self, vault: dict[str, Any], job: bk.Job, now: datetime) -> dict[str, Any]:
        instance_id = str(job.details.get("instanceId") or "")
        instance = self.store.get(instance_id) or {"properties": {}}
        info = instance["properties"].get("dataSourceInfo") or {}
        source = str(info.get("resourceID") or "")
        policy_id = str((instance["properties"].get("policyInfo") or {}).get("policyId") or "")
        status = {"Completed": "Completed", "Failed": "Failed"}.get(job.status, "InProgress")
        props: dict[str, Any] = {
            "activityID": job.id,
            "subscriptionId": parse_id(vault["id"]).subscription_id,
            "backupInstanceId": instance_id,
            "backupInstanceFriendlyName": job.entity,
            "policyId": policy_id,
            "policyName": parse_id(policy_id).name if policy_id else "",
            "dataSourceId": source,
            "dataSourceName": str(info.get("resourceName") or ""),
            "dataSourceSetName": str(info.get("resourceName") or ""),
            "dataSourceType": str(info.get("datasourceType") or ""),
            "dataSourceLocation": str(info.get("resourceLocation") or vault.get("location") or ""),
            "sourceResourceGroup": (parse_id(source).resource_group or "") if source else "",
            "sourceSubscriptionID": (parse_id(source).subscription_id or "") if source else "",
            "vaultName": vault["name"],
            "operationCategory": job.operation,
            "operation": job.operation,
            "status": status,
            "isUserTriggered": job.user_triggered,
            "progressEnabled": False,
            "supportedActions": [],
            "startTime": bk.iso(job.start),
            "duration": bk.clock_duration(job.duration(now)),
            "extendedInfo": {"subTasks": [{"taskId": 1, "taskName": f"Trigger {job.operation}",
                                           "taskStatus": status}],
                             "additionalDetails": {"PolicyRuleName": str(job.details.get("rule") or ""),
                                                   "TaskId": job.id}},
        }
        if job.done:
            props["endTime"] = bk.iso(job.finished_at)
        if job.error is not None:
            props["errorDetails"] = [{"code": job.error.code, "message": job.error.message}]
        return {"id": f"{vault['id']}/backupJobs/{job.id}", "name": job.id, "type": JOB_TYPE, "properties": props}


def _missing_required(request: dict[str, Any], target: dict[str, Any], target_kind: str) -> list[str]:
    """The spec's required properties of a restore request the request lacks (names as the spec spells them).
    ``RestoreTargetInfo.datasourceInfo`` is checked where a disk's target is read (``_disk_plan``)."""
    missing = []
    if str(request.get("objectType") or "").lower() == "azurebackuprecoverypointbasedrestorerequest" and \
            not request.get("recoveryPointId"):
        missing.append("recoveryPointId")
    if not target.get("recoveryOption"):
        missing.append("restoreTargetInfo.recoveryOption")
    if target_kind == "restorefilestargetinfo":
        details = target.get("targetDetails") if isinstance(target.get("targetDetails"), dict) else {}
        missing += [f"restoreTargetInfo.targetDetails.{k}" for k in ("filePrefix", "restoreTargetLocationType", "url")
                    if not details.get(k)]
    return missing


def _listed_containers(instance: dict[str, Any]) -> list[str]:
    """The containers a blob backup instance lists (``BlobBackupDatasourceParameters.containersList``)."""
    params = ((instance.get("properties") or {}).get("policyInfo") or {}).get("policyParameters") or {}
    return [str(c) for entry in params.get("backupDatasourceParametersList") or [] if isinstance(entry, dict)
            and entry.get("objectType") == "BlobBackupDatasourceParameters" for c in entry.get("containersList") or []]


def _facts(source: dict[str, Any]) -> dict[str, Any]:
    props = source.get("properties") or {}
    return {"sizeGB": props.get("diskSizeGB"), "sku": (source.get("sku") or {}).get("name"),
            "location": source.get("location"), "name": source.get("name")}


def register(router: Router, ctx: ProviderContext) -> DataProtectionJobs:
    jobs = DataProtectionJobs(ctx)
    routes = router.provider(NAMESPACE, API_VERSIONS)
    action = "Microsoft.DataProtection/backupVaults/backupInstances/{}/action"
    routes.add("POST", BI + "/backup", jobs.adhoc_backup, operation=action.format("backup"))
    routes.add("POST", BI + "/validateRestore", jobs.validate_restore, operation=action.format("validateRestore"))
    routes.add("POST", BI + "/restore", jobs.restore, operation=action.format("restore"))
    routes.add("GET", BI + "/recoveryPoints", jobs.list_points)
    routes.add("GET", BI + "/recoveryPoints/{recoveryPointId}", jobs.get_point)
    routes.add("GET", VAULT + "/backupJobs", jobs.list_jobs)
    routes.add("GET", VAULT + "/backupJobs/{jobId}", jobs.get_job)
    routes.add("GET", GROUP + "/providers/Microsoft.DataProtection/backupInstances/{backupInstanceName}"
                              "/operationResults/{operationId}",
               lambda req: ctx.operations.result_response(req.params["operationId"]), events=False)
    setattr(ctx, _CTX_ATTRIBUTE, jobs)
    return jobs


_CTX_ATTRIBUTE = "_data_protection_jobs"


def data_protection_jobs(sandbox: Any) -> DataProtectionJobs:
    ctx = getattr(sandbox, "ctx", sandbox)
    jobs = getattr(ctx, _CTX_ATTRIBUTE, None)
    if not isinstance(jobs, DataProtectionJobs):
        raise LookupError("this sandbox was started without the dataprotection_jobs provider")
    return jobs
