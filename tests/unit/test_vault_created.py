"""A vault the app creates is verified as it reads back once its creation ended (issue 15 item 1): what the
GET answers against the body the app sent and the secure defaults (``vault_defaults.unmet``), and the result the
orchestration takes from that (``operations.after_vault``)."""

from __future__ import annotations

from typing import Any

import pytest

from steward.domain import operations, vault_defaults
from steward.domain.kernel import VaultKind

SUB = "/subscriptions/00000000-0000-4000-8000-000000000001/resourceGroups/rg-backup-steward-westeurope/providers"
BV = f"{SUB}/Microsoft.DataProtection/backupVaults/bv-steward-westeurope"
RSV = f"{SUB}/Microsoft.RecoveryServices/vaults/rsv-steward-westeurope"
TAGS = {"backup-steward:default": "true"}


def sent(kind: VaultKind) -> dict[str, Any]:
    if kind is VaultKind.BACKUP:
        return vault_defaults.backup_vault_body("westeurope", TAGS)
    return vault_defaults.recovery_services_vault_body("westeurope", TAGS)


def read_back(kind: VaultKind) -> dict[str, Any]:
    """The vault as Azure's GET answers it once created (location as Azure writes it, extra tags, extra props)."""
    body = sent(kind)
    props: dict[str, Any] = {**body["properties"], "provisioningState": "Succeeded", "secureScore": "Adequate"}
    if kind is VaultKind.BACKUP:  # PutBackupVault.json answers the state as "Enabled"
        props["securitySettings"] = {"softDeleteSettings": {"state": "Enabled", "retentionDurationInDays": 14}}
    return {**body, "id": BV if kind is VaultKind.BACKUP else RSV, "location": "West Europe",
            "tags": {**TAGS, "cost-center": "42"}, "properties": props,
            "identity": {"type": "SystemAssigned", "principalId": "p-1", "tenantId": "t-1"}}


@pytest.mark.parametrize("kind", list(VaultKind))
def test_a_vault_as_created_meets_everything(kind: VaultKind) -> None:
    assert vault_defaults.unmet(kind, read_back(kind), sent(kind)) == []


@pytest.mark.parametrize(("kind", "change", "said"), [
    (VaultKind.BACKUP, {"provisioningState": "Provisioning"}, "provisioningState is Provisioning"),
    (VaultKind.BACKUP, {"securitySettings": {"softDeleteSettings": {"state": "Off", "retentionDurationInDays": 14}}},
     "soft delete is 'Off'"),
    (VaultKind.BACKUP, {"storageSettings": [{"datastoreType": "VaultStore", "type": "GeoRedundant"}]},
     "storageSettings"),
    (VaultKind.RECOVERY_SERVICES, {"securitySettings": {"softDeleteSettings": {
        "softDeleteState": "Enabled", "softDeleteRetentionPeriodInDays": 14, "enhancedSecurityState": "Disabled"}}},
     "enhanced security is 'Disabled'"),
    (VaultKind.RECOVERY_SERVICES, {"securitySettings": {"softDeleteSettings": {
        "softDeleteState": "AlwaysON", "softDeleteRetentionPeriodInDays": 7, "enhancedSecurityState": "AlwaysON"}}},
     "keeps 7 days"),
])
def test_a_vault_that_reads_back_weaker_than_asked_is_named_so(kind: VaultKind, change: dict[str, Any],
                                                              said: str) -> None:
    found = read_back(kind)
    found["properties"] = {**found["properties"], **change}
    problems = vault_defaults.unmet(kind, found, sent(kind))
    assert len(problems) == 1 and said in problems[0], problems


def test_the_identity_tags_and_region_are_checked() -> None:
    found = {**read_back(VaultKind.BACKUP), "location": "northeurope", "tags": {}, "identity": {"type": "None"}}
    problems = vault_defaults.unmet(VaultKind.BACKUP, found, sent(VaultKind.BACKUP))
    assert [p.split(" ")[0] for p in problems] == ["location", "tags", "no"]
    found = {**read_back(VaultKind.BACKUP), "identity": {"type": "SystemAssigned"}}
    assert vault_defaults.unmet(VaultKind.BACKUP, found, sent(VaultKind.BACKUP)) == ["its identity has no principalId"]


def _started(kind: VaultKind) -> operations.OperationStarted:
    return operations.OperationStarted(step=operations.Step.VAULT, operation="https://arm/op", body=sent(kind),
                                       instance={"id": BV if kind is VaultKind.BACKUP else RSV})


def test_after_the_vault_the_result_is_its_record_or_why_not() -> None:
    made = operations.after_vault(operations.OperationState("Succeeded", instance=read_back(VaultKind.BACKUP)),
                                  _started(VaultKind.BACKUP))
    assert made == {"ok": True, "vault": {"id": BV, "kind": "Backup", "location": "westeurope",
                                          "tags": {**TAGS, "cost-center": "42"}, "principalId": "p-1",
                                          "tenantId": "t-1", "softDelete": "Enabled", "immutability": "Disabled"}}
    missing = operations.after_vault(operations.OperationState("Succeeded"), _started(VaultKind.RECOVERY_SERVICES))
    assert missing["ok"] is False and missing["code"] == operations.VAULT_NOT_AS_CREATED
    refused = operations.after_vault(operations.OperationState("Failed", error={"code": "X", "message": "no"}),
                                     _started(VaultKind.BACKUP))
    assert refused == {"ok": False, "code": "X", "message": "no"}


@pytest.mark.parametrize("kind", list(VaultKind))
def test_always_on_soft_delete_and_immutability_asked_for_are_checked(kind: VaultKind) -> None:
    make = vault_defaults.backup_vault_body if kind is VaultKind.BACKUP else vault_defaults.recovery_services_vault_body
    asked = make("westeurope", TAGS, always_on=True, immutable=True)
    found = {**read_back(kind), "properties": {**asked["properties"], "provisioningState": "Succeeded"}}
    assert vault_defaults.unmet(kind, found, asked) == []
    locked = {**found, "properties": {**found["properties"], "securitySettings": {
        **asked["properties"]["securitySettings"], "immutabilitySettings": {"state": "Locked"}}}}
    assert vault_defaults.unmet(kind, locked, asked) == []  # stronger than asked
    weaker = {**found, "properties": {**found["properties"], "securitySettings": {
        "softDeleteSettings": sent(kind)["properties"]["securitySettings"]["softDeleteSettings"]}}}
    problems = vault_defaults.unmet(kind, weaker, asked)
    assert [p.split(" ")[0] for p in problems] == ["soft", "immutability"], problems
