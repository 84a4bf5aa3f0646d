"""``audit_estate`` on the local Durable runner with hand-written fake activities: the fan-out is batched,
every subscription is read once, a transient failure is retried, and the evaluation gets every part."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import azure.durable_functions as df
import azure.functions as func
import pytest

from orchestrators import audit as audit_orchestrators
from sandbox.clock import VirtualClock
from sandbox.durable import DurableRunner, RunnerConfig
from sandbox.durable.discovery import load_catalog

SUBSCRIPTIONS = [f"00000000-0000-4000-8000-{i:012d}" for i in range(1, 20)]


class Calls:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.reads: list[str] = []
        self.failed_once: set[str] = set()
        self.evaluated: list[dict[str, Any]] = []
        self.published: list[dict[str, Any]] = []


CALLS = Calls()
fakes = df.Blueprint()


@fakes.activity_trigger(input_name="request")
def audit_scope(request: dict[str, Any]) -> dict[str, Any]:
    return {"subscriptions": request.get("subscriptions") or SUBSCRIPTIONS}


@fakes.activity_trigger(input_name="request")
def audit_read_subscription(request: dict[str, Any]) -> dict[str, Any]:
    sub = request["subscription_id"]
    with CALLS.lock:
        CALLS.reads.append(sub)
        if sub == SUBSCRIPTIONS[3] and sub not in CALLS.failed_once:
            CALLS.failed_once.add(sub)
            raise RuntimeError("429 Too Many Requests (transient)")
    return {
        "subscription_id": sub,
        "part": f"work/{request['run']}/{sub}.json",
        "resources": 1,
        "vaults": 0,
        "items": 0,
        "gaps": 1 if sub == SUBSCRIPTIONS[0] else 0,
    }


@fakes.activity_trigger(input_name="request")
def audit_evaluate(request: dict[str, Any]) -> dict[str, Any]:
    CALLS.evaluated.append(request)
    return {"report": "runs/x.json", "html": "runs/x.html", "findings": 3, "new": 3, "resolved": 0}


@fakes.activity_trigger(input_name="request")
def audit_publish_findings(request: dict[str, Any]) -> dict[str, Any]:
    CALLS.published.append(request)
    return {"events": 3, "published": 3}


@pytest.fixture
def runner(tmp_path: Path) -> Iterator[DurableRunner]:
    app = df.DFApp(http_auth_level=func.AuthLevel.FUNCTION)
    app.register_functions(audit_orchestrators.bp)
    app.register_functions(fakes)
    clock = VirtualClock(scale=1000.0)  # the 5 s retry interval passes in 5 ms
    with DurableRunner(load_catalog(app), RunnerConfig(db_path=str(tmp_path / "d.sqlite")), clock=clock) as started:
        yield started


def test_the_audit_reads_each_subscription_once_retries_transients_and_evaluates_all_parts(
    runner: DurableRunner,
) -> None:
    CALLS.__init__()  # type: ignore[misc]
    runner.start_new("audit_estate", "audit-test", {"trigger": "test"})
    status = runner.wait_for("audit-test", timeout=60)
    assert status["runtimeStatus"] == "Completed", status
    output = status["output"]
    assert output["subscriptions"] == len(SUBSCRIPTIONS)
    assert output["inventoryGaps"] == 1
    assert output["events"] == 3
    assert sorted(set(CALLS.reads)) == sorted(SUBSCRIPTIONS)
    assert len(CALLS.reads) == len(SUBSCRIPTIONS) + 1  # the one transient failure, retried once
    [evaluated] = CALLS.evaluated
    assert [p.rsplit("/", 1)[1] for p in evaluated["parts"]] == [f"{s}.json" for s in SUBSCRIPTIONS]
    assert evaluated["now"]  # the orchestration's deterministic time
    assert CALLS.published == [{"report": "runs/x.json"}]


def test_named_subscriptions_limit_the_audit(runner: DurableRunner) -> None:
    CALLS.__init__()  # type: ignore[misc]
    runner.start_new("audit_estate", "audit-two", {"subscriptions": SUBSCRIPTIONS[5:7]})
    status = runner.wait_for("audit-two", timeout=60)
    assert status["runtimeStatus"] == "Completed", status
    assert sorted(CALLS.reads) == sorted(SUBSCRIPTIONS[5:7])
