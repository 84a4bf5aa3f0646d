"""What the rules decide for one resource (:class:`Protect`, :class:`OptOut`, :class:`Unsupported`) and the
record of a decision that crosses the durable boundary."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, ClassVar, TypeAlias

from steward.domain.errors import InvalidRecord
from steward.domain.ids import ResourceId
from steward.domain.kernel import VaultKind
from steward.domain.rules.model import (
    DatastoreOptions,
    ExplicitVault,
    OnDelete,
    RegionalDefaultVault,
    RequiredVaultSettings,
    VaultTarget,
    rec_id,
    rec_str,
)


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
    rid = rec_id(record, "resourceId")
    if kind in {OptOut.kind, Unsupported.kind}:
        rule = record.get("rule")
        if rule is not None and not isinstance(rule, str):
            raise InvalidRecord("'rule' must be a string or null")
        if kind == Unsupported.kind:
            return Unsupported(rid, rec_str(record, "reason"), rule)
        basis = record.get("basis")
        try:
            return OptOut(rid, rec_str(record, "reason"), rule, None if basis is None else OptOutBasis(basis))
        except ValueError:
            raise InvalidRecord(f"unknown opt-out basis {basis!r}") from None
    if kind != Protect.kind:
        raise InvalidRecord(f"unknown decision kind {kind!r}")
    try:
        vault_record = record["vault"]
        settings = record["requiredSettings"]
        return Protect(
            resource_id=rid,
            resource_type=rec_str(record, "resourceType"),
            vault_kind=VaultKind(record["vaultKind"]),
            vault=_vault_from_record(vault_record),
            policy=rec_str(record, "policy"),
            datastore=DatastoreOptions.from_record(record["datastore"]),
            on_delete=OnDelete(record["onDelete"]),
            rpo_hours=int(record["rpoHours"]),
            required_settings=RequiredVaultSettings(
                settings.get("softDelete"), settings.get("immutability"), settings.get("crossRegionRestore")
            ),
            rule=rec_str(record, "rule"),
        )
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        if isinstance(error, InvalidRecord):
            raise
        raise InvalidRecord(f"invalid protect decision record: {error!r}") from None


def _vault_from_record(record: Mapping[str, Any]) -> VaultTarget:
    if record.get("kind") == ExplicitVault.kind:
        return ExplicitVault(rec_id(record, "vaultId"), rec_str(record, "region"))
    if record.get("kind") == RegionalDefaultVault.kind:
        return RegionalDefaultVault(
            VaultKind(record["vaultKind"]),
            rec_str(record, "subscriptionId"),
            rec_str(record, "region"),
            rec_str(record, "defaultTag"),
        )
    raise InvalidRecord(f"unknown vault target kind {record.get('kind')!r}")
