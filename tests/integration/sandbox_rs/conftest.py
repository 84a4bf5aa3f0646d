"""A running ARM sandbox and the app's real SDK clients for the Recovery Services tests."""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError

from sandbox.arm.config import DEFAULT_SUBSCRIPTION, SandboxConfig
from sandbox.arm.providers.recoveryservices import RecoveryServicesProvider, recovery_services
from sandbox.arm.providers.recoveryservices_model import Timing
from sandbox.arm.server import ArmSandbox
from steward.cloud.clients import CloudClients

#: one real second = one Azure hour: LROs of 10-60 s end in milliseconds; 14 days pass with advance()
SCALE = 3600.0
HOUR = 3600.0
DAY = 24 * HOUR
#: the first backup runs 6 Azure hours after enable (6 real seconds): IRPending is observable, advance() skips it
TIMING = Timing(first_backup=6 * HOUR)

NEEDED = ("resources", "recoveryservices")
OPTIONAL = ("compute", "storage", "generic", "insights")
VM_TYPE = "Microsoft.Compute/virtualMachines"
STORAGE_TYPE = "Microsoft.Storage/storageAccounts"


def provider_names() -> tuple[str, ...]:
    import pkgutil

    import sandbox.arm.providers as package

    present = {info.name for info in pkgutil.iter_modules(package.__path__)}
    return NEEDED + tuple(name for name in OPTIONAL if name in present)


@pytest.fixture(scope="module")
def sandbox() -> Iterator[ArmSandbox]:
    sb = ArmSandbox(SandboxConfig(scale=SCALE, page_size=2, providers=provider_names())).start()
    recovery_services(sb).model.timing = Timing(**TIMING.__dict__)
    try:
        yield sb
    finally:
        sb.stop()


@pytest.fixture(scope="module")
def clients(sandbox: ArmSandbox) -> CloudClients:
    return CloudClients(sandbox.cloud_target())


def error_code(exc: HttpResponseError) -> str:
    """The ARM error code of an SDK error (``exc.error.code``, falling back to the body)."""
    if exc.error is not None and exc.error.code:
        return str(exc.error.code)
    body = json.loads(exc.response.text())
    return str(body["error"]["code"])


