"""Adapters for auto-protection: read resources and vaults, enable and stop protection.

Each method is one Azure effect or fact, idempotent, and speaks in wire-shaped dicts and small records
(never SDK objects) so activities can hand the results across the durable boundary unchanged.
Refusals Azure will not change on retry come back as ``AzureRefusal`` with ARM's code; the activity
layer turns them into outcome records.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from azure.mgmt.dataprotection.models import (
    BackupInstanceResource,
    BaseBackupPolicyResource,
    SyncBackupInstanceRequest,
    ValidateForBackupRequest,
)
from azure.mgmt.recoveryservicesbackup.models import ProtectedItemResource, ProtectionPolicyResource

from steward.cloud import arm_cache, azure_time
from steward.cloud.arm_cache import NO_CACHE, ArmCache
from steward.cloud.clients import CloudClients
from steward.cloud.errors import AzureRefusal, CloudError, NotFound, azure_errors
from steward.cloud.polling import patient
from steward.cloud.wire import dig, wire
from steward.domain import held_roles, protection_flow, vault_defaults
from steward.domain.held_roles import HeldRole
from steward.domain.ids import ResourceId
from steward.domain.kernel import VaultKind, format_time, normalise_region
from steward.domain.protection import ProtectionRef
from steward.domain.protection_results import ResourceRecord, VaultRecord, VmProtectionBegun

#: api-versions for the generic ``resources.get_by_id`` reads, per resource type.
READ_API_VERSIONS: Final[dict[str, str]] = {
    "microsoft.compute/virtualmachines": "2024-07-01",
    "microsoft.compute/disks": "2024-03-02",
    "microsoft.storage/storageaccounts": "2023-05-01",
    "microsoft.dbforpostgresql/flexibleservers": "2024-08-01",
    "microsoft.recoveryservices/vaults": "2025-02-01",
    "microsoft.dataprotection/backupvaults": "2025-07-01",
}

#: ARM's answer when a subscription has moved to a tenant the app's token is not from.
WRONG_TENANT: Final = "InvalidAuthenticationTokenTenant"
#: how long (Azure seconds) a probe's claim holds without a note: the documented RBAC bound, after which the
#: orchestrations grant the roles again (protection_flow.RBAC_REGRANT_SECONDS)
PROBE_SECONDS: Final = float(protection_flow.RBAC_REGRANT_SECONDS)
IAAS_VM_FILTER: Final = "backupManagementType eq 'AzureIaasVM' and itemType eq 'VM'"
#: ``protectedItemType`` of Azure VM items (S-RSB ``AzureIaaSComputeVMProtectedItem`` / classic), lower-cased
VM_ITEM_TYPES: Final = frozenset({"microsoft.compute/virtualmachines", "microsoft.classiccompute/virtualmachines"})


def _identity_of(rtype: str, body: dict[str, Any], rid: ResourceId) -> str:
    props = body.get("properties") or {}
    if rtype == "microsoft.compute/virtualmachines":
        return str(props.get("vmId") or "")
    if rtype == "microsoft.compute/disks":
        return str(props.get("uniqueId") or "")
    # Storage account and PostgreSQL flexible server names are globally unique (DNS names).
    return rid.name.lower()


def _created_of(rtype: str, body: dict[str, Any]) -> str:
    """When this incarnation of the resource was created, as each type's REST spec carries it: VM and disk
    ``properties.timeCreated`` (Compute ``virtualMachine.json`` / ``disk.json``), storage account
    ``properties.creationTime`` (Storage ``storage.json``); otherwise ARM's ``systemData.createdAt``
    (PostgreSQL flexible server: common-types ``systemData``)."""
    props = body.get("properties") or {}
    if rtype in ("microsoft.compute/virtualmachines", "microsoft.compute/disks") and props.get("timeCreated"):
        return str(props["timeCreated"])
    if rtype == "microsoft.storage/storageaccounts" and props.get("creationTime"):
        return str(props["creationTime"])
    return str(dig(body, "systemData", "createdAt") or "")


def _vault_facts(body: dict[str, Any], kind: str) -> VaultRecord:
    return VaultRecord.from_arm(body, VaultKind(kind))


class ResourceReader:
    def __init__(self, clients: CloudClients) -> None:
        self._clients = clients

    def describe(self, resource_id: str) -> ResourceRecord | None:
        """The resource's facts, or None when it does not exist (any more)."""
        rid = ResourceId.parse(resource_id)
        rtype = rid.full_type.lower()
        api_version = READ_API_VERSIONS.get(rtype)
        if api_version is None:
            raise ValueError(f"no read api-version known for resource type {rid.full_type}")
        try:
            with azure_errors():
                body = wire(self._clients.resources(rid.subscription_id).resources.get_by_id(
                    str(rid), api_version=api_version
                ))
        except NotFound:
            return None
        return ResourceRecord(
            id=str(body.get("id") or rid),
            type=str(body.get("type") or rid.full_type),
            location=normalise_region(str(body.get("location") or "")),
            tags={str(k): str(v) for k, v in (body.get("tags") or {}).items()},
            identity=_identity_of(rtype, body, rid),
            managed_by=str(body.get("managedBy") or ""),
            created_at=_created_of(rtype, body),
            provisioning_state=str((body.get("properties") or {}).get("provisioningState") or ""),
        )

    def list_in_scope(self, scope: str, types: Iterable[str]) -> list[ResourceRecord]:
        """Resources of the given types in a subscription or resource group (one paged list per type)."""
        rid = ResourceId.parse(scope)
        client = self._clients.resources(rid.subscription_id).resources
        out: list[ResourceRecord] = []
        with azure_errors():
            for rtype in types:
                type_filter = f"resourceType eq '{rtype}'"
                pages = (
                    client.list_by_resource_group(rid.resource_group, filter=type_filter)
                    if rid.resource_group
                    else client.list(filter=type_filter)
                )
                for item in pages:
                    body = wire(item)
                    found = ResourceId.parse(str(body["id"]))
                    out.append(
                        ResourceRecord(
                            id=str(found),
                            type=str(body.get("type") or found.full_type),
                            location=normalise_region(str(body.get("location") or "")),
                            tags={str(k): str(v) for k, v in (body.get("tags") or {}).items()},
                            identity=_identity_of(found.full_type.lower(), body, found),
                            managed_by=str(body.get("managedBy") or ""),
                        )
                    )
        return out


    #: Storage spec stable/2023-05-01 blob.json ``BlobContainers_List``: ``{"value": [ListContainerItem], "nextLink"}``
    CONTAINERS_API_VERSION: Final = "2023-05-01"

    def blob_containers(self, account_id: str) -> list[str]:
        """The names of a storage account's blob containers (``GET …/blobServices/default/containers``, paged),
        through the resources client's pipeline (the app ships no storage management SDK)."""
        from azure.core.rest import HttpRequest

        rid = ResourceId.parse(account_id)
        client = self._clients.resources(rid.subscription_id)
        url: str | None = f"{rid}/blobServices/default/containers?api-version={self.CONTAINERS_API_VERSION}"
        names: list[str] = []
        with azure_errors():
            while url:
                response = client.send_request(HttpRequest("GET", url))
                response.raise_for_status()
                body = response.json()
                names += [str(c["name"]) for c in body.get("value") or [] if c.get("name")]
                url = body.get("nextLink")
        return names


