"""The teardown plan: the documented step order per vault kind, blockers, and what is left after the steps."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Final

from steward.domain.kernel import (
    ImmutabilityState,
    SoftDeleteState,
    VaultKind,
    format_time,
    parse_time,
)
from steward.domain.teardown.codec import RECORD_VERSION, InvalidTeardownInput, record_str, req_time
from steward.domain.teardown.fingerprint import inventory_fingerprint
from steward.domain.teardown.inventory import (
    BackupItem,
    ContainerKind,
    ItemKind,
    ItemState,
    ProtectionContainer,
    SiteRecoveryKind,
    Target,
    VaultInventory,
    VaultObject,
    VaultSettings,
    target_from_record,
)
from steward.domain.teardown.request import EVENT_SECURITY_APPROVAL

ALWAYS_ON_WAIT_REASON: Final = (
    "soft delete is AlwaysON: deleted items stay soft-deleted until their purge date and cannot be purged sooner"
)


class StepKind(StrEnum):
    """Every step a teardown can have. The order of the ``*_ORDER`` tuples below is the documented one."""

    DISABLE_SOFT_DELETE = "disable-soft-delete"
    DISABLE_ENHANCED_SECURITY = "disable-enhanced-security"
    DISABLE_IMMUTABILITY = "disable-immutability"
    UNDELETE_ITEMS = "undelete-items"
    DELETE_VM_ITEMS = "delete-vm-items"
    DELETE_SQL_ITEMS = "delete-sql-items"
    DISABLE_PROTECTION_INTENTS = "disable-protection-intents"
    UNREGISTER_SQL_CONTAINERS = "unregister-sql-containers"
    DELETE_SAP_HANA_ITEMS = "delete-sap-hana-items"
    UNREGISTER_SAP_HANA_CONTAINERS = "unregister-sap-hana-containers"
    DELETE_AZURE_FILES_ITEMS = "delete-azure-files-items"
    UNREGISTER_STORAGE_CONTAINERS = "unregister-storage-containers"
    DELETE_OTHER_ITEMS = "delete-other-items"
    UNREGISTER_MARS_SERVERS = "unregister-mars-servers"
    UNREGISTER_BACKUP_SERVERS = "unregister-backup-servers"
    REMOVE_REPLICATED_ITEMS = "remove-replicated-items"
    REMOVE_CONTAINER_MAPPINGS = "remove-container-mappings"
    REMOVE_REPLICATION_CONTAINERS = "remove-replication-containers"
    REMOVE_NETWORK_MAPPINGS = "remove-network-mappings"
    REMOVE_FABRICS = "remove-fabrics"
    REMOVE_PRIVATE_ENDPOINTS = "remove-private-endpoint-connections"
    UNDELETE_INSTANCES = "undelete-instances"
    STOP_INSTANCES = "stop-instances"
    DELETE_INSTANCES = "delete-instances"
    DELETE_POLICIES = "delete-policies"
    AWAIT_PURGE = "await-purge"
    VERIFY_EMPTY = "verify-empty"
    DELETE_VAULT = "delete-vault"


#: The official script's order (docs/azure-facts.md, "Vault deletion") with the portal's undelete/re-delete;
#: hybrid servers after workloads.
RECOVERY_SERVICES_ORDER: Final = (
    StepKind.DISABLE_SOFT_DELETE,
    StepKind.DISABLE_ENHANCED_SECURITY,
    StepKind.DISABLE_IMMUTABILITY,
    StepKind.UNDELETE_ITEMS,
    StepKind.DELETE_VM_ITEMS,
    StepKind.DELETE_SQL_ITEMS,
    StepKind.DISABLE_PROTECTION_INTENTS,
    StepKind.UNREGISTER_SQL_CONTAINERS,
    StepKind.DELETE_SAP_HANA_ITEMS,
    StepKind.UNREGISTER_SAP_HANA_CONTAINERS,
    StepKind.DELETE_AZURE_FILES_ITEMS,
    StepKind.UNREGISTER_STORAGE_CONTAINERS,
    StepKind.DELETE_OTHER_ITEMS,
    StepKind.UNREGISTER_MARS_SERVERS,
    StepKind.UNREGISTER_BACKUP_SERVERS,
    StepKind.REMOVE_REPLICATED_ITEMS,
    StepKind.REMOVE_CONTAINER_MAPPINGS,
    StepKind.REMOVE_REPLICATION_CONTAINERS,
    StepKind.REMOVE_NETWORK_MAPPINGS,
    StepKind.REMOVE_FABRICS,
    StepKind.REMOVE_PRIVATE_ENDPOINTS,
    StepKind.AWAIT_PURGE,
    StepKind.VERIFY_EMPTY,
    StepKind.DELETE_VAULT,
)
#: Backup vault (D-bv): instances (stop, delete, soft-deleted ones), policies, then the vault. Policies come after
#: the purge wait: Azure refuses to delete a policy that soft-deleted instances still reference
#: (``UserErrorPolicyAssociatedWithSoftDeletedItems``, terraform-provider-azurerm#25011), and with AlwaysOn soft
#: delete every deleted instance stays soft-deleted until its purge date.
BACKUP_VAULT_ORDER: Final = (
    StepKind.DISABLE_SOFT_DELETE,
    StepKind.DISABLE_IMMUTABILITY,
    StepKind.UNDELETE_INSTANCES,
    StepKind.STOP_INSTANCES,
    StepKind.DELETE_INSTANCES,
    StepKind.AWAIT_PURGE,
    StepKind.DELETE_POLICIES,
    StepKind.VERIFY_EMPTY,
    StepKind.DELETE_VAULT,
)

SETTINGS_STEPS: Final = frozenset(
    {StepKind.DISABLE_SOFT_DELETE, StepKind.DISABLE_ENHANCED_SECURITY, StepKind.DISABLE_IMMUTABILITY}
)
NON_DESTRUCTIVE_STEPS: Final = frozenset(
    {StepKind.UNDELETE_ITEMS, StepKind.UNDELETE_INSTANCES, StepKind.AWAIT_PURGE, StepKind.VERIFY_EMPTY}
)


def documented_order(kind: VaultKind) -> tuple[StepKind, ...]:
    return RECOVERY_SERVICES_ORDER if kind is VaultKind.RECOVERY_SERVICES else BACKUP_VAULT_ORDER


@dataclass(frozen=True)
class SettingChange:
    setting: str
    from_value: str
    to_value: str

    def to_record(self) -> dict[str, Any]:
        return {"setting": self.setting, "from": self.from_value, "to": self.to_value}

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> SettingChange:
        return cls(record_str(record, "setting"), record_str(record, "from"), record_str(record, "to"))

    def reverse(self) -> SettingChange:
        return SettingChange(self.setting, self.to_value, self.from_value)


@dataclass(frozen=True)
class TeardownStep:
    kind: StepKind
    targets: tuple[Target, ...] = ()
    setting_changes: tuple[SettingChange, ...] = ()
    wait_until: datetime | None = None
    requires_security_approval: bool = False

    @property
    def destructive(self) -> bool:
        return self.kind not in NON_DESTRUCTIVE_STEPS

    @property
    def count(self) -> int:
        return len(self.targets)

    def to_record(self) -> dict[str, Any]:
        return {
            "kind": self.kind.value,
            "count": self.count,
            "destructive": self.destructive,
            "targets": [t.to_record() for t in self.targets],
            "settingChanges": [c.to_record() for c in self.setting_changes],
            "waitUntil": format_time(self.wait_until),
            "requiresSecurityApproval": self.requires_security_approval,
        }

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> TeardownStep:
        return cls(
            kind=StepKind(str(record.get("kind"))),
            targets=tuple(target_from_record(t) for t in record.get("targets") or []),
            setting_changes=tuple(SettingChange.from_record(c) for c in record.get("settingChanges") or []),
            wait_until=parse_time(record.get("waitUntil")),
            requires_security_approval=bool(record.get("requiresSecurityApproval", False)),
        )


class BlockerKind(StrEnum):
    IMMUTABILITY_LOCKED = "immutability-locked"
    ALWAYS_ON_SOFT_DELETE = "always-on-soft-delete"
    MUA = "multi-user-authorization"
    MISSING_PERMISSION = "missing-permission"


#: Blockers that stop the plan for good (nothing destructive is planned); the others wait or park.
HARD_BLOCKERS: Final = frozenset({BlockerKind.IMMUTABILITY_LOCKED, BlockerKind.MISSING_PERMISSION})


@dataclass(frozen=True)
class Blocker:
    kind: BlockerKind
    reason: str
    action_needed: str
    until: datetime | None = None

    @property
    def hard(self) -> bool:
        return self.kind in HARD_BLOCKERS

    def to_record(self) -> dict[str, Any]:
        return {
            "kind": self.kind.value,
            "reason": self.reason,
            "actionNeeded": self.action_needed,
            "until": format_time(self.until),
            "hard": self.hard,
        }

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> Blocker:
        return cls(
            kind=BlockerKind(str(record.get("kind"))),
            reason=record_str(record, "reason"),
            action_needed=record_str(record, "actionNeeded"),
            until=parse_time(record.get("until")),
        )


class PlanStatus(StrEnum):
    READY = "ready"
    BLOCKED = "blocked"
    NEEDS_SECURITY_APPROVAL = "needs-security-approval"
    NOTHING_TO_DO = "nothing-to-do"


@dataclass(frozen=True)
class TeardownPlan:
    vault_id: str
    vault_kind: VaultKind
    fingerprint: str
    planned_at: datetime
    steps: tuple[TeardownStep, ...]
    blockers: tuple[Blocker, ...] = ()
    inventory_counts: Mapping[str, int] = field(default_factory=dict)
    estimated_purge_at: datetime | None = None

    @property
    def status(self) -> PlanStatus:
        if any(b.hard for b in self.blockers):
            return PlanStatus.BLOCKED
        if not self.steps:
            return PlanStatus.NOTHING_TO_DO
        if any(b.kind is BlockerKind.MUA for b in self.blockers):
            return PlanStatus.NEEDS_SECURITY_APPROVAL
        return PlanStatus.READY

    @property
    def blocked(self) -> bool:
        return self.status is PlanStatus.BLOCKED

    def step(self, kind: StepKind) -> TeardownStep | None:
        return next((s for s in self.steps if s.kind is kind), None)

    def setting_changes(self) -> tuple[SettingChange, ...]:
        return tuple(c for s in self.steps for c in s.setting_changes)

    def to_record(self) -> dict[str, Any]:
        return {
            "version": RECORD_VERSION,
            "vaultId": self.vault_id,
            "vaultKind": self.vault_kind.arm_type,
            "fingerprint": self.fingerprint,
            "plannedAt": req_time(self.planned_at),
            "status": self.status.value,
            "steps": [s.to_record() for s in self.steps],
            "blockers": [b.to_record() for b in self.blockers],
            "inventoryCounts": dict(self.inventory_counts),
            "estimatedPurgeAt": format_time(self.estimated_purge_at),
        }

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> TeardownPlan:
        if not isinstance(record, Mapping):
            raise InvalidTeardownInput("a plan record must be an object")
        planned_at = parse_time(record.get("plannedAt"))
        if planned_at is None:
            raise InvalidTeardownInput("a plan record needs plannedAt")
        return cls(
            vault_id=record_str(record, "vaultId"),
            vault_kind=VaultKind(str(record.get("vaultKind"))),
            fingerprint=record_str(record, "fingerprint"),
            planned_at=planned_at,
            steps=tuple(TeardownStep.from_record(s) for s in record.get("steps") or []),
            blockers=tuple(Blocker.from_record(b) for b in record.get("blockers") or []),
            inventory_counts={str(k): int(v) for k, v in (record.get("inventoryCounts") or {}).items()},
            estimated_purge_at=parse_time(record.get("estimatedPurgeAt")),
        )


def _soft_delete_stays(settings: VaultSettings) -> bool:
    """True when deleted backup data will sit in soft delete whatever the saga does."""
    return SoftDeleteState.ALWAYS_ON in (settings.soft_delete, settings.enhanced_security)


def _item_bucket(item: BackupItem) -> StepKind:
    return {
        ItemKind.VM: StepKind.DELETE_VM_ITEMS,
        ItemKind.SQL: StepKind.DELETE_SQL_ITEMS,
        ItemKind.SAP_HANA: StepKind.DELETE_SAP_HANA_ITEMS,
        ItemKind.AZURE_FILES: StepKind.DELETE_AZURE_FILES_ITEMS,
    }.get(item.kind, StepKind.DELETE_OTHER_ITEMS)


def _blockers(inventory: VaultInventory, now: datetime) -> list[Blocker]:
    settings = inventory.settings
    blockers: list[Blocker] = []
    if inventory.access_denied:
        blockers.append(
            Blocker(
                BlockerKind.MISSING_PERMISSION,
                "the app's identity was refused: " + ", ".join(sorted(set(inventory.access_denied))),
                "grant the Function App's identity Backup Contributor (and Contributor for vault deletion) "
                "on the vault"
                + (
                    ", and Storage Account Contributor on each storage account named above"
                    if any("Storage Account Contributor" in a for a in inventory.access_denied)
                    else ""
                )
                + ", then plan again",
            )
        )
    # Azure refuses stop-protection-with-delete-data on a Locked vault (D-immut), before the first recovery
    # point too: any live item blocks, not only those already holding points.
    live = [i for i in inventory.items if i.state is not ItemState.SOFT_DELETED] + [
        i for i in inventory.instances if i.state is not ItemState.SOFT_DELETED
    ]
    if settings.immutability is ImmutabilityState.LOCKED and live:
        blockers.append(
            Blocker(
                BlockerKind.IMMUTABILITY_LOCKED,
                f"immutability is Locked (irreversible) and {len(live)} item(s) are still protected or hold data: "
                "Azure refuses to stop protection with delete data until every point has expired",
                "nothing can be done early: wait until the last recovery point expires (or stop protection "
                "retaining data and let the points expire), then plan again",
            )
        )
    if settings.mua_enabled and (
        settings.soft_delete is SoftDeleteState.ENABLED or settings.enhanced_security is SoftDeleteState.ENABLED
    ):
        guard = settings.resource_guard_id or "the vault's Resource Guard"
        if settings.resource_guard_other_tenant:
            # Azure wants every guarded request to carry a token from the guard's tenant in
            # x-ms-authorization-auxiliary (azure-cli backup: aux_tenants=[tenant_id]; PowerShell: -Token); a managed
            # identity has no identity in another tenant, so the app cannot send it.
            blockers.append(
                Blocker(
                    BlockerKind.MUA,
                    f"multi-user authorization protects the vault with the Resource Guard {guard}, which is in "
                    "another tenant: every guarded request (disabling soft delete, deleting backup data) must carry "
                    "an auxiliary token for that tenant (x-ms-authorization-auxiliary), and the Function App's "
                    "managed identity cannot obtain one. The app cannot perform those steps, even after a grant",
                    "a person with Contributor on the Resource Guard (through its own tenant) must perform the guarded "
                    "steps (az backup vault backup-properties set --tenant-id <guard tenant> ...; "
                    "Unlock-AzDataProtectionResourceGuardOperation -Token ...), then raise the event "
                    f"{EVENT_SECURITY_APPROVAL!r} on this teardown (POST /api/teardowns/{{id}}/security-approval): "
                    "the saga reads the vault again and continues with what is left",
                )
            )
        else:
            blockers.append(
                Blocker(
                    BlockerKind.MUA,
                    "multi-user authorization protects the vault: disabling soft delete needs a Resource Guard grant",
                    f"a security administrator must give the requester (or the app's identity) Contributor on {guard} "
                    f"(a time-limited just-in-time grant is enough), then raise the event {EVENT_SECURITY_APPROVAL!r} "
                    "on this teardown (POST /api/teardowns/{id}/security-approval)",
                )
            )
    purge = estimated_purge_at(inventory, now)
    if purge is not None:
        blockers.append(
            Blocker(
                BlockerKind.ALWAYS_ON_SOFT_DELETE,
                ALWAYS_ON_WAIT_REASON if _soft_delete_stays(settings) else "soft-deleted data cannot be purged sooner",
                f"none: the saga waits on a durable timer until {format_time(purge)} and then deletes the vault",
                until=purge,
            )
        )
    return blockers


def estimated_purge_at(inventory: VaultInventory, now: datetime) -> datetime | None:
    """When the last soft-deleted data will be purged, if the saga cannot purge it itself."""
    settings = inventory.settings
    if not _soft_delete_stays(settings):
        return None
    dates: list[datetime] = []
    retention = timedelta(days=settings.soft_delete_retention_days)
    for item in inventory.items:
        if item.state is ItemState.SOFT_DELETED:
            dates.append(item.deferred_delete_at or now + retention)
        elif item.has_data:
            dates.append(now + retention)
    for instance in inventory.instances:
        if instance.state is ItemState.SOFT_DELETED:
            dates.append(instance.purge_at or now + retention)
        elif instance.has_data:
            dates.append(now + retention)
    latest = max(dates, default=None)
    return latest if latest is not None and latest > now else None


def _settings_steps(inventory: VaultInventory) -> list[TeardownStep]:
    settings = inventory.settings
    vault = VaultObject(inventory.vault_id, inventory.vault_id.rsplit("/", 1)[-1])
    needs_guard = settings.mua_enabled
    steps: list[TeardownStep] = []
    if settings.soft_delete is SoftDeleteState.ENABLED:
        steps.append(
            TeardownStep(
                StepKind.DISABLE_SOFT_DELETE,
                (vault,),
                (SettingChange("softDelete", SoftDeleteState.ENABLED.value, SoftDeleteState.DISABLED.value),),
                requires_security_approval=needs_guard,
            )
        )
    if inventory.kind is VaultKind.RECOVERY_SERVICES and settings.enhanced_security is SoftDeleteState.ENABLED:
        steps.append(
            TeardownStep(
                StepKind.DISABLE_ENHANCED_SECURITY,
                (vault,),
                (SettingChange("enhancedSecurity", SoftDeleteState.ENABLED.value, SoftDeleteState.DISABLED.value),),
                requires_security_approval=needs_guard,
            )
        )
    if settings.immutability is ImmutabilityState.UNLOCKED:
        steps.append(
            TeardownStep(
                StepKind.DISABLE_IMMUTABILITY,
                (vault,),
                (SettingChange("immutability", ImmutabilityState.UNLOCKED.value, ImmutabilityState.DISABLED.value),),
            )
        )
    return steps


def _recovery_services_steps(inventory: VaultInventory) -> list[TeardownStep]:
    stays = _soft_delete_stays(inventory.settings)
    steps = _settings_steps(inventory)
    soft_deleted = [i for i in inventory.items if i.state is ItemState.SOFT_DELETED]
    if soft_deleted and not stays:
        steps.append(TeardownStep(StepKind.UNDELETE_ITEMS, tuple(soft_deleted)))
    # After an undelete every item is live again; with soft delete always on they stay as they are.
    to_delete = [i for i in inventory.items if not (stays and i.state is ItemState.SOFT_DELETED)]
    servers_owned = {s.container.lower() for s in inventory.servers if s.container}
    by_step: dict[StepKind, list[Target]] = {}
    hana_containers = {i.container.lower() for i in inventory.items if i.kind is ItemKind.SAP_HANA}
    for item in to_delete:
        if item.kind in (ItemKind.MARS, ItemKind.MABS, ItemKind.DPM) and item.container.lower() in servers_owned:
            continue  # unregistering the server removes its items (portal procedure)
        by_step.setdefault(_item_bucket(item), []).append(item)
    if inventory.intents:
        by_step[StepKind.DISABLE_PROTECTION_INTENTS] = list(inventory.intents)
    server_containers = {s.container.lower() for s in inventory.servers if s.container} | {
        s.name.lower() for s in inventory.servers
    }
    for container in inventory.containers:
        if container.name.lower() in server_containers:
            continue
        if container.kind is ContainerKind.VM_APP:
            kind = (
                StepKind.UNREGISTER_SAP_HANA_CONTAINERS
                if container.name.lower() in hana_containers
                else StepKind.UNREGISTER_SQL_CONTAINERS
            )
        elif container.kind is ContainerKind.STORAGE:
            kind = StepKind.UNREGISTER_STORAGE_CONTAINERS
        elif container.kind is ContainerKind.MARS:
            kind = StepKind.UNREGISTER_MARS_SERVERS
        elif container.kind in (ContainerKind.MABS, ContainerKind.DPM):
            kind = StepKind.UNREGISTER_BACKUP_SERVERS
        else:
            continue  # IaaS VM containers disappear with their items
        by_step.setdefault(kind, []).append(container)
    for server in inventory.servers:
        kind = (
            StepKind.UNREGISTER_MARS_SERVERS
            if server.kind is ContainerKind.MARS
            else StepKind.UNREGISTER_BACKUP_SERVERS
        )
        by_step.setdefault(kind, []).append(server)
    # D-script (Site Recovery part): purge replicated items, remove container mappings, then network mappings,
    # then ``Remove-AzRecoveryServicesAsrFabric -Force``. It never removes a protection container on its own (they
    # go with their fabric), so neither does the plan. REMOVE_REPLICATION_CONTAINERS stays a step kind only for
    # plans recorded before this change.
    sr_steps = {
        SiteRecoveryKind.REPLICATED_ITEM: StepKind.REMOVE_REPLICATED_ITEMS,
        SiteRecoveryKind.CONTAINER_MAPPING: StepKind.REMOVE_CONTAINER_MAPPINGS,
        SiteRecoveryKind.NETWORK_MAPPING: StepKind.REMOVE_NETWORK_MAPPINGS,
        SiteRecoveryKind.FABRIC: StepKind.REMOVE_FABRICS,
    }
    for obj in inventory.site_recovery:
        if obj.kind in sr_steps:
            by_step.setdefault(sr_steps[obj.kind], []).append(obj)
    if inventory.private_endpoints:
        by_step[StepKind.REMOVE_PRIVATE_ENDPOINTS] = list(inventory.private_endpoints)
    steps.extend(TeardownStep(kind, tuple(_sorted_targets(targets))) for kind, targets in by_step.items())
    return steps


def _backup_vault_steps(inventory: VaultInventory) -> list[TeardownStep]:
    stays = _soft_delete_stays(inventory.settings)
    steps = _settings_steps(inventory)
    soft_deleted = [i for i in inventory.instances if i.state is ItemState.SOFT_DELETED]
    if soft_deleted and not stays:
        steps.append(TeardownStep(StepKind.UNDELETE_INSTANCES, tuple(_sorted_targets(soft_deleted))))
    live = [i for i in inventory.instances if i.state is not ItemState.SOFT_DELETED]
    protected = [i for i in live if i.state is ItemState.PROTECTED]
    if protected:
        steps.append(TeardownStep(StepKind.STOP_INSTANCES, tuple(_sorted_targets(protected))))
    to_delete = live + ([] if stays else soft_deleted)
    if to_delete:
        steps.append(TeardownStep(StepKind.DELETE_INSTANCES, tuple(_sorted_targets(to_delete))))
    if inventory.policies:
        steps.append(TeardownStep(StepKind.DELETE_POLICIES, tuple(_sorted_targets(inventory.policies))))
    return steps


def _sorted_targets(targets: Iterable[Target]) -> list[Target]:
    return sorted(targets, key=lambda t: t.id.lower())


def plan_teardown(inventory: VaultInventory, now: datetime) -> TeardownPlan:
    """The ordered steps that empty and delete the vault, or why they cannot run (then no step at all)."""
    fingerprint = inventory_fingerprint(inventory)
    counts = inventory.counts()
    if not inventory.exists:
        return TeardownPlan(inventory.vault_id, inventory.kind, fingerprint, now, (), (), counts)
    blockers = tuple(_blockers(inventory, now))
    purge = estimated_purge_at(inventory, now)
    if any(b.hard for b in blockers):
        return TeardownPlan(inventory.vault_id, inventory.kind, fingerprint, now, (), blockers, counts, purge)
    if inventory.kind is VaultKind.RECOVERY_SERVICES:
        steps = _recovery_services_steps(inventory)
    else:
        steps = _backup_vault_steps(inventory)
    vault = VaultObject(inventory.vault_id, inventory.vault_id.rsplit("/", 1)[-1])
    if purge is not None:
        steps.append(TeardownStep(StepKind.AWAIT_PURGE, (vault,), wait_until=purge))
    steps.append(TeardownStep(StepKind.VERIFY_EMPTY, (vault,)))
    steps.append(TeardownStep(StepKind.DELETE_VAULT, (vault,)))
    order = {kind: index for index, kind in enumerate(documented_order(inventory.kind))}
    steps.sort(key=lambda s: order[s.kind])
    return TeardownPlan(inventory.vault_id, inventory.kind, fingerprint, now, tuple(steps), blockers, counts, purge)


# --------------------------------------------------------------------------------------------- after steps


def purge_wait_until(inventory: VaultInventory, now: datetime) -> datetime | None:
    """The latest purge date of soft-deleted data still in the vault, if it is in the future."""
    dates = [i.deferred_delete_at for i in inventory.items if i.state is ItemState.SOFT_DELETED] + [
        i.purge_at for i in inventory.instances if i.state is ItemState.SOFT_DELETED
    ]
    known = [d for d in dates if d is not None]
    latest = max(known, default=None)
    if latest is not None and latest > now:
        return latest
    return None


def remaining_contents(inventory: VaultInventory) -> list[dict[str, Any]]:
    """What still keeps the vault from being deleted, one entry per object with the reason."""
    remaining: list[dict[str, Any]] = []
    for obj in inventory.objects():
        state = getattr(obj, "state", None)
        if state is ItemState.SOFT_DELETED:
            when = getattr(obj, "deferred_delete_at", None) or getattr(obj, "purge_at", None)
            reason = f"soft-deleted; Azure purges it at {format_time(when)}" if when else "soft-deleted"
        elif isinstance(obj, ProtectionContainer) and obj.kind is ContainerKind.VM:
            continue
        elif isinstance(obj, ProtectionContainer) and obj.soft_deleted:
            reason = "soft-deleted with its items; Azure removes it when their data is purged"
        else:
            reason = "still present"
        remaining.append({"type": obj.type_name, "id": obj.id, "name": obj.name, "reason": reason})
    return remaining
