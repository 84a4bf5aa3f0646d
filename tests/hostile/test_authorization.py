"""Teardown authorization: the per-caller rate limit (429 + Retry-After), the audit line of every request, and
no secret in the logs of a full run (protect + teardown + audit on the local host with a topic key, a
connection string and function keys in play)."""

from __future__ import annotations

import io
import json
import logging
import re
import secrets
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from entrypoints.caller_checks import AUDIT_EVENT, CallerRateLimit, RequestRefused, audit_record
from sandbox.estate import Estate
from sandbox.host.local import OUTCOME_TOPIC
from steward import bootstrap
from steward.logs import ContextFilter, JsonFormatter
from tests import azurite
from tests.hostile.conftest import ADMIN, STRANGER, SUB1, App, forged_platform_headers, start_app

UNKNOWN = "teardowns/teardown-0000000000000000-plan"
FINGERPRINT = {"fingerprint": "sha256:" + "0" * 64}

# ---- the meter ------------------------------------------------------------------------------------------


def test_a_caller_gets_its_rate_then_429_with_the_seconds_to_wait() -> None:
    meter = CallerRateLimit(6)  # one token every 10 s, burst 6
    for _ in range(6):
        meter.take("alice", now=100.0)
    with pytest.raises(RequestRefused) as refused:
        meter.take("alice", now=100.0)
    assert refused.value.status == 429 and refused.value.code == "TooManyRequests"
    assert refused.value.retry_after == 10
    assert refused.value.headers() == {"Retry-After": "10"}
    meter.take("bob", now=100.0)  # another caller has its own bucket
    with pytest.raises(RequestRefused) as sooner:
        meter.take("alice", now=104.0)
    assert sooner.value.retry_after == 6
    meter.take("alice", now=110.0)  # refilled one token


def test_refused_attempts_do_not_drain_a_bucket_below_empty() -> None:
    meter = CallerRateLimit(60)  # one token a second
    for _ in range(60):
        meter.take("c", now=0.0)
    for _ in range(100):
        with pytest.raises(RequestRefused):
            meter.take("c", now=0.5)
    meter.take("c", now=1.0)


def test_the_meter_forgets_the_least_recent_callers_beyond_its_bound() -> None:
    meter = CallerRateLimit(1, max_callers=3)
    for name in ("a", "b", "c", "d"):
        meter.take(name, now=0.0)
    meter.take("a", now=0.0)  # forgotten, so full again
    with pytest.raises(RequestRefused):
        meter.take("d", now=0.0)


def test_the_audit_record_says_who_when_what_and_the_decision() -> None:
    at = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)
    record = audit_record(
        action="start",
        at=at,
        principal_id=ADMIN,
        status=202,
        vault_id="/subscriptions/x\n" + "v" * 1000,
        instance_id="teardown-1",
        dry_run=True,
        correlation_id="c-1",
    )
    assert record["event"] == AUDIT_EVENT
    assert (record["action"], record["at"], record["principal_id"], record["decision"]) == (
        "start",
        at.isoformat(),
        ADMIN,
        "accepted",
    )
    assert "\n" not in record["vault_id"] and len(record["vault_id"]) <= 256
    assert audit_record(action="start", at=at, principal_id=None, status=429)["decision"] == "throttled"
    assert audit_record(action="start", at=at, principal_id=None, status=403)["decision"] == "refused"


# ---- on the running host --------------------------------------------------------------------------------


@pytest.fixture
def metered(tmp_path: Path) -> Iterator[App]:
    running = start_app(tmp_path, {"STEWARD_TEARDOWN_RATE_PER_MINUTE": "3"})
    try:
        yield running
    finally:
        running.stack.stop()
        bootstrap.reset()


def _audit_lines(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if getattr(r, "event", None) == AUDIT_EVENT]


def test_teardown_requests_are_metered_per_caller_and_every_one_is_audited(
    metered: App, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="steward.audit")
    body = json.dumps(FINGERPRINT).encode()
    answers = [metered.request("POST", f"{UNKNOWN}/approve", body, metered.auth(ADMIN))[0] for _ in range(3)]
    assert answers == [404, 404, 404]
    status, headers, answer = metered.request("POST", f"{UNKNOWN}/approve", body, metered.auth(ADMIN))
    assert status == 429
    assert json.loads(answer)["code"] == "TooManyRequests"
    assert 1 <= int(headers["Retry-After"]) <= 20
    # reads are not metered; another caller has its own bucket
    assert metered.request("GET", UNKNOWN, None, metered.auth(ADMIN))[0] == 404
    assert metered.request("POST", f"{UNKNOWN}/cancel", None, metered.auth(STRANGER))[0] == 403
    lines = _audit_lines(caplog)
    assert [(r.action, r.decision, r.status) for r in lines] == [  # type: ignore[attr-defined]
        *[("approve", "refused", 404)] * 3,
        ("approve", "throttled", 429),
        ("status", "refused", 404),
        ("cancel", "refused", 403),
    ]
    assert [r.principal_id for r in lines] == [ADMIN] * 5 + [STRANGER]  # type: ignore[attr-defined]
    assert all(r.at and r.instance_id in (None, UNKNOWN.split("/")[1]) for r in lines)  # type: ignore[attr-defined]


