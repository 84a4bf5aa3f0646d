"""What the rules are made of: the facts about one resource, match conditions, vault targets, protection specs,
rules and the rule set."""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType
from typing import Any, ClassVar, Final, TypeAlias

from steward.domain.drill_rules import DrillRule
from steward.domain.errors import InvalidRecord, InvalidResourceId
from steward.domain.ids import ResourceId
from steward.domain.kernel import VaultKind, normalise_region
from steward.domain.records import Record
from steward.domain.workloads import PermissionsScope

DEFAULT_OPT_OUT_TAG: Final = "backup-steward:opt-out"
DEFAULT_VAULT_TAG: Final = "backup-steward:default"


def frozen_tags(tags: Mapping[str, str]) -> Mapping[str, str]:
    return MappingProxyType(dict(tags))


@dataclass(frozen=True)
class ResourceFacts:
    """What routing needs to know about one resource. ``type`` and ``subscription`` default to the id's."""

    id: ResourceId
    location: str
    tags: Mapping[str, str] = field(default_factory=dict)
    type: str = ""
    subscription: str = ""
    #: the VM a managed disk is attached to (ARM's ``managedBy``), or "" when detached / not a disk
    attached_to: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "tags", frozen_tags(self.tags))
        if not self.type:
            object.__setattr__(self, "type", self.id.full_type)
        elif not self.id.is_type(self.type):
            raise ValueError(f"resource type {self.type!r} is not the type of {self.id}")
        if not self.subscription:
            object.__setattr__(self, "subscription", self.id.subscription_id)
        elif self.subscription.lower() != self.id.subscription_id.lower():
            raise ValueError(f"subscription {self.subscription!r} is not the subscription of {self.id}")

    @property
    def region(self) -> str:
        return normalise_region(self.location)

    def tag(self, name: str) -> str | None:
        """The value of tag ``name`` (tag names are case-insensitive in Azure), or None."""
        values = self.tag_values(name)
        return values[0] if values else None

    def tag_values(self, name: str) -> list[str]:
        """Every value of tag ``name`` under any casing of the name (Azure allows one; input may hold more)."""
        wanted = name.lower()
        return [v for k, v in self.tags.items() if k.lower() == wanted]

    def to_record(self) -> dict[str, Any]:
        return {"id": str(self.id), "location": self.location, "tags": dict(self.tags)}

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> ResourceFacts:
        tags = record.get("tags") or {}
        if not isinstance(tags, Mapping) or not all(isinstance(v, str) for v in tags.values()):
            raise InvalidRecord("resource facts 'tags' must be an object of strings")
        return cls(rec_id(record, "id"), rec_str(record, "location"), tags)


class OnDelete(StrEnum):
    RETAIN = "retain"  # stop protection, keep the recovery points
    LEAVE = "leave"  # leave protection as it is


class BlobTier(StrEnum):
    OPERATIONAL = "operational"
    VAULTED = "vaulted"
    BOTH = "both"


@dataclass(frozen=True)
class TagCondition:
    """``equals`` a value, or ``exists`` / is ``absent`` (exactly one of the three)."""

    name: str
    equals: str | None = None
    exists: bool = False
    absent: bool = False

    def holds(self, facts: ResourceFacts) -> bool:
        values = facts.tag_values(self.name)
        if self.absent:
            return not values
        if self.exists:
            return bool(values)
        return self.equals in values


@dataclass(frozen=True)
class MatchCondition:
    """All given conditions must hold. Types, subscriptions and regions compare case-insensitively."""

    types: frozenset[str] | None = None  # lower-cased
    tags: tuple[TagCondition, ...] = ()
    resource_groups: tuple[str, ...] | None = None  # lower-cased globs
    subscriptions: frozenset[str] | None = None  # lower-cased
    regions: frozenset[str] | None = None  # normalised

    def holds(self, facts: ResourceFacts) -> bool:
        if self.types is not None and facts.type.lower() not in self.types:
            return False
        if self.subscriptions is not None and facts.subscription.lower() not in self.subscriptions:
            return False
        if self.regions is not None and facts.region not in self.regions:
            return False
        if self.resource_groups is not None:
            group = (facts.id.resource_group or "").lower()
            if not any(fnmatch.fnmatchcase(group, pattern) for pattern in self.resource_groups):
                return False
        return all(condition.holds(facts) for condition in self.tags)


@dataclass(frozen=True)
class ExplicitVault(Record):
    """A named vault; its region is declared in the rules so the region rule is checked at decision time
    (and again against the vault's real location by :func:`choose_vault`)."""

    kind: ClassVar[str] = "explicit"
    tag_key: ClassVar[str] = "kind"
    type_name: ClassVar[str | None] = kind
    vault_id: ResourceId
    region: str  # normalised

    @property
    def vault_kind(self) -> VaultKind:
        return VaultKind.BACKUP if self.vault_id.vault_kind is VaultKind.BACKUP else VaultKind.RECOVERY_SERVICES


@dataclass(frozen=True)
class RegionalDefaultVault(Record):
    """The vault of ``vault_kind`` in ``region`` and ``subscription_id`` tagged ``default_tag`` = true,
    else the only one there."""

    kind: ClassVar[str] = "regional-default"
    tag_key: ClassVar[str] = "kind"
    type_name: ClassVar[str | None] = kind
    vault_kind: VaultKind
    subscription_id: str
    region: str  # normalised
    default_tag: str = DEFAULT_VAULT_TAG


