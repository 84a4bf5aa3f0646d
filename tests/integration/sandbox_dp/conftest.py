"""A running ARM sandbox and the app's real SDK clients for the Data Protection / Authorization tests."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from sandbox.arm.config import (
    DEFAULT_SUBSCRIPTION,
    DEFAULT_TENANT,
    OTHER_TENANT,
    SECOND_SUBSCRIPTION,
    PropagationConfig,
    SandboxConfig,
    SubscriptionSpec,
)
from sandbox.arm.server import ArmSandbox
from steward.cloud.clients import CloudClients

#: one real second = one Azure hour: LROs of 20-60 s end in milliseconds, 14 days pass with advance()
SCALE = 3600.0


#: the providers these tests need (others are left out so their work in progress cannot break these tests)
#: (the generic providers keep the disks, storage accounts and PostgreSQL servers being protected)
PROVIDERS = ("resources", "authorization", "dataprotection", "compute", "storage", "postgresql")
#: a subscription in another tenant, and one a test moves to another tenant
FOREIGN_SUBSCRIPTION = "00000000-0000-4000-8000-0000000000f3"
MOVED_SUBSCRIPTION = "00000000-0000-4000-8000-0000000000f4"
SUBSCRIPTIONS = (
    SubscriptionSpec(DEFAULT_SUBSCRIPTION, DEFAULT_TENANT),
    SubscriptionSpec(SECOND_SUBSCRIPTION, DEFAULT_TENANT),
    SubscriptionSpec(FOREIGN_SUBSCRIPTION, OTHER_TENANT),
    SubscriptionSpec(MOVED_SUBSCRIPTION, DEFAULT_TENANT),
)


@pytest.fixture(scope="module")
def sandbox() -> Iterator[ArmSandbox]:
    # RBAC propagation off here (the rules are tested at once); test_rbac_propagation.py switches it on
    sb = ArmSandbox(SandboxConfig(scale=SCALE, page_size=2, providers=PROVIDERS, subscriptions=SUBSCRIPTIONS,
                                  propagation=PropagationConfig(rbac_seconds=0))).start()
    try:
        yield sb
    finally:
        sb.stop()


@pytest.fixture(scope="module")
def clients(sandbox: ArmSandbox) -> CloudClients:
    return CloudClients(sandbox.cloud_target())


@dataclass
class Estate:
    """Names for one test's resources, unique per test so tests share one sandbox safely."""

    sandbox: ArmSandbox
    clients: CloudClients
    tag: str
    subscription: str = DEFAULT_SUBSCRIPTION

    @property
    def dp(self) -> Any:
        return self.clients.data_protection(self.subscription)

    @property
    def auth(self) -> Any:
        return self.clients.authorization(self.subscription)

    def group(self, name: str, location: str = "westus", subscription: str | None = None) -> str:
        sub = subscription or self.subscription
        rg = f"{name}-{self.tag}"
        self.clients.resources(sub).resource_groups.create_or_update(rg, {"location": location})
        return rg

    def group_id(self, rg: str, subscription: str | None = None) -> str:
        return f"/subscriptions/{subscription or self.subscription}/resourceGroups/{rg}"

    def datasource(self, rg: str, full_type: str, name: str, location: str = "westus",
                   subscription: str | None = None) -> str:
        """A disk / storage account / PostgreSQL flexible server, created through ARM (the generic providers)."""
        sub = subscription or self.subscription
        if full_type == STORAGE:
            name = f"{name}{self.tag}".lower()[:24]  # storage account names are global: make them unique
        rid = f"{self.group_id(rg, sub)}/providers/{full_type}/{name}"
        api_version, body = CREATE_BODIES[full_type]
        self.clients.resources(sub).resources.begin_create_or_update_by_id(
            rid, {"location": location, **body}, api_version=api_version).result()
        return rid


DISK = "Microsoft.Compute/disks"
STORAGE = "Microsoft.Storage/storageAccounts"
BLOB = "Microsoft.Storage/storageAccounts/blobServices"
PG = "Microsoft.DBforPostgreSQL/flexibleServers"
ROLE_IDS = {
    "Disk Backup Reader": "3e5e47e6-65f7-47ef-90b5-e5dd4d455f24",
    "Disk Snapshot Contributor": "7efff54f-a5b4-42b5-a1c5-5411624893ce",
    "Storage Account Backup Contributor": "e5e2a7ff-d759-4cd2-bb51-3152d37e2eb1",
    "PostgreSQL Flexible Server Long Term Retention Backup Role": "c088a766-074b-43ba-90d4-1fb21feae531",
    "Reader": "acdd72a7-3385-48ef-bd42-f606fba81ae7",
    "Owner": "8e3af657-a8ff-443c-a75c-2fe8c4bcb635",
}


