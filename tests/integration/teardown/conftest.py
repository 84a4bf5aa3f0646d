"""The ARM sandbox, the app's real SDK clients and a seeded vault of every kind, for the teardown tests."""

from __future__ import annotations

import pkgutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from azure.core.rest import HttpRequest

from sandbox.arm.config import DEFAULT_SUBSCRIPTION, PropagationConfig, SandboxConfig
from sandbox.arm.providers.recoveryservices import recovery_services
from sandbox.arm.providers.recoveryservices_model import Timing
from sandbox.arm.server import ArmSandbox
from steward.cloud.clients import CloudClients
from steward.cloud.teardown_ops import SITE_RECOVERY_API_VERSION, TeardownOps

#: one real second = one Azure hour: LROs end in milliseconds, 14 days pass with advance()
SCALE = 3600.0
HOUR = 3600.0
DAY = 24 * HOUR
NEEDED = ("resources", "recoveryservices", "dataprotection", "authorization")
OPTIONAL = ("compute", "storage", "generic", "tags", "network")
VM_TYPE = "Microsoft.Compute/virtualMachines"
STORAGE_TYPE = "Microsoft.Storage/storageAccounts"
STORAGE_ACCOUNT_CONTRIBUTOR = "17d1049b-9a84-46fb-8f53-869881c3d3ab"
SUB = DEFAULT_SUBSCRIPTION


def provider_names() -> tuple[str, ...]:
    import sandbox.arm.providers as package

    present = {info.name for info in pkgutil.iter_modules(package.__path__)}
    return tuple(n for n in NEEDED if n in present) + tuple(n for n in OPTIONAL if n in present)


def start_sandbox(**config: Any) -> ArmSandbox:
    # RBAC propagation off: the teardown tests build protections straight through the adapters
    options: dict[str, Any] = {"scale": SCALE, "page_size": 3, "providers": provider_names(),
                               "propagation": PropagationConfig(rbac_seconds=0), **config}
    sb = ArmSandbox(SandboxConfig(**options)).start()
    recovery_services(sb).model.timing = Timing(first_backup=1 * HOUR)
    return sb


@pytest.fixture(scope="module")
def sandbox() -> Iterator[ArmSandbox]:
    sb = start_sandbox()
    try:
        yield sb
    finally:
        sb.stop()


@pytest.fixture(scope="module")
def clients(sandbox: ArmSandbox) -> CloudClients:
    return CloudClients(sandbox.cloud_target())


@pytest.fixture(scope="module")
def ops(clients: CloudClients) -> TeardownOps:
    return TeardownOps(clients, wait_budget_seconds=60, max_poll_seconds=0.5)


