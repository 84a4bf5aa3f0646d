"""A tiny Microsoft.ResourceGraph for the sandbox: ``POST /providers/Microsoft.ResourceGraph/resources``.

Queries run through the KQL subset of :mod:`sandbox.arm.providers._kql` (``where``, ``project``, ``extend``,
``summarize count() by``, ``count``, ``join kind=leftouter|inner``, ``take``, ``order by``, ``distinct`` and the
common predicates): what Backup Steward's audit sends (``steward.cloud.inventory.GRAPH_QUERIES``) and what users
copy from Microsoft's backup queries (``backup/query-backups-using-azure-resource-graph.md``). Anything else is
refused with 400 ``BadRequest`` (details ``InvalidQuery`` + the unsupported token), as Graph refuses a query it
cannot parse - an ignored clause would silently widen a query.

Tables, built from the sandbox's own state:

* ``Resources``: every top-level resource of the requested subscriptions (type lower-cased, as Graph does).
* ``RecoveryServicesResources``: Recovery Services protected items and Backup vault backup instances, read
  through the sandbox's own list routes (so they are exactly what ARM would list), type lower-cased.

Paging: ``options.$top`` (default and maximum 1000) and ``$skipToken``. Not modelled: Graph's own per-user
quota (``x-ms-user-quota-*``), ``facets``, ``resultFormat: table``; Graph's real row shapes for backup items
are UNCONFIRMED against the live service (the documented examples show the ARM property names).
"""

from __future__ import annotations

from typing import Any, Final
from urllib.parse import parse_qsl, urlsplit

from sandbox.arm import ArmError, ProviderContext, Request, Response, Router
from sandbox.arm.http import ok
from sandbox.arm.providers import _kql as kql

PROVIDER: Final = "Microsoft.ResourceGraph"
API_VERSIONS: Final = ("2021-03-01", "2022-10-01", "2024-04-01")
MAX_TOP: Final = 1000

RS_VAULT: Final = "Microsoft.RecoveryServices/vaults"
BACKUP_VAULT: Final = "Microsoft.DataProtection/backupVaults"
ITEM_TYPE: Final = "microsoft.recoveryservices/vaults/backupfabrics/protectioncontainers/protecteditems"
INSTANCE_TYPE: Final = "microsoft.dataprotection/backupvaults/backupinstances"

def _top_level(record: dict[str, Any]) -> bool:
    rtype = str(record.get("type", ""))
    return "/providers/" in str(record.get("id", "")) and rtype.count("/") == 1


def register(router: Router, ctx: ProviderContext) -> None:
    rp = router.provider(PROVIDER, API_VERSIONS)

    def list_through_arm(req: Request, path: str, api_version: str) -> list[dict[str, Any]]:
        """Every item of a paged sandbox list route, called in-process with the caller's principal."""
        found = router.resolve("GET", path)
        if found is None:
            return []
        route, params = found
        query: dict[str, str] = {"api-version": api_version}
        items: list[dict[str, Any]] = []
        while True:
            inner = Request(
                method="GET",
                path=path,
                query=dict(query),
                headers={},
                raw_body=b"",
                base_url=req.base_url,
                principal=req.principal,
                params=dict(params),
            )
            answer = route.handler(inner)
            body = answer.body if isinstance(answer.body, dict) else {}
            items += list(body.get("value") or [])
            next_link = body.get("nextLink")
            if not next_link:
                return items
            query = dict(parse_qsl(urlsplit(str(next_link)).query))

    @rp.post("/providers/Microsoft.ResourceGraph/resources", check_scope=False, kind="read", events=False)
    def query_resources(req: Request) -> Response:
        body = req.json() or {}
        if not isinstance(body, dict) or not isinstance(body.get("query"), str):
            raise ArmError(400, "InvalidRequest", "The request needs a 'query' string.")
        assert req.principal is not None
        tenant = req.principal.tenant_id.lower()
        mine = {s.subscription_id.lower() for s in ctx.subscriptions.all() if s.tenant_id.lower() == tenant}
        asked = {str(s).lower() for s in body.get("subscriptions") or []} or mine
        scope = sorted(asked & mine)
        options = body.get("options") or {}
        top = min(int(options.get("$top") or MAX_TOP), MAX_TOP)
        skip = int(options.get("$skipToken") or options.get("$skip") or 0)

        def resources() -> list[dict[str, Any]]:
            rows = []
            for sub in scope:
                for record in ctx.store.list(subscription_id=sub):
                    if not _top_level(record):
                        continue
                    rows.append(
                        {
                            "id": record["id"],
                            "name": record.get("name"),
                            "type": str(record["type"]).lower(),
                            "location": record.get("location"),
                            "tags": record.get("tags") or {},
                            "managedBy": record.get("managedBy") or "",
                            "properties": record.get("properties") or {},
                            "subscriptionId": sub,
                            "resourceGroup": str(record["id"]).split("/")[4]
                            if "/resourceGroups/" in record["id"]
                            else "",
                        }
                    )
            return rows

        def backup_items() -> list[dict[str, Any]]:
            rows = []
            for sub in scope:
                for vault in ctx.store.list(resource_type=RS_VAULT, subscription_id=sub):
                    for item in list_through_arm(req, f"{vault['id']}/backupProtectedItems", "2025-02-01"):
                        rows.append({**item, "type": ITEM_TYPE, "subscriptionId": sub})
                for vault in ctx.store.list(resource_type=BACKUP_VAULT, subscription_id=sub):
                    for instance in list_through_arm(req, f"{vault['id']}/backupInstances", "2025-07-01"):
                        rows.append({**instance, "type": INSTANCE_TYPE, "subscriptionId": sub})
            return rows

        rows = kql.run(body["query"], {"Resources": resources, "RecoveryServicesResources": backup_items})
        page = rows[skip : skip + top]
        answer: dict[str, Any] = {
            "totalRecords": len(rows),
            "count": len(page),
            "resultTruncated": "false",
            "data": page,
        }
        if skip + top < len(rows):
            answer["$skipToken"] = str(skip + top)
        return ok(answer)
