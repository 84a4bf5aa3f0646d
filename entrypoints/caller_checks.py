"""The HTTP routes' caller checks, pure: who is calling, what they ask, whether they may (teardown requests
above all; the audit and drill routes authenticate and meter their callers with the same functions).

The HTTP triggers (``entrypoints/teardown_http.py``, ``audit_timer.py``, ``drill_http.py``) are doorways: they
hand the headers and the body to these functions and turn :class:`RequestRefused` into a JSON 4xx. Nothing
here does I/O, so every rule is unit tested without a host.

Identity comes from an Entra ID access token (``Authorization: Bearer ...``) that
``steward.auth.tokens.BearerTokenValidator`` validates (signature against the tenant's published keys,
issuer, audience, lifetime, tenant); :func:`authenticated_caller` turns it into a :class:`Caller` or a 401 with
``WWW-Authenticate: Bearer``. Platform headers (App Service "Easy Auth" ``x-ms-client-principal*``) are never
read: a function-key holder can send any header, and App Service Authentication is not supported on the Flex
Consumption plan this app runs on (README, "Caller identity"). The function key is checked by the host before
our code runs; the token comes on top of it. A caller is allowed when its object id is in
``STEWARD_TEARDOWN_ALLOWED_PRINCIPALS`` or one of its ``roles`` is in ``STEWARD_TEARDOWN_ALLOWED_ROLES``. Both
lists empty means nobody is allowed (fail closed).

Each caller's requests are metered by :class:`CallerRateLimit` (a token bucket per principal, in memory per
instance; ``STEWARD_TEARDOWN_RATE_PER_MINUTE``): over the rate, 429 with ``Retry-After``. Every request, whatever
its decision, is described by :func:`audit_record` - who, when, what, decision - which the doorway logs as one
structured line named :data:`AUDIT_EVENT`.
"""

from __future__ import annotations

import json
import logging
import math
import re
import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from steward.auth.tokens import AuthorityUnavailable, BearerTokenValidator, Unauthenticated
from steward.domain.errors import StewardError
from steward.domain.teardown import (
    InvalidTeardownInput,
    RequestSource,
    TeardownRequest,
    VaultRef,
)
from steward.settings import Settings

AUTHORIZATION_HEADER: Final = "authorization"
#: ``realm`` of the ``WWW-Authenticate: Bearer`` challenge (RFC 6750 section 3).
REALM: Final = "backup-steward"
LOG = logging.getLogger("steward.entry")
MAX_BODY_BYTES: Final = 16 * 1024
MAX_REASON_CHARS: Final = 1024
_FINGERPRINT: Final = re.compile(r"(sha256:)?[0-9a-fA-F]{64}")
_BODY_FIELDS: Final = frozenset({"vaultId", "dryRun", "approvedFingerprint", "reason"})
#: The stable name of the audit line every teardown request leaves (``event`` field of the JSON log line).
AUDIT_EVENT: Final = "steward.teardown.request"
#: Bound on every caller-supplied text copied into an audit record.
MAX_AUDIT_TEXT: Final = 256
#: Bound on the callers one instance meters at a time (the least recently seen are forgotten first).
MAX_METERED_CALLERS: Final = 10_000


class RequestRefused(StewardError):
    """A request we refuse, with the HTTP status, a stable code and a message for the caller.

    ``retry_after`` (seconds) is set on 429/503 answers and becomes the ``Retry-After`` header;
    ``www_authenticate`` is the challenge of a 401 (``WWW-Authenticate``).
    """

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        retry_after: int | None = None,
        www_authenticate: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.retry_after = retry_after
        self.www_authenticate = www_authenticate

    def headers(self) -> dict[str, str]:
        headers = {} if self.retry_after is None else {"Retry-After": str(self.retry_after)}
        if self.www_authenticate is not None:
            headers["WWW-Authenticate"] = self.www_authenticate
        return headers


@dataclass(frozen=True)
class Caller:
    principal_id: str
    name: str | None = None
    roles: frozenset[str] = frozenset()