class SubscriptionReader:
    SUBSCRIPTIONS_API_VERSION: Final = "2022-12-01"

    def __init__(self, clients: CloudClients) -> None:
        self._clients = clients

    def tenants(self, subscription_ids: Iterable[str]) -> dict[str, str | None]:
        """subscription id (lower-cased) -> the tenant it belongs to now, or None when the app's token is
        refused because the subscription now belongs to another tenant (``InvalidAuthenticationTokenTenant``).
        """
        from azure.core.rest import HttpRequest

        out: dict[str, str | None] = {}
        for subscription_id in subscription_ids:
            client = self._clients.resources(subscription_id)
            request = HttpRequest(
                "GET", f"/subscriptions/{subscription_id}?api-version={self.SUBSCRIPTIONS_API_VERSION}"
            )
            try:
                with azure_errors():
                    response = client.send_request(request)
                    response.raise_for_status()
            except CloudError as error:
                if error.code == WRONG_TENANT:
                    out[subscription_id.lower()] = None
                    continue
                raise
            out[subscription_id.lower()] = str(response.json().get("tenantId") or "")
        return out


class _VaultAdapter:
    KIND: str = ""

    def __init__(self, clients: CloudClients, cache: ArmCache = NO_CACHE) -> None:
        self._clients = clients
        self._cache = cache

    def all_vaults(self, subscription_id: str) -> list[VaultRecord]:
        raise NotImplementedError

    def vaults_in(self, subscription_id: str, region: str) -> list[VaultRecord]:
        """The vaults of a region; the subscription's list comes from the cache while it is fresh."""
        key = arm_cache.vaults_key(self.KIND, subscription_id)
        found: list[VaultRecord] | None = self._cache.get(key)
        if found is None:
            found = self.all_vaults(subscription_id)
            self._cache.put(key, found)
        wanted = normalise_region(region)
        return [v for v in found if v.location == wanted]

    def policy(self, vault_id: str, policy_name: str) -> dict[str, Any] | None:
        raise NotImplementedError

    def policy_id(self, vault_id: str, policy_name: str) -> str | None:
        """The policy's ARM id (None when the vault has none of that name), read by :meth:`policy` and cached while
        fresh."""
        key = arm_cache.policy_key(vault_id, policy_name)
        found: str | None = self._cache.get(key)
        if found is None:
            policy = self.policy(vault_id, policy_name)
            found = None if policy is None else str(policy["id"])
            self._cache.put(key, found)
        return found

    def forget_policy(self, vault_id: str, policy_name: str) -> None:
        self._cache.drop(*arm_cache.policy_key(vault_id, policy_name))

    def forget_vaults(self, subscription_id: str) -> None:
        self._cache.drop(*arm_cache.vaults_key(self.KIND, subscription_id))

    def begin_sync_instance(self, vault_id: str, name: str) -> dict[str, Any]:
        """Azure's remedy for a failed instance: ``POST .../sync`` (``BackupInstances_SyncBackupInstance``, syncType
        ``Default``: "retry last failed operation and bring backup instance to valid state"); returns as soon as
        Azure accepted it: ``{"operation": the URL of its status ("" when Azure answered at once), "retry_after"}``
        (SyncBackupInstance.json: 202 with Azure-AsyncOperation, Location and Retry-After 60). The caller follows
        it as it follows a PUT and reads the instance back when it ended."""
        vault = vault_address(vault_id)
        accepted: dict[str, str] = {}

        def keep_headers(response: Any) -> None:
            accepted.update({k.lower(): v for k, v in response.http_response.headers.items()})

        with azure_errors():
            self._clients.data_protection(vault.subscription_id).backup_instances.begin_sync_backup_instance(
                resource_group_name=vault.resource_group,
                vault_name=vault.name,
                backup_instance_name=name,
                parameters=SyncBackupInstanceRequest({"syncType": "Default"}),
                polling=False,
                raw_response_hook=keep_headers,
            ).result()  # no polling: what the POST itself answered
        return {"operation": accepted.get("azure-asyncoperation") or accepted.get("location") or "",
                "retry_after": _retry_after_seconds(accepted)}

    def count_items(self, vault_id: str) -> dict[str, int]:
        """``{"items", "vms"}``: every item the vault lists, and the Azure VMs among them."""
        raise NotImplementedError

    def list_load(self, vault_id: str) -> tuple[dict[str, int], frozenset[str]]:
        """``count_items`` and the resources the vault protects (lower case)."""
        raise NotImplementedError

    def vault_load(self, vault_id: str, *, fresh: bool = False) -> dict[str, int]:
        """What the vault protects (``count_items``), from the cache while it is fresh (``fresh``: read it again)."""
        key = arm_cache.load_key(vault_id)
        if fresh:
            self._cache.drop(*key)
        found: dict[str, int] | None = self._cache.get(key)
        if found is None:
            found = self.count_items(vault_id)
            self._cache.put(key, found)
        return dict(found)

    def counted_protection(self, vault_id: str, *, vm: bool) -> None:
        """The app protected one more datasource in the vault: count it in the cached load (no read)."""
        self._cache.adjust(arm_cache.load_key(vault_id),
                           lambda load: {"items": load["items"] + 1, "vms": load["vms"] + (1 if vm else 0)})

    def forget_load(self, vault_id: str) -> None:
        self._cache.drop(*arm_cache.load_key(vault_id))


