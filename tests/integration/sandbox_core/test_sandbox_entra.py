"""The sandbox's Entra ID for the app's callers: OpenID configuration and JWKS in Entra's shapes over HTTPS,
tokens from the admin route, key rotation — independent of the app's validator (checked here with PyJWT's own
JWK parsing, in tests/hostile/test_tokens.py with the app's)."""

from __future__ import annotations

import base64
import json

import jwt

from sandbox.arm import ArmSandbox
from sandbox.arm.config import DEFAULT_TENANT, OTHER_TENANT

from .test_sandbox_serving import raw

UNKNOWN_TENANT = "99999999-9999-4999-8999-999999999999"


def _header(token: str) -> dict[str, str]:
    part = token.split(".", maxsplit=1)[0]
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))  # type: ignore[no-any-return]


def test_the_openid_configuration_and_keys_are_served_in_entras_shape(sb: ArmSandbox) -> None:
    status, _, config = raw(sb, "GET", f"/sandbox/entra/{DEFAULT_TENANT}/v2.0/.well-known/openid-configuration",
                            token=None)
    assert status == 200
    assert config["issuer"] == f"{sb.endpoint}/sandbox/entra/{DEFAULT_TENANT}/v2.0"
    assert config["jwks_uri"] == f"{sb.endpoint}/sandbox/entra/{DEFAULT_TENANT}/discovery/v2.0/keys"
    assert config["id_token_signing_alg_values_supported"] == ["RS256"]
    status, _, keys = raw(sb, "GET", config["jwks_uri"].removeprefix(sb.endpoint), token=None)
    assert status == 200 and keys["keys"]
    assert all(k["kty"] == "RSA" and k["use"] == "sig" and k["kid"] and k["n"] and k["e"] for k in keys["keys"])
    status, _, error = raw(sb, "GET", f"/sandbox/entra/{UNKNOWN_TENANT}/v2.0/.well-known/openid-configuration",
                           token=None)
    assert status == 400 and error["error"] == "invalid_tenant" and "AADSTS90002" in error["error_description"]


def test_the_token_route_signs_a_v2_access_token_for_the_app_that_the_published_key_verifies(sb: ArmSandbox) -> None:
    principal = "aaaaaaaa-0000-4000-8000-00000000ad01"
    status, _, answer = raw(sb, "POST", f"/sandbox/entra/{OTHER_TENANT}/token",
                            {"principalId": principal, "roles": ["BackupSteward.Teardown"]}, token=None)
    assert status == 200 and answer["token_type"] == "Bearer"
    token = answer["access_token"]
    header = _header(token)
    assert header["alg"] == "RS256"
    _, _, keys = raw(sb, "GET", f"/sandbox/entra/{OTHER_TENANT}/discovery/v2.0/keys", token=None)
    key = next(jwt.PyJWK(k) for k in keys["keys"] if k["kid"] == header["kid"])
    claims = jwt.decode(token, key.key, algorithms=["RS256"], audience=sb.entra.client_id,
                        issuer=f"{sb.endpoint}/sandbox/entra/{OTHER_TENANT}/v2.0")
    assert (claims["oid"], claims["tid"], claims["roles"], claims["ver"]) == (
        principal, OTHER_TENANT, ["BackupSteward.Teardown"], "2.0")
    assert claims["nbf"] <= claims["iat"] < claims["exp"]
    assert claims["scp"] == "user_impersonation"  # a user's delegated token, as the Azure CLI gets one
    app_only = sb.entra.claims(principal, DEFAULT_TENANT, scope=None, roles=["BackupSteward.Teardown"])
    assert "scp" not in app_only and app_only["roles"] == ["BackupSteward.Teardown"]
    status, _, _ = raw(sb, "POST", f"/sandbox/entra/{DEFAULT_TENANT}/token", {"roles": "x"}, token=None)
    assert status == 400


def test_rotation_signs_with_a_new_key_and_keeps_or_retires_the_old(sb: ArmSandbox) -> None:
    old_kid = sb.entra.signing_key.kid
    status, _, rotated = raw(sb, "POST", "/sandbox/entra/keys/rotate", {}, token=None)
    assert status == 200 and rotated["kid"] != old_kid and old_kid in rotated["keys"]
    assert _header(sb.app_token("aaaaaaaa-0000-4000-8000-00000000ad01"))["kid"] == rotated["kid"]
    status, _, retired = raw(sb, "POST", "/sandbox/entra/keys/rotate", {"retirePrevious": True}, token=None)
    assert status == 200 and retired["keys"] == [retired["kid"]]
