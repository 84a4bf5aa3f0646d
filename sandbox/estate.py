"""Build an Azure estate on the sandbox through the real SDK clients, as a user would.

Used by the end-to-end tests, ``make demo`` and the benchmarks. Everything goes through ARM (so every write
raises the Event Grid event Azure would raise); nothing pokes the sandbox's state directly.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from azure.mgmt.dataprotection.models import BaseBackupPolicyResource
from azure.mgmt.recoveryservices.models import Vault

from steward.cloud.clients import CloudClients
from steward.cloud.protection import READ_API_VERSIONS
from steward.domain.vault_defaults import BACKUP_VAULT_POLICIES, backup_vault_body, recovery_services_vault_body

DEFAULT_TAG: Final = "backup-steward:default"
#: The Blob service's containers API version (Microsoft.Storage 2023-05-01, BlobContainers_Create).
CONTAINER_API_VERSION: Final = "2023-05-01"
#: a storage account tagged blob-tier=vaulted goes to vaulted blob backup, whose container list is what issue 19
#: item 2 is about (the default rule, operational backup, covers every container already)
VAULTED_BLOBS_RULE: Final = """
  - name: vaulted-blobs
    description: Storage accounts tagged blob-tier=vaulted -> vaulted blob backup of every container.
    match:
      types: [Microsoft.Storage/storageAccounts]
      tags: {blob-tier: vaulted}
    protect:
      vault: regional-default
      policy: blob-vaulted
      datastore:
        blobTier: vaulted
      onDelete: retain