class RecoveryServicesProtection(_VaultAdapter):
    """VM protection in Recovery Services vaults (docs/azure-facts.md: "VM enrolment", "Item states and soft
    delete", "Stop, delete, undelete")."""

    KIND = VaultKind.RECOVERY_SERVICES

    def all_vaults(self, subscription_id: str) -> list[VaultRecord]:
        with azure_errors():
            pages = self._clients.recovery_services(subscription_id).vaults.list_by_subscription_id()
            return [_vault_facts(wire(v), VaultKind.RECOVERY_SERVICES) for v in pages]

    def backup_status(self, vm_id: str, region: str) -> dict[str, Any]:
        """``POST locations/{region}/backupStatus``: is this VM protected, and where."""
        rid = ResourceId.parse(vm_id)
        with azure_errors():
            status = self._clients.recovery_services_backup(rid.subscription_id).backup_status.get(
                azure_region=normalise_region(region),
                parameters={"resourceType": "VM", "resourceId": str(rid)},
            )
        return wire(status)

    @staticmethod
    def vm_item_names(vm_id: str) -> tuple[str, str]:
        """(container, protected item) names Azure gives an IaaS VM (docs/azure-facts.md, "VM enrolment" 3)."""
        rid = ResourceId.parse(vm_id)
        suffix = f"iaasvmcontainerv2;{rid.resource_group};{rid.name}"
        return f"IaasVMContainer;{suffix}", f"VM;{suffix}"

    def vm_item(self, vault_id: str, vm_id: str) -> dict[str, Any] | None:
        vault = vault_address(vault_id)
        container, item = self.vm_item_names(vm_id)
        try:
            with azure_errors():
                found = self._clients.recovery_services_backup(vault.subscription_id).protected_items.get(
                    vault_name=vault.name,
                    resource_group_name=vault.resource_group,
                    fabric_name="Azure",
                    container_name=container,
                    protected_item_name=item,
                )
        except NotFound:
            return None
        return wire(found)

    def policy(self, vault_id: str, policy_name: str) -> dict[str, Any] | None:
        """The policy as Azure answers it (``ProtectionPolicies_Get``), or None when the vault has none of that name."""
        vault = vault_address(vault_id)
        try:
            with azure_errors():
                found = self._clients.recovery_services_backup(vault.subscription_id).protection_policies.get(
                    vault_name=vault.name, resource_group_name=vault.resource_group, policy_name=policy_name
                )
        except NotFound:
            return None
        return wire(found)

    def put_policy(self, vault_id: str, policy_name: str, body: dict[str, Any]) -> None:
        """Create the policy (``ProtectionPolicies_CreateOrUpdate``: PUT ``.../backupPolicies/{policyName}``, 200 or
        202 when Azure finishes it later; one of the vault's 50 policy changes per 24 hours). The cached id is
        dropped: the next ``policy_id`` reads it."""
        vault = vault_address(vault_id)
        with azure_errors():
            self._clients.recovery_services_backup(vault.subscription_id).protection_policies.create_or_update(
                vault_name=vault.name, resource_group_name=vault.resource_group, policy_name=policy_name,
                parameters=ProtectionPolicyResource(body),
            )
        self.forget_policy(vault_id, policy_name)

    def _put_vm_item(
        self, vault_id: str, vm_id: str, properties: dict[str, Any], *, wait: bool = True
    ) -> dict[str, Any] | None:
        """PUT the VM's protected item. With ``wait``, follow the operation to its end and return the item as
        read back; without, return the operation's status URL as soon as Azure accepted it (the caller polls
        on durable timers instead of holding a worker for the operation's minute)."""
        vault = vault_address(vault_id)
        container, item = self.vm_item_names(vm_id)
        body = {"properties": {"protectedItemType": "Microsoft.Compute/virtualMachines", **properties}}
        accepted: dict[str, str] = {}

        def keep_headers(response: Any) -> None:
            accepted.update({k.lower(): v for k, v in response.http_response.headers.items()})

        with azure_errors():
            poller = self._clients.recovery_services_backup(
                vault.subscription_id
            ).protected_items.begin_create_or_update(
                vault_name=vault.name,
                resource_group_name=vault.resource_group,
                fabric_name="Azure",
                container_name=container,
                protected_item_name=item,
                parameters=ProtectedItemResource(body),
                polling=wait,
                polling_interval=self._clients.target.polling_interval,
                raw_response_hook=None if wait else keep_headers,
            )
            if not wait:
                return {"operation": accepted.get("azure-asyncoperation") or accepted.get("location") or "",
                        "retryAfter": _retry_after_seconds(accepted)}
            poller.result()
        return self.vm_item(vault_id, vm_id)

    def begin_refresh_containers(self, vault_id: str) -> str:
        """``POST .../backupFabrics/Azure/refreshContainers``: the vault discovers new VMs (as the CLI's
        ``_get_protectable_item_for_vm`` does before enabling protection). Returns the operation's Location URL
        as soon as Azure accepted it (202); the caller follows it on durable timers."""
        vault = vault_address(vault_id)
        accepted: dict[str, str] = {}

        def keep_headers(pipeline_response: Any, _deserialized: Any, headers: Any) -> None:
            accepted.update({k.lower(): v for k, v in pipeline_response.http_response.headers.items()})

        with azure_errors():
            self._clients.recovery_services_backup(vault.subscription_id).protection_containers.refresh(
                vault_name=vault.name, resource_group_name=vault.resource_group, fabric_name="Azure",
                cls=keep_headers,
            )
        return accepted.get("location") or accepted.get("azure-asyncoperation") or ""

    def begin_enable_vm(self, vault_id: str, vm_id: str, policy_id: str) -> str:
        """PUT the protected item with a policy; return the URL of Azure's operation once it is accepted."""
        return self.begin_enable(vault_id, vm_id, policy_id).operation

    def begin_enable(self, vault_id: str, vm_id: str, policy_id: str) -> VmProtectionBegun:
        """PUT the protected item with a policy: accepted, with the URL of its operation and the seconds Azure's
        ``Retry-After`` asks to wait before looking (None when it names none)."""
        started = self._put_vm_item(vault_id, vm_id, {"sourceResourceId": vm_id, "policyId": policy_id}, wait=False)
        return VmProtectionBegun(ok=True, operation=str((started or {}).get("operation") or ""),
                                 retry_after=(started or {}).get("retryAfter"))

    def operation_status(self, vault_id: str, operation_url: str) -> dict[str, Any]:
        """One look at an operation (``Azure-AsyncOperation`` body ``status``, or a ``Location`` URL's 202 /
        200): ``{"status": "InProgress" | "Succeeded" | "Failed" | ..., "error": {...}?}``."""
        vault = vault_address(vault_id)
        status, _headers = look_at_operation(self._clients.recovery_services_backup(vault.subscription_id),
                                             operation_url)
        return status

    def enable_vm(self, vault_id: str, vm_id: str, policy_id: str) -> dict[str, Any]:
        """PUT the protected item with a policy (docs/azure-facts.md, "VM enrolment" 4) and verify it exists.
        Idempotent."""
        found = self._put_vm_item(vault_id, vm_id, {"sourceResourceId": vm_id, "policyId": policy_id})
        if found is None:
            raise AzureRefusal(f"protection of {vm_id} reported success but no item exists in {vault_id}")
        return found

    def stop_retain(self, vault_id: str, vm_id: str) -> dict[str, Any] | None:
        """Stop protection and keep the recovery points (re-PUT with ``ProtectionStopped``)."""
        current = self.vm_item(vault_id, vm_id)
        if current is None:
            return None
        props = current.get("properties") or {}
        if props.get("protectionState") == "ProtectionStopped":
            return current
        return self._put_vm_item(
            vault_id, vm_id,
            {"sourceResourceId": props.get("sourceResourceId", vm_id), "protectionState": "ProtectionStopped"},
        )

    def begin_stop_retain(self, vault_id: str, vm_id: str) -> dict[str, Any] | None:
        """:meth:`stop_retain` without waiting: None when the VM has no item here; ``{"operation": "", ...}`` when it
        is stopped already; else the re-PUT with ``ProtectionStopped`` as soon as Azure accepted it
        (``{"operation": its status URL, "retry_after": its Retry-After or None}``)."""
        current = self.vm_item(vault_id, vm_id)
        if current is None:
            return None
        props = current.get("properties") or {}
        if props.get("protectionState") == "ProtectionStopped":
            return {"operation": "", "retry_after": None}
        started = self._put_vm_item(
            vault_id, vm_id,
            {"sourceResourceId": props.get("sourceResourceId", vm_id), "protectionState": "ProtectionStopped"},
            wait=False,
        )
        return {"operation": str((started or {}).get("operation") or ""),
                "retry_after": (started or {}).get("retry_after")}

    def count_items(self, vault_id: str) -> dict[str, int]:
        """Every item of the vault (``backupProtectedItems`` unfiltered: every workload counts toward the 2,000
        datasources) and its Azure VMs (``protectedItemType`` of a VM; the 1,000 VMs), one paged list."""
        return self.list_load(vault_id)[0]

    def list_load(self, vault_id: str) -> tuple[dict[str, int], frozenset[str]]:
        """``count_items`` and the resources the items protect (``sourceResourceId``, lower case), one paged list:
        a vault set's reservations end when the resource shows here (issue 19)."""
        vault = vault_address(vault_id)
        items = vms = 0
        sources: set[str] = set()
        with azure_errors():
            for item in self._clients.recovery_services_backup(vault.subscription_id).backup_protected_items.list(
                vault_name=vault.name, resource_group_name=vault.resource_group
            ):
                props = wire(item).get("properties") or {}
                items += 1
                if str(props.get("protectedItemType") or "").lower() in VM_ITEM_TYPES:
                    vms += 1
                source = props.get("sourceResourceId") or props.get("virtualMachineId")
                if source:
                    sources.add(str(source).lower())
        return {"items": items, "vms": vms}, frozenset(sources)

    def vm_items(self, vault_id: str) -> list[dict[str, Any]]:
        vault = vault_address(vault_id)
        with azure_errors():
            pages = self._clients.recovery_services_backup(vault.subscription_id).backup_protected_items.list(
                vault_name=vault.name, resource_group_name=vault.resource_group, filter=IAAS_VM_FILTER
            )
            return [wire(item) for item in pages]