@dataclass(frozen=True)
class TeardownAccessPolicy:
    allowed_principals: frozenset[str]
    allowed_roles: frozenset[str]
    allowed_subscriptions: frozenset[str]

    @classmethod
    def of(
        cls, principals: Iterable[str], roles: Iterable[str], subscriptions: Iterable[str]
    ) -> TeardownAccessPolicy:
        return cls(
            frozenset(p.strip().lower() for p in principals if p.strip()),
            frozenset(r.strip().lower() for r in roles if r.strip()),
            frozenset(s.strip().lower() for s in subscriptions if s.strip()),
        )


def _header(headers: Mapping[str, str], name: str) -> str | None:
    for key, value in headers.items():
        if key.lower() == name:
            return value
    return None


#: The header that carries a request's correlation id both ways (our rule, no Azure behaviour: docs/azure-facts.md
#: "Correlation ids").
CORRELATION_HEADER: Final = "x-correlation-id"


def request_correlation_id(headers: Mapping[str, str]) -> str:
    """The caller's ``x-correlation-id`` (or ``x-ms-client-request-id``, the Azure SDKs' request id), else a new
    one: what the app records for the instance a request starts and names in its answer, so one run carries one id
    from the request to its report or outcome."""
    given = (_header(headers, CORRELATION_HEADER) or _header(headers, "x-ms-client-request-id") or "").strip()
    text = "".join(c for c in given[:128] if c.isprintable())
    return text or uuid.uuid4().hex


def _challenge(error: str | None, description: str) -> str:
    """RFC 6750 section 3: no error code when the request had no token at all."""
    if error is None:
        return f'Bearer realm="{REALM}"'
    safe = "".join(c for c in description if c.isprintable() and c not in '"\\')[:200]
    return f'Bearer realm="{REALM}", error="{error}", error_description="{safe}"'


def authenticated_caller(headers: Mapping[str, str], validator: BearerTokenValidator | None) -> Caller:
    """The caller a valid Entra ID access token proves, or 401 (``WWW-Authenticate: Bearer``); 503 when the
    authority's keys cannot be fetched. Only the token counts: platform headers are ignored."""
    if validator is None:
        raise RequestRefused(
            401,
            "Unauthenticated",
            "no caller can authenticate: the app has no token validation configured "
            "(set STEWARD_AUTH_TENANTS and STEWARD_AUTH_AUDIENCES)",
            www_authenticate=_challenge(None, ""),
        )
    try:
        identity = validator.validate_authorization(_header(headers, AUTHORIZATION_HEADER))
    except Unauthenticated as refused:
        code = "Unauthenticated" if refused.error is None else "InvalidToken"
        raise RequestRefused(
            401, code, refused.message, www_authenticate=_challenge(refused.error, refused.message)
        ) from None
    except AuthorityUnavailable as unavailable:
        # the caller's token was never checked: the cause (the configured authority URL, a proxy's or an address's
        # network error) is for the operator's log, not for the answer
        LOG.warning("the token authority cannot be reached: %s", unavailable)
        raise RequestRefused(
            503,
            "AuthorityUnavailable",
            "the caller's token cannot be checked now: the token authority (Microsoft Entra ID) cannot be reached; "
            "try again after Retry-After",
            retry_after=30,
        ) from None
    return Caller(identity.principal_id, identity.name, identity.roles)


def authorize(caller: Caller, policy: TeardownAccessPolicy) -> None:
    """403 unless the caller is an allowed principal or holds an allowed role."""
    if caller.principal_id in policy.allowed_principals:
        return
    if caller.roles & policy.allowed_roles:
        return
    raise RequestRefused(
        403,
        "CallerNotAllowed",
        f"principal {caller.principal_id} may not request teardowns: it is not in "
        "STEWARD_TEARDOWN_ALLOWED_PRINCIPALS and holds none of STEWARD_TEARDOWN_ALLOWED_ROLES",
    )


