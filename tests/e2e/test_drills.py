"""Restore drills through the real app (``function_app.py`` on the local host, the Durable runner, the ARM
sandbox): the app protects a VM and a disk, the sandbox's backups run, ``POST /api/drills`` restores them out of
place, validates, and deletes what it created; a restore job failing on Azure's side, a cancel mid-drill and an
in-place-only restore (operational blob backup) all leave nothing behind. Checked through the sandbox's store."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sandbox.arm.providers.authorization_model import RoleAssignments, define_custom_role, role_definition_id
from sandbox.arm.providers.recoveryservices_jobs import job_error_number, recovery_services_jobs
from sandbox.host.local import OUTCOME_TOPIC
from steward.domain.drill_flow import DRILL_TAG
from tests.e2e.conftest import SUB1, Harness, drill_harness
from tests.infra.deployed_roles import custom_roles, deploy_app_roles

ADMIN = "aaaaaaaa-0000-4000-8000-00000000d211"
OTHER = "aaaaaaaa-0000-4000-8000-00000000d212"
WEU = "westeurope"
HOUR = 3600.0
DRILLS = """
drills:
  - name: everything-weekly
    every: P7D
    recoveryPoint: latest
    lifetime: PT6H
    budgets: {maxConcurrent: 5, maxRestoredGb: 1024}
"""


@pytest.fixture
def app(tmp_path: Path) -> Iterator[Harness]:
    with drill_harness(tmp_path, DRILLS, operator=ADMIN) as harness:
        yield harness


def call(harness: Harness, method: str, path: str, body: Any = None, *, principal: str = ADMIN) -> tuple[int, Any]:
    host = harness.stack.host
    request = urllib.request.Request(
        f"{host.origin}/api/{path}", method=method, data=None if body is None else json.dumps(body).encode(),
        headers={"x-functions-key": host.keys.function_key, "Content-Type": "application/json",
                 **harness.stack.bearer(principal)})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


def finished(app: Harness, drill_id: str, timeout: float = 120.0) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        status, body = call(app, "GET", f"drills/{drill_id}")
        assert status == 200, body
        return body if body["runtimeStatus"] in ("Completed", "Failed", "Terminated") else None

    body = app.wait_for(done, timeout, f"drill {drill_id} to end")
    assert body["runtimeStatus"] == "Completed", body
    return body["report"]  # type: ignore[no-any-return]


def drill_leftovers(app: Harness, drill_id: str) -> list[str]:
    """Everything in the sandbox that carries the drill's tag (it creates nothing else)."""
    return [r["id"] for r in app.sandbox.store.list()
            if any(k.lower() == DRILL_TAG and v == drill_id for k, v in (r.get("tags") or {}).items())]


def restored_by(app: Harness, source_id: str) -> list[str]:
    """Resources a restore of ``source_id`` created that still exist (the sandbox's own bookkeeping)."""
    found = []
    for record in app.sandbox.store.list():
        private = app.sandbox.store.private(record["id"]) or {}
        mark = private.get("restoredBy") or {}
        if str(mark.get("sourceResourceId", "")).lower() == source_id.lower():
            found.append(record["id"])
    return found


def protected_estate(app: Harness) -> tuple[str, str]:
    est = app.estate()
    est.resource_group("rg-app", WEU)
    est.recovery_services_vault("rg-app", "rsv-weu", WEU)
    est.backup_vault("rg-app", "bv-weu", WEU)
    vm = est.vm("rg-app", "vm-web", WEU)
    disk = est.disk("rg-app", "data-disk", WEU)
    for rid in (vm, disk):
        app.wait_outcome(rid, "Protected", timeout=60)
    app.settle(60)
    app.stack.advance(2 * 24 * HOUR)  # the first backups and two days of scheduled ones
    return vm, disk


def protected_postgres(app: Harness) -> str:
    """A PostgreSQL flexible server the app protected in a Backup vault, once its weekly vault-tier backup ran."""
    est = app.estate()
    est.resource_group("rg-app", WEU)
    est.backup_vault("rg-app", "bv-weu", WEU)
    server = est.postgres("rg-app", "pg-orders", WEU)
    app.wait_outcome(server, "Protected", timeout=60)
    app.settle(60)
    app.stack.advance(8 * 24 * HOUR)  # the weekly vault-tier backup has run
    return server


