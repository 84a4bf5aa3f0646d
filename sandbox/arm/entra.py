"""A local Microsoft Entra ID for OUR app's callers: RS256 access tokens, an OpenID configuration and a JWKS.

The ARM tokens of ``sandbox/arm/tokens.py`` (HS256, a secret shared by nobody) stay for ARM. This issuer stands
in for Entra ID issuing v2.0 access tokens to the Backup Steward API (the app registration), so the app
validates real signatures against published keys, exactly as it does against Entra ID:

- ``GET {authority}/{tenant}/v2.0/.well-known/openid-configuration`` -> ``issuer``, ``jwks_uri``...
  (Entra's shape: https://login.microsoftonline.com/{tenant}/v2.0/.well-known/openid-configuration, see
  MicrosoftDocs/entra-docs ``docs/identity-platform/v2-protocols-oidc.md``);
- ``GET {authority}/{tenant}/discovery/v2.0/keys`` -> the JWK set (``kty`` RSA, ``use`` sig, ``kid``, ``n``,
  ``e``), every key still published, the newest signing;
- tokens carry the v2.0 access-token claims the app relies on (MicrosoftDocs/entra-docs
  ``docs/identity-platform/access-token-claims-reference.md``): ``iss`` = ``{authority}/{tid}/v2.0``, ``aud`` =
  the API's client id (v2.0 tokens always carry the client id), ``tid``, ``oid``, ``roles``, ``iat``/``nbf``/
  ``exp``, ``ver`` ``2.0``, header ``alg`` RS256 and ``kid``; ``scp``, the delegated permissions the caller
  consented to ("only included for user tokens", the same reference), by default ``user_impersonation`` (the
  scope the README's registration exposes and pre-authorises for the Azure CLI, so what
  ``az account get-access-token --resource <app id URI>`` gets); ``scope=None`` mints an app-only token
  (client credentials: ``roles`` only, and only the app roles assigned to the calling application).

Key rollover: Entra ID rolls its signing keys and publishes the next key in the JWK set (MicrosoftDocs/entra-docs
``docs/identity-platform/signing-key-rollover.md``); :meth:`EntraIssuer.rotate` starts signing with a new key
and keeps the old one published unless told to retire it. Signing uses ``cryptography`` directly (PKCS#1 v1.5,
SHA-256 = JWS RS256, RFC 7518 section 3.3), not the library the app validates with.
"""

from __future__ import annotations

import base64
import json
import secrets
import threading
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

