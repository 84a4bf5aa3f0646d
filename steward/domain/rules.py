"""Protection rules: which resource is protected where, with what, or not at all.

A rules document (YAML or JSON; :data:`RULES_SCHEMA` is its JSON Schema, mirrored in ``rules.schema.json``)
lists rules in order. Each rule matches resources by type, tags (equals / exists / absent), resource group
(glob), subscription and region, and either protects them (target vault, policy, datastore options, what to
do when the resource is deleted, an RPO and the vault settings audits require) or opts them out.

``route(resource, rules)`` decides for one resource:
1. the opt-out tag (default ``backup-steward:opt-out`` = ``true``) always wins;
2. a type Backup Steward does not protect is :class:`Unsupported`;
3. the first rule that matches decides; no matching rule means :class:`OptOut` ("no rule covers it");
4. the region and one-vault rules are enforced on the matched rule's target; a target that breaks them
   yields :class:`Unsupported` naming the rule, never a protection in the wrong place.

Where a vault may be, relative to the resource it protects (checked against Microsoft's docs):
- Recovery Services vault and VM: same region ("the vault must be in the same region as the VMs",
  ``backup/backup-azure-arm-vms-prepare.md``) and same subscription ("cross subscription backup ... isn't a
  supported scenario", ``backup/backup-azure-move-recovery-services-vault.md``).
- Backup vault and managed disk: same region; the subscription may differ (``backup/disk-backup-support-matrix.md``).
- Backup vault and PostgreSQL flexible server: CONFIRMED same region, subscription may differ — "Backups for the
  PostgreSQL server are supported when the Backup Vault is in the same or a different subscription as the
  database, provided they are within the same tenant and region" (MicrosoftDocs/azure-docs
  ``articles/backup/backup-azure-database-postgresql-flex-support-matrix.md``).
- Backup vault and blobs of a storage account: the support matrix (``backup/blob-backup-support-matrix.md``)
  states no region rule; Azure's built-in policies are named "Configure backup for blobs on storage accounts
  ... to an existing backup vault in the same region", and the Data Lake Storage (blob) backup article says
  "ensure you have a Backup Vault in the same region". INFERRED: same region; enforced here like the others,
  the subscription may differ.
The dataprotection REST spec (2025-07-01) carries ``dataSourceInfo.resourceLocation`` on a backup instance but
no region constraint of its own; the rules above come from the docs.

The loader takes text and a source name (no file I/O in the domain); errors name the line and the field.
"""

from __future__ import annotations

import fnmatch
import itertools
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType
from typing import Any, ClassVar, Final, TypeAlias

import jsonschema
import yaml

from steward.domain.drill_rules import DRILLS_SCHEMA, DrillRule, build_drill_rules
from steward.domain.errors import InvalidRecord, InvalidResourceId, InvalidRules, RuleProblem
from steward.domain.ids import ResourceId
from steward.domain.kernel import VaultKind, normalise_region
from steward.domain.workloads import Workload, workload_for

__all__ = [
    "DEFAULT_OPT_OUT_TAG",
    "DEFAULT_VAULT_TAG",
    "MAX_RULES_BYTES",
    "RULES_SCHEMA",
    "AmbiguousVaults",
    "BlobTier",
    "DatastoreOptions",
    "ExplicitVault",
    "InvalidRules",
    "MatchCondition",
    "NoVault",
    "OnDelete",
    "OptOut",
    "OptOutBasis",
    "Protect",
    "ProtectionDecision",
    "ProtectionRule",
    "RegionalDefaultVault",
    "RequiredVaultSettings",
    "ResourceFacts",
    "RuleProblem",
    "RuleSet",
    "TagCondition",
    "Unsupported",
    "VaultCandidate",
    "VaultChoice",
    "VaultChosen",
    "choose_vault",
    "decision_from_record",
    "load_rules",
    "normalise_region",
    "route",
]

DEFAULT_OPT_OUT_TAG: Final = "backup-steward:opt-out"
DEFAULT_VAULT_TAG: Final = "backup-steward:default"
#: Bound on a rules document; real ones are a few KB.
MAX_RULES_BYTES: Final = 256 * 1024
#: Bound on YAML nodes, so that a hostile document cannot make validation expensive.
MAX_RULES_NODES: Final = 20_000
#: Bound on nesting (a rules document needs about six levels); deeper input would exhaust the recursion of
#: YAML composition and schema validation.
MAX_RULES_DEPTH: Final = 32
#: Bound on the schema problems reported for one document (validation stops there).
MAX_RULES_PROBLEMS: Final = 50
#: libyaml's parser when PyYAML was built with it (about 10x faster); the pure-Python one otherwise. Both are safe
#: loaders: no tags that construct objects.
_LOADER: Final[type[yaml.SafeLoader]] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

#: RPO (hours) the audits use when a rule names none: daily backups; PostgreSQL vaulted backup is weekly.
_DEFAULT_RPO_HOURS: Final[dict[str, int]] = {
    "microsoft.compute/virtualmachines": 24,
    "microsoft.compute/disks": 24,
    "microsoft.storage/storageaccounts": 24,
    "microsoft.dbforpostgresql/flexibleservers": 168,
}
_SUPPORTED_TYPES: Final = (
    "Microsoft.Compute/virtualMachines",
    "Microsoft.Compute/disks",
    "Microsoft.Storage/storageAccounts",
    "Microsoft.DBforPostgreSQL/flexibleServers",
)
_RULE_NAME = r"^[A-Za-z0-9][A-Za-z0-9 ._()-]{0,79}$"
_GUID = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
_TAG_NAME = r"^[^<>%&\\?/\u0000-\u001f]{1,512}$"
_CONTAINER = re.compile(r"[a-z0-9](?:[a-z0-9]|-(?=[a-z0-9])){2,62}")

