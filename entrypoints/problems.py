"""The one error shape of every HTTP route: RFC 9457 problem details, ``application/problem+json``.

Every refusal and every error a route answers is built here, so no route can invent its own shape::

    {"type": "tag:backup-steward,2026:problem/FingerprintMismatch",
     "title": "The fingerprint is not the current plan's",
     "status": 409,
     "detail": "fingerprint sha256:... is not the current plan's; the current fingerprint is sha256:...",
     "code": "FingerprintMismatch",
     "currentFingerprint": "sha256:..."}

* ``type`` (RFC 9457 section 3.1.1) identifies the problem type; one per ``code``. It is a ``tag:`` URI (RFC 4151):
  an identifier that is stable and never dereferenced, since this app has no public documentation site (RFC 9457
  section 3.1.1 only *encourages* a dereferenceable type). README "Errors" lists every code.
* ``title`` (3.1.3) is the problem type's short summary: the same for every occurrence of a ``code``.
* ``status`` (3.1.2) repeats the HTTP status; ``detail`` (3.1.4) says what happened this time and what to do.
* ``code`` is our extension member (3.2): the stable, machine-readable name callers and tests branch on.
* Other extension members carry what a caller needs to act (``currentFingerprint``; the running audit's ``id``).

The route answers with ``Content-Type: application/problem+json`` (RFC 9457 section 3), never a stack trace.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any, Final, Protocol

import azure.functions as func

MEDIA_TYPE: Final = "application/problem+json"
TYPE_PREFIX: Final = "tag:backup-steward,2026:problem/"
#: RFC 9457 section 3.1 names these; an extension member may not replace them
MEMBERS: Final = frozenset({"type", "title", "status", "detail", "instance", "code"})
MAX_DETAIL: Final = 1024

#: each problem type's title (RFC 9457 section 3.1.3: "SHOULD NOT change from occurrence to occurrence")
TITLES: Final[Mapping[str, str]] = {
    # the request itself
    "InvalidBody": "The request body is not a usable JSON object",
    "InvalidJson": "The request body is not JSON",
    "InvalidRequest": "The request is malformed",
    "UnknownField": "The request body has a field this route does not know",
    "ConflictingFields": "The request body's fields contradict each other",
    "InvalidDryRun": "dryRun must be true or false",
    "InvalidReason": "The reason is not a short text",
    "InvalidVaultId": "The vault id is not a vault's ARM id",
    "MissingVaultId": "The request names no vault",
    "MissingFingerprint": "The approval names no fingerprint",
    "InvalidFingerprint": "The fingerprint is not a plan fingerprint",
    "InvalidInstanceId": "The id is not an instance id of this route",
    "InvalidResourceId": "A resource id is not an ARM id this route accepts",
    "UnsupportedResourceType": "The resource is not of a type Backup Steward protects",
    "InvalidResources": "The resources are not a list of ids",
    "InvalidSubscription": "A subscription is not a subscription id",
    "InvalidSubscriptions": "The subscriptions are not a list of subscription ids",
    "BodyTooLarge": "The request body is too large",
    "UnsupportedMediaType": "The request body is not sent as JSON",
    # the caller
    "Unauthenticated": "No valid access token",
    "InvalidToken": "The access token is not valid",
    "AuthorityUnavailable": "The token authority cannot be reached",
    "CallerNotAllowed": "The caller may not use this route",
    "FourEyesRequired": "Another principal must approve",
    "TooManyRequests": "Too many requests from this caller",
    # the target
    "SubscriptionNotManaged": "The subscription is not managed by this app",
    "OutsideSubscriptions": "The request reaches outside the managed subscriptions",
    "TeardownNotFound": "No such teardown",
    "TeardownNotRunning": "The teardown has ended",
    "TeardownNotFinished": "The teardown has not finished",
    "NotAwaitingApproval": "The teardown is not awaiting approval",
    "NothingToApprove": "There is no plan to approve",
    "FingerprintMismatch": "The fingerprint is not the current plan's",
    "DrillNotFound": "No such drill",
    "DrillNotAwaitingValidation": "The drill is not waiting for a validation result",
    "InvalidValidationResult": "The validation result is not pass or fail",
    "ProtectionNotFound": "No such protection",
    "DrillNotRunning": "The drill has ended",
    "AuditAlreadyRunning": "An audit of this scope is already running",
    "NoAuditYet": "No audit report stored yet",
    # the app
    "ContractMissing": "The API description is not available",
}


class Refusal(Protocol):
    """What a refusal carries (``RequestRefused`` and the audit routes' refusals)."""

    status: int
    code: str
    message: str

    def headers(self) -> dict[str, str]: ...


def title_of(code: str, status: int) -> str:
    """The problem type's title; an unlisted code falls back to the HTTP reason phrase."""
    if code in TITLES:
        return TITLES[code]
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def body(status: int, code: str, detail: str, **extensions: Any) -> dict[str, Any]:
    """The problem details object (``type``, ``title``, ``status``, ``detail``, ``code``, then extensions)."""
    clashing = MEMBERS & set(extensions)
    if clashing:
        raise ValueError(f"extension members may not replace {sorted(clashing)}")
    return {
        "type": TYPE_PREFIX + code,
        "title": title_of(code, status),
        "status": status,
        "detail": detail[:MAX_DETAIL],
        "code": code,
        **extensions,
    }


def response(
    status: int, code: str, detail: str, *, headers: Mapping[str, str] | None = None, **extensions: Any
) -> func.HttpResponse:
    """An ``application/problem+json`` answer."""
    if status < 400:
        raise ValueError(f"a problem is an error: status {status}")
    return func.HttpResponse(
        json.dumps(body(status, code, detail, **extensions), default=str),
        status_code=status,
        mimetype=MEDIA_TYPE,
        headers={**(headers or {}), "Content-Type": MEDIA_TYPE},
    )


def refused(refusal: Refusal, **extensions: Any) -> func.HttpResponse:
    """The answer to a refusal: its status, code and message, with its headers (``Retry-After``,
    ``WWW-Authenticate``)."""
    return response(refusal.status, refusal.code, refusal.message, headers=refusal.headers(), **extensions)


def code_of(answer: func.HttpResponse) -> str | None:
    """The ``code`` of a problem answer (None for any other answer): what the audit lines record."""
    if answer.status_code < 400:
        return None
    try:
        parsed = json.loads(answer.get_body() or b"{}")
    except ValueError:
        return None
    code = parsed.get("code") if isinstance(parsed, dict) else None
    return code if isinstance(code, str) else None
