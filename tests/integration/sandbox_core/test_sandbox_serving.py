"""Serving: HTTPS with the sandbox CA, tokens, api-version checks, ARM errors — through the real SDK."""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.request
from typing import Any

import pytest
from azure.core.exceptions import ClientAuthenticationError, HttpResponseError, ResourceNotFoundError

from sandbox.arm import ArmSandbox
from steward.cloud.clients import CloudClients

from .conftest import SUB


def raw(sb: ArmSandbox, method: str, path: str, body: Any = None, token: str | None = "mint") -> tuple[int, dict, Any]:
    headers = {"Content-Type": "application/json"}
    if token == "mint":
        token = sb.mint_token()
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(sb.endpoint + path, data=data, method=method, headers=headers)
    context = ssl.create_default_context(cafile=sb.ca_bundle)
    try:
        with urllib.request.urlopen(request, context=context, timeout=10) as response:
            payload = response.read()
            return response.status, dict(response.headers), json.loads(payload) if payload else None
    except urllib.error.HTTPError as exc:
        payload = exc.read()
        return exc.code, dict(exc.headers), json.loads(payload) if payload else None


def test_resource_group_round_trip_over_https_with_the_real_client(clients: CloudClients) -> None:
    rc = clients.resources(SUB)
    group = rc.resource_groups.create_or_update("rg-serving", {"location": "westeurope", "tags": {"team": "a"}})
    assert group.id == f"/subscriptions/{SUB}/resourceGroups/rg-serving"
    assert group.location == "westeurope"
    assert rc.resource_groups.get("RG-SERVING").name == "rg-serving"  # ARM paths are case-insensitive
    assert rc.resource_groups.check_existence("rg-serving") is True
    assert rc.resource_groups.check_existence("rg-absent") is False


def test_the_certificate_is_trusted_only_through_the_ca_bundle(sb: ArmSandbox) -> None:
    request = urllib.request.Request(sb.endpoint + "/metadata/endpoints?api-version=2022-09-01")
    with pytest.raises(urllib.error.URLError) as caught:
        urllib.request.urlopen(request, context=ssl.create_default_context(), timeout=5)
    assert "CERTIFICATE_VERIFY_FAILED" in str(caught.value)
    status, _, body = raw(sb, "GET", "/metadata/endpoints?api-version=2022-09-01", token=None)
    assert status == 200
    assert body["resourceManager"] == sb.endpoint + "/"


def test_a_request_without_a_sandbox_token_is_401_with_www_authenticate(sb: ArmSandbox) -> None:
    status, headers, body = raw(sb, "GET", f"/subscriptions/{SUB}/resourcegroups?api-version=2025-04-01", token=None)
    assert status == 401
    assert body["error"]["code"] == "InvalidAuthenticationToken"
    assert "Bearer" in headers["WWW-Authenticate"]
    forged = sb.mint_token()[:-4] + "AAAA"
    status, _, body = raw(sb, "GET", f"/subscriptions/{SUB}/resourcegroups?api-version=2025-04-01", token=forged)
    assert status == 401
    assert "signature" in body["error"]["message"]


def test_api_version_is_required_and_checked_against_the_supported_list(sb: ArmSandbox) -> None:
    status, _, body = raw(sb, "GET", f"/subscriptions/{SUB}/resourcegroups")
    assert (status, body["error"]["code"]) == (400, "MissingApiVersionParameter")
    status, _, body = raw(sb, "GET", f"/subscriptions/{SUB}/resourcegroups?api-version=1999-01-01")
    assert (status, body["error"]["code"]) == (400, "InvalidApiVersionParameter")
    message = body["error"]["message"]
    assert "The api-version '1999-01-01' is invalid. The supported versions are '2025-04-01," in message


def test_unknown_scopes_and_types_get_arm_404s(sb: ArmSandbox, clients: CloudClients) -> None:
    missing_sub = "/subscriptions/99999999-0000-0000-0000-000000000000"
    status, _, body = raw(sb, "GET", missing_sub + "/resourcegroups?api-version=2025-04-01")
    assert (status, body["error"]["code"]) == (404, "SubscriptionNotFound")
    path = f"/subscriptions/{SUB}/resourceGroups/nope/providers/Microsoft.Compute/disks/x?api-version=2026-03-02"
    status, _, body = raw(sb, "GET", path)
    assert (status, body["error"]["code"]) == (404, "ResourceGroupNotFound")
    clients.resources(SUB).resource_groups.create_or_update("rg-404", {"location": "westeurope"})
    path = f"/subscriptions/{SUB}/resourceGroups/rg-404/providers/Microsoft.Nothing/things/x?api-version=2020-01-01"
    status, _, body = raw(sb, "GET", path)
    assert (status, body["error"]["code"]) == (404, "InvalidResourceNamespace")
    with pytest.raises(ResourceNotFoundError) as caught:
        clients.resources(SUB).resource_groups.get("rg-never-made")
    assert caught.value.error is not None and caught.value.error.code == "ResourceGroupNotFound"


def test_a_token_from_another_tenant_is_rejected_for_the_subscription(sb: ArmSandbox) -> None:
    other = sb.subscriptions.tenants()[-1]
    token = sb.mint_token(tenant_id=other)
    status, _, body = raw(sb, "GET", f"/subscriptions/{SUB}/resourcegroups?api-version=2025-04-01", token=token)
    assert (status, body["error"]["code"]) == (401, "InvalidAuthenticationTokenTenant")


def test_sdk_errors_carry_the_arm_error_code(clients: CloudClients) -> None:
    with pytest.raises(HttpResponseError) as caught:
        clients.resources(SUB).resource_groups.create_or_update("rg-noloc", {"location": ""})
    assert caught.value.status_code == 400
    assert caught.value.error is not None and caught.value.error.code == "LocationRequired"
    assert not isinstance(caught.value, ClientAuthenticationError)


def test_subscriptions_and_tenants_are_listed_for_the_callers_tenant(sb: ArmSandbox) -> None:
    status, _, subs = raw(sb, "GET", "/subscriptions?api-version=2022-12-01")
    assert status == 200
    assert {s["subscriptionId"] for s in subs["value"]} == {s.subscription_id for s in sb.subscriptions.all()}
    assert all(s["state"] == "Enabled" and s["tenantId"] == sb.default_tenant for s in subs["value"])
    _, _, one = raw(sb, "GET", f"/subscriptions/{SUB}?api-version=2022-12-01")
    assert one["displayName"] == "Sandbox Production"
    _, _, tenants = raw(sb, "GET", "/tenants?api-version=2022-12-01")
    assert sb.default_tenant in [t["tenantId"] for t in tenants["value"]]


def test_the_token_endpoint_mints_for_known_tenants_only(sb: ArmSandbox) -> None:
    status, _, body = raw(sb, "POST", "/sandbox/token", {"principalId": "p1", "scopes": ["x/.default"]}, token=None)
    assert status == 200 and body["expires_on"] > 0 and body["access_token"].count(".") == 2
    status, _, body = raw(sb, "POST", "/sandbox/token", {"principalId": "p1", "tenantId": "nope"}, token=None)
    assert (status, body["error"]["code"]) == (400, "InvalidTenant")


def test_routing_happens_on_encoded_segments(sb: ArmSandbox) -> None:
    encoded_slash = f"/subscriptions/{SUB}/resourcegroups/a%2Fb?api-version=2025-04-01"
    status, _, body = raw(sb, "GET", encoded_slash)
    assert (status, body["error"]["code"]) == (404, "ResourceGroupNotFound")
    assert "'a/b'" in body["error"]["message"]  # one segment named 'a/b', not groups 'a' + child 'b'
