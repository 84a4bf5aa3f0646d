"""The ``restore_drill`` orchestration (issue 17 item 3): prove that backups restore, and leave nothing behind.

candidates -> (pure) due and within budget -> per resource: pick the recovery point (pure, seeded with the drill
id) -> drill group and the drill's storage account -> restore, never in place (Backup vault: ``validateRestore``
first) -> follow the operation, then the restore job, on durable timers (Azure's Retry-After; no activity sleeps)
-> find and tag what it restored -> validate (sizes and SKUs of the source disks) -> ALWAYS clean up: delete what
the drill recorded and that carries its tag, on success, failure and cancel alike -> record and publish
``BackupSteward.Drill.<Outcome>``.

Cancel (``POST /api/drills/{id}/cancel`` raises the ``Cancel`` event): the running Recovery Services job is
cancelled (Backup vault jobs have no cancel API: the drill waits for its end), then the drill cleans up; targets
not yet started are reported Cancelled.

A long drill continues as new every :data:`BATCH` resources (``{"request", "carried"}``: the chosen targets, the
results so far, the next index, whether a cancel came): the history each step replays stays one batch long, so a
drill of 200 resources costs 200 times one, not 200 squared (benchmarks/drill_scale.py measured it). The
instance id, and with it every route, stays the same.

Deterministic: the time is ``context.current_utc_datetime``; every read and effect is an activity.
"""

from __future__ import annotations

from collections.abc import Generator, Mapping, Sequence
from dataclasses import replace
from datetime import timedelta
from typing import Any, Final

import azure.durable_functions as df
from azure.durable_functions.models.history.HistoryEventType import HistoryEventType

from orchestrators.retrying import Backoff, call_with_backoff
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
    CleanedUp,
    DrillCandidates,
    DrillCarried,
    DrillGranted,
    DrillPrepared,
    DrillReport,
    DrillRequest,
    DrillStarted,
    DrillTarget,
    JobState,
    OperationState,
    RecoveryPoints,
    RestoredResources,
    StillThere,
)
from steward.domain.drills import DrillBudget, RecoveryPointRef, pick_recovery_point
from steward.domain.protection_flow import RBAC_PENDING_CODES, rbac_wait
from steward.domain.protection_inputs import RoleGrant
from steward.domain.run_status import RunProgress

bp = df.Blueprint()

Flow = Generator[Any, Any, Any]

EVENT_CANCEL: Final = "Cancel"
RETRY: Final = Backoff(first=timedelta(seconds=5), coefficient=2.0, cap=timedelta(minutes=2), max_attempts=5)
#: bounds on the wait between looks at an operation (Azure's Retry-After, clamped)
POLL_MIN: Final = timedelta(seconds=5)
POLL_MAX: Final = timedelta(minutes=5)
#: looks at one operation before the drill stops following it
MAX_OPERATION_POLLS: Final = 200
#: resources drilled per generation before the orchestration continues as new (its history starts afresh)
BATCH: Final = 5


class _Drill:
    def __init__(self, context: df.DurableOrchestrationContext, drill_id: str, *, cancelled: bool = False) -> None:
        self.context = context
        self.drill_id = drill_id
        self.cancel = context.wait_for_external_event(EVENT_CANCEL)
        self.cancelled_before = cancelled  # a cancel an earlier generation received

    @property
    def cancelled(self) -> bool:
        return self.cancelled_before or bool(self.cancel.is_completed)

    def call(self, name: str, payload: Any) -> Flow:
        return (yield from call_with_backoff(self.context, name, RETRY, payload))

    def sleep(self, seconds: float) -> Flow:
        wait = max(POLL_MIN.total_seconds(), min(POLL_MAX.total_seconds(), seconds))
        yield self.context.create_timer(self.context.current_utc_datetime + timedelta(seconds=wait))

    def follow(self, operation: Mapping[str, Any] | None) -> Flow:
        """An operation to its end: an :class:`OperationState` ``succeeded`` (a restore's ``job_id``) or
        ``failed`` (its ``error``)."""
        if not operation:
            return OperationState(state="succeeded")
        answer = OperationState(state="running", retry_after=operation.get("retryAfter"))
        for _ in range(MAX_OPERATION_POLLS):
            yield from self.sleep(float(answer.retry_after or 10.0))
            answer = OperationState.from_record((yield from self.call(
                "drill_operation", DrillOperationLook(operation).to_record())))
            if answer.state != "running":
                return answer
        return OperationState(state="failed", error={"code": "DrillOperationTimeout",
                                                     "message": f"{operation.get('what')} did not end"})

    def follow_job(self, vault_id: str, job_id: str, group_id: str | None = None) -> Flow:
        """The restore job to its end, looking every Retry-After on a durable timer; a Cancel that arrives
        meanwhile cancels a Recovery Services job. Returns ``(job, cancel_requested, timed_out)``."""
        deadline = self.context.current_utc_datetime + flow.JOB_DEADLINE
        requested = self.cancelled
        cancel_sent = False
        polls = 0
        while True:
            if requested and not cancel_sent:
                cancel_sent = True
                yield from self.call("drill_cancel_job", DrillJobRef(vault_id, job_id).to_record())
            job = JobState.from_record((yield from self.call(
                "drill_job", DrillJobRef(vault_id, job_id, group_id).to_record())))
            if flow.job_outcome(job.status) is not None:
                return job, requested, False
            if self.context.current_utc_datetime >= deadline:
                return job, requested, True
            timer = self.context.create_timer(self.context.current_utc_datetime + flow.job_poll_wait(polls))
            polls += 1
            if requested:
                yield timer
                continue
            winner = yield self.context.task_any([timer, self.cancel])
            if winner is self.cancel:
                timer.cancel()
                requested = True


