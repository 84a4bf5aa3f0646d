"""The Durable management API served by the runner alone (no host), and the host's route templates."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import azure.durable_functions as df
import pytest

from sandbox.durable import DurableRunner, ManagementServer
from sandbox.host import run_on_worker_loop
from sandbox.host.server import _route_pattern


def test_real_client_against_the_standalone_management_server(runner: DurableRunner) -> None:
    server = ManagementServer(runner, system_key="local-durable-key").start()
    try:
        binding = json.loads(server.binding_context("corr-standalone"))
        assert binding["rpcBaseUrl"] == f"{server.rpc_base_url}c/corr-standalone/"
        assert binding["managementUrls"]["id"] == "INSTANCEID"
        assert binding["requiredQueryStringParameters"] == "code=local-durable-key"
        client = df.DurableOrchestrationClient(json.dumps(binding))

        async def scenario() -> tuple[str, df.DurableOrchestrationStatus]:
            instance = await client.start_new("fan_out", "mgmt-1", {"count": 5})
            runner.wait_for(instance)
            return instance, await client.get_status(instance, show_history=True)

        instance, status = run_on_worker_loop(scenario())
        assert status.output == 20
        assert status.runtime_status == df.OrchestrationRuntimeStatus.Completed
        assert [e["EventType"] for e in status.historyEvents][:2] == ["OrchestratorStarted", "ExecutionStarted"]
        assert runner.store.instance(instance).correlation_id == "corr-standalone"
        payload = client.create_http_management_payload(instance)
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(payload["statusQueryGetUri"].replace("code=local-durable-key", "code=no"))
        assert refused.value.code == 401
        with urllib.request.urlopen(payload["statusQueryGetUri"]) as response:
            assert json.loads(response.read())["runtimeStatus"] == "Completed"
    finally:
        server.stop()


def test_start_of_an_unknown_orchestrator_surfaces_the_hosts_400(runner: DurableRunner) -> None:
    server = ManagementServer(runner).start()
    try:
        client = df.DurableOrchestrationClient(server.binding_context())
        with pytest.raises(Exception, match="no orchestrationTrigger function named 'missing'"):
            run_on_worker_loop(client.start_new("missing"))
    finally:
        server.stop()


def test_start_with_the_id_of_a_running_instance_surfaces_the_hosts_409(runner: DurableRunner) -> None:
    # HttpApiHandler.HandleStartOrchestratorRequestAsync: OrchestrationAlreadyExistsException -> 409 Conflict
    # (default overridableExistingInstanceStates NonRunningStates); the 1.7.0 client raises the body.
    server = ManagementServer(runner).start()
    try:
        client = df.DurableOrchestrationClient(server.binding_context())
        run_on_worker_loop(client.start_new("forever", "mgmt-dup"))
        with pytest.raises(Exception, match="already exists"):
            run_on_worker_loop(client.start_new("forever", "mgmt-dup"))
    finally:
        server.stop()


@pytest.mark.parametrize(("template", "path", "params"), [
    ("teardowns/{id}", "/teardowns/abc", {"id": "abc"}),
    ("teardowns/{id:guid}", "/Teardowns/abc/", {"id": "abc"}),
    ("teardowns/{id?}", "/teardowns", {"id": None}),
    ("files/{*rest}", "/files/a/b/c", {"rest": "a/b/c"}),
    ("teardowns/{id}", "/teardowns/abc/extra", None),
])
def test_route_templates(template: str, path: str, params: dict[str, str | None] | None) -> None:
    match = _route_pattern(template).match(path)
    assert (match.groupdict() if match else None) == params
