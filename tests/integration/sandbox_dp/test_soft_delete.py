"""Backup instance deletion: soft delete, undelete, purge on the virtual clock, and what soft-deleted items block."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError

from .conftest import DISK, Estate, error_code, make_vault, protected_disk

DAY = 86400.0


def test_delete_soft_deletes_and_undelete_brings_the_instance_back_stopped(estate: Estate) -> None:
    protected = protected_disk(estate)
    v = protected.vault
    estate.dp.backup_instances.begin_delete(v.rg, v.name, "bi").result()

    with pytest.raises(ResourceNotFoundError):
        estate.dp.backup_instances.get(v.rg, v.name, "bi")
    deleted = list(estate.dp.deleted_backup_instances.list(v.rg, v.name))
    assert [d.name for d in deleted] == ["bi"]
    info = deleted[0].properties.deletion_info
    assert deleted[0].properties.protection_status.status == "SoftDeleted"
    deleted_at = datetime.fromisoformat(info.deletion_time.replace("Z", "+00:00"))
    purge_at = datetime.fromisoformat(info.scheduled_purge_time.replace("Z", "+00:00"))
    assert purge_at - deleted_at == timedelta(days=14)
    assert abs((estate.sandbox.clock.now() - deleted_at).total_seconds()) < DAY
    one = estate.dp.deleted_backup_instances.get(v.rg, v.name, "bi")
    assert one.properties.data_source_info.resource_id == protected.disk

    estate.dp.deleted_backup_instances.begin_undelete(v.rg, v.name, "bi").result()
    back = estate.dp.backup_instances.get(v.rg, v.name, "bi")
    assert back.properties.current_protection_state == "ProtectionStopped"
    assert list(estate.dp.deleted_backup_instances.list(v.rg, v.name)) == []


def test_soft_deleted_instance_blocks_its_policy_and_the_vault_until_retention_passes(estate: Estate) -> None:
    protected = protected_disk(estate)
    v = protected.vault
    estate.dp.backup_instances.begin_delete(v.rg, v.name, "bi").result()

    with pytest.raises(HttpResponseError) as policy_blocked:
        estate.dp.backup_policies.delete(v.rg, v.name, "policy")
    assert error_code(policy_blocked.value) == "UserErrorPolicyAssociatedWithSoftDeletedItems"
    with pytest.raises(HttpResponseError) as vault_blocked:
        estate.dp.backup_vaults.begin_delete(v.rg, v.name).result()
    assert "soft-deleted backup instances: bi" in str(vault_blocked.value)

    estate.sandbox.advance(13 * DAY)
    assert [d.name for d in estate.dp.deleted_backup_instances.list(v.rg, v.name)] == ["bi"]
    estate.sandbox.advance(1 * DAY + 60)
    assert list(estate.dp.deleted_backup_instances.list(v.rg, v.name)) == []
    with pytest.raises(ResourceNotFoundError):
        estate.dp.deleted_backup_instances.get(v.rg, v.name, "bi")

    estate.dp.backup_policies.delete(v.rg, v.name, "policy")
    estate.dp.backup_vaults.begin_delete(v.rg, v.name).result()


def test_with_soft_delete_off_an_instance_is_gone_at_once(estate: Estate) -> None:
    protected = protected_disk(estate, soft_delete="Off")
    v = protected.vault
    estate.dp.backup_instances.begin_delete(v.rg, v.name, "bi").result()
    assert list(estate.dp.deleted_backup_instances.list(v.rg, v.name)) == []
    estate.dp.backup_policies.delete(v.rg, v.name, "policy")


def test_a_policy_in_use_cannot_be_deleted(estate: Estate) -> None:
    protected = protected_disk(estate)
    v = protected.vault
    with pytest.raises(HttpResponseError) as caught:
        estate.dp.backup_policies.delete(v.rg, v.name, "policy")
    assert caught.value.status_code == 400
    assert error_code(caught.value) == "UserErrorDppPolicyObjectInUse"


def test_a_soft_deleted_datasource_can_be_protected_elsewhere_and_then_cannot_be_undeleted(estate: Estate) -> None:
    protected = protected_disk(estate)
    v = protected.vault
    estate.dp.backup_instances.begin_delete(v.rg, v.name, "bi").result()

    rg = estate.group("elsewhere")
    other = make_vault(estate, rg, name="other")
    other.grant("Disk Backup Reader", protected.disk)
    other.grant("Disk Snapshot Contributor", protected.snapshot_group)
    other.protect("bi", other.instance_body(protected.disk, DISK, other.policy(DISK), protected.snapshot_group))

    with pytest.raises(HttpResponseError) as caught:
        estate.dp.deleted_backup_instances.begin_undelete(v.rg, v.name, "bi").result()
    assert error_code(caught.value) == "UserErrorDppDatasourceAlreadyProtected"


def test_retention_follows_the_vault_setting(estate: Estate) -> None:
    rg, snap = estate.group("long"), estate.group("snap")
    vault = make_vault(estate, rg, days=30)
    disk = estate.datasource(rg, DISK, "disk1")
    vault.grant("Disk Backup Reader", disk)
    vault.grant("Disk Snapshot Contributor", estate.group_id(snap))
    vault.protect("bi", vault.instance_body(disk, DISK, vault.policy(DISK), estate.group_id(snap)))
    before = estate.sandbox.clock.now()
    estate.dp.backup_instances.begin_delete(rg, "vault", "bi").result()
    info = estate.dp.deleted_backup_instances.get(rg, "vault", "bi").properties.deletion_info
    purge_at = datetime.fromisoformat(info.scheduled_purge_time.replace("Z", "+00:00")).astimezone(UTC)
    assert timedelta(days=30) <= purge_at - before < timedelta(days=31)