# ---- the schema --------------------------------------------------------------------------------------

_TAG_CONDITION: Final[dict[str, Any]] = {
    "description": "A string: the tag must equal it. {exists: true}: the tag must be present (any value). "
    "{absent: true}: the tag must not be present.",
    "oneOf": [
        {"type": "string", "maxLength": 256},
        {
            "type": "object",
            "properties": {"exists": {"const": True}},
            "required": ["exists"],
            "additionalProperties": False,
        },
        {
            "type": "object",
            "properties": {"absent": {"const": True}},
            "required": ["absent"],
            "additionalProperties": False,
        },
    ],
}

RULES_SCHEMA: Final[dict[str, Any]] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": "https://backup-steward.example/schemas/rules-v1.json",
    "title": "Backup Steward protection rules",
    "type": "object",
    "required": ["version", "rules"],
    "additionalProperties": False,
    "properties": {
        "version": {"const": 1, "description": "Format version of this document."},
        "optOutTag": {
            "type": "string",
            "pattern": _TAG_NAME,
            "description": "Tag that opts a resource out when its value is 'true' (overridden by settings).",
        },
        "rules": {"type": "array", "minItems": 1, "maxItems": 500, "items": {"$ref": "#/$defs/rule"}},
        "drills": DRILLS_SCHEMA,
    },
    "$defs": {
        "rule": {
            "type": "object",
            "required": ["name"],
            "additionalProperties": False,
            "properties": {
                "name": {"type": "string", "pattern": _RULE_NAME},
                "description": {"type": "string", "maxLength": 1000},
                "match": {"$ref": "#/$defs/match"},
                "protect": {"$ref": "#/$defs/protect"},
                "optOut": {
                    "type": "string",
                    "minLength": 1,
                    "maxLength": 500,
                    "description": "Opt matching resources out; the text is the reason reported.",
                },
            },
            "oneOf": [{"required": ["protect"]}, {"required": ["optOut"]}],
        },
        "match": {
            "type": "object",
            "additionalProperties": False,
            "description": "Every condition given must hold; a missing condition matches everything.",
            "properties": {
                "types": {
                    "type": "array",
                    "minItems": 1,
                    "items": {"type": "string", "enum": [*_SUPPORTED_TYPES, *(t.lower() for t in _SUPPORTED_TYPES)]},
                },
                "tags": {
                    "type": "object",
                    "maxProperties": 50,
                    "propertyNames": {"pattern": _TAG_NAME},
                    "additionalProperties": _TAG_CONDITION,
                },
                "resourceGroups": {
                    "type": "array",
                    "minItems": 1,
                    "items": {"type": "string", "minLength": 1, "maxLength": 90},
                    "description": "Glob patterns (*, ?, [..]) on the resource group name, case-insensitive.",
                },
                "subscriptions": {
                    "type": "array",
                    "minItems": 1,
                    "items": {"type": "string", "pattern": _GUID},
                },
                "regions": {
                    "type": "array",
                    "minItems": 1,
                    "items": {"type": "string", "minLength": 1, "maxLength": 64, "pattern": "^[A-Za-z0-9 ]+$"},
                },
            },
        },
        "protect": {
            "type": "object",
            "required": ["vault"],
            "additionalProperties": False,
            "properties": {
                "vault": {
                    "description": "'regional-default': the vault of the resource's region (and subscription, "
                    "or the one given) tagged as default, else the only one there. {id, region}: that vault.",
                    "oneOf": [
                        {"const": "regional-default"},
                        {
                            "type": "object",
                            "required": ["regionalDefault"],
                            "additionalProperties": False,
                            "properties": {
                                "regionalDefault": {
                                    "type": "object",
                                    "additionalProperties": False,
                                    "properties": {"subscription": {"type": "string", "pattern": _GUID}},
                                }
                            },
                        },
                        {
                            "type": "object",
                            "required": ["id", "region"],
                            "additionalProperties": False,
                            "properties": {
                                "id": {"type": "string", "minLength": 1, "maxLength": 2048},
                                "region": {"type": "string", "minLength": 1, "maxLength": 64},
                            },
                        },
                    ],
                },
                "policy": {"type": "string", "minLength": 1, "maxLength": 150, "pattern": "^[^/\\\\?#%'\"]+$"},
                "datastore": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {
                        "snapshotResourceGroup": {
                            "type": "string",
                            "minLength": 1,
                            "maxLength": 90,
                            "description": "Disks: resource group (in the disk's subscription) for snapshots.",
                        },
                        "blobTier": {"enum": ["operational", "vaulted", "both"]},
                        "blobContainers": {
                            "type": "array",
                            "maxItems": 100,
                            "items": {"type": "string"},
                            "description": "Vaulted blob backup: containers to back up (empty: all).",
                        },
                    },
                },
                "onDelete": {"enum": ["retain", "leave"]},
                "rpoHours": {"type": "integer", "minimum": 1, "maximum": 8760},
                "requiredVaultSettings": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {
                        "softDelete": {"enum": ["On", "Enabled", "AlwaysOn", "AlwaysON"]},
                        "immutability": {"enum": ["Unlocked", "Enabled", "Locked"]},
                        "crossRegionRestore": {"type": "boolean"},
                    },
                },
            },
        },
    },
}

