"""``Microsoft.Resources``: subscriptions, tenants, resource groups, generic resource get/list, moves."""

from __future__ import annotations

import json
import uuid
from dataclasses import replace
from typing import Any

from sandbox.arm.context import ProviderContext
from sandbox.arm.errors import ArmError, resource_group_not_found
from sandbox.arm.http import Request, Response, no_content, ok
from sandbox.arm.ids import parse_id
from sandbox.arm.providers._moves import register_moves
from sandbox.arm.providers._provider_metadata import register_provider_metadata
from sandbox.arm.routing import Router

PROVIDER = "Microsoft.Resources"
API_VERSIONS = ("2021-04-01", "2022-09-01", "2022-12-01", "2023-07-01", "2024-03-01", "2024-11-01", "2025-04-01")
RG_TYPE = "Microsoft.Resources/resourceGroups"
SUBS = "/subscriptions/{subscriptionId}"
RG = SUBS + "/resourcegroups/{resourceGroupName}"
DELETE_GROUP_SECONDS = 20.0


def _subscription_body(spec: Any) -> dict[str, Any]:
    return {
        "id": f"/subscriptions/{spec.subscription_id}",
        "authorizationSource": "RoleBased",
        "subscriptionId": spec.subscription_id,
        "tenantId": spec.tenant_id,
        "displayName": spec.display_name or spec.subscription_id,
        "state": spec.state,
        "subscriptionPolicies": {
            "locationPlacementId": "Public_2014-09-01",
            "quotaId": "PayAsYouGo_2014-09-01",
            "spendingLimit": "Off",
        },
    }


