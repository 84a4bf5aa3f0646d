"""Recovery Services backups that happen: scheduled and on-demand VM backups, jobs, recovery points, restores.

Extends :mod:`recoveryservices` (same namespace, api-version 2025-02-01) without touching its routes; its model's
first backup (``Timing.first_backup``, ``Item.last_backup`` / ``recovery_points``) stays the source of truth for
the first recovery point, which this module turns into a job and a recovery point. Shapes from the S-RSB
2025-02-01 examples (``specification/recoveryservicesbackup/resource-manager/Microsoft.RecoveryServices/stable/
2025-02-01/examples/``); rules and their sources are listed in docs/azure-facts.md ("Backups, jobs, recovery
points and restores"). ``ITEM`` = ``V/backupFabrics/{f}/protectionContainers/{c}/protectedItems/{i}``.

=================================================  =========================================================
operation                                          answer
=================================================  =========================================================
POST ITEM/backup                                   202 + Location ITEM/operationResults/{id} +
                                                   Azure-AsyncOperation ITEM/operationsStatus/{id} + Retry-After
                                                   (Common/TriggerBackup_Post); the status names the job
                                                   (``properties.jobId``, ProtectedItemOperationStatus)
GET V/backupJobs?$filter=status|operation|         200 paged JobResourceList (Common/ListJobs,
    backupManagementType|startTime|endTime             ListJobsWithAllSupportedFilters)
GET V/backupJobs/{jobName}                         200 JobResource with extendedInfo (Common/GetJobDetails)
POST V/backupJobs/{jobName}/cancel                 202 + Location V/backupJobs/{j}/operationResults/{id} + Retry-After
                                                   (Common/TriggerCancelJob); that Location: 202, then 204
                                                   (CancelJobOperationResult); the job is Cancelling, then Cancelled
GET ITEM/recoveryPoints[?$filter=startDate|endDate] 200 paged (AzureIaasVm/RecoveryPoints_List)
GET ITEM/recoveryPoints/{rp}                       200 (AzureIaasVm/RecoveryPoints_Get)
POST ITEM/recoveryPoints/{rp}/restore              202 + the same headers as a trigger (AzureIaasVm/
                                                   TriggerRestore_RestoreDisks_IaasVMRestoreRequest)
=================================================  =========================================================

Sources (MicrosoftDocs/azure-docs ``articles/backup/...``): D-vmrestore = ``backup-azure-arm-restore-vms.md``
(staging account in the vault's region; managed disks created in the target group; "Replace existing" needs the
VM); D-tutdisk = ``tutorial-restore-disk.md`` (the restore job's property bag keys). Everything else marked
INFERRED where it is used.

Limits: jobs and recovery points live in memory (not in ``--state`` snapshots; after a resume the model's first
backup is adopted again as one point); jobs keep the vault id they ran under (a moved vault lists only new
ones); OriginalLocation and AlternateLocation (create VM) restores answer ``SandboxNotModelled``.

Only Azure VM items (``AzureIaasVM``) get scheduled/on-demand backups and restores here; other item kinds keep
the first backup the model already gives them. Sandbox controls (Python): :func:`recovery_services_jobs` (sandbox)
-> ``.timing`` (:class:`~sandbox.arm.providers._backups.BackupTiming`), ``.book.fail_next(vault_id, "Restore",
code, message)`` (the next such job fails on Azure's side), ``.restored(job_id)`` (ids a restore created),
``.expire_snapshots()`` (every point so far leaves the snapshot tier: its restore reads the vault).
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sandbox.arm.context import ProviderContext
from sandbox.arm.errors import ArmError
from sandbox.arm.http import Request, Response, ok
from sandbox.arm.ids import id_key, parse_id
from sandbox.arm.providers import _backups as bk
from sandbox.arm.providers.recoveryservices import (
    API_VERSIONS,
    ITEM,
    NAMESPACE,
    RecoveryServicesProvider,
    V,
    recovery_services,
)
from sandbox.arm.providers.recoveryservices_kinds import canonical_container_name, canonical_item_name
from sandbox.arm.providers.recoveryservices_model import Item, Policy, VaultState
from sandbox.arm.routing import Router

PROVIDER = NAMESPACE
JOB_TYPE = "Microsoft.RecoveryServices/vaults/backupJobs"
RP_TYPE = "Microsoft.RecoveryServices/vaults/backupFabrics/protectionContainers/protectedItems/recoveryPoints"
#: $filter fields of backupJobs the examples show (ListJobsWithAllSupportedFilters)
JOB_FILTER_FIELDS = ("status", "operation", "backupManagementType", "startTime", "endTime")
#: $filter fields of recoveryPoints (the spec's description: "startDate eq '..' and endDate eq '..'")
RP_FILTER_FIELDS = ("startDate", "endDate")
#: error codes. INFERRED: Azure's codes for these refusals are not published; the refusals themselves are cited.
INVALID_INPUT = "BMSUserErrorInvalidInput"
STAGING_REQUIRED = "UserErrorStorageAccountRequired"
STAGING_REGION = "UserErrorStorageAccountInDifferentRegion"
STAGING_NOT_FOUND = "UserErrorStorageAccountNotFound"
STAGING_ZONE_REDUNDANT = "UserErrorStorageAccountZoneRedundant"
STAGING_KIND = "UserErrorStorageAccountTypeNotSupported"
TARGET_GROUP_NOT_FOUND = "UserErrorTargetResourceGroupNotFound"
SOURCE_VM_GONE = "UserErrorReplaceExistingSourceVmNotFound"
RP_NOT_FOUND = "UserErrorRecoveryPointNotFound"
NOT_MODELLED = "SandboxNotModelled"


def job_error_number(code: str) -> int:
    """The integer a Recovery Services job carries in ``errorDetails[].errorCode`` for the sandbox's named ``code``.

    The TYPE is sourced: the REST spec (S-RSB 2025-02-01 ``bms.json`` ``AzureIaaSVMErrorInfo.errorCode``:
    ``integer``, ``int32``), the SDKs generated from it (azure-mgmt-recoveryservicesbackup 11.2.0
    ``AzureIaaSVMErrorInfo.error_code: Optional[int]``) and Microsoft's PowerShell, which reads it into an ``int?``
    (Azure/azure-powershell ``src/RecoveryServices/RecoveryServices.Backup.Helpers/Conversions/JobConversions.cs``
    ``GetJobErrorCode(int? errorCode)``) and whose captured output of a failed job shows ``ErrorCode 400001``
    ("Command execution failed.", AzureRM.Backup ``Get-AzureRmBackupJobDetails`` example). A Backup vault job's
    error is the other shape: a string ``code`` (``UserFacingError``, :mod:`dataprotection_jobs`).
    The NUMBERS are INFERRED: Azure publishes no table from its named codes to these integers, so the sandbox
    derives a stable six-digit number in the 4xxxxx range of the one observed value."""
    return 400000 + zlib.crc32(code.encode()) % 100000


@dataclass
class RecoveryPoint:
    name: str
    time: datetime
    disks: list[dict[str, Any]]  # what the VM had at backup time: id, name, lun, os, sizeGB, sku
    vm_size: str
    vm_location: str
    os_type: str | None
    instant_until: datetime  # the snapshot tier lasts instantRpRetentionRangeInDays


@dataclass
class ItemLedger:
    points: list[RecoveryPoint] = field(default_factory=list)
    scheduled_through: datetime | None = None
    seen: int = 0  # how many of the model's recovery_points this ledger has turned into points
    started: bool = False  # scheduling began once: resumed protection starts from its resumption


class RecoveryServicesJobs:
    def __init__(self, ctx: ProviderContext, rs: RecoveryServicesProvider) -> None:
        self.ctx = ctx
        self.rs = rs
        self.model = rs.model
        self.timing = bk.BackupTiming()
        self.book = bk.JobBook(done_status="Completed", failed_status="Failed")
        self.ledgers: dict[tuple[str, str, str], ItemLedger] = {}
        #: restore job id -> ids of what it created (sandbox inspection; Azure answers with the job only)
        self.created: dict[str, list[str]] = {}
        self._seq = 0
        self.waker = bk.Waker(ctx, self.settle_now)
        self.model.settle_hooks.append(self.on_settle)

    # -- time ----------------------------------------------------------------------------------------------
    def on_settle(self, now: datetime) -> None:
        """Called by the model's settle (model lock held): scheduled backups due by ``now``, then due jobs."""
        for vault in list(self.model.vaults.values()):
            for item in vault.live_items():
                if item.kind != "VM":
                    continue
                ledger = self.ledger(vault, item)
                self._adopt_first_backup(vault, item, ledger)
                self._schedule(vault, item, ledger, now)
        if self.book.settle(now):
            for vault in list(self.model.vaults.values()):
                for item in vault.live_items():
                    if item.kind == "VM" and item.protection_state == "Protected":  # stopped: data retained
                        self._prune(vault, item, self.ledger(vault, item), now)
        self.waker.ensure(self.book.next_end())

    def settle_now(self) -> None:
        with self.model.lock:
            self.rs.settle()

    def expire_snapshots(self) -> int:
        """Sandbox control: end the snapshot tier of every recovery point taken so far (as its
        ``instantRpRetentionRangeInDays`` would, or a deleted restore point collection); they stay in the vault
        tier and a restore of one reads the vault. Returns how many points changed."""
        self.settle_now()
        with self.model.lock:
            now = self.model.now()
            changed = 0
            for ledger in self.ledgers.values():
                for point in ledger.points:
                    if point.instant_until > now:
                        point.instant_until = now
                        changed += 1
            return changed

    def ledger(self, vault: VaultState, item: Item) -> ItemLedger:
        key = (vault.uid, item.container.lower(), item.name.lower())
        ledger = self.ledgers.get(key)
        if ledger is None:
            ledger = self.ledgers[key] = ItemLedger()
        return ledger

    def _adopt_first_backup(self, vault: VaultState, item: Item, ledger: ItemLedger) -> None:
        """The model's first backup (Timing.first_backup) becomes a completed job and a recovery point."""
        if item.last_backup is None or item.recovery_points <= ledger.seen or ledger.points:
            ledger.seen = max(ledger.seen, item.recovery_points)
            return
        end = item.last_backup
        start = max(item.created_at, end - timedelta(seconds=self.timing.rs_vm_backup))
        job = self._job(vault, item, "Backup", start, end)
        job.finished_at, job.status = end, "Completed"
        ledger.points.append(self._point(vault, item, end))
        ledger.seen = item.recovery_points
        job.details["recoveryPoint"] = ledger.points[-1].name

    def _schedule(self, vault: VaultState, item: Item, ledger: ItemLedger, now: datetime) -> None:
        if item.protection_state != "Protected" or item.soft_deleted:
            ledger.scheduled_through = None  # stopped: nothing runs; resumed protection starts from then
            return
        if ledger.scheduled_through is None:
            ledger.scheduled_through = (item.last_backup or now) if not ledger.started else now
            ledger.started = True
        policy = self._policy(vault, item)
        if policy is None:
            ledger.scheduled_through = now
            return
        for moment in policy_occurrences(policy, ledger.scheduled_through, now):
            self._start_backup(vault, item, moment, user=False)
        ledger.scheduled_through = now

    def _prune(self, vault: VaultState, item: Item, ledger: ItemLedger, now: datetime) -> None:
        """Recovery points past the policy's daily retention expire (INFERRED: the only expiry modelled)."""
        policy = self._policy(vault, item)
        days = retention_days(policy) if policy is not None else None
        if days is None:
            return
        cutoff = now - timedelta(days=days)
        keep = [p for p in ledger.points if p.time >= cutoff]
        if keep and len(keep) != len(ledger.points):
            ledger.points = keep

    @staticmethod
    def _policy(vault: VaultState, item: Item) -> Policy | None:
        if not item.policy_id:
            return None
        return vault.policies.get(parse_id(item.policy_id).name.lower())

    # -- jobs and points -----------------------------------------------------------------------------------
    def _job(self, vault: VaultState, item: Item, operation: str, start: datetime, end: datetime, *,
             job_id: str | None = None) -> bk.Job:
        job = bk.Job(id=job_id or bk.new_job_id(), vault_id=vault.id, operation=operation,
                     entity=item.friendly_name, start=start, end=end)
        job.details.update({"container": item.container, "item": item.name, "sourceId": item.source_id})
        return self.book.add(job)

    def _start_backup(self, vault: VaultState, item: Item, start: datetime, *, user: bool,
                      job_id: str | None = None, expiry: str | None = None) -> bk.Job:
        end = start + timedelta(seconds=self.timing.rs_vm_backup)
        job = self._job(vault, item, "Backup", start, end, job_id=job_id)
        job.user_triggered = user
        vault_uid, container, name = vault.uid, item.container, item.name

        def done(finished: bk.Job) -> None:
            current = next((v for v in self.model.vaults.values() if v.uid == vault_uid), None)
            found = current.items.get((container.lower(), name.lower())) if current is not None else None
            if current is None or found is None or found.soft_deleted:
                raise bk.JobFailed("UserErrorBackupItemNotFound", "The backup item no longer exists.")  # inferred
            if self.ctx.store.get(found.source_id) is None:
                # INFERRED: a backup of a deleted VM fails (code as Azure's VM-backup troubleshooting names it)
                raise bk.JobFailed("UserErrorVmNotFoundV2", "The virtual machine doesn't exist anymore.")
            point = self._point(current, found, finished.start)
            ledger = self.ledger(current, found)
            ledger.points.append(point)
            found.recovery_points += 1
            ledger.seen = found.recovery_points
            if found.last_backup is None or point.time > found.last_backup:
                found.last_backup = point.time
            if found.protection_state == "IRPending":
                found.protection_state = "Protected"  # the first backup ran (on demand)
            finished.details["recoveryPoint"] = point.name
            if expiry:
                finished.details["expiry"] = expiry

        job.on_done = done
        if end > self.model.now():
            self.waker.ensure(end)
        return job

    def _point(self, vault: VaultState, item: Item, moment: datetime) -> RecoveryPoint:
        self._seq += 1
        vm = self.ctx.store.get(item.source_id) or {}
        props = vm.get("properties") or {}
        storage = props.get("storageProfile") or {}
        disks: list[dict[str, Any]] = []
        os_disk = storage.get("osDisk") or {}
        if os_disk:
            disks.append(self._disk_facts(os_disk, lun=None, os=True))
        for data_disk in storage.get("dataDisks") or []:
            disks.append(self._disk_facts(data_disk, lun=data_disk.get("lun"), os=False))
        policy = self._policy(vault, item)
        instant_days = int((policy.properties.get("instantRpRetentionRangeInDays") if policy else 2) or 2)
        name = f"{int(moment.timestamp() * 1000)}{self._seq % 100:02d}"
        return RecoveryPoint(
            name=name, time=moment, disks=disks,
            vm_size=str((props.get("hardwareProfile") or {}).get("vmSize") or "Standard_D2s_v3"),
            vm_location=str(vm.get("location") or vault.location),
            os_type=os_disk.get("osType"), instant_until=moment + timedelta(days=instant_days))

    def _disk_facts(self, disk: dict[str, Any], *, lun: Any, os: bool) -> dict[str, Any]:
        disk_id = str((disk.get("managedDisk") or {}).get("id") or "")
        record = self.ctx.store.get(disk_id) if disk_id else None
        size = (record or {}).get("properties", {}).get("diskSizeGB") or disk.get("diskSizeGB") or 30
        sku = ((record or {}).get("sku") or {}).get("name") or (disk.get("managedDisk") or {}).get(
            "storageAccountType") or "Standard_LRS"
        return {"id": disk_id, "name": disk.get("name") or (parse_id(disk_id).name if disk_id else "osdisk"),
                "lun": lun, "os": os, "sizeGB": int(size), "sku": str(sku)}

    # -- requests ------------------------------------------------------------------------------------------
    def _vault_item(self, req: Request) -> tuple[VaultState, Item]:
        vault = self.rs.vault(req)
        item = self.model.item(vault.id, req.params["containerName"], req.params["protectedItemName"])
        return vault, item

    def _item_urls(self, req: Request, vault: VaultState, item: Item) -> tuple[str, str]:
        base = (f"{vault.id}/backupFabrics/{req.params['fabricName']}/protectionContainers/"
                f"{canonical_container_name(item.container)}/protectedItems/{canonical_item_name(item.name)}")
        return f"{base}/operationsStatus/{{operationId}}", f"{base}/operationResults/{{operationId}}"

    def _accept_with_job(self, req: Request, vault: VaultState, item: Item, start_job: Any) -> Response:
        """202 + the trigger's operation; the operation id IS the job id, so ``operationsStatus`` (served by
        recoveryservices.job_status) names the job in ``properties.jobId`` as ProtectedItemOperationStatus shows."""
        job_id = bk.new_job_id()
        start_job(job_id)
        status_url, result_url = self._item_urls(req, vault, item)
        op = self.ctx.operations.begin(req, duration=self.timing.trigger_operation, async_url=status_url,
                                       location_url=result_url, retry_after=self.timing.retry_after,
                                       operation_id=job_id)
        return self.ctx.operations.accept(op, 202)

    def trigger_backup(self, req: Request) -> Response:
        vault, item = self._vault_item(req)
        body = req.json_object()
        props = body.get("properties") if isinstance(body.get("properties"), dict) else None
        if item.kind != "VM":
            raise ArmError(400, NOT_MODELLED, f"on-demand backup of a {item.kind} item is not modelled by the sandbox")
        if props is None or str(props.get("objectType", "")).lower() != "iaasvmbackuprequest":
            raise ArmError(400, INVALID_INPUT, "properties.objectType must be 'IaasVMBackupRequest' for an "
                                               "Azure VM item (TriggerBackup_Post).")
        if item.soft_deleted or item.protection_state == "ProtectionStopped":
            # INFERRED: a stopped (or soft-deleted) item takes no new backups until protection resumes
            raise ArmError(400, "UserErrorBackupOperationNotAllowedOnStoppedItem",
                           "Backup cannot be triggered: protection of this item is stopped.")
        expiry = props.get("recoveryPointExpiryTimeInUTC") if props else None
        now = self.model.now()
        return self._accept_with_job(
            req, vault, item,
            lambda job_id: self._start_backup(vault, item, now, user=True, job_id=job_id,
                                              expiry=str(expiry) if expiry else None))

    def list_jobs(self, req: Request) -> Response:
        vault = self.rs.vault(req)
        wanted = self.ctx.filter(req, JOB_FILTER_FIELDS, error_code=INVALID_INPUT)
        start = bk.parse_filter_time(wanted["startTime"], "startTime") if "startTime" in wanted else None
        end = bk.parse_filter_time(wanted["endTime"], "endTime") if "endTime" in wanted else None
        now = self.model.now()
        jobs = []
        for job in self.book.of_vault(vault.id):
            if "status" in wanted and job.status.lower() != wanted["status"].lower():
                continue
            if "operation" in wanted and job.operation.lower() != wanted["operation"].lower():
                continue
            if "backupManagementType" in wanted and wanted["backupManagementType"].lower() != "azureiaasvm":
                continue
            # startTime/endTime: jobs that started in the window (INFERRED semantics; the spec gives no rule)
            if start is not None and job.start < start:
                continue
            if end is not None and job.start > end:
                continue
            jobs.append(self.job_json(vault, job, now, extended=False))
        jobs.sort(key=lambda j: str(j["properties"]["startTime"]), reverse=True)
        return self.ctx.page(req, jobs)

    def get_job(self, req: Request) -> Response:
        vault = self.rs.vault(req)
        job = self.book.get(req.params["jobName"])
        if job is None or id_key(job.vault_id) != id_key(vault.id):
            raise ArmError(404, "ResourceNotFound", f"The job '{req.params['jobName']}' was not found in vault "
                                                    f"'{vault.name}'.")  # code inferred
        return ok(self.job_json(vault, job, self.model.now(), extended=True))

    def cancel_job(self, req: Request) -> Response:
        """Cancel a running job. INFERRED: which jobs Azure lets one cancel (the sandbox: any still running) and
        the code for one that already ended (``BMSUserErrorJobNotCancellable``); the answer shapes are the
        examples'. A job that ends before the cancellation takes effect keeps its outcome."""
        vault = self.rs.vault(req)
        job = self.book.get(req.params["jobName"])
        if job is None or id_key(job.vault_id) != id_key(vault.id):
            raise ArmError(404, "ResourceNotFound", f"The job '{req.params['jobName']}' was not found in vault "
                                                    f"'{vault.name}'.")
        if job.done:
            raise ArmError(400, "BMSUserErrorJobNotCancellable", f"The job '{job.id}' has already ended "
                                                                 f"({job.status}).")
        job.status = "Cancelling"

        def complete() -> None:
            with self.model.lock:
                self.book.cancel(job, self.model.now())

        op = self.ctx.operations.begin(req, duration=self.timing.cancel_operation, complete=complete,
                                       location_url=f"{vault.id}/backupJobs/{job.id}/operationResults/{{operationId}}",
                                       retry_after=self.timing.retry_after)
        return self.ctx.operations.accept(op, 202)

    def cancel_result(self, req: Request) -> Response:
        return self.ctx.operations.result_response(req.params["operationId"])

    def job_json(self, vault: VaultState, job: bk.Job, now: datetime, *, extended: bool) -> dict[str, Any]:
        props: dict[str, Any] = {
            "jobType": "AzureIaaSVMJob",
            "duration": bk.iso_duration(job.duration(now)),
            "virtualMachineVersion": "Compute",
            "entityFriendlyName": job.entity,
            "backupManagementType": "AzureIaasVM",
            "operation": job.operation,
            "status": job.status,
            "startTime": bk.iso(job.start),
            "activityId": job.id,
        }
        if job.done:
            props["endTime"] = bk.iso(job.finished_at)
        if job.error is not None:
            props["errorDetails"] = [{"errorCode": job_error_number(job.error.code), "errorString": job.error.message,
                                      "errorTitle": "", "recommendations": []}]
        if extended:
            props["extendedInfo"] = {"tasksList": self._tasks(job), "propertyBag": self._property_bag(job)}
        return {"id": f"{vault.id}/backupJobs/{job.id}", "name": job.id, "type": JOB_TYPE, "properties": props}

    @staticmethod
    def _tasks(job: bk.Job) -> list[dict[str, Any]]:
        state = "Completed" if job.status == "Completed" else ("Failed" if job.done else "InProgress")
        names = ("Take Snapshot", "Transfer data to vault") if job.operation == "Backup" else ("Transfer data",)
        tasks = []
        for i, name in enumerate(names):
            status = state if (job.done or i == 0) else "NotStarted"
            tasks.append({"taskId": name, "duration": "PT0S", "status": status})
        return tasks

    def _property_bag(self, job: bk.Job) -> dict[str, str]:
        vm_name = parse_id(str(job.details.get("sourceId") or "")).name if job.details.get("sourceId") else job.entity
        bag = {"VM Name": vm_name}
        if job.operation == "Restore":
            # the keys `az backup job show` prints for a restore-disks job (D-tutdisk); values sandbox-made
            bag.update({k: str(v) for k, v in (job.details.get("propertyBag") or {}).items()})
        return bag

    def list_points(self, req: Request) -> Response:
        vault, item = self._vault_item(req)
        wanted = self.ctx.filter(req, RP_FILTER_FIELDS, error_code=INVALID_INPUT)
        start = bk.parse_filter_time(wanted["startDate"], "startDate") if "startDate" in wanted else None
        end = bk.parse_filter_time(wanted["endDate"], "endDate") if "endDate" in wanted else None
        now = self.model.now()
        points = [p for p in self.ledger(vault, item).points
                  if (start is None or p.time >= start) and (end is None or p.time <= end)]
        points.sort(key=lambda p: p.time, reverse=True)
        return self.ctx.page(req, [self.point_json(vault, item, p, now) for p in points])

    def get_point(self, req: Request) -> Response:
        vault, item = self._vault_item(req)
        point = self._find_point(vault, item, req.params["recoveryPointId"])
        return ok(self.point_json(vault, item, point, self.model.now()))

    def _find_point(self, vault: VaultState, item: Item, name: str) -> RecoveryPoint:
        for point in self.ledger(vault, item).points:
            if point.name.lower() == name.lower():
                return point
        raise ArmError(404, RP_NOT_FOUND, f"The recovery point '{name}' does not exist for this item.")

    def point_json(self, vault: VaultState, item: Item, point: RecoveryPoint, now: datetime) -> dict[str, Any]:
        tiers = [{"type": "InstantRP", "status": "Valid" if now < point.instant_until else "Deleted"},
                 {"type": "HardenedRP", "status": "Valid"}]
        item_id = (f"{vault.id}/backupFabrics/Azure/protectionContainers/{canonical_container_name(item.container)}"
                   f"/protectedItems/{canonical_item_name(item.name)}")
        props: dict[str, Any] = {
            "objectType": "IaasVMRecoveryPoint",
            "recoveryPointType": "CrashConsistent",
            "recoveryPointTime": bk.iso(point.time),
            "recoveryPointAdditionalInfo": "",
            "sourceVMStorageType": "NormalStorage",
            "isSourceVMEncrypted": False,
            "isInstantIlrSessionActive": False,
            "recoveryPointTierDetails": tiers,
            "recoveryPointMoveReadinessInfo": {"ArchivedRP": {"isReadyForMove": False}},
            "isManagedVirtualMachine": True,
            "virtualMachineSize": point.vm_size,
            "originalStorageAccountOption": False,
            "securityType": "None",
            "isPrivateAccessEnabledOnAnyDisk": False,
        }
        if point.os_type:
            props["osType"] = point.os_type
        return {"id": f"{item_id}/recoveryPoints/{point.name}", "name": point.name, "type": RP_TYPE,
                "properties": props}

    # -- restore ---------------------------------------------------------------------------------------------
    def restore(self, req: Request) -> Response:
        vault, item = self._vault_item(req)
        if item.kind != "VM":
            raise ArmError(400, NOT_MODELLED, f"restore of a {item.kind} item is not modelled by the sandbox")
        point = self._find_point(vault, item, req.params["recoveryPointId"])
        body = req.json_object()
        props = body.get("properties")
        if not isinstance(props, dict) or str(props.get("objectType", "")).lower() != "iaasvmrestorerequest":
            raise ArmError(400, INVALID_INPUT, "properties.objectType must be 'IaasVMRestoreRequest' for an Azure VM "
                                               "item (TriggerRestore_RestoreDisks_IaasVMRestoreRequest).")
        recovery_type = str(props.get("recoveryType") or "")
        if recovery_type.lower() == "originallocation":
            # D-vmrestore "Replace existing": "The current VM must exist. If it's been deleted, this option can't
            # be used." The replacement itself is not modelled (drills never restore in place).
            if self.ctx.store.get(item.source_id) is None:
                raise ArmError(400, SOURCE_VM_GONE, "Replace existing (OriginalLocation) restore needs the source VM; "
                                                    f"'{item.source_id}' no longer exists.")
            raise ArmError(400, NOT_MODELLED, "in-place (OriginalLocation) restore is not modelled by the sandbox")
        if recovery_type.lower() != "restoredisks":
            raise ArmError(400, NOT_MODELLED, f"recoveryType '{recovery_type}' is not modelled by the sandbox "
                                              "(RestoreDisks is)")
        target_group = self._check_restore_disks(vault, props)
        now = self.model.now()
        end = now + timedelta(seconds=self.timing.rs_vm_restore)
        storage_id = str(props["storageAccountId"])

        def start(job_id: str) -> None:
            job = self._job(vault, item, "Restore", now, end, job_id=job_id)
            job.user_triggered = True
            config = f"{item.friendly_name}-{job_id.replace('-', '')[:32]}"
            account = parse_id(storage_id).name
            blob = f"https://{account}.blob.core.windows.net/{config}"
            job.details["propertyBag"] = {
                "Job Type": "Recover disks",
                "Recovery point time ": point.time.strftime("%m/%d/%Y %I:%M:%S %p"),
                "Target Storage Account Name": account,
                "Target resource group": parse_id(target_group).resource_group if target_group else "",
                "Config Blob Container Name": config,
                "Config Blob Name": f"config-{item.friendly_name}-{job_id}.json",
                "Config Blob Uri": f"{blob}/config-{item.friendly_name}-{job_id}.json",
                "Template Blob Uri": f"{blob}/azuredeploy{job_id}.json",
            }
            job.on_done = lambda finished: self._restored(
                vault, item, point, finished, target_group=target_group, storage_id=storage_id)
            self.waker.ensure(end)

        return self._accept_with_job(req, vault, item, start)

    def _check_restore_disks(self, vault: VaultState, props: dict[str, Any]) -> str | None:
        """Synchronous checks of a RestoreDisks request; returns the target resource group id (or None)."""
        storage_id = props.get("storageAccountId")
        if not storage_id:
            # D-vmrestore "Restore disks": a staging location (storage account) is required
            raise ArmError(400, STAGING_REQUIRED, "storageAccountId (the staging location) is required to restore "
                                                  "disks.")
        account = self.ctx.store.get(str(storage_id))
        if account is None or str(account.get("type", "")).lower() != "microsoft.storage/storageaccounts":
            raise ArmError(400, STAGING_NOT_FOUND, f"The staging storage account '{storage_id}' was not found.")
        if _region(str(account.get("location", ""))) != _region(vault.location):
            # D-vmrestore "Storage accounts": "The storage account must be in the same region as the vault."
            raise ArmError(400, STAGING_REGION, f"The staging storage account is in '{account.get('location')}' but "
                                                f"the vault is in '{vault.location}'; it must be in the vault's "
                                                "region.")
        if str(account.get("kind") or "").lower() == "blobstorage":
            # "Storage type: Blob storage isn't supported" (backup-azure-arm-restore-vms.md, "Storage accounts");
            # the code is INFERRED
            raise ArmError(400, STAGING_KIND, f"The staging storage account '{account.get('name')}' is a Blob "
                                              "storage account; restore disks needs a general-purpose one.")
        if "zrs" in str((account.get("sku") or {}).get("name") or "").lower():
            # "The storage account should be in the same region as the Recovery Services vault and shouldn't be zone
            # redundant" (MicrosoftDocs backup/backup-azure-arm-userestapi-restoreazurevms.md, "Restore disks"); the
            # code is INFERRED
            raise ArmError(400, STAGING_ZONE_REDUNDANT, f"The staging storage account '{account.get('name')}' is zone "
                                                        "redundant; restore disks needs one that is not (LRS or GRS).")
        region = props.get("region")
        if region and _region(str(region)) != _region(vault.location):
            # INFERRED: a restore outside the vault's region is Cross Region Restore (its own API), not this one
            raise ArmError(400, INVALID_INPUT, f"region '{region}' differs from the vault's region "
                                               f"'{vault.location}'; use Cross Region Restore for another region.")
        target = props.get("targetResourceGroupId")
        if target:
            parsed = parse_id(str(target))
            if parsed.resource_group is None or not parsed.subscription_id:
                raise ArmError(400, INVALID_INPUT, f"targetResourceGroupId '{target}' is not a resource group id.")
            return str(target)
        return None

    def _restored(self, vault: VaultState, item: Item, point: RecoveryPoint, job: bk.Job, *,
                  target_group: str | None, storage_id: str) -> None:
        """The job ends: managed disks in the target group (D-vmrestore: "Managed disks are created in the
        specified resource group"); without one, the disks are VHD blobs in the staging account (unmanaged)."""
        created: list[str] = []
        record_of = {"restoreJobId": job.id, "recoveryPointId": point.name, "sourceResourceId": item.source_id,
                     "vaultId": vault.id}
        if target_group is not None:
            parsed = parse_id(target_group)
            if not self.ctx.store.exists(target_group):
                raise bk.JobFailed(TARGET_GROUP_NOT_FOUND,
                                   f"The target resource group '{parsed.resource_group}' does not exist.")
            stamp = job.start.strftime("%Y%m%d-%H%M%S")
            for index, disk in enumerate(point.disks):
                suffix = "osdisk" if disk["os"] else f"datadisk-{disk['lun'] if disk['lun'] is not None else index}"
                name = f"{parse_id(item.source_id).name}-{suffix}-{stamp}"  # naming INFERRED
                disk_id = f"{target_group}/providers/Microsoft.Compute/disks/{name}"
                self.ctx.store.put({
                    "id": disk_id, "name": name, "type": "Microsoft.Compute/disks", "location": point.vm_location,
                    "tags": {}, "sku": {"name": disk["sku"], "tier": disk["sku"].split("_")[0]},
                    "properties": {"provisioningState": "Succeeded", "diskState": "Unattached",
                                   "diskSizeGB": disk["sizeGB"],
                                   "creationData": self._creation_data(vault, item, point, job, disk=disk,
                                                                      storage_id=storage_id),
                                   "timeCreated": bk.iso(job.end)},
                }, {"restoredBy": dict(record_of, sourceDiskId=disk["id"])})
                created.append(disk_id)
        else:
            container = str(job.details["propertyBag"]["Config Blob Container Name"])
            private = self.ctx.store.private(storage_id)
            blobs = private.setdefault("restoredBlobs", [])
            for disk in point.disks:
                blobs.append(dict(record_of, container=container, blob=f"{disk['name']}.vhd", sizeGB=disk["sizeGB"]))
                created.append(f"{storage_id}/blobServices/default/containers/{container}/blobs/{disk['name']}.vhd")
            self.ctx.store.set_private(storage_id, private)
        self.created[job.id.lower()] = created

    @staticmethod
    def _creation_data(vault: VaultState, item: Item, point: RecoveryPoint, job: bk.Job, *, disk: dict[str, Any],
                       storage_id: str) -> dict[str, Any]:
        """``creationData`` of a disk the restore made. From the snapshot tier (the restore job started while the
        point's instant restore snapshot existed): ``createOption: Restore`` with ``sourceResourceId`` a disk
        restore point of ``AzureBackupRG_<region>_1/.../restorePointCollections/AzureBackup_<vm>_...`` --
        OBSERVED (hashicorp/terraform-provider-azurerm#3421, #16274; PR #3598: "this gets set when a disk is
        restored from backup"); Compute's ``DiskCreateOption.Restore``: "Create a new disk by copying from a backup
        recovery point". From the vault tier alone: INFERRED ``createOption: Import`` of the disk's VHD in the
        staging account (``sourceUri`` + ``storageAccountId``; Compute's ``Import``: "importing from a blob
        specified by a sourceUri in a storage account specified by storageAccountId"): a vault-tier restore copies
        the data to the staging location first (``backup/backup-azure-arm-restore-vms.md``), and no published
        sample shows such a disk's ``creationData`` (docs/azure-facts.md, "Restore drills")."""
        vm = parse_id(item.source_id)
        if job.start < point.instant_until:
            region = _region(vault.location)
            collection = (f"/subscriptions/{vm.subscription_id}/resourceGroups/AzureBackupRG_{region}_1/providers/"
                          f"Microsoft.Compute/restorePointCollections/AzureBackup_{vm.name}_{point.name[-6:]}")
            stamp = point.time.strftime("%Y%m%d_%H%M%S")
            return {"createOption": "Restore",
                    "sourceResourceId": f"{collection}/restorePoints/AzureBackup_{stamp}/disks/{disk['name']}"}
        container = str(job.details["propertyBag"]["Config Blob Container Name"])
        account = parse_id(storage_id).name
        return {"createOption": "Import", "storageAccountId": storage_id,
                "sourceUri": f"https://{account}.blob.core.windows.net/{container}/{disk['name']}.vhd"}

    def restored(self, job_id: str) -> list[str]:
        """Sandbox inspection: what a finished restore job created (resource ids or blob paths)."""
        self.settle_now()
        return list(self.created.get(job_id.lower(), []))


