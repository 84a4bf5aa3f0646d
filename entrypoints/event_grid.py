"""The Event Grid doorway: subscription events in, one orchestration per intent out.

It parses and classifies (``steward.domain.events``), then starts the orchestration the intent names with
the intent's deterministic instance id. It decides nothing else. A malformed event is not retried (a
retry cannot fix it) and is not lost: it is logged with its id and published as a
``BackupSteward.Event.Rejected`` outcome carrying a bounded excerpt of the payload.
"""

from __future__ import annotations

import json
import logging
from typing import Any, Final

import azure.durable_functions as df
import azure.functions as func

from entrypoints.orchestration_start import start_once
from steward import bootstrap
from steward.cloud.publisher import OutcomeEvent
from steward.domain import events, teardown
from steward.logs import bind

LOG = logging.getLogger("steward.entry.eventgrid")
bp = df.Blueprint()

REJECTED_EXCERPT_CHARS: Final = 4_000


def event_as_dict(event: func.EventGridEvent) -> dict[str, Any]:
    """The Event Grid schema dict of a delivered event, as the classifier reads it."""
    return {
        "id": event.id,
        "topic": event.topic,
        "subject": event.subject,
        "eventType": event.event_type,
        "eventTime": event.event_time.isoformat() if event.event_time else None,
        "data": event.get_json(),
        "dataVersion": event.data_version,
    }


def orchestration_for(intent: events.Intent) -> str | None:
    """Which orchestration handles an intent (None: nothing to start)."""
    return {
        events.ProtectResource: "protect_resource",
        events.ResourceGone: "handle_resource_gone",
        events.ResourcesMoved: "reconcile_move",
        events.VaultDeleteFailed: "teardown_vault",
        events.TeardownRequested: "teardown_vault",
    }.get(type(intent))


def _reject(raw: dict[str, Any], error: Exception) -> None:
    excerpt = json.dumps(raw, default=str)[:REJECTED_EXCERPT_CHARS]
    LOG.error("event rejected: %s", error, extra={"event_id": raw.get("id"), "event_type": raw.get("eventType")})
    bootstrap.publisher().publish(
        [
            OutcomeEvent(
                event_type="BackupSteward.Event.Rejected",
                subject=str(raw.get("subject") or "/unknown"),
                data={"eventId": raw.get("id"), "reason": str(error), "excerpt": excerpt},
            )
        ]
    )


async def handle_event(raw: dict[str, Any], client: df.DurableOrchestrationClient) -> str:
    """Classify one event and start what it asks for. Returns what was done, for logs and tests."""
    try:
        intent = events.classify(raw)
    except events.InvalidEvent as error:
        _reject(raw, error)
        return "rejected"
    with bind(correlation_id=getattr(intent, "correlation_id", None), event_id=raw.get("id")):
        if isinstance(intent, events.Ignored):
            LOG.info("event ignored: %s", intent.reason)
            return "ignored"
        payload: Any
        if isinstance(intent, events.VaultDeleteFailed | events.TeardownRequested):
            settings = bootstrap.settings()
            try:
                request = teardown.teardown_request_from_event(
                    intent,
                    allowed_subscriptions=settings.subscriptions,
                    opt_in_tag=settings.teardown_opt_in_tag,
                )
            except teardown.InvalidTeardownInput as error:
                _reject(raw, error)
                return "rejected"
            payload, instance_id = request.to_record(), teardown.instance_id_for(request)
        else:
            payload, instance_id = intent.to_record(), intent.instance_id
        orchestrator = orchestration_for(intent)
        if orchestrator is None:
            return "ignored"
        started = await start_once(client, orchestrator, instance_id, payload)
        return "started" if started else "duplicate"


@bp.event_grid_trigger(arg_name="event")
@bp.durable_client_input(client_name="client")
async def on_subscription_event(event: func.EventGridEvent, client: df.DurableOrchestrationClient) -> None:
    """Subscription system topic events (``Microsoft.Resources.*``) and custom teardown requests."""
    await handle_event(event_as_dict(event), client)
