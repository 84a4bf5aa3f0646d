"""Restore drills' adapter: the ARM reads and writes of one drill, through the app's SDK clients' pipeline.

Every call is one REST request (``send_request`` on the resources client: the app's credential, retry and pacing
policies, endpoint). Nothing here waits: a request Azure answers with 201/202 hands back the operation
(``{"statusUrl", "location", "retryAfter"}``) for the orchestrator to follow on durable timers
(:meth:`DrillOps.operation_status`). Shapes: S-RSB 2025-02-01 (backupJobs, recoveryPoints, restore, cancel),
S-DP 2025-07-01 (recoveryPoints, validateRestore, restore, backupJobs), Resources 2025-04-01 (resource groups,
``Microsoft.Resources/tags/default``), Storage 2023-05-01, Compute disks 2024-03-02. docs/azure-facts.md
("Backups, jobs, recovery points and restores") lists what each answer means.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, Final

from azure.core.exceptions import AzureError
from azure.core.rest import HttpRequest

from steward.cloud.clients import CloudClients
from steward.cloud.errors import AzureRefusal, NotFound, translate
from steward.cloud.throttle import retry_after
from steward.domain.drill_flow import DRILL_GROUP_TAG, DRILL_TAG
from steward.domain.drill_records import JobError

API: Final[dict[str, str]] = {
    "microsoft.recoveryservices": "2025-02-01",
    "microsoft.dataprotection": "2025-07-01",
    "microsoft.compute/disks": "2024-03-02",
    "microsoft.compute/virtualmachines": "2024-07-01",
    "microsoft.storage": "2023-05-01",
    "microsoft.dbforpostgresql": "2024-08-01",
    "resources": "2025-04-01",
    "microsoft.authorization": "2022-04-01",
}


def api_version_for(resource_id: str) -> str:
    """The api-version of a resource id's provider (resource groups and tags: the Resources API)."""
    lowered = resource_id.lower()
    if "/providers/microsoft.resources/" in lowered or "/providers/" not in lowered:
        return API["resources"]
    namespace_and_type = lowered.split("/providers/")[-1].split("/")
    typed = "/".join(namespace_and_type[:2])
    return API.get(typed) or API.get(namespace_and_type[0]) or API["resources"]


#: a recovery point's ``recoveryPointDataStoresDetails[].type`` for each data store: Azure answers the store's name
#: ("OperationalStore", "VaultStore": responses captured in MicrosoftDocs/azure-docs
#: ``backup/backup-azure-dataprotection-use-rest-api-restore-disks.md``, ``restore-managed-disks-cli.md``), Microsoft's
#: ListRecoveryPoints.json example "Snapshot" / "BackupStorage"; either is read
STORE_SPELLINGS: Final[dict[str, frozenset[str]]] = {
    "operationalstore": frozenset({"operationalstore", "snapshot"}),
    "vaultstore": frozenset({"vaultstore", "backupstorage"}),
    "archivestore": frozenset({"archivestore"}),
}


def job_name(job_id: Any) -> str | None:
    """A job's name from what an operation names it by: the bare id (the examples' ``jobId``) or the job's ARM id
    (a Backup vault restore's operation status, ``properties.jobId``: ``…/backupVaults/{v}/backupJobs/{name}``,
    backup-azure-dataprotection-use-rest-api-restore-disks.md)."""
    if not job_id:
        return None
    return str(job_id).rstrip("/").rsplit("/", 1)[-1]


def _headers(response: Any) -> dict[str, str]:
    return {k.lower(): v for k, v in response.headers.items()}


def _listed_containers(props: Mapping[str, Any]) -> list[str]:
    """The containers a vaulted blob backup instance lists (``BlobBackupDatasourceParameters.containersList``)."""
    params = (props.get("policyInfo") or {}).get("policyParameters") or {}
    return [str(c) for entry in params.get("backupDatasourceParametersList") or [] if isinstance(entry, Mapping)
            and entry.get("objectType") == "BlobBackupDatasourceParameters" for c in entry.get("containersList") or []]