# -- policy schedules --------------------------------------------------------------------------------------------
def policy_occurrences(policy: Policy, after: datetime, until: datetime) -> list[datetime]:
    """When an Azure VM policy's schedule fires in (after, until] (times taken as UTC; ``timeZone`` ignored).

    SimpleSchedulePolicy: ``scheduleRunFrequency`` Daily/Weekly at ``scheduleRunTimes`` (on ``scheduleRunDays``);
    SimpleSchedulePolicyV2 (Enhanced): ``dailySchedule`` / ``weeklySchedule`` / ``hourlySchedule`` (interval
    hours from ``scheduleWindowStartTime`` for ``scheduleWindowDuration`` hours) -- ProtectionPolicies_Get,
    V2Policy/IaaS_v2_daily, IaaS_v2_hourly.
    """
    schedule = policy.properties.get("schedulePolicy") or {}
    frequency = str(schedule.get("scheduleRunFrequency") or "Daily").lower()
    if str(schedule.get("schedulePolicyType", "")).lower() == "simpleschedulepolicyv2":
        if frequency == "hourly":
            hourly = schedule.get("hourlySchedule") or {}
            window = bk.times_of_day([hourly.get("scheduleWindowStartTime")])
            interval = int(hourly.get("interval") or 4)
            hours = int(hourly.get("scheduleWindowDuration") or 24)
            if not window:
                return []
            base = datetime.combine(after.date(), window[0]).hour
            runs = sorted({(base + k) % 24 for k in range(0, hours, max(1, interval))})
            times = [window[0].replace(hour=h) for h in runs]
            return bk.daily_occurrences(times, after, until)
        if frequency == "weekly":
            weekly = schedule.get("weeklySchedule") or {}
            return bk.daily_occurrences(bk.times_of_day(weekly.get("scheduleRunTimes") or []), after, until,
                                        bk.weekday_numbers(weekly.get("scheduleRunDays") or []))
        daily = schedule.get("dailySchedule") or {}
        return bk.daily_occurrences(bk.times_of_day(daily.get("scheduleRunTimes") or []), after, until)
    times = bk.times_of_day(schedule.get("scheduleRunTimes") or [])
    if frequency == "weekly":
        return bk.daily_occurrences(times, after, until, bk.weekday_numbers(schedule.get("scheduleRunDays") or []))
    return bk.daily_occurrences(times, after, until)


