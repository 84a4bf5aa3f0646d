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


# ---- POST .../sync (BackupInstances_SyncBackupInstance): "retry last failed operation"


def _sync(estate: Estate, vault: object, name: str, sync_type: str = "Default") -> None:
    estate.dp.backup_instances.begin_sync_backup_instance(
        vault.rg, vault.name, name, {"syncType": sync_type}).result()  # type: ignore[attr-defined]


def _state(estate: Estate, vault: object, name: str = "bi") -> str:
    props = estate.dp.backup_instances.get(vault.rg, vault.name, name).properties  # type: ignore[attr-defined]
    return str(props.current_protection_state.value if hasattr(props.current_protection_state, "value")
               else props.current_protection_state)


def test_sync_answers_202_with_the_examples_headers_and_retries_a_protection_error(
    estate: Estate, failing: object
) -> None:
    estate.sandbox.configure_faults(FaultConfig(fail_backup_configurations=3,
                                                backup_configuration_failure="ProtectionError"))
    vault, body = _granted_disk(estate)
    assert vault.protect("bi", body).properties.current_protection_state == "ProtectionError"  # failure 1 of 3
    poller = estate.dp.backup_instances.begin_sync_backup_instance(vault.rg, vault.name, "bi",
                                                                   {"syncType": "Default"}, polling=False)
    first = poller._polling_method._initial_response.http_response
    assert first.status_code == 202  # SyncBackupInstance.json
    assert {"Location", "Azure-AsyncOperation"} <= set(first.headers)
    assert "/operationStatus/" in first.headers["Azure-AsyncOperation"]
    estate.sandbox.advance(120)  # that sync's retry ends (failure 2 of 3)
    assert _state(estate, vault) == "ProtectionError"
    with pytest.raises(HttpResponseError) as caught:  # the retried configuration fails again (3 of 3)
        _sync(estate, vault, "bi")
    assert error_code(caught.value) == "UserErrorBackupConfigurationFailed"
    assert _state(estate, vault) == "ProtectionError"
    _sync(estate, vault, "bi")  # the failures are used up: the retry configures it
    assert _state(estate, vault) == "ProtectionConfigured"
    _sync(estate, vault, "bi")  # a healthy instance: Default syncs only in case of failure
    _sync(estate, vault, "bi", "ForceResync")
    assert _state(estate, vault) == "ProtectionConfigured"


def test_sync_refuses_an_unknown_sync_type_and_a_missing_instance(estate: Estate) -> None:
    vault, body = _granted_disk(estate)
    vault.protect("bi", body)
    with pytest.raises(HttpResponseError) as bad:
        _sync(estate, vault, "bi", "Sometimes")
    assert bad.value.status_code == 400
    with pytest.raises(HttpResponseError) as missing:
        _sync(estate, vault, "no-such-instance")
    assert missing.value.status_code == 404
