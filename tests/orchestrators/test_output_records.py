"""Orchestration outputs and custom statuses are records on the one codec (issue 16), and what instances that
ended before the change left in the task hub still reads: ``data/outputs_before_typed.json`` holds the outputs,
custom statuses and report activities' results ``make demo`` recorded on the code before (c88616c). Each is read
through its record and written again to the same JSON, keys and their order included."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from activities.compensation import reconciled, reconciliation_record
from entrypoints.routes import shown
from steward.domain.audit.runs import AuditSummary, RemediationSummary, RunSummary
from steward.domain.compensation import TeardownMarker, VaultReconciled
from steward.domain.drill_records import DrillRecorded, DrillReport, RestoreReadyPublished
from steward.domain.protection import ProtectionOutcome, ProtectionShown
from steward.domain.run_status import RunProgress
from steward.domain.teardown import TeardownOutcome
from steward.domain.teardown.results import ChunkResults, ReportStored, TeardownReport, TeardownShown
from steward.report.teardown import build_report

RECORDED: dict[str, Any] = json.loads((Path(__file__).parent / "data" / "outputs_before_typed.json").read_text())


def same(written: dict[str, Any], recorded: dict[str, Any]) -> None:
    assert written == recorded
    assert json.dumps(written) == json.dumps(recorded), "the same keys in the same order"


def test_an_audit_output_recorded_before_reads_as_its_summary_and_writes_back_unchanged() -> None:
    output = RECORDED["audit_estate"]["output"]
    summary = AuditSummary.from_record(output)
    assert summary.subscriptions == 2 and summary.findings == 15 and summary.coverage == 0.6
    assert summary.remediation.started == 4 and summary.remediation.outcomes == {"NoVault": 1, "Protected": 3}
    same(summary.to_record(), output)


def test_an_audit_summary_leaves_out_what_the_evaluation_did_not_say_and_keeps_a_zero() -> None:
    run = RunSummary.from_record({"report": "runs/r.json", "findings": 0})
    assert run.findings == 0 and run.html is None
    assert run.to_record() == {"report": "runs/r.json", "findings": 0}
    written = AuditSummary(**vars(run), remediation=RemediationSummary(limit=20)).to_record()
    assert list(written) == ["report", "findings", "subscriptions", "inventoryGaps", "events", "remediation",
                             "drillLeftovers"]


@pytest.mark.parametrize("name", ["audit_estate", "restore_drill"])
def test_a_progress_status_recorded_before_reads_and_writes_back_unchanged(name: str) -> None:
    status = RECORDED[name]["customStatus"]
    same(RunProgress.from_record(status).to_record(), status)


@pytest.mark.parametrize("status", [
    {"phase": "reconcile-teardowns"},
    {"phase": "drill", "done": 0, "total": 3, "resourceId": "/subscriptions/s/resourceGroups/g"},
    {"phase": "restoreJob", "resourceId": "/r", "jobId": "j-1"},
    {"phase": "validation", "resourceId": "/r", "waitUntil": "2026-01-01T00:00:00+00:00", "restored": []},
])
def test_every_progress_shape_the_orchestrations_write_round_trips(status: dict[str, Any]) -> None:
    same(RunProgress.from_record(status).to_record(), status)


@pytest.mark.parametrize("name", ["protect_resource", "add_blob_containers"])
def test_a_protection_output_and_status_recorded_before_read_and_write_back_unchanged(name: str) -> None:
    recorded = RECORDED[name]
    outcome = ProtectionOutcome.from_record(recorded["output"])
    same(outcome.to_record(), recorded["output"])
    same(outcome.shown().to_record(), recorded["customStatus"])
    same(ProtectionShown.from_record(recorded["customStatus"]).to_record(), recorded["customStatus"])


def test_the_status_routes_show_an_output_through_its_record_and_none_for_what_is_not_one() -> None:
    output = RECORDED["protect_resource"]["output"]
    assert shown(ProtectionOutcome, output) == output
    assert shown(ProtectionOutcome, None) is None, "still running: no output yet"
    assert shown(ProtectionOutcome, {"status": "NoSuchStatus"}) is None, "unreadable: logged, shown as none"
    # a protection's outcome written before the codec (snake_case) is shown with the record's keys
    old = {"status": "Protected", "resource_id": output["resourceId"], "vault_id": output["vaultId"]}
    assert shown(ProtectionOutcome, old) == ProtectionOutcome.from_record(old).to_record()
    assert shown(ProtectionOutcome, old)["vaultId"] == output["vaultId"]


def test_a_drill_report_recorded_before_reads_as_its_record_and_writes_back_unchanged() -> None:
    output = RECORDED["restore_drill"]["output"]
    report = DrillReport.from_record(output)
    assert len(report.results) == 3 and report.outcomes == {"Succeeded": 3} and not report.dry_run
    same(report.to_record(), output)
    same(shown(DrillReport, output) or {}, output)


def test_the_drill_record_activity_result_recorded_before_reads_and_writes_back_unchanged() -> None:
    recorded = RECORDED["drill_record"]
    result = DrillRecorded.from_record(recorded)
    assert result.events == 3 and result.report.startswith("drills/")
    same(result.to_record(), recorded)


@pytest.mark.parametrize("name", ["teardown_vault_plan", "teardown_vault_run"])
def test_a_teardown_report_and_status_recorded_before_read_and_write_back_unchanged(name: str) -> None:
    recorded = RECORDED[name]
    report = TeardownReport.from_record(recorded["output"])
    assert report.outcome in (TeardownOutcome.PLANNED, TeardownOutcome.DELETED)
    assert report.links is not None and str(report.links.html_url).endswith(".html")
    same(report.to_record(), recorded["output"])
    status = TeardownShown.from_record(recorded["customStatus"])
    assert status.phase == "finished" and status.fingerprint == report.fingerprint
    same(status.to_record(), recorded["customStatus"])


def test_the_teardown_report_activity_result_recorded_before_reads_and_writes_back_unchanged() -> None:
    recorded = RECORDED["teardown_record_report"]
    stored = ReportStored.from_record(recorded)
    assert stored.published == 1 and stored.html_bytes > 0
    same(stored.to_record(), recorded)
    assert stored.links().to_record() == RECORDED["teardown_vault_run"]["output"]["links"]


def test_a_report_built_now_is_the_report_recorded_before_but_for_its_links() -> None:
    recorded = dict(RECORDED["teardown_vault_run"]["output"])
    recorded.pop("links")
    report = TeardownReport.from_record(recorded)
    rebuilt = build_report(
        instance_id=report.instance_id,
        request={"vaultId": report.vault_id, "requestedBy": report.requested_by, "source": report.source,
                 "correlationId": report.correlation_id, "requestedAt": report.requested_at,
                 "dryRun": report.dry_run, "approvedFingerprint": report.approved_fingerprint},
        outcome=report.outcome, reason=report.reason, started_at=report.started_at, finished_at=report.finished_at,
        plan=report.plan, progress={"steps": list(report.steps), "deleted": list(report.deleted),
                                    "changedSettings": list(report.changed_settings)},
        remaining=report.remaining, restored=report.restored_settings, approved_by=report.approved_by,
        confirmed_by=report.confirmed_by,
    )
    same(rebuilt.to_record(), recorded)


RSV = ("/subscriptions/00000000-0000-4000-8000-000000000001/resourceGroups/g/providers/"
       "Microsoft.RecoveryServices/vaults/v")
#: ``teardown_reconcile_vault``'s results as the code before wrote them by hand (``{**record, ...}``)
_BEFORE = {"vaultId": RSV, "instanceId": "teardown-x", "markedAt": "2026-01-05T09:00:00Z",
           "earlier": {"softDelete": "Enabled"}, "reason": "its teardown no longer runs", "restored": []}


@pytest.mark.parametrize("recorded", [
    {**_BEFORE, "restored": [{"setting": "softDelete", "from": "Disabled", "to": "Enabled", "effect": "set"}],
     "effect": "reconciled", "marker": "removed"},
    {**_BEFORE, "effect": "unchanged", "detail": "the marker changed or went since it was read"},
    {**_BEFORE, "effect": "already-gone"},
])
def test_a_reconciliation_result_written_before_reads_and_writes_back_unchanged(recorded: dict[str, Any]) -> None:
    same(VaultReconciled.from_record(recorded).to_record(), recorded)


def test_the_reconciler_writes_the_records_it_wrote_by_hand_before() -> None:
    marker = TeardownMarker("teardown-x", datetime(2026, 1, 5, 9, tzinfo=UTC), (("softDelete", "Enabled"),))
    record = reconciliation_record(RSV, marker, "its teardown no longer runs")
    same(record, _BEFORE)
    restored = [{"setting": "softDelete", "from": "Disabled", "to": "Enabled", "effect": "failed", "error": "no"}]
    same(reconciled(record, restored, "kept"), {**_BEFORE, "restored": restored, "effect": "failed", "marker": "kept"})


@pytest.mark.parametrize("recorded", [{"published": 1}, {"published": 0}])
def test_the_restore_ready_publish_result_written_before_reads_and_writes_back_unchanged(
    recorded: dict[str, Any],
) -> None:
    same(RestoreReadyPublished.from_record(recorded).to_record(), recorded)


def test_a_teardown_chunk_output_recorded_before_reads_as_its_step_results_and_writes_back_unchanged() -> None:
    output = RECORDED["teardown_step_chunk"]["output"]
    chunk = ChunkResults.from_record(output)
    assert chunk.results and all(r.ok for r in chunk.results)
    same(chunk.to_record(), output)
