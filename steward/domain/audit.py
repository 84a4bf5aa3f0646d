"""Estate audit: the pure core.

An :class:`EstateInventory` (what exists and how it is protected, gathered by an adapter) plus the protection
rules (what *should* be) give an :class:`AuditResult`: a list of :class:`Finding` s, each a named control with
a severity, the resource, why it fired and how to fix it, plus coverage statistics and the difference against
the previous run.

The controls are declared once, in :data:`CONTROLS`. Everything here is pure: no SDK, no I/O, no clock (the
caller passes ``now``), no environment.

Rules are consulted through the small :class:`ExpectationSource` port: for one resource, what does the rule
set expect? :class:`RoutedExpectations` adapts ``steward.domain.rules`` to it; tests and callers may pass any
object with an ``expect(resource)`` method.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Final, Protocol, runtime_checkable

from steward.domain.errors import DomainError, InvalidResourceId
from steward.domain.ids import ResourceId
from steward.domain.kernel import (
    ImmutabilityState,
    SoftDeleteState,
    VaultKind,
    format_time,
    id_key,
    name_of,
    normalise_region,
    parse_time,
    resource_group_of,
    subscription_of,
)
from steward.domain.rules import (
    ExplicitVault,
    OptOut,
    Protect,
    ResourceFacts,
    RuleSet,
    Unsupported,
    VaultCandidate,
    VaultChoice,
    VaultChosen,
    choose_vault,
    route,
)

#: Version of the JSON document :meth:`AuditResult.to_json` produces. Bump the major part on any change a
#: consumer could notice (removed or renamed field, changed meaning); add fields freely within a major.
SCHEMA_VERSION: Final = "1.0"

#: How many earlier runs the trend carries forward.
TREND_LENGTH: Final = 30

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


# ----------------------------------------------------------------------------------------------------
# Severity and controls
# ----------------------------------------------------------------------------------------------------


class Severity(StrEnum):
    CRITICAL = "critical"
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"
    INFO = "info"

    @property
    def rank(self) -> int:
        """Higher is worse: critical 4 ... info 0."""
        return _SEVERITY_RANK[self]

    @classmethod
    def parse(cls, text: str) -> Severity:
        try:
            return cls(text.strip().lower())
        except ValueError:
            names = ", ".join(s.value for s in cls)
            raise AuditError(f"unknown severity {text!r}: expected one of {names}") from None


_SEVERITY_RANK: Final = {
    Severity.CRITICAL: 4,
    Severity.HIGH: 3,
    Severity.MEDIUM: 2,
    Severity.LOW: 1,
    Severity.INFO: 0,
}


@dataclass(frozen=True)
class Control:
    """One named check: what it looks for, how bad it is, and what a person should do."""

    id: str
    title: str
    severity: Severity
    description: str
    fix: str


def _controls(*controls: Control) -> Mapping[str, Control]:
    by_id: dict[str, Control] = {}
    for control in controls:
        if control.id in by_id:
            raise AssertionError(f"control {control.id} declared twice")
        by_id[control.id] = control
    return by_id


#: The control set, declared in one place. Ids are stable: they appear in JSON output, finding ids and events.
CONTROLS: Final[Mapping[str, Control]] = _controls(
    Control(
        "BKP-001",
        "Resource the rules require to be protected is not protected",
        Severity.CRITICAL,
        "A protectable resource matched a rule that requires backup, but no active protected item or backup "
        "instance covers it (soft-deleted or absent).",
        "Start protection (the protect_resource orchestration, or enable backup in the vault the rules name).",
    ),
    Control(
        "BKP-002",
        "Protected with a policy other than the rule's",
        Severity.MEDIUM,
        "The resource is protected, but with a backup policy that differs from the one its rule names.",
        "Modify protection to use the rule's policy, or change the rule if the current policy is intended.",
    ),
    Control(
        "BKP-003",
        "Protected in a vault of another region or subscription",
        Severity.HIGH,
        "The vault holding the resource's backup is in another region than the resource (Azure requires the "
        "same region), or, for a VM, in another subscription (cross-subscription VM backup is unsupported).",
        "Protect the resource in a vault of its own region (and, for VMs, subscription), then stop "
        "protection in the old vault keeping its recovery points.",
    ),
    Control(
        "BKP-004",
        "Protection stopped, in error, or backups suspended",
        Severity.HIGH,
        "A protected item or backup instance exists but is not taking backups: protection stopped (data "
        "retained), protection error, paused, or backups suspended.",
        "Investigate the item's last job; resume protection (or fix the error) if the resource must be "
        "backed up, or document the stop if it is intended.",
    ),
    Control(
        "BKP-005",
        "Last backup older than the rule's RPO",
        Severity.HIGH,
        "The most recent successful backup is older than the recovery point objective of the resource's "
        "rule, or an item that should have backups has none recorded.",
        "Check the item's backup jobs and policy schedule; run an on-demand backup; fix the failing schedule.",
    ),
    Control(
        "BKP-006",
        "Backup item in soft-deleted state",
        Severity.MEDIUM,
        "A protected item or backup instance was deleted and is kept by soft delete until its purge date; "
        "after that its recovery points are gone for good.",
        "Undelete it before the purge date if the data is still needed; otherwise nothing to do: it purges by itself.",
    ),
    Control(
        "VLT-001",
        "Vault soft delete off or weaker than required",
        Severity.HIGH,
        "The vault's soft delete state is weaker than the rules require (off where it must be on, or not "
        "always-on where always-on is required).",
        "Enable soft delete on the vault (and set it to AlwaysON where required; that cannot be undone).",
    ),
    Control(
        "VLT-002",
        "Vault immutability off or unlocked where required",
        Severity.MEDIUM,
        "The rules require an immutable vault (or a locked one) and the vault's immutability is weaker.",
        "Enable immutability on the vault; lock it where required (locking is irreversible).",
    ),
    Control(
        "VLT-003",
        "Vault without cross-region restore where required",
        Severity.MEDIUM,
        "The rules require cross-region restore and the vault does not have it enabled.",
        "Enable cross-region restore on the vault (requires geo-redundant storage).",
    ),
    Control(
        "VLT-004",
        "Vault without multi-user authorization where required",
        Severity.MEDIUM,
        "The rules require multi-user authorization (a Resource Guard) and the vault has none.",
        "Associate the vault with a Resource Guard owned by a separate security administrator.",
    ),
    Control(
        "VLT-005",
        "Vault holds nothing",
        Severity.INFO,
        "The vault has no protected items or backup instances (active or soft-deleted).",
        "Delete the vault if it is no longer needed (the teardown saga), or protect what it was meant for.",
    ),
    Control(
        "VLT-006",
        "Vault left weakened by an interrupted teardown",
        Severity.HIGH,
        "A teardown turned the vault's protections off (soft delete, enhanced security, immutability) and was "
        "lost before it could turn them back on (its Durable task hub was lost, or it ended without "
        "restoring them). The audit's reconciler found the vault by its teardown marker tag and restored the "
        "earlier settings, or says why it could not.",
        "Check the vault's settings and contents against the teardown's report; where the reconciler could "
        "not restore a setting, turn it back on (a Resource Guard grant may be needed) and remove the "
        "backup-steward:teardown-restore tag.",
    ),
    Control(
        "ORP-001",
        "Backup item whose source resource no longer exists",
        Severity.LOW,
        "A protected item or backup instance points at a resource that is not in the inventory: the source "
        "was deleted (or moved out of the audited scope) and the backup data keeps costing money.",
        "Decide on retention: keep the recovery points as long as needed, then stop protection and delete "
        "the data; if the resource moved, protect it again where it is now.",
    ),
    Control(
        "DRF-001",
        "Reality drifted from the rules",
        Severity.LOW,
        "The resource's protection differs from what the rules decide in a way no other control covers: it "
        "is protected although the rules opt it out, or it is protected in a vault other than the rule's "
        "target vault.",
        "Align the resource with its rule (move protection or remove it), or change the rule.",
    ),
    Control(
        "DRF-002",
        "Rule targets a vault that does not exist",
        Severity.HIGH,
        "A rule names a target vault that is not in the inventory, so new resources it matches cannot be "
        "protected automatically.",
        "Create the vault or correct the rule's vault id.",
    ),
    Control(
        "INV-001",
        "Part of the estate could not be read",
        Severity.HIGH,
        "The inventory of a subscription or vault failed, so this audit cannot vouch for it.",
        "Check that the audit identity has Reader (and Backup Reader) on the scope, then rerun.",
    ),
)


def control(control_id: str) -> Control:
    try:
        return CONTROLS[control_id]
    except KeyError:
        raise AuditError(f"unknown control {control_id!r}") from None


def _policy_key(policy: str) -> str:
    """Policies compare by name: a rule may name a policy (``DefaultPolicy``) or give its full id."""
    return name_of(policy).lower()


# ----------------------------------------------------------------------------------------------------
# Inventory value types
# ----------------------------------------------------------------------------------------------------


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


@dataclass(frozen=True)
class ProtectableResource:
    """A VM, managed disk, storage account or PostgreSQL flexible server."""

    id: str
    type: str
    location: str
    tags: Mapping[str, str] = field(default_factory=dict, hash=False)
    #: for a managed disk, the VM it is attached to (covered by that VM's backup)
    attached_to: str = ""

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
class Vault:
    """A Recovery Services vault or a Backup vault, with the settings the controls look at."""

    id: str
    kind: VaultKind
    location: str
    soft_delete: SoftDeleteState = SoftDeleteState.UNKNOWN
    immutability: ImmutabilityState = ImmutabilityState.UNKNOWN
    cross_region_restore: bool | None = None
    multi_user_authorization: bool | None = None
    tags: Mapping[str, str] = field(default_factory=dict, hash=False)

    @property
    def key(self) -> str:
        return id_key(self.id)

    @property
    def subscription_id(self) -> str:
        return subscription_of(self.id)

    @property
    def name(self) -> str:
        return name_of(self.id)


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

    def merge(self, other: EstateInventory) -> EstateInventory:
        """Union of two partial inventories (per-subscription fan-out aggregates with this)."""
        return EstateInventory(
            subscriptions=tuple(dict.fromkeys(self.subscriptions + other.subscriptions)),
            resources=self.resources + other.resources,
            vaults=self.vaults + other.vaults,
            protected_items=self.protected_items + other.protected_items,
            backup_instances=self.backup_instances + other.backup_instances,
            gaps=self.gaps + other.gaps,
        )


# ----------------------------------------------------------------------------------------------------
# What the rules expect
# ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class VaultRequirements:
    """Vault settings the rules require. ``None`` means no requirement."""

    soft_delete: SoftDeleteState | None = None  # ON or ALWAYS_ON
    immutability: ImmutabilityState | None = None  # UNLOCKED (enabled) or LOCKED
    cross_region_restore: bool = False
    multi_user_authorization: bool = False

    def strictest(self, other: VaultRequirements) -> VaultRequirements:
        def pick_sd(a: SoftDeleteState | None, b: SoftDeleteState | None) -> SoftDeleteState | None:
            if a is None or b is None:
                return a or b
            return a if a.strength >= b.strength else b

        def pick_im(a: ImmutabilityState | None, b: ImmutabilityState | None) -> ImmutabilityState | None:
            if a is None or b is None:
                return a or b
            return a if a.strength >= b.strength else b

        return VaultRequirements(
            soft_delete=pick_sd(self.soft_delete, other.soft_delete),
            immutability=pick_im(self.immutability, other.immutability),
            cross_region_restore=self.cross_region_restore or other.cross_region_restore,
            multi_user_authorization=self.multi_user_authorization or other.multi_user_authorization,
        )


NO_REQUIREMENTS: Final = VaultRequirements()


@dataclass(frozen=True)
class Expectation:
    """What the rules decide for one resource."""

    must_protect: bool
    rule: str
    reason: str = ""
    #: Explicit target vault id, when the rule names one (else: the vault of the resource's region).
    vault_id: str | None = None
    #: Policy name or id; ``None`` means any policy is acceptable.
    policy: str | None = None
    rpo_hours: float | None = None
    vault_requirements: VaultRequirements = NO_REQUIREMENTS
    #: Why the rule's target vault cannot be used (none found, ambiguous, wrong region), if it cannot.
    vault_problem: str | None = None
    #: The scope the vault problem is about (the named vault's id, or the subscription of a regional default).
    vault_problem_scope: str | None = None


@runtime_checkable
class ExpectationSource(Protocol):
    """The port the audit asks: what do the rules expect for this resource?"""

    def expect(self, resource: ProtectableResource) -> Expectation: ...


@dataclass(frozen=True)
class UniformExpectations:
    """Every resource gets ``default``, or the entry of ``by_type`` for its type (case-insensitive)."""

    default: Expectation
    by_type: Mapping[str, Expectation] = field(default_factory=dict, hash=False)

    def expect(self, resource: ProtectableResource) -> Expectation:
        for type_name, expectation in self.by_type.items():
            if type_name.lower() == resource.type.lower():
                return expectation
        return self.default


# ----------------------------------------------------------------------------------------------------
# Findings and results
# ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Finding:
    id: str
    control_id: str
    severity: Severity
    resource_id: str
    resource_type: str
    subscription_id: str
    location: str
    why: str
    fix: str
    details: Mapping[str, str] = field(default_factory=dict, hash=False)

    @property
    def control(self) -> Control:
        return control(self.control_id)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "control": self.control_id,
            "title": self.control.title,
            "severity": self.severity.value,
            "resourceId": self.resource_id,
            "resourceType": self.resource_type,
            "subscriptionId": self.subscription_id,
            "location": self.location,
            "why": self.why,
            "fix": self.fix,
            "details": dict(sorted(self.details.items())),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Finding:
        return cls(
            id=str(data["id"]),
            control_id=str(data["control"]),
            severity=Severity(str(data["severity"])),
            resource_id=str(data["resourceId"]),
            resource_type=str(data.get("resourceType", "")),
            subscription_id=str(data.get("subscriptionId", "")),
            location=str(data.get("location", "")),
            why=str(data.get("why", "")),
            fix=str(data.get("fix", "")),
            details={str(k): str(v) for k, v in dict(data.get("details", {})).items()},
        )


def finding_id(control_id: str, subject_id: str, discriminator: str = "") -> str:
    """Stable across runs: the same control on the same subject (and item) gives the same id."""
    text = "|".join((control_id, id_key(subject_id), id_key(discriminator)))
    return f"{control_id}-{hashlib.sha256(text.encode()).hexdigest()[:16]}"


@dataclass(frozen=True)
class CoverageCell:
    """Counts for one slice of the estate (a subscription, region or type)."""

    resources: int = 0
    required: int = 0
    protected: int = 0
    required_protected: int = 0

    def add(self, *, required: bool, protected: bool) -> CoverageCell:
        return CoverageCell(
            resources=self.resources + 1,
            required=self.required + int(required),
            protected=self.protected + int(protected),
            required_protected=self.required_protected + int(required and protected),
        )

    @property
    def ratio(self) -> float:
        """Share of the resources the rules require that are actively protected (1.0 when none required)."""
        return self.required_protected / self.required if self.required else 1.0

    def to_json(self) -> dict[str, Any]:
        return {
            "resources": self.resources,
            "required": self.required,
            "protected": self.protected,
            "requiredProtected": self.required_protected,
            "ratio": round(self.ratio, 4),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> CoverageCell:
        return cls(
            int(data["resources"]),
            int(data["required"]),
            int(data["protected"]),
            int(data["requiredProtected"]),
        )


@dataclass(frozen=True)
class Coverage:
    total: CoverageCell
    by_subscription: Mapping[str, CoverageCell] = field(hash=False)
    by_region: Mapping[str, CoverageCell] = field(hash=False)
    by_type: Mapping[str, CoverageCell] = field(hash=False)

    def to_json(self) -> dict[str, Any]:
        def table(cells: Mapping[str, CoverageCell]) -> dict[str, Any]:
            return {k: cells[k].to_json() for k in sorted(cells)}

        return {
            "total": self.total.to_json(),
            "bySubscription": table(self.by_subscription),
            "byRegion": table(self.by_region),
            "byType": table(self.by_type),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Coverage:
        def table(raw: Mapping[str, Any]) -> dict[str, CoverageCell]:
            return {str(k): CoverageCell.from_json(v) for k, v in raw.items()}

        return cls(
            total=CoverageCell.from_json(data["total"]),
            by_subscription=table(data["bySubscription"]),
            by_region=table(data["byRegion"]),
            by_type=table(data["byType"]),
        )


@dataclass(frozen=True)
class TrendPoint:
    """One earlier (or this) run, summarised for the trend chart."""

    generated_at: datetime
    coverage_ratio: float
    findings_by_severity: Mapping[str, int] = field(hash=False)

    def to_json(self) -> dict[str, Any]:
        return {
            "generatedAt": _iso(self.generated_at),
            "coverageRatio": round(self.coverage_ratio, 4),
            "findingsBySeverity": {s.value: int(self.findings_by_severity.get(s.value, 0)) for s in Severity},
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> TrendPoint:
        return cls(
            generated_at=_parse_generated(data["generatedAt"]),
            coverage_ratio=float(data["coverageRatio"]),
            findings_by_severity={str(k): int(v) for k, v in dict(data["findingsBySeverity"]).items()},
        )


@dataclass(frozen=True)
class AuditResult:
    generated_at: datetime
    findings: tuple[Finding, ...]
    coverage: Coverage
    #: Ids of findings that were not in the previous run (all of them when there is no previous run).
    new_finding_ids: frozenset[str]
    #: Findings of the previous run that no longer fire.
    resolved: tuple[Finding, ...]
    #: Earlier runs, oldest first, then this one (at most TREND_LENGTH + 1 points).
    trend: tuple[TrendPoint, ...]
    subscriptions: tuple[str, ...]
    counts: Mapping[str, int] = field(hash=False)  # resources, vaults, protectedItems, backupInstances

    @property
    def new_findings(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.id in self.new_finding_ids)

    def by_severity(self) -> dict[str, int]:
        counted = Counter(f.severity.value for f in self.findings)
        return {s.value: counted.get(s.value, 0) for s in Severity}

    def at_or_above(self, threshold: Severity) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.severity.rank >= threshold.rank)

    def to_json(self) -> dict[str, Any]:
        return {
            "schemaVersion": SCHEMA_VERSION,
            "generatedAt": _iso(self.generated_at),
            "subscriptions": list(self.subscriptions),
            "counts": dict(sorted(self.counts.items())),
            "summary": {
                "findingsBySeverity": self.by_severity(),
                "new": len(self.new_finding_ids),
                "resolved": len(self.resolved),
            },
            "coverage": self.coverage.to_json(),
            "controls": [
                {
                    "id": c.id,
                    "title": c.title,
                    "severity": c.severity.value,
                    "description": c.description,
                    "fix": c.fix,
                }
                for c in CONTROLS.values()
            ],
            "findings": [{**f.to_json(), "new": f.id in self.new_finding_ids} for f in self.findings],
            "resolved": [f.to_json() for f in self.resolved],
            "trend": [p.to_json() for p in self.trend],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> AuditResult:
        version = str(data.get("schemaVersion", ""))
        if version.split(".", maxsplit=1)[0] != SCHEMA_VERSION.split(".", maxsplit=1)[0]:
            raise InvalidPreviousResult(
                f"stored audit result has schemaVersion {version!r}; this code reads {SCHEMA_VERSION}"
            )
        try:
            findings = tuple(Finding.from_json(f) for f in data["findings"])
            return cls(
                generated_at=_parse_generated(data["generatedAt"]),
                findings=findings,
                coverage=Coverage.from_json(data["coverage"]),
                new_finding_ids=frozenset(str(f["id"]) for f in data["findings"] if f.get("new")),
                resolved=tuple(Finding.from_json(f) for f in data.get("resolved", [])),
                trend=tuple(TrendPoint.from_json(p) for p in data.get("trend", [])),
                subscriptions=tuple(str(s) for s in data.get("subscriptions", [])),
                counts={str(k): int(v) for k, v in dict(data.get("counts", {})).items()},
            )
        except (KeyError, TypeError, ValueError) as error:
            raise InvalidPreviousResult(f"stored audit result is malformed: {error!r}") from error


# ----------------------------------------------------------------------------------------------------
# The audit
# ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Record:
    """A protected item or backup instance, seen the same way."""

    id: str
    kind: VaultKind
    vault_key: str
    source_id: str
    policy_id: str | None
    raw_state: str
    status: ProtectionStatus
    last_backup_time: datetime | None
    purge_at: datetime | None


def _records(inventory: EstateInventory) -> list[_Record]:
    records: list[_Record] = []
    for item in inventory.protected_items:
        status = (
            ProtectionStatus.SOFT_DELETED if item.soft_deleted else ProtectionStatus.from_arm(item.protection_state)
        )
        records.append(
            _Record(
                item.id,
                VaultKind.RECOVERY_SERVICES,
                id_key(item.vault_id),
                item.source_id,
                item.policy_id,
                item.protection_state,
                status,
                item.last_backup_time,
                item.purge_at,
            )
        )
    for instance in inventory.backup_instances:
        status = (
            ProtectionStatus.SOFT_DELETED
            if instance.soft_deleted
            else ProtectionStatus.from_arm(instance.protection_status)
        )
        records.append(
            _Record(
                instance.id,
                VaultKind.BACKUP,
                id_key(instance.vault_id),
                instance.datasource_id,
                instance.policy_id,
                instance.protection_status,
                status,
                instance.last_backup_time,
                instance.purge_at,
            )
        )
    return records


@dataclass(frozen=True)
class _Subject:
    """What a finding is about."""

    id: str
    type: str
    location: str


class _Collector:
    def __init__(self) -> None:
        self.findings: dict[str, Finding] = {}

    def add(
        self,
        control_id: str,
        subject: _Subject,
        *,
        why: str,
        discriminator: str = "",
        details: Mapping[str, str] | None = None,
        fix: str | None = None,
    ) -> None:
        spec = control(control_id)
        fid = finding_id(control_id, subject.id, discriminator)
        self.findings[fid] = Finding(
            id=fid,
            control_id=control_id,
            severity=spec.severity,
            resource_id=subject.id,
            resource_type=subject.type,
            subscription_id=subscription_of(subject.id),
            location=normalise_region(subject.location),
            why=why,
            fix=fix or spec.fix,
            details=dict(details or {}),
        )


def _hours(delta: timedelta) -> float:
    return delta.total_seconds() / 3600.0


def audit(
    inventory: EstateInventory,
    rules: ExpectationSource | RuleSet,
    now: datetime,
    previous: AuditResult | None = None,
    *,
    interrupted_teardowns: Sequence[Mapping[str, Any]] = (),
) -> AuditResult:
    """Audit ``inventory`` against ``rules`` at ``now``; compare with ``previous`` when given.

    ``rules``: a :class:`~steward.domain.rules.RuleSet` (read through :class:`RuleExpectations` with the
    inventory's vaults) or any :class:`ExpectationSource`.
    """
    if now.tzinfo is None:
        raise AuditError("now must be timezone-aware (UTC)")
    if isinstance(rules, RuleSet):
        rules = RuleExpectations(rules, inventory.vaults)
    vaults = {v.key: v for v in inventory.vaults}
    resources = {r.key: r for r in inventory.resources}
    records = _records(inventory)
    by_source: dict[str, list[_Record]] = {}
    by_vault: Counter[str] = Counter()
    for record in records:
        by_source.setdefault(id_key(record.source_id), []).append(record)
        by_vault[record.vault_key] += 1

    out = _Collector()
    expectations = {r.key: rules.expect(r) for r in inventory.resources}
    vault_needs: dict[str, tuple[VaultRequirements, list[str]]] = {}

    for resource in sorted(inventory.resources, key=lambda r: r.key):
        expectation = expectations[resource.key]
        mine = by_source.get(resource.key, [])
        _check_resource(out, resource, expectation, mine, vaults=vaults, now=now)
        _check_rule_target(out, resource, expectation, vaults)
        for record in mine:
            if record.status is not ProtectionStatus.SOFT_DELETED and expectation.must_protect:
                _note_requirement(vault_needs, record.vault_key, expectation)
        if expectation.vault_id and expectation.must_protect:
            _note_requirement(vault_needs, id_key(expectation.vault_id), expectation)

    required = frozenset(key for key, e in expectations.items() if e.must_protect)
    for record in sorted(records, key=lambda r: id_key(r.id)):
        _check_record(out, record, resources, vaults, now=now, required=required)

    for vault in sorted(inventory.vaults, key=lambda v: v.key):
        requirements, rule_names = vault_needs.get(vault.key, (NO_REQUIREMENTS, []))
        _check_vault(out, vault, requirements, rule_names, by_vault[vault.key])

    for reconciled in interrupted_teardowns:
        _check_interrupted_teardown(out, reconciled, vaults)

    for gap in inventory.gaps:
        out.add("INV-001", _Subject(gap.scope, "scope", ""), why=f"Could not read {gap.scope}: {gap.reason}")

    findings = tuple(
        sorted(out.findings.values(), key=lambda f: (-f.severity.rank, f.control_id, id_key(f.resource_id), f.id))
    )
    coverage = _coverage(inventory.resources, expectations, by_source)
    return _result(inventory, findings, coverage, now, previous)


def _check_resource(
    out: _Collector,
    resource: ProtectableResource,
    expectation: Expectation,
    mine: Sequence[_Record],
    *,
    vaults: Mapping[str, Vault],
    now: datetime,
) -> None:
    live = [r for r in mine if r.status is not ProtectionStatus.SOFT_DELETED]
    active = [r for r in live if r.status.is_active]
    subject = _Subject(resource.id, resource.type, resource.location)
    if expectation.must_protect and not live:
        soft = [r for r in mine if r.status is ProtectionStatus.SOFT_DELETED]
        why = f"Rule {expectation.rule!r} requires protection"
        why += f" ({expectation.reason})" if expectation.reason else ""
        why += "; its only backup item is soft-deleted." if soft else "; no vault protects it."
        out.add("BKP-001", subject, why=why, details={"rule": expectation.rule, "softDeleted": str(bool(soft)).lower()})
    if not expectation.must_protect and active:
        # Only running protection is drift: stopped protection with retained data is what opting out leaves.
        out.add(
            "DRF-001",
            subject,
            why=f"Rule {expectation.rule!r} opts this resource out"
            + (f" ({expectation.reason})" if expectation.reason else "")
            + f", yet it is protected in {name_of(_vault_id(active[0], vaults))}.",
            discriminator="opted-out",
            details={"rule": expectation.rule, "vault": _vault_id(active[0], vaults)},
        )
    for record in live:
        vault = vaults.get(record.vault_key)
        vault_id = _vault_id(record, vaults)
        if (
            expectation.must_protect
            and expectation.policy
            and record.policy_id
            and (_policy_key(record.policy_id) != _policy_key(expectation.policy))
        ):
            out.add(
                "BKP-002",
                subject,
                why=f"Protected with policy {name_of(record.policy_id)!r}; rule {expectation.rule!r} names "
                f"{name_of(expectation.policy)!r}.",
                discriminator=record.id,
                details={
                    "rule": expectation.rule,
                    "policy": record.policy_id,
                    "expectedPolicy": expectation.policy,
                    "item": record.id,
                },
            )
        if vault is not None:
            _check_placement(out, subject, resource, record, vault)
        if (
            expectation.must_protect
            and expectation.vault_id
            and id_key(expectation.vault_id) != record.vault_key
            and id_key(expectation.vault_id) in vaults
        ):
            out.add(
                "DRF-001",
                subject,
                why=f"Protected in vault {name_of(vault_id)!r}; rule {expectation.rule!r} targets "
                f"{name_of(expectation.vault_id)!r}.",
                discriminator=record.id,
                details={"rule": expectation.rule, "vault": vault_id, "expectedVault": expectation.vault_id},
            )
    if expectation.must_protect and expectation.rpo_hours is not None:
        _check_rpo(out, subject, expectation, active, now=now)


def _vault_id(record: _Record, vaults: Mapping[str, Vault]) -> str:
    vault = vaults.get(record.vault_key)
    return vault.id if vault else record.vault_key


def _check_placement(
    out: _Collector, subject: _Subject, resource: ProtectableResource, record: _Record, vault: Vault
) -> None:
    problems: list[str] = []
    if normalise_region(vault.location) != normalise_region(resource.location):
        problems.append(f"vault {vault.name!r} is in {vault.location}, the resource in {resource.location}")
    if resource.type.lower() == VM_TYPE.lower() and vault.subscription_id != resource.subscription_id:
        problems.append(
            f"vault {vault.name!r} is in subscription {vault.subscription_id}, the VM in "
            f"{resource.subscription_id} (cross-subscription VM backup is unsupported)"
        )
    if problems:
        out.add(
            "BKP-003",
            subject,
            why="; ".join(problems).capitalize() + ".",
            discriminator=record.id,
            details={"vault": vault.id, "item": record.id},
        )


def _check_rpo(
    out: _Collector,
    subject: _Subject,
    expectation: Expectation,
    active: Sequence[_Record],
    *,
    now: datetime,
) -> None:
    assert expectation.rpo_hours is not None
    if not active:
        return  # BKP-001 or BKP-004 already say it is not protected
    known = [r.last_backup_time for r in active if r.last_backup_time is not None]
    details = {"rule": expectation.rule, "rpoHours": f"{expectation.rpo_hours:g}"}
    if known:
        latest = max(known)
        age = _hours(now - latest)
        if age > expectation.rpo_hours:
            out.add(
                "BKP-005",
                subject,
                why=f"Last backup {latest:%Y-%m-%d %H:%M} UTC is {age:.1f} h old; rule "
                f"{expectation.rule!r} allows {expectation.rpo_hours:g} h.",
                details={**details, "lastBackupTime": _iso(latest), "ageHours": f"{age:.1f}"},
            )
        return
    settled = [r for r in active if r.kind is VaultKind.RECOVERY_SERVICES and r.status is not ProtectionStatus.PENDING]
    if settled:
        # A Recovery Services item past its initial backup must report one; Backup instances do not carry
        # a last backup time, so their RPO is not judged here.
        out.add(
            "BKP-005",
            subject,
            why=f"No completed backup is recorded; rule {expectation.rule!r} allows {expectation.rpo_hours:g} h.",
            details=details,
        )


def _check_rule_target(
    out: _Collector, resource: ProtectableResource, expectation: Expectation, vaults: Mapping[str, Vault]
) -> None:
    if expectation.must_protect and expectation.vault_problem:
        scope = expectation.vault_problem_scope or f"/subscriptions/{resource.subscription_id}"
        out.add(
            "DRF-002",
            _Subject(scope, "vault", resource.location),
            why=f"{expectation.vault_problem[:1].upper()}{expectation.vault_problem[1:]} "
            f"(first affected resource: {resource.id}).",
            discriminator=expectation.vault_problem,
            details={"rule": expectation.rule},
        )
        return
    target = expectation.vault_id
    if expectation.must_protect and target and id_key(target) not in vaults:
        out.add(
            "DRF-002",
            _Subject(target, "vault", resource.location),
            why=f"Rule {expectation.rule!r} targets vault {name_of(target)!r}, which does not exist "
            f"(first affected resource: {resource.id}).",
            details={"rule": expectation.rule},
        )


def _check_record(
    out: _Collector,
    record: _Record,
    resources: Mapping[str, ProtectableResource],
    vaults: Mapping[str, Vault],
    *,
    now: datetime,
    required: frozenset[str],
) -> None:
    vault = vaults.get(record.vault_key)
    location = vault.location if vault else ""
    subject = _Subject(record.id, "backupItem", location)
    source = resources.get(id_key(record.source_id))
    if record.status is ProtectionStatus.SOFT_DELETED:
        if record.purge_at is not None:
            days = (record.purge_at - now).total_seconds() / 86400
            why = (
                f"Soft-deleted; purged for good on {record.purge_at:%Y-%m-%d %H:%M} UTC ({max(days, 0):.1f} days left)."
            )
            details = {"purgeAt": _iso(record.purge_at), "source": record.source_id}
        else:
            why, details = "Soft-deleted; purge date unknown.", {"source": record.source_id}
        out.add("BKP-006", subject, why=why, details=details)
        return
    if (
        record.status
        in {
            ProtectionStatus.STOPPED,
            ProtectionStatus.ERROR,
            ProtectionStatus.PAUSED,
            ProtectionStatus.SUSPENDED,
        }
        and source is not None
        and source.key in required  # not running is a problem only where the rules want backups
    ):
        out.add(
            "BKP-004",
            subject,
            why=f"Protection state is {record.raw_state} for {source.name!r}.",
            details={"state": record.raw_state, "source": record.source_id},
        )
    if source is None and _in_scope(record.source_id):
        out.add(
            "ORP-001",
            subject,
            why=f"Source {record.source_id} is not in the inventory (deleted or moved); the item is "
            f"{record.raw_state or 'in an unknown state'}.",
            details={"source": record.source_id, "state": record.raw_state},
        )


def _in_scope(source_id: str) -> bool:
    """An item whose source type we do not inventory (SQL in VM, file shares, ...) is not called orphaned."""
    lowered = id_key(source_id)
    return any(f"/providers/{t.lower()}/" in lowered for t in PROTECTABLE_TYPES)


def _note_requirement(
    needs: dict[str, tuple[VaultRequirements, list[str]]], vault_key: str, expectation: Expectation
) -> None:
    current, names = needs.get(vault_key, (NO_REQUIREMENTS, []))
    merged = current.strictest(expectation.vault_requirements)
    if expectation.vault_requirements != NO_REQUIREMENTS and expectation.rule not in names:
        names = [*names, expectation.rule]
    needs[vault_key] = (merged, names)


def _check_vault(
    out: _Collector, vault: Vault, needs: VaultRequirements, rule_names: Sequence[str], item_count: int
) -> None:
    subject = _Subject(vault.id, vault.kind.value + "Vault", vault.location)
    rules_text = ", ".join(repr(n) for n in rule_names) or "the rules"
    if needs.soft_delete is not None and vault.soft_delete.strength < needs.soft_delete.strength:
        out.add(
            "VLT-001",
            subject,
            why=f"Soft delete is {vault.soft_delete.on_off}; {rules_text} require {needs.soft_delete.on_off}.",
            details={"state": vault.soft_delete.on_off, "required": needs.soft_delete.on_off},
        )
    if needs.immutability is not None and vault.immutability.strength < needs.immutability.strength:
        required = "enabled" if needs.immutability is ImmutabilityState.UNLOCKED else "locked"
        out.add(
            "VLT-002",
            subject,
            why=f"Immutability is {vault.immutability.value}; {rules_text} require it {required}.",
            details={"state": vault.immutability.value, "required": needs.immutability.value},
        )
    if needs.cross_region_restore and not vault.cross_region_restore:
        state = "unknown" if vault.cross_region_restore is None else "disabled"
        out.add("VLT-003", subject, why=f"Cross-region restore is {state}; {rules_text} require it.")
    if needs.multi_user_authorization and not vault.multi_user_authorization:
        state = "unknown" if vault.multi_user_authorization is None else "not configured"
        out.add("VLT-004", subject, why=f"Multi-user authorization is {state}; {rules_text} require it.")
    if item_count == 0:
        out.add("VLT-005", subject, why="The vault has no protected items or backup instances.")


def _check_interrupted_teardown(
    out: _Collector, reconciled: Mapping[str, Any], vaults: Mapping[str, Vault]
) -> None:
    """VLT-006 from what the reconciler did (``reconcile_teardowns``) to a vault a lost teardown had weakened."""
    vault_id = str(reconciled.get("vaultId") or "")
    if not vault_id:
        return
    vault = vaults.get(id_key(vault_id))
    kind = vault.kind.value + "Vault" if vault else "vault"
    subject = _Subject(vault_id, kind, vault.location if vault else "")
    restored = [r for r in reconciled.get("restored") or [] if isinstance(r, Mapping)]
    effect = str(reconciled.get("effect") or reconciled.get("action") or "")
    turned_on = ", ".join(f"{r.get('setting')} {r.get('from')}->{r.get('to')}" for r in restored
                          if r.get("effect") != "failed")
    failed = ", ".join(f"{r.get('setting')} ({r.get('error')})" for r in restored if r.get("effect") == "failed")
    instance = str(reconciled.get("instanceId") or "unknown")
    if effect == "unreadable":
        why = f"The vault carries a teardown marker that cannot be read: {reconciled.get('reason')}"
    elif failed:
        why = f"Teardown {instance} was lost with the vault weakened; restoring failed: {failed}."
    else:
        why = (f"Teardown {instance} was lost with the vault weakened; the reconciler restored "
               f"{turned_on or 'nothing (the settings were already back)'}.")
    details = {"instanceId": instance, "effect": effect, "restored": turned_on, "failed": failed,
               "markedAt": str(reconciled.get("markedAt") or "")}
    out.add("VLT-006", subject, why=why, discriminator=instance, details={k: v for k, v in details.items() if v})


def _coverage(
    resources: Iterable[ProtectableResource],
    expectations: Mapping[str, Expectation],
    by_source: Mapping[str, Sequence[_Record]],
) -> Coverage:
    total = CoverageCell()
    subs: dict[str, CoverageCell] = {}
    regions: dict[str, CoverageCell] = {}
    types: dict[str, CoverageCell] = {}
    for resource in resources:
        required = expectations[resource.key].must_protect
        protected = any(r.status.is_active for r in by_source.get(resource.key, []))
        total = total.add(required=required, protected=protected)
        for table, key in (
            (subs, resource.subscription_id),
            (regions, normalise_region(resource.location)),
            (types, _canonical_type(resource.type)),
        ):
            table[key] = table.get(key, CoverageCell()).add(required=required, protected=protected)
    return Coverage(total=total, by_subscription=subs, by_region=regions, by_type=types)


def _canonical_type(type_name: str) -> str:
    for known in PROTECTABLE_TYPES:
        if known.lower() == type_name.lower():
            return known
    return type_name


def _result(
    inventory: EstateInventory,
    findings: tuple[Finding, ...],
    coverage: Coverage,
    now: datetime,
    previous: AuditResult | None,
) -> AuditResult:
    current_ids = {f.id for f in findings}
    if previous is None:
        new_ids = frozenset(current_ids)
        resolved: tuple[Finding, ...] = ()
        history: tuple[TrendPoint, ...] = ()
    else:
        before = {f.id for f in previous.findings}
        new_ids = frozenset(current_ids - before)
        resolved = tuple(f for f in previous.findings if f.id not in current_ids)
        history = previous.trend[-TREND_LENGTH:]
    severities = Counter(f.severity.value for f in findings)
    point = TrendPoint(now, coverage.total.ratio, {s.value: severities.get(s.value, 0) for s in Severity})
    return AuditResult(
        generated_at=now,
        findings=findings,
        coverage=coverage,
        new_finding_ids=new_ids,
        resolved=resolved,
        trend=(*history, point),
        subscriptions=tuple(sorted({s.lower() for s in inventory.subscriptions})),
        counts={
            "resources": len(inventory.resources),
            "vaults": len(inventory.vaults),
            "protectedItems": len(inventory.protected_items),
            "backupInstances": len(inventory.backup_instances),
            "gaps": len(inventory.gaps),
        },
    )


# ----------------------------------------------------------------------------------------------------
# Inventory records (JSON-safe, for the durable boundary and for files)
# ----------------------------------------------------------------------------------------------------


def _iso(moment: datetime) -> str:
    return str(format_time(moment, whole_seconds=True))


def _parse_generated(value: object) -> datetime:
    moment = parse_time(str(value))
    if moment is None:
        raise ValueError("generatedAt is empty")
    return moment


def _opt_iso(moment: datetime | None) -> str | None:
    return None if moment is None else _iso(moment)


def _opt_time(text: object) -> datetime | None:
    return None if text in (None, "") else parse_time(str(text))


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
            ]
            for b in inventory.backup_instances
        ],
        "gaps": [[g.scope, g.reason] for g in inventory.gaps],
    }


def inventory_from_json(data: Mapping[str, Any]) -> EstateInventory:
    try:
        return EstateInventory(
            subscriptions=tuple(str(s) for s in data["subscriptions"]),
            resources=tuple(
                ProtectableResource(
                    str(i), str(t), str(loc), {str(k): str(v) for k, v in dict(tags).items()},
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
                )
                for v in data["vaults"]
            ),
            protected_items=tuple(
                ProtectedItem(str(i), str(v), str(s), p, str(st), _opt_time(lb), bool(sd), _opt_time(pa))
                for i, v, s, p, st, lb, sd, pa in data["protectedItems"]
            ),
            backup_instances=tuple(
                BackupInstance(str(i), str(v), str(d), str(dt), p, str(st), bool(sd), _opt_time(pa), _opt_time(lb))
                for i, v, d, dt, p, st, sd, pa, lb in data["backupInstances"]
            ),
            gaps=tuple(InventoryGap(str(s), str(r)) for s, r in data.get("gaps", [])),
        )
    except (KeyError, TypeError, ValueError) as error:
        raise InvalidInventory(f"inventory record is malformed: {error!r}") from error


# ----------------------------------------------------------------------------------------------------
# The rules of steward.domain.rules as an ExpectationSource
# ----------------------------------------------------------------------------------------------------


class RuleExpectations:
    """What :func:`steward.domain.rules.route` decides, plus which vault :func:`choose_vault` would pick among
    the inventory's vaults, as :class:`Expectation` s.

    ``Protect`` → must be protected with the rule's policy, RPO and required vault settings, in the chosen
    vault; no acceptable vault (none, ambiguous, wrong region) → the expectation carries the problem (DRF-002).
    ``OptOut`` → must not be. ``Unsupported`` by a rule (its target breaks the region rules) → must be protected
    and the problem is reported.
    """

    def __init__(self, rules: RuleSet, vaults: Iterable[Vault]) -> None:
        self._rules = rules
        self._candidates: list[VaultCandidate] = []
        for vault in vaults:
            try:
                self._candidates.append(VaultCandidate(ResourceId.parse(vault.id), vault.location, dict(vault.tags)))
            except InvalidResourceId:
                continue
        self._choices: dict[tuple[object, str], VaultChoice] = {}

    def expect(self, resource: ProtectableResource) -> Expectation:
        try:
            facts = ResourceFacts(
                ResourceId.parse(resource.id),
                resource.location,
                dict(resource.tags),
                attached_to=resource.attached_to,
            )
        except (InvalidResourceId, ValueError) as error:
            return Expectation(must_protect=False, rule="(unreadable id)", reason=str(error))
        decision = route(facts, self._rules)
        if isinstance(decision, OptOut):
            return Expectation(must_protect=False, rule=decision.rule or "opt-out", reason=decision.reason)
        if isinstance(decision, Unsupported):
            if decision.rule is None:
                return Expectation(must_protect=False, rule="unsupported", reason=decision.reason)
            return Expectation(
                must_protect=True,
                rule=decision.rule,
                reason=decision.reason,
                vault_problem=decision.reason,
                vault_problem_scope=resource.id,
            )
        return self._protect(decision, resource)

    def _protect(self, decision: Protect, resource: ProtectableResource) -> Expectation:
        settings = decision.required_settings
        requirements = VaultRequirements(
            soft_delete={
                "on": SoftDeleteState.ON,
                "enabled": SoftDeleteState.ON,
                "alwayson": SoftDeleteState.ALWAYS_ON,
            }.get((settings.soft_delete or "").lower()),
            immutability={
                "unlocked": ImmutabilityState.UNLOCKED,
                "enabled": ImmutabilityState.UNLOCKED,
                "locked": ImmutabilityState.LOCKED,
            }.get((settings.immutability or "").lower()),
            cross_region_restore=bool(settings.cross_region_restore),
        )
        key = (decision.vault, resource.subscription_id if decision.vault_kind is VaultKind.RECOVERY_SERVICES else "")
        choice = self._choices.get(key)
        if choice is None:
            choice = self._choices[key] = choose_vault(decision, self._candidates)
        base = Expectation(
            must_protect=True,
            rule=decision.rule,
            policy=decision.policy,
            rpo_hours=float(decision.rpo_hours),
            vault_requirements=requirements,
        )
        if isinstance(choice, VaultChosen):
            return replace(base, vault_id=str(choice.vault_id))
        target = decision.vault
        scope = (
            str(target.vault_id) if isinstance(target, ExplicitVault) else f"/subscriptions/{target.subscription_id}"
        )
        return replace(base, vault_problem=choice.reason, vault_problem_scope=scope)


# ----------------------------------------------------------------------------------------------------
# Remediation (optional, behind STEWARD_AUDIT_REMEDIATE_LIMIT)
# ----------------------------------------------------------------------------------------------------

#: The one control remediation acts on: a resource the rules require to be protected that nothing protects.
#: Starting protection is the same idempotent orchestration an Event Grid event starts; nothing is deleted.
REMEDIABLE_CONTROL: Final = "BKP-001"


@dataclass(frozen=True)
class RemediationPlan:
    """What one audit run starts protection for, and what it leaves (and why)."""

    protect: tuple[str, ...]  # resource ids: the protect_resource orchestration is started for each
    deferred: int  # over the per-run limit: a later run takes them
    needs_person: tuple[str, ...]  # only a soft-deleted item exists: undelete and resume it, not protect anew

    def to_record(self) -> dict[str, Any]:
        return {"protect": list(self.protect), "deferred": self.deferred, "needsPerson": list(self.needs_person)}


def remediation_plan(result: AuditResult, limit: int) -> RemediationPlan:
    """Up to ``limit`` resources of the run's BKP-001 findings. A resource whose only backup item is soft-deleted
    is left to a person: protecting it anew would start a second backup chain beside the recoverable one.

    Which ones go first rotates from run to run (ordered by a hash of the run's time and the resource), so a
    resource that cannot be protected (no vault in its region, say) does not hold the others back for ever."""
    if limit < 0:
        raise ValueError("the remediation limit is a count (0 turns remediation off)")
    unprotected = [f for f in result.findings if f.control_id == REMEDIABLE_CONTROL]
    soft = {id_key(f.resource_id): f.resource_id for f in unprotected if f.details.get("softDeleted") == "true"}
    open_ = {id_key(f.resource_id): f.resource_id for f in unprotected if id_key(f.resource_id) not in soft}
    salt = _iso(result.generated_at)
    ordered = [open_[key] for key in sorted(open_, key=lambda k: hashlib.sha256(f"{salt}|{k}".encode()).hexdigest())]
    chosen = tuple(ordered[:limit])
    return RemediationPlan(protect=chosen, deferred=len(ordered) - len(chosen),
                           needs_person=tuple(soft[key] for key in sorted(soft)))
