"""The worker's ARM cache (steward/cloud/arm_cache.py) on the VM path: a vault or policy deleted by hand while the
cache still names it costs one refused protection, not five minutes of them.

``begin_vm_protection`` reads the vault (from the cached vault list) and the policy id (cached) and PUTs the
protected item. When the vault is gone, the policy GET answers 404 and the activity answers PolicyNotFound: the
cached vault list must be dropped, as the Backup-vault path does, or every VM of the region is sent to the deleted
vault until the entry expires. When the policy is gone but its id is cached, Azure refuses the PUT: the cached id
must be dropped so the next attempt reads the policy again.
"""

from __future__ import annotations

from typing import Any

import pytest

from activities import protection as protection_activities
from steward import bootstrap
from steward.cloud import arm_cache
from steward.cloud.arm_cache import ArmCache
from steward.cloud.errors import NotFound
from steward.cloud.protection import RecoveryServicesProtection, VaultCreator
from steward.domain import vault_defaults
from steward.domain.kernel import VaultKind
from steward.domain.protection_results import VaultRecord

from .conftest import Estate


def _activity(function: Any) -> Any:
    return function._function.get_user_function() if hasattr(function, "_function") else function


@pytest.fixture
def cache(estate: Estate, monkeypatch: pytest.MonkeyPatch) -> ArmCache:
    made = ArmCache(300)
    monkeypatch.setattr(bootstrap, "clients", lambda: estate.clients)
    monkeypatch.setattr(bootstrap, "arm_cache", lambda: made)
    return made


def _warm(estate: Estate, cache: ArmCache, vault_id: str) -> RecoveryServicesProtection:
    adapter = RecoveryServicesProtection(estate.clients, cache)
    assert vault_id in [v.id for v in adapter.vaults_in(estate.subscription, "westeurope")]
    assert adapter.policy_id(vault_id, "DefaultPolicy") is not None
    return adapter


def test_a_vault_deleted_while_cached_is_forgotten_after_one_refusal(estate: Estate, cache: ArmCache) -> None:
    rg = estate.group("stalevault")
    vault = estate.vault(rg, "rsv-gone")
    vm = estate.vm(rg)
    _warm(estate, cache, str(vault.id))
    estate.rs().vaults.begin_delete(rg, "rsv-gone").result()
    key = arm_cache.vaults_key(VaultKind.RECOVERY_SERVICES, estate.subscription)
    assert cache.get(key) is not None  # the cache still offers the deleted vault

    request = {"resource_id": vm, "vault_id": str(vault.id), "policy": "DefaultPolicy"}
    # the PUT to the deleted vault answers 404: the activity fails (the orchestrator's backoff calls it again)
    with pytest.raises(NotFound):
        _activity(protection_activities.begin_vm_protection)(request)

    # the next protection of the region lists the vaults again instead of choosing the deleted one, and the
    # retry reads the policy again instead of PUTting to the deleted vault for the cache's remaining minutes
    assert cache.get(key) is None
    assert cache.get(arm_cache.policy_key(str(vault.id), "DefaultPolicy")) is None
    again = _activity(protection_activities.begin_vm_protection)(request)
    assert again["ok"] is False and again["code"] == "PolicyNotFound"


def test_a_policy_deleted_while_its_id_is_cached_is_read_again_after_one_refusal(
    estate: Estate, cache: ArmCache
) -> None:
    rg = estate.group("stalepolicy")
    vault = estate.vault(rg, "rsv-policy")
    vm = estate.vm(rg)
    _warm(estate, cache, str(vault.id))
    estate.rsb().protection_policies.begin_delete("rsv-policy", rg, "DefaultPolicy").result()
    key = arm_cache.policy_key(str(vault.id), "DefaultPolicy")
    assert cache.get(key) is not None

    answer = _activity(protection_activities.begin_vm_protection)(
        {"resource_id": vm, "vault_id": str(vault.id), "policy": "DefaultPolicy"}
    )

    assert answer["ok"] is False
    assert cache.get(key) is None
    # and the next attempt names the real cause, read from Azure, not the stale id's refusal
    again = _activity(protection_activities.begin_vm_protection)(
        {"resource_id": vm, "vault_id": str(vault.id), "policy": "DefaultPolicy"}
    )
    assert again == {"ok": False, "code": "PolicyNotFound", "message": "policy DefaultPolicy not in vault"}


def test_the_vault_list_carries_each_vaults_soft_delete_and_immutability(estate: Estate) -> None:
    """A vault set passes over a member short of the rule's required settings (protection_flow.set_member_shortfalls):
    the states come from the vault list the app reads, as Azure's vault body spells them (securitySettings)."""
    rg = estate.group("vaultstates")
    estate.vault(rg, "rsv-states-01", soft_delete="Disabled")
    estate.vault(rg, "rsv-states-02", soft_delete="AlwaysON", immutability="Unlocked")
    found = {v.id.rsplit("/", 1)[-1]: v for v in RecoveryServicesProtection(estate.clients).vaults_in(
        estate.subscription, "westeurope")}
    assert (found["rsv-states-01"].soft_delete, found["rsv-states-01"].immutability) == ("Disabled", "Disabled")
    assert (found["rsv-states-02"].soft_delete, found["rsv-states-02"].immutability) == ("AlwaysON", "Unlocked")


def test_a_vault_the_set_creates_for_a_strict_rule_is_made_alwayson_and_immutable(estate: Estate) -> None:
    """The spec's softDeleteState AlwaysON and immutabilitySettings Unlocked are taken on the vault PUT (the sandbox
    refuses values outside the spec's enums) and read back from the vault list."""
    rg = estate.group("strictset")
    sent, accepted = VaultCreator(estate.clients).begin_create(
        VaultKind.RECOVERY_SERVICES.value, estate.subscription, "westeurope", "unused",
        named=(rg, "rsv-strict-01"), tags={"backup-set": "strict"}, always_on=True, immutable=True)
    assert accepted["operation"] == ""  # a Recovery Services vault's PUT answers at once (PUTVault.json)
    made = VaultRecord.from_arm(accepted["vault"], VaultKind.RECOVERY_SERVICES)
    assert (made.soft_delete, made.immutability) == ("AlwaysON", "Unlocked")
    assert vault_defaults.unmet(VaultKind.RECOVERY_SERVICES, accepted["vault"], sent) == []  # create_vault's check
    found = {v.id.rsplit("/", 1)[-1]: v for v in RecoveryServicesProtection(estate.clients).vaults_in(
        estate.subscription, "westeurope")}
    assert (found["rsv-strict-01"].soft_delete, found["rsv-strict-01"].immutability) == ("AlwaysON", "Unlocked")
