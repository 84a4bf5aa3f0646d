"""Microsoft.Resources / Compute / Storage / DBforPostgreSQL through the real SDK clients and pollers."""

from __future__ import annotations

import pytest
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.mgmt.compute import ComputeManagementClient

from sandbox.arm import ArmSandbox
from steward.cloud.clients import CloudClients

from .conftest import SUB, make_group, vm_body

STORAGE_API = "2024-01-01"
PG_API = "2024-08-01"


def test_vm_create_polls_azure_async_operation_and_makes_its_os_disk(
    sb: ArmSandbox, clients: CloudClients, compute: ComputeManagementClient
) -> None:
    make_group(clients, "rg-vm")
    vm = compute.virtual_machines.begin_create_or_update("rg-vm", "vm1", vm_body(owner="ops")).result()
    assert vm.properties is not None and vm.properties.provisioning_state == "Succeeded"
    assert vm.location == "westeurope" and vm.tags == {"owner": "ops"}
    assert vm.properties.os_profile is not None and vm.properties.os_profile.admin_password is None
    os_disk_id = vm.properties.storage_profile.os_disk.managed_disk.id
    disk = compute.disks.get("rg-vm", os_disk_id.rsplit("/", 1)[-1])
    assert disk.managed_by == vm.id
    assert disk.properties.disk_state == "Attached"
    assert [v.name for v in compute.virtual_machines.list("rg-vm")] == ["vm1"]
    assert "vm1" in [v.name for v in compute.virtual_machines.list_all()]


def test_vm_tags_patch_and_delete_leaves_its_disk_unattached(
    clients: CloudClients, compute: ComputeManagementClient
) -> None:
    make_group(clients, "rg-vm2")
    vm = compute.virtual_machines.begin_create_or_update("rg-vm2", "vm2", vm_body()).result()
    updated = compute.virtual_machines.begin_update("rg-vm2", "vm2", {"tags": {"backup": "daily"}}).result()
    assert updated.tags == {"backup": "daily"}
    compute.virtual_machines.begin_delete("rg-vm2", "vm2").result()
    with pytest.raises(ResourceNotFoundError):
        compute.virtual_machines.get("rg-vm2", "vm2")
    disk_name = vm.properties.storage_profile.os_disk.managed_disk.id.rsplit("/", 1)[-1]
    disk = compute.disks.get("rg-vm2", disk_name)
    assert disk.managed_by is None and disk.properties.disk_state == "Unattached"


def test_disk_lifecycle_with_both_lro_headers(clients: CloudClients, compute: ComputeManagementClient) -> None:
    make_group(clients, "rg-disk", "northeurope")
    body = {"location": "North Europe", "properties": {"creationData": {"createOption": "Empty"}, "diskSizeGB": 64}}
    disk = compute.disks.begin_create_or_update("rg-disk", "data1", body).result()
    assert disk.location == "northeurope"  # display names are normalised, as ARM does
    assert disk.properties.disk_size_gb == 64 and disk.properties.provisioning_state == "Succeeded"
    tagged = compute.disks.begin_update("rg-disk", "data1", {"tags": {"tier": "gold"}}).result()
    assert tagged.tags == {"tier": "gold"}
    compute.disks.begin_delete("rg-disk", "data1").result()
    assert [d.name for d in compute.disks.list_by_resource_group("rg-disk")] == []


def test_location_is_required_and_immutable(clients: CloudClients, compute: ComputeManagementClient) -> None:
    make_group(clients, "rg-loc")
    no_location = {"properties": {"creationData": {"createOption": "Empty"}, "diskSizeGB": 8}}
    with pytest.raises(HttpResponseError) as caught:
        compute.disks.begin_create_or_update("rg-loc", "d", no_location).result()
    assert caught.value.error is not None and caught.value.error.code == "LocationRequired"
    compute.disks.begin_create_or_update("rg-loc", "d", {**no_location, "location": "westeurope"}).result()
    with pytest.raises(HttpResponseError) as caught:
        compute.disks.begin_create_or_update("rg-loc", "d", {**no_location, "location": "eastus"}).result()
    assert caught.value.status_code == 409
    assert caught.value.error is not None and caught.value.error.code == "InvalidResourceLocation"