def retention_rule(store: str) -> dict[str, Any]:
    return {
        "name": "Default",
        "objectType": "AzureRetentionRule",
        "isDefault": True,
        "lifecycles": [
            {
                "deleteAfter": {"objectType": "AbsoluteDeleteOption", "duration": "P7D"},
                "sourceDataStore": {"dataStoreType": store, "objectType": "DataStoreInfoBase"},
            }
        ],
    }


#: api-version and body (besides location) to create each datasource type through ARM
CREATE_BODIES: dict[str, tuple[str, dict[str, Any]]] = {
    DISK: ("2025-01-02", {"sku": {"name": "Standard_LRS"},
                          "properties": {"creationData": {"createOption": "Empty"}, "diskSizeGB": 32}}),
    STORAGE: ("2025-01-01", {"sku": {"name": "Standard_LRS"}, "kind": "StorageV2", "properties": {}}),
    PG: ("2024-08-01", {"sku": {"name": "Standard_D2ds_v5", "tier": "GeneralPurpose"},
                        "properties": {"version": "16", "administratorLogin": "steward",
                                       "administratorLoginPassword": "not-a-secret-1A!"}}),
}


class Vault:
    """A Backup vault made through the SDK pipeline, with helpers for its policies and instances."""

    def __init__(self, estate: Estate, rg: str, name: str, body: dict[str, Any]) -> None:
        self.estate, self.rg, self.name, self.body = estate, rg, name, body

    @property
    def id(self) -> str:
        return f"{self.estate.group_id(self.rg)}/providers/Microsoft.DataProtection/backupVaults/{self.name}"

    @property
    def principal_id(self) -> str:
        return str(self.body["identity"]["principalId"])

    def policy(self, datasource_type: str, name: str = "policy") -> str:
        store = "VaultStore" if datasource_type == PG else "OperationalStore"
        policy = self.estate.dp.backup_policies.create_or_update(
            self.rg, self.name, name,
            {"properties": {"objectType": "BackupPolicy", "datasourceTypes": [datasource_type],
                            "policyRules": [retention_rule(store)]}},
        )
        return str(policy.id)

    def instance_body(self, datasource_id: str, datasource_type: str, policy_id: str,
                      snapshot_group: str | None = None) -> dict[str, Any]:
        resource_type = STORAGE if datasource_type == BLOB else datasource_type
        body: dict[str, Any] = {
            "objectType": "BackupInstance",
            "dataSourceInfo": {"objectType": "Datasource", "resourceID": datasource_id,
                               "resourceName": datasource_id.rsplit("/", 1)[-1], "resourceType": resource_type,
                               "resourceLocation": "westus", "datasourceType": datasource_type},
            "policyInfo": {"policyId": policy_id},
        }
        if snapshot_group:
            body["policyInfo"]["policyParameters"] = {"dataStoreParametersList": [
                {"objectType": "AzureOperationalStoreParameters", "dataStoreType": "OperationalStore",
                 "resourceGroupId": snapshot_group}]}
        return body

    def grant(self, role: str, scope: str, principal: str | None = None) -> Any:
        sub = scope.split("/")[2]
        return self.estate.auth.role_assignments.create(scope, str(uuid.uuid4()), {"properties": {
            "roleDefinitionId": f"/subscriptions/{sub}/providers/Microsoft.Authorization/roleDefinitions/"
                                f"{ROLE_IDS[role]}",
            "principalId": principal or self.principal_id, "principalType": "ServicePrincipal"}})

    def validate(self, body: dict[str, Any]) -> Any:
        return self.estate.dp.backup_instances.begin_validate_for_backup(
            self.rg, self.name, {"backupInstance": body}).result()

    def protect(self, name: str, body: dict[str, Any]) -> Any:
        return self.estate.dp.backup_instances.begin_create_or_update(
            self.rg, self.name, name, {"properties": body}).result()


