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
from steward.domain import deliveries, drill_flow, events, teardown
from steward.logs import bind
from steward.report.events import rejected_event

LOG = logging.getLogger("steward.entry.eventgrid")
bp = df.Blueprint()

REJECTED_EXCERPT_CHARS: Final = 4_000
#: Bound on an envelope field (``id``, ``subject``, ``eventType``) copied into a log line or a Rejected event.
MAX_ENVELOPE_FIELD: Final = 1_024


def event_as_dict(event: Any) -> dict[str, Any]:
    """The delivered event as the classifier reads it: Event Grid schema, or CloudEvents 1.0 when the
    subscription delivers that schema (the trigger then hands over an object without ``topic``)."""
    data = event.get_json()
    if hasattr(event, "topic") and hasattr(event, "event_type"):
        return {
            "id": event.id,
            "topic": event.topic,
            "subject": event.subject,
            "eventType": event.event_type,
            "eventTime": event.event_time.isoformat() if event.event_time else None,
            "data": data,
            "dataVersion": event.data_version,
        }
    time: Any = getattr(event, "time", None)
    return {
        "specversion": getattr(event, "specversion", None) or getattr(event, "spec_version", None) or "1.0",
        "id": getattr(event, "id", None),
        "source": getattr(event, "source", None),
        "subject": getattr(event, "subject", None),
        "type": getattr(event, "type", None),
        "time": time.isoformat() if hasattr(time, "isoformat") else time,
        "data": data,
    }


def orchestration_for(intent: events.Intent) -> str | None:
    """Which orchestration handles an intent (None: nothing to start)."""
    return {
        events.ProtectResource: "protect_resource",
        events.ContainerCreated: "add_blob_containers",
        events.ResourceGone: "handle_resource_gone",
        events.ResourcesMoved: "reconcile_move",
        events.VaultDeleteFailed: "teardown_vault",
        events.TeardownRequested: "teardown_vault",
    }.get(type(intent))


def _excerpt(raw: object) -> str:
    """A bounded excerpt of what was delivered, whatever it is (even too deep for json.dumps)."""
    try:
        text = json.dumps(raw, default=str)
    except (RecursionError, ValueError, TypeError):
        text = repr(raw)[:REJECTED_EXCERPT_CHARS] if not isinstance(raw, dict | list) else f"<{type(raw).__name__}>"
    return text[:REJECTED_EXCERPT_CHARS]


def _field(raw: object, key: str) -> str | None:
    """An envelope field as a log line or a Rejected event may carry it: a bounded string, else nothing. A hostile
    delivery's ``id`` or ``subject`` can be a structure nested too deep to print or encode (RecursionError)."""
    value = raw.get(key) if isinstance(raw, dict) else None
    return value[:MAX_ENVELOPE_FIELD] if isinstance(value, str) else None


def _reject(raw: object, error: Exception) -> None:
    LOG.error(
        "event rejected: %s",
        str(error)[:600],
        extra={"event_id": _field(raw, "id"), "event_type": _field(raw, "eventType")},
    )
    bootstrap.publisher().publish(
        [rejected_event(_field(raw, "subject"), _field(raw, "id"), str(error)[:600], _excerpt(raw))]
    )


async def handle_event(raw: Any, client: df.DurableOrchestrationClient) -> str:
    """Classify one event and start what it asks for. Returns what was done, for logs and tests."""
    try:
        intent = events.classify(raw)
    except events.InvalidEvent as error:
        _reject(raw, error)
        return "rejected"
    with bind(correlation_id=getattr(intent, "correlation_id", None), event_id=_field(raw, "id")):
        if isinstance(intent, events.Ignored):
            LOG.info("event ignored: %s", intent.reason)
            return "ignored"
        teardown_intent = isinstance(intent, events.VaultDeleteFailed | events.TeardownRequested)
        subscription = intent.resource_id.subscription_id if intent.resource_id is not None else None
        if not teardown_intent and (subscription is None or not bootstrap.settings().manages(subscription)):
            # teardown requests are refused with their own reason below (teardown_request_from_event)
            LOG.info("event ignored: subscription %s is not in STEWARD_SUBSCRIPTIONS", subscription)
            return "ignored"
        drill_group = _drill_owned_group(intent)
        if drill_group is not None:
            LOG.info("event ignored: %s is what a restore drill made in its group %s (tagged %s=true): the drill "
                     "deletes it, nothing protects it", intent.resource_id, drill_group, drill_flow.DRILL_GROUP_TAG)
            return "ignored"
        payload: Any
        if teardown_intent:
            settings = bootstrap.settings()
            try:
                request = teardown.teardown_request_from_event(
                    intent,
                    allowed_subscriptions=settings.subscriptions,
                    opt_in_tag=settings.teardown_opt_in_tag,
                    requests_topic_id=settings.teardown_requests_topic_id,
                    allowed_principals=settings.teardown_allowed_principals,
                )
            except teardown.InvalidTeardownInput as error:
                _reject(raw, error)
                return "rejected"
            if isinstance(intent, events.TeardownRequested):
                LOG.info(
                    "custom teardown request accepted as a request only: it plans and waits for an approval over "
                    "HTTP%s",
                    "; the fingerprint it names is ignored" if intent.plan_fingerprint else "",
                )
            payload, instance_id = request.to_record(), teardown.instance_id_for(request)
        else:
            payload, instance_id = intent.to_record(), intent.instance_id
        orchestrator = orchestration_for(intent)
        if orchestrator is None:
            return "ignored"
        if await _handled_under_legacy_id(client, intent, request if teardown_intent else None):
            LOG.info("event already handled by an instance started under its correlation-keyed id: nothing started")
            return "duplicate"
        if isinstance(intent, events.VaultDeleteFailed) and await _ever_started(client, instance_id):
            # one failed delete (one event id: one instance id) starts one teardown, ever: Event Grid
            # redelivers for up to 24 h, and a redelivery must not auto-approve a teardown of the vault again
            # (a cancelled one, or the vault re-created since under the same name and tag)
            LOG.info("failed vault delete already handled: nothing started", extra={"instance_id": instance_id})
            return "duplicate"
        # a redelivered event (same id) starts no work again; teardown requests keep their own rules
        event = None if teardown_intent else (intent.origin.event_id, intent.origin.event_time)
        started = await start_once(client, orchestrator, instance_id, payload, event=event)
        return "started" if started else "duplicate"


