"""Doorways of the estate audit: the timer that starts ``audit_estate``, an HTTP route to start one on demand,
and the routes that serve the latest report from the report store.

=====================================  =====================================================================
timer ``%STEWARD_AUDIT_SCHEDULE%``     starts ``audit_estate`` with instance id ``audit-<UTC second>``
``POST /api/audits``                   starts one now -> 202 with the instance id and status link
``GET  /api/audits/latest``            the latest run's JSON (schema ``steward/report/schema``), 404 if none
``GET  /api/audits/latest.html``       the latest run's HTML report
=====================================  =====================================================================
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any, Final

import azure.durable_functions as df
import azure.functions as func

from activities.audit import report_store
from steward.report.html import CSP
from steward.report.store import CONTENT_TYPES, LATEST_HTML, LATEST_JSON

LOG = logging.getLogger("steward.entry")
ORCHESTRATOR: Final = "audit_estate"
ACTIVE: Final = frozenset({"Pending", "Running", "ContinuedAsNew"})

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


@bp.route(route="audits", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
@bp.durable_client_input(client_name="client")
async def audit_start(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    subscriptions: list[str] = []
    if req.get_body():
        try:
            body = req.get_json()
        except ValueError:
            return _json(400, {"error": {"code": "InvalidJson", "message": "the body is not JSON"}})
        raw = body.get("subscriptions") if isinstance(body, dict) else None
        if raw is not None and not (isinstance(raw, list) and all(isinstance(s, str) for s in raw)):
            return _json(400, {"error": {"code": "InvalidRequest", "message": "'subscriptions' must be a list of ids"}})
        subscriptions = list(raw or [])
    instance_id = _instance_id(datetime.now(UTC))
    started = await _start(client, instance_id, {"trigger": "http", "subscriptions": subscriptions})
    return _json(202 if started else 409, {"id": instance_id, "started": started})


def _stored(name: str) -> func.HttpResponse:
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
    return _stored(LATEST_JSON)


@bp.route(route="audits/latest.html", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
def audit_latest_html(req: func.HttpRequest) -> func.HttpResponse:
    return _stored(LATEST_HTML)
