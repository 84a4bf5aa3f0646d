"""``steward why`` without a stack: the answer from a Durable store file, an audit report and given facts."""

from __future__ import annotations

import io
import json
from pathlib import Path

from sandbox.durable.store import DurableStore
from steward.why_cli import latest_outcome, main

SUB = "00000000-0000-4000-8000-000000000001"
VM = f"/subscriptions/{SUB}/resourceGroups/rg-app/providers/Microsoft.Compute/virtualMachines/vm-1"


def _store(path: Path, rows: list[tuple[str, str, str, object, object]]) -> None:
    store = DurableStore(path)
    with store.transaction() as conn:
        for instance, name, status, output, updated in rows:
            conn.execute(
                "INSERT INTO instances (instance_id, name, execution_id, status, input, output, custom_status, "
                "created, updated, correlation_id, generation) VALUES (?, ?, 'e', ?, ?, ?, NULL, ?, ?, 'c', 0)",
                (instance, name, status, json.dumps({"resourceId": VM}), json.dumps(output), updated, updated))


def test_the_newest_outcome_wins_wherever_it_sits_in_an_output_in_either_record_shape(tmp_path: Path) -> None:
    db = tmp_path / "durable.sqlite"
    _store(db, [
        ("protect:1", "protect_resource", "Completed",
         {"status": "NoVault", "resource_id": VM, "reason": "no vault", "rule": "vms"}, "2026-01-01T00:00:00Z"),
        ("audit-all", "audit_estate", "Completed",
         {"remediation": {"results": [{"status": "Protected", "resourceId": VM.upper(), "rule": "vms"}]}},
         "2026-01-02T00:00:00Z"),
    ])
    outcome, running = latest_outcome(db, VM)
    assert outcome is not None and outcome["status"] == "Protected" and outcome["instance"] == "audit-all"
    assert running is None


def test_why_without_an_outcome_or_audit_answers_from_the_rules_and_exits_1(tmp_path: Path) -> None:
    out, err = io.StringIO(), io.StringIO()
    code = main([VM, "--state-dir", str(tmp_path), "--location", "westeurope", "--tag", "backup-steward:opt-out=true",
                 "--output", "json"], stdout=out, stderr=err)
    assert code == 1, err.getvalue()
    document = json.loads(out.getvalue())
    assert document["outcome"] is None and document["audit"] is None
    assert document["rules"]["expected"] == "OptedOut" and document["rules"]["facts"]["from"] == "the command line"
    assert document["why"].startswith("no outcome recorded yet; the rules say OptedOut: tagged backup-steward:opt-out")


def test_why_with_nothing_to_read_is_a_usage_error(tmp_path: Path) -> None:
    err = io.StringIO()
    assert main([VM, "--state-dir", str(tmp_path)], stdout=io.StringIO(), stderr=err) == 2
    assert "nothing to read" in err.getvalue()
    assert main(["not-an-id", "--state-dir", str(tmp_path)], stdout=io.StringIO(), stderr=err) == 2


def test_the_table_writes_no_terminal_control_characters_from_what_it_read(tmp_path: Path) -> None:
    """What the table shows comes from outcomes and audit findings that carry Azure's texts and resources' tag
    values (anyone who may tag a resource writes them): escape sequences in them must not reach the operator's
    terminal (retitle it, clear it, hide a line)."""
    db = tmp_path / "durable.sqlite"
    hostile = "no vault \x1b]0;owned\x07\x1b[2J\x1b[1A\r\u009b31m\u202ereversed"
    _store(db, [("protect:1", "protect_resource", "Completed",
                 {"status": "NoVault", "resourceId": VM, "reason": hostile, "rule": "vms"}, "2026-01-01T00:00:00Z")])
    out = io.StringIO()
    main([VM, "--db", str(db), "--state-dir", str(tmp_path), "--no-arm", "--location", "westeurope"],
         stdout=out, stderr=io.StringIO())
    shown = out.getvalue()
    assert "no vault" in shown and "reversed" in shown
    lines = shown.splitlines()
    assert all(c.isprintable() for line in lines for c in line), [line for line in lines if not line.isprintable()]


def test_why_prints_csv_field_value_rows(tmp_path: Path) -> None:
    """Issue 20 item 8: ``--output table|json|csv`` on every command that prints results."""
    import csv

    out, err = io.StringIO(), io.StringIO()
    code = main([VM, "--state-dir", str(tmp_path), "--location", "westeurope", "--output", "csv"],
                stdout=out, stderr=err)
    assert code in (0, 1), err.getvalue()
    rows = list(csv.DictReader(out.getvalue().splitlines()))
    assert [r["field"] for r in rows][:3] == ["resource", "protected", "why"]
    assert rows[0]["value"] == VM
