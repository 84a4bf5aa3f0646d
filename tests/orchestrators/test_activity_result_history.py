"""Orchestrations in flight across the change to typed activity results replay on the new code.

``data/protection_history_before_typed_results.json`` holds histories that ``protect_resource``,
``reconcile_move`` and ``handle_resource_gone`` wrote with the code before the activities' results became records
of the one codec (``steward/domain/protection_results.py``): ``describe_resource`` and ``list_resources`` wrote
``dataclasses.asdict`` facts (``managed_by``, ``created_at``, ``provisioning_state``), ``find_vaults`` and
``list_vaults`` vaults with ``principal_id`` / ``tenant_id``, ``begin_vm_protection`` its wait as ``retry_after``
and ``steward_scope`` ``subscription_ids``. A running instance replays such a history after a deployment: the new
code must take the same steps, read the old keys for what they say, and end with the same outputs. Recorded with
``tests/orchestrators/replay.py`` and the fakes of ``test_protection.py`` (which write the old shape) at the
commit named in the file.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from azure.durable_functions.models.history.HistoryEventType import HistoryEventType as E

from orchestrators import protection
from tests.orchestrators.replay import (
    CREATE_TIMER,
    _flatten,
    replay_recorded,
    replays_as_recorded,
    scheduled_calls,
)

DATA = json.loads((Path(__file__).parent / "data" / "protection_history_before_typed_results.json").read_text())


pytestmark = pytest.mark.usefixtures("packaged_rules")


def run(case: str, history: list[dict[str, Any]]) -> dict[str, Any]:
    recorded = DATA["orchestrations"][case]
    return replay_recorded(getattr(protection, recorded["orchestrator"]), recorded, history)


def actions(state: dict[str, Any]) -> list[dict[str, Any]]:
    return _flatten(state.get("actions") or [])


def results(case: str, name: str) -> list[Any]:
    """What the recorded history holds as the results of activity ``name``, in order."""
    history = DATA["orchestrations"][case]["history"]
    ids = [e["EventId"] for e in history if e["EventType"] == int(E.TASK_SCHEDULED) and e["Name"] == name]
    done = {e["TaskScheduledId"]: e for e in history if e["EventType"] == int(E.TASK_COMPLETED)}
    return [json.loads(done[i]["Result"]) for i in ids if i in done]


def cut_before(case: str, name: str) -> list[dict[str, Any]]:
    """The recorded history up to (not including) the scheduling of activity ``name``: the new code decides that
    step itself, from the old records before it."""
    history = DATA["orchestrations"][case]["history"]
    return history[:next(i for i, e in enumerate(history)
                         if e["EventType"] == int(E.TASK_SCHEDULED) and e["Name"] == name)]


def time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def test_the_recorded_histories_hold_the_old_snake_case_results() -> None:
    # the data is what it claims: the old shape, so the tests below replay old results (not new ones)
    assert {"managed_by", "created_at", "provisioning_state"} <= set(results("protect_vm", "describe_resource")[0])
    assert results("protect_vm", "begin_vm_protection") == [
        {"ok": True, "done": False, "operation": "op-1", "retry_after": 120}]
    assert {"principal_id", "tenant_id"} <= set(results("protect_disk", "find_vaults")[0][0])
    assert "subscription_ids" in results("move", "steward_scope")[0]
    assert {"principal_id", "tenant_id"} <= set(results("move", "list_vaults")[0][0])
    assert results("gone_recreated", "describe_resource")[0]["created_at"] == "2026-01-05T08:59:30Z"


@pytest.mark.parametrize("case", sorted(DATA["orchestrations"]))
def test_a_history_recorded_before_the_typed_results_replays_to_the_same_steps_and_output(case: str) -> None:
    recorded = DATA["orchestrations"][case]
    # the same steps, in the same order: the replay is deterministic over the old results
    state = replays_as_recorded(getattr(protection, recorded["orchestrator"]), recorded)
    assert state["output"] == recorded["output"]


def test_a_vm_protection_in_flight_waits_as_the_old_retry_after_said() -> None:
    # cut where the old code, having read retry_after 120, created its timer: the new code reads the same wait
    history = DATA["orchestrations"]["protect_vm"]["history"]
    begun = next(i for i, e in enumerate(history) if e["EventType"] == int(E.TASK_COMPLETED)
                 and "retry_after" in e.get("Result", ""))
    state = run("protect_vm", history[:begun + 1])
    assert state.get("error") is None and not state.get("isDone"), state
    [timer] = [a for a in actions(state) if a.get("actionType") == CREATE_TIMER][-1:]
    assert time(timer["fireAt"]) - time(history[begun]["Timestamp"]) == timedelta(seconds=120)


def test_a_disk_protection_in_flight_grants_roles_to_the_old_records_principal() -> None:
    state = run("protect_disk", cut_before("protect_disk", "grant_vault_roles"))
    assert state.get("error") is None and not state.get("isDone"), state
    last = scheduled_calls(state)[-1]
    assert last["functionName"] == "grant_vault_roles"
    # the input is a record of the codec now (camelCase, issue 16 step 4); the principal is the old result's
    assert json.loads(last["input"])["principalId"] == results("protect_disk", "find_vaults")[0][0]["principal_id"]


def test_a_move_in_flight_reads_the_old_scope_for_its_next_steps() -> None:
    state = run("move", cut_before("move", "find_protections"))
    assert state.get("error") is None and not state.get("isDone"), state
    last = scheduled_calls(state)[-1]
    assert last["functionName"] == "find_protections"
    assert json.loads(last["input"]) == {"subscriptionIds": results("move", "steward_scope")[0]["subscription_ids"]}
