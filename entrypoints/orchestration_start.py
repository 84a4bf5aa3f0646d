"""Starting orchestrations so that duplicate deliveries collapse onto one instance.

Event Grid delivers at least once and out of order. Every intent carries a deterministic instance id;
``start_once`` starts the orchestration unless an instance with that id is pending or running, in which
case the duplicate is dropped (the running instance will reach the same state). A completed instance is
started again: orchestrations are idempotent, so a genuinely repeated event converges instead of being
lost.
"""

from __future__ import annotations

import logging
from typing import Any, Final

import azure.durable_functions as df

LOG = logging.getLogger("steward.entry")

ACTIVE_STATES: Final = frozenset(
    {
        df.OrchestrationRuntimeStatus.Pending,
        df.OrchestrationRuntimeStatus.Running,
        df.OrchestrationRuntimeStatus.ContinuedAsNew,
    }
)


async def start_once(
    client: df.DurableOrchestrationClient, orchestrator: str, instance_id: str, payload: Any
) -> bool:
    """Start ``orchestrator`` as ``instance_id`` unless it is already active. True when started."""
    status = await client.get_status(instance_id)
    if status is not None and status.runtime_status in ACTIVE_STATES:
        LOG.info(
            "duplicate intent collapsed onto the active instance",
            extra={"instance_id": instance_id, "orchestrator": orchestrator},
        )
        return False
    await client.start_new(orchestrator, instance_id, payload)
    LOG.info("orchestration started", extra={"instance_id": instance_id, "orchestrator": orchestrator})
    return True
