"""Inputs queued in a task hub before the activity inputs became records (issue 16 step 4) still work: the VM
protection activities, given the snake_case dicts the orchestrations sent before (``resource_id``, ``vault_id``,
``subscription_id`` ..., as ``tests/orchestrators/data/activity_inputs_before_records.json`` recorded them), answer
as they answer the camelCase records the orchestrations send now - through the real SDK against the sandbox."""

from __future__ import annotations

import time
from typing import Any

import pytest

from activities import protection as activities
from steward import bootstrap
from steward.cloud.arm_cache import ArmCache
from steward.domain.kernel import VaultKind
from steward.domain.protection_inputs import (
    ResourceAt,
    VaultAt,
    VaultSearch,
    VmInVault,
)
from steward.domain.protection_results import VmProtectionBegun
from tests.integration.sandbox_rs.conftest import Estate


def _activity(function: Any) -> Any:
    return function._function.get_user_function() if hasattr(function, "_function") else function


def _both(activity: Any, old: dict[str, Any], new: dict[str, Any]) -> Any:
    """The activity's answer to the old input, having checked it answers the new record the same."""
    assert old != new and any("_" in key for key in old), "the old input has the old keys"
    answered = _activity(activity)(old)
    assert _activity(activity)(new) == answered
    return answered


def test_the_vm_activities_answer_an_old_snake_case_input_as_they_answer_its_record(
    estate: Estate, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bootstrap, "clients", lambda: estate.clients)
    monkeypatch.setattr(bootstrap, "arm_cache", lambda: ArmCache(300))
    rg = estate.group("oldinputs")
    vault = str(estate.vault(rg, "rsv-old").id)
    vm = estate.vm(rg, "oldvm")
    sub = estate.subscription

    facts = _both(activities.describe_resource, {"resource_id": vm}, ResourceAt(vm).to_record())
    assert facts is not None and facts["id"] == vm
    found = _both(activities.find_vaults, {"kind": "RecoveryServices", "subscription_id": sub, "region": "westeurope"},
                  VaultSearch(VaultKind.RECOVERY_SERVICES, sub, "westeurope").to_record())
    assert vault in [v["id"] for v in found]
    assert _both(activities.vault_region, {"vault_id": vault}, VaultAt(vault).to_record()) == "westeurope"
    status = _both(activities.vm_backup_status, {"resource_id": vm, "region": "westeurope"},
                   ResourceAt(vm, region="westeurope").to_record())
    assert status.get("protectionStatus") != "Protected"
    assert _both(activities.read_vm_item, {"resource_id": vm, "vault_id": vault},
                 VmInVault(vm, vault).to_record()) is None

    # an enable queued before the change: the old keys name the VM, the vault and the policy
    old = {"resource_id": vm, "vault_id": vault, "policy": "DefaultPolicy"}
    begun = VmProtectionBegun.from_record(_activity(activities.begin_vm_protection)(old))
    assert begun.ok and begun.operation, begun
    look = {**old, "operation": begun.operation}
    for _ in range(100):
        state = _activity(activities.vm_protection_status)(look)
        if state["status"] != "InProgress":
            break
        time.sleep(0.05)
    assert state["status"] == "Succeeded" and state["item"], state
    new_look = VmInVault(vm, vault, policy="DefaultPolicy", operation=begun.operation).to_record()
    assert _activity(activities.vm_protection_status)(new_look)["item"] == state["item"]
    # the same enable as a record now finds the item the old input made: done, no second PUT
    again = VmProtectionBegun.from_record(_activity(activities.begin_vm_protection)(
        VmInVault(vm, vault, policy="DefaultPolicy").to_record()))
    assert again.ok and again.done and again.item["id"] == state["item"]["id"]
    item = _both(activities.read_vm_item, {"resource_id": vm, "vault_id": vault}, VmInVault(vm, vault).to_record())
    assert item["id"] == state["item"]["id"]