class DrillOps:
    """Reads and effects of restore drills."""

    def __init__(self, clients: CloudClients) -> None:
        self._clients = clients

    def _send(self, method: str, url: str, body: Any = None, *, api_version: str | None = None,
              ok_missing: bool = False) -> Any:
        subscription = url.split("/subscriptions/", 1)[1].split("/", 1)[0] if "/subscriptions/" in url else ""
        client = self._clients.resources(subscription or "00000000-0000-0000-0000-000000000000")
        if "api-version=" not in url:
            version = api_version or api_version_for(url.split("?", maxsplit=1)[0])
            url += ("&" if "?" in url else "?") + f"api-version={version}"
        try:
            response = client.send_request(HttpRequest(method, url, json=body))
            response.raise_for_status()
        except AzureError as error:
            translated = translate(error)
            if ok_missing and isinstance(translated, NotFound):
                return None
            raise translated from error
        return response

    def _json(self, method: str, url: str, body: Any = None, **kw: Any) -> dict[str, Any] | None:
        response = self._send(method, url, body, **kw)
        if response is None:
            return None
        return response.json() if response.text() else {}

    def _list(self, url: str) -> Iterator[dict[str, Any]]:
        next_url: str | None = url
        while next_url:
            page = self._json("GET", next_url) or {}
            yield from page.get("value") or []
            next_url = page.get("nextLink")

    @staticmethod
    def _operation(response: Any, what: str) -> dict[str, Any] | None:
        if response.status_code not in (201, 202):
            return None
        headers = _headers(response)
        if not headers.get("azure-asyncoperation") and not headers.get("location"):
            return None
        return {"statusUrl": headers.get("azure-asyncoperation"), "location": headers.get("location"),
                "retryAfter": retry_after(headers), "what": what}

    # ---- reads --------------------------------------------------------------------------------------------

    def get(self, resource_id: str) -> dict[str, Any] | None:
        return self._json("GET", resource_id, ok_missing=True)

    def disk_facts(self, disk_id: str) -> dict[str, Any] | None:
        disk = self.get(disk_id)
        if disk is None:
            return None
        return {"id": disk.get("id") or disk_id, "sizeGb": (disk.get("properties") or {}).get("diskSizeGB"),
                "sku": (disk.get("sku") or {}).get("name"), "tags": disk.get("tags") or {},
                "createOption": ((disk.get("properties") or {}).get("creationData") or {}).get("createOption")}

    def source_disks(self, resource: Mapping[str, Any]) -> list[dict[str, Any]]:
        """What a restore of this resource must bring back: a VM's managed disks, or the disk itself."""
        kind = str(resource.get("type") or "").lower()
        if kind == "microsoft.compute/disks":
            facts = self.disk_facts(str(resource["id"]))
            return [] if facts is None else [{k: facts[k] for k in ("id", "sizeGb", "sku")}]
        if kind != "microsoft.compute/virtualmachines":
            return []
        profile = (resource.get("properties") or {}).get("storageProfile") or {}
        disks = [profile.get("osDisk") or {}, *(profile.get("dataDisks") or [])]
        found: list[dict[str, Any]] = []
        for disk in disks:
            disk_id = str((disk.get("managedDisk") or {}).get("id") or "")
            facts = self.disk_facts(disk_id) if disk_id else None
            if facts is not None:
                found.append({k: facts[k] for k in ("id", "sizeGb", "sku")})
        return found

    def protections(self, subscription_id: str) -> list[dict[str, Any]]:
        """Every live protection of the subscription: Recovery Services Azure VM items and Backup vault
        instances, as ``{"sourceId", "vaultId", "protectionId", "datasourceType", "policyId"}``."""
        found: list[dict[str, Any]] = []
        rs = f"/subscriptions/{subscription_id}/providers/Microsoft.RecoveryServices/vaults"
        for vault in self._list(rs):
            items = f"{vault['id']}/backupProtectedItems?$filter=backupManagementType eq 'AzureIaasVM'"
            for item in self._list(items):
                props = item.get("properties") or {}
                if props.get("isScheduledForDeferredDelete") or not props.get("sourceResourceId"):
                    continue
                found.append({"sourceId": props["sourceResourceId"], "vaultId": vault["id"],
                              "protectionId": item["id"], "datasourceType": "Microsoft.Compute/virtualMachines",
                              "policyId": props.get("policyId"), "vaultLocation": vault.get("location")})
        dp = f"/subscriptions/{subscription_id}/providers/Microsoft.DataProtection/backupVaults"
        for vault in self._list(dp):
            for instance in self._list(f"{vault['id']}/backupInstances"):
                props = instance.get("properties") or {}
                info = props.get("dataSourceInfo") or {}
                if not info.get("resourceID"):
                    continue
                found.append({"sourceId": info["resourceID"], "vaultId": vault["id"],
                              "protectionId": instance["id"], "datasourceType": info.get("datasourceType"),
                              "policyId": (props.get("policyInfo") or {}).get("policyId"),
                              "vaultLocation": vault.get("location"), "containers": _listed_containers(props)})
        return found

    def datastore(self, policy_id: str | None) -> str:
        """The data store a Backup vault policy backs up to first (OperationalStore or VaultStore)."""
        policy = self.get(policy_id) if policy_id else None
        stores = [str(((r.get("dataStore") or {}).get("dataStoreType")) or "")
                  for r in ((policy or {}).get("properties") or {}).get("policyRules") or []
                  if r.get("objectType") == "AzureBackupRule"]
        return "VaultStore" if "VaultStore" in stores else (stores[0] if stores else "OperationalStore")

    def recovery_points(self, protection_id: str, datastore: str) -> list[dict[str, str]]:
        """``{"id": name, "time"}`` of every recovery point (Backup vault: those with a copy in ``datastore``)."""
        points: list[dict[str, str]] = []
        for point in self._list(f"{protection_id}/recoveryPoints"):
            props = point.get("properties") or {}
            details = props.get("recoveryPointDataStoresDetails")
            if details is not None:
                wanted = STORE_SPELLINGS.get(datastore.lower(), {datastore.lower()})
                if not any(str(d.get("type") or "").lower() in wanted for d in details):
                    continue
            if props.get("recoveryPointTime"):
                points.append({"id": str(point["name"]), "time": str(props["recoveryPointTime"])})
        return points

    def job(self, vault_id: str, job_id: str) -> dict[str, Any]:
        body = self._json("GET", f"{vault_id}/backupJobs/{job_id}") or {}
        props = body.get("properties") or {}
        errors = props.get("errorDetails") or []
        error = errors[0] if errors and isinstance(errors[0], Mapping) else None
        return {"status": props.get("status") or "", "startTime": props.get("startTime"),
                "endTime": props.get("endTime"),
                "error": None if error is None else JobError.of_azure(error).to_record()}

    def group_disks(self, group_id: str) -> list[dict[str, Any]]:
        disks = self._list(f"{group_id}/providers/Microsoft.Compute/disks?api-version={API['microsoft.compute/disks']}")
        return [{"id": d["id"], "sizeGb": (d.get("properties") or {}).get("diskSizeGB"),
                 "sku": (d.get("sku") or {}).get("name"), "tags": d.get("tags") or {},
                 "createOption": ((d.get("properties") or {}).get("creationData") or {}).get("createOption"),
                 "timeCreated": (d.get("properties") or {}).get("timeCreated")}
                for d in disks]

    def group_resources(self, group_id: str) -> list[str]:
        return [str(r["id"]) for r in self._list(f"{group_id}/resources?api-version={API['resources']}")]

    def containers(self, account_id: str) -> list[dict[str, Any]]:
        """The blob containers of a storage account (``BlobContainers_List``): ``{"id", "name"}``."""
        url = f"{account_id}/blobServices/default/containers?api-version={API['microsoft.storage']}"
        return [{"id": str(c["id"]), "name": str(c.get("name") or str(c["id"]).rsplit("/", 1)[-1])}
                for c in self._list(url)]

    def tags_of(self, resource_id: str) -> dict[str, str] | None:
        body = self.get(resource_id)
        return None if body is None else dict(body.get("tags") or {})

    # ---- effects ------------------------------------------------------------------------------------------

    def ensure_group(self, subscription_id: str, name: str, location: str) -> dict[str, Any]:
        """The drill resource group: created (tagged as drill-owned) when missing; an existing group is used only
        when it carries that tag (a user's group of the same name is never written into)."""
        group_id = f"/subscriptions/{subscription_id}/resourceGroups/{name}"
        existing = self.get(group_id)
        if existing is not None:
            tags = {k.lower(): v for k, v in (existing.get("tags") or {}).items()}
            return {"id": group_id, "created": False, "owned": tags.get(DRILL_GROUP_TAG) == "true"}
        self._send("PUT", group_id, {"location": location, "tags": {DRILL_GROUP_TAG: "true"}})
        return {"id": group_id, "created": True, "owned": True}

    def create_account(self, group_id: str, name: str, location: str, drill_id: str) -> dict[str, Any]:
        """A drill storage account (staging of VM disks, PostgreSQL files), tagged with the drill; returns
        ``{"id", "operation"}`` (the create is asynchronous)."""
        account_id = f"{group_id}/providers/Microsoft.Storage/storageAccounts/{name}"
        if self.get(account_id) is not None:
            return {"id": account_id, "operation": None}
        body = {"location": location, "sku": {"name": "Standard_LRS"}, "kind": "StorageV2",
                "tags": {DRILL_TAG: drill_id},
                "properties": {"allowBlobPublicAccess": False, "minimumTlsVersion": "TLS1_2",
                               "supportsHttpsTrafficOnly": True}}
        response = self._send("PUT", account_id, body)
        return {"id": account_id, "operation": self._operation(response, f"create storage account {name}")}

    def ensure_container(self, account_id: str, name: str) -> str:
        """The blob container a restore as files writes into (``BlobContainers_Create``, Storage 2023-05-01:
        synchronous, 200 when it exists, 201 when made); the restore needs an existing one (Microsoft's REST guide
        has the caller "Fetch the URI of the container": docs/azure-facts.md)."""
        container_id = f"{account_id}/blobServices/default/containers/{name}"
        self._send("PUT", container_id, {"properties": {"publicAccess": "None"}})
        return container_id

    def tag(self, resource_id: str, drill_id: str) -> None:
        """Merge :data:`DRILL_TAG` = the drill's id into a restored resource's tags (Tags_UpdateAtScope)."""
        self._send("PATCH", f"{resource_id}/providers/Microsoft.Resources/tags/default",
                   {"operation": "Merge", "properties": {"tags": {DRILL_TAG: drill_id}}}, api_version=API["resources"])

    def post(self, url: str, body: Any, what: str) -> dict[str, Any] | None:
        """A POST action (restore, validateRestore, cancel): the operation to follow, or None when none."""
        response = self._send("POST", url, body)
        return self._operation(response, what)

    def delete(self, resource_id: str) -> dict[str, Any] | None:
        """DELETE; the operation to follow when Azure answers 202; None when done (or already gone)."""
        response = self._send("DELETE", resource_id, ok_missing=True)
        if response is None:
            return None
        return self._operation(response, f"delete {resource_id.rsplit('/', 1)[-1]}")

    def operation_status(self, operation: Mapping[str, Any]) -> dict[str, Any]:
        """One look at an operation: ``{"state": "running"|"succeeded"|"failed", "retryAfter", "error"?,
        "jobId"?}``. The job id of a restore: Recovery Services names it in the status' ``properties.jobId``
        (ProtectedItemOperationStatus); a Backup vault in the operation's result (``OperationJobExtendedInfo``)."""
        status_url, location = operation.get("statusUrl"), operation.get("location")
        if status_url:
            response = self._send("GET", str(status_url))
            headers = _headers(response)
            body = response.json() if response.text() else {}
            status = str(body.get("status") or "").lower()
            if status not in ("succeeded", "failed", "canceled", "cancelled"):
                return {"state": "running", "retryAfter": retry_after(headers)}
            if status != "succeeded":
                return {"state": "failed", "retryAfter": 0.0, "error": body.get("error") or {"code": status}}
            job_id = (body.get("properties") or {}).get("jobId")
            if not job_id and location:
                result = self._send("GET", str(location))
                job_id = (result.json() if result.status_code == 200 and result.text() else {}).get("jobId")
            return {"state": "succeeded", "retryAfter": 0.0, "jobId": job_name(job_id)}
        if location:
            try:
                response = self._send("GET", str(location))
            except AzureRefusal as error:  # a failed operation answers its error here
                return {"state": "failed", "retryAfter": 0.0, "error": {"code": error.code, "message": str(error)}}
            if response.status_code == 202:
                return {"state": "running", "retryAfter": retry_after(_headers(response))}
            body = response.json() if response.status_code == 200 and response.text() else {}
            return {"state": "succeeded", "retryAfter": 0.0,
                    "jobId": job_name(body.get("jobId")) if isinstance(body, dict) else None}
        return {"state": "succeeded", "retryAfter": 0.0}
