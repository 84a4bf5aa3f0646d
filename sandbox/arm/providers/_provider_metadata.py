"""Provider metadata (``Microsoft.Resources`` ``Providers_*``): what a generic ARM client reads to choose an
api-version before it calls a resource type it has no pinned version for.

Source: the Microsoft.Resources spec, ``resources/resource-manager/Microsoft.Resources/stable/2025-04-01``
(``Providers_Get``, ``Providers_List``, ``Providers_Register``; example ``GetProvider.json``: ``id``,
``namespace``, ``registrationState``, ``registrationPolicy``, ``resourceTypes[{resourceType, locations,
apiVersions, capabilities}]``). The Azure CLI's generic ``az resource`` commands pick the newest non-preview
entry of ``resourceTypes[].apiVersions`` (azure-cli ``_resolve_api_version``).

What is derived rather than copied from Azure: the list is made from the routes the sandbox really serves,
so a client that reads it never picks a version the sandbox would refuse. ``apiVersions`` therefore holds the
versions *served here*, newest first (Azure lists every version its manifest carries). ``locations`` is
empty: the sandbox accepts any region name (inferred simplification; Azure lists the type's regions).
Every namespace is ``Registered`` (the sandbox has no unregistered state); ``register`` answers the
provider, as Azure does once registration completes.
"""

from __future__ import annotations

from typing import Any

from sandbox.arm.context import ProviderContext
from sandbox.arm.errors import ArmError
from sandbox.arm.http import Request, Response, ok
from sandbox.arm.routing import ProviderRoutes, Route, Router

#: Namespaces of the sandbox's own admin surface, never listed as Azure providers.
_HIDDEN = frozenset({"sandbox"})


def _resource_type(route: Route) -> str | None:
    """``vaults/backupFabrics`` for ``…/providers/Microsoft.RecoveryServices/vaults/{v}/backupFabrics/{f}``.

    Only routes that address a resource or a collection of them count (actions are not resource types).
    """
    if route.kind == "action":
        return None
    segments = list(route.segments)
    lowered = [s.lower() for s in segments]
    if "providers" in lowered:
        start = len(lowered) - 1 - lowered[::-1].index("providers")
        tail = segments[start + 2 :]  # after 'providers/{namespace}'
    else:  # Microsoft.Resources' own types: subscriptions, tenants, resourcegroups, ...
        tail = segments[2:] if len(segments) > 2 and lowered[0] == "subscriptions" else segments
    if not tail or any(s.startswith("{") for s in tail[0::2]):
        return None
    if any(not s.startswith("{") for s in tail[1::2]):
        return None
    return "/".join(tail[0::2])


def provider_body(router: Router, subscription_id: str, namespace: str) -> dict[str, Any] | None:
    """The ``Provider`` resource of ``namespace`` as Azure shapes it, or None when the sandbox serves none."""
    types: dict[str, set[str]] = {}
    shown = None
    for route in router.routes:
        if route.namespace.lower() != namespace.lower():
            continue
        shown = shown or route.namespace
        rtype = _resource_type(route)
        if rtype is not None:
            types.setdefault(rtype, set()).update(route.api_versions)
    if shown is None or not types:
        return None
    return {
        "id": f"/subscriptions/{subscription_id}/providers/{shown}",
        "namespace": shown,
        "registrationState": "Registered",
        "registrationPolicy": "RegistrationRequired",
        "resourceTypes": [
            {
                "resourceType": rtype,
                "locations": [],
                "apiVersions": sorted(versions, reverse=True),
                "capabilities": "None",
            }
            for rtype, versions in sorted(types.items(), key=lambda item: item[0].lower())
        ],
    }


def register_provider_metadata(rp: ProviderRoutes, router: Router, ctx: ProviderContext) -> None:
    subs = "/subscriptions/{subscriptionId}"

    def namespaces() -> list[str]:
        seen: dict[str, str] = {}
        for route in router.routes:
            if route.namespace.lower() not in _HIDDEN:
                seen.setdefault(route.namespace.lower(), route.namespace)
        return sorted(seen.values(), key=str.lower)

    def one(req: Request) -> dict[str, Any]:
        namespace = req.param("namespace")
        body = provider_body(router, req.param("subscriptionId"), namespace)
        if body is None or namespace.lower() in _HIDDEN:
            # Azure: 404 InvalidResourceNamespace for a namespace it does not know (the sandbox answers the
            # same code for resource calls into an unknown namespace).
            raise ArmError(404, "InvalidResourceNamespace", f"The resource namespace '{namespace}' is invalid.")
        return body

    @rp.get(subs + "/providers")
    def list_providers(req: Request) -> Response:
        sub = req.param("subscriptionId")
        bodies = [provider_body(router, sub, ns) for ns in namespaces()]
        return ctx.page(req, [b for b in bodies if b is not None], page_size=1000)

    @rp.get(subs + "/providers/{namespace}")
    def get_provider(req: Request) -> Response:
        return ok(one(req))

    # no Event Grid event: registration is not a resource write the app listens for (inferred)
    @rp.post(subs + "/providers/{namespace}/register", events=False)
    def register_provider(req: Request) -> Response:
        return ok(one(req))
