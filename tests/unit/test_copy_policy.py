"""copy_policy (issue 19): a vault set's new vault gets the rule's Recovery Services policy from a member that has it,
read-only fields left out, once; and the pure helpers that decide when and what is copied."""

from __future__ import annotations

from typing import Any

import pytest

from activities import protection as protection_activities
from steward import bootstrap
from steward.cloud.arm_cache import ArmCache
from steward.cloud.errors import AzureRefusal
from steward.domain import protection_flow
from steward.domain.ids import ResourceId
from steward.domain.protection_results import VaultRecord
from steward.domain.rules import Protect, VaultSet, route
from steward.domain.rules.model import ResourceFacts
from steward.domain.rules.vault_sets import app_created, policy_copy
from steward.rules_file import load_rules

SUB = "00000000-0000-4000-8000-000000000001"
VM = f"/subscriptions/{SUB}/resourceGroups/rg-app/providers/Microsoft.Compute/virtualMachines/vm-1"
SET = f"/subscriptions/{SUB}/resourceGroups/rg-backup/providers/Microsoft.RecoveryServices/vaults/rsv-weu-"
A, B, NEW = f"{SET}01", f"{SET}02", f"{SET}03"
RULES = ("version: 1\nrules:\n  - name: vms\n    protect: {vault: {vaultSet: {namePrefix: rsv-weu-}}, "
         "policy: vm-daily-30}\n")
PROPERTIES = {"backupManagementType": "AzureIaasVM", "instantRpRetentionRangeInDays": 5,
              "schedulePolicy": {"schedulePolicyType": "SimpleSchedulePolicy", "scheduleRunFrequency": "Daily"}}
AS_READ = {"id": f"{A}/backupPolicies/vm-daily-30", "name": "vm-daily-30",
           "type": "Microsoft.RecoveryServices/vaults/backupPolicies",
           "properties": {**PROPERTIES, "protectedItemsCount": 412, "resourceGuardOperationRequests": ["guard-op"]}}


def test_the_copy_is_the_properties_without_what_azure_or_the_source_vault_owns() -> None:
    assert policy_copy(AS_READ) == {"properties": PROPERTIES}
    assert AS_READ["properties"]["protectedItemsCount"] == 412  # the answer read is left as it was


def test_a_policy_is_copied_only_into_a_set_vault_the_app_created_from_the_other_members() -> None:
    decision = route(ResourceFacts(ResourceId.parse(VM), "westeurope"), load_rules(RULES, "sets.yaml"))
    assert isinstance(decision, Protect) and isinstance(decision.vault, VaultSet)
    members = [VaultRecord(id=A), VaultRecord(id=B)]
    made = VaultRecord(id=NEW, tags={"backup-steward:created-by": "backup-steward"})
    assert protection_flow.policy_sources(decision, made, [*members, made]) == [A, B]
    assert protection_flow.policy_sources(decision, VaultRecord(id=NEW), members) == []  # a vault a person made
    assert not app_created({"backup-steward:created-by": "someone"})


def test_policy_missing_reads_only_the_refusals_naming_a_missing_policy() -> None:
    assert protection_flow.policy_missing({"ok": False, "code": "PolicyNotFound"})
    assert protection_flow.policy_missing({"ok": False, "code": "BMSUserErrorPolicyNotFound"})
    assert not protection_flow.policy_missing({"ok": False, "code": "BMSUserErrorVaultVMLimitReached"})
    assert not protection_flow.policy_missing({"ok": True, "code": "PolicyNotFound"})
    assert not protection_flow.policy_missing(None)


class FakeVaults:
    def __init__(self, policies: dict[str, dict[str, Any]], refuse: AzureRefusal | None = None) -> None:
        self.policies = policies
        self.puts: list[tuple[str, str, dict[str, Any]]] = []
        self.refuse = refuse

    def policy(self, vault_id: str, name: str) -> dict[str, Any] | None:
        return self.policies.get(f"{vault_id}/{name}")

    def put_policy(self, vault_id: str, name: str, body: dict[str, Any]) -> None:
        if self.refuse is not None:
            raise self.refuse
        self.puts.append((vault_id, name, body))
        self.policies[f"{vault_id}/{name}"] = body


def _run(monkeypatch: pytest.MonkeyPatch, fake: FakeVaults, request: dict[str, Any]) -> dict[str, Any]:
    monkeypatch.setattr(bootstrap, "clients", lambda: None)
    monkeypatch.setattr(bootstrap, "arm_cache", lambda: ArmCache(300))
    monkeypatch.setattr(protection_activities.RecoveryServicesProtection, "policy",
                        lambda self, v, n: fake.policy(v, n))
    monkeypatch.setattr(protection_activities.RecoveryServicesProtection, "put_policy",
                        lambda self, v, n, b: fake.put_policy(v, n, b))
    activity = protection_activities.copy_policy
    run = activity._function.get_user_function() if hasattr(activity, "_function") else activity
    result: dict[str, Any] = run(request)
    return result


def test_the_first_member_with_the_policy_is_the_source_and_a_second_call_writes_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fake = FakeVaults({f"{B}/vm-daily-30": AS_READ})
    request = {"vault_id": NEW, "policy": "vm-daily-30", "sources": [A, B]}
    assert _run(monkeypatch, fake, request) == {"ok": True, "copied": True, "source": B}
    assert fake.puts == [(NEW, "vm-daily-30", {"properties": PROPERTIES})]
    assert _run(monkeypatch, fake, request) == {"ok": True, "copied": False}  # idempotent: one PUT of the budget
    assert len(fake.puts) == 1


def test_no_member_with_the_policy_and_azures_refusal_come_back_as_refusals(monkeypatch: pytest.MonkeyPatch) -> None:
    request = {"vault_id": NEW, "policy": "vm-daily-30", "sources": [A, NEW]}
    none = _run(monkeypatch, FakeVaults({}), request)
    assert none["ok"] is False and none["code"] == "PolicyNotFound"
    budget = AzureRefusal("50 backup policies changed in the last 24 hours",
                          code="BMSUserErrorPolicyChangeLimitReached")
    refused = _run(monkeypatch, FakeVaults({f"{A}/vm-daily-30": AS_READ}, refuse=budget), request)
    assert refused["ok"] is False and refused["code"] == "BMSUserErrorPolicyChangeLimitReached"