_VALIDATOR: Final = jsonschema.Draft202012Validator(RULES_SCHEMA)

# ---- value types -------------------------------------------------------------------------------------


def _frozen_tags(tags: Mapping[str, str]) -> Mapping[str, str]:
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
        object.__setattr__(self, "tags", _frozen_tags(self.tags))
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
        return cls(_rec_id(record, "id"), _rec_str(record, "location"), tags)


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
class ExplicitVault:
    """A named vault; its region is declared in the rules so the region rule is checked at decision time
    (and again against the vault's real location by :func:`choose_vault`)."""

    kind: ClassVar[str] = "explicit"
    vault_id: ResourceId
    region: str  # normalised

    @property
    def vault_kind(self) -> VaultKind:
        return VaultKind.BACKUP if self.vault_id.vault_kind is VaultKind.BACKUP else VaultKind.RECOVERY_SERVICES

    def to_record(self) -> dict[str, Any]:
        return {"kind": self.kind, "vaultId": str(self.vault_id), "region": self.region}


@dataclass(frozen=True)
class RegionalDefaultVault:
    """The vault of ``vault_kind`` in ``region`` and ``subscription_id`` tagged ``default_tag`` = true,
    else the only one there."""

    kind: ClassVar[str] = "regional-default"
    vault_kind: VaultKind
    subscription_id: str
    region: str  # normalised
    default_tag: str = DEFAULT_VAULT_TAG

    def to_record(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "vaultKind": self.vault_kind.value,
            "subscriptionId": self.subscription_id,
            "region": self.region,
            "defaultTag": self.default_tag,
        }


VaultTarget: TypeAlias = ExplicitVault | RegionalDefaultVault


@dataclass(frozen=True)
class DatastoreOptions:
    """Backup vault datastore parameters. ``snapshot_resource_group``: disks only; blob fields: storage only."""

    snapshot_resource_group: ResourceId | None = None
    blob_tier: BlobTier | None = None
    blob_containers: tuple[str, ...] = ()  # vaulted blobs: empty means every container found at protect time

    def to_record(self) -> dict[str, Any]:
        return {
            "snapshotResourceGroup": None
            if self.snapshot_resource_group is None
            else str(self.snapshot_resource_group),
            "blobTier": None if self.blob_tier is None else self.blob_tier.value,
            "blobContainers": list(self.blob_containers),
        }

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> DatastoreOptions:
        group = record.get("snapshotResourceGroup")
        tier = record.get("blobTier")
        containers = record.get("blobContainers") or []
        if not isinstance(containers, list) or not all(isinstance(c, str) for c in containers):
            raise InvalidRecord("'blobContainers' must be a list of strings")
        try:
            return cls(
                None if group is None else _rec_id(record, "snapshotResourceGroup"),
                None if tier is None else BlobTier(tier),
                tuple(containers),
            )
        except ValueError as error:
            raise InvalidRecord(f"invalid datastore options record: {error}") from None


@dataclass(frozen=True)
class RequiredVaultSettings:
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

    def to_record(self) -> dict[str, Any]:
        return {
            "softDelete": self.soft_delete,
            "immutability": self.immutability,
            "crossRegionRestore": self.cross_region_restore,
        }


@dataclass(frozen=True)
class ProtectionSpec:
    """The ``protect`` part of a rule, before it meets a resource."""

    vault: str | ExplicitVault  # "regional-default" or an explicit vault
    vault_subscription: str | None  # regional-default in another subscription (Backup vaults only)
    policy: str | None
    datastore_snapshot_group: str | None
    blob_tier: BlobTier | None
    blob_containers: tuple[str, ...]
    on_delete: OnDelete
    rpo_hours: int | None
    required_settings: RequiredVaultSettings


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
    drills: tuple[DrillRule, ...] = ()  # restore drills (issue 17), see steward.domain.drill_rules


# ---- decisions ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Protect:
    kind: ClassVar[str] = "protect"
    resource_id: ResourceId
    resource_type: str
    vault_kind: VaultKind
    vault: VaultTarget
    policy: str
    datastore: DatastoreOptions
    on_delete: OnDelete
    rpo_hours: int
    required_settings: RequiredVaultSettings
    rule: str

    def to_record(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "resourceId": str(self.resource_id),
            "resourceType": self.resource_type,
            "vaultKind": self.vault_kind.value,
            "vault": self.vault.to_record(),
            "policy": self.policy,
            "datastore": self.datastore.to_record(),
            "onDelete": self.on_delete.value,
            "rpoHours": self.rpo_hours,
            "requiredSettings": self.required_settings.to_record(),
            "rule": self.rule,
        }


class OptOutBasis(StrEnum):
    """Why a resource is not to be protected: each has its own outcome (issue 20: ``OptedOut`` meant all four)."""

    TAG = "tag"  # the opt-out tag
    RULE = "rule"  # the first matching rule opts it out
    COVERED_BY_VM = "covered-by-vm"  # a managed disk attached to a VM: the VM's backup covers it
    NO_RULE = "no-rule"  # no rule matches it


