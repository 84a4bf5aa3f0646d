"""Replay of ``restore_drill`` around the user validation hook (every episode replays the whole history, so a
wait that is not deterministic cannot pass): a disk drill whose rule has ``validationHook`` publishes
``RestoreReady`` with the restored ids, waits on a durable timer bounded by the rule's timeout for the
``Validation`` event, and cleans up after whatever ends the wait: pass, fail, no answer in time, a cancel. An
answer naming another resource's wait is ignored."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from orchestrators import drill as drill_orchestrator
from steward.domain import drill_flow as flow
from tests.orchestrators.replay import EPOCH, Replay, replay

SUB = "00000000-0000-4000-8000-000000000001"
DISK = f"/subscriptions/{SUB}/resourceGroups/rg-app/providers/Microsoft.Compute/disks/data-disk"
OTHER = f"/subscriptions/{SUB}/resourceGroups/rg-app/providers/Microsoft.Compute/disks/other-disk"
GROUP = f"/subscriptions/{SUB}/resourceGroups/backup-steward-drill-westeurope"
NEW = f"{GROUP}/providers/Microsoft.Compute/disks/data-disk-drill-1"
BV = f"/subscriptions/{SUB}/resourceGroups/rg-app/providers/Microsoft.DataProtection/backupVaults/bv-weu"
HOOK = 3600.0


def target(validation_timeout: float | None) -> dict[str, Any]:
    return {
        "resourceId": DISK, "name": "data-disk", "type": "Microsoft.Compute/disks", "location": "westeurope",
        "subscription": SUB, "workload": "disk", "vaultId": BV, "vaultLocation": "westeurope",
        "protectionId": f"{BV}/backupInstances/data-disk", "datastore": "OperationalStore", "rule": "r",
        "every": 7 * 86400.0, "lifetime": 6 * 3600.0, "point": "latest", "window": None,
        "group": "backup-steward-drill-westeurope",
        "budget": {"share": 1.0, "minimum": 1, "maxConcurrent": 5, "maxRestoredGb": None},
        "sizeGb": 10.0, "expected": [{"id": DISK, "sizeGb": 10, "sku": "Premium_LRS"}],
        "validationTimeout": validation_timeout, "lastDrillAt": None,
    }


class Azure:
    """Fake activities of one disk drill that restores, passes its own checks, and deletes what it made."""

    def __init__(self, validation_timeout: float | None, inbox: list[tuple[str, Any]],
                 raise_on_ready: list[tuple[str, Any]] | None = None) -> None:
        self.timeout = validation_timeout
        self.inbox = inbox
        self.raise_on_ready = raise_on_ready or []
        self.ready: list[dict[str, Any]] = []
        self.order: list[str] = []

    def activities(self) -> dict[str, Any]:
        def log(name: str, answer: Any) -> Any:
            def run(payload: Any) -> Any:
                self.order.append(name)
                return answer(payload) if callable(answer) else answer
            return run

        def start(payload: dict[str, Any]) -> dict[str, Any]:
            if payload["phase"] == "validate":
                return {"ok": True, "operation": None}
            return {"ok": True, "newDiskId": NEW, "operation": {"what": "restore", "retryAfter": 10}}

        def ready(payload: dict[str, Any]) -> dict[str, Any]:
            self.ready.append(payload)
            self.inbox.extend(self.raise_on_ready)  # an answer (or a cancel) raised while the event is published
            return {"published": 1}

        return {
            "drill_candidates": log("drill_candidates", {"targets": [target(self.timeout)], "skipped": []}),
            "drill_points": log("drill_points", {"points": [
                {"id": "rp-1", "time": (EPOCH - timedelta(hours=3)).isoformat()}]}),
            "drill_prepare": log("drill_prepare", {"ok": True, "group": {"id": GROUP}, "account": None}),
            "drill_grant": log("drill_grant", {"ok": True, "created": []}),
            "drill_start": log("drill_start", start),
            "drill_operation": log("drill_operation", {"state": "succeeded", "jobId": "job-1"}),
            "drill_job": log("drill_job", {"status": "Completed", "startTime": "2026-01-05T09:00:10Z",
                                           "endTime": "2026-01-05T09:05:10Z"}),
            "drill_restored": log("drill_restored", {"restored": [
                {"id": NEW, "sizeGb": 10, "sku": "Premium_LRS"}]}),
            "drill_restore_ready": log("drill_restore_ready", ready),
            "drill_cleanup": log("drill_cleanup", {"deleted": [NEW], "pending": [], "skipped": []}),
            "drill_remaining": log("drill_remaining", {"remaining": []}),
            "drill_record": log("drill_record", {"events": 1}),
        }


def run(validation_timeout: float | None, answers: list[tuple[str, Any]]) -> tuple[Replay, Azure, dict[str, Any]]:
    inbox: list[tuple[str, Any]] = []
    azure = Azure(validation_timeout, inbox, answers)
    result = replay(drill_orchestrator.restore_drill, {"resources": [DISK]}, activities=azure.activities(),
                    events=inbox, instance_id="drill-1")
    assert result.status == "Completed", result.error
    [outcome] = result.output["results"]
    return result, azure, outcome


def test_a_fail_from_the_hook_is_validation_failed_and_cleanup_runs_after() -> None:
    _, azure, result = run(HOOK, [(flow.EVENT_VALIDATION, {"result": "fail", "detail": "rows", "resourceId": DISK,
                                                           "by": "oid"})])
    assert result["outcome"] == "ValidationFailed" and result["validation"]["passed"]
    assert result["userValidation"] == {"result": "fail", "detail": "rows", "by": "oid"}
    [ready] = azure.ready
    assert ready["restored"] == [NEW] and ready["drillId"] == "drill-1" and ready["resourceId"] == DISK
    assert azure.order.index("drill_restore_ready") < azure.order.index("drill_cleanup")
    assert result["deleted"] == [NEW] and result["left"] == []


def test_a_pass_is_succeeded_and_an_answer_naming_another_resource_is_ignored() -> None:
    replayed, _, result = run(HOOK, [(flow.EVENT_VALIDATION, {"result": "fail", "resourceId": OTHER}),
                                     (flow.EVENT_VALIDATION, {"result": "pass", "resourceId": DISK})])
    assert result["outcome"] == "Succeeded" and result["userValidation"]["result"] == "pass", result
    # the pass came before the timeout: the drill did not sit out the hour
    assert replayed.output["endedAt"] < (EPOCH + timedelta(seconds=HOOK)).isoformat()


def test_no_answer_is_validation_timed_out_at_the_rules_timeout_and_cleanup_runs() -> None:
    replayed, azure, result = run(HOOK, [])
    assert result["outcome"] == "ValidationTimedOut" and result["userValidation"] == {"result": "timedOut"}
    waited_until = azure.ready[0]["waitUntil"]
    assert replayed.output["endedAt"] >= waited_until  # the durable timer, not an activity, ended the wait
    assert azure.order[-3:] == ["drill_cleanup", "drill_remaining", "drill_record"]
    assert result["deleted"] == [NEW]


def test_a_cancel_during_the_wait_ends_it_and_cleans_up() -> None:
    _, azure, result = run(HOOK, [(drill_orchestrator.EVENT_CANCEL, {"by": "oid"})])
    assert result["outcome"] == "Cancelled" and result["userValidation"] == {"result": "cancelled"}
    assert "drill_cleanup" in azure.order and result["deleted"] == [NEW]


def test_without_a_hook_nothing_is_published_and_nothing_waits() -> None:
    _, azure, result = run(None, [])
    assert result["outcome"] == "Succeeded" and "userValidation" not in result
    assert "drill_restore_ready" not in azure.order


def test_each_look_at_the_restore_job_names_the_drill_group_it_vouches_for() -> None:
    inbox: list[tuple[str, Any]] = []
    azure = Azure(None, inbox)
    looks: list[dict[str, Any]] = []
    activities = azure.activities()
    answer = activities["drill_job"]
    activities["drill_job"] = lambda payload: (looks.append(payload), answer(payload))[1]
    result = replay(drill_orchestrator.restore_drill, {"resources": [DISK]}, activities=activities,
                    events=inbox, instance_id="drill-1")
    assert result.status == "Completed", result.error
    assert looks and all(look == {"vaultId": BV, "jobId": "job-1", "groupId": GROUP} for look in looks), looks
