"""The discrete clock held by a test: a test's own CPU is runnable work, so Azure time stands still for it and moves
only while it waits (modules whose sandbox runs on a ``DiscreteClock``)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime

from sandbox.arm.config import SandboxConfig
from sandbox.arm.server import ArmSandbox
from sandbox.clock import AzureTime, DiscreteClock
from steward.cloud import azure_time


def on_a_discrete_clock(config: Callable[[DiscreteClock], SandboxConfig], start: datetime | None = None,
                        ready: Callable[[ArmSandbox], None] | None = None) -> Iterator[ArmSandbox]:
    """A running sandbox of ``config(clock)`` on a new ``DiscreteClock`` (from ``start``) installed as the app's
    ``azure_time`` (the SDK's LRO polls wait on it); ``ready`` sets it up once it runs. The clock is closed and
    ``azure_time`` reset afterwards."""
    clock = DiscreteClock(start)
    azure_time.install(AzureTime(clock))
    sb = ArmSandbox(config(clock))
    try:
        with sb:
            if ready is not None:
                ready(sb)
            yield sb
    finally:
        azure_time.reset()
        clock.close()


def held_by_the_test(sandbox: ArmSandbox) -> Iterator[None]:
    """Hold ``sandbox``'s clock for the test's duration; afterwards, no wait nobody registered (the watchdog)."""
    with sandbox.clock.busy("test"):
        yield
    assert not sandbox.clock.watchdog_reports, sandbox.clock.watchdog_reports[0]