@dataclass(frozen=True)
class OptOut:
    kind: ClassVar[str] = "opt-out"
    resource_id: ResourceId
    reason: str
    rule: str | None = None  # None: the opt-out tag, a disk covered by its VM, or no rule matched
    #: None only in a record written before the split (an orchestration replaying its history): read as OptedOut
    basis: OptOutBasis | None = None

    def to_record(self) -> dict[str, Any]:
        record = {"kind": self.kind, "resourceId": str(self.resource_id), "reason": self.reason, "rule": self.rule}
        if self.basis is not None:
            record["basis"] = self.basis.value
        return record


@dataclass(frozen=True)
class Unsupported:
    """Not protected: the type is not supported, or (``rule`` set) the matched rule's target breaks the region
    or one-vault rules for this resource."""

    kind: ClassVar[str] = "unsupported"
    resource_id: ResourceId
    reason: str
    rule: str | None = None

    def to_record(self) -> dict[str, Any]:
        return {"kind": self.kind, "resourceId": str(self.resource_id), "reason": self.reason, "rule": self.rule}


ProtectionDecision: TypeAlias = Protect | OptOut | Unsupported


def decision_from_record(record: object) -> ProtectionDecision:
    """Rebuild a decision from its ``to_record()`` form; :class:`InvalidRecord` when it is not one."""
    if not isinstance(record, Mapping):
        raise InvalidRecord("a decision record must be an object")
    kind = record.get("kind")
    rid = _rec_id(record, "resourceId")
    if kind in {OptOut.kind, Unsupported.kind}:
        rule = record.get("rule")
        if rule is not None and not isinstance(rule, str):
            raise InvalidRecord("'rule' must be a string or null")
        if kind == Unsupported.kind:
            return Unsupported(rid, _rec_str(record, "reason"), rule)
        basis = record.get("basis")
        try:
            return OptOut(rid, _rec_str(record, "reason"), rule, None if basis is None else OptOutBasis(basis))
        except ValueError:
            raise InvalidRecord(f"unknown opt-out basis {basis!r}") from None
    if kind != Protect.kind:
        raise InvalidRecord(f"unknown decision kind {kind!r}")
    try:
        vault_record = record["vault"]
        settings = record["requiredSettings"]
        return Protect(
            resource_id=rid,
            resource_type=_rec_str(record, "resourceType"),
            vault_kind=VaultKind(record["vaultKind"]),
            vault=_vault_from_record(vault_record),
            policy=_rec_str(record, "policy"),
            datastore=DatastoreOptions.from_record(record["datastore"]),
            on_delete=OnDelete(record["onDelete"]),
            rpo_hours=int(record["rpoHours"]),
            required_settings=RequiredVaultSettings(
                settings.get("softDelete"), settings.get("immutability"), settings.get("crossRegionRestore")
            ),
            rule=_rec_str(record, "rule"),
        )
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        if isinstance(error, InvalidRecord):
            raise
        raise InvalidRecord(f"invalid protect decision record: {error!r}") from None


def _vault_from_record(record: Mapping[str, Any]) -> VaultTarget:
    if record.get("kind") == ExplicitVault.kind:
        return ExplicitVault(_rec_id(record, "vaultId"), _rec_str(record, "region"))
    if record.get("kind") == RegionalDefaultVault.kind:
        return RegionalDefaultVault(
            VaultKind(record["vaultKind"]),
            _rec_str(record, "subscriptionId"),
            _rec_str(record, "region"),
            _rec_str(record, "defaultTag"),
        )
    raise InvalidRecord(f"unknown vault target kind {record.get('kind')!r}")


def _rec_str(record: Mapping[str, Any], key: str) -> str:
    value = record.get(key)
    if not isinstance(value, str):
        raise InvalidRecord(f"record field {key!r} must be a string")
    return value


def _rec_id(record: Mapping[str, Any], key: str) -> ResourceId:
    try:
        return ResourceId.parse(_rec_str(record, key))
    except InvalidResourceId as error:
        raise InvalidRecord(f"record field {key!r}: {error}") from None


# ---- routing -----------------------------------------------------------------------------------------


def route(resource: ResourceFacts, rules: RuleSet) -> ProtectionDecision:
    """Decide for one resource. Pure and total: never raises for a valid ``ResourceFacts``."""
    if any(value.strip().lower() == "true" for value in resource.tag_values(rules.opt_out_tag)):
        return OptOut(resource.id, f"tagged {rules.opt_out_tag}=true", None, OptOutBasis.TAG)
    workload = workload_for(resource.type)
    if workload is None:
        return Unsupported(resource.id, f"Backup Steward does not protect resources of type {resource.type}")
    if resource.attached_to and workload.resource_type == "Microsoft.Compute/disks":
        # Azure VM backup snapshots every attached disk: a Backup vault instance would back the same data up
        # twice. Detached disks are routed like any other resource.
        return OptOut(
            resource.id, f"attached to VM {resource.attached_to}: covered by the VM's backup", None,
            OptOutBasis.COVERED_BY_VM,
        )
    for rule in rules.rules:
        if not rule.match.holds(resource):
            continue
        if rule.opt_out is not None or rule.protect is None:
            return OptOut(resource.id, rule.opt_out or "opted out", rule.name, OptOutBasis.RULE)
        return _protect(resource, workload, rule.name, rule.protect, rules.vault_default_tag)
    return OptOut(resource.id, f"no rule in {rules.source} covers this resource", None, OptOutBasis.NO_RULE)


