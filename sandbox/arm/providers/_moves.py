"""``moveResources`` and ``validateMoveResources`` (Microsoft.Resources), with provider vetoes.

Both answer 202 + ``Location`` (``/subscriptions/{sub}/operationresults/{id}``); the Location poll answers
202 while running, then 204 on success or the error (validate: always 409, as documented). Request-shape
problems (no ids, more than 800, a child resource, an id outside the source group, a bad target) are 400s
at once. Everything else is checked when the operation runs: target scope exists, every resource exists,
provider move guards (``ctx.add_move_guard``), same tenant. A move locks both groups (writes and deletes in
them get 409 ``ScopeLocked``) until it ends, then rewrites ids — children move with their parents — and
calls ``ctx.on_moved`` hooks.
"""

from __future__ import annotations

from typing import Any

from sandbox.arm.context import MovePlan, ProviderContext
from sandbox.arm.errors import ArmError, resource_group_not_found, subscription_not_found
from sandbox.arm.http import Request, Response
from sandbox.arm.ids import id_key, parse_id
from sandbox.arm.routing import ProviderRoutes

MAX_RESOURCES = 800
VALIDATE_SECONDS = 15.0
MOVE_BASE_SECONDS = 60.0
MOVE_SECONDS_PER_RESOURCE = 2.0
GROUP = "/subscriptions/{subscriptionId}/resourcegroups/{resourceGroupName}"
#: the code for a move across tenants (ARM's exact code is unconfirmed; the rule is documented)
CROSS_TENANT_CODE = "CrossTenantMoveNotSupported"


def _shape_error(message: str, code: str = "InvalidResourceMoveRequest") -> ArmError:
    return ArmError(400, code, message)


def _read_request(req: Request) -> tuple[list[str], str, str]:
    """(resource ids, target subscription, target group) or a 400."""
    body = req.json_object()
    ids = body.get("resources")
    if not isinstance(ids, list) or not ids or not all(isinstance(i, str) and i.strip() for i in ids):
        raise _shape_error("The request must list the ids of the resources to move in 'resources'.")
    unique: dict[str, str] = {}
    for rid in ids:
        unique.setdefault(id_key(rid), "/" + rid.strip("/"))
    if len(unique) > MAX_RESOURCES:
        raise _shape_error(
            f"The move request lists {len(unique)} resources; at most {MAX_RESOURCES} resources can be moved "
            "in one request."
        )
    target = body.get("targetResourceGroup")
    parsed = parse_id(target) if isinstance(target, str) else None
    if parsed is None or parsed.resource_group is None or parsed.subscription_id is None or len(parsed.types) != 2:
        raise _shape_error(
            f"The target resource group '{target}' is not a resource group id "
            "('/subscriptions/{id}/resourceGroups/{name}').",
            "InvalidTargetResourceGroup",
        )
    source_sub, source_group = req.param("subscriptionId"), req.param("resourceGroupName")
    if parsed.subscription_id.lower() == source_sub.lower() and parsed.resource_group.lower() == source_group.lower():
        raise _shape_error(
            "The target resource group must be different from the source resource group.",
            "InvalidTargetResourceGroup",
        )
    source_key = id_key(f"/subscriptions/{source_sub}/resourceGroups/{source_group}")
    for rid in unique.values():
        rparsed = parse_id(rid)
        if rparsed.resource_group_id is None or id_key(rparsed.resource_group_id) != source_key:
            raise _shape_error(
                f"The resource '{rid}' is not in the source resource group '{source_group}'. All resources to "
                "move must be in the source resource group."
            )
        if len(rparsed.types) != 1:
            raise _shape_error(
                f"Identifier '{rid}' is not a top level resource. Please include only the top-level resource "
                "for this child resource in the move request.",
                "ResourceNotTopLevel",
            )
    return list(unique.values()), parsed.subscription_id, parsed.resource_group


