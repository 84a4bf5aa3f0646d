"""Role assignments and built-in role definitions through the real ``AuthorizationManagementClient``."""

from __future__ import annotations

import uuid

import pytest
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError

from sandbox.arm.config import SECOND_SUBSCRIPTION
from sandbox.arm.providers.authorization_model import RoleAssignments, grant_built_in_role

from .conftest import ROLE_IDS, STORAGE, Estate

PRINCIPAL = "0f0f0f0f-0000-4000-8000-000000000001"


def assign(estate: Estate, scope: str, role: str, principal: str = PRINCIPAL, name: str | None = None) -> object:
    sub = estate.subscription
    return estate.auth.role_assignments.create(scope, name or str(uuid.uuid4()), {"properties": {
        "roleDefinitionId": f"/subscriptions/{sub}/providers/Microsoft.Authorization/roleDefinitions/{ROLE_IDS[role]}",
        "principalId": principal, "principalType": "ServicePrincipal"}})


def test_create_get_list_delete(estate: Estate) -> None:
    rg = estate.group("rbac")
    account = estate.datasource(rg, STORAGE, "account1")
    name = str(uuid.uuid4())
    created = assign(estate, account, "Storage Account Backup Contributor", name=name)
    assert created.name == name
    assert created.scope.lower() == account.lower()
    assert created.role_definition_id.endswith(ROLE_IDS["Storage Account Backup Contributor"])

    got = estate.auth.role_assignments.get(account, name)
    assert got.principal_id == PRINCIPAL
    assert [a.name for a in estate.auth.role_assignments.list_for_scope(account)] == [name]

    estate.auth.role_assignments.delete(account, name)
    with pytest.raises(ResourceNotFoundError):
        estate.auth.role_assignments.get(account, name)
    assert estate.auth.role_assignments.delete(account, name) is None  # 204: nothing left to delete


def test_the_same_principal_role_and_scope_twice_is_409_role_assignment_exists(estate: Estate) -> None:
    rg = estate.group("dup")
    scope = estate.group_id(rg)
    assign(estate, scope, "Reader")
    with pytest.raises(ResourceExistsError) as caught:
        assign(estate, scope, "Reader")
    assert caught.value.status_code == 409
    assert caught.value.error.code == "RoleAssignmentExists"
    assign(estate, scope, "Reader", principal=str(uuid.uuid4()))  # another principal is fine


def test_re_put_of_the_same_assignment_is_idempotent(estate: Estate) -> None:
    rg = estate.group("same")
    name = str(uuid.uuid4())
    first = assign(estate, estate.group_id(rg), "Reader", name=name)
    again = assign(estate, estate.group_id(rg), "Reader", name=name)
    assert first.id == again.id
    with pytest.raises(HttpResponseError) as caught:
        assign(estate, estate.group_id(rg), "Owner", name=name)
    assert caught.value.error.code == "RoleAssignmentUpdateNotPermitted"


def test_invalid_name_unknown_role_and_missing_scope_are_refused(estate: Estate) -> None:
    rg = estate.group("bad")
    with pytest.raises(HttpResponseError) as not_guid:
        assign(estate, estate.group_id(rg), "Reader", name="not-a-guid")
    assert not_guid.value.error.code == "InvalidRoleAssignmentId"

    with pytest.raises(HttpResponseError) as unknown:
        estate.auth.role_assignments.create(estate.group_id(rg), str(uuid.uuid4()), {"properties": {
            "roleDefinitionId": f"/subscriptions/{estate.subscription}/providers/Microsoft.Authorization/"
                                f"roleDefinitions/{uuid.uuid4()}", "principalId": PRINCIPAL}})
    assert unknown.value.error.code == "RoleDefinitionDoesNotExist"

    with pytest.raises(ResourceNotFoundError):
        assign(estate, f"{estate.group_id(rg)}/providers/{STORAGE}/ghost", "Reader")
    with pytest.raises(ResourceNotFoundError) as no_group:
        assign(estate, estate.group_id("no-such-group"), "Reader")
    assert no_group.value.error.code == "ResourceGroupNotFound"


def test_list_filters_at_scope_and_principal(estate: Estate) -> None:
    rg = estate.group("filters")
    group = estate.group_id(rg)
    account = estate.datasource(rg, STORAGE, "account1")
    other = str(uuid.uuid4())
    on_group = assign(estate, group, "Reader")
    on_account = assign(estate, account, "Storage Account Backup Contributor")
    for_other = assign(estate, account, "Reader", principal=other)

    at_group = {a.name for a in estate.auth.role_assignments.list_for_scope(group, filter="atScope()")}
    assert on_group.name in at_group and on_account.name not in at_group

    below_too = {a.name for a in estate.auth.role_assignments.list_for_scope(group)}
    assert {on_group.name, on_account.name, for_other.name} <= below_too

    at_account = {a.name for a in estate.auth.role_assignments.list_for_scope(account, filter="atScope()")}
    assert {on_group.name, on_account.name, for_other.name} <= at_account  # inherited from the group

    mine = {a.name for a in estate.auth.role_assignments.list_for_scope(
        account, filter=f"atScope() and principalId eq '{other}'")}
    assert mine == {for_other.name}

    in_sub = {a.name for a in estate.auth.role_assignments.list_for_subscription(
        filter=f"principalId eq '{other}'")}
    assert for_other.name in in_sub


