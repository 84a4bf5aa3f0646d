"""REST-shaped JSON (as ARM and the SDKs' ``wire()`` give it) -> the teardown's inventory records. Pure.

Field names follow the 2025-02-01 Recovery Services specs and the 2025-07-01 DataProtection specs; the
unit tests feed Microsoft's published examples (``shared/fixtures/azure-rest-examples``) through these.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Final

from steward.domain.teardown import (
    BackupInstance,
    BackupItem,
    BackupPolicy,
    ContainerKind,
    ImmutabilityState,
    ItemKind,
    ItemState,
    PrivateEndpointConnection,
    ProtectionContainer,
    ProtectionIntent,
    RegisteredServer,
    SiteRecoveryKind,
    SiteRecoveryObject,
    SoftDeleteState,
    VaultSettings,
    parse_time,
)

_ITEM_KINDS: Final[dict[str, ItemKind]] = {
    "microsoft.compute/virtualmachines": ItemKind.VM,
    "microsoft.classiccompute/virtualmachines": ItemKind.VM,
    "azureiaasvmprotecteditem": ItemKind.VM,
    "azurevmworkloadsqldatabase": ItemKind.SQL,
    "azurevmworkloadsaphanadatabase": ItemKind.SAP_HANA,
    "azurevmworkloadsaphanadbinstance": ItemKind.SAP_HANA,
    "azurefileshareprotecteditem": ItemKind.AZURE_FILES,
    "mabfilefolderprotecteditem": ItemKind.MARS,
}
_CONTAINER_KINDS: Final[dict[str, ContainerKind]] = {
    "microsoft.compute/virtualmachines": ContainerKind.VM,
    "microsoft.classiccompute/virtualmachines": ContainerKind.VM,
    "iaasvmcontainer": ContainerKind.VM,
    "vmappcontainer": ContainerKind.VM_APP,
    "storagecontainer": ContainerKind.STORAGE,
    "windows": ContainerKind.MARS,
    "dpmcontainer": ContainerKind.DPM,
    "azurebackupservercontainer": ContainerKind.MABS,
}
_BY_MANAGEMENT: Final[dict[str, ContainerKind]] = {
    "azureiaasvm": ContainerKind.VM,
    "azureworkload": ContainerKind.VM_APP,
    "azurestorage": ContainerKind.STORAGE,
    "mab": ContainerKind.MARS,
    "dpm": ContainerKind.DPM,
    "azurebackupserver": ContainerKind.MABS,
}
_SEGMENT = re.compile(r"/(backupFabrics|replicationFabrics)/([^/]+)", re.IGNORECASE)


def _props(body: Mapping[str, Any]) -> Mapping[str, Any]:
    props = body.get("properties")
    return props if isinstance(props, Mapping) else {}


def _path_value(resource_id: str, segment: str) -> str | None:
    match = re.search(rf"/{segment}/([^/]+)", resource_id, re.IGNORECASE)
    return match.group(1) if match else None


def soft_delete_state(text: object) -> SoftDeleteState:
    if not isinstance(text, str):
        return SoftDeleteState.DISABLED
    state: SoftDeleteState = SoftDeleteState.parse(text, SoftDeleteState.INVALID)  # either vault kind's words
    return SoftDeleteState.INVALID if state is SoftDeleteState.UNKNOWN else state


def recovery_services_settings(
    vault: Mapping[str, Any], vault_config: Mapping[str, Any] | None, *, mua_proxies: int = 0
) -> VaultSettings:
    """From ``GET vaults/{v}`` (securitySettings) and ``GET backupconfig/vaultconfig`` (which wins when present)."""
    security = _props(vault).get("securitySettings") or {}
    soft = security.get("softDeleteSettings") or {}
    immutability = (security.get("immutabilitySettings") or {}).get("state") or "Disabled"
    config = _props(vault_config or {})
    soft_state = config.get("softDeleteFeatureState") or soft.get("softDeleteState")
    enhanced = config.get("enhancedSecurityState") or soft.get("enhancedSecurityState")
    retention = config.get("softDeleteRetentionPeriodInDays") or soft.get("softDeleteRetentionPeriodInDays") or 14
    mua = str(security.get("multiUserAuthorization") or "").lower() == "enabled" or mua_proxies > 0
    return VaultSettings(
        soft_delete=soft_delete_state(soft_state),
        soft_delete_retention_days=int(retention),
        enhanced_security=soft_delete_state(enhanced),
        immutability=ImmutabilityState.parse(immutability, ImmutabilityState.DISABLED),
        mua_enabled=mua,
        resource_guard_id=None,
    )


def backup_vault_settings(vault: Mapping[str, Any], *, mua_proxies: int = 0) -> VaultSettings:
    security = _props(vault).get("securitySettings") or {}
    soft = security.get("softDeleteSettings") or {}
    immutability = (security.get("immutabilitySettings") or {}).get("state") or "Disabled"
    return VaultSettings(
        soft_delete=soft_delete_state(soft.get("state") or "Off"),
        soft_delete_retention_days=int(float(soft.get("retentionDurationInDays") or 14)),
        enhanced_security=SoftDeleteState.DISABLED,
        immutability=ImmutabilityState.parse(immutability, ImmutabilityState.DISABLED),
        mua_enabled=mua_proxies > 0,
    )


def backup_item(body: Mapping[str, Any]) -> BackupItem:
    props = _props(body)
    rid = str(body.get("id") or "")
    item_type = str(props.get("protectedItemType") or "")
    kind = _ITEM_KINDS.get(item_type.lower(), ItemKind.OTHER)
    management = str(props.get("backupManagementType") or "").lower()
    if item_type.lower() == "dpmprotecteditem":
        kind = ItemKind.MABS if management == "azurebackupserver" else ItemKind.DPM
    if props.get("isScheduledForDeferredDelete") or str(props.get("currentProtectionState")) == "SoftDeleted":
        state = ItemState.SOFT_DELETED
    elif str(props.get("protectionState") or "") in ("ProtectionStopped", "Invalid"):
        state = ItemState.STOPPED
    else:
        state = ItemState.PROTECTED
    container = _path_value(rid, "protectionContainers") or str(props.get("containerName") or "")
    fabric = _path_value(rid, "backupFabrics") or "Azure"
    return BackupItem(
        id=rid,
        name=str(body.get("name") or rid.rsplit("/", 1)[-1]),
        fabric=fabric,
        container=container,
        kind=kind,
        state=state,
        source_resource_id=props.get("sourceResourceId") or None,
        item_type=item_type,
        deferred_delete_at=(
            parse_time(props.get("deferredDeleteTimeInUTC")) if state is ItemState.SOFT_DELETED else None
        ),
        has_data=bool(props.get("lastRecoveryPoint") or props.get("lastBackupTime")),
    )


def protection_container(body: Mapping[str, Any]) -> ProtectionContainer:
    props = _props(body)
    rid = str(body.get("id") or "")
    kind = _CONTAINER_KINDS.get(str(props.get("containerType") or "").lower()) or _BY_MANAGEMENT.get(
        str(props.get("backupManagementType") or "").lower(), ContainerKind.OTHER
    )
    return ProtectionContainer(
        id=rid,
        name=str(body.get("name") or rid.rsplit("/", 1)[-1]),
        fabric=_path_value(rid, "backupFabrics") or "Azure",
        kind=kind,
        soft_deleted=str(props.get("registrationStatus") or "").lower() == "softdeleted",
    )


def protection_intent(body: Mapping[str, Any]) -> ProtectionIntent:
    props = _props(body)
    rid = str(body.get("id") or "")
    return ProtectionIntent(
        id=rid,
        name=str(body.get("name") or rid.rsplit("/", 1)[-1]),
        fabric=_path_value(rid, "backupFabrics") or "Azure",
        source_resource_id=props.get("sourceResourceId") or None,
    )


def registered_server_from_container(container: ProtectionContainer) -> RegisteredServer:
    return RegisteredServer(id=container.id, name=container.name, kind=container.kind, container=container.name)


def backup_engine(body: Mapping[str, Any]) -> RegisteredServer:
    props = _props(body)
    rid = str(body.get("id") or "")
    engine_type = str(props.get("backupEngineType") or "").lower()
    kind = ContainerKind.DPM if engine_type == "dpmbackupengine" else ContainerKind.MABS
    name = str(body.get("name") or rid.rsplit("/", 1)[-1])
    return RegisteredServer(id=rid, name=name, kind=kind, container=name)


def private_endpoint_connection(body: Mapping[str, Any]) -> PrivateEndpointConnection:
    props = _props(body)
    rid = str(body.get("id") or "")
    endpoint = props.get("privateEndpoint") or {}
    return PrivateEndpointConnection(
        id=rid,
        name=str(body.get("name") or rid.rsplit("/", 1)[-1]),
        private_endpoint_id=(endpoint.get("id") if isinstance(endpoint, Mapping) else None) or None,
    )


def site_recovery_object(body: Mapping[str, Any], kind: SiteRecoveryKind) -> SiteRecoveryObject:
    rid = str(body.get("id") or "")
    parent = {
        SiteRecoveryKind.REPLICATED_ITEM: "replicationProtectionContainers",
        SiteRecoveryKind.CONTAINER_MAPPING: "replicationProtectionContainers",
        SiteRecoveryKind.PROTECTION_CONTAINER: None,
        SiteRecoveryKind.NETWORK_MAPPING: "replicationNetworks",
        SiteRecoveryKind.FABRIC: None,
    }[kind]
    return SiteRecoveryObject(
        id=rid,
        name=str(body.get("name") or rid.rsplit("/", 1)[-1]),
        kind=kind,
        fabric=_path_value(rid, "replicationFabrics") or "",
        parent=_path_value(rid, parent) if parent else None,
    )


def backup_instance(body: Mapping[str, Any], *, deleted: bool = False) -> BackupInstance:
    props = _props(body)
    rid = str(body.get("id") or "")
    status = str((props.get("protectionStatus") or {}).get("status") or "")
    current = str(props.get("currentProtectionState") or "")
    deletion = props.get("deletionInfo") or {}
    if deleted or status == "SoftDeleted" or current == "SoftDeleted":
        state = ItemState.SOFT_DELETED
    elif status == "ProtectionStopped" or current == "ProtectionStopped" or "Stopped" in current:
        state = ItemState.STOPPED
    else:
        state = ItemState.PROTECTED
    source = props.get("dataSourceInfo") or {}
    return BackupInstance(
        id=rid,
        name=str(body.get("name") or rid.rsplit("/", 1)[-1]),
        datasource_type=str(source.get("datasourceType") or ""),
        state=state,
        purge_at=parse_time(deletion.get("scheduledPurgeTime")) if state is ItemState.SOFT_DELETED else None,
        has_data=True,
    )


def backup_policy(body: Mapping[str, Any]) -> BackupPolicy:
    rid = str(body.get("id") or "")
    return BackupPolicy(id=rid, name=str(body.get("name") or rid.rsplit("/", 1)[-1]))
