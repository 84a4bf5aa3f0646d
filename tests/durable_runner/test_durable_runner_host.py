"""The local host: HTTP routes with the real Durable client, auth levels, Event Grid webhook, timers."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import azure.durable_functions as df
import pytest

from sandbox.durable import DurableRunner
from sandbox.host import LocalHost, run_on_worker_loop

from .conftest import REPO_ROOT, SAMPLE_APP
from .support import eventually, executions


def _call(url: str, *, method: str = "GET", body: Any = None,
          headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def test_http_route_starts_orchestration_through_durable_client(host: LocalHost, runner: DurableRunner) -> None:
    status, headers, body = _call(f"{host.api_base}/sample/fan_out?id=http-1&code={host.keys.function_key}",
                                  method="POST", body={"count": 4}, headers={"x-correlation-id": "req-77"})
    assert status == 202
    assert headers["x-correlation-id"] == "req-77"
    assert runner.store.instance("http-1").correlation_id == "req-77"
    payload = json.loads(body)
    assert payload["id"] == "http-1"
    assert headers["Location"] == payload["statusQueryGetUri"]
    assert payload["statusQueryGetUri"].startswith(f"{host.origin}/runtime/webhooks/durabletask/instances/http-1?")
    runner.wait_for("http-1")
    # the check-status URL the client built is served, with the durable system key it carries
    code, _, status_body = _call(payload["statusQueryGetUri"])
    assert code == 200
    assert json.loads(status_body)["output"] == 12
    code, _, route_body = _call(f"{host.api_base}/sample-status/http-1", headers={"x-functions-key":
                                                                                  host.keys.function_key})
    assert json.loads(route_body) == {"status": "Completed", "custom": {"phase": "done"}, "output": 12}


def test_send_event_and_terminate_urls_of_the_payload_work(host: LocalHost, runner: DurableRunner) -> None:
    _, _, body = _call(f"{host.api_base}/sample/approval?id=http-appr&code={host.keys.function_key}",
                       method="POST")
    urls = json.loads(body)
    eventually(lambda: runner.status("http-appr")["runtimeStatus"] == "Running")
    code, _, _ = _call(urls["sendEventPostUri"].replace("{eventName}", "Approval"), method="POST", body="ok")
    assert code == 202
    assert runner.wait_for("http-appr")["output"] == {"approved": "ok"}
    _, _, body = _call(f"{host.api_base}/sample/forever?id=http-forever&code={host.keys.function_key}",
                       method="POST")
    eventually(lambda: runner.status("http-forever")["runtimeStatus"] == "Running")
    code, _, _ = _call(json.loads(body)["terminatePostUri"].replace("{text}", "stop"), method="POST")
    assert code == 202
    assert runner.status("http-forever")["runtimeStatus"] == "Terminated"


def _refused_with(answer: tuple[int, dict[str, str], bytes]) -> tuple[int, str, str]:
    """(status, media type, problem code) of a refusal of the host."""
    status, headers, body = answer
    return status, headers.get("Content-Type", ""), json.loads(body or b"{}").get("code", "")


def test_auth_levels_are_enforced_with_local_keys(host: LocalHost) -> None:
    # the local host says whether the key is missing or wrong (Azure's host answers an empty 401 for both)
    problem = "application/problem+json"
    assert _refused_with(_call(f"{host.api_base}/sample/fan_out", method="POST", body={"count": 1})) == (
        401, problem, "FunctionKeyRequired")
    assert _refused_with(_call(f"{host.api_base}/sample/fan_out?code=wrong", method="POST", body={"count": 1})) == (
        401, problem, "FunctionKeyInvalid")
    assert _refused_with(_call(f"{host.api_base}/sample/fan_out", method="POST", body={"count": 1},
                               headers={"x-functions-key": "wrong"})) == (401, problem, "FunctionKeyInvalid")
    assert _call(f"{host.api_base}/sample/fan_out?code={host.keys.master_key}", method="POST",
                 body={"count": 1})[0] == 202
    code, _, body = _call(f"{host.api_base}/ping?x=7", headers={"User-Agent": "probe"})
    assert code == 200
    assert json.loads(body) == {"pong": "7", "agent": "probe"}
    assert _call(f"{host.api_base}/ping", method="POST")[0] == 404
    status_url = f"{host.origin}/runtime/webhooks/durabletask/instances/x"
    assert _call(status_url)[0] == 401


def test_real_client_covers_status_query_raise_terminate_and_purge(host: LocalHost, runner: DurableRunner) -> None:
    client = df.DurableOrchestrationClient(host.binding_context())

    async def scenario() -> dict[str, Any]:
        prefix = f"cli-{uuid.uuid4().hex[:6]}"
        first = await client.start_new("approval", f"{prefix}-a")
        await client.start_new("forever", f"{prefix}-b")
        eventually(lambda: runner.status(first)["runtimeStatus"] == "Running")
        await client.raise_event(first, "Approval", {"by": "bob"})
        runner.wait_for(first)
        done = await client.get_status(first)
        await client.terminate(f"{prefix}-b", "enough")
        with pytest.raises(Exception, match="No instance"):
            await client.raise_event("missing-instance", "Approval", 1)
        listed = await client.get_status_by(instance_id_prefix=prefix)
        completed = await client.get_status_by(runtime_status=[df.OrchestrationRuntimeStatus.Completed])
        purged = await client.purge_instance_history(first)
        missing = await client.purge_instance_history(first)
        return {"done": done, "listed": listed, "completed": completed, "purged": purged, "missing": missing}

    result = run_on_worker_loop(scenario())
    assert result["done"].runtime_status == df.OrchestrationRuntimeStatus.Completed
    assert result["done"].output == {"approved": {"by": "bob"}}
    assert sorted(s.runtime_status.value for s in result["listed"]) == ["Completed", "Terminated"]
    assert all(s.runtime_status.value == "Completed" for s in result["completed"])
    assert result["purged"].instances_deleted == 1
    assert result["missing"].instances_deleted == 0


def test_event_grid_webhook_validates_then_delivers_each_event(host: LocalHost, runner: DurableRunner) -> None:
    url = host.eventgrid_url("on_resource_event")
    validation = [{"id": "v1", "eventType": "Microsoft.EventGrid.SubscriptionValidationEvent",
                   "subject": "", "eventTime": "2026-01-01T00:00:00Z", "dataVersion": "1",
                   "data": {"validationCode": "512d38b6-c7b8-40c8-89fe-f46f9e9622b6"}}]
    code, _, body = _call(url, method="POST", body=validation, headers={"aeg-event-type": "SubscriptionValidation"})
    assert code == 200
    assert json.loads(body) == {"validationResponse": "512d38b6-c7b8-40c8-89fe-f46f9e9622b6"}
    ids = [uuid.uuid4().hex for _ in range(2)]
    events = [{"id": event_id, "topic": "/subscriptions/s", "subject": f"/subscriptions/s/vm{n}",
               "eventType": "Microsoft.Resources.ResourceWriteSuccess", "eventTime": "2026-01-01T00:00:00Z",
               "dataVersion": "2", "data": {"operationName": "Microsoft.Compute/virtualMachines/write"}}
              for n, event_id in enumerate(ids)]
    code, _, _ = _call(url, method="POST", body=events, headers={"aeg-event-type": "Notification"})
    assert code == 200
    for n, event_id in enumerate(ids):
        status = runner.wait_for(f"event-{event_id}")
        assert status["output"] == {"subject": f"/subscriptions/s/vm{n}",
                                    "type": "Microsoft.Resources.ResourceWriteSuccess"}
        # the instance carries the event id as its correlation id
        assert runner.store.instance(f"event-{event_id}").correlation_id == event_id
    assert _refused_with(_call(url.replace("code=", "code=x"), method="POST", body=events)) == (
        401, "application/problem+json", "FunctionKeyInvalid")


def test_event_grid_webhook_accepts_cloud_events(host: LocalHost, runner: DurableRunner) -> None:
    url = host.eventgrid_url("on_resource_event")
    code, headers, _ = _call(url, method="OPTIONS", headers={"WebHook-Request-Origin": "eventgrid.azure.net"})
    assert code == 200
    assert headers["WebHook-Allowed-Origin"] == "eventgrid.azure.net"
    event_id = uuid.uuid4().hex
    cloud = {"specversion": "1.0", "id": event_id, "source": "/subscriptions/s", "subject": "/subscriptions/s/d",
             "type": "Microsoft.Resources.ResourceWriteSuccess", "time": "2026-01-01T00:00:00Z", "data": {}}
    assert _call(url, method="POST", body=cloud)[0] == 200
    assert runner.wait_for(f"event-{event_id}")["runtimeStatus"] == "Completed"


def test_timer_trigger_fires_on_virtual_schedule_and_on_demand(host: LocalHost, activity_log: Path) -> None:
    assert host.timers is not None
    due = host.timers.next_due["audit_tick"]
    assert (due.hour, due.minute, due.second) == (3, 0, 0)
    before = len(executions(activity_log, "audit_tick"))
    host.clock.advance((due - host.clock.now()).total_seconds() + 0.5)
    eventually(lambda: len(executions(activity_log, "audit_tick")) == before + 1)
    assert host.timers.next_due["audit_tick"] - due == timedelta(days=1)
    code, _, _ = _call(f"{host.origin}/admin/functions/audit_tick", method="POST", body={},
                       headers={"x-functions-key": host.keys.master_key})
    assert code == 202
    assert len(executions(activity_log, "audit_tick")) == before + 2
    assert _refused_with(_call(f"{host.origin}/admin/functions/audit_tick", method="POST", body={})) == (
        401, "application/problem+json", "FunctionKeyRequired")
    assert _refused_with(_call(f"{host.origin}/admin/functions/audit_tick", method="POST", body={},
                               headers={"x-functions-key": host.keys.function_key})) == (
        401, "application/problem+json", "FunctionKeyInvalid")  # a function key is not the master key


def test_app_code_imports_nothing_from_the_sandbox() -> None:
    sources = [SAMPLE_APP, *[p for p in (REPO_ROOT / "function_app.py",) if p.exists()]]
    for folder in ("orchestrators", "activities"):
        sources.extend((REPO_ROOT / folder).rglob("*.py"))
    offenders = [str(p) for p in sources
                 if any(line.strip().startswith(("import sandbox", "from sandbox"))
                        for line in p.read_text().splitlines())]
    assert offenders == []
