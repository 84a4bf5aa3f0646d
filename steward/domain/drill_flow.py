"""Restore drills, the decisions of one run (issue 17 item 3): which targets are due, what each restore asks Azure
for (never in place), whether what came back is valid, what may be deleted, and how the drill ends.

Pure: no I/O, no clock, no Azure SDK. The orchestrator (``orchestrators/drill.py``) passes what activities read
and its own ``current_utc_datetime``; everything here is JSON records in and out so it travels through the Durable
history unchanged.

Where a restore goes (docs/azure-facts.md, "Backups, jobs, recovery points and restores"):
- Azure VM (Recovery Services): ``RestoreDisks`` into the drill resource group with a staging storage account in
  the vault's region ("The storage account must be in the same region as the vault",
  MicrosoftDocs/azure-docs ``articles/backup/backup-azure-arm-restore-vms.md``; "Managed disks are created in
  the specified resource group"). No VM is created, no network attached.
- Managed disk (Backup vault): as a new disk ("the Original-Location Recovery (OLR) option ... isn't supported",
  ``backup/disk-backup-overview.md``), named here, in the drill group.
- PostgreSQL flexible server (Backup vault): as files (``RestoreFilesTargetInfo``, ``AzureBlobs``) into a container
  of a drill storage account (``backup-azure-database-postgresql-flex-support-matrix.md``: "recovered in user
  specified storage containers").
- Blobs with operational backup: these restore only to the source account (``backup/blob-backup-overview.md``:
  operational data is "stored locally within the source storage account"): refused, a drill never restores in
  place.
- Blobs with vaulted backup: only to ANOTHER storage account ("Vaulted backups only support restoring data to another
  storage account", ``backup/blob-restore.md``, vaulted tab): the drill's own account in the drill group, the
  containers the backup instance lists as ``ItemPathBasedRestoreCriteria`` of an ``ItemLevelRestoreTargetInfo``
  (``includes/blob-vaulted-backup-restore-restapi.md``), the vault holding Storage Account Backup Contributor on that
  account (same article: "Ensure that the Backup vault has the Storage account backup contributor role assigned to
  the target storage account").
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Final, TypeVar

from steward.domain.drill_records import DrillTarget, Workload
from steward.domain.drill_rules import DrillRule
from steward.domain.drills import DrillBudget, DrillCandidate, select_candidates
from steward.domain.ids import ResourceId
from steward.domain.kernel import parse_time, require_time
from steward.domain.workloads import RESTORE_ROLES, RoleScope

__all__ = ["Workload"]

T = TypeVar("T", DrillTarget, Mapping[str, Any])

#: the tag every resource a drill creates carries; its value is the drill's id. Cleanup deletes only ids the drill
#: recorded AND that carry this tag with its id.
DRILL_TAG: Final = "backup-steward:drill"
#: the tag of the drill resource group (created by the app; one per region and subscription)
DRILL_GROUP_TAG: Final = "backup-steward:drill-group"
#: the container PostgreSQL backups are restored into (a container of the drill's own storage account)
FILES_CONTAINER: Final = "drill-restore"
#: how long a restore job is followed before the drill gives up on it (and still cleans up)
JOB_DEADLINE: Final = timedelta(hours=24)
#: wait between looks at a job when Azure suggests nothing (the restore answers carry Retry-After: 60): the first
#: look; each next waits twice as long, up to JOB_POLL_CAP (a job's own start and end times give the RTO, so a later
#: look costs the drill's end a few minutes, never the measurement's precision)
DEFAULT_POLL: Final = timedelta(seconds=60)
JOB_POLL_CAP: Final = timedelta(minutes=5)
#: how long a look at a running restore job vouches for the drill group (``drill_job``): two of the longest waits
#: between looks, so the vouch reaches the next look even when that one runs late (the Event Grid trigger ignores
#: the restored objects' events only while it lasts)
JOB_VOUCH_SECONDS: Final = 2 * JOB_POLL_CAP.total_seconds()


#: what a drill makes in its group, by type (lower-cased): restored disks, its storage account and, in it, restored
#: blob containers (``ContainerCreated`` names the account). The only types whose events the trigger ignores there.
DRILL_MADE_TYPES: Final = frozenset({"microsoft.compute/disks", "microsoft.storage/storageaccounts"})
_REGION_NAME: Final = "[a-z0-9]+"


def drill_group_of(resource: ResourceId, drills: Sequence[DrillRule]) -> str | None:
    """The id of the resource group ``resource`` lives in when the group's NAME is a drill rule's drill group (its
    template, ``{subscription}`` filled in, ``{region}`` any region name) and the resource is of a type drills make
    (:data:`DRILL_MADE_TYPES`); else None. The name alone proves nothing (anyone can name a group so): the caller
    must also find the group tagged :data:`DRILL_GROUP_TAG` ``true`` (:func:`drill_owned`) before it ignores an
    event."""
    group = resource.resource_group
    if not group or resource.full_type.lower() not in DRILL_MADE_TYPES:
        return None
    for drill in drills:
        pattern = re.escape(drill.resource_group.lower()).replace(re.escape("{region}"), _REGION_NAME)
        pattern = pattern.replace(re.escape("{subscription}"), re.escape(resource.subscription_id.lower()))
        if re.fullmatch(pattern, group.lower()):
            return f"/subscriptions/{resource.subscription_id}/resourceGroups/{group}"
    return None


def drill_group_key(group_id: str) -> tuple[str, str]:
    """The app's ARM-cache key under which a worker remembers that a drill group is (or is not) drill-owned."""
    return ("drill-group", group_id.lower())


