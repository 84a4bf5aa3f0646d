"""The discrete clock held by a test: a test's own CPU is runnable work, so Azure time stands still for it and moves
only while it waits (modules whose sandbox runs on a ``DiscreteClock``)."""

from __future__ import annotations

from collections.abc import Iterator

from sandbox.arm.server import ArmSandbox


def held_by_the_test(sandbox: ArmSandbox) -> Iterator[None]:
    """Hold ``sandbox``'s clock for the test's duration; afterwards, no wait nobody registered (the watchdog)."""
    with sandbox.clock.busy("test"):
        yield
    assert not sandbox.clock.watchdog_reports, sandbox.clock.watchdog_reports[0]