def _protect(
    resource: ResourceFacts, workload: Workload, rule: str, spec: ProtectionSpec, default_tag: str
) -> ProtectionDecision:
    kind = workload.vault_kind
    vault: VaultTarget
    if isinstance(spec.vault, ExplicitVault):
        vault = spec.vault
        refusal = _explicit_vault_refusal(resource, kind, vault)
    else:
        subscription = spec.vault_subscription or resource.subscription
        vault = RegionalDefaultVault(kind, subscription, resource.region, default_tag)
        refusal = _subscription_refusal(resource, kind, subscription)
    if refusal is not None:
        return Unsupported(resource.id, f"rule {rule!r}: {refusal}", rule)
    datastore, refusal = _datastore(resource, workload, spec)
    if refusal is not None:
        return Unsupported(resource.id, f"rule {rule!r}: {refusal}", rule)
    return Protect(
        resource_id=resource.id,
        resource_type=workload.resource_type,
        vault_kind=kind,
        vault=vault,
        policy=spec.policy or workload.default_policy,
        datastore=datastore,
        on_delete=spec.on_delete,
        rpo_hours=spec.rpo_hours or _DEFAULT_RPO_HOURS[workload.resource_type.lower()],
        required_settings=spec.required_settings,
        rule=rule,
    )


def _vault_kind_name(kind: VaultKind) -> str:
    return kind.label


def _explicit_vault_refusal(resource: ResourceFacts, kind: VaultKind, vault: ExplicitVault) -> str | None:
    if vault.vault_kind is not kind:
        return (
            f"{resource.type} is protected by a {_vault_kind_name(kind)}, "
            f"but the rule names a {_vault_kind_name(vault.vault_kind)} ({vault.vault_id})"
        )
    if vault.region != resource.region:
        return (
            f"vault {vault.vault_id} is in region {vault.region}, the resource in {resource.region}; "
            "a vault only protects resources of its own region"
        )
    return _subscription_refusal(resource, kind, vault.vault_id.subscription_id)


def _subscription_refusal(resource: ResourceFacts, kind: VaultKind, subscription: str) -> str | None:
    if kind is VaultKind.RECOVERY_SERVICES and subscription.lower() != resource.subscription.lower():
        return (
            f"the Recovery Services vault is in subscription {subscription}, the VM in {resource.subscription}; "
            "cross-subscription VM backup is not supported"
        )
    return None


def _datastore(
    resource: ResourceFacts, workload: Workload, spec: ProtectionSpec
) -> tuple[DatastoreOptions, str | None]:
    type_key = workload.resource_type.lower()
    if type_key == "microsoft.compute/disks":
        group_name = spec.datastore_snapshot_group or resource.id.resource_group
        if group_name is None:
            return DatastoreOptions(), "a managed disk outside a resource group has no snapshot resource group"
        try:
            group = ResourceId.parse(f"/subscriptions/{resource.subscription}/resourceGroups/{group_name}")
        except InvalidResourceId as error:
            return DatastoreOptions(), f"invalid snapshot resource group: {error}"
        return DatastoreOptions(snapshot_resource_group=group), None
    if type_key == "microsoft.storage/storageaccounts":
        tier = spec.blob_tier or BlobTier.OPERATIONAL
        containers = spec.blob_containers if tier is not BlobTier.OPERATIONAL else ()
        return DatastoreOptions(blob_tier=tier, blob_containers=containers), None
    return DatastoreOptions(), None


# ---- choosing among the vaults found -----------------------------------------------------------------


@dataclass(frozen=True)
class VaultCandidate:
    """A vault found in Azure: its id, location and tags (its kind comes from its type)."""

    id: ResourceId
    location: str
    tags: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "tags", _frozen_tags(self.tags))

    @property
    def vault_kind(self) -> VaultKind | None:
        return self.id.vault_kind

    @property
    def region(self) -> str:
        return normalise_region(self.location)

    def tagged(self, name: str) -> bool:
        wanted = name.lower()
        return any(k.lower() == wanted and v.strip().lower() == "true" for k, v in self.tags.items())


@dataclass(frozen=True)
class VaultChosen:
    kind: ClassVar[str] = "chosen"
    vault_id: ResourceId
    reason: str


@dataclass(frozen=True)
class NoVault:
    """No acceptable vault: create one (when allowed) for ``vault_kind`` in ``region``/``subscription_id``."""

    kind: ClassVar[str] = "none"
    reason: str
    vault_kind: VaultKind
    subscription_id: str
    region: str


@dataclass(frozen=True)
class AmbiguousVaults:
    """Several vaults qualify and none is marked as the default: a person must tag one."""

    kind: ClassVar[str] = "ambiguous"
    reason: str
    candidates: tuple[ResourceId, ...]


VaultChoice: TypeAlias = VaultChosen | NoVault | AmbiguousVaults