def drill_owned(group_tags: Mapping[str, str] | None) -> bool:
    """Whether a resource group's tags say the app made it for drills (:data:`DRILL_GROUP_TAG` = ``true``, what
    ``ensure_group`` writes and requires)."""
    return any(k.lower() == DRILL_GROUP_TAG and str(v).lower() == "true" for k, v in (group_tags or {}).items())


def job_poll_wait(polls: int) -> timedelta:
    """The wait before the next look at a running restore job, after ``polls`` looks: 60 s, 120 s, 240 s, then
    5 minutes each (a 1-hour VM restore: 14 looks instead of 60; INFERRED sufficient: Azure publishes no job
    duration, the sandbox's models are 15 to 60 minutes)."""
    doubled: timedelta = DEFAULT_POLL * (2 ** min(max(polls, 0), 10))
    return min(JOB_POLL_CAP, doubled)

VM_TYPE: Final = "microsoft.compute/virtualmachines"
DISK_TYPE: Final = "microsoft.compute/disks"
PG_TYPE: Final = "microsoft.dbforpostgresql/flexibleservers"
STORAGE_TYPE: Final = "microsoft.storage/storageaccounts"


class Outcome(StrEnum):
    SUCCEEDED = "Succeeded"  # restored, validated, cleaned up
    VALIDATION_FAILED = "ValidationFailed"  # the job completed but what it restored is not what was backed up
    RESTORE_FAILED = "RestoreFailed"  # Azure refused the restore or its job failed
    CANCELLED = "Cancelled"
    REFUSED = "Refused"  # the drill would have to restore in place (or cannot restore this kind at all)
    NO_RECOVERY_POINT = "NoRecoveryPoint"
    TIMED_OUT = "TimedOut"
    VALIDATION_TIMED_OUT = "ValidationTimedOut"  # the user validation hook gave no result within its timeout


#: the event published when a drill's restored objects are checked and wait for the user's validation hook
RESTORE_READY: Final = "BackupSteward.Drill.RestoreReady"
#: the external event ``POST /api/drills/{id}/validation`` raises
EVENT_VALIDATION: Final = "Validation"
VALIDATION_RESULTS: Final = ("pass", "fail")


