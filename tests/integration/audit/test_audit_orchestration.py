"""``audit_estate`` on the local Durable runner with hand-written fake activities: the fan-out is batched,
every subscription is read once, a transient failure is retried, and the evaluation gets every part."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import azure.durable_functions as df
import azure.functions as func
import pytest

from orchestrators import audit as audit_orchestrators
from orchestrators import retrying as retrying_orchestrators
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
        self.remediate: list[str] = []  # what the fake plan returns
        self.protected: list[dict[str, Any]] = []


CALLS = Calls()
fakes = df.Blueprint()


@fakes.activity_trigger(input_name="request")
def audit_scope(request: dict[str, Any]) -> dict[str, Any]:
    return {"subscriptions": request.get("subscriptions") or SUBSCRIPTIONS}


@fakes.activity_trigger(input_name="request")
def audit_read_subscription(request: dict[str, Any]) -> dict[str, Any]:
    sub = request["subscriptionId"]
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
def drill_reconcile_leftovers(request: dict[str, Any]) -> dict[str, Any]:
    return {"leftovers": []}  # issue 17: every audit asks the drill reconciler first (nothing expired here)


@fakes.activity_trigger(input_name="request")
def audit_publish_findings(request: dict[str, Any]) -> dict[str, Any]:
    CALLS.published.append(request)
    return {"events": 3, "published": 3}


@fakes.activity_trigger(input_name="request")
def audit_remediation_plan(request: dict[str, Any]) -> dict[str, Any]:
    assert request == {"report": "runs/x.json"}
    return {"enabled": bool(CALLS.remediate), "limit": 20, "protect": list(CALLS.remediate), "deferred": 2,
            "needsPerson": ["/subscriptions/s/resourceGroups/g/providers/Microsoft.Compute/virtualMachines/soft"]}


@fakes.orchestration_trigger(context_name="context")
def protect_resource(context: df.DurableOrchestrationContext) -> Any:
    intent = context.get_input()
    CALLS.protected.append({"instance": context.instance_id, **intent})
    status = "NoVault" if intent["resourceId"].endswith("-far") else "Protected"
    return {"status": status, "resourceId": intent["resourceId"]}
    yield  # a generator, as orchestrators are


@pytest.fixture
def runner(tmp_path: Path) -> Iterator[DurableRunner]:
    app = df.DFApp(http_auth_level=func.AuthLevel.FUNCTION)
    app.register_functions(audit_orchestrators.bp)
    app.register_functions(retrying_orchestrators.bp)  # call_all_with_backoff's per-call sub-orchestration
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


def test_without_remediation_the_audit_starts_no_protection(runner: DurableRunner) -> None:
    CALLS.__init__()  # type: ignore[misc]
    runner.start_new("audit_estate", "audit-report-only", {})
    status = runner.wait_for("audit-report-only", timeout=60)
    assert status["runtimeStatus"] == "Completed", status
    assert status["output"]["remediation"]["enabled"] is False
    assert status["output"]["remediation"]["started"] == 0
    assert CALLS.protected == []


def test_remediation_starts_protection_for_each_planned_resource_in_batches(runner: DurableRunner) -> None:
    CALLS.__init__()  # type: ignore[misc]
    group = "/subscriptions/s/resourceGroups/g/providers/Microsoft.Compute/virtualMachines"
    vms = [f"{group}/vm-{i:02d}" for i in range(19)] + [f"{group}/vm-far"]
    CALLS.remediate = vms
    runner.start_new("audit_estate", "audit-fix", {})
    status = runner.wait_for("audit-fix", timeout=60)
    assert status["runtimeStatus"] == "Completed", status
    remediation = status["output"]["remediation"]
    assert remediation["enabled"] is True and remediation["started"] == 20
    assert remediation["outcomes"] == {"NoVault": 1, "Protected": 19}
    assert remediation["deferred"] == 2 and len(remediation["needsPerson"]) == 1
    assert sorted(p["resourceId"] for p in CALLS.protected) == sorted(vms), "each exactly once"
    assert len({p["instance"] for p in CALLS.protected}) == 20
    assert all(p["instance"].startswith("audit-fix:remediate:") for p in CALLS.protected)
    assert all(p["kind"] == "protect" and p["origin"]["correlationId"] == "audit-fix" for p in CALLS.protected)
    assert all(p["origin"]["eventType"] == "BackupSteward.Audit.Remediation" for p in CALLS.protected)


def test_a_scope_run_again_under_its_instance_id_keys_its_parts_and_protections_by_the_run(
    runner: DurableRunner,
) -> None:
    """One audit at a time per scope reuses the scope's instance id (entrypoints/audit_timer.py), so what
    belongs to a run - its inventory parts, the protections it starts, their origin event - carries the run."""
    CALLS.__init__()  # type: ignore[misc]
    CALLS.remediate = ["/subscriptions/s/resourceGroups/g/providers/Microsoft.Compute/virtualMachines/vm-1"]
    runs = []
    for _ in range(2):
        CALLS.evaluated.clear()
        runner.start_new("audit_estate", "audit-all", {"subscriptions": SUBSCRIPTIONS[:2]})
        assert runner.wait_for("audit-all", timeout=60)["runtimeStatus"] == "Completed"
        [evaluated] = CALLS.evaluated
        runs.append({p.split("/")[1] for p in evaluated["parts"]})
        time.sleep(0.01)  # ten Azure seconds at the fixture's clock scale: the next run starts in a later second
    first, second = runs
    assert len(first) == len(second) == 1 and first != second, "each run writes parts of its own"
    assert all(r.startswith("audit-all-") for r in first | second)
    instances = [p["instance"] for p in CALLS.protected]
    assert len(instances) == len(set(instances)) == 2, "no protection instance id reused across runs"
    assert all(i.startswith("audit-all:remediate:") for i in instances)
    assert len({p["origin"]["eventId"] for p in CALLS.protected}) == 2
    assert {p["origin"]["correlationId"] for p in CALLS.protected} == {"audit-all"}
