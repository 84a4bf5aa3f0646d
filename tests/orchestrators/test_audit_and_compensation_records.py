"""``audit_estate`` and ``reconcile_teardowns`` read their input and every activity result they use as typed
records on the one record codec (``steward/domain/audit/runs.py``, ``steward/domain/compensation.py``): an
input that is not the orchestration's fails before any activity, an activity result that is not what it
should be fails where it is read, and the records the orchestrations wrote before (the keys they read then,
``subscription_id`` of ``audit_read_subscription`` among them) still replay."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from azure.durable_functions.models.DurableOrchestrationContext import DurableOrchestrationContext
from azure.durable_functions.models.history.HistoryEventType import HistoryEventType as E

from orchestrators import audit, compensation, retrying
from steward.domain.audit.runs import AuditPart, AuditRequest
from steward.domain.compensation import ReconcileRequest, TeardownSnapshot
from steward.domain.errors import InvalidValue
from steward.domain.teardown import format_time
from tests.orchestrators.replay import (
    CALL_ACTIVITY,
    CALL_ACTIVITY_WITH_RETRY,
    CALL_SUB,
    EPOCH,
    _flatten,
    _handle,
    nested,
    replay,
)
from tests.orchestrators.replay import _user_function as user_function
from tests.orchestrators.test_audit_and_compensation import SUBS, AuditFakes

PROTECT_INTENT = {"kind": "protect", "resourceId": "/subscriptions/s/resourceGroups/g/providers/"
                  "Microsoft.Compute/virtualMachines/vm", "origin": {"eventId": "e", "eventType": "t"}}


def _fakes() -> dict[str, Any]:
    activities = AuditFakes().activities()
    activities["teardown_find_marked_vaults"] = lambda p: {"markers": [], "gaps": []}
    return activities


@pytest.mark.parametrize(
    "given",
    [
        PROTECT_INTENT,  # another orchestration's intent record
        {"subscriptions": "00000000-0000-4000-8000-000000000001"},  # not a list
        {"subscriptions": [7]},  # not subscription id strings
        {"teardowns": ["td-1"]},  # a snapshot that is not one
        {"teardowns": {"snapshotAt": "yesterday", "live": []}},  # not an ISO 8601 time
        ["audit"],  # not a record at all
    ],
)
@pytest.mark.parametrize("orchestrator", [audit.audit_estate, compensation.reconcile_teardowns])
def test_an_input_that_is_not_the_orchestrations_fails_before_any_activity(
    orchestrator: Any, given: Any
) -> None:
    result = replay(orchestrator, given, activities=_fakes())
    assert result.status == "Failed", result.output
    assert result.names() == [], "nothing was read or changed"


def test_the_inputs_the_doorways_send_are_read() -> None:
    snapshot = {"live": ["teardown-1"], "snapshotAt": "2026-01-01T00:00:00Z", "skewSeconds": 300}
    timer = AuditRequest.from_record({"trigger": "timer", "pastDue": True, "teardowns": snapshot})
    assert timer.past_due and timer.teardowns == TeardownSnapshot.from_record(snapshot)
    http = AuditRequest.from_record({"trigger": "http", "subscriptions": SUBS[:1], "teardowns": {}})
    assert http.subscriptions == tuple(SUBS[:1]) and http.teardowns is None, "an empty snapshot is none"
    reconcile = ReconcileRequest.from_record({"teardowns": snapshot})
    assert reconcile.teardowns is not None and reconcile.teardowns.live == ("teardown-1",)
    assert reconcile.teardowns.to_record() == snapshot, "passed on to the child with the keys it came with"


def test_a_part_written_with_the_snake_case_key_still_reads() -> None:
    part = AuditPart.from_record({"subscription_id": SUBS[0], "part": "work/r/x.json", "gaps": 2})
    assert (part.subscription_id, part.part, part.gaps) == (SUBS[0], "work/r/x.json", 2)


@pytest.mark.parametrize(
    ("activity", "answer"),
    [
        ("audit_read_subscription", {"subscription_id": SUBS[0], "gaps": 0}),  # no part
        ("audit_evaluate", {"findings": 2}),  # no report
        ("audit_remediation_plan", {"enabled": True, "limit": "many", "protect": []}),
        ("audit_publish_findings", {"published": 2}),  # no events count
    ],
)
def test_an_activity_result_that_is_not_its_record_fails_where_it_is_read(activity: str, answer: Any) -> None:
    activities = AuditFakes().activities()
    activities[activity] = lambda p: answer
    children = {retrying.BACKOFF_CALL: nested(retrying.backoff_call, activities=activities)}
    result = replay(audit.audit_estate, {"subscriptions": SUBS[:1]}, activities=activities, subs=children)
    assert result.status == "Failed"
    assert "field" in str(result.error), result.error


def test_a_remediated_protection_whose_outcome_has_no_known_status_fails_the_count() -> None:
    fakes = AuditFakes(["/subscriptions/s/resourceGroups/g/providers/Microsoft.Compute/virtualMachines/vm"])
    activities = fakes.activities()
    children = {retrying.BACKOFF_CALL: nested(retrying.backoff_call, activities=activities),
                "protect_resource": lambda p, child: {"status": "Splendid"}}
    result = replay(audit.audit_estate, {}, activities=activities, subs=children)
    assert result.status == "Failed" and "Splendid" in str(result.error)


def test_reconcile_reads_its_snapshot_and_passes_the_snapshot_on_from_the_audit() -> None:
    reconciler_inputs: list[Any] = []

    def reconciler(payload: Any, child: str) -> Any:
        reconciler_inputs.append(payload)
        return nested(compensation.reconcile_teardowns, activities=_fakes())(payload, child)

    activities = AuditFakes().activities()
    children = {retrying.BACKOFF_CALL: nested(retrying.backoff_call, activities=activities),
                "reconcile_teardowns": reconciler}
    snapshot = {"snapshotAt": format_time(EPOCH), "live": ["td-1"]}
    result = replay(audit.audit_estate, {"subscriptions": SUBS[:1], "teardowns": snapshot},
                    activities=activities, subs=children)
    assert result.status == "Completed", result.error
    assert reconciler_inputs == [{"teardowns": {**snapshot, "skewSeconds": 300}, "subscriptions": SUBS[:1]}]


def test_an_invalid_value_names_the_record() -> None:
    with pytest.raises(InvalidValue, match="AuditRequest"):
        AuditRequest.from_record(PROTECT_INTENT)


# ---- histories recorded before the typed records replay unchanged -----------------------------------------------

CALLS = (CALL_ACTIVITY, CALL_ACTIVITY_WITH_RETRY, CALL_SUB)
RECORDED = json.loads((Path(__file__).parent / "data" / "audit_history_before_records.json").read_text())
ORCHESTRATORS = {"audit_estate": audit.audit_estate, "reconcile_teardowns": compensation.reconcile_teardowns}


def _run_recorded(name: str, history: list[dict[str, Any]]) -> dict[str, Any]:
    recorded = RECORDED["orchestrations"][name]
    context = DurableOrchestrationContext.from_json(json.dumps({
        "history": history, "instanceId": recorded["instanceId"], "isReplaying": False, "parentInstanceId": None,
        "input": json.dumps(recorded["input"])}))
    return _handle(user_function(ORCHESTRATORS[name]), context)


def _scheduled(history: list[dict[str, Any]]) -> list[str]:
    kinds = {int(E.TASK_SCHEDULED), int(E.SUB_ORCHESTRATION_INSTANCE_CREATED)}
    return [e["Name"] for e in history if e["EventType"] in kinds]


@pytest.mark.parametrize("name", sorted(ORCHESTRATORS))
def test_a_history_recorded_before_the_typed_records_replays_to_the_same_output(name: str) -> None:
    recorded = RECORDED["orchestrations"][name]
    state = _run_recorded(name, recorded["history"])
    assert state.get("error") is None and state.get("isDone"), state
    actions = [a for a in _flatten(state.get("actions") or []) if a.get("actionType") in CALLS]
    assert [a.get("functionName") for a in actions] == _scheduled(recorded["history"]), "the same steps"
    assert state["output"] == recorded["output"], "the same output, with the same keys"


def test_an_audit_in_flight_reads_the_recorded_results_for_its_next_step() -> None:
    recorded = RECORDED["orchestrations"]["audit_estate"]
    history = recorded["history"]
    # cut where the old code scheduled the evaluation: the new code builds that step from the recorded results
    cut = next(i for i, e in enumerate(history)
               if e["EventType"] == int(E.TASK_SCHEDULED) and e["Name"] == "audit_evaluate")
    state = _run_recorded("audit_estate", history[:cut])
    assert state.get("error") is None and not state.get("isDone"), state
    last = [a for a in _flatten(state.get("actions") or []) if a.get("actionType") in CALLS][-1]
    assert last["functionName"] == "audit_evaluate"
    assert json.loads(last["input"]) == json.loads(history[cut]["Input"]), "the parts, leftovers and restored vaults"


def test_the_recorded_histories_are_the_old_records() -> None:
    # the data is what it claims: the read results under their old keys, the reconciler's snapshot passed on
    history = RECORDED["orchestrations"]["audit_estate"]["history"]
    read = [json.loads(e["Result"]) for e in history
            if e["EventType"] == int(E.SUB_ORCHESTRATION_INSTANCE_COMPLETED) and "subscription_id" in e["Result"]]
    assert len(read) == len(SUBS) and all("subscriptionId" not in r for r in read)
    assert "unreadable" in json.dumps(RECORDED["orchestrations"]["audit_estate"]["output"]) or any(
        '"unreadable"' in (e.get("Result") or "") for e in history)
