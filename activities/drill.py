"""Activities of restore drills (``orchestrators/drill.py``): one read or effect each, JSON records in and out.

Thin: the adapter is :class:`steward.cloud.drills.DrillOps`, the decisions are in ``steward.domain.drill_flow``.
A transient failure raises (the orchestrator retries on durable timers); a refusal Azure will repeat comes back as
``{"ok": false, "error": {...}}``. No activity waits for Azure: operations and jobs are handed back and followed by
the orchestrator.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import azure.durable_functions as df

from steward import bootstrap, telemetry
from steward.cloud.drills import DrillOps
from steward.cloud.errors import AzureRefusal, NotFound
from steward.cloud.protection import BackupVaultProtection, role_assignment_name
from steward.domain import drill_flow as flow
from steward.domain.drill_inputs import (
    DrillCandidatesQuery,
    DrillCleanup,
    DrillGrants,
    DrillJobRef,
    DrillOperationLook,
    DrillReportToRecord,
    DrillRestoreQuery,
    DrillRestoreStart,
    DrillStillThere,
    DrillTargetStep,
    RestoreReadyNotice,
)
from steward.domain.drill_records import (
    BudgetRecord,
    CleanedUp,
    DrillCandidates,
    DrillGranted,
    DrillGroup,
    DrillPrepared,
    DrillRecorded,
    DrillStarted,
    DrillTarget,
    JobState,
    OperationState,
    RecoveryPoint,
    RecoveryPoints,
    RestoredResources,
    RestoreReadyPublished,
    StagingAccount,
    StillThere,
)
from steward.domain.drill_rules import first_drill
from steward.domain.errors import InvalidResourceId
from steward.domain.ids import ResourceId
from steward.domain.rules import Protect, ResourceFacts, route
from steward.report.drills import save_drill_report
from steward.report.events import drill_events, restore_ready_event
from steward.report.store import CONTENT_TYPES, update

bp = df.Blueprint()

LEFTOVERS = flow.LEFTOVERS_BLOB
#: conditional writes of a drill group's lease before giving up (each lost only to another drill's write)
LEASE_ATTEMPTS = 8


def _ops() -> DrillOps:
    return DrillOps(bootstrap.clients())


def _remember_group(group_id: str, *, owned: bool, seconds: float | None = None) -> None:
    """Tell this worker's Event Grid trigger whether ``group_id`` is a drill-owned group (``ensure_group`` read its
    tag, or made it with the tag): its events for what the drill makes there are then ignored (issue 17). Refreshed
    at each drill step that works in the group, so the entry lives as long as the drill (within the cache's
    lifetime of each step, or ``seconds``)."""
    bootstrap.arm_cache().put(flow.drill_group_key(group_id), owned, seconds=seconds)


def _group_of(resource_id: str) -> str | None:
    parts = resource_id.split("/")
    return "/".join(parts[:5]) if len(parts) > 5 and parts[3].lower() == "resourcegroups" else None


def _lease_document(data: bytes | None) -> dict[str, Any] | None:
    try:
        found = json.loads(data) if data else None
    except ValueError:
        return None  # unreadable: taken again
    return found if isinstance(found, dict) else None


def _take_group(group_id: str, drill_id: str, resource_id: str) -> str | None:
    """Take the drill group's lease for this drill's VM restore (a conditional write in the report store,
    :func:`steward.report.store.update`); the holder when another drill holds it. The lease's time is the wall clock:
    it only ends the lease of a drill that died before its cleanup (``drill_flow.GROUP_LEASE``)."""
    holder: str | None = None

    def change(data: bytes | None) -> bytes | None:
        nonlocal holder
        current = _lease_document(data)
        now = datetime.now(UTC)
        taken = flow.take_lease(current, group_id, drill_id, resource_id, now)
        holder = flow.lease_holder(current, now) if taken is None else None
        return None if taken is None else json.dumps(taken).encode()

    update(bootstrap.report_store(), flow.group_lease_blob(group_id), change, CONTENT_TYPES[".json"],
           attempts=LEASE_ATTEMPTS)
    return holder


def _release_group(group_id: str, drill_id: str) -> None:
    def change(data: bytes | None) -> bytes | None:
        released = flow.release_lease(_lease_document(data), drill_id)
        return None if released is None else json.dumps(released).encode()

    update(bootstrap.report_store(), flow.group_lease_blob(group_id), change, CONTENT_TYPES[".json"])


def _error(error: AzureRefusal) -> dict[str, Any]:
    return {"code": error.code, "message": str(error)}


def _last_name(resource_id: str) -> str:
    return flow.last_drill_blob(resource_id)


def _subscriptions(request: DrillCandidatesQuery) -> list[str]:
    named = [str(s).lower() for s in request.subscriptions]
    from_resources = sorted({str(r).split("/")[2].lower() for r in request.resources
                             if str(r).lower().startswith("/subscriptions/")})
    configured = list(bootstrap.settings().subscriptions)
    # STEWARD_SUBSCRIPTIONS empty means none (README): a drill restores and creates resources, so it never falls
    # back to every subscription the identity can list (the HTTP route refuses such a drill before)
    return named or from_resources or configured


@bp.activity_trigger(input_name="request")
def drill_candidates(request: dict[str, Any]) -> dict[str, Any]:
    """Protected resources a drill rule covers (all, or those named), with what selection and restore need."""
    query = DrillCandidatesQuery.from_record(request)
    ops, rules = _ops(), bootstrap.rules()
    named = {str(r).lower() for r in query.resources}
    targets: list[DrillTarget] = []
    skipped: list[dict[str, Any]] = []
    seen: set[str] = set()
    for subscription in _subscriptions(query):
        try:
            protections = ops.protections(subscription)
        except (NotFound, AzureRefusal) as error:
            skipped.append({"subscription": subscription, "reason": f"cannot be read: {error}"})
            continue
        for protection in protections:
            source = str(protection["sourceId"])
            blob = str(protection.get("datasourceType") or "").lower().endswith("/blobservices")
            resource_id = source.split("/blobServices/", maxsplit=1)[0] if blob else source
            if (named and resource_id.lower() not in named) or resource_id.lower() in seen:
                continue
            seen.add(resource_id.lower())
            resource = ops.get(resource_id)
            if resource is None:
                skipped.append({"resourceId": resource_id, "reason": "the protected resource no longer exists"})
                continue
            try:
                facts = ResourceFacts(ResourceId.parse(resource_id), str(resource.get("location") or ""),
                                      {str(k): str(v) for k, v in (resource.get("tags") or {}).items()})
            except (InvalidResourceId, ValueError) as error:
                skipped.append({"resourceId": resource_id, "reason": str(error)})
                continue
            decision = route(facts, rules)
            drill = first_drill(rules.drills, facts.type, facts.tags,
                                decision.rule if isinstance(decision, Protect) else None)
            if drill is None:
                skipped.append({"resourceId": resource_id, "reason": "no drill rule applies"})
                continue
            workload = flow.WORKLOAD_OF_TYPE.get(facts.type.lower())
            if workload is None:
                skipped.append({"resourceId": resource_id, "reason": f"drills do not restore {facts.type}"})
                continue
            datastore = "VaultStore" if workload is flow.Workload.VM else ops.datastore(protection.get("policyId"))
            expected = ops.source_disks(resource)
            if workload is flow.Workload.BLOB:  # what a vaulted restore brings back: the containers listed
                expected = [{"id": f"{resource_id}/blobServices/default/containers/{name}", "name": name}
                            for name in protection.get("containers") or []]
            size = sum(float(d.get("sizeGb") or 0) for d in expected)  # blobs: unknown through ARM, 0
            if workload is flow.Workload.POSTGRES:
                size = float((((resource.get("properties") or {}).get("storage") or {}).get("storageSizeGB")) or 0)
            last = bootstrap.report_store().get(_last_name(resource_id))
            targets.append(DrillTarget(
                resource_id=resource_id, name=facts.id.name, type=facts.type, location=facts.region,
                subscription=facts.subscription.lower(), workload=workload,
                vault_id=str(protection["vaultId"]), vault_location=str(protection.get("vaultLocation") or ""),
                protection_id=str(protection["protectionId"]), datastore=str(datastore),
                rule=drill.name, every=drill.every.total_seconds(), lifetime=drill.lifetime.total_seconds(),
                point=drill.point, window=None if drill.window is None else drill.window.total_seconds(),
                group=drill.group_for(facts.region, facts.subscription),
                budget=BudgetRecord(share=drill.budget.share, minimum=drill.budget.minimum,
                                    max_concurrent=drill.budget.max_concurrent,
                                    max_restored_gb=drill.budget.max_restored_gb),
                size_gb=size, expected=tuple(expected),
                validation_timeout=None if drill.validation_timeout is None
                else drill.validation_timeout.total_seconds(),
                last_drill_at=json.loads(last).get("startedAt") if last else None,
            ))
    for resource_id in sorted(named - seen):
        skipped.append({"resourceId": resource_id, "reason": "not protected (no backup item or instance found)"})
    return DrillCandidates(targets=tuple(targets), skipped=tuple(skipped)).to_record()


@bp.activity_trigger(input_name="request")
def drill_points(request: dict[str, Any]) -> dict[str, Any]:
    target = DrillTargetStep.from_record(request).target
    points = _ops().recovery_points(target.protection_id, target.datastore)
    return RecoveryPoints(points=tuple(RecoveryPoint.from_record(p) for p in points)).to_record()


@bp.activity_trigger(input_name="request")
def drill_prepare(request: dict[str, Any]) -> dict[str, Any]:
    """The drill group (created, tagged drill-owned, when missing) and, for a VM, a PostgreSQL server or vaulted
    blobs, the drill's own storage account in it (tagged with the drill id)."""
    step = DrillTargetStep.from_record(request)
    drill_id, target = step.drill_id, step.target
    ops = _ops()
    try:
        group = DrillGroup.from_record(ops.ensure_group(target.subscription, target.group, target.location))
        _remember_group(group.id, owned=group.owned)
        if not group.owned:
            return DrillPrepared(ok=False, error={"code": "DrillGroupNotOwned", "message": (
                f"resource group {group.id} exists and is not tagged {flow.DRILL_GROUP_TAG}=true: a drill "
                "restores only into a group the app created")}).to_record()
        account: StagingAccount | None = None
        if target.workload in (flow.Workload.VM, flow.Workload.POSTGRES, flow.Workload.BLOB):
            name = flow.staging_account_name(drill_id, target.resource_id)
            made = ops.create_account(group.id, name, target.vault_location or target.location, drill_id)
            account = StagingAccount(id=str(made["id"]), operation=made.get("operation"), name=name)
    except AzureRefusal as error:
        return DrillPrepared(ok=False, error=_error(error)).to_record()
    return DrillPrepared(ok=True, group=group, account=account).to_record()


