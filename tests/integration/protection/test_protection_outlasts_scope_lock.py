"""``protect_resource`` on the local Durable runner with hand-written fake activities: a write refused with
``ScopeLocked`` for as long as a resource move holds the group is retried on durable timers until the lock ends.

The runner honours only what Durable Functions honours (the serialised ``retryOptions``: fixed first interval,
attempt count), so the long window must come from the app's own timers (``orchestrators.retrying``).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import azure.durable_functions as df
import azure.functions as func
import pytest

from orchestrators import protection as protection_orchestrators
from sandbox.clock import VirtualClock
from sandbox.durable import DurableRunner, RunnerConfig
from sandbox.durable.discovery import load_catalog
from steward import bootstrap
from steward.cloud.errors import TransientAzureError
from steward.domain import protection_flow
from tests.durable_runner.support import run_to_end

SUB = "00000000-0000-4000-8000-000000000001"
DISK = f"/subscriptions/{SUB}/resourceGroups/rg-app/providers/Microsoft.Compute/disks/data-1"
VAULT = f"/subscriptions/{SUB}/resourceGroups/rg-backup/providers/Microsoft.DataProtection/backupVaults/bv-weu"


class Lock:
    """A resource group write lock that holds for ``seconds`` of Azure time from the first refused write."""

    def __init__(self) -> None:
        self.guard = threading.Lock()
        self.clock: VirtualClock | None = None
        self.seconds = 0.0
        self.first_refusal: Any = None
        self.attempts: list[Any] = []
        self.published: list[dict[str, Any]] = []

    def check(self) -> None:
        assert self.clock is not None
        now = self.clock.now()
        with self.guard:
            self.attempts.append(now)
            self.first_refusal = self.first_refusal or now
            if now - self.first_refusal < timedelta(seconds=self.seconds):
                raise TransientAzureError(
                    "The scope cannot perform write operation because following scope(s) are locked: 'rg-app'.",
                    status=409, code="ScopeLocked")


LOCK = Lock()
fakes = df.Blueprint()


@fakes.activity_trigger(input_name="request")
def describe_resource(request: dict[str, Any]) -> dict[str, Any]:
    return {"id": request["resourceId"], "type": "Microsoft.Compute/disks", "location": "westeurope",
            "tags": {}, "identity": "disk-uid", "managed_by": ""}


@fakes.activity_trigger(input_name="request")
def decide_protection(request: dict[str, Any]) -> dict[str, Any]:
    return protection_flow.decide(request["facts"], bootstrap.rules()).to_record()  # the packaged rules


@fakes.activity_trigger(input_name="request")
def find_vaults(request: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"id": VAULT, "kind": "Backup", "location": "westeurope", "tags": {}, "principal_id": "p-1",
             "tenant_id": None}]


@fakes.activity_trigger(input_name="request")
def grant_vault_roles(request: dict[str, Any]) -> dict[str, Any]:
    LOCK.check()  # a role assignment on the disk is a write in the disk's (locked) resource group
    return {"ok": True, "created": [g["role"] for g in request["grants"]]}


@fakes.activity_trigger(input_name="request")
def protect_in_backup_vault(request: dict[str, Any]) -> dict[str, Any]:
    return {"ok": True, "instance": {"id": f"{VAULT}/backupInstances/bi-1"}, "created": True}


@fakes.activity_trigger(input_name="request")
def publish_outcomes(request: dict[str, Any]) -> dict[str, Any]:
    LOCK.published.extend(request["outcomes"])
    return {"published": len(request["outcomes"])}


@pytest.fixture
def runner(tmp_path: Path) -> Iterator[DurableRunner]:
    app = df.DFApp(http_auth_level=func.AuthLevel.FUNCTION)
    app.register_functions(protection_orchestrators.bp)
    app.register_functions(fakes)
    clock = VirtualClock()  # Azure time moves on (timer to timer) only when run_to_end moves it
    LOCK.__init__()  # type: ignore[misc]
    LOCK.clock = clock
    bootstrap.reset()
    with DurableRunner(load_catalog(app), RunnerConfig(db_path=str(tmp_path / "d.sqlite")), clock=clock) as started:
        yield started
    bootstrap.reset()


def _protect(runner: DurableRunner, instance_id: str) -> dict[str, Any]:
    # the intent as the Event Grid doorway starts it (ProtectResource.to_record): the orchestrator reads it typed
    origin = {"eventId": f"ev-{instance_id}", "eventType": "Microsoft.Resources.ResourceWriteSuccess",
              "eventTime": "2026-01-05T08:59:00+00:00", "schema": "EventGrid"}
    runner.start_new("protect_resource", instance_id, {"kind": "protect", "resourceId": DISK, "origin": origin})
    status = run_to_end(runner, instance_id)
    assert status["runtimeStatus"] == "Completed", status
    return dict(status["output"])


def test_protection_outlasts_a_six_minute_scope_lock_of_a_move(runner: DurableRunner) -> None:
    # A move holds both groups for its whole run (60 s + 2 s per resource in the sandbox; Azure documents
    # moves of up to four hours). Six minutes is a move of ~150 resources.
    LOCK.seconds = 6 * 60
    outcome = _protect(runner, "protect-locked")
    assert outcome["status"] == "Protected", outcome
    waited = LOCK.attempts[-1] - LOCK.attempts[0]
    assert waited >= timedelta(minutes=6)
    assert len(LOCK.attempts) <= 12  # backoff, not a tight loop
    assert [o["status"] for o in LOCK.published] == ["Protected"]


def test_a_lock_that_outlives_the_window_ends_failed_with_the_reason(runner: DurableRunner) -> None:
    LOCK.seconds = 4 * 3600
    outcome = _protect(runner, "protect-locked-for-hours")
    assert outcome["status"] == "Failed"
    assert "ScopeLocked" in outcome["reason"] or "locked" in outcome["reason"]
    assert LOCK.attempts[-1] - LOCK.attempts[0] <= timedelta(minutes=15)  # gives up: the history stays bounded
    assert [o["status"] for o in LOCK.published] == ["Failed"]
