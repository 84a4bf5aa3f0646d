"""Helpers shared by the runner tests."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path


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
