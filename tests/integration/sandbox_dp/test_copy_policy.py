"""copy_policy (issue 19) for a Backup-vault set, through the real SDK on the sandbox: the rule's policy is copied
from the member that has it into the set's new vault, its rules as they are there, once."""

from __future__ import annotations

import pytest

from activities import protection as protection_activities
from steward import bootstrap
from steward.cloud.arm_cache import ArmCache
from steward.cloud.protection import BackupVaultProtection

from .conftest import DISK, Estate, make_vault


def test_a_backup_vault_policy_is_copied_into_the_sets_new_vault_once(
    estate: Estate, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(bootstrap, "clients", lambda: estate.clients)
    monkeypatch.setattr(bootstrap, "arm_cache", lambda: ArmCache(300))
    rg = estate.group("bvset")
    source, made = make_vault(estate, rg, name="bv-weu-01"), make_vault(estate, rg, name="bv-weu-02")
    source.policy(DISK, name="disk-hourly")
    activity = protection_activities.copy_policy
    run = activity._function.get_user_function() if hasattr(activity, "_function") else activity
    request = {"kind": "Backup", "vault_id": made.id, "policy": "disk-hourly", "sources": [source.id]}
    assert run(request) == {"ok": True, "copied": True, "source": source.id}
    assert run(request) == {"ok": True, "copied": False}
    adapter = BackupVaultProtection(estate.clients)
    original, copied = adapter.policy(source.id, "disk-hourly"), adapter.policy(made.id, "disk-hourly")
    assert original is not None and copied is not None
    assert copied["properties"] == original["properties"]
    assert copied["id"].lower() == f"{made.id}/backupPolicies/disk-hourly".lower()
