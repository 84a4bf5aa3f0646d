"""Auto-protection orchestrations: protect a resource, handle its deletion, reconcile a move.

Deterministic generator functions: they read their input, ask activities for facts and effects, and ask
``steward.domain`` for every decision. No I/O, no clock, no environment here.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Generator, Mapping, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any, Final

import azure.durable_functions as df

from orchestrators.retrying import Backoff, call_with_backoff
from steward.domain import blob_containers, operations, rules
from steward.domain import protection_flow as flow
from steward.domain.errors import SERVER_SIDE_CODES
from steward.domain.events import ContainerCreated, ProtectResource, ResourceGone, ResourcesMoved, read_intent
from steward.domain.ids import ResourceId
from steward.domain.kernel import VaultKind
from steward.domain.protection import OutcomeStatus, ProtectionOutcome, ProtectionRef
from steward.domain.protection_inputs import (
    BackupInstanceRequest,
    BlobContainerChange,
    BlobContainersAt,
    FactsToDecide,
    OperationWatch,
    OutcomesToPublish,
    PolicyCopy,
    RbacSettleNote,
    ResourceAt,
    ResourceListing,
    RoleGrants,
    StopRetaining,
    SubscriptionsQuery,
    VaultAt,
    VaultIdentity,
    VaultToCreate,
    VmInVault,
)
from steward.domain.protection_results import ResourceRecord, StewardScope, VaultRecord, VmProtectionBegun
from steward.domain.rules.vault_sets import SET_CHOICES

bp = df.Blueprint()

#: Transient Azure failures (429, 5xx, timeouts, ScopeLocked) are retried here on durable timers; refusals come back
#: as records. Waits of 5 s doubling to at most 2 min, for up to 10 minutes of Azure time (9 attempts over 515 s):
#: they outlast a resource group's write lock during a move of a few hundred resources (ScopeLocked). Durable's
#: RetryOptions cannot do this: only the first interval and the attempt count reach the extension.
RETRY: Final = Backoff(first=timedelta(seconds=5), coefficient=2.0, cap=timedelta(minutes=2),
                       window=timedelta(minutes=10), max_attempts=12)

Task = Generator[Any, Any, Any]
#: the activity that looks at a Backup vault's operation
BACKUP_STATUS: Final = "backup_operation_status"


def _outcome(
    intent: ProtectResource | ContainerCreated | ResourceGone, status: OutcomeStatus, **fields: Any
) -> ProtectionOutcome:
    return ProtectionOutcome(
        status=status,
        resource_id=str(intent.resource_id),
        correlation_id=intent.correlation_id,
        **fields,
    )


def _protect(context: df.DurableOrchestrationContext, intent: ProtectResource, given: dict[str, Any]) -> Task:
    """The steps of protecting one resource (``given``: the intent record as started, for the flow's helpers); returns
    a ProtectionOutcome. A vault set's reservation that did not land is released (``release_in_set``)."""
    held: list[tuple[rules.Protect, str]] = []  # (the decision, the member reserved): the last one counts
    outcome: ProtectionOutcome = yield from _protect_steps(context, intent, given, held)
    if held and flow.releases(outcome, held[-1][1]):
        yield from call_with_backoff(context, "release_in_set", RETRY,
                                     flow.set_release_asked(held[-1][0], str(intent.resource_id), held[-1][1]))
    return outcome


def _protect_steps(
    context: df.DurableOrchestrationContext, intent: ProtectResource, given: dict[str, Any],
    held: list[tuple[rules.Protect, str]],
) -> Task:
    resource_id = str(intent.resource_id)
    facts = yield from _wait_until_ready(context, resource_id)
    if facts is None:
        return _outcome(intent, OutcomeStatus.RESOURCE_GONE, reason="the resource no longer exists")
    ready = flow.readiness(facts)
    if ready.verdict is not None:
        return _outcome(intent, ready.verdict.status, reason=ready.verdict.reason)
    if ready.wait:
        late = flow.not_ready_in_time(facts)
        return _outcome(intent, late.status, reason=late.reason)
    record = yield from call_with_backoff(context, "decide_protection", RETRY, FactsToDecide(facts).to_record())
    decision = rules.decision_from_record(record)
    if not isinstance(decision, rules.Protect):
        return _outcome(intent, flow.not_protected_status(decision), reason=decision.reason, rule=decision.rule)

    search = flow.vault_search(decision)
    candidates = [VaultRecord.from_record(v) for v in (yield from call_with_backoff(
        context, "find_vaults", RETRY, search.to_record()))]
    status: dict[str, Any] | None = None
    if isinstance(decision.vault, rules.VaultSet):  # issue 19: one of several vaults, by room
        if decision.vault_kind is VaultKind.RECOVERY_SERVICES:
            status = yield from call_with_backoff(context, "vm_backup_status", RETRY,
                                                  ResourceAt(resource_id, region=facts.location).to_record())
        members = flow.set_member_records(decision, candidates)
        choice = flow.set_member_protecting(decision, members, status) or (
            yield from _choose_in_set(context, decision, members, [], fresh=False, held=held,
                                      resource_id=resource_id))
    else:
        choice = flow.choose(decision, candidates)
    if choice.status is OutcomeStatus.NO_VAULT and isinstance(decision.vault, rules.RegionalDefaultVault):
        made = yield from _create_vault(context, VaultToCreate(search.kind, search.subscription_id, search.region))
        if made["ok"]:
            candidates = [VaultRecord.from_record(made["vault"])]
            choice = flow.choose(decision, candidates)
    if choice.vault is None:
        assert choice.status is not None
        return _outcome(intent, choice.status, reason=choice.reason, rule=decision.rule,
                        details={"candidates": [c.id for c in candidates]})
    vault = VaultRecord.read(choice.vault)
    common = {"vault_id": vault.id, "policy": decision.policy, "rule": decision.rule}

    if decision.vault_kind is VaultKind.RECOVERY_SERVICES:
        if status is None:
            status = yield from call_with_backoff(context, "vm_backup_status", RETRY,
                                                  ResourceAt(resource_id, region=facts.location).to_record())
        if not isinstance(decision.vault, rules.VaultSet):
            return (yield from _protect_vm(context, intent, given, vault, decision, status=status))[0]
        refused: list[str] = []
        while True:  # a vault set: Azure's refusal of a full vault is the arbiter, the next member is tried
            outcome, full = yield from _protect_vm(context, intent, given, vault, decision, status=status,
                                                   sources=flow.policy_sources(decision, vault, members))
            if not full or len(refused) + 1 >= SET_CHOICES:
                return outcome
            refused.append(vault.id)
            found = [VaultRecord.from_record(v) for v in (yield from call_with_backoff(
                context, "find_vaults", RETRY, search.to_record()))]
            members = flow.set_member_records(decision, found)
            again = yield from _choose_in_set(context, decision, members, refused, fresh=True, held=held,
                                              resource_id=resource_id)
            if again.vault is None:
                return replace(outcome, reason=f"{outcome.reason}; {again.reason}")
            vault = VaultRecord.read(again.vault)
            status = {}  # the VM was refused, not protected: nothing to look up again

    grants = flow.role_grants(decision, facts, vault)
    granted = yield from call_with_backoff(context, "grant_vault_roles", RETRY,
                                           RoleGrants(str(vault.principal_id), tuple(grants)).to_record())
    if not granted["ok"]:  # past the subscription's 4,000 role assignments no retry helps: the reason says why
        return _grant_refused(intent, granted, decision, facts, common)
    # the roles' wait counts from when the newest assignment was made: by this grant, or by another protection of
    # the same group (roleScope resourceGroup / subscription share one), still propagating (flow.rbac_fresh)
    claimed = bool(granted.get("probe"))
    granted, granted_at = flow.rbac_fresh(granted, context.current_utc_datetime)
    if claimed and not granted.get("probe"):  # the probe was claimed for roles long applied: let the others go
        yield from call_with_backoff(context, "note_rbac_settle", RETRY,
                                     RbacSettleNote(str(vault.principal_id)).to_record())
    polled = yield from _settle_roles(context, granted, vault.principal_id, granted_at)
    request = BackupInstanceRequest(resource_id=resource_id, vault_id=vault.id, policy=decision.policy, facts=facts,
                                    decision=decision, rule=decision.rule)
    regrant = RoleGrants(str(vault.principal_id), tuple(grants), fresh=True)
    # what the first validation that passes tells the worker (noted then, _note_settle), or at the end
    seen: dict[str, Any] = {"granted": granted, "granted_at": granted_at, "polled": polled,
                            "principal_id": vault.principal_id}
    result = yield from _configure_backup_instance(context, request, regrant, seen)
    yield from _note_settle(context, seen, passed=bool(result.get("ok")))
    if flow.policy_missing(result) and isinstance(decision.vault, rules.VaultSet):
        sources = flow.policy_sources(decision, vault, members)
        if sources:  # a set's new Backup vault holds only the app's default policies: copy the rule's, once
            copied = yield from call_with_backoff(context, "copy_policy", RETRY, PolicyCopy(
                vault.id, decision.policy, kind=decision.vault_kind, sources=tuple(sources)).to_record())
            if not copied["ok"]:
                return _outcome(intent, OutcomeStatus.FAILED, reason=flow.policy_copy_failed(copied), **common)
            result = yield from _configure_backup_instance(context, request, regrant)
    # a failed instance found on the first call (left by an earlier run) was configured again by it
    repaired = [result["repaired"]] if result.get("repaired") else []
    remedies = [str(result.get("remedy") or flow.REMEDY_PUT)] if repaired else []
    configurations = 1
    # an instance whose configuration failed (ConfiguringProtectionFailed / ProtectionError) protects nothing: it
    # is configured again after a durable wait, a bounded number of times (the activity syncs it or PUTs it again,
    # protection_flow.remedy_for, and says which)
    while flow.configuration_failed(result) and configurations < flow.BV_CONFIGURE_ATTEMPTS:
        repaired.append(result["failure"])
        yield context.create_timer(context.current_utc_datetime + timedelta(seconds=flow.BV_RECONFIGURE_SECONDS))
        result = yield from _configure_backup_instance(context, request, regrant)
        remedies.append(str(result.get("remedy") or flow.REMEDY_PUT))
        configurations += 1
    regrant_refused = flow.grant_refusal(result)  # the roles granted again past the propagation bound, refused
    if regrant_refused is not None:
        return flow.reconfigured(_grant_refused(intent, regrant_refused, decision, facts, common), repaired,
                                 remedies)
    return flow.reconfigured(flow.outcome_of_enable(given, result, common), repaired, remedies)


def _grant_refused(intent: ProtectResource, granted: Mapping[str, Any], decision: rules.Protect, facts: flow.Facts,
                   common: Mapping[str, Any]) -> ProtectionOutcome:
    """The outcome of a protection whose role grant (the first, or the regrant) Azure refused."""
    reason, details = flow.role_grant_refused(granted, decision, facts)
    return _outcome(intent, OutcomeStatus.FAILED, reason=reason, **common, **({"details": details} if details
                                                                               else {}))


def _protect_vm(
    context: df.DurableOrchestrationContext, intent: ProtectResource, given: dict[str, Any],
    vault: VaultRecord, decision: rules.Protect, *, status: Mapping[str, Any], sources: Sequence[str] = (),
) -> Task:
    """The VM steps in ``vault``: ``backupStatus`` decides (protected here or elsewhere), then the protected-item PUT
    followed on durable timers (``sources``: the set members a missing policy is copied from, ``_begin_in_vault``).
    Returns (the outcome, whether Azure refused because the vault is full)."""
    resource_id = str(intent.resource_id)
    common = {"vault_id": vault.id, "policy": decision.policy, "rule": decision.rule}
    verdict = flow.vm_precheck(status, vault.id)
    resuming = False
    if verdict is not None and verdict.status is OutcomeStatus.ALREADY_PROTECTED:  # the item decides
        item = yield from call_with_backoff(context, "read_vm_item", RETRY,
                                            VmInVault(resource_id, vault.id).to_record())
        verdict = flow.already_protected_item(item, verdict, vault.id)
        resuming = verdict is None
    if verdict is not None:
        return _outcome(intent, verdict.status, reason=verdict.reason, **common), False
    target = VmInVault(resource_id, vault.id, policy=decision.policy)
    final: ProtectionOutcome | None = None
    full = False
    for _ in range(flow.VM_PROTECTION_STARTS):  # an operation Azure failed on its own side starts again
        begun = yield from _begin_in_vault(context, target, sources)
        sources = ()  # copied at most once per protection
        if begun is None:
            return _outcome(intent, OutcomeStatus.RESOURCE_GONE, reason="the resource no longer exists",
                            **common), False
        if isinstance(begun, str):
            return _outcome(intent, OutcomeStatus.FAILED, reason=begun, **common), False
        if not begun.ok or begun.done:
            outcome = flow.outcome_of_enable(given, {**begun.to_record(), "created": not begun.done}, common)
            return outcome, flow.vault_full(begun.to_record())
        state = yield from _follow_vm_operation(context, replace(target, operation=begun.operation),
                                                flow.vm_poll_plan(begun.retry_after))
        if state is None:
            return _outcome(intent, OutcomeStatus.FAILED, reason="Azure's protection operation did not finish "
                            f"within {flow.VM_ITEM_POLL_SECONDS * flow.VM_ITEM_POLL_ATTEMPTS // 60} minutes",
                            **common), False
        final = flow.vm_operation_verdict(given, state, common)
        full = flow.operation_status(state.get("status")) == "Failed" and flow.vault_full({**state, "ok": False})
        if not flow.retry_operation(state):
            break
    assert final is not None
    return (flow.resumed(final) if resuming else final), full


def _begin_in_vault(context: df.DurableOrchestrationContext, target: VmInVault, sources: Sequence[str]) -> Task:
    """``_begin_vm_protection``; when the vault lacks the rule's policy and ``sources`` (a vault set's members,
    ``flow.policy_sources``) are given, ``copy_policy`` copies it from one of them and the PUT is begun once more
    (issue 19: a set's new vault holds only Azure's default policies). Returns what ``_begin_vm_protection`` does, or
    the reason the copy failed."""
    begun = yield from _begin_vm_protection(context, target)
    if not sources or not isinstance(begun, VmProtectionBegun) or not flow.policy_missing(begun.to_record()):
        return begun
    copied = yield from call_with_backoff(context, "copy_policy", RETRY, PolicyCopy(
        target.vault_id, target.policy, kind=VaultKind.RECOVERY_SERVICES, sources=tuple(sources)).to_record())
    if not copied["ok"]:
        return flow.policy_copy_failed(copied)
    return (yield from _begin_vm_protection(context, target))


def _choose_in_set(
    context: df.DurableOrchestrationContext, decision: rules.Protect, members: list[VaultRecord],
    refused: list[str], *, fresh: bool, held: list[tuple[rules.Protect, str]], resource_id: str,
) -> Task:
    """A vault set's member for this protection (issue 19), reserved with the choice (``reserve_in_set``: one
    conditional write of the set's ledger, so protections choosing at once never overfill a member; listed again
    when ``fresh``); when every member is past the fill threshold the set's next vault (``create_vault``: only with
    STEWARD_AUTO_CREATE_VAULTS) is created and the choice made again with it, and when that is not done, a member
    still below Azure's limit is reserved. The member reserved is appended to ``held``. A ``Choice``."""
    step: flow.SetStep | None = None
    grown: flow.SetStep | None = None  # the step that asked for the vault this protection created
    made: dict[str, Any] | None = None
    grow = True
    for _ in range(SET_CHOICES):
        asked = flow.set_reservation_asked(decision, members, resource_id, context.current_utc_datetime, refused,
                                           fresh=fresh, grow=grow)
        result = yield from call_with_backoff(context, "reserve_in_set", RETRY, asked)
        step = flow.set_step(decision, members, result, refused)
        if step.vault is not None:
            held.append((decision, step.vault.id))
            created = grown is not None and made is not None and made["vault"]["id"] == step.vault.id
            reason = flow.set_spill_reason(grown, made) if created and grown is not None else step.reason
            return flow.Choice(vault=step.vault, reason=reason)
        if step.create is None or not grow:
            break
        made = yield from _create_vault(context, step.create)
        if not made["ok"]:
            grow = False  # the fallback below Azure's limit is reserved on the next call
            continue
        vault = VaultRecord.from_record(made["vault"])
        grown = None if made.get("existed") else step
        members = [*members, vault]
    assert step is not None
    if step.fallback is not None:
        held.append((decision, step.fallback.id))
        return flow.Choice(vault=step.fallback, reason=flow.set_spill_reason(step, made))
    return flow.Choice(status=OutcomeStatus.NO_VAULT, reason=flow.set_spill_reason(step, made))


def _create_vault(context: df.DurableOrchestrationContext, request: VaultToCreate) -> Task:
    """``create_vault`` PUTs the vault and returns as soon as Azure accepted it; its operation is followed on durable
    timers at Azure's ``Retry-After`` (``vault_creation_status``) and the vault read back once it ended is verified
    against what was sent (``operations.after_vault``); a Backup vault then gets its default policies
    (``create_vault_policies``). ``create_vault``'s result: ``{"ok": true, "vault", "existed"?}`` or a refusal. A
    result recorded before the operation was followed here (or answered at once) is final as it is."""
    made: dict[str, Any] = {}
    for _ in range(operations.STARTS):  # an operation that failed on Azure's side starts again (the PUT is idempotent)
        made = yield from call_with_backoff(context, "create_vault", RETRY, request.to_record())
        begun = operations.started(made)
        if begun is None:
            return made
        vault_id = operations.vault_started(begun)
        state = yield from _follow_backup_operation(context, OperationWatch(vault_id, resource_id=vault_id),
                                                    "vault_creation_status", begun, {})
        if state is None:
            return operations.not_finished(begun.step)
        made = operations.after_vault(state, begun)
        if not operations.restart(state):
            break
    if made.get("ok") and VaultRecord.from_record(made["vault"]).kind is VaultKind.BACKUP:
        policies = yield from call_with_backoff(context, "create_vault_policies", RETRY,
                                                VaultAt(str(made["vault"]["id"])).to_record())
        if not policies["ok"]:
            return policies
    return made


def _settle_roles(context: df.DurableOrchestrationContext, granted: dict[str, Any], principal_id: str | None,
                  granted_at: datetime) -> Task:
    """Wait, on durable timers, before the first validation when the grant's role assignments are new (made by it,
    or by another protection moments ago: ``flow.rbac_fresh``; ``granted_at``: when the newest was made): until the
    time the worker last saw new roles take to apply has passed since, or, while one protection finds that out,
    until it did (``protection_flow.rbac_settle_seconds`` / ``rbac_awaits_probe``). Returns the time learned from a
    look (None: none)."""
    settle = flow.rbac_settle_seconds(granted)
    if settle is not None:
        until = granted_at + timedelta(seconds=settle)
        if until > context.current_utc_datetime:
            yield context.create_timer(until)
        return None
    if not flow.rbac_awaits_probe(granted):
        return None
    while True:  # bounded: each look is RBAC_PROBE_POLL_SECONDS later, and rbac_after_poll stops at the bound
        yield context.create_timer(context.current_utc_datetime + timedelta(seconds=flow.RBAC_PROBE_POLL_SECONDS))
        state = yield from call_with_backoff(context, "rbac_settle_state", RETRY,
                                             VaultIdentity(str(principal_id)).to_record())
        remaining = flow.rbac_after_poll(state, (context.current_utc_datetime - granted_at).total_seconds())
        if remaining is None:
            continue
        if remaining > 0:
            yield context.create_timer(context.current_utc_datetime + timedelta(seconds=remaining))
        seconds = state.get("settle_seconds")
        return None if seconds is None else float(seconds)


def _note_settle(context: df.DurableOrchestrationContext, seen: dict[str, Any], *, passed: bool = True) -> Task:
    """Tell the worker (``note_rbac_settle``) what this protection saw of its new roles' delay
    (``protection_flow.rbac_note``), once: as soon as a validation passed - the protections waiting for the probe
    are released a whole instance PUT earlier - or when the configuration ended (``passed``: whether it ended
    protected). Nothing for a protection that did not grant (``seen`` without ``granted``)."""
    if "granted" not in seen or seen.get("noted"):
        return
    seen["noted"] = True
    # from the grant to Azure's answer to the validation that passed (after the pacer: waiting that long, the next
    # protection's POST reaches Azure no sooner)
    passed_at = seen.get("posted_at", seen.get("accepted_at"))
    accepted_after = ((passed_at - seen["granted_at"]).total_seconds()
                      if passed and "accepted_at" in seen and passed_at is not None else None)
    note = flow.rbac_note(seen["granted"], int(seen.get("refused", 0)), accepted_after, seen.get("polled"))
    if note is not None:
        yield from call_with_backoff(context, "note_rbac_settle", RETRY,
                                     RbacSettleNote(str(seen["principal_id"]), note.get("seconds")).to_record())


def _configure_backup_instance(
    context: df.DurableOrchestrationContext, request: BackupInstanceRequest, regrant: RoleGrants,
    seen: dict[str, Any] | None = None,
) -> Task:
    """``protect_in_backup_vault``, waiting out RBAC propagation on durable timers: new role assignments take
    minutes to apply, and validation refuses until they do. Past the documented bound the roles are granted again
    (``regrant``: bypassing the worker's cache of granted roles). ``seen`` (filled in): ``refused``, the attempts
    refused while the roles propagate, and ``accepted_at``, when the attempt that was not refused so began."""
    seen = {} if seen is None else seen
    took: dict[str, int] = {}  # how long each operation took in this run: a validation refused is sent again
    seen.update(refused=0, accepted_at=context.current_utc_datetime)
    result = yield from _protect_in_backup_vault(context, request, took, seen)
    waited = 0.0
    attempt = 0
    while flow.awaiting_rbac(result):
        seen["refused"] += 1
        wait = flow.rbac_wait(attempt, waited)
        if wait is None:
            seen.pop("accepted_at")
            return flow.rbac_gave_up(result, waited)
        yield context.create_timer(context.current_utc_datetime + timedelta(seconds=wait))
        if flow.rbac_regrant(waited, waited + wait):
            regranted = yield from call_with_backoff(context, "grant_vault_roles", RETRY, regrant.to_record())
            if not regranted.get("ok"):  # refused (at the limit no wait helps): ends as a refused first grant
                seen.pop("accepted_at", None)
                return flow.regrant_refused(regranted)
        waited += wait
        attempt += 1
        seen["accepted_at"] = context.current_utc_datetime
        result = yield from _protect_in_backup_vault(context, request, took, seen)
    return result


def _protect_in_backup_vault(
    context: df.DurableOrchestrationContext, request: BackupInstanceRequest, took: dict[str, int],
    seen: dict[str, Any] | None = None,
) -> Task:
    """Validate for backup, then PUT the backup instance, each operation followed on durable timers at Azure's
    ``Retry-After`` (``steward.domain.operations``); the result ``protect_in_backup_vault`` returned when it followed
    them itself. An operation that failed on Azure's side starts again, a bounded number of times. ``took``: the
    seconds each step's operation took before in this run (updated here): its next one is first looked at then.
    ``seen``: see ``_configure_backup_instance``; a validation that passed is noted (``_note_settle``) before the
    instance PUT."""
    result: dict[str, Any] = {}
    where = OperationWatch(request.vault_id, resource_id=request.resource_id)
    for _ in range(operations.STARTS):
        result = yield from call_with_backoff(context, "protect_in_backup_vault", RETRY, request.to_record())
        if seen is not None:  # Azure answered the validation's POST (its pacer may have held it): the roles' time
            seen["posted_at"] = context.current_utc_datetime
        begun = operations.started(result)
        if begun is None:  # a refusal, an instance already protecting, or a result recorded by the earlier code
            return result
        repaired: dict[str, Any] = dict(begun.repaired)
        if begun.step is operations.Step.VALIDATE:
            state = yield from _follow_backup_operation(context, where, BACKUP_STATUS, begun, took)
            if state is None:
                return operations.not_finished(begun.step)
            if operations.restart(state):
                result = operations.refusal(state)
                continue
            after = operations.after_validation(state)
            if after.final is not None:
                return after.final
            if seen is not None:  # the validation passed: what it says of the roles' delay is noted now
                yield from _note_settle(context, seen)
            repaired = dict(after.repaired)
            put = replace(request, body=dict(begun.body), repaired=repaired)
            result = yield from call_with_backoff(context, "begin_backup_instance", RETRY, put.to_record())
            begun = operations.started(result)
            if begun is None:
                return result
            repaired = dict(begun.repaired) or repaired  # with the remedy the activity chose (a sync, or a PUT)
        state = yield from _follow_backup_operation(context, where, BACKUP_STATUS, begun, took)
        if state is None:
            return operations.not_finished(begun.step)
        if operations.restart(state):
            result = operations.refusal(state)
            continue
        return operations.after_instance(state, repaired)
    return result


def _start_and_follow(
    context: df.DurableOrchestrationContext, activity: str, payload: dict[str, Any],
    where: OperationWatch, finish: Callable[[operations.OperationState], dict[str, Any]], *, look: str,
) -> Task:
    """``activity`` starts an Azure operation; it is followed on durable timers at Azure's Retry-After
    (``_follow_backup_operation`` on ``where``, each look a call of activity ``look``) and ``finish(state)`` is the
    result once it ended. An operation that failed on Azure's side starts again, at most ``operations.STARTS`` times;
    one that did not end in the window is ``operations.not_finished``. A result recorded before the operation was
    followed here (or answered at once) is final as it is."""
    result: dict[str, Any] = {}
    for _ in range(operations.STARTS):
        result = yield from call_with_backoff(context, activity, RETRY, payload)
        begun = operations.started(result)
        if begun is None:
            return result
        state = yield from _follow_backup_operation(context, where, look, begun, {})
        if state is None:
            return operations.not_finished(begun.step)
        result = finish(state)
        if not operations.restart(state):
            break
    return result


def _follow_backup_operation(
    context: df.DurableOrchestrationContext, where: OperationWatch, look: str, begun: operations.OperationStarted,
    took: dict[str, int],
) -> Task:
    """The operation's end (an ``OperationState``), looked at through activity ``look`` on ``where`` (the vault,
    the resource, the instance's name when it has its own): wait its ``Retry-After`` on a durable timer, look, again
    while it runs, for at most ``operations.WINDOW_SECONDS``; None when it did not end. The first look waits at least
    as long as the same step's operation took before in this run (``took``, recorded here when it ends: a validation
    sent again while new role assignments propagate is looked at once, not ``Retry-After`` by ``Retry-After``). An
    operation Azure answered at once ends at once (the instance it answered with, for a PUT)."""
    if not begun.operation and begun.step is not operations.Step.VAULT:  # a vault is then watched by its own GET
        return operations.OperationState(status="Succeeded", instance=dict(begun.instance))
    watch = replace(where, step=begun.step.value, operation=begun.operation).to_record()
    retry_after = begun.retry_after
    waited = 0
    while waited < operations.WINDOW_SECONDS:
        wait = operations.wait_seconds(retry_after, expected=took.get(begun.step.value, 0) - waited)
        yield context.create_timer(context.current_utc_datetime + timedelta(seconds=wait))
        waited += wait
        state = operations.OperationState.from_record((yield from call_with_backoff(context, look, RETRY, watch)))
        if not state.running:
            took[begun.step.value] = waited
            return state
        retry_after = state.retry_after or retry_after
    return None


def _wait_until_ready(context: df.DurableOrchestrationContext, resource_id: str) -> Task:
    """The resource's facts once it is no longer being provisioned (Creating, Updating, ...), looked at again on
    durable timers; None when it is gone. Facts still not ready after the last look come back as they are."""
    facts = yield from _describe(context, resource_id)
    for _ in range(flow.READY_POLL_ATTEMPTS):
        if facts is None or not flow.readiness(facts).wait:
            return facts
        yield context.create_timer(context.current_utc_datetime + timedelta(seconds=flow.READY_POLL_SECONDS))
        facts = yield from _describe(context, resource_id)
    return facts


def _describe(context: df.DurableOrchestrationContext, resource_id: str) -> Task:
    """``describe_resource``: the resource's :class:`ResourceRecord`, or None when it is gone."""
    found = yield from call_with_backoff(context, "describe_resource", RETRY, ResourceAt(resource_id).to_record())
    return None if found is None else ResourceRecord.from_record(found)


def _begin_vm_protection(context: df.DurableOrchestrationContext, target: VmInVault) -> Task:
    """``begin_vm_protection``; when Azure refuses in a way that may mean the vault has not discovered the VM yet,
    refresh the vault's containers (following that operation on durable timers), wait, and try again, a bounded
    number of times. Returns the last ``begin_vm_protection`` record, or None when the VM was deleted meanwhile, or
    the reason naming the step that failed."""
    refreshes = 0
    while True:
        begun = VmProtectionBegun.from_record((yield from call_with_backoff(
            context, "begin_vm_protection", RETRY, target.to_record())))
        if not flow.undiscovered(begun.to_record()):
            return begun
        wait = flow.discovery_wait(refreshes)
        if wait is None:
            return flow.discovery_failed("put", begun.to_record(), refreshes)
        if wait:
            yield context.create_timer(context.current_utc_datetime + timedelta(seconds=wait))
        facts = yield from call_with_backoff(context, "describe_resource", RETRY,
                                             ResourceAt(target.resource_id).to_record())
        if facts is None:
            return None
        started = yield from call_with_backoff(context, "refresh_vm_containers", RETRY,
                                               VaultAt(target.vault_id).to_record())
        if not started["ok"]:
            return flow.discovery_failed("refresh-refused", started, refreshes)
        watch = OperationWatch(target.vault_id, operation=str(started["operation"] or "")).to_record()
        state = yield from _poll_until_done(
            context, flow.REFRESH_POLL_ATTEMPTS, flow.REFRESH_POLL_SECONDS,
            functools.partial(call_with_backoff, context, "vault_operation_status", RETRY, watch),
        )
        if state is None:
            return flow.discovery_failed("refresh-timeout", None, refreshes)
        if flow.operation_status(state.get("status")) != "Succeeded":
            error = state.get("error") or {}
            if str(error.get("code") or "") not in SERVER_SIDE_CODES:
                return flow.discovery_failed(
                    "refresh-failed",
                    {"code": error.get("code") or state.get("status"), "message": error.get("message")},
                    refreshes)
            # failed on Azure's side: it counts as one of the bounded refreshes, and the next round refreshes again
        refreshes += 1


def _poll_until_done(
    context: df.DurableOrchestrationContext, attempts: int, seconds: float, look: Callable[[], Task]
) -> Task:
    """Wait ``seconds`` on a durable timer, then ``look`` (a generator yielding the activity calls), at most
    ``attempts`` times; the first state whose ``status`` is no longer running, or None when none was."""
    for _ in range(attempts):
        yield context.create_timer(context.current_utc_datetime + timedelta(seconds=seconds))
        state = yield from look()
        if not flow.operation_running(state.get("status")):
            return state
    return None


def _follow_vm_operation(
    context: df.DurableOrchestrationContext, watch: VmInVault, plan: tuple[int, int]
) -> Task:
    """Poll Azure's protection operation on durable timers (not in a worker), ``plan`` = (seconds between looks:
    Azure's Retry-After when it sent one, looks); its final state, or None."""

    def look() -> Task:
        if watch.operation:
            return (yield from call_with_backoff(context, "vm_protection_status", RETRY, watch.to_record()))
        # Azure named no operation to follow: watch the item itself
        item = yield from call_with_backoff(context, "read_vm_item", RETRY, watch.to_record())
        return {"status": "Succeeded" if flow.item_protecting(item) else "InProgress", "item": item}

    seconds, looks = plan
    return (yield from _poll_until_done(context, looks, seconds, look))


@bp.orchestration_trigger(context_name="context")
def protect_resource(context: df.DurableOrchestrationContext) -> Task:
    """A supported resource was created or changed: bring it under the protection the rules decide."""
    given = context.get_input()
    intent = read_intent(given, ProtectResource)
    try:
        outcome: ProtectionOutcome = yield from _protect(context, intent, given)
    except Exception as error:  # noqa: BLE001 - an activity failed for good after its retries: say so, publish it
        outcome = _outcome(intent, OutcomeStatus.FAILED, reason=f"gave up after retries: {str(error)[:400]}")
    context.set_custom_status(outcome.shown().to_record())
    if not intent.quiet:
        # the time-to-protection metric: from the resource's event to now, in orchestration time (replay-safe)
        since = intent.origin.event_time.isoformat()
        yield from call_with_backoff(context, "publish_outcomes", RETRY, OutcomesToPublish(
            (outcome,), context.instance_id, since=since, at=context.current_utc_datetime.isoformat()).to_record())
    return outcome.to_record()


@bp.orchestration_trigger(context_name="context")
def handle_resource_gone(context: df.DurableOrchestrationContext) -> Task:
    """A protected resource was deleted: keep its recovery points (stop, retain) or leave it, per rule.

    Never deletes backup data.
    """
    given = context.get_input()
    intent = read_intent(given, ResourceGone)
    resource_id = str(intent.resource_id)
    found = yield from call_with_backoff(context, "find_protections", RETRY,
                                         SubscriptionsQuery((ResourceId.parse(resource_id).subscription_id,)).to_record())
    mine = flow.protections_of(resource_id, [ProtectionRef.from_record(r) for r in found])
    outcomes: list[ProtectionOutcome] = []
    for ref in mine:
        region = yield from call_with_backoff(context, "vault_region", RETRY, VaultAt(ref.vault_id).to_record())
        record = yield from call_with_backoff(context, "decide_protection", RETRY,
                                              FactsToDecide(flow.facts_of_gone(resource_id, ref, region)).to_record())
        choice = flow.on_delete(rules.decision_from_record(record))
        if choice == rules.OnDelete.LEAVE.value or not flow.is_active(ref):
            outcomes.append(_outcome(intent, OutcomeStatus.LEFT_AS_IS, vault_id=ref.vault_id, item_id=ref.item_id,
                                     reason=f"on delete: {choice}; item state {ref.state or 'unknown'}"))
            continue
        # Event Grid delivers unordered: confirm the resource is gone NOW before stopping anything
        live = yield from _describe(context, resource_id)
        alive = flow.alive_after_delete(given, live, ref)
        for _ in range(flow.GONE_RECHECKS):  # the same incarnation still answers: its delete may be finishing
            if alive is None or not alive.recheck:
                break
            yield context.create_timer(context.current_utc_datetime + timedelta(seconds=flow.GONE_RECHECK_SECONDS))
            live = yield from _describe(context, resource_id)
            alive = flow.alive_after_delete(given, live, ref)
        if alive is not None:
            outcomes.append(_outcome(intent, OutcomeStatus.LEFT_AS_IS, vault_id=ref.vault_id, item_id=ref.item_id,
                                     reason=alive.reason))
            continue
        stopped = yield from _stop_protection_retain(context, ref)
        status = OutcomeStatus.RETAINED if stopped["ok"] else OutcomeStatus.FAILED
        outcomes.append(_outcome(intent, status, vault_id=ref.vault_id, item_id=ref.item_id,
                                 reason="protection stopped, recovery points kept" if stopped["ok"]
                                 else stopped["message"]))
    if not outcomes:
        outcomes.append(_outcome(intent, OutcomeStatus.RESOURCE_GONE, reason="no protection referred to it"))
    yield from call_with_backoff(context, "publish_outcomes", RETRY,
                                 OutcomesToPublish(tuple(outcomes), context.instance_id).to_record())
    return [o.to_record() for o in outcomes]


@bp.orchestration_trigger(context_name="context")
def reconcile_move(context: df.DurableOrchestrationContext) -> Task:
    """Resources moved out of a resource group: protect each moved resource anew, make-before-break.

    The old item keeps its recovery points (backup data never moves between vaults) and the lineage
    old item -> new item is part of the outcome.
    """
    given = context.get_input()
    moved = read_intent(given, ResourcesMoved)
    source_group = str(moved.source_group)
    scope = StewardScope.from_record((yield from call_with_backoff(context, "steward_scope", RETRY, {})))
    subscriptions = list(scope.subscription_ids)
    found = yield from call_with_backoff(context, "find_protections", RETRY,
                                         SubscriptionsQuery(tuple(subscriptions)).to_record())
    protections = [ProtectionRef.from_record(r) for r in found]
    in_source = flow.protections_within(source_group, protections)
    still_there = yield from call_with_backoff(context, "list_resources", RETRY,
                                               ResourceListing(source_group, flow.SUPPORTED_TYPES).to_record())
    moved_out = flow.moved_out(in_source, [ResourceRecord.from_record(r) for r in still_there])
    candidates: list[ResourceRecord] = []
    for subscription_id in subscriptions:
        listed = yield from call_with_backoff(context, "list_resources", RETRY, ResourceListing(
            f"/subscriptions/{subscription_id}", flow.SUPPORTED_TYPES).to_record())
        candidates.extend(ResourceRecord.from_record(r) for r in listed)
    matches, unmatched = flow.match_moves(moved_out, candidates, protections)

    outcomes: list[dict[str, Any]] = []
    for index, match in enumerate(matches):
        child_intent = flow.protect_intent_for(match, moved)
        made = yield context.call_sub_orchestrator(
            "protect_resource", child_intent.to_record(), f"{context.instance_id}:protect:{index}"
        )
        outcome = ProtectionOutcome.from_record(made)
        if outcome.status in flow.SUCCESSFUL and not flow.same_item(outcome, match.old):
            stopped = yield from _stop_protection_retain(context, match.old)
            outcomes.append(flow.reprotected(outcome, match, stopped).to_record())
        else:
            outcomes.append(flow.not_reprotected(outcome, match).to_record())
    if unmatched:  # a resource deleted as its group moved looks moved: let its delete's run settle, then look
        yield context.create_timer(context.current_utc_datetime + timedelta(seconds=flow.MOVE_SETTLE_SECONDS))
        now = yield from call_with_backoff(context, "find_protections", RETRY,
                                           SubscriptionsQuery(tuple(subscriptions)).to_record())
        unmatched = flow.still_unaccounted(unmatched, [ProtectionRef.from_record(r) for r in now])
    outcomes.extend(flow.unmatched_outcome(ref, given).to_record() for ref in unmatched)
    vaults = yield from call_with_backoff(context, "list_vaults", RETRY,
                                          SubscriptionsQuery(tuple(subscriptions)).to_record())
    outcomes.extend(o.to_record() for o in flow.tenant_flags([VaultRecord.from_record(v) for v in vaults],
                                                             scope.tenants))
    outcomes.extend(o.to_record() for o in flow.unreachable_flags(scope))
    if outcomes:
        yield from call_with_backoff(context, "publish_outcomes", RETRY, OutcomesToPublish(
            tuple(ProtectionOutcome.from_record(o) for o in outcomes), context.instance_id).to_record())
    return outcomes


#: Rounds of read-plan-PUT in one run of ``add_blob_containers``: a container created while the run PUTs (its event
#: collapses onto this running instance) is picked up by the next round's fresh listing.
CONTAINER_ROUNDS: Final = 3


@bp.orchestration_trigger(context_name="context")
def add_blob_containers(context: df.DurableOrchestrationContext) -> Task:
    """A blob container was created in a storage account (issue 19 item 2): a vaulted backup covers only the
    containers its instance lists, so the instance gains the new ones (a modification of the instance, never
    dropping one); operational backup covers the whole account, nothing to do. Above 100 containers the outcome
    names the ones left out and why."""
    intent = read_intent(context.get_input(), ContainerCreated)
    try:
        outcome: ProtectionOutcome = yield from _add_blob_containers(context, intent)
    except Exception as error:  # noqa: BLE001 - an activity failed for good after its retries: say so, publish it
        outcome = _outcome(intent, OutcomeStatus.FAILED, reason=f"gave up after retries: {str(error)[:400]}")
    context.set_custom_status(outcome.shown().to_record())
    yield from call_with_backoff(context, "publish_outcomes", RETRY,
                                 OutcomesToPublish((outcome,), context.instance_id).to_record())
    return outcome.to_record()


def _stop_protection_retain(context: df.DurableOrchestrationContext, ref: ProtectionRef) -> Task:
    """``stop_protection_retain`` starts the stop; its operation is followed on durable timers at Azure's Retry-After
    (a Recovery Services one through ``vault_operation_status``); ``{"ok": true, "stopped"}`` or the refusal. A
    result recorded before the operation was followed here is final as it is."""
    look = "vault_operation_status" if ref.kind == VaultKind.RECOVERY_SERVICES else BACKUP_STATUS
    return (yield from _start_and_follow(
        context, "stop_protection_retain", StopRetaining(ref).to_record(),
        OperationWatch(ref.vault_id, resource_id=ref.source_id), operations.after_stop, look=look))


def _modify_instance(context: df.DurableOrchestrationContext, change: BlobContainerChange) -> Task:
    """``set_blob_containers`` starts the PUT; its operation is followed on durable timers at Azure's Retry-After and
    the instance read back once it ended (``operations.after_modification``). A result recorded before the
    operation was followed here is final as it is."""
    where = OperationWatch(change.vault_id, resource_id=change.account_id, name=change.name)
    return (yield from _start_and_follow(
        context, "set_blob_containers", change.to_record(), where, operations.after_modification, look=BACKUP_STATUS))


def _add_blob_containers(context: df.DurableOrchestrationContext, intent: ContainerCreated) -> Task:
    account = str(intent.resource_id)
    facts = yield from _describe(context, account)
    if facts is None:
        return _outcome(intent, OutcomeStatus.RESOURCE_GONE, reason="the storage account no longer exists")
    record = yield from call_with_backoff(context, "decide_protection", RETRY, FactsToDecide(facts).to_record())
    decision = rules.decision_from_record(record)
    if not isinstance(decision, rules.Protect):
        return _outcome(intent, flow.not_protected_status(decision), rule=decision.rule,
                        reason=f"{decision.reason}: its new containers are not backed up either")
    if decision.datastore.blob_tier is not rules.BlobTier.VAULTED:
        return _outcome(intent, OutcomeStatus.LEFT_AS_IS, rule=decision.rule, policy=decision.policy,
                        reason=blob_containers.OPERATIONAL_REASON)
    found = yield from call_with_backoff(context, "find_protections", RETRY,
                                         SubscriptionsQuery((ResourceId.parse(account).subscription_id,)).to_record())
    mine = [r for r in flow.protections_of(account, [ProtectionRef.from_record(f) for f in found])
            if r.kind == VaultKind.BACKUP.value and flow.is_active(r)]
    protected_now = not mine
    if protected_now:
        # the account is not protected yet: protect it now. Azure refuses a vaulted blob backup without a container
        # (flow.NO_CONTAINERS_YET), so an account created empty was left as is at its own write event; its first
        # container brings it here. The protection lists the containers it holds (at most 100); this run reports
        # them as added, and the rest as left out
        protect = ProtectResource(resource_id=intent.resource_id, origin=intent.origin)
        made: ProtectionOutcome = yield from _protect(context, protect, protect.to_record())
        if made.status is not OutcomeStatus.PROTECTED or made.vault_id is None or made.item_id is None:
            return made
        vault_id, item_id = made.vault_id, made.item_id
    else:
        vault_id, item_id = mine[0].vault_id, mine[0].item_id
    common = {"vault_id": vault_id, "item_id": item_id, "rule": decision.rule, "policy": decision.policy}
    where = BlobContainersAt(vault_id, item_id.rsplit("/", 1)[-1], account)
    before: int | None = None
    added: list[str] = []
    plan = None
    for _ in range(CONTAINER_ROUNDS):
        state = yield from call_with_backoff(context, "blob_container_state", RETRY, where.to_record())
        if not state["ok"] or state["instance"] is None:
            return _outcome(intent, OutcomeStatus.FAILED, **common,
                            reason=state.get("message") or "the backup instance is gone")
        current = blob_containers.containers_of(state["instance"])
        if before is None:
            before = 0 if protected_now else len(current)
            added = list(current) if protected_now else []
        plan = blob_containers.plan_containers(current, state["containers"], decision.datastore.blob_containers)
        if not plan.changed:
            break
        change = BlobContainerChange(where.vault_id, where.name, where.account_id, state["instance"],
                                     tuple(plan.containers))
        put = yield from _modify_instance(context, change)
        if not put["ok"]:
            return _outcome(intent, OutcomeStatus.FAILED, **common, details=plan.details(),
                            reason=f"modifying the backup instance was refused ({put.get('code')}: "
                            f"{put.get('message')}); its container list is unchanged")
        added += plan.added
    assert plan is not None and before is not None
    final = blob_containers.ContainerPlan(plan.containers, tuple(added), plan.left_out)
    status, reason = blob_containers.verdict(final, was_listed=before)
    return _outcome(intent, OutcomeStatus(status), **common, reason=reason, details=final.details())