#: the share of a vault's capacity past which a vault set moves on to its next vault (STEWARD_VAULT_FILL_PERCENT)
DEFAULT_FILL_PERCENT: Final = 90


@dataclass(frozen=True)
class VaultSet(Record):
    """Several vaults of ``vault_kind`` in ``region`` and ``subscription_id`` that share the load (issue 19): those
    whose name starts with ``name_prefix`` (any case), or that carry tag ``tag_name`` = ``tag_value``. Protection
    goes to the member with the most room; a member ``fill_percent`` full is passed over for the next one."""

    kind: ClassVar[str] = "vault-set"
    tag_key: ClassVar[str] = "kind"
    type_name: ClassVar[str | None] = kind
    vault_kind: VaultKind
    subscription_id: str
    region: str  # normalised
    name_prefix: str = ""
    tag_name: str = ""
    tag_value: str = ""
    fill_percent: int = DEFAULT_FILL_PERCENT

    @property
    def described(self) -> str:
        who = f"named {self.name_prefix}*" if self.name_prefix else f"tagged {self.tag_name}={self.tag_value}"
        where = f"{self.region} of subscription {self.subscription_id}"
        return f"the vault set of {self.vault_kind.label}s {who} in {where}"


@dataclass(frozen=True)
class VaultSetSpec:
    """A rule's ``vault: {vaultSet: ...}`` before it meets a resource (the region is the resource's)."""

    name_prefix: str = ""
    tag_name: str = ""
    tag_value: str = ""


VaultTarget: TypeAlias = ExplicitVault | RegionalDefaultVault | VaultSet


@dataclass(frozen=True)
class DatastoreOptions(Record):
    """Backup vault datastore parameters. ``snapshot_resource_group``: disks only; blob fields: storage only."""

    snapshot_resource_group: ResourceId | None = None
    blob_tier: BlobTier | None = None
    blob_containers: tuple[str, ...] = ()  # vaulted blobs: empty means every container found at protect time


@dataclass(frozen=True)
class RequiredVaultSettings(Record):
    """Vault settings audits require. ``soft_delete``: "On" (On or AlwaysOn) / "AlwaysOn"; ``immutability``:
    "Unlocked" (Unlocked or Locked) / "Locked"; ``cross_region_restore``: must be enabled. None: no demand."""

    soft_delete: str | None = None
    immutability: str | None = None
    cross_region_restore: bool | None = None

    def shortfalls(
        self, soft_delete: str | None, immutability: str | None, cross_region_restore: bool | None
    ) -> list[str]:
        """What a vault with these actual settings (ARM spellings, any case) lacks; empty when compliant."""
        problems: list[str] = []
        sd = (soft_delete or "").lower()
        if self.soft_delete == "AlwaysOn" and sd != "alwayson":
            problems.append(f"soft delete must be AlwaysOn, is {soft_delete or 'unknown'}")
        elif self.soft_delete == "On" and sd not in {"on", "enabled", "alwayson"}:
            problems.append(f"soft delete must be on, is {soft_delete or 'unknown'}")
        im = (immutability or "").lower()
        if self.immutability == "Locked" and im != "locked":
            problems.append(f"immutability must be Locked, is {immutability or 'unknown'}")
        elif self.immutability == "Unlocked" and im not in {"unlocked", "locked"}:
            problems.append(f"immutability must be enabled, is {immutability or 'unknown'}")
        if self.cross_region_restore and not cross_region_restore:
            problems.append("cross-region restore must be enabled")
        return problems


@dataclass(frozen=True)
class ProtectionSpec:
    """The ``protect`` part of a rule, before it meets a resource."""

    vault: str | ExplicitVault | VaultSetSpec  # "regional-default", an explicit vault, or a vault set
    vault_subscription: str | None  # regional-default or vault set in another subscription (Backup vaults only)
    policy: str | None
    datastore_snapshot_group: str | None
    blob_tier: BlobTier | None
    blob_containers: tuple[str, ...]
    on_delete: OnDelete
    rpo_hours: int | None
    required_settings: RequiredVaultSettings
    #: ``protect.roleScope``: where the Backup vault identity's roles are assigned (Backup-vault workloads only)
    role_scope: PermissionsScope = PermissionsScope.RESOURCE


@dataclass(frozen=True)
class ProtectionRule:
    name: str
    match: MatchCondition
    protect: ProtectionSpec | None = None
    opt_out: str | None = None  # the reason, for opt-out rules
    line: int | None = None  # where the rule starts in its source


@dataclass(frozen=True)
class RuleSet:
    rules: tuple[ProtectionRule, ...]
    source: str = "<rules>"
    opt_out_tag: str = DEFAULT_OPT_OUT_TAG
    vault_default_tag: str = DEFAULT_VAULT_TAG
    drills: tuple[DrillRule, ...] = ()
    #: STEWARD_VAULT_FILL_PERCENT: vault sets pass over a member this full (issue 19)
    vault_fill_percent: int = DEFAULT_FILL_PERCENT  # restore drills (issue 17), see steward.domain.drill_rules


def rec_str(record: Mapping[str, Any], key: str) -> str:
    value = record.get(key)
    if not isinstance(value, str):
        raise InvalidRecord(f"record field {key!r} must be a string")
    return value


def rec_id(record: Mapping[str, Any], key: str) -> ResourceId:
    try:
        return ResourceId.parse(rec_str(record, key))
    except InvalidResourceId as error:
        raise InvalidRecord(f"record field {key!r}: {error}") from None
