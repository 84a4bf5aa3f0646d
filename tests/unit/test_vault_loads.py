"""vault_loads (issue 19): a vault set's member loads, from the worker's ARM cache; the vault the orchestration will
choose from them is counted up at once, so protections choosing at the same moment in this worker see it."""

from __future__ import annotations

from typing import Any

import pytest

from activities import protection as protection_activities
from steward import bootstrap
from steward.cloud import arm_cache
from steward.cloud.arm_cache import ArmCache
from steward.domain.ids import ResourceId
from steward.domain.kernel import VaultKind
from steward.domain.rules import Protect, VaultSet, route
from steward.domain.rules.model import ResourceFacts
from steward.rules_file import load_rules

SUB = "00000000-0000-4000-8000-000000000001"
VM = f"/subscriptions/{SUB}/resourceGroups/rg-app/providers/Microsoft.Compute/virtualMachines/vm-1"
SET = f"/subscriptions/{SUB}/resourceGroups/rg-backup/providers/Microsoft.RecoveryServices/vaults/rsv-weu-"
A, B = f"{SET}01", f"{SET}02"
RULES = "version: 1\nrules:\n  - name: vms\n    protect: {vault: {vaultSet: {namePrefix: rsv-weu-}}}\n"


def test_the_vault_about_to_be_chosen_is_counted_up_in_the_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    cache = ArmCache(300)
    reads: list[str] = []
    monkeypatch.setattr(bootstrap, "clients", lambda: None)
    monkeypatch.setattr(bootstrap, "arm_cache", lambda: cache)

    def count(self: Any, vault_id: str) -> dict[str, int]:
        reads.append(vault_id)
        return {A: {"items": 500, "vms": 500}, B: {"items": 499, "vms": 499}}[vault_id]

    monkeypatch.setattr(protection_activities.RecoveryServicesProtection, "count_items", count)
    decision = route(ResourceFacts(ResourceId.parse(VM), "westeurope"), load_rules(RULES, "sets.yaml"))
    assert isinstance(decision, Protect) and isinstance(decision.vault, VaultSet)
    activity = protection_activities.vault_loads
    run = activity._function.get_user_function() if hasattr(activity, "_function") else activity
    request = {"kind": VaultKind.RECOVERY_SERVICES.value, "vault_ids": [A, B], "fresh": False,
               "decision": decision.to_record(), "refused": []}
    first = run(request)
    assert first == [{"id": A, "items": 500, "vms": 500}, {"id": B, "items": 499, "vms": 499}]  # as read
    assert cache.get(arm_cache.load_key(B)) == {"items": 500, "vms": 500}  # B chosen: counted up
    second = run(request)  # a protection choosing a moment later sees B at 500 and takes A (ties by id)
    assert [r["vms"] for r in second] == [500, 500] and reads == [A, B]
    assert cache.get(arm_cache.load_key(A)) == {"items": 501, "vms": 501}
    run({**request, "fresh": True, "decision": None})  # fresh: read again; without a decision nothing is counted
    assert reads == [A, B, A, B] and cache.get(arm_cache.load_key(B)) == {"items": 499, "vms": 499}
