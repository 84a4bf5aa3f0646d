"""ARM JSON of Recovery Services resources, shaped like the 2025-02-01 REST examples.

Field names and JSON types follow the examples (``GETVault.json``, ``ConfigureProtection.json``,
``BackupProtectedItems_List.json``...); the fidelity tests compare these shapes with the examples.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sandbox.arm.providers.recoveryservices_kinds import CONTAINER_KINDS, ITEM_KINDS, short_container_name
from sandbox.arm.providers.recoveryservices_model import (
    ALWAYS_ON,
    VAULT_TYPE,
    BackupEngine,
    Container,
    Intent,
    Item,
    Policy,
    PrivateEndpointConnection,
    RecoveryServicesModel,
    ResourceGuardProxy,
    VaultState,
    etag,
    guard_request,
    iso,
)
from sandbox.arm.providers.siterecovery_model import SrObject

FABRIC = "Azure"


def vault_json(model: RecoveryServicesModel, vault: VaultState) -> dict[str, Any]:
    security = vault.security
    props: dict[str, Any] = {
        "publicNetworkAccess": vault.public_network_access,
        "monitoringSettings": vault.monitoring
        or {
            "azureMonitorAlertSettings": {
                "alertsForAllJobFailures": "Enabled",
                "alertsForAllReplicationIssues": "Enabled",
                "alertsForAllFailoverIssues": "Enabled",
            },
            "classicAlertSettings": {
                "alertsForCriticalOperations": "Disabled",
                "emailNotificationsForSiteRecovery": "Enabled",
            },
        },
        "provisioningState": "Succeeded",
        "privateEndpointConnections": [private_endpoint_summary(vault, p) for p in vault.private_endpoints.values()],
        "privateEndpointStateForBackup": "Enabled" if vault.private_endpoints else "None",
        "privateEndpointStateForSiteRecovery": "None",
        "securitySettings": {
            "immutabilitySettings": {"state": security.immutability_state},
            "softDeleteSettings": {
                "softDeleteRetentionPeriodInDays": security.retention_days,
                "softDeleteState": security.soft_delete_state,
                "enhancedSecurityState": security.enhanced_security_state,
            },
            "multiUserAuthorization": "Enabled" if vault.mua_enabled else "Disabled",
            "sourceScanConfiguration": {
                "state": "Disabled",
                "sourceScanIdentity": {"identityType": "SystemAssigned"},
            },
        },
        "redundancySettings": {
            "standardTierStorageRedundancy": vault.storage_redundancy,
            "crossRegionRestore": vault.cross_region_restore,
        },
        "secureScore": "None",
        "bcdrSecurityLevel": _bcdr_level(vault),
    }
    if vault.move is not None:
        props["moveState"] = vault.move["moveState"]
        props["moveDetails"] = {k: v for k, v in vault.move.items() if k != "moveState"}
    body: dict[str, Any] = {
        "location": vault.location,
        "name": vault.name,
        "etag": etag(vault.etag_time or vault.created),
        "tags": dict(vault.tags),
        "properties": props,
        "id": vault.id,
        "type": VAULT_TYPE,
        "sku": {"name": vault.sku.get("name", "Standard"), "tier": vault.sku.get("tier", "Standard")},
    }
    if vault.identity is not None:
        body["identity"] = dict(vault.identity)
    del model
    return body


def _bcdr_level(vault: VaultState) -> str:
    security = vault.security
    score = sum(
        (
            security.soft_delete_state in ("Enabled", ALWAYS_ON),
            security.immutability_state != "Disabled",
            vault.mua_enabled,
        )
    )
    return ("Poor", "Fair", "Good", "Excellent")[score]


def private_endpoint_summary(vault: VaultState, connection: PrivateEndpointConnection) -> dict[str, Any]:
    return {
        "id": f"{vault.id}/privateEndpointConnections/{connection.name}",
        "properties": private_endpoint_properties(connection),
    }


def private_endpoint_properties(connection: PrivateEndpointConnection) -> dict[str, Any]:
    return {
        "provisioningState": connection.provisioning_state,
        "privateEndpoint": {"id": connection.endpoint_id},
        "groupIds": list(connection.group_ids),
        "privateLinkServiceConnectionState": {
            "status": connection.status,
            "description": "None",
            "actionsRequired": "None",
        },
    }


def private_endpoint_json(vault: VaultState, connection: PrivateEndpointConnection) -> dict[str, Any]:
    return {
        "id": f"{vault.id}/privateEndpointConnections/{connection.name}",
        "name": connection.name,
        "type": f"{VAULT_TYPE}/privateEndpointConnections",
        "location": vault.location,
        "properties": private_endpoint_properties(connection),
    }


def vault_config_json(vault: VaultState) -> dict[str, Any]:
    security = vault.security
    return {
        "id": f"{vault.id}/backupconfig/vaultconfig",
        "name": "vaultconfig",
        "type": f"{VAULT_TYPE}/backupconfig",
        "properties": {
            "enhancedSecurityState": security.enhanced_security_state,
            "softDeleteFeatureState": security.soft_delete_state,
            "softDeleteRetentionPeriodInDays": security.retention_days,
            "isSoftDeleteFeatureStateEditable": security.soft_delete_state != ALWAYS_ON,
            "storageType": vault.storage_redundancy,
        },
    }


def policy_json(model: RecoveryServicesModel, vault: VaultState, policy: Policy) -> dict[str, Any]:
    props = dict(policy.properties)
    props["protectedItemsCount"] = model.policy_item_count(vault, policy)
    return {
        "id": f"{vault.id}/backupPolicies/{policy.name}",
        "name": policy.name,
        "type": f"{VAULT_TYPE}/backupPolicies",
        "properties": props,
    }


def container_json(vault: VaultState, container: Container) -> dict[str, Any]:
    kind = CONTAINER_KINDS[container.kind]
    items = [i for i in vault.items_in(container.name) if not i.soft_deleted]
    props: dict[str, Any] = {
        "friendlyName": container.friendly_name,
        "backupManagementType": kind.backup_management_type,
        "registrationStatus": "Registered",
        "healthStatus": "Healthy",
        "containerType": kind.container_type,
        "protectedItemCount": len(items),
    }
    if container.kind == "IaasVM":
        props["virtualMachineId"] = container.source_id
        props["virtualMachineVersion"] = "Compute"
        props["resourceGroup"] = container.name.split(";")[-2] if container.name.count(";") >= 3 else ""
    elif container.kind in ("VMApp", "Storage"):
        props["sourceResourceId"] = container.source_id
        if container.kind == "VMApp":
            props["workloadType"] = container.workload_type or "SQLDataBase"
            props["operationType"] = "Register"
    else:
        props["canReRegister"] = True
        props["containerId"] = abs(hash(container.name.lower())) % 10**12
    if container.soft_deleted:
        props["registrationStatus"] = "SoftDeleted"
    return {
        "id": f"{vault.id}/backupFabrics/{FABRIC}/protectionContainers/{container.name}",
        "name": container.name,
        "type": f"{VAULT_TYPE}/backupFabrics/protectionContainers",
        "properties": props,
    }


def item_json(model: RecoveryServicesModel, vault: VaultState, item: Item) -> dict[str, Any]:
    kind = ITEM_KINDS[item.kind]
    now = model.now()
    props: dict[str, Any] = {
        "friendlyName": item.friendly_name,
        "protectionStatus": "Healthy",
        "protectionState": item.protection_state,
        "healthStatus": "Passed",
        "protectedItemType": kind.protected_item_type,
        "backupManagementType": kind.backup_management_type,
        "workloadType": kind.workload_type,
        "containerName": short_container_name(item.container),
        "sourceResourceId": item.source_id,
        "policyId": item.policy_id or "",
        "protectedItemDataId": item.data_id,
        "lastRecoveryPoint": iso(item.last_backup),
        "isScheduledForDeferredDelete": item.soft_deleted,
        "isRehydrate": item.is_rehydrate,
        "softDeleteRetentionPeriodInDays": vault.security.retention_days,
        "currentProtectionState": _current_state(item),
    }
    if item.policy_id:
        props["policyName"] = item.policy_id.rsplit("/", 1)[-1]
    if item.last_backup is not None:
        props["lastBackupStatus"] = "Completed"
        props["lastBackupTime"] = iso(item.last_backup)
    else:
        props["lastBackupStatus"] = ""
    if item.kind == "VM":
        props["virtualMachineId"] = item.source_id
    if item.kind in ("SQL", "HANA"):
        props["serverName"] = item.container.split(";")[-1]
        props["parentName"] = "MSSQLSERVER" if item.kind == "SQL" else "HXE"
        props["parentType"] = "AzureVmWorkloadSQLInstance" if item.kind == "SQL" else "AzureVmWorkloadSAPHanaSystem"
        props["protectedItemHealthStatus"] = "Healthy"
    if item.kind == "MARS":
        props["computerName"] = item.container
    if item.kind in ("DPM", "MABS"):
        props["backupEngineName"] = item.container
    if item.soft_deleted and item.deferred_delete_at is not None:
        remaining = max(item.deferred_delete_at - now, timedelta(0))
        props["deferredDeleteTimeInUTC"] = iso(item.deferred_delete_at)
        props["deferredDeleteTimeRemaining"] = _timespan(remaining.total_seconds())
        props["isDeferredDeleteScheduleUpcoming"] = remaining.total_seconds() < 24 * 3600
    return {
        "id": model.item_id(vault, item),
        "name": item.name,
        "type": f"{VAULT_TYPE}/backupFabrics/protectionContainers/protectedItems",
        "properties": props,
    }


def _current_state(item: Item) -> str:
    if item.soft_deleted:
        return "SoftDeleted"
    return {"IRPending": "ConfigureProtection", "Protected": "ProtectionConfigured"}.get(
        item.protection_state, item.protection_state
    )


def _timespan(seconds: float) -> str:
    """.NET TimeSpan text, as Azure Backup renders deferredDeleteTimeRemaining: ``13.23:59:59``."""
    total = int(seconds)
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{days}.{hours:02d}:{minutes:02d}:{secs:02d}"


def protectable_json(vault: VaultState, vm: dict[str, Any]) -> dict[str, Any]:
    core = f"iaasvmcontainerv2;{vm['rg']};{vm['name']}"
    return {
        "id": (
            f"{vault.id}/backupFabrics/{FABRIC}/protectionContainers/IaasVMContainer;{core}/protectableItems/VM;{core}"
        ),
        "name": f"VM;{core}",
        "type": f"{VAULT_TYPE}/backupFabrics/protectionContainers/protectableItems",
        "properties": {
            "friendlyName": vm["name"],
            "virtualMachineId": vm["id"],
            "protectionState": "NotProtected",
            "protectableItemType": "Microsoft.Compute/virtualMachines",
            "backupManagementType": "AzureIaasVM",
            "workloadType": "VM",
            "virtualMachineVersion": "Compute",
            "resourceGroup": vm["rg"],
        },
    }


def engine_json(vault: VaultState, engine: BackupEngine) -> dict[str, Any]:
    items = vault.items_in(engine.container)
    return {
        "id": f"{vault.id}/backupEngines/{engine.name}",
        "name": engine.name,
        "type": f"{VAULT_TYPE}/backupEngines",
        "properties": {
            "backupEngineType": engine.engine_type,
            "backupManagementType": "DPM" if engine.engine_type == "DpmBackupEngine" else "AzureBackupServer",
            "dpmVersion": "5.1.348.0",
            "isDpmUpgradeAvailable": False,
            "azureBackupAgentVersion": "2.0.9532.0",
            "isAzureBackupAgentUpgradeAvailable": False,
            "registrationStatus": "Registered",
            "backupEngineState": "Active",
            "friendlyName": engine.name,
            "healthStatus": "Healthy",
            "canReRegister": True,
            "extendedInfo": {
                "protectedItemsCount": len(items),
                "protectedServersCount": 1,
                "diskCount": 1,
                "availableDiskSpace": 50,
                "usedDiskSpace": 20,
            },
        },
    }


def intent_json(vault: VaultState, intent: Intent) -> dict[str, Any]:
    return {
        "id": f"{vault.id}/backupFabrics/{intent.fabric}/backupProtectionIntent/{intent.name}",
        "name": intent.name,
        "type": f"{VAULT_TYPE}/backupFabrics/backupProtectionIntent",
        "properties": dict(intent.properties),
    }


def proxy_json(vault: VaultState, proxy: ResourceGuardProxy) -> dict[str, Any]:
    return {
        "id": f"{vault.id}/backupResourceGuardProxies/{proxy.name}",
        "name": proxy.name,
        "type": f"{VAULT_TYPE}/backupResourceGuardProxies",
        "properties": {
            "resourceGuardResourceId": proxy.guard_id,
            "resourceGuardOperationDetails": [
                {
                    "vaultCriticalOperation": op,
                    "defaultResourceRequest": guard_request(proxy.guard_id, op),
                }
                for op in proxy.protected_operations
            ],
            "lastUpdatedTime": iso(proxy.updated),
            "description": proxy.description,
        },
    }


def sr_json(vault: VaultState, path: str, rtype: str, obj: SrObject) -> dict[str, Any]:
    return {
        "id": f"{vault.id}/{path}",
        "name": obj.name,
        "type": rtype,
        "location": vault.location,
        "properties": dict(obj.properties),
    }


def status_body(op_id: str, status: str, start: datetime, end: datetime | None, job: bool) -> dict[str, Any]:
    body: dict[str, Any] = {"id": op_id, "name": op_id, "status": status, "startTime": iso(start)}
    body["endTime"] = iso(end) if end is not None else "0001-01-01T00:00:00.00000Z"
    if job:
        body["properties"] = {"objectType": "OperationStatusJobExtendedInfo", "jobId": op_id}
    return body
