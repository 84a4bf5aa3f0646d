"""The Event Grid doorway ignores what a restore drill makes in its own group (issue 17, the drill's own cost), and
nothing else: the drill's real ``drill_prepare`` activity finds (or makes) its group through the app's SDK pipeline
on the ARM sandbox and tells the worker whether the group carries ``backup-steward:drill-group=true``; the real
doorway (``entrypoints.event_grid.handle_event``) then ignores events only for what drills make there, reading
nothing from ARM itself. A group merely NAMED as a drill group (no tag), a type drills never make (a VM), a group
no drill step vouched for: all handled as before."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any, cast

import azure.durable_functions as df
import pytest

from activities.drill import drill_job, drill_prepare
from entrypoints.event_grid import handle_event
from sandbox.arm.config import SandboxConfig
from sandbox.arm.server import ArmSandbox
from steward import bootstrap
from steward.cloud.arm_cache import ArmCache
from steward.cloud.drills import DrillOps
from steward.cloud.publisher import MemoryPublisher
from steward.domain.drill_flow import DRILL_GROUP_TAG, job_poll_wait
from steward.domain.drill_records import DrillTarget, Workload
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
    groups.create_or_update("bs-drill-northeurope", {"location": "northeurope"})  # named so, not tagged: forged
    try:
        yield subscription
    finally:
        bootstrap.use()


def look_at_job(vault_id: str, job_id: str, group_id: str | None) -> dict[str, Any]:
    """The drill's own ``drill_job`` activity, as the orchestrator calls it while the restore job runs."""
    run = drill_job._function.get_user_function() if hasattr(drill_job, "_function") else drill_job
    record: dict[str, Any] = {"vaultId": vault_id, "jobId": job_id}
    if group_id is not None:
        record["groupId"] = group_id
    return cast(dict[str, Any], run(record))


def prepare(sub: str, region: str) -> dict[str, Any]:
    """The drill's own first step for a disk in ``region``: its drill group (made tagged when missing)."""
    run = drill_prepare._function.get_user_function() if hasattr(drill_prepare, "_function") else drill_prepare
    target = DrillTarget(resource_id=f"/subscriptions/{sub}/resourceGroups/rg/providers/Microsoft.Compute/disks/d",
                         rule="weekly", workload=Workload.DISK, type="Microsoft.Compute/disks", location=region,
                         subscription=sub, group=f"bs-drill-{region}")
    return cast(dict[str, Any], run({"drillId": "drill-1", "target": target.to_record()}))


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
    assert handled(sub, disk)[0] == "started", "no drill step vouched for the group yet"
    assert prepare(sub, REGION)["ok"]
    made = bootstrap.clients().resources(sub).resource_groups.get(f"bs-drill-{REGION}")
    assert made.tags == {DRILL_GROUP_TAG: "true"}
    requests = sandbox.counters.get()
    assert handled(sub, account) == ("ignored", [])
    assert handled(sub, f"{account}/blobServices/default/containers/invoices") == ("ignored", [])
    assert handled(sub, disk) == ("ignored", [])
    assert handled(sub, disk, "Delete") == ("ignored", [])
    assert handled(sub, account, "Delete") == ("ignored", [])
    assert sandbox.counters.get() == requests, "the trigger reads nothing from ARM"


def test_a_group_only_named_as_a_drill_group_is_handled_as_any(sub: str) -> None:
    refused = prepare(sub, "northeurope")
    assert not refused["ok"] and refused["error"]["code"] == "DrillGroupNotOwned"
    forged = f"/subscriptions/{sub}/resourceGroups/bs-drill-northeurope/providers/Microsoft.Compute/disks/real"
    done, started = handled(sub, forged)
    assert done == "started" and [name for name, _ in started] == ["protect_resource"]


def test_only_what_drills_make_is_ignored_there(sub: str) -> None:
    assert prepare(sub, REGION)["ok"]
    group = f"/subscriptions/{sub}/resourceGroups/bs-drill-{REGION}"
    vm = f"{group}/providers/Microsoft.Compute/virtualMachines/someone-put-a-vm-here"
    assert handled(sub, vm)[0] == "started"
    elsewhere = f"/subscriptions/{sub}/resourceGroups/rg-app/providers/Microsoft.Compute/disks/data"
    assert handled(sub, elsewhere)[0] == "started"


def test_a_restore_job_followed_past_the_cache_lifetime_keeps_its_group_vouched(
        sub: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """On Azure a restore job runs about an hour, its restored disks' events arrive while it runs: each look at the
    job vouches again for the drill group, long enough to reach the next look even when that look runs late (the
    worker's cache on a stepped clock: 300 s, the default; the looks at the orchestrator's waits, each 30 s late)."""
    now = [0.0]
    cache = ArmCache(300, now=lambda: now[0])
    monkeypatch.setattr(bootstrap, "arm_cache", lambda: cache)
    # the job's state as Azure answers while it runs (the sandbox's own jobs need a protected, backed-up source)
    monkeypatch.setattr(DrillOps, "job", lambda self, vault_id, job_id: {
        "status": "InProgress", "startTime": "2026-12-07T08:00:00Z", "endTime": None, "error": None})
    group = f"/subscriptions/{sub}/resourceGroups/bs-drill-{REGION}"
    disk = f"{group}/providers/Microsoft.Compute/disks/osdisk-restored"
    vault = f"/subscriptions/{sub}/resourceGroups/rg/providers/Microsoft.DataProtection/backupVaults/bv"
    assert prepare(sub, REGION)["ok"]
    polls = 0
    while now[0] < 2 * 3600:  # two hours of a running job
        assert look_at_job(vault, "job-1", group)["status"] == "InProgress"
        now[0] += job_poll_wait(polls).total_seconds() + 30 - 1  # just before the next (late) look
        polls += 1
        assert handled(sub, disk) == ("ignored", []), f"the vouch expired after {now[0]:.0f} s ({polls} looks)"
        now[0] += 1
    assert polls > 10
    # a look recorded before (no group): vouches for nothing; once the last vouch expires, events are handled
    assert look_at_job(vault, "job-1", None)["status"] == "InProgress"
    now[0] += 2 * 300 + 1
    assert handled(sub, disk)[0] == "started"
