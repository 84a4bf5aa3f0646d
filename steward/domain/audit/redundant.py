"""Redundant role assignments (CAP-004): an assignment of principal P, role R at scope S where P also holds R,
unconditionally, at a scope strictly above S inside the same subscription (S's resource group, or the
subscription). Microsoft's ``role-based-access-control/troubleshoot-limits.md`` ("Solution 2 - Remove redundant role
assignments") tells operators to find exactly these ("role assignments with the same role and same principal, but at
different scopes ... redundant role assignments at a lower scope can potentially be removed since a role assignment
at a higher scope already grants access"): each still counts toward the subscription's 4,000.

Only the subscription and its resource groups are looked at as the wider scope: a management group's assignment is
not (the list does not say which management groups hold the subscription), nor the root's (those are not the
operator's to rely on). A conditional wider assignment does not count (it may grant less: **inferred**, as
``held_roles`` decides). Pure: no Azure SDK here.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from steward.domain.kernel import id_key


@dataclass(frozen=True)
class RoleAssignment:
    """One role assignment as the subscription's list names it: its id, principal, role definition (its GUID: an
    assignment names the definition under its subscription) and scope, and its ``condition`` (None: none)."""

    id: str
    principal_id: str
    role_definition_guid: str
    scope: str
    condition: str | None = None

    @property
    def pair(self) -> tuple[str, str]:
        """Who holds which role (case-insensitive)."""
        return self.principal_id.lower(), self.role_definition_guid.lower()


@dataclass(frozen=True)
class Redundant:
    """``assignment`` grants nothing ``covered_by`` (same principal and role, unconditional, strictly above) does
    not already grant."""

    assignment: RoleAssignment
    covered_by: RoleAssignment


def _wider_scopes(subscription_id: str, scope: str) -> tuple[str, ...]:
    """The scopes strictly above ``scope`` inside the subscription that are looked at (its resource group, the
    subscription), as comparison keys; () when ``scope`` is not below the subscription."""
    root = f"/subscriptions/{subscription_id}".lower()
    key = id_key(scope)
    if not key.startswith(root + "/"):
        return ()
    parts = key.split("/")  # "", "subscriptions", sub, "resourcegroups", rg, ...
    if len(parts) > 5 and parts[3] == "resourcegroups":
        return "/".join(parts[:5]), root
    return (root,)


def redundant_assignments(subscription_id: str, assignments: Iterable[RoleAssignment]) -> list[Redundant]:
    """Each assignment among ``assignments`` whose principal also holds its role unconditionally at its resource
    group or the subscription (strictly above it), with the widest such assignment (the subscription's before the
    group's: removing every redundant one leaves it). In the order given."""
    listed: Sequence[RoleAssignment] = list(assignments)
    wide: dict[tuple[str, str, str], RoleAssignment] = {}
    for a in listed:
        if not a.condition:
            wide.setdefault((*a.pair, id_key(a.scope)), a)
    found: list[Redundant] = []
    for a in listed:
        for above in reversed(_wider_scopes(subscription_id, a.scope)):  # the subscription first
            cover = wide.get((*a.pair, above))
            if cover is not None:
                found.append(Redundant(a, cover))
                break
    return found


def overlapping(subscription_id: str, assignments: Sequence[RoleAssignment]) -> tuple[RoleAssignment, ...]:
    """What the inventory keeps of a subscription's assignments for CAP-004: the redundant ones and those that make
    them redundant, no other (a subscription without wider grants keeps nothing). In the order given."""
    found = redundant_assignments(subscription_id, assignments)
    kept = {r.assignment.id for r in found} | {r.covered_by.id for r in found}
    return tuple(a for a in assignments if a.id in kept)