@bp.activity_trigger(input_name="request")
def drill_grant(request: dict[str, Any]) -> dict[str, Any]:
    """Give the Backup vault's identity the role it restores with on the drill's target (its ``grants``,
    from ``drill_flow.restore_grants``); idempotent. Returns the roles newly assigned (they take minutes to apply)."""
    wanted = DrillGrants.from_record(request)
    grants = wanted.grants
    if not grants:
        return DrillGranted(ok=True).to_record()
    vault_id = wanted.target.vault_id
    try:
        vault = _ops().get(vault_id) or {}
        principal = str((vault.get("identity") or {}).get("principalId") or "")
        if not principal:
            return DrillGranted(ok=False, error={"code": "VaultIdentityMissing", "message": (
                f"the Backup vault {vault_id} has no system-assigned identity to restore with")}).to_record()
        adapter = BackupVaultProtection(bootstrap.clients())
        created = [g.role for g in grants if adapter.ensure_role(principal, g.role_definition_guid, g.scope)]
    except AzureRefusal as error:
        return DrillGranted(ok=False, error=_error(error)).to_record()
    # where each assignment lives (its deterministic name): a role on the drill's own account goes with the account,
    # and the drill looks afterwards that it did
    assignments = tuple(f"{g.scope}/providers/Microsoft.Authorization/roleAssignments/"
                        f"{role_assignment_name(principal, g.role_definition_guid, g.scope)}"
                        for g in grants)
    return DrillGranted(ok=True, created=tuple(created), assignments=assignments).to_record()


