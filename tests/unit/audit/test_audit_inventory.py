"""Inventory adapters without a network: REST-body parsing, the read pacer, the estate fan-out, and the
Resource Graph reader on query-result pages constructed here (not Microsoft data; not a live service)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings

from steward.cloud.errors import AzureRefusal
from steward.cloud.inventory import (
    GRAPH_QUERIES,
    ReadPacer,
    ResourceGraphEstateReader,
    backup_instance_from_wire,
    backup_vault_from_wire,
    protected_item_from_wire,
    read_estate,
    rs_vault_from_wire,
    vault_id_of,
)
from steward.domain.audit import (
    EstateInventory,
    ImmutabilityState,
    InvalidInventory,
    SoftDeleteState,
    audit,
    inventory_from_json,
    inventory_to_json,
)
from steward.domain.kernel import read_time as parse_time  # Azure's times, read leniently (the kernel's)
from tests.shared_fixtures import REST_EXAMPLES, needs
from tests.unit.audit.audit_estate_builders import NOW, SUB_A, SUB_B, rules
from tests.unit.audit.test_audit_result import estates, messy_estate

FIXTURES = REST_EXAMPLES
RSV = f"/subscriptions/{SUB_A}/resourceGroups/rg-backup/providers/Microsoft.RecoveryServices/vaults/rsv"
BV = f"/subscriptions/{SUB_A}/resourceGroups/rg-backup/providers/Microsoft.DataProtection/backupVaults/bv"
VM = f"/subscriptions/{SUB_A}/resourceGroups/rg-app/providers/Microsoft.Compute/virtualMachines/vm1"
DISK = f"/subscriptions/{SUB_A}/resourceGroups/rg-app/providers/Microsoft.Compute/disks/disk1"


def example(path: str) -> dict[str, Any]:
    return json.loads((FIXTURES / path).read_text())  # type: ignore[no-any-return]


def test_times_in_arm_shapes() -> None:
    assert parse_time("2026-11-25T08:00:00Z") == datetime(2026, 11, 25, 8, tzinfo=UTC)
    assert parse_time("2017-08-22T22:19:38.7497806Z") == datetime(2017, 8, 22, 22, 19, 38, 749780, tzinfo=UTC)
    assert parse_time("2026-11-25T10:00:00+02:00") == datetime(2026, 11, 25, 8, tzinfo=UTC)
    assert parse_time("0001-01-01T00:00:00Z") is None
    assert parse_time("") is None and parse_time(None) is None and parse_time("soon") is None


@needs(FIXTURES)
def test_recovery_services_vault_from_microsofts_get_example() -> None:
    body = example(
        "recoveryservices/resource-manager/Microsoft.RecoveryServices/stable/2025-02-01/examples/GETVault.json"
    )["responses"]["200"]["body"]
    vault = rs_vault_from_wire(body)
    assert vault.id == body["id"]
    assert vault.location == body["location"]
    security = body["properties"].get("securitySettings", {})
    expected = SoftDeleteState.from_arm(security.get("softDeleteSettings", {}).get("softDeleteState"))
    assert vault.soft_delete is expected


@needs(FIXTURES)
def test_protected_item_from_microsofts_list_example() -> None:
    body = example(
        "recoveryservicesbackup/resource-manager/Microsoft.RecoveryServices/stable/2025-02-01/"
        "examples/AzureIaasVm/BackupProtectedItems_List.json"
    )["responses"]["200"]["body"]["value"][0]
    item = protected_item_from_wire(body)
    assert item.id == body["id"]
    assert item.vault_id.lower() in body["id"].lower()
    assert item.source_id == body["properties"]["sourceResourceId"]
    assert item.protection_state == body["properties"]["protectionState"]
    assert not item.soft_deleted


@needs(FIXTURES)
def test_backup_vault_and_deleted_instance_from_microsofts_examples() -> None:
    vault_body = example(
        "dataprotection/resource-manager/Microsoft.DataProtection/stable/2025-07-01/examples/"
        "VaultCRUD/GetBackupVault.json"
    )["responses"]["200"]["body"]
    vault = backup_vault_from_wire(vault_body)
    assert vault.soft_delete is SoftDeleteState.from_arm(
        vault_body["properties"]["securitySettings"]["softDeleteSettings"]["state"]
    )
    deleted = example(
        "dataprotection/resource-manager/Microsoft.DataProtection/stable/2025-07-01/examples/"
        "DeletedBackupInstanceOperations/ListDeletedBackupInstances.json"
    )
    body = deleted["responses"]["200"]["body"]["value"][0]
    instance = backup_instance_from_wire(body, deleted=True)
    assert instance.soft_deleted
    assert instance.purge_at == parse_time(body["properties"]["deletionInfo"]["scheduledPurgeTime"])
    assert instance.datasource_id == body["properties"]["dataSourceInfo"]["resourceID"]


def test_vault_settings_parsing_for_both_kinds() -> None:
    rsv = rs_vault_from_wire(
        {
            "id": RSV,
            "location": "westeurope",
            "properties": {
                "securitySettings": {
                    "softDeleteSettings": {"softDeleteState": "AlwaysON"},
                    "immutabilitySettings": {"state": "Unlocked"},
                    "multiUserAuthorization": "Enabled",
                },
                "redundancySettings": {"crossRegionRestore": "Disabled"},
            },
        }
    )
    assert (rsv.soft_delete, rsv.immutability, rsv.cross_region_restore, rsv.multi_user_authorization) == (
        SoftDeleteState.ALWAYS_ON,
        ImmutabilityState.UNLOCKED,
        False,
        True,
    )
    bare = rs_vault_from_wire({"id": RSV, "location": "westeurope", "properties": {}})
    assert (bare.soft_delete, bare.cross_region_restore, bare.multi_user_authorization) == (
        SoftDeleteState.UNKNOWN,
        None,
        None,
    )
    bv = backup_vault_from_wire(
        {
            "id": BV,
            "location": "westeurope",
            "properties": {
                "securitySettings": {
                    "softDeleteSettings": {"state": "On"},
                    "immutabilitySettings": {"state": "Locked"},
                },
                "featureSettings": {"crossRegionRestoreSettings": {"state": "Enabled"}},
                "isVaultProtectedByResourceGuard": False,
            },
        }
    )
    assert (bv.soft_delete, bv.immutability, bv.cross_region_restore, bv.multi_user_authorization) == (
        SoftDeleteState.ON,
        ImmutabilityState.LOCKED,
        True,
        False,
    )


def test_soft_deleted_recovery_services_item_takes_its_purge_time() -> None:
    item = protected_item_from_wire(
        {
            "id": f"{RSV}/backupFabrics/Azure/protectionContainers/c/protectedItems/i",
            "properties": {
                "sourceResourceId": VM,
                "protectionState": "ProtectionStopped",
                "isScheduledForDeferredDelete": True,
                "deferredDeleteTimeInUTC": "2026-12-09T08:00:00Z",
            },
        }
    )
    assert item.soft_deleted and item.purge_at == datetime(2026, 12, 9, 8, tzinfo=UTC)
    assert item.vault_id == RSV


def test_vault_id_of_refuses_ids_outside_a_vault() -> None:
    assert vault_id_of(f"{BV}/backupInstances/x").lower() == BV.lower()
    with pytest.raises(Exception, match="not inside a Recovery Services or Backup vault"):
        vault_id_of(VM)


def test_the_pacer_allows_a_burst_then_the_refill_rate() -> None:
    clock = [0.0]

    def sleep(seconds: float) -> None:
        clock[0] += seconds

    pacer = ReadPacer(10, 5, now=lambda: clock[0], sleep=sleep)
    for _ in range(10):
        pacer.take()
    assert clock[0] == 0.0
    for _ in range(10):
        pacer.take()
    assert clock[0] == pytest.approx(2.0)  # 10 more at 5/s
    assert pacer.taken == 20
    with pytest.raises(ValueError, match="capacity"):
        ReadPacer(0, 1)


class FakeReader:
    """Hand-written fake of the port: per subscription an inventory, or an error."""

    def __init__(self, parts: dict[str, EstateInventory | Exception]) -> None:
        self.parts = parts

    def subscriptions(self) -> tuple[str, ...]:
        return tuple(self.parts)

    def read_subscription(self, subscription_id: str) -> EstateInventory:
        part = self.parts[subscription_id]
        if isinstance(part, Exception):
            raise part
        return part


def test_read_estate_merges_subscriptions_and_turns_failures_into_gaps() -> None:
    whole = messy_estate()
    part_a = EstateInventory((SUB_A,), tuple(r for r in whole.resources if r.subscription_id == SUB_A))
    seen: list[int] = []
    merged = read_estate(
        FakeReader({SUB_A: part_a, SUB_B: AzureRefusal("no read access", status=403, code="AuthorizationFailed")}),
        progress=lambda what, done: seen.append(done),
    )
    assert set(merged.subscriptions) == {SUB_A, SUB_B}
    assert merged.resources == part_a.resources
    [gap] = merged.gaps
    assert gap.scope == f"/subscriptions/{SUB_B}" and gap.reason == "no read access"
    assert sorted(seen) == [1, 2]
    result = audit(merged, rules(), NOW)
    assert [f.control_id for f in result.findings if f.subscription_id == SUB_B] == ["INV-001"]


@settings(max_examples=40, deadline=None)
@given(estates())
def test_inventory_records_round_trip(estate: EstateInventory) -> None:
    assert inventory_from_json(json.loads(json.dumps(inventory_to_json(estate)))) == estate


def test_a_malformed_inventory_record_is_refused() -> None:
    with pytest.raises(InvalidInventory, match="malformed"):
        inventory_from_json({"subscriptions": [], "resources": [["only-an-id"]]})


# Resource Graph on constructed pages -----------------------------------------------------------------


class CannedGraph:
    """Answers each known query from pages built here, two rows a page, and records what was asked."""

    def __init__(self, tables: dict[str, list[dict[str, Any]]]) -> None:
        self.by_query = {GRAPH_QUERIES[name]: rows for name, rows in tables.items()}
        self.calls: list[tuple[str, tuple[str, ...], str | None]] = []

    def __call__(
        self, query: str, subscriptions: Sequence[str], skip_token: str | None
    ) -> tuple[list[dict[str, Any]], str | None]:
        self.calls.append((query, tuple(subscriptions), skip_token))
        rows = self.by_query[query]
        start = int(skip_token or 0)
        following = start + 2
        return rows[start:following], (str(following) if following < len(rows) else None)


def graph_tables() -> dict[str, list[dict[str, Any]]]:
    vms = [
        {
            "id": VM.replace("vm1", f"vm{i}"),
            "type": "microsoft.compute/virtualmachines",
            "location": "westeurope",
            "tags": {"env": "prod"},
            "subscriptionId": SUB_A,
        }
        for i in range(1, 4)
    ]
    return {
        "resources": [*vms, {"id": DISK, "type": "microsoft.compute/disks", "location": "westeurope", "tags": None}],
        "vaults": [
            {
                "id": RSV,
                "type": "microsoft.recoveryservices/vaults",
                "location": "westeurope",
                "properties": {"securitySettings": {"softDeleteSettings": {"softDeleteState": "Enabled"}}},
            },
            {
                "id": BV,
                "type": "microsoft.dataprotection/backupvaults",
                "location": "westeurope",
                "properties": {"securitySettings": {"softDeleteSettings": {"state": "On"}}},
            },
        ],
        "items": [
            {
                "id": f"{RSV}/backupFabrics/Azure/protectionContainers/c1/protectedItems/vm1",
                "type": "microsoft.recoveryservices/vaults/backupfabrics/protectioncontainers/protecteditems",
                "properties": {
                    "sourceResourceId": VM,
                    "currentProtectionState": "ProtectionConfigured",
                    "policyId": f"{RSV}/backupPolicies/DefaultPolicy",
                    "lastBackupTime": "2026-11-25T06:00:00Z",
                },
            },
            {
                "id": f"{RSV}/backupFabrics/Azure/protectionContainers/c2/protectedItems/vm2",
                "type": "microsoft.recoveryservices/vaults/backupfabrics/protectioncontainers/protecteditems",
                "properties": {
                    "sourceResourceId": VM.replace("vm1", "vm2"),
                    "currentProtectionState": "SoftDeleted",
                    "deferredDeleteTimeInUTC": "2026-12-01T00:00:00Z",
                },
            },
        ],
        "instances": [
            {
                "id": f"{BV}/backupInstances/disk1",
                "type": "microsoft.dataprotection/backupvaults/backupinstances",
                "properties": {
                    "dataSourceInfo": {"resourceID": DISK, "datasourceType": "Microsoft.Compute/disks"},
                    "policyInfo": {"policyId": f"{BV}/backupPolicies/disk-default"},
                    "protectionStatus": {"status": "ProtectionConfigured"},
                },
            },
        ],
    }


def test_the_graph_reader_pages_through_every_query_and_builds_the_inventory() -> None:
    graph = CannedGraph(graph_tables())
    reader = ResourceGraphEstateReader(graph, [SUB_A])
    inventory = read_estate(reader)
    assert len(inventory.resources) == 4
    assert {r.type for r in inventory.resources} == {"Microsoft.Compute/virtualMachines", "Microsoft.Compute/disks"}
    assert {v.kind.value for v in inventory.vaults} == {"RecoveryServices", "Backup"}
    assert [i.soft_deleted for i in inventory.protected_items] == [False, True]
    assert inventory.protected_items[1].purge_at == datetime(2026, 12, 1, tzinfo=UTC)
    assert inventory.backup_instances[0].vault_id == BV
    # resources: 4 rows in pages of 2 -> 2 queries; the others fit in one page.
    assert reader.queries_sent == 5
    assert [c[2] for c in graph.calls if c[0] == GRAPH_QUERIES["resources"]] == [None, "2"]
    assert all(c[1] == (SUB_A,) for c in graph.calls)


def test_graph_and_arm_shaped_inventories_give_the_same_findings() -> None:
    """The Graph rows above describe the same estate as these ARM-shaped bodies: same findings."""
    from steward.cloud.inventory import resource_from_wire

    tables = graph_tables()
    graph_inventory = ResourceGraphEstateReader(CannedGraph(tables), [SUB_A]).read_subscription(SUB_A)
    arm_like = EstateInventory(
        subscriptions=(SUB_A,),
        resources=tuple(
            resource_from_wire(
                {
                    **r,
                    "type": r["type"].replace("microsoft.compute/virtualmachines", "Microsoft.Compute/virtualMachines"),
                }
            )
            for r in tables["resources"]
        ),
        vaults=(rs_vault_from_wire(tables["vaults"][0]), backup_vault_from_wire(tables["vaults"][1])),
        protected_items=tuple(
            protected_item_from_wire(
                {**i, "properties": {**i["properties"], "protectionState": "Protected"}}
                if i["properties"]["currentProtectionState"] == "ProtectionConfigured"
                else i
            )
            for i in tables["items"]
        ),
        backup_instances=(backup_instance_from_wire(tables["instances"][0]),),
    )
    graph_result = audit(graph_inventory, rules(), NOW)
    arm_result = audit(arm_like, rules(), NOW)
    assert [(f.id, f.control_id) for f in graph_result.findings] == [(f.id, f.control_id) for f in arm_result.findings]
    assert {f.control_id for f in graph_result.findings} >= {"BKP-001", "BKP-006", "VLT-001"}


def test_the_fallback_reader_uses_arm_for_what_graph_cannot_read() -> None:
    from steward.cloud.inventory import FallbackEstateReader

    whole = messy_estate()
    part_a = EstateInventory((SUB_A,), tuple(r for r in whole.resources if r.subscription_id == SUB_A))
    part_b = EstateInventory((SUB_B,), tuple(r for r in whole.resources if r.subscription_id == SUB_B))
    graph = FakeReader({SUB_A: part_a, SUB_B: AzureRefusal("graph quota exhausted", status=429)})
    arm = FakeReader({SUB_A: AzureRefusal("must not be asked", status=500), SUB_B: part_b})
    reader = FallbackEstateReader(graph, arm)
    merged = read_estate(reader)
    assert merged.gaps == ()
    assert set(merged.resources) == set(part_a.resources) | set(part_b.resources)
    assert reader.fell_back == [SUB_B]


def _listed(principal: str, role: str, scope: str, *, kind: str = "ServicePrincipal", condition: str | None = None,
            name: str = "") -> dict[str, Any]:
    """One role assignment as ``RoleAssignments_ListForSubscription`` answers it (authorization 2022-04-01)."""
    return {"id": f"{scope.rstrip('/')}/providers/Microsoft.Authorization/roleAssignments/{name or principal[:8]}",
            "properties": {"roleDefinitionId": f"/subscriptions/{SUB_A}/providers/Microsoft.Authorization/"
                                               f"roleDefinitions/{role}",
                           "principalId": principal, "principalType": kind, "scope": scope, "condition": condition}}


def test_the_count_keeps_only_what_overlaps_a_wider_assignment_of_the_same_principal_and_role() -> None:
    """CAP-004's input: of the subscription's list, only a service principal's assignments that one of the same
    principal and role at the group or the subscription makes redundant, and that wider one; not a user's, not
    above the subscription (the root), not another role's."""
    from steward.cloud.inventory import count_role_assignments

    sp, user = "aaaaaaaa-0000-4000-8000-00000000000a", "bbbbbbbb-0000-4000-8000-00000000000b"
    dbr, reader = "3e5e47e6-65f7-47ef-90b5-e5dd4d455f24", "acdd72a7-3385-48ef-bd42-f606fba81ae7"
    group = f"/subscriptions/{SUB_A}/resourceGroups/rg-app"
    listed = [
        _listed(sp, dbr, DISK, name="disk"), _listed(sp, dbr, group, name="group"),
        _listed(sp, reader, VM, name="vm"),  # Reader held nowhere wider
        _listed(user, dbr, DISK, kind="User", name="u-disk"), _listed(user, dbr, group, kind="User", name="u-group"),
        _listed(sp, reader, "/", name="root"),  # above the subscription: listed, neither counted nor a cover
        _listed(sp, dbr, f"/subscriptions/{SUB_A}/resourceGroups/rg-other/providers/Microsoft.Compute/disks/d2",
                name="other", condition="true"),
    ]
    count = count_role_assignments(SUB_A, listed)
    assert count.total == 6 and count.by_principal == {sp: 4}
    assert [a.id.rsplit("/", 1)[-1] for a in count.overlapping] == ["disk", "group"]
    disk, wide = count.overlapping
    assert (disk.principal_id, disk.role_definition_guid, disk.scope, disk.condition) == (sp, dbr, DISK.lower(), None)
    assert wide.scope == group.lower()
    assert count_role_assignments(SUB_A, [_listed(sp, reader, VM), _listed(sp, reader, "/")]).overlapping == ()