def test_storage_account_create_polls_location_and_gets_blob_service(clients: CloudClients) -> None:
    group = make_group(clients, "rg-st")
    rc = clients.resources(SUB).resources
    account_id = f"{group}/providers/Microsoft.Storage/storageAccounts/stsandbox001"
    body = {"location": "westeurope", "sku": {"name": "Standard_LRS"}, "kind": "StorageV2", "properties": {}}
    account = rc.begin_create_or_update_by_id(account_id, body, api_version=STORAGE_API).result()
    assert account.id == account_id
    assert account.properties["provisioningState"] == "Succeeded"
    assert account.properties["primaryEndpoints"]["blob"] == "https://stsandbox001.blob.core.windows.net/"
    service = rc.get_by_id(account_id + "/blobServices/default", api_version=STORAGE_API)
    assert service.properties["deleteRetentionPolicy"] == {"enabled": False}
    with pytest.raises(HttpResponseError) as caught:
        rc.begin_create_or_update_by_id(
            f"{group}/providers/Microsoft.Storage/storageAccounts/Bad-Name", body, api_version=STORAGE_API
        ).result()
    assert caught.value.error is not None and caught.value.error.code == "AccountNameInvalid"
    rc.begin_delete_by_id(account_id, api_version=STORAGE_API).result()
    assert not rc.check_existence_by_id(account_id, api_version=STORAGE_API)


def test_postgresql_flexible_server_through_generic_resources(clients: CloudClients) -> None:
    group = make_group(clients, "rg-pg")
    rc = clients.resources(SUB).resources
    server_id = f"{group}/providers/Microsoft.DBforPostgreSQL/flexibleServers/pg1"
    body = {
        "location": "westeurope",
        "sku": {"name": "Standard_D2ds_v4", "tier": "GeneralPurpose"},
        "properties": {"administratorLogin": "pgadmin", "administratorLoginPassword": "x", "version": "16"},
    }
    server = rc.begin_create_or_update_by_id(server_id, body, api_version=PG_API).result()
    assert server.properties["state"] == "Ready"
    assert "administratorLoginPassword" not in server.properties
    tagged = rc.begin_update_by_id(server_id, {"tags": {"env": "prod"}}, api_version=PG_API).result()
    assert tagged.tags == {"env": "prod"}
    listed = list(rc.list(filter="resourceType eq 'Microsoft.DBforPostgreSQL/flexibleServers'"))
    assert [r.id for r in listed] == [server_id]
    rc.begin_delete_by_id(server_id, api_version=PG_API).result()
    assert not list(rc.list(filter="resourceType eq 'Microsoft.DBforPostgreSQL/flexibleServers'"))


def test_get_by_id_and_generic_lists_see_compute_resources(
    clients: CloudClients, compute: ComputeManagementClient
) -> None:
    group = make_group(clients, "rg-generic")
    vm = compute.virtual_machines.begin_create_or_update("rg-generic", "vmg", vm_body()).result()
    rc = clients.resources(SUB).resources
    generic = rc.get_by_id(vm.id.upper().replace("/VIRTUALMACHINES/", "/virtualMachines/"), api_version="2026-04-01")
    assert generic.id == vm.id  # the casing it was created with
    in_group = {r.type for r in rc.list_by_resource_group("rg-generic")}
    assert in_group == {"Microsoft.Compute/virtualMachines", "Microsoft.Compute/disks"}
    vms_only = "resourceType eq 'Microsoft.Compute/virtualMachines'"
    only_vms = list(rc.list_by_resource_group("rg-generic", filter=vms_only))
    assert [r.name for r in only_vms] == ["vmg"]
    with pytest.raises(HttpResponseError) as caught:
        list(rc.list_by_resource_group("rg-generic", filter="resourceType ne 'x'"))
    assert caught.value.status_code == 400
    assert group.endswith("rg-generic")


def test_deleting_a_group_deletes_what_it_contains_as_an_lro(
    sb: ArmSandbox, clients: CloudClients, compute: ComputeManagementClient
) -> None:
    make_group(clients, "rg-doomed")
    vm = compute.virtual_machines.begin_create_or_update("rg-doomed", "vmd", vm_body()).result()
    clients.resources(SUB).resource_groups.begin_delete("rg-doomed").result()
    assert not clients.resources(SUB).resource_groups.check_existence("rg-doomed")
    assert sb.store.get(vm.id) is None
    deletes = [e for e in sb.events.raised if e["eventType"] == "Microsoft.Resources.ResourceDeleteSuccess"]
    assert vm.id in [e["subject"] for e in deletes]
