"""The teardown through the real app (``function_app.py`` on the local host, the runner, the ARM sandbox):
a user's refused delete of an opted-in vault reaches the app as Event Grid's ResourceDeleteFailure and the
saga empties and deletes the vault; the HTTP routes answer with the function key and an allowed principal.
Adapters come from the app settings here (``steward.bootstrap``), nothing is injected."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from azure.core.exceptions import ResourceNotFoundError

from sandbox.arm.config import DEFAULT_PRINCIPAL
from steward import bootstrap
from tests.e2e.conftest import Harness, start_harness
from tests.integration.teardown.conftest import HOUR, Estate

ADMIN = "aaaaaaaa-0000-4000-8000-00000000ad01"
TAG = "backup-steward:teardown"


@pytest.fixture
def app(tmp_path: Path) -> Iterator[Harness]:
    harness = start_harness(
        tmp_path,
        settings={
            # DEFAULT_PRINCIPAL: the sandbox's default identity, the "user" whose refused delete starts the teardown
            # (a failed delete of an ``auto`` vault runs only for an allowed deleting user)
            "STEWARD_TEARDOWN_ALLOWED_PRINCIPALS": f"{ADMIN},{DEFAULT_PRINCIPAL}",
            "STEWARD_REPORTS_DIR": str(tmp_path / "reports"),
        },
    )
    try:
        yield harness
    finally:
        harness.stack.stop()
        bootstrap.reset()


def call(harness: Harness, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    host = harness.stack.host
    request = urllib.request.Request(
        f"{host.origin}/api/{path}",
        method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={
            "x-functions-key": host.keys.function_key,
            "Content-Type": "application/json",
            **harness.stack.bearer(ADMIN),  # an access token from the sandbox's Entra ID
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


def gone(estate: Estate, rg: str) -> bool:
    try:
        estate.rs.vaults.get(rg, "rsv")
    except ResourceNotFoundError:
        return True
    return False


@pytest.mark.slow
def test_a_refused_delete_of_an_auto_opted_in_vault_is_torn_down_by_the_app(app: Harness) -> None:
    estate = Estate(app.sandbox, app.clients)
    rg = estate.group()
    estate.rs_vault(rg, tags={TAG: "auto"})
    estate.protect_vm(rg, "rsv", "vm-1")
    app.stack.advance(2 * HOUR)
    with pytest.raises(Exception, match=r"(?i)cannot be deleted|existing resources"):
        estate.rs.vaults.begin_delete(rg, "rsv").result()  # the user's attempt: Azure refuses, raises the event
    app.wait_for(lambda: gone(estate, rg), timeout=60, what="the app to tear the vault down")
    app.settle()
    runner = app.stack.runner
    assert runner is not None
    reports = [runner.status(i.instance_id).get("output") for i in runner.query()]
    teardowns = [r for r in reports if isinstance(r, dict) and r.get("outcome") == "deleted" and r.get("vaultId")]
    assert teardowns and teardowns[0]["source"] == "event"
    assert Path(teardowns[0]["links"]["htmlUrl"].removeprefix("file://")).is_file()


@pytest.mark.slow
def test_a_refused_delete_of_a_vault_without_the_tag_changes_nothing(app: Harness) -> None:
    estate = Estate(app.sandbox, app.clients)
    rg = estate.group()
    estate.rs_vault(rg)
    estate.protect_vm(rg, "rsv", "vm-1")
    with pytest.raises(Exception, match=r"(?i)cannot be deleted|existing resources"):
        estate.rs.vaults.begin_delete(rg, "rsv").result()
    app.settle()
    runner = app.stack.runner
    assert runner is not None
    outcomes = [runner.status(i.instance_id).get("output") for i in runner.query()]
    refused = [o for o in outcomes if isinstance(o, dict) and o.get("outcome") == "refused"]
    assert refused and TAG in refused[0]["reason"]
    assert not gone(estate, rg)
    assert len(list(estate.rsb.backup_protected_items.list("rsv", rg))) == 1


@pytest.mark.slow
def test_the_app_plans_and_runs_a_teardown_over_http(app: Harness) -> None:
    estate = Estate(app.sandbox, app.clients)
    rg = estate.group()
    vault_id = estate.rs_vault(rg)
    estate.protect_vm(rg, "rsv", "vm-1")
    app.stack.advance(2 * HOUR)
    status, started = call(app, "POST", "teardowns", {"vaultId": vault_id})
    assert status == 202, started
    app.settle()
    status, planned = call(app, "GET", f"teardowns/{started['id']}")
    assert status == 200 and planned["report"]["outcome"] == "planned"
    fingerprint = planned["report"]["fingerprint"]
    status, approved = call(app, "POST", f"teardowns/{started['id']}/approve", {"fingerprint": fingerprint})
    assert status == 202, approved
    app.wait_for(lambda: gone(estate, rg), timeout=60, what="the vault to be deleted")
    app.settle()
    status, shown = call(app, "GET", f"teardowns/{approved['id']}")
    assert status == 200 and shown["report"]["outcome"] == "deleted"
    assert shown["report"]["requestedBy"] == ADMIN
