"""The real ``function_app.py`` runs unchanged on the local stack: discovery and one event end to end."""

from __future__ import annotations

import json
import os
import ssl
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from sandbox.host.local import LocalStack

from .conftest import REPO_ROOT
from .support import eventually

pytestmark = pytest.mark.slow


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[LocalStack]:
    pytest.importorskip("sandbox.arm")
    saved = dict(os.environ)
    try:
        with LocalStack(app="function_app", app_root=REPO_ROOT, db_path=str(tmp_path / "real.sqlite"),
                        arm=True, run_timers=False) as started:
            yield started
    finally:
        os.environ.clear()
        os.environ.update(saved)


def test_real_app_is_discovered_from_its_app_object(stack: LocalStack) -> None:
    assert stack.catalog is not None
    assert stack.catalog.orchestrators, "function_app registers no orchestrator"
    assert stack.catalog.activities, "function_app registers no activity"
    assert stack.catalog.event_grid, "function_app registers no Event Grid trigger"
    assert stack.subscriptions, "the host's Event Grid webhook was not subscribed to the sandbox"


def test_a_vm_write_in_the_sandbox_runs_the_apps_orchestration_to_an_end(stack: LocalStack) -> None:
    sandbox, runner = stack.sandbox, stack.runner
    assert runner is not None
    subscription = sandbox.config.subscriptions[0].subscription_id
    context = ssl.create_default_context(cafile=str(sandbox.ca_bundle))

    def put(path: str, body: dict[str, object], version: str) -> None:
        request = urllib.request.Request(f"{sandbox.endpoint}{path}?api-version={version}",
                                         data=json.dumps(body).encode(), method="PUT",
                                         headers={"Authorization": f"Bearer {sandbox.mint_token()}",
                                                  "Content-Type": "application/json"})
        with urllib.request.urlopen(request, context=context, timeout=10) as response:
            assert response.status in (200, 201, 202)

    put(f"/subscriptions/{subscription}/resourcegroups/rg-real", {"location": "westeurope"}, "2025-04-01")
    put(f"/subscriptions/{subscription}/resourceGroups/rg-real/providers/Microsoft.Compute/virtualMachines/vm1",
        {"location": "westeurope", "properties": {"hardwareProfile": {"vmSize": "Standard_B2s"}}}, "2024-07-01")
    stack.advance(3600)  # the VM's creation is a long-running operation: its write event comes when it ends
    eventually(lambda: bool(runner.store.instances()), timeout=15)

    def all_finished() -> bool:
        stack.advance(60)
        return all(r.is_terminal for r in runner.store.instances())

    eventually(all_finished, timeout=30)
    finished = runner.store.instances()
    assert [r.instance_id for r in finished if r.status == "Failed"] == []
    assert any(r.name == "protect_resource" and r.status == "Completed" for r in finished)
