"""``Microsoft.Resources/tags/default`` at a resource's scope: read, replace and selectively update its tags.

=================================================================  ============================================
GET   {resource id}/providers/Microsoft.Resources/tags/default      200 ``TagsResource`` (Tags_GetAtScope)
PUT   same                                                          200, the tags replaced (Tags_CreateOrUpdate
                                                                    AtScope)
PATCH same ``{"operation": "Merge"|"Replace"|"Delete", ...}``       200 (Tags_UpdateAtScope)
=================================================================  ============================================

Sources: the Resources spec's ``Tags_*AtScope`` operations (azure-mgmt-resource 26.0.0, api-version 2025-04-01,
``TagsOperations.begin_update_at_scope``: "The 'replace' option replaces the entire set of existing tags with a
new set. The 'merge' option allows adding tags with new names and updating the values of tags with existing
names. The 'delete' option allows selectively deleting tags based on given names or name/value pairs", and "The
specified entity can have a maximum of 50 tags at the end of the operation"), and the limits of
MicrosoftDocs/azure-docs ``articles/azure-resource-manager/management/tag-resources.md`` (Limitations: 50 tag
name/value pairs per resource; a tag name at most 512 characters, a value at most 256; 128 for a storage
account's tag names). Azure may answer these with 202 and an operation to poll; the SDK's poller takes both, the
sandbox answers 200 at once. Inferred: the error codes of the refusals (``InvalidTagNameLength``,
``InvalidTagValueLength``, ``InvalidTagCount``; Microsoft documents the limits, not the codes).

Only resource scopes are served (subscription and group tags have their own routes in ``resources.py``).
"""

from __future__ import annotations

from typing import Any, Final

from sandbox.arm.context import ProviderContext
from sandbox.arm.errors import ArmError, not_found
from sandbox.arm.http import Request, Response, ok
from sandbox.arm.providers.resources import API_VERSIONS as RESOURCES_API_VERSIONS
from sandbox.arm.routing import Router

PROVIDER: Final = "Microsoft.Resources"
#: The versions the sandbox serves for Microsoft.Resources (2021-04-01 ... 2025-04-01, the app's pinned one);
#: tags at scope exist in all of them.
API_VERSIONS: Final = RESOURCES_API_VERSIONS
MAX_TAGS: Final = 50
MAX_NAME: Final = 512
MAX_STORAGE_NAME: Final = 128
MAX_VALUE: Final = 256
_SUFFIX: Final = "/providers/Microsoft.Resources/tags/default"
_SCOPES: Final = (
    "/subscriptions/{p0}/resourceGroups/{p1}/providers/{p2}/{p3}/{p4}",
    "/subscriptions/{p0}/resourceGroups/{p1}/providers/{p2}/{p3}/{p4}/{p5}/{p6}",
)


def _scope(template: str, params: dict[str, str]) -> str:
    out = template
    for key, value in params.items():
        out = out.replace("{" + key + "}", value)
    return out


def _tags_of(body: dict[str, Any]) -> dict[str, str]:
    props = body.get("properties")
    if not isinstance(props, dict):
        raise ArmError(400, "InvalidRequestContent", "The request needs 'properties'.")
    tags = props.get("tags") or {}
    if not isinstance(tags, dict) or not all(isinstance(v, str) for v in tags.values()):
        raise ArmError(400, "InvalidRequestContent", "'properties.tags' must map tag names to string values.")
    return {str(k): str(v) for k, v in tags.items()}


def _check_limits(resource: dict[str, Any], tags: dict[str, str]) -> None:
    storage = str(resource.get("type", "")).lower() == "microsoft.storage/storageaccounts"
    longest_name = MAX_STORAGE_NAME if storage else MAX_NAME
    for name, value in tags.items():
        if not name or len(name) > longest_name:
            raise ArmError(400, "InvalidTagNameLength",
                           f"The tag name '{name[:40]}' must be 1 to {longest_name} characters long.")
        if len(value) > MAX_VALUE:
            raise ArmError(400, "InvalidTagValueLength",
                           f"The value of tag '{name[:40]}' is longer than {MAX_VALUE} characters.")
    if len(tags) > MAX_TAGS:
        raise ArmError(400, "InvalidTagCount", f"A resource can have at most {MAX_TAGS} tags; {len(tags)} given.")


def register(router: Router, ctx: ProviderContext) -> None:
    routes = router.provider(PROVIDER, API_VERSIONS)

    def resource(req: Request, template: str) -> tuple[str, dict[str, Any]]:
        rid = _scope(template, req.params)
        record = ctx.store.get(rid)
        if record is None:
            raise not_found(rid)
        return rid, record

    def body(rid: str, tags: dict[str, str]) -> dict[str, Any]:
        return {"id": rid + _SUFFIX, "name": "default", "type": "Microsoft.Resources/tags",
                "properties": {"tags": dict(tags)}}

    def write(rid: str, record: dict[str, Any], tags: dict[str, str]) -> Response:
        _check_limits(record, tags)
        if not any(writer(rid, dict(tags)) for writer in ctx.tag_writers):
            ctx.store.put({**record, "tags": dict(tags)})
        return ok(body(rid, tags))

    def add(template: str) -> None:
        path = template + _SUFFIX

        def get(req: Request) -> Response:
            rid, record = resource(req, template)
            return ok(body(rid, dict(record.get("tags") or {})))

        def put(req: Request) -> Response:
            rid, record = resource(req, template)
            return write(rid, record, _tags_of(req.json_object()))

        def patch(req: Request) -> Response:
            rid, record = resource(req, template)
            payload = req.json_object()
            operation = str(payload.get("operation") or "").lower()
            given = _tags_of(payload)
            current = dict(record.get("tags") or {})
            if operation == "replace":
                tags = given
            elif operation == "merge":
                lowered = {k.lower(): k for k in current}
                tags = dict(current)
                for name, value in given.items():
                    tags.pop(lowered.get(name.lower(), name), None)
                    tags[name] = value
            elif operation == "delete":
                drop = {k.lower(): v for k, v in given.items()}
                tags = {k: v for k, v in current.items()
                        if k.lower() not in drop or (drop[k.lower()] not in ("", v))}
            else:
                raise ArmError(400, "InvalidRequestContent",
                               "'operation' must be one of Replace, Merge, Delete.")
            return write(rid, record, tags)

        routes.add("GET", path, get)
        routes.add("PUT", path, put, operation="Microsoft.Resources/tags/write")
        routes.add("PATCH", path, patch, operation="Microsoft.Resources/tags/write")

    for template in _SCOPES:
        add(template)


__all__ = ["MAX_NAME", "MAX_TAGS", "MAX_VALUE", "register"]