def validation_outcome(answer: Mapping[str, Any] | None, resource_id: str) -> tuple[str, dict[str, Any]] | None:
    """The drill's outcome and its ``userValidation`` record from a ``Validation`` event (None: the event names
    another resource's wait, and the drill keeps waiting). ``answer`` None: the wait timed out."""
    if answer is None:
        return Outcome.VALIDATION_TIMED_OUT.value, {"result": "timedOut"}
    named = answer.get("resourceId")
    if named and str(named).lower() != resource_id.lower():
        return None
    result = str(answer.get("result") or "")
    record = {"result": result, "detail": answer.get("detail"), "by": answer.get("by")}
    return (Outcome.SUCCEEDED if result == "pass" else Outcome.VALIDATION_FAILED).value, record


WORKLOAD_OF_TYPE: Final[dict[str, Workload]] = {
    VM_TYPE: Workload.VM,
    DISK_TYPE: Workload.DISK,
    PG_TYPE: Workload.POSTGRES,
    STORAGE_TYPE: Workload.BLOB,
}


def short_hash(*parts: str, length: int = 10) -> str:
    return hashlib.sha256("\x00".join(p.lower() for p in parts).encode()).hexdigest()[:length]


def staging_account_name(drill_id: str, resource_id: str) -> str:
    """A storage account name (3-24 lower-case letters and digits, unique in Azure) of this drill and resource."""
    return "bsdrill" + short_hash(drill_id, resource_id, length=17)


def restored_disk_name(drill_id: str, source_name: str) -> str:
    """The new disk a disk drill restores into (disk names: up to 80 characters)."""
    return f"{source_name[:50]}-drill-{short_hash(drill_id, source_name)}"


def refusal(workload: Workload, datastore: str) -> str | None:
    """Why a drill refuses to restore this protection, or None when it can restore it elsewhere."""
    if workload is Workload.BLOB and datastore.lower() == "operationalstore":
        return ("operational blob backup restores only in place, into the source storage account "
                "(backup/blob-backup-overview.md); a drill never restores in place")
    return None


@dataclass(frozen=True)
class DueCandidate:
    """A protected resource a drill rule covers, with what selection needs."""

    resource_id: str
    rule: str
    every: timedelta
    size_gb: float
    last_drill_at: datetime | None


def due(candidates: Iterable[DueCandidate], now: datetime) -> list[DueCandidate]:
    """Never drilled, or last drilled at least ``every`` ago."""
    return [c for c in candidates if c.last_drill_at is None or now - c.last_drill_at >= c.every]


def choose(targets: Sequence[T], budgets: Mapping[str, DrillBudget], now: datetime, *,
           forced: bool) -> tuple[list[T], list[dict[str, Any]]]:
    """The targets this run drills, per drill rule under its budget; and the others with the reason.

    ``targets``: :class:`DrillTarget` records (or their mappings: ``resourceId``, ``rule`` (drill rule), ``every``
    (seconds), ``sizeGb``, ``lastDrillAt`` (ISO or None)), returned as given. ``forced`` (named resources of an
    on-demand run): no ``every`` check, but the budgets still hold."""
    chosen: list[T] = []
    waiting: list[dict[str, Any]] = []
    read = [(DrillTarget.read(t), t) for t in targets]
    by_id = {r.resource_id.lower(): t for r, t in read}
    rules = sorted({r.rule for r, _ in read})
    for rule in rules:
        of_rule = [r for r, _ in read if r.rule == rule]
        candidates = [DueCandidate(r.resource_id, rule, timedelta(seconds=float(r.every)),
                                   float(r.size_gb), parse_time(r.last_drill_at)) for r in of_rule]
        ready = candidates if forced else due(candidates, now)
        ready_ids = {c.resource_id.lower() for c in ready}
        waiting += [{"resourceId": c.resource_id, "reason": "notDue"} for c in candidates
                    if c.resource_id.lower() not in ready_ids]
        selection = select_candidates(
            [DrillCandidate(c.resource_id, "", c.size_gb, c.last_drill_at) for c in ready], budgets[rule])
        chosen += [by_id[c.resource_id.lower()] for c in selection.chosen]
        waiting += [{"resourceId": d.candidate.resource_id, "reason": d.reason.value} for d in selection.deferred]
    return chosen, waiting


