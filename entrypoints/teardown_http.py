"""HTTP routes of the vault teardown. Doorways: validate (``entrypoints.caller_checks``), start or signal
``teardown_vault``, answer JSON. Every route needs the function key (auth level FUNCTION) and an allowed
caller proven by an Entra ID access token (``Authorization: Bearer``, validated in the app; 401 with
``WWW-Authenticate: Bearer`` without a valid one, 403 for a caller who is not allowed). Errors are RFC 9457
problem details (``entrypoints.problems``: ``type``, ``title``, ``status``, ``detail``, ``code``) with a 4xx
status, never a stack trace.

=====================================  =====================================================================
``POST /api/teardowns``                ``{"vaultId", "dryRun"?: true, "approvedFingerprint"?}`` -> 202 +
                                       ``Location`` of the status route; a dry run plans only; a run without
                                       a fingerprint plans and waits for an approval
``GET  /api/teardowns/{id}``           status: runtime status, custom status (phase, step, done/total, last
                                       error, what is needed), the report when finished, links
``POST /api/teardowns/{id}/approve``   ``{"fingerprint"}``: approves the planned fingerprint (a waiting run
                                       gets the event; a finished plan starts the run) -> 202
``POST /api/teardowns/{id}/security-approval``  tells a parked saga that the Resource Guard grant exists
``POST /api/teardowns/{id}/cancel``    cancels; what the saga turned off is turned back on
``GET  /api/teardowns/{id}/report.html``  the report page (finished teardowns)
=====================================  =====================================================================

Every request leaves one audit line (logger ``steward.audit``, field ``event`` =
``steward.teardown.request``: who, when, what, decision, status), whatever its outcome. The POST routes are
metered per caller (``STEWARD_TEARDOWN_RATE_PER_MINUTE``, token bucket per instance): over it, 429 with
``Retry-After``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import azure.durable_functions as df
import azure.functions as func

from entrypoints import problems
from entrypoints.caller_checks import (
    CORRELATION_HEADER,
    Caller,
    CallerRateLimit,
    RequestRefused,
    SettingsMeter,
    approval_from_http,
    audit_record,
    authenticated_caller,
    caller_action,
    check_instance_id,
    check_json_content_type,
    request_correlation_id,
    teardown_request_from_http,
)
from entrypoints.routes import json_response, read_record, teardown_policy
from steward import bootstrap
from steward.domain.teardown import (
    EVENT_APPROVE,
    EVENT_CANCEL,
    EVENT_SECURITY_APPROVAL,
    RequestSource,
    TeardownOutcome,
    TeardownRequest,
    approval_refusal,
    fingerprints_match,
    instance_id_for,
)
from steward.domain.teardown.results import TeardownReport, TeardownShown
from steward.report.teardown import render_html

LOG = logging.getLogger("steward.entry")
AUDIT = logging.getLogger("steward.audit")
ORCHESTRATOR = "teardown_vault"
ACTIVE = frozenset({"Pending", "Running", "ContinuedAsNew"})

bp = df.Blueprint()


_METER = SettingsMeter(lambda settings: settings.teardown_rate_per_minute, "teardown requests")


def _rate_limit() -> CallerRateLimit:
    """The instance's meter of teardown requests (STEWARD_TEARDOWN_RATE_PER_MINUTE)."""
    return _METER(bootstrap.settings())


def _authenticate(req: func.HttpRequest, trail: _Trail) -> Caller:
    """The caller the request's access token proves (401/503 otherwise); the audit line names it."""
    caller = authenticated_caller(dict(req.headers), bootstrap.token_validator())
    trail.principal_id = caller.principal_id
    return caller


def _meter(caller: Caller) -> None:
    """Spend one of the caller's tokens (429 when it has none left)."""
    _rate_limit().take(caller.principal_id, time.monotonic())


class _Trail:
    """What one request asked and how it was answered, logged once as the audit line."""

    def __init__(self, req: func.HttpRequest, action: str) -> None:
        self.req = req
        self.action = action
        self.fields: dict[str, Any] = {}
        #: the verified caller, once its token validated (an unauthenticated request names nobody)
        self.principal_id: str | None = None
        #: the request's correlation id (:func:`_correlation`); the answer carries it as ``x-correlation-id``,
        #: and a teardown this request starts records it (the approve route answers with the run's)
        self.correlation_id = _correlation(req)

    def note(self, **fields: Any) -> None:
        self.fields.update(fields)

    def log(self, status: int, code: str | None = None) -> None:
        record = audit_record(
            action=self.action,
            at=datetime.now(UTC),
            principal_id=self.principal_id,
            status=status,
            code=code,
            correlation_id=self.correlation_id,
            **self.fields,
        )
        AUDIT.info("teardown %s %s (%s)", self.action, record["decision"], status, extra=record)