def retention_days(policy: Policy) -> int | None:
    retention = policy.properties.get("retentionPolicy") or {}
    daily = retention.get("dailySchedule") or {}
    duration = daily.get("retentionDuration") or {}
    count = duration.get("count")
    kind = str(duration.get("durationType") or "Days").lower()
    if not isinstance(count, int):
        return None
    return count * {"days": 1, "weeks": 7, "months": 31, "years": 366}.get(kind, 1)


def _region(location: str) -> str:
    return location.replace(" ", "").lower()


# -- registration ------------------------------------------------------------------------------------------------
def register(router: Router, ctx: ProviderContext) -> RecoveryServicesJobs | None:
    try:
        rs = recovery_services(ctx)
    except LookupError:
        return None  # started without the recoveryservices provider
    jobs = RecoveryServicesJobs(ctx, rs)
    routes = router.provider(NAMESPACE, API_VERSIONS)
    guarded = rs.guarded
    routes.add("POST", ITEM + "/backup", guarded(jobs.trigger_backup),
               operation="Microsoft.RecoveryServices/vaults/backupFabrics/protectionContainers/protectedItems/"
                         "backup/action")
    routes.add("GET", V + "/backupJobs", guarded(jobs.list_jobs))
    routes.add("GET", V + "/backupJobs/{jobName}", guarded(jobs.get_job))
    routes.add("POST", V + "/backupJobs/{jobName}/cancel", guarded(jobs.cancel_job),
               operation="Microsoft.RecoveryServices/vaults/backupJobs/cancel/action")
    routes.add("GET", V + "/backupJobs/{jobName}/operationResults/{operationId}", jobs.cancel_result, events=False)
    routes.add("GET", ITEM + "/recoveryPoints", guarded(jobs.list_points))
    routes.add("GET", ITEM + "/recoveryPoints/{recoveryPointId}", guarded(jobs.get_point))
    routes.add("POST", ITEM + "/recoveryPoints/{recoveryPointId}/restore", guarded(jobs.restore),
               operation="Microsoft.RecoveryServices/vaults/backupFabrics/protectionContainers/protectedItems/"
                         "recoveryPoints/restore/action")
    setattr(ctx, _CTX_ATTRIBUTE, jobs)
    return jobs


_CTX_ATTRIBUTE = "_recovery_services_jobs"


def recovery_services_jobs(sandbox: Any) -> RecoveryServicesJobs:
    """The Recovery Services jobs module of an :class:`~sandbox.arm.server.ArmSandbox` (or of its context)."""
    ctx = getattr(sandbox, "ctx", sandbox)
    jobs = getattr(ctx, _CTX_ATTRIBUTE, None)
    if not isinstance(jobs, RecoveryServicesJobs):
        raise LookupError("this sandbox was started without the recoveryservices providers")
    return jobs
