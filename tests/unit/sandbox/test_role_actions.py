"""ARM's evaluation of built-in roles (MicrosoftDocs/azure-docs ``role-based-access-control/role-definitions.md``):
a role grants its actions minus its notActions, ``*`` is a wildcard anywhere in an action string, case does not
matter, and a principal's permissions are the union over its roles (notActions is no deny)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from sandbox.arm.providers.authorization_model import (
    ROLES_BY_NAME,
    RoleAssignments,
    grant_built_in_role,
    role_allows,
)
from sandbox.arm.store import ResourceStore

SUB = "00000000-0000-4000-8000-000000000001"
GROUP = f"/subscriptions/{SUB}/resourceGroups/rg"
VAULT = f"{GROUP}/providers/Microsoft.RecoveryServices/vaults/v1"
ASSIGN = "Microsoft.Authorization/roleAssignments/write"


def allowed(role: str, action: str) -> bool:
    return role_allows(ROLES_BY_NAME[role.lower()], action)


@pytest.mark.parametrize(("role", "action", "expected"), [
    ("Owner", ASSIGN, True),
    ("Contributor", ASSIGN, False),  # notActions Microsoft.Authorization/*/Write
    ("Contributor", "microsoft.authorization/roleassignments/WRITE", False),  # any case
    ("Contributor", "Microsoft.Authorization/roleAssignments/read", True),
    ("Contributor", "Microsoft.Authorization/locks/delete", False),  # Microsoft.Authorization/*/Delete
    ("Contributor", "Microsoft.RecoveryServices/vaults/delete", True),
    ("Reader", "Microsoft.RecoveryServices/vaults/read", True),
    ("Reader", "Microsoft.RecoveryServices/vaults/delete", False),
    ("User Access Administrator", ASSIGN, True),
    ("Role Based Access Control Administrator", ASSIGN, True),
    ("Role Based Access Control Administrator", "Microsoft.Authorization/roleDefinitions/write", False),
    ("Backup Reader", "Microsoft.RecoveryServices/Vaults/backupstorageconfig/read", True),
    ("Backup Reader", "Microsoft.RecoveryServices/Vaults/backupstorageconfig/write", False),
    ("Backup Operator", "Microsoft.RecoveryServices/Vaults/backupstorageconfig/write", True),
    ("Backup Operator", "Microsoft.RecoveryServices/Vaults/backupFabrics/protectionContainers/protectedItems/delete",
     False),  # "except removal of backup"
    ("Backup Contributor", "Microsoft.RecoveryServices/Vaults/backupFabrics/protectionContainers/protectedItems/"
     "delete", True),
    ("Backup Contributor", "Microsoft.RecoveryServices/Vaults/delete", False),  # "can't delete vaults"
    ("Disk Backup Reader", "Microsoft.Authorization/roleAssignments/read", True),  # wildcard mid-string
    ("Disk Backup Reader", "Microsoft.Compute/disks/write", False),
    ("Storage Account Contributor", "Microsoft.Storage/storageAccounts/write", True),
    ("Storage Blob Data Contributor", "Microsoft.Storage/storageAccounts/write", False),
    ("Virtual Machine Contributor", "Microsoft.Compute/virtualMachines/start/action", True),
])
def test_a_role_grants_its_actions_minus_its_not_actions(role: str, action: str, expected: bool) -> None:
    assert allowed(role, action) is expected


def test_the_union_over_roles_lets_another_role_grant_what_one_role_excludes() -> None:
    store = ResourceStore()
    now = datetime(2026, 1, 1, tzinfo=UTC)
    store.put({"id": GROUP, "name": "rg", "type": "Microsoft.Resources/resourceGroups"})
    grant_built_in_role(store, "p1", "Contributor", GROUP, now)
    roles = RoleAssignments(store)
    assert not roles.allows("p1", ASSIGN, VAULT)
    assert roles.allows("p1", "Microsoft.RecoveryServices/vaults/write", VAULT)
    grant_built_in_role(store, "p1", "User Access Administrator", f"/subscriptions/{SUB}", now)
    assert roles.allows("p1", ASSIGN, VAULT)
    assert not roles.allows("p2", "Microsoft.RecoveryServices/vaults/read", VAULT)