def choose_vault(decision: Protect, candidates: Iterable[VaultCandidate]) -> VaultChoice:
    """Pick the vault for a protect decision among the vaults found. Never picks a vault of another kind or
    region (or, for VMs, subscription)."""
    target = decision.vault
    resource_sub = decision.resource_id.subscription_id
    if isinstance(target, ExplicitVault):
        found = [c for c in candidates if c.id == target.vault_id]
        in_region = [c for c in found if c.region == target.region]
        if in_region:
            return VaultChosen(in_region[0].id, f"named by rule {decision.rule!r}")
        if not found:
            return NoVault(
                f"the vault {target.vault_id} named by rule {decision.rule!r} was not found",
                decision.vault_kind,
                target.vault_id.subscription_id,
                target.region,
            )
        vault = found[0]
        if vault.region != target.region:
            return NoVault(
                f"the vault {vault.id} is in {vault.region}, not {target.region} as rule {decision.rule!r} says; "
                "it cannot protect this resource",
                decision.vault_kind,
                target.vault_id.subscription_id,
                target.region,
            )
        return VaultChosen(vault.id, f"named by rule {decision.rule!r}")
    qualifying: dict[ResourceId, VaultCandidate] = {}
    for c in candidates:
        if (
            c.vault_kind is target.vault_kind
            and c.region == target.region
            and c.id.subscription_id.lower() == target.subscription_id.lower()
            and (
                target.vault_kind is not VaultKind.RECOVERY_SERVICES
                or c.id.subscription_id.lower() == resource_sub.lower()
            )
        ):
            qualifying.setdefault(c.id, c)  # the same vault listed twice is one vault
    eligible = sorted(qualifying.values(), key=lambda c: c.id)
    where = f"{_vault_kind_name(target.vault_kind)} in {target.region} of subscription {target.subscription_id}"
    tagged = [c for c in eligible if c.tagged(target.default_tag)]
    if len(tagged) == 1:
        return VaultChosen(tagged[0].id, f"the {where} tagged {target.default_tag}=true")
    if len(tagged) > 1:
        return AmbiguousVaults(
            f"{len(tagged)} vaults are tagged {target.default_tag}=true; tag exactly one {where}",
            tuple(c.id for c in tagged),
        )
    if len(eligible) == 1:
        return VaultChosen(eligible[0].id, f"the only {where}")
    if not eligible:
        return NoVault(f"there is no {where}", target.vault_kind, target.subscription_id, target.region)
    return AmbiguousVaults(
        f"{len(eligible)} vaults qualify as the {where} and none is tagged {target.default_tag}=true",
        tuple(c.id for c in eligible),
    )


# ---- loading -----------------------------------------------------------------------------------------

Path_: TypeAlias = tuple[str | int, ...]


def _field(path: Sequence[str | int]) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


class _Positions:
    """Line of every node of the document, by path (the key's line for mapping values)."""

    def __init__(self) -> None:
        self.lines: dict[Path_, int] = {}

    def line(self, path: Sequence[str | int]) -> int | None:
        current: Path_ = tuple(path)
        while True:
            if current in self.lines:
                return self.lines[current]
            if not current:
                return None
            current = current[:-1]


def _compose(text: str, source: str) -> tuple[Any, _Positions]:
    """Parse YAML (JSON is YAML too) into plain data, recording lines. Refuses aliases, duplicate keys,
    non-string keys and oversized documents."""
    positions = _Positions()
    try:
        depth = nodes = 0
        # the parser is iterative (safe on any input); the limits apply while parsing, before anything is built
        for event in yaml.parse(text, Loader=_LOADER):
            line = event.start_mark.line + 1 if event.start_mark else None
            if isinstance(event, yaml.AliasEvent):
                raise InvalidRules([RuleProblem(source, line, "", "YAML aliases (*name) are not allowed in rules")])
            if isinstance(event, (yaml.ScalarEvent, yaml.CollectionStartEvent)):
                nodes += 1
                if nodes > MAX_RULES_NODES:
                    raise InvalidRules([RuleProblem(source, line, "", "the document is too large "
                                                    f"(more than {MAX_RULES_NODES} values)")])
            if isinstance(event, yaml.CollectionStartEvent):
                depth += 1
                if depth > MAX_RULES_DEPTH:
                    raise InvalidRules([RuleProblem(source, line, "", f"nested deeper than {MAX_RULES_DEPTH} levels")])
            elif isinstance(event, yaml.CollectionEndEvent):
                depth -= 1
        node = yaml.compose(text, Loader=_LOADER)  # bounded in depth and size by the pass above
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line = mark.line + 1 if mark is not None else None
        raise InvalidRules([RuleProblem(source, line, "", f"not valid YAML/JSON: {error.problem or error}")]) from None
    except yaml.YAMLError as error:
        raise InvalidRules([RuleProblem(source, None, "", f"not valid YAML/JSON: {error}")]) from None
    if node is None:
        raise InvalidRules([RuleProblem(source, 1, "", "the document is empty")])
    problems: list[RuleProblem] = []
    scalars = yaml.SafeLoader("")
    try:
        data = _to_data(node, (), _Walk(positions, problems, source, scalars))
    finally:
        scalars.dispose()
    if problems:
        raise InvalidRules(problems)
    return data, positions


@dataclass
class _Walk:
    positions: _Positions
    problems: list[RuleProblem]
    source: str
    scalars: yaml.SafeLoader