# ---- restore requests ----------------------------------------------------------------------------------------


def vm_restore_body(*, point_id: str, source_id: str, region: str, staging_account_id: str,
                    target_group_id: str) -> dict[str, Any]:
    """Recovery Services ``RestoreDisks`` (S-RSB 2025-02-01 TriggerRestore_RestoreDisks_IaasVMRestoreRequest):
    managed disks into the drill group, staging in the drill's storage account; no VM, no network."""
    return {"properties": {
        "objectType": "IaasVMRestoreRequest",
        "recoveryPointId": point_id,
        "recoveryType": "RestoreDisks",
        "sourceResourceId": source_id,
        "storageAccountId": staging_account_id,
        "targetResourceGroupId": target_group_id,
        "region": region,
        "createNewCloudService": False,
        "originalStorageAccountOption": False,
        "encryptionDetails": {"encryptionEnabled": False},
    }}


def disk_restore_body(*, point_id: str, source_id: str, new_disk_id: str, region: str) -> dict[str, Any]:
    """Backup vault restore of a disk as a new disk (S-DP 2025-07-01 TriggerRestore, RestoreTargetInfo)."""
    return {
        "objectType": "AzureBackupRecoveryPointBasedRestoreRequest",
        "recoveryPointId": point_id,
        "sourceDataStoreType": "OperationalStore",
        "sourceResourceId": source_id,
        "restoreTargetInfo": {
            "objectType": "RestoreTargetInfo",
            "recoveryOption": "FailIfExists",
            "restoreLocation": region,
            "datasourceInfo": {"objectType": "Datasource", "resourceID": new_disk_id,
                               "resourceName": new_disk_id.rsplit("/", 1)[-1],
                               "resourceType": "Microsoft.Compute/disks",
                               "datasourceType": "Microsoft.Compute/disks"},
        },
    }


def files_restore_body(*, point_id: str, source_id: str, account_name: str, region: str,
                       prefix: str) -> dict[str, Any]:
    """Backup vault restore as files into a container (S-DP 2025-07-01 TriggerRestoreAsFiles)."""
    return {
        "objectType": "AzureBackupRecoveryPointBasedRestoreRequest",
        "recoveryPointId": point_id,
        "sourceDataStoreType": "VaultStore",
        "sourceResourceId": source_id,
        "restoreTargetInfo": {
            "objectType": "RestoreFilesTargetInfo",
            "recoveryOption": "FailIfExists",
            "restoreLocation": region,
            "targetDetails": {"url": f"https://{account_name}.blob.core.windows.net/{FILES_CONTAINER}",
                              "filePrefix": prefix, "restoreTargetLocationType": "AzureBlobs"},
        },
    }


def blob_restore_body(*, point_id: str, source_id: str, account_id: str, region: str,
                      containers: Sequence[str]) -> dict[str, Any]:
    """Backup vault restore of vaulted blobs into another storage account (S-DP 2025-07-01 TriggerRestore,
    ``ItemLevelRestoreTargetInfo`` with one ``ItemPathBasedRestoreCriteria`` per container, as MicrosoftDocs/azure-docs
    ``includes/blob-vaulted-backup-restore-restapi.md`` sends it): the containers keep their names in the drill's
    account."""
    return {
        "objectType": "AzureBackupRecoveryPointBasedRestoreRequest",
        "recoveryPointId": point_id,
        "sourceDataStoreType": "VaultStore",
        "sourceResourceId": source_id,
        "restoreTargetInfo": {
            "objectType": "ItemLevelRestoreTargetInfo",
            "recoveryOption": "FailIfExists",
            "restoreLocation": region,
            "restoreCriteria": [{"objectType": "ItemPathBasedRestoreCriteria", "itemPath": name,
                                 "isPathRelativeToBackupItem": True} for name in containers],
            "datasourceInfo": {"objectType": "Datasource", "resourceID": account_id,
                               "resourceName": account_id.rsplit("/", 1)[-1],
                               "resourceType": "Microsoft.Storage/storageAccounts",
                               "resourceLocation": region, "resourceUri": account_id,
                               "datasourceType": "Microsoft.Storage/storageAccounts/blobServices"},
        },
    }