def _recorded_without_batches(context: df.DurableOrchestrationContext) -> bool:
    """True for a history the code before the batches recorded (a drill in flight across the deployment) that has
    started more than one batch of resources: it finishes in one history, as that code would (handing over now
    would drill resources again). A batched generation never schedules more than BATCH ``drill_points``."""
    started = sum(1 for event in context.histories
                  if event.event_type == HistoryEventType.TASK_SCHEDULED and event.Name == "drill_points")
    return started > BATCH


def _budgets(targets: Sequence[DrillTarget]) -> dict[str, DrillBudget]:
    budgets: dict[str, DrillBudget] = {}
    for target in targets:
        if target.budget is None:
            raise ValueError(f"drill target {target.resource_id} carries no budget")
        budgets[target.rule] = target.budget.budget()
    return budgets


@bp.orchestration_trigger(context_name="context")
def restore_drill(context: df.DurableOrchestrationContext) -> Generator[Any, Any, dict[str, Any] | None]:
    raw = context.get_input() or {}
    carried = DrillCarried.from_record(raw["carried"]) if "request" in raw and raw.get("carried") else None
    given = raw["request"] if carried is not None else raw  # passed on as it came to the next generation
    request = DrillRequest.from_record(given)
    if carried is None:
        drill = _Drill(context, context.instance_id)
        started = context.current_utc_datetime
        context.set_custom_status(RunProgress("candidates").to_record())
        found = DrillCandidates.from_record((yield from drill.call("drill_candidates", DrillCandidatesQuery(
            tuple(request.resources), tuple(request.subscriptions)).to_record())))
        targets = list(found.targets)
        chosen, waiting = flow.choose(targets, _budgets(targets), started, forced=bool(request.resources))
        skipped: list[Any] = list(found.skipped)
        results: list[dict[str, Any]] = []
        first = 0
    else:
        drill = _Drill(context, context.instance_id, cancelled=carried.cancelled)
        started = carried.started_at
        chosen, waiting, skipped = list(carried.chosen), list(carried.waiting), list(carried.skipped)
        results = list(carried.results)
        first = carried.next
    if not request.dry_run:
        batched = carried is not None or not _recorded_without_batches(context)
        for index in range(first, len(chosen)):
            target = chosen[index]
            if batched and index - first >= BATCH:  # a fresh history for the next batch; same instance and routes
                context.continue_as_new({"request": given, "carried": DrillCarried(
                    started_at=started, chosen=tuple(chosen), waiting=tuple(waiting), skipped=tuple(skipped),
                    results=tuple(results), next=index, cancelled=drill.cancelled).to_record()})
                return None
            context.set_custom_status(RunProgress("drill", index, len(chosen), target.resource_id).to_record())
            if drill.cancelled:
                results.append({"resourceId": target.resource_id, "workload": _workload(target).value,
                                "rule": target.rule, "outcome": flow.Outcome.CANCELLED.value,
                                "reason": "cancelled before this resource's drill started", "created": [],
                                "deleted": [], "left": []})
                continue
            result = yield from _drill_one(drill, target)
            results.append(result)
    outcomes: dict[str, int] = {}
    for result in results:
        outcomes[result["outcome"]] = outcomes.get(result["outcome"], 0) + 1
    report = DrillReport(
        id=drill.drill_id, started_at=started, ended_at=context.current_utc_datetime, dry_run=request.dry_run,
        requested_by=request.requested_by, cancelled=drill.cancelled, chosen=tuple(t.resource_id for t in chosen),
        waiting=tuple(waiting), skipped=tuple(skipped), results=tuple(results), outcomes=outcomes,
    ).to_record()
    context.set_custom_status(RunProgress("record", len(results), len(chosen)).to_record())
    if not request.dry_run:
        yield from drill.call("drill_record", DrillReportToRecord(report).to_record())
    context.set_custom_status(RunProgress("done", len(results), len(chosen)).to_record())
    return report


