"""Vault sets (issue 19 item 1): several vaults of one kind in one region share the protections, because one vault
fills up. Pure and deterministic: the same members, loads and refusals give the same choice.

Azure's limits (docs/azure-facts.md "Vault capacity"): a Recovery Services vault protects at most 1,000 Azure VMs
and 2,000 datasources across workloads (Backup FAQ, support matrix). No limit on backup instances per Backup vault
is published: a Backup-vault set spreads by the fewest instances and is never full.

The choice: among the members below ``fill_percent`` of their capacity, the one with the most room (ties: by id).
When none is below it, the set needs its next vault (:class:`SetNeedsVault`): created when
``STEWARD_AUTO_CREATE_VAULTS`` allows, else the member with the most room still below Azure's limit takes it (the
``fallback``); a set whose members are all at the limit and may not grow is full.

Two protections racing for a set's last slot: counts come from a cache and may be stale, so both may choose the same
vault. Azure decides: the vault refuses the PUT past its limit (:data:`CAPACITY_CODES`), and the refused protection
chooses again with fresh counts and the refused vault left out (``refused``), a bounded number of times
(:data:`SET_CHOICES`). Nothing is reserved, so nothing can leak when a run dies between choosing and protecting.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Final, TypeAlias

from steward.domain.ids import ResourceId
from steward.domain.kernel import VaultKind
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
    return 100.0 * max(load.vms / RS_VM_LIMIT, load.items / RS_DATASOURCE_LIMIT)


def is_member(target: VaultSet, vault_id: ResourceId, tags: Mapping[str, str]) -> bool:
    """Whether a vault of the set's kind, region and subscription belongs to it (by name prefix or tag, any case)."""
    if target.name_prefix:
        return vault_id.name.lower().startswith(target.name_prefix.lower())
    wanted = target.tag_name.lower()
    return any(k.lower() == wanted and v.strip().lower() == target.tag_value.strip().lower() for k, v in tags.items())


@dataclass(frozen=True)
class NextVault:
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