def test_an_accepted_teardown_is_audited_with_its_vault_and_instance(
    metered: App, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="steward.audit")
    estate = Estate(metered.clients, SUB1)
    estate.resource_group("rg-audit", "westeurope")
    vault = estate.recovery_services_vault("rg-audit", "rsv-audit", "westeurope")
    status, _, answer = metered.request(
        "POST",
        "teardowns",
        json.dumps({"vaultId": vault}).encode(),
        {**metered.auth(ADMIN), "x-ms-client-request-id": "corr-42"},
    )
    assert status == 202, answer
    started = json.loads(answer)
    (line,) = _audit_lines(caplog)
    assert (line.action, line.decision, line.status, line.principal_id) == ("start", "accepted", 202, ADMIN)  # type: ignore[attr-defined]
    assert line.vault_id.lower() == vault.lower() and line.instance_id == started["id"]  # type: ignore[attr-defined]
    assert line.dry_run is True and line.correlation_id == "corr-42"  # type: ignore[attr-defined]
    metered.settle()


# ---- secrets never logged ------------------------------------------------------------------------------


@pytest.fixture
def blob_connection(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with azurite.running(tmp_path_factory.mktemp("azurite")) as connection:
        yield connection


@pytest.fixture
def full_run(tmp_path: Path, blob_connection: str) -> Iterator[tuple[App, list[str]]]:
    topic_key = "tk-" + secrets.token_urlsafe(24)
    settings = {"STEWARD_TEARDOWN_RATE_PER_MINUTE": "60", "STEWARD_REPORTS_CONNECTION_STRING": blob_connection}
    running = start_app(tmp_path, settings, topic_key=topic_key)
    keys = running.stack.describe()["keys"]
    secret_values = [topic_key, *keys.values(), blob_connection, *re.findall(r"AccountKey=([^;]+)", blob_connection)]
    try:
        yield running, secret_values
    finally:
        running.stack.stop()
        bootstrap.reset()


def _published(app: App, prefix: str) -> list[dict[str, Any]]:
    return [e for e in app.sandbox.events.topic_events(OUTCOME_TOPIC) if str(e.get("eventType", "")).startswith(prefix)]


def _wait(app: App, predicate: Any, what: str, timeout: float = 60.0) -> Any:
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def test_no_secret_appears_in_the_logs_of_a_full_run(
    full_run: tuple[App, list[str]], capfd: pytest.CaptureFixture[str]
) -> None:
    app, secret_values = full_run
    assert all(len(s) >= 16 for s in secret_values), "secrets short enough to match by chance"
    sink = io.StringIO()
    handler = logging.StreamHandler(sink)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(ContextFilter())
    root = logging.getLogger()
    previous = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        # protect: the sandbox raises the VM's write event, the webhook (system key in its URL) runs the app
        estate = Estate(app.clients, SUB1)
        estate.resource_group("rg-full", "westeurope")
        vault = estate.recovery_services_vault("rg-full", "rsv-full", "westeurope")
        vm = estate.vm("rg-full", "vm-full", "westeurope")
        _wait(
            app,
            lambda: [
                e
                for e in _published(app, "BackupSteward.Protection.")
                if e["data"]["resourceId"].lower() == vm.lower()
            ],
            "the VM's protection outcome",
        )
        # teardown over HTTP: the function key in the header, then in the query string; a refused one too
        body = json.dumps({"vaultId": vault}).encode()
        status, _, answer = app.request("POST", "teardowns", body, app.auth(ADMIN))
        assert status == 202, answer
        started = json.loads(answer)["id"]
        status, _, shown = app.request(
            "GET", f"teardowns/{started}?code={app.function_key}", None, app.auth(ADMIN), key=False
        )
        assert status == 200
        assert app.function_key not in shown.decode(), "the status links carry the key back"
        assert (
            app.request("POST", "teardowns", body, {**app.auth(ADMIN), "x-functions-key": "wrong"}, key=False)[
                0
            ]
            == 401
        )
        # audit over HTTP, then its report (from Azurite through the connection string when it is there)
        status, _, answer = app.request("POST", "audits", b"", app.auth(ADMIN))
        assert status == 202, answer
        app.settle(timeout=120)
        status, _, report = app.request("GET", "audits/latest", None, app.auth(ADMIN))
        assert status == 200, report[:300]  # the report was stored in blob storage (Azurite)
        assert app.request("GET", "openapi.yaml")[0] == 200
    finally:
        root.removeHandler(handler)
        root.setLevel(previous)
    captured = capfd.readouterr()
    logs = sink.getvalue() + captured.out + captured.err
    assert AUDIT_EVENT in logs and "orchestration started" in logs, "the run logged nothing: the grep proves nothing"
    leaked = [s[:6] + "..." for s in secret_values if s in logs]
    assert leaked == [], f"secrets in the logs: {leaked}"
    assert not re.search(r"Bearer\s+[A-Za-z0-9._-]{20,}", logs), "an access token in the logs"
    assert not re.search(r"[?&]code=[A-Za-z0-9_-]{8,}", logs), "a key in a logged URL"


@pytest.fixture
def audit_guarded(tmp_path: Path) -> Iterator[App]:
    running = start_app(tmp_path, {"STEWARD_AUDIT_ALLOWED_PRINCIPALS": ADMIN})
    try:
        yield running
    finally:
        running.stack.stop()
        bootstrap.reset()


def test_audit_routes_need_an_allowed_principal_when_one_is_configured(audit_guarded: App) -> None:
    app = audit_guarded
    runs_before = [i for i in app.stack.runner.query() if i.name == "audit_estate"]  # type: ignore[union-attr]
    for method, path in (("POST", "audits"), ("GET", "audits/latest"), ("GET", "audits/latest.html")):
        body = b"{}" if method == "POST" else None
        status, headers, answer = app.request(method, path, body, {})
        assert status == 401, (method, path, answer[:200])
        assert json.loads(answer)["code"] == "Unauthenticated"
        assert headers["WWW-Authenticate"] == 'Bearer realm="backup-steward"'
        # the platform's headers, forged: no token, no caller
        status, _, answer = app.request(method, path, body, forged_platform_headers(ADMIN))
        assert status == 401 and json.loads(answer)["code"] == "Unauthenticated", (method, path)
        status, _, answer = app.request(method, path, body, app.auth(STRANGER))
        assert status == 403, (method, path, answer[:200])
        assert json.loads(answer)["code"] == "CallerNotAllowed"
        assert STRANGER in json.loads(answer)["detail"]
        assert app.request(method, path, body, app.auth(ADMIN), key=False)[0] == 401, "the key is needed"
    assert [i for i in app.stack.runner.query() if i.name == "audit_estate"] == runs_before, "nothing started"
    assert app.request("GET", "audits/latest", None, app.auth(ADMIN))[0] == 404  # allowed; no report yet
    status, _, answer = app.request("POST", "audits", b"{}", app.auth(ADMIN))
    assert status == 202, answer[:200]


def test_without_the_setting_the_audit_routes_need_a_teardown_principals_token(app: App) -> None:
    """No STEWARD_AUDIT_ALLOWED_PRINCIPALS: the function key alone used to read the estate's report and start
    audits (it pinned that here); issue 14 makes the key a second factor, never the only one. The callers are
    then the teardown principals (and roles): fails on the previous code."""
    runs_before = [i for i in app.stack.runner.query() if i.name == "audit_estate"]  # type: ignore[union-attr]
    for method, path in (("POST", "audits"), ("GET", "audits/latest"), ("GET", "audits/latest.html")):
        body = b"{}" if method == "POST" else None
        status, headers, answer = app.request(method, path, body, {})
        assert status == 401, (method, path, answer[:200])
        assert headers["WWW-Authenticate"] == 'Bearer realm="backup-steward"'
        assert app.request(method, path, body, forged_platform_headers(ADMIN))[0] == 401, (method, path)
        status, _, answer = app.request(method, path, body, app.auth(STRANGER))
        assert status == 403 and json.loads(answer)["code"] == "CallerNotAllowed", (method, path)
    assert [i for i in app.stack.runner.query() if i.name == "audit_estate"] == runs_before, "nothing started"
    assert app.request("GET", "audits/latest.html", None, app.auth(ADMIN))[0] in {200, 404}
    assert app.request("GET", "audits/latest.html", None, app.auth(ADMIN), key=False)[0] == 401