def make_vault(estate: Estate, rg: str, *, name: str = "vault", location: str = "westus",
               soft_delete: str = "On", days: int = 14, identity: str = "SystemAssigned",
               immutability: str | None = None) -> Vault:
    security: dict[str, Any] = {"softDeleteSettings": {"state": soft_delete, "retentionDurationInDays": days}}
    if immutability:
        security["immutabilitySettings"] = {"state": immutability}
    path = f"{estate.group_id(rg)}/providers/Microsoft.DataProtection/backupVaults/{name}"
    body = begin_raw(estate.dp, "PUT", path, {
        "location": location,
        "identity": {"type": identity},
        "properties": {"storageSettings": [{"datastoreType": "VaultStore", "type": "LocallyRedundant"}],
                       "securitySettings": security},
    }).result()
    return Vault(estate, rg, name, body)


@dataclass
class ProtectedDisk:
    vault: Vault
    disk: str
    snapshot_group: str
    policy_id: str
    body: dict[str, Any]


def protected_disk(estate: Estate, *, soft_delete: str = "On", instance: str = "bi") -> ProtectedDisk:
    """A disk protected in a fresh vault, every role granted (the happy path several tests start from)."""
    rg = estate.group("dp")
    snap = estate.group("snap")
    vault = make_vault(estate, rg, soft_delete=soft_delete)
    disk = estate.datasource(rg, DISK, "disk1")
    policy = vault.policy(DISK)
    body = vault.instance_body(disk, DISK, policy, estate.group_id(snap))
    vault.grant("Disk Backup Reader", disk)
    vault.grant("Disk Snapshot Contributor", estate.group_id(snap))
    vault.protect(instance, body)
    return ProtectedDisk(vault, disk, estate.group_id(snap), policy, body)


def clients_in_tenant(estate: Estate, tenant: str) -> CloudClients:
    """The app's client factory, with sandbox tokens issued in ``tenant``."""
    from steward.cloud.clients import SandboxCredential

    clients = CloudClients(estate.sandbox.cloud_target())
    clients.__dict__["credential"] = SandboxCredential(
        estate.sandbox.token_url, principal_id=estate.sandbox.config.default_principal_id, tenant_id=tenant,
        ca_bundle=estate.sandbox.ca_bundle)
    return clients


def error_code(exc: BaseException) -> str | None:
    error = getattr(exc, "error", None)
    return getattr(error, "code", None)


@pytest.fixture
def estate(sandbox: ArmSandbox, clients: CloudClients) -> Estate:
    return Estate(sandbox, clients, uuid.uuid4().hex[:8])


__all__ = ["SECOND_SUBSCRIPTION", "Estate"]


def begin_raw(client: Any, method: str, path: str, body: Any = None, api_version: str = "2025-07-01") -> Any:
    """Start an LRO through the SDK client's own pipeline and ARM poller, for the operations the SDK blocks.

    azure-mgmt-dataprotection 2.2.0 refuses two operations at api-version 2025-07-01 before sending anything:
    ``backup_vaults.begin_create_or_update`` always forwards ``x_ms_deleted_vault_id=None`` to a helper whose
    version check rejects that keyword below 2025-09-01, and ``backup_instances.begin_resume_protection`` is
    marked as added in 2026-06-01 although the REST API has had it since 2023. Same pipeline (auth, TLS, retry),
    same ``ARMPolling`` as the generated code.
    """
    from azure.core.exceptions import HttpResponseError
    from azure.core.polling import LROPoller
    from azure.core.rest import HttpRequest
    from azure.mgmt.core.exceptions import ARMErrorFormat
    from azure.mgmt.core.polling.arm_polling import ARMPolling

    pipeline_client = client._client
    endpoint = {"endpoint": client._config.base_url}
    sep = "&" if "?" in path else "?"
    url = pipeline_client.format_url(f"{{endpoint}}{path}{sep}api-version={api_version}", **endpoint)
    request = HttpRequest(method, url, json=body)
    response = pipeline_client._pipeline.run(request)
    if response.http_response.status_code not in (200, 201, 202, 204):
        raise HttpResponseError(response=response.http_response, error_format=ARMErrorFormat)

    def output(pipeline_response: Any) -> Any:
        http = pipeline_response.http_response
        return http.json() if http.text() else None

    return LROPoller(pipeline_client, response, output, ARMPolling(0, path_format_arguments=endpoint))
