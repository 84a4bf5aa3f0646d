"""The runner's per-step bookkeeping must not read every row in flight (issue 19: a 1,000-VM burst never ended).

A discrete clock calls ``clock_probe`` on every step of virtual time, the timer loop calls ``_fire_due_timers``
and ``_submit_pending`` on every pass, and the dispatcher calls ``_submit_pending`` after every orchestrator
step. Each used to load (and the timer paths parse) every activity and timer row, so with N orchestrations in
flight every one of the O(N) steps cost O(N). These tests count the rows the store hands back to Python (not
time): the count must not grow with the number of rows in the tables.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from sandbox.clock import VirtualClock
from sandbox.durable import DurableRunner, RunnerConfig
from sandbox.durable import history as h
from sandbox.durable.store import ActivityWork

from .conftest import SAMPLE_APP

START = datetime(2026, 1, 1, tzinfo=UTC)


class RowCounter:
    """Wraps ``DurableStore._query`` to count the rows each query returns to Python."""

    def __init__(self, runner: DurableRunner, monkeypatch: pytest.MonkeyPatch) -> None:
        self.rows = 0
        original = runner.store._query

        def counted(sql: str, args: tuple[Any, ...] = ()) -> Any:
            result = original(sql, args)
            self.rows += len(result)
            return result

        monkeypatch.setattr(runner.store, "_query", counted)


@pytest.fixture
def idle_runner(tmp_path: Path) -> Iterator[DurableRunner]:
    """A runner whose loops are not started: the tests call its bookkeeping directly."""
    runner = DurableRunner(SAMPLE_APP, RunnerConfig(db_path=str(tmp_path / "durable.sqlite")),
                           clock=VirtualClock(start=START))
    try:
        yield runner
    finally:
        runner.stop()


def fill(runner: DurableRunner, n: int, *, first_timer_in: timedelta = timedelta(hours=1)) -> datetime:
    """``n`` activity rows and ``n`` timers firing from ``first_timer_in`` on (inserted latest first)."""
    fire_times = [START + first_timer_in + timedelta(seconds=i) for i in range(n)]
    with runner.store.transaction() as conn:
        conn.executemany("INSERT INTO activities (instance_id, execution_id, task_id, name, input) "
                         "VALUES (?,?,?,?,?)", [(f"i{i}", "e", 0, "noop", None) for i in range(n)])
        conn.executemany("INSERT INTO timers VALUES (?,?,?,?)",
                         [(f"i{i}", "e", 1, h.timestamp(fire_times[i])) for i in reversed(range(n))])
    return min(fire_times)


@pytest.mark.parametrize("n", [10, 1000])
def test_clock_probe_reads_a_bounded_number_of_rows(idle_runner: DurableRunner, n: int,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    earliest = fill(idle_runner, n)
    idle_runner._running = set(range(10_000))  # every slot busy: the probe must go on to the timers
    counter = RowCounter(idle_runner, monkeypatch)
    runnable, due = idle_runner.clock_probe()
    assert (runnable, due) == (False, earliest)
    assert counter.rows <= 3, f"probe read {counter.rows} rows with {n} activities and {n} timers"


@pytest.mark.parametrize("n", [10, 1000])
def test_timer_pass_reads_only_the_due_timers(idle_runner: DurableRunner, n: int,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    fill(idle_runner, n)
    due_at = START - timedelta(seconds=5)
    with idle_runner.store.transaction() as conn:
        conn.execute("INSERT INTO timers VALUES (?,?,?,?)", ("due", "e", 7, h.timestamp(due_at)))
    counter = RowCounter(idle_runner, monkeypatch)
    earliest = idle_runner._fire_due_timers()
    assert earliest == START + timedelta(hours=1)
    assert counter.rows <= 3, f"timer pass read {counter.rows} rows with {n} timers pending"
    inbox = idle_runner.store.inbox("due")
    assert [(execution, event["EventType"], event["TimerId"]) for _, execution, event in inbox] == \
        [("e", int(h.T.TIMER_FIRED), 7)]
    assert len(idle_runner.store.timers()) == n


@pytest.mark.parametrize("n", [10, 1000])
def test_submit_pending_reads_only_new_activity_rows(idle_runner: DurableRunner, n: int,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    submitted: list[ActivityWork] = []
    monkeypatch.setattr(idle_runner, "_submit", submitted.append)
    fill(idle_runner, n)
    idle_runner._submit_pending()
    assert len(submitted) == n
    with idle_runner.store.transaction() as conn:
        conn.execute("INSERT INTO activities (instance_id, execution_id, task_id, name, input) "
                     "VALUES ('new', 'e', 3, 'noop', NULL)")
    counter = RowCounter(idle_runner, monkeypatch)
    idle_runner._submit_pending()
    assert [w.instance_id for w in submitted[n:]] == ["new"]
    assert counter.rows == 1, f"second pass read {counter.rows} rows with {n} activities already submitted"
