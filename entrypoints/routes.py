"""What every HTTP route shares around the pure checks of ``entrypoints/caller_checks.py``: the JSON answer, a
Durable instance's runtime state, the allowed caller under the teardown policy (the teardown, drill and protect
routes), an instance's output or custom status read through its record, and the drill and protect routes' answer
with its audit line.

The routes (``teardown_http.py``, ``drill_http.py``, ``protect_http.py``, ``audit_timer.py``) use these instead of
each keeping a copy.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import azure.functions as func

from entrypoints import problems
from entrypoints.caller_checks import (
    CORRELATION_HEADER,
    RequestRefused,
    TeardownAccessPolicy,
    authenticated_caller,
    caller_action,
)
from steward import bootstrap
from steward.domain.errors import InvalidValue
from steward.domain.records import Record

AUDIT = logging.getLogger("steward.audit")
LOG = logging.getLogger("steward.routes")

RecordT = TypeVar("RecordT", bound=Record)


def json_response(status: int, body: Any, headers: dict[str, str] | None = None) -> func.HttpResponse:
    return func.HttpResponse(
        json.dumps(body, default=str), status_code=status, mimetype="application/json", headers=headers or {}
    )


def runtime_state(status: Any) -> str | None:
    """A Durable instance's runtime status (``Running``, ``Completed`` ...); None when there is no such instance."""
    runtime = getattr(status, "runtime_status", None) if status is not None else None
    return None if runtime is None else str(getattr(runtime, "value", runtime))


def read_record(kind: type[RecordT], value: Any) -> RecordT | None:
    """An instance's output or custom status (``value``, as the task hub holds it) read through its record, the
    one codec's: None while there is none (not an object); a record it cannot read is logged and taken as none."""
    if not isinstance(value, dict):
        return None
    try:
        return kind.from_record(value)
    except InvalidValue as error:
        LOG.warning("an instance's %s could not be read: %s", kind.__name__, error)
        return None


def shown(kind: type[Record], value: Any) -> dict[str, Any] | None:
    """``value`` as the JSON answer shows it: read through ``kind`` and written again (the record's keys; an older
    record's snake_case keys come out camelCase), None when there is none."""
    record = read_record(kind, value)
    return None if record is None else record.to_record()


def teardown_policy() -> TeardownAccessPolicy:
    """Who may use the routes that act on vaults (STEWARD_TEARDOWN_ALLOWED_PRINCIPALS / _ROLES) and where
    (STEWARD_SUBSCRIPTIONS), from the current settings."""
    current = bootstrap.settings()
    return TeardownAccessPolicy.of(
        current.teardown_allowed_principals, current.teardown_allowed_roles, current.subscriptions
    )


def allowed_caller(req: func.HttpRequest) -> str:
    """The allowed caller's object id under the teardown policy (401 / 403 / 503 raised as RequestRefused)."""
    caller = caller_action(authenticated_caller(dict(req.headers), bootstrap.token_validator()), teardown_policy())
    return caller.principal_id


async def answered(
    req: func.HttpRequest,
    route: str,
    action: str,
    body: Callable[[str], Awaitable[func.HttpResponse]],
    correlation_id: str | None = None,
) -> func.HttpResponse:
    """The allowed caller (:func:`allowed_caller`), then ``body``; a refusal becomes its problem answer. One audit
    line per request (``steward.<route>.request``: who, what, the answer). With ``correlation_id`` every answer
    names it (``x-correlation-id``)."""
    principal: str | None = None
    try:
        principal = allowed_caller(req)
        response = await body(principal)
    except RequestRefused as refused:
        AUDIT.info(
            "%s %s refused (%s)", route, action, refused.status,
            extra={"event": f"steward.{route}.request", "action": action, "principal_id": principal,
                   "status": refused.status, "error_code": refused.code},
        )
        response = problems.refused(refused)
    else:
        AUDIT.info(
            "%s %s (%s)", route, action, response.status_code,
            extra={"event": f"steward.{route}.request", "action": action, "principal_id": principal,
                   "status": response.status_code, "error_code": problems.code_of(response)},
        )
    if correlation_id is not None:
        response.headers[CORRELATION_HEADER] = correlation_id
    return response
