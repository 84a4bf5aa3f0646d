"""A restore drill whose app process is SIGKILLed while it follows the restore job resumes from its Durable
checkpoint: the job is followed to its end (not sent again), the restored disks are validated, and everything the
drill made is deleted.

The app (the local Functions host + Durable runner around ``function_app.py``, ``tests.chaos.app_process``) runs
in a child process on a SQLite history; the ARM sandbox, with the restore job, lives in this process and outlives
the kill. The sandbox's store is the judge of what remains.
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path
from typing import Any

import pytest

from sandbox.arm import ArmSandbox, SandboxConfig
from sandbox.arm.config import DEFAULT_SUBSCRIPTION
from sandbox.arm.providers.recoveryservices_jobs import recovery_services_jobs
from sandbox.clock import VirtualClock
from sandbox.estate import Estate
from sandbox.host.local import OUTCOME_TOPIC
from steward.cloud.clients import CloudClients
from steward.domain.drill_flow import DRILL_TAG
from steward.rules_file import default_rules_text
from tests.chaos.scenario import ADMIN, AppProcess
from tests.e2e.test_drills import DRILLS, HOUR, WEU

SUB = DEFAULT_SUBSCRIPTION
DRILL_GROUP = "/resourcegroups/backup-steward-drill-westeurope/"


def wait_for(predicate: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def drill_status(app: AppProcess, drill_id: str) -> dict[str, Any]:
    status, body = app.call("GET", f"drills/{drill_id}")
    assert status == 200, body
    return body  # type: ignore[no-any-return]


@pytest.mark.slow
def test_sigkill_while_the_restore_job_runs_resumes_follows_the_same_job_and_leaves_nothing(tmp_path: Path) -> None:
    sandbox = ArmSandbox(SandboxConfig(clock=VirtualClock(scale=600.0))).start()
    app = AppProcess(sandbox, tmp_path, {
        "STEWARD_RULES": default_rules_text() + DRILLS,
        "STEWARD_TEARDOWN_ALLOWED_PRINCIPALS": ADMIN,
        "STEWARD_REPORTS_DIR": str(tmp_path / "reports"),
        "STEWARD_DRILL_SCHEDULE": "0 0 0 1 1 *",
    })
    try:
        app.start()
        for url in app.ready["eventgrid"].values():
            sandbox.subscribe_webhook(url)
        est = Estate(CloudClients(dataclasses.replace(sandbox.cloud_target(), polling_interval=0.05)), SUB)
        est.resource_group("rg-app", WEU)
        vault = est.recovery_services_vault("rg-app", "rsv-weu", WEU)
        vm = est.vm("rg-app", "vm-web", WEU)

        def protected() -> bool:
            return any(e["data"].get("resourceId", "").lower() == vm.lower() and e["data"].get("status") == "Protected"
                       for e in sandbox.events.topic_events(OUTCOME_TOPIC)
                       if str(e.get("eventType", "")).startswith("BackupSteward.Protection."))

        wait_for(protected, 90, "the VM's protection")
        # two days of scheduled backups with the app down; it starts again on the sandbox's clock
        app.kill()
        sandbox.advance(2 * 24 * HOUR)
        app.start()
        jobs = recovery_services_jobs(sandbox)
        jobs.timing.rs_vm_restore = 4 * HOUR  # 24 real seconds at 600x: room to kill and resume inside it

        status, started = app.call("POST", "drills", {"resources": [vm]})
        assert status == 202, started
        drill_id = started["id"]
        wait_for(lambda: (drill_status(app, drill_id).get("customStatus") or {}).get("phase") == "restoreJob",
                 90, "the drill to follow its restore job")
        [job] = [j for j in jobs.book.of_vault(vault) if j.operation == "Restore"]
        assert not job.done
        app.kill()
        assert app.kills == 2
        assert not job.done, "the kill landed while the restore job ran"
        app.start()

        def ended() -> dict[str, Any] | None:
            body = drill_status(app, drill_id)
            return body if body["runtimeStatus"] in ("Completed", "Failed", "Terminated") else None

        body = wait_for(ended, 180, "the drill to end")
        assert body["runtimeStatus"] == "Completed", body
        [result] = body["report"]["results"]
        assert result["outcome"] == "Succeeded", json.dumps(result)
        assert result["restoreJobId"].lower().endswith(job.id.rsplit("/", 1)[-1].lower())
        assert result["rtoSeconds"] == pytest.approx(4 * HOUR, abs=120)
        assert result["restored"] and result["left"] == []
        # the resumed drill followed the job it had started: Azure got one restore, not two
        assert [j.operation for j in jobs.book.of_vault(vault)].count("Restore") == 1
        # nothing the drill made remains: no resource tagged with it, nothing restored from the VM, and nothing in
        # the drill group at all (a VM drill gives no role)
        store = sandbox.store
        tagged = [r["id"] for r in store.list()
                  if any(k.lower() == DRILL_TAG and v == drill_id for k, v in (r.get("tags") or {}).items())]
        assert tagged == []
        restored = [r["id"] for r in store.list() if str(((store.private(r["id"]) or {}).get("restoredBy") or {})
                                                        .get("sourceResourceId", "")).lower() == vm.lower()]
        assert restored == []
        assert [r["id"] for r in store.list() if DRILL_GROUP in r["id"].lower()] == []
    finally:
        app.stop()
        sandbox.stop()
