"""Azure RBAC's role assignment limit per subscription, as the sandbox models it.

Source: MicrosoftDocs/azure-docs ``articles/role-based-access-control/troubleshoot-limits.md``: "Azure supports up to
4000 role assignments per subscription. This limit includes role assignments at the subscription, resource group,
and resource scopes, but not at the management group scope"; "No more role assignments can be created (code:
RoleAssignmentLimitExceeded)". The HTTP status, 400, is inferred.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from sandbox.arm.config import SandboxConfig
from sandbox.arm.errors import ArmError
from sandbox.arm.providers.authorization_model import RoleAssignments, new_assignment_name, role_guid
from sandbox.arm.store import ResourceStore

SUB = "00000000-0000-4000-8000-000000000001"
OTHER = "00000000-0000-4000-8000-000000000002"
NOW = datetime(2026, 1, 1, tzinfo=UTC)


def _grant(roles: RoleAssignments, scope: str, principal: str, name: str | None = None,
           role: str = "Reader") -> tuple[dict[str, object], bool]:
    return roles.create(scope, name or new_assignment_name(),
                        {"roleDefinitionId": role_guid(role), "principalId": principal}, now=NOW, created_by=None)


def test_the_default_limit_is_azures_4000() -> None:
    assert SandboxConfig().role_assignments_per_subscription == 4000


def test_a_new_assignment_past_the_limit_is_refused_and_a_re_put_of_an_existing_one_is_not() -> None:
    roles = RoleAssignments(ResourceStore(), limit=lambda: 3)
    group = f"/subscriptions/{SUB}/resourceGroups/rg"
    resource = f"{group}/providers/Microsoft.Compute/disks/d1"
    kept = new_assignment_name()
    # the subscription, a group and a resource all count
    _grant(roles, f"/subscriptions/{SUB}", "p1")
    _grant(roles, group, "p2")
    _grant(roles, resource, "p3", name=kept)
    assert roles.count_in_subscription(SUB) == 3

    with pytest.raises(ArmError) as refused:
        _grant(roles, resource, "p4")
    assert (refused.value.status, refused.value.code) == (400, "RoleAssignmentLimitExceeded")
    assert "No more role assignments can be created" in refused.value.message
    assert "holds 3 role assignments, the limit per subscription (3;" in refused.value.message
    assert roles.count_in_subscription(SUB) == 3  # nothing was made

    record, created = _grant(roles, resource, "p3", name=kept)  # idempotent re-PUT: still fine
    assert created is False and record["name"] == kept
    # another subscription has its own count
    _grant(roles, f"/subscriptions/{OTHER}/resourceGroups/rg", "p1")
    assert roles.count_in_subscription(OTHER) == 1


def test_a_deleted_assignment_frees_its_place() -> None:
    roles = RoleAssignments(ResourceStore(), limit=lambda: 1)
    group = f"/subscriptions/{SUB}/resourceGroups/rg"
    name = new_assignment_name()
    _grant(roles, group, "p1", name=name)
    with pytest.raises(ArmError):
        _grant(roles, group, "p2")
    roles.delete(group, name)
    _grant(roles, group, "p2")
    assert roles.count_in_subscription(SUB) == 1


def test_without_a_limit_nothing_is_refused() -> None:
    roles = RoleAssignments(ResourceStore())
    for index in range(5):
        _grant(roles, f"/subscriptions/{SUB}/resourceGroups/rg{index}", "p1")
    assert roles.count_in_subscription(SUB) == 5
