"""What the estate holds, as an adapter gathered it: resources, vaults, protected items, gaps; and the
JSON record of it that crosses the durable boundary."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Final

from steward.domain.audit.redundant import RoleAssignment
from steward.domain.errors import DomainError
from steward.domain.kernel import (
    ImmutabilityState,
    SoftDeleteState,
    VaultKind,
    format_time,
    id_key,
    name_of,
    parse_time,
    resource_group_of,
    subscription_of,
)

VM_TYPE: Final = "Microsoft.Compute/virtualMachines"
DISK_TYPE: Final = "Microsoft.Compute/disks"
STORAGE_TYPE: Final = "Microsoft.Storage/storageAccounts"
POSTGRES_TYPE: Final = "Microsoft.DBforPostgreSQL/flexibleServers"
PROTECTABLE_TYPES: Final = (VM_TYPE, DISK_TYPE, STORAGE_TYPE, POSTGRES_TYPE)

RECOVERY_SERVICES_VAULT_TYPE: Final = VaultKind.RECOVERY_SERVICES.arm_type
BACKUP_VAULT_TYPE: Final = VaultKind.BACKUP.arm_type


class AuditError(DomainError, ValueError):
    """Root of the audit core's errors."""


class InvalidInventory(AuditError):
    """The inventory handed to the audit is inconsistent (it names what it does not contain)."""


class InvalidPreviousResult(AuditError):
    """A stored earlier result cannot be read (wrong schema version or shape)."""


class ProtectionStatus(StrEnum):
    """Protection state of an item or instance, normalised across the two vault kinds."""

    PROTECTED = "Protected"  # RS Protected; DP ProtectionConfigured
    PENDING = "Pending"  # RS IRPending; DP ConfiguringProtection/UpdatingProtection
    ERROR = "Error"  # RS ProtectionError; DP ProtectionError/ConfiguringProtectionFailed
    STOPPED = "Stopped"  # ProtectionStopped
    PAUSED = "Paused"  # RS ProtectionPaused
    SUSPENDED = "Suspended"  # RS BackupsSuspended; DP Backup/RetentionSchedulesSuspended
    SOFT_DELETED = "SoftDeleted"  # DP SoftDeleted/SoftDeleting; RS isScheduledForDeferredDelete
    UNKNOWN = "Unknown"  # Invalid, NotProtected, anything new

    @classmethod
    def from_arm(cls, value: str | None) -> ProtectionStatus:
        return _ARM_PROTECTION_STATES.get((value or "").strip().lower(), cls.UNKNOWN)

    @property
    def is_active(self) -> bool:
        """Counts as coverage: backups are (or are about to be) taken."""
        return self in {ProtectionStatus.PROTECTED, ProtectionStatus.PENDING, ProtectionStatus.ERROR}


_ARM_PROTECTION_STATES: Final = {
    "protected": ProtectionStatus.PROTECTED,
    "protectionconfigured": ProtectionStatus.PROTECTED,
    "irpending": ProtectionStatus.PENDING,
    "configuringprotection": ProtectionStatus.PENDING,
    "updatingprotection": ProtectionStatus.PENDING,
    "protectionerror": ProtectionStatus.ERROR,
    "configuringprotectionfailed": ProtectionStatus.ERROR,
    "protectionstopped": ProtectionStatus.STOPPED,
    "protectionpaused": ProtectionStatus.PAUSED,
    "backupssuspended": ProtectionStatus.SUSPENDED,
    "backupschedulessuspended": ProtectionStatus.SUSPENDED,
    "retentionschedulessuspended": ProtectionStatus.SUSPENDED,
    "softdeleted": ProtectionStatus.SOFT_DELETED,
    "softdeleting": ProtectionStatus.SOFT_DELETED,
}


class _NamedByArmId:
    """What an inventory record's ARM ``id`` says of it (one place for the resource and the vault)."""

    id: str

    @property
    def key(self) -> str:
        return id_key(self.id)

    @property
    def subscription_id(self) -> str:
        return subscription_of(self.id)

    @property
    def resource_group(self) -> str:
        return resource_group_of(self.id)

    @property
    def name(self) -> str:
        return name_of(self.id)


@dataclass(frozen=True)
class ProtectableResource(_NamedByArmId):
    """A VM, managed disk, storage account or PostgreSQL flexible server."""

    id: str
    type: str
    location: str
    tags: Mapping[str, str] = field(default_factory=dict, hash=False)
    #: for a managed disk, the VM it is attached to (covered by that VM's backup)
    attached_to: str = ""