def look_at_operation(client: Any, operation_url: str) -> tuple[dict[str, Any], dict[str, str]]:
    """One GET of an operation's status URL through ``client``'s pipeline (``Azure-AsyncOperation`` body ``status``,
    or a ``Location`` URL's 202 / 200): ``({"status": "InProgress" | "Succeeded" | "Failed" | ..., "error":
    {...}?}, the answer's headers, lower-cased)``."""
    from azure.core.rest import HttpRequest

    with azure_errors():
        response = client.send_request(HttpRequest("GET", operation_url))
        headers = {k.lower(): v for k, v in response.headers.items()}
        if response.status_code == 202:
            return {"status": "InProgress"}, headers
        if response.status_code >= 500:
            # A Location poll answers an operation that ended Failed on Azure's side with its error status
            # (and an injected 5xx looks the same): report it Failed so the caller starts the operation
            # again; re-polling could only answer the same (found by the chaos run, seed 8: a refresh whose
            # operation failed server-side ended the protection Failed).
            try:
                error = (response.json() or {}).get("error") or {}
            except ValueError:
                error = {}
            return {"status": "Failed", "error": {"code": error.get("code") or "InternalServerError",
                                                  "message": error.get("message") or "the operation failed"}}, headers
        response.raise_for_status()
    if response.status_code == 204 or not response.content:
        return {"status": "Succeeded"}, headers
    body = response.json()
    # a terminal status in ARM's spelling whatever case the provider used (Data Protection: "Inprogress")
    status = protection_flow.operation_status(body.get("status") or "Succeeded") if isinstance(body, dict) \
        else "Succeeded"
    out: dict[str, Any] = {"status": status}
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        out["error"] = body["error"]
    return out, headers


