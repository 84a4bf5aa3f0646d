"""Microsoft.Authorization state: built-in role definitions and role assignments, with scope inheritance.

Role assignments live in the shared :class:`~sandbox.arm.store.ResourceStore` as extension resources
(``{scope}/providers/Microsoft.Authorization/roleAssignments/{guid}``), so they persist and snapshot with every
other record. Rules modelled (api-version 2022-04-01):

- the name is a GUID (400 ``InvalidRoleAssignmentId``);
- the role definition must exist (400 ``RoleDefinitionDoesNotExist``); only the built-in roles of
  :mod:`sandbox.arm.providers.authorization_builtin_roles` exist (Microsoft's published definitions);
- the same principal + role + scope twice under another name is 409 ``RoleAssignmentExists``; re-PUT of the same
  name with the same content is idempotent (201), with other content 400 ``RoleAssignmentUpdateNotPermitted``;
- the scope must exist (the route layer answers ARM's 404 for a missing subscription, group or resource);
- an assignment at scope S grants its role on S and everything below S (subscription > group > resource >
  child resource). Two kinds of check: ``holds_role`` asks for a named role (the Backup vault's documented
  roles, see ``dataprotection_rules``); ``allows`` / ``permissions`` evaluate actions as ARM does, per role its
  ``actions`` minus its ``notActions`` with ``*`` wildcards, the union over the caller's roles
  (``role-definitions.md``). No deny assignments, no conditions, no data actions are evaluated.
- a subscription holds at most ``limit`` assignments (Azure: 4,000; the sandbox's ``SandboxConfig.
  role_assignments_per_subscription``), counted at the subscription, its resource groups and resources (management
  groups are not counted; the sandbox has none, nor eligible or future-scheduled PIM assignments, which do not
  count either): a NEW assignment past it is refused 400 ``RoleAssignmentLimitExceeded``, an idempotent re-PUT
  of an existing one is not, nor a duplicate under another name (409 ``RoleAssignmentExists`` first). Source:
  MicrosoftDocs/azure-docs ``articles/role-based-access-control/troubleshoot-limits.md`` ("Azure supports up to
  4000 role assignments per subscription. This limit includes role assignments at the subscription, resource
  group, and resource scopes, but not at the management group scope"; "No more role assignments can be created
  (code: RoleAssignmentLimitExceeded)"); the status, the message past that sentence and the 409-first order are
  **inferred**;
- a NEW assignment grants its role only ``PropagationConfig.rbac_seconds`` after its ``createdOn``: permission
  checks made before (``holds_role``, e.g. a Backup vault's ``validateForBackup``) see the old permissions.
  Source: MicrosoftDocs/azure-docs ``articles/role-based-access-control/troubleshooting.md`` ("role assignment
  changes ... can take up to 10 minutes to take effect"; older revisions said up to 30). Deletions take effect at
  once here (not modelled; the app never relies on a removal).

Role definitions (GUIDs, descriptions, actions, notActions, dataActions) are Microsoft's published built-in
definitions: :mod:`sandbox.arm.providers.authorization_builtin_roles`; and custom roles
(:func:`define_custom_role`, the sandbox's stand-in for ``RoleDefinitions_CreateOrUpdate``, e.g. the app's roles
read from ``infra/modules/role-definitions.bicep``), kept in the store as
``/subscriptions/{s}/providers/Microsoft.Authorization/roleDefinitions/{guid}`` with their ``assignableScopes``; an
assignment of a custom role is refused (400 ``RoleDefinitionDoesNotExist``) outside those scopes, as ARM refuses
a role definition it cannot find at the assignment's scope (**inferred** code for that case).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from sandbox.arm.ids import id_key, parse_id
from sandbox.arm.providers import dataprotection_errors as errors
from sandbox.arm.providers.authorization_builtin_roles import BUILT_IN_ROLES, BuiltInRole
from sandbox.arm.store import ResourceStore

ROLE_ASSIGNMENT_TYPE: Final = "Microsoft.Authorization/roleAssignments"
ROLE_DEFINITION_TYPE: Final = "Microsoft.Authorization/roleDefinitions"
_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


ROLES_BY_GUID: Final = {role.guid: role for role in BUILT_IN_ROLES}
ROLES_BY_NAME: Final = {role.name.lower(): role for role in BUILT_IN_ROLES}


@dataclass(frozen=True)
class CustomRole:
    """A custom role definition (``type: CustomRole``), as ``RoleDefinitions_CreateOrUpdate`` stores it."""

    guid: str
    name: str
    actions: tuple[str, ...]
    not_actions: tuple[str, ...] = ()
    assignable_scopes: tuple[str, ...] = ()
    description: str = ""

    def permission(self) -> dict[str, Any]:
        return {"actions": list(self.actions), "notActions": list(self.not_actions), "dataActions": [],
                "notDataActions": []}


def _custom_roles(store: ResourceStore) -> dict[str, CustomRole]:
    found: dict[str, CustomRole] = {}
    for record in store.list(resource_type=ROLE_DEFINITION_TYPE):
        props = record.get("properties") or {}
        permission = (props.get("permissions") or [{}])[0]
        found[str(record["name"]).lower()] = CustomRole(
            guid=str(record["name"]).lower(), name=str(props.get("roleName") or ""),
            actions=tuple(permission.get("actions") or ()), not_actions=tuple(permission.get("notActions") or ()),
            assignable_scopes=tuple(props.get("assignableScopes") or ()), description=str(props.get("description")
                                                                                          or ""))
    return found


def define_custom_role(store: ResourceStore, subscription_id: str, guid: str, name: str, *, actions: Iterable[str],
                       not_actions: Iterable[str] = (), assignable_scopes: Iterable[str] = (),
                       description: str = "") -> dict[str, Any]:
    """Sandbox control: the custom role ``name`` exists (as a deployment of ``role-definitions.bicep`` makes it);
    ``assignable_scopes`` empty: the subscription it is defined in."""
    scopes = list(assignable_scopes) or [f"/subscriptions/{subscription_id}"]
    record = {
        "id": role_definition_id(guid.lower(), subscription_id),
        "name": guid.lower(),
        "type": ROLE_DEFINITION_TYPE,
        "properties": {"roleName": name, "type": "CustomRole", "description": description,
                       "assignableScopes": scopes,
                       "permissions": [{"actions": list(actions), "notActions": list(not_actions),
                                        "dataActions": [], "notDataActions": []}]},
    }
    return store.put(record)


def role_guid(role_name: str) -> str:
    """The built-in role's GUID for its display name (``KeyError`` names an unknown role)."""
    return ROLES_BY_NAME[role_name.lower()].guid


