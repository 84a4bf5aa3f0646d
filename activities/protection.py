"""Activities of auto-protection: one Azure fact or effect each, idempotent, JSON records in and out.

Each reads its input as a record of ``steward/domain/protection_inputs.py`` (camelCase keys; an input queued
before those records, with snake_case keys, reads the same for one release).

Transient failures raise (the orchestration's retry options retry them). Refusals that a retry will not
change come back as ``{"ok": false, "code", "message"}`` so the orchestrator can decide (a conflict is
reported, never forced).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import random
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import azure.durable_functions as df

from steward import bootstrap, telemetry
from steward.cloud.errors import AzureRefusal, NotFound, TransientAzureError
from steward.cloud.protection import (
    BackupVaultProtection,
    RecoveryServicesProtection,
    ResourceReader,
    RoleGranted,
    VaultCreator,
    collect_protections,
    instance_name,
)
from steward.cloud.wire import dig
from steward.domain import blob_containers, operations, protection_flow
from steward.domain.errors import InvalidValue, StewardError
from steward.domain.ids import ResourceId
from steward.domain.kernel import VaultKind, normalise_region, parse_time
from steward.domain.protection import ProtectionRef
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
    VaultLoadsQuery,
    VaultSearch,
    VaultToCreate,
    VmInVault,
)
from steward.domain.protection_results import VaultRecord, VmProtectionBegun
from steward.domain.rules import vault_sets
from steward.logs import bind
from steward.report.events import protection_events
from steward.report.store import CONTENT_TYPES, ConflictingWrites, update

LOG = logging.getLogger("steward.activities.protection")
#: validateForBackup's refusal for a datasource a backup instance already protects (D-diskrest)
DATASOURCE_ALREADY_PROTECTED = operations.DATASOURCE_ALREADY_PROTECTED
#: a policy the cache still names is gone (the sandbox's inferred code; the generic ARM one)
POLICY_NOT_FOUND_CODES = frozenset({"UserErrorPolicyNotFound", "PolicyNotFound"})
bp = df.Blueprint()


def _refusal(error: AzureRefusal) -> dict[str, Any]:
    return {"ok": False, "code": error.code, "message": error.message, "status": error.status}


def _forget_cached(adapter: RecoveryServicesProtection | BackupVaultProtection, vault_id: str, policy: str) -> None:
    """Azure refused a request built from cached answers (the vault chosen from the cached list, the cached
    policy id, its cached load): the vault or its policy may have been deleted by hand, which no event tells the
    app, or the vault is full. Read them again on the next attempt rather than send the same stale request for the
    rest of the cache's lifetime."""
    adapter.forget_policy(vault_id, policy)
    adapter.forget_vaults(ResourceId.parse(vault_id).subscription_id)
    adapter.forget_load(vault_id)


def _adapter(kind: str) -> RecoveryServicesProtection | BackupVaultProtection:
    clients = bootstrap.clients()
    if kind == VaultKind.RECOVERY_SERVICES:
        return RecoveryServicesProtection(clients, bootstrap.arm_cache())
    return BackupVaultProtection(clients, bootstrap.arm_cache())


def _instant(text: str) -> datetime:
    """An ISO 8601 time as ARM writes it, for ordering (unreadable: the earliest)."""
    try:
        return parse_time(text) or datetime.min.replace(tzinfo=UTC)
    except InvalidValue:
        return datetime.min.replace(tzinfo=UTC)