@bp.activity_trigger(input_name="request")
def drill_start(request: dict[str, Any]) -> dict[str, Any]:
    """Send the restore (or, for a Backup vault, its ``validateRestore`` first: ``phase``); never in place."""
    start = DrillRestoreStart.from_record(request)
    drill_id, point, target = start.drill_id, start.point_id, start.target
    group_id, account = start.group_id, start.account or {}
    workload = target.workload
    ops = _ops()
    region = target.vault_location or target.location
    before: tuple[str, ...] = ()
    new_disk: str | None = None
    if workload is flow.Workload.VM:
        body = flow.vm_restore_body(point_id=point, source_id=target.resource_id, region=region,
                                    staging_account_id=str(account["id"]), target_group_id=group_id)
        # one VM restore in flight per drill group: its disks are told from others' only by when they appeared
        holder = _take_group(group_id, drill_id, target.resource_id)
        if holder is not None:
            return DrillStarted(ok=False, error={"code": flow.GROUP_BUSY, "message": (
                f"drill {holder} is restoring a VM's disks into {group_id}; this drill waits for it to take "
                "them")}).to_record()
        before = tuple(str(d["id"]) for d in ops.group_disks(group_id))
        url = f"{target.protection_id}/recoveryPoints/{point}/restore"
    else:
        if workload is flow.Workload.DISK:
            new_disk = f"{group_id}/providers/Microsoft.Compute/disks/" + flow.restored_disk_name(drill_id, target.name)
            inner = flow.disk_restore_body(point_id=point, source_id=target.resource_id, new_disk_id=new_disk,
                                           region=region)
        elif workload is flow.Workload.POSTGRES:
            try:  # the files go into an existing container of the drill's account (made here, idempotent)
                ops.ensure_container(str(account["id"]), flow.FILES_CONTAINER)
            except AzureRefusal as error:
                return DrillStarted(ok=False, error=_error(error)).to_record()
            inner = flow.files_restore_body(point_id=point, source_id=target.resource_id,
                                            account_name=str(account["name"]), region=region,
                                            prefix=f"drill-{flow.short_hash(drill_id)}-")
        elif workload is flow.Workload.BLOB and flow.refusal(workload, target.datastore) is None:
            # vaulted: every container the instance lists, into the drill's own account (never the source)
            inner = flow.blob_restore_body(point_id=point, source_id=target.resource_id, account_id=str(account["id"]),
                                           region=region, containers=[str(c["name"]) for c in target.expected])
        else:
            reason = (flow.refusal(workload, target.datastore) if workload is not None else None) or (
                "not restorable by a drill")
            return DrillStarted(ok=False, error={"code": "DrillRefused", "message": reason}).to_record()
        if start.phase == "validate":
            body = {"restoreRequestObject": inner}
            url = f"{target.protection_id}/validateRestore"
        else:
            body, url = inner, f"{target.protection_id}/restore"
    try:
        operation = ops.post(url, body, f"restore of {target.name}")
    except AzureRefusal as error:
        if workload is flow.Workload.VM:
            _release_group(group_id, drill_id)
        return DrillStarted(ok=False, error=_error(error), new_disk_id=new_disk, before=before).to_record()
    return DrillStarted(ok=True, operation=operation, new_disk_id=new_disk, before=before).to_record()


