"""The sandbox as a generic ARM client sees it: raw HTTP, api-version discovery through provider metadata,
calls by resource id with the paths generic SDK calls send. Nothing here uses the app's pinned clients for
the behaviour under test (``compute`` only builds the estate)."""

from __future__ import annotations

from typing import Any

import pytest
from azure.mgmt.compute import ComputeManagementClient
from azure.mgmt.resource.resources import ResourceManagementClient

from sandbox.arm import ArmSandbox
from steward.cloud.clients import CloudClients

from .conftest import SUB, make_group, vm_body
from .test_sandbox_serving import raw


@pytest.fixture(scope="module")
def vm_id(clients: CloudClients, compute: ComputeManagementClient) -> str:
    make_group(clients, "rg-generic")
    vm = compute.virtual_machines.begin_create_or_update("rg-generic", "vm-generic", vm_body()).result()
    return str(vm.id)


def _newest_stable(provider: dict[str, Any], resource_type: str) -> str:
    """What a generic client does (azure-cli ``_resolve_api_version``): newest non-preview version."""
    [entry] = [t for t in provider["resourceTypes"] if t["resourceType"].lower() == resource_type.lower()]
    return next(v for v in entry["apiVersions"] if "preview" not in v)


def test_provider_metadata_names_the_types_and_versions_served(sb: ArmSandbox) -> None:
    status, _, provider = raw(sb, "GET", f"/subscriptions/{SUB}/providers/Microsoft.Compute?api-version=2025-04-01")
    assert status == 200
    assert provider["id"] == f"/subscriptions/{SUB}/providers/Microsoft.Compute"
    assert provider["namespace"] == "Microsoft.Compute" and provider["registrationState"] == "Registered"
    types = {t["resourceType"]: t["apiVersions"] for t in provider["resourceTypes"]}
    assert "virtualMachines" in types and "disks" in types
    assert types["virtualMachines"] == sorted(types["virtualMachines"], reverse=True)  # newest first
    assert "2025-04-01" in types["virtualMachines"] and "2026-03-02" in types["disks"]

    status, _, listed = raw(sb, "GET", f"/subscriptions/{SUB}/providers?api-version=2025-04-01")
    assert status == 200
    namespaces = {p["namespace"] for p in listed["value"]}
    assert {"Microsoft.Compute", "Microsoft.Storage", "Microsoft.Resources"} <= namespaces
    assert "Sandbox" not in namespaces  # the sandbox's admin surface is no Azure provider

    status, _, body = raw(sb, "GET", f"/subscriptions/{SUB}/providers/Microsoft.Nothing?api-version=2025-04-01")
    assert (status, body["error"]["code"]) == (404, "InvalidResourceNamespace")
    status, _, registered = raw(
        sb, "POST", f"/subscriptions/{SUB}/providers/Microsoft.Compute/register?api-version=2025-04-01"
    )
    assert status == 200 and registered["registrationState"] == "Registered"


def test_a_version_discovered_from_metadata_reads_the_resource_by_id(sb: ArmSandbox, vm_id: str) -> None:
    _, _, provider = raw(sb, "GET", f"/subscriptions/{SUB}/providers/Microsoft.Compute?api-version=2025-04-01")
    version = _newest_stable(provider, "virtualMachines")
    status, _, vm = raw(sb, "GET", f"{vm_id}?api-version={version}")
    assert status == 200 and vm["id"].lower() == vm_id.lower()


def test_a_provider_type_answers_an_unknown_version_with_no_registered_provider_found(
    sb: ArmSandbox, vm_id: str
) -> None:
    status, _, body = raw(sb, "GET", f"{vm_id}?api-version=2015-06-15")
    assert (status, body["error"]["code"]) == (400, "NoRegisteredProviderFound")
    message = body["error"]["message"]
    assert message.startswith(
        "No registered resource provider found for location 'westeurope' and API version '2015-06-15' "
        "for type 'virtualMachines'. The supported api-versions are '2023-03-01, "
    )
    # groups and subscriptions keep Microsoft.Resources' own code (test_sandbox_serving pins it)
    status, _, body = raw(sb, "GET", f"/subscriptions/{SUB}/resourcegroups/rg-generic?api-version=2015-06-15")
    assert (status, body["error"]["code"]) == (400, "InvalidApiVersionParameter")


def test_an_empty_parent_segment_and_any_casing_reach_the_same_resource(sb: ArmSandbox, vm_id: str) -> None:
    empty_parent = vm_id.replace("/providers/Microsoft.Compute/", "/providers/Microsoft.Compute//")
    assert "//virtualMachines" in empty_parent
    status, _, vm = raw(sb, "GET", f"{empty_parent}?api-version=2025-04-01")
    assert status == 200 and vm["name"] == "vm-generic"
    shouted = vm_id.upper().replace("VM-GENERIC", "vm-generic")
    status, _, vm = raw(sb, "GET", f"{shouted}?api-version=2025-04-01")
    assert status == 200 and vm["name"] == "vm-generic"


def test_the_generic_sdk_call_with_an_empty_parent_path_works(
    sb: ArmSandbox, clients: CloudClients, vm_id: str
) -> None:
    generic = ResourceManagementClient(
        clients.credential,
        SUB,
        base_url=sb.endpoint,
        connection_verify=sb.ca_bundle,
        credential_scopes=[sb.endpoint + "/.default"],
    )
    resource = generic.resources.get(
        "rg-generic", "Microsoft.Compute", "", "virtualMachines", "vm-generic", api_version="2025-04-01"
    )
    assert resource.id is not None and resource.id.lower() == vm_id.lower()
    by_id = generic.resources.get_by_id(vm_id, api_version="2025-04-01")
    assert by_id.name == "vm-generic"
