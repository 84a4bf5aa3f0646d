"""``steward audit`` (steward.audit_cli.main) against the sandbox estate: formats, exit codes, progress."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import jsonschema
import pytest

from sandbox.arm import ArmSandbox
from steward.audit_cli import EXIT_ERROR, EXIT_FINDINGS, EXIT_OK, main
from tests.integration.audit.audit_sandbox_estate import SUB1, SUB2, BuiltEstate

SCHEMA = Path(__file__).resolve().parents[3] / "steward" / "report" / "schema" / "audit-result.v1.json"


def run(sandbox: ArmSandbox, *args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    target = [
        "--arm-endpoint",
        sandbox.endpoint,
        "--ca-bundle",
        sandbox.ca_bundle,
        "--sandbox-token-url",
        sandbox.token_url,
    ]
    code = main([*target, *args], stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


def test_json_output_follows_the_schema_and_names_the_findings(sandbox: ArmSandbox, built: BuiltEstate) -> None:
    code, out, err = run(sandbox, "--format", "json", "--no-progress")
    assert code == EXIT_OK, err
    document = json.loads(out)
    jsonschema.validate(document, json.loads(SCHEMA.read_text()))
    assert {SUB1, SUB2} <= set(document["subscriptions"])
    by_resource = {(f["control"], f["resourceId"].lower()) for f in document["findings"]}
    assert ("BKP-001", built.ids["vm-naked"].lower()) in by_resource
    assert ("VLT-005", built.ids["rsv-empty"].lower()) in by_resource
    # Judged in the sandbox's Azure time (the estate build advanced it hours past the wall clock).
    generated = datetime.fromisoformat(document["generatedAt"].replace("Z", "+00:00"))
    assert generated > datetime.now(UTC) + timedelta(hours=1)
    assert abs(generated - sandbox.clock.now()) < timedelta(days=1)


def test_now_is_read_as_an_arm_time_and_a_bad_one_is_refused(sandbox: ArmSandbox, built: BuiltEstate) -> None:
    code, out, err = run(sandbox, "--format", "json", "--no-progress", "--now", "2026-11-25T08:00:00.1234567Z")
    assert code == EXIT_OK, err
    assert json.loads(out)["generatedAt"].startswith("2026-11-25T08:00:00")
    code, _, err = run(sandbox, "--no-progress", "--now", "yesterday")
    assert code == EXIT_ERROR and "'yesterday' is not an ISO 8601 date-time" in err


def test_fail_on_sets_the_exit_code(sandbox: ArmSandbox, built: BuiltEstate) -> None:
    assert run(sandbox, "--fail-on", "critical", "--no-progress")[0] == EXIT_FINDINGS
    # The second subscription holds only an empty vault: one info finding.
    assert run(sandbox, "--subscription", SUB2, "--fail-on", "low", "--no-progress")[0] == EXIT_OK
    code, _, err = run(sandbox, "--subscription", SUB2, "--fail-on", "info", "--no-progress")
    assert code == EXIT_FINDINGS
    assert "1 finding(s) at or above info" in err


def test_html_output_to_a_file(sandbox: ArmSandbox, built: BuiltEstate, tmp_path: Path) -> None:
    target = tmp_path / "audit.html"
    code, out, err = run(sandbox, "--format", "html", "--output", str(target), "--no-progress")
    assert code == EXIT_OK and out == ""
    page = target.read_text()
    assert page.startswith("<!DOCTYPE html>")
    assert page.count("data-chart=") == 5
    assert f"wrote html report to {target}" in err


def test_table_output_with_a_progress_bar_on_stderr(sandbox: ArmSandbox, built: BuiltEstate) -> None:
    code, out, err = run(sandbox, "--format", "table", "--progress", "--subscription", SUB1, "--subscription", SUB2)
    assert code == EXIT_OK
    assert out.startswith("Audit ")
    assert "BKP-001" in out
    assert "[" + "#" * 30 + "] 2/2 subscriptions" in err


def test_previous_run_gives_new_and_resolved(sandbox: ArmSandbox, built: BuiltEstate, tmp_path: Path) -> None:
    first = tmp_path / "first.json"
    assert run(sandbox, "--format", "json", "--output", str(first), "--no-progress")[0] == EXIT_OK
    code, out, _ = run(sandbox, "--format", "json", "--previous", str(first), "--no-progress")
    assert code == EXIT_OK
    document = json.loads(out)
    assert document["summary"]["new"] == 0 and document["summary"]["resolved"] == 0
    assert len(document["trend"]) == 2


def test_bad_arguments_exit_2_with_a_clear_message(sandbox: ArmSandbox) -> None:
    code, _, err = run(sandbox, "--fail-on", "urgent")
    assert code == EXIT_ERROR
    assert "unknown severity 'urgent'" in err
    code, _, err = run(sandbox, "--previous", "/nonexistent/previous.json")
    assert code == EXIT_ERROR and "previous.json" in err


def test_output_names_the_format_as_on_every_steward_command(sandbox: ArmSandbox, built: BuiltEstate) -> None:
    code, out, err = run(sandbox, "--output", "csv", "--no-progress")
    assert code == EXIT_OK, err
    header, *rows = out.splitlines()
    assert header == "severity,control,title,resourceId,resourceType,subscriptionId,location,why,fix"
    assert any(",BKP-001," in row and built.ids["vm-naked"].lower() in row.lower() for row in rows)
    code, out, _ = run(sandbox, "--output", "json", "--subscription", SUB2, "--no-progress")
    assert code == EXIT_OK and json.loads(out)["subscriptions"] == [SUB2]


def test_the_role_assignment_threshold_comes_from_the_settings(
    sandbox: ArmSandbox, built: BuiltEstate, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without target flags ``steward audit`` reads the settings, STEWARD_ROLE_ASSIGNMENT_WARN_PERCENT too: 40 role
    assignments in SUB1 are 1 % of Azure's 4,000 (CAP-003 at 1 %, not at the default 80 %)."""
    from sandbox.arm.providers.authorization_model import seed_role_assignments

    seeded = seed_role_assignments(sandbox.store, "0c11a000-0000-4000-8000-000000000040", "Reader",
                                   [f"/subscriptions/{SUB1}/resourceGroups/rg-cli{n}" for n in range(40)],
                                   sandbox.clock.now())
    for name, value in {"STEWARD_ARM_ENDPOINT": sandbox.endpoint, "STEWARD_CA_BUNDLE": sandbox.ca_bundle,
                        "STEWARD_CREDENTIAL": "sandbox", "STEWARD_SANDBOX_TOKEN_URL": sandbox.token_url}.items():
        monkeypatch.setenv(name, value)
    try:
        found = {}
        for percent in ("80", "1"):
            monkeypatch.setenv("STEWARD_ROLE_ASSIGNMENT_WARN_PERCENT", percent)
            out, err = io.StringIO(), io.StringIO()
            assert main(["--format", "json", "--no-progress", "--subscription", SUB1], stdout=out, stderr=err) in (
                EXIT_OK, EXIT_FINDINGS), err.getvalue()
            found[percent] = [f for f in json.loads(out.getvalue())["findings"] if f["control"] == "CAP-003"]
    finally:
        for assignment in seeded:
            sandbox.store.delete(assignment, with_children=False)
    assert found["80"] == []
    [finding] = found["1"]
    assert finding["resourceId"] == f"/subscriptions/{SUB1}" and finding["details"]["thresholdPercent"] == "1"
