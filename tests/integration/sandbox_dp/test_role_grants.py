"""The app's role grants (BackupVaultProtection.ensure_role) on the sandbox: one idempotent PUT under a
deterministic name, 409 RoleAssignmentExists counted as granted, and no request while the cache knows it."""

from __future__ import annotations

import uuid

import pytest

from steward.cloud.arm_cache import ArmCache
from steward.cloud.protection import BackupVaultProtection, RoleGranted, role_assignment_name

from .conftest import DISK, ROLE_IDS, Estate, make_vault

READER = ROLE_IDS["Disk Backup Reader"]


def _assignments(estate: Estate, scope: str, principal: str) -> list[str]:
    return [a.name for a in estate.auth.role_assignments.list_for_scope(scope, filter="atScope()")
            if a.principal_id == principal]


def test_a_grant_is_one_put_under_a_deterministic_name_and_a_repeat_changes_nothing(estate: Estate) -> None:
    rg = estate.group("grants")
    vault = make_vault(estate, rg)
    disk = estate.datasource(rg, DISK, "disk1")
    uncached = BackupVaultProtection(estate.clients)
    writes = estate.sandbox.counters.get("write")
    reads = estate.sandbox.counters.get("read")

    assert uncached.ensure_role(vault.principal_id, READER, disk) is True
    assert uncached.ensure_role(vault.principal_id, READER, disk) is True  # the same PUT again: idempotent
    assert estate.sandbox.counters.get("write") - writes == 2
    assert estate.sandbox.counters.get("read") - reads == 0  # no list first
    assert _assignments(estate, disk, vault.principal_id) == [role_assignment_name(vault.principal_id, READER, disk)]


def test_an_assignment_under_another_name_answers_409_which_counts_as_granted(estate: Estate) -> None:
    rg = estate.group("grants409")
    vault = make_vault(estate, rg)
    disk = estate.datasource(rg, DISK, "disk1")
    made_by_hand = vault.grant("Disk Backup Reader", disk).name

    assert BackupVaultProtection(estate.clients).ensure_role(vault.principal_id, READER, disk) is False
    assert _assignments(estate, disk, vault.principal_id) == [made_by_hand]


def test_a_cached_grant_costs_no_request_until_it_is_forgotten(estate: Estate) -> None:
    rg = estate.group("grantscache")
    vault = make_vault(estate, rg)
    disk = estate.datasource(rg, DISK, "disk1")
    cached = BackupVaultProtection(estate.clients, ArmCache(300))
    assert cached.ensure_role(vault.principal_id, READER, disk) is True
    writes = estate.sandbox.counters.get("write")

    assert cached.ensure_role(vault.principal_id, READER, disk) is False
    assert estate.sandbox.counters.get("write") == writes
    cached.forget_roles(vault.principal_id)
    assert cached.ensure_role(vault.principal_id, READER, disk) is True
    assert estate.sandbox.counters.get("write") == writes + 1


def test_a_grant_answers_when_the_assignment_was_made_and_a_repeat_the_same_time(estate: Estate) -> None:
    """``grant_role`` answers the assignment's ``createdOn`` (the PUT's answer): a protection that finds an assignment
    another one just made (a shared group scope) waits for it from then. The repeat PUT (another worker, no cache)
    answers the existing assignment, with its first time; a cached grant answers the time without a request."""
    rg = estate.group("grantstime")
    vault = make_vault(estate, rg)
    group = estate.group_id(rg)
    first = BackupVaultProtection(estate.clients).grant_role(vault.principal_id, READER, group)
    assert first.put and first.created_on is not None
    estate.sandbox.advance(120.0)
    again = BackupVaultProtection(estate.clients).grant_role(vault.principal_id, READER, group)
    assert again == first  # the idempotent re-PUT: the same assignment, made then
    cached = BackupVaultProtection(estate.clients, ArmCache(300))
    assert cached.grant_role(vault.principal_id, READER, group).put is True
    writes = estate.sandbox.counters.get("write")
    assert cached.grant_role(vault.principal_id, READER, group) == RoleGranted(put=False, created_on=first.created_on)
    assert estate.sandbox.counters.get("write") == writes


def test_past_the_subscriptions_limit_a_new_assignment_is_refused_400_and_an_existing_one_re_put(
    estate: Estate,
) -> None:
    """Azure RBAC: 4,000 role assignments per subscription (``role-based-access-control/troubleshoot-limits.md``);
    the sandbox's limit is lowered to what the subscription holds now."""
    from azure.core.exceptions import HttpResponseError

    from steward.cloud.errors import AzureRefusal

    rg = estate.group("grantslimit")
    vault = make_vault(estate, rg)
    disk, other = estate.datasource(rg, DISK, "disk1"), estate.datasource(rg, DISK, "disk2")
    adapter = BackupVaultProtection(estate.clients)
    assert adapter.ensure_role(vault.principal_id, READER, disk)
    held = sum(1 for _ in estate.auth.role_assignments.list_for_subscription())
    estate.sandbox.configure_role_assignment_limit(held)
    try:
        with pytest.raises(AzureRefusal) as refused:
            adapter.ensure_role(vault.principal_id, READER, other)
        assert (refused.value.status, refused.value.code) == (400, "RoleAssignmentLimitExceeded")
        with pytest.raises(HttpResponseError):  # by hand too, whoever asks
            vault.grant("Disk Backup Reader", other)
        assert adapter.ensure_role(vault.principal_id, READER, disk)  # the existing one, PUT again: fine
        assert sum(1 for _ in estate.auth.role_assignments.list_for_subscription()) == held
    finally:
        estate.sandbox.configure_role_assignment_limit(4000)


