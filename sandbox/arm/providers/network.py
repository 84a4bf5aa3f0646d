"""``Microsoft.Network``: private endpoints only (create, get, list, PATCH tags, delete; LROs), as far as the vault
teardown needs them.

The official "delete a Recovery Services vault" script (MicrosoftDocs/azure-docs
``articles/backup/scripts/delete-recovery-services-vault.md``) removes each private endpoint connection of the
vault and then the private endpoint itself (``Remove-AzPrivateEndpointConnection`` then ``Remove-AzPrivateEndpoint``);
this provider gives the sandbox the endpoint resource to delete. Create and delete answer 201/202 with
``Azure-AsyncOperation`` (``.../locations/{location}/operations/{id}``) and ``Location``
(``.../locations/{location}/operationResults/{id}``), the Network RP's pattern (S-NET ``privateEndpoint.json``
``PrivateEndpoints_Delete``: 200/202/204). Not modelled: the endpoint's subnet and NIC, and Azure removing the
target's connection when the endpoint is deleted (the script removes the connection first anyway).
"""

from __future__ import annotations

from typing import Any

from sandbox.arm.context import ProviderContext
from sandbox.arm.http import Request
from sandbox.arm.ids import parse_id
from sandbox.arm.providers._tracked import TrackedType, register_operation_routes, register_tracked
from sandbox.arm.routing import Router

PROVIDER = "Microsoft.Network"
API_VERSIONS = ("2023-09-01", "2024-01-01", "2024-05-01")
ASYNC = "/providers/Microsoft.Network/locations/{location}/operations/{operationId}"
RESULTS = "/providers/Microsoft.Network/locations/{location}/operationResults/{operationId}"
ENDPOINT_TYPE = "Microsoft.Network/privateEndpoints"


def _endpoint_properties(
    req: Request, props: dict[str, Any], existing: dict[str, Any] | None, ctx: ProviderContext
) -> dict[str, Any]:
    del req, ctx
    return {**(existing or {}).get("properties", {}), **props}


PRIVATE_ENDPOINTS = TrackedType(
    namespace=PROVIDER,
    type_name="privateEndpoints",
    name_param="privateEndpointName",
    create_status=201,
    async_path=ASYNC,
    location_path=RESULTS,
    update_async=False,
    delete_async=True,
    build=_endpoint_properties,
    create_seconds=60.0,
    delete_seconds=30.0,
)


def seed_private_endpoint(ctx: ProviderContext, endpoint_id: str, location: str, target_id: str) -> dict[str, Any]:
    """Sandbox control: a private endpoint that connects to ``target_id`` (e.g. a vault, group ``AzureBackup``)."""
    parsed = parse_id(endpoint_id)
    record = {
        "id": endpoint_id,
        "name": parsed.name,
        "type": ENDPOINT_TYPE,
        "location": location.replace(" ", "").lower(),
        "tags": {},
        "properties": {
            "provisioningState": "Succeeded",
            "privateLinkServiceConnections": [
                {"name": parsed.name, "properties": {"privateLinkServiceId": target_id, "groupIds": ["AzureBackup"]}}
            ],
        },
    }
    return ctx.store.put(record)


def register(router: Router, ctx: ProviderContext) -> None:
    rp = router.provider(PROVIDER, API_VERSIONS)
    register_tracked(rp, ctx, PRIVATE_ENDPOINTS)
    register_operation_routes(rp, ctx, ASYNC, RESULTS)
