"""The sandbox's clock: one notion of "Azure time" shared by the ARM emulator and the Durable runner.

Real Azure waits are long (LROs of minutes, soft-delete retention of 14 days). The sandbox runs them on a
virtual clock: virtual time advances ``scale`` times faster than real time, and tests can jump it forward
with ``advance``. Everything that waits for Azure time (LRO completion, soft-delete purge, durable timers)
asks this clock, never ``time.time()``.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    """What the sandbox and the local runner need of a clock."""

    def now(self) -> datetime: ...

    def sleep(self, seconds: float) -> None: ...

    def wait_until(self, when: datetime, timeout: float | None = None) -> bool: ...


class VirtualClock:
    """Virtual UTC time running ``scale`` x real time, plus explicit jumps.

    ``wait_until`` wakes early when ``advance`` jumps past the deadline, so a test that advances 14 days
    releases every waiter at once.
    """

    def __init__(self, start: datetime | None = None, scale: float = 1.0) -> None:
        if scale <= 0:
            raise ValueError("scale must be positive")
        self._start = (start or datetime.now(UTC)).astimezone(UTC)
        self._mono0 = time.monotonic()
        self._scale = float(scale)
        self._offset = 0.0
        self._cond = threading.Condition()

    @property
    def scale(self) -> float:
        return self._scale

    def now(self) -> datetime:
        with self._cond:
            elapsed = (time.monotonic() - self._mono0) * self._scale + self._offset
        return self._start + timedelta(seconds=elapsed)

    def advance(self, seconds: float) -> datetime:
        """Jump forward by ``seconds`` of virtual time and wake every waiter."""
        if seconds < 0:
            raise ValueError("the clock never runs backwards")
        with self._cond:
            self._offset += seconds
            self._cond.notify_all()
        return self.now()

    def set_scale(self, scale: float) -> None:
        if scale <= 0:
            raise ValueError("scale must be positive")
        with self._cond:
            now_mono = time.monotonic()
            self._offset += (now_mono - self._mono0) * self._scale
            self._mono0 = now_mono
            self._scale = float(scale)
            self._cond.notify_all()

    def sleep(self, seconds: float) -> None:
        self.wait_until(self.now() + timedelta(seconds=max(0.0, seconds)))

    def wait_until(self, when: datetime, timeout: float | None = None) -> bool:
        """Block until virtual time reaches ``when``; False if ``timeout`` real seconds pass first."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while True:
                remaining_virtual = (when - self.now()).total_seconds()
                if remaining_virtual <= 0:
                    return True
                wait = remaining_virtual / self._scale
                if deadline is not None:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        return False
                    wait = min(wait, left)
                self._cond.wait(timeout=min(wait, 1.0))
