"""Publishes Backup Steward's own outcome events to a custom Event Grid topic.

One port (``OutcomePublisher``) with the Event Grid adapter and an in-memory one for tests of pure
callers. Publishing never fails an orchestration: a publish error is logged and reported back, because
the outcome is already recorded in the orchestration's output and logs.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final, Protocol
from uuid import uuid4

from azure.core.exceptions import AzureError

LOG = logging.getLogger("steward.publisher")

#: Event types the app publishes. Subscribers filter on these.
EVENT_TYPE_PREFIX: Final = "BackupSteward."
DATA_VERSION: Final = "1.0"


@dataclass(frozen=True)
class OutcomeEvent:
    """One event: ``event_type`` like ``BackupSteward.Protection.Protected``, subject a resource id."""

    event_type: str
    subject: str
    data: Mapping[str, Any]
    #: the version of ``data``'s shape for this event type (the README's "Events" table)
    data_version: str = DATA_VERSION

    def __post_init__(self) -> None:
        if not self.event_type.startswith(EVENT_TYPE_PREFIX):
            raise ValueError(f"event type {self.event_type!r} must start with {EVENT_TYPE_PREFIX!r}")
        if not self.subject:
            raise ValueError("an outcome event needs a subject")


class OutcomePublisher(Protocol):
    def publish(self, events: Sequence[OutcomeEvent]) -> int:
        """Publish the events; return how many were accepted."""
        ...


class NullPublisher:
    """Used when no topic is configured: logs what would have been published."""

    def publish(self, events: Sequence[OutcomeEvent]) -> int:
        for event in events:
            LOG.info(
                "outcome (no topic configured)",
                extra={"event_type": event.event_type, "subject": event.subject},
            )
        return 0


class MemoryPublisher:
    """Keeps events in a list (tests of code that publishes)."""

    def __init__(self) -> None:
        self.events: list[OutcomeEvent] = []

    def publish(self, events: Sequence[OutcomeEvent]) -> int:
        self.events.extend(events)
        return len(events)


class EventGridOutcomePublisher:
    """Publishes to a custom topic with ``azure-eventgrid`` (key or Entra ID token)."""

    def __init__(
        self,
        endpoint: str,
        *,
        key: str | None = None,
        credential: Any = None,
        ca_bundle: str | None = None,
    ) -> None:
        from steward.cloud.clients import event_grid_publisher

        # azure-eventgrid 4.22 drops client-level transport options for basic topics, so the CA bundle
        # travels with each send (a per-request transport option azure-core honours).
        self._send_options: dict[str, Any] = {"connection_verify": ca_bundle} if ca_bundle else {}
        self._client = event_grid_publisher(endpoint, key=key, credential=credential)

    def publish(self, events: Sequence[OutcomeEvent]) -> int:
        from azure.eventgrid import EventGridEvent

        if not events:
            return 0
        batch = [
            EventGridEvent(
                subject=event.subject,
                event_type=event.event_type,
                data=dict(event.data),
                data_version=event.data_version,
                id=str(uuid4()),
                event_time=datetime.now(UTC),
            )
            for event in events
        ]
        try:
            self._client.send(batch, **self._send_options)
        except AzureError:
            LOG.exception("publishing %d outcome event(s) failed", len(batch))
            raise
        return len(batch)