def test_at_scope_and_assigned_to_lists_what_the_principal_holds_at_and_above_a_resource(estate: Estate) -> None:
    """``$filter=atScope() and assignedTo('{objectId}')`` on a resource: "role assignments for the specified user or
    service principal and at the specified scope" - at it and above it (subscription, group), never below it nor
    on a sibling, never another principal's (MicrosoftDocs/azure-docs ``role-based-access-control/
    role-assignments-list-rest.md``, the filter table; authorization spec 2022-04-01 ``RoleAssignmentFilter
    Parameter``: "atScope() to return all role assignments at or above the scope"). How the app finds a role the
    vault identity already holds above a disk once Azure refused a new assignment at the limit."""
    sub = f"/subscriptions/{estate.subscription}"
    rg = estate.group("held")
    account = estate.datasource(rg, STORAGE, "held1")
    sibling = estate.datasource(rg, STORAGE, "held2")
    principal, other = str(uuid.uuid4()), str(uuid.uuid4())
    covering = {assign(estate, scope, "Reader", principal=principal).name for scope in (sub, estate.group_id(rg))}
    on_account = assign(estate, account, "Storage Account Backup Contributor", principal=principal).name
    on_sibling = assign(estate, sibling, "Storage Account Backup Contributor", principal=principal).name
    theirs = assign(estate, account, "Reader", principal=other).name

    held = {a.name: a for a in estate.auth.role_assignments.list_for_scope(
        account, filter=f"atScope() and assignedTo('{principal}')")}
    assert set(held) == covering | {on_account}
    assert on_sibling not in held and theirs not in held
    assert all(a.created_on is not None for a in held.values())  # the answer tells how new each one is
    from_group = {a.name for a in estate.auth.role_assignments.list_for_scope(
        estate.group_id(rg), filter=f"atScope() and assignedTo('{principal}')")}
    assert from_group == covering  # the account's own is below the group: left out


def test_built_in_role_definitions_by_name_and_id(estate: Estate) -> None:
    scope = f"/subscriptions/{estate.subscription}"
    for name, guid in ROLE_IDS.items():
        found = list(estate.auth.role_definitions.list(scope, filter=f"roleName eq '{name}'"))
        assert [r.name for r in found] == [guid]
        assert found[0].role_name == name
        assert estate.auth.role_definitions.get(scope, guid).role_name == name
    everything = {r.role_name for r in estate.auth.role_definitions.list(scope)}
    assert {"Backup Contributor", "Contributor", "Owner", "Reader"} <= everything
    with pytest.raises(ResourceNotFoundError):
        estate.auth.role_definitions.get(scope, str(uuid.uuid4()))


def test_the_subscription_list_holds_what_is_at_above_and_below_it_page_by_page(estate: Estate) -> None:
    """``RoleAssignments_ListForSubscription`` without a filter: the assignments at the subscription, above it and
    below it (groups, resources), page by page on ``nextLink`` (authorization spec 2022-04-01, ``x-ms-pageable``);
    ``atScope()`` leaves out those below ("not including the role assignments at subscopes",
    role-assignments-list-rest.md). What counts against the 4,000 per subscription is the part whose scope starts
    with the subscription's (troubleshoot-limits.md: ``Where-Object {$_.scope.StartsWith($scope)}``)."""
    sub = f"/subscriptions/{estate.subscription}"
    rg = estate.group("quota")
    account = estate.datasource(rg, STORAGE, "quota1")
    principal = str(uuid.uuid4())
    mine = {assign(estate, scope, "Reader", principal=principal).name
            for scope in (sub, estate.group_id(rg), account)}
    above = str(uuid.uuid4())
    grant_built_in_role(estate.sandbox.store, above, "Reader", "/", estate.sandbox.clock.now())
    elsewhere = assign(estate, estate.group_id(estate.group("quota-other", subscription=SECOND_SUBSCRIPTION),
                                               SECOND_SUBSCRIPTION), "Reader", principal=principal)
    try:
        pages = [list(page) for page in estate.auth.role_assignments.list_for_subscription().by_page()]
        listed = {a.name: a for page in pages for a in page}
        assert len(pages) > 1 and all(len(page) <= 2 for page in pages)  # the sandbox's page size here: 2
        assert mine <= set(listed) and elsewhere.name not in listed
        [root] = [a for a in listed.values() if a.principal_id == above]
        assert root.scope == "/"
        counted = {n for n, a in listed.items() if a.scope.lower() == sub.lower()
                   or a.scope.lower().startswith(sub.lower() + "/")}
        assert mine <= counted and root.name not in counted
        at_scope = {a.name for a in estate.auth.role_assignments.list_for_subscription(filter="atScope()")}
        assert root.name in at_scope and mine & at_scope == {n for n in mine if listed[n].scope == sub}
    finally:
        estate.sandbox.store.delete(root_id(above, estate), with_children=False)


def root_id(principal: str, estate: Estate) -> str:
    [record] = [r for r in RoleAssignments(estate.sandbox.store).all()
                if r["properties"].get("principalId") == principal]
    return str(record["id"])