async def _audited(
    req: func.HttpRequest, action: str, answer: Callable[[_Trail], Awaitable[func.HttpResponse]]
) -> func.HttpResponse:
    """Run a route's body; refusals become problem details; every outcome (even a crash) leaves its audit
    line."""
    trail = _Trail(req, action)
    try:
        response = await answer(trail)
    except RequestRefused as refused:
        trail.log(refused.status, refused.code)
        return _correlated(problems.refused(refused), trail)
    except Exception:
        trail.log(500, "InternalError")
        raise
    _correlated(response, trail)
    trail.log(response.status_code, problems.code_of(response))
    return response


def _correlated(response: func.HttpResponse, trail: _Trail) -> func.HttpResponse:
    """The answer names the correlation id the app recorded (the one a started teardown's report shows)."""
    response.headers[CORRELATION_HEADER] = trail.correlation_id
    return response


def _base(req: func.HttpRequest) -> str:
    url = str(req.url).split("?", 1)[0].rstrip("/")
    marker = "/api/teardowns"
    return url[: url.index(marker) + len(marker)] if marker in url else url


def _links(req: func.HttpRequest, instance_id: str) -> dict[str, str]:
    base = f"{_base(req)}/{instance_id}"
    return {
        "status": base,
        "approve": f"{base}/approve",
        "securityApproval": f"{base}/security-approval",
        "cancel": f"{base}/cancel",
        "report": f"{base}/report.html",
    }


def _status_name(status: Any) -> str | None:
    if status is None:
        return None
    runtime = getattr(status, "runtime_status", None)
    if runtime is None:
        return None
    return str(getattr(runtime, "value", runtime))


async def _status(client: df.DurableOrchestrationClient, instance_id: str, *, show_input: bool = False) -> Any:
    # show_input=False leaves the query parameter out (the SDK's default); the approve route asks for the input
    # explicitly, since it reads the request (its requester) from it
    if show_input:
        status = await client.get_status(instance_id, show_input=True)
    else:
        status = await client.get_status(instance_id)
    if status is None or _status_name(status) is None:
        return None
    return status


def _correlation(req: func.HttpRequest) -> str:
    """The caller's ``x-correlation-id`` (else ``x-ms-client-request-id``), else a new one: a teardown's report
    never shows an empty correlation id, and it is the one the answer carries."""
    return request_correlation_id(dict(req.headers))


