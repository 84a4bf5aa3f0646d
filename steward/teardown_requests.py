"""Pure validation of teardown requests arriving over HTTP: who is calling, what they ask, whether they may.

The HTTP trigger (``entrypoints/teardown_http.py``) is a doorway: it hands the headers and the body to these
functions and turns :class:`RequestRefused` into a JSON 4xx. Nothing here does I/O, so every rule is unit
tested without a host.

Identity comes from the platform's authentication (App Service "Easy Auth"): ``x-ms-client-principal-id``
(the caller's Entra object id) and ``x-ms-client-principal`` (base64 JSON with the claims). The function key
is checked by the host before our code runs; this check comes on top of it. A caller is allowed when its
object id is in ``STEWARD_TEARDOWN_ALLOWED_PRINCIPALS`` or one of its role claims is in
``STEWARD_TEARDOWN_ALLOWED_ROLES``. Both lists empty means nobody is allowed (fail closed).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from steward.domain.teardown import (
    InvalidTeardownInput,
    RequestSource,
    TeardownRequest,
    VaultRef,
)

PRINCIPAL_ID_HEADER: Final = "x-ms-client-principal-id"
PRINCIPAL_HEADER: Final = "x-ms-client-principal"
PRINCIPAL_NAME_HEADER: Final = "x-ms-client-principal-name"
MAX_BODY_BYTES: Final = 16 * 1024
MAX_PRINCIPAL_HEADER: Final = 16 * 1024
_OBJECT_ID_CLAIMS: Final = (
    "http://schemas.microsoft.com/identity/claims/objectidentifier",
    "oid",
)
_ROLE_CLAIMS: Final = ("roles", "http://schemas.microsoft.com/ws/2008/06/identity/claims/role")
_FINGERPRINT: Final = re.compile(r"(sha256:)?[0-9a-fA-F]{64}")
_GUIDISH: Final = re.compile(r"[0-9A-Za-z][0-9A-Za-z._@-]{0,127}")
_BODY_FIELDS: Final = frozenset({"vaultId", "dryRun", "approvedFingerprint", "reason"})


class RequestRefused(Exception):
    """A request we refuse, with the HTTP status, a stable code and a message for the caller."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message

    def to_body(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message}}


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


def _decode_principal(text: str) -> dict[str, Any]:
    if len(text) > MAX_PRINCIPAL_HEADER:
        raise RequestRefused(401, "InvalidPrincipal", f"the {PRINCIPAL_HEADER} header is too large")
    try:
        padded = text + "=" * (-len(text) % 4)
        decoded = json.loads(base64.b64decode(padded, validate=False))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise RequestRefused(401, "InvalidPrincipal", f"the {PRINCIPAL_HEADER} header is not base64 JSON") from None
    if not isinstance(decoded, dict):
        raise RequestRefused(401, "InvalidPrincipal", f"the {PRINCIPAL_HEADER} header is not a JSON object")
    return decoded


def caller_from_headers(headers: Mapping[str, str]) -> Caller:
    """The authenticated caller, or 401 when the platform did not authenticate anyone."""
    principal_id = _header(headers, PRINCIPAL_ID_HEADER)
    encoded = _header(headers, PRINCIPAL_HEADER)
    if not principal_id:
        raise RequestRefused(
            401,
            "Unauthenticated",
            f"no authenticated caller: the platform's {PRINCIPAL_ID_HEADER} header is missing "
            "(turn on App Service authentication)",
        )
    principal_id = principal_id.strip()
    if not _GUIDISH.fullmatch(principal_id):
        raise RequestRefused(401, "InvalidPrincipal", f"the {PRINCIPAL_ID_HEADER} header is not a principal id")
    roles: set[str] = set()
    if encoded:
        principal = _decode_principal(encoded)
        claims = principal.get("claims") or []
        if not isinstance(claims, list):
            raise RequestRefused(401, "InvalidPrincipal", "the principal's claims are not a list")
        role_type = str(principal.get("role_typ") or "roles")
        object_ids = set()
        for claim in claims:
            if not isinstance(claim, dict):
                continue
            typ, val = claim.get("typ"), claim.get("val")
            if not isinstance(typ, str) or not isinstance(val, str):
                continue
            if typ == role_type or typ in _ROLE_CLAIMS:
                roles.add(val.lower())
            if typ in _OBJECT_ID_CLAIMS:
                object_ids.add(val.lower())
        if object_ids and principal_id.lower() not in object_ids:
            raise RequestRefused(
                401, "InvalidPrincipal", "the principal id header does not match the principal's object id claim"
            )
    return Caller(principal_id.lower(), _header(headers, PRINCIPAL_NAME_HEADER), frozenset(roles))


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


def _json_object(body: bytes) -> dict[str, Any]:
    if len(body) > MAX_BODY_BYTES:
        raise RequestRefused(413, "BodyTooLarge", f"the request body is larger than {MAX_BODY_BYTES} bytes")
    if not body.strip():
        raise RequestRefused(400, "InvalidBody", "the request body is empty; send a JSON object")
    try:
        parsed = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise RequestRefused(400, "InvalidBody", "the request body is not valid JSON") from None
    if not isinstance(parsed, dict):
        raise RequestRefused(400, "InvalidBody", "the request body must be a JSON object")
    return parsed


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
    headers: Mapping[str, str],
    body: bytes,
    policy: TeardownAccessPolicy,
    *,
    now: datetime,
    correlation_id: str = "",
) -> TeardownRequest:
    """``POST /api/teardowns``: authenticate, authorise, validate the body -> a request, or RequestRefused."""
    caller = caller_from_headers(headers)
    authorize(caller, policy)
    record = _json_object(body)
    unknown = set(record) - _BODY_FIELDS
    if unknown:
        allowed = ", ".join(sorted(_BODY_FIELDS))
        raise RequestRefused(400, "UnknownField", f"unknown field(s) {', '.join(sorted(unknown))}; allowed: {allowed}")
    if "vaultId" not in record:
        raise RequestRefused(400, "MissingVaultId", "the body needs 'vaultId', the ARM id of the vault to tear down")
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


def approval_from_http(headers: Mapping[str, str], body: bytes, policy: TeardownAccessPolicy) -> Approval:
    """``POST /api/teardowns/{id}/approve`` with ``{"fingerprint": "sha256:..."}`` from an allowed caller."""
    caller = caller_from_headers(headers)
    authorize(caller, policy)
    record = _json_object(body)
    fingerprint = check_fingerprint(record.get("fingerprint"), "fingerprint")
    if fingerprint is None:
        raise RequestRefused(400, "MissingFingerprint", "the body needs 'fingerprint', the plan's fingerprint")
    return Approval(fingerprint, caller.principal_id)


def caller_action(headers: Mapping[str, str], policy: TeardownAccessPolicy) -> Caller:
    """Cancel / security approval: an allowed caller, nothing else needed."""
    caller = caller_from_headers(headers)
    authorize(caller, policy)
    return caller


_INSTANCE_ID: Final = re.compile(r"teardown-[a-z0-9._()-]{1,120}")


def check_instance_id(value: str) -> str:
    if not _INSTANCE_ID.fullmatch(value or ""):
        raise RequestRefused(400, "InvalidInstanceId", "not a teardown id (it starts with 'teardown-')")
    return value
