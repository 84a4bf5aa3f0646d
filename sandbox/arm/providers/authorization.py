"""Microsoft.Authorization routes (api-version 2022-04-01): role assignments and built-in role definitions.

Routes follow ``azure.mgmt.authorization.v2022_04_01`` (``role_assignments.create/get/delete/list_for_scope/
list_for_subscription/list_for_resource_group/list_for_resource/get_by_id/create_by_id/delete_by_id``,
``role_definitions.get/list/get_by_id``). ``{scope}`` spans several path segments, so every scope depth the app
uses gets its own template (subscription, resource group, resource, child resource).
State and rules: :mod:`sandbox.arm.providers.authorization_model`.
"""

from __future__ import annotations

import re

from sandbox.arm.context import ProviderContext
from sandbox.arm.errors import not_found
from sandbox.arm.http import Request, Response, no_content, ok
from sandbox.arm.ids import parse_id
from sandbox.arm.providers import dataprotection_errors as errors
from sandbox.arm.providers.authorization_builtin_roles import BUILT_IN_ROLES
from sandbox.arm.providers.authorization_model import (
    ROLE_ASSIGNMENT_TYPE,
    ROLES_BY_GUID,
    AssignmentFilter,
    RoleAssignments,
    role_definition_body,
)
from sandbox.arm.routing import ProviderRoutes, Router

API_VERSIONS = ("2022-04-01",)
NAMESPACE = "Microsoft.Authorization"
_RA = "providers/Microsoft.Authorization/roleAssignments"
_RD = "providers/Microsoft.Authorization/roleDefinitions"

#: scope templates, shallow to deep ({p*} placeholders are re-joined into the scope text)
SCOPES = (
    "/subscriptions/{p0}",
    "/subscriptions/{p0}/resourceGroups/{p1}",
    "/subscriptions/{p0}/resourceGroups/{p1}/providers/{p2}/{p3}/{p4}",
    "/subscriptions/{p0}/resourceGroups/{p1}/providers/{p2}/{p3}/{p4}/{p5}/{p6}",
    "/subscriptions/{p0}/resourceGroups/{p1}/providers/{p2}/{p3}/{p4}/{p5}/{p6}/{p7}/{p8}",
)
_PLACEHOLDER = re.compile(r"\{(p\d)\}")


def scope_from(template: str, params: dict[str, str]) -> str:
    return _PLACEHOLDER.sub(lambda m: params[m.group(1)], template)


