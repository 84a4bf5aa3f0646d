"""Incarnations end to end: a resource deleted and re-created under the same id, a delete event that arrives
after the re-create, and one event delivered thousands of times. The sandbox raises the events (or the test
hands a captured one to the app's Event Grid trigger again); state is read through the SDK, never the app."""

from __future__ import annotations

from typing import Any

import pytest

from steward.cloud.protection import BackupVaultProtection, RecoveryServicesProtection
from steward.domain import events
from steward.domain.ids import ResourceId
from tests.e2e.conftest import Harness

WEU = "westeurope"
TRIGGER = "on_subscription_event"


def _events_for(h: Harness, resource_id: str, operation: str) -> list[dict[str, Any]]:
    """The system-topic events the sandbox raised for ``resource_id`` and ``operation`` (oldest first)."""
    return [
        e for e in h.sandbox.events.raised
        if str(e["data"].get("resourceUri", "")).lower() == resource_id.lower()
        and str(e["data"].get("operationName", "")).lower() == operation.lower()
    ]


def _instance_for(h: Harness, vault_id: str, resource_id: str) -> dict[str, Any]:
    found = [
        i for i in BackupVaultProtection(h.clients).instances(vault_id)
        if ResourceId.parse(i["properties"]["dataSourceInfo"]["resourceID"]) == ResourceId.parse(resource_id)
    ]
    assert len(found) == 1, found
    return found[0]


def _statuses(h: Harness, resource_id: str) -> list[str]:
    return [o["status"] for o in h.outcomes_for(resource_id)]


def test_a_vm_recreated_under_the_same_name_has_its_stopped_protection_resumed(harness: Harness) -> None:
    h = harness
    est = h.estate()
    est.resource_group("rg-app", WEU)
    rsv = est.recovery_services_vault("rg-app", "rsv-weu", WEU)
    vm = est.vm("rg-app", "vm-phoenix", WEU)
    h.wait_outcome(vm, "Protected")
    h.settle()
    est.delete(vm)
    h.wait_outcome(vm, "Retained")  # the deleted VM's item: stopped, recovery points kept
    h.settle()
    rs = RecoveryServicesProtection(h.clients)
    assert rs.vm_item(rsv, vm)["properties"]["protectionState"] == "ProtectionStopped"  # type: ignore[index]

    est.vm("rg-app", "vm-phoenix", WEU)  # re-created: backupStatus still names the vault (the stopped item)
    outcome = h.wait_outcome(vm, "Resumed")
    h.settle()
    item = rs.vm_item(rsv, vm)
    assert item is not None and item["properties"]["protectionState"] in {"IRPending", "Protected"}
    assert item["properties"]["policyName"] == "DefaultPolicy"
    assert outcome["vaultId"].lower() == rsv.lower()
    assert "AlreadyProtected" not in _statuses(h, vm), "a stopped item is not protection"


def test_a_soft_deleted_item_of_a_recreated_vm_is_left_to_a_person(harness: Harness) -> None:
    h = harness
    est = h.estate()
    est.resource_group("rg-app", WEU)
    rsv = est.recovery_services_vault("rg-app", "rsv-weu", WEU)
    vm = est.vm("rg-app", "vm-ghost", WEU)
    h.wait_outcome(vm, "Protected")
    h.settle()
    rs = RecoveryServicesProtection(h.clients)
    vault = ResourceId.parse(rsv)
    container, item_name = rs.vm_item_names(vm)
    with h.sandbox.events.unsubscribed():
        est.delete(vm)
        # someone stopped protection and deleted the backup data: the item is soft-deleted (14 days)
        h.clients.recovery_services_backup(vault.subscription_id).protected_items.delete(
            vault_name=vault.name, resource_group_name=vault.resource_group, fabric_name="Azure",
            container_name=container, protected_item_name=item_name)
        h.stack.advance(600)
    assert rs.vm_item(rsv, vm)["properties"]["isScheduledForDeferredDelete"]  # type: ignore[index]
    puts_before = h.sandbox.counters.get("write")

    est.vm("rg-app", "vm-ghost", WEU)
    outcome = h.wait_outcome(vm, "LeftAsIs")
    h.settle()
    assert "soft-deleted" in outcome["reason"] and "person" in outcome["reason"]
    assert rs.vm_item(rsv, vm)["properties"]["isScheduledForDeferredDelete"]  # type: ignore[index]
    assert h.sandbox.counters.get("write") - puts_before <= 2  # the VM's own PUT (and its OS disk), nothing else