@bp.activity_trigger(input_name="request")
def drill_operation(request: dict[str, Any]) -> dict[str, Any]:
    operation = dict(DrillOperationLook.from_record(request).operation)
    return OperationState.from_record(_ops().operation_status(operation)).to_record()


@bp.activity_trigger(input_name="request")
def drill_job(request: dict[str, Any]) -> dict[str, Any]:
    """A restore job's state. Each look vouches again for the drill group it restores into (verified by
    ``drill_prepare``), long enough to reach the next look (``drill_flow.JOB_VOUCH_SECONDS``): the restored objects'
    events arrive while the job runs, an hour on Azure, far past one step's cache lifetime."""
    job = DrillJobRef.from_record(request)
    if job.group_id:
        _remember_group(job.group_id, owned=True,
                        seconds=max(bootstrap.arm_cache().seconds, flow.JOB_VOUCH_SECONDS))
    return JobState.from_record(_ops().job(job.vault_id, job.job_id)).to_record()


@bp.activity_trigger(input_name="request")
def drill_cancel_job(request: dict[str, Any]) -> dict[str, Any]:
    """Cancel a Recovery Services restore job (``backupJobs/{job}/cancel``); Backup vault jobs have no cancel API:
    the drill waits for the job to end and cleans up then."""
    job = DrillJobRef.from_record(request)
    vault_id, job_id = job.vault_id, job.job_id
    if "/microsoft.recoveryservices/" not in vault_id.lower():
        return {"cancelled": False, "reason": "Backup vault jobs have no cancel API; the drill waits for it"}
    try:
        _ops().post(f"{vault_id}/backupJobs/{job_id}/cancel", None, f"cancel job {job_id}")
    except AzureRefusal as error:
        return {"cancelled": False, "reason": str(error)}
    return {"cancelled": True}


