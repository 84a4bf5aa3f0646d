"""The chaos checker itself: it must see a lost, a duplicated and a deleted protection, a stuck orchestration
and a teardown that did not end well — on a real sandbox, with protections made through the SDK."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from benchmarks.common import ArmCall
from tests.chaos.checker import Expectation, Sightings, check, protections
from tests.integration.teardown.conftest import Estate, start_sandbox


@pytest.fixture(scope="module")
def sandbox() -> Iterator[object]:
    sb = start_sandbox(scale=60.0)
    yield sb
    sb.stop()


def _runner_db(path: Path, rows: list[tuple[str, str, str, str | None]]) -> str:
    db = str(path / "durable.sqlite")
    connection = sqlite3.connect(db)
    connection.execute("CREATE TABLE instances (instance_id TEXT PRIMARY KEY, name TEXT, execution_id TEXT, "
                       "status TEXT, input TEXT, output TEXT, custom_status TEXT, created TEXT)")
    connection.executemany("INSERT INTO instances VALUES (?, ?, 'e', ?, NULL, ?, NULL, 't')", rows)
    connection.commit()
    connection.close()
    return db


def test_the_checker_sees_lost_duplicated_deleted_stuck_and_unfinished(sandbox: object, tmp_path: Path) -> None:
    from steward.cloud.clients import CloudClients

    clients = CloudClients(sandbox.cloud_target())  # type: ignore[attr-defined]
    estate = Estate(sandbox, clients)  # type: ignore[arg-type]
    rg = estate.group()
    vault_a, vault_b = estate.rs_vault(rg, "rsv-a"), estate.rs_vault(rg, "rsv-b")
    estate.protect_vm(rg, "rsv-a", "vm-once")
    vm_once = estate.resource(rg, "Microsoft.Compute/virtualMachines", "vm-once")
    vm_lost = estate.resource(rg, "Microsoft.Compute/virtualMachines", "vm-lost")
    sightings = Sightings()
    sightings.sample(sandbox)
    gone = f"{vault_a}/backupFabrics/Azure/protectionContainers/c/protectedItems/gone".lower()
    sightings.seen[gone] = vault_a.lower()
    db = _runner_db(tmp_path, [("p1", "protect_resource", "Completed", None),
                               ("p2", "reconcile_move", "Running", None),
                               ("a1", "audit_estate", "Failed", '"Activity function failed"')])
    expect = Expectation(protected_in={vm_once.lower(): vault_a.lower(), vm_lost.lower(): vault_a.lower()},
                         not_protected=frozenset(), retained=frozenset(), approved_vaults=frozenset({vault_b.lower()}))
    delete = ArmCall("p", "delete", "DELETE", f"{vault_a}/backupFabrics/Azure/protectionContainers/c/protectedItems/x",
                     202, None, None)  # type: ignore[arg-type]
    verdict = check(expect, sandbox, sightings, [delete], db)
    assert not verdict["ok"]
    assert verdict["lost_ids"] == [vm_lost.lower()]
    assert verdict["duplicated_protections"] == 0
    assert verdict["unintended_deletions"] == 2  # the vanished item and the DELETE outside the approved vault
    assert verdict["stuck"] == ["reconcile_move p2 Running"]
    assert verdict["failed_orchestrations"] == ["audit_estate a1: Activity function failed"]
    assert verdict["teardowns"][vault_b.lower()]["problem"]  # no teardown of the approved vault ended

    # ARM refuses a VM in a second vault; a disk's backup instance in two Backup vaults is what a duplicate
    # looks like (records written straight into the store: no API would make them)
    disk = estate.resource(rg, "Microsoft.Compute/disks", "disk-twice")
    for vault in ("bv-1", "bv-2"):
        sandbox.store.put({  # type: ignore[attr-defined]
            "id": f"/subscriptions/{estate.subscription}/resourceGroups/{rg}/providers/Microsoft.DataProtection/"
                  f"backupVaults/{vault}/backupInstances/disk-twice",
            "name": "disk-twice", "type": "Microsoft.DataProtection/backupVaults/backupInstances",
            "properties": {"dataSourceInfo": {"resourceID": disk}}})
    assert sum(1 for _, _, source in protections(sandbox) if source == disk.lower()) == 2
    verdict = check(expect, sandbox, sightings, [], db)
    assert verdict["duplicated_ids"] == [disk.lower()]
    assert verdict["duplicated_protections"] == 1


def _figures(seed: int, **changes: Any) -> dict[str, Any]:
    figures: dict[str, Any] = {
        "seed": seed, "events": {"raised": 270}, "arm_requests": 2000, "kills": 10,
        "faults_injected": {"server_error": 110, "throttle": 40, "reset": 50, "lro_slow": 20, "lro_fail": 9},
        "lost": 0, "duplicated_protections": 0, "unintended_deletions": 0, "converged": True,
        "teardown": {"outcome": "deleted"}, "time_to_converge_seconds": {"real": 10.1, "virtual": 1210.6},
    }
    figures.update(changes)
    return figures


def test_several_seeds_pass_only_when_every_run_is_clean() -> None:
    from tests.chaos.__main__ import clean, table

    good = _figures(1)
    assert clean(good)
    for bad in ({"lost": 1}, {"duplicated_protections": 2}, {"unintended_deletions": 1}, {"converged": False}):
        assert not clean(_figures(2, **bad)), bad
    rows = table([good, _figures(2, converged=False, lost=1)]).splitlines()
    assert len(rows) == 4
    assert rows[2] == "| 1 | 270 | 200 / 2000 (10.0%) | 20 / 9 | 10 | 0 | 0 | 0 | deleted | 10.1 / 1210.6 |"
    assert rows[3].startswith("| 2 |") and rows[3].endswith("| no |") and "| 1 |" in rows[3]
