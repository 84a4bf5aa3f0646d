"""Whether the Backup vault's identity already holds a role on a scope through an assignment at or above it.

Asked only once Azure refused a new assignment ``RoleAssignmentLimitExceeded`` (the subscription holds its 4,000,
``role-based-access-control/troubleshoot-limits.md``): a role held at the resource, its group or the subscription
needs no assignment of its own, as Microsoft's tools skip it (``Set-AzDataProtectionMSIPermission`` compares the
assignments' ``Scope`` with the datasource, its resource group and its subscription, Azure/azure-powershell
``src/DataProtection/DataProtection.Autorest/custom/Cmdlets/Platform/Vault/Set-AzDataProtectionMSIPermission.ps1``;
``az dataprotection backup-instance update-msi-permissions`` lists them with ``include_inherited=True``,
Azure/azure-cli-extensions ``src/dataprotection/azext_dataprotection/manual/custom.py``). The assignments come from
``RoleAssignments_ListForScope`` with ``$filter=atScope() and assignedTo('{principalId}')`` (at or above the scope,
the principal's own; ``role-based-access-control/role-assignments-list-rest.md``). Pure: no Azure SDK here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from steward.domain import workloads
from steward.domain.errors import InvalidValue
from steward.domain.ids import InvalidResourceId, ResourceId
from steward.domain.kernel import format_time, parse_time


@dataclass(frozen=True)
class HeldRole:
    """The role is held on the scope by the assignment at ``scope``; ``created_on`` (ISO 8601 UTC; None: not said)
    when the one held longest was made - a role held by an assignment younger than the propagation bound may still
    not apply (``protection_flow.rbac_fresh`` waits for it from that time)."""

    scope: str
    created_on: str | None


def _covers(assigned: str, scope: str) -> bool:
    if assigned.strip() == "/":  # the root scope (above every subscription)
        return True
    try:
        return ResourceId.parse(scope).is_within(ResourceId.parse(assigned))
    except InvalidResourceId:  # a management group's: not counted (the app does not read the hierarchy; neither
        return False  # does Set-AzDataProtectionMSIPermission, which compares resource, group and subscription)


def held_role(assignments: Iterable[Mapping[str, Any]], principal_id: str, role_definition_guid: str,
              scope: str) -> HeldRole | None:
    """The assignment among ``assignments`` (REST-shaped, as listed) that gives ``principal_id`` the role
    ``role_definition_guid`` on ``scope``: same principal, same role definition (its GUID: an assignment names the
    definition under its subscription), at ``scope`` or above it, and no ``condition`` (a conditional assignment
    may grant less: not counted, **inferred** - Microsoft's script does not look at conditions). Among several,
    the oldest (its role applied first); None: not held, a new assignment is needed."""
    wanted = role_definition_guid.lower()
    found: list[tuple[datetime | None, str]] = []
    for assignment in assignments:
        props = assignment.get("properties")
        if not isinstance(props, Mapping):
            continue
        if str(props.get("principalId") or "").lower() != principal_id.lower():
            continue
        if workloads.role_definition_guid(props.get("roleDefinitionId")) != wanted or props.get("condition"):
            continue
        assigned = str(props.get("scope") or "")
        if not assigned or not _covers(assigned, scope):
            continue
        try:
            made = parse_time(props.get("createdOn"))
        except InvalidValue:
            made = None
        found.append((made, assigned))
    if not found:
        return None
    known = [f for f in found if f[0] is not None]
    made, assigned = min(known, key=lambda f: f[0] or datetime.max.replace(tzinfo=UTC)) if known else found[0]
    return HeldRole(scope=assigned, created_on=format_time(made))
