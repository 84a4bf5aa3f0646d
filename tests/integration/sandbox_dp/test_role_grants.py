"""The app's role grants (BackupVaultProtection.ensure_role) on the sandbox: one idempotent PUT under a
deterministic name, 409 RoleAssignmentExists counted as granted, and no request while the cache knows it."""

from __future__ import annotations

from steward.cloud.arm_cache import ArmCache
from steward.cloud.protection import BackupVaultProtection, role_assignment_name

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
