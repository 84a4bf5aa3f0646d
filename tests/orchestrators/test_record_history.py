"""Orchestrations in flight across the change to camelCase records replay on the new code.

``data/protection_history_snake_case.json`` holds the histories ``handle_resource_gone`` and ``reconcile_move``
wrote with the code before the one record codec (``ProtectionRef`` and ``ProtectionOutcome`` as
``dataclasses.asdict``: ``vault_id``, ``item_id``, ``resource_id`` ... in ``find_protections``' results and in the
child ``protect_resource``'s output). A running instance replays such a history after a deployment: the new code
must take the same steps, read the old records for what they say, and end with the same outcomes, now written
with camelCase keys. Recorded with ``tests/orchestrators/replay.py`` at the commit named in the file.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from azure.durable_functions.models.history.HistoryEventType import HistoryEventType as E

from orchestrators import protection
from tests.orchestrators.replay import (
    CALL_ACTIVITY,
    CALL_ACTIVITY_WITH_RETRY,
    CALL_SUB,
    _flatten,
    replay_recorded,
    scheduled,
)

DATA = json.loads((Path(__file__).parent / "data" / "protection_history_snake_case.json").read_text())
SNAKE_TO_CAMEL = {"resource_id": "resourceId", "vault_id": "vaultId", "item_id": "itemId",
                  "correlation_id": "correlationId", "previous_item_id": "previousItemId",
                  "previous_resource_id": "previousResourceId", "previous_vault_id": "previousVaultId",
                  "source_id": "sourceId"}
CALLS = (CALL_ACTIVITY, CALL_ACTIVITY_WITH_RETRY, CALL_SUB)


pytestmark = pytest.mark.usefixtures("packaged_rules")


def run(name: str, history: list[dict[str, Any]]) -> dict[str, Any]:
    return replay_recorded(getattr(protection, name), DATA["orchestrations"][name], history)


def calls(state: dict[str, Any]) -> list[dict[str, Any]]:
    return [a for a in _flatten(state.get("actions") or []) if a.get("actionType") in CALLS]


def camel(record: dict[str, Any]) -> dict[str, Any]:
    return {SNAKE_TO_CAMEL.get(key, key): value for key, value in record.items()}


def test_the_recorded_histories_hold_snake_case_records() -> None:
    # the data is what it claims: the old shape, so the tests below replay old records (not new ones)
    gone = DATA["orchestrations"]["handle_resource_gone"]
    assert "vault_id" in gone["output"][0] and "resource_id" in gone["output"][0]
    found = next(json.loads(e["Result"]) for e in gone["history"] if e["EventType"] == int(E.TASK_COMPLETED)
                 and "source_id" in e.get("Result", ""))
    assert set(found[0]) >= {"vault_id", "item_id", "source_id"}


@pytest.mark.parametrize("name", ["handle_resource_gone", "reconcile_move"])
def test_a_history_recorded_before_the_camel_case_records_replays_to_the_same_outcomes(name: str) -> None:
    recorded = DATA["orchestrations"][name]
    state = run(name, recorded["history"])
    assert state.get("error") is None and state.get("isDone"), state
    # the same steps, in the same order: the replay is deterministic over the old records
    assert [a["functionName"] for a in calls(state)] == scheduled(recorded["history"])
    # the same outcomes, with camelCase keys now
    assert state["output"] == [camel(o) for o in recorded["output"]]


@pytest.mark.parametrize("name", ["handle_resource_gone", "reconcile_move"])
def test_an_instance_in_flight_reads_the_old_records_for_its_next_step(name: str) -> None:
    recorded = DATA["orchestrations"][name]
    history = recorded["history"]
    # cut the history where the old code scheduled the stop: the new code decides that step itself
    stop = next(i for i, e in enumerate(history)
                if e["EventType"] == int(E.TASK_SCHEDULED) and e["Name"] == "stop_protection_retain")
    state = run(name, history[:stop])
    assert state.get("error") is None and not state.get("isDone"), state
    last = calls(state)[-1]
    assert last["functionName"] == "stop_protection_retain"
    # the protection to stop came from find_protections' snake_case record; it goes out in camelCase
    old_input = json.loads(history[stop]["Input"])["protection"]
    assert json.loads(last["input"])["protection"] == camel(old_input)
    assert recorded["stopped"] == [old_input]