def register(router: Router, ctx: ProviderContext) -> None:
    rp = router.provider(PROVIDER, API_VERSIONS)
    register_provider_metadata(rp, router, ctx)

    # -- subscriptions and tenants --------------------------------------------------------------
    @rp.get("/subscriptions", check_scope=False)
    def list_subscriptions(req: Request) -> Response:
        assert req.principal is not None
        mine = [s for s in ctx.subscriptions.all() if s.tenant_id.lower() == req.principal.tenant_id.lower()]
        return ctx.page(req, [_subscription_body(s) for s in mine])

    @rp.get(SUBS)
    def get_subscription(req: Request) -> Response:
        return ok(_subscription_body(ctx.require_subscription(req.param("subscriptionId"))))

    @rp.get("/tenants", check_scope=False)
    def list_tenants(req: Request) -> Response:
        tenants = [
            {"id": f"/tenants/{t}", "tenantId": t, "tenantCategory": "Home", "displayName": f"Sandbox tenant {t[:8]}"}
            for t in ctx.subscriptions.tenants()
        ]
        return ctx.page(req, tenants, page_size=1000)

    # -- resource groups ------------------------------------------------------------------------
    def group_id(req: Request) -> str:
        return ctx.resource_group_id(req.param("subscriptionId"), req.param("resourceGroupName"))

    @rp.put(RG)
    def put_group(req: Request) -> Response:
        body = req.json_object()
        location = body.get("location")
        rid = group_id(req)
        ctx.require_group_unlocked(req.param("subscriptionId"), req.param("resourceGroupName"))
        with ctx.store.transaction():
            existing = ctx.store.get(rid)
            if existing is None and not location:
                raise ArmError(400, "LocationRequired", "The location property is required for this definition.")
            if existing is not None and location and location.lower() != existing["location"].lower():
                raise ArmError(
                    409,
                    "InvalidResourceGroupLocation",
                    f"Invalid resource group location '{location}'. The Resource group already exists in location "
                    f"'{existing['location']}'.",
                )
            record = {
                "id": rid,
                "name": req.param("resourceGroupName") if existing is None else existing["name"],
                "type": RG_TYPE,
                "location": existing["location"] if existing else location,
                "tags": body.get("tags", (existing or {}).get("tags", {})),
                "properties": {"provisioningState": "Succeeded"},
            }
            if body.get("managedBy"):
                record["managedBy"] = body["managedBy"]
            stored = ctx.store.put(record)
        return Response(200 if existing else 201, stored)

    @rp.get(RG)
    def get_group(req: Request) -> Response:
        record = ctx.store.get(group_id(req))
        if record is None:
            raise resource_group_not_found(req.param("resourceGroupName"))
        return ok(record)

    @rp.head(RG)
    def head_group(req: Request) -> Response:
        return Response(204 if ctx.store.exists(group_id(req)) else 404)

    @rp.patch(RG)
    def patch_group(req: Request) -> Response:
        body = req.json_object()
        rid = group_id(req)
        with ctx.store.transaction():
            record = ctx.store.get(rid)
            if record is None:
                raise resource_group_not_found(req.param("resourceGroupName"))
            if "tags" in body:
                record["tags"] = body["tags"] or {}
            return ok(ctx.store.put(record))

    @rp.delete(RG)
    def delete_group(req: Request) -> Response:
        rid = group_id(req)
        sub, name = req.param("subscriptionId"), req.param("resourceGroupName")
        if not ctx.store.exists(rid):
            raise resource_group_not_found(name)
        ctx.require_group_unlocked(sub, name)

        def complete() -> None:
            contained = [r for r in ctx.store.children(rid) if top_level(r["id"])]
            refused = {r["id"]: error for r in contained if (error := _provider_refuses_delete(router, req, r))}
            facts = req.event_facts
            for resource in contained:  # ARM deletes each contained resource, raising its delete event
                if resource["id"] not in refused:
                    ctx.store.delete(resource["id"])
                if facts is not None:
                    ctx.events.raise_resource_event(
                        replace(
                            facts,
                            resource_id=resource["id"],
                            operation_name=f"{resource['type']}/delete",
                            is_update=False,
                        ),
                        "Failed" if resource["id"] in refused else "Succeeded",
                    )
            if refused:
                raise _deletion_blocked(name, refused)
            ctx.store.delete(rid)

        op = ctx.operations.begin(
            req,
            duration=DELETE_GROUP_SECONDS,
            complete=complete,
            location_url=f"/subscriptions/{sub}/operationresults/{{operationId}}",
            retry_after=15,
        )
        return ctx.operations.accept(op, 202)

    @rp.get(SUBS + "/operationresults/{operationId}", events=False)
    def operation_result(req: Request) -> Response:
        return ctx.operations.result_response(req.param("operationId"))

    # -- generic resources ----------------------------------------------------------------------
    @rp.get(SUBS + "/resources")
    def list_resources(req: Request) -> Response:
        ctx.require_subscription(req.param("subscriptionId"))
        everything = ctx.store.list(subscription_id=req.param("subscriptionId"))
        return ctx.page(req, _generic_filter(req, ctx, everything))

    @rp.get(RG + "/resources")
    def list_group_resources(req: Request) -> Response:
        everything = ctx.store.children(group_id(req))
        return ctx.page(req, _generic_filter(req, ctx, everything))

    register_moves(rp, ctx)

    @rp.get(SUBS + "/resourcegroups")
    def list_groups(req: Request) -> Response:
        ctx.require_subscription(req.param("subscriptionId"))
        groups = ctx.store.children(f"/subscriptions/{req.param('subscriptionId')}", resource_type=RG_TYPE)
        wanted = ctx.filter(req, ("tagName", "tagValue"))
        return ctx.page(req, [g for g in groups if _tag_match(g, wanted)])


#: Types whose resource provider is asked before a group delete removes them (ARM deletes a group by deleting
#: each resource through its provider; a vault that still holds backup data refuses, and so the group delete
#: fails). Source: Azure/azure-powershell#4804 ("a Recovery Services Vault" blocks Remove-AzResourceGroup), the
#: vault delete preconditions (docs/azure-facts.md, "Vault deletion"). Other types are deleted unasked: the
#: sandbox models no other provider that refuses.
_ASKED_BEFORE_GROUP_DELETE = frozenset({"microsoft.recoveryservices/vaults", "microsoft.dataprotection/backupvaults"})


