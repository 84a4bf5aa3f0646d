"""Doorways of the estate audit: the timer that starts ``audit_estate``, an HTTP route to start one on demand,
and the routes that serve the latest report from the report store.

=====================================  =====================================================================
timer ``%STEWARD_AUDIT_SCHEDULE%``     starts ``audit_estate`` as ``audit-all``; skips (logs) while it runs
``POST /api/audits``                   starts one now (``{"subscriptions"?: [managed GUIDs]}``) -> 202; 409
                                       naming the running audit of the same scope; 429 over the rate
``GET  /api/audits/latest``            the latest run's JSON (schema ``steward/report/schema``), 404 if none
``GET  /api/audits/latest.html``       the latest run's HTML report
=====================================  =====================================================================

The HTTP routes need the function key and a caller proven by an Entra ID access token (``Authorization:
Bearer``, validated in the app) who is in ``STEWARD_AUDIT_ALLOWED_PRINCIPALS`` or, when that is empty, allowed to
request teardowns (``STEWARD_TEARDOWN_ALLOWED_PRINCIPALS`` / ``_ROLES``): 401 with ``WWW-Authenticate: Bearer`` /
403 otherwise. A report describes the whole estate; the function key alone opens nothing.

One audit at a time per scope (issue 14): the scope is the set of subscriptions asked for, or "all" (the timer,
a request that names none, and one that names every managed subscription). Each scope has a deterministic
instance id (:func:`instance_id_for`), and a start first asks Durable for that instance's status: while it
is not Completed, Failed or Terminated nothing new starts. This is Microsoft's singleton pattern ("Singleton
orchestrators in Durable Functions", learn.microsoft.com/azure/azure-functions/durable/durable-functions-singletons),
including its caveat: two starts racing between the check and the start may both answer 202, but only one
orchestration runs, because they share the instance id.

``POST /api/audits`` is metered per caller (``STEWARD_AUDIT_RATE_PER_MINUTE``, the teardown routes' token
bucket, per instance): over it, 429 with ``Retry-After``. The caller is the verified principal (a principal
header or a forwarded address is whatever the caller sends, and buys nothing). The reads are not metered.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Sequence
from typing import Any, Final

import azure.durable_functions as df
import azure.functions as func

from entrypoints import problems
from entrypoints.caller_checks import (
    CallerRateLimit,
    RequestRefused,
    SettingsMeter,
    authenticated_caller,
    json_object,
)
from entrypoints.reconcile_timer import teardown_snapshot
from entrypoints.routes import json_response, runtime_state, shown
from steward import bootstrap
from steward.domain.ids import is_subscription_guid
from steward.domain.run_status import RunProgress
from steward.report.html import CSP
from steward.report.store import CONTENT_TYPES, LATEST_HTML, LATEST_JSON

LOG = logging.getLogger("steward.entry")
ORCHESTRATOR: Final = "audit_estate"
#: Runtime states after which a scope's audit may start again (the singleton pattern's "stopped running").
ENDED: Final = frozenset({"Completed", "Failed", "Terminated", "Canceled"})
#: The instance id of the audit of the whole configured estate (the timer's, and a request naming nothing).
ALL_SCOPE_ID: Final = "audit-all"
#: The meter's key for callers without a verified identity (no STEWARD_AUDIT_ALLOWED_PRINCIPALS).
UNIDENTIFIED_CALLER: Final = "function-key"
MAX_BODY_BYTES: Final = 16 * 1024
MAX_SUBSCRIPTIONS: Final = 100
#: The fields a ``POST /api/audits`` body may carry; any other is refused (a misspelt ``subscription`` used to
#: be ignored, and the whole estate audited).
BODY_FIELDS: Final = frozenset({"subscriptions"})
#: How many unknown fields / unmanaged subscriptions a refusal names (the Error schema bounds messages).
NAMED_AT_MOST: Final = 5

bp = df.Blueprint()


def instance_id_for(subscriptions: Sequence[str]) -> str:
    """The one instance id of an audit scope: ``audit-all`` without subscriptions, else ``audit-`` and 16 hex
    digits of the SHA-256 of the sorted, lower-cased set (the order and case a caller sends do not matter)."""
    wanted = sorted({s.strip().lower() for s in subscriptions})
    if not wanted:
        return ALL_SCOPE_ID
    return "audit-" + hashlib.sha256(",".join(wanted).encode()).hexdigest()[:16]


async def _start(
    client: df.DurableOrchestrationClient, instance_id: str, payload: dict[str, Any]
) -> df.DurableOrchestrationStatus | None:
    """Start the scope's audit unless it is still running: None when started, else the running one's status."""
    status = await client.get_status(instance_id)
    if status is not None and runtime_state(status) not in (None, *ENDED):  # no such instance: no runtime status
        return status
    # the running teardowns, seen before the audit reads any vault: the audit restores what a lost one left weak
    await client.start_new(ORCHESTRATOR, instance_id, {**payload, "teardowns": await teardown_snapshot(client)})
    return None


@bp.timer_trigger(schedule="%STEWARD_AUDIT_SCHEDULE%", arg_name="timer", run_on_startup=False)
@bp.durable_client_input(client_name="client")
async def audit_timer(timer: func.TimerRequest, client: df.DurableOrchestrationClient) -> None:
    instance_id = instance_id_for(())
    running = await _start(client, instance_id, {"trigger": "timer", "pastDue": bool(timer.past_due)})
    if running is None:
        LOG.info("audit started", extra={"instance_id": instance_id})
        return
    LOG.warning(
        "scheduled audit skipped: the previous audit of the estate is still %s", runtime_state(running),
        extra={"instance_id": instance_id},
    )


def _iso(value: Any) -> str | None:
    if value is None:
        return None
    return value.isoformat() if hasattr(value, "isoformat") else str(value)


def _authorize(req: func.HttpRequest) -> str:
    """The caller a valid access token proves (401 without one): one of STEWARD_AUDIT_ALLOWED_PRINCIPALS, or, when
    that is empty, a principal allowed to request teardowns (STEWARD_TEARDOWN_ALLOWED_PRINCIPALS / _ROLES), else
    403. The function key alone never opens a report of the estate (issue 14: the key is a second factor, not the
    only one). The caller's id."""
    settings = bootstrap.settings()
    caller = authenticated_caller(dict(req.headers), bootstrap.token_validator())
    if settings.audit_allowed_principals:
        allowed, setting = caller.principal_id in settings.audit_allowed_principals, "STEWARD_AUDIT_ALLOWED_PRINCIPALS"
    else:
        allowed = caller.principal_id in settings.teardown_allowed_principals or bool(
            caller.roles & settings.teardown_allowed_roles
        )
        setting = "STEWARD_AUDIT_ALLOWED_PRINCIPALS (unset: the teardown principals and roles)"
    if not allowed:
        raise RequestRefused(403, "CallerNotAllowed",
                       f"principal {caller.principal_id} may not use the audit routes: it is not in {setting}")
    return caller.principal_id


