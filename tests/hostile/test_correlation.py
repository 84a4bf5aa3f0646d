"""One correlation id from the teardown request to its report (issue 20): the answer of every teardown route
carries ``x-correlation-id``, the id the app recorded; a request that sends none gets one made up, so the report
of the teardown it started never shows an empty correlation id (it did, although the answer carried one)."""

from __future__ import annotations

import json
import time
from typing import Any

from tests.hostile.conftest import ADMIN, SUB1, App

VAULT = f"/subscriptions/{SUB1}/resourceGroups/rg-corr/providers/Microsoft.RecoveryServices/vaults/rsv-corr"


def _header(headers: dict[str, str], name: str) -> str | None:
    return next((v for k, v in headers.items() if k.lower() == name), None)


def _report(app: App, instance_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while True:
        status, _, body = app.request("GET", f"teardowns/{instance_id}", None, app.auth(ADMIN))
        assert status == 200, body
        document = json.loads(body)
        if document.get("report") or time.monotonic() > deadline:
            assert document.get("report"), document
            return dict(document["report"])
        time.sleep(0.2)


def test_a_teardown_report_carries_the_correlation_id_its_answer_named(app: App) -> None:
    body = json.dumps({"vaultId": VAULT, "dryRun": True}).encode()
    status, headers, answer = app.request("POST", "teardowns", body, app.auth(ADMIN))  # no correlation header
    assert status == 202, answer
    named = _header(headers, "x-correlation-id")
    assert named, headers
    report = _report(app, json.loads(answer)["id"])
    assert report["correlationId"] == named


def test_the_callers_correlation_id_is_kept_and_refusals_name_it_too(app: App) -> None:
    mine = "op-4711-why"
    body = json.dumps({"vaultId": VAULT.replace("rsv-corr", "rsv-corr-2"), "dryRun": True}).encode()
    status, headers, answer = app.request("POST", "teardowns", body, {**app.auth(ADMIN), "x-correlation-id": mine})
    assert status == 202 and _header(headers, "x-correlation-id") == mine
    assert _report(app, json.loads(answer)["id"])["correlationId"] == mine
    status, headers, _ = app.request("POST", "teardowns", b"{", {**app.auth(ADMIN), "x-ms-client-request-id": "r-1"})
    assert status == 400 and _header(headers, "x-correlation-id") == "r-1"


def _protection(app: App, instance_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while True:
        status, _, body = app.request("GET", f"protect/{instance_id}", None, app.auth(ADMIN))
        assert status == 200, body
        document = json.loads(body)
        if document.get("outcome") or time.monotonic() > deadline:
            assert document.get("outcome"), document
            return dict(document["outcome"])
        time.sleep(0.2)


def test_a_protection_outcome_carries_the_correlation_id_its_answer_named(app: App) -> None:
    """``POST /api/protect`` as the teardown routes: the caller's id (or a made-up one) is the one the answer names
    and the outcome records (it recorded the instance id while the answer named the caller's: two ids, one run)."""
    vm = f"/subscriptions/{SUB1}/resourceGroups/rg-corr/providers/Microsoft.Compute/virtualMachines/vm-corr"
    body = json.dumps({"resourceId": vm}).encode()
    status, headers, answer = app.request("POST", "protect", body, {**app.auth(ADMIN), "x-correlation-id": "op-42"})
    assert status == 202 and _header(headers, "x-correlation-id") == "op-42", (headers, answer)
    assert _protection(app, json.loads(answer)["id"])["correlationId"] == "op-42"
    status, headers, answer = app.request("POST", "protect", body, app.auth(ADMIN))  # no correlation header
    assert status == 202, answer
    named = _header(headers, "x-correlation-id")
    assert named and _protection(app, json.loads(answer)["id"])["correlationId"] == named
