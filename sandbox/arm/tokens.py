"""Sandbox access tokens: JWTs signed (HS256) with a secret made at start, naming principal and tenant.

Only tokens minted by this sandbox instance verify. The claims follow Entra ID's names (``oid``, ``tid``,
``aud``, ``iss``, ``appid``...) so the ``claims`` of the events the sandbox raises look like Azure's.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import uuid
from dataclasses import dataclass
from typing import Any

from sandbox.arm.http import Principal

OID_CLAIM = "http://schemas.microsoft.com/identity/claims/objectidentifier"
TID_CLAIM = "http://schemas.microsoft.com/identity/claims/tenantid"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class InvalidToken(Exception):
    """The bearer token is missing, malformed, forged or expired (the message says which)."""


@dataclass
class TokenIssuer:
    audience: str
    lifetime_seconds: int = 3600
    secret: bytes = b""

    def __post_init__(self) -> None:
        if not self.secret:
            self.secret = secrets.token_bytes(32)

    def mint(self, principal_id: str, tenant_id: str, now: int, scopes: list[str] | None = None) -> tuple[str, int]:
        expires = now + self.lifetime_seconds
        claims: dict[str, Any] = {
            "aud": self.audience,
            "iss": f"https://sts.windows.net/{tenant_id}/",
            "iat": now,
            "nbf": now,
            "exp": expires,
            "appid": principal_id,
            "appidacr": "2",
            "oid": principal_id,
            "sub": principal_id,
            "tid": tenant_id,
            "uti": uuid.uuid4().hex,
            "ver": "1.0",
            "scp": " ".join(scopes or []),
        }
        header = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
        payload = _b64(json.dumps(claims, separators=(",", ":")).encode())
        signature = _b64(hmac.new(self.secret, f"{header}.{payload}".encode(), hashlib.sha256).digest())
        return f"{header}.{payload}.{signature}", expires

    def verify(self, authorization: str | None, now: int) -> Principal:
        if not authorization:
            raise InvalidToken("The request does not have a valid Bearer token in the Authorization header.")
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise InvalidToken("The authentication scheme of the Authorization header must be 'Bearer'.")
        try:
            header, payload, signature = token.strip().split(".")
            expected = _b64(hmac.new(self.secret, f"{header}.{payload}".encode(), hashlib.sha256).digest())
            if not hmac.compare_digest(expected, signature):
                raise InvalidToken("The access token signature is invalid (not issued by this sandbox).")
            claims = json.loads(_unb64(payload))
        except (ValueError, TypeError) as exc:
            raise InvalidToken("The access token is malformed.") from exc
        if int(claims.get("exp", 0)) < now:
            raise InvalidToken("The access token has expired.")
        return Principal(object_id=str(claims["oid"]), tenant_id=str(claims["tid"]), claims=claims)


def event_claims(principal: Principal, client_ip: str) -> dict[str, Any]:
    """The ``data.claims`` of an ARM event for ``principal`` (Entra ID claim names, as Event Grid shows them)."""
    c = principal.claims
    return {
        "aud": str(c.get("aud", "")),
        "iss": str(c.get("iss", "")),
        "iat": str(c.get("iat", "")),
        "nbf": str(c.get("nbf", "")),
        "exp": str(c.get("exp", "")),
        "appid": str(c.get("appid", principal.object_id)),
        "appidacr": "2",
        "ipaddr": client_ip,
        OID_CLAIM: principal.object_id,
        "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/nameidentifier": principal.object_id,
        TID_CLAIM: principal.tenant_id,
        "uti": str(c.get("uti", "")),
        "ver": "1.0",
    }
