"""The app's one seam for time that Azure's answers are measured in: sleeps, a monotonic reading, and a scope
around every HTTP request the SDK clients send.

In Azure (and by default) it is the wall clock: ``time.sleep``, ``time.monotonic`` and nothing around a request.
A sandbox that runs Azure on a discrete-event clock installs its own (``sandbox.clock.AzureTime``): the pacer's
waits, azure-core's retry and LRO poller sleeps (through :class:`ClockedRequestsTransport`) and the teardown
waits then take virtual time, and a request carries the caller's busy token to the server. No Azure behaviour is
modelled here; this module only decides *which* clock the app waits on.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any, Protocol

from azure.core.pipeline.transport import RequestsTransport


class TimeSource(Protocol):
    def sleep(self, seconds: float) -> None: ...

    def monotonic(self) -> float: ...

    def request(self) -> AbstractContextManager[dict[str, str]]:
        """Around one HTTP request: headers to add to it."""
        ...


class WallClock:
    """Real time: what the app uses in Azure."""

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)

    def monotonic(self) -> float:
        return time.monotonic()

    @contextmanager
    def request(self) -> Iterator[dict[str, str]]:
        yield {}


_installed: list[TimeSource] = [WallClock()]


def install(source: TimeSource) -> None:
    """Make ``source`` the process's time (a sandbox on a discrete clock); ``reset`` gives the wall clock back."""
    _installed[0] = source


def reset() -> None:
    install(WallClock())


def current() -> TimeSource:
    return _installed[0]


def sleep(seconds: float) -> None:
    _installed[0].sleep(seconds)


def monotonic() -> float:
    return _installed[0].monotonic()


class ClockedRequestsTransport(RequestsTransport):  # type: ignore[misc]
    """azure-core's requests transport whose sleeps (retry back-off, LRO polling) and requests go through this
    seam. ``RetryPolicy`` and ``LROBasePolling`` both sleep through ``transport.sleep``."""

    def send(self, request: Any, **kwargs: Any) -> Any:
        with _installed[0].request() as headers:
            if headers:
                request.headers.update(headers)
            return super().send(request, **kwargs)

    def sleep(self, duration: float) -> None:
        _installed[0].sleep(duration)