def _retry_after_seconds(headers: dict[str, str]) -> int | None:
    """ARM's ``Retry-After`` (whole seconds) when the answer carries one. ``retry-after-ms`` is not read: ARM does
    not send it (the sandbox does at a clock scale other than 1, in real milliseconds no durable timer can use)."""
    value = str(headers.get("retry-after") or "").strip()
    return int(value) if value.isdigit() else None


@dataclass(frozen=True)
class VaultAddress:
    subscription_id: str
    resource_group: str
    name: str


def vault_address(vault_id: str) -> VaultAddress:
    rid = ResourceId.parse(vault_id)
    if rid.resource_group is None:
        raise ValueError(f"{vault_id} is not a vault id")
    return VaultAddress(rid.subscription_id, rid.resource_group, rid.name)


def instance_name(resource_id: str) -> str:
    """A deterministic backup instance name: retries and duplicates address the same instance."""
    rid = ResourceId.parse(resource_id)
    digest = hashlib.sha256(rid.key.encode()).hexdigest()[:12]
    return f"{rid.name.lower()}-{digest}"


@dataclass(frozen=True)
class RoleGranted:
    """What :meth:`BackupVaultProtection.grant_role` did: ``put`` the PUT was sent (and succeeded); ``created_on``
    when the assignment was made (ISO 8601 UTC; None: not known - made under another name, or cached before);
    ``held_at``: no assignment made, Azure refused one at the subscription's limit and the role is already held
    through the assignment at that scope (the scope itself or above it)."""

    put: bool
    created_on: str | None
    held_at: str | None = None


def role_assignment_name(principal_id: str, role_definition_guid: str, scope: str) -> str:
    """Deterministic role assignment GUID, so re-running never creates a duplicate."""
    seed = f"{principal_id.lower()}|{role_definition_guid.lower()}|{scope.lower()}"
    return str(uuid.uuid5(uuid.NAMESPACE_URL, seed))


