"""Multi-user authorization on a Backup vault: resource guard proxies, protected operations, unlockDelete.

The grant and the unlock are windows of Azure time (minutes), so this module's sandbox runs on the discrete-event
clock the benchmarks use: Azure time moves only when the test waits on it (an LRO's poll, ``advance``), never with
the machine's load. On the conftest's scaled clock (1 real s = 1 Azure hour) a 30-minute unlock lasted half a real
second and lapsed under load before the delete it opened was sent.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from azure.core.exceptions import HttpResponseError

from sandbox.arm.config import PropagationConfig, SandboxConfig
from sandbox.arm.providers.dataprotection import grant_resource_guard_access, revoke_resource_guard_access
from sandbox.arm.server import ArmSandbox
from tests.integration.clock_held import held_by_the_test, on_a_discrete_clock

from .conftest import PROVIDERS, SUBSCRIPTIONS, Estate, ProtectedDisk, Vault, error_code, protected_disk

GUARD = "/subscriptions/00000000-0000-4000-8000-000000000002/resourceGroups/security/providers/" \
        "Microsoft.DataProtection/resourceGuards/guard"
MUA = "UserErrorCriticalOperationNotAuthorizedByResourceGuard"


@pytest.fixture(scope="module")
def sandbox() -> Iterator[ArmSandbox]:
    """The conftest's sandbox on a ``DiscreteClock`` installed as the app's ``azure_time`` (the SDK's LRO polls
    wait on it)."""
    yield from on_a_discrete_clock(lambda clock: SandboxConfig(
        clock=clock, page_size=2, providers=PROVIDERS, subscriptions=SUBSCRIPTIONS,
        propagation=PropagationConfig(rbac_seconds=0)))


@pytest.fixture(autouse=True)
def test_holds_the_clock(sandbox: ArmSandbox) -> Iterator[None]:
    yield from held_by_the_test(sandbox)


def guarded(estate: Estate, excluded: list[str] | None = None) -> ProtectedDisk:
    protected = protected_disk(estate)
    v = protected.vault
    properties: dict[str, object] = {"resourceGuardResourceId": GUARD}
    if excluded:
        properties["vaultCriticalOperationExclusionList"] = excluded
    estate.dp.dpp_resource_guard_proxy.create_or_update(v.rg, v.name, "DppResourceGuardProxy",
                                                        {"properties": properties})
    return protected


def unlock_instance(estate: Estate, v: Vault, name: str, requests: list[str] | None = None) -> object:
    """The unlockDelete Microsoft's clients send before deleting a backup instance (CLI operation_request_map)."""
    rg, vault, vault_id = v.rg, v.name, v.id
    body = {
        "resourceGuardOperationRequests": requests if requests is not None
        else [f"{GUARD}/deleteBackupInstanceRequests/default"],
        "resourceToBeDeleted": f"{vault_id}/backupInstances/{name}",
    }
    return estate.dp.dpp_resource_guard_proxy.unlock_delete(rg, vault, "DppResourceGuardProxy", body)


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
    unlock_instance(estate, v, "bi")
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
    disable_mua = {"resourceGuardOperationRequests": [f"{GUARD}/deleteResourceGuardProxyRequests/default"],
                   "resourceToBeDeleted": proxy_id}
    with pytest.raises(HttpResponseError) as without_unlock:
        proxies.delete(v.rg, v.name, "DppResourceGuardProxy")
    assert error_code(without_unlock.value) == MUA
    with pytest.raises(HttpResponseError) as without_grant:
        proxies.unlock_delete(v.rg, v.name, "DppResourceGuardProxy", disable_mua)
    assert error_code(without_grant.value) == MUA

    grant_resource_guard_access(estate.sandbox.ctx, v.id)
    unlocked = proxies.unlock_delete(v.rg, v.name, "DppResourceGuardProxy", disable_mua)
    assert unlocked.unlock_delete_expiry_time
    revoke_resource_guard_access(estate.sandbox.ctx, v.id)
    with pytest.raises(HttpResponseError):  # revoking the grant also closes open unlocks
        proxies.delete(v.rg, v.name, "DppResourceGuardProxy")

    grant_resource_guard_access(estate.sandbox.ctx, v.id)
    proxies.unlock_delete(v.rg, v.name, "DppResourceGuardProxy", disable_mua)
    proxies.delete(v.rg, v.name, "DppResourceGuardProxy")
    assert list(proxies.list(v.rg, v.name)) == []
    assert estate.dp.backup_vaults.get(v.rg, v.name).properties.is_vault_protected_by_resource_guard is False


def test_the_proxy_names_the_operation_requests_azure_computes_from_the_guard(estate: Estate) -> None:
    """S-DP PutResourceGuardProxy.json: the request names only the guard; the answer lists the operations."""
    v = guarded(estate).vault
    proxy = estate.dp.dpp_resource_guard_proxy.get(v.rg, v.name, "DppResourceGuardProxy")
    details = {d.vault_critical_operation: d.default_resource_request
               for d in proxy.properties.resource_guard_operation_details}
    assert details == {
        "Microsoft.DataProtection/backupVaults/backupInstances/delete": f"{GUARD}/deleteBackupInstanceRequests/default",
        "Microsoft.DataProtection/backupVaults/backupResourceGuardProxies/delete":
            f"{GUARD}/deleteResourceGuardProxyRequests/default",
    }


def test_a_grant_alone_does_not_delete_an_instance_the_unlock_must_name_its_request(estate: Estate) -> None:
    v = guarded(estate).vault
    grant_resource_guard_access(estate.sandbox.ctx, v.id, minutes=60)
    estate.dp.backup_instances.begin_stop_protection(v.rg, v.name, "bi").result()
    with pytest.raises(HttpResponseError) as granted_only:
        estate.dp.backup_instances.begin_delete(v.rg, v.name, "bi").result()
    assert error_code(granted_only.value) == MUA
    every = [f"{GUARD}/deleteBackupInstanceRequests/default", f"{GUARD}/deleteResourceGuardProxyRequests/default"]
    for wrong in ([], every, [f"{GUARD}/deleteResourceGuardProxyRequests/default"]):
        with pytest.raises(HttpResponseError) as refused:
            unlock_instance(estate, v, "bi", wrong)
        assert error_code(refused.value) == MUA and "deleteBackupInstanceRequests" in str(refused.value)
    with pytest.raises(HttpResponseError):
        estate.dp.backup_instances.begin_delete(v.rg, v.name, "bi").result()
    unlock_instance(estate, v, "bi")
    estate.dp.backup_instances.begin_delete(v.rg, v.name, "bi").result()
