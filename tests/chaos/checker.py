"""The independent checker of a chaos run: reads the ARM sandbox's store and the runner's SQLite file, never
the app's outcome events or reports.

What it compares with the expectation the driver wrote down BEFORE the run (``Expectation``):

* every resource the rules cover is protected exactly once, in the vault of its kind and region
  (a Recovery Services protected item or a Backup vault backup instance whose source is the resource);
* no resource carries two protections (any vault, any state) and none the rules exclude carries one;
* no backup data was deleted outside an approved teardown: every item or instance the store ever held
  (``Sightings``, sampled during the run) still exists at the end unless it lived in an approved vault, and
  ARM saw no successful DELETE of an item, instance or vault outside an approved vault (the request log);
* every teardown ended ``deleted``, ``waiting`` or ``blocked`` with a reason (read from the runner's store:
  the saga's own output is the record it keeps; the vault's absence is checked in the sandbox);
* no orchestration is stuck: nothing Pending/Running except sagas that wait on purpose; and none Failed (an
  activity that gives up makes a Failed outcome record, not a failed orchestration).
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Final

RS_ITEM: Final = "Microsoft.RecoveryServices/vaults/backupFabrics/protectionContainers/protectedItems"
BV_INSTANCE: Final = "Microsoft.DataProtection/backupVaults/backupInstances"
BACKUP_DATA_SEGMENTS: Final = ("/protecteditems/", "/backupinstances/", "/providers/microsoft.recoveryservices/vaults/",
                               "/providers/microsoft.dataprotection/backupvaults/")
TEARDOWN_ENDINGS: Final = frozenset({"deleted", "waiting", "blocked"})


@dataclass(frozen=True)
class Expectation:
    """What the rules say, written down by the driver from the estate it created (lower-cased ids)."""

    protected_in: dict[str, str]  # resource id -> the vault id that must hold its one protection
    not_protected: frozenset[str]  # resource ids the rules exclude (opt-out tag)
    retained: frozenset[str]  # ids whose old protection must be kept (moved away; points retained)
    approved_vaults: frozenset[str]  # vault ids whose data an approved teardown may delete


def _source_of(record: dict[str, Any]) -> str | None:
    props = record.get("properties") or {}
    source = props.get("sourceResourceId") or (props.get("dataSourceInfo") or {}).get("resourceID")
    return str(source).lower() if source else None


def _vault_of(record_id: str) -> str:
    parts = record_id.split("/")
    return "/".join(parts[:9]).lower()  # /subscriptions/s/resourceGroups/g/providers/ns/type/name


def protections(sandbox: Any) -> list[tuple[str, str, str]]:
    """(record id, vault id, source resource id) of every live protection in the sandbox: the Recovery Services
    model's protected items that are not soft-deleted, and the Backup vaults' backup instances in the store."""
    from sandbox.arm.providers.recoveryservices import recovery_services

    found = []
    for record in sandbox.store.list(resource_type=BV_INSTANCE):
        source = _source_of(record)
        if source:
            found.append((str(record["id"]).lower(), _vault_of(str(record["id"])), source))
    model = recovery_services(sandbox).model
    with model.lock:
        for vault in model.vaults.values():
            for item in vault.items.values():
                if item.soft_deleted:
                    continue
                record_id = (f"{vault.id}/backupFabrics/Azure/protectionContainers/{item.container}"
                             f"/protectedItems/{item.name}")
                found.append((record_id.lower(), vault.id.lower(), item.source_id.lower()))
    return found


@dataclass
class Sightings:
    """Every protection record the store held at any sample, and when it was first seen."""

    seen: dict[str, str] = field(default_factory=dict)  # record id -> vault id
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def sample(self, sandbox: Any) -> None:
        current = protections(sandbox)
        with self._lock:
            for record_id, vault, _ in current:
                self.seen.setdefault(record_id, vault)


def runner_instances(db_path: str) -> list[dict[str, Any]]:
    connection = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=10)
    try:
        rows = connection.execute("SELECT instance_id, name, status, output, custom_status FROM instances").fetchall()
    finally:
        connection.close()
    return [{"id": r[0], "name": r[1], "status": r[2], "output": json.loads(r[3]) if r[3] else None,
             "custom_status": json.loads(r[4]) if r[4] else None} for r in rows]


def _unintended_deletes(calls: list[Any], approved: frozenset[str]) -> list[str]:
    bad = []
    for call in calls:
        path = call.path.lower()
        if call.method != "DELETE" or not (200 <= call.status < 300):
            continue
        if not any(segment in path for segment in BACKUP_DATA_SEGMENTS):
            continue
        if any(path.startswith(vault) for vault in approved):
            continue
        bad.append(f"{call.method} {call.path} -> {call.status}")
    return bad


def _teardown_endings(instances: list[dict[str, Any]], sandbox: Any, approved: frozenset[str]) -> dict[str, Any]:
    endings: dict[str, Any] = {}
    for vault in sorted(approved):
        reports = [i for i in instances if i["name"] == "teardown_vault" and isinstance(i["output"], dict)
                   and str(i["output"].get("vaultId", "")).lower() == vault]
        final = [r["output"] for r in reports if r["output"].get("outcome") in TEARDOWN_ENDINGS]
        outcome = final[-1]["outcome"] if final else None
        reason = final[-1].get("reason") if final else None
        problem = None
        if outcome is None:
            problem = f"no teardown of {vault} ended deleted, waiting or blocked: {[r['output'] for r in reports]}"
        elif outcome == "deleted" and sandbox.store.exists(vault):
            problem = f"{vault}: the saga says deleted but the vault still exists"
        elif outcome in {"waiting", "blocked"} and not reason:
            problem = f"{vault}: {outcome} without a reason"
        endings[vault] = {"outcome": outcome, "reason": reason, "problem": problem}
    return endings


def check(expect: Expectation, sandbox: Any, sightings: Sightings, calls: list[Any], db_path: str, *,
          waiting_names: frozenset[str] = frozenset({"teardown_vault"})) -> dict[str, Any]:
    """Compare the final state with the expectation. ``ok`` is True only when every figure is clean."""
    current = protections(sandbox)
    by_source: dict[str, list[tuple[str, str]]] = {}
    for record_id, vault, source in current:
        by_source.setdefault(source, []).append((record_id, vault))
    lost = sorted(r for r, vault in expect.protected_in.items()
                  if not any(v == vault for _, v in by_source.get(r, [])))
    wrong_vault = sorted(r for r, vault in expect.protected_in.items()
                         if any(v != vault for _, v in by_source.get(r, [])))
    duplicated = sorted(s for s, records in by_source.items() if len(records) > 1)
    unwanted = sorted(r for r in expect.not_protected if by_source.get(r))
    existing = {record_id for record_id, _, _ in current}
    with sightings._lock:
        seen = dict(sightings.seen)
    vanished = sorted(record for record, vault in seen.items()
                      if record not in existing and vault not in expect.approved_vaults)
    not_retained = sorted(r for r in expect.retained if not by_source.get(r))
    bad_deletes = _unintended_deletes(calls, expect.approved_vaults)
    instances = runner_instances(db_path)
    statuses = Counter(i["status"] for i in instances)
    stuck = sorted(f"{i['name']} {i['id']} {i['status']}" for i in instances
                   if i["status"] in {"Pending", "Running"} and i["name"] not in waiting_names)
    failed = sorted(f"{i['name']} {i['id']}: {str(i['output'])[:300]}" for i in instances if i["status"] == "Failed")
    endings = _teardown_endings(instances, sandbox, expect.approved_vaults)
    teardown_problems = [e["problem"] for e in endings.values() if e["problem"]]
    unintended = sorted(set(vanished) | set(not_retained) | set(bad_deletes))
    ok = not (lost or wrong_vault or duplicated or unwanted or unintended or stuck or failed or teardown_problems)
    return {
        "ok": ok,
        "covered_resources": len(expect.protected_in),
        "lost": len(lost),
        "lost_ids": lost[:20],
        "wrong_vault": wrong_vault[:20],
        "duplicated_protections": len(duplicated),
        "duplicated_ids": duplicated[:20],
        "protected_against_rules": unwanted[:20],
        "unintended_deletions": len(unintended),
        "unintended_examples": unintended[:20],
        "protections_seen": len(seen),
        "orchestrations": dict(statuses),
        "stuck": stuck[:20],
        "failed_orchestrations": failed[:10],
        "teardowns": endings,
    }
