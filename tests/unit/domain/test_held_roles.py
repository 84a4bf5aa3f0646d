"""steward.domain.held_roles: which listed assignment gives the vault identity a role on a scope (review finding 3)."""

from __future__ import annotations

from typing import Any

from steward.domain.held_roles import HeldRole, held_role

SUB = "/subscriptions/00000000-0000-0000-0000-000000000001"
GROUP = f"{SUB}/resourceGroups/rg-a"
DISK = f"{GROUP}/providers/Microsoft.Compute/disks/d1"
ME = "11111111-1111-4111-8111-111111111111"
ROLE = "3e5e47e6-65f7-47ef-90b5-e5dd4d455f24"


def _assignment(scope: str, *, role: str = ROLE, principal: str = ME, created: str | None = "2026-01-01T00:00:00Z",
                condition: str | None = None) -> dict[str, Any]:
    return {"id": f"{scope}/providers/Microsoft.Authorization/roleAssignments/x", "properties": {
        "roleDefinitionId": f"{SUB}/providers/Microsoft.Authorization/roleDefinitions/{role.upper()}",
        "principalId": principal.upper(), "scope": scope, "createdOn": created, "condition": condition}}


def test_the_role_held_at_the_group_or_the_subscription_covers_the_disk_and_the_oldest_is_answered() -> None:
    found = held_role([_assignment(GROUP, created="2026-03-01T10:00:00.1234567Z"),
                       _assignment(SUB, created="2026-02-01T00:00:00Z")], ME, ROLE, DISK)
    assert found == HeldRole(scope=SUB, created_on="2026-02-01T00:00:00Z")
    assert held_role([_assignment("/")], ME, ROLE, DISK) == HeldRole(scope="/", created_on="2026-01-01T00:00:00Z")
    assert held_role([_assignment(GROUP, created=None)], ME, ROLE, DISK) == HeldRole(scope=GROUP, created_on=None)


def test_what_does_not_give_the_principal_the_role_on_the_scope_is_not_held() -> None:
    others = [
        _assignment(f"{GROUP}/providers/Microsoft.Compute/disks/d2"),  # a sibling
        _assignment(f"{SUB}/resourceGroups/rg-a2"),  # a group sharing the prefix
        _assignment(f"{DISK}/x/y"),  # below the scope
        _assignment(GROUP, role="7efff54f-a5b4-42b5-a1c5-5411624893ce"),  # another role
        _assignment(GROUP, principal="22222222-2222-4222-8222-222222222222"),  # another principal
        _assignment(GROUP, condition="@Resource[name] StringEquals 'd1'"),  # conditional: may grant less
        _assignment("/providers/Microsoft.Management/managementGroups/mg"),  # not read: not counted
        {"properties": None},
    ]
    assert held_role(others, ME, ROLE, DISK) is None
