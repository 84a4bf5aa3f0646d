"""The README's table of published event schemas (section "Events") is what the app publishes: for every event
type, the ``dataVersion`` and the keys of ``data`` the builders in ``steward/report/events.py`` produce equal the
documented ones (a key marked ``?`` is published only where it applies)."""

from __future__ import annotations

import ast
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from activities.compensation import reconciled, reconciliation_record
from steward.cloud.publisher import OutcomeEvent
from steward.domain.audit import audit
from steward.domain.compensation import SettingChange, TeardownMarker
from steward.domain.protection import OutcomeStatus, ProtectionOutcome
from steward.report import events
from tests.unit.audit.audit_estate_builders import NOW, rules
from tests.unit.audit.test_audit_result import messy_estate

ROOT = Path(__file__).resolve().parents[2]
HEADER = "| `eventType` | `dataVersion` | `data` keys |"
SUB = "00000000-0000-4000-8000-000000000001"
VM = f"/subscriptions/{SUB}/resourceGroups/rg-app/providers/Microsoft.Compute/virtualMachines/vm-1"
RSV = f"/subscriptions/{SUB}/resourceGroups/rg-backup/providers/Microsoft.RecoveryServices/vaults/rsv-weu"


def documented() -> dict[str, tuple[str, frozenset[str], frozenset[str]]]:
    """``{eventType label: (dataVersion, always-published keys, keys published where they apply)}``."""
    lines = (ROOT / "README.md").read_text().splitlines()
    start = lines.index(HEADER) + 2
    table: dict[str, tuple[str, frozenset[str], frozenset[str]]] = {}
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        label, version, keys = (cell.strip() for cell in line.strip("|").split("|"))
        names = re.findall(r"`([A-Za-z]+\??)`", keys)
        table[label] = (
            version.strip("`"),
            frozenset(n for n in names if not n.endswith("?")),
            frozenset(n[:-1] for n in names if n.endswith("?")),
        )
    return table


def _drill_result_keys() -> tuple[set[str], set[str]]:
    """The keys ``orchestrators/drill.py`` writes into a resource's drill result: (in every result, in some)."""
    tree = ast.parse((ROOT / "orchestrators" / "drill.py").read_text())
    literals: list[set[str]] = []
    written: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.AnnAssign | ast.Assign) and isinstance(node.value, ast.Dict):
            targets = [node.target] if isinstance(node, ast.AnnAssign) else node.targets
            if any(isinstance(t, ast.Name) and t.id == "result" for t in targets):
                literals.append({k.value for k in node.value.keys if isinstance(k, ast.Constant)})
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            owner = node.func.value
            appended = node.func.attr == "append" and isinstance(owner, ast.Name) and owner.id == "results"
            if appended and node.args and isinstance(node.args[0], ast.Dict):
                literals.append({k.value for k in node.args[0].keys if isinstance(k, ast.Constant)})
            if node.func.attr == "update" and isinstance(owner, ast.Name) and owner.id == "result":
                written |= {k.arg for k in node.keywords if k.arg}
        if isinstance(node, ast.Assign):
            for target in node.targets:
                if (
                    isinstance(target, ast.Subscript)
                    and isinstance(target.value, ast.Name)
                    and target.value.id == "result"
                    and isinstance(target.slice, ast.Constant)
                ):
                    written.add(target.slice.value)
    assert len(literals) >= 2, "the drill orchestrator's result literals were not found"
    always = set.intersection(*literals)
    return always, set.union(*literals, written) - always