"""
#: A vaulted blob policy (VaultStore daily backups, 30 days), as ``az dataprotection backup-policy
#: get-default-policy-template --datasource-type AzureBlob`` shapes it (backup rule + retention rule).
VAULTED_BLOB_POLICY: Final[dict[str, Any]] = {"properties": {
    "objectType": "BackupPolicy",
    "datasourceTypes": ["Microsoft.Storage/storageAccounts/blobServices"],
    "policyRules": [
        {"name": "BackupDaily", "objectType": "AzureBackupRule",
         "backupParameters": {"objectType": "AzureBackupParams", "backupType": "Discrete"},
         "dataStore": {"dataStoreType": "VaultStore", "objectType": "DataStoreInfoBase"},
         "trigger": {"objectType": "ScheduleBasedTriggerContext",
                     "schedule": {"repeatingTimeIntervals": ["R/2026-01-01T02:00:00+00:00/P1D"]},
                     "taggingCriteria": [{"isDefault": True, "taggingPriority": 99,
                                          "tagInfo": {"tagName": "Default"}}]}},
        {"name": "Default", "objectType": "AzureRetentionRule", "isDefault": True,
         "lifecycles": [{"deleteAfter": {"objectType": "AbsoluteDeleteOption", "duration": "P30D"},
                         "sourceDataStore": {"dataStoreType": "VaultStore", "objectType": "DataStoreInfoBase"}}]},
    ],
}}


@dataclass
class Estate:
    """Creates resources in one subscription of the sandbox."""

    clients: CloudClients
    subscription_id: str

    def rid(self, group: str, rtype: str, name: str) -> str:
        return f"/subscriptions/{self.subscription_id}/resourceGroups/{group}/providers/{rtype}/{name}"

    def resource_group(self, name: str, location: str) -> str:
        self.clients.resources(self.subscription_id).resource_groups.create_or_update(name, {"location": location})
        return f"/subscriptions/{self.subscription_id}/resourceGroups/{name}"

    def _put(self, rid: str, rtype: str, body: dict[str, Any]) -> dict[str, Any]:
        client = self.clients.resources(self.subscription_id).resources
        poller = client.begin_create_or_update_by_id(
            rid, api_version=READ_API_VERSIONS[rtype.lower()], parameters=body,
            polling_interval=self.clients.target.polling_interval,
        )
        return dict(poller.result().as_dict())

    def vm(self, group: str, name: str, location: str, tags: dict[str, str] | None = None) -> str:
        rid = self.rid(group, "Microsoft.Compute/virtualMachines", name)
        self._put(rid, "Microsoft.Compute/virtualMachines", {
            "location": location, "tags": tags or {},
            "properties": {"hardwareProfile": {"vmSize": "Standard_D2s_v5"},
                           "storageProfile": {"osDisk": {"createOption": "FromImage"}}},
        })
        return rid

    def disk(self, group: str, name: str, location: str, tags: dict[str, str] | None = None) -> str:
        rid = self.rid(group, "Microsoft.Compute/disks", name)
        self._put(rid, "Microsoft.Compute/disks", {
            "location": location, "tags": tags or {}, "sku": {"name": "Premium_LRS"},
            "properties": {"creationData": {"createOption": "Empty"}, "diskSizeGB": 64},
        })
        return rid

    def storage_account(self, group: str, name: str, location: str, tags: dict[str, str] | None = None) -> str:
        rid = self.rid(group, "Microsoft.Storage/storageAccounts", name)
        self._put(rid, "Microsoft.Storage/storageAccounts", {
            "location": location, "tags": tags or {}, "kind": "StorageV2", "sku": {"name": "Standard_LRS"},
            "properties": {},
        })
        return rid

    def postgres(self, group: str, name: str, location: str, tags: dict[str, str] | None = None) -> str:
        rid = self.rid(group, "Microsoft.DBforPostgreSQL/flexibleServers", name)
        self._put(rid, "Microsoft.DBforPostgreSQL/flexibleServers", {
            "location": location, "tags": tags or {}, "sku": {"name": "Standard_D2ds_v5", "tier": "GeneralPurpose"},
            "properties": {"version": "16", "storage": {"storageSizeGB": 128}},
        })
        return rid

    def recovery_services_vault(self, group: str, name: str, location: str, *, default: bool = True,
                                soft_delete: str = "Enabled") -> str:
        body = recovery_services_vault_body(location, {DEFAULT_TAG: "true"} if default else {})
        body["properties"]["securitySettings"]["softDeleteSettings"]["softDeleteState"] = soft_delete
        vault = self.clients.recovery_services(self.subscription_id).vaults.begin_create_or_update(
            resource_group_name=group, vault_name=name, vault=Vault(body),
            polling_interval=self.clients.target.polling_interval,
        ).result()
        return str(vault.id)

    def backup_vault(self, group: str, name: str, location: str, *, default: bool = True,
                     policies: tuple[str, ...] = tuple(BACKUP_VAULT_POLICIES)) -> str:
        client = self.clients.data_protection(self.subscription_id)
        body = backup_vault_body(location, {DEFAULT_TAG: "true"} if default else {})
        # Through the generic resources API: azure-mgmt-dataprotection 2.2.0's
        # backup_vaults.begin_create_or_update passes x_ms_deleted_vault_id=None to a helper that rejects it
        # below api-version 2025-09-01 (docs/azure-facts.md).
        rid = self.rid(group, "Microsoft.DataProtection/backupVaults", name)
        vault = self._put(rid, "Microsoft.DataProtection/backupVaults", body)
        for policy in policies:
            client.backup_policies.create_or_update(
                resource_group_name=group, vault_name=name, backup_policy_name=policy,
                parameters=BaseBackupPolicyResource(BACKUP_VAULT_POLICIES[policy]),
            )
        return str(vault["id"])

    def backup_policy(self, vault_id: str, name: str, body: dict[str, Any]) -> str:
        """A Backup vault policy (``BackupPolicies_CreateOrUpdate``); its id."""
        parts = vault_id.split("/")
        policy = self.clients.data_protection(self.subscription_id).backup_policies.create_or_update(
            resource_group_name=parts[4], vault_name=parts[-1], backup_policy_name=name,
            parameters=BaseBackupPolicyResource(body))
        return str(policy.id)

    def blob_container(self, account_id: str, name: str) -> str:
        """A blob container through ARM (``…/blobServices/default/containers/{name}``): Azure raises its
        ResourceWriteSuccess event, as it does for a container made in the portal or with ``az``."""
        rid = f"{account_id}/blobServices/default/containers/{name}"
        self.clients.resources(self.subscription_id).resources.begin_create_or_update_by_id(
            rid, api_version=CONTAINER_API_VERSION, parameters={"properties": {}},
            polling_interval=self.clients.target.polling_interval,
        ).result()
        return rid

    def delete(self, rid: str) -> None:
        rtype = "/".join(rid.split("/providers/", 1)[1].split("/")[0:2])
        self.clients.resources(self.subscription_id).resources.begin_delete_by_id(
            rid, api_version=READ_API_VERSIONS[rtype.lower()],
            polling_interval=self.clients.target.polling_interval,
        ).result()

    def move(self, source_group: str, ids: list[str], target_group_id: str) -> None:
        self.clients.resources(self.subscription_id).resources.begin_move_resources(
            source_group, {"resources": ids, "targetResourceGroup": target_group_id},
            polling_interval=self.clients.target.polling_interval,
        ).result()
