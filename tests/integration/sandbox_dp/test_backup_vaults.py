"""Backup vaults through the real ``DataProtectionMgmtClient``: create/get/list/patch/delete and Azure's rules."""

from __future__ import annotations

import pytest
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError

from .conftest import Estate, begin_raw, error_code, make_vault, protected_disk


def test_create_polls_to_succeeded_and_gives_the_vault_a_system_assigned_identity(estate: Estate) -> None:
    rg = estate.group("vaults")
    vault = make_vault(estate, rg)

    got = estate.dp.backup_vaults.get(rg, "vault")
    assert got.properties.provisioning_state == "Succeeded"
    assert got.identity.type == "SystemAssigned"
    assert got.identity.principal_id == vault.principal_id
    assert got.identity.tenant_id == estate.sandbox.default_tenant
    assert got.properties.security_settings.soft_delete_settings.state == "On"
    assert got.properties.security_settings.soft_delete_settings.retention_duration_in_days == 14


def test_each_vault_gets_its_own_principal(estate: Estate) -> None:
    rg = estate.group("vaults")
    first = make_vault(estate, rg, name="one")
    second = make_vault(estate, rg, name="two")
    assert first.principal_id != second.principal_id


def test_vault_without_identity_has_no_principal(estate: Estate) -> None:
    rg = estate.group("vaults")
    make_vault(estate, rg, identity="None")
    got = estate.dp.backup_vaults.get(rg, "vault")
    assert got.identity.type == "None"
    assert got.identity.principal_id is None


def test_lists_by_subscription_and_group_follow_next_links(estate: Estate) -> None:
    rg = estate.group("listed")
    other = estate.group("other")
    for name in ("a", "b", "c"):  # page size is 2: three vaults need two pages
        make_vault(estate, rg, name=name)
    make_vault(estate, other, name="d")

    in_group = {v.name for v in estate.dp.backup_vaults.get_in_resource_group(rg)}
    in_sub = {v.id.lower() for v in estate.dp.backup_vaults.get_in_subscription()}

    assert in_group == {"a", "b", "c"}
    for rg_name, name in ((rg, "a"), (rg, "b"), (rg, "c"), (other, "d")):
        assert f"{estate.group_id(rg_name)}/providers/microsoft.dataprotection/backupvaults/{name}".lower() in in_sub


def test_patch_through_the_sdk_poller_updates_tags_and_soft_delete(estate: Estate) -> None:
    rg = estate.group("patched")
    make_vault(estate, rg)
    result = estate.dp.backup_vaults.begin_update(rg, "vault", {
        "tags": {"owner": "steward"},
        "properties": {"securitySettings": {"softDeleteSettings": {"state": "Off", "retentionDurationInDays": 14}}},
    }).result()
    assert result.tags == {"owner": "steward"}
    assert result.properties.security_settings.soft_delete_settings.state == "Off"


def test_always_on_soft_delete_cannot_be_turned_off(estate: Estate) -> None:
    rg = estate.group("alwayson")
    make_vault(estate, rg, soft_delete="AlwaysOn")
    with pytest.raises(HttpResponseError) as caught:
        estate.dp.backup_vaults.begin_update(rg, "vault", {"properties": {"securitySettings": {
            "softDeleteSettings": {"state": "Off", "retentionDurationInDays": 14}}}}).result()
    assert caught.value.status_code == 400
    assert error_code(caught.value) == "UserErrorSoftDeleteStateAlwaysOnCannotBeChanged"
    got = estate.dp.backup_vaults.get(rg, "vault")
    assert got.properties.security_settings.soft_delete_settings.state == "AlwaysOn"


