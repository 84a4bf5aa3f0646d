"""A teardown whose task hub is lost after it turned soft delete and enhanced security off: the reconciler (at
start-up, or in the next audit) restores exactly the earlier settings, removes the marker, publishes
``BackupSteward.Teardown.Reconciled`` and the audit reports VLT-006.

The saga runs in a child process (this file run as a script: the teardown blueprints on the Durable runner,
history in SQLite) against the ARM sandbox of the test process, as in ``test_teardown_sigkill.py``. The test
kills the child once both settings are off and items are being deleted, deletes the SQLite task hub, and starts
the app's reconciler doorways on a fresh hub: the start-up timer (``run_on_startup``) or the audit timer.
Before this change nothing recorded the earlier settings outside the lost history, so the vault stayed weak.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
ITEMS = 10
PARALLEL = 2


def driver(endpoint: str, ca_bundle: str, token_url: str, db: str, vault_id: str, fingerprint: str) -> None:  # noqa: PLR0917
    import azure.durable_functions as df

    import activities.teardown as teardown_activities
    import orchestrators.teardown as teardown_orchestrator
    from sandbox.durable import DurableRunner, RunnerConfig
    from steward import bootstrap
    from steward.cloud.clients import CloudClients, CloudTarget
    from steward.cloud.publisher import MemoryPublisher
    from steward.cloud.teardown_ops import TeardownOps
    from steward.domain.teardown import RequestSource, TeardownRequest, instance_id_for
    from steward.report.store import LocalReportStore
    from steward.settings import Settings

    target = CloudTarget(
        arm_endpoint=endpoint, credential_kind="sandbox", sandbox_token_url=token_url, ca_bundle=ca_bundle,
        polling_interval=0.05,
    )
    bootstrap.use(
        ops=TeardownOps(CloudClients(target), wait_budget_seconds=60, max_poll_seconds=0.5),
        settings=Settings(max_parallel_writes=PARALLEL, teardown_four_eyes=False),  # one admin plans and approves
        report_store=LocalReportStore(Path(db).parent / "reports"),
        publisher=MemoryPublisher(),
    )
    app = df.DFApp()
    app.register_functions(teardown_activities.bp)
    app.register_functions(teardown_orchestrator.bp)
    request = TeardownRequest(vault_id, "hub-loss-test", RequestSource.HTTP, dry_run=False,
                              approved_fingerprint=fingerprint)
    with DurableRunner(app, RunnerConfig(db_path=db)) as runner:
        instance = runner.start_new("teardown_vault", instance_id_for(request), request.to_record())
        print("STARTED", instance, flush=True)
        runner.wait_for(instance, timeout=180)


@dataclasses.dataclass
class Lost:
    sandbox: Any
    clients: Any
    estate: Any
    rg: str
    vault_id: str
    tmp: Path


def _config(lost: Lost) -> dict[str, Any]:
    props = lost.estate.rsb.backup_resource_vault_configs.get("rsv", lost.rg).properties
    return {
        "softDelete": props.soft_delete_feature_state,
        "enhancedSecurity": props.enhanced_security_state,
        "days": props.soft_delete_retention_period_in_days,
    }


@pytest.fixture
def lost(tmp_path: Path) -> Iterator[Lost]:
    """A vault half-emptied with soft delete and enhanced security off, its teardown's task hub deleted."""
    from sandbox.arm.providers.recoveryservices import recovery_services
    from sandbox.arm.providers.recoveryservices_model import Timing
    from steward.cloud.clients import CloudClients
    from steward.cloud.teardown_ops import TeardownOps
    from steward.domain.compensation import MARKER_TAG
    from steward.domain.teardown import VaultRef, plan_teardown
    from tests.integration.teardown.conftest import Estate, start_sandbox

    sandbox = start_sandbox(scale=60.0)
    recovery_services(sandbox).model.timing = Timing(
        configure_protection=1, first_backup=60, delete_backup_data=30, vault_update=1, vault_delete=1
    )
    try:
        clients = CloudClients(dataclasses.replace(sandbox.cloud_target(), polling_interval=0.05))
        estate = Estate(sandbox, clients)
        rg = estate.group()
        vault_id = estate.rs_vault(rg, soft_delete="Enabled", enhanced="Enabled", days=30, tags={"owner": "team-a"})
        for index in range(ITEMS):
            estate.protect_vm(rg, "rsv", f"vm-{index}")
        sandbox.advance(2 * 3600)
        vault = VaultRef.parse(vault_id)
        plan = plan_teardown(TeardownOps(clients).inventory(vault, sandbox.clock.now()), sandbox.clock.now())
        state = Lost(sandbox, clients, estate, rg, vault_id, tmp_path)

        def items_left() -> int:
            return len(list(estate.rsb.backup_protected_items.list("rsv", rg)))

        db = tmp_path / "durable.sqlite"
        args = [sys.executable, __file__, sandbox.endpoint, str(sandbox.ca_bundle), sandbox.token_url, str(db),
                vault_id, plan.fingerprint]
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        child = subprocess.Popen(args, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            deadline = time.monotonic() + 60
            while not (_config(state)["enhancedSecurity"] == "Disabled" and items_left() <= ITEMS - 2):
                assert time.monotonic() < deadline, "the saga never weakened the vault"
                assert child.poll() is None, child.stderr.read() if child.stderr else "child ended"
                time.sleep(0.05)
            child.send_signal(signal.SIGKILL)
            child.wait(timeout=10)
        finally:
            if child.poll() is None:
                child.kill()
        for suffix in ("", "-wal", "-shm", "-journal"):  # the task hub is gone
            Path(str(db) + suffix).unlink(missing_ok=True)
        assert 0 < items_left() < ITEMS, "the kill did not land mid-saga"
        assert _config(state) == {"softDelete": "Disabled", "enhancedSecurity": "Disabled", "days": 30}
        assert MARKER_TAG in (estate.rs.vaults.get(rg, "rsv").tags or {})
        yield state
    finally:
        sandbox.stop()


def _app_env(lost: Lost) -> dict[str, str]:
    sandbox = lost.sandbox
    return {
        "STEWARD_ARM_ENDPOINT": sandbox.endpoint,
        "STEWARD_CA_BUNDLE": str(sandbox.ca_bundle),
        "STEWARD_CREDENTIAL": "sandbox",
        "STEWARD_SANDBOX_TOKEN_URL": sandbox.token_url,
        "STEWARD_SUBSCRIPTIONS": lost.estate.subscription,
        "STEWARD_REPORTS_DIR": str(lost.tmp / "audit-reports"),
        "STEWARD_AUDIT_SCHEDULE": "0 0 6 * * *",
    }


@pytest.mark.slow
@pytest.mark.parametrize("doorway", ["start-up", "audit"])
def test_losing_the_task_hub_mid_teardown_the_reconciler_restores_the_vault(
    lost: Lost, doorway: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import azure.durable_functions as df

    from activities import audit as audit_activities
    from activities import compensation as compensation_activities
    from entrypoints import audit_timer, reconcile_timer
    from orchestrators import audit as audit_orchestrators
    from orchestrators import compensation as compensation_orchestrators
    from orchestrators import retrying as retrying_orchestrators
    from sandbox.durable import DurableRunner, RunnerConfig
    from sandbox.host.server import HostKeys, LocalHost
    from steward import bootstrap
    from steward.cloud.publisher import MemoryPublisher
    from steward.cloud.teardown_ops import TeardownOps
    from steward.domain.compensation import MARKER_TAG
    from steward.settings import Settings

    for name, value in _app_env(lost).items():
        monkeypatch.setenv(name, value)
    # the marker was written seconds ago; production leaves markers younger than 5 minutes to the next run
    monkeypatch.setattr(reconcile_timer, "CLOCK_SKEW_SECONDS", 0)
    bootstrap.reset()
    publisher = MemoryPublisher()
    bootstrap.use(
        ops=TeardownOps(lost.clients, wait_budget_seconds=60, max_poll_seconds=0.5),
        settings=dataclasses.replace(Settings.from_env(), teardown_four_eyes=False),  # the subscription: _app_env
        publisher=publisher,
    )
    app = df.DFApp()
    for blueprint in (reconcile_timer.bp, audit_timer.bp, compensation_orchestrators.bp, audit_orchestrators.bp,
                      compensation_activities.bp, audit_activities.bp, retrying_orchestrators.bp):
        app.register_functions(blueprint)
    runner = DurableRunner(app, RunnerConfig(db_path=str(lost.tmp / "fresh-hub.sqlite")), clock=lost.sandbox.clock)
    runner.start()
    host = LocalHost(runner.catalog, runner, keys=HostKeys(), run_timers=doorway == "start-up").start()
    try:
        if doorway == "audit":
            host.fire_timer("audit_timer")
        prefix = "reconcile-" if doorway == "start-up" else "audit-"
        deadline = time.monotonic() + 90
        started = []
        while not started:
            assert time.monotonic() < deadline, "no reconciliation started"
            started = [i.instance_id for i in runner.query() if i.instance_id.startswith(prefix)]
            time.sleep(0.05)
        status = runner.wait_for(started[0], timeout=120)
        assert status["runtimeStatus"] == "Completed", status
    finally:
        host.stop()
        runner.stop()
        bootstrap.use()
        bootstrap.reset()

    # exactly the earlier settings, not a blanket "Enabled": retention 30 days kept; the marker gone, other tags kept
    assert _config(lost) == {"softDelete": "Enabled", "enhancedSecurity": "Enabled", "days": 30}
    tags = lost.estate.rs.vaults.get(lost.rg, "rsv").tags or {}
    assert MARKER_TAG not in tags and tags.get("owner") == "team-a"
    events = [e for e in publisher.events if e.event_type == "BackupSteward.Teardown.Reconciled"]
    assert [e.subject for e in events] == [lost.vault_id]
    assert {(r["setting"], r["to"]) for r in events[0].data["restored"]} == {
        ("softDelete", "Enabled"), ("enhancedSecurity", "Enabled")
    }
    if doorway == "audit":
        report = json.loads((lost.tmp / "audit-reports" / "latest.json").read_text())
        findings = [f for f in report["findings"] if f["control"] == "VLT-006"]
        assert [f["resourceId"].lower() for f in findings] == [lost.vault_id.lower()]
        assert "softDelete Disabled->Enabled" in findings[0]["why"]


@pytest.mark.slow
def test_a_new_teardown_takes_the_lost_ones_marker_over_and_the_reconciler_leaves_it_alone(
    lost: Lost, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Someone runs the teardown again before any reconciliation: the new run owns the marker (keeping the lost
    run's earlier values), so a reconciliation while it runs does not turn soft delete back on under it."""
    import azure.durable_functions as df

    import activities.teardown as teardown_activities
    import orchestrators.teardown as teardown_orchestrator
    from activities import compensation as compensation_activities
    from entrypoints import reconcile_timer
    from orchestrators import compensation as compensation_orchestrators
    from sandbox.durable import DurableRunner, RunnerConfig
    from sandbox.host.server import HostKeys, LocalHost
    from steward import bootstrap
    from steward.cloud.publisher import MemoryPublisher
    from steward.cloud.teardown_ops import TeardownOps
    from steward.domain.compensation import MARKER_TAG, TeardownMarker
    from steward.domain.teardown import RequestSource, TeardownRequest, VaultRef, instance_id_for, plan_teardown
    from steward.report.store import LocalReportStore
    from steward.settings import Settings

    monkeypatch.setattr(reconcile_timer, "CLOCK_SKEW_SECONDS", 0)
    ops = TeardownOps(lost.clients, wait_budget_seconds=60, max_poll_seconds=0.5)
    publisher = MemoryPublisher()
    bootstrap.use(
        ops=ops,
        settings=Settings(subscriptions=(lost.estate.subscription,), max_parallel_writes=1, teardown_four_eyes=False),
        publisher=publisher, report_store=LocalReportStore(lost.tmp / "reports"),
    )
    app = df.DFApp()
    for blueprint in (teardown_activities.bp, teardown_orchestrator.bp, reconcile_timer.bp,
                      compensation_orchestrators.bp, compensation_activities.bp):
        app.register_functions(blueprint)
    vault = VaultRef.parse(lost.vault_id)
    plan = plan_teardown(ops.inventory(vault, lost.sandbox.clock.now()), lost.sandbox.clock.now())
    request = TeardownRequest(lost.vault_id, "second-try", RequestSource.HTTP, dry_run=False,
                              approved_fingerprint=plan.fingerprint)
    second = instance_id_for(request)
    runner = DurableRunner(app, RunnerConfig(db_path=str(lost.tmp / "second.sqlite")), clock=lost.sandbox.clock)
    runner.start()
    host = LocalHost(runner.catalog, runner, keys=HostKeys(), run_timers=False).start()
    try:
        runner.start_new("teardown_vault", second, request.to_record())
        deadline = time.monotonic() + 30
        while True:
            tag = (lost.estate.rs.vaults.get(lost.rg, "rsv").tags or {}).get(MARKER_TAG)
            if tag and TeardownMarker.decode(tag).instance_id == second:
                break
            assert time.monotonic() < deadline, "the second teardown never took the marker over"
            time.sleep(0.02)
        assert dict(TeardownMarker.decode(tag).earlier) == {"softDelete": "Enabled", "enhancedSecurity": "Enabled"}
        host.fire_timer("teardown_reconcile_timer")
        reconciliation = next(i.instance_id for i in runner.query() if i.instance_id.startswith("reconcile-"))
        output = runner.wait_for(reconciliation, timeout=60)["output"]
        assert output["reconciled"] == []
        assert [d["action"] for d in output["left"]] == ["leave"] and "still runs" in output["left"][0]["reason"]
        report = runner.wait_for(second, timeout=120)["output"]
        assert report["outcome"] == "deleted", report["reason"]
    finally:
        host.stop()
        runner.stop()
        bootstrap.use()
    assert not [e for e in publisher.events if e.event_type.startswith("BackupSteward.Teardown.Reconcile")]


@pytest.mark.slow
def test_a_vault_that_cannot_take_the_marker_is_not_weakened(tmp_path: Path) -> None:
    """Azure's 50-tag limit leaves no room for the marker: the saga fails before turning anything off."""
    import azure.durable_functions as df

    import activities.teardown as teardown_activities
    import orchestrators.teardown as teardown_orchestrator
    from sandbox.durable import DurableRunner, RunnerConfig
    from steward import bootstrap
    from steward.cloud.clients import CloudClients
    from steward.cloud.publisher import MemoryPublisher
    from steward.cloud.teardown_ops import TeardownOps
    from steward.domain.teardown import RequestSource, TeardownRequest, VaultRef, instance_id_for, plan_teardown
    from steward.report.store import LocalReportStore
    from steward.settings import Settings
    from tests.integration.teardown.conftest import Estate, start_sandbox

    sandbox = start_sandbox()
    try:
        clients = CloudClients(dataclasses.replace(sandbox.cloud_target(), polling_interval=0.05))
        estate = Estate(sandbox, clients)
        rg = estate.group()
        full = {f"tag-{i}": "x" for i in range(50)}
        vault_id = estate.rs_vault(rg, soft_delete="Enabled", enhanced="Enabled", days=30, tags=full)
        estate.protect_vm(rg, "rsv", "vm-1")
        sandbox.advance(2 * 3600)
        ops = TeardownOps(clients, wait_budget_seconds=60, max_poll_seconds=0.5)
        plan = plan_teardown(ops.inventory(VaultRef.parse(vault_id), sandbox.clock.now()), sandbox.clock.now())
        bootstrap.use(ops=ops, settings=Settings(teardown_four_eyes=False), publisher=MemoryPublisher(),
                                 report_store=LocalReportStore(tmp_path / "reports"))
        app = df.DFApp()
        app.register_functions(teardown_activities.bp)
        app.register_functions(teardown_orchestrator.bp)
        request = TeardownRequest(vault_id, "tester", RequestSource.HTTP, dry_run=False,
                                  approved_fingerprint=plan.fingerprint)
        with DurableRunner(app, RunnerConfig(db_path=str(tmp_path / "hub.sqlite")), clock=sandbox.clock) as runner:
            instance = runner.start_new("teardown_vault", instance_id_for(request), request.to_record())
            report = runner.wait_for(instance, timeout=120)["output"]
        assert report["outcome"] == "failed" and "nothing was changed" in report["reason"], report["reason"]
        assert report["deleted"] == []
        props = estate.rsb.backup_resource_vault_configs.get("rsv", rg).properties
        assert (props.soft_delete_feature_state, props.enhanced_security_state) == ("Enabled", "Enabled")
        assert estate.rs.vaults.get(rg, "rsv").tags == full
    finally:
        bootstrap.use()
        sandbox.stop()


if __name__ == "__main__":
    driver(*sys.argv[1:7])