#: The sandbox's app registration of Backup Steward (client id and application id URI).
DEFAULT_APP_CLIENT_ID = "5a9d0000-0000-4000-8000-0000000b5a1d"
DEFAULT_APP_ID_URI = "api://backup-steward-sandbox"
#: The delegated scope the app registration exposes (README, "Register the app"): the ``scp`` of user tokens.
DELEGATED_SCOPE = "user_impersonation"
#: the path of the authority below the sandbox's endpoint (``{endpoint}/sandbox/entra``)
AUTHORITY_PATH = "/sandbox/entra"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _int_b64(number: int) -> str:
    return b64url(number.to_bytes((number.bit_length() + 7) // 8, "big"))


def sign_rs256(private_key: rsa.RSAPrivateKey, header: Mapping[str, Any], claims: Mapping[str, Any]) -> str:
    """A compact JWS: base64url(header).base64url(claims).base64url(RSASSA-PKCS1-v1_5 SHA-256 signature)."""
    signing_input = (
        b64url(json.dumps(dict(header), separators=(",", ":")).encode())
        + "."
        + b64url(json.dumps(dict(claims), separators=(",", ":")).encode())
    )
    signature = private_key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
    return signing_input + "." + b64url(signature)


@dataclass(frozen=True)
class SigningKey:
    kid: str
    private_key: rsa.RSAPrivateKey

    @classmethod
    def new(cls) -> SigningKey:
        # Entra's kids are base64url thumbprints of about 27 characters
        return cls(b64url(secrets.token_bytes(20)), rsa.generate_private_key(public_exponent=65537, key_size=2048))

    def jwk(self) -> dict[str, str]:
        numbers = self.private_key.public_key().public_numbers()
        return {"kty": "RSA", "use": "sig", "kid": self.kid, "x5t": self.kid, "n": _int_b64(numbers.n),
                "e": _int_b64(numbers.e)}


class EntraIssuer:
    """Signs access tokens for the app registration and answers the discovery documents."""

    def __init__(self, authority: str, *, client_id: str = DEFAULT_APP_CLIENT_ID, app_id_uri: str = DEFAULT_APP_ID_URI,
                 lifetime_seconds: int = 3600) -> None:
        self.authority = authority.rstrip("/")
        self.client_id = client_id
        self.app_id_uri = app_id_uri
        self.lifetime_seconds = lifetime_seconds
        self._lock = threading.Lock()
        self._keys: list[SigningKey] = [SigningKey.new()]
        #: how many times each document was served (tests count JWKS fetches)
        self.served = {"openid-configuration": 0, "keys": 0}

    # -- keys -----------------------------------------------------------------------------------
    @property
    def signing_key(self) -> SigningKey:
        with self._lock:
            return self._keys[-1]

    def rotate(self, *, retire_previous: bool = False) -> str:
        """Start signing with a new key; the previous ones stay published unless ``retire_previous``."""
        key = SigningKey.new()
        with self._lock:
            self._keys = [key] if retire_previous else [*self._keys, key]
        return key.kid

    def jwks(self) -> dict[str, Any]:
        """The published JWK set (what the keys route serves; counted in ``served``)."""
        with self._lock:
            self.served["keys"] += 1
            return {"keys": [k.jwk() for k in self._keys]}

    def published_kids(self) -> list[str]:
        with self._lock:
            return [k.kid for k in self._keys]

    # -- documents ------------------------------------------------------------------------------
    def issuer(self, tenant_id: str) -> str:
        return f"{self.authority}/{tenant_id}/v2.0"

    def openid_configuration(self, tenant_id: str) -> dict[str, Any]:
        with self._lock:
            self.served["openid-configuration"] += 1
        base = f"{self.authority}/{tenant_id}"
        return {
            "issuer": self.issuer(tenant_id),
            "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
            "token_endpoint": f"{base}/oauth2/v2.0/token",
            "jwks_uri": f"{base}/discovery/v2.0/keys",
            "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
            "tenant_region_scope": "EU",
        }

    # -- tokens ---------------------------------------------------------------------------------
    def claims(self, principal_id: str, tenant_id: str, *, roles: Iterable[str] = (), audience: str | None = None,
               now: float | None = None, lifetime_seconds: int | None = None, name: str | None = None,
               scope: str | None = DELEGATED_SCOPE) -> dict[str, Any]:
        """The payload of a v2.0 access token for ``principal_id``: delegated (``scp`` = ``scope``) unless
        ``scope`` is None (app-only: ``roles`` alone)."""
        issued = int(time.time() if now is None else now)
        claims: dict[str, Any] = {
            "aud": audience or self.client_id,
            "iss": self.issuer(tenant_id),
            "iat": issued,
            "nbf": issued,
            "exp": issued + (self.lifetime_seconds if lifetime_seconds is None else lifetime_seconds),
            "azp": "04b07795-8ddb-461a-bbee-02f9e1bf7b46",  # Azure CLI's client id, as `az account get-access-token`
            "azpacr": "0",
            "oid": principal_id,
            "sub": b64url(uuid.UUID(principal_id).bytes) if _is_guid(principal_id) else principal_id,
            "tid": tenant_id,
            "uti": b64url(secrets.token_bytes(16)),
            "ver": "2.0",
        }
        if scope:
            claims["scp"] = scope
        roles = [str(r) for r in roles]
        if roles:
            claims["roles"] = roles
        if name is not None:
            claims["name"] = name
            claims["preferred_username"] = name
        return claims

    def mint(self, principal_id: str, tenant_id: str, **kwargs: Any) -> str:
        """A signed access token (see :meth:`claims` for the keyword arguments)."""
        key = self.signing_key
        return sign_rs256(key.private_key, {"typ": "JWT", "alg": "RS256", "kid": key.kid},
                          self.claims(principal_id, tenant_id, **kwargs))


def _is_guid(text: str) -> bool:
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True
