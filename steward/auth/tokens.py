"""Who is calling: an Entra ID access token (``Authorization: Bearer ...``) validated in the app.

The HTTP routes that change or reveal the estate take the caller's identity from a token this module validates,
and from nothing else: App Service Authentication ("Easy Auth") headers are not read (see README, "Caller
identity"). Validation follows Microsoft's rules for a protected web API (MicrosoftDocs/entra-docs
``docs/identity-platform/access-tokens.md`` "Validate tokens", ``access-token-claims-reference.md``):

- the signature, RS256 only (``alg`` pinned: ``none`` and HS256 are refused before any key is looked up),
  against the tenant's published keys: ``{authority}/{tenant}/v2.0/.well-known/openid-configuration`` ->
  ``jwks_uri`` -> the JWK set, cached (``PyJWKClient``: the set for an hour; a token whose ``kid`` is not in
  the cached set makes it fetch the set again, at most once per cool-down, so a rotated key is picked up and a
  stream of made-up kids cannot hammer the authority);
- ``iss`` equal to the tenant's issuer from that document (v2.0 tokens: ``.../{tid}/v2.0``), ``tid`` in the
  allowed tenants, ``aud`` one of the configured audiences (the app registration's client id; its
  application id URI is accepted too), ``exp``/``nbf`` with a small leeway, all of them required;
- the identity is ``oid`` (the object id, immutable across apps), the roles ``roles`` (app roles assigned to
  the user or granted to the calling application);
- the token must grant a permission of this API: a delegated scope (``scp``, user tokens) or an app role
  (``roles``, app-only tokens). A signed token for our client id without either is an ID token of a sign-in to
  the app registration, or the app-only token of any application in the tenant holding none of our roles; a web
  API verifies scopes or app roles ("Protected web API: Verify scopes and app roles",
  learn.microsoft.com/entra/identity-platform/scenario-protected-web-api-verification-scope-app-roles).

PyJWT does the cryptography; nothing here parses a signature by hand. The OpenID configuration and the JWK
set are fetched over HTTPS (the only I/O, which is why this lives outside ``steward.domain``).
"""

from __future__ import annotations

import json
import ssl
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import urlsplit

import jwt
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey

from steward.domain.errors import StewardError

#: The only signing algorithm Entra ID uses for access tokens (header ``alg``); everything else is refused.
ALGORITHMS: Final = ("RS256",)
#: Clock skew tolerated on ``exp``/``nbf``/``iat``, in seconds.
DEFAULT_LEEWAY_SECONDS: Final = 60
#: How long a fetched JWK set is trusted before it is fetched again (a token with an unknown kid refetches sooner).
DEFAULT_KEYS_LIFESPAN_SECONDS: Final = 3600
#: Shortest time between two fetches of the JWK set caused by unknown kids.
DEFAULT_REFRESH_COOLDOWN_SECONDS: Final = 30
#: How long an OpenID configuration (issuer, jwks_uri) is kept.
DEFAULT_METADATA_LIFESPAN_SECONDS: Final = 24 * 3600
#: Tokens longer than this are refused unread (Entra access tokens are a few KiB).
MAX_TOKEN_CHARS: Final = 16 * 1024
MAX_DOCUMENT_BYTES: Final = 256 * 1024
_ROLE_LIMIT: Final = 200


class Unauthenticated(StewardError):
    """No valid token: answer 401 with ``WWW-Authenticate: Bearer``. ``error`` is RFC 6750's error code
    (``invalid_token``), or None when the request carried no token at all."""

    def __init__(self, message: str, *, error: str | None = "invalid_token") -> None:
        super().__init__(message)
        self.message = message
        self.error = error


class AuthorityUnavailable(StewardError):
    """The authority's discovery document or keys could not be fetched: not the caller's fault (503)."""


@dataclass(frozen=True)
class VerifiedIdentity:
    """What a validated token proves: who (``oid``), from which tenant, with which app roles."""

    principal_id: str  # lower-cased object id
    tenant_id: str  # lower-cased
    roles: frozenset[str] = frozenset()  # lower-cased
    name: str | None = None  # display only (``preferred_username``/``name``); never used to decide
    client_id: str | None = None  # ``azp`` (v2.0) or ``appid`` (v1.0): the application that asked


@dataclass(frozen=True)
class TokenRequirements:
    """What a token must satisfy: the authority it comes from, the tenants and audiences allowed."""

    authority: str  # e.g. https://login.microsoftonline.com
    tenants: tuple[str, ...]
    audiences: tuple[str, ...]
    leeway_seconds: int = DEFAULT_LEEWAY_SECONDS

    def __post_init__(self) -> None:
        if not self.tenants or not self.audiences:
            raise ValueError("token requirements need at least one tenant and one audience")

    def metadata_url(self, tenant_id: str) -> str:
        return f"{self.authority.rstrip('/')}/{tenant_id}/v2.0/.well-known/openid-configuration"


