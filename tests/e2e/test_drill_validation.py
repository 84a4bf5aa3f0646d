"""The drill's user validation hook through the real app (``function_app.py`` on the local host, the Durable
runner, the ARM sandbox), as AWS restore testing's validation results: a drill rule with ``validationHook``
publishes ``BackupSteward.Drill.RestoreReady`` once the restored objects are checked, waits (a durable timer,
bounded by the rule's timeout) for ``POST /api/drills/{id}/validation``, and deletes what it restored whatever the
answer: pass, fail, or none in time (``ValidationTimedOut``). Checked through the sandbox's store."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import Harness, drill_harness
from tests.e2e.test_drills import (
    ADMIN,
    HOUR,
    OTHER,
    call,
    drill_events,
    drill_leftovers,
    finished,
    protected_estate,
    restored_by,
)

HOOKED = """
drills:
  - name: everything-weekly
    every: P7D
    recoveryPoint: latest
    lifetime: PT6H
    validationHook: {timeout: PT5H}
    budgets: {maxConcurrent: 5, maxRestoredGb: 1024}
"""


@pytest.fixture
def app(tmp_path: Path) -> Iterator[Harness]:
    with drill_harness(tmp_path, HOOKED, operator=ADMIN) as harness:
        yield harness


def awaiting(app: Harness, drill_id: str, resource_id: str | None = None) -> dict[str, Any]:
    """The drill's custom status once it waits for the validation of ``resource_id`` (None: of any resource)."""

    def waiting() -> dict[str, Any] | None:
        _, body = call(app, "GET", f"drills/{drill_id}")
        custom = body.get("customStatus") or {}
        named = resource_id is None or str(custom.get("resourceId") or "").lower() == resource_id.lower()
        return custom if custom.get("phase") == "validation" and named else None

    found: dict[str, Any] = app.wait_for(waiting, 60, f"drill {drill_id} to wait for a validation")
    return found


def ready_events(app: Harness) -> list[dict[str, Any]]:
    return [e for e in drill_events(app) if e["eventType"] == "BackupSteward.Drill.RestoreReady"]


@pytest.mark.slow
def test_the_hook_gets_restore_ready_and_its_fail_and_pass_decide_the_outcomes_then_cleanup_runs(app: Harness) -> None:
    vm, disk = protected_estate(app)
    status, started = call(app, "POST", "drills", {"resources": [vm, disk]})
    assert status == 202, started
    drill_id = started["id"]
    first = awaiting(app, drill_id)
    first_id = str(first["resourceId"])
    second_id = disk if first_id.lower() == vm.lower() else vm
    [ready] = app.wait_for(lambda: ready_events(app) or None, 30, "RestoreReady to be published")
    assert ready["subject"].lower() == first_id.lower() and ready["data"]["drillId"] == drill_id
    assert ready["data"]["validationUrl"] == f"/api/drills/{drill_id}/validation"
    restored = ready["data"]["restored"]
    assert restored and all(app.sandbox.store.exists(i) for i in restored), "the hook is told of what exists now"
    # the wrong caller and a wrong result are refused; the drill still waits
    status, body = call(app, "POST", f"drills/{drill_id}/validation", {"result": "pass"}, principal=OTHER)
    assert status == 403, body
    status, body = call(app, "POST", f"drills/{drill_id}/validation", {"result": "maybe"})
    assert status == 400 and body["code"] == "InvalidValidationResult", body
    status, body = call(app, "POST", f"drills/{drill_id}/validation", {"result": "fail", "detail": "checksum"})
    assert status == 202 and body["resourceId"].lower() == first_id.lower(), body
    awaiting(app, drill_id, second_id)
    status, body = call(app, "POST", f"drills/{drill_id}/validation", {"result": "pass"})
    assert status == 202, body
    report = finished(app, drill_id)
    by_id = {r["resourceId"].lower(): r for r in report["results"]}
    failed, passed = by_id[first_id.lower()], by_id[second_id.lower()]
    assert failed["outcome"] == "ValidationFailed", json.dumps(failed)
    assert failed["validation"]["passed"], "the drill's own checks passed: the hook failed it"
    assert failed["userValidation"] == {"result": "fail", "detail": "checksum", "by": ADMIN}
    assert passed["outcome"] == "Succeeded" and passed["userValidation"]["result"] == "pass", json.dumps(passed)
    for resource_id, result in by_id.items():
        assert result["left"] == [] and restored_by(app, resource_id) == [], "cleanup ran after the hook"
    assert drill_leftovers(app, drill_id) == []
    # already decided: the drill waits for nothing now
    status, body = call(app, "POST", f"drills/{drill_id}/validation", {"result": "pass"})
    assert status == 409 and body["code"] == "DrillNotAwaitingValidation", body
    kinds = sorted(e["eventType"] for e in drill_events(app))
    assert kinds == ["BackupSteward.Drill.RestoreReady"] * 2 + [
        "BackupSteward.Drill.Succeeded", "BackupSteward.Drill.ValidationFailed"], kinds


@pytest.mark.slow
def test_no_answer_within_the_rules_timeout_is_validation_timed_out_and_cleanup_still_runs(
    app: Harness, tmp_path: Path
) -> None:
    _vm, disk = protected_estate(app)
    status, started = call(app, "POST", "drills", {"resources": [disk]})
    assert status == 202, started
    drill_id = started["id"]
    custom = awaiting(app, drill_id, disk)
    assert custom["restored"] and all(app.sandbox.store.exists(i) for i in custom["restored"])
    app.stack.advance(6 * HOUR)  # past the rule's validationHook timeout (PT5H)
    report = finished(app, drill_id)
    [result] = report["results"]
    assert result["outcome"] == "ValidationTimedOut", json.dumps(result)
    assert result["userValidation"] == {"result": "timedOut"}
    assert result["left"] == [] and restored_by(app, disk) == [] and drill_leftovers(app, drill_id) == []
    assert not any(app.sandbox.store.exists(i) for i in custom["restored"])
    kinds = [e["eventType"] for e in drill_events(app)]
    assert kinds == ["BackupSteward.Drill.RestoreReady", "BackupSteward.Drill.ValidationTimedOut"], kinds
    # the drill report: JSON and HTML through the report store, the disk's measured RTO on the chart
    [page] = (tmp_path / "reports").rglob(f"{drill_id}.html")
    html = page.read_text()
    assert 'data-series="disk"' in html and "ValidationTimedOut" in html
    assert json.loads(page.with_suffix(".json").read_text())["results"][0]["outcome"] == "ValidationTimedOut"


@pytest.mark.slow
def test_the_validation_route_refuses_unknown_drills_bad_ids_and_drills_not_waiting(app: Harness) -> None:
    status, body = call(app, "POST", "drills/drill-nope/validation", {"result": "pass"})
    assert status == 404 and body["code"] == "DrillNotFound", body
    status, body = call(app, "POST", "drills/NOT-A-DRILL/validation", {"result": "pass"})
    assert status == 400 and body["code"] == "InvalidInstanceId", body
    status, body = call(app, "POST", "drills/drill-nope/validation", {"result": "pass", "extra": 1})
    assert status == 400 and "unknown field" in body["detail"], body
    status, started = call(app, "POST", "drills", {"dryRun": True})
    assert status == 202, started
    finished(app, started["id"])
    status, body = call(app, "POST", f"drills/{started['id']}/validation", {"result": "fail"})
    assert status == 409 and body["code"] == "DrillNotAwaitingValidation", body
