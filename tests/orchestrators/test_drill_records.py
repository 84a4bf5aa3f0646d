"""``restore_drill`` reads its input and every activity result through the records of
``steward/domain/drill_records.py`` (issue 16 step 4). The keys did not change, so a drill in flight replays its
history as before: ``data/drill_history_before_records.json`` holds histories recorded by the code that read the
raw keys (with the fakes of ``test_drill_validation.py``), replayed here on the new code. A result that is not its
record now fails where it is read."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from azure.durable_functions.models.history.HistoryEventType import HistoryEventType as E

from orchestrators import drill as drill_orchestrator
from tests.orchestrators import test_drill_validation as fakes
from tests.orchestrators.replay import replay, replay_recorded, replays_as_recorded, scheduled_calls

DATA = json.loads((Path(__file__).parent / "data" / "drill_history_before_records.json").read_text())


def run(case: str, history: list[dict[str, Any]]) -> dict[str, Any]:
    return replay_recorded(drill_orchestrator.restore_drill, DATA["orchestrations"][case], history)


@pytest.mark.parametrize("case", sorted(DATA["orchestrations"]))
def test_a_drill_history_recorded_before_the_records_replays_to_the_same_steps_and_report(case: str) -> None:
    recorded = DATA["orchestrations"][case]
    assert replays_as_recorded(drill_orchestrator.restore_drill, recorded)["output"] == recorded["output"]


def test_a_drill_in_flight_sends_the_next_activity_the_target_it_was_given() -> None:
    recorded = DATA["orchestrations"]["disk_drill_without_a_hook"]
    history = recorded["history"]
    cut = next(i for i, e in enumerate(history) if e["EventType"] == int(E.TASK_SCHEDULED)
               and e["Name"] == "drill_prepare")
    state = run("disk_drill_without_a_hook", history[:cut])
    [last] = scheduled_calls(state)[-1:]
    assert last["functionName"] == "drill_prepare"
    assert json.loads(last["input"]) == json.loads(history[cut]["Input"])


@pytest.mark.parametrize(("name", "answer", "field"), [
    ("drill_candidates", {"targets": [{**fakes.target(None), "workload": "tape"}], "skipped": []}, "workload"),
    ("drill_candidates", {"targets": [{**fakes.target(None), "every": "weekly"}], "skipped": []}, "every"),
    ("drill_points", {"points": [{"id": "rp-1", "time": "yesterday"}]}, "time"),
    ("drill_job", {"status": "Completed", "error": "boom"}, "error"),
])
def test_a_result_that_is_not_its_record_fails_where_it_is_read(name: str, answer: Any, field: str) -> None:
    result = replay(drill_orchestrator.restore_drill, {"resources": [fakes.DISK]},
                    activities={**fakes.Azure(None, []).activities(), name: lambda payload: answer},
                    instance_id="drill-1")
    if name in ("drill_candidates",):
        assert result.status == "Failed" and field in str(result.error), result.error
        return
    # inside one resource's drill a failure is that resource's RestoreFailed, and cleanup still runs
    assert result.status == "Completed", result.error
    [outcome] = result.output["results"]
    assert outcome["outcome"] == "RestoreFailed" and field in outcome["error"]["message"], outcome


def test_the_input_is_the_drill_request() -> None:
    result = replay(drill_orchestrator.restore_drill, {"resources": "all of them"},
                    activities=fakes.Azure(None, []).activities(), instance_id="drill-1")
    assert result.status == "Failed" and "resources" in str(result.error)
    assert result.names() == []
