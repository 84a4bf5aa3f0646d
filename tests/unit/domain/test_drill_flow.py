"""Restore drills' pure decisions (steward/domain/drill_flow.py): due and budgets per drill rule, never-in-place
restore requests, validation of what came back, and what cleanup may delete."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from steward.domain import drill_flow as flow
from steward.domain.drills import DrillBudget

NOW = datetime(2026, 3, 10, tzinfo=UTC)
SUB = "11111111-1111-1111-1111-111111111111"


def target(name: str, *, rule: str = "r", size: float = 10, last: datetime | None = None,
           every: timedelta = timedelta(days=7)) -> dict[str, Any]:
    return {"resourceId": f"/subscriptions/{SUB}/resourceGroups/g/providers/Microsoft.Compute/disks/{name}",
            "rule": rule, "every": every.total_seconds(), "sizeGb": size,
            "lastDrillAt": None if last is None else last.isoformat()}


def test_only_due_resources_are_chosen_unless_named_and_budgets_hold_per_rule() -> None:
    targets = [target("fresh", last=NOW - timedelta(days=1)), target("old", last=NOW - timedelta(days=8)),
               target("never"), target("big", rule="s", size=500)]
    budgets = {"r": DrillBudget(share=1.0, max_concurrent=5), "s": DrillBudget(share=1.0, max_restored_gb=100)}
    chosen, waiting = flow.choose(targets, budgets, NOW, forced=False)
    assert [c["resourceId"].rsplit("/", 1)[-1] for c in chosen] == ["never", "old"]
    reasons = {w["resourceId"].rsplit("/", 1)[-1]: w["reason"] for w in waiting}
    assert reasons == {"fresh": "notDue", "big": "largerThanBudget"}
    chosen, _ = flow.choose(targets, budgets, NOW, forced=True)
    assert sorted(c["resourceId"].rsplit("/", 1)[-1] for c in chosen) == ["fresh", "never", "old"]


def test_restore_requests_never_target_the_source() -> None:
    vm = flow.vm_restore_body(point_id="p1", source_id="/vm", region="westeurope", staging_account_id="/sa",
                              target_group_id="/g")["properties"]
    assert vm["recoveryType"] == "RestoreDisks" and vm["targetResourceGroupId"] == "/g" and vm["storageAccountId"]
    disk = flow.disk_restore_body(point_id="p1", source_id="/d", new_disk_id="/g/d-drill", region="westeurope")
    assert disk["restoreTargetInfo"]["datasourceInfo"]["resourceID"] == "/g/d-drill"
    files = flow.files_restore_body(point_id="p1", source_id="/pg", account_name="acct", region="westeurope",
                                    prefix="x-")
    assert files["restoreTargetInfo"]["objectType"] == "RestoreFilesTargetInfo"
    assert files["restoreTargetInfo"]["targetDetails"]["url"] == "https://acct.blob.core.windows.net/drill-restore"
    assert "in place" in (flow.refusal(flow.Workload.BLOB, "OperationalStore") or "")
    assert flow.refusal(flow.Workload.DISK, "OperationalStore") is None


def test_validation_matches_each_source_disk_by_size_and_sku() -> None:
    expected = [{"id": "os", "sizeGb": 30, "sku": "Premium_LRS"}, {"id": "data", "sizeGb": 128, "sku": "Premium_LRS"}]
    good = [{"id": "r1", "sizeGb": 128, "sku": "premium_lrs"}, {"id": "r2", "sizeGb": 30, "sku": "Premium_LRS"}]
    assert flow.validate(expected, good)["passed"]
    short = flow.validate(expected, good[:1])
    assert not short["passed"] and "30 GB" in short["problems"][0]
    wrong = flow.validate(expected[:1], [{"id": "r", "sizeGb": 30, "sku": "Standard_LRS"}])
    assert not wrong["passed"] and len(wrong["problems"]) == 2
    assert not flow.validate([], [])["passed"]


def test_cleanup_deletes_only_recorded_ids_that_carry_the_drills_tag() -> None:
    recorded = ["/a", "/b", "/c", "/d"]
    tags = {"/a": {"Backup-Steward:Drill": "drill-1"}, "/b": {flow.DRILL_TAG: "drill-2"}, "/c": {}, "/d": None}
    delete, skipped = flow.deletable(recorded, tags, "drill-1")
    assert delete == ["/a"]
    assert {s["id"]: s["reason"] for s in skipped} == {"/b": "not tagged backup-steward:drill=drill-1",
                                                        "/c": "not tagged backup-steward:drill=drill-1",
                                                        "/d": "gone"}


def test_names_are_valid_and_stable() -> None:
    name = flow.staging_account_name("drill-1", "/x")
    assert name == flow.staging_account_name("drill-1", "/X") and len(name) == 24 and name.isalnum()
    assert name.islower()
    assert len(flow.restored_disk_name("drill-1", "d" * 80)) <= 80
    assert flow.job_outcome("InProgress") is None and flow.job_outcome("Cancelled") == "cancelled"
    assert flow.seconds_between("2026-01-01T00:00:00Z", "2026-01-01T01:00:00Z") == 3600


def test_a_disk_is_the_work_of_a_job_only_when_created_while_it_ran() -> None:
    start, end = "2026-03-10T06:33:34Z", "2026-03-10T07:33:34Z"
    assert flow.created_during("2026-03-10T07:33:34Z", start, end)
    assert not flow.created_during("2026-03-10T07:44:51Z", start, end)  # another job's, ended later
    assert not flow.created_during("2026-03-10T06:00:00Z", start, end)
    assert flow.created_during(None, start, end) and flow.created_during("2026-03-10T09:00:00Z", start, None)


def test_the_vault_identity_gets_its_restore_right_on_the_drill_target_only() -> None:
    """Disk Restore Operator on the drill group (a disk), Storage Blob Data Contributor on the drill's account
    (PostgreSQL files), nothing for a Recovery Services VM (backup/restore-managed-disks.md; PS-man manifests)."""
    group = "/subscriptions/s/resourceGroups/backup-steward-drill-westeurope"
    account = f"{group}/providers/Microsoft.Storage/storageAccounts/bsdrill1"
    assert flow.restore_grants("Microsoft.Compute/disks", group, None) == [
        {"role": "Disk Restore Operator", "role_definition_guid": "b50d9833-a0cb-478e-945f-707fcc997c13",
         "scope": group}]
    assert flow.restore_grants("Microsoft.DBforPostgreSQL/flexibleServers", group, account) == [
        {"role": "Storage Blob Data Contributor", "role_definition_guid": "ba92f5b4-2d11-453d-a403-e96b0029c9fe",
         "scope": account}]
    assert flow.restore_grants("Microsoft.Compute/virtualMachines", group, account) == []
    # vaulted blobs into the drill's account (backup/blob-restore.md, vaulted tab)
    assert flow.restore_grants("Microsoft.Storage/storageAccounts", group, account) == [
        {"role": "Storage Account Backup Contributor", "role_definition_guid": "e5e2a7ff-d759-4cd2-bb51-3152d37e2eb1",
         "scope": account}]


def test_vaulted_blobs_restore_their_listed_containers_into_the_drills_account_never_in_place() -> None:
    source = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/src"
    account = "/subscriptions/s/resourceGroups/backup-steward-drill-westeurope/providers/Microsoft.Storage/" \
              "storageAccounts/bsdrill1"
    assert flow.refusal(flow.Workload.BLOB, "VaultStore") is None
    body = flow.blob_restore_body(point_id="rp1", source_id=source, account_id=account, region="westeurope",
                                  containers=["invoices", "logs"])
    target = body["restoreTargetInfo"]
    assert body["sourceDataStoreType"] == "VaultStore" and target["objectType"] == "ItemLevelRestoreTargetInfo"
    assert target["datasourceInfo"]["resourceID"] == account != source
    assert [c["itemPath"] for c in target["restoreCriteria"]] == ["invoices", "logs"]
    assert {c["objectType"] for c in target["restoreCriteria"]} == {"ItemPathBasedRestoreCriteria"}
    expected = [{"id": "x/invoices", "name": "invoices"}, {"id": "x/logs", "name": "logs"}]
    assert flow.validate_containers(expected, [{"name": "invoices"}, {"name": "logs"}])["passed"]
    missing = flow.validate_containers(expected, [{"name": "invoices"}])
    assert not missing["passed"] and missing["problems"] == ["container logs was not restored"]
    assert not flow.validate_containers([], [])["passed"]


def test_only_what_drills_make_in_a_group_named_and_tagged_as_theirs_is_theirs() -> None:
    from steward.domain.drill_rules import build_drill_rules
    from steward.domain.ids import ResourceId

    drills = build_drill_rules([{"name": "d", "every": "P7D", "resourceGroup": "drill-{subscription}-{region}"}],
                               line=lambda _: None, problem=lambda *_: None, protection_rules=(),
                               supported_types=("Microsoft.Compute/disks",))
    sub = "0b1e4a7c-1111-4c2d-9e3f-5a6b7c8d9e0f"
    group = f"/subscriptions/{sub}/resourceGroups/drill-{sub}-westeurope"
    for made in ("Microsoft.Compute/disks/d1", "Microsoft.Storage/storageAccounts/bsdrill1"):
        assert flow.drill_group_of(ResourceId.parse(f"{group}/providers/{made}"), drills) == group
    vm = ResourceId.parse(f"{group}/providers/Microsoft.Compute/virtualMachines/vm1")
    assert flow.drill_group_of(vm, drills) is None  # drills make no VM
    other_sub = f"/subscriptions/{sub}/resourceGroups/drill-00000000-0000-0000-0000-000000000000-westeurope"
    assert flow.drill_group_of(ResourceId.parse(f"{other_sub}/providers/Microsoft.Compute/disks/d1"), drills) is None
    assert flow.drill_group_of(ResourceId.parse(f"/subscriptions/{sub}/resourceGroups/drill-{sub}-west-eu/providers/"
                                                "Microsoft.Compute/disks/d1"), drills) is None
    assert flow.drill_owned({"Backup-Steward:Drill-Group": "True"})
    assert not flow.drill_owned({"backup-steward:drill-group": "false"}) and not flow.drill_owned(None)


def test_the_last_drill_record_keeps_when_a_drill_last_succeeded() -> None:
    ok = {"id": "drill-a", "startedAt": "2026-03-01T00:00:00+00:00"}
    first = flow.last_drill_record(None, ok, {"outcome": "Succeeded"})
    assert first["lastSucceededAt"] == "2026-03-01T00:00:00+00:00"
    failed = flow.last_drill_record(first, {"id": "drill-b", "startedAt": "2026-03-08T00:00:00+00:00"},
                                    {"outcome": "RestoreFailed"})
    assert failed == {"drillId": "drill-b", "startedAt": "2026-03-08T00:00:00+00:00", "outcome": "RestoreFailed",
                      "lastSucceededAt": "2026-03-01T00:00:00+00:00"}
    assert flow.last_drill_record(None, ok, {"outcome": "Cancelled"})["lastSucceededAt"] is None


def test_leftovers_expire_with_their_rules_lifetime_and_leave_the_index_once_gone_or_deleted() -> None:
    report = {"id": "drill-a", "startedAt": "2026-03-01T00:00:00+00:00", "results": [
        {"resourceId": "/vm", "left": ["/disk1", "/acct"], "lifetimeSeconds": 6 * 3600},
        {"resourceId": "/disk", "left": [], "lifetimeSeconds": 6 * 3600}]}
    index = flow.add_leftovers(None, report)
    assert index == {"entries": [{"drillId": "drill-a", "resourceId": "/vm", "ids": ["/disk1", "/acct"],
                                  "expiresAt": "2026-03-01T06:00:00+00:00"}]}
    assert flow.expired_leftovers(index, datetime(2026, 3, 1, 5, tzinfo=UTC)) == []
    expired = flow.expired_leftovers(index, datetime(2026, 3, 1, 6, tzinfo=UTC))
    assert [e["id"] for e in expired] == ["/disk1", "/acct"]
    still = flow.after_reconcile(index, [{"id": "/disk1", "effect": "deleted"}, {"id": "/acct", "effect": "deleting"}])
    assert still["entries"][0]["ids"] == ["/acct"], "a delete still running is looked at again"
    assert flow.after_reconcile(still, [{"id": "/ACCT", "effect": "gone"}]) == {"entries": []}
    assert flow.add_leftovers(index, report) == index, "a retried record (or a write retried on 412) adds nothing"


def test_a_running_job_is_looked_at_after_60_s_then_ever_less_often_up_to_5_minutes() -> None:
    waits = [flow.job_poll_wait(n).total_seconds() for n in range(7)]
    assert waits == [60, 120, 240, 300, 300, 300, 300]
    looks, waited = 0, 0.0
    while waited < 3600:  # a one-hour VM restore (the sandbox's model): 14 looks, not the 60 of a fixed minute
        waited += flow.job_poll_wait(looks).total_seconds()
        looks += 1
    assert looks == 14 and waited - 3600 < flow.JOB_POLL_CAP.total_seconds()
    assert flow.job_poll_wait(10_000) == flow.JOB_POLL_CAP and flow.job_poll_wait(-1) == flow.DEFAULT_POLL


def test_a_disk_restored_from_either_tier_counts_as_made_by_a_restore() -> None:
    # snapshot tier: Restore (observed); vault tier alone: Import / ImportSecure (inferred, docs/azure-facts.md)
    assert all(flow.made_by_a_restore(option) for option in ("Restore", "Import", "importSecure", "RESTORE"))
    # a disk made any other way in the drill group is not the restore's work
    assert not any(flow.made_by_a_restore(option) for option in ("Empty", "Copy", "FromImage", "Upload", "", None))


def test_a_drill_groups_lease_is_held_by_one_drill_until_released_or_expired() -> None:
    from datetime import UTC, datetime

    group = "/subscriptions/s/resourceGroups/backup-steward-drill-westeurope"
    now = datetime(2026, 12, 7, 8, 0, tzinfo=UTC)
    taken = flow.take_lease(None, group, "drill-a", "vm-a", now)
    assert taken is not None and flow.lease_holder(taken, now) == "drill-a"
    assert flow.take_lease(taken, group, "drill-b", "vm-b", now + flow.JOB_DEADLINE) is None
    assert flow.take_lease(taken, group, "drill-a", "vm-a", now) is not None  # a retried drill_start
    assert flow.take_lease(taken, group, "drill-a", "vm-a2", now) is None  # its own next VM: after the first's
    assert flow.release_lease(taken, "drill-b") is None  # only its holder lets it go
    released = flow.release_lease(taken, "drill-a")
    assert released is not None and flow.lease_holder(released, now) is None
    assert flow.take_lease(released, group, "drill-b", "vm-b", now) is not None
    # a drill that died before its cleanup: its lease ends
    assert flow.lease_holder(taken, now + flow.GROUP_LEASE) is None
    assert flow.take_lease(taken, group, "drill-b", "vm-b", now + flow.GROUP_LEASE) is not None
    assert flow.group_lease_blob(group) == flow.group_lease_blob(group.upper())