def role_definition_id(guid: str, subscription_id: str | None) -> str:
    if subscription_id:
        return f"/subscriptions/{subscription_id}/providers/{ROLE_DEFINITION_TYPE}/{guid}"
    return f"/providers/{ROLE_DEFINITION_TYPE}/{guid}"


def role_definition_body(role: BuiltInRole, subscription_id: str | None) -> dict[str, Any]:
    return {
        "id": role_definition_id(role.guid, subscription_id),
        "name": role.guid,
        "type": ROLE_DEFINITION_TYPE,
        "properties": {
            "roleName": role.name,
            "type": "BuiltInRole",
            "description": role.description,
            "assignableScopes": ["/"],
            "permissions": [role.permission()],
            "createdOn": "2015-02-02T21:55:09.8806423Z",
            "updatedOn": "2024-01-01T00:00:00.0000000Z",
            "createdBy": None,
            "updatedBy": None,
        },
    }


def guid_of_role_definition(role_definition: str) -> str:
    """The GUID at the end of a role definition id (or a bare GUID)."""
    return role_definition.rstrip("/").rsplit("/", 1)[-1].lower()


def action_matches(pattern: str, action: str) -> bool:
    """ARM's action wildcards: ``*`` matches any run of characters, case-insensitively (``*/read``,
    ``Microsoft.Storage/storageAccounts/*``)."""
    regex = ".*".join(re.escape(part) for part in pattern.split("*"))
    return re.fullmatch(regex, action, flags=re.IGNORECASE) is not None


def permission_allows(entry: dict[str, Any], action: str) -> bool:
    """One ``permissions`` entry grants ``action``: an ``actions`` pattern matches it and no ``notActions``
    pattern does ("Actions - NotActions = Effective control plane permissions", MicrosoftDocs/azure-docs
    ``articles/role-based-access-control/role-definitions.md``, "Understand Azure role definitions")."""
    granted = any(action_matches(str(p), action) for p in entry.get("actions") or [])
    return granted and not any(action_matches(str(p), action) for p in entry.get("notActions") or [])


def role_allows(role: BuiltInRole, action: str) -> bool:
    """The built-in ``role`` grants control-plane ``action`` (its actions minus its notActions)."""
    return permission_allows(role.permission(), action)


def scope_covers(scope: str, target: str) -> bool:
    """True when an assignment at ``scope`` applies to ``target`` (same scope or below it)."""
    scope_key, target_key = id_key(scope), id_key(target)
    if scope_key == "/":
        return True
    return target_key == scope_key or target_key.startswith(scope_key + "/")