@dataclass
class Estate:
    """Resources of one test, with names unique per test so tests can share one sandbox."""

    sandbox: ArmSandbox
    clients: CloudClients
    tag: str
    subscription: str = DEFAULT_SUBSCRIPTION

    # -- clients ---------------------------------------------------------------------------------
    def rs(self, subscription: str | None = None) -> Any:
        return self.clients.recovery_services(subscription or self.subscription)

    def rsb(self, subscription: str | None = None) -> Any:
        return self.clients.recovery_services_backup(subscription or self.subscription)

    @property
    def provider(self) -> RecoveryServicesProvider:
        return recovery_services(self.sandbox)

    def storage_account_contributor(self, scope: str) -> None:
        """The caller (the sandbox's default principal) holds Storage Account Contributor at ``scope``: what
        unregistering a storage account from a vault needs (backup-rbac-rs-vault.md)."""
        from sandbox.arm.providers.authorization_model import grant_built_in_role

        grant_built_in_role(self.sandbox.store, self.sandbox.config.default_principal_id,
                            "Storage Account Contributor", scope, self.sandbox.clock.now())

    # -- resources ---------------------------------------------------------------------------------
    def group(self, name: str = "rg", location: str = "westeurope", subscription: str | None = None) -> str:
        rg = f"{name}-{self.tag}"
        self.clients.resources(subscription or self.subscription).resource_groups.create_or_update(
            rg, {"location": location}
        )
        return rg

    def resource(
        self, rg: str, full_type: str, name: str, location: str = "westeurope", subscription: str | None = None
    ) -> str:
        """A VM / storage account record as the Compute and Storage providers keep them (seeded directly)."""
        sub = subscription or self.subscription
        rid = f"/subscriptions/{sub}/resourceGroups/{rg}/providers/{full_type}/{name}"
        self.sandbox.store.put(
            {
                "id": rid,
                "name": name,
                "type": full_type,
                "location": location,
                "tags": {},
                "properties": {"provisioningState": "Succeeded"},
            }
        )
        return rid

    def vault_id(self, rg: str, name: str = "rsv", subscription: str | None = None) -> str:
        sub = subscription or self.subscription
        return f"/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.RecoveryServices/vaults/{name}"

    def vm(self, rg: str, name: str = "vm1", location: str = "westeurope", subscription: str | None = None) -> str:
        return self.resource(rg, VM_TYPE, name, location, subscription)

    def vault(
        self,
        rg: str,
        name: str = "rsv",
        location: str = "westeurope",
        *,
        soft_delete: str | None = None,
        days: int | None = None,
        immutability: str | None = None,
        subscription: str | None = None,
    ) -> Any:
        security: dict[str, Any] = {}
        soft: dict[str, Any] = {}
        if soft_delete:
            soft["softDeleteState"] = soft_delete
        if days:
            soft["softDeleteRetentionPeriodInDays"] = days
        if soft:
            security["softDeleteSettings"] = soft
        if immutability:
            security["immutabilitySettings"] = {"state": immutability}
        body: dict[str, Any] = {
            "location": location,
            "sku": {"name": "Standard"},
            "identity": {"type": "SystemAssigned"},
            "properties": {"publicNetworkAccess": "Enabled", "securitySettings": security},
        }
        return self.rs(subscription).vaults.begin_create_or_update(rg, name, body).result()

    # -- backup ------------------------------------------------------------------------------------
    def protect_vm(
        self, rg: str, vault: str, vm_id: str, *, subscription: str | None = None, policy: str = "DefaultPolicy"
    ) -> Any:
        vm_rg, vm_name = vm_id.split("/")[4], vm_id.rsplit("/", 1)[-1]
        container, item = vm_names(vm_rg, vm_name)
        sub = subscription or self.subscription
        policy_id = (
            f"/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.RecoveryServices/vaults/"
            f"{vault}/backupPolicies/{policy}"
        )
        return (
            self.rsb(subscription)
            .protected_items.begin_create_or_update(
                vault,
                rg,
                "Azure",
                container,
                item,
                {"properties": {"protectedItemType": VM_TYPE, "sourceResourceId": vm_id, "policyId": policy_id}},
            )
            .result()
        )

    def delete_vm_backup(self, rg: str, vault: str, vm_id: str) -> dict[str, str]:
        """Stop protection and delete data; returns the 202's headers."""
        vm_rg, vm_name = vm_id.split("/")[4], vm_id.rsplit("/", 1)[-1]
        container, item = vm_names(vm_rg, vm_name)
        return self.rsb().protected_items.delete(
            vault, rg, "Azure", container, item, cls=lambda p, d, h: dict(p.http_response.headers)
        )

    def vm_item(self, rg: str, vault: str, vm_id: str) -> Any:
        vm_rg, vm_name = vm_id.split("/")[4], vm_id.rsplit("/", 1)[-1]
        container, item = vm_names(vm_rg, vm_name)
        return self.rsb().protected_items.get(vault, rg, "Azure", container, item)

    def advance(self, seconds: float) -> None:
        self.sandbox.advance(seconds)

    @contextmanager
    def frozen(self) -> Iterator[None]:
        """Stop Azure time from flowing on its own (only ``advance`` moves it), to look at an operation while it
        runs without racing the clock. No SDK poller may wait inside: nothing would end."""
        clock = self.sandbox.clock
        clock.set_scale(1e-9)
        try:
            yield
        finally:
            clock.set_scale(SCALE)

    # -- raw ARM calls (Site Recovery: its SDK is not a dependency of the app) --------------------------
    def call(self, method: str, path: str, body: Any = None, api_version: str = "2025-08-01") -> tuple[int, Any]:
        url = f"{self.sandbox.endpoint}{path}{'&' if '?' in path else '?'}api-version={api_version}"
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(
            url,
            data=data,
            method=method,
            headers={"Authorization": f"Bearer {self.sandbox.mint_token()}", "Content-Type": "application/json"},
        )
        context = ssl.create_default_context(cafile=self.sandbox.ca_bundle)
        try:
            with urllib.request.urlopen(request, context=context, timeout=10) as response:
                raw = response.read()
                return response.status, json.loads(raw) if raw else None
        except urllib.error.HTTPError as exc:
            raw = exc.read()
            return exc.code, json.loads(raw) if raw else None


def vm_names(resource_group: str, vm: str) -> tuple[str, str]:
    core = f"iaasvmcontainerv2;{resource_group};{vm}"
    return f"IaasVMContainer;{core}", f"VM;{core}"


@pytest.fixture
def estate(sandbox: ArmSandbox, clients: CloudClients) -> Estate:
    return Estate(sandbox, clients, uuid.uuid4().hex[:8])
