"""The decisions the auto-protection orchestrations walk through, as pure functions over records.

The orchestrators in ``orchestrators/protection.py`` hand these functions the records their activities
returned (resource facts, vault lists, backup status, results) and act on what comes back.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, Final

from steward.domain import rules, workloads
from steward.domain.errors import SERVER_SIDE_CODES
from steward.domain.events import ProtectResource, ResourcesMoved
from steward.domain.ids import ResourceId
from steward.domain.kernel import aware_time
from steward.domain.protection import (
    CONFLICT_CODES,
    SUCCESSFUL,
    OutcomeStatus,
    ProtectionOutcome,
    ProtectionRef,
)
from steward.domain.protection_inputs import RoleGrant, VaultSearch, VaultToCreate
from steward.domain.protection_results import ResourceRecord, StewardScope, VaultRecord
from steward.domain.records import Record
from steward.domain.rules.vault_sets import (
    Member,
    SetChosen,
    SetReleaseAsked,
    SetReservation,
    SetReservationAsked,
    VaultLoad,
    app_created,
    capacity_refusal,
)
from steward.domain.rules.vault_sets import choose_in_set as choose_in_set_pure

#: An activity's result as its typed record or as the mapping a history holds (either key casing): each helper
#: reads it through the record (``Record.read``).
Facts = ResourceRecord | Mapping[str, Any]
Vault = VaultRecord | Mapping[str, Any]


@dataclass(frozen=True)
class _OriginRef(Record):
    correlation_id: str | None = None
    event_time: str | None = None


@dataclass(frozen=True)
class IntentRef(Record):
    """What these helpers read of an orchestration's input (the intent record as it was started): the resource and
    its origin's correlation id and event time. Lenient: a record without an origin reads (none)."""

    resource_id: str = ""
    origin: _OriginRef | None = None

    @property
    def correlation_id(self) -> str | None:
        return self.origin.correlation_id if self.origin else None

    @property
    def event_time(self) -> str:
        return (self.origin.event_time if self.origin else None) or ""


Intent = IntentRef | Mapping[str, Any]

__all__ = ["SUCCESSFUL"]

SUPPORTED_TYPES: Final = tuple(w.resource_type for w in workloads.WORKLOADS.values())


def decide(facts: Facts, rule_set: rules.RuleSet) -> rules.ProtectionDecision:
    """Route a resource (facts record from ``describe_resource``) through the rules."""
    read = ResourceRecord.read(facts)
    resource = rules.ResourceFacts(
        id=ResourceId.parse(read.id),
        location=read.location,
        tags=dict(read.tags),
        type=read.type,
        attached_to=read.managed_by,
    )
    return rules.route(resource, rule_set)


#: The outcome of each reason not to protect (issue 20 split the one ``OptedOut``).
_OPT_OUT_STATUS: Final = {
    rules.OptOutBasis.TAG: OutcomeStatus.OPTED_OUT,
    rules.OptOutBasis.RULE: OutcomeStatus.OPTED_OUT,
    rules.OptOutBasis.COVERED_BY_VM: OutcomeStatus.COVERED_BY_VM,
    rules.OptOutBasis.NO_RULE: OutcomeStatus.NO_MATCHING_RULE,
}


def not_protected_status(decision: rules.OptOut | rules.Unsupported) -> OutcomeStatus:
    """The outcome of a decision not to protect: ``OptedOut`` (the tag or a rule), ``CoveredByVm``,
    ``NoMatchingRule``, or ``Unsupported``. A decision recorded before the split (no basis) stays ``OptedOut``,
    so an orchestration replaying its history decides as it did."""
    if isinstance(decision, rules.Unsupported):
        return OutcomeStatus.UNSUPPORTED
    return OutcomeStatus.OPTED_OUT if decision.basis is None else _OPT_OUT_STATUS[decision.basis]


def vault_search(decision: rules.Protect) -> VaultSearch:
    """Where to look for candidate vaults: the kind, subscription and region the decision allows."""
    target = decision.vault
    if isinstance(target, rules.ExplicitVault):
        subscription = target.vault_id.subscription_id
    else:
        subscription = target.subscription_id
    return VaultSearch(kind=decision.vault_kind, subscription_id=subscription, region=target.region)


@dataclass(frozen=True)
class Choice:
    vault: Vault | None = None  # the candidate as it was given
    status: OutcomeStatus | None = None
    reason: str = ""


def choose(decision: rules.Protect, candidates: Sequence[Vault]) -> Choice:
    """Pick the vault among the ``find_vaults`` records (rules.choose_vault), keeping the vault's record."""
    vaults = [VaultRecord.read(c) for c in candidates]
    found = [rules.VaultCandidate(ResourceId.parse(v.id), v.location, dict(v.tags)) for v in vaults]
    choice = rules.choose_vault(decision, found)
    if isinstance(choice, rules.VaultChosen):
        record = next(c for c, v in zip(candidates, vaults, strict=True) if ResourceId.parse(v.id) == choice.vault_id)
        return Choice(vault=record, reason=choice.reason)
    if isinstance(choice, rules.AmbiguousVaults):
        return Choice(status=OutcomeStatus.AMBIGUOUS_VAULT, reason=choice.reason)
    return Choice(status=OutcomeStatus.NO_VAULT, reason=choice.reason)


# ---- vault sets (issue 19 item 1) ------------------------------------------------------------------------------

def set_member_records(decision: rules.Protect, candidates: Sequence[Vault]) -> list[VaultRecord]:
    """The ``find_vaults`` records of the decision's vault set (kind, region, subscription, prefix or tag), by id."""
    vaults = [VaultRecord.read(c) for c in candidates]
    found = [rules.VaultCandidate(ResourceId.parse(v.id), v.location, dict(v.tags)) for v in vaults]
    wanted = {c.id for c in rules.set_members(decision, found)}
    chosen = {ResourceId.parse(v.id): v for v in vaults if ResourceId.parse(v.id) in wanted}
    return [chosen[i] for i in sorted(chosen)]


def created_settings(decision: rules.Protect) -> dict[str, bool]:
    """What a vault the set creates must have for the rule's ``requiredVaultSettings``: AlwaysOn soft delete,
    immutability enabled (``Unlocked``: a lock is irreversible and stays a person's act; the audit's VLT-002 asks
    for it). Only the settings the rule requires are sent, so a rule without any creates the vault as before."""
    required = decision.required_settings
    made: dict[str, bool] = {}
    if required.soft_delete == "AlwaysOn":
        made["always_on"] = True
    if required.immutability is not None:
        made["immutable"] = True
    return made


def set_member_shortfalls(decision: rules.Protect, vault: VaultRecord) -> list[str]:
    """What a vault of the set lacks of the rule's ``requiredVaultSettings`` (soft delete, immutability): a tag or
    prefix may match a vault with soft delete off or immutability disabled, which the audit then flags (VLT-001/002)
    while protections keep landing in it. Such a member is left out of the choice like a member Azure refused as
    full (:func:`choose_in_set`): its name still counts when the set's next vault is named (found in review). A
    record that does not carry the states (written before they were read: a replay) is not judged. Cross-region
    restore is not judged here: a Recovery Services vault's flag is in its storage config, not in the vault read."""
    if vault.soft_delete is None:
        return []
    return decision.required_settings.shortfalls(vault.soft_delete, vault.immutability, True)


def set_member_protecting(
    decision: rules.Protect, members: Sequence[VaultRecord], status: Mapping[str, Any] | None
) -> Choice | None:
    """The member of the set ``backupStatus`` says already protects the VM: it stays there (a second write event must
    not find a Conflict with its own set, nor move it); None when no member does."""
    other = (status or {}).get("vaultId")
    if not other or str((status or {}).get("protectionStatus") or "") not in {"Protected", "Protecting"}:
        return None
    found = next((m for m in members if ResourceId.parse(m.id) == ResourceId.parse(str(other))), None)
    if found is None:
        return None
    return Choice(vault=found, reason=f"{vault_set_of(decision).described}: it is protected in {found.id} already")