def drill_events(app: Harness) -> list[dict[str, Any]]:
    return [e for e in app.sandbox.events.topic_events(OUTCOME_TOPIC)
            if str(e.get("eventType", "")).startswith("BackupSteward.Drill.")]


@pytest.mark.slow
def test_a_vm_and_a_disk_drill_restore_validate_and_leave_nothing(app: Harness) -> None:
    from steward import telemetry

    vm, disk = protected_estate(app)
    reader = telemetry.use_in_memory()  # the metrics Application Insights would get (issue 20 item 7: drill RTO)
    try:
        status, started = call(app, "POST", "drills", {"resources": [vm, disk]})
        assert status == 202, started
        report = finished(app, started["id"])
        app.settle(60)  # drill_record, which records the metric, runs after the report is final
        rto = {a["workload"]: v for a, v in telemetry.snapshot(reader).get(telemetry.DRILL_RTO, [])
               if a["outcome"] == "Succeeded"}
    finally:
        telemetry.use_meter_provider(None)
    assert set(rto) == {"virtualMachine", "disk"} and all(v["count"] == 1 and v["sum"] > 0 for v in rto.values()), rto
    by_id = {r["resourceId"].lower(): r for r in report["results"]}
    assert set(by_id) == {vm.lower(), disk.lower()}, report
    for resource_id, result in by_id.items():
        assert result["outcome"] == "Succeeded", json.dumps(result)
        assert result["validation"]["passed"], json.dumps(result)
        assert result["rtoSeconds"] and result["rtoSeconds"] > 0
        assert result["recoveryPoint"]["ageSeconds"] >= 0
        assert result["restored"] and result["left"] == []
        restored = {r["id"].lower() for r in result["restored"]}
        assert restored <= {c.lower() for c in result["deleted"]}
        assert restored_by(app, resource_id) == [], "a restored resource outlived the drill"
    vm_result = by_id[vm.lower()]
    # the VM's disks came back into the drill group with a staging account; neither remains
    assert any("/storageaccounts/" in c.lower() for c in vm_result["created"])
    assert "/resourcegroups/backup-steward-drill-westeurope" in vm_result["drillGroup"].lower()
    assert drill_leftovers(app, started["id"]) == []
    group = app.sandbox.store.list()
    in_group = [r for r in group if "/resourcegroups/backup-steward-drill-westeurope/" in r["id"].lower()]
    # what stays is the Backup vault identity's Disk Restore Operator on the drill group (the disk drill's restore
    # right, backup/restore-managed-disks.md; the app cannot delete role assignments), reused by the next drill
    assert [r for r in in_group if r["type"] != "Microsoft.Authorization/roleAssignments"] == [], in_group
    assert [r["properties"]["roleDefinitionId"].rsplit("/", 1)[-1] for r in in_group] == [
        "b50d9833-a0cb-478e-945f-707fcc997c13"], in_group
    app.settle(60)  # the app heard the drill's own writes (staging account, restored disks) as resource events
    guarded = [r["id"] for r in app.sandbox.store.list() if "/resourcegroups/backup-steward-drill-westeurope/"
               in json.dumps(r.get("properties") or {}).lower() and "/backupinstances/" in r["id"].lower()]
    assert guarded == [], "what a drill makes is never protected: its backup would outlive the drill"
    events = drill_events(app)
    assert sorted(e["eventType"] for e in events) == ["BackupSteward.Drill.Succeeded"] * 2, json.dumps(events)
    assert {e["subject"].lower() for e in events} == {vm.lower(), disk.lower()}


@pytest.mark.slow
def test_a_vm_drill_from_the_vault_tier_alone_finds_and_validates_the_imported_disks(app: Harness) -> None:
    """Once a point's snapshot is gone, its restore reads the vault and the disks are created otherwise than
    ``Restore`` (the sandbox: ``Import`` from the staging account, INFERRED; docs/azure-facts.md "Restore
    drills"). Before, the drill looked only for ``Restore`` disks: it found none and failed validation."""
    vm, _disk = protected_estate(app)
    assert recovery_services_jobs(app.sandbox).expire_snapshots() > 0
    status, started = call(app, "POST", "drills", {"resources": [vm]})
    assert status == 202, started
    [result] = finished(app, started["id"])["results"]
    assert result["outcome"] == "Succeeded", json.dumps(result)
    assert result["validation"]["passed"] and result["restored"], json.dumps(result)
    assert result["left"] == [] and restored_by(app, vm) == [] and drill_leftovers(app, started["id"]) == []


