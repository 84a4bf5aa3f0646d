"""The sandbox's clock: one notion of "Azure time" shared by the ARM emulator and the Durable runner.

Real Azure waits are long (LROs of minutes, soft-delete retention of 14 days). The sandbox runs them on a
virtual clock: virtual time advances ``scale`` times faster than real time, and tests can jump it forward
with ``advance``. Everything that waits for Azure time (LRO completion, soft-delete purge, durable timers)
asks this clock, never ``time.time()``.
"""

from __future__ import annotations

import itertools
import logging
import math
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

log = logging.getLogger(__name__)


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


# ---- the discrete-event clock -----------------------------------------------------------------------------

#: the header a request carries when its sender's busy token travels with it (see ``DiscreteClock.handoff``)
TOKEN_HEADER = "x-sandbox-clock-token"  # noqa: S105 - a header name, not a secret

#: what a probe answers: (work is runnable now, the next virtual time it has something due)
Probe = Callable[[], tuple[bool, datetime | None]]


@dataclass(eq=False)
class BusyToken:
    """One unit of runnable work. While any token is held, virtual time stands still."""

    id: str
    label: str
    held: bool = False
    owner: str = ""  # the thread that last took it (for the watchdog)
    since: float = 0.0  # real monotonic time it was last taken


class DiscreteClock:
    """Discrete-event virtual time: it never moves while work is runnable, and jumps to the next deadline when
    none is.

    Work is runnable while a *busy token* is held (an in-flight HTTP request, an activity execution, a runner
    work item, a delivery) or while a *probe* says so (a queue with something due: Event Grid deliveries,
    LROs whose time has come, durable inbox messages and timers). A thread that waits on this clock
    (``sleep``/``wait_until``) releases the token it holds for the wait and takes it again afterwards; its
    deadline is registered, and so are the probes' next due times. When no token is held and no probe has
    runnable work, and that holds for ``grace`` real seconds with nothing changing, time jumps to the earliest
    registered deadline. The app's own CPU therefore costs no Azure time at all: every Azure-time figure comes
    from modelled latencies, LRO durations, Retry-After waits, throttle refills and timers.

    ``scale`` is 1.0 for code that converts Azure seconds into real waits (it polls at most every 50 ms anyway)
    and for the sandbox's ``Retry-After`` (``auto`` mode sends Azure's whole seconds, which clients then sleep on
    this clock).

    The watchdog reports a token held for ``watchdog_seconds`` real seconds with nothing changing: someone holds
    runnable work while waiting for something that is not this clock (a real ``time.sleep``, a wait nobody
    registered), which would freeze virtual time. Reports are logged and kept in ``watchdog_reports``.
    """

    def __init__(self, start: datetime | None = None, *, grace: float = 0.002, watchdog_seconds: float = 10.0) -> None:
        self._start = (start or datetime.now(UTC)).astimezone(UTC)
        self._now = self._start
        self._cond = threading.Condition()
        self._busy = 0
        self._generation = 0
        self._deadlines: dict[int, datetime] = {}
        self._next_wait = 0
        self._tokens: dict[str, BusyToken] = {}
        self._token_ids = itertools.count(1)
        self._probes: list[Probe] = []
        self._local = threading.local()
        self._grace = grace
        self._watchdog_seconds = watchdog_seconds
        self.watchdog_reports: list[str] = []
        self._runnable_since: float | None = None
        self.jumps = 0
        self._stopped = False
        self._thread = threading.Thread(target=self._advance_loop, name="discrete-clock", daemon=True)
        self._thread.start()

    # -- the Clock protocol --------------------------------------------------------------------------------
    @property
    def scale(self) -> float:
        return 1.0

    def now(self) -> datetime:
        with self._cond:
            return self._now

    def elapsed(self) -> float:
        """Virtual seconds since the clock started (a monotonic reading for pacers)."""
        with self._cond:
            return (self._now - self._start).total_seconds()

    def advance(self, seconds: float) -> datetime:
        if seconds < 0:
            raise ValueError("the clock never runs backwards")
        with self._cond:
            self._now += timedelta(seconds=seconds)
            self._changed()
            return self._now

    def set_scale(self, scale: float) -> None:
        """No effect: a discrete clock has no rate (kept so the sandbox's admin route answers)."""
        if scale <= 0:
            raise ValueError("scale must be positive")

    def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` of virtual time, rounded *up* to the clock's microsecond: a positive wait shorter than
        that must still let time move (else a caller that loops until its wait is over would spin forever with
        its token held)."""
        if seconds <= 0:
            return
        self.wait_until(self.now() + timedelta(microseconds=math.ceil(seconds * 1e6)))

    def wait_until(self, when: datetime, timeout: float | None = None) -> bool:
        """Block until virtual time reaches ``when`` (releasing the caller's busy token meanwhile); False if
        ``timeout`` real seconds pass first."""
        deadline = None if timeout is None else time.monotonic() + timeout
        token = self.current()
        with self._cond:
            if self._now >= when:
                return True
            key = self._next_wait
            self._next_wait += 1
            self._deadlines[key] = when
            if token is not None and token.held:
                self._release_locked(token)
            else:
                token = None
            self._changed()
            try:
                while self._now < when:
                    wait = 0.25
                    if deadline is not None:
                        left = deadline - time.monotonic()
                        if left <= 0:
                            return False
                        wait = min(wait, left)
                    self._cond.wait(wait)
                return True
            finally:
                del self._deadlines[key]
                if token is not None:
                    self._take_locked(token)
                self._changed()

    # -- busy tokens ---------------------------------------------------------------------------------------
    def current(self) -> BusyToken | None:
        """The token the calling thread works under (its own, or the one of the thread it polls for)."""
        stack: list[BusyToken] = getattr(self._local, "stack", [])
        if stack:
            return stack[-1]
        inherited = getattr(threading.current_thread(), "_sandbox_clock_token", None)
        return inherited if isinstance(inherited, BusyToken) else None

    def hold(self, label: str) -> BusyToken:
        """A new token, held (not the calling thread's current one: pass it on, then ``release`` it)."""
        token = BusyToken(f"t{next(self._token_ids)}", label)
        with self._cond:
            self._tokens[token.id] = token
            self._take_locked(token)
            self._changed()
        return token

    def release(self, token: BusyToken) -> None:
        with self._cond:
            if token.held:
                self._release_locked(token)
            self._tokens.pop(token.id, None)
            self._changed()

    def suspend(self, token: BusyToken) -> bool:
        """Stop counting ``token`` without forgetting it (its work waits for another token's); True if it was
        held."""
        with self._cond:
            was = token.held
            if was:
                self._release_locked(token)
                self._changed()
            return was

    def resume(self, token: BusyToken) -> None:
        with self._cond:
            if not token.held:
                self._take_locked(token)
                self._changed()

    @contextmanager
    def busy(self, label: str) -> Iterator[BusyToken]:
        """Hold a new token for the block; it is the thread's current one (clock waits release it)."""
        token = self.hold(label)
        with self.adopt(token):
            try:
                yield token
            finally:
                self.release(token)

    @contextmanager
    def adopt(self, token: BusyToken) -> Iterator[BusyToken]:
        """Make ``token`` the calling thread's current one for the block (its holder handed it over)."""
        stack: list[BusyToken] = self._local.__dict__.setdefault("stack", [])
        stack.append(token)
        with self._cond:
            token.owner = threading.current_thread().name
        try:
            yield token
        finally:
            stack.pop()

    def token(self, token_id: str | None) -> BusyToken | None:
        """The held token a request's ``TOKEN_HEADER`` names (None if unknown)."""
        if not token_id:
            return None
        with self._cond:
            return self._tokens.get(token_id)

    @contextmanager
    def handoff(self, label: str) -> Iterator[BusyToken | None]:
        """For a request the calling thread sends and then waits for: a token that travels with the request
        (``TOKEN_HEADER``) while the caller's own is suspended, so the server's clock waits release it. None
        (nothing to carry) when the caller holds no token."""
        mine = self.current()
        if mine is None or not mine.held:
            yield None
            return
        carried = self.hold(label)
        self.suspend(mine)
        try:
            yield carried
        finally:
            self.resume(mine)
            self.release(carried)

    @contextmanager
    def serving(self, token_id: str | None, label: str) -> Iterator[BusyToken]:
        """Around a server's handling of a request: the token the request carried, else one of its own."""
        carried = self.token(token_id)
        if carried is not None:
            with self.adopt(carried):
                yield carried
        else:
            with self.busy(label) as own:
                yield own

    def add_probe(self, probe: Probe) -> None:
        with self._cond:
            self._probes.append(probe)
            self._changed()

    def remove_probe(self, probe: Probe) -> None:
        with self._cond:
            if probe in self._probes:
                self._probes.remove(probe)
            self._changed()

    def held(self) -> list[BusyToken]:
        with self._cond:
            return [t for t in self._tokens.values() if t.held]

    def close(self) -> None:
        with self._cond:
            self._stopped = True
            self._cond.notify_all()
        self._thread.join(timeout=2)

    # -- internals (``_cond`` held) ------------------------------------------------------------------------
    def _take_locked(self, token: BusyToken) -> None:
        token.held = True
        token.owner = threading.current_thread().name
        token.since = time.monotonic()
        self._busy += 1

    def _release_locked(self, token: BusyToken) -> None:
        token.held = False
        self._busy -= 1

    def _changed(self) -> None:
        self._generation += 1
        self._cond.notify_all()

    def _probe(self, probes: list[Probe]) -> tuple[bool, datetime | None]:
        earliest: datetime | None = None
        for probe in probes:
            try:
                runnable, due = probe()
            except Exception:
                log.debug("clock probe failed", exc_info=True)
                continue
            if runnable:
                return True, None
            if due is not None and (earliest is None or due < earliest):
                earliest = due
        return False, earliest

    def _advance_loop(self) -> None:
        while True:
            with self._cond:
                if self._stopped:
                    return
                if self._busy > 0:
                    self._runnable_since = None
                    self._cond.wait(0.5)
                    if self._busy > 0:
                        self._watch()
                    continue
                generation, probes = self._generation, list(self._probes)
            runnable, due = self._probe(probes)
            if runnable:
                self._watch_probes()
                time.sleep(self._grace)
                continue
            self._runnable_since = None
            time.sleep(self._grace)
            runnable, due_again = self._probe(probes)
            with self._cond:
                if runnable or self._busy > 0 or self._generation != generation or due_again != due:
                    continue
                candidates = [d for d in (due, *self._deadlines.values()) if d is not None]
                if not candidates:
                    self._cond.wait(0.05)  # idle: nobody waits for anything
                    continue
                target = min(candidates)
                if target > self._now:
                    self._now = target
                    self.jumps += 1
                self._changed()
                # let the woken take their tokens before looking again
                self._cond.wait(self._grace)

    def _watch_probes(self) -> None:
        """Report a probe that says "runnable" for ``watchdog_seconds`` while no token is held: queued work
        nobody picks up."""
        now = time.monotonic()
        if self._runnable_since is None:
            self._runnable_since = now
            return
        if self._watchdog_seconds <= 0 or now - self._runnable_since < self._watchdog_seconds:
            return
        report = (
            f"virtual time is frozen: a probe has reported runnable work for {now - self._runnable_since:.1f} s "
            "and nobody holds a token (queued work nobody picks up)"
        )
        self.watchdog_reports.append(report)
        log.warning(report)
        self._runnable_since = now

    def _watch(self) -> None:
        stale = [t for t in self._tokens.values() if t.held and time.monotonic() - t.since > self._watchdog_seconds]
        if not stale or self._watchdog_seconds <= 0:
            return
        stuck = time.monotonic() - max(t.since for t in stale)
        if stuck < self._watchdog_seconds:
            return
        frames = sys._current_frames()
        names = {t.ident: t.name for t in threading.enumerate()}
        lines = []
        for token in stale:
            ident = next((i for i, n in names.items() if n == token.owner), None)
            where = "".join(traceback.format_stack(frames[ident])[-12:]) if ident in frames else "(gone)\n"
            lines.append(
                f"{token.label} [{token.id}] held by {token.owner} for "
                f"{time.monotonic() - token.since:.1f} s, now at:\n{where}"
            )
        report = (
            "virtual time is frozen: busy work waits for something that is not the clock (a wait nobody "
            "registered):\n" + "\n".join(lines)
        )
        self.watchdog_reports.append(report)
        log.warning(report)
        for token in stale:
            token.since = time.monotonic()  # report each stall once per period


def busy(clock: Any, label: str) -> AbstractContextManager[Any]:
    """``clock.busy(label)`` on a discrete clock; nothing on a scaled one (its time runs regardless)."""
    return clock.busy(label) if isinstance(clock, DiscreteClock) else nullcontext()


def serving(clock: Any, token_id: str | None, label: str) -> AbstractContextManager[Any]:
    return clock.serving(token_id, label) if isinstance(clock, DiscreteClock) else nullcontext()


_THREAD_START = threading.Thread.start


def _start_with_token(self: threading.Thread) -> None:
    """``threading.Thread.start`` that lets an azure-core LRO poller thread work under the token of the thread
    that started it (that thread then blocks in ``poller.result()``: the poller's sleeps must release its token,
    or virtual time would freeze)."""
    target = getattr(self, "_target", None)
    owner = type(getattr(target, "__self__", None)).__name__
    if owner == "LROPoller":
        for clock in list(_POLLER_CLOCKS):
            token = clock.current()
            if token is not None:
                self._sandbox_clock_token = token  # type: ignore[attr-defined]
                break
    _THREAD_START(self)


_POOL_SUBMIT = ThreadPoolExecutor.submit
_pending_children: dict[str, int] = {}


def _run_as_child(clock: DiscreteClock, parent: BusyToken, child: BusyToken, fn: Callable[..., Any], /, *args: Any,
                  **kwargs: Any) -> Any:
    try:
        with clock.adopt(child):
            return fn(*args, **kwargs)
    finally:
        with clock._cond:
            _pending_children[parent.id] -= 1
            last = _pending_children[parent.id] == 0
            if last:
                del _pending_children[parent.id]
        if last:
            clock.resume(parent)  # before the child lets go: no gap
        clock.release(child)


def _submit_with_token(self: ThreadPoolExecutor, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
    """``ThreadPoolExecutor.submit`` from busy work (an activity's own pool, as ``read_estate`` has): the work item
    runs under a token of its own, taken here (no gap), and the submitter's token is suspended while any of its
    items is pending (it then waits for their results); the last item to end gives it back before letting go of
    its own. The submitter's CPU between submitting and waiting is not counted (a small undercount), except inside
    ``map`` (``_map_with_token``)."""
    for clock in list(_POLLER_CLOCKS):
        parent = clock.current()
        if parent is None or (not parent.held and parent.id not in _pending_children):
            continue
        child = clock.hold(f"{parent.label} (pool work)")
        with clock._cond:
            _pending_children[parent.id] = _pending_children.get(parent.id, 0) + 1
        if not getattr(_mapping, "depth", 0):  # ``map`` suspends it once every item is submitted
            clock.suspend(parent)
        return _POOL_SUBMIT(self, _run_as_child, clock, parent, child, fn, *args, **kwargs)
    return _POOL_SUBMIT(self, fn, *args, **kwargs)


_POOL_MAP = ThreadPoolExecutor.map
_mapping = threading.local()  # ``depth``: how many ``_map_with_token`` calls the thread is inside


def _map_with_token(self: ThreadPoolExecutor, fn: Callable[..., Any], /, *iterables: Any, **kwargs: Any) -> Any:
    """``ThreadPoolExecutor.map`` from busy work (``read_estate``'s pools): the submitter keeps its token until
    every item is submitted (``map`` submits them all before it returns its iterator), then it is suspended as
    ``submit`` does. A submitter stalled between two submissions (at random, on a loaded machine) therefore
    cannot let time jump past the first items' waits before the later items have their tokens: with the token
    suspended at the first submit, a second item that waits 8 s after a first that waits 5 s ended at 13 s."""
    depth = getattr(_mapping, "depth", 0)
    _mapping.depth = depth + 1
    try:
        return _POOL_MAP(self, fn, *iterables, **kwargs)
    finally:
        _mapping.depth = depth
        if depth == 0:
            for clock in list(_POLLER_CLOCKS):
                parent = clock.current()
                if parent is None:
                    continue
                with clock._cond:  # the children decrement their count under this lock: no lost resume
                    if parent.held and _pending_children.get(parent.id, 0) > 0:
                        clock._release_locked(parent)
                        clock._changed()


_POLLER_CLOCKS: list[DiscreteClock] = []


def let_pollers_inherit(clock: DiscreteClock) -> None:
    """Install ``_start_with_token`` (once per process) for ``clock``."""
    if clock not in _POLLER_CLOCKS:
        _POLLER_CLOCKS.append(clock)
    threading.Thread.start = _start_with_token  # type: ignore[method-assign]
    ThreadPoolExecutor.submit = _submit_with_token  # type: ignore[method-assign]
    ThreadPoolExecutor.map = _map_with_token  # type: ignore[method-assign]


def stop_pollers_inheriting(clock: DiscreteClock) -> None:
    if clock in _POLLER_CLOCKS:
        _POLLER_CLOCKS.remove(clock)
    if not _POLLER_CLOCKS:
        threading.Thread.start = _THREAD_START  # type: ignore[method-assign]
        ThreadPoolExecutor.submit = _POOL_SUBMIT  # type: ignore[method-assign]
        ThreadPoolExecutor.map = _POOL_MAP  # type: ignore[method-assign]


class AzureTime:
    """What ``steward.cloud.azure_time`` needs (sleep, a monotonic reading, a request scope), on a discrete clock."""

    def __init__(self, clock: DiscreteClock) -> None:
        self.clock = clock

    def sleep(self, seconds: float) -> None:
        self.clock.sleep(seconds)

    def monotonic(self) -> float:
        return self.clock.elapsed()

    @contextmanager
    def request(self) -> Iterator[dict[str, str]]:
        with self.clock.handoff("http request") as carried:
            yield {} if carried is None else {TOKEN_HEADER: carried.id}
