"""The audit's activities write the records ``audit_estate`` reads (``steward/domain/audit/runs.py``, the one record
codec, camelCase keys): ``audit_read_subscription`` wrote ``subscription_id`` before (issue 16 step 4). Histories
holding the old key still replay (``tests/orchestrators/test_audit_and_compensation_records.py``)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from activities import audit as audit_activities
from steward import bootstrap
from steward.cloud.clients import CloudClients
from steward.domain.audit.inputs import SubscriptionRead
from steward.domain.audit.runs import AuditPart, AuditScope
from steward.report.store import LocalReportStore
from tests.integration.audit.audit_sandbox_estate import SUB1, BuiltEstate


def _activity(function: Any) -> Any:
    return function._function.get_user_function() if hasattr(function, "_function") else function


def test_the_audit_activities_write_camel_case_records(
    clients: CloudClients, built: BuiltEstate, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bootstrap, "clients", lambda: clients)
    monkeypatch.setattr(bootstrap, "report_store", lambda: LocalReportStore(tmp_path))
    part = _activity(audit_activities.audit_read_subscription)({"run": "run-1", "subscription_id": SUB1})
    assert part["subscriptionId"] == SUB1 and "subscription_id" not in part
    read = AuditPart.from_record(part)
    assert read.resources > 0 and (tmp_path / read.part).is_file()
    scope = _activity(audit_activities.audit_scope)({"subscriptions": [SUB1]})
    assert AuditScope.from_record(scope).subscriptions == (SUB1,)
    assert scope == AuditScope((SUB1,)).to_record()


def test_an_audit_read_queued_with_the_old_subscription_id_key_reads_as_its_record(
    clients: CloudClients, built: BuiltEstate, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 16 step 4: the audit activities' inputs are records (``steward/domain/audit/inputs.py``); a read queued
    before, with ``subscription_id``, reads the same subscription into the same part as the record does."""
    monkeypatch.setattr(bootstrap, "clients", lambda: clients)
    monkeypatch.setattr(bootstrap, "report_store", lambda: LocalReportStore(tmp_path))
    read = _activity(audit_activities.audit_read_subscription)
    now = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
    old = read({"run": "run-2", "subscription_id": SUB1, "now": now.isoformat()})
    stored = (tmp_path / old["part"]).read_bytes()
    new = read(SubscriptionRead("run-2", SUB1, now).to_record())
    assert new == old and (tmp_path / new["part"]).read_bytes() == stored
