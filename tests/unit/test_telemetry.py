"""The app's metrics (issue 20 item 7), read back with the OpenTelemetry SDK's in-memory reader: no network."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from steward import telemetry

SUB = "11111111-1111-1111-1111-111111111111"
VM = f"/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm1"
DISK = f"/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.Compute/disks/d1"


@pytest.fixture
def reader() -> Iterator[InMemoryMetricReader]:
    yield telemetry.use_in_memory()
    telemetry.use_meter_provider(None)


def test_outcomes_are_counted_by_status_and_type_and_protection_time_is_measured_from_the_event(
    reader: InMemoryMetricReader,
) -> None:
    now = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
    telemetry.record_protections(
        [{"status": "Protected", "resource_id": VM}, {"status": "OptedOut", "resource_id": DISK}],
        since="2026-01-01T11:58:30+00:00", at=now.isoformat(),
    )
    telemetry.record_protections([{"status": "Protected", "resource_id": DISK}], since=None, at=now.isoformat())
    seen = telemetry.snapshot(reader)
    counted = {(a["outcome"], a["resource_type"]): v for a, v in seen[telemetry.OUTCOMES]}
    assert counted == {("Protected", "Microsoft.Compute/virtualMachines"): 1,
                       ("OptedOut", "Microsoft.Compute/disks"): 1,
                       ("Protected", "Microsoft.Compute/disks"): 1}
    [(attributes, histogram)] = seen[telemetry.DURATION]  # an outcome without an event time adds no duration
    assert attributes == {"resource_type": "Microsoft.Compute/virtualMachines"}
    assert histogram == {"count": 1, "sum": 90.0, "max": 90.0}


def test_protection_time_reads_times_leniently_a_time_without_a_zone_is_utc(reader: InMemoryMetricReader) -> None:
    protected = [{"status": "Protected", "resource_id": VM}]
    telemetry.record_protections(protected, since="2026-01-01T11:58:30", at="2026-01-01T12:00:00.0000000Z")
    telemetry.record_protections(protected, since="soon", at="2026-01-01T12:00:00Z")  # no time: no duration
    [(_, histogram)] = telemetry.snapshot(reader)[telemetry.DURATION]
    assert histogram == {"count": 1, "sum": 90.0, "max": 90.0}


def test_coverage_is_a_percentage_per_subscription_and_the_last_audit_wins(reader: InMemoryMetricReader) -> None:
    telemetry.record_coverage({SUB: 0.5, "22222222-2222-2222-2222-222222222222": 1.0})
    telemetry.record_coverage({SUB: 0.8333})
    coverage = {a["subscription_id"]: v for a, v in telemetry.snapshot(reader)[telemetry.COVERAGE]}
    assert coverage == {SUB: 83.33, "22222222-2222-2222-2222-222222222222": 100.0}


def test_teardown_counts_only_what_was_deleted_by_target_type(reader: InMemoryMetricReader) -> None:
    telemetry.record_teardown({"deleted": [
        {"type": "protectedItem", "effect": "deleted"}, {"type": "protectedItem", "effect": "soft-deleted"},
        {"type": "container", "effect": "unregistered"}, {"type": "vault", "effect": "unchanged"}, "junk"]})
    counted = {a["target_type"]: v for a, v in telemetry.snapshot(reader)[telemetry.ITEMS_DELETED]}
    assert counted == {"protectedItem": 2, "container": 1}


def test_the_summary_prints_every_metric(reader: InMemoryMetricReader) -> None:
    telemetry.record_protections([{"status": "Protected", "resource_id": VM}], since="2026-01-01T00:00:00Z",
                                 at="2026-01-01T00:02:00+00:00")
    telemetry.record_coverage({SUB: 0.75})
    telemetry.record_teardown({"deleted": [{"type": "vault", "effect": "deleted"}]})
    assert telemetry.summary_lines(reader) == [
        "steward.protection.outcomes: Protected 1",
        "steward.protection.duration: 1 protected, mean 120 s, max 120 s",
        f"steward.coverage.percent: {SUB} 75.0%",
        "steward.teardown.items_deleted: 1",
    ]


def test_drill_rto_is_measured_per_drilled_resource_and_summarised_only_when_drills_ran(
    reader: InMemoryMetricReader,
) -> None:
    """Issue 20 item 7 asks for the drill RTO "when drills exist": a drill report's ``rtoSeconds`` (the restore
    job's start to end) per result, by workload and outcome; a result without one (dry run, restore refused)
    records nothing."""
    assert not any(line.startswith(telemetry.DRILL_RTO) for line in telemetry.summary_lines(reader))
    telemetry.record_drill({"results": [
        {"resourceId": VM, "workload": "virtualMachine", "outcome": "Succeeded", "rtoSeconds": 600.0},
        {"resourceId": DISK, "workload": "disk", "outcome": "Succeeded", "rtoSeconds": 120},
        {"resourceId": DISK, "workload": "disk", "outcome": "RestoreFailed", "rtoSeconds": None},
        "junk",
    ]})
    seen = {(a["workload"], a["outcome"]): v for a, v in telemetry.snapshot(reader)[telemetry.DRILL_RTO]}
    assert seen == {("virtualMachine", "Succeeded"): {"count": 1, "sum": 600.0, "max": 600.0},
                    ("disk", "Succeeded"): {"count": 1, "sum": 120, "max": 120}}
    assert telemetry.summary_lines(reader)[-1] == "steward.drill.rto: 2 drilled, mean 360 s, max 600 s"


def test_without_a_connection_string_nothing_is_exported_and_recording_is_harmless() -> None:
    telemetry.use_meter_provider(None)
    assert telemetry.configure_from_env({}) is False
    assert telemetry.configure_from_env({telemetry.CONNECTION_STRING: "  "}) is False
    telemetry.record_protections([{"status": "Failed", "resource_id": VM}])  # the API's no-op meter


def test_the_identity_that_signs_telemetry_comes_from_the_authentication_string() -> None:
    # infra/modules/function-app.bicep writes 'ClientId=<id>;Authorization=AAD'
    assert telemetry._client_id("ClientId=abc;Authorization=AAD") == "abc"
    assert telemetry._client_id("Authorization=AAD") is None