def _workload(target: DrillTarget) -> flow.Workload:
    if target.workload is None:
        raise ValueError(f"drill target {target.resource_id} names no workload")
    return target.workload


def _drill_one(drill: _Drill, target: DrillTarget) -> Flow:
    """One resource's drill; whatever happens, what it created and recorded is cleaned up before it returns."""
    context = drill.context
    workload = _workload(target)
    result: dict[str, Any] = {"resourceId": target.resource_id, "workload": workload.value,
                              "rule": target.rule, "outcome": None, "created": [], "deleted": [], "left": [],
                              "lifetimeSeconds": target.lifetime}
    recorded: list[str] = result["created"]
    try:
        yield from _restore_and_validate(drill, target, result, recorded)
    except Exception as error:  # noqa: BLE001 - an activity the retries gave up on: the drill failed; it still cleans up
        result["outcome"] = flow.Outcome.RESTORE_FAILED.value
        result["error"] = {"code": "DrillStepFailed", "message": str(error)[:500]}
    if drill.cancelled and result["outcome"] in (None, flow.Outcome.SUCCEEDED.value):
        result["outcome"] = flow.Outcome.CANCELLED.value
    context.set_custom_status(RunProgress("cleanup", resource_id=target.resource_id).to_record())
    yield from _cleanup(drill, result, recorded)
    result["outcome"] = result["outcome"] or flow.Outcome.RESTORE_FAILED.value
    return result