def assignment_id(scope: str, name: str) -> str:
    base = "/" + scope.strip("/") if scope.strip("/") else ""
    return f"{base}/providers/{ROLE_ASSIGNMENT_TYPE}/{name}"


def scope_of_assignment(resource_id: str) -> str:
    """The scope part of a role assignment id."""
    marker = "/providers/microsoft.authorization/roleassignments/"
    cut = resource_id.lower().rfind(marker)
    scope = resource_id[:cut] if cut >= 0 else resource_id
    return scope or "/"


@dataclass(frozen=True)
class AssignmentFilter:
    """The OData filters ARM accepts on role assignment lists."""

    at_scope: bool = False
    principal_id: str | None = None

    @classmethod
    def parse(cls, text: str | None) -> AssignmentFilter:
        if not text or not text.strip():
            return cls()
        at_scope = False
        principal: str | None = None
        for raw in re.split(r"\s+and\s+", text.strip(), flags=re.IGNORECASE):
            clause = raw.strip()
            if re.fullmatch(r"atScope\(\)", clause, flags=re.IGNORECASE):
                at_scope = True
                continue
            match = re.fullmatch(r"(?:principalId\s+eq\s+|assignedTo\()'([^']*)'\)?", clause, flags=re.IGNORECASE)
            if match:
                principal = match.group(1)
                continue
            raise errors.UNSUPPORTED_FILTER.error(filter=text)
        return cls(at_scope=at_scope, principal_id=principal)


def _created_on(props: dict[str, Any]) -> datetime | None:
    text = str(props.get("createdOn") or "")
    if not text:
        return None
    try:
        return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    except ValueError:
        return None


