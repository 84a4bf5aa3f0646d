"""Azure's built-in role definitions as a generic client reads them from the sandbox, and the effective
permissions ARM computes from them (actions minus notActions, ``*`` wildcards, the union over roles).

Expected values are Microsoft's published definitions (MicrosoftDocs/azure-docs
``articles/role-based-access-control/built-in-roles/*.md``), written out here rather than read back from the
sandbox's table, so a wrong entry there fails.
"""

from __future__ import annotations

import urllib.parse
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from azure.mgmt.authorization import AuthorizationManagementClient

from sandbox.arm import ArmSandbox
from steward.cloud.clients import CloudClients

from .conftest import SUB, core_config, make_group
from .test_sandbox_serving import raw

API = "2022-04-01"
#: the roles the app, its Bicep and its runbooks name, with Microsoft's GUIDs
ROLES = {
    "Owner": "8e3af657-a8ff-443c-a75c-2fe8c4bcb635",
    "Contributor": "b24988ac-6180-42a0-ab88-20f7382dd24c",
    "Reader": "acdd72a7-3385-48ef-bd42-f606fba81ae7",
    "User Access Administrator": "18d7d88d-d35e-4fb5-a5c3-7773c20a72d9",
    "Role Based Access Control Administrator": "f58310d9-a9f6-439a-9e8d-f62e7b41a168",
    "Backup Contributor": "5e467623-bb1f-42f4-a55d-6e525e11384b",
    "Backup Operator": "00c29273-979b-4161-815c-10b084fb9324",
    "Backup Reader": "a795c7a0-d4a2-40c1-ae25-d81f01202912",
    "Disk Backup Reader": "3e5e47e6-65f7-47ef-90b5-e5dd4d455f24",
    "Disk Snapshot Contributor": "7efff54f-a5b4-42b5-a1c5-5411624893ce",
    "Disk Restore Operator": "b50d9833-a0cb-478e-945f-707fcc997c13",
    "Storage Account Backup Contributor": "e5e2a7ff-d759-4cd2-bb51-3152d37e2eb1",
    "Storage Account Contributor": "17d1049b-9a84-46fb-8f53-869881c3d3ab",
    "Storage Blob Data Contributor": "ba92f5b4-2d11-453d-a403-e96b0029c9fe",
    "PostgreSQL Flexible Server Long Term Retention Backup Role": "c088a766-074b-43ba-90d4-1fb21feae531",
    "Virtual Machine Contributor": "9980e02c-c2be-4d73-94e8-173b1dc7cf3c",
}
CONTRIBUTOR_NOT_ACTIONS = [
    "Microsoft.Authorization/*/Delete",
    "Microsoft.Authorization/*/Write",
    "Microsoft.Authorization/elevateAccess/Action",
    "Microsoft.Blueprint/blueprintAssignments/write",
    "Microsoft.Blueprint/blueprintAssignments/delete",
    "Microsoft.Compute/galleries/share/action",
    "Microsoft.Purview/consents/write",
    "Microsoft.Purview/consents/delete",
    "Microsoft.Resources/deploymentStacks/manageDenySetting/action",
    "Microsoft.Subscription/cancel/action",
    "Microsoft.Subscription/enable/action",
]


@pytest.fixture(scope="module")
def sb() -> Iterator[ArmSandbox]:
    sandbox = ArmSandbox(core_config(providers=("resources", "authorization", "storage"))).start()
    yield sandbox
    sandbox.stop()


@pytest.fixture(scope="module")
def auth(sb: ArmSandbox, clients: CloudClients) -> AuthorizationManagementClient:
    return AuthorizationManagementClient(
        clients.credential, SUB, base_url=sb.endpoint, connection_verify=sb.ca_bundle,
        credential_scopes=[sb.endpoint + "/.default"],
    )


def _by_name(sb: ArmSandbox, name: str, scope: str = f"/subscriptions/{SUB}") -> tuple[int, Any]:
    query = urllib.parse.quote(f"roleName eq '{name}'")
    status, _, body = raw(sb, "GET", f"{scope}/providers/Microsoft.Authorization/roleDefinitions"
                                     f"?$filter={query}&api-version={API}")
    return status, body


def _assign(sb: ArmSandbox, scope: str, role: str, principal: str) -> None:
    body = {"properties": {
        "roleDefinitionId": f"/subscriptions/{SUB}/providers/Microsoft.Authorization/roleDefinitions/{ROLES[role]}",
        "principalId": principal, "principalType": "User"}}
    status, _, answer = raw(sb, "PUT", f"{scope}/providers/Microsoft.Authorization/roleAssignments/{uuid.uuid4()}"
                                       f"?api-version={API}", body)
    assert status == 201, answer


