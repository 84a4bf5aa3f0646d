"""What each supported workload needs to be protected: the vault kind, the data source description, the
datastore and the roles the Backup vault's managed identity must hold, and where.

Sources (docs/azure-facts.md, "Backup vault workloads" and "Least privilege"): Microsoft's Backup vault docs for
disks (``backup/backup-azure-dataprotection-use-rest-api-backup-disks``, ``backup/disk-backup-support-matrix``) and
blobs (``backup/backup-blobs-storage-account-cli``), Azure PowerShell's DataProtection manifests ``AzureDisk``,
``AzureBlob``, ``AzureDatabaseForPGFlexServer``, and the built-in role definition ids of Azure's "Azure built-in
roles" page.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from steward.domain.kernel import VaultKind


class RoleScope(StrEnum):
    """Where a role assignment for the vault identity goes, relative to the protected resource."""

    RESOURCE = "resource"
    RESOURCE_GROUP = "resource-group"
    SNAPSHOT_RESOURCE_GROUP = "snapshot-resource-group"


class PermissionsScope(StrEnum):
    """Where a rule has the vault identity's roles assigned (a rule's ``protect.roleScope``): Microsoft's own
    ``Set-AzDataProtectionMSIPermission -PermissionsScope Resource|ResourceGroup|Subscription`` (Azure/azure-powershell
    ``src/DataProtection/help/Set-AzDataProtectionMSIPermission.md``; ``az dataprotection backup-instance
    update-msi-permissions --permissions-scope``), camel-cased. ``resource`` (the default) is least privilege: each
    protected resource costs its own assignments, of the subscription's 4,000 (``role-based-access-control/
    troubleshoot-limits.md``); a group or the subscription shares one assignment among every resource there."""

    RESOURCE = "resource"
    RESOURCE_GROUP = "resourceGroup"
    SUBSCRIPTION = "subscription"


@dataclass(frozen=True)
class RoleRequirement:
    role_name: str
    role_definition_guid: str
    scope: RoleScope


@dataclass(frozen=True)
class Workload:
    resource_type: str  # ARM type of the protected resource, as in its id
    vault_kind: VaultKind
    datasource_type: str  # Backup vault ``datasourceType``; "" for Recovery Services
    datastore: str  # "OperationalStore" | "VaultStore" | "" (Recovery Services decides)
    roles: tuple[RoleRequirement, ...]
    default_policy: str


#: Azure RBAC's role assignments per subscription, counted at the subscription, its resource groups and resources,
#: not at management groups; fixed ("Azure supports up to 4000 role assignments per subscription ... cannot be
#: increased"; past it "No more role assignments can be created (code: RoleAssignmentLimitExceeded)"). Source:
#: MicrosoftDocs/azure-docs articles/role-based-access-control/troubleshoot-limits.md
ROLE_ASSIGNMENTS_PER_SUBSCRIPTION: Final = 4000


def role_definition_guid(role_definition_id: object) -> str:
    """The GUID at the end of a role definition id (lower-cased): an assignment names its definition under its
    subscription (``/subscriptions/{s}/providers/Microsoft.Authorization/roleDefinitions/{guid}``)."""
    return str(role_definition_id or "").rstrip("/").rsplit("/", 1)[-1].lower()


# Built-in role definition GUIDs (identical in every tenant).
READER: Final = RoleRequirement("Reader", "acdd72a7-3385-48ef-bd42-f606fba81ae7", RoleScope.RESOURCE_GROUP)
DISK_BACKUP_READER: Final = RoleRequirement(
    "Disk Backup Reader", "3e5e47e6-65f7-47ef-90b5-e5dd4d455f24", RoleScope.RESOURCE
)
DISK_SNAPSHOT_CONTRIBUTOR: Final = RoleRequirement(
    "Disk Snapshot Contributor", "7efff54f-a5b4-42b5-a1c5-5411624893ce", RoleScope.SNAPSHOT_RESOURCE_GROUP
)
STORAGE_ACCOUNT_BACKUP_CONTRIBUTOR: Final = RoleRequirement(
    "Storage Account Backup Contributor", "e5e2a7ff-d759-4cd2-bb51-3152d37e2eb1", RoleScope.RESOURCE
)
POSTGRES_FLEX_LTR_BACKUP: Final = RoleRequirement(
    "PostgreSQL Flexible Server Long Term Retention Backup Role",
    "c088a766-074b-43ba-90d4-1fb21feae531",
    RoleScope.RESOURCE,
)

# Restore drills (issue 17): what the vault identity needs on the restore target. Disk Restore Operator on the
# resource group the disk is restored into (backup/restore-managed-disks.md, "Assign Disk Restore Operator role to
# Backup Vault's managed identity on the Resource group where the disk is to be restored"); Storage Blob Data
# Contributor on the storage account PostgreSQL files are restored into (Azure/azure-powershell DataProtection
# manifest AzureDatabaseForPGFlexServer.json, storageAccountPermissionsForRestore).
DISK_RESTORE_OPERATOR: Final = RoleRequirement(
    "Disk Restore Operator", "b50d9833-a0cb-478e-945f-707fcc997c13", RoleScope.RESOURCE_GROUP
)
STORAGE_BLOB_DATA_CONTRIBUTOR: Final = RoleRequirement(
    "Storage Blob Data Contributor", "ba92f5b4-2d11-453d-a403-e96b0029c9fe", RoleScope.RESOURCE
)

VM: Final = Workload(
    resource_type="Microsoft.Compute/virtualMachines",
    vault_kind=VaultKind.RECOVERY_SERVICES,
    datasource_type="",
    datastore="",
    roles=(),
    default_policy="DefaultPolicy",
)
DISK: Final = Workload(
    resource_type="Microsoft.Compute/disks",
    vault_kind=VaultKind.BACKUP,
    datasource_type="Microsoft.Compute/disks",
    datastore="OperationalStore",
    roles=(DISK_BACKUP_READER, DISK_SNAPSHOT_CONTRIBUTOR),
    default_policy="disk-default",
)
BLOB: Final = Workload(
    resource_type="Microsoft.Storage/storageAccounts",
    vault_kind=VaultKind.BACKUP,
    datasource_type="Microsoft.Storage/storageAccounts/blobServices",
    datastore="OperationalStore",
    roles=(STORAGE_ACCOUNT_BACKUP_CONTRIBUTOR,),
    default_policy="blob-default",
)
POSTGRES_FLEX: Final = Workload(
    resource_type="Microsoft.DBforPostgreSQL/flexibleServers",
    vault_kind=VaultKind.BACKUP,
    datasource_type="Microsoft.DBforPostgreSQL/flexibleServers",
    datastore="VaultStore",
    roles=(POSTGRES_FLEX_LTR_BACKUP, READER),
    default_policy="postgres-flex-default",
)

WORKLOADS: Final[dict[str, Workload]] = {
    w.resource_type.lower(): w for w in (VM, DISK, BLOB, POSTGRES_FLEX)
}


def workload_for(resource_type: str) -> Workload | None:
    """The workload for an ARM resource type (case-insensitive), or None when unsupported."""
    return WORKLOADS.get(resource_type.lower())


#: the roles a restore drill gives the vault identity on its restore target (the drill group or the drill's account)
RESTORE_ROLES: Final[dict[str, tuple[RoleRequirement, ...]]] = {
    "microsoft.compute/disks": (DISK_RESTORE_OPERATOR,),
    "microsoft.dbforpostgresql/flexibleservers": (STORAGE_BLOB_DATA_CONTRIBUTOR,),
    # vaulted blobs restore into another account only, the vault holding Storage Account Backup Contributor on it
    # (MicrosoftDocs/azure-docs backup/blob-restore.md, vaulted tab; Az.DataProtection's AzureBlob.json manifest
    # grants nothing for restore, so Set-AzDataProtectionMSIPermission is no source here)
    "microsoft.storage/storageaccounts": (STORAGE_ACCOUNT_BACKUP_CONTRIBUTOR,),
}
