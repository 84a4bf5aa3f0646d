"""Vault sets (issue 19 item 1): several vaults of one kind in one region share the protections, because one vault
fills up. Pure and deterministic: the same members, loads and refusals give the same choice.

Azure's limits (docs/azure-facts.md "Vault capacity"): a Recovery Services vault protects at most 1,000 Azure VMs
and 2,000 datasources across workloads (Backup FAQ, support matrix). No limit on backup instances per Backup vault
is published: a Backup-vault set spreads by the fewest instances and is never full.

The choice: among the members below ``fill_percent`` of their capacity, the one with the most room (ties: by id).
When none is below it, the set needs its next vault (:class:`SetNeedsVault`): created when
``STEWARD_AUTO_CREATE_VAULTS`` allows, else the member with the most room still below Azure's limit takes it (the
``fallback``); a set whose members are all at the limit and may not grow is full.

Protections choosing at once: the choice is made with a reservation (:func:`reserve`, below), in one conditional
write of the set's ledger, so a burst does not fill a member past the threshold. Counts may still be stale (items
added by hand): Azure decides at its limit, the vault refuses the PUT (:data:`CAPACITY_CODES`), and the refused
protection chooses again with fresh counts and the refused vault left out (``refused``), a bounded number of times
(:data:`SET_CHOICES`). A reservation whose run died is forgotten after :data:`RESERVATION_TTL`.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, ClassVar, Final, TypeAlias

from steward.domain.ids import ResourceId
from steward.domain.kernel import VaultKind
from steward.domain.records import Record
from steward.domain.rules.model import VaultSet

#: "Up to 1,000 Azure VMs in a single vault"; "Up to 2000 datasources across all workloads" (backup-support-matrix.md,
#: backup-azure-backup-faq.yml)
RS_VM_LIMIT: Final = 1000
RS_DATASOURCE_LIMIT: Final = 2000
#: choices of a vault in one protection: the first, and one more after each refusal for capacity
SET_CHOICES: Final = 4
#: Azure's refusals at a vault's limit. The codes are INFERRED (no public answer at a limit was found; the sandbox's
#: ``recoveryservices_errors`` and ``dataprotection_errors`` use these): :func:`capacity_refusal` also takes any code
#: that says a limit or quota was reached, never the message.
CAPACITY_CODES: Final = frozenset({
    "bmsusererrorvaultvmlimitreached",
    "bmsusererrorvaultdatasourcelimitreached",
})
_LIMIT_WORDS: Final = re.compile(r"(limit|quota)(reached|exceeded)", re.IGNORECASE)
#: limits that are not a vault's capacity although their codes say "LimitReached": Azure Backup's "security
#: precaution" block on repeated attempts (``CloudDosTimeboudLimitReached``, "Please retry after few hours":
#: Azure/azure-cli#32441) and a VM's restore point collection limit (``UserErrorRpCollectionLimitReached``:
#: backup-azure-troubleshoot-vm-backup-fails-snapshot-timeout.md). Another vault would not help.
NOT_CAPACITY_PREFIXES: Final = ("clouddos", "usererrorrpcollection")
#: the tag the app puts on vaults it creates (as ``VaultCreator`` does for regional defaults)
CREATED_BY_TAG: Final = ("backup-steward:created-by", "backup-steward")


#: what Azure answers in a protection policy's ``properties`` that a copy into another vault must not carry: the count
#: of items it protects there (Azure's own; ProtectionPolicy ``protectedItemsCount``) and the source vault's Resource
#: Guard operations (``resourceGuardOperationRequests``, which name that vault's guard). ``id``, ``name``, ``type``
#: and ``eTag`` are the resource's, never copied (only ``properties`` is).
POLICY_NOT_COPIED: Final = frozenset({"protectedItemsCount", "resourceGuardOperationRequests"})


def app_created(tags: Mapping[str, str]) -> bool:
    """Whether a vault carries the tag the app puts on the vaults it creates (:data:`CREATED_BY_TAG`)."""
    return any(k.lower() == CREATED_BY_TAG[0] and v == CREATED_BY_TAG[1] for k, v in tags.items())


def policy_copy(policy: Mapping[str, Any]) -> dict[str, Any]:
    """The body that creates ``policy`` (a protectionPolicies GET answer, ``ProtectionPolicyResource``) in another
    vault under the same name: its ``properties`` without :data:`POLICY_NOT_COPIED` (issue 19: a vault set's new vault
    has only Azure's DefaultPolicy and EnhancedPolicy)."""
    properties = policy.get("properties") or {}
    return {"properties": {k: v for k, v in properties.items() if k not in POLICY_NOT_COPIED}}


def capacity_refusal(code: str | None) -> bool:
    """Whether Azure refused because the vault is full (its VM or datasource limit)."""
    text = (code or "").strip()
    if text.lower().startswith(NOT_CAPACITY_PREFIXES):
        return False
    return text.lower() in CAPACITY_CODES or bool(text and _LIMIT_WORDS.search(text))


@dataclass(frozen=True)
class VaultLoad:
    """What a vault protects now: every item it lists (``items``) and, of those, Azure VMs (``vms``)."""

    items: int = 0
    vms: int = 0


@dataclass(frozen=True)
class Member:
    """A vault of the set: id, tags and its load (None: not counted)."""

    id: ResourceId
    load: VaultLoad | None = None
    tags: Mapping[str, str] = field(default_factory=dict)


def capacity(kind: VaultKind) -> int | None:
    """Protections a vault of ``kind`` takes (VMs for a Recovery Services vault); None: no published limit."""
    return RS_VM_LIMIT if kind is VaultKind.RECOVERY_SERVICES else None


def room(kind: VaultKind, load: VaultLoad) -> int | None:
    """Protections the vault still takes before Azure refuses (never below 0); None: unbounded."""
    if kind is not VaultKind.RECOVERY_SERVICES:
        return None
    return max(0, min(RS_VM_LIMIT - load.vms, RS_DATASOURCE_LIMIT - load.items))


def fill_percent(kind: VaultKind, load: VaultLoad) -> float:
    """How full the vault is, in percent of the nearer of its limits (0 when no limit is published)."""
    if kind is not VaultKind.RECOVERY_SERVICES:
        return 0.0
    # 100 * n / limit, not 100 * (n / limit): 290 / 1000 * 100 is 28.999999999999996, below a 29 % threshold, and
    # let a member take a 291st VM (found by the property test); an integer numerator divides exactly here
    return max(100 * load.vms / RS_VM_LIMIT, 100 * load.items / RS_DATASOURCE_LIMIT)


def is_member(target: VaultSet, vault_id: ResourceId, tags: Mapping[str, str]) -> bool:
    """Whether a vault of the set's kind, region and subscription belongs to it (by name prefix or tag, any case)."""
    if target.name_prefix:
        return vault_id.name.lower().startswith(target.name_prefix.lower())
    wanted = target.tag_name.lower()
    return any(k.lower() == wanted and v.strip().lower() == target.tag_value.strip().lower() for k, v in tags.items())


@dataclass(frozen=True)
class NextVault(Record):
    """The vault a set grows by: its resource group, name and tags (the secure defaults are the creator's)."""

    resource_group: str
    name: str
    tags: Mapping[str, str]

    def vault_id(self, kind: VaultKind, subscription_id: str) -> ResourceId:
        return ResourceId.parse(f"/subscriptions/{subscription_id}/resourceGroups/{self.resource_group}/providers/"
                                f"{kind.arm_type}/{self.name}")


@dataclass(frozen=True)
class VaultChosen:
    """The vault a resource goes to, and why: the one answer of a rule's vault choice, a set's included."""

    kind: ClassVar[str] = "chosen"
    vault_id: ResourceId
    reason: str


#: a set's choice is the same answer as any other vault choice
SetChosen: TypeAlias = VaultChosen


@dataclass(frozen=True)
class SetNeedsVault:
    """No member is below the fill threshold: create ``create`` (when allowed), else use ``fallback`` (a member
    past the threshold that Azure still lets take one more), else the set is full."""

    kind: ClassVar[str] = "needs-vault"
    reason: str
    create: NextVault
    fallback: ResourceId | None = None


SetChoice: TypeAlias = SetChosen | SetNeedsVault


def choose_in_set(
    target: VaultSet, members: Iterable[Member], refused: Collection[ResourceId] = (),
) -> SetChoice:
    """The member to protect into. ``members``: the set's vaults (:func:`is_member`) with their loads;
    ``refused``: members Azure refused for capacity during this protection (left out whatever their counts say)."""
    kind = target.vault_kind
    unique: dict[ResourceId, Member] = {}
    for member in members:
        unique.setdefault(member.id, member)
    everyone = sorted(unique.values(), key=lambda m: m.id)
    usable = [m for m in everyone if m.id not in set(refused)]
    threshold = max(1, min(100, target.fill_percent))

    def load(member: Member) -> VaultLoad:
        return member.load or VaultLoad()

    def spare(member: Member) -> int:
        left = room(kind, load(member))
        return -load(member).items if left is None else left

    below = [m for m in usable if fill_percent(kind, load(m)) < threshold and room(kind, load(m)) != 0]
    if below:
        best = min(below, key=lambda m: (-spare(m), m.id))
        left = room(kind, load(best))
        said = "no published limit" if left is None else f"room for {left} more"
        return SetChosen(best.id, f"{target.described}: {best.id.name} has the most room ({said}, "
                         f"{fill_percent(kind, load(best)):.1f}% full, threshold {threshold}%)")
    open_ = [m for m in usable if room(kind, load(m)) != 0]
    fallback = min(open_, key=lambda m: (-spare(m), m.id)).id if open_ else None
    if not everyone:
        why = "has no vault yet"
    elif refused and not usable:
        why = f"has no member left that Azure did not refuse as full ({len(refused)} refused)"
    else:
        why = f"has every member at or above {threshold}% of its capacity ({len(everyone)} vault(s))"
    return SetNeedsVault(f"{target.described} {why}", next_vault(target, [m.id for m in everyone]), fallback)


_SLUG: Final = re.compile(r"[^a-z0-9]+")


def next_vault(target: VaultSet, member_ids: Iterable[ResourceId]) -> NextVault:
    """The set's next vault: the lowest free two-digit number after the prefix (``rsv-weu-03``) or, for a tag set,
    after ``{rsv|bv}-{tag value}-{region}-``; in the resource group of the set's last member, else the one the app
    creates regional vaults in. Deterministic: two protections that need it at once create the same vault (the PUT
    is idempotent)."""
    ids = sorted(member_ids)
    taken = {i.name.lower() for i in ids}
    short = "rsv" if target.vault_kind is VaultKind.RECOVERY_SERVICES else "bv"
    if target.name_prefix:
        stem = target.name_prefix
        tags = {CREATED_BY_TAG[0]: CREATED_BY_TAG[1]}
    else:
        value = _SLUG.sub("-", target.tag_value.lower()).strip("-")[:16] or "set"
        stem = f"{short}-{value}-{target.region[:20]}-"
        tags = {CREATED_BY_TAG[0]: CREATED_BY_TAG[1], target.tag_name: target.tag_value}
    number = len(ids) + 1
    while f"{stem}{number:02d}".lower() in taken:
        number += 1
    group = (ids[-1].resource_group if ids else None) or f"rg-backup-steward-{target.region}"
    return NextVault(group, f"{stem}{number:02d}", tags)


# ---- reservations (issue #19: the threshold under a burst) ------------------------------------------------------
#
# Choosing from counts read earlier let hundreds of protections in flight choose the same member (the 2,500-VM
# benchmark filled two vaults to 100 % at a 90 % threshold). The choice is now made together with a reservation, in
# one conditional write of the set's ledger (``reserve``): a member's load is Azure's count as last listed plus the
# reservations not yet in that listing. A reservation ends when a listing shows its resource protected (Azure counts
# it), when its protection fails or lands elsewhere (``release``), or, never seen in a listing, after
# :data:`RESERVATION_TTL` (a run that died between choosing and protecting: its capacity is not leaked for ever).

#: how long a reservation that no listing shows is kept: longer than any protection takes from its choice to its
#: item being listed (the VM PUT's operation is followed for at most 30 minutes, three times; backoffs of 10 minutes)
RESERVATION_TTL: Final = timedelta(hours=6)


@dataclass(frozen=True)
class MemberCount(Record):
    """Azure's count of a member as last listed (``listed_at``, Azure time of the protection that listed it) and a
    ``generation`` bumped by every listing written (a listing read before another was written is not written over
    it)."""

    vault_id: str
    items: int = 0
    vms: int = 0
    listed_at: datetime | None = None  # None: never listed yet
    generation: int = 0
    #: since when a protection lists it (the others use the count they have, or wait for the first one)
    leased_at: datetime | None = None


@dataclass(frozen=True)
class Reservation(Record):
    """A slot of ``vault_id`` held for ``resource_id`` (lower case) since ``at``; ``vm``: counts toward the VMs."""

    resource_id: str
    vault_id: str
    at: datetime
    vm: bool = False


@dataclass(frozen=True)
class SetLedger(Record):
    """A vault set's counts and reservations, kept in one document written only by conditional writes."""

    counts: tuple[MemberCount, ...] = ()
    reservations: tuple[Reservation, ...] = ()

    def count(self, vault_id: ResourceId | str) -> MemberCount | None:
        wanted = str(vault_id).lower()
        return next((c for c in self.counts if c.vault_id.lower() == wanted), None)

    def to_document(self) -> dict[str, Any]:
        """The stored form: the counts as records, the reservations grouped by member as ``[resource, time, vm]``
        (a burst holds a thousand of them between listings, read and written on every choice: the record codec
        took 50 ms for 1,500)."""
        held: dict[str, list[list[Any]]] = {}
        for r in self.reservations:
            held.setdefault(r.vault_id, []).append([r.resource_id, r.at.isoformat(), r.vm])
        return {"version": 2, "counts": [c.to_record() for c in self.counts], "held": held}

    @classmethod
    def from_document(cls, document: Mapping[str, Any]) -> SetLedger:
        """The ledger :meth:`to_document` wrote (or, ``version`` absent, one written by :meth:`to_record`)."""
        if document.get("version") != 2:
            return cls.from_record(document)
        counts = tuple(MemberCount.from_record(c) for c in document.get("counts") or [])
        held = tuple(Reservation(str(resource), vault_id, datetime.fromisoformat(str(at)), bool(vm))
                     for vault_id, entries in (document.get("held") or {}).items()
                     for resource, at, vm in entries)
        return cls(counts, held)


@dataclass(frozen=True)
class Listing:
    """One listing of a member: its load and the resources it protects (lower case), made while the ledger's count
    of it was at ``generation``."""

    vault_id: str
    load: VaultLoad
    resources: frozenset[str]
    generation: int


def needs_listing(ledger: SetLedger, vault_id: str, now: datetime, max_age: timedelta, *, fresh: bool) -> bool:
    """Whether the member's count must be listed again: never listed, older than ``max_age``, or ``fresh`` asked."""
    counted = ledger.count(vault_id)
    return fresh or counted is None or counted.listed_at is None or abs(now - counted.listed_at) >= max_age


#: how long a protection listing a member keeps the others from listing it too (a burst's protections all finding
#: the count stale at once would each list a vault of 1,000 items); past it the listing is taken over
LISTING_LEASE: Final = timedelta(seconds=120)


def leased(ledger: SetLedger, vault_id: str, now: datetime) -> bool:
    """Whether another protection is listing the member (since less than :data:`LISTING_LEASE`)."""
    counted = ledger.count(vault_id)
    return counted is not None and counted.leased_at is not None and abs(now - counted.leased_at) < LISTING_LEASE


def lease(ledger: SetLedger, vault_ids: Iterable[str], now: datetime) -> SetLedger:
    """The ledger with the members' listing leased from ``now`` (their counts and generations kept)."""
    wanted = {v.lower(): v for v in vault_ids}
    counts = [replace(c, leased_at=now) if c.vault_id.lower() in wanted else c for c in ledger.counts]
    counted = {c.vault_id.lower() for c in ledger.counts}
    counts += [MemberCount(v, leased_at=now) for k, v in wanted.items() if k not in counted]
    return replace(ledger, counts=tuple(sorted(counts, key=lambda c: c.vault_id.lower())))


def reconcile(ledger: SetLedger, listing: Listing, now: datetime) -> SetLedger:
    """``listing`` written into the ledger, unless another listing of the member was written since it was made:
    the count replaced; the reservations of resources it shows protected dropped (Azure counts them now, in any
    member); the member's reservations older than :data:`RESERVATION_TTL` that it does not show dropped (their
    protections died)."""
    counted = ledger.count(listing.vault_id)
    generation = counted.generation if counted is not None else 0
    if generation != listing.generation:
        return ledger  # a newer listing is there already
    mine = listing.vault_id.lower()
    counts = [*(c for c in ledger.counts if c.vault_id.lower() != mine),
              MemberCount(listing.vault_id, listing.load.items, listing.load.vms, now, generation + 1)]
    kept = tuple(r for r in ledger.reservations if r.resource_id not in listing.resources
                 and not (r.vault_id.lower() == mine and abs(now - r.at) >= RESERVATION_TTL))
    return SetLedger(tuple(sorted(counts, key=lambda c: c.vault_id.lower())), kept)


def held_load(ledger: SetLedger, vault_id: ResourceId) -> VaultLoad | None:
    """The member's load: Azure's count as last listed plus the reservations on it (None: never listed)."""
    counted = ledger.count(vault_id)
    if counted is None or counted.listed_at is None:
        return None
    mine = str(vault_id).lower()
    held = [r for r in ledger.reservations if r.vault_id.lower() == mine]
    return VaultLoad(counted.items + len(held), counted.vms + sum(1 for r in held if r.vm))


def release(ledger: SetLedger, resource_id: str, vault_id: str | None = None) -> SetLedger:
    """The ledger without the resource's reservation (only the one on ``vault_id`` when given)."""
    key = resource_id.lower()
    return replace(ledger, reservations=tuple(
        r for r in ledger.reservations
        if not (r.resource_id == key and (vault_id is None or r.vault_id.lower() == vault_id.lower()))))


@dataclass(frozen=True)
class Reserved:
    """What :func:`reserve` decided: the choice (a member, with a reservation made for it in ``ledger``, or the
    set's next vault), and whether the member is the ``fallback`` past the threshold (the set may not grow)."""

    choice: SetChoice
    ledger: SetLedger
    fallback: bool = False

    @property
    def vault_id(self) -> ResourceId | None:
        if isinstance(self.choice, VaultChosen):
            return self.choice.vault_id
        return self.choice.fallback if self.fallback else None


def reserve(
    target: VaultSet, members: Iterable[tuple[ResourceId, Mapping[str, str]]], ledger: SetLedger, resource_id: str,
    now: datetime, *, refused: Collection[ResourceId] = (), may_grow: bool = True,
) -> Reserved:
    """The member for ``resource_id`` (:func:`choose_in_set` over the held loads, :func:`held_load`) and its
    reservation, in place of any the resource held (a choice made again after a refusal). When the set needs its
    next vault and may grow, nothing is reserved (the vault is created and the choice made again); when it may
    not, the ``fallback`` below Azure's limit is reserved. Pure: the caller writes the ledger conditionally."""
    ledger = release(ledger, resource_id)
    listed = [Member(i, held_load(ledger, i), dict(tags)) for i, tags in members]
    choice = choose_in_set(target, listed, refused)
    chosen = choice.vault_id if isinstance(choice, VaultChosen) else None
    fallback = False
    if chosen is None and isinstance(choice, SetNeedsVault) and not may_grow and choice.fallback is not None:
        chosen, fallback = choice.fallback, True
    if chosen is None:
        return Reserved(choice, ledger)
    held = Reservation(resource_id.lower(), str(chosen), now, target.vault_kind is VaultKind.RECOVERY_SERVICES)
    return Reserved(choice, replace(ledger, reservations=(*ledger.reservations, held)), fallback)


def ledger_name(target: VaultSet) -> str:
    """Where a set's ledger is kept in the report store: one document per set (kind, subscription, region, and its
    prefix or tag), named by a hash of them."""
    key = "|".join([target.vault_kind.value, (target.subscription_id or "").lower(), target.region.lower(),
                    (target.name_prefix or "").lower(), (target.tag_name or "").lower(),
                    (target.tag_value or "").strip().lower()])
    return f"vault-sets/{hashlib.sha256(key.encode()).hexdigest()[:32]}.json"


@dataclass(frozen=True)
class SetReservationAsked(Record):
    """``reserve_in_set``'s request: the set, its members' ids (``find_vaults``), those left out of the choice
    (``passed_over``: refused as full during this protection, or short of the rule's required settings), the
    resource and the orchestration's time; ``fresh``: list every member again (after a refusal); ``grow``: the set
    may grow by its next vault (False once creating it failed: the fallback is reserved)."""

    vault_set: VaultSet
    resource_id: str
    now: datetime
    vault_ids: tuple[str, ...] = ()
    passed_over: tuple[str, ...] = ()
    fresh: bool = False
    grow: bool = True


@dataclass(frozen=True)
class SetReservation(Record):
    """``reserve_in_set``'s result: the member reserved (``vault_id``; ``fallback``: past the threshold, as the set
    may not grow), else the set's next vault (``create``) or nothing (the set is full), and why."""

    reason: str
    vault_id: str | None = None
    fallback: bool = False
    create: NextVault | None = None

    @classmethod
    def of(cls, reserved: Reserved) -> SetReservation:
        choice = reserved.choice
        chosen = reserved.vault_id
        create = choice.create if isinstance(choice, SetNeedsVault) and chosen is None else None
        return cls(choice.reason, None if chosen is None else str(chosen), reserved.fallback, create)


@dataclass(frozen=True)
class SetReleaseAsked(Record):
    """``release_in_set``'s request: the reservation of ``resource_id`` on ``vault_id`` ends (its protection failed
    or did not land there)."""

    vault_set: VaultSet
    resource_id: str
    vault_id: str
