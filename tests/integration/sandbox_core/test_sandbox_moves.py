"""moveResources / validateMoveResources through ResourceManagementClient and its Location poller."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from azure.core.exceptions import HttpResponseError
from azure.mgmt.compute import ComputeManagementClient

from sandbox.arm import ArmError, ArmSandbox, MovePlan, SubscriptionSpec
from sandbox.arm.config import DEFAULT_TENANT, OTHER_TENANT
from steward.cloud.clients import CloudClients

from .conftest import SUB, SUB2, core_config, make_group, vm_body

SUB3 = "00000000-0000-4000-8000-000000000003"
MOVE_ACTION = "Microsoft.Resources/subscriptions/resourceGroups/moveResources/action"


@pytest.fixture(scope="module")
def sb() -> Iterator[ArmSandbox]:
    subs = (
        SubscriptionSpec(SUB, DEFAULT_TENANT, "one"),
        SubscriptionSpec(SUB2, DEFAULT_TENANT, "two"),
        SubscriptionSpec(SUB3, DEFAULT_TENANT, "three, later in another tenant"),
    )
    sandbox = ArmSandbox(core_config(subscriptions=subs)).start()
    yield sandbox
    sandbox.stop()


def move_info(ids: list[str], target: str) -> dict[str, object]:
    return {"resources": ids, "targetResourceGroup": target}


def test_move_rewrites_ids_moves_children_and_raises_the_action_event(
    sb: ArmSandbox, clients: CloudClients, compute: ComputeManagementClient
) -> None:
    make_group(clients, "mv-src")
    target = make_group(clients, "mv-dst", sub=SUB2)
    vm = compute.virtual_machines.begin_create_or_update("mv-src", "vm1", vm_body()).result()
    disk_id = vm.properties.storage_profile.os_disk.managed_disk.id
    account = f"/subscriptions/{SUB}/resourceGroups/mv-src/providers/Microsoft.Storage/storageAccounts/stmove1"
    clients.resources(SUB).resources.begin_create_or_update_by_id(
        account, {"location": "westeurope", "sku": {"name": "Standard_LRS"}, "kind": "StorageV2"},
        api_version="2024-01-01",
    ).result()

    rc = clients.resources(SUB).resources
    rc.begin_move_resources("mv-src", move_info([vm.id, disk_id, account], target)).result()

    assert sb.store.get(vm.id) is None
    moved_vm = f"{target}/providers/Microsoft.Compute/virtualMachines/vm1"
    assert sb.store.get(moved_vm)["id"] == moved_vm
    assert sb.store.get(f"{target}/providers/Microsoft.Storage/storageAccounts/stmove1/blobServices/default")
    in_target = {r.id for r in clients.resources(SUB2).resources.list_by_resource_group("mv-dst")}
    assert moved_vm in in_target and len(in_target) == 3
    assert list(rc.list_by_resource_group("mv-src")) == []
    actions = [e for e in sb.events.raised if e["data"]["operationName"] == MOVE_ACTION]
    assert len(actions) == 1
    assert actions[0]["eventType"] == "Microsoft.Resources.ResourceActionSuccess"
    assert actions[0]["subject"] == f"/subscriptions/{SUB}/resourcegroups/mv-src"
    assert actions[0]["data"]["httpRequest"]["method"] == "POST"


def test_request_shape_errors_come_back_at_once(clients: CloudClients, compute: ComputeManagementClient) -> None:
    make_group(clients, "shape-src")
    target = make_group(clients, "shape-dst")
    rc = clients.resources(SUB).resources
    disk = compute.disks.begin_create_or_update(
        "shape-src", "d1", {"location": "westeurope", "properties": {"creationData": {"createOption": "Empty"},
                                                                      "diskSizeGB": 4}}
    ).result()
    too_many = [f"/subscriptions/{SUB}/resourceGroups/shape-src/providers/Microsoft.Compute/disks/d{i}"
                for i in range(801)]
    cases = {
        "InvalidResourceMoveRequest": move_info(too_many, target),
        "ResourceNotTopLevel": move_info([disk.id + "/extensions/x"], target),
        "InvalidTargetResourceGroup": move_info([disk.id], f"/subscriptions/{SUB}/resourceGroups/shape-src"),
    }
    for code, body in cases.items():
        with pytest.raises(HttpResponseError) as caught:
            rc.begin_validate_move_resources("shape-src", body).result()
        assert (caught.value.status_code, caught.value.error.code) == (400, code), code
    exactly_800 = too_many[:800]
    with pytest.raises(HttpResponseError) as caught:  # accepted, then fails: 799 of them do not exist
        rc.begin_validate_move_resources("shape-src", move_info(exactly_800, target)).result()
    assert (caught.value.status_code, caught.value.error.code) == (409, "ResourceNotFound")


def test_validate_succeeds_without_moving(
    sb: ArmSandbox, clients: CloudClients, compute: ComputeManagementClient
) -> None:
    make_group(clients, "val-src")
    target = make_group(clients, "val-dst")
    vm = compute.virtual_machines.begin_create_or_update("val-src", "vmv", vm_body()).result()
    disk_id = vm.properties.storage_profile.os_disk.managed_disk.id
    rc = clients.resources(SUB).resources
    rc.begin_validate_move_resources("val-src", move_info([vm.id, disk_id], target)).result()
    assert sb.store.get(vm.id) is not None


def test_a_provider_guard_vetoes_validate_and_move(
    sb: ArmSandbox, clients: CloudClients, compute: ComputeManagementClient
) -> None:
    def pinned(plan: MovePlan) -> None:
        for resource in plan.resources:
            if (resource.get("tags") or {}).get("pinned") == "yes":
                raise ArmError(400, "PinnedResourceCannotMove", f"{resource['name']} is pinned")

    sb.ctx.add_move_guard(pinned)
    make_group(clients, "veto-src")
    target = make_group(clients, "veto-dst")
    body = {"location": "westeurope", "tags": {"pinned": "yes"},
            "properties": {"creationData": {"createOption": "Empty"}, "diskSizeGB": 4}}
    disk = compute.disks.begin_create_or_update("veto-src", "pinned", body).result()
    rc = clients.resources(SUB).resources
    with pytest.raises(HttpResponseError) as caught:
        rc.begin_validate_move_resources("veto-src", move_info([disk.id], target)).result()
    assert (caught.value.status_code, caught.value.error.code) == (409, "PinnedResourceCannotMove")
    with pytest.raises(HttpResponseError) as caught:
        rc.begin_move_resources("veto-src", move_info([disk.id], target)).result()
    assert caught.value.error.code == "PinnedResourceCannotMove"
    assert sb.store.get(disk.id) is not None
    failures = [e for e in sb.events.raised
                if e["data"]["operationName"] == MOVE_ACTION and e["eventType"].endswith("ActionFailure")]
    assert failures and failures[-1]["data"]["status"] == "Failed"
    # the groups are unlocked again
    compute.disks.begin_update("veto-src", "pinned", {"tags": {"pinned": "no"}}).result()
    rc.begin_move_resources("veto-src", move_info([disk.id], target)).result()
    assert sb.store.get(f"{target}/providers/Microsoft.Compute/disks/pinned") is not None


def test_moves_stay_within_one_tenant(sb: ArmSandbox, clients: CloudClients, compute: ComputeManagementClient) -> None:
    make_group(clients, "tenant-src")
    foreign = make_group(clients, "tenant-dst", sub=SUB3)
    sb.move_subscription(SUB3, OTHER_TENANT)
    body = {"location": "westeurope", "properties": {"creationData": {"createOption": "Empty"}, "diskSizeGB": 4}}
    disk = compute.disks.begin_create_or_update("tenant-src", "d", body).result()
    with pytest.raises(HttpResponseError) as caught:
        clients.resources(SUB).resources.begin_move_resources("tenant-src", move_info([disk.id], foreign)).result()
    assert caught.value.error.code == "CrossTenantMoveNotSupported"
    assert sb.store.get(disk.id) is not None


def test_both_groups_are_locked_while_a_move_runs() -> None:
    slow = ArmSandbox(core_config(scale=1.0)).start()
    try:
        slow_clients = CloudClients(slow.cloud_target())
        make_group(slow_clients, "lock-src")
        target = make_group(slow_clients, "lock-dst")
        group = slow_clients.resources(SUB).resource_groups
        tags = {"location": "westeurope", "tags": {"a": "b"}}
        account = f"/subscriptions/{SUB}/resourceGroups/lock-src/providers/Microsoft.Storage/storageAccounts/stlock"
        rc = slow_clients.resources(SUB).resources
        rc.begin_create_or_update_by_id(
            account, {"location": "westeurope", "sku": {"name": "Standard_LRS"}, "kind": "StorageV2"},
            api_version="2024-01-01", polling=False,
        )
        slow.advance(60)
        rc.begin_move_resources("lock-src", move_info([account], target), polling=False)
        for name in ("lock-src", "lock-dst"):
            with pytest.raises(HttpResponseError) as caught:
                group.create_or_update(name, tags)
            assert (caught.value.status_code, caught.value.error.code) == (409, "ScopeLocked")
        assert group.get("lock-src").name == "lock-src"  # reads still work
        slow.advance(3600)
        group.create_or_update("lock-src", tags)
        assert rc.get_by_id(target + "/providers/Microsoft.Storage/storageAccounts/stlock",
                            api_version="2024-01-01").name == "stlock"
    finally:
        slow.stop()


def test_two_moves_under_one_caller_chosen_correlation_id_are_two_events_and_two_instances(
    sb: ArmSandbox, clients: CloudClients
) -> None:
    """ARM keeps the caller's x-ms-correlation-request-id (ARM RPC common-api-details.md): two moves out of one
    group sent under one chosen id raise two events carrying it, each with its own event id, and the classifier
    keys each move on its event id (steward.domain.events), so the second is not collapsed onto the first."""
    from steward.domain.events import ResourcesMoved, classify

    make_group(clients, "mv-corr")
    target = make_group(clients, "mv-corr-dst")
    accounts = []
    for name in ("stcorr1", "stcorr2"):
        account = f"/subscriptions/{SUB}/resourceGroups/mv-corr/providers/Microsoft.Storage/storageAccounts/{name}"
        clients.resources(SUB).resources.begin_create_or_update_by_id(
            account, {"location": "westeurope", "sku": {"name": "Standard_LRS"}, "kind": "StorageV2"},
            api_version="2024-01-01",
        ).result()
        accounts.append(account)
    chosen = "c0ffee00-0000-4000-8000-00000000beef"
    rc = clients.resources(SUB).resources
    for account in accounts:
        rc.begin_move_resources("mv-corr", move_info([account], target),
                                headers={"x-ms-correlation-request-id": chosen}).result()

    moves = [e for e in sb.events.raised
             if e["data"]["operationName"] == MOVE_ACTION and e["subject"].lower().endswith("/mv-corr")]
    assert len(moves) == 2
    assert {e["data"]["correlationId"] for e in moves} == {chosen}
    assert moves[0]["id"] != moves[1]["id"]
    intents = [classify(e) for e in moves]
    assert all(isinstance(i, ResourcesMoved) for i in intents)
    assert intents[0].instance_id != intents[1].instance_id
