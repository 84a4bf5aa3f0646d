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

Calls at once (``call_all_with_backoff``) each retry in a sub-orchestration of their own (``backoff_call``), fanned
out with ``task_all``. The Durable extension schedules an orchestrator's actions one at a time, each only after the
previous one completed (azure-functions-durable-extension ``OutOfProcOrchestrationShim.ProcessAsyncActionsV2``), and
azure-functions-durable 1.7.0 serialises a ``task_any`` with only its children not scheduled before
(``CompoundTask``): racing running calls and retry timers in one orchestrator would queue one call's retry behind
another's timer. Register ``bp`` with the app (``function_app.py``).
"""

from __future__ import annotations

from collections.abc import Generator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

import azure.durable_functions as df

Task = Generator[Any, Any, Any]

bp = df.Blueprint()


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

    def to_record(self) -> dict[str, Any]:
        return {"firstSeconds": self.first.total_seconds(), "coefficient": self.coefficient,
                "capSeconds": self.cap.total_seconds(), "windowSeconds": self.window.total_seconds(),
                "maxAttempts": self.max_attempts}

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> Backoff:
        return cls(first=timedelta(seconds=float(record["firstSeconds"])), coefficient=float(record["coefficient"]),
                   cap=timedelta(seconds=float(record["capSeconds"])),
                   window=timedelta(seconds=float(record["windowSeconds"])), max_attempts=int(record["maxAttempts"]))

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


#: The sub-orchestration one call of ``call_all_with_backoff`` retries in.
BACKOFF_CALL: Final = "backoff_call"


@bp.orchestration_trigger(context_name="context")
def backoff_call(context: df.DurableOrchestrationContext) -> Task:
    """Sub-orchestration: ``call_with_backoff`` of one activity (input: ``activity``, ``policy``, ``input``)."""
    spec = context.get_input() or {}
    return (yield from call_with_backoff(context, str(spec["activity"]), Backoff.from_record(spec["policy"]),
                                         spec.get("input")))


def call_all_with_backoff(context: df.DurableOrchestrationContext, name: str, policy: Backoff,
                          payloads: Sequence[Any]) -> Task:
    """``yield from`` this: the results of one activity per payload, in the payloads' order, run at once; each
    call retries on its own timers in its own sub-orchestration (``backoff_call``), so one call's retries never
    wait for another's. A call the policy gives up on fails the whole with its failure (once the other calls
    are done: the extension's ``Task.WhenAll`` waits for every call)."""
    if not payloads:
        return []
    record = policy.to_record()
    # the children's ids are the app's (deterministic: ``new_uuid`` of the replay), never the extension's choice
    calls = [context.call_sub_orchestrator(BACKOFF_CALL, {"activity": name, "policy": record, "input": payload},
                                           f"{context.instance_id}:{context.new_uuid()}")
             for payload in payloads]
    return (yield context.task_all(calls))