@bp.activity_trigger(input_name="request")
def drill_restored(request: dict[str, Any]) -> dict[str, Any]:
    """What the restore created, tagged with the drill's id, with sizes and SKUs. A VM restore's job does not name
    its disks (docs/azure-facts.md): they are the drill group's disks created by a restore since the drill
    started it, while its job ran (``timeCreated``), and not tagged by another drill."""
    query = DrillRestoreQuery.from_record(request)
    drill_id, target = query.drill_id, query.target
    ops = _ops()
    _remember_group(query.group_id, owned=True)  # verified by drill_prepare: the restored objects' events
    found: list[dict[str, Any]] = []
    if target.workload is flow.Workload.VM:
        before = {str(i).lower() for i in query.before}
        for disk in ops.group_disks(query.group_id):
            tags = {k.lower(): v for k, v in disk["tags"].items()}
            if disk["id"].lower() in before or not flow.made_by_a_restore(disk.get("createOption")):
                continue
            if tags.get(flow.DRILL_TAG) not in (None, drill_id):
                continue
            if not flow.created_during(disk.get("timeCreated"), query.job_start, query.job_end):
                continue  # another restore's disk (e.g. another drill's restore into the same group)
            found.append(disk)
    elif target.workload is flow.Workload.BLOB:
        # the restored containers, in the drill's account (they cannot carry tags: they go with the tagged account)
        wanted = {str(c["name"]).lower() for c in target.expected}
        account = str((query.account or {}).get("id") or "")
        containers = [c for c in ops.containers(account) if c["name"].lower() in wanted] if account else []
        return RestoredResources(restored=tuple(containers)).to_record()
    elif query.new_disk_id:
        restored = ops.disk_facts(query.new_disk_id)
        if restored is not None:
            found.append(restored)
    for item in found:
        ops.tag(str(item["id"]), drill_id)
    if target.workload is flow.Workload.VM:  # its disks carry its tag: another drill's restore may start
        _release_group(query.group_id, drill_id)
    return RestoredResources(restored=tuple({k: d.get(k) for k in ("id", "sizeGb", "sku")} for d in found)).to_record()


