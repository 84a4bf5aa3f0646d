"""``teardown_step_chunk`` follows the operations its activities started (send and await split) on the local
Durable runner, with hand-written fake activities: a running operation is polled until it succeeds and its
outcome read back, a ``resend`` sends the effect again, a failed operation comes back as the target's refusal."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import azure.durable_functions as df
import azure.functions as func
import pytest

from orchestrators import teardown as teardown_orchestrators
from sandbox.clock import VirtualClock
from sandbox.durable import DurableRunner, RunnerConfig
from sandbox.durable.discovery import load_catalog

VAULT = (
    "/subscriptions/00000000-0000-4000-8000-000000000001/resourceGroups/rg/providers/Microsoft.RecoveryServices/vaults/v"
)


def target(name: str) -> dict[str, Any]:
    return {
        "type": "backupItem",
        "id": f"{VAULT}/backupFabrics/Azure/protectionContainers/c/protectedItems/{name}",
        "name": name,
        "fabric": "Azure",
        "container": "c",
        "kind": "vm",
        "state": "protected",
    }


class Calls:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.sends: list[str] = []
        self.polls: list[str] = []
        self.completed: list[str] = []


CALLS = Calls()
fakes = df.Blueprint()


def _effect(t: dict[str, Any], effect: str) -> dict[str, Any]:
    return {"ok": True, "effect": {"type": t["type"], "id": t["id"], "name": t["name"], "effect": effect}}


@fakes.activity_trigger(input_name="payload")
def teardown_delete_item(payload: dict[str, Any]) -> dict[str, Any]:
    t = payload["target"]
    with CALLS.lock:
        CALLS.sends.append(t["name"])
        sent = CALLS.sends.count(t["name"])
    if t["name"] == "conflicted" and sent == 1:
        return {"ok": True, "pending": {"resend": True, "retryAfter": 60, "what": "conflicted"}, "target": t}
    if t["name"] == "conflicted":
        return _effect(t, "deleted")
    return {"ok": True, "pending": {"statusUrl": f"https://op/{t['name']}", "retryAfter": 0.1, "what": t["name"]},
            "target": t}


@fakes.activity_trigger(input_name="payload")
def teardown_operation_status(payload: dict[str, Any]) -> dict[str, Any]:
    name = payload["operation"]["what"]
    with CALLS.lock:
        CALLS.polls.append(name)
        polled = CALLS.polls.count(name)
    if name == "failing":
        return {"ok": False, "refusal": {"kind": "failed", "code": "UserErrorX", "message": "the delete failed"}}
    if name == "flaky" and polled == 1:  # the first operation ended Failed on Azure's side
        return {"ok": True, "state": "failed", "message": "InternalServerError", "retryAfter": 10}
    if name == "broken":  # every operation ends Failed on Azure's side
        return {"ok": True, "state": "failed", "message": "InternalServerError", "retryAfter": 10}
    if name == "slow" and polled < 3:
        return {"ok": True, "state": "running", "retryAfter": 5000}
    return {"ok": True, "state": "succeeded", "retryAfter": 10}


@fakes.activity_trigger(input_name="payload")
def teardown_complete_operation(payload: dict[str, Any]) -> dict[str, Any]:
    with CALLS.lock:
        CALLS.completed.append(payload["target"]["name"])
    return _effect(payload["target"], "deleted")


@pytest.fixture
def runner(tmp_path: Path) -> Iterator[DurableRunner]:
    app = df.DFApp(http_auth_level=func.AuthLevel.FUNCTION)
    app.register_functions(teardown_orchestrators.bp)
    app.register_functions(fakes)
    clock = VirtualClock(scale=100_000.0)
    with DurableRunner(load_catalog(app), RunnerConfig(db_path=str(tmp_path / "d.sqlite")), clock=clock) as started:
        yield started


def test_started_operations_are_polled_on_timers_then_read_back(runner: DurableRunner) -> None:
    CALLS.__init__()  # type: ignore[misc]
    payload = {"vaultId": VAULT, "activity": "teardown_delete_item", "parallel": 3,
               "targets": [target("slow"), target("conflicted"), target("quick")]}
    runner.start_new("teardown_step_chunk", "chunk-1", payload)
    status = runner.wait_for("chunk-1", timeout=60)
    assert status["runtimeStatus"] == "Completed", status
    results = status["output"]["results"]
    assert [r["effect"]["name"] for r in results] == ["slow", "conflicted", "quick"]
    assert all(r["ok"] and r["effect"]["effect"] == "deleted" for r in results)
    assert CALLS.polls.count("slow") == 3 and CALLS.polls.count("quick") == 1
    assert CALLS.sends.count("conflicted") == 2, "a resend sends the same effect again"
    assert sorted(CALLS.completed) == ["quick", "slow"]


def test_an_operation_that_failed_is_the_targets_refusal_and_the_chunk_stops(runner: DurableRunner) -> None:
    CALLS.__init__()  # type: ignore[misc]
    payload = {"vaultId": VAULT, "activity": "teardown_delete_item", "parallel": 1,
               "targets": [target("failing"), target("quick")]}
    runner.start_new("teardown_step_chunk", "chunk-2", payload)
    status = runner.wait_for("chunk-2", timeout=60)
    assert status["runtimeStatus"] == "Completed", status
    [result] = status["output"]["results"]
    assert result["ok"] is False and result["refusal"]["message"] == "the delete failed"
    assert result["target"]["name"] == "failing"
    assert CALLS.sends == ["failing"], "nothing more is started after a refusal"


def test_an_operation_that_failed_on_azures_side_is_sent_again_not_polled_again(runner: DurableRunner) -> None:
    """Polling a Failed operation again can only say Failed again: the effect is sent anew, a bounded number of
    times (the chaos run's seeds 3 and 5 failed their teardown on one injected LRO failure before this)."""
    CALLS.__init__()  # type: ignore[misc]
    payload = {"vaultId": VAULT, "activity": "teardown_delete_item", "parallel": 2,
               "targets": [target("flaky"), target("quick")]}
    runner.start_new("teardown_step_chunk", "chunk-3", payload)
    status = runner.wait_for("chunk-3", timeout=60)
    assert status["runtimeStatus"] == "Completed", status
    assert [r["effect"]["name"] for r in status["output"]["results"]] == ["flaky", "quick"]
    assert CALLS.sends.count("flaky") == 2 and CALLS.polls.count("flaky") == 2
    assert sorted(CALLS.completed) == ["flaky", "quick"]

    CALLS.__init__()  # type: ignore[misc]
    payload = {"vaultId": VAULT, "activity": "teardown_delete_item", "parallel": 1, "targets": [target("broken")]}
    runner.start_new("teardown_step_chunk", "chunk-4", payload)
    status = runner.wait_for("chunk-4", timeout=60)
    assert status["runtimeStatus"] == "Failed", status
    assert CALLS.sends.count("broken") == 4  # the first send and three resends, then the step's own retries decide