def _restore_and_validate(drill: _Drill, target: DrillTarget, result: dict[str, Any],
                          recorded: list[str]) -> Flow:
    context = drill.context
    workload = _workload(target)
    refusal = flow.refusal(workload, target.datastore)
    if refusal is not None:
        result.update(outcome=flow.Outcome.REFUSED.value, reason=refusal)
        return
    listed = RecoveryPoints.from_record((yield from drill.call("drill_points", DrillTargetStep(target).to_record())))
    now = context.current_utc_datetime
    points = [RecoveryPointRef(p.id, p.time) for p in listed.points]
    window = None if target.window is None else timedelta(seconds=float(target.window))
    point = pick_recovery_point(points, choice=target.point, now=now, window=window, seed=drill.drill_id)
    if point is None:
        result.update(outcome=flow.Outcome.NO_RECOVERY_POINT.value,
                      reason=f"no recovery point qualifies ({len(points)} listed)")
        return
    result["recoveryPoint"] = {"id": point.id, "time": point.time.isoformat(),
                               "ageSeconds": (now - point.time).total_seconds()}
    if drill.cancelled:
        return
    prepared = DrillPrepared.from_record((yield from drill.call(
        "drill_prepare", DrillTargetStep(target, drill.drill_id).to_record())))
    if not prepared.ok or prepared.group is None:
        result.update(outcome=flow.Outcome.RESTORE_FAILED.value, error=prepared.error)
        return
    group, account = prepared.group, prepared.account
    result["drillGroup"] = group.id
    if account is not None:
        recorded.append(account.id)
        made = yield from drill.follow(account.operation)
        if made.state != "succeeded":
            result.update(outcome=flow.Outcome.RESTORE_FAILED.value, error=made.error)
            return
    start = DrillRestoreStart(drill.drill_id, target, point.id, group.id,
                              None if account is None else account.to_record())
    if workload is not flow.Workload.VM:
        grants = flow.restore_grants(target.type, group.id, account.id if account is not None else None)
        granted = DrillGranted.from_record((yield from drill.call("drill_grant", DrillGrants(
            target, tuple(RoleGrant(g["role"], g["role_definition_guid"], g["scope"]) for g in grants)).to_record())))
        if not granted.ok:
            result.update(outcome=flow.Outcome.RESTORE_FAILED.value, error=granted.error,
                          reason="the Backup vault's identity could not be given its restore role")
            return
        result["vaultRoles"] = grants
        if workload is flow.Workload.BLOB:  # the role on the drill's own account goes with it: looked at afterwards
            result["vaultRoleAssignments"] = list(granted.assignments)
        context.set_custom_status(RunProgress("validateRestore", resource_id=target.resource_id).to_record())
        attempt, waited = 0, 0.0
        while True:
            checked = DrillStarted.from_record((yield from drill.call(
                "drill_start", replace(start, phase="validate").to_record())))
            error = checked.error
            if checked.ok:
                verdict = yield from drill.follow(checked.operation)
                if verdict.state == "succeeded":
                    break
                error = verdict.error
            code = str((error or {}).get("code") or "").lower()
            # a role just given to the vault's identity takes minutes to apply (Azure RBAC: up to 10 minutes)
            wait = rbac_wait(attempt, waited) if code in RBAC_PENDING_CODES and granted.created else None
            if wait is None or drill.cancelled:
                result.update(outcome=flow.Outcome.RESTORE_FAILED.value, error=error,
                              reason="validateRestore refused the restore")
                return
            yield context.create_timer(context.current_utc_datetime + timedelta(seconds=wait))
            attempt, waited = attempt + 1, waited + wait
    if drill.cancelled:
        return
    context.set_custom_status(RunProgress("restore", resource_id=target.resource_id).to_record())
    sent = DrillStarted.from_record((yield from drill.call("drill_start", replace(start, phase="restore").to_record())))
    waited_for_group = timedelta(0)
    while not sent.ok and (sent.error or {}).get("code") == flow.GROUP_BUSY:
        # another drill's VM restore into the group is in flight: wait until it has taken its disks
        if drill.cancelled:
            return
        if waited_for_group >= flow.JOB_DEADLINE:
            break
        timer = context.create_timer(context.current_utc_datetime + flow.JOB_POLL_CAP)
        if (yield context.task_any([timer, drill.cancel])) is drill.cancel:
            timer.cancel()
            return
        waited_for_group += flow.JOB_POLL_CAP
        sent = DrillStarted.from_record((yield from drill.call(
            "drill_start", replace(start, phase="restore").to_record())))
    if not sent.ok:
        result.update(outcome=flow.Outcome.RESTORE_FAILED.value, error=sent.error)
        return
    if sent.new_disk_id:
        recorded.append(sent.new_disk_id)  # deleted only once it carries the drill's tag
    accepted = yield from drill.follow(sent.operation)
    if accepted.state != "succeeded" or not accepted.job_id:
        result.update(outcome=flow.Outcome.RESTORE_FAILED.value,
                      error=accepted.error or {"code": "NoJob", "message": "the restore named no job"})
        return
    job_id = accepted.job_id
    result["restoreJobId"] = job_id
    context.set_custom_status(RunProgress("restoreJob", resource_id=target.resource_id, job_id=job_id).to_record())
    job, cancel_requested, timed_out = yield from drill.follow_job(target.vault_id, job_id, group.id)
    result["restoreJob"] = {"status": job.status, "startTime": job.start_time, "endTime": job.end_time,
                            "error": job.error_record}
    result["rtoSeconds"] = flow.seconds_between(job.start_time, job.end_time)
    ended = flow.job_outcome(job.status)
    if ended == "completed":
        restored = RestoredResources.from_record((yield from drill.call("drill_restored", DrillRestoreQuery(
            drill.drill_id, target, group.id, before=tuple(sent.before), new_disk_id=sent.new_disk_id,
            job_start=job.start_time, job_end=job.end_time,
            account=None if account is None else account.to_record()).to_record())))
        for item in restored.restored:
            if workload is not flow.Workload.BLOB and str(item["id"]) not in recorded:
                recorded.insert(0, str(item["id"]))  # restored containers go with the drill's (recorded) account
        if workload is flow.Workload.BLOB:
            validation = flow.validate_containers(list(target.expected), list(restored.restored))
        elif workload is flow.Workload.POSTGRES:
            validation = {"passed": True, "problems": [], "checked": 0,
                          "note": "restored as files into the drill's storage account; the job completed (file "
                                  "contents are not read through ARM)"}
        else:
            validation = flow.validate(list(target.expected), list(restored.restored))
        result["validation"] = validation
        result["restored"] = list(restored.restored)
    if cancel_requested:
        result["outcome"] = flow.Outcome.CANCELLED.value
    elif timed_out:
        result["outcome"] = flow.Outcome.TIMED_OUT.value
    elif ended == "failed":
        result.update(outcome=flow.Outcome.RESTORE_FAILED.value, error=job.error_record)
    elif ended == "cancelled":
        result["outcome"] = flow.Outcome.CANCELLED.value
    else:
        passed = bool(result.get("validation", {}).get("passed"))
        result["outcome"] = (flow.Outcome.SUCCEEDED if passed else flow.Outcome.VALIDATION_FAILED).value
        if passed and target.validation_timeout and not drill.cancelled:
            yield from _user_validation(drill, target, result)