def _is_guid(value: object) -> bool:
    if not isinstance(value, str) or len(value) != 36:
        return False
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def bearer_token(authorization: str | None) -> str:
    """The token of an ``Authorization: Bearer <token>`` header, or :class:`Unauthenticated`."""
    if authorization is None or not authorization.strip():
        raise Unauthenticated("no access token: send 'Authorization: Bearer <Entra ID access token>'", error=None)
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("the Authorization header must be 'Bearer <access token>'", error="invalid_request")
    token = token.strip()
    if len(token) > MAX_TOKEN_CHARS:
        raise Unauthenticated(f"the access token is longer than {MAX_TOKEN_CHARS} characters")
    return token


def fetch_json(url: str, ssl_context: ssl.SSLContext | None, timeout: float) -> dict[str, Any]:
    """GET a JSON object over HTTPS (no redirects followed), bounded in size."""
    if urlsplit(url).scheme != "https":
        raise AuthorityUnavailable(f"refusing to fetch {url[:120]!r}: discovery documents come over https only")
    opener = urllib.request.build_opener(_NoRedirect(), urllib.request.HTTPSHandler(context=ssl_context))
    try:
        request = urllib.request.Request(url, headers={"Accept": "application/json"})  # noqa: S310 - https only, checked above
        with opener.open(request, timeout=timeout) as r:
            raw = r.read(MAX_DOCUMENT_BYTES + 1)
    except (urllib.error.URLError, OSError, ValueError) as error:
        raise AuthorityUnavailable(f"could not fetch {url[:160]}: {error}") from None
    if len(raw) > MAX_DOCUMENT_BYTES:
        raise AuthorityUnavailable(f"{url[:160]} answered more than {MAX_DOCUMENT_BYTES} bytes")
    try:
        document = json.loads(raw)
    except ValueError:
        raise AuthorityUnavailable(f"{url[:160]} did not answer JSON") from None
    if not isinstance(document, dict):
        raise AuthorityUnavailable(f"{url[:160]} did not answer a JSON object")
    return document


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


@dataclass
class _Tenant:
    issuer: str
    keys: jwt.PyJWKClient
    fetched_at: float


