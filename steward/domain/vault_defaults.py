"""Secure defaults for vaults the app creates itself (``STEWARD_AUTO_CREATE_VAULTS``) and the Backup vault
policies the default rules name. Pure data: request bodies in the REST specs' shapes (S-RS ``PUTVault.json``,
S-DP ``PutBackupVault.json`` and ``CreateOrUpdateBackupPolicy.json``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from steward.domain.kernel import VaultKind, normalise_region


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


#: soft delete states that keep deleted backup data: a Recovery Services vault's ``softDeleteState`` ``Enabled`` /
#: ``AlwaysON`` (S-RS 2025-02-01 ``vaults.json`` ``SoftDeleteSettings``; ``enhancedSecurityState`` the same words),
#: a Backup vault's ``state`` ``On`` / ``AlwaysOn`` (S-DP 2025-07-01 ``SoftDeleteSettings``), ``Enabled`` as
#: ``PutBackupVault.json`` answers it. Compared without case.
SOFT_DELETE_ON: Final = frozenset({"enabled", "alwayson", "on"})
#: the soft delete retention the app asks for (and the least Azure allows)
SOFT_DELETE_DAYS: Final = 14


def _get(body: Mapping[str, Any], *path: str) -> Any:
    for key in path:
        if not isinstance(body, Mapping):
            return None
        body = body.get(key)  # type: ignore[assignment]
    return body


def unmet(kind: VaultKind, found: Mapping[str, Any], sent: Mapping[str, Any]) -> list[str]:
    """What the vault as it reads back (``found``, the GET after its creation ended) lacks of what the app asked
    for (``sent``, the PUT's body) and of the secure defaults: provisioned, in the region, the tags, a system
    identity with its principal (the Backup vault's role assignments need it), soft delete on for at least 14 days,
    ``AlwaysOn`` when asked, immutability when asked, and for a Recovery Services vault enhanced security on, for a
    Backup vault the vault store's redundancy. Empty: the vault is as the app created it."""
    problems: list[str] = []
    state = str(_get(found, "properties", "provisioningState") or "")
    if state.lower() != "succeeded":
        problems.append(f"provisioningState is {state or 'missing'}, not Succeeded")
    if normalise_region(str(found.get("location") or "")) != normalise_region(str(sent.get("location") or "")):
        problems.append(f"location is {found.get('location')!r}, not {sent.get('location')!r}")
    tags = found.get("tags") or {}
    missing = sorted(k for k, v in (sent.get("tags") or {}).items() if tags.get(k) != v)
    if missing:
        problems.append(f"tags {', '.join(missing)} missing or changed")
    if "systemassigned" not in str(_get(found, "identity", "type") or "").lower().replace(" ", ""):
        problems.append("no system-assigned identity")
    elif not _get(found, "identity", "principalId"):
        problems.append("its identity has no principalId")
    soft = _get(found, "properties", "securitySettings", "softDeleteSettings") or {}
    if kind is VaultKind.RECOVERY_SERVICES:
        on, days = soft.get("softDeleteState"), soft.get("softDeleteRetentionPeriodInDays")
        if str(soft.get("enhancedSecurityState") or "").lower() not in SOFT_DELETE_ON:
            problems.append(f"enhanced security is {soft.get('enhancedSecurityState')!r}")
    else:
        on, days = soft.get("state"), soft.get("retentionDurationInDays")
        wanted = {str(s.get("datastoreType")): s.get("type") for s in _get(sent, "properties", "storageSettings") or []}
        have = {str(s.get("datastoreType")): s.get("type") for s in _get(found, "properties", "storageSettings") or []
                if isinstance(s, Mapping)}
        if any(have.get(store) != kind_ for store, kind_ in wanted.items()):
            problems.append(f"storageSettings are {have}, not {wanted}")
    asked = _get(sent, "properties", "securitySettings", "softDeleteSettings") or {}
    always = str(asked.get("softDeleteState") or asked.get("state") or "").lower() == "alwayson"
    if str(on or "").lower() not in SOFT_DELETE_ON or (always and str(on).lower() != "alwayson"):
        problems.append(f"soft delete is {on!r}")
    elif not isinstance(days, int | float) or days < SOFT_DELETE_DAYS:
        problems.append(f"soft delete keeps {days!r} days, not {SOFT_DELETE_DAYS}")
    # immutability asked (Unlocked): Locked is stronger and irreversible, so it counts too
    wanted_lock = str(_get(sent, "properties", "securitySettings", "immutabilitySettings", "state") or "")
    lock = str(_get(found, "properties", "securitySettings", "immutabilitySettings", "state") or "Disabled")
    if wanted_lock and lock.lower() not in (wanted_lock.lower(), "locked"):
        problems.append(f"immutability is {lock!r}, not {wanted_lock!r}")
    return problems


def vault_names(kind: str, region: str) -> tuple[str, str]:
    """(resource group, vault name) of a vault the app creates for ``kind`` in ``region``."""
    short = "rsv" if kind == VaultKind.RECOVERY_SERVICES else "bv"
    return f"rg-backup-steward-{region}", f"{short}-steward-{region}"