def _to_data(node: yaml.Node, path: Path_, walk: _Walk) -> Any:
    positions, problems, source = walk.positions, walk.problems, walk.source
    positions.lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        result: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else None
            if key is None or key_node.tag != "tag:yaml.org,2002:str":
                problems.append(
                    RuleProblem(source, key_node.start_mark.line + 1, _field(path), "every key must be a plain string")
                )
                continue
            if key in result:
                problems.append(
                    RuleProblem(source, key_node.start_mark.line + 1, _field((*path, key)), "duplicate key")
                )
                continue
            positions.lines[(*path, key)] = key_node.start_mark.line + 1
            result[key] = _to_data(value_node, (*path, key), walk)
        return result
    if isinstance(node, yaml.SequenceNode):
        return [_to_data(item, (*path, index), walk) for index, item in enumerate(node.value)]
    try:
        return walk.scalars.construct_object(node, deep=True)
    except (yaml.YAMLError, ValueError) as error:
        problems.append(RuleProblem(source, node.start_mark.line + 1, _field(path), f"invalid value: {error}"))
        return None


_TYPE_NAMES: Final = {
    "string": "a string",
    "integer": "an integer",
    "boolean": "true or false",
    "object": "a mapping",
    "array": "a list",
}


def _schema_problem(error: jsonschema.ValidationError, positions: _Positions, source: str) -> list[RuleProblem]:
    path = list(error.absolute_path)
    if error.validator == "additionalProperties" and isinstance(error.instance, Mapping):
        schema = error.schema if isinstance(error.schema, Mapping) else {}
        allowed = set(schema.get("properties", {}))
        extras = sorted(k for k in error.instance if k not in allowed)
        return [
            RuleProblem(
                source,
                positions.line([*path, extra]),
                _field([*path, extra]),
                f"unknown field {extra!r}; allowed here: {', '.join(sorted(allowed))}",
            )
            for extra in extras
        ]
    if error.validator == "required":
        message = str(error.message).replace("is a required property", "is missing")
    elif error.validator == "type":
        wanted = error.validator_value
        names = [_TYPE_NAMES.get(str(w), str(w)) for w in (wanted if isinstance(wanted, list) else [wanted])]
        message = f"must be {' or '.join(names)}, got {error.instance!r}"
        if isinstance(error.instance, bool | int | float) and "string" in str(wanted):
            message += " (quote it: YAML reads true/yes/on and numbers as non-strings)"
    elif error.validator == "oneOf" and path and path[-1] == "vault":
        message = (
            "must be 'regional-default', {regionalDefault: {subscription: <guid>}} "
            "or {id: <vault id>, region: <region>}"
        )
    elif error.validator == "oneOf" and len(path) == 2 and path[0] == "rules":
        message = "a rule needs exactly one of 'protect' or 'optOut'"
    elif error.validator == "oneOf" and path and path[-1] == "recoveryPoint":
        message = "must be 'latest' or {random: {window: <ISO 8601 duration, e.g. P7D>}}"
    elif error.validator == "pattern" and path and path[-1] in {"every", "lifetime", "window"}:
        message = f"{error.instance!r} is not an ISO 8601 duration of weeks, days, hours, minutes, seconds (e.g. P7D)"
    elif error.validator == "oneOf" and len(path) >= 2 and path[-2] == "tags":
        message = "a tag condition is a string (equals), {exists: true} or {absent: true}"
    elif error.validator == "pattern":
        message = f"{error.instance!r} is not in the expected form ({error.validator_value})"
    else:
        message = str(error.message)
    if len(message) > 300:
        message = message[:297] + "..."
    return [RuleProblem(source, positions.line(path), _field(path), message)]


def load_rules(
    text: str,
    source: str = "<rules>",
    *,
    opt_out_tag: str | None = None,
    vault_default_tag: str = DEFAULT_VAULT_TAG,
) -> RuleSet:
    """Parse and validate a rules document. ``opt_out_tag`` (from settings) overrides the document's.
    Raises :class:`InvalidRules` listing every problem with its line and field."""
    if len(text.encode("utf-8", "surrogatepass")) > MAX_RULES_BYTES:
        raise InvalidRules([RuleProblem(source, None, "", f"the document is larger than {MAX_RULES_BYTES} bytes")])
    data, positions = _compose(text, source)
    errors = sorted(
        itertools.islice(_VALIDATOR.iter_errors(data), MAX_RULES_PROBLEMS + 1),
        key=lambda e: (positions.line(list(e.absolute_path)) or 0, str(e.message)),
    )
    problems = [problem for error in _best_errors(errors[:MAX_RULES_PROBLEMS])
                for problem in _schema_problem(error, positions, source)]
    if len(errors) > MAX_RULES_PROBLEMS:
        problems.append(RuleProblem(source, None, "", f"more problems not listed: the first {MAX_RULES_PROBLEMS} "
                                    "found are shown; fix them and validate again"))
    if problems:
        raise InvalidRules(problems)
    rules: list[ProtectionRule] = []
    seen: dict[str, int | None] = {}
    for index, rule_data in enumerate(data["rules"]):
        rule = _build_rule(rule_data, ("rules", index), positions, source, problems)
        key = rule.name.lower()
        if key in seen:
            problems.append(
                RuleProblem(
                    source,
                    positions.line(("rules", index, "name")),
                    _field(("rules", index, "name")),
                    f"rule name {rule.name!r} is used twice (first on line {seen[key]})",
                )
            )
        seen[key] = rule.line
        rules.append(rule)

    def drill_problem(where: Sequence[str | int], message: str) -> None:
        problems.append(RuleProblem(source, positions.line(where), _field(where), message))

    drills = build_drill_rules(data.get("drills") or [], line=positions.line, problem=drill_problem,
                               protection_rules=[r.name for r in rules if r.protect is not None],
                               supported_types=_SUPPORTED_TYPES)
    if problems:
        raise InvalidRules(problems)
    return RuleSet(
        tuple(rules),
        source=source,
        opt_out_tag=opt_out_tag or data.get("optOutTag") or DEFAULT_OPT_OUT_TAG,
        vault_default_tag=vault_default_tag,
        drills=drills,
    )