@bp.route(route="teardowns", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
@bp.durable_client_input(client_name="client")
async def teardown_start(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    """Plan (dry run) or run a teardown of one vault."""
    return await _audited(req, "start", lambda trail: _start(req, client, trail))


async def _start(req: func.HttpRequest, client: df.DurableOrchestrationClient, trail: _Trail) -> func.HttpResponse:
    caller = _authenticate(req, trail)
    _meter(caller)
    check_json_content_type(dict(req.headers))
    try:
        request = teardown_request_from_http(
            caller, req.get_body(), teardown_policy(), now=datetime.now(UTC), correlation_id=trail.correlation_id
        )
    except RequestRefused as refused:
        # ``error_code``: a field named ``code`` is redacted as a secret (steward.logs: Functions keys travel as code=)
        LOG.info("teardown request refused: %s", refused.message, extra={"error_code": refused.code})
        raise
    instance_id = instance_id_for(request)
    trail.note(vault_id=request.vault_id, instance_id=instance_id, dry_run=request.dry_run)
    existing = await _status(client, instance_id)
    started = not (existing is not None and _status_name(existing) in ACTIVE)
    if started:
        await client.start_new(ORCHESTRATOR, instance_id, request.to_record())
    LOG.info(
        "teardown %s by %s",
        "started" if started else "already running",
        request.requested_by,
        extra={"instance_id": instance_id, "vault_id": request.vault_id, "dry_run": request.dry_run},
    )
    links = _links(req, instance_id)
    body = {
        "id": instance_id,
        "started": started,
        "dryRun": request.dry_run,
        "vaultId": request.vault_id,
        "links": links,
    }
    return json_response(202, body, {"Location": links["status"], "Retry-After": "5"})


@bp.route(route="teardowns/{id}", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
@bp.durable_client_input(client_name="client")
async def teardown_status(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    return await _audited(req, "status", lambda trail: _show_status(req, client, trail))


async def _teardown_shown(
    req: func.HttpRequest, client: df.DurableOrchestrationClient, trail: _Trail
) -> tuple[str, Any] | func.HttpResponse:
    """The teardown a GET route names, once the caller may see it: its id and Durable status; the 404 answer when
    there is no such teardown."""
    caller_action(_authenticate(req, trail), teardown_policy())
    instance_id = check_instance_id(req.route_params.get("id", ""))
    trail.note(instance_id=instance_id)
    status = await _status(client, instance_id)
    if status is None:
        return problems.response(404, "TeardownNotFound", f"no teardown {instance_id}")
    return instance_id, status


async def _show_status(
    req: func.HttpRequest, client: df.DurableOrchestrationClient, trail: _Trail
) -> func.HttpResponse:
    found = await _teardown_shown(req, client, trail)
    if isinstance(found, func.HttpResponse):
        return found
    instance_id, status = found
    report = read_record(TeardownReport, status.output)
    custom = read_record(TeardownShown, status.custom_status)
    # the full plan once finished (in the report), its summary while running (in the custom status)
    plan = (report.plan if report else None) or (custom.plan if custom else None)
    body = {
        "id": instance_id,
        "runtimeStatus": _status_name(status),
        "customStatus": custom.to_record() if custom else None,
        "plan": plan,
        "createdTime": str(status.created_time) if status.created_time else None,
        "lastUpdatedTime": str(status.last_updated_time) if status.last_updated_time else None,
        "report": report.to_record() if report else None,
        "links": _links(req, instance_id),
    }
    return json_response(200, body)


@bp.route(route="teardowns/{id}/approve", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
@bp.durable_client_input(client_name="client")
async def teardown_approve(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    return await _audited(req, "approve", lambda trail: _approve(req, client, trail))


def _requested(status: Any) -> TeardownRequest | None:
    """The request an instance runs (its input: the request, or ``{"request", "saga"}`` after continue-as-new)."""
    record = status.input_ if isinstance(status.input_, dict) else {}
    if isinstance(record.get("request"), dict):
        record = record["request"]
    try:
        return TeardownRequest.from_record(record)
    except ValueError:
        return None


def _approval_checks(approval: Any, current: str | None, request: TeardownRequest | None) -> func.HttpResponse | None:
    """The approve route's pre-checks (the orchestrator enforces both again): the fingerprint must be the one
    the plan shows now (409, naming it), and with four eyes the approver must not be the requester (403).
    ``request`` names the requester to compare with (None: the approval confirms a custom-event request)."""
    if current and not fingerprints_match(approval.fingerprint, current):
        return problems.response(
            409,
            "FingerprintMismatch",
            f"fingerprint {approval.fingerprint} is not the current plan's; the current fingerprint is {current}: "
            "review that plan and approve it",
            currentFingerprint=current,
        )
    four_eyes = bootstrap.settings().teardown_four_eyes
    if request is not None and approval_refusal(request, approval.approved_by, four_eyes=four_eyes):
        return problems.response(
            403,
            "FourEyesRequired",
            f"four eyes: {approval.approved_by} requested this teardown and may not approve it too; another "
            "allowed principal must approve (STEWARD_TEARDOWN_FOUR_EYES)",
        )
    return None


async def _approve_waiting(
    req: func.HttpRequest, client: df.DurableOrchestrationClient, instance_id: str, status: Any, approval: Any
) -> func.HttpResponse:
    """Approve a running teardown: 409 unless it awaits an approval, the pre-checks against its own request
    (:func:`_approval_checks`), then the approval event."""
    custom = read_record(TeardownShown, status.custom_status)
    phase = custom.phase if custom else None
    if custom is None or phase != "awaiting-approval":
        return problems.response(
            409, "NotAwaitingApproval", f"the teardown is {phase or _status_name(status)}, not awaiting approval"
        )
    request = _requested(status)
    if request is not None and request.source is RequestSource.CUSTOM_EVENT:
        # a custom event's requester is unverified: the first approval confirms it (then its author counts
        # as the requester), see steward.domain.teardown.judge_approval
        confirmed = custom.confirmed_by
        request = replace(request, requested_by=str(confirmed)) if confirmed else None
    refused = _approval_checks(approval, custom.fingerprint, request)
    if refused is not None:
        return refused
    await client.raise_event(instance_id, EVENT_APPROVE, approval.to_record())
    return json_response(
        202, {"id": instance_id, "approved": approval.fingerprint, "links": _links(req, instance_id)}
    )


async def _approve(req: func.HttpRequest, client: df.DurableOrchestrationClient, trail: _Trail) -> func.HttpResponse:
    caller = _authenticate(req, trail)
    _meter(caller)
    check_json_content_type(dict(req.headers))
    approval = approval_from_http(caller, req.get_body(), teardown_policy())
    instance_id = check_instance_id(req.route_params.get("id", ""))
    trail.note(instance_id=instance_id)
    status = await _status(client, instance_id, show_input=True)
    if status is None:
        return problems.response(404, "TeardownNotFound", f"no teardown {instance_id}")
    runtime = _status_name(status)
    if runtime in ACTIVE:
        return await _approve_waiting(req, client, instance_id, status, approval)
    report = read_record(TeardownReport, status.output)
    if report is None or report.outcome not in (TeardownOutcome.PLANNED, TeardownOutcome.REPLANNED):
        ended = report.outcome.value if report else runtime
        return problems.response(409, "NothingToApprove", f"the teardown ended {ended}")
    previous = _requested(status)
    if previous is None:
        return problems.response(409, "NothingToApprove", "the teardown's request cannot be read")
    if report.confirmed_by:  # a custom-event request confirmed by a verified principal: the requester
        previous = replace(previous, requested_by=report.confirmed_by)
    refused = _approval_checks(approval, report.fingerprint, None)  # the plan's fingerprint (409)
    if refused is not None:
        return refused
    run = TeardownRequest(
        vault_id=previous.vault_id,
        requested_by=previous.requested_by,
        source=RequestSource.HTTP,
        dry_run=False,
        approved_fingerprint=approval.fingerprint,
        correlation_id=previous.correlation_id or trail.correlation_id,
        opt_in_tag=None,
        requested_at=datetime.now(UTC),
        approved_by=approval.approved_by,
    )
    run_id = instance_id_for(run)
    trail.correlation_id = run.correlation_id  # one id from the plan's request to the run's report
    trail.note(vault_id=run.vault_id, instance_id=run_id, dry_run=False)
    existing = await _status(client, run_id, show_input=True)
    running = existing is not None and _status_name(existing) in ACTIVE
    shown = read_record(TeardownShown, existing.custom_status) if running and existing is not None else None
    if shown is not None and shown.phase == "awaiting-approval":
        # the run of this fingerprint already exists and waits (its requester carried the fingerprint, so four
        # eyes made it wait for another principal): the approval is that run's, checked against its requester
        return await _approve_waiting(req, client, run_id, existing, approval)
    refused = _approval_checks(approval, None, previous)  # four eyes: not the plan's requester (403)
    if refused is not None:
        return refused
    if not running:
        await client.start_new(ORCHESTRATOR, run_id, run.to_record())
    links = _links(req, run_id)
    return json_response(
        202, {"id": run_id, "approved": approval.fingerprint, "links": links}, {"Location": links["status"]}
    )


async def _signal(
    req: func.HttpRequest, client: df.DurableOrchestrationClient, event: str, trail: _Trail
) -> func.HttpResponse:
    caller = _authenticate(req, trail)
    _meter(caller)
    caller_action(caller, teardown_policy())
    instance_id = check_instance_id(req.route_params.get("id", ""))
    trail.note(instance_id=instance_id)
    status = await _status(client, instance_id)
    if status is None:
        return problems.response(404, "TeardownNotFound", f"no teardown {instance_id}")
    if _status_name(status) not in ACTIVE:
        return problems.response(409, "TeardownNotRunning", "the teardown has already ended")
    await client.raise_event(instance_id, event, {"by": caller.principal_id, "grantedBy": caller.principal_id})
    LOG.info("teardown %s raised by %s", event, caller.principal_id, extra={"instance_id": instance_id})
    return json_response(202, {"id": instance_id, "event": event, "links": _links(req, instance_id)})


@bp.route(route="teardowns/{id}/cancel", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
@bp.durable_client_input(client_name="client")
async def teardown_cancel(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    return await _audited(req, "cancel", lambda trail: _signal(req, client, EVENT_CANCEL, trail))


@bp.route(route="teardowns/{id}/security-approval", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
@bp.durable_client_input(client_name="client")
async def teardown_security_approval(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    return await _audited(
        req, "security-approval", lambda trail: _signal(req, client, EVENT_SECURITY_APPROVAL, trail)
    )


@bp.route(route="teardowns/{id}/report.html", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
@bp.durable_client_input(client_name="client")
async def teardown_report_page(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    return await _audited(req, "report", lambda trail: _report_page(req, client, trail))


async def _report_page(
    req: func.HttpRequest, client: df.DurableOrchestrationClient, trail: _Trail
) -> func.HttpResponse:
    found = await _teardown_shown(req, client, trail)
    if isinstance(found, func.HttpResponse):
        return found
    _, status = found
    report = read_record(TeardownReport, status.output)
    if report is None:
        return problems.response(409, "TeardownNotFinished", "the report exists once it ends")
    return func.HttpResponse(
        render_html(report.to_record()),
        status_code=200,
        mimetype="text/html",
        headers={"Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'"},
    )
