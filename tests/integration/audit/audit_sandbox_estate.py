"""A small estate on the ARM sandbox, built through the real SDK clients, with something for most controls."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sandbox.arm import ArmSandbox
from sandbox.arm.config import DEFAULT_SUBSCRIPTION, SECOND_SUBSCRIPTION
from sandbox.estate import Estate
from steward.cloud.clients import CloudClients
from steward.cloud.protection import BackupVaultProtection, RecoveryServicesProtection
from steward.domain import workloads
from steward.domain.ids import ResourceId

SUB1, SUB2 = DEFAULT_SUBSCRIPTION, SECOND_SUBSCRIPTION


@dataclass
class BuiltEstate:
    ids: dict[str, str] = field(default_factory=dict)


def protect_vm(clients: CloudClients, vault_id: str, vm_id: str, policy: str = "DefaultPolicy") -> None:
    rs = RecoveryServicesProtection(clients)
    policy_id = rs.policy_id(vault_id, policy)
    assert policy_id, f"no policy {policy} in {vault_id}"
    rs.enable_vm(vault_id, vm_id, policy_id)


def protect_disk(clients: CloudClients, vault_id: str, disk_id: str, location: str,
                 sandbox: ArmSandbox | None = None) -> str:
    bv = BackupVaultProtection(clients)
    vault = next(
        v for v in bv.all_vaults(ResourceId.parse(vault_id).subscription_id) if v.id.lower() == vault_id.lower()
    )
    assert vault.principal_id, "the Backup vault has no identity"
    rid = ResourceId.parse(disk_id)
    for role in workloads.DISK.roles:
        scope = str(rid) if role.scope is workloads.RoleScope.RESOURCE else str(rid.resource_group_id)
        bv.ensure_role(vault.principal_id, role.role_definition_guid, scope)
    if sandbox is not None:  # new role assignments apply only after the RBAC propagation delay (issue #13)
        sandbox.advance(sandbox.ctx.propagation.rbac_seconds)
    policy_id = bv.policy_id(vault_id, "disk-default")
    assert policy_id
    body: dict[str, Any] = {
        "properties": {
            "objectType": "BackupInstance",
            "friendlyName": rid.name,
            "dataSourceInfo": {
                "objectType": "Datasource",
                "resourceID": str(rid),
                "resourceName": rid.name,
                "resourceType": "Microsoft.Compute/disks",
                "resourceLocation": location,
                "resourceUri": str(rid),
                "datasourceType": "Microsoft.Compute/disks",
            },
            "policyInfo": {
                "policyId": policy_id,
                "policyParameters": {
                    "dataStoreParametersList": [
                        {
                            "objectType": "AzureOperationalStoreParameters",
                            "dataStoreType": "OperationalStore",
                            "resourceGroupId": str(rid.resource_group_id),
                        }
                    ]
                },
            },
        }
    }
    name = f"{rid.name}-{rid.name}"
    bv.validate(vault_id, body)
    bv.create_instance(vault_id, name, body)
    return name


def build(sandbox: ArmSandbox, clients: CloudClients) -> BuiltEstate:
    """sub1/westeurope: vaults; VMs ok, naked, stopped, enhanced-policy, soft-deleted, deleted-source; a disk
    ok; a storage account naked; a VM in eastus (no vault there). sub2/northeurope: an empty vault."""
    out = BuiltEstate()
    one, two = Estate(clients, SUB1), Estate(clients, SUB2)
    one.resource_group("rg-backup", "westeurope")
    one.resource_group("rg-app", "westeurope")
    two.resource_group("rg-backup", "northeurope")
    rsv = out.ids["rsv"] = one.recovery_services_vault("rg-backup", "rsv-weu", "westeurope")
    bv = out.ids["bv"] = one.backup_vault("rg-backup", "bv-weu", "westeurope")
    out.ids["rsv-empty"] = two.recovery_services_vault("rg-backup", "rsv-neu", "northeurope", soft_delete="Disabled")
    for name in ("vm-ok", "vm-naked", "vm-stopped", "vm-enhanced", "vm-softdel", "vm-gone"):
        out.ids[name] = one.vm("rg-app", name, "westeurope", {"owner": "<b>team</b>"})
    out.ids["vm-far"] = one.vm("rg-app", "vm-far", "eastus")
    out.ids["disk-ok"] = one.disk("rg-app", "disk-ok", "westeurope")
    out.ids["st-naked"] = one.storage_account("rg-app", "stnaked", "westeurope")

    for name in ("vm-ok", "vm-stopped", "vm-softdel", "vm-gone"):
        protect_vm(clients, rsv, out.ids[name])
    protect_vm(clients, rsv, out.ids["vm-enhanced"], "EnhancedPolicy")
    protect_disk(clients, bv, out.ids["disk-ok"], "westeurope", sandbox)
    sandbox.advance(2 * 3600)  # the first backups run

    rs = RecoveryServicesProtection(clients)
    rs.stop_retain(rsv, out.ids["vm-stopped"])
    container, item = rs.vm_item_names(out.ids["vm-softdel"])
    clients.recovery_services_backup(SUB1).protected_items.delete("rsv-weu", "rg-backup", "Azure", container, item)
    sandbox.advance(120)
    one.delete(out.ids["vm-gone"])
    return out
