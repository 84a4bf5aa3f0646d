"""``backupstorageconfig/vaultstorageconfig``: a vault's storage redundancy and Cross Region Restore, over raw
HTTP as generic clients call it and through azure-mgmt-recoveryservicesbackup (``BackupResourceStorageConfigs
NonCRR_*``). Shapes: S-RSB 2025-02-01 ``Common/BackupStorageConfig_{Get,Put,Patch}.json``; rules and their
sources in :mod:`sandbox.arm.providers.recoveryservices_storage`."""

from __future__ import annotations

from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError

from steward.cloud.inventory import rs_vault_from_wire

from .conftest import Estate, error_code

API = "2025-02-01"


def _path(estate: Estate, rg: str, vault: str = "rsv") -> str:
    return (f"/subscriptions/{estate.subscription}/resourceGroups/{rg}/providers/Microsoft.RecoveryServices/"
            f"vaults/{vault}/backupstorageconfig/vaultstorageconfig")


def _redundancy(estate: Estate, rg: str, vault: str = "rsv") -> dict[str, Any]:
    _, body = estate.call("GET", f"/subscriptions/{estate.subscription}/resourceGroups/{rg}/providers/"
                                 f"Microsoft.RecoveryServices/vaults/{vault}", api_version=API)
    return dict(body["properties"]["redundancySettings"])


def test_a_new_vault_is_geo_redundant_unlocked_and_answers_the_spec_shape(estate: Estate) -> None:
    rg = estate.group("stor")
    estate.vault(rg)
    status, body = estate.call("GET", _path(estate, rg), api_version=API)
    assert status == 200
    assert body == {
        "id": _path(estate, rg),
        "name": "vaultstorageconfig",
        "type": "Microsoft.RecoveryServices/vaults/backupstorageconfig",
        "properties": {"storageModelType": "GeoRedundant", "storageType": "GeoRedundant",
                       "storageTypeState": "Unlocked", "crossRegionRestoreFlag": False},
    }


def test_put_changes_the_redundancy_before_protection_and_patch_answers_204(estate: Estate) -> None:
    rg = estate.group("stor-put")
    estate.vault(rg)
    status, body = estate.call("PUT", _path(estate, rg), {"properties": {"storageType": "LocallyRedundant",
                                                                       "storageTypeState": "Unlocked"}},
                               api_version=API)
    assert status == 200
    assert body["properties"]["storageModelType"] == "LocallyRedundant"
    assert body["properties"]["storageType"] == "LocallyRedundant"
    assert _redundancy(estate, rg)["standardTierStorageRedundancy"] == "LocallyRedundant"

    status, body = estate.call("PATCH", _path(estate, rg), {"properties": {"storageModelType": "ZoneRedundant"}},
                               api_version=API)
    assert (status, body) == (204, None)
    _, got = estate.call("GET", _path(estate, rg), api_version=API)
    assert got["properties"]["storageType"] == "ZoneRedundant"


def test_cross_region_restore_needs_geo_redundancy_and_shows_on_the_vault(estate: Estate) -> None:
    rg = estate.group("stor-crr")
    estate.vault(rg)
    estate.call("PATCH", _path(estate, rg), {"properties": {"storageModelType": "LocallyRedundant"}},
                api_version=API)
    status, body = estate.call("PATCH", _path(estate, rg), {"properties": {"crossRegionRestoreFlag": True}},
                               api_version=API)
    assert (status, body["error"]["code"]) == (400, "BMSUserErrorUnableToEnableCrossRegionRestore")

    estate.call("PATCH", _path(estate, rg), {"properties": {"storageModelType": "GeoRedundant"}}, api_version=API)
    status, _ = estate.call("PATCH", _path(estate, rg), {"properties": {"crossRegionRestoreFlag": True}},
                            api_version=API)
    assert status == 204  # PATCH merges: the type stays GeoRedundant
    _, got = estate.call("GET", _path(estate, rg), api_version=API)
    assert got["properties"]["crossRegionRestoreFlag"] is True
    assert _redundancy(estate, rg) == {"standardTierStorageRedundancy": "GeoRedundant",
                                       "crossRegionRestore": "Enabled"}
    # the audit's VLT-003 reads the vault's redundancySettings: it sees what this route turned on
    _, vault = estate.call("GET", f"/subscriptions/{estate.subscription}/resourceGroups/{rg}/providers/"
                                  "Microsoft.RecoveryServices/vaults/rsv", api_version=API)
    assert rs_vault_from_wire(vault).cross_region_restore is True


def test_the_storage_type_locks_once_an_item_is_protected(estate: Estate) -> None:
    rg = estate.group("stor-lock")
    estate.vault(rg)
    estate.call("PATCH", _path(estate, rg), {"properties": {"crossRegionRestoreFlag": True}}, api_version=API)
    estate.protect_vm(rg, "rsv", estate.vm(rg))
    _, got = estate.call("GET", _path(estate, rg), api_version=API)
    assert got["properties"]["storageTypeState"] == "Locked"

    status, body = estate.call("PUT", _path(estate, rg), {"properties": {"storageType": "LocallyRedundant"}},
                               api_version=API)
    assert (status, body["error"]["code"]) == (400, "StorageModelModifyError")
    assert "locked when the first machine is registered" in body["error"]["message"]
    status, body = estate.call("PATCH", _path(estate, rg), {"properties": {"crossRegionRestoreFlag": False}},
                               api_version=API)
    assert status == 400  # CRR "can't be reverted ... after the protection starts"
    # the same values again are accepted, and nothing changed
    status, _ = estate.call("PUT", _path(estate, rg), {"properties": {"storageModelType": "GeoRedundant",
                                                                     "crossRegionRestoreFlag": True}},
                            api_version=API)
    assert status == 200
    assert _redundancy(estate, rg) == {"standardTierStorageRedundancy": "GeoRedundant",
                                       "crossRegionRestore": "Enabled"}


def test_the_recovery_services_backup_sdk_reads_and_updates_it(estate: Estate) -> None:
    rg = estate.group("stor-sdk")
    estate.vault(rg)
    client = estate.rsb().backup_resource_storage_configs_non_crr
    config = client.get("rsv", rg)
    assert (config.properties.storage_type, config.properties.storage_type_state) == ("GeoRedundant", "Unlocked")
    updated = client.update("rsv", rg, {"properties": {"storageModelType": "LocallyRedundant"}})
    assert updated.properties.storage_model_type == "LocallyRedundant"
    assert client.patch("rsv", rg, {"properties": {"storageModelType": "GeoRedundant",
                                                   "crossRegionRestoreFlag": True}}) is None
    assert client.get("rsv", rg).properties.cross_region_restore_flag is True
    with pytest.raises(HttpResponseError) as caught:
        client.update("rsv", rg, {"properties": {"storageModelType": "Invalid"}})
    assert error_code(caught.value) == "BadRequest"