def _plan(
    ctx: ProviderContext, req: Request, ids: list[str], target: tuple[str, str], *, validate_only: bool
) -> MovePlan:
    """Check scopes and resources exist, build the plan, run the guards, check tenants."""
    source_sub, source_group = req.param("subscriptionId"), req.param("resourceGroupName")
    target_sub, target_group = target
    source_spec = ctx.require_subscription(source_sub)
    target_spec = ctx.subscriptions.get(target_sub)
    if target_spec is None:
        raise subscription_not_found(target_sub)
    if not ctx.store.exists(ctx.resource_group_id(source_sub, source_group)):
        raise resource_group_not_found(source_group)
    if not ctx.store.exists(ctx.resource_group_id(target_sub, target_group)):
        raise resource_group_not_found(target_group)
    resources: list[dict[str, Any]] = []
    missing = []
    for rid in ids:
        record = ctx.store.get(rid)
        if record is None:
            missing.append(rid)
        else:
            resources.append(record)
    if missing:
        raise ArmError(
            404,
            "ResourceNotFound",
            f"The resources {', '.join(repr(m) for m in missing)} to be moved were not found.",
        )
    plan = MovePlan(
        source_subscription=source_sub,
        source_group=source_group,
        target_subscription=target_spec.subscription_id,
        target_group=target_group,
        source_tenant=source_spec.tenant_id,
        target_tenant=target_spec.tenant_id,
        resource_ids=tuple(ids),
        resources=tuple(resources),
        principal=req.principal,
        validate_only=validate_only,
    )
    for guard in list(ctx.move_guards):
        guard(plan)
    if plan.cross_tenant:
        raise ArmError(
            409,
            CROSS_TENANT_CODE,
            f"Resources cannot be moved to subscription '{plan.target_subscription}' in tenant "
            f"'{plan.target_tenant}': the source subscription is in tenant '{plan.source_tenant}'. Resources can "
            "only move between subscriptions of the same Microsoft Entra tenant.",
        )
    return plan


def _apply(ctx: ProviderContext, plan: MovePlan) -> list[tuple[str, str]]:
    target_group_id = ctx.resource_group_id(plan.target_subscription, plan.target_group)
    moved: list[tuple[str, str]] = []
    with ctx.store.transaction():
        for resource in plan.resources:
            old_id = resource["id"]
            tail = old_id[old_id.lower().index("/providers/") :]
            moved += ctx.store.rekey(old_id, target_group_id + tail)
    for hook in list(ctx.moved_hooks):
        hook(moved)
    return moved


def register_moves(rp: ProviderRoutes, ctx: ProviderContext) -> None:
    def start(req: Request, validate_only: bool) -> Response:
        ids, target_sub, target_group = _read_request(req)
        source_sub, source_group = req.param("subscriptionId"), req.param("resourceGroupName")
        locks = [
            ctx.resource_group_id(source_sub, source_group).lower(),
            ctx.resource_group_id(target_sub, target_group).lower(),
        ]
        if not validate_only:
            with ctx.move_lock:
                for key in locks:
                    if key in ctx.locked_groups:
                        raise ArmError(
                            409,
                            "ScopeLocked",
                            f"The scope '{key}' cannot perform write operation because another move of resources "
                            "in it is in progress.",
                        )
                ctx.locked_groups.update(locks)

        def unlock(_: object = None) -> None:
            if not validate_only:
                with ctx.move_lock:
                    ctx.locked_groups.difference_update(locks)

        def complete() -> None:
            try:
                with ctx.move_lock:
                    plan = _plan(ctx, req, ids, (target_sub, target_group), validate_only=validate_only)
                    if not validate_only:
                        _apply(ctx, plan)
            except ArmError as exc:
                if validate_only and exc.status != 409:
                    raise ArmError(409, exc.code, exc.message, details=exc.details, target=exc.target) from exc
                raise
            finally:
                unlock()

        seconds = VALIDATE_SECONDS if validate_only else MOVE_BASE_SECONDS + MOVE_SECONDS_PER_RESOURCE * len(ids)
        op = ctx.operations.begin(
            req,
            duration=seconds,
            complete=complete,
            on_failure=unlock,
            location_url=f"/subscriptions/{source_sub}/operationresults/{{operationId}}",
            retry_after=15,
        )
        return ctx.operations.accept(op, 202)

    @rp.post(GROUP + "/moveResources")
    def move_resources(req: Request) -> Response:
        return start(req, validate_only=False)

    @rp.post(GROUP + "/validateMoveResources")
    def validate_move_resources(req: Request) -> Response:
        return start(req, validate_only=True)
