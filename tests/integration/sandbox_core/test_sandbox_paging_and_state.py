"""Paging with nextLink, $filter handling, state snapshots, the admin clock and the serve command."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from azure.core.exceptions import HttpResponseError

from sandbox.arm import ArmSandbox
from steward.cloud.clients import CloudClients, CloudTarget

from .conftest import SUB, core_config, make_group
from .test_sandbox_serving import raw

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture
def small_pages() -> ArmSandbox:
    return ArmSandbox(core_config(page_size=2)).start()


def test_the_sdk_follows_next_links_across_pages(small_pages: ArmSandbox) -> None:
    sb = small_pages
    try:
        clients = CloudClients(sb.cloud_target())
        for i in range(5):
            clients.resources(SUB).resource_groups.create_or_update(f"rg-{i}", {"location": "westeurope",
                                                                                 "tags": {"n": str(i % 2)}})
        assert [g.name for g in clients.resources(SUB).resource_groups.list()] == [f"rg-{i}" for i in range(5)]
        odd = clients.resources(SUB).resource_groups.list(filter="tagName eq 'n' and tagValue eq '1'")
        assert [g.name for g in odd] == ["rg-1", "rg-3"]
        with pytest.raises(HttpResponseError) as caught:
            list(clients.resources(SUB).resource_groups.list(filter="tagName eq 'n' or tagValue eq '1'"))
        assert caught.value.status_code == 400 and "only 'and'" in caught.value.message
    finally:
        sb.stop()


def test_next_links_keep_the_query_and_tokens_are_bound_to_their_list(small_pages: ArmSandbox) -> None:
    sb = small_pages
    try:
        for i in range(5):
            raw(sb, "PUT", f"/subscriptions/{SUB}/resourcegroups/g{i}?api-version=2025-04-01",
                {"location": "westeurope", "tags": {"k": "v"}})
        base = f"/subscriptions/{SUB}/resourcegroups?api-version=2025-04-01&$filter=tagName%20eq%20%27k%27"
        status, _, page = raw(sb, "GET", base)
        assert status == 200 and [g["name"] for g in page["value"]] == ["g0", "g1"]
        query = parse_qs(urlsplit(page["nextLink"]).query)
        assert query["api-version"] == ["2025-04-01"] and query["$filter"] == ["tagName eq 'k'"]
        raw(sb, "PUT", f"/subscriptions/{SUB}/resourcegroups/g0a?api-version=2025-04-01",
            {"location": "westeurope", "tags": {"k": "v"}})  # lands before the cursor: not repeated
        next_path = page["nextLink"].removeprefix(sb.endpoint)
        _, _, second = raw(sb, "GET", next_path)
        assert [g["name"] for g in second["value"]] == ["g2", "g3"]
        token = query["$skiptoken"][0]
        tampered = next_path.replace(token[:6], "AAAAAA")
        assert raw(sb, "GET", tampered)[2]["error"]["code"] == "InvalidSkipToken"
        elsewhere = f"/subscriptions/{SUB}/resources?api-version=2025-04-01&$skiptoken={token}"
        assert raw(sb, "GET", elsewhere)[2]["error"]["code"] == "InvalidSkipToken"
    finally:
        sb.stop()


def test_filter_values_with_quotes_are_matched_literally(sb: ArmSandbox, clients: CloudClients) -> None:
    clients.resources(SUB).resource_groups.create_or_update("rg-quote", {"location": "westeurope",
                                                                         "tags": {"owner": "O'Brien"}})
    found = clients.resources(SUB).resource_groups.list(filter="tagName eq 'owner' and tagValue eq 'O''Brien'")
    assert [g.name for g in found] == ["rg-quote"]
    injected = "tagName eq 'owner' and tagValue eq 'x' or 1 eq 1"
    with pytest.raises(HttpResponseError) as caught:
        list(clients.resources(SUB).resource_groups.list(filter=injected))
    assert caught.value.status_code == 400


def test_state_survives_a_stop_and_resume(tmp_path: Path) -> None:
    state = tmp_path / "arm.json"
    first = ArmSandbox(core_config(state_file=state)).start()
    make_group(CloudClients(first.cloud_target()), "rg-kept")
    first.advance(86400)
    stopped_at = first.clock.now()
    first.stop()
    assert json.loads(state.read_text())["store"]["records"][0]["name"] == "rg-kept"
    second = ArmSandbox(core_config(state_file=state)).start()
    try:
        clients = CloudClients(second.cloud_target())
        assert clients.resources(SUB).resource_groups.get("rg-kept").location == "westeurope"
        assert second.clock.now() >= stopped_at  # Azure time resumes where it stopped
    finally:
        second.stop()


def test_admin_clock_and_state_dump(sb: ArmSandbox) -> None:
    _, _, before = raw(sb, "GET", "/sandbox/clock", token=None)
    _, _, after = raw(sb, "POST", "/sandbox/clock/advance", {"seconds": 3600}, token=None)
    assert after["now"] > before["now"]
    status, _, body = raw(sb, "POST", "/sandbox/clock/advance", {"seconds": -1}, token=None)
    assert (status, body["error"]["code"]) == (400, "InvalidClockChange")
    _, _, dump = raw(sb, "GET", "/sandbox/state", token=None)
    assert {s["subscription_id"] for s in dump["subscriptions"]} >= {SUB}
    status, _, faults = raw(sb, "PUT", "/sandbox/faults", {"seed": 5}, token=None)
    assert (status, faults["seed"]) == (200, 5)
    assert raw(sb, "PUT", "/sandbox/faults", {"nonsense": 1}, token=None)[0] == 400
    raw(sb, "PUT", "/sandbox/faults", {"seed": 0}, token=None)


def test_serve_prints_its_endpoint_and_serves(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    process = subprocess.Popen(
        [sys.executable, "-m", "sandbox.arm", "serve", "--scale", "60", "--state-dir", str(tmp_path)],
        stdout=subprocess.PIPE, text=True, env=env, cwd=REPO,
    )
    try:
        assert process.stdout is not None
        info = json.loads(process.stdout.readline())
        assert info["endpoint"].startswith("https://127.0.0.1:")
        assert info["token_url"] == info["endpoint"] + "/sandbox/token"
        assert Path(info["ca_bundle"]).read_text().startswith("-----BEGIN CERTIFICATE-----")
        clients = CloudClients(_target(info))
        assert clients.resources(SUB).resource_groups.check_existence("nothing") is False
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=10)
    assert process.returncode == 0


def _target(info: dict[str, str]) -> CloudTarget:
    return CloudTarget(arm_endpoint=info["endpoint"], credential_kind="sandbox",
                       sandbox_token_url=info["token_url"], ca_bundle=info["ca_bundle"])


def test_a_subscription_moved_to_another_tenant_refuses_the_old_tenants_tokens() -> None:
    sandbox = ArmSandbox(core_config()).start()
    try:
        other = sandbox.subscriptions.tenants()[-1]
        path = f"/subscriptions/{SUB}/resourcegroups?api-version=2025-04-01"
        assert raw(sandbox, "GET", path)[0] == 200
        status, _, body = raw(sandbox, "POST", f"/sandbox/subscriptions/{SUB}/moveToTenant", {"tenantId": other},
                              token=None)
        assert (status, body["tenantId"]) == (200, other)
        assert raw(sandbox, "GET", path)[2]["error"]["code"] == "InvalidAuthenticationTokenTenant"
        assert raw(sandbox, "GET", path, token=sandbox.mint_token(tenant_id=other))[0] == 200
    finally:
        sandbox.stop()
