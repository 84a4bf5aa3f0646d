"""Replay of a ``restore_drill`` of more resources than one batch: it continues as new every ``BATCH``
resources, carrying the chosen targets, the results so far, the next index and whether a cancel came, so each
generation's history is one batch long; the drill's report is the same as one long history would give. A cancel
received in one generation still stops the resources of the next."""

from __future__ import annotations

import json
from typing import Any

import pytest
from azure.durable_functions.models.history.HistoryEventType import HistoryEventType as E

from orchestrators import drill as drill_orchestrator
from tests.orchestrators.replay import CONTINUE_AS_NEW, _flatten, replay, replay_recorded
from tests.orchestrators.test_drill_validation import DISK, Azure, target

COUNT = drill_orchestrator.BATCH * 2 + 1


def targets() -> list[dict[str, Any]]:
    budget = {"share": 1.0, "minimum": 1, "maxConcurrent": 100, "maxRestoredGb": None}
    return [{**target(None), "resourceId": f"{DISK}-{i:02d}", "name": f"data-disk-{i:02d}", "budget": budget}
            for i in range(COUNT)]


def run(cancel_in_job_of: int | None = None) -> tuple[Any, Azure]:
    """``cancel_in_job_of``: the resource (0-based) whose restore job is still running at its first look, and
    during whose wait a Cancel arrives (the drill cancels the job: its next look says Cancelled)."""
    inbox: list[tuple[str, Any]] = []
    azure = Azure(None, inbox)
    fakes = azure.activities()
    fakes["drill_candidates"] = lambda _payload: {"targets": targets(), "skipped": [{"resourceId": "/x"}]}
    completed = fakes["drill_job"]
    looks: list[Any] = []

    def job(payload: Any) -> Any:
        looks.append(payload)
        drilled = len([n for n in azure.order if n == "drill_restored"])
        if cancel_in_job_of is not None and drilled == cancel_in_job_of:
            if not inbox and not any(n == "drill_cancel_job" for n in azure.order):
                inbox.append((drill_orchestrator.EVENT_CANCEL, {"by": "oid"}))
                return {"status": "InProgress", "startTime": "2026-01-05T09:00:10Z"}
            return {"status": "Cancelled", "startTime": "2026-01-05T09:00:10Z", "endTime": "2026-01-05T09:02:10Z"}
        return completed(payload)

    fakes["drill_job"] = job
    fakes["drill_cancel_job"] = lambda _payload: azure.order.append("drill_cancel_job") or {"cancelled": True}
    result = replay(drill_orchestrator.restore_drill, {"resources": []}, activities=fakes, events=inbox,
                    instance_id="drill-1")
    assert result.status == "Completed", result.error
    return result, azure


def test_a_drill_longer_than_a_batch_continues_as_new_and_reports_every_resource_once() -> None:
    result, azure = run()
    # two hand-overs for 11 resources in batches of 5; each carries what the next generation needs
    assert [g["carried"]["next"] for g in result.generations] == [5, 10]
    assert all(len(g["carried"]["results"]) == g["carried"]["next"] for g in result.generations)
    report = result.output
    assert [r["resourceId"] for r in report["results"]] == [t["resourceId"] for t in targets()]
    assert {r["outcome"] for r in report["results"]} == {"Succeeded"}
    assert report["chosen"] == [t["resourceId"] for t in targets()] and report["skipped"] == [{"resourceId": "/x"}]
    assert result.names().count("drill_candidates") == 1, "candidates are read once, not per generation"
    assert azure.order.count("drill_record") == 1 and azure.order[-1] == "drill_record"
    assert report["startedAt"] < report["endedAt"] and report["cancelled"] is False


def test_a_cancel_in_one_generation_stops_the_resources_of_the_next() -> None:
    result, azure = run(cancel_in_job_of=2)  # the third resource's job is running when the cancel comes
    outcomes = [r["outcome"] for r in result.output["results"]]
    assert outcomes == ["Succeeded"] * 2 + ["Cancelled"] * (COUNT - 2), outcomes
    assert result.output["results"][2]["restoreJob"]["status"] == "Cancelled"
    assert [g["carried"]["cancelled"] for g in result.generations] == [True, True]
    assert azure.order.count("drill_start") == 3 * 2, "no restore after the cancel (a disk: validate + restore)"
    assert result.output["cancelled"] is True


def _old_code_history(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """The whole history a drill of COUNT resources records with the code before the batches (one history)."""
    with monkeypatch.context() as patched:
        patched.setattr(drill_orchestrator, "BATCH", 10_000)
        result, _ = run()
    assert result.generations == []
    return result.history


def _cut_after(history: list[dict[str, Any]], name: str, nth: int) -> list[dict[str, Any]]:
    """The history up to the completion of the ``nth`` activity ``name``."""
    ids = [e["EventId"] for e in history if e["EventType"] == int(E.TASK_SCHEDULED) and e["Name"] == name]
    done = next(i for i, e in enumerate(history)
                if e["EventType"] == int(E.TASK_COMPLETED) and e["TaskScheduledId"] == ids[nth - 1])
    return history[:done + 1]


def test_a_drill_in_flight_from_before_the_batches_finishes_in_its_one_history(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Deployed while an older drill runs: a history that has begun its 7th resource is not handed over (that
    would drill the 6th and 7th again) and goes on where it was; one whose 5th resource just ended is handed over
    before the 6th begins, as a drill of the new code is."""
    history = _old_code_history(monkeypatch)
    recorded = {"instanceId": "drill-1", "input": {"resources": []}}

    deep = replay_recorded(drill_orchestrator.restore_drill, recorded, _cut_after(history, "drill_points", 7))
    actions = _flatten(deep.get("actions") or [])
    assert not any(a.get("actionType") == CONTINUE_AS_NEW for a in actions), "no hand-over mid-way"
    assert [a.get("functionName") for a in actions if a.get("functionName")][-1] == "drill_prepare"

    ended = replay_recorded(drill_orchestrator.restore_drill, recorded, _cut_after(history, "drill_remaining", 5))
    [again] = [a for a in _flatten(ended.get("actions") or []) if a.get("actionType") == CONTINUE_AS_NEW]
    carried = json.loads(again["input"])["carried"]
    assert carried["next"] == 5 and len(carried["results"]) == 5 and carried["cancelled"] is False