class BackupVaultProtection(_VaultAdapter):
    """Disk / blob / PostgreSQL flexible server protection in Backup vaults (docs/azure-facts.md, "Backup vault
    workloads")."""

    KIND = VaultKind.BACKUP

    def all_vaults(self, subscription_id: str) -> list[VaultRecord]:
        with azure_errors():
            pages = self._clients.data_protection(subscription_id).backup_vaults.get_in_subscription()
            return [_vault_facts(wire(v), VaultKind.BACKUP) for v in pages]

    def policy(self, vault_id: str, policy_name: str) -> dict[str, Any] | None:
        """The policy as Azure answers it (``BackupPolicies_Get``), or None when the vault has none of that name."""
        vault = vault_address(vault_id)
        try:
            with azure_errors():
                found = self._clients.data_protection(vault.subscription_id).backup_policies.get(
                    resource_group_name=vault.resource_group, vault_name=vault.name, backup_policy_name=policy_name
                )
        except NotFound:
            return None
        return wire(found)

    def put_policy(self, vault_id: str, policy_name: str, body: dict[str, Any]) -> None:
        """Create the policy (``BackupPolicies_CreateOrUpdate``: PUT ``.../backupPolicies/{backupPolicyName}``, 200,
        as ``VaultCreator.create`` PUTs the default ones). The cached id is dropped."""
        vault = vault_address(vault_id)
        with azure_errors():
            self._clients.data_protection(vault.subscription_id).backup_policies.create_or_update(
                resource_group_name=vault.resource_group, vault_name=vault.name, backup_policy_name=policy_name,
                parameters=BaseBackupPolicyResource(body),
            )
        self.forget_policy(vault_id, policy_name)

    def ensure_role(self, principal_id: str, role_definition_guid: str, scope: str) -> bool:
        """:meth:`grant_role`; True when the PUT was sent and succeeded (200 or 201: a create and an idempotent
        re-create are not told apart); False when it is known to exist - another name answers 409
        ``RoleAssignmentExists``, or the app granted it within the cache's lifetime (no request)."""
        return self.grant_role(principal_id, role_definition_guid, scope).put

    def grant_role(self, principal_id: str, role_definition_guid: str, scope: str) -> RoleGranted:
        """Assign the role to the vault identity at ``scope``: one idempotent PUT under a deterministic name (no
        list first), unless the worker's cache knows it granted it. A role held only at a scope above (a group, the
        subscription) gets its own assignment here while there is room (one request instead of a list per role);
        once Azure refuses it ``RoleAssignmentLimitExceeded`` (the subscription's 4,000), the principal's
        assignments at and above ``scope`` are listed (:meth:`held_role`) and a role already held there counts as
        granted (``put`` False, ``held_at`` its scope, ``created_on`` its time), as Microsoft's
        ``Set-AzDataProtectionMSIPermission`` skips a role held at the resource, its group or the subscription.

        Answers the assignment's ``createdOn`` too (the PUT's answer; the cache keeps it): an assignment shared by
        several protections (``roleScope`` ``resourceGroup`` / ``subscription``) may have been made by another one
        moments ago and still propagate, and the protection waits for it from that time. Azure answers an
        idempotent re-PUT with the existing assignment, so its ``createdOn`` is the first PUT's (**inferred**: the
        REST reference shows a create's answer only; the sandbox answers so)."""
        key = arm_cache.role_key(principal_id, role_definition_guid, scope)
        cached = self._cache.get(key)
        if cached:
            return RoleGranted(put=False, created_on=cached if isinstance(cached, str) else None)
        rid = ResourceId.parse(scope)
        client = self._clients.authorization(rid.subscription_id)
        role_definition_id = (
            f"/subscriptions/{rid.subscription_id}/providers/Microsoft.Authorization/"
            f"roleDefinitions/{role_definition_guid}"
        )
        try:
            with azure_errors():
                made = client.role_assignments.create(
                    scope,
                    role_assignment_name(principal_id, role_definition_guid, scope),
                    {
                        "properties": {
                            "roleDefinitionId": role_definition_id,
                            "principalId": principal_id,
                            "principalType": "ServicePrincipal",
                        }
                    },
                )
        except AzureRefusal as refusal:
            if refusal.code == "RoleAssignmentExists":
                self._cache.put(key, True)
                return RoleGranted(put=False, created_on=None)
            if (refusal.code or "").lower() != protection_flow.ROLE_ASSIGNMENT_LIMIT_CODE:
                raise
            try:
                held = self.held_role(principal_id, role_definition_guid, scope)
            except (AzureRefusal, NotFound) as unlisted:  # e.g. 403 without roleAssignments/read: Azure's refusal
                raise refusal from unlisted  # stands as it was (a throttled list is retried: transient)
            if held is None:
                raise
            self._cache.put(key, held.created_on or True)
            return RoleGranted(put=False, created_on=held.created_on, held_at=held.scope)
        created_on = getattr(made, "created_on", None)
        stamp = format_time(created_on) if isinstance(created_on, datetime) else None
        self._cache.put(key, stamp or True)
        return RoleGranted(put=True, created_on=stamp)

    def held_role(self, principal_id: str, role_definition_guid: str, scope: str) -> HeldRole | None:
        """Whether ``principal_id`` already holds the role on ``scope`` through an assignment at or above it (its
        group, its subscription): one ``RoleAssignments_ListForScope`` of ``scope`` with ``$filter=atScope() and
        assignedTo('{principalId}')`` ("role assignments for the specified user or service principal and at the
        specified scope", MicrosoftDocs/azure-docs ``role-based-access-control/role-assignments-list-rest.md``;
        the spec's "atScope() ... at or above the scope"), read by :func:`held_roles.held_role`. Asked only after
        Azure refused a new assignment at the subscription's limit: not a request more on any other grant."""
        rid = ResourceId.parse(scope)
        client = self._clients.authorization(rid.subscription_id)
        with azure_errors():
            listed = [wire(a) for a in client.role_assignments.list_for_scope(
                scope, filter=f"atScope() and assignedTo('{principal_id}')")]
        return held_roles.held_role(listed, principal_id, role_definition_guid, scope)

    def forget_roles(self, principal_id: str) -> None:
        self._cache.drop("role", principal_id.lower())

    def settle_seconds(self, principal_id: str) -> float | None:
        """How long the identity's new role assignments last took to apply, as noted (:meth:`note_settle`); reading
        it keeps it for another cache lifetime (it is in use). None: nothing noted within the cache's lifetime."""
        key = arm_cache.settle_key(principal_id)
        seconds = self._cache.get(key)
        if seconds is not None:
            self._cache.put(key, seconds)
        return None if seconds is None else float(seconds)

    def claim_probe(self, principal_id: str) -> bool:
        """Whether the caller is the one protection of this worker to find out how long the identity's new roles
        take to apply (nothing noted yet, no other protection finding it out). The claim holds until the probe
        notes (:meth:`note_settle`) or ``PROBE_SECONDS`` of Azure time passed - not the cache's lifetime, which a
        probe outlasts when the roles take longer than it (the documented bound is 10 minutes)."""
        deadline = azure_time.monotonic() + PROBE_SECONDS
        return self._cache.claim(arm_cache.probe_key(principal_id), deadline, seconds=max(self._cache.seconds,
                                 PROBE_SECONDS * 4), live=lambda until: float(until) > azure_time.monotonic())

    def probing(self, principal_id: str) -> bool:
        until = self._cache.get(arm_cache.probe_key(principal_id))
        return until is not None and float(until) > azure_time.monotonic()

    def note_settle(self, principal_id: str, seconds: float | None) -> None:
        """Note how long the identity's new roles took to apply (None: the probe ended without finding out)."""
        if seconds is not None:
            self._cache.put(arm_cache.settle_key(principal_id), float(seconds))
        self._cache.drop(*arm_cache.probe_key(principal_id))

    def validate(self, vault_id: str, instance: dict[str, Any]) -> dict[str, Any]:
        """``POST validateForBackup``; returns as soon as Azure accepted it: ``{"operation": the URL of its status
        ("" when Azure answered at once), "retry_after": its Retry-After (None: none)}``. The caller follows the
        operation on durable timers (:meth:`operation_status`)."""
        vault = vault_address(vault_id)
        accepted: dict[str, str] = {}

        def keep_headers(response: Any) -> None:
            accepted.update({k.lower(): v for k, v in response.http_response.headers.items()})

        with azure_errors():
            self._clients.data_protection(vault.subscription_id).backup_instances.begin_validate_for_backup(
                resource_group_name=vault.resource_group,
                vault_name=vault.name,
                parameters=ValidateForBackupRequest({"backupInstance": instance["properties"]}),
                polling=False,
                raw_response_hook=keep_headers,
            )
        return {"operation": accepted.get("azure-asyncoperation") or accepted.get("location") or "",
                "retry_after": _retry_after_seconds(accepted)}

    def operation_status(self, vault_id: str, operation_url: str) -> dict[str, Any]:
        """One look at an operation of this vault's provider: ``{"status", "error"?, "retry_after"?}``."""
        vault = vault_address(vault_id)
        status, headers = look_at_operation(self._clients.data_protection(vault.subscription_id), operation_url)
        retry_after = _retry_after_seconds(headers)
        return status if retry_after is None else {**status, "retry_after": retry_after}

    def instance(self, vault_id: str, name: str) -> dict[str, Any] | None:
        vault = vault_address(vault_id)
        try:
            with azure_errors():
                found = self._clients.data_protection(vault.subscription_id).backup_instances.get(
                    resource_group_name=vault.resource_group, vault_name=vault.name, backup_instance_name=name
                )
        except NotFound:
            return None
        return wire(found)

    def create_instance(self, vault_id: str, name: str, instance: dict[str, Any]) -> dict[str, Any]:
        """PUT the backup instance and follow its operation; the instance as it reads back. An operation that
        ended Failed leaving the instance ``ConfiguringProtectionFailed`` returns that instance (the caller
        decides whether to configure it again); other failures raise."""
        vault = vault_address(vault_id)
        try:
            with azure_errors():
                created = self._clients.data_protection(
                    vault.subscription_id
                ).backup_instances.begin_create_or_update(
                    resource_group_name=vault.resource_group,
                    vault_name=vault.name,
                    backup_instance_name=name,
                    parameters=BackupInstanceResource(instance),
                    polling=patient(self._clients.target.polling_interval),
                ).result()
        except CloudError:
            left = self.instance(vault_id, name)
            if left is not None and protection_flow.instance_failure(left) is not None:
                return left
            raise
        # the poller's final GET already read the instance back; read it again only if it brought no body
        found = wire(created) if created is not None else self.instance(vault_id, name)
        if not found:
            raise AzureRefusal(f"backup instance {name} reported created but is missing in {vault_id}")
        return found

    def begin_create_instance(self, vault_id: str, name: str, instance: dict[str, Any]) -> dict[str, Any]:
        """PUT the backup instance; returns as soon as Azure accepted it: ``{"operation": the URL of its status
        ("" when Azure answered at once: an existing instance updated in place), "retry_after": its Retry-After
        (None: none), "instance": the instance Azure answered with}``. The caller follows the operation on durable
        timers and reads the instance back when it ended (the verification)."""
        vault = vault_address(vault_id)
        accepted: dict[str, str] = {}
        statuses: list[int] = []

        def keep_headers(response: Any) -> None:
            statuses.append(int(response.http_response.status_code))
            accepted.update({k.lower(): v for k, v in response.http_response.headers.items()})

        with azure_errors():
            poller = self._clients.data_protection(vault.subscription_id).backup_instances.begin_create_or_update(
                resource_group_name=vault.resource_group,
                vault_name=vault.name,
                backup_instance_name=name,
                parameters=BackupInstanceResource(instance),
                polling=False,
                raw_response_hook=keep_headers,
            )
            try:
                answered = poller.result()  # no polling: what the PUT itself answered
            except ValueError:
                # Azure may answer 202 with the operation's headers and NO body (S-DP 2025-07-01
                # PutBackupInstance.json); the generated code decodes the body regardless (azure-mgmt-dataprotection
                # 2.2.0 get_long_running_output: response.json()). The operation is followed; nothing to read here.
                if statuses[-1:] != [202]:
                    raise
                answered = None
        return {"operation": accepted.get("azure-asyncoperation") or accepted.get("location") or "",
                "retry_after": _retry_after_seconds(accepted),
                "instance": wire(answered) if answered is not None else {}}

    def count_items(self, vault_id: str) -> dict[str, int]:
        """The vault's backup instances (no limit is published for Backup vaults; sets spread by the count)."""
        return self.list_load(vault_id)[0]

    def list_load(self, vault_id: str) -> tuple[dict[str, int], frozenset[str]]:
        """``count_items`` and the datasources the instances protect (``dataSourceInfo.resourceID``, lower case)."""
        found = self.instances(vault_id)
        sources = {str(dig(i, "properties", "dataSourceInfo", "resourceID") or "").lower() for i in found}
        return {"items": len(found), "vms": 0}, frozenset(s for s in sources if s)

    def instances(self, vault_id: str) -> list[dict[str, Any]]:
        vault = vault_address(vault_id)
        with azure_errors():
            return [
                wire(item)
                for item in self._clients.data_protection(vault.subscription_id).backup_instances.list(
                    resource_group_name=vault.resource_group, vault_name=vault.name
                )
            ]

    def begin_stop_protection(self, vault_id: str, name: str) -> dict[str, Any]:
        """``POST .../stopProtection`` (recovery points kept) as soon as Azure accepted it: ``{"operation": its status
        URL ("" when Azure answered at once), "retry_after": its Retry-After or None}``."""
        vault = vault_address(vault_id)
        accepted: dict[str, str] = {}

        def keep_headers(response: Any) -> None:
            accepted.update({k.lower(): v for k, v in response.http_response.headers.items()})

        with azure_errors():
            self._clients.data_protection(vault.subscription_id).backup_instances.begin_stop_protection(
                resource_group_name=vault.resource_group,
                vault_name=vault.name,
                backup_instance_name=name,
                polling=False,
                raw_response_hook=keep_headers,
            )
        return {"operation": accepted.get("azure-asyncoperation") or accepted.get("location") or "",
                "retry_after": _retry_after_seconds(accepted)}


