"""``Microsoft.DBforPostgreSQL``: flexible servers (create, get, list, PATCH, delete; all LROs).

Create, update and delete answer 202 with ``Azure-AsyncOperation`` (``.../azureAsyncOperation/{id}``) and
``Location`` (``.../operationResults/{id}``), as the flexible-server RP does.
"""

from __future__ import annotations

from typing import Any

from sandbox.arm.context import ProviderContext
from sandbox.arm.http import Request
from sandbox.arm.providers._tracked import TrackedType, register_operation_routes, register_tracked
from sandbox.arm.routing import Router

PROVIDER = "Microsoft.DBforPostgreSQL"
API_VERSIONS = ("2022-12-01", "2023-03-01-preview", "2023-06-01-preview", "2024-08-01", "2025-08-01")
ASYNC = "/providers/Microsoft.DBforPostgreSQL/locations/{location}/azureAsyncOperation/{operationId}"
RESULTS = "/providers/Microsoft.DBforPostgreSQL/locations/{location}/operationResults/{operationId}"


def _server_properties(
    req: Request, props: dict[str, Any], existing: dict[str, Any] | None, ctx: ProviderContext
) -> dict[str, Any]:
    previous = (existing or {}).get("properties", {})
    merged = {**previous, **props}
    merged.pop("administratorLoginPassword", None)  # never echoed
    merged.setdefault("version", "16")
    merged.setdefault("storage", {"storageSizeGB": 128, "autoGrow": "Disabled", "tier": "P10"})
    merged.setdefault("backup", {"backupRetentionDays": 7, "geoRedundantBackup": "Disabled"})
    merged["backup"].setdefault("earliestRestoreDate", ctx.now_iso())
    merged.setdefault("highAvailability", {"mode": "Disabled", "state": "NotEnabled"})
    merged.setdefault("network", {"publicNetworkAccess": "Enabled"})
    # Incarnation: a flexible server's properties carry no creation time; ARM's systemData.createdAt does
    # (common-types resource-management systemData, "The timestamp of resource creation (UTC)"; Microsoft's
    # example stable/2024-08-01/examples/ServerGet.json answers it). _tracked.py keeps it across updates and
    # gives a re-created server a new one.
    merged["state"] = "Ready"
    merged["fullyQualifiedDomainName"] = f"{req.param('serverName')}.postgres.database.azure.com"
    return merged


FLEXIBLE_SERVERS = TrackedType(
    namespace=PROVIDER,
    type_name="flexibleServers",
    name_param="serverName",
    create_status=202,
    async_path=ASYNC,
    location_path=RESULTS,
    update_async=True,
    delete_async=True,
    build=_server_properties,
    create_seconds=300.0,
    update_seconds=60.0,
    delete_seconds=60.0,
    body_on_accept=False,
)


def register(router: Router, ctx: ProviderContext) -> None:
    rp = router.provider(PROVIDER, API_VERSIONS)
    register_tracked(rp, ctx, FLEXIBLE_SERVERS)
    register_operation_routes(rp, ctx, ASYNC, RESULTS)