@pytest.mark.slow
def test_a_restore_job_failing_on_azures_side_is_reported_and_cleaned_up(app: Harness) -> None:
    vm, _disk = protected_estate(app)
    vault = f"/subscriptions/{SUB1}/resourceGroups/rg-app/providers/Microsoft.RecoveryServices/vaults/rsv-weu"
    recovery_services_jobs(app.sandbox).book.fail_next(vault, "Restore", "UserErrorDiskRestoreFailed",
                                                      "The restore failed on Azure's side.")
    status, started = call(app, "POST", "drills", {"resources": [vm]})
    assert status == 202, started
    report = finished(app, started["id"])
    [result] = report["results"]
    assert result["outcome"] == "RestoreFailed", result
    # a Recovery Services job's errorCode is an integer (docs/azure-facts.md): the report keeps it as Azure gave it
    assert result["error"] == {"code": job_error_number("UserErrorDiskRestoreFailed"),
                               "message": "The restore failed on Azure's side."}, result["error"]
    assert result["left"] == [] and result["created"]  # the staging account was made, and deleted
    assert drill_leftovers(app, started["id"]) == [] and restored_by(app, vm) == []
    assert [e["eventType"] for e in drill_events(app)] == ["BackupSteward.Drill.RestoreFailed"]


@pytest.mark.slow
def test_cancel_mid_drill_cancels_the_job_and_deletes_what_the_drill_made(app: Harness) -> None:
    vm, _disk = protected_estate(app)
    recovery_services_jobs(app.sandbox).timing.rs_vm_restore = 48 * HOUR  # a long restore to cancel
    status, started = call(app, "POST", "drills", {"resources": [vm]})
    assert status == 202, started

    def job_running() -> bool:
        _, body = call(app, "GET", f"drills/{started['id']}")
        return (body.get("customStatus") or {}).get("phase") == "restoreJob"

    app.wait_for(job_running, 60, "the restore job to run")
    status, answer = call(app, "POST", f"drills/{started['id']}/cancel")
    assert status == 202, answer
    report = finished(app, started["id"])
    [result] = report["results"]
    assert result["outcome"] == "Cancelled", result
    assert result["restoreJob"]["status"] == "Cancelled"
    assert result["left"] == [] and drill_leftovers(app, started["id"]) == [] and restored_by(app, vm) == []
    status, again = call(app, "POST", f"drills/{started['id']}/cancel")
    assert status == 409 and again["code"] == "DrillNotRunning"


@pytest.mark.slow
def test_operational_blob_backup_is_refused_never_restored_in_place(app: Harness) -> None:
    est = app.estate()
    est.resource_group("rg-app", WEU)
    est.backup_vault("rg-app", "bv-weu", WEU)
    account = est.storage_account("rg-app", "stdrillsrc1", WEU)
    app.wait_outcome(account, "Protected", timeout=60)
    app.settle(60)
    app.stack.advance(24 * HOUR)
    status, started = call(app, "POST", "drills", {"resources": [account]})
    assert status == 202, started
    report = finished(app, started["id"])
    [result] = report["results"]
    assert result["outcome"] == "Refused" and "in place" in result["reason"], result
    assert result["created"] == [] and drill_leftovers(app, started["id"]) == []


@pytest.mark.slow
def test_drill_routes_need_an_allowed_caller_and_valid_input(app: Harness) -> None:
    status, body = call(app, "POST", "drills", {"resources": ["not-an-id"]})
    assert status == 400 and body["code"] == "InvalidResourceId"
    status, body = call(app, "POST", "drills", {"everything": True})
    assert status == 400 and "unknown field" in body["detail"]
    status, body = call(app, "POST", "drills", {}, principal=OTHER)
    assert status == 403, body
    status, body = call(app, "GET", "drills/drill-nope")
    assert status == 404 and body["code"] == "DrillNotFound"