def test_locked_immutability_is_irreversible_but_unlocked_can_be_disabled(estate: Estate) -> None:
    rg = estate.group("immutable")
    make_vault(estate, rg, name="unlocked", immutability="Unlocked")
    estate.dp.backup_vaults.begin_update(rg, "unlocked", {"properties": {"securitySettings": {
        "immutabilitySettings": {"state": "Disabled"}}}}).result()

    make_vault(estate, rg, name="locked", immutability="Locked")
    with pytest.raises(HttpResponseError) as caught:
        estate.dp.backup_vaults.begin_update(rg, "locked", {"properties": {"securitySettings": {
            "immutabilitySettings": {"state": "Unlocked"}}}}).result()
    assert error_code(caught.value) == "UserErrorImmutabilityStateLockedCannotBeChanged"
    assert estate.dp.backup_vaults.get(rg, "locked").properties.security_settings.immutability_settings.state == \
        "Locked"


@pytest.mark.parametrize("days", [13, 181])
def test_soft_delete_retention_must_be_14_to_180_days(estate: Estate, days: int) -> None:
    rg = estate.group("retention")
    with pytest.raises(HttpResponseError) as caught:
        make_vault(estate, rg, days=days)
    assert error_code(caught.value) == "UserErrorInvalidSoftDeleteRetentionPeriod"


def test_delete_is_refused_while_instances_or_policies_remain_then_succeeds(estate: Estate) -> None:
    protected = protected_disk(estate, soft_delete="Off")
    vault = protected.vault

    with pytest.raises(HttpResponseError) as caught:
        estate.dp.backup_vaults.begin_delete(vault.rg, vault.name).result()
    assert caught.value.status_code == 400
    assert "existing backup instances or backup policies" in str(caught.value)

    estate.dp.backup_instances.begin_delete(vault.rg, vault.name, "bi").result()
    with pytest.raises(HttpResponseError):  # the policy still blocks
        estate.dp.backup_vaults.begin_delete(vault.rg, vault.name).result()

    estate.dp.backup_policies.delete(vault.rg, vault.name, "policy")
    estate.dp.backup_vaults.begin_delete(vault.rg, vault.name).result()
    with pytest.raises(ResourceNotFoundError):
        estate.dp.backup_vaults.get(vault.rg, vault.name)


def test_vault_delete_answers_the_documented_async_headers(estate: Estate) -> None:
    rg = estate.group("headers")
    vault = make_vault(estate, rg)
    poller = estate.dp.backup_vaults.begin_delete(rg, "vault")
    initial = poller.polling_method()._initial_response.http_response
    assert initial.status_code == 202
    assert "/providers/Microsoft.DataProtection/operationStatus/" in initial.headers["Azure-AsyncOperation"]
    assert f"{vault.id}/operationResults/" in initial.headers["Location"]
    poller.result()


def test_location_cannot_change(estate: Estate) -> None:
    rg = estate.group("where")
    vault = make_vault(estate, rg)
    with pytest.raises(HttpResponseError) as caught:
        begin_raw(estate.dp, "PUT", vault.id, {"location": "eastus", "properties": {"storageSettings": []}}).result()
    assert caught.value.status_code == 400


def test_at_most_so_many_backup_vaults_per_subscription(estate: Estate, monkeypatch: pytest.MonkeyPatch) -> None:
    from sandbox.arm.providers import dataprotection
    from sandbox.arm.providers import dataprotection_errors as errors

    assert dataprotection.VAULTS_PER_SUBSCRIPTION == 500  # the documented number
    rg = estate.group("limited")
    make_vault(estate, rg, name="first")
    already = len(list(estate.dp.backup_vaults.get_in_subscription()))
    monkeypatch.setattr(dataprotection, "VAULTS_PER_SUBSCRIPTION", already)
    with pytest.raises(HttpResponseError) as caught:
        make_vault(estate, rg, name="one-too-many")
    assert caught.value.status_code == 400
    assert error_code(caught.value) == errors.VAULTS_PER_SUBSCRIPTION_LIMIT.code == "BackupVaultLimitReached"
    make_vault(estate, rg, name="first")  # an existing vault is still updated
