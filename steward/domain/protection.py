"""Protection outcomes and the pure decisions of the protect / gone / moved orchestrations.

Everything here is plain data in, plain data out: orchestrators call these functions with the facts
their activities gathered and walk the result.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Final

from steward.domain.kernel import VaultKind
from steward.domain.records import Record


class OutcomeStatus(StrEnum):
    PROTECTED = "Protected"  # protection enabled and verified by this run
    ALREADY_PROTECTED = "AlreadyProtected"  # already protected in the vault the rules choose
    RESUMED = "Resumed"  # its item in the vault the rules choose was stopped: protection resumed, same item
    CONFLICT = "Conflict"  # protected elsewhere; never moved or stolen
    OPTED_OUT = "OptedOut"  # the opt-out tag, or a rule that opts it out, says no
    COVERED_BY_VM = "CoveredByVm"  # a managed disk attached to a VM: the VM's backup covers it (no double backup)
    NO_MATCHING_RULE = "NoMatchingRule"  # no rule of the rules file covers it
    UNSUPPORTED = "Unsupported"  # not a type we protect
    NO_VAULT = "NoVault"  # no vault of the resource's region and subscription
    AMBIGUOUS_VAULT = "AmbiguousVault"  # several candidate vaults and none marked default
    FAILED = "Failed"  # Azure refused; the reason says why
    RESOURCE_GONE = "ResourceGone"  # the resource no longer exists; nothing to do
    RETAINED = "Retained"  # source deleted: protection stopped, recovery points kept
    LEFT_AS_IS = "LeftAsIs"  # left alone: the rule says so, the source exists again, or a person must act
    REPROTECTED = "Reprotected"  # moved: protected anew, the old item kept with its points
    VAULT_TENANT_CHANGED = "VaultTenantChanged"  # vault identity in another tenant: RBAC must be redone


#: The name an outcome had before issue 20 split ``OptedOut`` in three; published events carry it as
#: ``data.legacyStatus`` for one release, so subscribers filtering on the old name can move over.
LEGACY_STATUS: Final[Mapping[OutcomeStatus, str]] = {
    OutcomeStatus.OPTED_OUT: "OptedOut",
    OutcomeStatus.COVERED_BY_VM: "OptedOut",
    OutcomeStatus.NO_MATCHING_RULE: "OptedOut",
}

#: Outcomes that mean the resource ends in the intended state.
SUCCESSFUL: Final = frozenset(
    {OutcomeStatus.PROTECTED, OutcomeStatus.ALREADY_PROTECTED, OutcomeStatus.REPROTECTED, OutcomeStatus.RESUMED}
)


#: Version of the data of the published ``BackupSteward.Protection.*`` events (README: "Events").
#: 2.0: camelCase keys (``resourceId``, ``vaultId`` ...); 1.0 was snake_case (``resource_id``, ``vault_id`` ...).
OUTCOME_DATA_VERSION: Final = "2.0"


@dataclass(frozen=True)
class ProtectionOutcome(Record):
    """What one protection orchestration ended with: its output, and the data of the event it publishes
    (``to_record()``: camelCase keys, :data:`OUTCOME_DATA_VERSION`). Records in the 1.0 shape are still read."""

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
    previous_vault_id: str | None = None
    details: Mapping[str, Any] = field(default_factory=dict)

    @property
    def event_type(self) -> str:
        return f"BackupSteward.Protection.{self.status.value}"

    def event_data(self) -> dict[str, Any]:
        """The published event's ``data``: the record, plus ``legacyStatus`` where the name changed."""
        record = self.to_record()
        legacy = LEGACY_STATUS.get(self.status)
        if legacy is not None:
            record["legacyStatus"] = legacy
        return record

    def log_line(self) -> str:
        """``protection outcome <status>: <reason> (rule <rule>) <resource id>``: why, in the line itself."""
        return (f"protection outcome {self.status.value}: {self.reason or '-'} (rule {self.rule or 'none'}) "
                f"{self.resource_id}")

    def shown(self) -> ProtectionShown:
        """What the orchestration shows as its custom status once it has this outcome."""
        return ProtectionShown(status=self.status, vault=self.vault_id)


@dataclass(frozen=True)
class ProtectionShown(Record):
    """A protection orchestration's custom status: its outcome's status and the vault (null when none)."""

    status: OutcomeStatus
    vault: str | None = None


#: Azure's codes that mean "protected elsewhere" (docs/azure-facts.md, "Backup vault workloads") - a conflict,
#: not a failure.
CONFLICT_CODES: Final = frozenset(
    {
        "UserErrorDppDatasourceAlreadyProtected",
        "BMSUserErrorProtectableItemAlreadyProtected",
        "UserErrorBackupItemAlreadyProtected",
    }
)


@dataclass(frozen=True)
class ProtectionRef(Record):
    """A protection that exists: which item/instance in which vault protects which source id. Its record
    (``find_protections``' output, ``stop_protection_retain``'s input) has camelCase keys; the snake_case
    records written before are still read."""

    vault_id: str
    item_id: str
    source_id: str = field(metadata={"may_be_empty": True})  # ARM does not always name it
    identity: str = ""
    kind: VaultKind = VaultKind.RECOVERY_SERVICES
    state: str = ""