def test_a_delete_event_delivered_after_the_recreate_leaves_the_live_vm_protected(harness: Harness) -> None:
    h = harness
    est = h.estate()
    est.resource_group("rg-app", WEU)
    rsv = est.recovery_services_vault("rg-app", "rsv-weu", WEU)
    vm = est.vm("rg-app", "vm-late", WEU)
    h.wait_outcome(vm, "Protected")
    h.settle()
    with h.sandbox.events.unsubscribed():  # the delete event is held back (Event Grid delivers unordered)
        est.delete(vm)
        est.vm("rg-app", "vm-late", WEU)
    late_delete = _events_for(h, vm, "Microsoft.Compute/virtualMachines/delete")[-1]
    rs = RecoveryServicesProtection(h.clients)
    assert rs.vm_item(rsv, vm)["properties"]["protectionState"] in {"IRPending", "Protected"}  # type: ignore[index]

    h.stack.host.deliver_events(TRIGGER, [late_delete])  # type: ignore[union-attr]
    outcome = h.wait_outcome(vm, "LeftAsIs")
    h.settle()
    assert "exists" in outcome["reason"]
    assert rs.vm_item(rsv, vm)["properties"]["protectionState"] in {"IRPending", "Protected"}  # type: ignore[index]
    assert "Retained" not in _statuses(h, vm)


def test_a_delete_event_for_a_vm_that_still_exists_stops_nothing(harness: Harness) -> None:
    h = harness
    est = h.estate()
    est.resource_group("rg-app", WEU)
    rsv = est.recovery_services_vault("rg-app", "rsv-weu", WEU)
    vm = est.vm("rg-app", "vm-alive", WEU)
    h.wait_outcome(vm, "Protected")
    h.settle()
    write = _events_for(h, vm, "Microsoft.Compute/virtualMachines/write")[-1]
    # a delete event whose delete Azure has not carried out (never, or not yet): ARM still answers the VM
    delete = {**write, "id": write["id"] + "-delete", "eventType": "Microsoft.Resources.ResourceDeleteSuccess",
              "data": {**write["data"], "operationName": "Microsoft.Compute/virtualMachines/delete"}}

    h.stack.host.deliver_events(TRIGGER, [delete])  # type: ignore[union-attr]
    outcome = h.wait_outcome(vm, "LeftAsIs", timeout=60)  # after looking again on durable timers
    h.settle()
    assert "still exists" in outcome["reason"]
    rs = RecoveryServicesProtection(h.clients)
    assert rs.vm_item(rsv, vm)["properties"]["protectionState"] in {"IRPending", "Protected"}  # type: ignore[index]


def test_a_late_delete_event_of_a_recreated_disk_leaves_its_backup_instance_alone(harness: Harness) -> None:
    h = harness
    est = h.estate()
    est.resource_group("rg-app", WEU)
    bv = est.backup_vault("rg-app", "bv-weu", WEU)
    disk = est.disk("rg-app", "disk-late", WEU)
    h.wait_outcome(disk, "Protected")
    h.settle()
    with h.sandbox.events.unsubscribed():
        est.delete(disk)
        est.disk("rg-app", "disk-late", WEU)
    late_delete = _events_for(h, disk, "Microsoft.Compute/disks/delete")[-1]

    h.stack.host.deliver_events(TRIGGER, [late_delete])  # type: ignore[union-attr]
    outcome = h.wait_outcome(disk, "LeftAsIs")
    h.settle()
    assert "exists" in outcome["reason"]
    status = _instance_for(h, bv, disk)["properties"]["protectionStatus"]["status"]
    assert status == "ProtectionConfigured", status
    assert "Retained" not in _statuses(h, disk)


@pytest.mark.slow
def test_five_thousand_copies_of_one_event_protect_once(harness: Harness) -> None:
    h = harness
    est = h.estate()
    est.resource_group("rg-app", WEU)
    est.recovery_services_vault("rg-app", "rsv-weu", WEU)
    vm = est.vm("rg-app", "vm-echo", WEU)
    h.wait_outcome(vm, "Protected")
    h.settle()
    write = _events_for(h, vm, "Microsoft.Compute/virtualMachines/write")[0]
    runner = h.stack.runner
    assert runner is not None
    instance_id = events.classify(write).instance_id  # type: ignore[union-attr]
    run_before = runner.status(instance_id)
    writes_before = h.sandbox.counters.get("write")  # (the audit timer may read meanwhile; it never writes)
    outcomes_before = len(h.outcomes_for(vm))

    copies, batch = 5_000, 100
    for _ in range(copies // batch):  # Event Grid redelivers in batches; some arrive after the first run ended
        h.stack.host.deliver_events(TRIGGER, [write] * batch)  # type: ignore[union-attr]
        h.settle()
    assert len(h.outcomes_for(vm)) == outcomes_before, "an event already handled must not start work again"
    assert h.sandbox.counters.get("write") == writes_before, "no ARM PUT/POST for an already handled event"
    run_after = runner.status(instance_id)
    assert run_after["createdTime"] == run_before["createdTime"], "the completed run was not started again"
    assert run_after["runtimeStatus"] == "Completed"

    # a NEW event for the same resource (a later write) still starts work
    later = {**write, "id": write["id"] + "-later"}
    h.stack.host.deliver_events(TRIGGER, [later])  # type: ignore[union-attr]
    h.wait_for(lambda: len(h.outcomes_for(vm)) == outcomes_before + 1, what="the later write's outcome")
    h.settle()
    assert h.outcomes_for(vm)[-1]["status"] == "AlreadyProtected"