class AuthorizationProvider:
    def __init__(self, ctx: ProviderContext) -> None:
        self.ctx = ctx
        self.assignments = RoleAssignments(ctx.store, limit=lambda: ctx.role_assignment_limit)

    # -- scope -------------------------------------------------------------------------------------------------
    def require_scope(self, scope: str) -> None:
        """ARM's 404 when the scope (subscription, group, resource) does not exist."""
        parsed = parse_id(scope)
        if parsed.subscription_id is None:
            return
        if parsed.resource_group is None:
            self.ctx.require_subscription(parsed.subscription_id)
            return
        self.ctx.require_resource_group(parsed.subscription_id, parsed.resource_group)
        if parsed.types and parsed.types[-1:] != ("resourceGroups",) and not self.ctx.store.exists(scope):
            raise not_found(scope)

    # -- role assignments --------------------------------------------------------------------------------------
    def create(self, scope: str, name: str, req: Request) -> Response:
        self.require_scope(scope)
        body = req.json_object()
        properties = body.get("properties")
        if not isinstance(properties, dict):
            raise errors.ROLE_ASSIGNMENT_INVALID.error(reason="the body needs a 'properties' object")
        who = req.principal.object_id if req.principal else None
        record, _created = self.assignments.create(scope, name, properties, now=self.ctx.clock.now(), created_by=who)
        # ARM answers 201 for a create and for an idempotent re-create alike.
        return Response(201, record)

    def get(self, scope: str, name: str) -> Response:
        return ok(self.assignments.get(scope, name))

    def delete(self, scope: str, name: str) -> Response:
        record = self.assignments.delete(scope, name)
        if record is None:
            return no_content()
        return ok(record)

    def list_for_scope(self, scope: str, req: Request) -> Response:
        self.require_scope(scope)
        flt = AssignmentFilter.parse(req.query.get("$filter"))
        return self.ctx.page(req, self.assignments.list_for_scope(scope, flt))

    def permissions(self, scope: str, req: Request) -> Response:
        """``Permissions_ListForResource`` / ``_ListForResourceGroup``: the caller's own effective actions."""
        self.require_scope(scope)
        who = req.principal.object_id if req.principal else ""
        return self.ctx.page(req, self.assignments.permissions(who, scope))

    # -- role definitions --------------------------------------------------------------------------------------
    def role_definition(self, scope: str, guid: str) -> Response:
        role = ROLES_BY_GUID.get(guid.lower())
        if role is None:
            raise errors.ROLE_DEFINITION_NOT_FOUND.error(role=guid)
        return ok(role_definition_body(role, parse_id(scope).subscription_id if scope.strip("/") else None))

    def role_definitions(self, scope: str, req: Request) -> Response:
        wanted = self._role_name_filter(req.query.get("$filter"))
        subscription = parse_id(scope).subscription_id if scope.strip("/") else None
        roles = [r for r in BUILT_IN_ROLES if wanted is None or r.name.lower() == wanted.lower()]
        return ok({"value": [role_definition_body(r, subscription) for r in roles]})

    @staticmethod
    def _role_name_filter(text: str | None) -> str | None:
        if not text or not text.strip():
            return None
        match = re.fullmatch(r"\s*roleName\s+eq\s+'((?:[^']|'')*)'\s*", text, flags=re.IGNORECASE)
        if match:
            return match.group(1).replace("''", "'")
        if re.fullmatch(r"\s*type\s+eq\s+'BuiltInRole'\s*", text, flags=re.IGNORECASE):
            return None
        raise errors.UNSUPPORTED_FILTER.error(filter=text)

    # -- moves -------------------------------------------------------------------------------------------------
    def after_move(self, pairs: list[tuple[str, str]]) -> None:
        """Role assignments do not move with their resource: they are orphaned, so they stop granting (D-move)."""
        for _old, new in pairs:
            record = self.ctx.store.get(new)
            if record is not None and str(record.get("type", "")).lower() == ROLE_ASSIGNMENT_TYPE.lower():
                self.ctx.store.delete(new, with_children=False)


def register(router: Router, ctx: ProviderContext) -> AuthorizationProvider:
    provider = AuthorizationProvider(ctx)
    routes = router.provider(NAMESPACE, API_VERSIONS)
    for template in SCOPES:
        _register_scope(routes, provider, template)
    routes.add("GET", f"/{_RD}/{{roleDefinitionId}}",
               lambda req: provider.role_definition("/", req.params["roleDefinitionId"]))
    routes.add("GET", f"/{_RD}", lambda req: provider.role_definitions("/", req))
    ctx.on_moved(provider.after_move)
    return provider


def _register_scope(routes: ProviderRoutes, provider: AuthorizationProvider, template: str) -> None:
    def scope(req: Request) -> str:
        return scope_from(template, req.params)

    one = f"{template}/{_RA}/{{roleAssignmentName}}"
    routes.add("PUT", one, lambda req: provider.create(scope(req), req.params["roleAssignmentName"], req),
               operation="Microsoft.Authorization/roleAssignments/write")
    routes.add("GET", one, lambda req: provider.get(scope(req), req.params["roleAssignmentName"]))
    routes.add("DELETE", one, lambda req: provider.delete(scope(req), req.params["roleAssignmentName"]),
               operation="Microsoft.Authorization/roleAssignments/delete")
    routes.add("GET", f"{template}/{_RA}", lambda req: provider.list_for_scope(scope(req), req))
    routes.add("GET", f"{template}/providers/Microsoft.Authorization/permissions",
               lambda req: provider.permissions(scope(req), req))
    routes.add("GET", f"{template}/{_RD}/{{roleDefinitionId}}",
               lambda req: provider.role_definition(scope(req), req.params["roleDefinitionId"]))
    routes.add("GET", f"{template}/{_RD}", lambda req: provider.role_definitions(scope(req), req))
