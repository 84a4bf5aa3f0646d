"""FaultConfig.fail_backup_configurations: backup instances whose configuration fails, as a client sees them."""

from __future__ import annotations

import pytest
from azure.core.exceptions import HttpResponseError

from sandbox.arm.config import FaultConfig

from .conftest import DISK, Estate, error_code, make_vault


@pytest.fixture
def failing(estate: Estate) -> object:
    yield estate
    estate.sandbox.configure_faults(FaultConfig())


def _granted_disk(estate: Estate) -> tuple[object, dict[str, object]]:
    rg, snap = estate.group("dpfail"), estate.group("snapfail")
    vault = make_vault(estate, rg)
    disk = estate.datasource(rg, DISK, "disk1")
    vault.grant("Disk Backup Reader", disk)
    vault.grant("Disk Snapshot Contributor", estate.group_id(snap))
    return vault, vault.instance_body(disk, DISK, vault.policy(DISK), estate.group_id(snap))


def test_a_failed_configuration_fails_the_put_and_a_re_put_configures_it_again(estate: Estate, failing: object) -> None:
    estate.sandbox.configure_faults(FaultConfig(fail_backup_configurations=1))
    vault, body = _granted_disk(estate)
    assert vault.validate(body).job_id
    with pytest.raises(HttpResponseError) as caught:
        vault.protect("bi", body)
    assert error_code(caught.value) == "UserErrorBackupConfigurationFailed"
    failed = estate.dp.backup_instances.get(vault.rg, vault.name, "bi").properties
    assert failed.current_protection_state == "ConfiguringProtectionFailed"
    assert failed.protection_status.status == "ConfiguringProtectionFailed"
    assert failed.protection_status.error_details.code == "UserErrorBackupConfigurationFailed"

    assert vault.validate(body).job_id  # a failed configuration protects nothing
    again = vault.protect("bi", body).properties  # the one failure is used up: the re-PUT configures it
    assert again.current_protection_state == "ProtectionConfigured"
    assert again.protection_status.status == "ProtectionConfigured"


def test_a_protection_error_ends_the_put_well_but_reads_back_in_error(estate: Estate, failing: object) -> None:
    estate.sandbox.configure_faults(FaultConfig(fail_backup_configurations=2,
                                                backup_configuration_failure="ProtectionError"))
    vault, body = _granted_disk(estate)
    first = vault.protect("bi", body).properties  # the operation succeeds ...
    assert first.current_protection_state == "ProtectionError"  # ... and the instance is in error
    assert first.protection_status.status == "ProtectionError"
    assert first.protection_status.error_details.code == "UserErrorBackupConfigurationFailed"
    assert vault.protect("bi", body).properties.current_protection_state == "ProtectionError"  # failure 2 of 2
    assert vault.protect("bi", body).properties.current_protection_state == "ProtectionConfigured"
    # a configured instance's re-PUT is an update: no configuration, no injected failure
    assert vault.protect("bi", body).properties.current_protection_state == "ProtectionConfigured"
