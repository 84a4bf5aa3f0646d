"""On-demand protection (issue 19 item 3): ``POST /api/protect`` starts ``protect_resource`` for one resource, the
orchestration an Event Grid write event starts, so an operator (``steward protect ID``) need not wait for, or fake,
an event. Doorway only: validate, then start.

It needs what the drill routes need: the function key AND an allowed caller proven by a validated Entra ID access
token (``entrypoints.caller_checks``: 401 without a valid token, 403 for a caller not in
STEWARD_TEARDOWN_ALLOWED_PRINCIPALS / _ROLES, 403 for a subscription outside STEWARD_SUBSCRIPTIONS). Protection
deletes nothing, but it creates protected items in vaults and spends the policy budget: not for a key alone.

================================  ============================================================================
``POST /api/protect``             ``{"resourceId": id}`` -> 202 + ``Location``: ``protect_resource`` started
``GET  /api/protect/{id}``        runtime status and, when finished, the protection outcome (status, reason,
                                  vault, rule)
================================  ============================================================================
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from datetime import UTC, datetime
from typing import Any, Final

import azure.durable_functions as df
import azure.functions as func

from entrypoints import problems
from entrypoints.caller_checks import (
    CallerRateLimit,
    RequestRefused,
    SettingsMeter,
    check_json_content_type,
    check_scope,
    json_object,
    request_correlation_id,
)
from entrypoints.routes import answered, json_response, runtime_state, shown
from steward import bootstrap
from steward.domain.errors import InvalidResourceId
from steward.domain.events import PROTECTED_TYPES, EventOrigin, EventSchema
from steward.domain.ids import ResourceId
from steward.domain.protection import ProtectionOutcome, ProtectionShown

LOG = logging.getLogger("steward.entry")
ORCHESTRATOR: Final = "protect_resource"
#: the origin's event type of a protection an operator asked for (an Event Grid one carries the ARM event's type)
REQUEST_EVENT_TYPE: Final = "BackupSteward.Protect.Requested"
MAX_BODY_BYTES: Final = 4 * 1024
_PROTECT_ID = re.compile(r"protect-[a-f0-9]{24}")
_FIELDS: Final = frozenset({"resourceId"})

bp = df.Blueprint()


_METER = SettingsMeter(lambda settings: settings.teardown_rate_per_minute, "protection starts")


def _rate_limit() -> CallerRateLimit:
    """The instance's meter of protection starts, per caller, at the teardown routes' rate
    (STEWARD_TEARDOWN_RATE_PER_MINUTE), as the drill routes are: each start writes to vaults and spends the
    policy-change budget."""
    return _METER(bootstrap.settings())


def protect_request_from_http(body: bytes) -> str:
    """The resource id from a POST body; RequestRefused (400 naming the field, 413) otherwise."""
    data = json_object(body, MAX_BODY_BYTES, _FIELDS, example='{"resourceId": "<ARM id>"}')
    if "resourceId" not in data:
        raise RequestRefused(400, "InvalidResourceId", "the body needs 'resourceId', the ARM id of the resource")
    try:
        resource = ResourceId.parse(data["resourceId"])
    except (InvalidResourceId, TypeError, ValueError) as error:
        raise RequestRefused(400, "InvalidResourceId", f"resourceId: {str(error)[:300]}") from None
    if not any(resource.is_type(protected) for protected in PROTECTED_TYPES.values()):
        # what an Event Grid write would start protect_resource for (steward.domain.events): anything else (a vault,
        # a VM's extension, a group) would only make the app's identity read it and retry, for no protection
        raise RequestRefused(400, "UnsupportedResourceType",
                             f"resourceId names a {resource.full_type or 'scope'}; Backup Steward protects "
                             f"{', '.join(sorted(PROTECTED_TYPES.values()))}")
    return str(resource)


def intent_for(
    resource_id: str, instance_id: str, principal: str, now: datetime, correlation_id: str | None = None
) -> dict[str, Any]:
    """``protect_resource``'s input, as an Event Grid write would give it; the origin names the request and carries
    its correlation id (the request's, which the answer names; the instance id when none is given)."""
    origin = EventOrigin(
        event_id=instance_id,
        event_type=REQUEST_EVENT_TYPE,
        event_time=now,
        schema=EventSchema.EVENT_GRID,
        subscription_id=ResourceId.parse(resource_id).subscription_id,
        correlation_id=correlation_id or instance_id,
    )
    return {"kind": "protect", "resourceId": resource_id, "origin": origin.to_record(), "requestedBy": principal}


def _check_id(value: str) -> str:
    if not _PROTECT_ID.fullmatch(value or ""):
        raise RequestRefused(400, "InvalidInstanceId", "not a protection id (it is 'protect-' and 24 hex digits)")
    return value


def _links(req: func.HttpRequest, instance_id: str) -> dict[str, str]:
    url = req.url.split("?", 1)[0].rstrip("/")
    base = url[: url.index("/api/protect") + len("/api/protect")] if "/api/protect" in url else url
    return {"status": f"{base}/{instance_id}"}


async def _answer(
    req: func.HttpRequest, action: str, body: Any, correlation_id: str | None = None
) -> func.HttpResponse:
    """The caller checks, then ``body``; one audit line per request (who, what, the answer), as the drill routes.
    Every answer names the request's correlation id (``x-correlation-id``), the one a started protection records."""
    return await answered(req, "protect", action, body, correlation_id or request_correlation_id(dict(req.headers)))


@bp.route(route="protect", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
@bp.durable_client_input(client_name="client")
async def protect_http_start(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    correlation_id = request_correlation_id(dict(req.headers))

    async def start(principal: str) -> func.HttpResponse:
        _rate_limit().take(principal, time.monotonic())  # 429 when the caller has no start left this minute
        check_json_content_type(dict(req.headers))
        resource_id = protect_request_from_http(req.get_body())
        check_scope({"resources": [resource_id], "subscriptions": []}, bootstrap.settings().subscriptions)
        instance_id = f"protect-{uuid.uuid4().hex[:24]}"
        await client.start_new(
            ORCHESTRATOR,
            instance_id,
            intent_for(resource_id, instance_id, principal, datetime.now(UTC), correlation_id),
        )
        LOG.info(
            "protection started on request",
            extra={"instance_id": instance_id, "resource_id": resource_id, "correlation_id": correlation_id},
        )
        links = _links(req, instance_id)
        return json_response(
            202,
            {"id": instance_id, "resourceId": resource_id, "links": links},
            {"Location": links["status"], "Retry-After": "5"},
        )

    return await _answer(req, "start", start, correlation_id)


@bp.route(route="protect/{id}", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
@bp.durable_client_input(client_name="client")
async def protect_http_status(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    async def show(_principal: str) -> func.HttpResponse:
        instance_id = _check_id(req.route_params.get("id", ""))
        status = await client.get_status(instance_id)
        if runtime_state(status) is None:
            return problems.response(404, "ProtectionNotFound", f"no protection {instance_id}")
        return json_response(
            200,
            {
                "id": instance_id,
                "runtimeStatus": runtime_state(status),
                "customStatus": shown(ProtectionShown, status.custom_status),
                "outcome": shown(ProtectionOutcome, status.output),
                "links": _links(req, instance_id),
            },
        )

    return await _answer(req, "status", show)
