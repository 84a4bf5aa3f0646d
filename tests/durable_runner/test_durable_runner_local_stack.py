"""LocalStack: ARM sandbox + runner + host around an app, settings in place before the app is imported."""

from __future__ import annotations

import json
import os
import signal
import ssl
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from sandbox.host.local import LocalStack

from .conftest import REPO_ROOT, SAMPLE_APP
from .support import eventually

SETTINGS_APP = '''
import os
import azure.durable_functions as df
import azure.functions as func

SEEN_AT_IMPORT = {k: v for k, v in os.environ.items() if k.startswith(("STEWARD_", "PROBE_"))}
app = df.DFApp(http_auth_level=func.AuthLevel.ANONYMOUS)


@app.route(route="seen", methods=["GET"])
def seen(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse(__import__("json").dumps(SEEN_AT_IMPORT), mimetype="application/json")
'''


@pytest.fixture(autouse=True)
def restore_environment() -> Iterator[None]:
    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)


def test_settings_are_in_place_before_the_app_is_imported(tmp_path: Path) -> None:
    app_file = tmp_path / "settings_probe_app.py"
    app_file.write_text(SETTINGS_APP)
    with LocalStack(app=app_file, app_root=tmp_path, arm=False, settings={"PROBE_SETTING": "on"}) as stack:
        assert stack.host is not None
        with urllib.request.urlopen(f"{stack.host.api_base}/seen", timeout=10) as response:
            seen = json.loads(response.read())
        assert seen["PROBE_SETTING"] == "on"
        assert stack.runner is not None
        assert stack.runner.config.db_path == str(tmp_path / "var" / "durable.sqlite")
        before = stack.runner.clock.now()
        stack.advance(3600)
        assert (stack.runner.clock.now() - before).total_seconds() >= 3600


def test_stack_client_starts_and_reads_instances(tmp_path: Path) -> None:
    with LocalStack(app=SAMPLE_APP, app_root=tmp_path, arm=False) as stack:
        client = stack.client("stack-corr")
        instance = stack.run(client.start_new("fan_out", "stack-1", {"count": 3}))
        assert stack.runner is not None
        stack.runner.wait_for(instance)
        status = stack.run(client.get_status(instance))
        assert status.output == 6
        assert stack.runner.store.instance(instance).correlation_id == "stack-corr"


def test_arm_sandbox_events_reach_the_apps_event_grid_trigger(tmp_path: Path) -> None:
    pytest.importorskip("sandbox.arm")
    with LocalStack(app=SAMPLE_APP, app_root=tmp_path, db_path=str(tmp_path / "d.sqlite"), arm=True) as stack:
        sandbox, runner = stack.sandbox, stack.runner
        assert runner is not None
        assert os.environ["STEWARD_ARM_ENDPOINT"] == sandbox.endpoint
        assert os.environ["STEWARD_CREDENTIAL"] == "sandbox"
        assert os.environ["STEWARD_SANDBOX_TOKEN_URL"] == sandbox.token_url
        assert os.environ["STEWARD_CA_BUNDLE"] == str(sandbox.ca_bundle)
        assert runner.clock is sandbox.clock
        subscription = sandbox.config.subscriptions[0].subscription_id
        request = urllib.request.Request(
            f"{sandbox.endpoint}/subscriptions/{subscription}/resourcegroups/rg-stack?api-version=2025-04-01",
            data=json.dumps({"location": "westeurope"}).encode(), method="PUT",
            headers={"Authorization": f"Bearer {sandbox.mint_token()}", "Content-Type": "application/json"})
        context = ssl.create_default_context(cafile=str(sandbox.ca_bundle))
        with urllib.request.urlopen(request, context=context, timeout=10) as response:
            assert response.status in (200, 201)

        def delivered() -> bool:
            return any(r.name == "echo_event" and r.status == "Completed" for r in runner.store.instances())

        eventually(delivered, timeout=10)
        outputs = [json.loads(r.output or "null") for r in runner.store.instances() if r.name == "echo_event"]
        assert {"subject": f"/subscriptions/{subscription}/resourcegroups/rg-stack",
                "type": "Microsoft.Resources.ResourceWriteSuccess"} in outputs


def test_the_stack_subscribes_with_the_deployed_event_grid_filter(tmp_path: Path) -> None:
    """As the Bicep subscription (infra/event-filters.json): a VM write reaches the trigger, a NIC write and a
    resource group write do not (before issue 15 the stack subscribed to every resource event)."""
    pytest.importorskip("sandbox.arm")
    with LocalStack(app=SAMPLE_APP, app_root=tmp_path, db_path=str(tmp_path / "d.sqlite"), arm=True,
                    filter_events=True) as stack:
        sandbox, runner = stack.sandbox, stack.runner
        assert runner is not None
        group = f"/subscriptions/{sandbox.config.subscriptions[0].subscription_id}/resourceGroups/rg-f"

        def event(operation: str, resource: str) -> dict[str, object]:
            return {"id": f"evt-{resource.rsplit('/', 1)[-1]}", "subject": resource,
                    "eventType": "Microsoft.Resources.ResourceWriteSuccess",
                    "eventTime": "2026-12-06T05:00:00Z", "dataVersion": "2", "metadataVersion": "1",
                    "data": {"operationName": operation, "resourceUri": resource, "status": "Succeeded"}}

        vm = f"{group}/providers/Microsoft.Compute/virtualMachines/vm-1"
        sandbox.events.publish([
            event("Microsoft.Network/networkInterfaces/write",
                  f"{group}/providers/Microsoft.Network/networkInterfaces/nic-1"),
            event("Microsoft.Resources/subscriptions/resourceGroups/write", group),
            event("Microsoft.Compute/virtualMachines/write", vm),
        ])
        assert sandbox.events.drain(timeout=10)

        def delivered() -> list[str]:
            return [json.loads(r.output or "null")["subject"] for r in runner.store.instances()
                    if r.name == "echo_event" and r.status == "Completed"]

        eventually(lambda: delivered() == [vm], timeout=10)
        assert delivered() == [vm]
        assert [s.delivered for s in stack.subscriptions] == [1]


def test_host_up_command_prints_urls_and_keys_and_serves(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "SAMPLE_AUDIT_SCHEDULE": "0 0 3 * * *"}
    process = subprocess.Popen(
        [sys.executable, "-m", "sandbox.host", "up", "--app", str(SAMPLE_APP), "--root", str(tmp_path),
         "--no-arm", "--port", "0", "--json", "--log-level", "WARNING"],
        cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        described = json.loads(process.stdout.readline())
        assert set(described["keys"]) >= {"function", "master", "system:durabletask_extension",
                                          "system:eventgrid_extension"}
        assert described["timers"] == {"audit_tick": "0 0 3 * * *"}
        with urllib.request.urlopen(f"{described['api']}/ping?x=up", timeout=10) as response:
            assert json.loads(response.read())["pong"] == "up"
        start = urllib.request.Request(
            f"{described['routes']['start_orchestration']['url'].replace('{name}', 'fan_out')}"
            f"?id=up-1&code={described['keys']['function']}", data=b'{"count": 3}', method="POST")
        with urllib.request.urlopen(start, timeout=10) as response:
            status_url = json.loads(response.read())["statusQueryGetUri"]

        def completed() -> bool:
            with urllib.request.urlopen(status_url, timeout=10) as reply:
                return bool(json.loads(reply.read())["runtimeStatus"] == "Completed")

        eventually(completed, timeout=10)
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=10)
    assert process.returncode == 0