def vault_set_of(decision: rules.Protect) -> rules.VaultSet:
    if not isinstance(decision.vault, rules.VaultSet):
        raise TypeError(f"rule {decision.rule!r} names no vault set")
    return decision.vault


@dataclass(frozen=True)
class SetStep:
    """What :func:`choose_in_set` found: a member (``vault``), or the next vault to create (``create``: the
    ``create_vault`` request) and what to use when that is not allowed (``fallback``), else nothing (``reason``)."""

    reason: str
    vault: VaultRecord | None = None
    create: VaultToCreate | None = None
    fallback: VaultRecord | None = None


def choose_in_set(
    decision: rules.Protect,
    members: Sequence[VaultRecord],
    loads: Sequence[Mapping[str, Any]],
    refused: Sequence[str] = (),
) -> SetStep:
    """The vault set's choice (``rules.vault_sets.choose_in_set``) over the set's ``find_vaults`` records and
    ``vault_loads`` records; ``refused``: vault ids Azure refused as full during this protection."""
    target = vault_set_of(decision)
    counted = {ResourceId.parse(str(r["id"])): VaultLoad(int(r.get("items") or 0), int(r.get("vms") or 0))
               for r in loads}
    by_id = {ResourceId.parse(m.id): m for m in members}
    short = {i: set_member_shortfalls(decision, m) for i, m in by_id.items()}
    short = {i: why for i, why in short.items() if why}
    choice = choose_in_set_pure(
        target,
        [Member(i, counted.get(i), dict(m.tags)) for i, m in by_id.items()],
        [*(ResourceId.parse(r) for r in refused), *short],
    )
    if isinstance(choice, SetChosen):
        return SetStep(choice.reason, vault=by_id[choice.vault_id])
    if short:
        left_out = "; ".join(f"{i.name}: {', '.join(why)}" for i, why in sorted(short.items()))
        choice = replace(choice, reason=f"{choice.reason} (left out for rule {decision.rule!r}'s required vault "
                                        f"settings: {left_out})")
    settings = created_settings(decision)
    create = VaultToCreate(kind=target.vault_kind, subscription_id=target.subscription_id, region=target.region,
                           resource_group=choice.create.resource_group, name=choice.create.name,
                           tags=dict(choice.create.tags), always_on=settings.get("always_on", False),
                           immutable=settings.get("immutable", False))
    fallback = by_id[choice.fallback] if choice.fallback is not None else None
    return SetStep(choice.reason, create=create, fallback=fallback)


def set_reservation_asked(
    decision: rules.Protect, members: Sequence[VaultRecord], resource_id: str, now: datetime,
    refused: Sequence[str] = (), *, fresh: bool, grow: bool = True,
) -> dict[str, Any]:
    """``reserve_in_set``'s request: the members, and those passed over (refused as full during this protection,
    or short of the rule's required settings, :func:`set_member_shortfalls`)."""
    short = [m.id for m in members if set_member_shortfalls(decision, m)]
    return SetReservationAsked(vault_set_of(decision), resource_id, now, tuple(m.id for m in members),
                               tuple(dict.fromkeys([*refused, *short])), fresh, grow).to_record()


def set_step(
    decision: rules.Protect, members: Sequence[VaultRecord], result: Mapping[str, Any] | Sequence[Mapping[str, Any]],
    refused: Sequence[str] = (),
) -> SetStep:
    """What ``reserve_in_set`` answered, as a :class:`SetStep`: the member reserved (``vault``), the fallback
    reserved past the threshold (``fallback``), or the next vault to create (``create``). LEGACY (one release): an
    orchestration in flight before the reservations holds ``vault_loads``'s list at this place of its history; it is
    chosen from as before (:func:`choose_in_set`)."""
    if not isinstance(result, Mapping):
        return choose_in_set(decision, members, list(result), refused)
    reserved = SetReservation.from_record(result)
    target = vault_set_of(decision)
    by_id = {ResourceId.parse(m.id): m for m in members}
    reason = reserved.reason
    if reserved.vault_id is not None and not reserved.fallback:
        return SetStep(reason, vault=by_id[ResourceId.parse(reserved.vault_id)])
    short = {ResourceId.parse(m.id): set_member_shortfalls(decision, m) for m in members}
    left_out = "; ".join(f"{i.name}: {', '.join(why)}" for i, why in sorted(short.items()) if why)
    if left_out:
        reason = f"{reason} (left out for rule {decision.rule!r}'s required vault settings: {left_out})"
    if reserved.vault_id is not None:
        return SetStep(reason, fallback=by_id[ResourceId.parse(reserved.vault_id)])
    settings = created_settings(decision)
    create = None if reserved.create is None else VaultToCreate(
        kind=target.vault_kind, subscription_id=target.subscription_id, region=target.region,
        resource_group=reserved.create.resource_group, name=reserved.create.name, tags=dict(reserved.create.tags),
        always_on=settings.get("always_on", False), immutable=settings.get("immutable", False))
    return SetStep(reason, create=create)


def set_release_asked(decision: rules.Protect, resource_id: str, vault_id: str) -> dict[str, Any]:
    """``release_in_set``'s request."""
    return SetReleaseAsked(vault_set_of(decision), resource_id, vault_id).to_record()


#: outcomes of a protection that landed in the vault it chose: its reservation stays until a listing shows it
LANDED: Final = frozenset({OutcomeStatus.PROTECTED, OutcomeStatus.ALREADY_PROTECTED, OutcomeStatus.RESUMED})


def releases(outcome: ProtectionOutcome, vault_id: str) -> bool:
    """Whether the protection's reservation on ``vault_id`` ends now: it did not land there (it failed, the VM is
    protected elsewhere, the resource is gone)."""
    landed = outcome.status in LANDED and (outcome.vault_id or "").lower() == vault_id.lower()
    return not landed


def vault_full(result: Mapping[str, Any] | None) -> bool:
    """Azure refused to protect into the vault because it is full: a ``begin_vm_protection`` refusal, or the state
    of its operation ending Failed, whose code names a vault limit (``vault_sets.capacity_refusal``)."""
    if not result or result.get("ok"):
        return False
    code = result.get("code") or (result.get("error") or {}).get("code")
    return capacity_refusal(str(code or ""))


#: ``begin_vm_protection``'s refusal when the vault lacks the policy (the app's own code after its policy GET) and
#: Azure's for a PUT naming a policy the vault lacks (inferred, as the sandbox answers it)
POLICY_MISSING_CODES: Final = frozenset({"PolicyNotFound", "UserErrorPolicyNotFound", "BMSUserErrorPolicyNotFound"})


def policy_missing(result: Mapping[str, Any] | None) -> bool:
    """``begin_vm_protection`` refused because the vault has no policy of the rule's name."""
    if not result or result.get("ok"):
        return False
    return str(result.get("code") or "") in POLICY_MISSING_CODES


def policy_sources(decision: rules.Protect, vault: VaultRecord, members: Sequence[VaultRecord]) -> list[str]:
    """The vault set's members the rule's policy may be copied from when ``vault`` lacks it (``copy_policy``, issue
    19): only into a vault the app created for the set (its tag: a new vault holds only Azure's default policies),
    never into one a person made, and never from the vault itself. Empty outside vault sets."""
    if not isinstance(decision.vault, rules.VaultSet) or not app_created(vault.tags):
        return []
    return [m.id for m in members if m.id.lower() != vault.id.lower()]


def policy_copy_failed(result: Mapping[str, Any]) -> str:
    """The reason a protection fails when the rule's policy could not be copied into the set's new vault."""
    return f"the vault lacks the policy and copying it from the vault set failed: {result.get('code')}: " \
        f"{result.get('message')}"