def collect_protections(
    rs: RecoveryServicesProtection,
    bv: BackupVaultProtection,
    subscription_id: str,
    region: str | None,
) -> list[ProtectionRef]:
    """Every live protection in a subscription (optionally one region): RS VM items and BV instances."""
    found: list[ProtectionRef] = []
    for vault in _all_vaults(rs, bv, subscription_id, region):
        if vault.kind == VaultKind.RECOVERY_SERVICES:
            for item in rs.vm_items(vault.id):
                props = item.get("properties") or {}
                found.append(
                    ProtectionRef(
                        vault_id=vault.id,
                        item_id=str(item.get("id")),
                        source_id=str(props.get("sourceResourceId") or props.get("virtualMachineId") or ""),
                        # no incarnation: a Recovery Services VM item carries no vmId (azure-mgmt-recoveryservices-
                        # backup 11.2.0 AzureIaaSVMProtectedItem / ExtendedProperties have none); decisions that
                        # need one compare creation and event times instead
                        identity="",
                        kind=VaultKind.RECOVERY_SERVICES,
                        state=str(props.get("protectionState") or ""),
                    )
                )
        else:
            for instance in bv.instances(vault.id):
                props = instance.get("properties") or {}
                source = str(dig(props, "dataSourceInfo", "resourceID") or "")
                found.append(
                    ProtectionRef(
                        vault_id=vault.id,
                        item_id=str(instance.get("id")),
                        source_id=source,
                        kind=VaultKind.BACKUP,
                        state=str(dig(props, "protectionStatus", "status") or ""),
                    )
                )
    return found


def _all_vaults(
    rs: RecoveryServicesProtection, bv: BackupVaultProtection, subscription_id: str, region: str | None
) -> list[VaultRecord]:
    if region is not None:
        return rs.vaults_in(subscription_id, region) + bv.vaults_in(subscription_id, region)
    return rs.all_vaults(subscription_id) + bv.all_vaults(subscription_id)


