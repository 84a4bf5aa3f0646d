"""Drill budgets through the real app (``function_app.py`` on the local host, the Durable runner, the ARM sandbox):
a run never takes more resources than a rule's ``maxConcurrent`` nor more restored GB than its ``maxRestoredGb``;
what waits is reported with the budget that held it back, and the next run takes it (never-drilled first) while
what was drilled is not due again within the rule's ``every``. Nothing the drills made remains (the sandbox's store
is the judge)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.conftest import Harness, drill_harness
from tests.e2e.test_drills import ADMIN, HOUR, WEU, call, drill_leftovers, finished, restored_by

#: two rules over the same kind (64 GB Premium disks, sandbox/estate.py): one held by size, one by count
BUDGETED = """
drills:
  - name: by-size
    match: {types: [Microsoft.Compute/disks], tags: {drill: size}}
    every: P7D
    lifetime: PT6H
    budgets: {maxConcurrent: 5, maxRestoredGb: 150}
  - name: by-count
    match: {types: [Microsoft.Compute/disks], tags: {drill: count}}
    every: P7D
    lifetime: PT6H
    budgets: {maxConcurrent: 1}
"""


@pytest.fixture
def app(tmp_path: Path) -> Iterator[Harness]:
    with drill_harness(tmp_path, BUDGETED, operator=ADMIN) as harness:
        yield harness


@pytest.mark.slow
def test_budgets_hold_each_run_and_the_next_run_takes_what_waited(app: Harness) -> None:
    est = app.estate()
    est.resource_group("rg-app", WEU)
    est.backup_vault("rg-app", "bv-weu", WEU)
    by_size = [est.disk("rg-app", f"size-{i}", WEU, tags={"drill": "size"}) for i in range(3)]
    by_count = [est.disk("rg-app", f"count-{i}", WEU, tags={"drill": "count"}) for i in range(2)]
    disks = by_size + by_count
    for rid in disks:
        app.wait_outcome(rid, "Protected", timeout=60)
    app.settle(60)
    app.stack.advance(24 * HOUR)

    status, started = call(app, "POST", "drills", {})  # everything due, as the timer starts it
    assert status == 202, started
    first = finished(app, started["id"])
    chosen = {c.lower() for c in first["chosen"]}
    waiting = {w["resourceId"].lower(): w["reason"] for w in first["waiting"]}
    # by-size: 64 + 64 GB fit in 150, a third would not (restoreBudget); by-count: one at a time (concurrency)
    assert len(chosen & {d.lower() for d in by_size}) == 2, first
    assert len(chosen & {d.lower() for d in by_count}) == 1, first
    assert sorted(waiting.values()) == ["concurrency", "restoreBudget"], first["waiting"]
    assert chosen | set(waiting) == {d.lower() for d in disks}, "every candidate is chosen or says why it waits"
    assert {r["resourceId"].lower() for r in first["results"]} == chosen
    assert all(r["outcome"] == "Succeeded" and r["left"] == [] for r in first["results"]), json.dumps(first)
    assert drill_leftovers(app, started["id"]) == []

    status, again = call(app, "POST", "drills", {})
    assert status == 202, again
    second = finished(app, again["id"])
    # the two that waited are drilled now; the three drilled an Azure hour ago are not due (every: P7D)
    assert {c.lower() for c in second["chosen"]} == set(waiting), second
    assert {w["resourceId"].lower(): w["reason"] for w in second["waiting"]} == dict.fromkeys(chosen, "notDue")
    assert all(r["outcome"] == "Succeeded" and r["left"] == [] for r in second["results"]), json.dumps(second)
    assert drill_leftovers(app, again["id"]) == []
    assert all(restored_by(app, d) == [] for d in disks), "a restored disk outlived its drill"
