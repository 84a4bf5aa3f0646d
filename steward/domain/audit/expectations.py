"""What the rules expect of one resource (the :class:`ExpectationSource` port) and its adapter over
``steward.domain.rules``."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Final, Protocol, runtime_checkable

from steward.domain.audit.inventory import ProtectableResource, Vault
from steward.domain.errors import InvalidResourceId
from steward.domain.ids import ResourceId
from steward.domain.kernel import (
    ImmutabilityState,
    SoftDeleteState,
    VaultKind,
)
from steward.domain.rules import (
    ExplicitVault,
    OptOut,
    Protect,
    ResourceFacts,
    RuleSet,
    Unsupported,
    VaultCandidate,
    VaultChoice,
    VaultChosen,
    VaultSet,
    choose_vault,
    route,
    set_members,
)


@dataclass(frozen=True)
class VaultRequirements:
    """Vault settings the rules require. ``None`` means no requirement."""

    soft_delete: SoftDeleteState | None = None  # ON or ALWAYS_ON
    immutability: ImmutabilityState | None = None  # UNLOCKED (enabled) or LOCKED
    cross_region_restore: bool = False
    multi_user_authorization: bool = False

    def strictest(self, other: VaultRequirements) -> VaultRequirements:
        def pick_sd(a: SoftDeleteState | None, b: SoftDeleteState | None) -> SoftDeleteState | None:
            if a is None or b is None:
                return a or b
            return a if a.strength >= b.strength else b

        def pick_im(a: ImmutabilityState | None, b: ImmutabilityState | None) -> ImmutabilityState | None:
            if a is None or b is None:
                return a or b
            return a if a.strength >= b.strength else b

        return VaultRequirements(
            soft_delete=pick_sd(self.soft_delete, other.soft_delete),
            immutability=pick_im(self.immutability, other.immutability),
            cross_region_restore=self.cross_region_restore or other.cross_region_restore,
            multi_user_authorization=self.multi_user_authorization or other.multi_user_authorization,
        )


NO_REQUIREMENTS: Final = VaultRequirements()


@dataclass(frozen=True)
class Expectation:
    """What the rules decide for one resource."""

    must_protect: bool
    rule: str
    reason: str = ""
    #: Explicit target vault id, when the rule names one (else: the vault of the resource's region).
    vault_id: str | None = None
    #: Policy name or id; ``None`` means any policy is acceptable.
    policy: str | None = None
    rpo_hours: float | None = None
    vault_requirements: VaultRequirements = NO_REQUIREMENTS
    #: Why the rule's target vault cannot be used (none found, ambiguous, wrong region), if it cannot.
    vault_problem: str | None = None
    #: The scope the vault problem is about (the named vault's id, or the subscription of a regional default).
    vault_problem_scope: str | None = None


@runtime_checkable
class ExpectationSource(Protocol):
    """The port the audit asks: what do the rules expect for this resource?"""

    def expect(self, resource: ProtectableResource) -> Expectation: ...


@dataclass(frozen=True)
class UniformExpectations:
    """Every resource gets ``default``, or the entry of ``by_type`` for its type (case-insensitive)."""

    default: Expectation
    by_type: Mapping[str, Expectation] = field(default_factory=dict, hash=False)

    def expect(self, resource: ProtectableResource) -> Expectation:
        for type_name, expectation in self.by_type.items():
            if type_name.lower() == resource.type.lower():
                return expectation
        return self.default


class RuleExpectations:
    """What :func:`steward.domain.rules.route` decides, plus which vault :func:`choose_vault` would pick among
    the inventory's vaults, as :class:`Expectation` s.

    ``Protect`` → must be protected with the rule's policy, RPO and required vault settings, in the chosen
    vault; no acceptable vault (none, ambiguous, wrong region) → the expectation carries the problem (DRF-002).
    ``OptOut`` → must not be. ``Unsupported`` by a rule (its target breaks the region rules) → must be protected
    and the problem is reported.
    """

    def __init__(self, rules: RuleSet, vaults: Iterable[Vault]) -> None:
        self._rules = rules
        self._candidates: list[VaultCandidate] = []
        for vault in vaults:
            try:
                self._candidates.append(VaultCandidate(ResourceId.parse(vault.id), vault.location, dict(vault.tags)))
            except InvalidResourceId:
                continue
        self._choices: dict[tuple[object, str], VaultChoice] = {}

    @property
    def vault_fill_percent(self) -> int:
        """The rules' vault fill threshold (STEWARD_VAULT_FILL_PERCENT), for CAP-001."""
        return self._rules.vault_fill_percent

    def expect(self, resource: ProtectableResource) -> Expectation:
        try:
            facts = ResourceFacts(
                ResourceId.parse(resource.id),
                resource.location,
                dict(resource.tags),
                attached_to=resource.attached_to,
            )
        except (InvalidResourceId, ValueError) as error:
            return Expectation(must_protect=False, rule="(unreadable id)", reason=str(error))
        decision = route(facts, self._rules)
        if isinstance(decision, OptOut):
            return Expectation(must_protect=False, rule=decision.rule or "opt-out", reason=decision.reason)
        if isinstance(decision, Unsupported):
            if decision.rule is None:
                return Expectation(must_protect=False, rule="unsupported", reason=decision.reason)
            return Expectation(
                must_protect=True,
                rule=decision.rule,
                reason=decision.reason,
                vault_problem=decision.reason,
                vault_problem_scope=resource.id,
            )
        return self._protect(decision, resource)

    def _protect(self, decision: Protect, resource: ProtectableResource) -> Expectation:
        settings = decision.required_settings
        requirements = VaultRequirements(
            soft_delete={
                "on": SoftDeleteState.ON,
                "enabled": SoftDeleteState.ON,
                "alwayson": SoftDeleteState.ALWAYS_ON,
            }.get((settings.soft_delete or "").lower()),
            immutability={
                "unlocked": ImmutabilityState.UNLOCKED,
                "enabled": ImmutabilityState.UNLOCKED,
                "locked": ImmutabilityState.LOCKED,
            }.get((settings.immutability or "").lower()),
            cross_region_restore=bool(settings.cross_region_restore),
        )
        key = (decision.vault, resource.subscription_id if decision.vault_kind is VaultKind.RECOVERY_SERVICES else "")
        choice = self._choices.get(key)
        if choice is None:
            choice = self._choices[key] = choose_vault(decision, self._candidates)
        base = Expectation(
            must_protect=True,
            rule=decision.rule,
            policy=decision.policy,
            rpo_hours=float(decision.rpo_hours),
            vault_requirements=requirements,
        )
        if isinstance(decision.vault, VaultSet):
            # any member of the set is the right vault (protection spreads over them); a set without one is a problem
            if set_members(decision, self._candidates):
                return base
            return replace(base, vault_problem=choice.reason,
                           vault_problem_scope=f"/subscriptions/{decision.vault.subscription_id}")
        if isinstance(choice, VaultChosen):
            return replace(base, vault_id=str(choice.vault_id))
        target = decision.vault
        scope = (
            str(target.vault_id) if isinstance(target, ExplicitVault) else f"/subscriptions/{target.subscription_id}"
        )
        return replace(base, vault_problem=choice.reason, vault_problem_scope=scope)
