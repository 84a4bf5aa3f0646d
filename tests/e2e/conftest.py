"""End-to-end fixtures: the real app (function_app.py) on the local host, the Durable runner and the ARM
sandbox, driven only through Azure's APIs (the sandbox raises the events, the app reacts)."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from sandbox.arm import SandboxConfig
from sandbox.arm.config import DEFAULT_SUBSCRIPTION, SECOND_SUBSCRIPTION, EventDeliveryConfig
from sandbox.clock import VirtualClock
from sandbox.estate import Estate
from sandbox.host.local import OUTCOME_TOPIC, LocalStack
from steward import bootstrap
from steward.cloud.clients import CloudClients

REPO = Path(__file__).resolve().parents[2]
SUB1, SUB2 = DEFAULT_SUBSCRIPTION, SECOND_SUBSCRIPTION


@dataclasses.dataclass
class Harness:
    stack: LocalStack
    clients: CloudClients

    @property
    def sandbox(self) -> Any:
        return self.stack.sandbox

    def estate(self, subscription_id: str = SUB1) -> Estate:
        return Estate(self.clients, subscription_id)

    def outcomes(self) -> list[dict[str, Any]]:
        """Outcome events the app published to its topic (data records)."""
        return [e["data"] for e in self.sandbox.events.topic_events(OUTCOME_TOPIC)
                if str(e.get("eventType", "")).startswith("BackupSteward.Protection.")]

    def outcomes_for(self, resource_id: str) -> list[dict[str, Any]]:
        return [o for o in self.outcomes() if o["resourceId"].lower() == resource_id.lower()]

    def wait_for(self, predicate: Callable[[], Any], timeout: float = 30.0, what: str = "condition") -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = predicate()
            if value:
                return value
            time.sleep(0.05)
        raise AssertionError(f"timed out waiting for {what}")

    def wait_outcome(self, resource_id: str, status: str | None = None, timeout: float = 30.0) -> dict[str, Any]:
        def found() -> dict[str, Any] | None:
            for outcome in self.outcomes_for(resource_id):
                if status is None or outcome["status"] == status:
                    return outcome
            return None

        return self.wait_for(found, timeout, f"outcome {status or 'any'} for {resource_id}")  # type: ignore[no-any-return]

    def settle(self, timeout: float = 30.0) -> None:
        """Wait until no orchestration is pending or running."""
        runner = self.stack.runner
        assert runner is not None

        def idle() -> bool:
            statuses = [runner.status(i.instance_id)["runtimeStatus"] for i in runner.query()]
            return all(s in {"Completed", "Failed", "Terminated"} for s in statuses)

        time.sleep(0.2)
        self.wait_for(idle, timeout, "orchestrations to finish")


def start_harness(tmp: Path, *, delivery: EventDeliveryConfig | None = None,
                  settings: dict[str, str] | None = None, scale: float = 600.0, instances: int = 1) -> Harness:
    clock = VirtualClock(scale=scale)
    config = SandboxConfig(clock=clock, events=delivery or EventDeliveryConfig())
    stack = LocalStack(
        app="function_app",
        app_root=REPO,
        db_path=str(tmp / "durable.sqlite"),
        arm_config=config,
        instances=instances,
        # reports, and the vault sets' ledgers, in the test's own directory (never var/reports, shared by runs)
        settings={"STEWARD_REPORTS_DIR": str(tmp / "reports"), **(settings or {})},
    ).start()
    sandbox = stack.sandbox
    target = dataclasses.replace(sandbox.cloud_target(), polling_interval=0.05)
    return Harness(stack, CloudClients(target))


@pytest.fixture
def harness(tmp_path: Path) -> Iterator[Harness]:
    h = start_harness(tmp_path)
    try:
        yield h
    finally:
        h.stack.stop()
        bootstrap.reset()


@contextmanager
def drill_harness(tmp: Path, drills: str, *, operator: str) -> Iterator[Harness]:
    """The app with the default rules plus ``drills``, ``operator`` allowed to tear down and drill, reports under
    ``tmp`` and the daily drill timer off (the tests advance days of Azure time: the timer would start drills of its
    own beside them); stopped afterwards."""
    from steward.rules_file import default_rules_text

    harness = start_harness(tmp, settings={
        "STEWARD_RULES": default_rules_text() + drills,
        "STEWARD_TEARDOWN_ALLOWED_PRINCIPALS": operator,
        "STEWARD_REPORTS_DIR": str(tmp / "reports"),
        "STEWARD_DRILL_SCHEDULE": "0 0 0 1 1 *",
    })
    try:
        yield harness
    finally:
        harness.stack.stop()
        bootstrap.reset()
