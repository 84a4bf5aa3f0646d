"""The wait the app takes between looks at a VM's protection operation comes from Azure's Retry-After
(RecoveryServicesProtection.begin_enable): ARM sends whole seconds; the sandbox's real-millisecond hint at other
clock scales (``retry-after-ms``) is not a wait a durable timer can use and is not read."""

from __future__ import annotations

from typing import Any

from steward import bootstrap
from steward.cloud.arm_cache import ArmCache
from steward.cloud.protection import RecoveryServicesProtection
from steward.domain.kernel import VaultKind
from steward.domain.protection_results import VaultRecord, VmProtectionBegun
from tests.integration.sandbox_rs.conftest import TIMING, Estate


def test_begin_enable_hands_back_azures_retry_after(estate: Estate) -> None:
    rg = estate.group()
    vault = estate.vault(rg)
    adapter = RecoveryServicesProtection(estate.clients)
    operations = estate.sandbox.operations
    mode = operations.retry_after_mode
    try:
        operations.retry_after_mode = "azure"  # what ARM sends: Retry-After in whole seconds
        started = adapter.begin_enable(vault.id, estate.vm(rg, "azurewait"), f"{vault.id}/backupPolicies/DefaultPolicy")
        assert started.operation
        assert started.retry_after == TIMING.retry_after
        operations.retry_after_mode = "fast"  # the sandbox's real-millisecond hint: no wait the app can use
        started = adapter.begin_enable(vault.id, estate.vm(rg, "fastwait"), f"{vault.id}/backupPolicies/DefaultPolicy")
        assert started.operation and started.retry_after is None
    finally:
        operations.retry_after_mode = mode


def test_the_protection_activities_write_camel_case_records(estate: Estate, monkeypatch: Any) -> None:
    """Issue 16 step 4: the activities' results are records of the one codec (camelCase keys). Before, the VM's
    wait went out as ``retry_after`` and the facts and vaults as ``dataclasses.asdict`` (``provisioning_state``,
    ``principal_id`` ...)."""
    from activities import protection as activities

    monkeypatch.setattr(bootstrap, "clients", lambda: estate.clients)
    monkeypatch.setattr(bootstrap, "arm_cache", lambda: ArmCache(300))
    rg = estate.group()
    vault = estate.vault(rg, "rsv-records")
    vm = estate.vm(rg, "camelvm")
    operations = estate.sandbox.operations
    mode = operations.retry_after_mode
    try:
        operations.retry_after_mode = "azure"
        begun = _activity(activities.begin_vm_protection)(
            {"resource_id": vm, "vault_id": str(vault.id), "policy": "DefaultPolicy"})
    finally:
        operations.retry_after_mode = mode
    assert begun["ok"] is True and begun["retryAfter"] == TIMING.retry_after and "retry_after" not in begun
    assert VmProtectionBegun.from_record(begun).operation == begun["operation"]
    facts = _activity(activities.describe_resource)({"resource_id": vm})
    assert {"managedBy", "createdAt", "provisioningState"} <= set(facts) and "provisioning_state" not in facts
    vaults = _activity(activities.find_vaults)(
        {"kind": "RecoveryServices", "subscription_id": estate.subscription, "region": "westeurope"})
    mine = next(v for v in vaults if v["id"] == str(vault.id))
    assert {"principalId", "tenantId"} <= set(mine) and "principal_id" not in mine
    assert VaultRecord.from_record(mine).kind is VaultKind.RECOVERY_SERVICES


def _activity(function: Any) -> Any:
    return function._function.get_user_function() if hasattr(function, "_function") else function
