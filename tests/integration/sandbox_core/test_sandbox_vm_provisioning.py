"""VM provisioning states (issue #13 item 1): a VM is ``Creating`` until its create ends, ``Failed`` when the create
failed (the VM stays), and its write event may arrive while it is still ``Creating``.

Sources: MicrosoftDocs/azure-docs ``articles/virtual-machines/states-billing.md`` (provisioning states);
``articles/virtual-machines/troubleshooting/allocation-failure.md`` (``AllocationFailed``). The write event on
accept is INFERRED (``PropagationConfig.vm_write_event_on_accept``).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError
from azure.mgmt.compute import ComputeManagementClient

from sandbox.arm import ArmSandbox, PropagationConfig
from sandbox.arm.providers.compute import vm_provisioning
from steward.cloud.clients import CloudClients
from tests.integration.sandbox_core.conftest import SUB, core_config, make_group, vm_body

SCALE = 1000.0  # a 90 s VM create takes 90 ms


@pytest.fixture
def fresh() -> Iterator[ArmSandbox]:
    sandbox = ArmSandbox(core_config(scale=SCALE)).start()
    yield sandbox
    sandbox.stop()


def _compute(sb: ArmSandbox) -> ComputeManagementClient:
    clients = CloudClients(sb.cloud_target())
    return ComputeManagementClient(clients.credential, SUB, base_url=sb.endpoint, connection_verify=sb.ca_bundle,
                                   credential_scopes=[sb.endpoint + "/.default"])


def test_a_vm_is_creating_until_its_create_ends(fresh: ArmSandbox) -> None:
    make_group(CloudClients(fresh.cloud_target()), "rg-prov")
    vm_provisioning(fresh).create_seconds = 600.0
    compute = _compute(fresh)
    poller = compute.virtual_machines.begin_create_or_update("rg-prov", "vm-slow", vm_body())
    assert compute.virtual_machines.get("rg-prov", "vm-slow").provisioning_state == "Creating"
    assert poller.result().provisioning_state == "Succeeded"


def test_a_failed_create_leaves_the_vm_failed_and_raises_a_failure_event(fresh: ArmSandbox) -> None:
    make_group(CloudClients(fresh.cloud_target()), "rg-prov")
    received: list[dict[str, Any]] = []
    fresh.subscribe(received.extend)
    vm_provisioning(fresh).fail_create("vm-broken")
    compute = _compute(fresh)
    with pytest.raises(HttpResponseError) as caught:
        compute.virtual_machines.begin_create_or_update("rg-prov", "vm-broken", vm_body()).result()
    assert "AllocationFailed" in str(caught.value)
    assert compute.virtual_machines.get("rg-prov", "vm-broken").provisioning_state == "Failed"
    assert fresh.events.drain()
    types = {e["eventType"] for e in received if e["subject"].endswith("/vm-broken")}
    assert "Microsoft.Resources.ResourceWriteFailure" in types


def test_with_events_on_accept_the_write_event_comes_while_the_vm_is_creating(fresh: ArmSandbox) -> None:
    make_group(CloudClients(fresh.cloud_target()), "rg-prov")
    fresh.configure_propagation(PropagationConfig(vm_write_event_on_accept=True))
    vm_provisioning(fresh).create_seconds = 3600.0  # 3.6 real seconds
    compute = _compute(fresh)
    states: list[str] = []

    def on_events(batch: list[dict[str, Any]]) -> None:
        for event in batch:
            if event["subject"].endswith("/vm-early") and event["eventType"].endswith("ResourceWriteSuccess"):
                states.append(str(compute.virtual_machines.get("rg-prov", "vm-early").provisioning_state))

    fresh.subscribe(on_events)
    poller = compute.virtual_machines.begin_create_or_update("rg-prov", "vm-early", vm_body())
    assert poller.result().provisioning_state == "Succeeded"
    assert fresh.events.drain()
    assert states and states[0] == "Creating"
    assert len(states) == 1  # raised once, at accept