@dataclass(frozen=True)
class Vault(_NamedByArmId):
    """A Recovery Services vault or a Backup vault, with the settings the controls look at."""

    id: str
    kind: VaultKind
    location: str
    soft_delete: SoftDeleteState = SoftDeleteState.UNKNOWN
    immutability: ImmutabilityState = ImmutabilityState.UNKNOWN
    cross_region_restore: bool | None = None
    multi_user_authorization: bool | None = None
    tags: Mapping[str, str] = field(default_factory=dict, hash=False)
    #: backup policies created or changed through ARM in the 24 hours before the inventory (its activity log);
    #: None: not read (the Resource Graph reader, a Backup vault)
    policy_changes_24h: int | None = None
    #: the principal id of the vault's system-assigned managed identity (``identity.principalId``); None: it has none
    principal_id: str | None = None


@dataclass(frozen=True)
class ProtectedItem:
    """A Recovery Services protected item (``…/protectionContainers/{c}/protectedItems/{i}``)."""

    id: str
    vault_id: str
    source_id: str
    policy_id: str | None
    protection_state: str
    last_backup_time: datetime | None = None
    soft_deleted: bool = False
    purge_at: datetime | None = None


@dataclass(frozen=True)
class BackupInstance:
    """A Backup vault backup instance (``…/backupVaults/{v}/backupInstances/{name}``)."""

    id: str
    vault_id: str
    datasource_id: str
    datasource_type: str
    policy_id: str | None
    protection_status: str
    soft_deleted: bool = False
    purge_at: datetime | None = None
    #: Backup instances do not carry their last recovery point; adapters leave it unknown unless they read it.
    last_backup_time: datetime | None = None
    #: Vaulted blob backup (issue 19): the containers the instance lists (``containersList``); None: it lists none
    containers: tuple[str, ...] | None = None
    #: ... and the containers its storage account holds, when the adapter read them (None: not read)
    account_containers: tuple[str, ...] | None = None


@dataclass(frozen=True)
class RoleAssignmentCount:
    """The Azure role assignments one subscription holds at its own scope and below (resource groups, resources):
    what counts against Azure's 4,000 per subscription (CAP-003). Those above it (management groups, the root) are
    not in it."""

    subscription_id: str
    total: int
    #: how many of them each service principal holds (principal id lower-cased): the vault identities' share is
    #: read from it with the audited vaults' identities, which may live in another subscription
    by_principal: Mapping[str, int] = field(default_factory=dict, hash=False)
    #: the service principals' assignments that a wider one of the same principal and role makes redundant, and
    #: those wider ones (``redundant.overlapping``; CAP-004 keeps the Backup vault identities'): only these, not the
    #: whole list, as the identity's vault may be in a subscription read apart from this one
    overlapping: tuple[RoleAssignment, ...] = ()


@dataclass(frozen=True)
class InventoryGap:
    """A scope the inventory could not read (and so the audit cannot vouch for)."""

    scope: str
    reason: str


@dataclass(frozen=True)
class EstateInventory:
    subscriptions: tuple[str, ...]
    resources: tuple[ProtectableResource, ...] = ()
    vaults: tuple[Vault, ...] = ()
    protected_items: tuple[ProtectedItem, ...] = ()
    backup_instances: tuple[BackupInstance, ...] = ()
    gaps: tuple[InventoryGap, ...] = ()
    #: per subscription whose role assignments were read (CAP-003); a subscription missing here was not read
    role_assignments: tuple[RoleAssignmentCount, ...] = ()

    def merge(self, other: EstateInventory) -> EstateInventory:
        """Union of two partial inventories (per-subscription fan-out aggregates with this)."""
        return EstateInventory(
            subscriptions=tuple(dict.fromkeys(self.subscriptions + other.subscriptions)),
            resources=self.resources + other.resources,
            vaults=self.vaults + other.vaults,
            protected_items=self.protected_items + other.protected_items,
            backup_instances=self.backup_instances + other.backup_instances,
            gaps=self.gaps + other.gaps,
            role_assignments=self.role_assignments + other.role_assignments,
        )


def iso(moment: datetime) -> str:
    return str(format_time(moment, whole_seconds=True))


def parse_generated(value: object) -> datetime:
    moment = parse_time(str(value))
    if moment is None:
        raise ValueError("generatedAt is empty")
    return moment


def _opt_iso(moment: datetime | None) -> str | None:
    return None if moment is None else iso(moment)


def _opt_time(text: object) -> datetime | None:
    return None if text in (None, "") else parse_time(str(text))


def _opt_names(value: object) -> tuple[str, ...] | None:
    return None if value is None else tuple(str(n) for n in value)  # type: ignore[attr-defined]


