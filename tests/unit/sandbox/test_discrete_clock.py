"""The discrete-event clock: virtual time stands still while work is runnable and jumps to the next deadline
when none is, so the app's CPU costs no Azure time; waits nobody registered are reported."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from sandbox.clock import TOKEN_HEADER, AzureTime, DiscreteClock
from steward.cloud import azure_time

START = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture
def clock() -> DiscreteClock:
    c = DiscreteClock(START, watchdog_seconds=0.2)
    yield c
    c.close()


def _spin(seconds: float) -> None:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


def test_busy_work_costs_no_virtual_time_and_a_wait_jumps_to_its_deadline(clock: DiscreteClock) -> None:
    with clock.busy("activity"):
        _spin(0.2)
        assert clock.now() == START  # CPU spent under a token is not Azure time
        clock.sleep(30)  # releases the token: nothing else runs, so time jumps
        assert clock.now() == START + timedelta(seconds=30)
        _spin(0.1)
        assert clock.now() == START + timedelta(seconds=30)


def test_time_waits_for_every_busy_token_then_takes_the_earliest_deadline(clock: DiscreteClock) -> None:
    woke: dict[str, datetime] = {}

    def sleeper(name: str, seconds: float) -> None:
        with clock.busy(name):
            clock.sleep(seconds)
            woke[name] = clock.now()

    with clock.busy("cpu") as token:
        threads = [threading.Thread(target=sleeper, args=(n, s)) for n, s in (("a", 10), ("b", 25))]
        for t in threads:
            t.start()
        time.sleep(0.1)
        assert clock.now() == START and not woke  # the held token keeps time still
    for t in threads:
        t.join(5)
    assert woke == {"a": START + timedelta(seconds=10), "b": START + timedelta(seconds=25)}
    assert not token.held


def test_a_probe_with_runnable_work_holds_time_and_its_deadline_is_a_jump_target(clock: DiscreteClock) -> None:
    state = {"runnable": True, "due": START + timedelta(seconds=7)}
    clock.add_probe(lambda: (bool(state["runnable"]), state["due"]))  # type: ignore[arg-type]
    waiter = threading.Thread(target=clock.sleep, args=(100,))
    waiter.start()
    time.sleep(0.1)
    assert clock.now() == START
    state["runnable"] = False
    deadline = time.monotonic() + 5
    while clock.now() == START and time.monotonic() < deadline:
        time.sleep(0.01)
    assert clock.now() == START + timedelta(seconds=7)  # the probe's due time comes before the sleeper's
    state["due"] = None
    waiter.join(5)
    assert clock.now() == START + timedelta(seconds=100)


def test_a_request_carries_the_senders_token_to_the_server(clock: DiscreteClock) -> None:
    """The sender's token is suspended while its request is served; the server's modelled latency (a clock
    wait) releases the carried token, so time moves, and the sender gets its own token back."""
    seen: dict[str, object] = {}

    def server(token_id: str) -> None:
        with clock.serving(token_id, "request"):
            seen["adopted"] = clock.current() is clock.token(token_id)
            clock.sleep(0.5)

    with clock.busy("activity") as mine:
        with clock.handoff("http") as carried:
            assert carried is not None and not mine.held and carried.held
            t = threading.Thread(target=server, args=(carried.id,))
            t.start()
            t.join(5)
        assert mine.held
    assert seen["adopted"] is True
    assert clock.now() == START + timedelta(seconds=0.5)


def test_the_azure_time_seam_sleeps_on_the_installed_clock(clock: DiscreteClock) -> None:
    azure_time.install(AzureTime(clock))
    try:
        with clock.busy("activity"):
            azure_time.sleep(60)
            assert azure_time.monotonic() == 60.0
            with azure_time.current().request() as headers:
                assert TOKEN_HEADER in headers
        transport = azure_time.ClockedRequestsTransport()
        transport.sleep(15)  # what azure-core's retry policy and LRO poller call
        assert clock.now() == START + timedelta(seconds=75)
    finally:
        azure_time.reset()
    assert isinstance(azure_time.current(), azure_time.WallClock)


def test_the_watchdog_reports_busy_work_waiting_for_something_that_is_not_the_clock(clock: DiscreteClock) -> None:
    with clock.busy("stuck activity"):
        time.sleep(1.0)  # a real sleep: nobody registered this wait, virtual time is frozen
    assert clock.now() == START
    assert clock.watchdog_reports, "the stall was not reported"
    assert "stuck activity" in clock.watchdog_reports[0]


def test_a_wait_shorter_than_the_clocks_resolution_still_moves_time(clock: DiscreteClock) -> None:
    """A pacer that loops "until my turn" with a wait below a microsecond must not spin with its token held."""
    with clock.busy("pacer"):
        clock.sleep(1e-9)
    assert clock.now() == START + timedelta(microseconds=1)


def test_a_thread_pool_an_activity_waits_for_works_under_the_activitys_token(clock: DiscreteClock) -> None:
    """``read_estate`` runs its reads on a pool inside the activity and blocks on the results: the workers' clock
    waits must release the activity's token (the watchdog found the freeze in the remediation benchmark)."""
    from concurrent.futures import ThreadPoolExecutor

    from sandbox.clock import let_pollers_inherit, stop_pollers_inheriting

    def submitted_slowly(waits: list[float]) -> Iterator[float]:
        """The submitter descheduled between two submissions (as it is, at random, on a loaded machine): the
        first item's wait must not end before the second item is submitted."""
        for i, seconds in enumerate(waits):
            if i:
                time.sleep(0.05)  # real time, 25 x the clock's grace: long enough for a jump
            yield seconds

    let_pollers_inherit(clock)
    try:
        with clock.busy("activity"), ThreadPoolExecutor(2) as pool:
            assert list(pool.map(lambda s: clock.sleep(s) or s, submitted_slowly([5, 8]))) == [5, 8]
    finally:
        stop_pollers_inheriting(clock)
    assert clock.now() == START + timedelta(seconds=8)
    assert not clock.watchdog_reports
