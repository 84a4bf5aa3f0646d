"""Restore drill triggers (issue 17 item 2): HTTP routes and the drill timer. Doorways only: validate, then start
or signal ``restore_drill``.

A drill creates and deletes resources (restored disks, a storage account) in the drill group, so its routes need
what the teardown routes need: the function key AND an allowed caller proven by a validated Entra ID access token
(``entrypoints.caller_checks``: 401 without a valid token, 403 for a caller not in
STEWARD_TEARDOWN_ALLOWED_PRINCIPALS / _ROLES). Errors are RFC 9457 problem details (``entrypoints.problems``).

=================================  ===========================================================================
``POST /api/drills``               ``{"resources"?: [ids], "subscriptions"?: [guids], "dryRun"?: bool}`` -> 202
                                   + ``Location``; named resources are drilled now (budgets still hold); without
                                   them, every resource a drill rule covers and that is due
``GET  /api/drills/{id}``          runtime status, phase, the drill report when finished
``POST /api/drills/{id}/cancel``   cancels: the running restore job is cancelled where Azure can, and what the
                                   drill created is deleted -> 202
``POST /api/drills/{id}/           the user validation hook's answer ``{"result": "pass"|"fail", "detail"?}``
validation``                       while the drill waits for it (after ``BackupSteward.Drill.RestoreReady``)
                                   -> 202; 409 when the drill is not waiting (not yet, or already decided)
=================================  ===========================================================================

The timer (``%STEWARD_DRILL_SCHEDULE%``) starts a drill of everything due when the rules have a drills section.
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
)
from entrypoints.routes import answered, json_response, read_record, runtime_state, shown
from steward import bootstrap
from steward.domain.drill_flow import EVENT_VALIDATION, VALIDATION_RESULTS
from steward.domain.drill_records import DrillReport
from steward.domain.errors import InvalidResourceId
from steward.domain.ids import ResourceId
from steward.domain.run_status import RunProgress

LOG = logging.getLogger("steward.entry")
ORCHESTRATOR: Final = "restore_drill"
EVENT_CANCEL: Final = "Cancel"
ACTIVE: Final = frozenset({"Pending", "Running", "ContinuedAsNew"})
MAX_RESOURCES: Final = 100
#: 100 resource ids of at most 512 characters and 50 subscriptions fit (about 53 KB)
MAX_BODY_BYTES: Final = 64 * 1024
MAX_SUBSCRIPTIONS: Final = 50
_DRILL_ID = re.compile(r"drill-[a-z0-9-]{1,80}")
_GUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_FIELDS: Final = frozenset({"resources", "subscriptions", "dryRun"})
_VALIDATION_FIELDS: Final = frozenset({"result", "detail"})
MAX_VALIDATION_BYTES: Final = 16 * 1024
MAX_DETAIL: Final = 4000

bp = df.Blueprint()


_METER = SettingsMeter(lambda settings: settings.teardown_rate_per_minute, "drill starts")


def _rate_limit() -> CallerRateLimit:
    """The instance's meter of drill starts. The drill routes are authorized by the teardown policy, and metered
    at its rate (STEWARD_TEARDOWN_RATE_PER_MINUTE): each start may restore disks and VMs and create storage
    accounts."""
    return _METER(bootstrap.settings())


def drill_request_from_http(body: bytes) -> dict[str, Any]:
    """The orchestration's input from a POST body; 400 naming the field otherwise (413 when too large)."""
    if len(body or b"") <= MAX_BODY_BYTES and not (body or b"").strip():
        raise RequestRefused(400, "InvalidRequest", "send a JSON object ({} drills everything that is due)")
    data = json_object(body, MAX_BODY_BYTES, _FIELDS)
    resources = data.get("resources", [])
    if not isinstance(resources, list) or len(resources) > MAX_RESOURCES:
        raise RequestRefused(400, "InvalidResources", f"resources must be a list of at most {MAX_RESOURCES} ids")
    subscriptions = data.get("subscriptions", [])
    if isinstance(subscriptions, list) and len(subscriptions) > MAX_SUBSCRIPTIONS:
        raise RequestRefused(400, "InvalidSubscriptions", f"at most {MAX_SUBSCRIPTIONS} subscriptions")
    parsed: list[str] = []
    for index, value in enumerate(resources):
        try:
            parsed.append(str(ResourceId.parse(value)))
        except (InvalidResourceId, TypeError, ValueError) as error:
            raise RequestRefused(400, "InvalidResourceId", f"resources[{index}]: {error}") from None
    valid = isinstance(subscriptions, list) and len(subscriptions) <= MAX_SUBSCRIPTIONS
    if not valid or not all(isinstance(s, str) and _GUID.fullmatch(s) for s in subscriptions):
        raise RequestRefused(400, "InvalidSubscriptions", f"subscriptions must be a list of at most "
                             f"{MAX_SUBSCRIPTIONS} subscription GUIDs")
    dry_run = data.get("dryRun", False)
    if not isinstance(dry_run, bool):
        raise RequestRefused(400, "InvalidRequest", "dryRun must be true or false")
    return {"resources": parsed, "subscriptions": [s.lower() for s in subscriptions], "dryRun": dry_run}


