"""Long-running operations: both polling flavours, modelled durations on the clock, failures, slow LROs."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from azure.core.exceptions import HttpResponseError
from azure.mgmt.compute import ComputeManagementClient

from sandbox.arm import ArmSandbox, FaultConfig
from steward.cloud.clients import CloudClients

from .conftest import SUB, core_config, make_group, vm_body
from .test_sandbox_serving import raw

STORAGE = "?api-version=2024-01-01"
ACCOUNT_BODY = {"location": "westeurope", "sku": {"name": "Standard_LRS"}, "kind": "StorageV2"}


@pytest.fixture
def real_time() -> Iterator[ArmSandbox]:
    """A sandbox whose clock only moves when the test says (scale 1, explicit advances)."""
    sandbox = ArmSandbox(core_config(scale=1.0)).start()
    yield sandbox
    sandbox.stop()


def path_of(url: str) -> str:
    return "/" + url.split("://", 1)[1].split("/", 1)[1]


def test_azure_async_operation_is_in_progress_until_the_modelled_duration(real_time: ArmSandbox) -> None:
    sb = real_time
    raw(sb, "PUT", f"/subscriptions/{SUB}/resourcegroups/rg-a?api-version=2025-04-01", {"location": "westeurope"})
    vm_path = f"/subscriptions/{SUB}/resourceGroups/rg-a/providers/Microsoft.Compute/virtualMachines/vm1"
    status, headers, body = raw(sb, "PUT", vm_path + "?api-version=2026-04-01", vm_body())
    assert status == 201 and body["properties"]["provisioningState"] == "Creating"
    assert headers["Retry-After"].isdigit()  # ARM's whole seconds at scale 1
    operation = path_of(headers["Azure-AsyncOperation"])
    status, _, poll = raw(sb, "GET", operation)
    assert (status, poll["status"]) == (200, "InProgress") and "endTime" not in poll
    sb.advance(30)  # the VM create is modelled at 90 s
    assert raw(sb, "GET", operation)[2]["status"] == "InProgress"
    sb.advance(61)
    _, _, poll = raw(sb, "GET", operation)
    assert poll["status"] == "Succeeded" and poll["endTime"] >= poll["startTime"]
    assert raw(sb, "GET", vm_path + "?api-version=2026-04-01")[2]["properties"]["provisioningState"] == "Succeeded"


def test_location_flavour_answers_202_then_the_resource(real_time: ArmSandbox) -> None:
    sb = real_time
    raw(sb, "PUT", f"/subscriptions/{SUB}/resourcegroups/rg-l?api-version=2025-04-01", {"location": "westeurope"})
    account = f"/subscriptions/{SUB}/resourceGroups/rg-l/providers/Microsoft.Storage/storageAccounts/stloc1"
    status, headers, body = raw(sb, "PUT", account + STORAGE, ACCOUNT_BODY)
    assert (status, body) == (202, None)
    assert "Azure-AsyncOperation" not in headers
    location = path_of(headers["Location"])
    status, headers, _ = raw(sb, "GET", location)
    operation_id = location.split("/")[-1].split("?")[0]
    assert status == 202 and headers["Location"].endswith(operation_id + "?api-version=2024-01-01")
    sb.advance(60)
    status, _, body = raw(sb, "GET", location)
    assert status == 200 and body["id"] == account and body["properties"]["provisioningState"] == "Succeeded"


def test_fast_clocks_send_wait_hints_in_real_milliseconds(sb: ArmSandbox, clients: CloudClients) -> None:
    make_group(clients, "rg-hint")
    account = f"/subscriptions/{SUB}/resourceGroups/rg-hint/providers/Microsoft.Storage/storageAccounts/sthint1"
    status, headers, _ = raw(sb, "PUT", account + STORAGE, ACCOUNT_BODY)
    assert status == 202 and "Retry-After" not in headers
    assert int(headers["retry-after-ms"]) == max(1, round(10 / sb.clock.scale * 1000))


def test_failed_lros_fail_both_pollers_and_raise_failure_events() -> None:
    # 409: a failed operation's Location poll answers its error status; a 5xx there would be retried by the
    # SDK's retry policy with real back-off (tested elsewhere), which only makes this test slow.
    faults = FaultConfig(seed=1, lro_fail=1.0, lro_fail_status=409, lro_fail_code="OperationFailed")
    sandbox = ArmSandbox(core_config(faults=faults)).start()
    try:
        clients = CloudClients(sandbox.cloud_target())
        make_group(clients, "rg-fail")
        compute = ComputeManagementClient(clients.credential, SUB, base_url=sandbox.endpoint,
                                          connection_verify=sandbox.ca_bundle,
                                          credential_scopes=[sandbox.endpoint + "/.default"])
        with pytest.raises(HttpResponseError) as caught:  # Azure-AsyncOperation flavour
            compute.virtual_machines.begin_create_or_update("rg-fail", "vmf", vm_body()).result()
        assert "OperationFailed" in str(caught.value)
        assert compute.virtual_machines.get("rg-fail", "vmf").properties.provisioning_state == "Failed"
        account = f"/subscriptions/{SUB}/resourceGroups/rg-fail/providers/Microsoft.Storage/storageAccounts/stfail"
        with pytest.raises(HttpResponseError) as caught:  # Location flavour
            clients.resources(SUB).resources.begin_create_or_update_by_id(
                account, ACCOUNT_BODY, api_version="2024-01-01"
            ).result()
        assert caught.value.status_code == 409
        failures = [
            e["data"]["operationName"] for e in sandbox.events.raised if e["eventType"].endswith("WriteFailure")
        ]
        assert failures == ["Microsoft.Compute/virtualMachines/write", "Microsoft.Storage/storageAccounts/write"]
    finally:
        sandbox.stop()


def test_slow_lros_take_longer_on_the_clock() -> None:
    sandbox = ArmSandbox(core_config(scale=1.0, faults=FaultConfig(lro_slow=1.0, lro_slow_factor=10))).start()
    try:
        raw(sandbox, "PUT", f"/subscriptions/{SUB}/resourcegroups/rg-s?api-version=2025-04-01",
            {"location": "westeurope"})
        account = f"/subscriptions/{SUB}/resourceGroups/rg-s/providers/Microsoft.Storage/storageAccounts/stslow"
        _, headers, _ = raw(sandbox, "PUT", account + STORAGE, ACCOUNT_BODY)
        sandbox.advance(60)  # modelled at 25 s; slowed x10
        assert raw(sandbox, "GET", path_of(headers["Location"]))[0] == 202
        sandbox.advance(200)
        assert raw(sandbox, "GET", path_of(headers["Location"]))[0] == 200
    finally:
        sandbox.stop()