def set_spill_reason(step: SetStep, made: Mapping[str, Any] | None) -> str:
    """Why the vault chosen after :class:`SetStep` asked for a new vault is the one it is (or none is)."""
    if made is not None and made.get("ok") and not made.get("existed"):
        return f"{step.reason}: created its next vault {made['vault']['id']}"
    if made is not None and made.get("ok"):
        made = None  # it existed, and was counted like the others
    refused = "" if made is None else f" (creating {step.create and step.create.name} was not done: " \
        f"{made.get('code')}: {made.get('message')})"
    if step.fallback is not None:
        return f"{step.reason}{refused}; {step.fallback.id} still has room below Azure's limit"
    return f"{step.reason}{refused}; the set is full"


@dataclass(frozen=True)
class Verdict:
    status: OutcomeStatus
    reason: str


def vm_precheck(status: Mapping[str, Any], vault_id: str) -> Verdict | None:
    """From ``backupStatus``: stop before enabling when the VM is protected (here or elsewhere)."""
    state = str(status.get("protectionStatus") or "")
    other = status.get("vaultId")
    if state not in {"Protected", "Protecting"} or not other:
        return None
    if ResourceId.parse(str(other)) == ResourceId.parse(vault_id):
        return Verdict(OutcomeStatus.ALREADY_PROTECTED, f"already protected in {other}")
    return Verdict(
        OutcomeStatus.CONFLICT,
        f"already protected in vault {other}; a VM can belong to one vault only and is never moved by us",
    )


#: Azure's VM protection operation takes about a minute; the item is polled on durable timers until then.
VM_ITEM_POLL_SECONDS: Final = 30
VM_ITEM_POLL_ATTEMPTS: Final = 40  # 20 minutes of Azure time before the outcome is Failed
#: the wait Azure's ``Retry-After`` may set between looks at the operation, bounded
VM_POLL_BOUNDS: Final = (5, 300)


