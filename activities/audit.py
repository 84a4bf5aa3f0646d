"""Activities of the estate audit: one fact or effect each, JSON records in and out.

Partial inventories are large (a subscription can hold thousands of resources), so they do not travel
through the orchestration history: each read writes its part to the report store under ``work/<run>/`` and
returns a small reference that the evaluation reads back.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import azure.durable_functions as df

from steward import bootstrap, telemetry
from steward.cloud.drills import DrillOps
from steward.cloud.errors import AzureRefusal
from steward.cloud.inventory import ArmEstateReader, read_estate
from steward.domain import drill_flow
from steward.domain.audit import (
    AuditResult,
    EstateInventory,
    RuleExpectations,
    audit,
    inventory_from_json,
    inventory_to_json,
    remediation_plan,
)
from steward.domain.audit.inputs import AuditEvaluation, AuditScopeQuery, LeftoversDue, StoredReport, SubscriptionRead
from steward.domain.audit.runs import (
    AuditPart,
    AuditScope,
    DrillLeftovers,
    FindingsPublished,
    RemediationPlanned,
    RunSummary,
)
from steward.domain.drill_rules import first_drill
from steward.domain.errors import InvalidResourceId
from steward.domain.ids import ResourceId
from steward.domain.kernel import id_key
from steward.domain.rules import Protect, ResourceFacts, route
from steward.report.events import finding_events
from steward.report.store import load_latest, save_result, update

bp = df.Blueprint()

def _reader(now: datetime | None = None) -> ArmEstateReader:
    """The ARM inventory; ``now``: the audit's time, the end of the activity log's 24-hour window (CAP-002)."""
    return ArmEstateReader(bootstrap.clients(), now=None if now is None else (lambda: now))


@bp.activity_trigger(input_name="request")
def audit_scope(request: dict[str, Any]) -> dict[str, Any]:
    """The subscriptions to audit: those named, else the configured ones, else every readable one."""
    named = list(AuditScopeQuery.from_record(request).subscriptions)
    configured = list(bootstrap.settings().subscriptions)
    return AuditScope(subscriptions=tuple(named or configured or list(_reader().subscriptions()))).to_record()


def _part_name(run: str, subscription_id: str) -> str:
    return f"work/{run}/{subscription_id.lower()}.json"


@bp.activity_trigger(input_name="request")
def audit_read_subscription(request: dict[str, Any]) -> dict[str, Any]:
    """Inventory of one subscription, stored as a part of the run; returns the part's name and counts."""
    read = SubscriptionRead.from_record(request)
    run, subscription_id, now = read.run, read.subscription_id, read.now  # older runs sent no time
    part = read_estate(_reader(now), [subscription_id], concurrency=1)
    name = _part_name(run, subscription_id)
    bootstrap.report_store().put(name, json.dumps(inventory_to_json(part)).encode(), "application/json")
    return AuditPart(
        part=name,
        subscription_id=subscription_id,
        resources=len(part.resources),
        vaults=len(part.vaults),
        items=len(part.protected_items) + len(part.backup_instances),
        gaps=len(part.gaps),
    ).to_record()


def _summary(result: AuditResult, json_name: str, html_name: str) -> dict[str, Any]:
    return RunSummary(
        report=json_name,
        html=html_name,
        generated_at=result.to_json()["generatedAt"],
        findings_by_severity=result.by_severity(),
        findings=len(result.findings),
        new=len(result.new_finding_ids),
        resolved=len(result.resolved),
        coverage=round(result.coverage.total.ratio, 4),
        resources=result.coverage.total.resources,
    ).to_record()


@bp.activity_trigger(input_name="request")
def audit_evaluate(request: dict[str, Any]) -> dict[str, Any]:
    """Merge the parts, audit against the rules and the previous run, store the report. Idempotent: a run
    already stored (a retried activity) is not evaluated twice."""
    evaluation = AuditEvaluation.from_record(request)
    store = bootstrap.report_store()
    now = evaluation.now
    stamp = now.strftime("%Y%m%dT%H%M%SZ")
    existing = store.get(f"runs/{stamp}.json")
    if existing is not None:
        done = AuditResult.from_json(json.loads(existing))
        return _summary(done, f"runs/{stamp}.json", f"runs/{stamp}.html")
    inventory = EstateInventory(subscriptions=())
    for name in evaluation.parts:
        data = store.get(str(name))
        if data is None:
            raise FileNotFoundError(f"audit part {name} is missing from the report store")
        inventory = inventory.merge(inventory_from_json(json.loads(data)))
    previous = load_latest(store)
    if previous is not None and previous.generated_at >= now:
        previous = None  # a clock that went backwards must not make the trend run backwards
    result = audit(
        inventory,
        RuleExpectations(bootstrap.rules(), inventory.vaults),
        now,
        previous,
        interrupted_teardowns=list(evaluation.interrupted_teardowns),
        drills=_drill_status(inventory),
        drill_leftovers=list(evaluation.drill_leftovers),
        role_assignment_percent=bootstrap.settings().role_assignment_warn_percent,
    )
    saved = save_result(store, result)
    telemetry.record_coverage({s: cell.ratio for s, cell in result.coverage.by_subscription.items()})
    return _summary(result, saved.json_name, saved.html_name)


