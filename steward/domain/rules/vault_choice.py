"""Choosing the vault among those found: the explicit one, or the regional default (tagged) one."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import ClassVar, TypeAlias

from steward.domain.ids import ResourceId
from steward.domain.kernel import VaultKind, normalise_region
from steward.domain.rules.decisions import Protect
from steward.domain.rules.model import ExplicitVault, RegionalDefaultVault, VaultSet, frozen_tags
from steward.domain.rules.routing import vault_kind_name
from steward.domain.rules.vault_sets import Member, VaultChosen, choose_in_set, is_member


@dataclass(frozen=True)
class VaultCandidate:
    """A vault found in Azure: its id, location and tags (its kind comes from its type)."""

    id: ResourceId
    location: str
    tags: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "tags", frozen_tags(self.tags))

    @property
    def vault_kind(self) -> VaultKind | None:
        return self.id.vault_kind

    @property
    def region(self) -> str:
        return normalise_region(self.location)

    def tagged(self, name: str) -> bool:
        wanted = name.lower()
        return any(k.lower() == wanted and v.strip().lower() == "true" for k, v in self.tags.items())


@dataclass(frozen=True)
class NoVault:
    """No acceptable vault: create one (when allowed) for ``vault_kind`` in ``region``/``subscription_id``."""

    kind: ClassVar[str] = "none"
    reason: str
    vault_kind: VaultKind
    subscription_id: str
    region: str


@dataclass(frozen=True)
class AmbiguousVaults:
    """Several vaults qualify and none is marked as the default: a person must tag one."""

    kind: ClassVar[str] = "ambiguous"
    reason: str
    candidates: tuple[ResourceId, ...]


VaultChoice: TypeAlias = VaultChosen | NoVault | AmbiguousVaults


def set_members(decision: Protect, candidates: Iterable[VaultCandidate]) -> list[VaultCandidate]:
    """The vaults of a vault-set decision's set among those found (kind, region, subscription, prefix or tag)."""
    target = decision.vault
    if not isinstance(target, VaultSet):
        return []
    eligible = _in_reach(target, decision.resource_id.subscription_id, candidates)
    return [c for c in eligible if is_member(target, c.id, c.tags)]


def _in_reach(
    target: RegionalDefaultVault | VaultSet, resource_sub: str, candidates: Iterable[VaultCandidate]
) -> list[VaultCandidate]:
    """The vaults of the target's kind, region and subscription (for VMs: the VM's subscription), by id, once."""
    qualifying: dict[ResourceId, VaultCandidate] = {}
    for c in candidates:
        if (
            c.vault_kind is target.vault_kind
            and c.region == target.region
            and c.id.subscription_id.lower() == target.subscription_id.lower()
            and (
                target.vault_kind is not VaultKind.RECOVERY_SERVICES
                or c.id.subscription_id.lower() == resource_sub.lower()
            )
        ):
            qualifying.setdefault(c.id, c)  # the same vault listed twice is one vault
    return sorted(qualifying.values(), key=lambda c: c.id)


def choose_vault(decision: Protect, candidates: Iterable[VaultCandidate]) -> VaultChoice:
    """Pick the vault for a protect decision among the vaults found. Never picks a vault of another kind or
    region (or, for VMs, subscription)."""
    target = decision.vault
    resource_sub = decision.resource_id.subscription_id
    if isinstance(target, ExplicitVault):
        found = [c for c in candidates if c.id == target.vault_id]
        in_region = [c for c in found if c.region == target.region]
        if in_region:
            return VaultChosen(in_region[0].id, f"named by rule {decision.rule!r}")
        if not found:
            return NoVault(
                f"the vault {target.vault_id} named by rule {decision.rule!r} was not found",
                decision.vault_kind,
                target.vault_id.subscription_id,
                target.region,
            )
        vault = found[0]
        if vault.region != target.region:
            return NoVault(
                f"the vault {vault.id} is in {vault.region}, not {target.region} as rule {decision.rule!r} says; "
                "it cannot protect this resource",
                decision.vault_kind,
                target.vault_id.subscription_id,
                target.region,
            )
        return VaultChosen(vault.id, f"named by rule {decision.rule!r}")
    eligible = _in_reach(target, resource_sub, candidates)
    if isinstance(target, VaultSet):
        members = [Member(c.id, tags=c.tags) for c in eligible if is_member(target, c.id, c.tags)]
        chosen = choose_in_set(target, members)  # no loads known here: by id among the members
        if isinstance(chosen, VaultChosen):
            return chosen
        return NoVault(chosen.reason, target.vault_kind, target.subscription_id, target.region)
    where = f"{vault_kind_name(target.vault_kind)} in {target.region} of subscription {target.subscription_id}"
    tagged = [c for c in eligible if c.tagged(target.default_tag)]
    if len(tagged) == 1:
        return VaultChosen(tagged[0].id, f"the {where} tagged {target.default_tag}=true")
    if len(tagged) > 1:
        return AmbiguousVaults(
            f"{len(tagged)} vaults are tagged {target.default_tag}=true; tag exactly one {where}",
            tuple(c.id for c in tagged),
        )
    if len(eligible) == 1:
        return VaultChosen(eligible[0].id, f"the only {where}")
    if not eligible:
        return NoVault(f"there is no {where}", target.vault_kind, target.subscription_id, target.region)
    return AmbiguousVaults(
        f"{len(eligible)} vaults qualify as the {where} and none is tagged {target.default_tag}=true",
        tuple(c.id for c in eligible),
    )