@bp.activity_trigger(input_name="request")
def drill_cleanup(request: dict[str, Any]) -> dict[str, Any]:
    """Delete what the drill recorded and that carries its tag; returns what was deleted, the deletes still
    running (operations) and what was left alone, with why."""
    cleanup = DrillCleanup.from_record(request)
    drill_id, recorded = cleanup.drill_id, list(cleanup.recorded)
    ops = _ops()
    for group in {g for g in map(_group_of, recorded) if g}:  # the drill records only what it made in its group
        _remember_group(group, owned=True)
        _release_group(group, drill_id)  # a VM restore that ended otherwise than with its disks taken
    tags = {i.lower(): ops.tags_of(i) for i in recorded}
    delete, skipped = flow.deletable(recorded, tags, drill_id)
    deleted: list[str] = []
    pending: list[dict[str, Any]] = []
    for resource_id in delete:
        try:
            operation = ops.delete(resource_id)
        except AzureRefusal as error:
            skipped.append({"id": resource_id, "reason": f"delete refused: {error}"})
            continue
        if operation is None:
            deleted.append(resource_id)
        else:
            pending.append({**operation, "id": resource_id})
    return CleanedUp(deleted=tuple(deleted), pending=tuple(pending), skipped=tuple(skipped)).to_record()


@bp.activity_trigger(input_name="request")
def drill_remaining(request: dict[str, Any]) -> dict[str, Any]:
    ops = _ops()
    ids = DrillStillThere.from_record(request).ids
    return StillThere(remaining=tuple(i for i in ids if ops.get(i) is not None)).to_record()


@bp.activity_trigger(input_name="request")
def drill_record(request: dict[str, Any]) -> dict[str, Any]:
    """Store the drill's report (``drills/<id>.json``), each resource's last drill, and publish one
    ``BackupSteward.Drill.<Outcome>`` event per drilled resource."""
    report = dict(DrillReportToRecord.from_record(request).report)
    store = bootstrap.report_store()
    saved = save_drill_report(store, report)  # drills/<id>.json and .html, and the RTO history
    # the shared documents are updated conditionally (ETag / If-Match, again on 412): two drills recording at once,
    # or a drill and the audit's reconciler, never lose each other's update
    for result in report.get("results") or []:
        def last(previous: bytes | None, result: dict[str, Any] = result) -> bytes:
            record = flow.last_drill_record(json.loads(previous) if previous else None, report, result)
            return json.dumps(record).encode()

        update(store, _last_name(str(result["resourceId"])), last, "application/json")
    if any(r.get("left") for r in report.get("results") or []):
        update(store, LEFTOVERS, lambda index: json.dumps(
            flow.add_leftovers(json.loads(index) if index else None, report)).encode(), "application/json")
    telemetry.record_drill(report)
    events = drill_events(report)
    published = bootstrap.publisher().publish(events) if events else 0
    return DrillRecorded(events=len(events), published=published, report=f"drills/{report['id']}.json",
                         json_url=saved.json_url, html_url=saved.html_url).to_record()


@bp.activity_trigger(input_name="request")
def drill_restore_ready(request: dict[str, Any]) -> dict[str, Any]:
    """Publish ``BackupSteward.Drill.RestoreReady``: the restored ids the user's validation hook may check, and
    until when the drill waits for ``POST /api/drills/{id}/validation``."""
    event = restore_ready_event(RestoreReadyNotice.from_record(request).to_record())
    return RestoreReadyPublished(published=bootstrap.publisher().publish([event])).to_record()
