"""``teardown_vault``: the vault teardown saga. Plan, approve, empty in the documented order, delete, record.

Input: ``TeardownRequest.to_record()`` (or, after ``continue_as_new``, ``{"request": ..., "saga": ...}``).
Output: the final report, a ``TeardownReport`` record (``steward.report.teardown.build_report``); custom status:
a ``TeardownShown`` record.

The orchestrator decides nothing itself: ``steward.domain.teardown`` plans and picks the next step; activities
(``activities/teardown.py``) read facts and act. Deterministic: no I/O, time from
``context.current_utc_datetime``, logs only when not replaying.

Lifecycle (custom status ``phase``): ``planning`` -> (``awaiting-approval``) -> ``running`` ->
(``awaiting-security-approval`` | ``waiting-for-purge``) -> ``finished``. External events:
``TeardownApproved`` ``{"fingerprint", "approvedBy"}``, ``SecurityApprovalGranted`` ``{"grantedBy"}``,
``Cancel`` ``{"by", "reason"}``. Long waits (AlwaysON soft delete: up to 180 days) sleep in chunks of
``waitChunkHours`` and ``continue_as_new`` between chunks, so the history stays small.

Cancel: no effect is scheduled once a Cancel has arrived. An effect already running (one batch of at most
``maxParallelWrites`` deletes, a setting change) cannot be called back: the saga waits for it and records it, so
that compensation turns back what it turned off and the report lists exactly what was deleted. Once the vault's
own delete has started, it is not cancelled.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Generator, Mapping
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

import azure.durable_functions as df

from steward.domain.teardown import (
    EVENT_APPROVE,
    EVENT_CANCEL,
    EVENT_SECURITY_APPROVAL,
    SETTINGS_STEPS,
    ApprovalVerdict,
    BlockerKind,
    ItemState,
    NextKind,
    PlanStatus,
    StepKind,
    StepOutcome,
    TeardownOutcome,
    TeardownPlan,
    TeardownProgress,
    TeardownRequest,
    TeardownStep,
    VaultInventory,
    batches,
    decide_next,
    fingerprints_match,
    format_time,
    judge_approval,
    opt_in_decision,
    plan_teardown,
    purge_wait_until,
    remaining_contents,
    request_approval,
)
from steward.domain.teardown.inputs import (
    OperationToLook,
    ReportToRecord,
    SettingToSet,
    TargetStep,
    TeardownVault,
    VaultMarking,
)
from steward.domain.teardown.results import (
    ChunkResults,
    OperationLook,
    ProtectionsRestored,
    Refusal,
    ReportStored,
    StepResult,
    TeardownLimits,
    TeardownShown,
    VaultMarked,
)
from steward.report.teardown import build_report

LOG = logging.getLogger("steward.teardown")

bp = df.Blueprint()

RETRY = df.RetryOptions(first_retry_interval_in_milliseconds=5_000, max_number_of_attempts=6)
#: after a purge date passes, Azure (and the sandbox) purge lazily; re-check this often.
PURGE_RECHECK = timedelta(minutes=30)
MAX_PURGE_RECHECKS = 12
#: a step's targets go to sub-orchestrations of this many fan-out batches (``maxParallelWrites`` operations)
#: each: the parent's history (replayed on every completion) stays small. One: a Cancel lets the batch in flight
#: finish (it is recorded) and starts nothing more.
BATCHES_PER_CHUNK = 1
#: an operation an activity started is polled at Azure's Retry-After within these bounds, at most this often
OPERATION_POLL_MIN = timedelta(seconds=5)
OPERATION_POLL_MAX = timedelta(minutes=2)
MAX_OPERATION_POLLS = 720
#: an operation that ended Failed on Azure's side is sent anew at most this many times per target
MAX_OPERATION_RESENDS = 3

STEP_ACTIVITY: Mapping[StepKind, str] = {
    StepKind.UNDELETE_ITEMS: "teardown_undelete_item",
    StepKind.DELETE_VM_ITEMS: "teardown_delete_item",
    StepKind.DELETE_SQL_ITEMS: "teardown_delete_item",
    StepKind.DELETE_SAP_HANA_ITEMS: "teardown_delete_item",
    StepKind.DELETE_AZURE_FILES_ITEMS: "teardown_delete_item",
    StepKind.DELETE_OTHER_ITEMS: "teardown_delete_item",
    StepKind.DISABLE_PROTECTION_INTENTS: "teardown_disable_intent",
    StepKind.UNREGISTER_SQL_CONTAINERS: "teardown_unregister_container",
    StepKind.UNREGISTER_SAP_HANA_CONTAINERS: "teardown_unregister_container",
    StepKind.UNREGISTER_STORAGE_CONTAINERS: "teardown_unregister_container",
    StepKind.UNREGISTER_MARS_SERVERS: "teardown_unregister_server",
    StepKind.UNREGISTER_BACKUP_SERVERS: "teardown_unregister_server",
    StepKind.REMOVE_REPLICATED_ITEMS: "teardown_remove_site_recovery",
    StepKind.REMOVE_CONTAINER_MAPPINGS: "teardown_remove_site_recovery",
    StepKind.REMOVE_REPLICATION_CONTAINERS: "teardown_remove_site_recovery",
    StepKind.REMOVE_NETWORK_MAPPINGS: "teardown_remove_site_recovery",
    StepKind.REMOVE_FABRICS: "teardown_remove_site_recovery",
    StepKind.REMOVE_PRIVATE_ENDPOINTS: "teardown_remove_private_endpoint",
    StepKind.UNDELETE_INSTANCES: "teardown_undelete_instance",
    StepKind.STOP_INSTANCES: "teardown_stop_instance",
    StepKind.DELETE_INSTANCES: "teardown_delete_instance",
    StepKind.DELETE_POLICIES: "teardown_delete_policy",
}

Task = Any
Flow = Generator[Any, Any, Any]


class _Finish(Exception):
    """Ends the saga with an outcome (raised inside helpers, caught once at the top)."""

    def __init__(self, outcome: TeardownOutcome, reason: str, *, compensate: bool = False) -> None:
        super().__init__(reason)
        self.outcome = outcome
        self.reason = reason
        self.compensate = compensate


class _ContinueAsNew(Exception):
    """The saga continues as a new execution (long waits)."""


class Saga:
    """The state one execution carries and hands to the next (``to_record``), plus the durable context."""

    def __init__(self, context: df.DurableOrchestrationContext, raw: Mapping[str, Any]) -> None:
        self.context = context
        saga = raw.get("saga") if "saga" in raw else None
        request_record = raw.get("request") if saga is not None else raw
        self.request = TeardownRequest.from_record(request_record or {})
        saga = saga or {}
        self.phase: str = str(saga.get("phase") or "planning")
        self.plan: TeardownPlan | None = TeardownPlan.from_record(saga["plan"]) if saga.get("plan") else None
        self.progress = TeardownProgress.from_record(saga.get("progress") or {})
        self.security_approved = bool(saga.get("securityApproved", False))
        self.approved_by: str | None = saga.get("approvedBy")
        #: four eyes on a custom-event request: the verified principal whose approval confirmed it
        self.confirmed_by: str | None = saga.get("confirmedBy")
        self.started_at: str | None = saga.get("startedAt")
        #: the settings the saga runs with (``teardown_limits``): counts, ``fourEyes`` (0/1), ``allowedPrincipals``
        self.limits: TeardownLimits | None = TeardownLimits.from_record(saga["limits"]) if saga.get("limits") else None
        self.purge_rechecks = int(saga.get("purgeRechecks", 0))
        self.waiting_until: str | None = saga.get("waitingUntil")
        self.generation = int(saga.get("generation", 0))
        #: the vault's marker (the settings before they were weakened; survives the hub): None not yet written,
        #: "none" (nothing to record), "ours", or "inherited" (it also holds a lost teardown's earlier values)
        self.marker: str | None = saga.get("marker")
        self.needs: str | None = None
        #: every Cancel waiter of this execution, one per race (see ``cancel_waiter``)
        self.cancel_waiters: list[Task] = []

    def to_record(self) -> dict[str, Any]:
        return {
            "request": self.request.to_record(),
            "saga": {
                "phase": self.phase,
                "plan": self.plan.to_record() if self.plan else None,
                "progress": self.progress.to_record(),
                "securityApproved": self.security_approved,
                "approvedBy": self.approved_by,
                "confirmedBy": self.confirmed_by,
                "startedAt": self.started_at,
                "limits": self.limits.to_record() if self.limits is not None else {},
                "purgeRechecks": self.purge_rechecks,
                "waitingUntil": self.waiting_until,
                "generation": self.generation + 1,
                "marker": self.marker,
            },
        }

    # ---------------------------------------------------------------------------------- helpers

    @property
    def now(self) -> datetime:
        return self.context.current_utc_datetime  # type: ignore[no-any-return]

    @property
    def run_limits(self) -> TeardownLimits:
        """The limits the saga read first thing (``teardown_limits``)."""
        if self.limits is None:
            raise RuntimeError("the saga's limits are read before anything else")
        return self.limits

    @property
    def vault_input(self) -> dict[str, Any]:
        return TeardownVault(self.request.vault_id).to_record()

    def log(self, message: str, *args: Any) -> None:
        if not self.context.is_replaying:
            LOG.info(
                message,
                *args,
                extra={
                    "instance_id": self.context.instance_id,
                    "correlation_id": self.request.correlation_id,
                    "vault_id": self.request.vault_id,
                },
            )

    def status(self, current: StepKind | None = None) -> None:
        steps = [
            {
                "kind": s.kind.value,
                "done": s.done,
                "total": s.total,
                "failed": s.failed,
                "outcome": s.outcome.value if s.outcome else None,
            }
            for s in self.progress.steps
        ]
        self.context.set_custom_status(
            TeardownShown(
                phase=self.phase,
                vault_id=self.request.vault_id,
                current_step=current.value if current else None,
                steps=tuple(steps),
                last_error=self.progress.last_error,
                waiting_until=self.waiting_until,
                needs=self.needs,
                confirmed_by=self.confirmed_by,
                fingerprint=self.plan.fingerprint if self.plan else None,
                plan_status=self.plan.status.value if self.plan else None,
                plan=_plan_summary(self.plan) if self.plan else None,
                deleted_count=len(self.progress.deleted),
            ).to_record()
        )

    def activity(self, name: str, payload: Mapping[str, Any]) -> Task:
        return self.context.call_activity_with_retry(name, RETRY, dict(payload))

    def inventory(self) -> Flow:
        record = yield self.activity("teardown_inventory", self.vault_input)
        return VaultInventory.from_record(record)

    def cancel_waiter(self) -> Task:
        """A new Cancel waiter for one race. Every ``task_any`` is made of tasks never raced before: the Durable
        extension schedules an orchestrator's actions one at a time, each after the previous one completed
        (azure-functions-durable-extension ``OutOfProcOrchestrationShim.ProcessAsyncActionsV2``), and
        azure-functions-durable 1.7.0 serialises a ``task_any`` with only its children not scheduled before
        (``CompoundTask``): a waiter raced a second time would not be in the extension's ``WhenAny`` at all, and a
        Cancel would wait for the other task. A Cancel goes to the newest waiter (the extension keeps them on a
        stack, ``DurableOrchestrationContext.WaitForExternalEvent``; the SDK pops the last open one), or, when it
        comes between races, to an older one: ``cancel_event`` looks at them all."""
        waiter = self.context.wait_for_external_event(EVENT_CANCEL)
        self.cancel_waiters.append(waiter)
        return waiter

    @property
    def cancel_event(self) -> Task | None:
        return next((w for w in self.cancel_waiters if w.is_completed), None)

    def cancelled(self) -> _Finish:
        event = self.cancel_event
        data = (event.result if event is not None else None) or {}
        who = data.get("by") if isinstance(data, Mapping) else None
        return _Finish(TeardownOutcome.CANCELLED, f"cancelled by {who or 'a Cancel event'}", compensate=True)

    def stop_if_cancelled(self) -> None:
        """Before scheduling more work: a Cancel that already arrived ends the saga here (scheduling the work
        and racing it against the Cancel would still start it)."""
        if self.cancel_event is not None:
            raise self.cancelled()

    def unless_cancelled(self, schedule: Callable[[], Task]) -> Flow:
        """Schedule an effect unless a Cancel already arrived, and wait for it. A Cancel that comes while it runs
        cannot call it back: it is honoured once the effect is done, so that what it did is recorded (and
        compensated). Returns ``(result, cancel)``, ``cancel`` being the _Finish to raise after recording."""
        self.stop_if_cancelled()
        running = schedule()
        waiter = self.cancel_waiter()
        winner = yield self.context.task_any([running, waiter])
        cancel = self.cancelled() if winner is waiter else None
        result = yield running
        return result, cancel

    def race_cancel(self, task: Task) -> Flow:
        """Wait for ``task`` (new: never raced before) unless ``Cancel`` comes first; returns the task's result
        or raises its error."""
        self.stop_if_cancelled()
        waiter = self.cancel_waiter()
        winner = yield self.context.task_any([task, waiter])
        if winner is waiter:
            raise self.cancelled()
        if isinstance(winner.result, Exception):
            raise winner.result
        return winner.result


def _plan_summary(plan: TeardownPlan) -> dict[str, Any]:
    """The plan without its targets (custom status stays small; the full plan is in the report)."""
    record = plan.to_record()
    record["steps"] = [{k: v for k, v in step.items() if k != "targets"} for step in record["steps"]]
    return record


# ---------------------------------------------------------------------------------------------- phases


def _plan_phase(saga: Saga) -> Flow:
    request = saga.request
    saga.status()
    inventory = yield from saga.inventory()
    plan = plan_teardown(inventory, saga.now)
    saga.plan = plan
    if not inventory.exists:
        raise _Finish(TeardownOutcome.ALREADY_GONE, "the vault does not exist (any more)")
    allowed_principals = list(saga.run_limits.allowed_principals)
    four_eyes = bool(saga.run_limits.four_eyes)
    allowed, auto, why = opt_in_decision(request, inventory, allowed_principals, four_eyes=four_eyes)
    if not allowed:
        raise _Finish(TeardownOutcome.REFUSED, why)
    saga.log("teardown plan %s: %s steps, status %s", plan.fingerprint, len(plan.steps), plan.status.value)
    if request.dry_run and not auto:
        detail = f" ({why})" if request.opt_in_tag is not None else ""
        raise _Finish(TeardownOutcome.PLANNED, f"dry run: plan {plan.status.value}; nothing was changed{detail}")
    if plan.blocked:
        reasons = "; ".join(b.reason for b in plan.blockers if b.hard)
        raise _Finish(TeardownOutcome.BLOCKED, f"blocked, nothing was changed: {reasons}")
    if plan.status is PlanStatus.NOTHING_TO_DO:
        raise _Finish(TeardownOutcome.ALREADY_GONE, "nothing to do")
    # Authoritative, whatever the doorway did: an approved fingerprint comes only from an HTTP request (the
    # route checked its caller) or from the approval event, never from an event-started request; four eyes
    # applies to both. ``auto`` is the vault owner's standing approval, for an allowed deleting user only, and
    # never under four eyes (opt_in_decision).
    approved: str | None
    if auto:
        approved, saga.approved_by = plan.fingerprint, f"tag:{request.opt_in_tag}=auto"
    else:
        approved, approver, note = request_approval(request, four_eyes=four_eyes)
        if approved is not None:
            saga.approved_by = approver
        else:
            if note:
                saga.log("teardown approval not taken from the request: %s", note)
            approved = yield from _await_approval(saga, plan, four_eyes, note)
            inventory = yield from saga.inventory()
            plan = plan_teardown(inventory, saga.now)
            saga.plan = plan
    if not fingerprints_match(approved, plan.fingerprint):
        raise _Finish(
            TeardownOutcome.REPLANNED,
            f"the vault changed since the plan that was approved ({approved}); nothing was deleted. "
            f"Review the new plan {plan.fingerprint} and approve it to run",
        )
    if plan.blocked:
        raise _Finish(
            TeardownOutcome.BLOCKED,
            "blocked, nothing was changed: " + "; ".join(b.reason for b in plan.blockers if b.hard),
        )
    saga.phase = "running"
    saga.progress = TeardownProgress.start(plan)


def _await_approval(saga: Saga, plan: TeardownPlan, four_eyes: bool, note: str | None = None) -> Flow:
    """Wait for an approval event an approver may give (four eyes: not the requester); a refused approval is
    recorded (``lastError``) and the wait goes on until the deadline."""
    saga.phase = "awaiting-approval"
    hours = saga.run_limits.approval_timeout_hours
    deadline = saga.now + timedelta(hours=hours)
    who = "another allowed principal than the requester" if four_eyes else "an allowed principal"
    saga.needs = (
        f"{who} must approve fingerprint {plan.fingerprint} "
        f"(POST /api/teardowns/{saga.context.instance_id}/approve) before {format_time(deadline)}"
    ) + (f"; {note}" if note else "")
    saga.status()
    while True:
        # each pass races tasks never raced before (``Saga.cancel_waiter``): a new deadline timer for the same
        # deadline (the previous one cancelled), a new approval waiter and a new Cancel waiter
        if saga.cancel_event is not None:
            raise _Finish(TeardownOutcome.CANCELLED, "cancelled while awaiting approval; nothing was changed")
        timer = saga.context.create_timer(deadline)
        approval = saga.context.wait_for_external_event(EVENT_APPROVE)
        cancel = saga.cancel_waiter()
        winner = yield saga.context.task_any([approval, timer, cancel])
        if winner is cancel:
            timer.cancel()
            raise _Finish(TeardownOutcome.CANCELLED, "cancelled while awaiting approval; nothing was changed")
        if winner is timer:
            raise _Finish(TeardownOutcome.APPROVAL_EXPIRED, f"no approval within {hours} hours; nothing was changed")
        timer.cancel()
        data = approval.result if isinstance(approval.result, Mapping) else {}
        approver = str(data.get("approvedBy") or "")
        verdict, why = judge_approval(saga.request, approver, four_eyes=four_eyes, confirmed_by=saga.confirmed_by)
        if verdict is ApprovalVerdict.APPROVED:
            break
        if verdict is ApprovalVerdict.CONFIRMED:
            saga.confirmed_by = approver
            saga.needs = (
                f"another allowed principal than {approver} must approve fingerprint {plan.fingerprint} "
                f"(POST /api/teardowns/{saga.context.instance_id}/approve) before {format_time(deadline)}; {why}"
            )
            saga.log("teardown request confirmed: %s", why)
        else:
            saga.progress = saga.progress.with_error(f"approval refused: {why}")
            saga.log("teardown approval refused: %s", why)
        saga.status()
    saga.approved_by = approver or "unknown"
    saga.needs = None
    return str(data.get("fingerprint") or "")


def _run_phase(saga: Saga) -> Flow:
    assert saga.plan is not None
    plan = saga.plan
    while True:
        action = decide_next(plan, saga.progress, security_approved=saga.security_approved)
        if action.kind is NextKind.FINISHED:
            return
        step = action.step
        assert step is not None
        if action.kind is NextKind.AWAIT_SECURITY_APPROVAL:
            yield from _await_security_approval(saga, step)
            continue
        yield from _mark_vault(saga)
        saga.status(step.kind)
        saga.log("teardown step %s (%s targets)", step.kind.value, step.count)
        if step.kind in SETTINGS_STEPS:
            yield from _settings_step(saga, step)
        elif step.kind in (StepKind.AWAIT_PURGE, StepKind.VERIFY_EMPTY):
            yield from _verify_step(saga, step)
        elif step.kind is StepKind.DELETE_VAULT:
            yield from _delete_vault_step(saga)
        else:
            yield from _targets_step(saga, step)
        saga.progress = saga.progress.finish_step(step.kind, StepOutcome.DONE, saga.now)
        saga.status(step.kind)
        if step.kind not in SETTINGS_STEPS and step.count > 1:
            raise _ContinueAsNew  # a fresh, short history for the next step


def _await_security_approval(saga: Saga, step: TeardownStep) -> Flow:
    assert saga.plan is not None
    blocker = next((b for b in saga.plan.blockers if b.kind is BlockerKind.MUA), None)
    saga.phase = "awaiting-security-approval"
    saga.needs = (blocker.action_needed if blocker else "a security administrator's Resource Guard grant") + (
        f" (needed for step {step.kind.value})"
    )
    saga.status(step.kind)
    saga.log("teardown parked: %s", saga.needs)
    grant = saga.context.wait_for_external_event(EVENT_SECURITY_APPROVAL)
    yield from saga.race_cancel(grant)
    saga.security_approved = True
    saga.phase = "running"
    saga.needs = None


def _refusal(saga: Saga, step: TeardownStep, result: StepResult) -> Flow:
    """Decide on a refused effect: park for MUA (then retry the step), else end the saga."""
    kind = result.refused.kind
    message = result.refused.said
    saga.progress = saga.progress.with_error(f"{step.kind.value}: {message}")
    if kind == "needs-security-approval":
        saga.security_approved = False
        yield from _await_security_approval(saga, step)
        return True
    if kind in ("immutability-locked", "missing-permission"):
        raise _Finish(TeardownOutcome.BLOCKED, f"{step.kind.value} was refused: {message}", compensate=True)
    raise _Finish(TeardownOutcome.FAILED, f"{step.kind.value} was refused: {message}", compensate=True)


def _mark_vault(saga: Saga) -> Flow:
    """Before the run's first step: record on the vault which teardown runs and the settings it will turn off as
    they are (``steward.domain.compensation``), so that a reconciler can restore them if this orchestration is
    lost with its task hub; nothing is weakened without it. A marker a lost teardown left is taken over (its
    earlier values kept), so that the reconciler does not turn protections back on under a running teardown."""
    assert saga.plan is not None
    if saga.marker is not None:
        return
    saga.stop_if_cancelled()
    changes = [c.to_record() for c in saga.plan.setting_changes()]
    result = VaultMarked.from_record((yield saga.activity(
        "teardown_mark_vault", VaultMarking(saga.request.vault_id, saga.context.instance_id, tuple(changes)).to_record()
    )))
    if not result.ok:
        message = (result.refusal or Refusal()).said
        saga.progress = saga.progress.with_error(f"marking the vault: {message}")
        raise _Finish(
            TeardownOutcome.FAILED,
            f"the settings could not be recorded on the vault before turning protections off ({message}); "
            "nothing was changed",
        )
    effect = result.effect
    saga.marker = "none" if effect in ("none", "already-gone") else ("inherited" if result.inherited else "ours")


def _unmark_vault(saga: Saga, outcome: TeardownOutcome, restored: list[dict[str, Any]]) -> Flow:
    """The saga ends: its marker goes (after compensation), unless the vault is gone, a restore failed, or the
    marker holds settings a lost teardown turned off that this one did not (it then stays, and the reconciler,
    seeing this teardown ended, restores them and reports it)."""
    if saga.marker not in ("ours", "inherited") or outcome is TeardownOutcome.DELETED:
        return
    if any(r.get("effect") == "failed" for r in restored):
        saga.progress = saga.progress.with_error("a setting could not be restored; the vault keeps its marker")
        return
    if saga.marker == "inherited":
        saga.progress = saga.progress.with_error(
            "the vault keeps its marker: it holds settings an earlier, lost teardown turned off; the reconciler "
            "restores them"
        )
        return
    try:
        yield saga.activity("teardown_unmark_vault",
                            VaultMarking(saga.request.vault_id, saga.context.instance_id).to_record())
        saga.marker = "none"
    except Exception as error:  # noqa: BLE001 - the report still goes out; the reconciler removes it later
        saga.progress = saga.progress.with_error(f"removing the vault's marker failed: {error}")


def _settings_step(saga: Saga, step: TeardownStep) -> Flow:
    for change in step.setting_changes:
        while True:
            payload = SettingToSet(saga.request.vault_id, change.setting, change.to_value).to_record()
            answer, cancel = yield from saga.unless_cancelled(
                functools.partial(saga.activity, "teardown_set_setting", payload)
            )
            result = StepResult.from_record(answer)
            if result.ok:
                if (result.effect or {}).get("effect") == "changed":
                    saga.progress = saga.progress.record_setting(change)  # so that compensation turns it back
                saga.progress = saga.progress.record_batch(step.kind, [result.effect or {}])
            if cancel is not None:
                raise cancel
            if result.ok:
                break
            yield from _refusal(saga, step, result)


def _targets_step(saga: Saga, step: TeardownStep) -> Flow:
    """Fan out one activity per target, ``maxParallelWrites`` at a time, in sub-orchestration chunks."""
    name = STEP_ACTIVITY[step.kind]
    size = saga.run_limits.max_parallel_writes
    done_ids = {str(d.get("id")).lower() for d in saga.progress.deleted}
    pending = [t for t in step.targets if t.id.lower() not in done_ids or step.kind is StepKind.UNDELETE_ITEMS]
    for index, chunk in enumerate(batches(pending, size * BATCHES_PER_CHUNK)):
        retry_chunk = list(chunk)
        attempt = 0
        while retry_chunk:
            child = f"{saga.context.instance_id}:{saga.generation}:{step.kind.value}:{index}:{attempt}"
            payload = {
                "vaultId": saga.request.vault_id,
                "activity": name,
                "parallel": size,
                "targets": [t.to_record() for t in retry_chunk],
            }
            try:
                outcome, cancel = yield from saga.unless_cancelled(
                    functools.partial(saga.context.call_sub_orchestrator, "teardown_step_chunk", payload, child)
                )
            except _Finish:
                raise
            except Exception as error:  # noqa: BLE001 - an activity failed for good after its retries
                saga.progress = saga.progress.with_error(f"{step.kind.value}: {error}")
                raise _Finish(
                    TeardownOutcome.FAILED, f"{step.kind.value} failed after retries: {error}", compensate=True
                ) from None
            results = list(ChunkResults.from_record(outcome).results)
            effects = [r.effect or {} for r in results if r.ok]
            refused = [r for r in results if not r.ok]
            saga.progress = saga.progress.record_batch(step.kind, effects)
            saga.status(step.kind)
            if cancel is not None:
                raise cancel
            attempted = {r.target_id for r in results}
            untouched = [t for t in retry_chunk if t.id.lower() not in attempted]
            retry_chunk = []
            if refused:
                yield from _refusal(saga, step, refused[0])
                # security approval granted: the refused targets and those the chunk did not reach go again
                refused_ids = {str((r.target or {}).get("id", "")).lower() for r in refused}
                retry_chunk = [t for t in chunk if t.id.lower() in refused_ids] + untouched
                attempt += 1


@bp.orchestration_trigger(context_name="context")
def teardown_step_chunk(context: df.DurableOrchestrationContext) -> Flow:
    """Sub-orchestration: one activity per target, ``parallel`` at a time; stops at the first refusal.

    Input ``{"vaultId", "activity", "parallel", "targets": [...]}``; output a :class:`ChunkResults` record
    ``{"results": [...]}`` (one activity result per target it reached, in order).
    """
    payload = context.get_input() or {}
    name = str(payload.get("activity"))
    size = max(1, int(payload.get("parallel", 1)))
    targets = list(payload.get("targets") or [])
    results: list[StepResult] = []
    for start in range(0, len(targets), size):
        batch = targets[start : start + size]
        tasks = [
            context.call_activity_with_retry(name, RETRY, TargetStep(str(payload.get("vaultId")), target).to_record())
            for target in batch
        ]
        answers = yield context.task_all(tasks)
        batch_results = yield from _await_operations(context, str(payload.get("vaultId")), name, batch,
                                                     [StepResult.from_record(a) for a in answers])
        results.extend(batch_results)
        if any(not r.ok for r in batch_results):
            break
    return ChunkResults(results=tuple(results)).to_record()


def _await_operations(
    context: df.DurableOrchestrationContext,
    vault_id: str,
    name: str,
    targets: list[Any],
    results: list[StepResult],
) -> Flow:
    """Follow the operations the batch's activities started (``pending``) on durable timers: wait Azure's
    Retry-After (bounded), poll each with one ``teardown_operation_status`` activity, and read back the outcome
    with ``teardown_complete_operation`` once it succeeded; ``resend`` sends the same effect again. Activities
    never wait, so none needs more than ``functionTimeout``."""
    results = list(results)
    for _round in range(MAX_OPERATION_POLLS):
        waiting = [i for i, r in enumerate(results) if r.ok and r.pending]
        if not waiting:
            return results
        delay = min(float(_pending(results[i]).get("retryAfter") or 10.0) for i in waiting)
        delay = max(OPERATION_POLL_MIN.total_seconds(), min(OPERATION_POLL_MAX.total_seconds(), delay))
        yield context.create_timer(context.current_utc_datetime + timedelta(seconds=delay))
        tasks = []
        for i in waiting:
            operation = _pending(results[i])
            if operation.get("resend"):
                resent = TargetStep(vault_id, targets[i]).to_record()
                tasks.append(context.call_activity_with_retry(name, RETRY, resent))
            else:
                poll = OperationToLook(vault_id, operation).to_record()
                tasks.append(context.call_activity_with_retry("teardown_operation_status", RETRY, poll))
        answers = yield context.task_all(tasks)
        succeeded = []
        for i, answer in zip(waiting, answers, strict=True):
            operation = _pending(results[i])
            resends = int(operation.get("resends") or 0)
            if operation.get("resend"):  # the effect was sent again: its answer is an effect's result
                again = StepResult.from_record(answer)
                if again.ok and again.pending:
                    # the re-sent effect started a new operation: keep counting the resends of this target
                    again = replace(again, pending={**again.pending, "resends": resends})
                results[i] = again
                continue
            look = OperationLook.from_record(answer)
            if not look.ok:
                results[i] = StepResult(ok=False, refusal=look.refusal, target=targets[i])
            elif look.state == "failed":
                if resends >= MAX_OPERATION_RESENDS:
                    raise RuntimeError(
                        f"{operation.get('what')} failed on Azure's side {resends + 1} times: {look.message or None}"
                    )
                results[i] = replace(results[i], pending={"resend": True, "retryAfter": look.retry_after or 60.0,
                                                          "what": operation.get("what"), "resends": resends + 1})
            elif look.state == "running":
                results[i] = replace(results[i], pending={**operation, "retryAfter": look.retry_after})
            else:
                succeeded.append(i)
        if succeeded:
            outcomes = yield context.task_all(
                [
                    context.call_activity_with_retry(
                        "teardown_complete_operation",
                        RETRY,
                        TargetStep(vault_id, targets[i], dict(_pending(results[i]))).to_record(),
                    )
                    for i in succeeded
                ]
            )
            for i, outcome in zip(succeeded, outcomes, strict=True):
                results[i] = StepResult.from_record(outcome)
    still = [str((r.pending or {}).get("what")) for r in results if r.pending]
    raise RuntimeError(f"operations still running after {MAX_OPERATION_POLLS} polls: {', '.join(still)}")


def _pending(result: StepResult) -> Mapping[str, Any]:
    return result.pending or {}


def _verify_step(saga: Saga, step: TeardownStep) -> Flow:
    """Count again; sleep until the purge date of soft-deleted data; fail if anything else remains."""
    inventory = yield from saga.inventory()
    now = saga.now
    until = purge_wait_until(inventory, now)
    leftovers = [entry for entry in remaining_contents(inventory) if not entry["reason"].startswith("soft-deleted")]
    soft_deleted = [
        o for o in (*inventory.items, *inventory.instances) if getattr(o, "state", None) is ItemState.SOFT_DELETED
    ]
    if step.kind is StepKind.VERIFY_EMPTY and leftovers:
        raise _Finish(
            TeardownOutcome.FAILED,
            f"the vault still holds {len(leftovers)} object(s) the plan did not cover (it changed while running)",
            compensate=True,
        )
    if until is not None:
        yield from _sleep_until(saga, until, step)
    if soft_deleted:
        # purge dates passed but Azure has not purged yet: look again a little later
        if saga.purge_rechecks >= MAX_PURGE_RECHECKS:
            raise _Finish(
                TeardownOutcome.FAILED,
                f"{len(soft_deleted)} soft-deleted item(s) were not purged after their purge date",
                compensate=True,
            )
        saga.purge_rechecks += 1
        yield from _sleep_until(saga, now + PURGE_RECHECK, step)
    saga.waiting_until = None


def _sleep_until(saga: Saga, until: datetime, step: TeardownStep) -> Flow:
    """One durable timer of at most ``waitChunkHours``, then continue as new (history stays bounded)."""
    chunk = timedelta(hours=saga.run_limits.wait_chunk_hours)
    wake = min(until, saga.now + chunk)
    saga.phase = "waiting-for-purge"
    saga.waiting_until = format_time(until)
    saga.needs = None
    saga.status(step.kind)
    saga.log("teardown waiting until %s (next wake %s)", format_time(until), format_time(wake))
    timer = saga.context.create_timer(wake)
    try:
        yield from saga.race_cancel(timer)
    except _Finish:
        timer.cancel()
        raise
    saga.phase = "running"
    raise _ContinueAsNew


def _delete_vault_step(saga: Saga) -> Flow:
    # the last effect: once it runs, a Cancel cannot call it back, and the report says what happened
    saga.stop_if_cancelled()
    result = StepResult.from_record((yield saga.activity("teardown_delete_vault", saga.vault_input)))
    if result.ok and result.pending:  # sent: follow it on durable timers, then read the vault back
        target = dict(result.target or {"type": "vault", "id": saga.request.vault_id})
        [result] = yield from _await_operations(
            saga.context, saga.request.vault_id, "teardown_delete_vault", [target], [result]
        )
    if not result.ok:
        raise _Finish(
            TeardownOutcome.FAILED, f"deleting the vault was refused: {result.refused.message or None}",
            compensate=True,
        )
    saga.progress = saga.progress.record_batch(StepKind.DELETE_VAULT, [result.effect or {}])


def _compensate(saga: Saga) -> Flow:
    """Turn back on what the saga turned off; report what remains."""
    restored: list[dict[str, Any]] = []
    changes = [c.to_record() for c in saga.progress.changed_settings]
    if changes:
        result = ProtectionsRestored.from_record((yield saga.activity(
            "teardown_restore_protections", VaultMarking(saga.request.vault_id, changes=tuple(changes)).to_record())))
        restored = list(result.restored)
    return restored


def _finish(saga: Saga, outcome: TeardownOutcome, reason: str, restored: list[dict[str, Any]]) -> Flow:
    remaining: list[dict[str, Any]] = []
    if outcome is not TeardownOutcome.DELETED and saga.phase not in ("planning", "awaiting-approval"):
        try:
            inventory = yield from saga.inventory()
            remaining = remaining_contents(inventory)
        except Exception as error:  # noqa: BLE001 - the report still goes out
            saga.progress = saga.progress.with_error(f"final inventory failed: {error}")
    elif outcome in (
        TeardownOutcome.PLANNED,
        TeardownOutcome.BLOCKED,
        TeardownOutcome.REPLANNED,
        TeardownOutcome.REFUSED,
        TeardownOutcome.APPROVAL_EXPIRED,
        TeardownOutcome.CANCELLED,
    ):
        remaining = [
            {
                "type": "vault",
                "id": saga.request.vault_id,
                "name": saga.request.vault.name,
                "reason": f"not torn down: {outcome.value}",
            }
        ]
    saga.phase = "finished"
    saga.waiting_until = None
    saga.needs = None
    report = build_report(
        instance_id=saga.context.instance_id,
        request=saga.request.to_record(),
        outcome=outcome,
        reason=reason,
        started_at=saga.started_at,
        finished_at=format_time(saga.now),
        plan=saga.plan.to_record() if saga.plan else None,
        progress=saga.progress.to_record(),
        remaining=remaining,
        restored=restored,
        approved_by=saga.approved_by,
        confirmed_by=saga.confirmed_by,
    )
    stored = ReportStored.from_record((yield saga.activity(
        "teardown_record_report", ReportToRecord(report.to_record(), saga.context.instance_id).to_record())))
    saga.status()
    saga.log("teardown finished: %s (%s)", outcome.value, reason)
    return replace(report, links=stored.links()).to_record()


@bp.orchestration_trigger(context_name="context")
def teardown_vault(context: df.DurableOrchestrationContext) -> Flow:
    raw = context.get_input() or {}
    saga = Saga(context, raw)
    if saga.started_at is None:
        saga.started_at = format_time(saga.now)
    try:
        if saga.limits is None:
            saga.limits = TeardownLimits.from_record((yield saga.activity("teardown_limits", {})))
        if saga.phase in ("planning", "awaiting-approval"):
            yield from _plan_phase(saga)
        yield from _run_phase(saga)
        restored: list[Any] = []
        outcome, reason = TeardownOutcome.DELETED, "the vault was emptied and deleted"
    except _ContinueAsNew:
        context.continue_as_new(saga.to_record())
        return None
    except _Finish as finish:
        outcome, reason = finish.outcome, finish.reason
        restored = (yield from _compensate(saga)) if finish.compensate else []
    except Exception as error:  # noqa: BLE001 - any other failure: compensate and report, never leave it half-done
        outcome, reason = TeardownOutcome.FAILED, f"the saga failed: {error}"
        saga.progress = saga.progress.with_error(str(error))
        restored = yield from _compensate(saga)
    yield from _unmark_vault(saga, outcome, restored)
    report = yield from _finish(saga, outcome, reason, restored)
    return report
