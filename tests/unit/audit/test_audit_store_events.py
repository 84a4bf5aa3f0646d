"""Report store (local directory adapter, names, latest/runs layout) and the finding events."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest

from steward.domain.audit import audit
from steward.report.events import OPENED, RESOLVED, finding_events
from steward.report.store import (
    LATEST_HTML,
    LATEST_JSON,
    LocalReportStore,
    ReportStoreError,
    load_latest,
    save_result,
    store_for,
)
from tests.unit.audit.audit_estate_builders import NOW, SUB_A, healthy_estate, rules
from tests.unit.audit.test_audit_result import messy_estate


def test_save_writes_the_run_and_latest_and_load_reads_it_back(tmp_path: Path) -> None:
    store = LocalReportStore(tmp_path)
    result = audit(messy_estate(), rules(), NOW)
    saved = save_result(store, result)
    assert saved.json_name == "runs/20261125T080000Z.json"
    assert (tmp_path / "runs" / "20261125T080000Z.html").read_text().startswith("<!DOCTYPE html>")
    assert store.get(LATEST_JSON) == store.get(saved.json_name)
    assert store.get(LATEST_HTML) == store.get(saved.html_name)
    latest = load_latest(store)
    assert latest is not None and latest.findings == result.findings


def test_load_latest_is_none_without_a_run_or_with_an_unreadable_one(tmp_path: Path) -> None:
    store = LocalReportStore(tmp_path)
    assert load_latest(store) is None
    store.put(LATEST_JSON, b'{"schemaVersion": "9.0"}', "application/json")
    assert load_latest(store) is None
    store.put(LATEST_JSON, b"not json", "application/json")
    assert load_latest(store) is None


@pytest.mark.parametrize("name", ["", "/etc/passwd", "../x.json", "runs/../../x", "runs//x", "./x"])
def test_report_names_cannot_leave_the_store(tmp_path: Path, name: str) -> None:
    store = LocalReportStore(tmp_path / "reports")
    with pytest.raises(ReportStoreError, match="invalid report name"):
        store.put(name, b"x", "text/plain")
    with pytest.raises(ReportStoreError):
        store.get(name)


def test_without_blob_settings_the_store_is_a_local_directory(tmp_path: Path) -> None:
    store = store_for(account_url=None, connection_string=None, container="c", local_directory=tmp_path)
    assert isinstance(store, LocalReportStore) and store.directory == tmp_path


def test_events_open_new_findings_and_resolve_gone_ones() -> None:
    first = audit(messy_estate(), rules(), NOW)
    opened = finding_events(first)
    assert len(opened) == len(first.findings)
    assert {e.event_type for e in opened} == {OPENED}
    assert {e.subject for e in opened} == {f.resource_id for f in first.findings}
    assert all(e.data["state"] == "open" and e.data["auditGeneratedAt"] == "2026-11-25T08:00:00Z" for e in opened)
    json.dumps([e.data for e in opened])  # JSON-safe for Event Grid

    second = audit(healthy_estate(), rules(), NOW + timedelta(days=1), previous=first)
    events = finding_events(second)
    assert {e.event_type for e in events} == {RESOLVED}
    assert {e.data["id"] for e in events} == {f.id for f in first.findings}
    # Nothing changed since: no event. (Without an RPO: two days on, the healthy estate's backups are stale.)
    unchanged = audit(healthy_estate(), rules(rpo_hours=None), NOW + timedelta(days=2), previous=second)
    assert finding_events(unchanged) == []


def test_a_cap003_finding_reaches_the_json_report_the_html_page_and_the_events(tmp_path: Path) -> None:
    """The role assignment quota warning travels like every finding: the stored JSON (valid against the published
    schema), the HTML report and a FindingOpened event, then a FindingResolved once under the threshold."""
    import jsonschema

    from steward.domain.audit import RoleAssignmentCount
    from tests.unit.audit.test_audit_result import schema

    estate = healthy_estate()
    crowded = replace(estate, role_assignments=(RoleAssignmentCount(SUB_A, 3650, {"bbbb": 3000}),))
    result = audit(crowded, rules(), NOW)
    store = LocalReportStore(tmp_path)
    saved = save_result(store, result)
    stored = json.loads(store.get(saved.json_name) or b"{}")
    jsonschema.validate(stored, schema())
    [finding] = [f for f in stored["findings"] if f["control"] == "CAP-003"]
    assert finding["resourceId"] == f"/subscriptions/{SUB_A}" and finding["details"]["roleAssignments"] == "3650"
    assert "CAP-003" in [c["id"] for c in stored["controls"]]
    page = (store.get(saved.html_name) or b"").decode()
    assert "CAP-003" in page and "3,650 role assignments" in page
    [opened] = [e for e in finding_events(result) if e.data["control"] == "CAP-003"]
    assert opened.event_type == OPENED and opened.subject == f"/subscriptions/{SUB_A}"
    assert opened.data["details"]["limit"] == "4000" and "protect.roleScope" in str(opened.data["why"])
    calm = replace(estate, role_assignments=(RoleAssignmentCount(SUB_A, 3100, {}),))
    [resolved] = [e for e in finding_events(audit(calm, rules(), NOW + timedelta(hours=1), previous=result))
                  if e.data["control"] == "CAP-003"]
    assert resolved.event_type == RESOLVED
