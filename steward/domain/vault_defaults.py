"""Secure defaults for vaults the app creates itself (``STEWARD_AUTO_CREATE_VAULTS``) and the Backup vault
policies the default rules name. Pure data: request bodies in the REST specs' shapes (S-RS ``PUTVault.json``,
S-DP ``PutBackupVault.json`` and ``CreateOrUpdateBackupPolicy.json``)."""

from __future__ import annotations

from typing import Any, Final

from steward.domain.kernel import VaultKind


def _retention(store: str, duration: str) -> dict[str, Any]:
    return {
        "name": "Default",
        "isDefault": True,
        "objectType": "AzureRetentionRule",
        "lifecycles": [
            {
                "deleteAfter": {"duration": duration, "objectType": "AbsoluteDeleteOption"},
                "sourceDataStore": {"dataStoreType": store, "objectType": "DataStoreInfoBase"},
            }
        ],
    }


def _backup_rule(store: str, interval: str) -> dict[str, Any]:
    return {
        "name": "BackupRule",
        "objectType": "AzureBackupRule",
        "backupParameters": {"backupType": "Full" if store == "VaultStore" else "Incremental",
                             "objectType": "AzureBackupParams"},
        "dataStore": {"dataStoreType": store, "objectType": "DataStoreInfoBase"},
        "trigger": {
            "objectType": "ScheduleBasedTriggerContext",
            "schedule": {"repeatingTimeIntervals": [f"R/2026-01-01T02:00:00+00:00/{interval}"]},
            "taggingCriteria": [{"isDefault": True, "tagInfo": {"tagName": "Default"}, "taggingPriority": 99}],
        },
    }


#: The default Backup vault policies the default rules name (steward/domain/default_rules.yaml).
BACKUP_VAULT_POLICIES: Final[dict[str, dict[str, Any]]] = {
    "disk-default": {
        "properties": {
            "objectType": "BackupPolicy",
            "datasourceTypes": ["Microsoft.Compute/disks"],
            "policyRules": [_backup_rule("OperationalStore", "PT4H"), _retention("OperationalStore", "P7D")],
        }
    },
    "blob-default": {
        "properties": {
            "objectType": "BackupPolicy",
            "datasourceTypes": ["Microsoft.Storage/storageAccounts/blobServices"],
            "policyRules": [_retention("OperationalStore", "P30D")],
        }
    },
    "postgres-flex-default": {
        "properties": {
            "objectType": "BackupPolicy",
            "datasourceTypes": ["Microsoft.DBforPostgreSQL/flexibleServers"],
            "policyRules": [_backup_rule("VaultStore", "P1W"), _retention("VaultStore", "P12W")],
        }
    },
}



def recovery_services_vault_body(
    location: str, tags: dict[str, str], *, always_on: bool = False, immutable: bool = False
) -> dict[str, Any]:
    """A Recovery Services vault with soft delete on (14 days; ``AlwaysON`` with ``always_on``), enhanced security on,
    a system identity, and immutability enabled (``Unlocked``, never locked: irreversible) with ``immutable``: the
    spec's ``SoftDeleteSettings.softDeleteState`` / ``ImmutabilitySettings.state`` values, settable on the PUT."""
    security: dict[str, Any] = {
        "softDeleteSettings": {
            "softDeleteState": "AlwaysON" if always_on else "Enabled",
            "softDeleteRetentionPeriodInDays": 14,
            "enhancedSecurityState": "Enabled",
        }
    }
    if immutable:
        security["immutabilitySettings"] = {"state": "Unlocked"}
    return {
        "location": location,
        "tags": tags,
        "sku": {"name": "Standard"},
        "identity": {"type": "SystemAssigned"},
        "properties": {"publicNetworkAccess": "Enabled", "securitySettings": security},
    }


def backup_vault_body(
    location: str, tags: dict[str, str], *, always_on: bool = False, immutable: bool = False
) -> dict[str, Any]:
    """A Backup vault with locally redundant storage, soft delete on (14 days; ``AlwaysOn`` with ``always_on``), a
    system identity, and immutability enabled (``Unlocked``, never locked) with ``immutable``."""
    security: dict[str, Any] = {"softDeleteSettings": {"state": "AlwaysOn" if always_on else "On",
                                                       "retentionDurationInDays": 14}}
    if immutable:
        security["immutabilitySettings"] = {"state": "Unlocked"}
    return {
        "location": location,
        "tags": tags,
        "identity": {"type": "SystemAssigned"},
        "properties": {
            "storageSettings": [{"datastoreType": "VaultStore", "type": "LocallyRedundant"}],
            "securitySettings": security,
        },
    }


def vault_names(kind: str, region: str) -> tuple[str, str]:
    """(resource group, vault name) of a vault the app creates for ``kind`` in ``region``."""
    short = "rsv" if kind == VaultKind.RECOVERY_SERVICES else "bv"
    return f"rg-backup-steward-{region}", f"{short}-steward-{region}"
