"""protect_in_backup_vault with a Backup vault deleted while the worker's ARM cache still names it: validateForBackup
answers 404, and the cached vault list and policy id are dropped so the orchestrator's retry reads them again
(the Recovery Services path is tested on the sandbox: tests/integration/sandbox_rs/test_stale_cache.py)."""

from __future__ import annotations

from typing import Any

import pytest

from activities import protection as protection_activities
from steward import bootstrap
from steward.cloud import arm_cache
from steward.cloud.arm_cache import ArmCache
from steward.cloud.errors import NotFound
from steward.domain import protection_flow
from steward.domain.kernel import VaultKind

SUB = "00000000-0000-4000-8000-000000000001"
DISK = f"/subscriptions/{SUB}/resourceGroups/rg-app/providers/Microsoft.Compute/disks/data-1"
VAULT = f"/subscriptions/{SUB}/resourceGroups/rg-backup/providers/Microsoft.DataProtection/backupVaults/bv-weu"
POLICY = f"{VAULT}/backupPolicies/disk-daily"


def test_a_backup_vault_gone_at_validation_drops_its_cached_list_and_policy(monkeypatch: pytest.MonkeyPatch) -> None:
    cache = ArmCache(300)
    monkeypatch.setattr(bootstrap, "clients", lambda: None)
    monkeypatch.setattr(bootstrap, "arm_cache", lambda: cache)

    def gone(self: Any, vault_id: str, instance: dict[str, Any]) -> None:
        raise NotFound(f"The Resource '{vault_id}' was not found.", status=404, code="ResourceNotFound")

    monkeypatch.setattr(protection_activities.BackupVaultProtection, "validate", gone)
    facts = {"id": DISK, "type": "Microsoft.Compute/disks", "location": "westeurope", "tags": {},
             "identity": None, "managed_by": ""}
    decision = protection_flow.decide(facts, bootstrap.rules()).to_record()
    assert decision["kind"] == "protect", decision
    policy_name = str(decision["policy"])
    vaults = arm_cache.vaults_key(VaultKind.BACKUP, SUB)
    policy = arm_cache.policy_key(VAULT, policy_name)
    cache.put(vaults, ["the cached list that still holds the deleted vault"])
    cache.put(policy, POLICY)
    request = {"resource_id": DISK, "facts": facts, "decision": decision, "vault_id": VAULT, "policy": policy_name,
               "rule": decision.get("rule")}

    activity = protection_activities.protect_in_backup_vault
    run = activity._function.get_user_function() if hasattr(activity, "_function") else activity
    with pytest.raises(NotFound):
        run(request)

    assert cache.get(vaults) is None
    assert cache.get(policy) is None