# ---- validation, cleanup, outcome ---------------------------------------------------------------------------


def validate(expected: Sequence[Mapping[str, Any]], restored: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Restored disks against the source disks: as many, each source size met by one restored disk of the same
    size and SKU. Records ``{"passed", "problems", "checked"}``."""
    problems: list[str] = []
    left = [dict(r) for r in restored]
    for disk in expected:
        size, sku = disk.get("sizeGb"), str(disk.get("sku") or "").lower()
        match = next((r for r in left if r.get("sizeGb") == size and str(r.get("sku") or "").lower() == sku), None)
        if match is None:
            problems.append(f"no restored disk of {size} GB {disk.get('sku')} for {disk.get('id') or 'a disk'}")
        else:
            left.remove(match)
    problems += [f"unexpected restored disk {r.get('id')} ({r.get('sizeGb')} GB {r.get('sku')})" for r in left]
    if not expected and not restored:
        problems.append("nothing was restored")
    return {"passed": not problems, "problems": problems, "checked": len(expected)}


def validate_containers(expected: Sequence[Mapping[str, Any]], restored: Sequence[Mapping[str, Any]]
                        ) -> dict[str, Any]:
    """Restored blob containers against the containers the drill restored: each one is in the drill's account (by
    name; ARM cannot read the blobs). Records ``{"passed", "problems", "checked"}``."""
    found = {str(r.get("name") or "").lower() for r in restored}
    problems = [f"container {c.get('name')} was not restored" for c in expected
                if str(c.get("name") or "").lower() not in found]
    if not expected:
        problems.append("the backup instance lists no container to restore")
    return {"passed": not problems, "problems": problems, "checked": len(expected)}


def deletable(recorded: Iterable[str], tags_of: Mapping[str, Mapping[str, str] | None], drill_id: str
              ) -> tuple[list[str], list[dict[str, str]]]:
    """What cleanup may delete: ids the drill recorded whose current tags carry :data:`DRILL_TAG` = its id.
    ``tags_of`` maps a recorded id (lower-cased) to its tags, None when it is gone. Returns (delete, skipped with
    the reason)."""
    delete: list[str] = []
    skipped: list[dict[str, str]] = []
    for resource_id in dict.fromkeys(recorded):
        tags = tags_of.get(resource_id.lower())
        if tags is None:
            skipped.append({"id": resource_id, "reason": "gone"})
            continue
        value = next((v for k, v in tags.items() if k.lower() == DRILL_TAG), None)
        if value != drill_id:
            skipped.append({"id": resource_id, "reason": f"not tagged {DRILL_TAG}={drill_id}"})
            continue
        delete.append(resource_id)
    return delete, skipped


def job_outcome(status: str) -> str | None:
    """A job's terminal state in the drill's words; None while it runs."""
    lowered = status.lower()
    if lowered in ("completed", "succeeded"):
        return "completed"
    if lowered in ("failed", "completedwithwarnings"):
        return "failed" if lowered == "failed" else "completed"
    if lowered in ("cancelled", "canceled"):
        return "cancelled"
    return None


def seconds_between(start: str | None, end: str | None) -> float | None:
    if not start or not end:
        return None
    return (require_time(end) - require_time(start)).total_seconds()


#: slack after a job's end within which the disks it restored may carry their creation time (INFERRED)
CREATED_SLACK: Final = timedelta(minutes=5)


#: the ``creationData.createOption`` values a disk restored from an Azure VM backup can carry (lower case): Compute's
#: ``Restore`` ("Create a new disk by copying from a backup recovery point"; OBSERVED on disks restored from the
#: snapshot tier, hashicorp/terraform-provider-azurerm#3421, #16274), and, INFERRED for a restore from the vault tier
#: alone (its data is copied to the staging account first, ``backup/backup-azure-arm-restore-vms.md``; no source
#: shows such a disk), ``Import`` ("importing from a blob specified by a sourceUri in a storage account") and its
#: Trusted Launch / Confidential VM form ``ImportSecure``. docs/azure-facts.md, "Restore drills".
RESTORED_DISK_CREATE_OPTIONS: Final = frozenset({"restore", "import", "importsecure"})


def made_by_a_restore(create_option: object) -> bool:
    """Whether a disk whose ``creationData.createOption`` is ``create_option`` can be one a VM restore created."""
    return str(create_option or "").lower() in RESTORED_DISK_CREATE_OPTIONS


def created_during(created: str | None, job_start: str | None, job_end: str | None) -> bool:
    """Whether a disk created at ``created`` can be the work of a restore job that ran from ``job_start`` to
    ``job_end`` (+ :data:`CREATED_SLACK`). Unknown times do not exclude it."""
    if not created or not job_start:
        return True
    moment = require_time(created)
    if moment < require_time(job_start):
        return False
    return not job_end or moment <= require_time(job_end) + CREATED_SLACK


def event_type(outcome: str) -> str:
    return f"BackupSteward.Drill.{outcome}"


def restore_grants(resource_type: str, group_id: str, account_id: str | None) -> list[dict[str, str]]:
    """The role assignments the Backup vault's identity needs before it can restore this resource type into the
    drill: a disk into the drill group, PostgreSQL files and vaulted blobs into the drill's account
    (workloads.RESTORE_ROLES). A Recovery Services VM restore needs none (the service writes with the caller's
    rights)."""
    grants = []
    for role in RESTORE_ROLES.get(resource_type.lower(), ()):
        scope = group_id if role.scope is RoleScope.RESOURCE_GROUP else account_id
        if scope:
            grants.append({"role": role.role_name, "role_definition_guid": role.role_definition_guid,
                           "scope": scope})
    return grants


# ---- after the drill: the last-drill record and the leftovers the audit's reconciler deletes --------------------


#: what drills recorded and could not delete, with when each drill's lifetime ends (every audit reconciles them)
LEFTOVERS_BLOB: Final = "drills/leftovers.json"


def last_drill_blob(resource_id: str) -> str:
    """Where the report store keeps a resource's last drill (``last_drill_record``)."""
    return f"drills/last/{short_hash(resource_id, length=32)}.json"


