"""The local Durable runner schedules only what the Durable extension would: the actions one at a time, each
after the previous one completed (azure-functions-durable-extension ``OutOfProcOrchestrationShim``
``ProcessAsyncActionsV2``; ``sandbox/durable/runner.py`` ``_walk``), a ``task_any`` carrying only the children
not scheduled before (azure-functions-durable 1.7.0 ``CompoundTask``)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import azure.durable_functions as df
import azure.functions as func
import pytest

from sandbox.clock import VirtualClock
from sandbox.durable import DurableRunner, RunnerConfig
from sandbox.durable.discovery import load_catalog

parts = df.Blueprint()
RAN: list[Any] = []
RELEASE = threading.Event()


@parts.activity_trigger(input_name="value")
def note(value: Any) -> Any:
    RAN.append(value)
    return value


@parts.activity_trigger(input_name="value")
def held(value: Any) -> Any:
    RELEASE.wait(timeout=30)
    return value


@parts.activity_trigger(input_name="value")
def broken(value: Any) -> Any:
    raise RuntimeError(f"broken {value}")


@parts.orchestration_trigger(context_name="context")
def raced_twice(context: df.DurableOrchestrationContext) -> Any:
    """The Cancel waiter loses a first race, then is raced again with a new one-day timer."""
    cancel = context.wait_for_external_event("Cancel")
    yield context.task_any([context.call_activity("note", "first"), cancel])
    timer = context.create_timer(context.current_utc_datetime + timedelta(days=1))
    winner = yield context.task_any([timer, cancel])
    if winner is cancel and context.get_input() == "cancel-timer":
        timer.cancel()
    yield context.call_activity("note", "after")
    return "cancelled" if winner is cancel else "timer"


@parts.orchestration_trigger(context_name="context")
def fails_fast(context: df.DurableOrchestrationContext) -> Any:
    yield context.task_all([context.call_activity("broken", 1), context.call_activity("held", 2)])
    return "unreachable"


@pytest.fixture
def runner(tmp_path: Path) -> Iterator[DurableRunner]:
    app = df.DFApp(http_auth_level=func.AuthLevel.FUNCTION)
    app.register_functions(parts)
    RAN.clear()
    RELEASE.clear()
    with DurableRunner(load_catalog(app), RunnerConfig(db_path=str(tmp_path / "d.sqlite")),
                       clock=VirtualClock()) as started:
        yield started
    RELEASE.set()


def _settle(runner: DurableRunner, instance_id: str, seconds: float = 0.5) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        time.sleep(0.02)
    assert not runner.store.inbox(instance_id)


def test_a_waiter_raced_again_is_not_in_the_extensions_second_race(runner: DurableRunner) -> None:
    instance = runner.start_new("raced_twice", "raced-1", "keep-timer")
    runner.wait_until(lambda: RAN == ["first"])
    runner.raise_event(instance, "Cancel", {})
    _settle(runner, instance)
    # the SDK saw the Cancel win, but the extension waits for WhenAny([timer]) alone: nothing after it runs
    assert runner.status(instance)["runtimeStatus"] == "Running"
    assert RAN == ["first"]
    runner.clock.advance(timedelta(days=1).total_seconds() + 1)
    status = runner.wait_for(instance)
    assert status["runtimeStatus"] == "Completed" and status["output"] == "cancelled"
    assert RAN == ["first", "after"]


def test_a_cancelled_timer_lets_the_extension_go_on(runner: DurableRunner) -> None:
    instance = runner.start_new("raced_twice", "raced-2", "cancel-timer")
    runner.wait_until(lambda: RAN == ["first"])
    runner.raise_event(instance, "Cancel", {})
    # the timer's action is serialised with isCanceled: the shim cancels it, its await ends, the walk goes on
    status = runner.wait_for(instance)
    assert status["output"] == "cancelled" and RAN == ["first", "after"]


def test_an_orchestrator_failed_by_one_call_of_a_fan_out_ends_once_every_call_has(runner: DurableRunner) -> None:
    instance = runner.start_new("fails_fast", "fails-1")
    _settle(runner, instance)
    # the SDK's task_all failed at the first failure; the extension's Task.WhenAll waits for the held call
    assert runner.status(instance)["runtimeStatus"] == "Running"
    RELEASE.set()
    status = runner.wait_for(instance)
    assert status["runtimeStatus"] == "Failed" and "broken 1" in str(status["output"])
