"""Caller identity from Entra ID access tokens, validated in the app against the sandbox's Entra ID (RS256 keys
published in a JWKS behind an OpenID configuration over HTTPS): every forgery an attacker with the function key
could try is refused, and a forged App Service Authentication header proves nothing (issue #14).

The validator is exercised directly (``steward.auth.tokens``, real HTTPS fetches of the sandbox's documents) and
through the running app (401 + ``WWW-Authenticate: Bearer``, 403, nothing started)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from sandbox.arm import ArmSandbox, SandboxConfig
from sandbox.arm.config import OTHER_TENANT
from sandbox.arm.entra import b64url, sign_rs256
from steward import bootstrap
from steward.auth.tokens import (
    AuthorityUnavailable,
    BearerTokenValidator,
    TokenRequirements,
    Unauthenticated,
    ssl_context_with,
)
from tests.hostile.conftest import ADMIN, OPENAPI, STRANGER, SUB1, App, forged_platform_headers, start_app

VAULT = f"/subscriptions/{SUB1}/resourceGroups/rg-t/providers/Microsoft.RecoveryServices/vaults/rsv-t"


@pytest.fixture(scope="module")
def sandbox() -> Iterator[ArmSandbox]:
    with ArmSandbox(SandboxConfig(providers=("resources",))) as running:
        yield running


def validator_for(sb: ArmSandbox, **kwargs: Any) -> BearerTokenValidator:
    requirements = TokenRequirements(
        sb.entra.authority, (sb.default_tenant,), (sb.entra.app_id_uri, sb.entra.client_id)
    )
    return BearerTokenValidator(requirements, ssl_context=ssl_context_with(sb.ca_bundle), **kwargs)


@pytest.fixture
def validator(sandbox: ArmSandbox) -> BearerTokenValidator:
    return validator_for(sandbox)


def refused(validator: BearerTokenValidator, token: str) -> str:
    with pytest.raises(Unauthenticated) as caught:
        validator.validate(token)
    assert caught.value.error == "invalid_token"
    return caught.value.message


def _parts(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    header, payload, _ = token.split(".")
    return (json.loads(base64.urlsafe_b64decode(header + "==")), json.loads(base64.urlsafe_b64decode(payload + "==")))


def _encode(part: dict[str, Any]) -> str:
    return b64url(json.dumps(part, separators=(",", ":")).encode())


# ---- what a valid token proves -------------------------------------------------------------------------------


def test_a_valid_token_proves_its_oid_tenant_and_roles(sandbox: ArmSandbox, validator: BearerTokenValidator) -> None:
    token = sandbox.app_token(ADMIN.upper(), roles=["Steward.Teardown"], name="admin@contoso.example")
    identity = validator.validate_authorization("Bearer " + token)
    assert identity.principal_id == ADMIN and identity.tenant_id == sandbox.default_tenant
    assert identity.roles == frozenset({"steward.teardown"}) and identity.name == "admin@contoso.example"
    # the app id URI is an accepted audience too (v1.0-style requests name it)
    assert validator.validate(sandbox.app_token(ADMIN, audience=sandbox.entra.app_id_uri)).principal_id == ADMIN


def test_a_missing_or_non_bearer_authorization_is_refused(validator: BearerTokenValidator) -> None:
    with pytest.raises(Unauthenticated) as missing:
        validator.validate_authorization(None)
    assert missing.value.error is None  # RFC 6750: no error code when no token was sent
    with pytest.raises(Unauthenticated) as basic:
        validator.validate_authorization("Basic YWRtaW46YWRtaW4=")
    assert basic.value.error == "invalid_request"


# ---- lifetime ------------------------------------------------------------------------------------------------


def test_expired_and_not_yet_valid_tokens_are_refused_beyond_a_small_leeway(
    sandbox: ArmSandbox, validator: BearerTokenValidator
) -> None:
    now = time.time()
    assert "expired" in refused(validator, sandbox.app_token(ADMIN, now=now - 3600 - 120, lifetime_seconds=3600))
    assert "not valid yet" in refused(validator, sandbox.app_token(ADMIN, now=now + 600))
    # clock skew inside the leeway (60 s) is tolerated
    assert validator.validate(sandbox.app_token(ADMIN, now=now - 3600 - 20, lifetime_seconds=3600))
    assert validator.validate(sandbox.app_token(ADMIN, now=now + 20))


# ---- whose token ---------------------------------------------------------------------------------------------


def test_a_token_for_another_audience_is_refused(sandbox: ArmSandbox, validator: BearerTokenValidator) -> None:
    # e.g. an ARM token of the same tenant, or one for another app registration
    assert "audience" in refused(validator, sandbox.app_token(ADMIN, audience="https://management.azure.com/"))
    assert "audience" in refused(validator, sandbox.app_token(ADMIN, audience="00000000-0000-4000-8000-0000000000ff"))


def test_a_token_from_another_tenant_is_refused(sandbox: ArmSandbox, validator: BearerTokenValidator) -> None:
    # properly signed by the same Entra ID, for our app, but from a tenant not in STEWARD_AUTH_TENANTS
    assert "tenant" in refused(validator, sandbox.app_token(ADMIN, OTHER_TENANT))


def test_a_token_with_a_wrong_issuer_is_refused(sandbox: ArmSandbox, validator: BearerTokenValidator) -> None:
    key = sandbox.entra.signing_key
    claims = sandbox.entra.claims(ADMIN, sandbox.default_tenant)
    for issuer in (
        f"https://login.microsoftonline.com/{sandbox.default_tenant}/v2.0",  # right tenant, another authority
        f"https://sts.windows.net/{sandbox.default_tenant}/",  # a v1.0 issuer
        sandbox.entra.issuer(OTHER_TENANT),  # another tenant's issuer with our tid
    ):
        token = sign_rs256(key.private_key, {"typ": "JWT", "alg": "RS256", "kid": key.kid}, {**claims, "iss": issuer})
        assert "issuer" in refused(validator, token)


def test_a_token_without_an_object_id_is_refused(sandbox: ArmSandbox, validator: BearerTokenValidator) -> None:
    key = sandbox.entra.signing_key
    claims = sandbox.entra.claims(ADMIN, sandbox.default_tenant)
    del claims["oid"]
    assert "oid" in refused(validator, sign_rs256(key.private_key, {"alg": "RS256", "kid": key.kid}, claims))


# ---- signatures ----------------------------------------------------------------------------------------------


def test_a_token_signed_by_another_key_with_the_published_kid_is_refused(
    sandbox: ArmSandbox, validator: BearerTokenValidator
) -> None:
    impostor = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    token = sign_rs256(
        impostor, {"typ": "JWT", "alg": "RS256", "kid": sandbox.entra.signing_key.kid},
        sandbox.entra.claims(ADMIN, sandbox.default_tenant),
    )
    assert "signature" in refused(validator, token)


def test_alg_none_is_refused(sandbox: ArmSandbox, validator: BearerTokenValidator) -> None:
    claims = sandbox.entra.claims(ADMIN, sandbox.default_tenant)
    for header in ({"alg": "none", "typ": "JWT"}, {"alg": "none", "kid": sandbox.entra.signing_key.kid}):
        assert "algorithm" in refused(validator, f"{_encode(header)}.{_encode(claims)}.")


def test_hs256_signed_with_the_published_public_key_is_refused(
    sandbox: ArmSandbox, validator: BearerTokenValidator
) -> None:
    """The classic key-confusion attack: HMAC keyed with the RSA public key the JWKS publishes."""
    key = sandbox.entra.signing_key
    public_pem = key.private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    signing_input = _encode({"alg": "HS256", "typ": "JWT", "kid": key.kid}) + "." + _encode(
        sandbox.entra.claims(ADMIN, sandbox.default_tenant)
    )
    signature = b64url(hmac.new(public_pem, signing_input.encode(), hashlib.sha256).digest())
    assert "algorithm" in refused(validator, f"{signing_input}.{signature}")


def test_a_tampered_payload_is_refused(sandbox: ArmSandbox, validator: BearerTokenValidator) -> None:
    header, payload, signature = sandbox.app_token(STRANGER).split(".")
    claims = _parts(f"{header}.{payload}.x")[1]
    for change in ({"oid": ADMIN}, {"roles": ["Steward.Teardown"]}, {"exp": claims["exp"] + 86400}):
        assert "signature" in refused(validator, f"{header}.{_encode({**claims, **change})}.{signature}")
    assert "not a JWT" in refused(validator, "not-a-jwt")


# ---- key rotation --------------------------------------------------------------------------------------------


def test_a_rotated_key_is_fetched_once_and_a_retired_one_stops_working(sandbox: ArmSandbox) -> None:
    validator = validator_for(sandbox, refresh_cooldown_seconds=0.2, keys_lifespan_seconds=1.0)
    old_token = sandbox.app_token(ADMIN)
    assert validator.validate(old_token).principal_id == ADMIN
    fetched = sandbox.entra.served["keys"]
    time.sleep(0.25)  # past the cool-down since the first fetch
    sandbox.entra.rotate()  # the new key signs; the old one stays published
    new_token = sandbox.app_token(ADMIN)
    assert _parts(new_token)[0]["kid"] != _parts(old_token)[0]["kid"]
    assert validator.validate(new_token).principal_id == ADMIN  # unknown kid -> one refetch
    assert validator.validate(old_token).principal_id == ADMIN
    assert sandbox.entra.served["keys"] == fetched + 1
    sandbox.entra.rotate(retire_previous=True)
    time.sleep(1.1)  # the cached set expires
    assert "key" in refused(validator, old_token)
    assert validator.validate(sandbox.app_token(ADMIN)).principal_id == ADMIN


def test_made_up_kids_cannot_make_the_app_hammer_the_authority(
    sandbox: ArmSandbox, validator: BearerTokenValidator
) -> None:
    validator.validate(sandbox.app_token(ADMIN))
    fetched = sandbox.entra.served["keys"]
    impostor = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    claims = sandbox.entra.claims(ADMIN, sandbox.default_tenant)
    for n in range(25):
        token = sign_rs256(impostor, {"alg": "RS256", "kid": f"made-up-{n}"}, claims)
        assert "key" in refused(validator, token)
    assert sandbox.entra.served["keys"] - fetched <= 1, "unknown kids refetch the JWKS at most once per cool-down"


def test_an_unreachable_authority_is_not_the_callers_fault(sandbox: ArmSandbox) -> None:
    requirements = TokenRequirements("https://127.0.0.1:9/sandbox/entra", (sandbox.default_tenant,),
                                     (sandbox.entra.client_id,))
    validator = BearerTokenValidator(requirements, ssl_context=ssl_context_with(sandbox.ca_bundle), timeout_seconds=2)
    with pytest.raises(AuthorityUnavailable):
        validator.validate(sandbox.app_token(ADMIN))


# ---- through the running app ---------------------------------------------------------------------------------


def test_an_unreachable_authority_answers_a_documented_503_problem_with_retry_after(tmp_path: Path) -> None:
    """The caller's token cannot be checked: not the caller's fault (no 401), a problem naming the cause, a retry
    time; the contract lists the 503 on every route that needs a token."""
    running = start_app(tmp_path, {"STEWARD_AUTH_AUTHORITY": "https://127.0.0.1:9/sandbox/entra"})
    try:
        body = json.dumps({"vaultId": VAULT}).encode()
        status, headers, answer = running.request("POST", "teardowns", body, running.auth(ADMIN))
    finally:
        running.stack.stop()
        bootstrap.reset()
    assert status == 503, answer[:300]
    assert headers["Content-Type"] == "application/problem+json" and headers["Retry-After"] == "30"
    problem = json.loads(answer)
    assert (problem["status"], problem["code"]) == (503, "AuthorityUnavailable") and problem["detail"]
    document = yaml.safe_load(OPENAPI.read_text(encoding="utf-8"))
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if any("entraBearer" in choice for choice in operation.get("security", [])) or path.startswith("/audits"):
                assert "503" in operation["responses"], (method, path)


def _error(answer: bytes) -> str:
    return str(json.loads(answer)["code"])


def test_a_forged_platform_header_without_a_token_is_refused_401(app: App) -> None:
    """Issue #14: with no App Service Authentication in front, a function-key holder sent
    ``x-ms-client-principal-id: <an allowed principal>`` and got 202. Fails on the previous code (202)."""
    before = app.state()
    body = json.dumps({"vaultId": VAULT}).encode()
    for headers in (forged_platform_headers(ADMIN), {"x-ms-client-principal-id": ADMIN}):
        status, answered, answer = app.request("POST", "teardowns", body, headers)
        assert status == 401, answer[:300]
        assert _error(answer) == "Unauthenticated"
        assert answered["WWW-Authenticate"] == 'Bearer realm="backup-steward"'
    app.settle()
    assert app.state() == before, "a forged header started something"


def test_the_token_decides_who_calls_whatever_the_platform_headers_say(app: App) -> None:
    body = json.dumps({"vaultId": VAULT}).encode()
    status, _, answer = app.request("POST", "teardowns", body, {**forged_platform_headers(ADMIN), **app.auth(STRANGER)})
    assert status == 403 and _error(answer) == "CallerNotAllowed"
    assert STRANGER in json.loads(answer)["detail"]


def test_an_invalid_token_gets_401_with_an_invalid_token_challenge(app: App) -> None:
    sandbox = app.sandbox
    before = app.state()
    tokens = {
        "expired": sandbox.app_token(ADMIN, now=time.time() - 7200),
        "other audience": sandbox.app_token(ADMIN, audience="https://management.azure.com/"),
        "other tenant": sandbox.app_token(ADMIN, OTHER_TENANT),
        "arm token": sandbox.mint_token(ADMIN),  # the sandbox's HS256 ARM token: not for this app
    }
    for what, token in tokens.items():
        for method, path in (("POST", "teardowns"), ("GET", "teardowns/teardown-abc")):
            data = json.dumps({"vaultId": VAULT}).encode() if path == "teardowns" else None
            status, headers, answer = app.request(method, path, data, {"Authorization": f"Bearer {token}"})
            assert status == 401, (what, path, answer[:200])
            assert _error(answer) == "InvalidToken"
            challenge = headers["WWW-Authenticate"]
            assert challenge.startswith('Bearer realm="backup-steward", error="invalid_token"'), challenge
            assert token not in answer.decode()
    app.settle()
    assert app.state() == before, "a refused token wrote to ARM or started an orchestration"


def test_an_allowed_callers_token_is_accepted_and_the_function_key_is_still_needed(app: App) -> None:
    assert app.request("GET", "teardowns/teardown-0000000000000000-plan", None, app.auth(ADMIN))[0] == 404
    assert app.request("GET", "teardowns/teardown-0000000000000000-plan", None, app.auth(ADMIN), key=False)[0] == 401


# ---- red-team tricks that must keep failing (regressions; the app held) ---------------------------------------


def test_key_location_hints_in_the_header_are_never_followed(
    sandbox: ArmSandbox, validator: BearerTokenValidator
) -> None:
    """``jku``/``x5u``/an embedded ``jwk``: the key comes from the tenant's JWKS by ``kid``, nothing else."""
    impostor = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public = impostor.public_key().public_numbers()
    embedded = {"kty": "RSA", "kid": "mine", "use": "sig", "n": b64url(public.n.to_bytes(256, "big")), "e": "AQAB"}
    claims = sandbox.entra.claims(ADMIN, sandbox.default_tenant)
    hints = {"jku": "https://127.0.0.1:1/keys", "x5u": "https://127.0.0.1:1/cert", "jwk": embedded}
    fetched = sandbox.entra.served["keys"]
    for kid in ("mine", sandbox.entra.signing_key.kid):
        token = sign_rs256(impostor, {"alg": "RS256", "typ": "JWT", "kid": kid, **hints}, claims)
        assert "key" in refused(validator, token) or "signature" in refused(validator, token)
    assert sandbox.entra.served["keys"] - fetched <= 1