@pytest.mark.slow
@pytest.mark.parametrize("enable_drills", [False, True], ids=["default-deployment", "enableDrills"])
def test_azure_refuses_a_drill_unless_the_deployment_gave_the_drill_role(app: Harness, enable_drills: bool) -> None:
    """Production truth (issue 17): from the drill on, the sandbox checks the app identity's own RBAC against the
    roles infra/ gives it (tests/infra/deployed_roles.py). A default deployment's roles are refused at the first
    write, before anything is made; with enableDrills the drill runs and leaves nothing."""
    vm, disk = protected_estate(app)
    principal = app.sandbox.config.default_principal_id
    deploy_app_roles(app.sandbox, principal, SUB1, enableDrills=enable_drills)
    app.sandbox.enforce_caller_rbac(principal)
    status, started = call(app, "POST", "drills", {"resources": [vm, disk]})
    assert status == 202, started
    report = finished(app, started["id"])
    by_id = {r["resourceId"].lower(): r for r in report["results"]}
    assert set(by_id) == {vm.lower(), disk.lower()}, report
    for result in by_id.values():
        if enable_drills:
            assert result["outcome"] == "Succeeded", json.dumps(result)
            assert result["left"] == []
        else:
            assert result["outcome"] == "RestoreFailed", json.dumps(result)
            assert result["error"]["code"] == "AuthorizationFailed", json.dumps(result)
            assert result["created"] == [], "nothing is made before Azure refuses"
    assert drill_leftovers(app, started["id"]) == []
    assert restored_by(app, vm) == [] and restored_by(app, disk) == []


def run_audit(app: Harness) -> dict[str, Any]:
    runner, host = app.stack.runner, app.stack.host
    before = {(i.instance_id, i.created) for i in runner.query()}
    host.fire_timer("audit_timer")

    def started() -> str | None:
        # the audit's instance: the reconcile timer (one instance per wall-clock minute) may start one beside it
        return next((i.instance_id for i in runner.query()
                     if (i.instance_id, i.created) not in before and i.name == "audit_estate"), None)

    return runner.wait_for(app.wait_for(started, 60, "the audit to start"), timeout=120)  # type: ignore[no-any-return]


@pytest.mark.slow
def test_the_audit_deletes_drill_leftovers_past_their_lifetime_and_reports_the_drill_controls(app: Harness) -> None:
    """A drill whose deletes Azure refuses leaves its restored disk; once the rule's lifetime (PT6H) is over, the
    next audit's reconciler deletes it (it still carries the drill's tag) and reports DRL-003; DRL-001 names the
    covered VM no drill has proven."""
    vm, disk = protected_estate(app)
    principal = app.sandbox.config.default_principal_id
    deploy_app_roles(app.sandbox, principal, SUB1)
    scope = f"/subscriptions/{SUB1}"
    drill_actions = custom_roles(enableDrills=True)["drill"]
    deletes = [a for a in drill_actions if a.endswith("/delete")]
    for guid, name, actions in (("5c1e0000-0000-4000-8000-000000000001", "drill without deletes",
                                 [a for a in drill_actions if a not in deletes]),
                                ("5c1e0000-0000-4000-8000-000000000002", "drill deletes", deletes)):
        define_custom_role(app.sandbox.store, SUB1, guid, name, actions=actions)
    roles = RoleAssignments(app.sandbox.store)
    roles.create(scope, "5c1e0000-0000-4000-8000-0000000000a1", {
        "roleDefinitionId": role_definition_id("5c1e0000-0000-4000-8000-000000000001", SUB1),
        "principalId": principal}, now=app.sandbox.clock.now(), created_by=None)
    app.sandbox.enforce_caller_rbac(principal)

    status, started = call(app, "POST", "drills", {"resources": [disk]})
    assert status == 202, started
    [result] = finished(app, started["id"])["results"]
    [restored] = [r["id"] for r in result["restored"]]
    assert result["left"] == [restored], json.dumps(result)
    assert app.sandbox.store.get(restored) is not None

    roles.create(scope, "5c1e0000-0000-4000-8000-0000000000a2", {
        "roleDefinitionId": role_definition_id("5c1e0000-0000-4000-8000-000000000002", SUB1),
        "principalId": principal}, now=app.sandbox.clock.now(), created_by=None)
    early = run_audit(app)
    assert early["runtimeStatus"] == "Completed" and early["output"]["drillLeftovers"] == 0, "not expired yet"
    assert app.sandbox.store.get(restored) is not None
    app.stack.advance(7 * HOUR)
    audited = run_audit(app)
    assert audited["runtimeStatus"] == "Completed", audited
    assert audited["output"]["drillLeftovers"] == 1
    app.wait_for(lambda: app.sandbox.store.get(restored) is None, 30, "the leftover's delete")
    status, report = call(app, "GET", "audits/latest")
    assert status == 200, report
    by_control: dict[str, set[str]] = {}
    for finding in report["findings"]:
        by_control.setdefault(finding["control"], set()).add(finding["resourceId"].lower())
    assert by_control.get("DRL-003") == {restored.lower()}
    assert vm.lower() in by_control.get("DRL-001", set()), "the VM is covered and was never drilled"
    assert disk.lower() not in by_control.get("DRL-001", set()) | by_control.get("DRL-002", set())
    assert drill_leftovers(app, started["id"]) == []


