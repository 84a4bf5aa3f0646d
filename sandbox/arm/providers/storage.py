"""``Microsoft.Storage``: storage accounts (+ the ``blobServices/default`` child and its blob containers).

Create answers 202 + ``Location`` (``.../locations/{region}/asyncoperations/{id}``) whose final poll is 200
with the account, as the storage RP does; PATCH and DELETE are synchronous. Account names are global:
3-24 lower-case letters and digits, unique across the sandbox.
"""

from __future__ import annotations

import re
from typing import Any

from sandbox.arm.context import ProviderContext
from sandbox.arm.errors import ArmError, not_found
from sandbox.arm.http import Request, Response, created, no_content, ok
from sandbox.arm.providers._tracked import GROUP, TrackedType, register_operation_routes, register_tracked
from sandbox.arm.routing import Router

PROVIDER = "Microsoft.Storage"
API_VERSIONS = ("2022-09-01", "2023-01-01", "2023-05-01", "2024-01-01", "2025-01-01", "2025-06-01")
ASYNC_OPERATIONS = "/providers/Microsoft.Storage/locations/{location}/asyncoperations/{operationId}"
ACCOUNT = GROUP + "/providers/Microsoft.Storage/storageAccounts/{accountName}"
_NAME = re.compile(r"^[a-z0-9]{3,24}$")
CONTAINER_TYPE = "Microsoft.Storage/storageAccounts/blobServices/containers"
#: Container names: 3-63 characters of lower-case letters, digits and single hyphens, starting and ending with a
#: letter or digit (Storage spec ``BlobContainers_Create`` ``containerName``: minLength 3, maxLength 63; the naming
#: rules: MicrosoftDocs ``storage/blobs/storage-blobs-introduction.md`` "Containers").
#: the system container Azure keeps an account's change feed in (storage-blob-change-feed.md)
CHANGE_FEED_CONTAINER = "$blobchangefeed"
_CONTAINER_NAME = re.compile(r"^[a-z0-9](?!.*--)[a-z0-9-]{1,61}[a-z0-9]$")


def _account_properties(
    req: Request, props: dict[str, Any], existing: dict[str, Any] | None, ctx: ProviderContext
) -> dict[str, Any]:
    name = req.param("accountName")
    if not _NAME.match(name):
        raise ArmError(
            400,
            "AccountNameInvalid",
            f"{name} is not a valid storage account name. Storage account name must be between 3 and 24 "
            "characters in length and use numbers and lower-case letters only.",
        )
    if existing is None:
        for other in ctx.store.list(resource_type="Microsoft.Storage/storageAccounts"):
            if other["name"].lower() == name:
                raise ArmError(
                    409,
                    "StorageAccountAlreadyTaken",
                    f"The storage account named {name} is already taken.",
                )
        body = req.json_object()
        if not body.get("sku") or not body.get("kind"):
            raise ArmError(400, "InvalidRequestContent", "A storage account needs 'sku' and 'kind'.")
    previous = (existing or {}).get("properties", {})
    merged = {**previous, **props}
    location = (existing or {}).get("location") or str(req.json_object().get("location", "")).replace(" ", "").lower()
    merged.setdefault("accessTier", "Hot")
    merged.setdefault("supportsHttpsTrafficOnly", True)
    merged.setdefault("minimumTlsVersion", "TLS1_2")
    merged.setdefault("allowBlobPublicAccess", False)
    merged["primaryLocation"] = location
    merged["statusOfPrimary"] = "available"
    # Incarnation: StorageAccountProperties.creationTime, "the creation date and time of the storage account in
    # UTC", read-only (Storage spec stable/2023-05-01/storage.json); a re-created account gets a new one.
    merged["creationTime"] = previous.get("creationTime") or ctx.now_iso()
    merged["primaryEndpoints"] = {
        "blob": f"https://{name}.blob.core.windows.net/",
        "queue": f"https://{name}.queue.core.windows.net/",
        "table": f"https://{name}.table.core.windows.net/",
        "file": f"https://{name}.file.core.windows.net/",
        "dfs": f"https://{name}.dfs.core.windows.net/",
        "web": f"https://{name}.z6.web.core.windows.net/",
    }
    return merged


def _blob_service_record(account_id: str) -> dict[str, Any]:
    return {
        "id": f"{account_id}/blobServices/default",
        "name": "default",
        "type": "Microsoft.Storage/storageAccounts/blobServices",
        "properties": {
            "cors": {"corsRules": []},
            "deleteRetentionPolicy": {"enabled": False},
            "isVersioningEnabled": False,
            "changeFeed": {"enabled": False},
            "restorePolicy": {"enabled": False},
            "containerDeleteRetentionPolicy": {"enabled": False},
        },
    }


def _account_created(req: Request, account: dict[str, Any], ctx: ProviderContext) -> None:
    if not ctx.store.exists(account["id"] + "/blobServices/default"):
        ctx.store.put(_blob_service_record(account["id"]))