def test_at_the_limit_a_role_held_at_or_above_the_scope_counts_as_granted_with_its_time(estate: Estate) -> None:
    """Review finding 3: once Azure refuses a new assignment at the limit, the principal's assignments at and above
    the scope are listed (``atScope() and assignedTo(...)``, ``role-assignments-list-rest.md``) and a role already
    held there needs none of its own (as ``Set-AzDataProtectionMSIPermission`` skips it), answered with that
    assignment's ``createdOn``: one made moments ago may still propagate. Not held (a sibling's, another role, a
    conditional one): refused as before. Below the limit: one PUT, no list."""
    from steward.cloud.errors import AzureRefusal

    rg = estate.group("grantsheld")
    vault = make_vault(estate, rg)
    group = estate.group_id(rg)
    disk, sibling, bare = (estate.datasource(rg, DISK, n) for n in ("disk1", "disk2", "disk3"))
    snapshot = ROLE_IDS["Disk Snapshot Contributor"]
    on_group = vault.grant("Disk Backup Reader", group)
    vault.grant("Disk Snapshot Contributor", sibling)  # a sibling's: does not cover the disk
    estate.auth.role_assignments.create(group, str(uuid.uuid4()), {"properties": {  # conditional: not counted
        "roleDefinitionId": f"/subscriptions/{estate.subscription}/providers/Microsoft.Authorization/roleDefinitions/"
                            f"{ROLE_IDS['Reader']}", "principalId": vault.principal_id,
        "principalType": "ServicePrincipal", "condition": "@Resource[Microsoft.Compute/disks:name] StringEquals 'x'",
        "conditionVersion": "2.0"}})
    estate.sandbox.advance(90.0)
    estate.sandbox.configure_role_assignment_limit(sum(1 for _ in estate.auth.role_assignments.list_for_subscription()))
    try:
        reads = estate.sandbox.counters.get("read")
        held = BackupVaultProtection(estate.clients).grant_role(vault.principal_id, READER, disk)
        assert held == RoleGranted(put=False, created_on=held.created_on, held_at=group)
        assert held.created_on is not None and held.created_on[:19] == on_group.created_on.strftime("%Y-%m-%dT%H:%M:%S")
        assert estate.sandbox.counters.get("read") - reads == 1  # the one list, after the refused PUT
        for role, scope in ((snapshot, disk), (ROLE_IDS["Reader"], bare)):
            with pytest.raises(AzureRefusal) as refused:
                BackupVaultProtection(estate.clients).grant_role(vault.principal_id, role, scope)
            assert refused.value.code == "RoleAssignmentLimitExceeded"
    finally:
        estate.sandbox.configure_role_assignment_limit(4000)
    reads = estate.sandbox.counters.get("read")
    made = BackupVaultProtection(estate.clients).grant_role(vault.principal_id, snapshot, disk)
    assert made.put and made.held_at is None
    assert estate.sandbox.counters.get("read") == reads  # room: no list


def test_at_the_limit_a_list_the_app_may_not_read_leaves_azures_refusal_as_it_was(estate: Estate) -> None:
    """The look for a held role needs ``Microsoft.Authorization/roleAssignments/read`` (the deployed Reader carries
    it); an identity without it gets ARM's 403 on the list, and the grant still ends with Azure's
    ``RoleAssignmentLimitExceeded`` (the reason that names the limit and the fix), not the list's 403."""
    from sandbox.arm.providers.authorization_model import RoleAssignments, define_custom_role
    from steward.cloud.clients import CloudClients
    from steward.cloud.errors import AzureRefusal

    sb = estate.sandbox
    rg = estate.group("grantsnoread")
    vault = make_vault(estate, rg)
    disk = estate.datasource(rg, DISK, "disk1")
    vault.grant("Disk Backup Reader", estate.group_id(rg))  # held above the disk: the list would find it
    caller = "0a0d1700-0000-4000-8000-0000000000b1"
    guid = str(uuid.uuid4())
    sub = f"/subscriptions/{estate.subscription}"
    define_custom_role(sb.store, estate.subscription, guid, "Grants but reads no assignments",
                       actions=["*/read", "Microsoft.Authorization/roleAssignments/write"],
                       not_actions=["Microsoft.Authorization/roleAssignments/read"])
    sb.store.put({"id": f"{sub}/providers/Microsoft.Authorization/roleAssignments/{uuid.uuid4()}",
                  "type": "Microsoft.Authorization/roleAssignments",
                  "properties": {"roleDefinitionId": f"{sub}/providers/Microsoft.Authorization/roleDefinitions/{guid}",
                                 "principalId": caller, "principalType": "ServicePrincipal", "scope": sub}})
    sb.configure_role_assignment_limit(sum(1 for _ in estate.auth.role_assignments.list_for_subscription()))
    sb.enforce_caller_rbac(caller)
    try:
        adapter = BackupVaultProtection(CloudClients(sb.cloud_target(principal_id=caller, polling_interval=0.01)))
        with pytest.raises(AzureRefusal) as refused:
            adapter.grant_role(vault.principal_id, READER, disk)
        assert (refused.value.status, refused.value.code) == (400, "RoleAssignmentLimitExceeded")
        assert isinstance(refused.value.__cause__, AzureRefusal) and refused.value.__cause__.status == 403
    finally:
        sb.enforce_caller_rbac(caller, enforce=False)
        sb.configure_role_assignment_limit(4000)
        for record in RoleAssignments(sb.store).all():
            if record["properties"].get("principalId") == caller:
                sb.store.delete(record["id"], with_children=False)