def json_object(
    body: bytes, max_bytes: int, fields: frozenset[str], *, example: str = "", subject: str = "the body",
    known: str = "allowed",
) -> dict[str, Any]:
    """A route's JSON object body, checked in this order: 413 ``BodyTooLarge`` above ``max_bytes``, 400
    ``InvalidJson`` when it is not JSON (nested deeper than the decoder goes too), 400 ``InvalidRequest`` when it is
    not an object, 400 ``UnknownField`` naming a field outside ``fields`` (:func:`unknown_fields`). ``example``
    (what to send) ends the messages of the two middle refusals; ``subject`` and ``known`` are the words the route's
    messages use."""
    if len(body or b"") > max_bytes:
        raise RequestRefused(413, "BodyTooLarge", f"{subject} is larger than {max_bytes} bytes")
    try:
        data = json.loads(body or b"")
    except (ValueError, RecursionError):  # RecursionError: nested deeper than the decoder goes
        raise RequestRefused(400, "InvalidJson", "the body is not JSON" + (f"; send {example}" if example else "")
                             ) from None
    if not isinstance(data, dict):
        raise RequestRefused(400, "InvalidRequest",
                             "the body must be a JSON object" + (f": {example}" if example else ""))
    unknown_fields(data, fields, known=known)
    return data


def unknown_fields(record: Mapping[str, Any], fields: frozenset[str], *, known: str = "allowed") -> None:
    """400 ``UnknownField`` when ``record`` has a field outside ``fields``: the message names at most five of them
    (each bounded: a caller's text), how many more there are, and the fields the route knows."""
    unknown = sorted(str(name) for name in set(record) - fields)
    if not unknown:
        return
    shown = ", ".join(repr(_bounded(name[:40])) for name in unknown[:5])
    more = f" and {len(unknown) - 5} more" if len(unknown) > 5 else ""
    raise RequestRefused(400, "UnknownField", f"unknown field(s) {shown}{more}; {known}: {', '.join(sorted(fields))}")


def check_scope(request: Mapping[str, Any], managed: frozenset[str] | tuple[str, ...]) -> None:
    """403 for a resource or subscription of a drill or protection request outside STEWARD_SUBSCRIPTIONS, as the
    teardown does; with none managed ("empty: none") every request is refused: it would restore, create or
    protect resources."""
    if not managed:
        raise RequestRefused(403, "OutsideSubscriptions",
                             "STEWARD_SUBSCRIPTIONS is empty: this app may act on no subscription, so it drills none")
    allowed = {s.lower() for s in managed}
    outside = sorted({s for s in request["subscriptions"] if s not in allowed} |
                     {r.split("/")[2].lower() for r in request["resources"] if r.split("/")[2].lower() not in allowed})
    if outside:
        named = ", ".join(outside[:5]) + (f" and {len(outside) - 5} more" if len(outside) > 5 else "")
        raise RequestRefused(403, "OutsideSubscriptions", f"subscription(s) {named} are not in STEWARD_SUBSCRIPTIONS")


def _json_object(body: bytes) -> dict[str, Any]:
    if len(body) > MAX_BODY_BYTES:
        raise RequestRefused(413, "BodyTooLarge", f"the request body is larger than {MAX_BODY_BYTES} bytes")
    if not body.strip():
        raise RequestRefused(400, "InvalidBody", "the request body is empty; send a JSON object")
    try:
        parsed = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):  # RecursionError: nested deeper than the decoder goes
        raise RequestRefused(400, "InvalidBody", "the request body is not valid JSON") from None
    if not isinstance(parsed, dict):
        raise RequestRefused(400, "InvalidBody", "the request body must be a JSON object")
    return parsed


def check_json_content_type(headers: Mapping[str, str]) -> None:
    """415 when the request names a media type other than JSON (no Content-Type at all is taken as JSON)."""
    given = (_header(headers, "content-type") or "").split(";", 1)[0].strip().lower()
    if given and given != "application/json" and not given.endswith("+json"):
        raise RequestRefused(
            415, "UnsupportedMediaType", f"send the body as application/json, not {_bounded(given[:64])}"
        )


