"""The errors the Recovery Services provider answers with, and where each code comes from.

Every rule the sandbox enforces fails the way Azure fails: an HTTP status and an ARM error body
``{"error": {"code", "message"}}``. Azure does not document most of these codes in the REST specs, so each
one carries its provenance:

- ``observed``: the code (and message) was seen coming back from Azure, in a public issue, log or Microsoft
  self-help article (named in ``source``).
- ``inferred``: no public evidence of the exact code was found; the code is our best guess in Azure Backup's
  naming style and the message paraphrases the documented behaviour. Code that branches on these must treat
  them as "some 4xx with this meaning", never match the text.

The table is the single place to correct a code once the real one is confirmed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from sandbox.arm.errors import ArmError


@dataclass(frozen=True)
class ErrorSpec:
    """One Azure failure: status, code, message template and provenance."""

    status: int
    code: str
    message: str
    provenance: str  # "observed" | "inferred" | "spec"
    source: str = ""

    def render(self, **values: object) -> str:
        return self.message.format(**values)


class RecoveryServicesError(ArmError):
    """An Azure error the provider answers with (status + ARM error body), built from an :class:`ErrorSpec`."""

    def __init__(self, spec: ErrorSpec, **values: object) -> None:
        super().__init__(spec.status, spec.code, spec.render(**values))
        self.spec = spec


VAULT_NOT_EMPTY: Final = ErrorSpec(
    400,
    "ServiceResourceNotEmptyWithContainerDetails",
    "Vault cannot be deleted as there are existing resources within the vault. Please ensure there are no "
    "backup items, protected servers, or backup management servers associated with this vault. Unregister the "
    "following containers associated with this vault before proceeding for deletion : {details}\n"
    "Unregister all containers from the vault and then retry to delete vault.",
    "observed",
    "code+message: MicrosoftDocs/azure-docs#42016, Azure/azure-cli#7619, Azure/azure-powershell#9291; "
    "status 400 inferred from the sibling ServiceResourceNotEmptyWithBackendMessage (observed 400). "
    "Using it also for Site Recovery items and private endpoints is inferred.",
)

VAULT_HAS_SOFT_DELETED_ITEMS: Final = ErrorSpec(
    400,
    "ServiceResourceNotEmptyWithBackendMessage",
    "Recovery Services vault cannot be deleted as there are backup items in soft deleted state in the vault. "
    "The soft deleted items are permanently deleted after {days} days of delete operation. Please try vault "
    "deletion after the backup items are permanently deleted and there is no item in soft deleted state left "
    "in the vault.",
    "observed",
    "code with HTTP 400 seen on vault DELETE in a public Terraform teardown log; message from D-delvault. "
    "The backup service's own code for the same condition is BMSUserErrorVaultDeletionNotPermitted "
    "(Microsoft self-help article) - ARM wraps it. UNCONFIRMED in the REST specs.",
)

SOFT_DELETE_DISABLE_NOT_ALLOWED: Final = ErrorSpec(
    400,
    "BMSUserErrorDisablingSoftDeleteStateNotAllowed",
    "Disabling soft delete or enhanced security state is not allowed for this vault.",
    "observed",
    "seen in several public deployment logs when disabling soft delete on an AlwaysON / hardened vault",
)

INVALID_SOFT_DELETE_RETENTION: Final = ErrorSpec(
    400,
    "BMSUserErrorInvalidSoftDeleteRetentionPeriod",
    "Soft delete retention period must be between 14 and 180 days; {days} was given.",
    "inferred",
    "range 14-180 from D-esd",
)

IMMUTABILITY_LOCKED_CHANGE: Final = ErrorSpec(
    400,
    "BMSUserErrorImmutabilityLockedCannotBeChanged",
    "Immutability of this vault is locked and cannot be changed to {state}. A locked immutable vault stays locked.",
    "inferred",
    "D-immut: Locked is irreversible",
)

IMMUTABLE_VAULT_DELETE_DATA: Final = ErrorSpec(
    400,
    "BMSUserErrorOperationNotAllowedOnLockedImmutableVault",
    "Stop protection with delete data is not allowed for item {item} because immutability of the vault is "
    "locked. Recovery points are retained until they expire.",
    "inferred",
    "D-immut: locked immutability blocks stop-protection-with-delete-data",
)

MUA_NOT_AUTHORIZED: Final = ErrorSpec(
    400,
    "BMSUserErrorCriticalOperationNotAuthorizedByResourceGuard",
    "The operation '{operation}' is protected by Multi-User Authorization using resource guard "
    "'{guard}'. Request access to the resource guard from your security administrator and retry.",
    "inferred",
    "D-mua: protected operations need Contributor on the Resource Guard",
)

MUA_OPERATION_REQUEST: Final = ErrorSpec(
    400,
    "BMSUserErrorCriticalOperationNotAuthorizedByResourceGuard",
    "The operation '{operation}' is protected by Multi-User Authorization: the request must name the resource "
    "guard operation request '{wanted}' (and no other); it named: {named}.",
    "inferred",
    "azure-cli backup: set_backup_properties sends resourceGuardOperationRequests=[the proxy's defaultResourceRequest "
    "for 'disableSoftDelete' (…/backupconfig/write)] when it turns soft delete or enhanced security off; "
    "disable_protection unlocks with exactly the 'deleteProtection' request (custom_help.operation_name_map); "
    "S-RSB ResourceGuardProxyCRUD/UnlockDeleteResourceGuardProxy.json names one deleteProtectedItemRequests. "
    "Azure's code for a missing or other request is not published: code and refusal inferred",
)

VM_PROTECTED_ELSEWHERE: Final = ErrorSpec(
    409,
    "BMSUserErrorProtectableItemAlreadyProtected",
    "The virtual machine '{vm}' is already protected in the Recovery Services vault '{vault}'. A VM can be "
    "protected in only one vault at a time; stop protection and delete its backup data in that vault first.",
    "inferred",
    "D-esd / D-faq: one vault per VM at a time; soft-deleted items can be re-registered elsewhere. No public "
    "trace of the real code was found; this spelling agrees with steward.domain.protection.CONFLICT_CODES "
    "(itself a guess) so that the app and the sandbox tell the same story until someone sees Azure's answer.",
)

VM_REGION_MISMATCH: Final = ErrorSpec(
    400,
    "BMSUserErrorVmAndVaultNotInSameRegion",
    "The virtual machine '{vm}' is in region '{vm_region}' but the Recovery Services vault is in region "
    "'{vault_region}'. The vault must be in the same region as the VMs it protects.",
    "inferred",
    "D-prep: the vault must be in the same region as the VMs",
)

VM_SUBSCRIPTION_MISMATCH: Final = ErrorSpec(
    400,
    "BMSUserErrorCrossSubscriptionBackupNotSupported",
    "The virtual machine '{vm}' is in subscription '{vm_sub}' but the Recovery Services vault is in "
    "subscription '{vault_sub}'. Cross subscription backup isn't a supported scenario.",
    "inferred",
    "D-mvvault: cross subscription backup isn't supported",
)

DATASOURCE_NOT_FOUND: Final = ErrorSpec(
    400,
    "BMSUserErrorDatasourceNotFound",
    "The resource '{resource}' to protect was not found.",
    "inferred",
)

VM_NOT_DISCOVERED: Final = ErrorSpec(
    400,
    "BMSUserErrorInvalidConfigureProtectionRequest",
    "Input for configure protection is not in proper format\r\nPlease ensure that container exists and other "
    "parameters are in valid format",
    "observed",
    "code+message: hashicorp/terraform-provider-azurerm#2143, #2207 (a protected-item PUT whose container the "
    "vault did not know). Answering it for a VM the vault has not discovered yet is INFERRED and only with "
    "PropagationConfig.vm_discovery on: Microsoft's quickstart template and Terraform PUT right after creating "
    "the VM, the CLI (_get_protectable_item_for_vm) and the REST guide refresh containers first.",
)

CONTAINER_HAS_DATASOURCES: Final = ErrorSpec(
    400,
    "BMSUserErrorContainerHasDatasources",
    "Container '{container}' cannot be unregistered because it has protected items: {items}. Stop protection "
    "and delete backup data of these items first.",
    "observed",
    "seen in public SAP HANA / SQL unregister scripts",
)

CONTAINER_HAS_INTENT: Final = ErrorSpec(
    400,
    "BMSUserErrorContainerHasAutoProtectionIntent",
    "Container '{container}' cannot be unregistered because auto-protection is enabled on it ({intents}). "
    "Disable auto-protection first.",
    "inferred",
    "D-script: disable auto-protection before unregistering SQL containers",
)

CONTAINER_NOT_REGISTERED: Final = ErrorSpec(
    400,
    "BMSUserErrorContainerNotRegistered",
    "Container '{container}' is not registered with the vault. Register it before protecting items in it.",
    "inferred",
)

ITEM_SOFT_DELETED: Final = ErrorSpec(
    400,
    "BMSUserErrorItemInSoftDeletedState",
    "Item '{item}' is in soft deleted state. Undelete it (isRehydrate) before changing its protection.",
    "inferred",
)

ITEM_NOT_SOFT_DELETED: Final = ErrorSpec(
    400,
    "BMSUserErrorItemNotInSoftDeletedState",
    "Item '{item}' is not in soft deleted state, so it cannot be undeleted.",
    "inferred",
)

CONFLICTING_OPERATION: Final = ErrorSpec(
    400,
    "BMSUserErrorConflictingProtectionOperation",
    "Another protection operation is in progress for item '{item}'. Wait for it to finish and retry.",
    "observed",
    "code named in the Azure VM backup troubleshooting article (localised copies in azure-docs)",
)

POLICY_NOT_FOUND: Final = ErrorSpec(
    400,
    "BMSUserErrorPolicyNotFound",
    "Backup policy '{policy}' was not found in the vault.",
    "inferred",
)

POLICY_IN_USE: Final = ErrorSpec(
    400,
    "BMSUserErrorPolicyInUse",
    "Backup policy '{policy}' cannot be deleted because items are associated with it: {items}.",
    "inferred",
    "D-delvault: a policy with associated items (soft-deleted ones included) cannot be deleted",
)

INVALID_REQUEST: Final = ErrorSpec(400, "BadRequest", "{detail}", "inferred")

VAULT_MOVE_WITH_SITE_RECOVERY: Final = ErrorSpec(
    400,
    "BMSUserErrorVaultMoveNotSupportedWithSiteRecovery",
    "Recovery Services vault '{vault}' cannot be moved because it is configured for Azure Site Recovery ({details}).",
    "inferred",
    "D-mvvault: vaults used for Site Recovery can't move",
)

SITE_RECOVERY_IN_USE: Final = ErrorSpec(
    400,
    "SiteRecoveryObjectInUse",
    "The {what} cannot be removed because it is in use by: {used}. Remove those first (replicated items, then "
    "container mappings, then network mappings, then the fabric).",
    "inferred",
    "teardown order from D-script",
)

RESOURCE_NOT_FOUND: Final = ErrorSpec(
    404,
    "ResourceNotFound",
    "The Resource '{type}/{name}' under resource group '{rg}' was not found.",
    "spec",
    "standard ARM not-found body",
)

OPERATION_NOT_FOUND: Final = ErrorSpec(404, "ResourceNotFound", "Operation '{operation}' was not found.", "inferred")

# -- capacity limits (issue 19): the numbers are documented, the codes are not ------------------------------
_LIMITS_SOURCE = (
    "limit: Azure Backup FAQ (MicrosoftDocs/azure-docs articles/backup/backup-azure-backup-faq.yml, 'Recovery "
    "Services vault') and support matrix (backup-support-matrix.md, 'Vault support'); code, status and message "
    "inferred: no public answer of Azure at the limit was found"
)

VAULT_VM_LIMIT: Final = ErrorSpec(
    400,
    "BMSUserErrorVaultVMLimitReached",
    "The vault '{vault}' already protects {count} Azure VMs; a Recovery Services vault protects at most {limit}. "
    "Protect the VM in another vault.",
    "inferred",
    _LIMITS_SOURCE + " ('Up to 1,000 Azure VMs in a single vault')",
)

VAULT_DATASOURCE_LIMIT: Final = ErrorSpec(
    400,
    "BMSUserErrorVaultDatasourceLimitReached",
    "The vault '{vault}' already protects {count} datasources; a Recovery Services vault protects at most {limit} "
    "across all workloads. Protect the datasource in another vault.",
    "inferred",
    _LIMITS_SOURCE + " ('Up to 2000 datasources across all workloads ... in a single vault')",
)

VAULTS_PER_REGION_LIMIT: Final = ErrorSpec(
    400,
    "RecoveryServicesVaultLimitReached",
    "Subscription '{subscription}' already has {count} Recovery Services vaults in region '{region}'; at most "
    "{limit} are allowed per subscription and region. Use another subscription.",
    "inferred",
    _LIMITS_SOURCE + " ('up to 500 Recovery Services vaults, per supported region of Azure Backup, per "
    "subscription')",
)

POLICY_LIMIT: Final = ErrorSpec(
    400,
    "BMSUserErrorPolicyLimitReached",
    "The vault '{vault}' already has {count} backup policies; a vault has at most {limit}.",
    "inferred",
    _LIMITS_SOURCE + " ('You can only have up to 200 policies per vault')",
)

POLICY_CHANGE_LIMIT: Final = ErrorSpec(
    400,
    "BMSUserErrorPolicyChangeLimitReached",
    "{count} backup policies of vault '{vault}' were created or changed through Azure Resource Manager in the last "
    "24 hours; at most {limit} are allowed in 24 hours. Try again after {retry_at}.",
    "inferred",
    _LIMITS_SOURCE + " ('adding new backup policies or editing current policies through Azure Resource Manager "
    "(ARM) templates or Azure Automation clients such as PowerShell, CLI is limited to 50 over a span of 24 "
    "hours'); counted per vault, as the FAQ answers it under 'How many policies can I create per vault?' (inferred)",
)

#: Every spec above, for the project docs and tests.
ALL_ERRORS: Final[tuple[ErrorSpec, ...]] = (
    VAULT_NOT_EMPTY,
    VAULT_HAS_SOFT_DELETED_ITEMS,
    SOFT_DELETE_DISABLE_NOT_ALLOWED,
    INVALID_SOFT_DELETE_RETENTION,
    IMMUTABILITY_LOCKED_CHANGE,
    IMMUTABLE_VAULT_DELETE_DATA,
    MUA_NOT_AUTHORIZED,
    MUA_OPERATION_REQUEST,
    VM_PROTECTED_ELSEWHERE,
    VM_REGION_MISMATCH,
    VM_SUBSCRIPTION_MISMATCH,
    DATASOURCE_NOT_FOUND,
    CONTAINER_HAS_DATASOURCES,
    CONTAINER_HAS_INTENT,
    CONTAINER_NOT_REGISTERED,
    ITEM_SOFT_DELETED,
    ITEM_NOT_SOFT_DELETED,
    CONFLICTING_OPERATION,
    POLICY_NOT_FOUND,
    POLICY_IN_USE,
    VAULT_MOVE_WITH_SITE_RECOVERY,
    SITE_RECOVERY_IN_USE,
    RESOURCE_NOT_FOUND,
    VAULT_VM_LIMIT,
    VAULT_DATASOURCE_LIMIT,
    VAULTS_PER_REGION_LIMIT,
    POLICY_LIMIT,
    POLICY_CHANGE_LIMIT,
)
