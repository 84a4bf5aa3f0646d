"""Doorways of the estate audit: the timer that starts ``audit_estate``, an HTTP route to start one on demand,
and the routes that serve the latest report from the report store.

=====================================  =====================================================================
timer ``%STEWARD_AUDIT_SCHEDULE%``     starts ``audit_estate`` with instance id ``audit-<UTC second>``
``POST /api/audits``                   starts one now (``{"subscriptions"?: [managed GUIDs]}``) -> 202, 409 if running
``GET  /api/audits/latest``            the latest run's JSON (schema ``steward/report/schema``), 404 if none
``GET  /api/audits/latest.html``       the latest run's HTML report
=====================================  =====================================================================

The HTTP routes need the function key and, when ``STEWARD_AUDIT_ALLOWED_PRINCIPALS`` is set, a caller the
platform authenticated who is in it (401 / 403 otherwise): a report describes the whole estate.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any, Final

import azure.durable_functions as df
import azure.functions as func

from activities.audit import report_store
from steward import bootstrap
from steward.domain.ids import is_subscription_guid
from steward.report.html import CSP
from steward.report.store import CONTENT_TYPES, LATEST_HTML, LATEST_JSON
from steward.teardown.requests import RequestRefused, caller_from_headers

LOG = logging.getLogger("steward.entry")
ORCHESTRATOR: Final = "audit_estate"
ACTIVE: Final = frozenset({"Pending", "Running", "ContinuedAsNew"})
MAX_BODY_BYTES: Final = 16 * 1024
MAX_SUBSCRIPTIONS: Final = 100

bp = df.Blueprint()


def _instance_id(moment: datetime) -> str:
    """A timer delivered twice (or a retried start) in the same second collapses onto one instance."""
    return "audit-" + moment.astimezone(UTC).strftime("%Y%m%dT%H%M%S")


async def _start(client: df.DurableOrchestrationClient, instance_id: str, payload: dict[str, Any]) -> bool:
    status = await client.get_status(instance_id)
    if status is not None and status.runtime_status is not None and status.runtime_status.value in ACTIVE:
        return False
    await client.start_new(ORCHESTRATOR, instance_id, payload)
    return True


@bp.timer_trigger(schedule="%STEWARD_AUDIT_SCHEDULE%", arg_name="timer", run_on_startup=False)
@bp.durable_client_input(client_name="client")
async def audit_timer(timer: func.TimerRequest, client: df.DurableOrchestrationClient) -> None:
    instance_id = _instance_id(datetime.now(UTC))
    started = await _start(client, instance_id, {"trigger": "timer", "pastDue": bool(timer.past_due)})
    LOG.info("audit %s", "started" if started else "already running", extra={"instance_id": instance_id})


def _json(status: int, body: Any) -> func.HttpResponse:
    return func.HttpResponse(json.dumps(body), status_code=status, mimetype="application/json")


class _Refused(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def _authorize(req: func.HttpRequest) -> str | None:
    """With STEWARD_AUDIT_ALLOWED_PRINCIPALS set, the caller the platform authenticated must be one of them (401
    without one, 403 for another); the function key alone is enough otherwise. The caller's id, if any."""
    allowed = bootstrap.settings().audit_allowed_principals
    if not allowed:
        return None
    try:
        caller = caller_from_headers(dict(req.headers))
    except RequestRefused as refused:
        raise _Refused(refused.status, refused.code, refused.message) from None
    if caller.principal_id not in allowed:
        raise _Refused(403, "CallerNotAllowed",
                       f"principal {caller.principal_id} may not use the audit routes: it is not in "
                       "STEWARD_AUDIT_ALLOWED_PRINCIPALS")
    return caller.principal_id


def _refusal(refused: _Refused) -> func.HttpResponse:
    return _json(refused.status, {"error": {"code": refused.code, "message": refused.message}})


def _requested_subscriptions(body: bytes) -> list[str]:
    """The optional ``{"subscriptions": [guid, ...]}`` body: GUIDs the app manages, or a refusal."""
    if not body.strip():
        return []
    if len(body) > MAX_BODY_BYTES:
        raise _Refused(413, "BodyTooLarge", f"the request body is larger than {MAX_BODY_BYTES} bytes")
    try:
        parsed = json.loads(body)
    except (ValueError, RecursionError):
        raise _Refused(400, "InvalidJson", "the body is not JSON") from None
    if not isinstance(parsed, dict):
        raise _Refused(400, "InvalidRequest", "the body must be a JSON object")
    if "subscriptions" not in parsed:
        return []
    raw = parsed["subscriptions"]
    if not (isinstance(raw, list) and len(raw) <= MAX_SUBSCRIPTIONS and all(isinstance(s, str) for s in raw)):
        raise _Refused(
            400, "InvalidRequest", f"'subscriptions' must be a list of at most {MAX_SUBSCRIPTIONS} subscription ids"
        )
    if not all(is_subscription_guid(s) for s in raw):
        raise _Refused(400, "InvalidSubscription", "'subscriptions' must hold subscription ids (GUIDs)")
    wanted = list(dict.fromkeys(s.lower() for s in raw))
    managed = bootstrap.settings().subscriptions
    outside = [s for s in wanted if managed and s not in managed]
    if outside:
        raise _Refused(
            403,
            "SubscriptionNotManaged",
            f"{len(outside)} subscription(s) are not in STEWARD_SUBSCRIPTIONS; this app audits only those",
        )
    return wanted


@bp.route(route="audits", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
@bp.durable_client_input(client_name="client")
async def audit_start(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    try:
        principal = _authorize(req)
        body = req.get_body() or b""
        media = (req.headers.get("content-type") or "").split(";", 1)[0].strip().lower()
        if body.strip() and media and media != "application/json" and not media.endswith("+json"):
            raise _Refused(415, "UnsupportedMediaType", "send the body as application/json")
        subscriptions = _requested_subscriptions(body)
    except _Refused as refused:
        return _refusal(refused)
    instance_id = _instance_id(datetime.now(UTC))
    started = await _start(client, instance_id, {"trigger": "http", "subscriptions": subscriptions})
    LOG.info("audit %s over HTTP", "started" if started else "already running",
             extra={"instance_id": instance_id, "principal_id": principal})
    return _json(202 if started else 409, {"id": instance_id, "started": started})


def _stored(req: func.HttpRequest, name: str) -> func.HttpResponse:
    try:
        _authorize(req)
    except _Refused as refused:
        return _refusal(refused)
    data = report_store().get(name)
    if data is None:
        return _json(404, {"error": {"code": "NoAuditYet", "message": "no audit report has been stored yet"}})
    suffix = name[name.rindex(".") :]
    headers = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}
    if suffix == ".html":
        headers["Content-Security-Policy"] = CSP
    return func.HttpResponse(data, status_code=200, headers={**headers, "Content-Type": CONTENT_TYPES[suffix]})


@bp.route(route="audits/latest", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
def audit_latest(req: func.HttpRequest) -> func.HttpResponse:
    return _stored(req, LATEST_JSON)


@bp.route(route="audits/latest.html", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
def audit_latest_html(req: func.HttpRequest) -> func.HttpResponse:
    return _stored(req, LATEST_HTML)