STORAGE_ACCOUNTS = TrackedType(
    namespace=PROVIDER,
    type_name="storageAccounts",
    name_param="accountName",
    create_status=202,
    async_path=None,
    location_path=ASYNC_OPERATIONS,
    update_async=False,
    delete_async=False,
    build=_account_properties,
    after_create=_account_created,
    create_seconds=25.0,
    body_on_accept=False,
)


def register(router: Router, ctx: ProviderContext) -> None:
    rp = router.provider(PROVIDER, API_VERSIONS)
    register_tracked(rp, ctx, STORAGE_ACCOUNTS)
    register_operation_routes(rp, ctx, None, ASYNC_OPERATIONS)
    blob_service = ACCOUNT + "/blobServices/default"

    @rp.get(blob_service)
    def get_blob_service(req: Request) -> Response:
        record = ctx.store.get(req.path)
        if record is None:
            raise not_found(req.path, "Microsoft.Storage/storageAccounts/blobServices")
        return ok(record)

    @rp.put(blob_service)
    def put_blob_service(req: Request) -> Response:
        account_id = req.path.rstrip("/").rsplit("/blobServices/", 1)[0]
        if not ctx.store.exists(account_id):
            raise not_found(account_id, "Microsoft.Storage/storageAccounts")
        body = req.json_object()
        with ctx.store.transaction():
            record = ctx.store.get(req.path) or _blob_service_record(account_id)
            record["properties"].update(body.get("properties") or {})
            if (record["properties"].get("changeFeed") or {}).get("enabled") is True:
                # "The change feed is stored in the $blobchangefeed container" (MicrosoftDocs storage/blobs/
                # storage-blob-change-feed.md): Azure creates it, no container write of the caller's. That ARM's
                # container list shows it, like $logs of Storage Analytics, is INFERRED.
                system_id = f"{account_id}/blobServices/default/containers/{CHANGE_FEED_CONTAINER}"
                if not ctx.store.exists(system_id):
                    ctx.store.put({"id": system_id, "name": CHANGE_FEED_CONTAINER, "type": CONTAINER_TYPE,
                                   "properties": {"publicAccess": "None", "lastModifiedTime": ctx.now_iso()}})
            return ok(ctx.store.put(record))

    container_path = blob_service + "/containers/{containerName}"

    def _account_of_container(req: Request) -> str:
        account_id = req.path.rstrip("/").split("/blobServices/", 1)[0]
        if not ctx.store.exists(account_id):
            raise not_found(account_id, "Microsoft.Storage/storageAccounts")
        return account_id

    @rp.put(container_path)
    def put_container(req: Request) -> Response:
        """``BlobContainers_Create`` (Storage spec stable/2023-05-01 blob.json): synchronous, 201 when created,
        200 when it existed; ARM raises the container's ``…/containers/write`` event like any write."""
        _account_of_container(req)
        name = req.param("containerName")
        if not _CONTAINER_NAME.match(name):
            raise ArmError(400, "ContainerOperationFailure",
                           f"The specifed resource name contains invalid characters: {name}.")
        body = req.json_object()
        with ctx.store.transaction():
            existing = ctx.store.get(req.path)
            props = {**((existing or {}).get("properties") or {}), **(body.get("properties") or {})}
            props.setdefault("publicAccess", "None")
            props["lastModifiedTime"] = ctx.now_iso()
            record = ctx.store.put({"id": req.path.rstrip("/"), "name": name, "type": CONTAINER_TYPE,
                                    "properties": props})
        return ok(record) if existing is not None else created(record)

    @rp.get(container_path)
    def get_container(req: Request) -> Response:
        record = ctx.store.get(req.path)
        if record is None:
            raise not_found(req.path, CONTAINER_TYPE)
        return ok(record)

    @rp.delete(container_path)
    def delete_container(req: Request) -> Response:
        _account_of_container(req)
        if ctx.store.get(req.path) is None:
            return no_content()
        ctx.store.delete(req.path)
        return ok()

    @rp.get(blob_service + "/containers")
    def list_containers(req: Request) -> Response:
        """``BlobContainers_List``: ``{"value": [ListContainerItem], "nextLink"}``, paged."""
        account_id = _account_of_container(req)
        found = ctx.store.children(account_id + "/blobServices/default", resource_type=CONTAINER_TYPE)
        return ctx.page(req, sorted(found, key=lambda c: str(c["name"])))

    @rp.get(ACCOUNT + "/blobServices")
    def list_blob_services(req: Request) -> Response:
        account_id = req.path.rstrip("/").rsplit("/blobServices", 1)[0]
        if not ctx.store.exists(account_id):
            raise not_found(account_id, "Microsoft.Storage/storageAccounts")
        services = ctx.store.children(account_id, resource_type="Microsoft.Storage/storageAccounts/blobServices")
        return ctx.page(req, services)
