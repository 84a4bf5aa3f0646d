"""Protection outcomes and the pure decisions of the protect / gone / moved orchestrations.

Everything here is plain data in, plain data out: orchestrators call these functions with the facts
their activities gathered and walk the result.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any, Final

from steward.domain.ids import ResourceId


class OutcomeStatus(StrEnum):
    PROTECTED = "Protected"  # protection enabled and verified by this run
    ALREADY_PROTECTED = "AlreadyProtected"  # already protected in the vault the rules choose
    CONFLICT = "Conflict"  # protected elsewhere; never moved or stolen
    OPTED_OUT = "OptedOut"  # a rule or the opt-out tag says no
    UNSUPPORTED = "Unsupported"  # not a type we protect
    NO_VAULT = "NoVault"  # no vault of the resource's region and subscription
    AMBIGUOUS_VAULT = "AmbiguousVault"  # several candidate vaults and none marked default
    FAILED = "Failed"  # Azure refused; the reason says why
    RESOURCE_GONE = "ResourceGone"  # the resource no longer exists; nothing to do
    RETAINED = "Retained"  # source deleted: protection stopped, recovery points kept
    LEFT_AS_IS = "LeftAsIs"  # source deleted, the rule says leave protection alone
    REPROTECTED = "Reprotected"  # moved: protected anew, the old item kept with its points


#: Outcomes that mean the resource ends in the intended state.
SUCCESSFUL: Final = frozenset(
    {OutcomeStatus.PROTECTED, OutcomeStatus.ALREADY_PROTECTED, OutcomeStatus.REPROTECTED}
)


@dataclass(frozen=True)
class ProtectionOutcome:
    status: OutcomeStatus
    resource_id: str
    reason: str = ""
    vault_id: str | None = None
    item_id: str | None = None
    policy: str | None = None
    rule: str | None = None
    correlation_id: str | None = None
    #: for moves: the item that holds the recovery points made before the move
    previous_item_id: str | None = None
    previous_resource_id: str | None = None
    details: Mapping[str, Any] = field(default_factory=dict)

    def to_record(self) -> dict[str, Any]:
        record = asdict(self)
        record["status"] = self.status.value
        record["details"] = dict(self.details)
        return record

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> ProtectionOutcome:
        data = dict(record)
        data["status"] = OutcomeStatus(data["status"])
        data["details"] = dict(data.get("details") or {})
        return cls(**data)

    @property
    def event_type(self) -> str:
        return f"BackupSteward.Protection.{self.status.value}"


#: Azure's codes that mean "protected elsewhere" (brief §3, D-diskrest) - a conflict, not a failure.
CONFLICT_CODES: Final = frozenset(
    {
        "UserErrorDppDatasourceAlreadyProtected",
        "BMSUserErrorProtectableItemAlreadyProtected",
        "UserErrorBackupItemAlreadyProtected",
    }
)


def vm_status_conflict(status: Mapping[str, Any], vault_id: str) -> str | None:
    """From a ``backupStatus`` answer: the other vault protecting the VM, or None.

    ``protectionStatus`` is ``Protected`` (or ``Protecting``) with a ``vaultId``; a VM already in the vault
    we want is not a conflict.
    """
    state = str(status.get("protectionStatus") or "")
    other = status.get("vaultId")
    if state not in {"Protected", "Protecting"} or not other:
        return None
    if ResourceId.parse(str(other)) == ResourceId.parse(vault_id):
        return None
    return str(other)


HEALTHY_ITEM_STATES: Final = frozenset({"IRPending", "Protected"})


def item_is_protecting(item: Mapping[str, Any] | None) -> bool:
    """A protected item that is actually protecting (not stopped, not soft-deleted)."""
    if not item:
        return False
    props = item.get("properties") or {}
    if props.get("isScheduledForDeferredDelete"):
        return False
    return str(props.get("protectionState") or "") in HEALTHY_ITEM_STATES


def instance_is_protecting(instance: Mapping[str, Any] | None) -> bool:
    if not instance:
        return False
    props = instance.get("properties") or {}
    status = str((props.get("protectionStatus") or {}).get("status") or "")
    state = str(props.get("currentProtectionState") or "")
    return status in {"ProtectionConfigured", "ConfiguringProtection"} or state in {
        "ProtectionConfigured",
        "ConfiguringProtection",
    }


@dataclass(frozen=True)
class ProtectionRef:
    """A protection that exists: which item/instance in which vault protects which source id."""

    vault_id: str
    item_id: str
    source_id: str
    identity: str = ""
    kind: str = "RecoveryServices"  # or "Backup"
    state: str = ""

    def to_record(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> ProtectionRef:
        return cls(**dict(record))


@dataclass(frozen=True)
class MoveMatch:
    old: ProtectionRef
    new_resource_id: str

    def to_record(self) -> dict[str, Any]:
        return {"old": self.old.to_record(), "new_resource_id": self.new_resource_id}

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> MoveMatch:
        return cls(ProtectionRef.from_record(record["old"]), str(record["new_resource_id"]))


def match_moved(
    orphans: Sequence[ProtectionRef], found: Iterable[Mapping[str, Any]]
) -> tuple[list[MoveMatch], list[ProtectionRef]]:
    """Pair protections whose source id vanished with the resource that now carries the same identity.

    ``found`` are resource facts records (``id``, ``identity``) from the scopes a move may have targeted.
    An identity seen twice is ambiguous and is not matched (a person must look). Returns the matches and
    the orphans still unmatched (moved out of reach, or deleted).
    """
    by_identity: dict[str, list[str]] = {}
    for facts in found:
        identity = str(facts.get("identity") or "").lower()
        if identity:
            by_identity.setdefault(identity, []).append(str(facts["id"]))
    matches: list[MoveMatch] = []
    unmatched: list[ProtectionRef] = []
    for orphan in orphans:
        candidates = by_identity.get(orphan.identity.lower(), []) if orphan.identity else []
        others = [c for c in candidates if ResourceId.parse(c) != ResourceId.parse(orphan.source_id)]
        if len(others) == 1:
            matches.append(MoveMatch(orphan, others[0]))
        else:
            unmatched.append(orphan)
    return matches, unmatched


def orphaned(protections: Iterable[ProtectionRef], existing_ids: Iterable[str]) -> list[ProtectionRef]:
    """Protections whose source resource id is not among ``existing_ids``."""
    existing = {ResourceId.parse(i).key for i in existing_ids}
    return [p for p in protections if ResourceId.parse(p.source_id).key not in existing]
