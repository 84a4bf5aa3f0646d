"""The app follows a validateForBackup as the API asks (steward/cloud/polling.py): it waits the Retry-After before
its first status GET, and reads no Location result it does not use. On azure-core's ARMPolling both fail: it polls
at once after the 202 and GETs operationResults after the status said Succeeded."""

from __future__ import annotations

from benchmarks.common import RequestLog
from sandbox.arm.providers.dataprotection import RETRY_AFTER
from steward.cloud.protection import BackupVaultProtection

from .conftest import DISK, Estate, make_vault


def test_validation_waits_retry_after_before_each_status_get_and_reads_no_location_result(estate: Estate) -> None:
    rg, snap = estate.group("patient"), estate.group("patientsnap")
    vault = make_vault(estate, rg)
    disk = estate.datasource(rg, DISK, "disk1")
    vault.grant("Disk Backup Reader", disk)
    vault.grant("Disk Snapshot Contributor", estate.group_id(snap))
    body = vault.instance_body(disk, DISK, vault.policy(DISK), estate.group_id(snap))
    log = RequestLog(estate.sandbox)
    mark = log.mark()

    BackupVaultProtection(estate.clients).validate(vault.id, {"properties": body})

    post, *polls = log.since(mark)
    assert post.method == "POST" and post.path.lower().endswith("/validateforbackup")
    assert polls, "the operation was followed"
    assert all(c.method == "GET" and "/operationstatus/" in c.path.lower() for c in polls), [c.path for c in polls]
    previous = post.answered
    for poll in polls:  # the sandbox sends the wait in real ms at this clock scale: allow its rounding
        assert (poll.arrived - previous).total_seconds() >= RETRY_AFTER["validate"] * 0.9, (poll, previous)
        previous = poll.answered