def vm_poll_plan(retry_after: object) -> tuple[int, int]:
    """(seconds between looks, looks) at the VM protection operation: the ``Retry-After`` Azure sent when it sent
    one (bounded by VM_POLL_BOUNDS), else VM_ITEM_POLL_SECONDS; as many looks as fit the same 20 minutes."""
    seconds = VM_ITEM_POLL_SECONDS
    if isinstance(retry_after, int | float) and not isinstance(retry_after, bool) and retry_after > 0:
        seconds = int(min(max(retry_after, VM_POLL_BOUNDS[0]), VM_POLL_BOUNDS[1]))
    window = VM_ITEM_POLL_SECONDS * VM_ITEM_POLL_ATTEMPTS
    return seconds, max(1, -(-window // seconds))


def item_protecting(item: Mapping[str, Any] | None) -> bool:
    """A protected item that is protecting: being configured (``IRPending``) or protected."""
    if not item:
        return False
    props = item.get("properties") or {}
    if props.get("isScheduledForDeferredDelete"):
        return False
    return str(props.get("protectionState") or "") in {"IRPending", "Protected"}


#: ``protect_in_backup_vault``'s answer for a storage account under vaulted blob backup that holds no container
#: it may list yet: Azure refuses a vaulted blob backup instance without one
#: ("(UserErrorNoContainersSelectedForOperation) No containers selected for operation",
#: Azure/azure-cli-extensions#7499), so nothing is sent; the account's first container's event protects it
#: (``add_blob_containers``).
NO_CONTAINERS_YET: Final = "NoContainersYet"
NO_CONTAINERS_REASON: Final = (
    "the storage account holds no blob container to back up yet and Azure refuses a vaulted blob backup without "
    "one (UserErrorNoContainersSelectedForOperation): its first container's event protects it"
)
#: ``begin_vm_protection``'s refusal when the VM's only item is soft-deleted: no PUT, a person undeletes it.
ITEM_SOFT_DELETED: Final = "ItemSoftDeleted"
SOFT_DELETED_REASON: Final = (
    "its backup item in {vault} is soft-deleted: a person must undelete it and resume protection (a new "
    "protection would start a second chain beside the recoverable one); nothing was done"
)


def item_soft_deleted(item: Mapping[str, Any] | None) -> bool:
    return bool(item) and bool((item or {}).get("properties", {}).get("isScheduledForDeferredDelete"))


def already_protected_item(item: Mapping[str, Any] | None, verdict: Verdict, vault_id: str) -> Verdict | None:
    """``backupStatus`` named this vault; the item itself decides (re-created VM, D-incarnation).

    A stopped item (``ProtectionStopped``: the VM was deleted and its protection stopped, keeping its points;
    now a VM of the same id exists again) is not protection: None, so the caller re-PUTs the item with the
    rule's policy - Azure's "resume protection" (the CLI's ``az backup protection resume``). A soft-deleted
    item needs a person (LeftAsIs, nothing done). Anything else stays ``verdict`` (AlreadyProtected).
    """
    if item_soft_deleted(item):
        return Verdict(OutcomeStatus.LEFT_AS_IS, SOFT_DELETED_REASON.format(vault=vault_id))
    state = str(((item or {}).get("properties") or {}).get("protectionState") or "")
    if state == "ProtectionStopped":
        return None
    return verdict


def resumed(outcome: ProtectionOutcome) -> ProtectionOutcome:
    """The outcome of re-PUTting a stopped item: ``Resumed`` when it ended protected (same item, its points)."""
    if outcome.status is not OutcomeStatus.PROTECTED:
        return outcome
    return replace(outcome, status=OutcomeStatus.RESUMED,
                   reason="its stopped item was resumed with the rule's policy; earlier recovery points stay in it")


#: An operation that ended Failed with a SERVER_SIDE_CODES code failed on Azure's side: it starts again this
#: many times at most.
VM_PROTECTION_STARTS: Final = 3
#: ARM's three terminal statuses of an operation, by their lower-case spelling. Any other value is the provider's
#: word for "still running": ``"status": "Succeeded | Failed | Canceled | {resource provider values}"``, "All other
#: values indicate the operation is still running" (MicrosoftDocs/azure-docs
#: ``azure-resource-manager/management/async-operations.md``). Compared without case: Microsoft.DataProtection
#: answers ``"status": "Inprogress"`` while validateForBackup runs (``backup/backup-azure-dataprotection-use-rest-api-
#: backup-disks.md``, its captured answer; Az.DataProtection's ``Get-AzDataProtectionOperationStatus`` example loops
#: ``while ... .Status -eq "Inprogress"``). Found in review: a closed list of running words read it as the end.
OPERATION_ENDED: Final = {"succeeded": "Succeeded", "failed": "Failed", "canceled": "Canceled", "cancelled": "Canceled"}


def operation_status(status: object) -> str:
    """An operation's status with a terminal value in ARM's spelling (``succeeded`` -> ``Succeeded``); any other
    value as Azure wrote it."""
    text = str(status or "").strip()
    return OPERATION_ENDED.get(text.lower(), text)


def operation_running(status: object) -> bool:
    """Whether an operation with this status has not ended: it is none of ARM's terminal values (any case)."""
    return str(status or "").strip().lower() not in OPERATION_ENDED


def retry_operation(state: Mapping[str, Any]) -> bool:
    """Azure's protection operation failed on its own side (not a refusal): worth starting again."""
    return operation_status(state.get("status")) == "Failed" and str((state.get("error") or {}).get("code") or "") in (
        SERVER_SIDE_CODES
    )


def vm_operation_verdict(
    intent: Intent, state: Mapping[str, Any], common: Mapping[str, Any]
) -> ProtectionOutcome | None:
    """The outcome once Azure's protection operation ended (None while it runs): verified only when the
    operation succeeded AND the item reads back protecting."""
    status = operation_status(state.get("status"))
    if operation_running(status):
        return None
    if status == "Succeeded":
        item = state.get("item")
        if item_protecting(item):
            return outcome_of_enable(intent, {"ok": True, "item": item, "created": True}, common)
        return outcome_of_enable(
            intent, {"ok": False, "code": "ItemNotProtecting",
                     "message": "the operation succeeded but the item does not read back as protecting"}, common,
        )
    error = state.get("error") or {}
    return outcome_of_enable(
        intent, {"ok": False, "code": error.get("code") or status, "message": error.get("message") or status}, common
    )


def outcome_of_enable(
    intent: Intent, result: Mapping[str, Any], common: Mapping[str, Any]
) -> ProtectionOutcome:
    """The outcome of an enable/create activity result (``{"ok": ...}``)."""
    given = IntentRef.read(intent)
    base: dict[str, Any] = {
        "resource_id": given.resource_id,
        "correlation_id": given.correlation_id,
        "vault_id": common.get("vault_id"),
        "policy": common.get("policy"),
        "rule": common.get("rule"),
    }
    if result.get("ok"):
        item = result.get("item") or result.get("instance") or {}
        created = result.get("created", True)
        status = OutcomeStatus.PROTECTED if created else OutcomeStatus.ALREADY_PROTECTED
        return ProtectionOutcome(status=status, item_id=item.get("id"), **base)
    code = str(result.get("code") or "")
    if code in (ITEM_SOFT_DELETED, NO_CONTAINERS_YET):
        return ProtectionOutcome(status=OutcomeStatus.LEFT_AS_IS, reason=str(result.get("message")), **base)
    status = OutcomeStatus.CONFLICT if code in CONFLICT_CODES else OutcomeStatus.FAILED
    return ProtectionOutcome(status=status, reason=f"{code}: {result.get('message')}", **base)


# ---- readiness: a write event can come before the resource is ready (issue #13 item 1) --------------------------

#: A resource still being provisioned is looked at again on durable timers, this often and this long.
READY_POLL_SECONDS: Final = 60
READY_POLL_ATTEMPTS: Final = 60  # one hour of Azure time, then the outcome is Failed
#: provisioningState values that end a create or update badly (virtual-machines/states-billing.md; ARM's RPC)
PROVISIONING_FAILED: Final = frozenset({"failed", "canceled"})


@dataclass(frozen=True)
class Readiness:
    ready: bool = False
    wait: bool = False
    verdict: Verdict | None = None


def readiness(facts: Facts) -> Readiness:
    """From ``describe_resource``'s facts: protect now, wait (still Creating / Updating / ...), or never (its create
    failed). A resource that shows no provisioningState is ready (a PostgreSQL flexible server reports ``state``)."""
    state = ResourceRecord.read(facts).provisioning_state
    if not state or state.lower() == "succeeded":
        return Readiness(ready=True)
    if state.lower() in PROVISIONING_FAILED:
        return Readiness(verdict=Verdict(
            OutcomeStatus.FAILED,
            f"the resource is in provisioningState {state} (its create or last update failed): not protected; "
            "a new write event once it is repaired brings it back here",
        ))
    return Readiness(wait=True)


def not_ready_in_time(facts: Facts) -> Verdict:
    minutes = READY_POLL_SECONDS * READY_POLL_ATTEMPTS // 60
    state = ResourceRecord.read(facts).provisioning_state
    return Verdict(
        OutcomeStatus.FAILED,
        f"the resource stayed in provisioningState {state} for {minutes} minutes: "
        "not protected yet; its next write event brings it back here",
    )


# ---- VM discovery: a refusal that names a VM the vault does not know yet (issue #13 item 1) ------------------

#: Azure's refusals of a protected-item PUT that can mean "the vault has not discovered this VM yet":
#: ``BMSUserErrorInvalidConfigureProtectionRequest`` "Please ensure that container exists" (observed,
#: hashicorp/terraform-provider-azurerm#2143); ``BMSUserErrorDataSourceObjectNotFound`` "Please check if item is
#: registered to the vault" (observed, Azure/azure-cli#23364); ``BMSUserErrorDatasourceNotFound`` (the sandbox's
#: inferred code). Which one Azure answers for an undiscovered VM is not published: on any of them the VM's
#: containers are refreshed (as the CLI's ``_get_protectable_item_for_vm`` does) and the PUT retried.
UNDISCOVERED_CODES: Final = frozenset(
    {
        "bmsusererrorinvalidconfigureprotectionrequest",
        "bmsusererrordatasourceobjectnotfound",
        "bmsusererrordatasourcenotfound",
    }
)
#: container refreshes before the outcome is Failed, and the durable wait before each further refresh
VM_DISCOVERY_REFRESHES: Final = 3
VM_DISCOVERY_BACKOFF_SECONDS: Final = (0, 120, 600)
#: a container refresh (an async operation) is followed on durable timers, this often and this long
REFRESH_POLL_SECONDS: Final = 15
REFRESH_POLL_ATTEMPTS: Final = 40  # 10 minutes


def undiscovered(result: Mapping[str, Any]) -> bool:
    """A refusal of the VM's protected-item PUT that may only mean the vault has not discovered the VM yet."""
    return not result.get("ok") and str(result.get("code") or "").lower() in UNDISCOVERED_CODES


def discovery_wait(refreshes: int) -> int | None:
    """Seconds to wait (durable timer) before refresh number ``refreshes`` + 1; None once the bound is reached."""
    if refreshes >= VM_DISCOVERY_REFRESHES:
        return None
    return VM_DISCOVERY_BACKOFF_SECONDS[min(refreshes, len(VM_DISCOVERY_BACKOFF_SECONDS) - 1)]


def discovery_failed(step: str, result: Mapping[str, Any] | None, refreshes: int) -> str:
    """The outcome reason when VM discovery did not help: which step failed, and Azure's words."""
    said = "" if not result else f" ({result.get('code')}: {result.get('message')})"
    if step == "put":
        return (f"Azure still refused to protect the VM after {refreshes} refresh(es) of the vault's containers"
                f"{said}; the vault has not discovered the VM")
    if step == "refresh-refused":
        return f"refreshing the vault's containers to discover the VM was refused{said}"
    if step == "refresh-failed":
        return f"the vault's container refresh (VM discovery) failed{said}"
    minutes = REFRESH_POLL_SECONDS * REFRESH_POLL_ATTEMPTS // 60
    return f"the vault's container refresh (VM discovery) did not finish within {minutes} minutes"


# ---- RBAC propagation: new role assignments take minutes to apply (issue #13 item 2) ---------------------------

#: Azure RBAC: "role assignment changes ... can take up to 10 minutes to take effect" (MicrosoftDocs/azure-docs
#: articles/role-based-access-control/troubleshooting.md; older revisions and Microsoft Q&A say up to 30).
#: Validation and creation are retried on durable timers with this backoff until this deadline.
RBAC_PENDING_CODES: Final = frozenset({"usererrormissingrequiredpermissions"})
RBAC_DEADLINE_SECONDS: Final = 30 * 60
RBAC_BACKOFF_SECONDS: Final = (30, 60, 120, 240)
#: the documented propagation bound: still refused after this long, the roles are granted again (a role the app
#: granted may have been removed meanwhile, and the worker's cache of granted roles would not know it)
RBAC_REGRANT_SECONDS: Final = 10 * 60


def rbac_regrant(waited_before: float, waited: float) -> bool:
    """Whether the wait just crossed ``RBAC_REGRANT_SECONDS``: grant the roles again, bypassing the cache."""
    return waited_before < RBAC_REGRANT_SECONDS <= waited


def awaiting_rbac(result: Mapping[str, Any]) -> bool:
    """A refusal that new role assignments, once propagated, will lift."""
    return not result.get("ok") and str(result.get("code") or "").lower() in RBAC_PENDING_CODES


def rbac_wait(attempt: int, waited: float) -> int | None:
    """Seconds to wait (durable timer) before validate/create attempt ``attempt`` + 2, having waited ``waited``
    seconds so far; None when the deadline would pass."""
    wait = RBAC_BACKOFF_SECONDS[min(attempt, len(RBAC_BACKOFF_SECONDS) - 1)]
    if waited + wait > RBAC_DEADLINE_SECONDS:
        return None
    return wait


#: while one protection of the worker finds out how long new role assignments take to apply (the probe), the
#: others whose grants created roles look this often whether it did (an activity, no Azure request)
RBAC_PROBE_POLL_SECONDS: Final = 30


def rbac_settle_seconds(granted: Mapping[str, Any]) -> int | None:
    """Seconds to wait (durable timer) between granting roles and the first validation: when this grant created
    a role assignment, what the worker last saw new assignments take to apply (``grant_vault_roles``'s
    ``settle_seconds``, noted through :func:`rbac_note`), at most ``RBAC_REGRANT_SECONDS``; None: not known, or
    nothing to wait for (nothing created, or the roles applied at once).

    Why (issue 15): a validation sent before the roles apply is refused and costs a POST from ARM's write bucket;
    in a burst of Backup-vault resources those POSTs (two per resource at the sandbox's 3-minute propagation) set
    the rate. Waiting what the last protection needed sends the first validation when it is likely to pass, at
    the same latency. (Microsoft's ``Set-AzDataProtectionMSIPermission`` waits a fixed 60 s after assigning the
    vault's roles: "Waiting for 60 seconds for roles to propagate", Azure/azure-powershell
    ``src/DataProtection/help/Set-AzDataProtectionMSIPermission.md``.)"""
    seconds = granted.get("settle_seconds")
    if not granted.get("created") or not seconds:
        return None
    return min(max(1, int(seconds)), RBAC_REGRANT_SECONDS)


def rbac_awaits_probe(granted: Mapping[str, Any]) -> bool:
    """This grant created roles, the worker does not know how long they take to apply, and another protection is
    finding out (``probe`` false): look every ``RBAC_PROBE_POLL_SECONDS`` (``rbac_settle_state``) instead of sending
    validations Azure would refuse. ``probe`` is absent from the results of the code before."""
    return bool(granted.get("created")) and granted.get("settle_seconds") is None and granted.get("probe") is False


def rbac_after_poll(state: Mapping[str, Any], elapsed: float) -> float | None:
    """After a look at the worker's ``rbac_settle_state``, ``elapsed`` seconds after the grant: the seconds still
    to wait before validating (0: validate now), or None: look again. Validates at once when nobody is finding out
    any more without a time (the probe failed, or ran on another worker), or when the wait reached the documented
    bound."""
    seconds = state.get("settle_seconds")
    if seconds is not None:
        return max(0.0, min(float(seconds), RBAC_REGRANT_SECONDS) - elapsed)
    if not state.get("probing") or elapsed + RBAC_PROBE_POLL_SECONDS > RBAC_REGRANT_SECONDS:
        return 0.0
    return None


def rbac_note(granted: Mapping[str, Any], refused: int, accepted_after: float | None,
              polled: float | None = None) -> dict[str, Any] | None:
    """What ``note_rbac_settle`` is told once the resource was validated (None: no call): the time from the grant
    to the validation that passed (``accepted_after``; None: none passed), when the grant created a role and
    this protection was the probe (always: it ends the probe, with or without a time) or was refused at least
    once (the roles' delay was seen); the time it waited for, when it learned it from a look (``polled``) and
    passed at once (the worker that answered the look may not be the one the next grant runs on: this spreads
    it). None for a grant result of the code before (no ``settle_seconds``: its history has no such call)."""
    if "settle_seconds" not in granted or not granted.get("created"):
        return None
    seen = None if accepted_after is None else min(max(0, math.ceil(accepted_after)), RBAC_REGRANT_SECONDS)
    if granted.get("probe"):
        return {"seconds": seen}
    if refused >= 1 and seen is not None:
        return {"seconds": seen}
    if polled is not None and seen is not None:
        return {"seconds": min(max(0, math.ceil(polled)), RBAC_REGRANT_SECONDS)}
    return None


def rbac_fresh(granted: Mapping[str, Any], granted_at: datetime) -> tuple[dict[str, Any], datetime]:
    """The grant as :func:`rbac_settle_seconds`, :func:`rbac_awaits_probe` and :func:`rbac_note` read it, and the
    time the roles' wait counts from, given ``granted_at`` (the orchestration's time after ``grant_vault_roles``).

    ``grant_vault_roles`` answers ``created_on``, when the newest of the assignments was made (issue 15: a
    ``roleScope`` of ``resourceGroup`` or ``subscription`` shares one assignment among many protections). An
    assignment younger than the documented propagation bound (``RBAC_REGRANT_SECONDS``) may still be propagating
    whoever made it: the protection waits for it as for its own, from its ``createdOn`` (``created`` is marked so
    even when this grant sent no PUT: another protection of the worker made it). One older than the bound has
    applied: nothing to wait for, even when this grant re-PUT it. A result without ``created_on`` (the code before,
    or an assignment made under another name) is read as before: from ``granted_at``, when the grant PUT roles."""
    if "created_on" not in granted:
        return dict(granted), granted_at
    made = aware_time(granted.get("created_on"))
    if made is None:
        return dict(granted), granted_at
    at = granted_at if granted_at.tzinfo is not None else granted_at.replace(tzinfo=UTC)
    made = min(made.astimezone(UTC), at.astimezone(UTC))
    if (at - made).total_seconds() >= RBAC_REGRANT_SECONDS:
        return {**granted, "created": [], "probe": False}, granted_at
    since = made if granted_at.tzinfo is not None else made.replace(tzinfo=None)  # as the orchestration's clock
    return {**granted, "created": list(granted.get("created") or []) or ["shared"]}, since


#: the code Azure refuses a role assignment with past the subscription's limit
#: (``workloads.ROLE_ASSIGNMENTS_PER_SUBSCRIPTION``), lower-cased
ROLE_ASSIGNMENT_LIMIT_CODE: Final = "roleassignmentlimitexceeded"


def role_grant_refused(granted: Mapping[str, Any], decision: rules.Protect, facts: Facts) -> tuple[str, dict[str, Any]]:
    """The reason (and details) of a protection whose role assignment Azure refused. Past the subscription's limit
    no retry helps: the reason names the limit and the fix - a wider ``roleScope`` on the rule (one assignment
    shared by every resource of the group, or of the subscription) or assignments freed. Nothing was protected:
    the grant comes before any validation or backup instance. The roles the grant PUT before the refusal
    (``created``) stay and are named (``kept``): review finding 5."""
    message = str(granted.get("message") or "")
    kept = [str(role) for role in granted.get("created") or []]
    left = (f" The role assignment(s) this grant PUT before the refusal stay ({', '.join(kept)}): Azure answers a "
            "new one and a repeat alike, so one other protections rely on cannot be told apart; none is deleted on "
            "a guess." if kept else "")
    if str(granted.get("code") or "").lower() != ROLE_ASSIGNMENT_LIMIT_CODE:
        return f"role assignment refused: {message}{left}", {"kept": kept} if kept else {}
    subscription = ResourceId.parse(ResourceRecord.read(facts).id).subscription_id
    scope = decision.role_scope
    wider = {workloads.PermissionsScope.RESOURCE: workloads.PermissionsScope.RESOURCE_GROUP,
             workloads.PermissionsScope.RESOURCE_GROUP: workloads.PermissionsScope.SUBSCRIPTION}.get(scope)
    # a wider scope is refused at load unless the rule names its vault by id (review finding 2)
    pin = "" if isinstance(decision.vault, rules.ExplicitVault) else " with its vault named by id (vault: {id, region})"
    fix = (f"set protect.roleScope: {wider.value} on rule {decision.rule!r}{pin} (one assignment per "
           f"{'resource group' if wider is workloads.PermissionsScope.RESOURCE_GROUP else 'subscription'}, shared "
           "by its resources), or free role assignments in the subscription" if wider is not None
           else "free role assignments in the subscription (e.g. assign roles to groups rather than to each principal)")
    limit = workloads.ROLE_ASSIGNMENTS_PER_SUBSCRIPTION
    reason = (f"role assignment refused (RoleAssignmentLimitExceeded): subscription {subscription} holds Azure's "
              f"maximum of {limit:,} role assignments (at the subscription, its resource "
              f"groups and resources; the limit cannot be raised), and rule {decision.rule!r} assigns the Backup "
              f"vault's roles per {scope.value}: {fix}. Nothing was protected; not retried.{left} Azure: {message}")
    details: dict[str, Any] = {"code": "RoleAssignmentLimitExceeded", "subscription": subscription,
                               "roleScope": scope.value}
    return reason, {**details, "kept": kept} if kept else details


#: the key under which a configuration's result carries the refused regrant (``regrant_refused``)
_REGRANT_REFUSED: Final = "grant_refused"


def regrant_refused(granted: Mapping[str, Any]) -> dict[str, Any]:
    """The result of a configuration whose regrant (the roles granted again past the documented propagation bound)
    Azure refused: a refusal carrying the grant's answer, ended as a refused first grant is (:func:`grant_refusal`,
    :func:`role_grant_refused`) - at the limit waiting on for the roles helps nothing (review finding 6)."""
    return {"ok": False, "code": str(granted.get("code") or ""), "message": str(granted.get("message") or ""),
            _REGRANT_REFUSED: dict(granted)}


def grant_refusal(result: Mapping[str, Any]) -> dict[str, Any] | None:
    """The refused grant a configuration's result carries (:func:`regrant_refused`), or None."""
    found = result.get(_REGRANT_REFUSED)
    return dict(found) if isinstance(found, Mapping) and not result.get("ok") else None


def rbac_gave_up(result: Mapping[str, Any], waited: float) -> dict[str, Any]:
    """The refusal, with the reason that the wait for RBAC propagation ran out."""
    minutes = int(waited // 60)
    return {
        **result,
        "message": f"{result.get('message')} - still refused after waiting {minutes} minutes for the Backup vault "
        "identity's new role assignments to take effect (Azure RBAC documents up to 10 minutes)",
    }


# ---- Backup vault instances whose configuration failed ----------------------------------------------------------

#: A backup instance in one of these states protects nothing until it is configured again:
#: ``ConfiguringProtectionFailed`` (``protectionStatus.status`` Status enum and ``currentProtectionState``
#: CurrentProtectionState enum of the S-DP spec, azure-mgmt-dataprotection ``models.Status`` /
#: ``models.CurrentProtectionState``) and ``ProtectionError`` (CurrentProtectionState; Microsoft's Azure Service
#: Operator reads it from ``protectionStatus.status`` too, ``backup_vaults_backup_instance_extensions.go``).
#: Lower-cased: the enums are case-insensitive.
INSTANCE_FAILED_STATES: Final = frozenset({"configuringprotectionfailed", "protectionerror"})
#: the activity's refusal code when the instance it configured reads back failed
CONFIGURATION_FAILED: Final = "BackupInstanceConfigurationFailed"
#: configurations of one instance (the first PUT and the re-PUTs of a failed one) before the outcome is Failed
BV_CONFIGURE_ATTEMPTS: Final = 3
#: the durable wait before configuring a failed instance again
BV_RECONFIGURE_SECONDS: Final = 60
#: how a failed instance is configured again: Azure's sync (``POST .../sync``, syncType Default), or a re-PUT
REMEDY_SYNC: Final = "sync"
REMEDY_PUT: Final = "PUT again"


def remedy_for(failure: Mapping[str, Any]) -> str:
    """How to configure a failed backup instance again.

    ``ProtectionError`` with a user error (``UserError...``): Azure's sync, "Sync backup instance again in case of
    failure. This action will retry last failed operation and will bring backup instance to valid state"
    (``BackupInstances_SyncBackupInstance``, the 2025-07-01 spec), with syncType ``Default`` ("sync only in case
    of failure"), exactly what Microsoft's Azure Service Operator does for that state and code
    (``backup_vaults_backup_instance_extensions.go``). The same operator treats ``ConfiguringProtectionFailed`` as
    terminal ("confirmed by the dataprotection team") and syncs nothing else, so for every other failure the app
    keeps its re-PUT (validated, then PUT: **inferred**, docs/azure-facts.md)."""
    state = str(failure.get("state") or "").lower()
    code = str(failure.get("code") or "").lower()
    return REMEDY_SYNC if state == "protectionerror" and "usererror" in code else REMEDY_PUT


def instance_failure(instance: Mapping[str, Any] | None) -> dict[str, str] | None:
    """``{"state", "code", "message"}`` when a backup instance is in a failed state (it protects nothing), else
    None. The state is ``protectionStatus.status`` or ``currentProtectionState``, whichever names a failure; the
    error is ``protectionStatus.errorDetails`` or ``protectionErrorDetails``."""
    if not instance:
        return None
    props = instance.get("properties") or {}
    status = props.get("protectionStatus") or {}
    states = (str(status.get("status") or ""), str(props.get("currentProtectionState") or ""))
    state = next((s for s in states if s.lower() in INSTANCE_FAILED_STATES), None)
    if state is None:
        return None
    error = status.get("errorDetails") or props.get("protectionErrorDetails") or {}
    return {"state": state, "code": str(error.get("code") or ""), "message": str(error.get("message") or "")}


def configuration_failed(result: Mapping[str, Any]) -> bool:
    """``protect_in_backup_vault`` configured the instance and it reads back failed."""
    return not result.get("ok") and str(result.get("code") or "") == CONFIGURATION_FAILED


def failure_text(failure: Mapping[str, Any]) -> str:
    said = f" ({failure.get('code')}: {failure.get('message')})" if failure.get("code") else ""
    return f"{failure.get('state')}{said}"


def reconfigured(outcome: ProtectionOutcome, repaired: Sequence[Mapping[str, Any]],
                 remedies: Sequence[str] = ()) -> ProtectionOutcome:
    """The outcome once failed configurations were configured again: says what failed, how often and how
    (``remedies``: what ``protect_in_backup_vault`` did each time it configured a failed instance again, its
    result's ``remedy``; absent: validated and PUT again). Azure's syncs are listed in ``details.remedies``."""
    if not repaired:
        return outcome
    seen = "; ".join(failure_text(f) for f in repaired)
    details = {**outcome.details, "reconfigured": [dict(f) for f in repaired]}
    synced = sum(1 for r in remedies if r == REMEDY_SYNC)
    if synced:
        details["remedies"] = list(remedies)
    how = ("validated and PUT again" if not synced
           else "synced by Azure (POST .../sync)" if synced == len(repaired)
           else "synced by Azure (POST .../sync) or validated and PUT again")
    if outcome.status in SUCCESSFUL:
        return replace(outcome, status=OutcomeStatus.PROTECTED, details=details,
                       reason=f"its backup instance was in a failed state ({seen}); {how} "
                       f"{len(repaired)} time(s): now protected")
    return replace(outcome, details=details,
                   reason=f"{outcome.reason} - after {len(repaired)} failed configuration(s) of its backup instance "
                   f"({seen}), {how} each time, at most {BV_CONFIGURE_ATTEMPTS} configurations")


def role_scopes(decision: rules.Protect, resource_id: ResourceId) -> list[tuple[workloads.RoleRequirement, str]]:
    """Each role the Backup vault's identity needs for this resource and the scope it is assigned at, under the
    rule's ``roleScope`` (``decision.role_scope``). ``resource`` (default): least privilege, each role on the
    narrowest scope the workload names. ``resourceGroup``: a role on the resource goes to its resource group (the
    group and snapshot group roles stay where they are). ``subscription``: the roles on the resource or its group
    go to the resource's subscription; Disk Snapshot Contributor stays on the snapshot resource group.

    As ``Set-AzDataProtectionMSIPermission -PermissionsScope`` assigns them (Azure/azure-powershell
    ``custom/Cmdlets/Platform/Vault/Set-AzDataProtectionMSIPermission.ps1``: datasource roles at the resource, its
    group or its subscription; snapshot group roles at the snapshot group, or the subscription), with one
    deliberate deviation (review finding 1): under ``Subscription`` the script puts the snapshot group's role on
    the subscription too, and Disk Snapshot Contributor grants ``Microsoft.Storage/storageAccounts/listkeys/action``,
    ``/write`` and ``/delete`` besides snapshots (built-in-roles/compute.md): on the subscription the vault identity
    could read the keys of, rewrite or delete every storage account there. Kept on the snapshot group it costs one
    assignment per snapshot group, not per disk (README "Role assignments", docs/azure-facts.md)."""
    workload = workloads.workload_for(decision.resource_type)
    if workload is None:
        raise ValueError(f"no workload for {decision.resource_type}")
    snapshot_group = str(decision.datastore.snapshot_resource_group or resource_id.resource_group_id)
    chosen = decision.role_scope
    group = str(resource_id.resource_group_id)
    if chosen is workloads.PermissionsScope.SUBSCRIPTION:
        group = f"/subscriptions/{resource_id.subscription_id}"
    scopes = {
        workloads.RoleScope.RESOURCE: str(resource_id) if chosen is workloads.PermissionsScope.RESOURCE else group,
        workloads.RoleScope.RESOURCE_GROUP: group,
        workloads.RoleScope.SNAPSHOT_RESOURCE_GROUP: snapshot_group,  # at every roleScope (see above)
    }
    return [(r, scopes[r.scope]) for r in workload.roles]


def role_grants(decision: rules.Protect, facts: Facts, vault: Vault) -> list[RoleGrant]:
    """The role assignments the Backup vault's identity needs for this resource (:func:`role_scopes`)."""
    rid = ResourceId.parse(ResourceRecord.read(facts).id)
    scoped = role_scopes(decision, rid)
    identity = VaultRecord.read(vault)
    if not identity.principal_id:
        raise ValueError(f"the Backup vault {identity.id} has no managed identity")
    return [RoleGrant(role=r.role_name, role_definition_guid=r.role_definition_guid, scope=scope)
            for r, scope in scoped]


def lists_account_containers(decision: rules.ProtectionDecision) -> bool:
    """Vaulted blob backup under a rule that names no containers: "every container found at protect time"
    (``DatastoreOptions.blob_containers``), so the account's containers must be listed before the PUT."""
    return (isinstance(decision, rules.Protect) and workloads.workload_for(decision.resource_type) is workloads.BLOB
            and decision.datastore.blob_tier is rules.BlobTier.VAULTED and not decision.datastore.blob_containers)


def backup_instance_body(
    facts: Facts, decision: rules.ProtectionDecision, policy_id: str, containers: Sequence[str] | None = None
) -> dict[str, Any]:
    """The backup instance PUT body (S-DP ``PutBackupInstance.json`` shape) for one resource (``facts``: its
    ``describe_resource`` record). ``containers``: vaulted blobs, the containers found in the account
    (:func:`lists_account_containers`)."""
    facts = ResourceRecord.read(facts)
    if not isinstance(decision, rules.Protect):
        raise ValueError("a backup instance needs a protect decision")
    workload = workloads.workload_for(decision.resource_type)
    if workload is None:
        raise ValueError(f"no workload for {decision.resource_type}")
    rid = ResourceId.parse(facts.id)
    policy_parameters: dict[str, Any] = {}
    if workload is workloads.DISK:
        snapshot_group = decision.datastore.snapshot_resource_group or rid.resource_group_id
        policy_parameters["dataStoreParametersList"] = [
            {
                "objectType": "AzureOperationalStoreParameters",
                "dataStoreType": "OperationalStore",
                "resourceGroupId": str(snapshot_group),
            }
        ]
    selected = list(decision.datastore.blob_containers) or list(containers or ())
    if workload is workloads.BLOB and selected:
        policy_parameters["backupDatasourceParametersList"] = [
            {"objectType": "BlobBackupDatasourceParameters", "containersList": selected}
        ]
    policy_info: dict[str, Any] = {"policyId": policy_id}
    if policy_parameters:
        policy_info["policyParameters"] = policy_parameters
    return {
        "properties": {
            "objectType": "BackupInstance",
            "friendlyName": rid.name,
            "dataSourceInfo": {
                "objectType": "Datasource",
                "resourceID": str(rid),
                "resourceName": rid.name,
                "resourceType": workload.resource_type,
                "resourceLocation": facts.location,
                "resourceUri": str(rid),
                "datasourceType": workload.datasource_type,
            },
            "policyInfo": policy_info,
        }
    }


# ---- deletions -----------------------------------------------------------------------------------------


def protections_of(resource_id: str, refs: Iterable[ProtectionRef]) -> list[ProtectionRef]:
    wanted = ResourceId.parse(resource_id)
    return [r for r in refs if r.source_id and ResourceId.parse(r.source_id) == wanted]


def facts_of_gone(resource_id: str, ref: ProtectionRef, location: str) -> ResourceRecord:
    """Facts for routing a deleted resource: only its id, type and its vault's region are known."""
    rid = ResourceId.parse(resource_id)
    return ResourceRecord(id=str(rid), type=rid.full_type, location=location)


ACTIVE_STATES: Final = frozenset(
    {"IRPending", "Protected", "ProtectionError", "ProtectionPaused", "BackupsSuspended",
     "ProtectionConfigured", "ConfiguringProtection", "ConfiguringProtectionFailed"}
)


def is_active(ref: ProtectionRef) -> bool:
    """Protection still running (so stopping it means something)."""
    return ref.state in ACTIVE_STATES


def on_delete(decision: rules.ProtectionDecision) -> str:
    """``retain`` (stop protection, keep the recovery points) unless the matched rule says ``leave``."""
    if isinstance(decision, rules.Protect):
        return decision.on_delete.value
    return rules.OnDelete.RETAIN.value


def _when(text: object) -> datetime | None:
    return aware_time(str(text))


#: A delete event for a resource that still answers (same incarnation, created before the event) may have
#: outrun the end of its delete: look again this many times, this far apart, before leaving it as is.
GONE_RECHECKS: Final = 3
GONE_RECHECK_SECONDS: Final = 300


@dataclass(frozen=True)
class Alive:
    """The resource a delete event named exists now; ``recheck``: it may still be being deleted."""

    reason: str
    recheck: bool = False


def alive_after_delete(intent: Intent, live: Facts | None, ref: ProtectionRef | None) -> Alive | None:
    """Why a delete event must stop nothing: the resource exists NOW (``live``: ``describe_resource``'s facts,
    read just before the stop). None when it is gone (404): the delete is confirmed.

    Event Grid delivers unordered: a delete can arrive after the re-create's write. The reason names what
    was compared - the incarnation the protection names against the live one (when it names one: a Recovery
    Services VM item does not, so for VMs it is always the times), or the live resource's creation time
    against the event's time - and the live resource is never touched.
    """
    if live is None:
        return None
    now = ResourceRecord.read(live)
    identity, created = now.identity, now.created_at
    event_time = IntentRef.read(intent).event_time
    if ref is not None and ref.identity and identity and ref.identity.lower() != identity.lower():
        return Alive(f"the resource exists again as another incarnation ({identity}) than the one its item "
                     f"protected ({ref.identity}): the delete event concerned the old one; nothing was stopped")
    made, deleted = _when(created), _when(event_time)
    if made is not None and deleted is not None and made > deleted:
        return Alive(f"the resource exists again: re-created at {created}, after the delete event of {event_time}; "
                     "its protection was left as is")
    return Alive("the resource still exists (ARM answers it now), so the delete event is not confirmed; "
                 "nothing was stopped", recheck=True)


# ---- moves ---------------------------------------------------------------------------------------------


def protections_within(scope: str, refs: Iterable[ProtectionRef]) -> list[ProtectionRef]:
    root = ResourceId.parse(scope)
    return [r for r in refs if r.source_id and ResourceId.parse(r.source_id).is_within(root)]


def moved_out(in_source: Iterable[ProtectionRef], still_there: Iterable[Facts]) -> list[ProtectionRef]:
    present = {ResourceId.parse(ResourceRecord.read(f).id) for f in still_there}
    return [r for r in in_source if ResourceId.parse(r.source_id) not in present]


@dataclass(frozen=True)
class MoveMatch:
    old: ProtectionRef
    new_resource_id: str

    def to_record(self) -> dict[str, Any]:
        return {"old": self.old.to_record(), "newResourceId": self.new_resource_id}


def match_moves(
    moved: Sequence[ProtectionRef],
    candidates: Iterable[Facts],
    protections: Iterable[ProtectionRef],
) -> tuple[list[MoveMatch], list[ProtectionRef]]:
    """Pair each protection whose source left the group with the resource it became.

    A move keeps a resource's type and name and changes its group or subscription. The match is the one
    resource of the same type and name, at another id, that nothing protects yet; where a stable identity
    is known on both sides (a VM's ``vmId``) it must agree. Zero or several candidates: unmatched, reported
    for a person (never a guess).
    """
    protected = {ResourceId.parse(p.source_id) for p in protections if p.source_id}
    pool = [c for c in map(ResourceRecord.read, candidates) if ResourceId.parse(c.id) not in protected]
    matches: list[MoveMatch] = []
    unmatched: list[ProtectionRef] = []
    for ref in moved:
        old = ResourceId.parse(ref.source_id)
        same = [
            c
            for c in pool
            if ResourceId.parse(c.id).type_key == old.type_key
            and ResourceId.parse(c.id).name.lower() == old.name.lower()
            and (not ref.identity or not c.identity or c.identity.lower() == ref.identity.lower())
        ]
        if len(same) == 1:
            matches.append(MoveMatch(ref, same[0].id))
        else:
            unmatched.append(ref)
    return matches, unmatched


#: How long a move's run waits before it reports a resource it found nowhere: a resource deleted while its group
#: moved looks moved (it left the group), and its own delete event's ``handle_resource_gone`` stops its item
#: (recovery points kept) within this time, rechecks included.
MOVE_SETTLE_SECONDS: Final = GONE_RECHECK_SECONDS


def still_unaccounted(unmatched: Iterable[ProtectionRef], now: Iterable[ProtectionRef]) -> list[ProtectionRef]:
    """The unmatched refs whose item still protects, by what ``find_protections`` answers now: an item stopped
    (or gone) since was handled by its resource's delete, so it is no unexplained move."""
    active = {r.item_id.lower() for r in now if is_active(r)}
    return [r for r in unmatched if r.item_id.lower() in active]


def protect_intent_for(match: MoveMatch, parent: ResourcesMoved) -> ProtectResource:
    """The protect_resource intent for a moved resource: the move event's origin, quiet (the parent publishes the
    lineage)."""
    return ProtectResource(resource_id=ResourceId.parse(match.new_resource_id), origin=parent.origin, quiet=True)


def same_item(outcome: ProtectionOutcome, old: ProtectionRef) -> bool:
    return bool(outcome.item_id) and ResourceId.parse(str(outcome.item_id)) == ResourceId.parse(old.item_id)


def reprotected(outcome: ProtectionOutcome, match: MoveMatch, stopped: Mapping[str, Any]) -> ProtectionOutcome:
    note = "old item stopped, recovery points kept" if stopped.get("ok") else (
        f"old item could not be stopped ({stopped.get('code')}: {stopped.get('message')}); it keeps protecting"
    )
    return ProtectionOutcome(
        status=OutcomeStatus.REPROTECTED,
        resource_id=match.new_resource_id,
        vault_id=outcome.vault_id,
        item_id=outcome.item_id,
        policy=outcome.policy,
        rule=outcome.rule,
        correlation_id=outcome.correlation_id,
        previous_item_id=match.old.item_id,
        previous_resource_id=match.old.source_id,
        previous_vault_id=match.old.vault_id,
        reason=note,
    )


def not_reprotected(outcome: ProtectionOutcome, match: MoveMatch) -> ProtectionOutcome:
    """The new protection did not happen: the old item is left untouched (break only after make)."""
    return ProtectionOutcome(
        status=outcome.status,
        resource_id=match.new_resource_id,
        vault_id=outcome.vault_id,
        correlation_id=outcome.correlation_id,
        previous_item_id=match.old.item_id,
        previous_resource_id=match.old.source_id,
        previous_vault_id=match.old.vault_id,
        reason=f"moved, not protected anew ({outcome.reason or outcome.status.value}); the old item is untouched",
    )


def unmatched_outcome(ref: ProtectionRef, intent: Intent) -> ProtectionOutcome:
    return ProtectionOutcome(
        status=OutcomeStatus.FAILED,
        resource_id=ref.source_id,
        vault_id=ref.vault_id,
        item_id=ref.item_id,
        correlation_id=IntentRef.read(intent).correlation_id,
        reason="left its resource group, but no single resource of the same type and name was found in the "
        "managed subscriptions; the old item keeps its recovery points - a person should look",
    )


def tenant_flags(vaults: Iterable[Vault], tenants: Mapping[str, str]) -> list[ProtectionOutcome]:
    """Vaults whose managed identity belongs to another tenant than their subscription's: moved across
    tenants. Their role assignments and identity must be redone by a person (docs/azure-facts.md, "Moves and
    tenants")."""
    flags: list[ProtectionOutcome] = []
    for vault in map(VaultRecord.read, vaults):
        subscription = ResourceId.parse(vault.id).subscription_id.lower()
        expected = tenants.get(subscription)
        actual = vault.tenant_id
        if expected and actual and actual.lower() != expected.lower():
            flags.append(
                ProtectionOutcome(
                    status=OutcomeStatus.VAULT_TENANT_CHANGED,
                    resource_id=vault.id,
                    vault_id=vault.id,
                    reason=f"the vault's identity is in tenant {actual} but its subscription is now in tenant "
                    f"{expected}: re-create the vault's managed identity and its role assignments, "
                    "customer-managed keys and private endpoints",
                )
            )
    return flags


def unreachable_flags(scope: StewardScope | Mapping[str, Any]) -> list[ProtectionOutcome]:
    """Managed subscriptions the app's token is refused in: they moved to another tenant. Every vault in
    them keeps its data but loses its managed identity's role assignments (docs/azure-facts.md, "Moves and tenants")."""
    return [
        ProtectionOutcome(
            status=OutcomeStatus.VAULT_TENANT_CHANGED,
            resource_id=f"/subscriptions/{subscription_id}",
            reason="the subscription moved to another tenant (ARM refuses this tenant's token): re-create the "
            "managed identity, role assignments, customer-managed keys and private endpoints of every vault in "
            "it, and grant Backup Steward access there or remove it from STEWARD_SUBSCRIPTIONS",
        )
        for subscription_id in StewardScope.read(scope).unreachable
    ]