@pytest.mark.slow
def test_a_postgresql_drill_restores_files_with_the_vault_identitys_blob_right_and_leaves_nothing(app: Harness) -> None:
    """The vault's identity writes the files: the drill gives it Storage Blob Data Contributor on its own staging
    account (the sandbox refuses the restore without it), and the account goes with the drill."""
    server = protected_postgres(app)
    status, started = call(app, "POST", "drills", {"resources": [server]})
    assert status == 202, started
    [result] = finished(app, started["id"])["results"]
    assert result["outcome"] == "Succeeded", json.dumps(result)
    [grant] = result["vaultRoles"]
    assert grant["role"] == "Storage Blob Data Contributor" and "/storageaccounts/" in grant["scope"].lower()
    assert result["left"] == [] and drill_leftovers(app, started["id"]) == []
    assert app.sandbox.store.get(grant["scope"]) is None, "the staging account went with the drill"


def test_the_deployed_drill_role_suffices_for_a_postgresql_drill(app: Harness) -> None:
    """Production truth for the files restore: with the roles infra/ deploys (enableDrills) and the sandbox checking
    the app's own RBAC, the drill makes the target container of its account (the restore needs an existing one,
    docs/azure-facts.md), restores into it and leaves nothing."""
    server = protected_postgres(app)
    principal = app.sandbox.config.default_principal_id
    deploy_app_roles(app.sandbox, principal, SUB1, enableDrills=True)
    app.sandbox.enforce_caller_rbac(principal)
    status, started = call(app, "POST", "drills", {"resources": [server]})
    assert status == 202, started
    [result] = finished(app, started["id"])["results"]
    assert result["outcome"] == "Succeeded", json.dumps(result)
    assert result["left"] == [] and drill_leftovers(app, started["id"]) == []


@pytest.fixture
def vaulted(tmp_path: Path) -> Iterator[Harness]:
    """The drill app with the ``vaulted-blobs`` rule too (storage accounts tagged blob-tier=vaulted)."""
    from sandbox.estate import VAULTED_BLOBS_RULE
    from steward import bootstrap
    from steward.rules_file import default_rules_text
    from tests.e2e.conftest import start_harness

    head, rest = default_rules_text().split("\nrules:\n", 1)
    harness = start_harness(tmp_path, settings={
        "STEWARD_RULES": f"{head}\nrules:{VAULTED_BLOBS_RULE}{rest}{DRILLS}",
        "STEWARD_TEARDOWN_ALLOWED_PRINCIPALS": ADMIN, "STEWARD_REPORTS_DIR": str(tmp_path / "reports"),
        "STEWARD_DRILL_SCHEDULE": "0 0 0 1 1 *"})
    try:
        yield harness
    finally:
        harness.stack.stop()
        bootstrap.reset()


def protected_vaulted_blobs(app: Harness, containers: tuple[str, ...] = ("invoices", "logs")) -> str:
    """A storage account under vaulted blob backup listing ``containers``, once a daily vault-tier backup ran."""
    from azure.mgmt.dataprotection.models import BaseBackupPolicyResource

    from sandbox.estate import VAULTED_BLOB_POLICY

    est = app.estate()
    est.resource_group("rg-data", WEU)
    est.backup_vault("rg-data", "bv-weu", WEU)
    app.clients.data_protection(SUB1).backup_policies.create_or_update(
        resource_group_name="rg-data", vault_name="bv-weu", backup_policy_name="blob-vaulted",
        parameters=BaseBackupPolicyResource(VAULTED_BLOB_POLICY))
    account = est.storage_account("rg-data", "stvaultdrill1", WEU, tags={"blob-tier": "vaulted"})
    for name in containers:
        app.clients.resources(SUB1).resources.begin_create_or_update_by_id(
            f"{account}/blobServices/default/containers/{name}", api_version="2023-05-01",
            parameters={"properties": {}}, polling_interval=app.clients.target.polling_interval).result()
    app.wait_outcome(account, "Protected", timeout=60)
    app.settle(60)
    app.stack.advance(2 * 24 * HOUR)  # a daily vault-tier backup has run since every container was listed
    return account


