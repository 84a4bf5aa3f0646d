"""Recovery Services vault storage configuration: ``V/backupstorageconfig/vaultstorageconfig`` (storage
redundancy and Cross Region Restore), the ``BackupResourceStorageConfigsNonCRR_*`` operations.

Routes are added by :mod:`recoveryservices` (``add_storage_config_routes``); the state is the vault's own
(``VaultState.storage_redundancy`` / ``cross_region_restore``, which the vault's ``redundancySettings`` show too).

=========================================  ======================================================================
operation                                  answer
=========================================  ======================================================================
GET V/backupstorageconfig/vaultstorageconfig   200 BackupResourceConfigResource (S-RSB Common/BackupStorageConfig_Get)
PUT  (BackupResourceStorageConfigsNonCRR_Update)  200, the new config (Common/BackupStorageConfig_Put)
PATCH (BackupResourceStorageConfigsNonCRR_Patch)  204, no body (Common/BackupStorageConfig_Patch)
=========================================  ======================================================================

S-RSB = Azure/azure-rest-api-specs ``specification/recoveryservicesbackup/resource-manager/Microsoft.RecoveryServices/
stable/2025-02-01`` (``bms.json`` definition ``BackupResourceConfig``: ``storageModelType`` / ``storageType`` enum
Invalid|GeoRedundant|LocallyRedundant|ZoneRedundant|ReadAccessGeoZoneRedundant, ``storageTypeState``
Invalid|Locked|Unlocked, ``crossRegionRestoreFlag`` boolean). D-rsv = MicrosoftDocs/azure-docs
``articles/backup/backup-create-recovery-services-vault.md``.

Rules:

- ``storageTypeState`` is ``Locked`` once the vault holds backup content (a registered container or server, or a
  backup item, soft-deleted ones included), ``Unlocked`` before: D-rsv "change the storage replication type ...
  before you configure a backup in the vault. After you configure a backup, the option to modify is disabled".
  What exactly locks it is **inferred** from that and from the observed message below ("when the first machine
  is registered with the vault").
- Changing the type while Locked: 400 ``StorageModelModifyError`` "Storage Redundancy option is locked when the
  first machine is registered with the vault, and cannot be modified thereafter." (**observed**: a Terraform
  acceptance run quoted in hashicorp/terraform-provider-azurerm PR #8813). Sending the current type again is
  accepted (**inferred**).
- Cross Region Restore needs GeoRedundant (D-rsv: "supported only for a Recovery Services vault that uses the
  GRS replication type"); refused with 400 ``BMSUserErrorUnableToEnableCrossRegionRestore`` (the code Azure
  answers on this route when it refuses to enable CRR, **observed** for another cause in Azure/azure-powershell
  #15178; its use for a non-GRS vault is **inferred**).
- Once Locked, an enabled Cross Region Restore cannot be turned off (D-rsv: "Cross Region Restore currently can't
  be reverted to GRS or LRS after the protection starts for the first time"); code **inferred**.
- PATCH merges (a body with only ``crossRegionRestoreFlag`` answers 204: Azure/azure-powershell #15178); PUT
  replaces per ARM's contract, so an omitted ``crossRegionRestoreFlag`` means false and an omitted type keeps the
  current one (the type has no default to fall back to; **inferred**). ``storageModelType`` wins over
  ``storageType`` when both are sent (Bicep/ARM templates send ``storageModelType``, the spec's PUT example
  ``storageType``; **inferred**).
- Not modelled: ``dedupState``, ``xcoolState``, the vault PUT/PATCH ``redundancySettings`` lock.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

from sandbox.arm.http import Request, Response, no_content, ok
from sandbox.arm.providers.recoveryservices_errors import INVALID_REQUEST as _INVALID
from sandbox.arm.providers.recoveryservices_errors import ErrorSpec, RecoveryServicesError

if TYPE_CHECKING:
    from sandbox.arm.providers.recoveryservices import RecoveryServicesProvider
    from sandbox.arm.providers.recoveryservices_model import VaultState
    from sandbox.arm.routing import ProviderRoutes

CONFIG_TYPE: Final = "Microsoft.RecoveryServices/vaults/backupstorageconfig"
GEO: Final = "GeoRedundant"
#: the spec's enum without ``Invalid`` (S-RSB ``StorageType``)
STORAGE_TYPES: Final = ("GeoRedundant", "LocallyRedundant", "ZoneRedundant", "ReadAccessGeoZoneRedundant")

STORAGE_TYPE_LOCKED: Final = ErrorSpec(
    400,
    "StorageModelModifyError",
    "Storage Redundancy option is locked when the first machine is registered with the vault, and cannot be "
    "modified thereafter.",
    "observed",
    "hashicorp/terraform-provider-azurerm PR #8813 (Azure's answer quoted from an acceptance run)",
)
CRR_NEEDS_GEO: Final = ErrorSpec(
    400,
    "BMSUserErrorUnableToEnableCrossRegionRestore",
    "Cross Region Restore can be enabled only for a vault with GeoRedundant storage; this vault's storage type "
    "is '{storage}'.",
    "inferred",
    "code observed on PATCH backupstorageconfig for another cause (Azure/azure-powershell#15178); rule from "
    "D-rsv 'supported only for a Recovery Services vault that uses the GRS replication type'",
)
CRR_CANNOT_BE_DISABLED: Final = ErrorSpec(
    400,
    "BMSUserErrorCrossRegionRestoreCannotBeDisabled",
    "Cross Region Restore cannot be disabled after protection has started in the vault.",
    "inferred",
    "D-rsv: 'Cross Region Restore currently can't be reverted to GRS or LRS after the protection starts'",
)


def locked(vault: VaultState) -> bool:
    """The vault holds backup content, so its storage type can no longer change."""
    return bool(vault.containers or vault.items or vault.engines)


def storage_config_json(vault: VaultState) -> dict[str, Any]:
    return {
        "id": f"{vault.id}/backupstorageconfig/vaultstorageconfig",
        "name": "vaultstorageconfig",
        "type": CONFIG_TYPE,
        "properties": {
            "storageModelType": vault.storage_redundancy,
            "storageType": vault.storage_redundancy,
            "storageTypeState": "Locked" if locked(vault) else "Unlocked",
            "crossRegionRestoreFlag": vault.cross_region_restore == "Enabled",
        },
    }


def apply_storage_config(vault: VaultState, body: dict[str, Any], *, replace: bool) -> None:
    """Validate and apply a PUT (``replace``) or PATCH body; nothing changes when a rule refuses it."""
    props = body.get("properties")
    if not isinstance(props, dict):
        raise RecoveryServicesError(_INVALID, detail="The request body needs a 'properties' object.")
    wanted = props.get("storageModelType") or props.get("storageType") or vault.storage_redundancy
    match = next((t for t in STORAGE_TYPES if t.lower() == str(wanted).lower()), None)
    if match is None:
        raise RecoveryServicesError(
            _INVALID, detail=f"Storage type '{wanted}' is not valid; use one of {', '.join(STORAGE_TYPES)}."
        )
    flag = props.get("crossRegionRestoreFlag")
    if flag is None:
        crr = False if replace else vault.cross_region_restore == "Enabled"
    elif isinstance(flag, bool):
        crr = flag
    else:
        raise RecoveryServicesError(_INVALID, detail="'crossRegionRestoreFlag' must be true or false.")
    is_locked = locked(vault)
    if is_locked and match != vault.storage_redundancy:
        raise RecoveryServicesError(STORAGE_TYPE_LOCKED)
    if crr and match != GEO:
        raise RecoveryServicesError(CRR_NEEDS_GEO, storage=match)
    if is_locked and vault.cross_region_restore == "Enabled" and not crr:
        raise RecoveryServicesError(CRR_CANNOT_BE_DISABLED)
    vault.storage_redundancy = match
    vault.cross_region_restore = "Enabled" if crr else "Disabled"


class StorageConfigRoutes:
    def __init__(self, provider: RecoveryServicesProvider) -> None:
        self.provider = provider

    def get(self, req: Request) -> Response:
        return ok(storage_config_json(self.provider.vault(req)))

    def put(self, req: Request) -> Response:
        vault = self._write(req, replace=True)
        return ok(storage_config_json(vault))

    def patch(self, req: Request) -> Response:
        self._write(req, replace=False)
        return no_content()

    def _write(self, req: Request, *, replace: bool) -> VaultState:
        vault = self.provider.vault(req)
        apply_storage_config(vault, req.json_object(), replace=replace)
        vault.etag_time = self.provider.model.now()
        self.provider.sync(vault)
        self.provider.persist(vault.id)
        return vault


def add_storage_config_routes(routes: ProviderRoutes, provider: RecoveryServicesProvider, vault_template: str) -> None:
    """Registration hook called by :func:`sandbox.arm.providers.recoveryservices.register`."""
    handlers = StorageConfigRoutes(provider)
    template = vault_template + "/backupstorageconfig/vaultstorageconfig"
    write = "Microsoft.RecoveryServices/vaults/backupstorageconfig/write"
    routes.add("GET", template, provider.guarded(handlers.get))
    routes.add("PUT", template, provider.guarded(handlers.put), operation=write)
    routes.add("PATCH", template, provider.guarded(handlers.patch), operation=write)
