"""Small builders for audit inventories: one healthy, fully protected estate that tests then spoil."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from steward.domain.audit import (
    DISK_TYPE,
    POSTGRES_TYPE,
    STORAGE_TYPE,
    VM_TYPE,
    BackupInstance,
    EstateInventory,
    Expectation,
    ImmutabilityState,
    ProtectableResource,
    ProtectedItem,
    SoftDeleteState,
    UniformExpectations,
    Vault,
    VaultKind,
    VaultRequirements,
)

NOW = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)
SUB_A = "11111111-1111-1111-1111-111111111111"
SUB_B = "22222222-2222-2222-2222-222222222222"


def rid(sub: str, rg: str, provider_type: str, name: str) -> str:
    return f"/subscriptions/{sub}/resourceGroups/{rg}/providers/{provider_type}/{name}"


def rs_vault(name: str = "rsv-weu", sub: str = SUB_A, location: str = "westeurope", **settings: object) -> Vault:
    base = Vault(
        id=rid(sub, "rg-backup", "Microsoft.RecoveryServices/vaults", name),
        kind=VaultKind.RECOVERY_SERVICES,
        location=location,
        soft_delete=SoftDeleteState.ALWAYS_ON,
        immutability=ImmutabilityState.LOCKED,
        cross_region_restore=True,
        multi_user_authorization=True,
    )
    return replace(base, **settings)  # type: ignore[arg-type]


def backup_vault(name: str = "bv-weu", sub: str = SUB_A, location: str = "westeurope", **settings: object) -> Vault:
    base = Vault(
        id=rid(sub, "rg-backup", "Microsoft.DataProtection/backupVaults", name),
        kind=VaultKind.BACKUP,
        location=location,
        soft_delete=SoftDeleteState.ALWAYS_ON,
        immutability=ImmutabilityState.LOCKED,
        cross_region_restore=True,
        multi_user_authorization=True,
    )
    return replace(base, **settings)  # type: ignore[arg-type]


def vm(name: str = "vm1", sub: str = SUB_A, location: str = "westeurope", **tags: str) -> ProtectableResource:
    return ProtectableResource(rid(sub, "rg-app", VM_TYPE, name), VM_TYPE, location, dict(tags))


def disk(name: str = "disk1", sub: str = SUB_A, location: str = "westeurope") -> ProtectableResource:
    return ProtectableResource(rid(sub, "rg-app", DISK_TYPE, name), DISK_TYPE, location, {})


def storage(name: str = "st1", sub: str = SUB_A, location: str = "westeurope") -> ProtectableResource:
    return ProtectableResource(rid(sub, "rg-app", STORAGE_TYPE, name), STORAGE_TYPE, location, {})


def postgres(name: str = "pg1", sub: str = SUB_A, location: str = "westeurope") -> ProtectableResource:
    return ProtectableResource(rid(sub, "rg-app", POSTGRES_TYPE, name), POSTGRES_TYPE, location, {})


def item_for(
    resource: ProtectableResource,
    vault: Vault,
    *,
    policy: str = "DefaultPolicy",
    state: str = "Protected",
    last_backup: datetime | None = NOW - timedelta(hours=2),
    soft_deleted: bool = False,
    purge_at: datetime | None = None,
) -> ProtectedItem:
    rg = resource.resource_group
    container = (
        f"{vault.id}/backupFabrics/Azure/protectionContainers/IaasVMContainer;iaasvmcontainerv2;{rg};{resource.name}"
    )
    return ProtectedItem(
        id=f"{container}/protectedItems/VM;iaasvmcontainerv2;{rg};{resource.name}",
        vault_id=vault.id,
        source_id=resource.id,
        policy_id=f"{vault.id}/backupPolicies/{policy}",
        protection_state=state,
        last_backup_time=last_backup,
        soft_deleted=soft_deleted,
        purge_at=purge_at,
    )


def instance_for(
    resource: ProtectableResource,
    vault: Vault,
    *,
    policy: str = "disk-default",
    status: str = "ProtectionConfigured",
    soft_deleted: bool = False,
    purge_at: datetime | None = None,
    last_backup: datetime | None = None,
) -> BackupInstance:
    return BackupInstance(
        id=f"{vault.id}/backupInstances/{resource.name}-{resource.name}",
        vault_id=vault.id,
        datasource_id=resource.id,
        datasource_type=resource.type,
        policy_id=f"{vault.id}/backupPolicies/{policy}",
        protection_status=status,
        soft_deleted=soft_deleted,
        purge_at=purge_at,
        last_backup_time=last_backup,
    )


STRICT = VaultRequirements(
    soft_delete=SoftDeleteState.ALWAYS_ON,
    immutability=ImmutabilityState.LOCKED,
    cross_region_restore=True,
    multi_user_authorization=True,
)


def rules(
    *,
    must_protect: bool = True,
    vm_policy: str | None = "DefaultPolicy",
    rpo_hours: float | None = 26,
    requirements: VaultRequirements = STRICT,
    vm_vault: str | None = None,
) -> UniformExpectations:
    """VMs: the given policy/RPO; Backup-vault workloads: any policy, same requirements."""
    default = Expectation(
        must_protect=must_protect,
        rule="protect-all",
        reason="default rule",
        rpo_hours=rpo_hours,
        vault_requirements=requirements,
    )
    return UniformExpectations(
        default=default,
        by_type={VM_TYPE: replace(default, rule="vms", policy=vm_policy, vault_id=vm_vault)},
    )


def healthy_estate() -> EstateInventory:
    """A VM, a disk, a storage account and a PostgreSQL server, each protected as the rules want."""
    rsv, bv = rs_vault(), backup_vault()
    v, d, s, p = vm(), disk(), storage(), postgres()
    return EstateInventory(
        subscriptions=(SUB_A,),
        resources=(v, d, s, p),
        vaults=(rsv, bv),
        protected_items=(item_for(v, rsv),),
        backup_instances=(
            instance_for(d, bv),
            instance_for(s, bv, policy="blob-default"),
            instance_for(p, bv, policy="postgres-flex-default"),
        ),
    )