def _drill_owned_group(intent: events.Intent) -> str | None:
    """The drill group a protect / container / delete event's resource lives in, when this worker knows the app
    made that group for restore drills (issue 17: a drill's own writes and deletes were ~1,300 of a 200-resource
    drill's requests, each read and opted out by ``protect_resource`` or looked up by ``handle_resource_gone``).
    Conservative: only the types drills make (disks, storage accounts and their containers), only in a group named
    as a drill rule's drill group AND that the drill's activities in this worker found tagged
    ``backup-steward:drill-group=true`` (``ensure_group`` reads or writes the tag; they remember it in the app's ARM
    cache, ``STEWARD_ARM_CACHE_SECONDS``). The trigger reads nothing from ARM: a group only named so, one no drill
    step here vouched for lately, is handled as any."""
    if not isinstance(intent, events.ProtectResource | events.ContainerCreated | events.ResourceGone):
        return None
    group = drill_flow.drill_group_of(intent.resource_id, bootstrap.rules().drills)
    if group is None:
        return None
    return group if bootstrap.arm_cache().get(drill_flow.drill_group_key(group)) is True else None


async def _handled_under_legacy_id(
    client: df.DurableOrchestrationClient, intent: events.Intent, request: teardown.TeardownRequest | None
) -> bool:
    """Whether an instance started before event ids keyed moves and event-started teardowns (under the ARM
    correlation id, which the caller chooses) already has THIS event: a redelivery, for up to 24 h after the change
    (Event Grid's retry window, ``steward.domain.deliveries``). Only the same event matches (its id for a move; its
    vault, requester and Event Grid time for a teardown request), so a caller who reuses a correlation id cannot make
    another's event look handled. Once no event from before the change can be redelivered, this finds nothing."""
    legacy: str | None = None
    if isinstance(intent, events.ResourcesMoved):
        legacy = intent.legacy_instance_id
    elif request is not None:
        legacy = teardown.legacy_instance_id_for(request)
    if legacy is None:
        return False
    status = await client.get_status(legacy, show_input=True)
    if status is None or status.runtime_status is None:
        return False
    if request is None:
        return deliveries.already_handled(status.input_, intent.origin.event_id)
    try:
        previous = teardown.TeardownRequest.from_record(_as_record(status.input_))
    except (ValueError, TypeError):
        return False
    return teardown.same_event(request, previous)


def _as_record(value: object) -> Any:
    """An instance's input as Durable's status hands it back (an object, or its JSON text)."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return None
    return value


async def _ever_started(client: df.DurableOrchestrationClient, instance_id: str) -> bool:
    """Whether Durable knows the instance, in any state (a missing one has no runtime status)."""
    status = await client.get_status(instance_id)
    return status is not None and status.runtime_status is not None


async def handle_delivery(event: Any, client: df.DurableOrchestrationClient) -> str:
    """One delivered event as the trigger hands it over: read it (its ``data`` may be JSON nested too deep for
    Python to decode or re-encode: RecursionError, which is no ValueError), then :func:`handle_event`. A delivery
    that cannot be read is rejected like any malformed event (logged, published, not retried), never raised."""
    try:
        raw = event_as_dict(event)
    except (ValueError, TypeError, RecursionError) as error:
        envelope = {key: getattr(event, attr, None) for key, attr in
                    (("id", "id"), ("subject", "subject"), ("eventType", "event_type"))}
        _reject(envelope, events.InvalidEvent(f"the event's data cannot be read: {type(error).__name__}"))
        return "rejected"
    return await handle_event(raw, client)


@bp.event_grid_trigger(arg_name="event")
@bp.durable_client_input(client_name="client")
async def on_subscription_event(event: func.EventGridEvent, client: df.DurableOrchestrationClient) -> None:
    """Subscription system topic events (``Microsoft.Resources.*``) and custom teardown requests."""
    await handle_delivery(event, client)
