"""``orchestrators.retrying`` on the local Durable runner: waits on durable timers that grow and are capped,
results in order, one failing call retried while the others run on, and a bounded end."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import datetime, timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any

import azure.durable_functions as df
import azure.functions as func
import pytest

from orchestrators.retrying import Backoff, call_all_with_backoff, call_with_backoff
from orchestrators.retrying import bp as retrying_bp
from sandbox.clock import DiscreteClock, VirtualClock
from sandbox.durable import DurableRunner, RunnerConfig
from sandbox.durable.discovery import load_catalog
from tests.durable_runner.support import run_to_end

POLICY = Backoff(first=timedelta(seconds=5), coefficient=2.0, cap=timedelta(seconds=60),
                 window=timedelta(minutes=5), max_attempts=10)


class Calls:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.clock: VirtualClock | DiscreteClock | None = None
        self.fail_first: dict[str, int] = {}
        self.slow_first: dict[str, float] = {}  # seconds of Azure time the first attempt of a key takes
        self.at: dict[str, list[datetime]] = {}


CALLS = Calls()
app_parts = df.Blueprint()


@app_parts.activity_trigger(input_name="key")
def sometimes(key: str) -> str:
    assert CALLS.clock is not None
    with CALLS.lock:
        seen = CALLS.at.setdefault(key, [])
        seen.append(CALLS.clock.now())
        first = len(seen) == 1
    if first and key in CALLS.slow_first:
        CALLS.clock.sleep(CALLS.slow_first[key])
    with CALLS.lock:
        if len(seen) <= CALLS.fail_first.get(key, 0):
            raise RuntimeError(f"transient failure {len(seen)} of {key}")
    return f"{key}:{len(seen)}"


@app_parts.orchestration_trigger(context_name="context")
def one(context: df.DurableOrchestrationContext) -> Any:
    try:
        return {"ok": (yield from call_with_backoff(context, "sometimes", POLICY, context.get_input()))}
    except Exception as error:  # noqa: BLE001 - the SDK raises a bare Exception for a failed task
        return {"failed": str(error)[:200]}


@app_parts.orchestration_trigger(context_name="context")
def many(context: df.DurableOrchestrationContext) -> Any:
    return (yield from call_all_with_backoff(context, "sometimes", POLICY, context.get_input()))


@pytest.fixture
def runner(tmp_path: Path) -> Iterator[DurableRunner]:
    app = df.DFApp(http_auth_level=func.AuthLevel.FUNCTION)
    app.register_functions(app_parts)
    app.register_functions(retrying_bp)
    clock = VirtualClock()
    CALLS.__init__()  # type: ignore[misc]
    CALLS.clock = clock
    with DurableRunner(load_catalog(app), RunnerConfig(db_path=str(tmp_path / "d.sqlite")), clock=clock) as started:
        yield started


def _gaps(key: str) -> list[float]:
    seen = CALLS.at[key]
    return [round((b - a).total_seconds()) for a, b in pairwise(seen)]


def test_the_schedule_doubles_is_capped_and_fits_the_window() -> None:
    assert [w.total_seconds() for w in POLICY.schedule()] == [5, 10, 20, 40, 60, 60, 60]
    assert sum(w.total_seconds() for w in POLICY.schedule()) <= POLICY.window.total_seconds()
    with pytest.raises(ValueError):
        Backoff(first=timedelta(0))


def test_a_failing_call_waits_on_growing_durable_timers_then_succeeds(runner: DurableRunner) -> None:
    CALLS.fail_first["a"] = 5
    status = run_to_end(runner, runner.start_new("one", "one-a", "a"))
    assert status["output"] == {"ok": "a:6"}
    assert _gaps("a") == [5, 10, 20, 40, 60]
    history = runner.history("one-a")
    assert sum(1 for e in history if "FireAt" in e and "TimerId" not in e) == 5  # TimerCreated, one per wait


def test_a_call_that_keeps_failing_gives_up_at_the_window_with_its_failure(runner: DurableRunner) -> None:
    CALLS.fail_first["b"] = 99
    status = run_to_end(runner, runner.start_new("one", "one-b", "b"))
    assert "transient failure 8 of b" in status["output"]["failed"]
    assert len(CALLS.at["b"]) == 8  # the first try and the 7 waits of the schedule: the history stays bounded


def test_calls_run_at_once_and_only_the_failed_one_is_retried(runner: DurableRunner) -> None:
    CALLS.fail_first.update({"y": 2})
    status = run_to_end(runner, runner.start_new("many", "many-1", ["x", "y", "z"]))
    assert status["output"] == ["x:1", "y:3", "z:1"]  # in the payloads' order
    assert _gaps("y") == [5, 10]
    starts = [CALLS.at[k][0] for k in "xyz"]
    assert max(starts) - min(starts) < timedelta(seconds=1)  # all three started at once, none waited for another


def test_a_call_of_many_that_keeps_failing_fails_the_whole(runner: DurableRunner) -> None:
    CALLS.fail_first.update({"q": 99})
    status = run_to_end(runner, runner.start_new("many", "many-2", ["p", "q"]))
    assert status["runtimeStatus"] == "Failed"
    assert "transient failure 8 of q" in status["output"]


def test_a_retry_of_one_call_does_not_wait_for_the_retry_timers_of_another(tmp_path: Path) -> None:
    """x fails three times (retries after 5, 10 and 20 s); y's first attempt takes 16 s and fails, so its retry
    is due 5 s later, at 21 s. The extension schedules an orchestrator's actions one at a time, each after the
    previous one completed (``sandbox/durable/runner.py`` ``_walk``): y's timer, raced in a ``task_any`` after x's
    20 s timer, would only be scheduled once that timer fired (at 35 s). Each call retries on its own."""
    app = df.DFApp(http_auth_level=func.AuthLevel.FUNCTION)
    app.register_functions(app_parts)
    app.register_functions(retrying_bp)
    # The discrete-event clock (as the benchmarks run on): Azure time stands still while an activity or a replay
    # is runnable and jumps to the next timer or sleep when nothing is, so the figures are exact whatever the
    # machine's load (on a scaled clock the runner's own CPU counted as Azure seconds and moved the gaps).
    clock = DiscreteClock()
    CALLS.__init__()  # type: ignore[misc]
    CALLS.clock = clock
    CALLS.fail_first.update({"x": 3, "y": 1})
    CALLS.slow_first["y"] = 16.0  # a clock wait inside the activity: it releases the activity's busy token
    config = RunnerConfig(db_path=str(tmp_path / "d.sqlite"))
    try:
        with DurableRunner(load_catalog(app), config, clock=clock) as runner:
            status = runner.wait_for(runner.start_new("many", "many-3", ["x", "y"]), timeout=60)
    finally:
        clock.close()
    assert status["output"] == ["x:4", "y:2"], status
    assert not clock.watchdog_reports, clock.watchdog_reports[0]
    [x_gaps, y_gaps] = [[(b - a).total_seconds() for a, b in pairwise(CALLS.at[k])] for k in "xy"]
    assert x_gaps == [5, 10, 20]
    assert y_gaps == [21], y_gaps  # 35 s when y's retry queued behind x's last timer