@dataclass
class BearerTokenValidator:
    """Validates Entra ID access tokens for the app; thread-safe; one per process (``steward.bootstrap``)."""

    requirements: TokenRequirements
    ssl_context: ssl.SSLContext | None = None
    timeout_seconds: float = 10.0
    keys_lifespan_seconds: float = DEFAULT_KEYS_LIFESPAN_SECONDS
    refresh_cooldown_seconds: float = DEFAULT_REFRESH_COOLDOWN_SECONDS
    metadata_lifespan_seconds: float = DEFAULT_METADATA_LIFESPAN_SECONDS
    clock: Callable[[], float] = time.monotonic
    _tenants: dict[str, _Tenant] = field(default_factory=dict, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    @property
    def allowed_tenants(self) -> frozenset[str]:
        return frozenset(t.lower() for t in self.requirements.tenants)

    def validate_authorization(self, authorization: str | None) -> VerifiedIdentity:
        """Validate the ``Authorization`` header's bearer token (see :meth:`validate`)."""
        return self.validate(bearer_token(authorization))

    def validate(self, token: str) -> VerifiedIdentity:
        """The identity a valid token proves, else :class:`Unauthenticated` (or :class:`AuthorityUnavailable`)."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError:
            raise Unauthenticated("the access token is not a JWT") from None
        algorithm = header.get("alg")
        if algorithm not in ALGORITHMS:
            raise Unauthenticated(f"the access token's algorithm {str(algorithm)[:20]!r} is not accepted (RS256 only)")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid or len(kid) > 200:
            raise Unauthenticated("the access token names no signing key (kid)")
        try:
            unverified = jwt.decode(token, options={"verify_signature": False})
        except jwt.InvalidTokenError:
            raise Unauthenticated("the access token's payload is not JSON") from None
        tenant_id = unverified.get("tid")
        if not _is_guid(tenant_id) or str(tenant_id).lower() not in self.allowed_tenants:
            raise Unauthenticated("the access token is from a tenant this app does not accept (STEWARD_AUTH_TENANTS)")
        tenant = self._tenant(str(tenant_id).lower())
        key = self._signing_key(tenant, kid)
        claims = self._decode(token, key, tenant.issuer)
        return self._identity(claims, str(tenant_id).lower())

    # -- steps ----------------------------------------------------------------------------------------
    def _tenant(self, tenant_id: str) -> _Tenant:
        now = self.clock()
        with self._lock:
            known = self._tenants.get(tenant_id)
            if known is not None and now - known.fetched_at < self.metadata_lifespan_seconds:
                return known
        try:
            document = fetch_json(self.requirements.metadata_url(tenant_id), self.ssl_context, self.timeout_seconds)
        except AuthorityUnavailable:
            if known is not None:  # keep validating with what we had rather than lock everyone out
                return known
            raise
        issuer, jwks_uri = document.get("issuer"), document.get("jwks_uri")
        if not isinstance(issuer, str) or tenant_id not in issuer.lower():
            raise AuthorityUnavailable(f"the OpenID configuration of tenant {tenant_id} names no issuer of that tenant")
        if not isinstance(jwks_uri, str) or urlsplit(jwks_uri).scheme != "https":
            raise AuthorityUnavailable(f"the OpenID configuration of tenant {tenant_id} names no https jwks_uri")
        if known is not None and known.keys.uri == jwks_uri and known.issuer == issuer:
            fresh = _Tenant(issuer, known.keys, now)
        else:
            client = jwt.PyJWKClient(
                jwks_uri,
                cache_jwk_set=True,
                lifespan=self.keys_lifespan_seconds,
                timeout=self.timeout_seconds,
                ssl_context=self.ssl_context,
                cooldown_duration=self.refresh_cooldown_seconds,
            )
            fresh = _Tenant(issuer, client, now)
        with self._lock:
            self._tenants[tenant_id] = fresh
        return fresh

    @staticmethod
    def _signing_key(tenant: _Tenant, kid: str) -> RSAPublicKey:
        try:
            found = tenant.keys.get_signing_key(kid)
        except jwt.PyJWKClientConnectionError as error:
            raise AuthorityUnavailable(f"could not fetch the signing keys: {error}") from None
        except (jwt.PyJWKClientError, jwt.PyJWKSetError, jwt.InvalidKeyError):
            raise Unauthenticated("the access token is signed with a key the tenant does not publish") from None
        if not isinstance(found.key, RSAPublicKey):
            raise Unauthenticated("the access token names a key that is not an RSA signing key")
        return found.key

    def _decode(self, token: str, key: RSAPublicKey, issuer: str) -> dict[str, Any]:
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=list(ALGORITHMS),
                audience=list(self.requirements.audiences),
                issuer=issuer,
                leeway=self.requirements.leeway_seconds,
                options={"require": ["exp", "nbf", "iss", "aud", "tid", "oid"], "verify_iat": False},
            )
        except jwt.ExpiredSignatureError:
            raise Unauthenticated("the access token has expired") from None
        except jwt.ImmatureSignatureError:
            raise Unauthenticated("the access token is not valid yet (nbf)") from None
        except jwt.InvalidAudienceError:
            raise Unauthenticated("the access token is for another audience (STEWARD_AUTH_AUDIENCES)") from None
        except jwt.InvalidIssuerError:
            raise Unauthenticated("the access token's issuer is not the tenant's (v2.0 tokens only)") from None
        except jwt.InvalidSignatureError:
            raise Unauthenticated("the access token's signature does not verify") from None
        except jwt.MissingRequiredClaimError as error:
            raise Unauthenticated(f"the access token lacks the {error.claim!r} claim") from None
        except jwt.InvalidTokenError as error:
            raise Unauthenticated(f"the access token is not valid ({type(error).__name__})") from None
        return claims

    @staticmethod
    def _identity(claims: dict[str, Any], tenant_id: str) -> VerifiedIdentity:
        if str(claims.get("tid", "")).lower() != tenant_id:
            raise Unauthenticated("the access token's tenant changed between reads")
        oid = claims.get("oid")
        if not _is_guid(oid):
            raise Unauthenticated("the access token's oid is not an object id")
        roles = claims.get("roles", [])
        if not isinstance(roles, list) or len(roles) > _ROLE_LIMIT or not all(isinstance(r, str) for r in roles):
            raise Unauthenticated("the access token's roles claim is not a list of role values")
        scope = claims.get("scp")
        if not (isinstance(scope, str) and scope.strip()) and not roles:
            # an ID token for the app registration, or an app-only token of an application holding none of our
            # app roles: valid signature and audience, but no permission on this API (see the module's notes)
            raise Unauthenticated(
                "the token grants no scope (scp) and no app role (roles) of this API: send an access token for it"
            )
        name = claims.get("preferred_username") or claims.get("name")
        client = claims.get("azp") or claims.get("appid")
        return VerifiedIdentity(
            principal_id=str(oid).lower(),
            tenant_id=tenant_id,
            roles=frozenset(r.lower() for r in roles),
            name=name[:256] if isinstance(name, str) else None,
            client_id=client if isinstance(client, str) and len(client) <= 64 else None,
        )


def ssl_context_with(ca_bundle: str | None) -> ssl.SSLContext:
    """The system's trusted CAs plus ``ca_bundle`` (the sandbox's CA in local runs)."""
    context = ssl.create_default_context()
    if ca_bundle:
        context.load_verify_locations(cafile=ca_bundle)
    return context


def validator_for(
    authority: str, tenants: Iterable[str], audiences: Iterable[str], *, ca_bundle: str | None = None
) -> BearerTokenValidator | None:
    """The validator the settings describe, or None when no tenant/audience is configured (nobody can
    authenticate: the routes that need a caller answer 401)."""
    tenant_list, audience_list = tuple(tenants), tuple(audiences)
    if not tenant_list or not audience_list:
        return None
    return BearerTokenValidator(
        TokenRequirements(authority, tenant_list, audience_list), ssl_context=ssl_context_with(ca_bundle)
    )