def _drill_status(inventory: EstateInventory) -> list[dict[str, Any]]:
    """Per protected resource a drill rule covers: the rule's period and its last drill (``drill_record``'s
    ``drills/last/...`` record), for DRL-001 and DRL-002."""
    rules = bootstrap.rules()
    if not rules.drills:
        return []
    protected = {id_key(i.source_id) for i in inventory.protected_items if not i.soft_deleted}
    protected |= {id_key(b.datasource_id.split("/blobServices/", maxsplit=1)[0])
                  for b in inventory.backup_instances if not b.soft_deleted}
    store = bootstrap.report_store()
    found: list[dict[str, Any]] = []
    for resource in inventory.resources:
        if resource.key not in protected:
            continue
        try:
            facts = ResourceFacts(ResourceId.parse(resource.id), resource.location, dict(resource.tags))
        except (InvalidResourceId, ValueError):
            continue
        decision = route(facts, rules)
        drill = first_drill(rules.drills, resource.type, dict(resource.tags),
                            decision.rule if isinstance(decision, Protect) else None)
        if drill is None:
            continue
        data = store.get(drill_flow.last_drill_blob(resource.id))
        last = json.loads(data) if data else {}
        found.append({"resourceId": resource.id, "rule": drill.name, "everySeconds": drill.every.total_seconds(),
                      "lastDrillId": last.get("drillId"), "lastDrillAt": last.get("startedAt"),
                      "lastOutcome": last.get("outcome"), "lastSucceededAt": last.get("lastSucceededAt")})
    return found


def _stored_result(name: str) -> AuditResult:
    data = bootstrap.report_store().get(name)
    if data is None:
        raise FileNotFoundError(f"audit report {name} is missing from the report store")
    return AuditResult.from_json(json.loads(data))


@bp.activity_trigger(input_name="request")
def audit_remediation_plan(request: dict[str, Any]) -> dict[str, Any]:
    """Which BKP-001 resources this run starts protection for (STEWARD_AUDIT_REMEDIATE_LIMIT; 0: none)."""
    limit = bootstrap.settings().audit_remediate_limit
    if limit == 0:
        return RemediationPlanned().to_record()
    plan = remediation_plan(_stored_result(StoredReport.from_record(request).report), limit)
    return RemediationPlanned(enabled=True, limit=limit, protect=plan.protect, deferred=plan.deferred,
                              needs_person=plan.needs_person).to_record()


@bp.activity_trigger(input_name="request")
def audit_publish_findings(request: dict[str, Any]) -> dict[str, Any]:
    """Publish one event per new or resolved finding of a stored run."""
    events = finding_events(_stored_result(StoredReport.from_record(request).report))
    published = bootstrap.publisher().publish(events) if events else 0
    return FindingsPublished(events=len(events), published=published).to_record()


@bp.activity_trigger(input_name="request")
def drill_reconcile_leftovers(request: dict[str, Any]) -> dict[str, Any]:
    """The audit's drill reconciler: delete what drills recorded, could not delete, and whose lifetime has ended -
    only while it still carries the drill's tag (``drills/leftovers.json``); returns one record per leftover with
    what was done (``gone``, ``deleted``, ``deleting``, ``kept``, ``failed``) for DRL-003."""
    store = bootstrap.report_store()
    data = store.get(drill_flow.LEFTOVERS_BLOB)
    index = json.loads(data) if data else None
    expired = drill_flow.expired_leftovers(index, LeftoversDue.from_record(request).now)
    if not expired:
        return DrillLeftovers().to_record()
    ops = DrillOps(bootstrap.clients())
    outcomes: list[dict[str, Any]] = []
    for leftover in expired:
        resource_id, drill_id = str(leftover["id"]), str(leftover["drillId"])
        try:
            tags = ops.tags_of(resource_id)
            if tags is None:
                outcomes.append({**leftover, "effect": "gone"})
                continue
            delete, _skipped = drill_flow.deletable([resource_id], {resource_id.lower(): tags}, drill_id)
            if not delete:
                outcomes.append({**leftover, "effect": "kept", "reason": "it no longer carries the drill's tag"})
                continue
            operation = ops.delete(resource_id)
            outcomes.append({**leftover, "effect": "deleting" if operation else "deleted"})
        except AzureRefusal as error:
            outcomes.append({**leftover, "effect": "failed", "reason": str(error)[:300]})
    # applied to the index as it is NOW (a drill may have recorded leftovers meanwhile): a conditional write, read
    # again on 412 (steward.report.store.update)
    update(store, drill_flow.LEFTOVERS_BLOB, lambda current: json.dumps(drill_flow.after_reconcile(
        json.loads(current) if current else None, outcomes)).encode(), "application/json")
    return DrillLeftovers(leftovers=tuple(outcomes)).to_record()