def _user_validation(drill: _Drill, target: DrillTarget, result: dict[str, Any]) -> Flow:
    """The user validation hook, after AWS restore testing's validation results (PutRestoreValidationResult,
    docs.aws.amazon.com/aws-backup/latest/devguide/API_PutRestoreValidationResult.html: a self-run validation
    reports SUCCESSFUL / FAILED with an optional message, or the test ends TIMED_OUT): publish ``RestoreReady`` with the
    restored ids, then wait on a durable timer, bounded by the rule's ``validationHook.timeout``, for the
    ``Validation`` event ``POST /api/drills/{id}/validation`` raises; a Cancel ends the wait too. Cleanup runs
    after, whatever the answer."""
    context = drill.context
    until = context.current_utc_datetime + timedelta(seconds=float(target.validation_timeout or 0))
    restored = [str(r["id"]) for r in result.get("restored") or []] or list(result.get("created") or [])
    context.set_custom_status(RunProgress("validation", resource_id=target.resource_id, wait_until=until.isoformat(),
                                          restored=tuple(restored)).to_record())
    yield from drill.call("drill_restore_ready", RestoreReadyNotice(
        drill.drill_id, target.resource_id, _workload(target).value, tuple(restored),
        wait_until=until.isoformat()).to_record())
    timer = context.create_timer(until)
    while True:
        answer = context.wait_for_external_event(flow.EVENT_VALIDATION)
        winner = yield context.task_any([answer, timer, drill.cancel])
        if winner is drill.cancel:
            timer.cancel()
            result["userValidation"] = {"result": "cancelled"}
            result["outcome"] = flow.Outcome.CANCELLED.value
            return
        decided = flow.validation_outcome(None if winner is timer else answer.result, target.resource_id)
        if decided is not None:
            break
    if winner is not timer:
        timer.cancel()
    outcome, record = decided
    result["outcome"] = outcome
    result["userValidation"] = record


def _cleanup(drill: _Drill, result: dict[str, Any], recorded: list[str]) -> Flow:
    """Delete what the drill recorded and that carries its tag; follow the deletes; report what is left."""
    if not recorded:
        return
    assignments = [str(i) for i in result.get("vaultRoleAssignments") or []]
    try:
        cleaned = CleanedUp.from_record((yield from drill.call(
            "drill_cleanup", DrillCleanup(drill.drill_id, tuple(recorded)).to_record())))
        for operation in cleaned.pending:
            yield from drill.follow(operation)
        remaining = StillThere.from_record((yield from drill.call(
            "drill_remaining", DrillStillThere((*recorded, *assignments)).to_record())))
    except Exception as error:  # noqa: BLE001 - the report says what may be left; the leftovers reconciler is not built yet
        result["cleanupError"] = str(error)[:500]
        result["left"] = list(recorded)
        return
    if assignments:  # the vault's role on the drill's account: gone with it, or reported (no tag: never deleted here)
        result["vaultRolesLeft"] = [i for i in assignments if i.lower() in {r.lower() for r in remaining.remaining}]
    left = {i.lower() for i in remaining.remaining}
    removed = {i.lower() for i in cleaned.deleted} | {str(op["id"]).lower() for op in cleaned.pending}
    result["deleted"] = [i for i in recorded if i.lower() in removed and i.lower() not in left]
    result["left"] = [i for i in recorded if i.lower() in left]
    result["skipped"] = list(cleaned.skipped)