def _guard(effect: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    try:
        return effect()
    except AzureRefusal as error:
        return _refusal(error)


@bp.activity_trigger(input_name="request")
def describe_resource(request: dict[str, Any]) -> dict[str, Any] | None:
    """Facts about a resource (type, region, tags, identity), or None when it no longer exists."""
    facts = ResourceReader(bootstrap.clients()).describe(ResourceAt.from_record(request).resource_id)
    return None if facts is None else facts.to_record()


@bp.activity_trigger(input_name="request")
def decide_protection(request: dict[str, Any]) -> dict[str, Any]:
    """Apply the configured rules to a resource's facts (pure decision, rules from settings)."""
    return protection_flow.decide(FactsToDecide.from_record(request).facts, bootstrap.rules()).to_record()


@bp.activity_trigger(input_name="request")
def find_vaults(request: dict[str, Any]) -> list[dict[str, Any]]:
    """Vaults of one kind in a subscription and region."""
    search = VaultSearch.from_record(request)
    adapter = _adapter(search.kind)
    return [v.to_record() for v in adapter.vaults_in(search.subscription_id, search.region)]


@bp.activity_trigger(input_name="request")
def vault_loads(request: dict[str, Any]) -> list[dict[str, Any]]:
    """What each vault of a vault set protects now (issue 19): ``[{"id", "items", "vms"}]``, from the ARM cache
    unless ``fresh`` (after Azure refused one as full). LEGACY (one release): kept for the orchestrations in flight
    that scheduled it before ``reserve_in_set`` replaced it."""
    query = VaultLoadsQuery.from_record(request)
    adapter = _adapter(query.kind)
    loads = [{"id": vault_id, **adapter.vault_load(vault_id, fresh=query.fresh)} for vault_id in query.vault_ids]
    if query.decision is not None:
        # the orchestration makes this same pure choice from these loads: count the chosen vault up in this worker's
        # cache now, so protections choosing at the same moment see it (the threshold is kept within a worker)
        step = protection_flow.choose_in_set(query.decision, [VaultRecord(id=i) for i in query.vault_ids], loads,
                                             list(query.refused))
        if step.vault is not None:
            adapter.counted_protection(step.vault.id, vm=query.kind == VaultKind.RECOVERY_SERVICES)
    return loads


#: how often a reservation reads the set's ledger again after another protection's write got there first
RESERVE_ATTEMPTS: Final = 200
#: at most this long (real seconds, uniformly drawn) a reservation pauses after losing a conditional write, so the
#: writers of a burst do not all read and lose again in step
CONFLICT_PAUSE_SECONDS: Final = 0.01


def _ledger(data: bytes | None) -> vault_sets.SetLedger:
    """The set's ledger as stored (none yet, or unreadable: an empty one; the counts are listed again)."""
    if data is None:
        return vault_sets.SetLedger()
    try:
        return vault_sets.SetLedger.from_document(json.loads(data))
    except (ValueError, TypeError, StewardError) as error:
        LOG.warning("vault set ledger unreadable, starting it again: %s", error)
        return vault_sets.SetLedger()


def _ledger_bytes(ledger: vault_sets.SetLedger) -> bytes:
    return json.dumps(ledger.to_document(), separators=(",", ":")).encode("utf-8")


@bp.activity_trigger(input_name="request")
def reserve_in_set(request: dict[str, Any]) -> dict[str, Any]:
    """Choose a vault set's member and reserve a slot in it, in one conditional write of the set's ledger in the
    report store (issue 19: choices from counts read earlier let a burst overfill a member). The members whose
    count is older than STEWARD_ARM_CACHE_SECONDS (Azure time), or all when ``fresh``, are listed first; the
    listing ends the reservations it shows protected. A ``SetReservation`` record."""
    asked = vault_sets.SetReservationAsked.from_record(request)
    target = asked.vault_set
    settings = bootstrap.settings()
    adapter = _adapter(target.vault_kind.value)
    store = bootstrap.report_store()
    name = vault_sets.ledger_name(target)
    max_age = timedelta(seconds=settings.arm_cache_seconds)
    members: list[tuple[ResourceId, dict[str, str]]] = [(ResourceId.parse(i), {}) for i in asked.vault_ids]
    passed = [ResourceId.parse(i) for i in asked.passed_over]
    listings: dict[str, vault_sets.Listing] = {}

    def listing(ledger: vault_sets.SetLedger, vault_id: str) -> vault_sets.Listing:
        counted = ledger.count(vault_id)
        load, resources = adapter.list_load(vault_id)
        return vault_sets.Listing(vault_id, vault_sets.VaultLoad(load["items"], load["vms"]), resources,
                                  counted.generation if counted is not None else 0)

    with bind(resource_id=asked.resource_id):
        for _ in range(RESERVE_ATTEMPTS):
            data, version = store.get_versioned(name)
            ledger = _ledger(data)
            stale = [v for v in asked.vault_ids if v.lower() not in listings and vault_sets.needs_listing(
                ledger, v, asked.now, max_age, fresh=asked.fresh)]
            # a stale count another protection is listing is used as it is (one lister per member in a burst); a
            # member never counted, or all when ``fresh``, is listed whoever else lists it (never waited for: an
            # activity waiting for another is a wait the Durable host does not see)
            claim = [v for v in stale if not asked.fresh and not vault_sets.leased(ledger, v, asked.now)]
            must = [v for v in stale if v not in claim and (
                asked.fresh or vault_sets.held_load(ledger, ResourceId.parse(v)) is None)]
            if claim and not store.put_if(name, _ledger_bytes(vault_sets.lease(ledger, claim, asked.now)),
                                          CONTENT_TYPES[".json"], version=version):
                continue
            if claim or must:  # list them, then read the ledger again (the lease changed it)
                listings.update((v.lower(), listing(ledger, v)) for v in [*claim, *must])
                continue
            for found in listings.values():
                ledger = vault_sets.reconcile(ledger, found, asked.now)
            reserved = vault_sets.reserve(target, members, ledger, asked.resource_id, asked.now, refused=passed,
                                          may_grow=asked.grow and settings.auto_create_vaults)
            if store.put_if(name, _ledger_bytes(reserved.ledger), CONTENT_TYPES[".json"], version=version):
                return vault_sets.SetReservation.of(reserved).to_record()
            time.sleep(random.uniform(0, CONFLICT_PAUSE_SECONDS))  # noqa: S311 (spreads the next tries; not a secret)
    raise ConflictingWrites(f"{name}: {RESERVE_ATTEMPTS} conditional writes lost to other protections")


@bp.activity_trigger(input_name="request")
def release_in_set(request: dict[str, Any]) -> dict[str, Any]:
    """End the reservation a protection holds on a vault set's member (it failed, or did not land there)."""
    asked = vault_sets.SetReleaseAsked.from_record(request)
    name = vault_sets.ledger_name(asked.vault_set)

    def change(data: bytes | None) -> bytes | None:
        if data is None:
            return None
        return _ledger_bytes(vault_sets.release(_ledger(data), asked.resource_id, asked.vault_id))

    update(bootstrap.report_store(), name, change, CONTENT_TYPES[".json"], attempts=RESERVE_ATTEMPTS)
    return {"ok": True}


@bp.activity_trigger(input_name="request")
def create_vault(request: dict[str, Any]) -> dict[str, Any]:
    """Create the missing regional vault with secure defaults - only when STEWARD_AUTO_CREATE_VAULTS is on. Returns
    as soon as Azure accepted the PUT: an ``OperationStarted`` record of step ``vault`` (the orchestrator follows
    it on durable timers with ``vault_creation_status`` and verifies the vault as it reads back), or, when Azure
    answered at once (a Recovery Services vault: ``PUTVault.json`` answers ``Succeeded``), the result: ``{"ok":
    true, "vault"}`` once the answer is verified, or a refusal."""
    wanted = VaultToCreate.from_record(request)
    settings = bootstrap.settings()
    if not settings.auto_create_vaults:
        return {"ok": False, "code": "AutoCreateOff", "message": "STEWARD_AUTO_CREATE_VAULTS is off"}
    if not settings.manages(wanted.subscription_id):
        return {"ok": False, "code": "OutOfScope", "message": "the subscription is not in STEWARD_SUBSCRIPTIONS"}
    creator = VaultCreator(bootstrap.clients(), bootstrap.arm_cache())
    # a vault set's next vault comes named, with the set's tags (issue 19); else the region's default vault
    named = (wanted.resource_group, wanted.name) if wanted.name else None
    tags = dict(wanted.tags) if named else None

    def effect() -> dict[str, Any]:
        if named is not None:  # created a moment ago by another protection: use it as it is, never PUT over it
            found = creator.existing(wanted.kind, wanted.subscription_id, *named)
            if found is not None:
                if normalise_region(found.location) != normalise_region(wanted.region):
                    return {"ok": False, "code": "VaultNameTaken",
                            "message": f"{found.id} exists in {found.location}, not {wanted.region}"}
                return {"ok": True, "vault": found.to_record(), "existed": True}
        sent, accepted = creator.begin_create(
            wanted.kind, wanted.subscription_id, wanted.region, settings.vault_default_tag,
            named=named, tags=tags, always_on=wanted.always_on, immutable=wanted.immutable,
        )
        begun = operations.OperationStarted(step=operations.Step.VAULT, operation=accepted["operation"],
                                            retry_after=int(accepted["retry_after"] or 0), body=sent,
                                            instance=accepted["vault"])
        answered = accepted["vault"]
        state = str(dig(answered, "properties", "provisioningState") or "").lower()
        if accepted["operation"] or state not in ("succeeded", "failed", "canceled"):
            return begun.to_record()  # followed on durable timers
        # answered at once: the answer is the vault as it is (the verification of a Recovery Services vault)
        ended = operations.OperationState(status="Succeeded" if state == "succeeded" else state.title(),
                                          instance=answered)
        made = operations.after_vault(ended, begun)
        if made["ok"] and wanted.kind == VaultKind.BACKUP:
            creator.create_policies(made["vault"]["id"])
        return made

    return _guard(effect)


@bp.activity_trigger(input_name="request")
def copy_policy(request: dict[str, Any]) -> dict[str, Any]:
    """Give a vault set's new vault the rule's policy (issue 19): a new Recovery Services vault holds only Azure's
    DefaultPolicy and EnhancedPolicy, a new Backup vault only the app's default ones (``kind``; Recovery Services when
    absent). Idempotent: nothing is written when ``vault_id`` has ``policy`` already; else the first of ``sources``
    (the set's members) that has it is read and its properties PUT into ``vault_id`` under the same name
    (``rules.vault_sets.policy_copy``: read-only fields stripped). ``{"ok", "copied", "source"}`` or a refusal (none
    of the members has it: ``PolicyNotFound``; Azure's policy limits: its code)."""
    copy = PolicyCopy.from_record(request)
    adapter = _adapter(copy.kind)
    target, name = copy.vault_id, copy.policy

    def effect() -> dict[str, Any]:
        if adapter.policy(target, name) is not None:
            return {"ok": True, "copied": False}
        for source in copy.sources:
            if source.lower() == target.lower():
                continue
            found = adapter.policy(source, name)
            if found is None:
                continue
            adapter.put_policy(target, name, vault_sets.policy_copy(found))
            if adapter.policy(target, name) is None:  # a 202: Azure finishes the PUT later; the retry looks again
                raise TransientAzureError(f"policy {name} not yet readable in {target} after its PUT")
            LOG.info("copied policy %s from %s into %s", name, source, target)
            return {"ok": True, "copied": True, "source": source}
        return {"ok": False, "code": "PolicyNotFound",
                "message": f"policy {name} is in no member of the vault set to copy it from"}

    with bind(vault_id=target):
        return _guard(effect)


@bp.activity_trigger(input_name="request")
def vault_creation_status(request: dict[str, Any]) -> dict[str, Any]:
    """One look at the creation of a vault (``vault_id``; ``operation``: its status URL, "" to read the vault's
    ``provisioningState``); once it ended, the vault as it reads back (``instance``: the verification)."""
    watch = OperationWatch.from_record(request)
    creator = VaultCreator(bootstrap.clients(), bootstrap.arm_cache())
    look = creator.creation_status(watch.vault_id, watch.operation)
    state = operations.OperationState(status=str(look.get("status") or ""), error=look.get("error") or {},
                                      retry_after=int(look.get("retry_after") or 0))
    if not state.running:
        found = look.get("vault") or creator.read(watch.vault_id)
        state = dataclasses.replace(state, instance=found or {})
        kind = ResourceId.parse(watch.vault_id).vault_kind
        if kind is not None:  # a list cached while it provisioned may lack it
            creator.forget_vaults(kind, ResourceId.parse(watch.vault_id).subscription_id)
    return state.to_record()


@bp.activity_trigger(input_name="request")
def create_vault_policies(request: dict[str, Any]) -> dict[str, Any]:
    """The default policies of a Backup vault the app created (PUTs, idempotent), once its creation ended and it
    read back as created: ``{"ok": true, "policies"}`` or a refusal."""
    vault_id = VaultAt.from_record(request).vault_id
    creator = VaultCreator(bootstrap.clients(), bootstrap.arm_cache())
    return _guard(lambda: {"ok": True, "policies": creator.create_policies(vault_id)})


@bp.activity_trigger(input_name="request")
def list_vaults(request: dict[str, Any]) -> list[dict[str, Any]]:
    """Every Recovery Services and Backup vault in the given subscriptions."""
    query = SubscriptionsQuery.from_record(request)
    clients = bootstrap.clients()
    rs, bv = RecoveryServicesProtection(clients), BackupVaultProtection(clients)
    return [
        v.to_record()
        for subscription_id in query.subscription_ids
        for v in rs.all_vaults(subscription_id) + bv.all_vaults(subscription_id)
    ]


@bp.activity_trigger(input_name="request")
def vault_region(request: dict[str, Any]) -> str:
    """The region of a vault (where the resources it protects live)."""
    facts = ResourceReader(bootstrap.clients()).describe(VaultAt.from_record(request).vault_id)
    return "" if facts is None else facts.location


@bp.activity_trigger(input_name="request")
def vm_backup_status(request: dict[str, Any]) -> dict[str, Any]:
    vm = ResourceAt.from_record(request)
    return RecoveryServicesProtection(bootstrap.clients()).backup_status(vm.resource_id, vm.region)


@bp.activity_trigger(input_name="request")
def begin_vm_protection(request: dict[str, Any]) -> dict[str, Any]:
    """Ask Azure to protect a VM with a policy; returns once the operation is accepted (or a refusal).

    Idempotent: an item that already protects the VM is returned as done, without a second PUT.
    """
    target = VmInVault.from_record(request)
    adapter = RecoveryServicesProtection(bootstrap.clients(), bootstrap.arm_cache())

    def effect() -> dict[str, Any]:
        existing = adapter.vm_item(target.vault_id, target.resource_id)
        if protection_flow.item_protecting(existing):
            return VmProtectionBegun(ok=True, item=existing or {}, done=True).to_record()
        if protection_flow.item_soft_deleted(existing):  # never PUT over recoverable data: a person undeletes
            return VmProtectionBegun(ok=False, code=protection_flow.ITEM_SOFT_DELETED,
                                     message=protection_flow.SOFT_DELETED_REASON.format(vault=target.vault_id),
                                     ).to_record()
        policy_id = adapter.policy_id(target.vault_id, target.policy)
        if policy_id is None:  # or the (cached) vault is gone: read both again next time
            adapter.forget_vaults(ResourceId.parse(target.vault_id).subscription_id)
            return VmProtectionBegun(ok=False, code="PolicyNotFound",
                                     message=f"policy {target.policy} not in vault").to_record()
        try:
            begun = adapter.begin_enable(target.vault_id, target.resource_id, policy_id)
        except (AzureRefusal, NotFound):
            _forget_cached(adapter, target.vault_id, target.policy)
            raise
        return begun.to_record()

    with bind(resource_id=target.resource_id, vault_id=target.vault_id):
        try:
            return effect()
        except AzureRefusal as error:
            return VmProtectionBegun(ok=False, code=error.code or "", message=error.message,
                                     status=error.status).to_record()


@bp.activity_trigger(input_name="request")
def vm_protection_status(request: dict[str, Any]) -> dict[str, Any]:
    """One look at Azure's protection operation; once it ended well, the item it made."""
    vm = VmInVault.from_record(request)
    adapter = RecoveryServicesProtection(bootstrap.clients())
    status = adapter.operation_status(vm.vault_id, vm.operation)
    if status["status"] == "Succeeded":
        status["item"] = adapter.vm_item(vm.vault_id, vm.resource_id)
    return status


@bp.activity_trigger(input_name="request")
def refresh_vm_containers(request: dict[str, Any]) -> dict[str, Any]:
    """Start a refresh of the vault's containers (VM discovery); returns once Azure accepted it."""
    vault_id = VaultAt.from_record(request).vault_id
    adapter = RecoveryServicesProtection(bootstrap.clients())
    with bind(vault_id=vault_id):
        return _guard(lambda: {"ok": True, "operation": adapter.begin_refresh_containers(vault_id)})


@bp.activity_trigger(input_name="request")
def vault_operation_status(request: dict[str, Any]) -> dict[str, Any]:
    """One look at a Recovery Services vault operation (e.g. a container refresh); Succeeded when none is named."""
    watch = OperationWatch.from_record(request)
    if not watch.operation:
        return {"status": "Succeeded"}
    return RecoveryServicesProtection(bootstrap.clients()).operation_status(watch.vault_id, watch.operation)


@bp.activity_trigger(input_name="request")
def read_vm_item(request: dict[str, Any]) -> dict[str, Any] | None:
    """The VM's protected item in a vault, or None."""
    vm = VmInVault.from_record(request)
    return RecoveryServicesProtection(bootstrap.clients()).vm_item(vm.vault_id, vm.resource_id)


@bp.activity_trigger(input_name="request")
def grant_vault_roles(request: dict[str, Any]) -> dict[str, Any]:
    """Give the Backup vault's identity the roles its workload needs (idempotent), one after the other. ``created``:
    the roles whose PUT was sent (on a refusal, ``{"ok": false, ...}``: those sent before it, which stay - Azure
    answers a create and an idempotent re-create alike, so whether one is this grant's own, and no other
    protection's, cannot be told; none is deleted on that guess); ``held``: roles Azure refused at the subscription's
    limit that the identity already holds at or above their scope (no assignment made); ``created_on``: when the
    newest of the assignments was made (None: not known, or a PUT made one whose answer gave no time: now), so a
    protection whose roles another one just made (a shared group or subscription scope) waits for them too;
    ``settle_seconds``: how long this worker last saw the identity's new roles take to apply (None: not known);
    ``probe``: this protection finds that out (``protection_flow.rbac_settle_seconds``, ``rbac_fresh_since``)."""
    wanted = RoleGrants.from_record(request)
    adapter = BackupVaultProtection(bootstrap.clients(), bootstrap.arm_cache())

    def effect() -> dict[str, Any]:
        if wanted.fresh:  # still refused after the documented propagation bound: PUT them again
            adapter.forget_roles(wanted.principal_id)
        done: list[tuple[str, RoleGranted]] = []
        for grant in wanted.grants:
            try:
                done.append((grant.role, adapter.grant_role(wanted.principal_id, grant.role_definition_guid,
                                                            grant.scope)))
            except AzureRefusal as error:  # the assignments PUT before it are kept (not proven this grant's own)
                return {**_refusal(error), "created": [role for role, granted in done if granted.put]}
        created = [role for role, granted in done if granted.put]
        held = [{"role": role, "scope": granted.held_at} for role, granted in done if granted.held_at]
        if held:
            LOG.info("roles already held at or above their scope, no assignment made (at the limit): %s", held)
        made = [granted.created_on for _, granted in done if granted.created_on]
        # a PUT whose answer gave no createdOn made its assignment now: None (the wait counts from the grant's own
        # time, protection_flow.rbac_fresh), never an older time of another assignment
        untimed = any(granted.put and not granted.created_on for _, granted in done)
        principal = wanted.principal_id
        settle = adapter.settle_seconds(principal)
        probe = bool(created) and settle is None and adapter.claim_probe(principal)
        return {"ok": True, "created": created, "settle_seconds": settle, "probe": probe,
                "created_on": max(made, key=_instant) if made and not untimed else None,
                **({"held": held} if held else {})}

    return _guard(effect)


@bp.activity_trigger(input_name="request")
def note_rbac_settle(request: dict[str, Any]) -> dict[str, Any]:
    """Remember (this worker's ARM cache) how long the vault identity's new role assignments took to apply
    (``seconds``; None: the probe ended without finding out), and that no protection is finding it out now."""
    note = RbacSettleNote.from_record(request)
    BackupVaultProtection(bootstrap.clients(), bootstrap.arm_cache()).note_settle(
        note.principal_id, None if note.seconds is None else float(note.seconds))
    return {"ok": True}


@bp.activity_trigger(input_name="request")
def rbac_settle_state(request: dict[str, Any]) -> dict[str, Any]:
    """What this worker knows of how long the vault identity's new roles take to apply: ``settle_seconds`` (None:
    not known) and whether a protection is finding it out (``probing``)."""
    adapter = BackupVaultProtection(bootstrap.clients(), bootstrap.arm_cache())
    principal = VaultIdentity.from_record(request).principal_id
    return {"settle_seconds": adapter.settle_seconds(principal), "probing": adapter.probing(principal)}


@bp.activity_trigger(input_name="request")
def protect_in_backup_vault(request: dict[str, Any]) -> dict[str, Any]:
    """Start protecting a resource in a Backup vault: POST ``validateForBackup`` and return as soon as Azure accepted
    it (an ``OperationStarted`` record of step ``validate``; the orchestrator follows it on durable timers, then
    calls ``begin_backup_instance``). A refusal comes back as ``{"ok": false, ...}``; a datasource an instance of
    ours already protects as ``{"ok": true, "instance", "created": false}`` (or, when that instance failed, the
    started PUT that configures it again)."""
    wanted = BackupInstanceRequest.from_record(request)
    adapter = BackupVaultProtection(bootstrap.clients(), bootstrap.arm_cache())
    vault_id = wanted.vault_id
    name = instance_name(wanted.resource_id)

    def effect() -> dict[str, Any]:
        policy_id = adapter.policy_id(vault_id, wanted.policy)
        if policy_id is None:  # or the (cached) vault is gone: read both again next time
            adapter.forget_vaults(ResourceId.parse(vault_id).subscription_id)
            return {"ok": False, "code": "PolicyNotFound", "message": f"policy {wanted.policy} not in vault"}
        containers = None
        if protection_flow.lists_account_containers(wanted.decision):  # vaulted blobs, every container: at most 100
            found = ResourceReader(bootstrap.clients()).blob_containers(wanted.resource_id)
            containers = blob_containers.plan_containers([], found).containers
            if not containers:  # Azure refuses a vaulted blob instance without a container: wait for the first
                return {"ok": False, "code": protection_flow.NO_CONTAINERS_YET,
                        "message": protection_flow.NO_CONTAINERS_REASON}
        body = protection_flow.backup_instance_body(wanted.facts, wanted.decision, policy_id, containers)
        # no GET of the instance first: validation refuses a datasource an instance already protects, and only
        # then is the instance read (operations.after_validation)
        try:
            accepted = adapter.validate(vault_id, body)
        except NotFound:
            _forget_cached(adapter, vault_id, wanted.policy)
            raise
        except AzureRefusal as refusal:
            if refusal.code in POLICY_NOT_FOUND_CODES:
                adapter.forget_policy(vault_id, wanted.policy)
            if refusal.code != DATASOURCE_ALREADY_PROTECTED:
                raise
            existing = adapter.instance(vault_id, name)
            state = operations.OperationState(status="Failed", error={"code": refusal.code,
                                                                      "message": refusal.message},
                                              instance=existing or {})
            after = operations.after_validation(state)
            if after.final is not None:
                if existing is None:
                    raise
                return after.final
            return _begin_instance(adapter, wanted, body, after.repaired)
        return operations.OperationStarted(step=operations.Step.VALIDATE, operation=accepted["operation"],
                                           retry_after=accepted["retry_after"] or 0, body=body).to_record()

    with bind(resource_id=wanted.resource_id, vault_id=vault_id):
        return _guard(effect)


def _begin_instance(adapter: BackupVaultProtection, request: BackupInstanceRequest, body: dict[str, Any],
                    repaired: Any = None) -> dict[str, Any]:
    vault_id = request.vault_id
    if repaired and protection_flow.remedy_for(repaired) == protection_flow.REMEDY_SYNC:
        # Azure's remedy for this failure, instead of a re-PUT (protection_flow.remedy_for); followed as a PUT is
        name = instance_name(request.resource_id)
        accepted = adapter.begin_sync_instance(vault_id, name)
        # answered at once (200, no operation): the instance as it reads back now is the verification
        instance = {} if accepted["operation"] else (adapter.instance(vault_id, name) or {})
        return operations.OperationStarted(
            step=operations.Step.INSTANCE, operation=accepted["operation"], retry_after=accepted["retry_after"] or 0,
            body=body, repaired={**repaired, "remedy": protection_flow.REMEDY_SYNC}, instance=instance,
        ).to_record()
    try:
        accepted = adapter.begin_create_instance(vault_id, instance_name(request.resource_id), body)
    except (AzureRefusal, NotFound) as error:
        if isinstance(error, NotFound) or error.code in POLICY_NOT_FOUND_CODES:
            _forget_cached(adapter, vault_id, request.policy)
        raise
    # a vault set's cached count went up when the set chose this vault (vault_loads), not here (issue 19)
    return operations.OperationStarted(
        step=operations.Step.INSTANCE, operation=accepted["operation"], retry_after=accepted["retry_after"] or 0,
        body=body, repaired=repaired or {}, instance={} if accepted["operation"] else accepted["instance"],
    ).to_record()


@bp.activity_trigger(input_name="request")
def begin_backup_instance(request: dict[str, Any]) -> dict[str, Any]:
    """PUT the backup instance (idempotent by deterministic name) with the validated ``body``; return as soon as Azure
    accepted it (an ``OperationStarted`` record of step ``instance``) or its refusal."""
    wanted = BackupInstanceRequest.from_record(request)
    adapter = BackupVaultProtection(bootstrap.clients(), bootstrap.arm_cache())
    with bind(resource_id=wanted.resource_id, vault_id=wanted.vault_id):
        return _guard(lambda: _begin_instance(adapter, wanted, dict(wanted.body), dict(wanted.repaired) or None))


@bp.activity_trigger(input_name="request")
def backup_operation_status(request: dict[str, Any]) -> dict[str, Any]:
    """One look at a Backup-vault operation (``operation``: its status URL) of step ``step``; once it ended and
    ``operations.reads_instance`` says so, the backup instance as it reads back (the verification of a PUT): the one
    named ``name``, else the app's deterministic name for ``resource_id``."""
    watch = OperationWatch.from_record(request)
    adapter = BackupVaultProtection(bootstrap.clients())
    step = operations.Step(watch.step)
    look = adapter.operation_status(watch.vault_id, watch.operation)
    state = operations.OperationState(status=str(look.get("status") or ""), error=look.get("error") or {},
                                      retry_after=int(look.get("retry_after") or 0))
    if operations.reads_instance(step, state):
        found = adapter.instance(watch.vault_id, watch.name or instance_name(watch.resource_id))
        state = dataclasses.replace(state, instance=found or {})
    return state.to_record()


@bp.activity_trigger(input_name="request")
def find_protections(request: dict[str, Any]) -> list[dict[str, Any]]:
    """Every protection (RS VM items, Backup vault instances) in the given subscriptions."""
    query = SubscriptionsQuery.from_record(request)
    clients = bootstrap.clients()
    rs = RecoveryServicesProtection(clients)
    bv = BackupVaultProtection(clients)
    found: list[ProtectionRef] = []
    for subscription_id in query.subscription_ids:
        for region in query.regions or (None,):
            found.extend(collect_protections(rs, bv, subscription_id, region))
    return [p.to_record() for p in found]


@bp.activity_trigger(input_name="request")
def list_resources(request: dict[str, Any]) -> list[dict[str, Any]]:
    listing = ResourceListing.from_record(request)
    reader = ResourceReader(bootstrap.clients())
    return [f.to_record() for f in reader.list_in_scope(listing.scope, listing.types)]


@bp.activity_trigger(input_name="request")
def stop_protection_retain(request: dict[str, Any]) -> dict[str, Any]:
    """Stop protection and keep every recovery point. Never deletes backup data. Returns as soon as Azure accepted
    the stop (an ``OperationStarted`` record of step ``stop``, followed by the orchestrator on durable timers), or
    ``{"ok": true, "stopped": ...}`` when there was nothing to stop, or a refusal."""
    ref = StopRetaining.from_record(request).protection
    clients = bootstrap.clients()

    def effect() -> dict[str, Any]:
        if ref.kind == VaultKind.RECOVERY_SERVICES:
            accepted = RecoveryServicesProtection(clients).begin_stop_retain(ref.vault_id, ref.source_id)
            if accepted is None:
                return {"ok": True, "stopped": False}
        else:
            name = ref.item_id.rsplit("/", 1)[-1]
            accepted = BackupVaultProtection(clients).begin_stop_protection(ref.vault_id, name)
        if not accepted["operation"]:
            return {"ok": True, "stopped": True}
        return operations.OperationStarted(step=operations.Step.STOP, operation=accepted["operation"],
                                           retry_after=accepted["retry_after"] or 0).to_record()

    with bind(resource_id=ref.source_id, vault_id=ref.vault_id):
        return _guard(effect)


@bp.activity_trigger(input_name="request")
def publish_outcomes(request: dict[str, Any]) -> int:
    """Publish protection outcomes to the configured Event Grid topic."""
    published = OutcomesToPublish.from_record(request)
    outcomes = list(published.outcomes)
    events = protection_events(outcomes)
    for outcome in outcomes:
        # the instance that decided it (an activity does not know it unless told) and the correlation id the
        # outcome carries from the triggering event: the line joins the trigger's and the orchestration's lines
        LOG.info(
            "%s",
            outcome.log_line(),
            extra={"resource_id": outcome.resource_id, "correlation_id": outcome.correlation_id,
                   "status": outcome.status.value, "rule": outcome.rule, "instance_id": published.instance_id},
        )
    telemetry.record_protections([o.to_record() for o in outcomes], since=published.since, at=published.at)
    return bootstrap.publisher().publish(events)


@bp.activity_trigger(input_name="request")
def blob_container_state(request: dict[str, Any]) -> dict[str, Any]:
    """A vaulted blob protection as it stands: the backup instance (None when gone) and the names of the storage
    account's containers now (issue 19 item 2)."""
    where = BlobContainersAt.from_record(request)
    clients = bootstrap.clients()

    def effect() -> dict[str, Any]:
        instance = BackupVaultProtection(clients).instance(where.vault_id, where.name)
        containers = ResourceReader(clients).blob_containers(where.account_id)
        return {"ok": True, "instance": instance, "containers": containers}

    with bind(resource_id=where.account_id, vault_id=where.vault_id):
        return _guard(effect)


@bp.activity_trigger(input_name="request")
def set_blob_containers(request: dict[str, Any]) -> dict[str, Any]:
    """Start modifying a backup instance to back up ``containers`` (its own properties, the list replaced: the caller
    only ever appends): the PUT, returned as soon as Azure accepted it (an ``OperationStarted`` record of step
    ``instance``; the orchestrator follows it on durable timers and reads the instance back), or its refusal."""
    change = BlobContainerChange.from_record(request)
    adapter = BackupVaultProtection(bootstrap.clients(), bootstrap.arm_cache())

    def effect() -> dict[str, Any]:
        body = blob_containers.modified_instance(change.instance, list(change.containers))
        accepted = adapter.begin_create_instance(change.vault_id, change.name, body)
        return operations.OperationStarted(
            step=operations.Step.INSTANCE, operation=accepted["operation"], retry_after=accepted["retry_after"] or 0,
            instance={} if accepted["operation"] else accepted["instance"],
        ).to_record()

    with bind(resource_id=change.account_id, vault_id=change.vault_id):
        return _guard(effect)
