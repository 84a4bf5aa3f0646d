"""A teardown killed with SIGKILL mid-saga resumes from its checkpoint to the same end state.

The saga runs in a child process (this file run as a script: the teardown blueprints on the Durable runner,
history in SQLite) against the ARM sandbox of the test process. The test kills the child once some items are
gone, starts it again on the same history, and checks the end state and that nothing was redone: ARM saw no
more deletes than there were things to delete plus the ones in flight at the kill.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

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
        arm_endpoint=endpoint,
        credential_kind="sandbox",
        sandbox_token_url=token_url,
        ca_bundle=ca_bundle,
        polling_interval=0.05,
    )
    bootstrap.use(
        ops=TeardownOps(CloudClients(target), wait_budget_seconds=60, max_poll_seconds=0.5),
        settings=Settings(max_parallel_writes=PARALLEL, teardown_four_eyes=False),
        report_store=LocalReportStore(Path(db).parent / "reports"),
        publisher=MemoryPublisher(),
    )
    app = df.DFApp()
    app.register_functions(teardown_activities.bp)
    app.register_functions(teardown_orchestrator.bp)
    request = TeardownRequest(
        vault_id, "sigkill-test", RequestSource.HTTP, dry_run=False, approved_fingerprint=fingerprint
    )
    with DurableRunner(app, RunnerConfig(db_path=db)) as runner:
        instance = instance_id_for(request)
        if runner.store.instance(instance) is None:  # the second process resumes the stored instance
            runner.start_new("teardown_vault", instance, request.to_record())
        print("STARTED", instance, flush=True)
        status = runner.wait_for(instance, timeout=180)
        print("DONE", json.dumps(status.get("output")), flush=True)


@pytest.mark.slow
def test_sigkill_mid_teardown_resumes_to_the_same_end_state(tmp_path: Path) -> None:
    from sandbox.arm.providers.recoveryservices import recovery_services
    from sandbox.arm.providers.recoveryservices_model import Timing
    from steward.cloud.clients import CloudClients
    from steward.cloud.teardown_ops import TeardownOps
    from steward.domain.teardown import VaultRef, plan_teardown
    from tests.integration.teardown.conftest import Estate, start_sandbox

    sandbox = start_sandbox(scale=60.0)
    # deleting backup data takes 30 Azure seconds (half a real second here); everything else is quick
    recovery_services(sandbox).model.timing = Timing(
        configure_protection=1, first_backup=60, delete_backup_data=30, vault_update=1, vault_delete=1
    )
    try:
        clients = CloudClients(dataclasses.replace(sandbox.cloud_target(), polling_interval=0.05))
        estate = Estate(sandbox, clients)
        rg = estate.group()
        vault_id = estate.rs_vault(rg, soft_delete="Disabled", enhanced="Disabled")
        for index in range(ITEMS):
            estate.protect_vm(rg, "rsv", f"vm-{index}")
        sandbox.advance(2 * 3600)  # first backups ran: the inventory is stable from here on
        vault = VaultRef.parse(vault_id)
        plan = plan_teardown(TeardownOps(clients).inventory(vault, sandbox.clock.now()), sandbox.clock.now())
        deletes_before = sandbox.counters.get(kind="delete")

        def items_left() -> int:
            return len(list(estate.rsb.backup_protected_items.list("rsv", rg)))

        db = str(tmp_path / "durable.sqlite")
        args = [
            sys.executable,
            __file__,
            sandbox.endpoint,
            str(sandbox.ca_bundle),
            sandbox.token_url,
            db,
            vault_id,
            plan.fingerprint,
        ]
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        first = subprocess.Popen(args, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            deadline = time.monotonic() + 60
            while items_left() > ITEMS - 3:
                assert time.monotonic() < deadline, "the saga never started deleting"
                assert first.poll() is None, first.stderr.read() if first.stderr else "child ended"
                time.sleep(0.05)
            first.send_signal(signal.SIGKILL)
            first.wait(timeout=10)
        finally:
            if first.poll() is None:
                first.kill()
        assert first.returncode == -signal.SIGKILL
        left_at_kill = items_left()
        assert 0 < left_at_kill < ITEMS, "the kill did not land mid-saga"

        second = subprocess.run(args, cwd=REPO, env=env, capture_output=True, text=True, timeout=240, check=False)
        assert second.returncode == 0, second.stderr[-3000:]
        done = next(line for line in second.stdout.splitlines() if line.startswith("DONE "))
        report = json.loads(done.removeprefix("DONE "))
        assert report["outcome"] == "deleted", report["reason"]
        with pytest.raises(Exception, match=r"(?i)not ?found"):
            clients.recovery_services(vault.subscription_id).vaults.get(rg, "rsv")
        deletes = sandbox.counters.get(kind="delete") - deletes_before
        # ITEMS item deletes + 1 vault delete; at most the batch in flight at the kill is sent twice
        assert ITEMS + 1 <= deletes <= ITEMS + 1 + PARALLEL, deletes
    finally:
        sandbox.stop()


if __name__ == "__main__":
    driver(*sys.argv[1:7])
