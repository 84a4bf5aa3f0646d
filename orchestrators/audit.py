"""The scheduled estate audit: scope, inventory fanned out per subscription, evaluate, publish and, when
STEWARD_AUDIT_REMEDIATE_LIMIT allows, start protection for resources the rules require and nothing protects.

Deterministic: the time is ``context.current_utc_datetime``; every fact and effect is an activity.

An audit's instance id names its scope, not its run (``entrypoints/audit_timer.py``: one audit at a time per
scope, so a scope's next run reuses the id). What belongs to one run - its stored inventory parts and the ids
of the protections it starts - is therefore keyed by the run: the instance id and the run's start time.

The input and every activity result the orchestration reads are records of ``steward/domain/audit/runs.py`` on
the one record codec, keys as before (histories in flight replay unchanged); so are its custom status
(``RunProgress``) and its output (``AuditSummary``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Generator
from datetime import timedelta
from typing import Any, Final

import azure.durable_functions as df

from orchestrators.retrying import Backoff, call_all_with_backoff, call_with_backoff
from steward.domain.audit.inputs import AuditEvaluation, AuditScopeQuery, LeftoversDue, StoredReport, SubscriptionRead
from steward.domain.audit.runs import (
    AuditPart,
    AuditRequest,
    AuditScope,
    AuditSummary,
    DrillLeftovers,
    FindingsPublished,
    LeftVault,
    RemediationPlanned,
    RemediationStarted,
    RemediationSummary,
    RunSummary,
)
from steward.domain.compensation import ReconcileAction, ReconcileResult
from steward.domain.events import EventOrigin, EventSchema
from steward.domain.run_status import RunProgress

bp = df.Blueprint()

#: A failed read or step is tried again after 5, 10 and 20 s of Azure time, on durable timers (the backoff of the
#: Durable RetryOptions this replaces never reached the extension: only its first interval and attempts do).
RETRY: Final = Backoff(first=timedelta(seconds=5), coefficient=2.0, cap=timedelta(minutes=2), max_attempts=4)

#: The origin of the protections an audit starts (STEWARD_AUDIT_REMEDIATE_LIMIT): their outcome events say so.
REMEDIATION_EVENT_TYPE: Final = "BackupSteward.Audit.Remediation"

#: Subscriptions read at once (each read paces itself under its subscription's ARM read throttle).
FAN_OUT: Final = 8
#: Remediating protections in flight at once. A protection mostly waits on durable timers (Azure's operation),
#: not in a worker, and every ARM call is paced per subscription, so this is wider than the read fan-out
#: (benchmarks/remediation.py measures the difference).
REMEDIATION_FAN_OUT: Final = 32


@bp.orchestration_trigger(context_name="context")
def audit_estate(context: df.DurableOrchestrationContext) -> Generator[Any, Any, dict[str, Any]]:
    """Returns the run's :class:`AuditSummary` record."""
    # an input that is not an AuditRequest fails here, before any activity
    request = AuditRequest.from_record(context.get_input() or {})
    now = context.current_utc_datetime
    stamp = f"{now:%Y%m%dT%H%M%S}"
    run = f"{context.instance_id}-{stamp}"
    scope = AuditScope.from_record((yield from call_with_backoff(
        context, "audit_scope", RETRY, AuditScopeQuery(request.subscriptions).to_record()
    )))
    subscriptions: list[str] = list(scope.subscriptions)
    reconciled = yield from _reconcile_teardowns(context, request, subscriptions, run)
    # restore drills' leftovers past their lifetime: deleted while they carry their drill's tag (DRL-003)
    drill_leftovers = DrillLeftovers.from_record((yield from call_with_backoff(
        context, "drill_reconcile_leftovers", RETRY, LeftoversDue(now).to_record()
    )))
    parts: list[AuditPart] = []
    for start in range(0, len(subscriptions), FAN_OUT):
        batch = subscriptions[start : start + FAN_OUT]
        context.set_custom_status(RunProgress("inventory", len(parts), len(subscriptions)).to_record())
        read = yield from call_all_with_backoff(
            context, "audit_read_subscription", RETRY,
            [SubscriptionRead(run, sub, now).to_record() for sub in batch],
        )
        parts += [AuditPart.from_record(p) for p in read]
    context.set_custom_status(RunProgress("evaluate", len(parts), len(subscriptions)).to_record())
    summary = RunSummary.from_record((yield from call_with_backoff(
        context,
        "audit_evaluate",
        RETRY,
        AuditEvaluation(tuple(p.part for p in parts), now, interrupted_teardowns=tuple(reconciled),
                        drill_leftovers=drill_leftovers.leftovers).to_record(),
    )))
    report = summary.report
    context.set_custom_status(RunProgress("publish", len(parts), len(subscriptions)).to_record())
    published = FindingsPublished.from_record((yield from call_with_backoff(
        context, "audit_publish_findings", RETRY, StoredReport(report).to_record()
    )))
    plan = RemediationPlanned.from_record((yield from call_with_backoff(
        context, "audit_remediation_plan", RETRY, StoredReport(report).to_record()
    )))
    remediation = yield from _remediate(context, plan, stamp)
    return AuditSummary(
        **vars(summary),  # the run's summary, as audit_evaluate wrote it
        subscriptions=len(subscriptions),
        inventory_gaps=sum(p.gaps for p in parts),
        events=published.events,
        remediation=remediation,
        drill_leftovers=len(drill_leftovers.leftovers),
    ).to_record()


