"""The errors the Microsoft.DataProtection and Microsoft.Authorization providers answer with, with provenance.

Provenance of each code:

- ``spec``: named in the REST spec or its examples (S-DP).
- ``documented``: the code or message is printed in Microsoft's docs (the D-* article is named).
- ``observed``: seen coming back from Azure in a public issue or log (named).
- ``inferred``: no public evidence of the exact code was found; the code follows Azure Backup's naming and the
  message paraphrases the documented behaviour. Callers must treat it as "some 4xx meaning this", never
  match on the text. This table is the one place to correct a code once the real one is confirmed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from sandbox.arm.errors import ArmError


@dataclass(frozen=True)
class ErrorSpec:
    """One Azure failure: HTTP status, ARM code, message template and where the code comes from."""

    status: int
    code: str
    message: str
    provenance: str  # spec | documented | observed | inferred
    source: str = ""

    def error(self, **values: object) -> ArmError:
        """The :class:`ArmError` the server renders (``{"error": {"code", "message"}}``)."""
        return ArmError(self.status, self.code, self.message.format(**values))

    def body(self, **values: object) -> dict[str, Any]:
        """The ``error`` object as an operation-status resource carries it (failed LROs)."""
        message = self.message.format(**values)
        return {
            "code": self.code,
            "message": message,
            "additionalInfo": [
                {
                    "type": "UserFacingError",
                    "info": {"code": self.code, "message": message, "isRetryable": False, "isUserError": True},
                }
            ],
        }


# -- Backup vaults -------------------------------------------------------------------------------------------
VAULTS_PER_SUBSCRIPTION_LIMIT: Final = ErrorSpec(
    400,
    "BackupVaultLimitReached",
    "Subscription '{subscription}' already has {count} Backup vaults; at most {limit} are allowed per subscription.",
    "inferred",
    "limit: 'the maximum limit for Backup Vault is 500 per subscription similar to Recovery Services Vault' "
    "(Azure Backup team, MicrosoftDocs/azure-docs#118924, 2024-06-18, after which the support matrix names it); "
    "counted per subscription (not per region: the stricter reading); code, status and message inferred",
)

VAULT_NOT_EMPTY: Final = ErrorSpec(
    400,
    "UserErrorBackupVaultNotEmpty",
    "Cannot delete the Backup vault as there are existing backup instances or backup policies in the vault. "
    "Delete all backup instances and backup policies that are present in the vault and then try deleting the "
    "vault. ({details})",
    "inferred",
    "message: D-bv (articles/backup/backup-vault-overview.md, 'Delete a Backup vault'), which also says a vault "
    "'that contains backup data' cannot be deleted (so soft-deleted instances block too); code and 400 inferred",
)
SOFT_DELETE_ALWAYS_ON: Final = ErrorSpec(
    400,
    "UserErrorSoftDeleteStateAlwaysOnCannotBeChanged",
    "Soft delete on Backup vault '{vault}' is AlwaysOn (irreversible); it cannot be changed to '{wanted}'.",
    "inferred",
    "behaviour: D-esd (always-on soft delete cannot be disabled); code inferred",
)
SOFT_DELETE_RETENTION_RANGE: Final = ErrorSpec(
    400,
    "UserErrorInvalidSoftDeleteRetentionPeriod",
    "Soft delete retention must be between 14 and 180 days; got {days}.",
    "inferred",
    "range: D-esd (14-180 days); code inferred",
)
IMMUTABILITY_LOCKED: Final = ErrorSpec(
    400,
    "UserErrorImmutabilityStateLockedCannotBeChanged",
    "Immutability on Backup vault '{vault}' is Locked (irreversible); it cannot be changed to '{wanted}'.",
    "inferred",
    "behaviour: D-immut (Locked is irreversible); code inferred",
)
INVALID_ENUM: Final = ErrorSpec(
    400,
    "InvalidParameter",
    "The value '{value}' of '{field}' is not valid; expected one of {allowed}.",
    "inferred",
    "enums: S-DP SoftDeleteState, ImmutabilityState; code inferred (ARM's generic validation code)",
)
LOCATION_CHANGE: Final = ErrorSpec(
    400,
    "LocationNotAvailableForResourceType",
    "The location of Backup vault '{vault}' is '{current}' and cannot be changed to '{wanted}'.",
    "inferred",
    "behaviour: a resource's location is immutable (D-mvvault); code inferred",
)
CROSS_TENANT_MOVE: Final = ErrorSpec(
    400,
    "UserErrorCrossTenantMSIMoveNotSupported",
    "Backup vault '{vault}' cannot move to another tenant: its managed identity belongs to tenant '{tenant}'. "
    "Remove the managed identity, move the resource and add it again.",
    "documented",
    "D-bv 'Error codes and troubleshooting' (backup-vault-overview.md / manage-backup-vault.md)",
)
VAULT_NOT_FOUND_FOR_CHILD: Final = ErrorSpec(
    404,
    "ResourceNotFound",
    "The Resource 'Microsoft.DataProtection/backupVaults/{vault}' under resource group '{group}' was not found.",
    "observed",
    "ARM's standard 404 for a missing parent resource",
)

# -- Backup policies -----------------------------------------------------------------------------------------
POLICY_IN_USE: Final = ErrorSpec(
    400,
    "UserErrorDppPolicyObjectInUse",
    "Cannot delete the backup policy as one or more backup instances have been configured for protection with "
    "this policy.",
    "observed",
    "hashicorp/terraform-provider-azurerm#20774 (unexpected status 400 with error: UserErrorDppPolicyObjectInUse)",
)
POLICY_USED_BY_SOFT_DELETED: Final = ErrorSpec(
    400,
    "UserErrorPolicyAssociatedWithSoftDeletedItems",
    "Cannot delete Backup Policy as it is associated with soft deleted items",
    "observed",
    "hashicorp/terraform-provider-azurerm#25011 (unexpected status 400 with error: "
    "UserErrorPolicyAssociatedWithSoftDeletedItems)",
)
POLICY_INVALID: Final = ErrorSpec(
    400,
    "UserErrorInvalidPolicy",
    "The backup policy is not valid: {reason}.",
    "inferred",
    "shape: S-DP PolicyCRUD/CreateOrUpdateBackupPolicy.json; code inferred",
)
POLICY_NOT_FOUND: Final = ErrorSpec(
    400,
    "UserErrorPolicyNotFound",
    "The backup policy '{policy}' was not found in Backup vault '{vault}'.",
    "inferred",
    "code inferred",
)

# -- Backup instances ----------------------------------------------------------------------------------------
ALREADY_PROTECTED: Final = ErrorSpec(
    400,
    "UserErrorDppDatasourceAlreadyProtected",
    "Datasource is already protected under the Backup vault {vault}.",
    "documented",
    "D-diskrest (backup-azure-dataprotection-use-rest-api-backup-disks.md): 400 on validateForBackup",
)
MISSING_PERMISSIONS: Final = ErrorSpec(
    400,
    "UserErrorMissingRequiredPermissions",
    "Appropriate permissions to perform the operation is missing. {details}",
    "documented",
    "D-diskrest: the validateForBackup operation status turns Failed with this code and message",
)
POLICY_WRONG_DATASOURCE: Final = ErrorSpec(
    400,
    "UserErrorPolicyNotApplicableForDatasourceType",
    "The backup policy '{policy}' is for {policy_types}; it cannot protect a datasource of type '{datasource_type}'.",
    "inferred",
    "rule: a policy names its datasourceTypes (S-DP BackupPolicy); code inferred",
)
DATASOURCE_NOT_FOUND: Final = ErrorSpec(
    400,
    "UserErrorDatasourceNotFound",
    "The datasource '{datasource}' was not found.",
    "inferred",
    "code inferred",
)
REGION_MISMATCH: Final = ErrorSpec(
    400,
    "UserErrorDatasourceAndBackupVaultLocationMismatch",
    "The datasource '{datasource}' is in '{datasource_location}' but Backup vault '{vault}' is in "
    "'{vault_location}'; {workload} must be in the same region as the Backup vault.",
    "inferred",
    "rule: D-diskmx (disk-backup-support-matrix.md: 'both the backup vault and disk to be backed up must be in "
    "same region'); backup-azure-database-postgresql-flex-support-matrix.md ('within the same tenant and "
    "region'); code inferred",
)
TENANT_MISMATCH: Final = ErrorSpec(
    400,
    "UserErrorDatasourceAndBackupVaultTenantMismatch",
    "The datasource '{datasource}' is in tenant '{datasource_tenant}' but Backup vault '{vault}' is in tenant "
    "'{vault_tenant}'; {workload} must be in the same tenant as the Backup vault.",
    "inferred",
    "rule: backup-azure-database-postgresql-flex-support-matrix.md ('provided they are within the same tenant and "
    "region'); code inferred",
)
SNAPSHOT_RG_INVALID: Final = ErrorSpec(
    400,
    "UserErrorInvalidSnapshotResourceGroup",
    "The snapshot resource group '{group}' is not valid: {reason}.",
    "inferred",
    "rule: D-diskmx ('Disks to be backed up and the snapshot resource group ... must be in same subscription'); "
    "code inferred",
)
TOO_MANY_CONTAINERS: Final = ErrorSpec(
    400,
    "UserErrorMaxContainersLimitExceeded",
    "The backup instance lists {count} containers of storage account '{account}'; vaulted backup of blobs covers "
    "at most {limit} containers per storage account. Select up to {limit} containers.",
    "inferred",
    "limit: MicrosoftDocs backup/blob-backup-support-matrix.md (vaulted tab: 'select up to 100 containers'); "
    "code, status and message inferred",
)
CONTAINER_NOT_FOUND: Final = ErrorSpec(
    400,
    "UserErrorContainerNotFound",
    "Container '{container}' does not exist in storage account '{account}'.",
    "inferred",
    "the support matrix asks for containers of the account to be selected; refusing a missing one, the code and "
    "the message are inferred",
)
NO_CONTAINERS_SELECTED: Final = ErrorSpec(
    400,
    "UserErrorNoContainersSelectedForOperation",
    "No containers selected for operation",
    "observed",
    "code and message observed: Azure/azure-cli-extensions#7499 (a vaulted blob backup instance created without a "
    "container); the 400 status is inferred",
)
SYSTEM_CONTAINER: Final = ErrorSpec(
    400,
    "UserErrorInvalidContainerName",
    "Container '{container}' of storage account '{account}' is a system container and can't be backed up; "
    "only $root and $web of the system containers can be selected.",
    "inferred",
    "rule: Microsoft's Az.DataProtection refuses containers starting with $ except $root and $web ('Following "
    "containers are not allowed for configure protection with AzureBlob', Update-AzDataProtectionBackupInstance, "
    "New-AzDataProtectionBackupConfigurationClientObject); that the service refuses them, its code and message "
    "are inferred",
)
INVALID_BACKUP_INSTANCE: Final = ErrorSpec(
    400,
    "UserErrorInvalidRequestParameter",
    "The backup instance request is not valid: {reason}.",
    "inferred",
    "shape: S-DP BackupInstanceOperations/PutBackupInstance.json; code inferred",
)
INSTANCE_STATE: Final = ErrorSpec(
    400,
    "UserErrorInvalidOperationForCurrentProtectionState",
    "Operation '{operation}' is not allowed on backup instance '{instance}' in state '{state}'.",
    "inferred",
    "code inferred",
)
DELETED_INSTANCE_NOT_FOUND: Final = ErrorSpec(
    404,
    "ResourceNotFound",
    "The Resource 'Microsoft.DataProtection/backupVaults/{vault}/deletedBackupInstances/{instance}' was not "
    "found.",
    "observed",
    "ARM's standard 404",
)
OPERATION_NOT_FOUND: Final = ErrorSpec(
    404,
    "ResourceNotFound",
    "The operation '{operation}' was not found.",
    "inferred",
    "code inferred",
)

MUA_NOT_AUTHORIZED: Final = ErrorSpec(
    400,
    "UserErrorCriticalOperationNotAuthorizedByResourceGuard",
    "The operation '{operation}' on Backup vault '{vault}' is protected by Multi-User Authorization with the "
    "resource guard '{guard}'. Request access to the resource guard from your security administrator and retry.",
    "inferred",
    "behaviour: D-mua (Backup vault: disabling MUA is always protected; deleting an instance, stopping "
    "protection and disabling soft delete are protected unless excluded); code inferred, in the style of the "
    "Recovery Services BMSUserErrorCriticalOperationNotAuthorizedByResourceGuard",
)
MUA_OPERATION_REQUEST: Final = ErrorSpec(
    400,
    "UserErrorCriticalOperationNotAuthorizedByResourceGuard",
    "The unlockDelete request must name the resource guard operation request '{wanted}' and no other; it named: "
    "{named}.",
    "inferred",
    "behaviour: UnlockDeleteRequest.resourceGuardOperationRequests (S-DP ResourceGuardProxyCRUD examples); every "
    "Microsoft client sends exactly the request of the operation it unlocks (dataprotection CLI extension "
    "operation_request_map, Unlock-AzDataProtectionResourceGuardOperation); Azure's answer to other requests is not "
    "published: code and refusal inferred",
)
PROXY_INVALID: Final = ErrorSpec(
    400,
    "UserErrorInvalidResourceGuardProxy",
    "The resource guard proxy is not valid: {reason}.",
    "inferred",
    "code inferred",
)

# -- Authorization -------------------------------------------------------------------------------------------
ROLE_ASSIGNMENT_EXISTS: Final = ErrorSpec(
    409,
    "RoleAssignmentExists",
    "The role assignment already exists.",
    "observed",
    "ARM RBAC; widely reported (e.g. Azure/bicep and azure-cli issues on duplicate role assignments)",
)
#: MicrosoftDocs/azure-docs articles/role-based-access-control/troubleshoot-limits.md: "Azure supports up to 4000
#: role assignments per subscription" ... "No more role assignments can be created (code:
#: RoleAssignmentLimitExceeded)". The code and the message's first sentence are documented; the second sentence
#: (subscription, count, limit) is the sandbox's own and the HTTP status (400) is INFERRED.
ROLE_ASSIGNMENT_LIMIT: Final = ErrorSpec(
    400,
    "RoleAssignmentLimitExceeded",
    "No more role assignments can be created. The subscription {subscription} holds {count} role assignments, "
    "the limit per subscription ({limit}; fixed, it cannot be increased).",
    "documented",
    "code and the first sentence: role-based-access-control/troubleshoot-limits.md; the second sentence (the "
    "sandbox's own) and status 400 inferred",
)
ROLE_ASSIGNMENT_ID_INVALID: Final = ErrorSpec(
    400,
    "InvalidRoleAssignmentId",
    "The role assignment ID '{name}' is not valid. The role assignment ID must be a GUID.",
    "observed",
    "ARM RBAC error for a non-GUID role assignment name",
)
ROLE_ASSIGNMENT_UPDATE: Final = ErrorSpec(
    400,
    "RoleAssignmentUpdateNotPermitted",
    "Tenant ID, application ID, principal ID, and scope are not allowed to be updated.",
    "observed",
    "ARM RBAC error when a role assignment name is reused with other properties",
)
ROLE_DEFINITION_MISSING: Final = ErrorSpec(
    400,
    "RoleDefinitionDoesNotExist",
    "The specified role definition with ID '{role}' does not exist.",
    "observed",
    "ARM RBAC error for an unknown roleDefinitionId",
)
ROLE_DEFINITION_NOT_FOUND: Final = ErrorSpec(
    404,
    "RoleDefinitionDoesNotExist",
    "The specified role definition with ID '{role}' does not exist.",
    "observed",
    "ARM RBAC (GET of an unknown role definition)",
)
ROLE_ASSIGNMENT_NOT_FOUND: Final = ErrorSpec(
    404,
    "RoleAssignmentNotFound",
    "The role assignment '{name}' is not found.",
    "observed",
    "ARM RBAC (GET of an unknown role assignment)",
)
ROLE_ASSIGNMENT_INVALID: Final = ErrorSpec(
    400,
    "InvalidRoleAssignmentRequest",
    "The role assignment request is not valid: {reason}.",
    "inferred",
    "code inferred",
)
UNSUPPORTED_FILTER: Final = ErrorSpec(
    400,
    "UnsupportedQuery",
    "The filter '{filter}' is not supported.",
    "inferred",
    "code inferred",
)