def containers_in(app: Harness, account: str) -> list[str]:
    return sorted(r["name"] for r in app.sandbox.store.children(f"{account}/blobServices/default",
                                                               resource_type="Microsoft.Storage/storageAccounts/"
                                                                             "blobServices/containers"))


@pytest.mark.slow
def test_a_vaulted_blob_drill_restores_the_containers_to_its_own_account_and_leaves_nothing(vaulted: Harness) -> None:
    """Vaulted blob backup restores only to another account, the vault holding Storage Account Backup Contributor
    on it (backup/blob-restore.md): the drill makes its own account in the drill group, gives the vault that role
    there, restores every listed container into it, checks they are there, and deletes the account (the role
    assignment goes with it). The source account is never written."""
    app = vaulted
    account = protected_vaulted_blobs(app)
    status, started = call(app, "POST", "drills", {"resources": [account]})
    assert status == 202, started
    [result] = finished(app, started["id"])["results"]
    assert result["outcome"] == "Succeeded", json.dumps(result)
    assert result["validation"]["passed"] and result["validation"]["checked"] == 2, json.dumps(result)
    [grant] = result["vaultRoles"]
    drill_account = grant["scope"]
    assert grant["role"] == "Storage Account Backup Contributor" and "/storageaccounts/bsdrill" in drill_account.lower()
    assert "/resourcegroups/backup-steward-drill-" in drill_account.lower()
    assert sorted(r["name"] for r in result["restored"]) == ["invoices", "logs"]
    assert all(r["id"].lower().startswith(drill_account.lower() + "/") for r in result["restored"])
    assert result["left"] == [] and drill_leftovers(app, started["id"]) == []
    assert app.sandbox.store.get(drill_account) is None, "the drill's account went with the drill"
    assert restored_by(app, account) == [], "the restored containers went with it"
    assigned = [r["id"] for r in app.sandbox.store.list()
                if r["id"].lower().startswith(drill_account.lower() + "/providers/microsoft.authorization/")]
    assert assigned == [], "the vault's role on the drill account went with it"
    assert containers_in(app, account) == ["invoices", "logs"], "the source account is untouched"


@pytest.mark.slow
def test_a_vaulted_blob_drill_whose_restore_job_fails_still_deletes_its_account(vaulted: Harness) -> None:
    from sandbox.arm.providers.dataprotection_jobs import data_protection_jobs

    app = vaulted
    account = protected_vaulted_blobs(app, ("invoices",))
    vault = f"/subscriptions/{SUB1}/resourceGroups/rg-data/providers/Microsoft.DataProtection/backupVaults/bv-weu"
    data_protection_jobs(app.sandbox).book.fail_next(vault, "Restore", "UserErrorRestoreFailed", "injected")
    status, started = call(app, "POST", "drills", {"resources": [account]})
    assert status == 202, started
    [result] = finished(app, started["id"])["results"]
    assert result["outcome"] == "RestoreFailed", json.dumps(result)
    assert result["created"] and result["left"] == [] and drill_leftovers(app, started["id"]) == []
    assert all(app.sandbox.store.get(i) is None for i in result["created"])
    assert containers_in(app, account) == ["invoices"]


def test_the_deployed_drill_role_suffices_for_a_vaulted_blob_drill(vaulted: Harness) -> None:
    """Production truth: with the roles infra/ deploys (enableDrills) and the sandbox checking the app's own RBAC,
    the conditioned Grantor may give the vault Storage Account Backup Contributor on the drill's account, and the
    drill restores and leaves nothing."""
    app = vaulted
    account = protected_vaulted_blobs(app, ("invoices",))
    principal = app.sandbox.config.default_principal_id
    deploy_app_roles(app.sandbox, principal, SUB1, enableDrills=True)
    app.sandbox.enforce_caller_rbac(principal)
    status, started = call(app, "POST", "drills", {"resources": [account]})
    assert status == 202, started
    [result] = finished(app, started["id"])["results"]
    assert result["outcome"] == "Succeeded", json.dumps(result)
    assert result["left"] == [] and drill_leftovers(app, started["id"]) == []