class VaultCreator:
    """Creates the regional vault the rules expect when none exists (``STEWARD_AUTO_CREATE_VAULTS``), or a vault
    set's next vault: :meth:`begin_create` PUTs it and returns as soon as Azure accepted it; the orchestrator waits
    the operation's ``Retry-After`` on a durable timer and looks (:meth:`creation_status`), and once it ended the
    vault is read back (:meth:`read`, the verification: ``operations.after_vault``) and a Backup vault gets the
    default policies (:meth:`create_policies`). No activity waits for the vault (issue 15 item 1)."""

    def __init__(self, clients: CloudClients, cache: ArmCache = NO_CACHE) -> None:
        self._clients = clients
        self._cache = cache

    def existing(self, kind: str, subscription_id: str, group: str, name: str) -> VaultRecord | None:
        """The vault ``name`` in ``group`` as it is (one GET), or None: a vault set's next vault may exist already
        (another protection created it a moment ago), and a PUT over it would reset its settings to the defaults."""
        rtype = VaultKind(kind).arm_type
        found = self.read(f"/subscriptions/{subscription_id}/resourceGroups/{group}/providers/{rtype}/{name}")
        return None if found is None else _vault_facts(found, kind)

    def read(self, vault_id: str) -> dict[str, Any] | None:
        """The vault as ARM answers its GET, or None when it does not exist."""
        rid = ResourceId.parse(vault_id)
        try:
            with azure_errors():
                return wire(self._clients.resources(rid.subscription_id).resources.get_by_id(
                    vault_id, api_version=READ_API_VERSIONS[rid.type_key]))
        except NotFound:
            return None

    def begin_create(
        self, kind: str, subscription_id: str, region: str, default_tag: str, *,
        named: tuple[str, str] | None = None, tags: dict[str, str] | None = None,
        always_on: bool = False, immutable: bool = False,
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """PUT (idempotently) the vault of ``kind`` for ``region`` with secure defaults, tagged default; or, with
        ``named`` (resource group, name) and ``tags``, a vault set's next vault with the same secure defaults.
        Returns as soon as Azure accepted it: (the body sent, ``{"operation": the URL of its status ("" when Azure
        answered at once), "retry_after": its Retry-After (None: none), "vault": the vault Azure answered with}``).
        A Backup vault's PUT answers 201 + ``Azure-AsyncOperation`` + ``Retry-After: 10`` while ``Provisioning``
        (S-DP 2025-07-01 ``VaultCRUD/PutBackupVault.json``); a Recovery Services vault's 200 / 201 ``Succeeded``
        with no header (S-RS 2025-02-01 ``PUTVault.json``).

        Backup vaults are created through the generic resources API: azure-mgmt-dataprotection 2.2.0's
        ``backup_vaults.begin_create_or_update`` cannot be called at api-version 2025-07-01.
        """
        group, name = named or vault_defaults.vault_names(kind, region)
        with azure_errors():
            self._clients.resources(subscription_id).resource_groups.create_or_update(group, {"location": region})
        if named is None or tags is None:
            tags = {default_tag: "true", "backup-steward:created-by": "backup-steward"}
        rtype = VaultKind(kind).arm_type
        if kind == VaultKind.RECOVERY_SERVICES:
            body = vault_defaults.recovery_services_vault_body(region, tags, always_on=always_on, immutable=immutable)
        else:
            body = vault_defaults.backup_vault_body(region, tags, always_on=always_on, immutable=immutable)
        rid = f"/subscriptions/{subscription_id}/resourceGroups/{group}/providers/{rtype}/{name}"
        accepted: dict[str, str] = {}

        def keep_headers(response: Any) -> None:
            accepted.update({k.lower(): v for k, v in response.http_response.headers.items()})

        with azure_errors():
            poller = self._clients.resources(subscription_id).resources.begin_create_or_update_by_id(
                rid, api_version=READ_API_VERSIONS[rtype.lower()], parameters=body, polling=False,
                raw_response_hook=keep_headers,
            )
            answered = poller.result()  # no polling: what the PUT itself answered
        self._cache.drop(*arm_cache.vaults_key(kind, subscription_id))  # the list without it is stale now
        return body, {"operation": accepted.get("azure-asyncoperation") or accepted.get("location") or "",
                      "retry_after": _retry_after_seconds(accepted),
                      "vault": {"id": rid, **(wire(answered) if answered is not None else {})}}

    def creation_status(self, vault_id: str, operation_url: str) -> dict[str, Any]:
        """One look at a vault's creation: its operation's status URL (``{"status", "error"?, "retry_after"?}``);
        with no URL (Azure named none), the vault's own ``provisioningState`` (ARM's resource provider contract:
        ``Succeeded`` / ``Failed`` / ``Canceled`` are terminal) and ``"vault"``, the vault as it read."""
        rid = ResourceId.parse(vault_id)
        if not operation_url:
            found = self.read(vault_id)
            if found is None:
                return {"status": "Failed", "error": {"code": "ResourceNotFound", "message": f"{vault_id} is gone"}}
            state = str(dig(found, "properties", "provisioningState") or "Succeeded")
            ended = state.lower() in ("succeeded", "failed", "canceled")
            return {"status": state if ended else "InProgress", "vault": found}
        status, headers = look_at_operation(self._clients.resources(rid.subscription_id), operation_url)
        retry_after = _retry_after_seconds(headers)
        return status if retry_after is None else {**status, "retry_after": retry_after}

    def create_policies(self, vault_id: str) -> list[str]:
        """PUT the default Backup vault policies (``vault_defaults.BACKUP_VAULT_POLICIES``; idempotent); their
        names."""
        vault = vault_address(vault_id)
        policies = self._clients.data_protection(vault.subscription_id).backup_policies
        for policy, policy_body in vault_defaults.BACKUP_VAULT_POLICIES.items():
            with azure_errors():
                policies.create_or_update(
                    resource_group_name=vault.resource_group, vault_name=vault.name, backup_policy_name=policy,
                    parameters=BaseBackupPolicyResource(policy_body),
                )
        return list(vault_defaults.BACKUP_VAULT_POLICIES)

    def forget_vaults(self, kind: str, subscription_id: str) -> None:
        """Drop the cached vault list: one made while the vault was provisioning may lack it or show it so."""
        self._cache.drop(*arm_cache.vaults_key(kind, subscription_id))