_METER = SettingsMeter(lambda settings: settings.audit_rate_per_minute, "audit starts")


def _rate_limit() -> CallerRateLimit:
    """The instance's meter of audit starts (STEWARD_AUDIT_RATE_PER_MINUTE)."""
    return _METER(bootstrap.settings())


def _meter(principal: str) -> None:
    """Spend one of the verified caller's tokens (429 when none is left)."""
    key = f"principal:{principal}" if principal else UNIDENTIFIED_CALLER
    _rate_limit().take(key, time.monotonic())


def _named(items: Sequence[str]) -> str:
    """At most NAMED_AT_MOST of ``items``, and how many more there are."""
    more = len(items) - NAMED_AT_MOST
    return ", ".join(items[:NAMED_AT_MOST]) + (f" and {more} more" if more > 0 else "")


def _requested_subscriptions(body: bytes) -> list[str]:
    """The optional ``{"subscriptions": [guid, ...]}`` body: GUIDs the app manages, or a refusal."""
    if not body.strip():
        return []
    parsed = json_object(body, MAX_BODY_BYTES, BODY_FIELDS, subject="the request body", known="known")
    if "subscriptions" not in parsed:
        return []
    raw = parsed["subscriptions"]
    if not (isinstance(raw, list) and len(raw) <= MAX_SUBSCRIPTIONS and all(isinstance(s, str) for s in raw)):
        raise RequestRefused(
            400, "InvalidRequest", f"'subscriptions' must be a list of at most {MAX_SUBSCRIPTIONS} subscription ids"
        )
    if not all(is_subscription_guid(s) for s in raw):
        raise RequestRefused(400, "InvalidSubscription", "'subscriptions' must hold subscription ids (GUIDs)")
    wanted = list(dict.fromkeys(s.lower() for s in raw))
    managed = bootstrap.settings().subscriptions
    # "empty: none" (README settings): with no managed subscription every requested one is outside, as the
    # teardown and the drills refuse then - an audit's remediation writes protections in what it audits
    outside = [s for s in wanted if s not in managed]
    if outside:
        raise RequestRefused(
            403,
            "SubscriptionNotManaged",
            f"subscription(s) {_named(outside)} are not in STEWARD_SUBSCRIPTIONS; this app audits only those",
        )
    if managed and set(wanted) == set(managed):
        return []  # every managed subscription is the whole estate: the ``audit-all`` scope, not a second one
    return wanted


@bp.route(route="audits", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
@bp.durable_client_input(client_name="client")
async def audit_start(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    try:
        principal = _authorize(req)
        _meter(principal)
        body = req.get_body() or b""
        media = (req.headers.get("content-type") or "").split(";", 1)[0].strip().lower()
        if body.strip() and media and media != "application/json" and not media.endswith("+json"):
            raise RequestRefused(415, "UnsupportedMediaType", "send the body as application/json")
        subscriptions = _requested_subscriptions(body)
    except RequestRefused as refused:
        return problems.refused(refused)
    instance_id = instance_id_for(subscriptions)
    running = await _start(client, instance_id, {"trigger": "http", "subscriptions": subscriptions})
    LOG.info("audit %s over HTTP", "started" if running is None else "refused: already running",
             extra={"instance_id": instance_id, "principal_id": principal})
    if running is None:
        return json_response(202, {"id": instance_id, "started": True})
    scope = "the whole estate" if instance_id == ALL_SCOPE_ID else f"these {len(subscriptions)} subscription(s)"
    return problems.response(
        409,
        "AuditAlreadyRunning",
        f"an audit of {scope} is already running as {instance_id}; one audit at a time per scope: retry when it has "
        "ended",
        id=instance_id,
        started=False,
        runtimeStatus=runtime_state(running),
        createdTime=_iso(running.created_time),
        customStatus=shown(RunProgress, running.custom_status),
    )


def _stored(req: func.HttpRequest, name: str) -> func.HttpResponse:
    try:
        _authorize(req)
    except RequestRefused as refused:
        return problems.refused(refused)
    data = bootstrap.report_store().get(name)
    if data is None:
        return problems.response(404, "NoAuditYet", "no audit report has been stored yet")
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