def _published() -> dict[str, list[OutcomeEvent]]:
    """Events built the way each publisher builds them, by README label."""
    outcome = ProtectionOutcome(OutcomeStatus.PROTECTED, VM, vault_id=RSV, item_id=f"{RSV}/items/1")
    covered = ProtectionOutcome(OutcomeStatus.COVERED_BY_VM, VM, reason="attached to a VM")
    report = {
        "instanceId": "teardown:1",
        "outcome": "deleted",
        "vaultId": RSV,
        "reason": "done",
        "requestedBy": "oid-1",
        "deleted": [{"id": "x"}],
        "remaining": [],
    }
    marker = TeardownMarker.for_changes(
        "teardown:1", datetime(2026, 1, 1, tzinfo=UTC), [SettingChange("softDelete", "Enabled", "Disabled")]
    )
    record = reconciliation_record(RSV, marker, "not running")
    restored = [{"setting": "softDelete", "from": "Disabled", "to": "Enabled", "effect": "changed"}]
    failed = [{**restored[0], "effect": "failed", "error": "refused"}]
    first = audit(messy_estate(), rules(), NOW)
    drill = {
        "id": "drill-1",
        "results": [
            {
                "resourceId": VM,
                "workload": "vm",
                "rule": "r",
                "outcome": "Succeeded",
                "created": [],
                "deleted": [],
                "left": [],
            }
        ],
    }
    return {
        "`BackupSteward.Protection.<Status>`": events.protection_events([outcome, covered]),
        "`BackupSteward.Teardown.<Outcome>`": [
            events.teardown_outcome_event(report, {"jsonUrl": "j", "htmlUrl": "h"}, "teardown-1")
        ],
        "`BackupSteward.Teardown.Reconciled` / `.ReconcileFailed`": [
            events.reconcile_event(reconciled(record, restored, "removed")),
            events.reconcile_event(reconciled(record, failed, "kept")),
        ],
        "`BackupSteward.Audit.FindingOpened` / `.FindingResolved`": events.finding_events(first),
        "`BackupSteward.Drill.<Outcome>`": events.drill_events(drill),
        "`BackupSteward.Drill.RestoreReady`": [
            events.restore_ready_event(
                {"drillId": "drill-1", "resourceId": VM, "workload": "virtualMachine", "restored": [VM + "-disk"],
                 "waitUntil": "2026-01-01T01:00:00+00:00"}
            )
        ],
        "`BackupSteward.Event.Rejected`": [events.rejected_event(VM, "ev-1", "forged", "{...}")],
    }


def test_every_published_event_type_is_documented_and_nothing_else() -> None:
    assert set(documented()) == set(_published())


@pytest.mark.parametrize("label", sorted(_published()))
def test_published_data_has_the_documented_keys_and_data_version(label: str) -> None:
    version, always, where_it_applies = documented()[label]
    published = _published()[label]
    assert published, label
    seen: set[str] = set()
    for event in published:
        assert event.data_version == version, (label, event.event_type)
        keys = set(event.data)
        assert always <= keys, f"{event.event_type}: documented but not published: {sorted(always - keys)}"
        assert keys <= always | where_it_applies, (
            f"{event.event_type}: published but not documented: {sorted(keys - always - where_it_applies)}"
        )
        seen |= keys
    if label != "`BackupSteward.Drill.<Outcome>`":  # a drill's optional keys are checked on the orchestrator
        assert where_it_applies <= seen, f"{label}: documented, never published: {sorted(where_it_applies - seen)}"


def test_the_protection_events_say_legacy_status_only_where_a_status_was_renamed() -> None:
    by_status = {e.event_type: e.data for e in _published()["`BackupSteward.Protection.<Status>`"]}
    assert "legacyStatus" not in by_status["BackupSteward.Protection.Protected"]
    assert by_status["BackupSteward.Protection.CoveredByVm"]["legacyStatus"] == "OptedOut"


def test_a_drill_result_has_the_documented_keys_whatever_the_orchestrator_writes_into_it() -> None:
    """The drill event's data is ``drillId`` and the orchestrator's per-resource result: every key the
    orchestrator writes into a result is documented (``?`` unless every result has it), and no other."""
    _, always, where_it_applies = documented()["`BackupSteward.Drill.<Outcome>`"]
    result_always, result_sometimes = _drill_result_keys()
    assert always == result_always | {"drillId"}
    assert where_it_applies == result_sometimes


def test_teardown_events_carry_what_the_report_says() -> None:
    (event,) = _published()["`BackupSteward.Teardown.<Outcome>`"]
    assert event.event_type == "BackupSteward.Teardown.Deleted" and event.subject == RSV
    assert event.data["deletedCount"] == 1 and event.data["report"] == {"jsonUrl": "j", "htmlUrl": "h"}
    reconciled_event, failed_event = _published()["`BackupSteward.Teardown.Reconciled` / `.ReconcileFailed`"]
    assert reconciled_event.event_type == events.RECONCILED and failed_event.event_type == events.RECONCILE_FAILED
    assert set(reconciled_event.data) == set(failed_event.data) and failed_event.data["marker"] == "kept"
