"""Any Azure client with managed-identity support logs in to the sandbox: the App Service identity endpoint
(IDENTITY_ENDPOINT / IDENTITY_HEADER) and azure-identity's own ManagedIdentityCredential, unchanged."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest
from azure.identity import ManagedIdentityCredential
from azure.mgmt.resource.resources import ResourceManagementClient

from sandbox.arm import ArmSandbox
from sandbox.arm.identity_endpoint import IdentityEndpoint, sandbox_identity_endpoint

from .conftest import SUB


@pytest.fixture
def identity(sb: ArmSandbox) -> Iterator[IdentityEndpoint]:
    with sandbox_identity_endpoint(sb).start() as endpoint:
        yield endpoint


def _get(url: str, headers: dict[str, str]) -> tuple[int, dict]:
    request = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_azure_identitys_managed_identity_credential_reads_arm_in_the_sandbox(
    sb: ArmSandbox, identity: IdentityEndpoint, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in identity.env().items():
        monkeypatch.setenv(name, value)
    credential = ManagedIdentityCredential()
    token = credential.get_token(sb.endpoint + "/.default")
    assert token.token.count(".") == 2 and token.expires_on > 0
    client = ResourceManagementClient(
        credential, SUB, base_url=sb.endpoint, connection_verify=sb.ca_bundle,
        credential_scopes=[sb.endpoint + "/.default"],
    )
    client.resource_groups.create_or_update("rg-msi", {"location": "westeurope"})
    assert "rg-msi" in [g.name for g in client.resource_groups.list()]
    assert identity.requests >= 1


def test_the_identity_header_is_required_and_checked(identity: IdentityEndpoint) -> None:
    query = "?resource=https://management.azure.com&api-version=2019-08-01"
    status, body = _get(identity.url + query, {})
    assert status == 400 and "X-IDENTITY-HEADER" in body["error_description"]
    status, _ = _get(identity.url + query, {"X-IDENTITY-HEADER": "guess"})
    assert status == 400
    status, body = _get(identity.url + "?resource=x&api-version=2017-09-01", {"X-IDENTITY-HEADER": identity.secret})
    assert status == 400 and "2019-08-01" in body["error_description"]
    status, body = _get(identity.url + query, {"X-IDENTITY-HEADER": identity.secret})
    assert status == 200 and body["token_type"] == "Bearer" and int(body["expires_on"]) > 0
    assert body["client_id"] != identity.principal_id  # client (app) id and object id differ, as in Entra ID
    status, _ = _get(identity.url + query + f"&client_id={identity.client_id}", {"X-IDENTITY-HEADER": identity.secret})
    assert status == 200


def test_the_cloud_metadata_names_the_sandbox_as_resource_manager(sb: ArmSandbox) -> None:
    from .test_sandbox_serving import raw

    status, _, metadata = raw(sb, "GET", "/metadata/endpoints?api-version=2022-09-01", token=None)
    assert status == 200 and metadata["resourceManager"].rstrip("/") == sb.endpoint