def _reconcile_teardowns(
    context: df.DurableOrchestrationContext, request: AuditRequest, subscriptions: list[str], run: str
) -> Generator[Any, Any, list[dict[str, Any]]]:
    """Before the inventory: restore vaults a lost teardown left weakened (``reconcile_teardowns``), given the
    doorway's snapshot of running teardowns; what it restored (or could not) becomes VLT-006 findings."""
    if request.teardowns is None:
        return []
    context.set_custom_status(RunProgress("reconcile-teardowns").to_record())
    result = ReconcileResult.from_record((yield context.call_sub_orchestrator(
        "reconcile_teardowns",
        {"teardowns": request.teardowns.to_record(), "subscriptions": subscriptions},
        f"{run}:reconcile-teardowns",
    )))
    unreadable = [d for d in result.left if LeftVault.from_record(d).action is ReconcileAction.UNREADABLE]
    return [*result.reconciled, *unreadable]


def _remediate(
    context: df.DurableOrchestrationContext, plan: RemediationPlanned, stamp: str
) -> Generator[Any, Any, RemediationSummary]:
    """Start protect_resource (the orchestration an Event Grid event starts; idempotent, deletes nothing) for the
    planned resources, REMEDIATION_FAN_OUT at a time; each publishes its outcome. Returns the outcomes counted
    by status. The protections' instance ids and their origin event id carry the run's start (``stamp``), so a
    later run of the same scope never reuses an earlier run's ids; the correlation id stays the instance id."""
    targets: list[str] = list(plan.protect)
    origin = EventOrigin(event_id=f"{context.instance_id}-{stamp}", event_type=REMEDIATION_EVENT_TYPE,
                         event_time=context.current_utc_datetime, schema=EventSchema.EVENT_GRID,
                         correlation_id=context.instance_id).to_record()
    outcomes: list[RemediationStarted] = []
    fan_out = REMEDIATION_FAN_OUT
    for start in range(0, len(targets), fan_out):
        context.set_custom_status(RunProgress("remediate", start, len(targets)).to_record())
        started = yield context.task_all([
            context.call_sub_orchestrator(
                "protect_resource",
                {"kind": "protect", "resourceId": resource_id, "origin": origin},
                f"{context.instance_id}:remediate:{stamp}:{start + offset}",
            )
            for offset, resource_id in enumerate(targets[start : start + fan_out])
        ])
        outcomes += [RemediationStarted.from_record(o) for o in started]
    statuses = Counter(o.status.value for o in outcomes)
    return RemediationSummary(enabled=plan.enabled, limit=plan.limit, started=len(targets),
                              outcomes=dict(sorted(statuses.items())), deferred=plan.deferred,
                              needs_person=plan.needs_person)