def test_two_authorization_values_and_oversized_tokens_are_refused(
    sandbox: ArmSandbox, validator: BearerTokenValidator
) -> None:
    """Two ``Authorization`` headers reach the worker joined by a comma: neither token is taken."""
    stranger, admin = sandbox.app_token(STRANGER), sandbox.app_token(ADMIN)
    for joined in (f"Bearer {stranger}, Bearer {admin}", f"Bearer {admin},Bearer {stranger}", f"Bearer {admin} x"):
        with pytest.raises(Unauthenticated):
            validator.validate_authorization(joined)
    header, payload, signature = admin.split(".")
    padded = f"{header}.{payload}{'A' * 17_000}.{signature}"
    with pytest.raises(Unauthenticated, match="longer than"):
        validator.validate_authorization("Bearer " + padded)
    # the scheme is case-insensitive (RFC 7235), the token is not
    assert validator.validate_authorization("bEaReR " + admin).principal_id == ADMIN
    with pytest.raises(Unauthenticated):
        validator.validate_authorization("Bearer " + admin.swapcase())


def test_a_token_in_the_query_string_proves_nothing(app: App) -> None:
    token = app.sandbox.app_token(ADMIN)
    for query in (f"access_token={token}", f"token={token}", f"authorization=Bearer%20{token}"):
        status, headers, answer = app.request("GET", f"teardowns/teardown-0000000000000000-plan?{query}", None, {})
        assert status == 401 and _error(answer) == "Unauthenticated", (query[:20], answer[:200])
        assert headers["WWW-Authenticate"] == 'Bearer realm="backup-steward"'



