"""What the rules decide for one resource (:class:`Protect`, :class:`OptOut`, :class:`Unsupported`) and the
record of a decision that crosses the durable boundary."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import ClassVar, Final, TypeAlias

from steward.domain.errors import InvalidRecord, InvalidValue
from steward.domain.ids import ResourceId
from steward.domain.kernel import VaultKind
from steward.domain.records import Record
from steward.domain.rules.model import DatastoreOptions, OnDelete, RequiredVaultSettings, VaultTarget
from steward.domain.workloads import PermissionsScope


@dataclass(frozen=True)
class Protect(Record):
    kind: ClassVar[str] = "protect"
    tag_key: ClassVar[str] = "kind"
    type_name: ClassVar[str | None] = kind
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
    #: the rule's ``protect.roleScope`` (Backup-vault workloads); left out of the record while ``resource`` (a
    #: decision recorded before the option existed reads as it)
    role_scope: PermissionsScope = field(default=PermissionsScope.RESOURCE, metadata={"omit_default": True})


class OptOutBasis(StrEnum):
    """Why a resource is not to be protected: each has its own outcome (issue 20: ``OptedOut`` meant all four)."""

    TAG = "tag"  # the opt-out tag
    RULE = "rule"  # the first matching rule opts it out
    COVERED_BY_VM = "covered-by-vm"  # a managed disk attached to a VM: the VM's backup covers it
    NO_RULE = "no-rule"  # no rule matches it


@dataclass(frozen=True)
class OptOut(Record):
    kind: ClassVar[str] = "opt-out"
    tag_key: ClassVar[str] = "kind"
    type_name: ClassVar[str | None] = kind
    resource_id: ResourceId
    reason: str
    rule: str | None = None  # None: the opt-out tag, a disk covered by its VM, or no rule matched
    #: None only in a record written before the split (an orchestration replaying its history): read as OptedOut;
    #: left out of the record while None
    basis: OptOutBasis | None = field(default=None, metadata={"omit_default": True})


@dataclass(frozen=True)
class Unsupported(Record):
    """Not protected: the type is not supported, or (``rule`` set) the matched rule's target breaks the region
    or one-vault rules for this resource."""

    kind: ClassVar[str] = "unsupported"
    tag_key: ClassVar[str] = "kind"
    type_name: ClassVar[str | None] = kind
    resource_id: ResourceId
    reason: str
    rule: str | None = None


ProtectionDecision: TypeAlias = Protect | OptOut | Unsupported
_DECISION_KINDS: Final[dict[str, type[ProtectionDecision]]] = {cls.kind: cls for cls in (Protect, OptOut, Unsupported)}


def decision_from_record(record: object) -> ProtectionDecision:
    """Rebuild a decision from its ``to_record()`` form (the records codec: ``kind`` first, camelCase keys);
    :class:`InvalidRecord` when it is not one."""
    if not isinstance(record, Mapping):
        raise InvalidRecord("a decision record must be an object")
    kind = record.get("kind")
    cls = _DECISION_KINDS.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise InvalidRecord(f"unknown decision kind {kind!r}")
    try:
        return cls.from_record(record)
    except InvalidValue as error:
        raise InvalidRecord(f"invalid {kind} decision record: {error}") from None
