"""How the app follows a validateForBackup on the sandbox.

Protection no longer follows it inside an activity (issue 15 item 1): ``BackupVaultProtection.validate`` sends the
POST alone and hands back the ``Azure-AsyncOperation`` URL, and ``operation_status`` is one GET of it (the
orchestrator waits ``Retry-After`` on a durable timer between looks). ``steward/cloud/polling.py``
(``PatientPolling``), still used where an activity follows an operation (a blob container modification, stop
protection), waits the Retry-After before its first status GET and reads no Location result it
does not use; on azure-core's ARMPolling both fail: it polls at once after the 202 and GETs operationResults
after the status said Succeeded."""

from __future__ import annotations

import time
from typing import Any

from azure.mgmt.dataprotection.models import ValidateForBackupRequest

from benchmarks.common import RequestLog
from sandbox.arm.providers.dataprotection import RETRY_AFTER
from steward.cloud.polling import patient
from steward.cloud.protection import BackupVaultProtection, VaultCreator
from steward.domain import protection_flow, vault_defaults
from steward.domain.kernel import VaultKind

from .conftest import DISK, Estate, Vault, make_vault, protected_disk


def _validation(estate: Estate, name: str) -> tuple[Vault, dict[str, Any]]:
    rg, snap = estate.group(name), estate.group(f"{name}snap")
    vault = make_vault(estate, rg)
    disk = estate.datasource(rg, DISK, "disk1")
    vault.grant("Disk Backup Reader", disk)
    vault.grant("Disk Snapshot Contributor", estate.group_id(snap))
    return vault, vault.instance_body(disk, DISK, vault.policy(DISK), estate.group_id(snap))


def test_validation_is_started_with_one_post_and_its_status_read_with_one_get(estate: Estate) -> None:
    vault, body = _validation(estate, "started")
    adapter = BackupVaultProtection(estate.clients)
    log = RequestLog(estate.sandbox)
    mark = log.mark()

    accepted = adapter.validate(vault.id, {"properties": body})

    (post,) = log.since(mark)  # no poll from the activity
    assert post.method == "POST" and post.path.lower().endswith("/validateforbackup")
    assert "/operationstatus/" in accepted["operation"].lower()
    mark = log.mark()
    look = adapter.operation_status(vault.id, accepted["operation"])
    (get,) = log.since(mark)
    assert get.method == "GET" and "/operationstatus/" in get.path.lower()
    # one look, whatever it says (the sandbox's validation takes 30 Azure s; on its scaled clock under load those
    # may have passed): the status of that operation, not a result the activity waited for
    assert look["status"] in {"Inprogress", "Succeeded"}  # Data Protection spells its running state so


def test_patient_polling_waits_retry_after_before_each_status_get_and_reads_no_location_result(
    estate: Estate,
) -> None:
    vault, body = _validation(estate, "patient")
    log = RequestLog(estate.sandbox)
    mark = log.mark()

    estate.dp.backup_instances.begin_validate_for_backup(
        resource_group_name=vault.rg, vault_name=vault.name,
        parameters=ValidateForBackupRequest({"backupInstance": body}),
        polling=patient(estate.clients.target.polling_interval, result_unused=True),
    ).result()

    post, *polls = log.since(mark)
    assert post.method == "POST" and post.path.lower().endswith("/validateforbackup")
    assert polls, "the operation was followed"
    assert all(c.method == "GET" and "/operationstatus/" in c.path.lower() for c in polls), [c.path for c in polls]
    previous = post.answered
    for poll in polls:  # the sandbox sends the wait in real ms at this clock scale: allow its rounding
        assert (poll.arrived - previous).total_seconds() >= RETRY_AFTER["validate"] * 0.9, (poll, previous)
        previous = poll.answered


def _until_ended(adapter: BackupVaultProtection, vault_id: str, operation: str) -> dict[str, Any]:
    """Look at an operation until it ended (the sandbox's clock runs 3,600 Azure s per real s here)."""
    deadline = time.monotonic() + 30
    while True:
        look = adapter.operation_status(vault_id, operation)
        if not protection_flow.operation_running(look["status"]) or time.monotonic() > deadline:  # "Inprogress"
            return look
        time.sleep(0.02)


