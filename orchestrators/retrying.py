"""Long retry windows on durable timers of the app's own.

azure-functions-durable 1.7.0 serialises only ``firstRetryIntervalInMilliseconds`` and ``maxNumberOfAttempts``
of a ``RetryOptions`` (``RetryOptions.to_json``); the extension's ``RetryOptionsConverter`` then keeps
DurableTask's ``BackoffCoefficient`` of 1, so ``call_activity_with_retry`` waits the first interval between every
attempt. A wait that must outlast minutes of Azure (a resource group locked by a move, a role assignment that is
still propagating) is therefore built here: try the activity, and after a failure wait on
``context.create_timer`` with an exponential, capped delay, until a deadline. Nothing waits inside a worker.

What is retried: whatever an activity *raises*. The app's activities raise only for failures worth another try
(``steward.cloud.errors.TransientAzureError``: throttling, 5xx, timeouts, ``ScopeLocked`` and the other codes of
``RETRYABLE_CODES``, Azure's server-side failure codes); a refusal a retry will not change
(``AzureRefusal``) comes back as an ``{"ok": false, ...}`` record, which is a result, never retried here.

Deterministic: the time is ``context.current_utc_datetime``; the history stays bounded (``max_attempts`` per call:
four events per failed attempt).
"""

from __future__ import annotations

from collections.abc import Generator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import azure.durable_functions as df
from azure.durable_functions.models.Task import TaskState

Task = Generator[Any, Any, Any]


@dataclass(frozen=True)
class Backoff:
    """When an activity that failed is tried again.

    After failure ``n`` (1-based) the next attempt waits ``first * coefficient^(n-1)``, at most ``cap``. No
    attempt starts later than ``window`` after the first, and there are at most ``max_attempts`` attempts.
    """

    first: timedelta
    coefficient: float = 2.0
    cap: timedelta = timedelta(minutes=2)
    window: timedelta = timedelta(minutes=10)
    max_attempts: int = 12

    def __post_init__(self) -> None:
        if self.first <= timedelta(0) or self.cap < self.first or self.coefficient < 1 or self.max_attempts < 1:
            raise ValueError(f"not a usable backoff: {self}")

    def delay(self, failures: int) -> timedelta:
        """The wait after the ``failures``-th failure."""
        seconds = self.first.total_seconds() * self.coefficient ** max(0, failures - 1)
        return min(timedelta(seconds=seconds), self.cap)

    def next_attempt(self, started: datetime, now: datetime, failures: int) -> datetime | None:
        """When to try again after ``failures`` failures, or None when the attempts or the window are spent."""
        if failures >= self.max_attempts:
            return None
        at = now + self.delay(failures)
        return at if at <= started + self.window else None

    def schedule(self) -> list[timedelta]:
        """The waits of a call that keeps failing (for documentation and tests): sums to at most ``window``."""
        waits: list[timedelta] = []
        started = now = datetime(2000, 1, 1)
        while (at := self.next_attempt(started, now, len(waits) + 1)) is not None:
            waits.append(at - now)
            now = at
        return waits


def call_with_backoff(context: df.DurableOrchestrationContext, name: str, policy: Backoff, payload: Any) -> Task:
    """``yield from`` this: the activity's result, or the last failure raised once the policy gives up.

    The arguments are in ``call_activity_with_retry``'s order (name, retry policy, input)."""
    started = context.current_utc_datetime
    failures = 0
    while True:
        try:
            return (yield context.call_activity(name, payload))
        except Exception:  # the SDK raises a bare Exception carrying the activity's failure
            failures += 1
            retry_at = policy.next_attempt(started, context.current_utc_datetime, failures)
            if retry_at is None:
                raise
        yield context.create_timer(retry_at)


def call_all_with_backoff(context: df.DurableOrchestrationContext, name: str, policy: Backoff,
                          payloads: Sequence[Any]) -> Task:
    """``yield from`` this: the results of one activity per payload, in the payloads' order, run at once; each
    failed call is retried on its own timer (the others keep running). The first call the policy gives up on
    raises its failure."""
    started = context.current_utc_datetime
    results: dict[int, Any] = {}
    failures = [0] * len(payloads)
    running = {index: context.call_activity(name, payload) for index, payload in enumerate(payloads)}
    waiting: dict[int, Any] = {}
    while running or waiting:
        winner = yield context.task_any([*running.values(), *waiting.values()])
        index = next((i for i, task in running.items() if task is winner), None)
        if index is None:  # a retry timer fired
            index = next(i for i, timer in waiting.items() if timer is winner)
            del waiting[index]
            running[index] = context.call_activity(name, payloads[index])
            continue
        del running[index]
        if winner.state is TaskState.FAILED:
            failures[index] += 1
            at = policy.next_attempt(started, context.current_utc_datetime, failures[index])
            if at is None:
                raise winner.result
            waiting[index] = context.create_timer(at)
        else:
            results[index] = winner.result
    return [results[index] for index in range(len(payloads))]
