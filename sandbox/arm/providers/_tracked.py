"""Generic tracked resources (create, get, list, PATCH tags, delete) for the simple providers.

Not a provider module itself (leading underscore): ``compute``, ``storage`` and ``postgresql`` describe their
types with :class:`TrackedType` and call :func:`register_tracked`. Region (``location``) is required on create
and immutable afterwards, as in ARM.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sandbox.arm.context import ProviderContext
from sandbox.arm.errors import ArmError, not_found
from sandbox.arm.http import Request, Response, no_content, ok
from sandbox.arm.routing import ProviderRoutes

SUB = "/subscriptions/{subscriptionId}"
GROUP = SUB + "/resourceGroups/{resourceGroupName}"

#: build(req, body, existing, ctx) -> properties for the stored record (provisioningState is set for you)
PropertiesBuilder = Callable[[Request, dict[str, Any], dict[str, Any] | None, ProviderContext], dict[str, Any]]
#: after_create(req, record, ctx) -> None: side effects when a create completes (e.g. a VM's OS disk)
CreateHook = Callable[[Request, dict[str, Any], ProviderContext], None]


@dataclass(frozen=True)
class CreatePlan:
    """How one create goes (a type's ``create_plan`` hook decides, e.g. the VM provisioning model)."""

    seconds: float | None = None  # the create's duration (None: the type's create_seconds)
    fail_with: ArmError | None = None  # the create ends Failed with this error (provisioningState Failed)
    event_on_accept: bool = False  # the write event is raised when the PUT is accepted, not when it ends


#: create_plan(req, ctx) -> CreatePlan for a new resource
CreatePlanner = Callable[[Request, ProviderContext], CreatePlan]


@dataclass(frozen=True)
class TrackedType:
    namespace: str  # "Microsoft.Compute"
    type_name: str  # "virtualMachines"
    name_param: str  # "vmName"
    create_status: int  # first answer to a create: 201 (body + Azure-AsyncOperation) or 202
    #: operation URL templates below /subscriptions/{sub}; may use {location} and {operationId}
    async_path: str | None
    location_path: str | None
    update_async: bool  # PATCH answered 202 + LRO (else 200 at once)
    delete_async: bool  # DELETE answered 202 + LRO (else 200 at once, 204 if absent)
    build: PropertiesBuilder
    after_create: CreateHook | None = None
    after_delete: CreateHook | None = None  # (req, deleted record, ctx)
    create_plan: CreatePlanner | None = None
    create_seconds: float = 30.0
    update_seconds: float = 10.0
    delete_seconds: float = 20.0
    body_on_accept: bool = True  # include the resource body in a 201/202/200 first answer
    extra_top_level: tuple[str, ...] = ("sku", "kind", "identity", "zones", "plan", "extendedLocation")

    @property
    def full_type(self) -> str:
        return f"{self.namespace}/{self.type_name}"

    @property
    def item_template(self) -> str:
        return f"{GROUP}/providers/{self.namespace}/{self.type_name}/{{{self.name_param}}}"


def normalize_location(location: str) -> str:
    return location.replace(" ", "").lower()


def register_tracked(rp: ProviderRoutes, ctx: ProviderContext, kind: TrackedType) -> None:
    """Routes: PUT/GET/PATCH/DELETE item, list in group and in subscription, operation status/result."""
    item = kind.item_template

    def lro_urls(req: Request, location: str) -> tuple[str | None, str | None]:
        sub = req.param("subscriptionId")

        def fill(template: str | None) -> str | None:
            if template is None:
                return None
            return f"/subscriptions/{sub}" + template.replace("{location}", location)

        return fill(kind.async_path), fill(kind.location_path)

    def put(req: Request) -> Response:
        body = req.json_object()
        rid = req.path.rstrip("/")
        requested = body.get("location")
        with ctx.store.transaction():
            existing = ctx.store.get(rid)
            if existing is None and not requested:
                raise ArmError(400, "LocationRequired", "The location property is required for this definition.")
            if existing is not None and requested and normalize_location(requested) != existing["location"]:
                raise ArmError(
                    409,
                    "InvalidResourceLocation",
                    f"The resource '{existing['name']}' already exists in location '{existing['location']}' in "
                    f"resource group '{req.param('resourceGroupName')}'. A resource with the same name cannot be "
                    f"created in location '{normalize_location(requested)}'. Please select a new resource name.",
                )
            location = existing["location"] if existing else normalize_location(str(requested))
            record: dict[str, Any] = {
                "id": rid,
                "name": req.param(kind.name_param),
                "type": kind.full_type,
                "location": location,
                "tags": body.get("tags", (existing or {}).get("tags", {})) or {},
            }
            for key in kind.extra_top_level:
                if key in body:
                    record[key] = body[key]
                elif existing is not None and key in existing:
                    record[key] = existing[key]
            properties = kind.build(req, dict(body.get("properties") or {}), existing, ctx)
            properties["provisioningState"] = "Updating" if existing else "Creating"
            record["properties"] = properties
            record["systemData"] = ctx.system_data(req, existing)
            stored = ctx.store.put(record)

        def complete() -> dict[str, Any]:
            with ctx.store.transaction():
                current = ctx.store.get(rid)
                if current is None:
                    raise ArmError(409, "Conflict", f"The resource '{rid}' was deleted while being created.")
                current["properties"]["provisioningState"] = "Succeeded"
                result = ctx.store.put(current)
            if existing is None and kind.after_create is not None:
                kind.after_create(req, result, ctx)
            return result

        def failed(error: ArmError) -> None:
            with ctx.store.transaction():
                current = ctx.store.get(rid)
                if current is not None:
                    current["properties"]["provisioningState"] = "Failed"
                    ctx.store.put(current)

        async_url, location_url = lro_urls(req, location)
        plan = kind.create_plan(req, ctx) if existing is None and kind.create_plan is not None else CreatePlan()
        default_seconds = kind.update_seconds if existing else kind.create_seconds
        op = ctx.operations.begin(
            req,
            duration=default_seconds if plan.seconds is None else plan.seconds,
            complete=complete,
            on_failure=failed,
            async_url=async_url,
            location_url=location_url,
            fail_with=plan.fail_with,
        )
        if plan.event_on_accept and op.facts is not None:
            ctx.events.raise_resource_event(op.facts, "Succeeded")
            op.facts = None  # raised once, now; not again when the create ends
        status = kind.create_status if existing is None else (200 if kind.create_status == 201 else 202)
        return ctx.operations.accept(op, status, stored if kind.body_on_accept or status != 202 else None)

    def get(req: Request) -> Response:
        record = ctx.store.get(req.path)
        if record is None:
            raise not_found(req.path, kind.full_type)
        return ok(record)

    def patch(req: Request) -> Response:
        body = req.json_object()
        if body.get("location"):
            raise ArmError(
                400,
                "LocationNotUpdatable",
                "The location of a resource cannot be changed; a move is not a region change.",
            )
        rid = req.path.rstrip("/")
        with ctx.store.transaction():
            record = ctx.store.get(rid)
            if record is None:
                raise not_found(rid, kind.full_type)
            if "tags" in body:
                record["tags"] = body["tags"] or {}
            for key in kind.extra_top_level:
                if key in body:
                    record[key] = body[key]
            if isinstance(body.get("properties"), dict):
                record["properties"].update(copy.deepcopy(body["properties"]))
            record["systemData"] = ctx.system_data(req, record)
            if kind.update_async:
                record["properties"]["provisioningState"] = "Updating"
            stored = ctx.store.put(record)
        if not kind.update_async:
            return ok(stored)

        def complete() -> dict[str, Any]:
            with ctx.store.transaction():
                current = ctx.store.get(rid)
                if current is None:
                    raise not_found(rid, kind.full_type)
                current["properties"]["provisioningState"] = "Succeeded"
                return ctx.store.put(current)

        async_url, location_url = lro_urls(req, stored["location"])
        op = ctx.operations.begin(
            req, duration=kind.update_seconds, complete=complete, async_url=async_url, location_url=location_url
        )
        return ctx.operations.accept(op, 202, None)

    def delete(req: Request) -> Response:
        rid = req.path.rstrip("/")
        record = ctx.store.get(rid)
        if record is None:
            return Response(204, raise_event=True)
        if not kind.delete_async:
            ctx.store.delete(rid)
            if kind.after_delete is not None:
                kind.after_delete(req, record, ctx)
            return ok()
        with ctx.store.transaction():
            record["properties"]["provisioningState"] = "Deleting"
            ctx.store.put(record)

        def complete() -> None:
            ctx.store.delete(rid)
            if kind.after_delete is not None and record is not None:
                kind.after_delete(req, record, ctx)

        async_url, location_url = lro_urls(req, record["location"])
        op = ctx.operations.begin(
            req, duration=kind.delete_seconds, complete=complete, async_url=async_url, location_url=location_url
        )
        return ctx.operations.accept(op, 202, None)

    def list_in_group(req: Request) -> Response:
        group = ctx.resource_group_id(req.param("subscriptionId"), req.param("resourceGroupName"))
        return ctx.page(req, ctx.store.children(group, resource_type=kind.full_type))

    def list_in_subscription(req: Request) -> Response:
        return ctx.page(req, ctx.store.list(resource_type=kind.full_type, subscription_id=req.param("subscriptionId")))

    rp.add("PUT", item, put)
    rp.add("GET", item, get)
    rp.add("PATCH", item, patch)
    rp.add("DELETE", item, delete)
    rp.add("GET", f"{GROUP}/providers/{kind.namespace}/{kind.type_name}", list_in_group)
    rp.add("GET", f"{SUB}/providers/{kind.namespace}/{kind.type_name}", list_in_subscription)


def register_operation_routes(
    rp: ProviderRoutes, ctx: ProviderContext, async_path: str | None, location_path: str | None
) -> None:
    """GET routes for a namespace's operation URLs (templates below /subscriptions/{sub}, with {location}).

    Azure often serves both from one path: ``?monitor=true`` asks for the Location (result) flavour.
    """

    def status(req: Request) -> Response:
        if req.query.get("monitor", "").lower() == "true":
            return ctx.operations.result_response(req.param("operationId"))
        return ctx.operations.status_response(req.param("operationId"))

    def result(req: Request) -> Response:
        return ctx.operations.result_response(req.param("operationId"))

    if async_path is not None:
        rp.add("GET", SUB + async_path.split("?")[0], status, events=False)
    if location_path is not None and location_path.split("?")[0] != (async_path or "").split("?")[0]:
        rp.add("GET", SUB + location_path.split("?")[0], result, events=False)


__all__ = [
    "CreatePlan", "TrackedType", "no_content", "normalize_location", "register_operation_routes", "register_tracked",
]