class RoleAssignments:
    """Role assignments over the shared store; every method is safe to call from several threads.

    ``now`` and ``propagation_seconds`` (callables, read at each check) model RBAC propagation: without them an
    assignment grants at once.
    """

    def __init__(
        self,
        store: ResourceStore,
        *,
        now: Callable[[], datetime] | None = None,
        propagation_seconds: Callable[[], float] | None = None,
        limit: Callable[[], int] | None = None,
    ) -> None:
        self.store = store
        self._now = now
        self._propagation = propagation_seconds
        self._limit = limit

    def effective(self, record: dict[str, Any]) -> bool:
        """The assignment has propagated: its role counts in permission checks."""
        if self._now is None or self._propagation is None:
            return True
        delay = float(self._propagation())
        created = _created_on(record.get("properties", {}))
        if delay <= 0 or created is None:
            return True
        now = self._now()
        if now.tzinfo is None:
            now = now.replace(tzinfo=UTC)
        return now >= created + timedelta(seconds=delay)

    # -- reads ------------------------------------------------------------------------------------------------
    def all(self) -> list[dict[str, Any]]:
        return self.store.list(resource_type=ROLE_ASSIGNMENT_TYPE)

    def get(self, scope: str, name: str) -> dict[str, Any]:
        record = self.store.get(assignment_id(scope, name))
        if record is None or str(record.get("type", "")).lower() != ROLE_ASSIGNMENT_TYPE.lower():
            raise errors.ROLE_ASSIGNMENT_NOT_FOUND.error(name=name)
        return record

    def list_for_scope(self, scope: str, flt: AssignmentFilter) -> list[dict[str, Any]]:
        """At, above and below ``scope``; ``atScope()`` keeps at and above; ``principalId`` narrows.

        As ``RoleAssignments_ListFor{Scope,Subscription,ResourceGroup}`` answer (Azure/azure-rest-api-specs
        ``authorization/.../stable/2022-04-01/authorization-RoleAssignmentsCalls.json``: "Use $filter=atScope() to
        return all role assignments at or above the scope"; MicrosoftDocs/azure-docs
        ``articles/role-based-access-control/role-assignments-list-rest.md``: atScope() lists them "not including
        the role assignments at subscopes", so without it a subscription's list holds its groups' and resources'
        too; ``assignedTo('{objectId}')`` narrows to a user's or service principal's own, and ``atScope() and
        assignedTo(...)`` lists "role assignments for the specified user or service principal and at the specified
        scope" - group memberships, which ``assignedTo`` also follows, are not modelled: no groups here). Paged on
        ``nextLink`` (``x-ms-pageable``) by the route. Management groups are not modelled: the root scope ``/`` is
        the only scope above a subscription here."""
        found = []
        for record in self.all():
            props = record.get("properties", {})
            assigned = str(props.get("scope") or scope_of_assignment(record["id"]))
            above_or_at = scope_covers(assigned, scope)
            below = scope_covers(scope, assigned)
            if flt.at_scope and not above_or_at:
                continue
            if not (above_or_at or below):
                continue
            if flt.principal_id is not None and str(props.get("principalId", "")).lower() != flt.principal_id.lower():
                continue
            found.append(record)
        return found

    def count_in_subscription(self, subscription_id: str) -> int:
        """Assignments that count toward the subscription's limit: at the subscription, its groups and resources."""
        return _count_in(self.all(), subscription_id)

    def holds_role(self, principal_id: str, role: str, target: str) -> bool:
        """True when ``principal_id`` holds built-in ``role`` (name or GUID) on ``target`` or a scope above it,
        through an assignment that has propagated (:meth:`effective`)."""
        guid = role if _GUID.match(role) else role_guid(role)
        for record in self.all():
            props = record.get("properties", {})
            if str(props.get("principalId", "")).lower() != principal_id.lower():
                continue
            if guid_of_role_definition(str(props.get("roleDefinitionId", ""))) != guid.lower():
                continue
            if not scope_covers(str(props.get("scope") or scope_of_assignment(record["id"])), target):
                continue
            if self.effective(record):
                return True
        return False

    def permissions(self, principal_id: str, target: str) -> list[dict[str, Any]]:
        """The caller's effective permissions at ``target``, one entry per role assignment that covers it (the
        shape of ``Permissions_ListForResource``, Microsoft.Authorization 2022-04-01)."""
        found: list[dict[str, Any]] = []
        custom = _custom_roles(self.store)
        for record in self.all():
            props = record.get("properties", {})
            if str(props.get("principalId", "")).lower() != principal_id.lower():
                continue
            if not scope_covers(str(props.get("scope") or scope_of_assignment(record["id"])), target):
                continue
            guid = guid_of_role_definition(str(props.get("roleDefinitionId", "")))
            role: BuiltInRole | CustomRole | None = ROLES_BY_GUID.get(guid) or custom.get(guid)
            if role is not None:
                found.append(role.permission())
        return found

    def allows(self, principal_id: str, action: str, target: str) -> bool:
        """True when one of the caller's roles at ``target`` grants ``action``: per role its actions minus its
        notActions (wildcards, any case), the union over roles, so one role's notActions is no deny for another
        role's grant (``role-definitions.md``: "NotActions is not a deny rule")."""
        return any(permission_allows(p, action) for p in self.permissions(principal_id, target))

    # -- writes -----------------------------------------------------------------------------------------------
    def create(
        self,
        scope: str,
        name: str,
        properties: dict[str, Any],
        *,
        now: datetime,
        created_by: str | None,
    ) -> tuple[dict[str, Any], bool]:
        """Create (or idempotently re-create) an assignment; returns (record, created)."""
        if not _GUID.match(name):
            raise errors.ROLE_ASSIGNMENT_ID_INVALID.error(name=name)
        role_definition = str(properties.get("roleDefinitionId") or "")
        principal_id = str(properties.get("principalId") or "")
        if not role_definition:
            raise errors.ROLE_ASSIGNMENT_INVALID.error(reason="properties.roleDefinitionId is required")
        if not principal_id:
            raise errors.ROLE_ASSIGNMENT_INVALID.error(reason="properties.principalId is required")
        guid = guid_of_role_definition(role_definition)
        canonical_scope = "/" + scope.strip("/") if scope.strip("/") else "/"
        role: BuiltInRole | CustomRole | None = ROLES_BY_GUID.get(guid)
        if role is None:
            role = _custom_roles(self.store).get(guid)
            if role is None or not any(scope_covers(s, canonical_scope) for s in role.assignable_scopes):
                raise errors.ROLE_DEFINITION_MISSING.error(role=guid)
        subscription = parse_id(canonical_scope).subscription_id
        with self.store.transaction():
            existing = self.store.get(assignment_id(canonical_scope, name))
            if existing is not None:
                props = existing["properties"]
                same = (
                    str(props.get("principalId", "")).lower() == principal_id.lower()
                    and guid_of_role_definition(str(props.get("roleDefinitionId", ""))) == guid
                )
                if not same:
                    raise errors.ROLE_ASSIGNMENT_UPDATE.error()
                return existing, False
            # one read of every assignment for both checks below (each create scans them all: the sandbox's cost)
            records = self.all()
            # 409 RoleAssignmentExists before the limit (a duplicate creates nothing): the order is **inferred**
            for other in records:
                other_props = other.get("properties", {})
                if (
                    str(other_props.get("principalId", "")).lower() == principal_id.lower()
                    and id_key(str(other_props.get("scope") or scope_of_assignment(other["id"])))
                    == id_key(canonical_scope)
                    and guid_of_role_definition(str(other_props.get("roleDefinitionId", ""))) == guid
                ):
                    raise errors.ROLE_ASSIGNMENT_EXISTS.error()
            if self._limit is not None and subscription:
                limit = int(self._limit())
                count = _count_in(records, subscription)
                if count >= limit:
                    raise errors.ROLE_ASSIGNMENT_LIMIT.error(subscription=subscription, count=count, limit=limit)
            stamp = now.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            record = {
                "id": assignment_id(canonical_scope, name),
                "name": name,
                "type": ROLE_ASSIGNMENT_TYPE,
                "properties": {
                    "roleDefinitionId": role_definition_id(role.guid, subscription),
                    "principalId": principal_id,
                    "principalType": properties.get("principalType") or "ServicePrincipal",
                    "scope": canonical_scope,
                    "condition": properties.get("condition"),
                    "conditionVersion": properties.get("conditionVersion"),
                    "description": properties.get("description"),
                    "createdOn": stamp,
                    "updatedOn": stamp,
                    "createdBy": created_by,
                    "updatedBy": created_by,
                    "delegatedManagedIdentityResourceId": properties.get("delegatedManagedIdentityResourceId"),
                },
            }
            return self.store.put(record), True

    def delete(self, scope: str, name: str) -> dict[str, Any] | None:
        """Remove the assignment; None when there was none (ARM answers 204 then)."""
        with self.store.transaction():
            record = self.store.get(assignment_id(scope, name))
            if record is None or str(record.get("type", "")).lower() != ROLE_ASSIGNMENT_TYPE.lower():
                return None
            self.store.delete(record["id"], with_children=False)
            return record

    def drop_under(self, scopes: Iterable[str]) -> list[str]:
        """Delete assignments at or below any of ``scopes`` (a moved resource's assignments are orphaned)."""
        keys = [id_key(s) for s in scopes]
        dropped = []
        for record in self.all():
            assigned = str(record.get("properties", {}).get("scope") or scope_of_assignment(record["id"]))
            if any(scope_covers(k, assigned) for k in keys):
                self.store.delete(record["id"], with_children=False)
                dropped.append(record["id"])
        return dropped