def inventory_to_json(inventory: EstateInventory) -> dict[str, Any]:
    """A JSON-safe record of an inventory; :func:`inventory_from_json` reads it back unchanged."""
    return {
        "subscriptions": list(inventory.subscriptions),
        "resources": [[r.id, r.type, r.location, dict(r.tags), r.attached_to] for r in inventory.resources],
        "vaults": [
            {
                "id": v.id,
                "kind": v.kind.value,
                "location": v.location,
                "softDelete": v.soft_delete.on_off,
                "immutability": v.immutability.value,
                "crossRegionRestore": v.cross_region_restore,
                "multiUserAuthorization": v.multi_user_authorization,
                "tags": dict(v.tags),
                **({} if v.policy_changes_24h is None else {"policyChanges24h": v.policy_changes_24h}),
                **({} if v.principal_id is None else {"principalId": v.principal_id}),
            }
            for v in inventory.vaults
        ],
        "protectedItems": [
            [
                i.id,
                i.vault_id,
                i.source_id,
                i.policy_id,
                i.protection_state,
                _opt_iso(i.last_backup_time),
                i.soft_deleted,
                _opt_iso(i.purge_at),
            ]
            for i in inventory.protected_items
        ],
        "backupInstances": [
            [
                b.id,
                b.vault_id,
                b.datasource_id,
                b.datasource_type,
                b.policy_id,
                b.protection_status,
                b.soft_deleted,
                _opt_iso(b.purge_at),
                _opt_iso(b.last_backup_time),
                None if b.containers is None else list(b.containers),
                None if b.account_containers is None else list(b.account_containers),
            ]
            for b in inventory.backup_instances
        ],
        "gaps": [[g.scope, g.reason] for g in inventory.gaps],
        **({} if not inventory.role_assignments else {"roleAssignments": [
            {"subscriptionId": c.subscription_id, "total": c.total, "byPrincipal": dict(sorted(c.by_principal.items())),
             **({} if not c.overlapping else {"overlapping": [
                 [a.id, a.principal_id, a.role_definition_guid, a.scope, a.condition] for a in c.overlapping]})}
            for c in inventory.role_assignments
        ]}),
    }


def inventory_from_json(data: Mapping[str, Any]) -> EstateInventory:
    try:
        return EstateInventory(
            subscriptions=tuple(str(s) for s in data["subscriptions"]),
            resources=tuple(
                ProtectableResource(
                    str(i),
                    str(t),
                    str(loc),
                    {str(k): str(v) for k, v in dict(tags).items()},
                    attached_to=str(rest[0]) if rest else "",  # records written before attached_to have 4 fields
                )
                for i, t, loc, tags, *rest in data["resources"]
            ),
            vaults=tuple(
                Vault(
                    id=str(v["id"]),
                    kind=VaultKind(v["kind"]),
                    location=str(v["location"]),
                    soft_delete=SoftDeleteState(v["softDelete"]),
                    immutability=ImmutabilityState(v["immutability"]),
                    cross_region_restore=v["crossRegionRestore"],
                    multi_user_authorization=v["multiUserAuthorization"],
                    tags={str(k): str(val) for k, val in dict(v.get("tags") or {}).items()},
                    policy_changes_24h=None if v.get("policyChanges24h") is None else int(v["policyChanges24h"]),
                    principal_id=None if v.get("principalId") is None else str(v["principalId"]),
                )
                for v in data["vaults"]
            ),
            protected_items=tuple(
                ProtectedItem(str(i), str(v), str(s), p, str(st), _opt_time(lb), bool(sd), _opt_time(pa))
                for i, v, s, p, st, lb, sd, pa in data["protectedItems"]
            ),
            backup_instances=tuple(
                BackupInstance(str(i), str(v), str(d), str(dt), p, str(st), bool(sd), _opt_time(pa), _opt_time(lb),
                               *(_opt_names(r) for r in (*rest, None, None)[:2]))  # 9 fields before issue 19
                for i, v, d, dt, p, st, sd, pa, lb, *rest in data["backupInstances"]
            ),
            gaps=tuple(InventoryGap(str(s), str(r)) for s, r in data.get("gaps", [])),
            role_assignments=tuple(  # parts written before CAP-003 have none
                RoleAssignmentCount(str(c["subscriptionId"]), int(c["total"]),
                                    {str(k).lower(): int(n) for k, n in dict(c.get("byPrincipal") or {}).items()},
                                    tuple(RoleAssignment(str(i), str(p), str(g), str(s), None if k is None else str(k))
                                          for i, p, g, s, k in c.get("overlapping") or []))  # none before CAP-004
                for c in data.get("roleAssignments") or []
            ),
        )
    except (KeyError, TypeError, ValueError) as error:
        raise InvalidInventory(f"inventory record is malformed: {error!r}") from error
