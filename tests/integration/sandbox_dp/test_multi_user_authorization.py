"""Multi-user authorization on a Backup vault: resource guard proxies, protected operations, unlockDelete."""

from __future__ import annotations

import pytest
from azure.core.exceptions import HttpResponseError

from sandbox.arm.providers.dataprotection import grant_resource_guard_access, revoke_resource_guard_access

from .conftest import Estate, ProtectedDisk, error_code, protected_disk

GUARD = "/subscriptions/00000000-0000-4000-8000-000000000002/resourceGroups/security/providers/" \
        "Microsoft.DataProtection/resourceGuards/guard"
MUA = "UserErrorCriticalOperationNotAuthorizedByResourceGuard"


def guarded(estate: Estate, excluded: list[str] | None = None) -> ProtectedDisk:
    protected = protected_disk(estate)
    v = protected.vault
    properties: dict[str, object] = {"resourceGuardResourceId": GUARD}
    if excluded:
        properties["vaultCriticalOperationExclusionList"] = excluded
    estate.dp.dpp_resource_guard_proxy.create_or_update(v.rg, v.name, "DppResourceGuardProxy",
                                                        {"properties": properties})
    return protected


def test_a_guarded_vault_says_so_and_lists_its_proxy(estate: Estate) -> None:
    protected = guarded(estate)
    v = protected.vault
    assert estate.dp.backup_vaults.get(v.rg, v.name).properties.is_vault_protected_by_resource_guard is True
    proxies = list(estate.dp.dpp_resource_guard_proxy.list(v.rg, v.name))
    assert [p.properties.resource_guard_resource_id for p in proxies] == [GUARD]


def test_protected_operations_need_the_security_admin_grant(estate: Estate) -> None:
    protected = guarded(estate)
    v = protected.vault
    with pytest.raises(HttpResponseError) as deleting:
        estate.dp.backup_instances.begin_delete(v.rg, v.name, "bi").result()
    assert error_code(deleting.value) == MUA
    assert "resource guard" in str(deleting.value)
    with pytest.raises(HttpResponseError) as stopping:
        estate.dp.backup_instances.begin_stop_protection(v.rg, v.name, "bi").result()
    assert error_code(stopping.value) == MUA
    with pytest.raises(HttpResponseError) as disabling:
        estate.dp.backup_vaults.begin_update(v.rg, v.name, {"properties": {"securitySettings": {
            "softDeleteSettings": {"state": "Off", "retentionDurationInDays": 14}}}}).result()
    assert error_code(disabling.value) == MUA

    grant_resource_guard_access(estate.sandbox.ctx, v.id, minutes=30)
    estate.dp.backup_instances.begin_stop_protection(v.rg, v.name, "bi").result()
    estate.dp.backup_instances.begin_delete(v.rg, v.name, "bi").result()

    estate.sandbox.advance(31 * 60)  # the grant has lapsed
    with pytest.raises(HttpResponseError):
        estate.dp.backup_vaults.begin_update(v.rg, v.name, {"properties": {"securitySettings": {
            "softDeleteSettings": {"state": "Off", "retentionDurationInDays": 14}}}}).result()


def test_excluded_operations_are_not_protected(estate: Estate) -> None:
    protected = guarded(estate, excluded=["deleteBackupInstance"])
    v = protected.vault
    estate.dp.backup_instances.begin_delete(v.rg, v.name, "bi").result()


def test_disabling_mua_needs_an_unlock_which_needs_the_grant(estate: Estate) -> None:
    protected = guarded(estate)
    v = protected.vault
    proxy_id = f"{v.id}/backupResourceGuardProxies/DppResourceGuardProxy"
    proxies = estate.dp.dpp_resource_guard_proxy
    with pytest.raises(HttpResponseError) as without_unlock:
        proxies.delete(v.rg, v.name, "DppResourceGuardProxy")
    assert error_code(without_unlock.value) == MUA
    with pytest.raises(HttpResponseError) as without_grant:
        proxies.unlock_delete(v.rg, v.name, "DppResourceGuardProxy", {"resourceToBeDeleted": proxy_id})
    assert error_code(without_grant.value) == MUA

    grant_resource_guard_access(estate.sandbox.ctx, v.id)
    unlocked = proxies.unlock_delete(v.rg, v.name, "DppResourceGuardProxy", {"resourceToBeDeleted": proxy_id})
    assert unlocked.unlock_delete_expiry_time
    revoke_resource_guard_access(estate.sandbox.ctx, v.id)
    with pytest.raises(HttpResponseError):  # revoking the grant also closes open unlocks
        proxies.delete(v.rg, v.name, "DppResourceGuardProxy")

    grant_resource_guard_access(estate.sandbox.ctx, v.id)
    proxies.unlock_delete(v.rg, v.name, "DppResourceGuardProxy", {"resourceToBeDeleted": proxy_id})
    proxies.delete(v.rg, v.name, "DppResourceGuardProxy")
    assert list(proxies.list(v.rg, v.name)) == []
    assert estate.dp.backup_vaults.get(v.rg, v.name).properties.is_vault_protected_by_resource_guard is False