def check_fingerprint(value: object, field: str = "approvedFingerprint") -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not _FINGERPRINT.fullmatch(value.strip()):
        raise RequestRefused(
            400, "InvalidFingerprint", f"{field} must be the plan's fingerprint: 'sha256:' and 64 hex digits"
        )
    text = value.strip().lower()
    return text if text.startswith("sha256:") else "sha256:" + text


def check_vault(vault_id: object, policy: TeardownAccessPolicy) -> VaultRef:
    try:
        vault = VaultRef.parse(vault_id)
    except InvalidTeardownInput as error:
        raise RequestRefused(400, "InvalidVaultId", str(error)) from None
    if vault.subscription_id.lower() not in policy.allowed_subscriptions:
        raise RequestRefused(
            403,
            "SubscriptionNotManaged",
            f"subscription {vault.subscription_id} is not in STEWARD_SUBSCRIPTIONS; this app may not act on it",
        )
    return vault


def teardown_request_from_http(
    caller: Caller,
    body: bytes,
    policy: TeardownAccessPolicy,
    *,
    now: datetime,
    correlation_id: str = "",
) -> TeardownRequest:
    """``POST /api/teardowns`` from an authenticated ``caller`` (:func:`authenticated_caller`): authorise,
    validate the body -> a request, or RequestRefused."""
    authorize(caller, policy)
    record = _json_object(body)
    unknown_fields(record, _BODY_FIELDS)
    if "vaultId" not in record:
        raise RequestRefused(400, "MissingVaultId", "the body needs 'vaultId', the ARM id of the vault to tear down")
    reason = record.get("reason")
    if reason is not None and not (isinstance(reason, str) and len(reason) <= MAX_REASON_CHARS):
        raise RequestRefused(400, "InvalidReason", f"'reason' must be a text of at most {MAX_REASON_CHARS} characters")
    vault = check_vault(record["vaultId"], policy)
    dry_run = record.get("dryRun", True)
    if not isinstance(dry_run, bool):
        raise RequestRefused(400, "InvalidDryRun", "'dryRun' must be true or false")
    fingerprint = check_fingerprint(record.get("approvedFingerprint"))
    if dry_run and fingerprint:
        raise RequestRefused(
            400, "ConflictingFields", "a dry run cannot carry an approved fingerprint; send dryRun=false to run"
        )
    return TeardownRequest(
        vault_id=vault.id,
        requested_by=caller.principal_id,
        source=RequestSource.HTTP,
        dry_run=dry_run,
        approved_fingerprint=fingerprint,
        correlation_id=correlation_id,
        opt_in_tag=None,
        requested_at=now,
    )


@dataclass(frozen=True)
class Approval:
    fingerprint: str
    approved_by: str

    def to_record(self) -> dict[str, Any]:
        return {"fingerprint": self.fingerprint, "approvedBy": self.approved_by}


def approval_from_http(caller: Caller, body: bytes, policy: TeardownAccessPolicy) -> Approval:
    """``POST /api/teardowns/{id}/approve`` with ``{"fingerprint": "sha256:..."}`` from an authenticated caller
    who is allowed."""
    authorize(caller, policy)
    record = _json_object(body)
    fingerprint = check_fingerprint(record.get("fingerprint"), "fingerprint")
    if fingerprint is None:
        raise RequestRefused(400, "MissingFingerprint", "the body needs 'fingerprint', the plan's fingerprint")
    return Approval(fingerprint, caller.principal_id)


def caller_action(caller: Caller, policy: TeardownAccessPolicy) -> Caller:
    """Cancel / security approval / status: an authenticated caller who is allowed, nothing else needed."""
    authorize(caller, policy)
    return caller


_INSTANCE_ID: Final = re.compile(r"teardown-[a-z0-9._()-]{1,120}")


def check_instance_id(value: str) -> str:
    if not _INSTANCE_ID.fullmatch(value or ""):
        raise RequestRefused(400, "InvalidInstanceId", "not a teardown id (it starts with 'teardown-')")
    return value


