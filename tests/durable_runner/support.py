"""Helpers shared by the runner tests."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any


def executions(log: Path, name: str) -> list[str]:
    """The recorded inputs of every execution of activity ``name``."""
    if not log.exists():
        return []
    return [line.split(":", 1)[1] for line in log.read_text().splitlines() if line.startswith(f"{name}:")]


def eventually(check: Callable[[], bool], timeout: float = 5.0) -> None:
    """Wait (real time) until ``check()`` holds; fail the test with the timeout otherwise."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(0.01)


def run_to_end(runner: Any, instance_id: str, timeout: float = 60.0) -> dict[str, Any]:
    """Drive a runner on a still clock: whenever the instance has nothing to do but wait for a durable timer,
    jump Azure time to that timer. Returns the final status; fails after ``timeout`` real seconds."""
    from sandbox.durable.history import parse_timestamp

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        record = runner.store.instance(instance_id)
        if record is not None and record.is_terminal:
            return dict(runner.status(instance_id))
        timers = runner.store.timers()
        if timers and not runner.store.in_flight(instance_id) and not runner.store.inbox(instance_id):
            gap = (parse_timestamp(timers[0].fire_at) - runner.clock.now()).total_seconds()
            if gap > 0:
                runner.clock.advance(gap + 0.001)
        time.sleep(0.002)
    raise AssertionError(f"{instance_id} did not finish within {timeout}s")