@dataclass
class Estate:
    """One test's resources, uniquely named so tests can share a sandbox."""

    sandbox: ArmSandbox
    clients: CloudClients
    tag: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    subscription: str = SUB

    @property
    def rs(self) -> Any:
        return self.clients.recovery_services(self.subscription)

    @property
    def rsb(self) -> Any:
        return self.clients.recovery_services_backup(self.subscription)

    @property
    def dp(self) -> Any:
        return self.clients.data_protection(self.subscription)

    @property
    def model(self) -> Any:
        return recovery_services(self.sandbox).model

    def group(self, name: str = "rg") -> str:
        rg = f"{name}-{self.tag}"
        self.clients.resources(self.subscription).resource_groups.create_or_update(rg, {"location": "westeurope"})
        return rg

    def resource(self, rg: str, full_type: str, name: str) -> str:
        rid = f"/subscriptions/{self.subscription}/resourceGroups/{rg}/providers/{full_type}/{name}"
        self.sandbox.store.put(
            {
                "id": rid,
                "name": name,
                "type": full_type,
                "location": "westeurope",
                "tags": {},
                "properties": {"provisioningState": "Succeeded"},
            }
        )
        return rid

    # -- Recovery Services ------------------------------------------------------------------------
    def rs_vault(
        self,
        rg: str,
        name: str = "rsv",
        *,
        soft_delete: str = "Enabled",
        enhanced: str = "Enabled",
        days: int = 14,
        immutability: str | None = None,
        tags: dict[str, str] | None = None,
    ) -> str:
        security: dict[str, Any] = {
            "softDeleteSettings": {
                "softDeleteState": soft_delete,
                "softDeleteRetentionPeriodInDays": days,
                "enhancedSecurityState": enhanced,
            }
        }
        if immutability:
            security["immutabilitySettings"] = {"state": immutability}
        body = {
            "location": "westeurope",
            "tags": tags or {},
            "sku": {"name": "Standard"},
            "identity": {"type": "SystemAssigned"},
            "properties": {"publicNetworkAccess": "Enabled", "securitySettings": security},
        }
        vault = self.rs.vaults.begin_create_or_update(rg, name, body).result()
        return str(vault.id)

    def policy_id(self, rg: str, vault: str, name: str = "DefaultPolicy") -> str:
        return (
            f"/subscriptions/{self.subscription}/resourceGroups/{rg}/providers/Microsoft.RecoveryServices/"
            f"vaults/{vault}/backupPolicies/{name}"
        )

    def workload_policy(self, rg: str, vault: str, name: str, management: str) -> str:
        self.rsb.protection_policies.create_or_update(
            vault, rg, name, {"properties": {"backupManagementType": management}}
        )
        return self.policy_id(rg, vault, name)

    def protect_vm(self, rg: str, vault: str, vm_name: str) -> tuple[str, str]:
        vm_id = self.resource(rg, VM_TYPE, vm_name)
        core = f"iaasvmcontainerv2;{rg};{vm_name}"
        container, item = f"IaasVMContainer;{core}", f"VM;{core}"
        self.rsb.protected_items.begin_create_or_update(
            vault,
            rg,
            "Azure",
            container,
            item,
            {
                "properties": {
                    "protectedItemType": VM_TYPE,
                    "sourceResourceId": vm_id,
                    "policyId": self.policy_id(rg, vault),
                }
            },
        ).result()
        return container, item

    def register(  # noqa: PLR0917
        self, rg: str, vault: str, container: str, container_type: str, source: str, workload: str | None = None
    ) -> None:
        props: dict[str, Any] = {
            "containerType": container_type,
            "sourceResourceId": source,
            "backupManagementType": "AzureWorkload" if workload else "AzureStorage",
        }
        if workload:
            props["workloadType"] = workload
        self.rsb.protection_containers.begin_register(vault, rg, "Azure", container, {"properties": props}).result()

    def protect_workload(  # noqa: PLR0917
        self, rg: str, vault: str, container: str, item: str, item_type: str, policy: str
    ) -> None:
        self.rsb.protected_items.begin_create_or_update(
            vault,
            rg,
            "Azure",
            container,
            item,
            {"properties": {"protectedItemType": item_type, "policyId": policy}},
        ).result()

    def raw(self, method: str, path: str, body: Any = None, api_version: str = SITE_RECOVERY_API_VERSION) -> Any:
        request = HttpRequest(method, f"{path}?api-version={api_version}", json=body)
        response = self.rs.send_request(request)
        response.raise_for_status()
        return response

    def site_recovery(self, vault_id: str) -> None:
        fabric = f"{vault_id}/replicationFabrics/fabric1"
        container = f"{fabric}/replicationProtectionContainers/container1"
        self.raw("PUT", fabric, {"properties": {"customDetails": {"instanceType": "Azure", "location": "westeurope"}}})
        self.raw("PUT", container, {"properties": {}})
        self.raw("PUT", f"{container}/replicationProtectedItems/item1", {"properties": {"policyId": "p"}})
        self.raw("PUT", f"{container}/replicationProtectionContainerMappings/mapping1", {"properties": {}})
        self.raw("PUT", f"{fabric}/replicationNetworks/net1/replicationNetworkMappings/netmap1", {"properties": {}})
        self.sandbox.advance(HOUR)

    def full_vault(
        self,
        rg: str,
        name: str = "rsv",
        *,
        tags: dict[str, str] | None = None,
        storage_rights: bool = True,
        **settings: Any,
    ) -> str:
        """A Recovery Services vault with every kind of content the teardown knows; ``storage_rights``: the app
        holds Storage Account Contributor on the registered storage account."""
        vault_id = self.rs_vault(rg, name, tags=tags, **settings)
        vm_container, vm_item = self.protect_vm(rg, name, "vm-a")
        self.protect_vm(rg, name, "vm-b")
        gone_container, gone_item = self.protect_vm(rg, name, "vm-gone")
        sql_vm = self.resource(rg, VM_TYPE, "sqlvm")
        hana_vm = self.resource(rg, VM_TYPE, "hanavm")
        account = self.resource(rg, STORAGE_TYPE, f"sa{self.tag}")
        sql_c, hana_c = f"VMAppContainer;compute;{rg};sqlvm", f"VMAppContainer;compute;{rg};hanavm"
        afs_c = f"StorageContainer;Storage;{rg};sa{self.tag}"
        self.register(rg, name, sql_c, "VMAppContainer", sql_vm, "SQLDataBase")
        self.register(rg, name, hana_c, "VMAppContainer", hana_vm, "SAPHanaDatabase")
        self.register(rg, name, afs_c, "StorageContainer", account)
        if storage_rights:  # the app may unregister the storage account (backup-rbac-rs-vault.md)
            self.grant(self.sandbox.config.default_principal_id, STORAGE_ACCOUNT_CONTRIBUTOR, account)
        sql_policy = self.workload_policy(rg, name, "SqlPolicy", "AzureWorkload")
        afs_policy = self.workload_policy(rg, name, "AfsPolicy", "AzureStorage")
        self.protect_workload(rg, name, sql_c, "SQLDataBase;mssqlserver;db1", "AzureVmWorkloadSQLDatabase", sql_policy)
        self.protect_workload(rg, name, hana_c, "SAPHanaDatabase;hxe;db1", "AzureVmWorkloadSAPHanaDatabase", sql_policy)
        self.protect_workload(rg, name, afs_c, "AzureFileShare;share1", "AzureFileShareProtectedItem", afs_policy)
        self.rsb.protection_intent.create_or_update(
            name,
            rg,
            "Azure",
            f"intent-{self.tag}",
            {
                "properties": {
                    "protectionIntentItemType": "RecoveryServiceVaultItem",
                    "policyId": sql_policy,
                    "itemId": f"{vault_id}/backupFabrics/Azure/protectionContainers/{sql_c}/protectableItems/x",
                }
            },
        )
        self.model.seed_mars_server(vault_id, f"mars-{self.tag}")
        self.model.seed_backup_server(vault_id, f"dpm-{self.tag}", kind="DPM")
        self.model.seed_backup_server(vault_id, f"mabs-{self.tag}", kind="MABS")
        self.private_endpoint(vault_id, f"pe-{self.tag}")
        self.site_recovery(vault_id)
        self.sandbox.advance(2 * HOUR)  # LROs done, first backups ran
        self.model.seed_soft_deleted_item(vault_id, gone_container, gone_item, days_left=10)
        del vm_container, vm_item
        return vault_id

    # -- Backup vault -------------------------------------------------------------------------------
    def raw_lro(self, client: Any, method: str, path: str, body: Any, api_version: str) -> Any:
        """An LRO through the client's own pipeline (azure-mgmt-dataprotection 2.2.0 refuses to send
        ``backup_vaults.begin_create_or_update`` at 2025-07-01; see tests/integration/sandbox_dp)."""
        response = client.send_request(HttpRequest(method, f"{path}?api-version={api_version}", json=body))
        response.raise_for_status()
        self.sandbox.advance(HOUR)
        return response.json() if response.text() else None

    def backup_vault(
        self,
        rg: str,
        name: str = "bv",
        *,
        soft_delete: str = "On",
        days: float = 14,
        tags: dict[str, str] | None = None,
    ) -> str:
        group = f"/subscriptions/{self.subscription}/resourceGroups/{rg}"
        vault_id = f"{group}/providers/Microsoft.DataProtection/backupVaults/{name}"
        self.raw_lro(
            self.dp,
            "PUT",
            vault_id,
            {
                "location": "westeurope",
                "tags": tags or {},
                "identity": {"type": "SystemAssigned"},
                "properties": {
                    "storageSettings": [{"datastoreType": "VaultStore", "type": "LocallyRedundant"}],
                    "securitySettings": {"softDeleteSettings": {"state": soft_delete, "retentionDurationInDays": days}},
                },
            },
            "2025-07-01",
        )
        return vault_id

    def disk(self, rg: str, name: str) -> str:
        rid = f"/subscriptions/{self.subscription}/resourceGroups/{rg}/providers/Microsoft.Compute/disks/{name}"
        self.clients.resources(self.subscription).resources.begin_create_or_update_by_id(
            rid,
            {
                "location": "westeurope",
                "sku": {"name": "Standard_LRS"},
                "properties": {"creationData": {"createOption": "Empty"}, "diskSizeGB": 32},
            },
            api_version="2025-01-02",
        ).result()
        return rid

    def grant(self, principal: str, role_id: str, scope: str) -> None:
        self.clients.authorization(self.subscription).role_assignments.create(
            scope,
            str(uuid.uuid4()),
            {
                "properties": {
                    "roleDefinitionId": f"/subscriptions/{self.subscription}/providers/Microsoft.Authorization/"
                    f"roleDefinitions/{role_id}",
                    "principalId": principal,
                    "principalType": "ServicePrincipal",
                }
            },
        )

    def private_endpoint(self, vault_id: str, name: str) -> str:
        """A private endpoint (Microsoft.Network resource) with its connection on the vault; the endpoint's id."""
        from sandbox.arm.providers.network import seed_private_endpoint

        connection = self.model.seed_private_endpoint(vault_id, name)
        seed_private_endpoint(self.sandbox.ctx, connection.endpoint_id, "westeurope", vault_id)
        return connection.endpoint_id

    def backup_vault_with_instances(
        self, rg: str, name: str = "bv", *, soft_deleted: int = 1, live: int = 2, soft_delete: str = "On"
    ) -> tuple[str, list[str]]:
        """A Backup vault (soft delete ``soft_delete``) protecting disks; ``soft_deleted`` of the instances deleted
        again."""
        vault_id = self.backup_vault(rg, name, soft_delete=soft_delete)
        vault = self.dp.backup_vaults.get(rg, name)
        principal = str(vault.identity.principal_id)
        group_id = f"/subscriptions/{self.subscription}/resourceGroups/{rg}"
        self.grant(principal, "7efff54f-a5b4-42b5-a1c5-5411624893ce", group_id)  # Disk Snapshot Contributor
        policy = self.dp.backup_policies.create_or_update(
            rg,
            name,
            "disk-policy",
            {
                "properties": {
                    "objectType": "BackupPolicy",
                    "datasourceTypes": ["Microsoft.Compute/disks"],
                    "policyRules": [
                        {
                            "name": "Default",
                            "objectType": "AzureRetentionRule",
                            "isDefault": True,
                            "lifecycles": [
                                {
                                    "deleteAfter": {"objectType": "AbsoluteDeleteOption", "duration": "P7D"},
                                    "sourceDataStore": {
                                        "dataStoreType": "OperationalStore",
                                        "objectType": "DataStoreInfoBase",
                                    },
                                }
                            ],
                        }
                    ],
                }
            },
        )
        names = []
        for index in range(soft_deleted + live):
            disk = self.disk(rg, f"disk{index}")
            self.grant(principal, "3e5e47e6-65f7-47ef-90b5-e5dd4d455f24", disk)  # Disk Backup Reader
            instance = f"bi-{index}"
            self.dp.backup_instances.begin_create_or_update(
                rg,
                name,
                instance,
                {
                    "properties": {
                        "objectType": "BackupInstance",
                        "dataSourceInfo": {
                            "objectType": "Datasource",
                            "resourceID": disk,
                            "resourceName": f"disk{index}",
                            "resourceType": "Microsoft.Compute/disks",
                            "resourceLocation": "westeurope",
                            "datasourceType": "Microsoft.Compute/disks",
                        },
                        "policyInfo": {
                            "policyId": str(policy.id),
                            "policyParameters": {
                                "dataStoreParametersList": [
                                    {
                                        "objectType": "AzureOperationalStoreParameters",
                                        "dataStoreType": "OperationalStore",
                                        "resourceGroupId": group_id,
                                    }
                                ]
                            },
                        },
                    }
                },
            ).result()
            names.append(instance)
        for instance in names[:soft_deleted]:
            self.dp.backup_instances.begin_delete(rg, name, instance).result()
        self.sandbox.advance(HOUR)
        return vault_id, names


@pytest.fixture
def estate(sandbox: ArmSandbox, clients: CloudClients) -> Estate:
    return Estate(sandbox, clients)