# ---- per-caller rate limit ----------------------------------------------------------------------------


class CallerRateLimit:
    """A token bucket per caller: ``rate_per_minute`` tokens refill evenly over a minute, up to ``burst``.

    In memory and per instance (a scaled-out app allows ``instances x rate``). Time is given by the caller
    (a monotonic clock in seconds), so the meter is deterministic under test. At most ``max_callers``
    buckets are kept; the least recently used is forgotten first (it would have refilled anyway).
    """

    def __init__(
        self,
        rate_per_minute: int,
        *,
        burst: int | None = None,
        max_callers: int = MAX_METERED_CALLERS,
        what: str = "teardown requests",
    ) -> None:
        if rate_per_minute < 1:
            raise ValueError("rate_per_minute must be at least 1")
        self.rate_per_minute = rate_per_minute
        self.what = what
        self.burst = float(burst if burst is not None else rate_per_minute)
        self.max_callers = max_callers
        self._per_second = rate_per_minute / 60.0
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._lock = threading.Lock()

    def take(self, caller: str, now: float) -> None:
        """Spend one token of ``caller``'s bucket, or :class:`RequestRefused` 429 with the seconds to wait."""
        with self._lock:
            tokens, last = self._buckets.pop(caller, (self.burst, now))
            tokens = min(self.burst, tokens + max(0.0, now - last) * self._per_second)
            if tokens >= 1.0:
                self._buckets[caller] = (tokens - 1.0, now)
                self._trim()
                return
            self._buckets[caller] = (tokens, now)
            self._trim()
        wait = max(1, math.ceil((1.0 - tokens) / self._per_second))
        raise RequestRefused(
            429,
            "TooManyRequests",
            f"more than {self.rate_per_minute} {self.what} a minute from this caller; retry in {wait} s",
            retry_after=wait,
        )

    def _trim(self) -> None:
        while len(self._buckets) > self.max_callers:
            self._buckets.popitem(last=False)


# ---- audit --------------------------------------------------------------------------------------------


class SettingsMeter:
    """One route's :class:`CallerRateLimit`, living as long as the settings it was built from: a composition root
    reset (a new start of the app, a test's new stack) starts every caller with a full bucket again. ``rate``
    reads the route's rate from the settings."""

    def __init__(self, rate: Callable[[Settings], int], what: str) -> None:
        self._rate, self._what = rate, what
        self._lock = threading.Lock()
        self._built: tuple[Settings, CallerRateLimit] | None = None

    def __call__(self, current: Settings) -> CallerRateLimit:
        with self._lock:
            if self._built is None or self._built[0] is not current:
                self._built = (current, CallerRateLimit(self._rate(current), what=self._what))
            return self._built[1]


def _bounded(value: object) -> str | None:
    if value is None:
        return None
    text = "".join(c if c.isprintable() else "?" for c in str(value))
    return text if len(text) <= MAX_AUDIT_TEXT else text[: MAX_AUDIT_TEXT - 3] + "..."


def audit_record(
    *,
    action: str,
    at: datetime,
    principal_id: str | None,
    status: int,
    code: str | None = None,
    vault_id: object = None,
    instance_id: object = None,
    dry_run: bool | None = None,
    correlation_id: str | None = None,
) -> dict[str, Any]:
    """The audit line of one teardown request: who, when, what, and the decision (from the HTTP status).

    Every caller-supplied text is bounded and stripped of control characters; nothing secret is taken.
    """
    if status == 429:
        decision = "throttled"
    elif status < 400:
        decision = "accepted"
    else:
        decision = "refused"
    return {
        "event": AUDIT_EVENT,
        "action": action,
        "at": at.isoformat(),
        "principal_id": principal_id,
        "decision": decision,
        "status": status,
        "error_code": _bounded(code),
        "vault_id": _bounded(vault_id),
        "instance_id": _bounded(instance_id),
        "dry_run": dry_run,
        "correlation_id": _bounded(correlation_id) or None,
    }