def _provider_refuses_delete(router: Router, req: Request, resource: dict[str, Any]) -> ArmError | None:
    """The error the resource's own provider answers to its DELETE, or None when it lets it go."""
    if str(resource.get("type", "")).lower() not in _ASKED_BEFORE_GROUP_DELETE:
        return None
    found = router.resolve("DELETE", resource["id"])
    if found is None:
        return None
    route, params = found
    inner = Request(
        method="DELETE",
        path=resource["id"],
        query={"api-version": sorted(route.api_versions)[-1]},
        headers={},
        raw_body=b"",
        base_url=req.base_url,
        principal=req.principal,
        params=dict(params),
        kind="delete",
    )
    try:
        route.handler(inner)
    except ArmError as error:
        return error
    return None


def _deletion_blocked(group: str, refused: dict[str, ArmError]) -> ArmError:
    """ARM's answer when resources of a group could not be deleted: ``ResourceGroupDeletionBlocked`` with one
    detail per resource (``target`` its id, ``message`` the provider's error as JSON text). The text and shape
    as Azure returns them (Azure/bicep-registry-modules#1607); the group and the refused resources stay."""
    identifiers = ", ".join("/".join(rid.strip("/").split("/")[-3:]) for rid in sorted(refused, key=str.lower))
    return ArmError(
        409,  # inferred: the issue threads show the body, not the status
        "ResourceGroupDeletionBlocked",
        f"Deletion of resource group '{group}' failed as resources with identifiers '{identifiers}' could not be "
        "deleted. The provisioning state of the resource group will be rolled back. The tracking Id is "
        f"'{uuid.uuid4()}'. Please check audit logs for more details.",
        details=[{"target": rid, "message": json.dumps(error.body())} for rid, error in sorted(refused.items())],
    )


def _tag_match(resource: dict[str, Any], wanted: dict[str, str]) -> bool:
    if "tagName" not in wanted:
        if "tagValue" in wanted:
            raise ArmError(400, "InvalidFilter", "The $filter 'tagValue' needs 'tagName'.")
        return True
    tags = {k.lower(): v for k, v in (resource.get("tags") or {}).items()}
    if wanted["tagName"].lower() not in tags:
        return False
    return "tagValue" not in wanted or tags[wanted["tagName"].lower()] == wanted["tagValue"]


def top_level(resource_id: str) -> bool:
    parsed = parse_id(resource_id)
    return len(parsed.types) == 1 and parsed.namespace is not None and "/providers/" in resource_id.lower()


GENERIC_FILTER_FIELDS = ("resourceType", "location", "name", "tagName", "tagValue", "resourceGroup")


def _generic_filter(req: Request, ctx: ProviderContext, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Top-level resources (no groups, no children) matching the ``$filter`` (``eq`` on type/location/name/tags)."""
    wanted = ctx.filter(req, GENERIC_FILTER_FIELDS)
    found = []
    for record in records:
        if not top_level(record["id"]):
            continue
        parsed = parse_id(record["id"])
        if "resourceType" in wanted and record.get("type", "").lower() != wanted["resourceType"].lower():
            continue
        if "location" in wanted and str(record.get("location", "")).lower() != wanted["location"].lower():
            continue
        if "name" in wanted and record.get("name", "").lower() != wanted["name"].lower():
            continue
        if "resourceGroup" in wanted and (parsed.resource_group or "").lower() != wanted["resourceGroup"].lower():
            continue
        if not _tag_match(record, wanted):
            continue
        found.append(_generic_view(record))
    return found


def _generic_view(record: dict[str, Any]) -> dict[str, Any]:
    """A GenericResource as ``resources.list`` shows it: no ``properties`` unless ``$expand`` asks."""
    keys = ("id", "name", "type", "location", "tags", "sku", "kind", "identity", "managedBy", "zones", "plan")
    return {k: record[k] for k in keys if k in record}


__all__ = ["PROVIDER", "no_content", "register"]