@pytest.mark.parametrize("name", sorted(ROLES))
def test_each_named_built_in_role_is_found_by_name_over_raw_http(sb: ArmSandbox, name: str) -> None:
    status, body = _by_name(sb, name)
    assert status == 200
    [role] = body["value"]
    assert role["name"] == ROLES[name]
    assert role["id"] == f"/subscriptions/{SUB}/providers/Microsoft.Authorization/roleDefinitions/{ROLES[name]}"
    assert role["type"] == "Microsoft.Authorization/roleDefinitions"
    props = role["properties"]
    assert props["roleName"] == name and props["type"] == "BuiltInRole"
    assert props["assignableScopes"] == ["/"]
    [permission] = props["permissions"]
    assert set(permission) == {"actions", "notActions", "dataActions", "notDataActions"}
    assert permission["actions"], "every one of these roles grants some control-plane action"
    # the same definition by id, at the subscription and at the tenant root
    status, _, by_id = raw(sb, "GET", f"{role['id']}?api-version={API}")
    assert status == 200 and by_id["properties"] == props
    status, _, at_root = raw(sb, "GET", f"/providers/Microsoft.Authorization/roleDefinitions/{ROLES[name]}"
                                        f"?api-version={API}")
    assert status == 200 and at_root["id"] == f"/providers/Microsoft.Authorization/roleDefinitions/{ROLES[name]}"


def test_the_published_permissions_come_back_as_microsoft_writes_them(sb: ArmSandbox) -> None:
    def permission(name: str) -> dict[str, Any]:
        return dict(_by_name(sb, name)[1]["value"][0]["properties"]["permissions"][0])

    def description(name: str) -> str:
        return str(_by_name(sb, name)[1]["value"][0]["properties"]["description"])

    contributor = permission("Contributor")
    assert contributor == {"actions": ["*"], "notActions": CONTRIBUTOR_NOT_ACTIONS, "dataActions": [],
                           "notDataActions": []}
    assert permission("Owner") == {"actions": ["*"], "notActions": [], "dataActions": [], "notDataActions": []}
    assert permission("Reader")["actions"] == ["*/read"]
    assert permission("User Access Administrator")["actions"] == ["*/read", "Microsoft.Authorization/*",
                                                                  "Microsoft.Support/*"]
    assert permission("Disk Backup Reader")["actions"] == [
        "Microsoft.Authorization/*/read", "Microsoft.Compute/disks/read",
        "Microsoft.Compute/disks/beginGetAccess/action"]
    assert permission("Storage Blob Data Contributor")["dataActions"] == [
        "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/delete",
        "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/read",
        "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/write",
        "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/move/action",
        "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/add/action"]
    backup_reader = permission("Backup Reader")["actions"]
    assert "Microsoft.RecoveryServices/Vaults/backupstorageconfig/read" in backup_reader
    assert len(backup_reader) == 64
    assert len(permission("Backup Contributor")["actions"]) == 89
    assert len(permission("Backup Operator")["actions"]) == 103
    assert description("Backup Operator") == ("Lets you manage backup services, except removal of backup, vault "
                                              "creation and giving access to others")
    assert description("Storage Account Contributor") == (
        "Lets you manage storage accounts, including accessing storage account keys which provide full access to "
        "storage account data.")


def test_a_name_lookup_through_azure_mgmt_authorization(auth: AuthorizationManagementClient) -> None:
    scope = f"/subscriptions/{SUB}"
    for name, guid in ROLES.items():
        [found] = list(auth.role_definitions.list(scope, filter=f"roleName eq '{name}'"))
        assert (found.name, found.role_name, found.role_type) == (guid, name, "BuiltInRole")
    [contributor] = list(auth.role_definitions.list(scope, filter="roleName eq 'Contributor'"))
    assert contributor.permissions[0].not_actions == CONTRIBUTOR_NOT_ACTIONS
    assert list(auth.role_definitions.list(scope, filter="roleName eq 'Backup Janitor'")) == []


def test_permissions_for_a_resource_carry_each_roles_not_actions(sb: ArmSandbox, clients: CloudClients) -> None:
    """``Permissions_ListForResourceGroup``: one entry per role, as the role defines it, so a client computing
    actions minus notActions sees that Contributor cannot write role assignments."""
    principal = str(uuid.uuid4())
    group = make_group(clients, "rg-roles-perm")
    _assign(sb, group, "Contributor", principal)
    status, _, body = raw(sb, "GET", f"{group}/providers/Microsoft.Authorization/permissions?api-version={API}",
                          token=sb.mint_token(principal))
    assert status == 200
    assert body["value"] == [{"actions": ["*"], "notActions": CONTRIBUTOR_NOT_ACTIONS, "dataActions": [],
                              "notDataActions": []}]
