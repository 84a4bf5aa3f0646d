"""The audit end to end on the local host, through the real app (function_app.py): the timer starts
``audit_estate``, the orchestration reads the sandbox estate per subscription, stores the report, publishes
new and resolved findings as events, and the HTTP routes serve the latest report. Reports go to
Azurite (installed on first use, ``tests/azurite.py``)."""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import jsonschema
import pytest

REPO = Path(__file__).resolve().parents[2]
from sandbox.arm import SandboxConfig  # noqa: E402
from sandbox.arm.providers.authorization_model import seed_role_assignments  # noqa: E402
from sandbox.clock import VirtualClock  # noqa: E402
from sandbox.host.local import LocalStack  # noqa: E402
from steward import bootstrap  # noqa: E402
from steward.cloud.clients import CloudClients  # noqa: E402
from tests import azurite  # noqa: E402
from tests.integration.audit.audit_sandbox_estate import SUB1, SUB2, build, protect_vm  # noqa: E402

SCHEMA = REPO / "steward" / "report" / "schema" / "audit-result.v1.json"
TOPIC = "steward-audit"
#: the object id allowed to read the reports (STEWARD_AUDIT_ALLOWED_PRINCIPALS)
READER = "cccccccc-0000-4000-8000-0000000000c3"
@pytest.fixture(scope="module")
def azurite_blob(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A connection string to a fresh Azurite blob service (installed on first use)."""
    with azurite.running(tmp_path_factory.mktemp("azurite")) as connection:
        yield connection


class AuditStack:
    def __init__(self, tmp: Path, reports: dict[str, str]) -> None:
        clock = VirtualClock(scale=3600.0)
        self.stack = LocalStack(
            app="function_app",
            app_root=REPO,
            db_path=str(tmp / "durable.sqlite"),
            arm_config=SandboxConfig(clock=clock),
            run_timers=False,
            settings={"STEWARD_SUBSCRIPTIONS": f"{SUB1},{SUB2}", "STEWARD_AUDIT_SCHEDULE": "0 0 6 * * *",
                      "STEWARD_AUDIT_ALLOWED_PRINCIPALS": READER, **reports},
        ).start()
        sandbox = self.stack.sandbox
        # The real app also auto-protects what the sandbox creates; switch that doorway off here so the
        # estate keeps the gaps this test wants the audit to find.
        for subscription in self.stack.subscriptions:
            sandbox.events.unsubscribe(subscription)
        os.environ["STEWARD_EVENTS_TOPIC_ENDPOINT"] = f"{sandbox.endpoint}/sandbox/eventgrid/topics/{TOPIC}/api/events"
        os.environ["STEWARD_EVENTS_TOPIC_KEY"] = sandbox.config.topic_key
        bootstrap.reset()
        self.clients = CloudClients(sandbox.cloud_target(polling_interval=0.01))

    def run_timer(self) -> dict[str, Any]:
        runner, host = self.stack.runner, self.stack.host
        assert runner is not None and host is not None
        # Instance ids are per second, so a quick second run may reuse the id: compare creation times too.
        before = {(i.instance_id, i.created) for i in runner.query()}
        host.fire_timer("audit_timer")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            new = [i.instance_id for i in runner.query() if (i.instance_id, i.created) not in before]
            if new:
                return runner.wait_for(new[0], timeout=60)
            time.sleep(0.05)
        raise AssertionError("the timer started no orchestration")

    def get(self, path: str) -> tuple[int, dict[str, str], bytes]:
        host = self.stack.host
        assert host is not None
        request = urllib.request.Request(
            f"{host.origin}/api/{path}",
            # the reports need a verified caller besides the key (issue 14)
            headers={"x-functions-key": host.keys.function_key, **self.stack.bearer(READER)},
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as answer:
                return answer.status, dict(answer.headers), answer.read()
        except urllib.error.HTTPError as error:
            return error.code, dict(error.headers), error.read()

    def events(self) -> list[dict[str, Any]]:
        return list(self.stack.sandbox.events.topic_events(TOPIC))


@contextmanager
def running_audit_stack(tmp: Path, settings: dict[str, str]) -> Iterator[AuditStack]:
    """An ``AuditStack`` with these app settings, stopped afterwards with the process environment put back (the
    local stack exports the app's settings)."""
    saved = dict(os.environ)
    s = AuditStack(tmp, settings)
    try:
        yield s
    finally:
        s.stack.stop()
        os.environ.clear()
        os.environ.update(saved)
        bootstrap.reset()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, azurite_blob: str) -> Iterator[AuditStack]:
    with running_audit_stack(tmp_path_factory.mktemp("audit-e2e"),
                             {"STEWARD_REPORTS_CONNECTION_STRING": azurite_blob}) as s:
        yield s


@pytest.mark.slow
def test_the_timer_audits_the_estate_stores_the_report_and_publishes_findings(stack: AuditStack) -> None:
    assert stack.get("audits/latest")[0] == 404
    built = build(stack.stack.sandbox, stack.clients)
    # SUB2 crowded with 3,200 role assignments (80 % of Azure's 4,000): CAP-003, through the same outputs
    seed_role_assignments(stack.stack.sandbox.store, "0c0ffee0-0000-4000-8000-000000003200", "Reader",
                          [f"/subscriptions/{SUB2}/resourceGroups/rg-team{n}" for n in range(3200)],
                          stack.stack.sandbox.clock.now())

    first = stack.run_timer()
    assert first["runtimeStatus"] == "Completed", first
    output = first["output"]
    assert output["subscriptions"] == 2 and output["inventoryGaps"] == 0
    assert output["findingsBySeverity"]["critical"] > 0
    assert output["remediation"]["enabled"] is False and output["remediation"]["started"] == 0, "report only"

    status, headers, body = stack.get("audits/latest")
    assert status == 200 and headers["Content-Type"].startswith("application/json")
    document = json.loads(body)
    jsonschema.validate(document, json.loads(SCHEMA.read_text()))
    naked = built.ids["vm-naked"].lower()
    assert any(f["control"] == "BKP-001" and f["resourceId"].lower() == naked for f in document["findings"])
    [crowded] = [f for f in document["findings"] if f["control"] == "CAP-003"]
    assert crowded["resourceId"] == f"/subscriptions/{SUB2}" and crowded["details"]["roleAssignments"] == "3200"

    status, headers, page = stack.get("audits/latest.html")
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    assert "default-src 'none'" in headers["Content-Security-Policy"]
    assert page.decode().count("data-chart=") == 5
    assert "CAP-003" in page.decode() and "3,200 role assignments" in page.decode()

    opened = [e for e in stack.events() if e["eventType"] == "BackupSteward.Audit.FindingOpened"]
    assert len(opened) == len(document["findings"])
    assert {e["data"]["id"] for e in opened} == {f["id"] for f in document["findings"]}
    assert [e["subject"] for e in opened if e["data"]["control"] == "CAP-003"] == [f"/subscriptions/{SUB2}"]

    # Fix one finding, run again: one resolved event, nothing new opened, a trend of two runs.
    protect_vm(stack.clients, built.ids["rsv"], built.ids["vm-naked"])
    stack.stack.sandbox.advance(2 * 3600)
    second = stack.run_timer()
    assert second["runtimeStatus"] == "Completed", second
    deadline = time.monotonic() + 30
    later = json.loads(stack.get("audits/latest")[2])
    while len(later["trend"]) < 2 and time.monotonic() < deadline:  # the status may be read just before the
        time.sleep(0.05)  # second run's report lands
        later = json.loads(stack.get("audits/latest")[2])
    assert len(later["trend"]) == 2
    resolved = [e for e in stack.events() if e["eventType"] == "BackupSteward.Audit.FindingResolved"]
    assert [(e["data"]["control"], e["data"]["resourceId"].lower()) for e in resolved] == [("BKP-001", naked)]
    assert later["summary"]["resolved"] == 1