#: control characters a validation detail may not carry: C0 but tab and newline, DEL, C1 (the OpenAPI pattern's)
_CONTROL: Final = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def validation_from_http(body: bytes) -> dict[str, Any]:
    """``{"result": "pass"|"fail", "detail"?: str}`` from a POST body; 400 naming the field otherwise."""
    data = json_object(body, MAX_VALIDATION_BYTES, _VALIDATION_FIELDS)
    if data.get("result") not in VALIDATION_RESULTS:
        raise RequestRefused(400, "InvalidValidationResult", "result must be \"pass\" or \"fail\"")
    detail = data.get("detail")
    if "detail" in data and (not isinstance(detail, str) or len(detail) > MAX_DETAIL):
        raise RequestRefused(400, "InvalidRequest", f"detail must be a string of at most {MAX_DETAIL} characters")
    if isinstance(detail, str) and _CONTROL.search(detail):
        # the detail is kept in the drill's report and printed by `steward drill status` on other people's
        # terminals: escape sequences (ESC, BEL, CR...) would drive them
        raise RequestRefused(400, "InvalidRequest", "detail must not contain control characters (newlines and tabs "
                             "are fine)")
    return {"result": data["result"], "detail": detail}


def _check_id(value: str) -> str:
    if not _DRILL_ID.fullmatch(value or ""):
        raise RequestRefused(400, "InvalidInstanceId", "not a drill id (it starts with 'drill-')")
    return value


def _links(req: func.HttpRequest, drill_id: str) -> dict[str, str]:
    url = req.url.split("?", 1)[0].rstrip("/")
    base = url[: url.index("/api/drills") + len("/api/drills")] if "/api/drills" in url else url
    return {"status": f"{base}/{drill_id}", "cancel": f"{base}/{drill_id}/cancel"}


@bp.route(route="drills", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
@bp.durable_client_input(client_name="client")
async def drill_http_start(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    async def start(principal: str) -> func.HttpResponse:
        _rate_limit().take(principal, time.monotonic())  # 429 when the caller has no start left this minute
        check_json_content_type(dict(req.headers))
        request = drill_request_from_http(req.get_body())
        check_scope(request, bootstrap.settings().subscriptions)
        drill_id = f"drill-{uuid.uuid4().hex[:24]}"
        await client.start_new(ORCHESTRATOR, drill_id, {**request, "requestedBy": principal, "trigger": "http"})
        LOG.info("drill started", extra={"instance_id": drill_id, "dry_run": request["dryRun"]})
        links = _links(req, drill_id)
        return json_response(202, {"id": drill_id, "dryRun": request["dryRun"], "resources": request["resources"],
                                   "links": links}, {"Location": links["status"], "Retry-After": "10"})

    return await answered(req, "drill", "start", start)


@bp.route(route="drills/{id}", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
@bp.durable_client_input(client_name="client")
async def drill_http_status(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    async def show(_principal: str) -> func.HttpResponse:
        drill_id = _check_id(req.route_params.get("id", ""))
        status = await client.get_status(drill_id)
        if runtime_state(status) is None:
            return problems.response(404, "DrillNotFound", f"no drill {drill_id}")
        return json_response(200, {"id": drill_id, "runtimeStatus": runtime_state(status),
                                   "customStatus": shown(RunProgress, status.custom_status),
                                   "report": shown(DrillReport, status.output),
                                   "links": _links(req, drill_id)})

    return await answered(req, "drill", "status", show)


@bp.route(route="drills/{id}/cancel", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
@bp.durable_client_input(client_name="client")
async def drill_http_cancel(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    async def cancel(principal: str) -> func.HttpResponse:
        drill_id = _check_id(req.route_params.get("id", ""))
        status = await client.get_status(drill_id)
        state = runtime_state(status)
        if state is None:
            return problems.response(404, "DrillNotFound", f"no drill {drill_id}")
        if state not in ACTIVE:
            return problems.response(409, "DrillNotRunning", f"drill {drill_id} is {state}")
        await client.raise_event(drill_id, EVENT_CANCEL, {"by": principal})
        return json_response(202, {"id": drill_id, "cancelRequested": True, "links": _links(req, drill_id)})

    return await answered(req, "drill", "cancel", cancel)


@bp.route(route="drills/{id}/validation", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
@bp.durable_client_input(client_name="client")
async def drill_http_validation(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    async def validate(principal: str) -> func.HttpResponse:
        drill_id = _check_id(req.route_params.get("id", ""))
        check_json_content_type(dict(req.headers))
        answer = validation_from_http(req.get_body())
        status = await client.get_status(drill_id)
        state = runtime_state(status)
        if state is None:
            return problems.response(404, "DrillNotFound", f"no drill {drill_id}")
        custom = read_record(RunProgress, status.custom_status)
        if state not in ACTIVE or custom is None or custom.phase != "validation":
            return problems.response(409, "DrillNotAwaitingValidation",
                                     f"drill {drill_id} is not waiting for a validation result "
                                     f"({state}, phase {custom.phase if custom else None}): not yet, or already "
                                     "decided")
        resource_id = custom.resource_id
        # the event names the resource whose wait it answers: a second answer to the same wait is ignored by the
        # drill (its next resource's wait does not take it)
        await client.raise_event(drill_id, EVENT_VALIDATION, {**answer, "resourceId": resource_id, "by": principal})
        return json_response(202, {"id": drill_id, "resourceId": resource_id, "result": answer["result"],
                                   "links": _links(req, drill_id)})

    return await answered(req, "drill", "validation", validate)


@bp.timer_trigger(schedule="%STEWARD_DRILL_SCHEDULE%", arg_name="timer", run_on_startup=False)
@bp.durable_client_input(client_name="client")
async def drill_timer(timer: func.TimerRequest, client: df.DurableOrchestrationClient) -> None:
    if not bootstrap.rules().drills:
        LOG.info("drill timer: the rules have no drills section; nothing started")
        return
    drill_id = f"drill-scheduled-{datetime.now(UTC):%Y%m%d%H%M%S}"
    await client.start_new(ORCHESTRATOR, drill_id, {"resources": [], "subscriptions": [], "dryRun": False,
                                                    "trigger": "timer", "pastDue": bool(timer.past_due)})
    LOG.info("scheduled drill started", extra={"instance_id": drill_id})