def test_stop_protection_is_started_with_one_post_and_ends_stopped_with_the_points_kept(estate: Estate) -> None:
    protected = protected_disk(estate)
    vault = protected.vault
    adapter = BackupVaultProtection(estate.clients)
    log = RequestLog(estate.sandbox)
    mark = log.mark()

    accepted = adapter.begin_stop_protection(vault.id, "bi")

    (post,) = log.since(mark)  # the activity sends the POST and returns
    assert post.method == "POST" and post.path.lower().endswith("/stopprotection")
    assert "/operationstatus/" in accepted["operation"].lower()
    assert _until_ended(adapter, vault.id, accepted["operation"])["status"] == "Succeeded"
    instance = adapter.instance(vault.id, "bi")
    assert instance is not None and instance["properties"]["currentProtectionState"] == "ProtectionStopped"


def test_an_instance_put_is_started_with_one_put_and_read_back_once_its_operation_ended(estate: Estate) -> None:
    rg, snap = estate.group("begun"), estate.group("begunsnap")
    vault = make_vault(estate, rg)
    disk = estate.datasource(rg, DISK, "disk1")
    vault.grant("Disk Backup Reader", disk)
    vault.grant("Disk Snapshot Contributor", estate.group_id(snap))
    body = vault.instance_body(disk, DISK, vault.policy(DISK), estate.group_id(snap))
    adapter = BackupVaultProtection(estate.clients)
    log = RequestLog(estate.sandbox)
    mark = log.mark()

    accepted = adapter.begin_create_instance(vault.id, "bi", {"properties": body})

    (put,) = log.since(mark)
    assert put.method == "PUT" and put.path.lower().endswith("/backupinstances/bi")
    assert accepted["operation"]  # followed: the 201's instance is still being configured
    assert accepted["instance"]["properties"]["currentProtectionState"] == "ConfiguringProtection"
    assert _until_ended(adapter, vault.id, accepted["operation"])["status"] == "Succeeded"
    instance = adapter.instance(vault.id, "bi")
    assert instance is not None and instance["properties"]["currentProtectionState"] == "ProtectionConfigured"


def _vault_ended(creator: VaultCreator, vault_id: str, operation: str) -> dict[str, Any]:
    deadline = time.monotonic() + 30
    while True:
        look = creator.creation_status(vault_id, operation)
        if not protection_flow.operation_running(look["status"]) or time.monotonic() > deadline:
            return look
        time.sleep(0.02)


def test_a_backup_vault_created_is_put_once_and_reads_back_as_sent_once_its_operation_ended(estate: Estate) -> None:
    """``create_vault`` no longer waits for the vault (issue 15 item 1): one PUT answered 201 + Azure-AsyncOperation
    + Retry-After 10 while Provisioning (S-DP ``PutBackupVault.json``); the status look is one GET; the vault read
    once it ended is what was sent (``vault_defaults.unmet`` finds nothing) with the principal its roles need."""
    group = estate.group("made")
    creator = VaultCreator(estate.clients)
    log = RequestLog(estate.sandbox)
    mark = log.mark()

    sent, accepted = creator.begin_create(VaultKind.BACKUP, estate.subscription, "westus", "backup-steward:default",
                                          named=(group, f"bv-{estate.tag}"), tags={"set": "a"})

    calls = log.since(mark)  # the group's PUT, the vault's PUT, and no look from the activity
    assert [c.method for c in calls] == ["PUT", "PUT"] and "/backupvaults/" in calls[1].path.lower()
    assert "/operationstatus/" in accepted["operation"].lower()
    assert accepted["retry_after"] is None  # at this clock scale the sandbox sends its wait as retry-after-ms only
    vault_id = accepted["vault"]["id"]
    assert accepted["vault"]["properties"]["provisioningState"] == "Provisioning"
    mark = log.mark()
    assert _vault_ended(creator, vault_id, accepted["operation"])["status"] == "Succeeded"
    assert all(c.method == "GET" and "/operationstatus/" in c.path.lower() for c in log.since(mark))
    found = creator.read(vault_id)
    assert found is not None and vault_defaults.unmet(VaultKind.BACKUP, found, sent) == []
    assert found["identity"]["principalId"] and found["tags"] == {"set": "a"}
    # with no status URL the look is the vault's own state
    assert creator.creation_status(vault_id, "")["status"] == "Succeeded"
    assert set(creator.create_policies(vault_id)) == set(vault_defaults.BACKUP_VAULT_POLICIES)