def _count_in(records: Iterable[dict[str, Any]], subscription_id: str) -> int:
    """Of ``records``, the assignments at the subscription, its groups and resources (its limit's count)."""
    root = f"/subscriptions/{subscription_id}"
    return sum(1 for record in records
               if scope_covers(root, str(record.get("properties", {}).get("scope")
                                         or scope_of_assignment(record["id"]))))


def new_assignment_name() -> str:
    return str(uuid.uuid4())


def grant_built_in_role(store: ResourceStore, principal_id: str, role_name: str, scope: str, now: datetime) -> None:
    """Sandbox control: ``principal_id`` holds the built-in ``role_name`` at ``scope`` (tests and seeds)."""
    role = ROLES_BY_NAME[role_name.lower()]
    subscription = parse_id(scope).subscription_id
    RoleAssignments(store).create(
        scope,
        new_assignment_name(),
        {
            "roleDefinitionId": role_definition_id(role.guid, subscription),
            "principalId": principal_id,
            "principalType": "ServicePrincipal",
        },
        now=now,
        created_by=None,
    )


def seed_role_assignments(store: ResourceStore, principal_id: str, role_name: str, scopes: Iterable[str],
                          now: datetime) -> list[str]:
    """Sandbox control: ``principal_id`` holds the built-in ``role_name`` at each of ``scopes``, written straight into
    the store (a subscription near Azure's 4,000 role assignments for tests and benchmarks: through the PUT route
    each would be a request and a scan of every assignment). No check: neither that a scope exists nor a duplicate.
    Returns the assignments' ids."""
    role = ROLES_BY_NAME[role_name.lower()]
    stamp = now.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    made = []
    with store.transaction():
        for scope in scopes:
            canonical = "/" + scope.strip("/") if scope.strip("/") else "/"
            name = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{principal_id.lower()}|{role.guid}|{canonical.lower()}"))
            record = {
                "id": assignment_id(canonical, name), "name": name, "type": ROLE_ASSIGNMENT_TYPE,
                "properties": {"roleDefinitionId": role_definition_id(role.guid, parse_id(canonical).subscription_id),
                               "principalId": principal_id, "principalType": "ServicePrincipal", "scope": canonical,
                               "createdOn": stamp, "updatedOn": stamp, "createdBy": None, "updatedBy": None},
            }
            made.append(str(store.put(record)["id"]))
    return made
