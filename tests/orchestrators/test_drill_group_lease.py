"""Replay of ``restore_drill`` when ``drill_start`` answers that another drill's VM restore into the drill group is in
flight (``DrillGroupBusy``: it holds the group's lease, ``activities/drill.py``): the drill waits on durable timers
and sends the restore again, and a cancel during the wait ends the drill without a restore."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from orchestrators import drill as drill_orchestrator
from steward.domain import drill_flow as flow
from tests.orchestrators.replay import EPOCH, replay
from tests.orchestrators.test_drill_validation import DISK, NEW, Azure


def busy_then_free(busy: int, inbox: list[tuple[str, Any]], cancel_at: int | None = None) -> tuple[Azure, Any]:
    azure = Azure(None, inbox)
    activities = azure.activities()
    answer = activities["drill_start"]
    sent: list[int] = [0]

    def start(payload: dict[str, Any]) -> Any:
        if payload["phase"] != "restore":
            return answer(payload)
        sent[0] += 1
        if cancel_at is not None and sent[0] == cancel_at:
            inbox.append((drill_orchestrator.EVENT_CANCEL, {"by": "oid"}))
        if sent[0] <= busy:
            return {"ok": False, "error": {"code": flow.GROUP_BUSY, "message": "drill other is restoring"}}
        return answer(payload)

    activities["drill_start"] = start
    return azure, activities


def test_a_busy_drill_group_is_waited_for_and_the_restore_sent_again() -> None:
    inbox: list[tuple[str, Any]] = []
    _, activities = busy_then_free(2, inbox)
    result = replay(drill_orchestrator.restore_drill, {"resources": [DISK]}, activities=activities,
                    events=inbox, instance_id="drill-1")
    assert result.status == "Completed", result.error
    [outcome] = result.output["results"]
    assert outcome["outcome"] == "Succeeded", outcome
    assert [c["phase"] for c in result.inputs("drill_start")] == ["validate", "restore", "restore", "restore"]
    assert result.now >= EPOCH + 2 * flow.JOB_POLL_CAP  # durable timers, not an activity's sleep
    assert outcome["deleted"] == [NEW]


def test_a_cancel_while_the_group_is_busy_ends_the_drill_without_a_restore() -> None:
    inbox: list[tuple[str, Any]] = []
    azure, activities = busy_then_free(10_000, inbox, cancel_at=2)
    result = replay(drill_orchestrator.restore_drill, {"resources": [DISK]}, activities=activities,
                    events=inbox, instance_id="drill-1")
    assert result.status == "Completed", result.error
    [outcome] = result.output["results"]
    assert outcome["outcome"] == "Cancelled", outcome
    assert "drill_job" not in azure.order and "restoreJobId" not in outcome
    assert result.now < EPOCH + timedelta(hours=1)
