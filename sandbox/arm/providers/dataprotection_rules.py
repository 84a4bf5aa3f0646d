"""Azure Backup's rules for Backup vault workloads, as the sandbox enforces them, with their sources.

Pure: no store, no clock, no HTTP. The provider feeds it records and asks for verdicts.

What is enforced, and why (D-* = MicrosoftDocs/azure-docs ``articles/...``, PS-man = Azure/azure-powershell
``src/DataProtection/DataProtection.Autorest/custom/manifests/*.json``):

Roles the vault's managed identity must hold before ``validateForBackup`` (and a backup instance PUT) succeed:

======================  ===========================================================  ========================
workload                role @ scope                                                 source
======================  ===========================================================  ========================
Microsoft.Compute/disks "Disk Backup Reader" @ the disk;                             PS-man AzureDisk.json
                        "Disk Snapshot Contributor" @ the snapshot resource group    (datasourcePermissions,
                                                                                     snapshotRGPermissions)
blobServices            "Storage Account Backup Contributor" @ the storage account   PS-man AzureBlob.json
PG flexible servers     "PostgreSQL Flexible Server Long Term Retention Backup       PS-man AzureDatabaseFor
                        Role" @ the server; "Reader" @ the server's resource group   PGFlexServer.json
======================  ===========================================================  ========================

A role held at a scope above (resource group, subscription) counts: Azure RBAC inheritance. Owner or
Contributor do NOT stand in for these roles: D-diskmx says "Use only the role definitions provided in the
documentation. Use of other roles like owner, contributor, and so on, isn't supported." (PowerShell's
``Set-AzDataProtectionMSIPermission`` likewise checks the named roles only.) Without a system-assigned identity
the vault holds nothing, so validation fails the same way.

Failure shape: D-diskrest shows ``validateForBackup`` answering 202 and its operation status turning
``Failed`` with ``UserErrorMissingRequiredPermissions``; an already protected datasource fails synchronously
with 400 ``UserErrorDppDatasourceAlreadyProtected`` (same article).

Region and subscription rules:

- Disks: "both the backup vault and disk to be backed up must be in same region"; the vault may be in another
  subscription; "Disks to be backed up and the snapshot resource group ... must be in same subscription"
  (D-diskmx, ``disk-backup-support-matrix.md``). ENFORCED.
- Blobs: the blob support matrix (``blob-backup-support-matrix.md``) states no vault/account region rule;
  only built-in Azure Policy definitions *choose* "a backup vault in the same region". NOT ENFORCED
  (unconfirmed as an API rule).
- PostgreSQL flexible servers: "Backups for the PostgreSQL server are supported when the Backup Vault is in the
  same or a different subscription as the database, provided they are within the same tenant and region"
  (``backup-azure-database-postgresql-flex-support-matrix.md``, current text). ENFORCED: same region, same
  tenant (the subscription may differ). (An older revision of that matrix stated no rule; the v2 matrix also
  requires the vault's region for a restore target.)

Other rules:

- One protection per datasource: a datasource protected by a (not soft-deleted) backup instance in any vault
  cannot be protected again (D-diskrest; D-esd says soft-deleted items may be protected elsewhere).
- Backup vault deletion fails while backup instances, soft-deleted instances ("backup data") or backup
  policies remain (D-bv "Delete a Backup vault").
- A policy cannot be deleted while instances use it (observed ``UserErrorDppPolicyObjectInUse``) or
  soft-deleted instances reference it (observed ``UserErrorPolicyAssociatedWithSoftDeletedItems``).
- Soft delete ``AlwaysOn`` and immutability ``Locked`` are irreversible (D-esd, D-immut); soft delete retention
  is 14-180 days (D-esd). Deleting an instance with soft delete On/AlwaysOn soft-deletes it until
  ``scheduledPurgeTime`` (deletion + retention days); with Off it is gone at once.
- Undelete brings the instance back stopped, keeping its data (``ProtectionStopped``), as D-esd describes for
  Recovery Services items (INFERRED for Backup vaults); it fails if the datasource is protected again meanwhile.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from sandbox.arm.ids import id_key, parse_id

DISK: Final = "Microsoft.Compute/disks"
BLOB: Final = "Microsoft.Storage/storageAccounts/blobServices"
PG_FLEX: Final = "Microsoft.DBforPostgreSQL/flexibleServers"


@dataclass(frozen=True)
class Workload:
    datasource_type: str
    resource_type: str  # ARM type of dataSourceInfo.resourceID
    datasource_roles: tuple[str, ...]
    datasource_group_roles: tuple[str, ...]
    snapshot_group_roles: tuple[str, ...]
    same_region: bool
    friendly: str
    same_tenant: bool = False  # only where documented (PostgreSQL flexible servers)


WORKLOADS: Final[dict[str, Workload]] = {
    DISK.lower(): Workload(DISK, "Microsoft.Compute/disks", ("Disk Backup Reader",), (),
                           ("Disk Snapshot Contributor",), True, "a managed disk"),
    BLOB.lower(): Workload(BLOB, "Microsoft.Storage/storageAccounts", ("Storage Account Backup Contributor",), (),
                           (), False, "a storage account"),
    PG_FLEX.lower(): Workload(PG_FLEX, "Microsoft.DBforPostgreSQL/flexibleServers",
                              ("PostgreSQL Flexible Server Long Term Retention Backup Role",), ("Reader",), (),
                              True, "a PostgreSQL flexible server", same_tenant=True),
}


def workload_for(datasource_type: str) -> Workload | None:
    return WORKLOADS.get(datasource_type.lower())


@dataclass(frozen=True)
class Grant:
    """One role the vault identity must hold at one scope."""

    role: str
    scope: str
    why: str


def required_grants(workload: Workload, datasource_id: str, snapshot_group: str | None) -> list[Grant]:
    grants = [Grant(role, datasource_id, "on the datasource") for role in workload.datasource_roles]
    group = parse_id(datasource_id).resource_group_id
    if group:
        grants += [Grant(r, group, "on the datasource's resource group") for r in workload.datasource_group_roles]
    if snapshot_group:
        grants += [Grant(r, snapshot_group, "on the snapshot resource group") for r in workload.snapshot_group_roles]
    return grants


def snapshot_group_problem(datasource_id: str, snapshot_group: str | None, workload: Workload) -> str | None:
    """Why the snapshot resource group is unacceptable (None when fine or not needed)."""
    if not workload.snapshot_group_roles:
        return None
    if not snapshot_group:
        return "a disk backup needs policyInfo.policyParameters.dataStoreParametersList[] with an "\
               "AzureOperationalStoreParameters resourceGroupId (the snapshot resource group)"
    parsed = parse_id(snapshot_group)
    if parsed.resource_group is None or parsed.types[-1:] != ("resourceGroups",):
        return f"'{snapshot_group}' is not a resource group id"
    disk_sub = parse_id(datasource_id).subscription_id or ""
    if (parsed.subscription_id or "").lower() != disk_sub.lower():
        return (f"it is in subscription '{parsed.subscription_id}' but the disk is in '{disk_sub}'; they must be in "
                "the same subscription")
    return None


def same_location(a: str, b: str) -> bool:
    """Azure locations compare without case or spaces ('West US' == 'westus')."""
    return a.replace(" ", "").lower() == b.replace(" ", "").lower()


def datasource_key(resource_id: str) -> str:
    return id_key(resource_id)


SOFT_DELETE_STATES: Final = ("Off", "On", "AlwaysOn")
# The published example (S-DP VaultCRUD/PutBackupVault.json) sends "Enabled"; accept the legacy words too.
SOFT_DELETE_ALIASES: Final = {"off": "Off", "disabled": "Off", "on": "On", "enabled": "On", "alwayson": "AlwaysOn"}
IMMUTABILITY_STATES: Final = ("Disabled", "Unlocked", "Locked")
SOFT_DELETE_MIN_DAYS: Final = 14
SOFT_DELETE_MAX_DAYS: Final = 180


def soft_delete_active(state: str) -> bool:
    return SOFT_DELETE_ALIASES.get(state.lower(), state) in ("On", "AlwaysOn")


def soft_delete_change_allowed(current: str, wanted: str) -> bool:
    current_c = SOFT_DELETE_ALIASES.get(current.lower(), current)
    wanted_c = SOFT_DELETE_ALIASES.get(wanted.lower(), wanted)
    return not (current_c == "AlwaysOn" and wanted_c != "AlwaysOn")


def immutability_change_allowed(current: str, wanted: str) -> bool:
    return not (current.lower() == "locked" and wanted.lower() != "locked")


# The protection states an instance moves through (S-DP enums Status / CurrentProtectionState).
CONFIGURED: Final = "ProtectionConfigured"
STOPPED: Final = "ProtectionStopped"
SUSPENDED: Final = "BackupSchedulesSuspended"
CONFIGURING_FAILED: Final = "ConfiguringProtectionFailed"
PROTECTION_ERROR: Final = "ProtectionError"
#: states in which an instance protects nothing until it is configured again (CurrentProtectionState enum)
FAILED_STATES: Final = (CONFIGURING_FAILED, PROTECTION_ERROR)

# action -> (states it may start from, state it leaves)
TRANSITIONS: Final[dict[str, tuple[tuple[str, ...], str]]] = {
    "stopProtection": ((CONFIGURED, SUSPENDED, STOPPED), STOPPED),
    "suspendBackups": ((CONFIGURED, SUSPENDED), SUSPENDED),
    "resumeProtection": ((STOPPED, CONFIGURED), CONFIGURED),
    "resumeBackups": ((SUSPENDED, CONFIGURED), CONFIGURED),
}


def protection_status(state: str) -> str:
    """``protectionStatus.status`` for a ``currentProtectionState`` (the Status enum has no 'suspended')."""
    if state == CONFIGURED:
        return CONFIGURED
    if state in (STOPPED, SUSPENDED):
        return STOPPED
    return state