def last_drill_record(previous: Mapping[str, Any] | None, report: Mapping[str, Any],
                      result: Mapping[str, Any]) -> dict[str, Any]:
    """What ``drills/last/<resource>.json`` keeps: the last drill, and when a drill of it last succeeded (carried
    over from ``previous`` when this one did not) - the audit's DRL-001 and DRL-002 read it."""
    succeeded = str(result.get("outcome")) == Outcome.SUCCEEDED.value
    last_success = report.get("startedAt") if succeeded else (previous or {}).get("lastSucceededAt")
    return {"drillId": report["id"], "startedAt": report["startedAt"], "outcome": result["outcome"],
            "lastSucceededAt": last_success}


def add_leftovers(index: Mapping[str, Any] | None, report: Mapping[str, Any]) -> dict[str, Any]:
    """The leftovers index (``drills/leftovers.json``) with this drill's ``left`` ids added: ids the drill recorded
    and could not delete, with when their lifetime ends (the drill's start + the rule's lifetime). A drill already
    in the index is not added twice (a retried record activity, or a conditional write retried after a 412)."""
    entries = [dict(e) for e in (index or {}).get("entries") or []]
    if any(e.get("drillId") == str(report["id"]) for e in entries):
        return {"entries": entries}
    started = require_time(str(report["startedAt"]))
    for result in report.get("results") or []:
        left = [str(i) for i in result.get("left") or []]
        if not left:
            continue
        lifetime = float(result.get("lifetimeSeconds") or 0)
        entries.append({"drillId": str(report["id"]), "resourceId": str(result.get("resourceId") or ""),
                        "ids": left, "expiresAt": (started + timedelta(seconds=lifetime)).isoformat()})
    return {"entries": entries}


