"""Which Event Grid events were already handled: one event (same ``id``) starts work once.

Event Grid delivers at least once: a delivery it did not see acknowledged is retried for up to 24 hours (its
default retry policy: 30 attempts, event time-to-live 1,440 minutes; "Event Grid message delivery and retry",
``event-grid/delivery-and-retry.md``), and the same event id may arrive many times, in one batch or later. The
doorway starts one orchestration per intent under a deterministic instance id (``steward.domain.events``); a
completed instance may be started again by a *new* event for the same resource, so the instance id alone cannot
tell a redelivery from a new event. The ids an instance's line of runs has handled therefore travel in its
input (``handledEvents``): the doorway reads the previous run's input from Durable's store (shared by every
instance of the app), refuses to start work for an id in it, and carries the list forward (bounded, and only
as far back as Event Grid can still redeliver).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any, Final

from steward.domain.kernel import aware_time

#: how long Event Grid can redeliver one event (default retry policy's event time-to-live)
RETRY_WINDOW: Final = timedelta(hours=24)
#: ids remembered per instance line at most (the newest first); a VM create alone raises a handful of writes
MAX_REMEMBERED: Final = 64
HANDLED_KEY: Final = "handledEvents"


def _input_record(previous_input: object) -> Mapping[str, Any]:
    """The previous run's input as a mapping (Durable's status API may hand it back as JSON text)."""
    if isinstance(previous_input, str):
        try:
            previous_input = json.loads(previous_input)
        except ValueError:
            return {}
    return previous_input if isinstance(previous_input, Mapping) else {}


_time = aware_time


def handled_events(previous_input: object) -> list[dict[str, str]]:
    """The events (``{"id", "time"}``) the previous run's input says its line of runs handled, its own included."""
    record = _input_record(previous_input)
    found: list[dict[str, str]] = []
    origin = record.get("origin")
    if isinstance(origin, Mapping) and isinstance(origin.get("eventId"), str):
        found.append({"id": origin["eventId"], "time": str(origin.get("eventTime") or "")})
    listed = record.get(HANDLED_KEY)
    if isinstance(listed, list):
        found.extend(
            {"id": e["id"], "time": str(e.get("time") or "")}
            for e in listed
            if isinstance(e, Mapping) and isinstance(e.get("id"), str)
        )
    return found


def already_handled(previous_input: object, event_id: str) -> bool:
    """True when the previous run's line of runs already handled ``event_id`` (a redelivery, not new work)."""
    return any(e["id"] == event_id for e in handled_events(previous_input))


def remember(previous_input: object, event_id: str, event_time: datetime) -> list[dict[str, str]]:
    """The list the next run carries: this event first, then those still inside Event Grid's retry window
    (measured from this event's time), without repeats, at most :data:`MAX_REMEMBERED`."""
    out = [{"id": event_id, "time": event_time.isoformat()}]
    seen = {event_id}
    horizon = event_time - RETRY_WINDOW
    for entry in handled_events(previous_input):
        when = _time(entry["time"])
        if entry["id"] in seen or when is None or when < horizon:
            continue
        seen.add(entry["id"])
        out.append(entry)
        if len(out) >= MAX_REMEMBERED:
            break
    return out
