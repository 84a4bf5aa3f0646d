"""Fixtures: an in-process ARM sandbox driven by the app's real SDK clients."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from azure.mgmt.compute import ComputeManagementClient

from sandbox.arm import ArmSandbox, SandboxConfig
from sandbox.arm.config import DEFAULT_SUBSCRIPTION, SECOND_SUBSCRIPTION
from steward.cloud.clients import CloudClients

SUB = DEFAULT_SUBSCRIPTION
SUB2 = SECOND_SUBSCRIPTION
#: the framework and the generic providers only: the other providers are tested in their own folders
CORE_PROVIDERS = ("resources", "compute", "storage", "postgresql")
FAST = 10000.0  # virtual seconds per real second: a 90 s VM create takes 9 ms


def core_config(**overrides: object) -> SandboxConfig:
    values: dict[str, object] = {"scale": FAST, "providers": CORE_PROVIDERS, "page_size": 100}
    values.update(overrides)
    return SandboxConfig(**values)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def sb() -> Iterator[ArmSandbox]:
    sandbox = ArmSandbox(core_config()).start()
    yield sandbox
    sandbox.stop()


@pytest.fixture(scope="module")
def clients(sb: ArmSandbox) -> CloudClients:
    return CloudClients(sb.cloud_target())


@pytest.fixture(scope="module")
def compute(sb: ArmSandbox, clients: CloudClients) -> ComputeManagementClient:
    """azure-mgmt-compute against the sandbox, built the way CloudClients builds the app's clients."""
    return ComputeManagementClient(
        clients.credential,
        SUB,
        base_url=sb.endpoint,
        connection_verify=sb.ca_bundle,
        credential_scopes=[sb.endpoint + "/.default"],
    )


def vm_body(location: str = "westeurope", **tags: str) -> dict[str, Any]:
    return {
        "location": location,
        "tags": dict(tags),
        "properties": {
            "hardwareProfile": {"vmSize": "Standard_D2s_v5"},
            "storageProfile": {
                "imageReference": {"publisher": "Canonical", "offer": "ubuntu-24_04-lts", "sku": "server",
                                   "version": "latest"},
                "osDisk": {"createOption": "FromImage", "managedDisk": {"storageAccountType": "Premium_LRS"}},
            },
            "osProfile": {"computerName": "vm", "adminUsername": "azureuser", "adminPassword": "S3cret!pass"},
        },
    }


def make_group(clients: CloudClients, name: str, location: str = "westeurope", sub: str = SUB) -> str:
    return str(clients.resources(sub).resource_groups.create_or_update(name, {"location": location}).id)
