"""The Event Grid doorway ignores what a restore drill makes in its own group (issue 17, the drill's own cost), and
nothing else: the real doorway (``entrypoints.event_grid.handle_event``) reads the group through the app's SDK
pipeline from the ARM sandbox. A group merely NAMED as a drill group (no ``backup-steward:drill-group=true`` tag),
a type drills never make (a VM), a group that cannot be read: all handled as before."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any, cast

import azure.durable_functions as df
import pytest

from entrypoints.event_grid import handle_event
from sandbox.arm.config import SandboxConfig
from sandbox.arm.server import ArmSandbox
from steward import bootstrap
from steward.cloud.publisher import MemoryPublisher
from steward.domain.drill_flow import DRILL_GROUP_TAG
from steward.rules_file import default_rules_text
from steward.settings import Settings

REGION = "westeurope"
DRILLS = """
drills:
  - name: weekly
    every: P7D
    recoveryPoint: latest
    resourceGroup: bs-drill-{region}
    lifetime: PT6H
"""


class Durable:
    """Durable's client as the doorway uses it (status, start): what would have started."""

    def __init__(self) -> None:
        self.started: list[tuple[str, str]] = []

    async def get_status(self, instance_id: str, show_input: bool = False) -> None:
        return None

    async def start_new(self, name: str, instance_id: str, payload: Any) -> str:
        self.started.append((name, instance_id))
        return instance_id


@pytest.fixture(scope="module")
def sandbox() -> Iterator[ArmSandbox]:
    sb = ArmSandbox(SandboxConfig()).start()
    try:
        yield sb
    finally:
        sb.stop()


@pytest.fixture
def sub(sandbox: ArmSandbox) -> Iterator[str]:
    subscription = sandbox.config.subscriptions[0].subscription_id
    settings = Settings.from_env({
        "STEWARD_ARM_ENDPOINT": sandbox.endpoint, "STEWARD_CREDENTIAL": "sandbox",
        "STEWARD_SANDBOX_TOKEN_URL": sandbox.token_url, "STEWARD_CA_BUNDLE": str(sandbox.ca_bundle),
        "STEWARD_SUBSCRIPTIONS": subscription, "STEWARD_RULES": default_rules_text() + DRILLS})
    bootstrap.use(settings=settings, publisher=MemoryPublisher())
    groups = bootstrap.clients().resources(subscription).resource_groups
    groups.create_or_update(f"bs-drill-{REGION}", {"location": REGION, "tags": {DRILL_GROUP_TAG: "true"}})
    groups.create_or_update("bs-drill-northeurope", {"location": "northeurope"})  # named so, not tagged: forged
    try:
        yield subscription
    finally:
        bootstrap.use()


def event(sub: str, resource: str, action: str = "Write") -> dict[str, Any]:
    operation = resource.split("/providers/", 1)[1].split("/")
    kind = "/".join([operation[0], *operation[1::2]])
    return {
        "id": f"evt-{abs(hash((resource, action)))}", "topic": f"/subscriptions/{sub}", "subject": resource,
        "eventType": f"Microsoft.Resources.Resource{action}Success", "eventTime": "2026-12-07T08:00:00Z",
        "dataVersion": "2",
        "data": {"operationName": f"{kind}/{action.lower()}", "resourceUri": resource, "status": "Succeeded",
                 "subscriptionId": sub, "tenantId": "72f988bf-86f1-41af-91ab-2d7cd011db47"},
    }


def handled(sub: str, resource: str, action: str = "Write") -> tuple[str, list[tuple[str, str]]]:
    durable = Durable()
    done = asyncio.run(handle_event(event(sub, resource, action), cast(df.DurableOrchestrationClient, durable)))
    return done, durable.started


def test_what_a_drill_makes_in_its_tagged_group_starts_nothing(sub: str, sandbox: ArmSandbox) -> None:
    group = f"/subscriptions/{sub}/resourceGroups/bs-drill-{REGION}"
    account = f"{group}/providers/Microsoft.Storage/storageAccounts/bsdrill0123456789abcdef"
    disk = f"{group}/providers/Microsoft.Compute/disks/data-drill-0123456789"
    reads = sandbox.counters.get("read")
    assert handled(sub, account) == ("ignored", [])
    assert handled(sub, f"{account}/blobServices/default/containers/invoices") == ("ignored", [])
    assert handled(sub, disk) == ("ignored", [])
    assert handled(sub, disk, "Delete") == ("ignored", [])
    assert handled(sub, account, "Delete") == ("ignored", [])
    assert sandbox.counters.get("read") - reads == 1, "one GET of the group, then its cached answer"


def test_a_group_only_named_as_a_drill_group_is_handled_as_any(sub: str) -> None:
    forged = f"/subscriptions/{sub}/resourceGroups/bs-drill-northeurope/providers/Microsoft.Compute/disks/real"
    done, started = handled(sub, forged)
    assert done == "started" and [name for name, _ in started] == ["protect_resource"]
    missing = f"/subscriptions/{sub}/resourceGroups/bs-drill-eastus/providers/Microsoft.Compute/disks/real"
    assert handled(sub, missing)[0] == "started", "a group that cannot be read is not taken as the drill's"


def test_only_what_drills_make_is_ignored_there(sub: str) -> None:
    group = f"/subscriptions/{sub}/resourceGroups/bs-drill-{REGION}"
    vm = f"{group}/providers/Microsoft.Compute/virtualMachines/someone-put-a-vm-here"
    assert handled(sub, vm)[0] == "started"
    elsewhere = f"/subscriptions/{sub}/resourceGroups/rg-app/providers/Microsoft.Compute/disks/data"
    assert handled(sub, elsewhere)[0] == "started"
