"""Starting orchestrations so that duplicate deliveries collapse onto one instance.

Event Grid delivers at least once and out of order. Every intent carries a deterministic instance id;
``start_once`` starts the orchestration unless an instance with that id is pending or running, in which
case the duplicate is dropped (the running instance will reach the same state). A completed instance is
started again for a NEW event: orchestrations are idempotent, so a later event converges instead of being
lost. A redelivery of an event the instance's line of runs already handled (same event id, within Event
Grid's 24 h retry window) starts nothing: the handled ids travel in the instance's input, in Durable's store,
so every instance of the app sees them (``steward.domain.deliveries``).
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any, Final

import azure.durable_functions as df

from steward.domain import deliveries

LOG = logging.getLogger("steward.entry")

ACTIVE_STATES: Final = frozenset(
    {
        df.OrchestrationRuntimeStatus.Pending,
        df.OrchestrationRuntimeStatus.Running,
        df.OrchestrationRuntimeStatus.ContinuedAsNew,
    }
)


async def start_once(
    client: df.DurableOrchestrationClient,
    orchestrator: str,
    instance_id: str,
    payload: Any,
    *,
    event: tuple[str, datetime] | None = None,
) -> bool:
    """Start ``orchestrator`` as ``instance_id`` unless it is already active, or (given ``event``: its id and
    time) unless its completed run already handled that event. True when started."""
    status = await client.get_status(instance_id, show_input=event is not None)
    if status is not None and status.runtime_status in ACTIVE_STATES:
        LOG.info(
            "duplicate intent collapsed onto the active instance",
            extra={"instance_id": instance_id, "orchestrator": orchestrator},
        )
        return False
    if event is not None:
        previous = status.input_ if status is not None and status.runtime_status is not None else None
        if status is not None and status.runtime_status is df.OrchestrationRuntimeStatus.Completed and (
            deliveries.already_handled(previous, event[0])
        ):
            LOG.info(
                "event already handled: nothing started",
                extra={"instance_id": instance_id, "orchestrator": orchestrator},
            )
            return False
        payload = {**payload, deliveries.HANDLED_KEY: deliveries.remember(previous, *event)}
    await client.start_new(orchestrator, instance_id, payload)
    LOG.info("orchestration started", extra={"instance_id": instance_id, "orchestrator": orchestrator})
    return True
