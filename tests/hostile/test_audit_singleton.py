"""Audits on demand cannot be multiplied (issue 14, item 5): one audit at a time per scope, so a burst of
``POST /api/audits`` starts one audit and the others get 409 naming the running one; the timer skips while
it runs; and each caller is metered (``STEWARD_AUDIT_RATE_PER_MINUTE``, 429 + ``Retry-After``).

The running audit is held open by the sandbox's read latency (every ARM read of the inventory sleeps), so
"while one runs" is a fact of the test, not a race it hopes to win."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from sandbox.arm.config import LatencyConfig
from steward import bootstrap
from tests.hostile.conftest import ADMIN, STRANGER, SUB1, SUB2, App, forged_platform_headers, start_app

#: Real seconds each ARM read of the audit sleeps (clock scale 1): an inventory makes several reads one after
#: another, so the audit runs for well over the burst below.
READ_LATENCY = 2.5


def _audits(app: App) -> list[tuple[str, str]]:
    """(instance id, execution id) of every audit_estate execution the runner holds."""
    runner = app.stack.runner
    assert runner is not None
    return sorted((i.instance_id, i.execution_id) for i in runner.query() if i.name == "audit_estate")


def _stored_runs(tmp: Path) -> list[str]:
    return sorted(p.name for p in (tmp / "reports" / "runs").glob("*.json"))


@pytest.fixture
def slow_estate(tmp_path: Path) -> Iterator[tuple[App, Path]]:
    running = start_app(tmp_path, {"STEWARD_REPORTS_DIR": str(tmp_path / "reports")}, scale=1.0)
    try:
        yield running, tmp_path
    finally:
        running.stack.stop()
        bootstrap.reset()


@pytest.mark.slow
def test_five_audit_requests_in_a_row_start_one_audit_and_the_others_get_409(
    slow_estate: tuple[App, Path],
) -> None:
    app, tmp = slow_estate
    app.sandbox.configure_latency(LatencyConfig(enabled=True, seconds={"read": READ_LATENCY}))
    answers = []
    for n in range(5):
        if n:
            time.sleep(1.05)  # five requests in about five seconds: each in a second of its own
        status, _, body = app.request("POST", "audits", b"", app.auth(ADMIN))
        answers.append((status, json.loads(body)))
    statuses = [s for s, _ in answers]
    assert statuses == [202, 409, 409, 409, 409], answers
    started = answers[0][1]
    assert started["started"] is True
    for _, refused in answers[1:]:
        assert refused["code"] == "AuditAlreadyRunning"
        assert refused["id"] == started["id"], "the 409 names the running audit"
        assert refused["started"] is False
        assert refused["runtimeStatus"] in {"Pending", "Running"}
    assert len(_audits(app)) == 1, f"more than one audit started: {_audits(app)}"

    # the timer skips while the same scope's audit runs (it would otherwise start a second one)
    assert app.stack.host is not None
    app.stack.host.fire_timer("audit_timer")
    assert len(_audits(app)) == 1, "the timer started a second audit of the same scope"

    # another scope (named subscriptions) is another audit and may run beside it
    status, _, body = app.request("POST", "audits", json.dumps({"subscriptions": [SUB1]}).encode(), app.auth(ADMIN))
    assert status == 202, body
    assert json.loads(body)["id"] != started["id"]
    assert len(_audits(app)) == 2

    app.sandbox.configure_latency(LatencyConfig(enabled=False))
    app.settle(timeout=180)
    assert len(_stored_runs(tmp)) == 2, "the estate was audited once per scope"
    # once it ended, the same scope may be audited again: the singleton is not a one-shot
    status, _, body = app.request("POST", "audits", b"", app.auth(ADMIN))
    assert status == 202, body
    assert json.loads(body)["id"] == started["id"]
    app.settle(timeout=120)


@pytest.mark.slow
def test_naming_every_managed_subscription_is_the_whole_estate_not_a_second_audit(
    slow_estate: tuple[App, Path],
) -> None:
    """The singleton's scope cannot be dodged by spelling: the list of every managed subscription (any order,
    case, repeats) is the whole estate, so it gets the running ``audit-all``'s 409 (fails on the previous code:
    a second audit of the same estate started beside the first)."""
    app, _tmp = slow_estate
    app.sandbox.configure_latency(LatencyConfig(enabled=True, seconds={"read": READ_LATENCY}))
    status, _, body = app.request("POST", "audits", b"", app.auth(ADMIN))
    assert status == 202, body
    started = json.loads(body)["id"]
    for spelled in ([SUB1, SUB2], [SUB2.upper(), SUB1], [SUB1, SUB2, SUB1.upper()]):
        time.sleep(1.05)  # past the rate's burst pacing, and a second of its own as in the burst test
        named = json.dumps({"subscriptions": spelled}).encode()
        status, _, body = app.request("POST", "audits", named, app.auth(ADMIN))
        assert status == 409, (spelled, body)
        assert json.loads(body)["id"] == started
    assert len(_audits(app)) == 1, f"a second audit of the same estate started: {_audits(app)}"
    app.sandbox.configure_latency(LatencyConfig(enabled=False))
    app.settle(timeout=180)


@pytest.fixture
def metered(tmp_path: Path) -> Iterator[App]:
    settings = {"STEWARD_AUDIT_RATE_PER_MINUTE": "2", "STEWARD_REPORTS_DIR": str(tmp_path / "reports")}
    running = start_app(tmp_path, settings)
    try:
        yield running
    finally:
        running.stack.stop()
        bootstrap.reset()


def test_audit_requests_without_a_token_are_refused_before_the_meter(metered: App) -> None:
    """No STEWARD_AUDIT_ALLOWED_PRINCIPALS: function-key holders used to share one metered bucket and start audits
    (this test pinned that); now a request without a valid token is refused (401) before the meter, a forged
    platform header proves nobody, and the callers are the teardown principals, each with a bucket."""
    assert [metered.request("POST", "audits", b"{", {})[0] for _ in range(3)] == [401, 401, 401]
    assert metered.request("POST", "audits", b"", forged_platform_headers(STRANGER))[0] == 401
    answers = [metered.request("POST", "audits", b"{", metered.auth(ADMIN))[0] for _ in range(2)]
    assert answers == [400, 400]  # even a refused body spends
    status, headers, body = metered.request("POST", "audits", b"", metered.auth(ADMIN))
    assert status == 429, body
    assert json.loads(body)["code"] == "TooManyRequests"
    assert 1 <= int(headers["Retry-After"]) <= 30
    assert "audit" in json.loads(body)["detail"]
    # reads are not metered
    assert metered.request("GET", "audits/latest", None, metered.auth(ADMIN))[0] in {200, 404}
    assert _audits(metered) == [], "a throttled request started nothing"


@pytest.fixture
def metered_principals(tmp_path: Path) -> Iterator[App]:
    settings = {
        "STEWARD_AUDIT_RATE_PER_MINUTE": "2",
        "STEWARD_AUDIT_ALLOWED_PRINCIPALS": f"{ADMIN},{STRANGER}",
        "STEWARD_REPORTS_DIR": str(tmp_path / "reports"),
    }
    running = start_app(tmp_path, settings)
    try:
        yield running
    finally:
        running.stack.stop()
        bootstrap.reset()


def test_audit_requests_are_metered_per_authenticated_caller(metered_principals: App) -> None:
    app = metered_principals
    bad = b"{"
    assert [app.request("POST", "audits", bad, app.auth(ADMIN))[0] for _ in range(2)] == [400, 400]
    status, headers, _ = app.request("POST", "audits", b"", app.auth(ADMIN))
    assert status == 429 and int(headers["Retry-After"]) >= 1
    # another caller has a bucket of its own
    assert app.request("POST", "audits", bad, app.auth(STRANGER))[0] == 400
    # a caller refused before the meter (401) spends nobody's tokens
    assert app.request("POST", "audits", b"", {})[0] == 401
    assert _audits(app) == []


def test_a_scope_has_one_instance_id_whatever_the_order_and_case_of_its_subscriptions() -> None:
    from entrypoints.audit_timer import ALL_SCOPE_ID, instance_id_for

    a, b = SUB1, "22222222-2222-4222-8222-222222222222"
    assert instance_id_for([]) == instance_id_for(()) == ALL_SCOPE_ID == "audit-all"
    assert instance_id_for([a, b]) == instance_id_for([b.upper(), a]) == instance_id_for([a, b, a])
    assert instance_id_for([a]) != instance_id_for([a, b]) != ALL_SCOPE_ID
    assert len(instance_id_for([a])) == len("audit-") + 16
