"""Two drills restoring VMs into one drill group at overlapping times (redteam's finding): a VM restore's job names
no restored disk (docs/azure-facts.md, "Restore drills"), so each drill takes the group's disks made by a restore
while its job ran and not tagged by another drill. Two restores that overlap, both ended before either drill looks:
the first to look claims (tags, then deletes) the other's disks too. The drills' own activities, in the order two
orchestrations can run them, on the app's SDK pipeline against the sandbox (the local host's estate)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, cast

import pytest

from activities.drill import (
    drill_candidates,
    drill_job,
    drill_operation,
    drill_points,
    drill_prepare,
    drill_restored,
    drill_start,
)
from sandbox.arm.providers.recoveryservices_jobs import recovery_services_jobs
from steward.domain.drill_flow import GROUP_BUSY
from steward.domain.drill_inputs import (
    DrillCandidatesQuery,
    DrillJobRef,
    DrillOperationLook,
    DrillRestoreQuery,
    DrillRestoreStart,
    DrillTargetStep,
)
from steward.domain.drill_records import DrillTarget
from tests.e2e.conftest import SUB1, Harness, drill_harness
from tests.e2e.test_drills import ADMIN, DRILLS, HOUR, WEU, call, finished, restored_by


@pytest.fixture
def app(tmp_path: Path) -> Iterator[Harness]:
    with drill_harness(tmp_path, DRILLS, operator=ADMIN) as harness:
        yield harness


def run(activity: Any, record: dict[str, Any]) -> dict[str, Any]:
    user: Callable[[dict[str, Any]], dict[str, Any]] = (
        activity._function.get_user_function() if hasattr(activity, "_function") else activity)
    return cast(dict[str, Any], user(record))


class Drill:
    """One drill of one VM, step by step as ``orchestrators/drill.py`` calls its activities."""

    def __init__(self, drill_id: str, target: DrillTarget) -> None:
        self.drill_id, self.target = drill_id, target
        self.started: dict[str, Any] = {}
        self.group = ""
        self.job_id = ""
        self.request: DrillRestoreStart | None = None

    def start(self, app: Harness) -> bool:
        points = run(drill_points, DrillTargetStep(self.target).to_record())["points"]
        prepared = run(drill_prepare, DrillTargetStep(self.target, self.drill_id).to_record())
        assert prepared["ok"], prepared
        self.group = prepared["group"]["id"]
        app.settle(30)  # the staging account's creation
        point = max(points, key=lambda p: str(p["time"]))["id"]
        self.request = DrillRestoreStart(self.drill_id, self.target, point, self.group, prepared["account"])
        self.send(app)

    def send(self, app: Harness) -> bool:
        """The restore sent, or (False) refused while another drill's VM restore into the group is in flight."""
        assert self.request is not None
        self.started = run(drill_start, self.request.to_record())
        if not self.started["ok"] and self.started["error"]["code"] == GROUP_BUSY:
            return False
        assert self.started["ok"], self.started
        state = run(drill_operation, DrillOperationLook(self.started["operation"]).to_record())
        for _ in range(20):
            if state.get("jobId"):
                break
            app.stack.advance(30)
            state = run(drill_operation, DrillOperationLook(self.started["operation"]).to_record())
        self.job_id = str(state["jobId"])
        return True

    def restored(self) -> list[str]:
        job = run(drill_job, DrillJobRef(self.target.vault_id, self.job_id, self.group).to_record())
        assert job["status"] == "Completed", job
        found = run(drill_restored, DrillRestoreQuery(
            self.drill_id, self.target, self.group, before=tuple(self.started.get("before") or ()),
            job_start=job.get("startTime"), job_end=job.get("endTime")).to_record())
        return sorted(str(r["id"]).lower() for r in found["restored"])


@pytest.mark.slow
def test_two_overlapping_vm_drills_into_one_group_claim_only_their_own_disks(app: Harness) -> None:
    est = app.estate()
    est.resource_group("rg-app", WEU)
    est.recovery_services_vault("rg-app", "rsv-weu", WEU)
    web, api = est.vm("rg-app", "vm-web", WEU), est.vm("rg-app", "vm-api", WEU)
    for vm in (web, api):
        app.wait_outcome(vm, "Protected", timeout=60)
    app.settle(60)
    app.stack.advance(2 * 24 * HOUR)  # the first backups and two days of scheduled ones
    found = run(drill_candidates, DrillCandidatesQuery((web, api)).to_record())
    targets = {t["resourceId"].lower(): DrillTarget.from_record(t) for t in found["targets"]}
    first, second = Drill("drill-timer", targets[web.lower()]), Drill("drill-api-call", targets[api.lower()])
    first.start(app)
    sent = second.start(app)  # while the first's restore into the drill group runs
    assert first.group.lower() == second.group.lower()
    app.stack.advance(2 * HOUR)  # the jobs sent end (an hour each in the sandbox)
    app.settle(30)
    mine = first.restored()  # the first drill looks first; the second's disks, if made, still untagged
    web_disks = sorted(i.lower() for i in restored_by(app, web) if "/disks/" in i.lower())
    assert web_disks
    assert mine == web_disks, f"the first drill claimed {mine}; its restore made {web_disks}"
    if not sent:  # it waited: the group is free once the first drill took its disks
        assert second.send(app)
        app.stack.advance(2 * HOUR)
        app.settle(30)
    api_disks = sorted(i.lower() for i in restored_by(app, api) if "/disks/" in i.lower())
    assert api_disks and second.restored() == api_disks


@pytest.mark.slow
def test_a_vm_drill_whose_restore_failed_frees_the_drill_group_for_the_next(app: Harness) -> None:
    """The restore job failed: no disks to take, the drill's cleanup lets the group's lease go (else the next VM
    drill into the group waits until the lease expires, and fails ``DrillGroupBusy`` after 24 hours)."""
    est = app.estate()
    est.resource_group("rg-app", WEU)
    est.recovery_services_vault("rg-app", "rsv-weu", WEU)
    vm = est.vm("rg-app", "vm-web", WEU)
    app.wait_outcome(vm, "Protected", timeout=60)
    app.settle(60)
    app.stack.advance(2 * 24 * HOUR)
    vault = f"/subscriptions/{SUB1}/resourceGroups/rg-app/providers/Microsoft.RecoveryServices/vaults/rsv-weu"
    recovery_services_jobs(app.sandbox).book.fail_next(vault, "Restore", "UserErrorDiskRestoreFailed",
                                                      "The restore failed on Azure's side.")
    status, started = call(app, "POST", "drills", {"resources": [vm]})
    assert status == 202, started
    [failed] = finished(app, started["id"])["results"]
    assert failed["outcome"] == "RestoreFailed" and failed["restoreJobId"], failed
    status, again = call(app, "POST", "drills", {"resources": [vm]})
    assert status == 202, again
    [result] = finished(app, again["id"])["results"]
    assert result["outcome"] == "Succeeded", result
    assert result["restored"] and result["left"] == [] and restored_by(app, vm) == []