def test_a_token_without_a_scope_or_an_app_role_is_not_an_access_token_for_the_api(
    sandbox: ArmSandbox, validator: BearerTokenValidator
) -> None:
    """Signed by the tenant, for our client id, and still not a permission to call the API: an ID token a
    sign-in to the app registration returns (``aud`` is the client id too; no ``scp``, no ``roles``), or an
    app-only token of any application in the tenant that has no app role of ours. Microsoft: a protected web API
    verifies the scopes (delegated calls) or the app roles (daemon apps) - "Protected web API: Verify scopes and
    app roles" (learn.microsoft.com/entra/identity-platform/scenario-protected-web-api-verification-scope-app-roles).
    Both used to be accepted as ADMIN (fails on the previous code)."""
    key = sandbox.entra.signing_key
    id_token = sandbox.entra.claims(ADMIN, sandbox.default_tenant, scope=None, name="admin@contoso.example")
    id_token.update(nonce="n-0S6_WzA2Mj", aio="x", ver="2.0")
    for claims in (id_token, sandbox.entra.claims(ADMIN, sandbox.default_tenant, scope=None)):
        token = sign_rs256(key.private_key, {"typ": "JWT", "alg": "RS256", "kid": key.kid}, claims)
        assert "scope" in refused(validator, token)
    # what the app takes: a user's delegated token (scp), or an application's token with one of our app roles
    assert validator.validate(sandbox.app_token(ADMIN)).principal_id == ADMIN
    app_only = sandbox.app_token(ADMIN, scope=None, roles=["BackupSteward.Teardown"])
    assert validator.validate(app_only).roles == frozenset({"backupsteward.teardown"})
