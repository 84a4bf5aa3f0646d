"""The audit itself: every control checked against the inventory and what the rules expect."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

from steward.domain.audit.controls import Severity, control, policy_key
from steward.domain.audit.expectations import (
    NO_REQUIREMENTS,
    Expectation,
    ExpectationSource,
    RuleExpectations,
    VaultRequirements,
)
from steward.domain.audit.inventory import (
    PROTECTABLE_TYPES,
    STORAGE_TYPE,
    VM_TYPE,
    AuditError,
    BackupInstance,
    EstateInventory,
    ProtectableResource,
    ProtectionStatus,
    RoleAssignmentCount,
    Vault,
    iso,
)
from steward.domain.audit.redundant import redundant_assignments
from steward.domain.audit.results import (
    TREND_LENGTH,
    AuditResult,
    Coverage,
    CoverageCell,
    Finding,
    TrendPoint,
    finding_id,
)
from steward.domain.blob_containers import MAX_VAULTED_CONTAINERS, selectable
from steward.domain.kernel import (
    ImmutabilityState,
    VaultKind,
    aware_time,
    id_key,
    name_of,
    normalise_region,
    subscription_of,
)
from steward.domain.rules import (
    DEFAULT_FILL_PERCENT,
    RuleSet,
    vault_sets,
)
from steward.domain.workloads import (
    DISK_BACKUP_READER,
    DISK_RESTORE_OPERATOR,
    DISK_SNAPSHOT_CONTRIBUTOR,
    POSTGRES_FLEX_LTR_BACKUP,
    READER,
    ROLE_ASSIGNMENTS_PER_SUBSCRIPTION,
    STORAGE_ACCOUNT_BACKUP_CONTRIBUTOR,
    STORAGE_BLOB_DATA_CONTRIBUTOR,
)

#: Azure's role assignments per subscription (``workloads.ROLE_ASSIGNMENTS_PER_SUBSCRIPTION``) and the share of it
#: from which CAP-003 warns by default
ROLE_ASSIGNMENT_LIMIT: Final = ROLE_ASSIGNMENTS_PER_SUBSCRIPTION
DEFAULT_ROLE_ASSIGNMENT_PERCENT: Final = 80


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
    drills: Sequence[Mapping[str, Any]] = (),
    drill_leftovers: Sequence[Mapping[str, Any]] = (),
    role_assignment_percent: int = DEFAULT_ROLE_ASSIGNMENT_PERCENT,
) -> AuditResult:
    """Audit ``inventory`` against ``rules`` at ``now``; compare with ``previous`` when given.

    ``rules``: a :class:`~steward.domain.rules.RuleSet` (read through :class:`RuleExpectations` with the
    inventory's vaults) or any :class:`ExpectationSource`. ``role_assignment_percent``: the share of Azure's
    4,000 role assignments per subscription from which CAP-003 warns (STEWARD_ROLE_ASSIGNMENT_WARN_PERCENT).
    """
    if now.tzinfo is None:
        raise AuditError("now must be timezone-aware (UTC)")
    if not 1 <= role_assignment_percent <= 100:
        raise AuditError(f"role_assignment_percent must be 1..100, not {role_assignment_percent}")
    fill_percent = (rules.vault_fill_percent if isinstance(rules, RuleSet | RuleExpectations)
                    else DEFAULT_FILL_PERCENT)
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

    for instance in sorted(inventory.backup_instances, key=lambda b: id_key(b.id)):
        _check_blob_containers(out, instance, resources)

    for vault in sorted(inventory.vaults, key=lambda v: v.key):
        requirements, rule_names = vault_needs.get(vault.key, (NO_REQUIREMENTS, []))
        _check_vault(out, vault, requirements, rule_names, by_vault[vault.key])
        _check_capacity(out, vault, by_vault[vault.key], fill_percent)

    vault_identities = frozenset(v.principal_id.lower() for v in inventory.vaults
                                 if v.kind is VaultKind.BACKUP and v.principal_id)
    for count in sorted(inventory.role_assignments, key=lambda c: c.subscription_id.lower()):
        _check_role_assignments(out, count, vault_identities, role_assignment_percent)
        _check_redundant_role_assignments(out, count, inventory.vaults)

    for reconciled in interrupted_teardowns:
        _check_interrupted_teardown(out, reconciled, vaults)

    for status in drills:
        _check_drill(out, status, resources, now=now)
    for leftover in drill_leftovers:
        _check_drill_leftover(out, leftover)

    for gap in inventory.gaps:
        out.add("INV-001", _Subject(gap.scope, "scope", ""), why=f"Could not read {gap.scope}: {gap.reason}")

    findings = tuple(
        sorted(out.findings.values(), key=lambda f: (-f.severity.rank, f.control_id, id_key(f.resource_id), f.id))
    )
    coverage = _coverage(inventory.resources, expectations, by_source)
    return _result(inventory, findings, coverage, now, previous)


def _check_blob_containers(
    out: _Collector, instance: BackupInstance, resources: Mapping[str, ProtectableResource]
) -> None:
    """BKP-007: an active vaulted blob backup instance whose storage account holds containers it does not list."""
    if instance.soft_deleted or instance.containers is None or instance.account_containers is None:
        return
    if not ProtectionStatus.from_arm(instance.protection_status).is_active:
        return
    listed = {c.lower() for c in instance.containers}
    missing = sorted(c for c in instance.account_containers if c.lower() not in listed and selectable(c))
    if not missing:
        return
    account = resources.get(id_key(instance.datasource_id))
    subject = _Subject(instance.datasource_id, STORAGE_TYPE, account.location if account else "")
    full = len(instance.containers) >= MAX_VAULTED_CONTAINERS
    why = (f"{len(missing)} container(s) of the storage account are not backed up ({', '.join(missing[:20])}"
           f"{', ...' if len(missing) > 20 else ''}): its vaulted backup instance lists {len(instance.containers)}"
           + (f", the most vaulted blob backup allows ({MAX_VAULTED_CONTAINERS})." if full else
              "; containers created after configuration are not backed up until the protection is modified."))
    out.add("BKP-007", subject, why=why, discriminator=id_key(instance.id), details={
        "backupInstanceId": instance.id, "leftOut": ", ".join(missing), "listed": str(len(instance.containers)),
        "reason": "limit" if full else "not listed"})


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
            and (policy_key(record.policy_id) != policy_key(expectation.policy))
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
                details={**details, "lastBackupTime": iso(latest), "ageHours": f"{age:.1f}"},
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
            details = {"purgeAt": iso(record.purge_at), "source": record.source_id}
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


#: Azure's budget of policy creations and changes through ARM per vault in 24 hours (Backup FAQ), and the count
#: from which the audit warns (CAP-002)
POLICY_CHANGE_BUDGET: Final = 50
POLICY_CHANGE_WARNING: Final = 40


def _check_capacity(out: _Collector, vault: Vault, vm_items: int, fill_percent: int) -> None:
    """CAP-001 (the VMs a Recovery Services vault lists, against Azure's 1,000) and CAP-002 (its policy changes in
    the last 24 hours, against Azure's 50)."""
    if vault.kind is not VaultKind.RECOVERY_SERVICES:
        return
    subject = _Subject(vault.id, vault.kind.value + "Vault", vault.location)
    full = vault_sets.fill_percent(vault.kind, vault_sets.VaultLoad(items=vm_items, vms=vm_items))
    if full >= fill_percent:
        out.add(
            "CAP-001",
            subject,
            why=f"The vault lists {vm_items} Azure VMs, {full:.0f}% of the {vault_sets.RS_VM_LIMIT} one vault may "
            f"protect (threshold {fill_percent}%)"
            + ("; Azure refuses the next one." if vm_items >= vault_sets.RS_VM_LIMIT else "."),
            details={"vms": str(vm_items), "limit": str(vault_sets.RS_VM_LIMIT), "thresholdPercent": str(fill_percent)},
        )
    changes = vault.policy_changes_24h
    if changes is not None and changes >= POLICY_CHANGE_WARNING:
        out.add(
            "CAP-002",
            subject,
            why=f"{changes} backup policy creations or changes through ARM in the last 24 hours; Azure allows "
            f"{POLICY_CHANGE_BUDGET}"
            + ("; further changes are refused until the oldest ages out." if changes >= POLICY_CHANGE_BUDGET
               else "."),
            details={"changes": str(changes), "budget": str(POLICY_CHANGE_BUDGET)},
        )


def _check_role_assignments(
    out: _Collector, count: RoleAssignmentCount, vault_identities: frozenset[str], percent: int
) -> None:
    """CAP-003: the subscription's role assignments (at its scope and below) at or past ``percent`` of Azure's
    4,000, with the Backup vault identities' share of them."""
    total = count.total
    if total * 100 < percent * ROLE_ASSIGNMENT_LIMIT:
        return
    mine = sum(n for principal, n in count.by_principal.items() if principal.lower() in vault_identities)
    holders = sum(1 for principal in count.by_principal if principal.lower() in vault_identities)
    share = 100.0 * mine / total if total else 0.0
    limit = f"{ROLE_ASSIGNMENT_LIMIT:,}"
    if total >= ROLE_ASSIGNMENT_LIMIT:
        effect = ("Azure refuses every new role assignment (RoleAssignmentLimitExceeded): new protections of disks, "
                  "storage accounts and PostgreSQL servers fail.")
    else:
        effect = (f"At {limit} Azure refuses every new one (RoleAssignmentLimitExceeded), the grants of new "
                  "protections too.")
    why = (f"{total:,} role assignments at the subscription and below, {100.0 * total / ROLE_ASSIGNMENT_LIMIT:.0f}% "
           f"of the {limit} Azure allows per subscription (threshold {percent}%); {mine:,} of them ({share:.0f}%) "
           f"belong to {holders} Backup vault identit{'y' if holders == 1 else 'ies'}. {effect} Fix: "
           "protect.roleScope: resourceGroup in the rules, on rules that name their Backup vault by id (one "
           "assignment per role and resource group instead of one per protected resource), or remove role "
           "assignments nobody uses.")
    out.add("CAP-003", _Subject(f"/subscriptions/{count.subscription_id}", "subscription", ""), why=why, details={
        "roleAssignments": str(total), "limit": str(ROLE_ASSIGNMENT_LIMIT), "thresholdPercent": str(percent),
        "vaultIdentityAssignments": str(mine), "vaultIdentities": str(holders), "vaultSharePercent": f"{share:.0f}"})


#: CAP-004 lists at most this many assignment ids in a finding (the count says how many there are)
REDUNDANT_IDS_LISTED: Final = 20
#: the names of the roles the app gives Backup vault identities, by role definition GUID (others are named by GUID)
_ROLE_NAMES: Final = {r.role_definition_guid: r.role_name for r in (
    READER, DISK_BACKUP_READER, DISK_SNAPSHOT_CONTRIBUTOR, STORAGE_ACCOUNT_BACKUP_CONTRIBUTOR, POSTGRES_FLEX_LTR_BACKUP,
    DISK_RESTORE_OPERATOR, STORAGE_BLOB_DATA_CONTRIBUTOR)}


def _check_redundant_role_assignments(out: _Collector, count: RoleAssignmentCount, vaults: Sequence[Vault]) -> None:
    """CAP-004: the Backup vault identities' role assignments in the subscription that a wider assignment of the
    same identity and role (its resource group, the subscription; unconditional) already grants
    (``redundant.redundant_assignments``): each still counts toward Azure's 4,000; the app never deletes them."""
    by_identity: dict[str, list[str]] = {}
    for vault in sorted(vaults, key=lambda v: v.key):
        if vault.kind is VaultKind.BACKUP and vault.principal_id:
            by_identity.setdefault(vault.principal_id.lower(), []).append(vault.id)
    found = [r for r in redundant_assignments(count.subscription_id, count.overlapping)
             if r.assignment.principal_id.lower() in by_identity]
    if not found:
        return
    found.sort(key=lambda r: (r.assignment.principal_id.lower(), r.assignment.role_definition_guid,
                              id_key(r.assignment.scope), id_key(r.assignment.id)))
    concerned = sorted({v for r in found for v in by_identity[r.assignment.principal_id.lower()]}, key=id_key)
    whole = f"/subscriptions/{count.subscription_id}".lower()
    roles = Counter((_ROLE_NAMES.get(r.assignment.role_definition_guid.lower(), r.assignment.role_definition_guid),
                     "the subscription" if id_key(r.covered_by.scope) == whole else "its resource group")
                    for r in found)
    listed = [r.assignment.id for r in found[:REDUNDANT_IDS_LISTED]]
    n = len(found)
    what = "; ".join(f"{k:,} {role} (held at {where})" for (role, where), k in sorted(roles.items()))
    why = (f"{n:,} role assignment{'s' if n != 1 else ''} of {len(concerned)} Backup vault "
           f"identit{'y' if len(concerned) == 1 else 'ies'} in this subscription grant{'s' if n == 1 else ''} a role "
           f"the same identity already holds, unconditionally, at a wider scope: {what}. "
           f"Each still counts toward the {ROLE_ASSIGNMENT_LIMIT:,} role assignments Azure allows per subscription "
           f"({count.total:,} now); the app never deletes role assignments (typically left by a changed "
           "protect.roleScope).")
    shown = "" if n <= REDUNDANT_IDS_LISTED else f" (the first {REDUNDANT_IDS_LISTED} of {n:,}; list the rest with " \
        "az role assignment list --assignee <vault principal id> --all)"
    covering = list(dict.fromkeys(r.covered_by.id for r in found))
    fix = (f"Remove them{shown}: az role assignment delete --ids {' '.join(listed)} - the wider assignment keeps "
           "granting the role (a wider one made in the last 10 minutes may not apply yet: Azure RBAC troubleshooting); "
           "each removal frees one of the subscription's role assignments. The app never deletes "
           "role assignments. Where the rule's roleScope was narrowed instead, the wider assignments "
           f"({', '.join(covering[:REDUNDANT_IDS_LISTED])}) are the ones to remove (least privilege), once the "
           "narrower ones have been made.")
    out.add("CAP-004", _Subject(f"/subscriptions/{count.subscription_id}", "subscription", ""), why=why, fix=fix,
            details={"redundantAssignments": str(n), "vaults": " ".join(concerned),
                     "assignmentIds": " ".join(listed), "assignmentIdsListed": str(len(listed)),
                     "coveringAssignmentIds": " ".join(covering[:REDUNDANT_IDS_LISTED]),
                     "roleAssignments": str(count.total), "limit": str(ROLE_ASSIGNMENT_LIMIT)})


def _check_interrupted_teardown(out: _Collector, reconciled: Mapping[str, Any], vaults: Mapping[str, Vault]) -> None:
    """VLT-006 from what the reconciler did (``reconcile_teardowns``) to a vault a lost teardown had weakened."""
    vault_id = str(reconciled.get("vaultId") or "")
    if not vault_id:
        return
    vault = vaults.get(id_key(vault_id))
    kind = vault.kind.value + "Vault" if vault else "vault"
    subject = _Subject(vault_id, kind, vault.location if vault else "")
    restored = [r for r in reconciled.get("restored") or [] if isinstance(r, Mapping)]
    effect = str(reconciled.get("effect") or reconciled.get("action") or "")
    turned_on = ", ".join(
        f"{r.get('setting')} {r.get('from')}->{r.get('to')}" for r in restored if r.get("effect") != "failed"
    )
    failed = ", ".join(f"{r.get('setting')} ({r.get('error')})" for r in restored if r.get("effect") == "failed")
    instance = str(reconciled.get("instanceId") or "unknown")
    if effect == "unreadable":
        why = f"The vault carries a teardown marker that cannot be read: {reconciled.get('reason')}"
    elif failed:
        why = f"Teardown {instance} was lost with the vault weakened; restoring failed: {failed}."
    else:
        why = (
            f"Teardown {instance} was lost with the vault weakened; the reconciler restored "
            f"{turned_on or 'nothing (the settings were already back)'}."
        )
    details = {
        "instanceId": instance,
        "effect": effect,
        "restored": turned_on,
        "failed": failed,
        "markedAt": str(reconciled.get("markedAt") or ""),
    }
    out.add("VLT-006", subject, why=why, discriminator=instance, details={k: v for k, v in details.items() if v})


#: drill outcomes that mean the resource was not proven restorable (steward/domain/drill_flow.py Outcome)
FAILED_DRILL_OUTCOMES = frozenset(
    {"RestoreFailed", "ValidationFailed", "TimedOut", "NoRecoveryPoint", "ValidationTimedOut"}
)


def _check_drill(
    out: _Collector, status: Mapping[str, Any], resources: Mapping[str, ProtectableResource], *, now: datetime
) -> None:
    """DRL-001 and DRL-002 for one resource a drill rule covers: ``{"resourceId", "rule", "everySeconds",
    "lastDrillId", "lastDrillAt", "lastOutcome", "lastSucceededAt"}`` (the drill's last-run record)."""
    resource_id = str(status.get("resourceId") or "")
    resource = resources.get(id_key(resource_id))
    if resource is None:
        return
    subject = _Subject(resource.id, resource.type, resource.location)
    rule = str(status.get("rule") or "")
    every = timedelta(seconds=float(status.get("everySeconds") or 0))
    # a drill record's time without a zone reads as none (not as UTC): kernel.aware_time
    succeeded = aware_time(str(status.get("lastSucceededAt") or ""))
    if every > timedelta(0) and (succeeded is None or now - succeeded > every):
        last = (
            "none ever succeeded." if succeeded is None else f"the last succeeded {_hours(now - succeeded):.0f} h ago."
        )
        why = f"Drill rule '{rule}' asks for a successful restore drill every {_hours(every):.0f} h; {last}"
        details = {"rule": rule, "lastSucceededAt": str(status.get("lastSucceededAt") or "")}
        out.add("DRL-001", subject, why=why, details={k: v for k, v in details.items() if v})
    outcome = str(status.get("lastOutcome") or "")
    if outcome in FAILED_DRILL_OUTCOMES:
        drill_id = str(status.get("lastDrillId") or "")
        why = f"The last restore drill ({drill_id}, {status.get('lastDrillAt')}) ended {outcome}."
        out.add("DRL-002", subject, why=why, discriminator=drill_id,
                details={"drillId": drill_id, "outcome": outcome, "rule": rule})


def _check_drill_leftover(out: _Collector, leftover: Mapping[str, Any]) -> None:
    """DRL-003 from what the drill reconciler found past its lifetime and did (``drill_reconcile_leftovers``)."""
    leftover_id = str(leftover.get("id") or "")
    effect = str(leftover.get("effect") or "")
    if not leftover_id or effect == "gone":
        return
    drill_id = str(leftover.get("drillId") or "")
    said = {
        "deleted": "the reconciler deleted it",
        "deleting": "the reconciler started its delete",
        "kept": f"left alone: {leftover.get('reason') or 'it no longer carries the drill tag'}",
        "failed": f"the reconciler's delete failed: {leftover.get('reason')}",
    }.get(effect, effect)
    why = f"Drill {drill_id} made it and its lifetime ended at {leftover.get('expiredAt')}; {said}."
    provider_part = leftover_id.rsplit("/providers/", maxsplit=1)[-1]
    kind = provider_part.rsplit("/", 1)[0] if "/providers/" in leftover_id else "resource"
    out.add("DRL-003", _Subject(leftover_id, kind, str(leftover.get("location") or "")), why=why,
            discriminator=drill_id, details={"drillId": drill_id, "effect": effect})


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