def _best_errors(errors: list[jsonschema.ValidationError]) -> list[jsonschema.ValidationError]:
    """One error per location: for a oneOf, the branch error is more useful than each branch's complaint."""
    result: list[jsonschema.ValidationError] = []
    seen: set[tuple[tuple[str | int, ...], str]] = set()
    for error in errors:
        key = (tuple(error.absolute_path), str(error.validator))
        if key in seen:
            continue
        seen.add(key)
        result.append(error)
    return result


def _build_rule(
    data: Mapping[str, Any], path: Path_, positions: _Positions, source: str, problems: list[RuleProblem]
) -> ProtectionRule:
    name = data["name"]
    match = _build_match(data.get("match") or {}, (*path, "match"))
    protect = None
    if "protect" in data:
        protect = _build_protect(
            data["protect"], (*path, "protect"), match=match, positions=positions, source=source, problems=problems
        )
    return ProtectionRule(name, match, protect, data.get("optOut"), positions.line(path))


def _build_match(data: Mapping[str, Any], path: Path_) -> MatchCondition:
    tags = tuple(
        TagCondition(name, equals=value)
        if isinstance(value, str)
        else TagCondition(name, exists=bool(value.get("exists")), absent=bool(value.get("absent")))
        for name, value in (data.get("tags") or {}).items()
    )
    types = data.get("types")
    groups = data.get("resourceGroups")
    subs = data.get("subscriptions")
    regions = data.get("regions")
    return MatchCondition(
        types=None if types is None else frozenset(t.lower() for t in types),
        tags=tags,
        resource_groups=None if groups is None else tuple(g.lower() for g in groups),
        subscriptions=None if subs is None else frozenset(s.lower() for s in subs),
        regions=None if regions is None else frozenset(normalise_region(r) for r in regions),
    )


def _build_protect(
    data: Mapping[str, Any],
    path: Path_,
    *,
    match: MatchCondition,
    positions: _Positions,
    source: str,
    problems: list[RuleProblem],
) -> ProtectionSpec:
    def problem(where: Sequence[str | int], message: str) -> None:
        problems.append(RuleProblem(source, positions.line((*path, *where)), _field((*path, *where)), message))

    vault_data = data["vault"]
    vault: str | ExplicitVault = "regional-default"
    vault_subscription: str | None = None
    if isinstance(vault_data, Mapping) and "id" in vault_data:
        try:
            vault_id = ResourceId.parse(vault_data["id"])
        except InvalidResourceId as error:
            problem(("vault", "id"), str(error))
        else:
            explicit = ExplicitVault(vault_id, normalise_region(vault_data["region"]))
            if vault_id.vault_kind is None:
                problem(("vault", "id"), f"{vault_id.full_type} is not a Recovery Services vault or a Backup vault")
            else:
                for type_key in sorted(match.types or ()):
                    workload = workload_for(type_key)
                    if workload is not None and workload.vault_kind is not explicit.vault_kind:
                        problem(
                            ("vault", "id"),
                            f"{workload.resource_type} needs a {_vault_kind_name(workload.vault_kind)}, "
                            f"not a {_vault_kind_name(explicit.vault_kind)}",
                        )
            vault = explicit
    elif isinstance(vault_data, Mapping):
        vault_subscription = (vault_data.get("regionalDefault") or {}).get("subscription")
    datastore = data.get("datastore") or {}
    containers = tuple(datastore.get("blobContainers") or ())
    for index, container in enumerate(containers):
        if not _CONTAINER.fullmatch(container):
            problem(
                ("datastore", "blobContainers", index),
                f"{container!r} is not a blob container name (3-63 lower-case letters, digits and single hyphens)",
            )
    snapshot_group = datastore.get("snapshotResourceGroup")
    if snapshot_group is not None:
        try:
            ResourceId.parse(f"/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/{snapshot_group}")
        except InvalidResourceId as error:
            problem(("datastore", "snapshotResourceGroup"), str(error).split(": ", 1)[-1])
    settings = data.get("requiredVaultSettings") or {}
    soft_delete = settings.get("softDelete")
    immutability = settings.get("immutability")
    tier = datastore.get("blobTier")
    return ProtectionSpec(
        vault=vault,
        vault_subscription=vault_subscription,
        policy=data.get("policy"),
        datastore_snapshot_group=snapshot_group,
        blob_tier=None if tier is None else BlobTier(tier),
        blob_containers=containers,
        on_delete=OnDelete(data.get("onDelete", "retain")),
        rpo_hours=data.get("rpoHours"),
        required_settings=RequiredVaultSettings(
            soft_delete=None if soft_delete is None else ("AlwaysOn" if soft_delete.lower() == "alwayson" else "On"),
            immutability=None if immutability is None else ("Locked" if immutability == "Locked" else "Unlocked"),
            cross_region_restore=settings.get("crossRegionRestore"),
        ),
    )