def expired_leftovers(index: Mapping[str, Any] | None, now: datetime) -> list[dict[str, Any]]:
    """``{"id", "drillId", "expiredAt"}`` of every recorded leftover whose lifetime has ended at ``now``."""
    found = []
    for entry in (index or {}).get("entries") or []:
        expires = require_time(str(entry["expiresAt"]))
        if expires <= now:
            found += [{"id": i, "drillId": str(entry["drillId"]), "expiredAt": str(entry["expiresAt"])}
                      for i in entry.get("ids") or []]
    return found


def after_reconcile(index: Mapping[str, Any] | None, outcomes: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The index without the ids the reconciler saw gone or deleted (a delete still running stays until gone; an id
    kept because it lost the drill's tag is dropped: it is no longer the drill's to delete)."""
    done = {str(o["id"]).lower() for o in outcomes if o.get("effect") in ("gone", "deleted", "kept")}
    entries = []
    for entry in (index or {}).get("entries") or []:
        ids = [i for i in entry.get("ids") or [] if str(i).lower() not in done]
        if ids:
            entries.append({**entry, "ids": ids})
    return {"entries": entries}


#: how long a VM drill's lease on its drill group lasts (``group_lease``): the longest a drill follows its restore
#: job, and an hour more; released when the drill has tagged its restored disks, or at its cleanup. Only a drill
#: that died between its restore and its cleanup leaves one to expire
GROUP_LEASE: Final = JOB_DEADLINE + timedelta(hours=1)
#: the error ``drill_start`` answers while another drill's VM restore into the group is in flight
GROUP_BUSY: Final = "DrillGroupBusy"


def group_lease_blob(group_id: str) -> str:
    """The report store's document holding a drill group's lease (one VM restore in flight per group)."""
    return f"drill-leases/{short_hash(group_id.lower(), length=16)}.json"


def lease_holder(lease: Mapping[str, Any] | None, now: datetime) -> str | None:
    """The drill holding the lease at ``now`` (None: free, or expired)."""
    if not lease or not lease.get("holder"):
        return None
    until = parse_time(str(lease.get("until") or ""))
    return None if until is None or until <= now else str(lease["holder"])


def take_lease(lease: Mapping[str, Any] | None, group_id: str, drill_id: str, resource_id: str,
               now: datetime) -> dict[str, Any] | None:
    """The lease ``drill_id`` takes on its drill group before it restores a VM's disks there: a VM restore's job
    names no restored disk, the drill takes the group's new disks, so two VM restores in flight in one group would
    each take the other's. Taken again by the same drill for the same resource (an activity retried). None: held
    for another restore (the drill waits and asks again)."""
    holder = lease_holder(lease, now)
    if holder is not None and (holder != drill_id or str((lease or {}).get("resourceId")) != resource_id):
        return None  # another drill's, or this drill's for another resource (its disks not yet taken)
    return {"group": group_id, "holder": drill_id, "resourceId": resource_id, "since": now.isoformat(),
            "until": (now + GROUP_LEASE).isoformat()}


def release_lease(lease: Mapping[str, Any] | None, drill_id: str) -> dict[str, Any] | None:
    """The lease once ``drill_id`` let it go (None: it held none, nothing to write)."""
    if not lease or lease.get("holder") != drill_id:
        return None
    return {"group": lease.get("group"), "holder": None, "releasedBy": drill_id}
