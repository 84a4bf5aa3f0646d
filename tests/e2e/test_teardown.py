"""The vault teardown end to end: HTTP routes on the local host, the saga on the Durable runner, the real SDK
clients against the ARM sandbox. The app here is the teardown's own three blueprints (the same objects
``function_app.py`` registers), composed with injected adapters, so these tests need no app settings."""

from __future__ import annotations

import dataclasses
import json
import os
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import azure.durable_functions as df
import pytest
from azure.core.exceptions import ResourceNotFoundError

import activities.teardown as teardown_activities
import orchestrators.teardown as teardown_orchestrator
from entrypoints import teardown_http
from sandbox.arm.config import DEFAULT_PRINCIPAL
from sandbox.arm.server import ArmSandbox
from sandbox.durable import DurableRunner, RunnerConfig
from sandbox.host.server import HostKeys, LocalHost
from steward import bootstrap
from steward.cloud.clients import CloudClients
from steward.cloud.publisher import MemoryPublisher
from steward.cloud.teardown_ops import TeardownOps
from steward.domain import events as event_intents
from steward.domain.teardown import (
    RequestSource,
    TeardownRequest,
    VaultKind,
    VaultRef,
    instance_id_for,
    parse_time,
    teardown_request_from_event,
)
from steward.report.store import LocalReportStore
from steward.settings import CA_BUNDLE, Settings
from steward.settings import TEARDOWN_RATE_PER_MINUTE as RATE_SETTING
from tests.integration.teardown.conftest import DAY, HOUR, SUB, Estate, start_sandbox

ADMIN = "aaaaaaaa-0000-4000-8000-00000000ad01"
SECURITY_ADMIN = "aaaaaaaa-0000-4000-8000-00000000ad02"
STRANGER = "bbbbbbbb-0000-4000-8000-00000000bad0"
GUARD = f"/subscriptions/{SUB}/resourceGroups/security/providers/Microsoft.DataProtection/resourceGuards/guard"


@dataclasses.dataclass
class Stack:
    sandbox: ArmSandbox
    clients: CloudClients
    runner: DurableRunner
    host: LocalHost
    publisher: MemoryPublisher
    reports: Path

    def estate(self) -> Estate:
        return Estate(self.sandbox, self.clients)

    # -- HTTP -------------------------------------------------------------------------------------
    def http(
        self, method: str, path: str, body: Any = None, *, principal: str | None = ADMIN, key: str | None = "function",
        headers: dict[str, str] | None = None,
    ) -> tuple[int, Any]:
        headers = {"Content-Type": "application/json", **(headers or {})}
        if key == "function":
            headers["x-functions-key"] = self.host.keys.function_key
        if principal:
            # an access token for the app from the sandbox's Entra ID, validated by the app against its keys
            headers["Authorization"] = "Bearer " + self.sandbox.app_token(principal)
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(f"{self.host.origin}/api/{path}", data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                raw = response.read().decode()
                kind = response.headers.get("Content-Type", "")
                return response.status, json.loads(raw) if "json" in kind and raw else raw
        except urllib.error.HTTPError as error:
            raw = error.read().decode()
            try:
                return error.code, json.loads(raw)
            except ValueError:
                return error.code, raw

    # -- runner -----------------------------------------------------------------------------------
    def status(self, instance_id: str) -> dict[str, Any]:
        return self.runner.status(instance_id)

    def wait_phase(self, instance_id: str, phase: str, timeout: float = 60) -> dict[str, Any]:
        def reached() -> dict[str, Any] | None:
            status = self.status(instance_id)
            custom = status.get("customStatus") or {}
            if status.get("runtimeStatus") in ("Completed", "Failed", "Terminated"):
                raise AssertionError(f"{instance_id} ended before {phase}: {status.get('output')}")
            return custom if custom.get("phase") == phase else None

        return eventually(reached, timeout, f"phase {phase}")

    def finish(self, instance_id: str, timeout: float = 120) -> dict[str, Any]:
        status = self.runner.wait_for(instance_id, timeout=timeout)
        assert status["runtimeStatus"] == "Completed", status
        return status["output"]  # type: ignore[no-any-return]

    def backups_ran(self) -> None:
        """Let the first backups of freshly protected items run (they change the inventory, so its fingerprint)."""
        self.sandbox.advance(2 * HOUR)

    def run(self, request: TeardownRequest) -> str:
        return self.runner.start_new("teardown_vault", instance_id_for(request), request.to_record())

    def plan(self, vault_id: str) -> dict[str, Any]:
        return self.finish(self.run(TeardownRequest(vault_id, ADMIN, RequestSource.HTTP, dry_run=True)))


def approved_run(vault_id: str, fingerprint: str) -> TeardownRequest:
    return TeardownRequest(vault_id, ADMIN, RequestSource.HTTP, dry_run=False, approved_fingerprint=fingerprint)


def eventually(predicate: Callable[[], Any], timeout: float = 30, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def build_app() -> df.DFApp:
    app = df.DFApp()
    for blueprint in (teardown_activities.bp, teardown_orchestrator.bp, teardown_http.bp):
        app.register_functions(blueprint)
    return app


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("teardown-e2e")
    # every test of the module asks as the same admins within a few real seconds: the per-caller rate limit
    # (tests/hostile/test_authorization.py) is not what these tests are about
    sandbox = start_sandbox()
    # callers prove themselves with the sandbox Entra's tokens (STEWARD_AUTH_*; its CA serves the keys)
    saved = {name: os.environ.get(name) for name in (RATE_SETTING, CA_BUNDLE, *sandbox.app_auth_settings())}
    os.environ.update({RATE_SETTING: "600", CA_BUNDLE: str(sandbox.ca_bundle), **sandbox.app_auth_settings()})
    bootstrap.reset()
    clients = CloudClients(dataclasses.replace(sandbox.cloud_target(), polling_interval=0.05))
    publisher = MemoryPublisher()
    bootstrap.use(
        ops=TeardownOps(clients, wait_budget_seconds=60, max_poll_seconds=0.5),
        settings=dataclasses.replace(
            Settings.from_env(),
            # DEFAULT_PRINCIPAL: the sandbox's default identity, the "user" whose vault deletes ARM refuses here
            teardown_allowed_principals=frozenset({ADMIN, SECURITY_ADMIN, DEFAULT_PRINCIPAL}),
            subscriptions=(SUB,),
            max_parallel_writes=4,
            teardown_wait_chunk_hours=72,
            # one admin plans and approves here; four eyes: tests/hostile/test_teardown_events.py
            teardown_four_eyes=False,
        ),
        report_store=LocalReportStore(tmp / "reports"),
        publisher=publisher,
    )
    runner = DurableRunner(build_app(), RunnerConfig(db_path=str(tmp / "durable.sqlite")), clock=sandbox.clock)
    runner.start()
    host = LocalHost(runner.catalog, runner, keys=HostKeys(), run_timers=False).start()
    try:
        yield Stack(sandbox, clients, runner, host, publisher, tmp / "reports")
    finally:
        host.stop()
        runner.stop()
        sandbox.stop()
        bootstrap.use()
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        bootstrap.reset()


def vault_gone(stack: Stack, vault_id: str) -> bool:
    vault = VaultRef.parse(vault_id)
    try:
        if vault.kind is VaultKind.RECOVERY_SERVICES:
            stack.clients.recovery_services(SUB).vaults.get(vault.resource_group, vault.name)
        else:
            stack.clients.data_protection(SUB).backup_vaults.get(vault.resource_group, vault.name)
    except ResourceNotFoundError:
        return True
    return False


def write_count(sandbox: ArmSandbox) -> int:
    return sum(sandbox.counters.get(kind=k) for k in ("write", "delete", "action"))


# ------------------------------------------------------------------------------------------------ tests


def test_a_vault_with_every_kind_of_content_is_planned_approved_and_deleted(stack: Stack) -> None:
    estate = stack.estate()
    vault_id = estate.full_vault(estate.group())
    status, started = stack.http("POST", "teardowns", {"vaultId": vault_id, "dryRun": True})
    assert status == 202, started
    plan_report = stack.finish(started["id"])
    assert plan_report["outcome"] == "planned"
    plan = plan_report["plan"]
    kinds = [s["kind"] for s in plan["steps"]]
    assert kinds[:3] == ["disable-soft-delete", "disable-enhanced-security", "undelete-items"]
    assert kinds[-2:] == ["verify-empty", "delete-vault"]
    for expected in (
        "delete-sql-items",
        "disable-protection-intents",
        "unregister-sap-hana-containers",
        "unregister-storage-containers",
        "unregister-mars-servers",
        "unregister-backup-servers",
        "remove-replicated-items",
        "remove-network-mappings",
        "remove-fabrics",
        "remove-private-endpoint-connections",
    ):
        assert expected in kinds
    assert "remove-replication-containers" not in kinds  # D-script never removes a protection container

    status, approved = stack.http("POST", f"teardowns/{started['id']}/approve", {"fingerprint": plan["fingerprint"]})
    assert status == 202, approved
    report = stack.finish(approved["id"])
    assert report["outcome"] == "deleted", report["reason"]
    assert report["requestedBy"] == ADMIN and report["approvedBy"] == ADMIN
    assert vault_gone(stack, vault_id)
    deleted_types = {d["type"] for d in report["deleted"]}
    assert {
        "backupItem",
        "container",
        "intent",
        "server",
        "siteRecovery",
        "privateEndpointConnection",
        "vault",
    } <= deleted_types
    assert report["remaining"] == []
    endpoint_type = "resourceType eq 'Microsoft.Network/privateEndpoints'"
    endpoints = stack.clients.resources(SUB).resources.list(filter=endpoint_type)
    assert [e.id for e in endpoints if vault_id.split("/providers/")[0].lower() in str(e.id).lower()] == [], (
        "the official script removes the private endpoint too"
    )
    status, page = stack.http("GET", f"teardowns/{approved['id']}/report.html")
    assert status == 200 and "Vault teardown report" in page and vault_id in page
    status, shown = stack.http("GET", f"teardowns/{approved['id']}")
    assert status == 200 and shown["runtimeStatus"] == "Completed" and shown["report"]["outcome"] == "deleted"
    assert Path(report["links"]["jsonUrl"].removeprefix("file://")).is_file()
    assert any(
        e.event_type == "BackupSteward.Teardown.Deleted" and e.subject == vault_id for e in stack.publisher.events
    )


def test_without_storage_account_contributor_the_plan_is_blocked_before_anything_is_deleted(stack: Stack) -> None:
    """Unregistering a storage account from a vault needs Storage Account Contributor on the account
    (backup-rbac-rs-vault.md): the plan names the missing right as a blocker, and an approved run deletes nothing."""
    estate = stack.estate()
    vault_id = estate.full_vault(estate.group(), storage_rights=False)
    plan = stack.plan(vault_id)
    assert plan["plan"]["status"] == "blocked", plan["plan"]["status"]
    [blocker] = [b for b in plan["plan"]["blockers"] if b["kind"] == "missing-permission"]
    assert "Storage Account Contributor" in blocker["reason"] and "/storageAccounts/sa" in blocker["reason"]
    writes = write_count(stack.sandbox)
    report = stack.finish(stack.run(approved_run(vault_id, plan["fingerprint"])))
    assert report["outcome"] == "blocked" and report["deleted"] == []
    assert write_count(stack.sandbox) == writes


def test_a_dry_run_changes_nothing(stack: Stack) -> None:
    estate = stack.estate()
    vault_id = estate.full_vault(estate.group())
    ops = TeardownOps(stack.clients)
    before = ops.inventory(VaultRef.parse(vault_id), stack.sandbox.clock.now())
    writes = write_count(stack.sandbox)
    report = stack.plan(vault_id)
    assert report["outcome"] == "planned"
    assert write_count(stack.sandbox) == writes, "a dry run sent a write, delete or action to ARM"
    after = ops.inventory(VaultRef.parse(vault_id), stack.sandbox.clock.now())
    assert after == dataclasses.replace(before, observed_at=after.observed_at)
    assert report["fingerprint"] == report["plan"]["fingerprint"]


def test_a_vault_that_changed_since_the_approval_is_replanned_not_deleted(stack: Stack) -> None:
    estate = stack.estate()
    rg = estate.group()
    vault_id = estate.rs_vault(rg)
    estate.protect_vm(rg, "rsv", "vm-1")
    stack.backups_ran()
    approved = stack.plan(vault_id)["fingerprint"]
    estate.protect_vm(rg, "rsv", "vm-late")  # someone protects one more VM after the review
    report = stack.finish(stack.run(approved_run(vault_id, approved)))
    assert report["outcome"] == "replanned"
    assert report["fingerprint"] != approved
    assert not vault_gone(stack, vault_id)
    assert report["deleted"] == []
    assert "vm-late" in json.dumps(report["plan"])


def test_always_on_soft_delete_waits_for_the_purge_date_then_deletes(stack: Stack) -> None:
    estate = stack.estate()
    rg = estate.group()
    vault_id = estate.rs_vault(rg, soft_delete="AlwaysON", enhanced="AlwaysON", days=14)
    container, item = estate.protect_vm(rg, "rsv", "vm-old")
    estate.protect_vm(rg, "rsv", "vm-live")
    stack.sandbox.advance(2 * HOUR)
    estate.model.seed_soft_deleted_item(vault_id, container, item, days_left=5)
    plan = stack.plan(vault_id)
    assert any(b["kind"] == "always-on-soft-delete" for b in plan["plan"]["blockers"])
    instance = stack.run(approved_run(vault_id, plan["fingerprint"]))
    waiting = stack.wait_phase(instance, "waiting-for-purge")
    until = parse_time(waiting["waitingUntil"])
    assert until is not None and until - stack.sandbox.clock.now() > timedelta(days=13)
    assert not vault_gone(stack, vault_id)
    stack.sandbox.advance(15 * DAY)
    report = stack.finish(instance)
    assert report["outcome"] == "deleted", report["reason"]
    # the wait slept in chunks with continue-as-new: the last execution's history is short
    assert len(stack.runner.history(instance)) < 120
    assert vault_gone(stack, vault_id)
    assert any(d["effect"] == "soft-deleted" and d["purgeAt"] for d in report["deleted"])


def test_locked_immutability_is_reported_blocked_and_nothing_is_deleted(stack: Stack) -> None:
    estate = stack.estate()
    rg = estate.group()
    vault_id = estate.rs_vault(rg, immutability="Locked")
    estate.protect_vm(rg, "rsv", "vm-held")
    stack.sandbox.advance(3 * HOUR)  # the first backup ran: there are recovery points
    plan = stack.plan(vault_id)
    assert plan["plan"]["status"] == "blocked" and plan["plan"]["steps"] == []
    writes = write_count(stack.sandbox)
    report = stack.finish(stack.run(approved_run(vault_id, plan["fingerprint"])))
    assert report["outcome"] == "blocked"
    assert "Locked" in report["reason"]
    assert write_count(stack.sandbox) == writes
    assert not vault_gone(stack, vault_id)


def test_mua_parks_until_the_security_admin_grants_then_resumes(stack: Stack) -> None:
    estate = stack.estate()
    rg = estate.group()
    vault_id = estate.rs_vault(rg)
    estate.protect_vm(rg, "rsv", "vm-1")
    estate.rsb.resource_guard_proxy.put("rsv", rg, "VaultProxy", {"properties": {"resourceGuardResourceId": GUARD}})
    stack.backups_ran()
    run_through_mua(stack, vault_id, grant=lambda: estate.model.grant_resource_guard_access(vault_id, minutes=120))


def run_through_mua(
    stack: Stack, vault_id: str, *, grant: Callable[[], Any], while_parked: Callable[[], None] = lambda: None
) -> dict[str, Any]:
    """An approved teardown of a vault under multi-user authorization, over HTTP: it parks naming the Resource
    Guard and deletes nothing; once the security admin has granted access (``grant``) and said so, it resumes and
    deletes the vault. Its report."""
    plan = stack.plan(vault_id)
    assert plan["plan"]["status"] == "needs-security-approval"
    status, started = stack.http(
        "POST", "teardowns", {"vaultId": vault_id, "dryRun": False, "approvedFingerprint": plan["fingerprint"]}
    )
    assert status == 202
    parked = stack.wait_phase(started["id"], "awaiting-security-approval")
    assert GUARD in parked["needs"] and "SecurityApprovalGranted" in parked["needs"]
    assert not vault_gone(stack, vault_id)
    while_parked()
    grant()
    status, _ = stack.http("POST", f"teardowns/{started['id']}/security-approval", {}, principal=SECURITY_ADMIN)
    assert status == 202
    report = stack.finish(started["id"])
    assert report["outcome"] == "deleted", report["reason"]
    assert vault_gone(stack, vault_id)
    return report


def test_a_resource_guard_in_another_tenant_parks_saying_the_app_cannot_get_the_auxiliary_token(stack: Stack) -> None:
    """Azure wants a token of the guard's tenant in x-ms-authorization-auxiliary with every guarded request
    (azure-cli backup: aux_tenants=[tenant_id]); the app's managed identity cannot get one, so the plan and the
    parked saga say so plainly, and nothing is deleted."""
    from sandbox.arm.config import DEFAULT_TENANT, OTHER_TENANT, SECOND_SUBSCRIPTION

    estate = stack.estate()
    rg = estate.group()
    vault_id = estate.rs_vault(rg)
    estate.protect_vm(rg, "rsv", "vm-1")
    foreign_guard = f"/subscriptions/{SECOND_SUBSCRIPTION}/resourceGroups/security/providers/" \
        "Microsoft.DataProtection/resourceGuards/guard"
    estate.rsb.resource_guard_proxy.put(
        "rsv", rg, "VaultProxy", {"properties": {"resourceGuardResourceId": foreign_guard}}
    )
    stack.backups_ran()
    stack.sandbox.move_subscription(SECOND_SUBSCRIPTION, OTHER_TENANT)
    try:
        plan = stack.plan(vault_id)
        mua = next(b for b in plan["plan"]["blockers"] if b["kind"] == "multi-user-authorization")
        assert "another tenant" in mua["reason"] and "x-ms-authorization-auxiliary" in mua["reason"]
        assert "cannot" in mua["reason"]
        started = stack.run(approved_run(vault_id, plan["fingerprint"]))
        parked = stack.wait_phase(started, "awaiting-security-approval")
        assert "--tenant-id" in parked["needs"] and "SecurityApprovalGranted" in parked["needs"]
        assert not vault_gone(stack, vault_id)
        stack.runner.raise_event(started, "Cancel", {"by": ADMIN})
        assert stack.finish(started)["outcome"] == "cancelled"
    finally:
        stack.sandbox.move_subscription(SECOND_SUBSCRIPTION, DEFAULT_TENANT)


def test_mua_on_a_backup_vault_parks_until_the_security_admin_grants_then_resumes(stack: Stack) -> None:
    from sandbox.arm.providers.dataprotection import grant_resource_guard_access

    estate = stack.estate()
    rg = estate.group()
    vault_id, instances = estate.backup_vault_with_instances(rg, soft_deleted=0, live=2)
    estate.dp.dpp_resource_guard_proxy.create_or_update(
        rg, "bv", "DppResourceGuardProxy", {"properties": {"resourceGuardResourceId": GUARD}}
    )

    def nothing_deleted_yet() -> None:
        assert {i.name for i in estate.dp.backup_instances.list(rg, "bv")} == set(instances), "nothing deleted yet"

    report = run_through_mua(stack, vault_id, while_parked=nothing_deleted_yet,
                             grant=lambda: grant_resource_guard_access(stack.sandbox.ctx, vault_id, minutes=120))
    assert {d["name"] for d in report["deleted"] if d["type"] == "backupInstance"} == set(instances)


def test_cancel_turns_soft_delete_back_on_and_reports_what_remains(stack: Stack) -> None:
    estate = stack.estate()
    rg = estate.group()
    # soft delete can be turned off, enhanced security cannot: the saga turns soft delete off, then has to
    # wait for the soft-deleted item's purge date - a cancel while it waits must turn soft delete back on.
    vault_id = estate.rs_vault(rg, soft_delete="Enabled", enhanced="AlwaysON")
    container, item = estate.protect_vm(rg, "rsv", "vm-old")
    estate.protect_vm(rg, "rsv", "vm-live")
    stack.sandbox.advance(2 * HOUR)
    estate.model.seed_soft_deleted_item(vault_id, container, item, days_left=10)
    plan = stack.plan(vault_id)
    status, started = stack.http(
        "POST", "teardowns", {"vaultId": vault_id, "dryRun": False, "approvedFingerprint": plan["fingerprint"]}
    )
    assert status == 202
    stack.wait_phase(started["id"], "waiting-for-purge")
    status, shown = stack.http("GET", f"teardowns/{started['id']}")
    assert status == 200 and shown["customStatus"]["phase"] == "waiting-for-purge"
    assert shown["plan"]["fingerprint"] == plan["fingerprint"] and shown["customStatus"]["waitingUntil"]
    status, _ = stack.http("GET", f"teardowns/{started['id']}/report.html")
    assert status == 409  # no report before the end
    config = estate.rsb.backup_resource_vault_configs.get("rsv", rg)
    assert config.properties.soft_delete_feature_state == "Disabled"
    status, _ = stack.http("POST", f"teardowns/{started['id']}/cancel", {})
    assert status == 202
    report = stack.finish(started["id"])
    assert report["outcome"] == "cancelled"
    assert {"setting": "softDelete", "to": "Enabled", "effect": "changed"} in report["restoredSettings"]
    config = estate.rsb.backup_resource_vault_configs.get("rsv", rg)
    assert config.properties.soft_delete_feature_state == "Enabled"
    assert any(r["name"] == item and "soft-deleted" in r["reason"] for r in report["remaining"])
    assert not vault_gone(stack, vault_id)
    status, body = stack.http("POST", f"teardowns/{started['id']}/cancel", {})
    assert status == 409 and body["code"] == "TeardownNotRunning"
    status, body = stack.http("GET", "teardowns/teardown-nope")
    assert status == 404 and body["code"] == "TeardownNotFound"
    status, body = stack.http("GET", "teardowns/not-a-teardown")
    assert status == 400 and body["code"] == "InvalidInstanceId"


class GatedOps(TeardownOps):
    """The real operations, with item deletes and setting changes held at a gate: the test decides when the
    effect in flight ends."""

    def __init__(self, clients: CloudClients) -> None:
        super().__init__(clients, wait_budget_seconds=60, max_poll_seconds=0.5)
        self.gate = threading.Event()
        self.entered = threading.Semaphore(0)
        self.deletes: list[str] = []
        self.settings: list[tuple[str, str]] = []

    def _held(self) -> None:
        self.entered.release()
        assert self.gate.wait(60), "the test never opened the gate"

    def delete_item(self, vault: VaultRef, item: Any, *, wait: bool = True) -> Any:
        self.deletes.append(item.name)
        self._held()
        return super().delete_item(vault, item, wait=wait)

    def set_setting(self, vault: VaultRef, setting: str, value: str) -> Any:
        self.settings.append((setting, value))
        if value != "Enabled":  # the saga's own change is held; compensation (back to Enabled) is not
            self._held()
        return super().set_setting(vault, setting, value)


@contextmanager
def gated_ops(stack: Stack) -> Iterator[GatedOps]:
    gated = GatedOps(stack.clients)
    kept = {"settings": bootstrap.settings(), "report_store": bootstrap.report_store(),
            "publisher": stack.publisher}
    bootstrap.use(ops=gated, **kept)
    try:
        yield gated
    finally:
        gated.gate.set()
        bootstrap.use(ops=TeardownOps(stack.clients, wait_budget_seconds=60, max_poll_seconds=0.5), **kept)


def test_a_cancel_lets_the_batch_in_flight_finish_records_it_and_starts_nothing_more(stack: Stack) -> None:
    estate = stack.estate()
    rg = estate.group()
    vault_id = estate.rs_vault(rg, soft_delete="Disabled", enhanced="Disabled")
    items = {estate.protect_vm(rg, "rsv", f"vm-{i:02d}")[1] for i in range(12)}
    stack.backups_ran()
    plan = stack.plan(vault_id)
    assert [s["kind"] for s in plan["plan"]["steps"]] == ["delete-vm-items", "verify-empty", "delete-vault"]
    with gated_ops(stack) as gated:
        started = stack.run(approved_run(vault_id, plan["fingerprint"]))
        for _ in range(4):  # maxParallelWrites: the first batch is in flight, held at the gate
            assert gated.entered.acquire(timeout=60), "the first batch did not start"
        status, _ = stack.http("POST", f"teardowns/{started}/cancel", {})
        assert status == 202
        time.sleep(0.5)  # the saga has the Cancel while its batch is still held
        gated.gate.set()
        report = stack.finish(started)
    assert report["outcome"] == "cancelled", report["reason"]
    assert len(gated.deletes) == 4, f"a batch was started after the Cancel: {gated.deletes}"
    deleted = {d["name"] for d in report["deleted"] if d["type"] == "backupItem"}
    assert deleted == set(gated.deletes), "the batch that was in flight is in the report"
    stack.sandbox.advance(HOUR)  # anything still running would end now
    still = {i.name for i in estate.rsb.backup_protected_items.list("rsv", rg)}
    assert still == items - deleted, "the report's count is what Azure holds"
    assert {r["name"] for r in report["remaining"] if r["type"] == "backupItem"} == still
    assert not vault_gone(stack, vault_id)


def test_a_cancel_while_soft_delete_is_being_turned_off_still_turns_it_back_on(stack: Stack) -> None:
    estate = stack.estate()
    rg = estate.group()
    vault_id = estate.rs_vault(rg, soft_delete="Enabled", enhanced="Disabled")
    estate.protect_vm(rg, "rsv", "vm-1")
    stack.backups_ran()
    plan = stack.plan(vault_id)
    assert plan["plan"]["steps"][0]["kind"] == "disable-soft-delete"
    with gated_ops(stack) as gated:
        started = stack.run(approved_run(vault_id, plan["fingerprint"]))
        assert gated.entered.acquire(timeout=60), "the setting change did not start"
        status, _ = stack.http("POST", f"teardowns/{started}/cancel", {})
        assert status == 202
        time.sleep(0.5)  # the saga has the Cancel while soft delete is being turned off
        gated.gate.set()
        report = stack.finish(started)
    assert report["outcome"] == "cancelled", report["reason"]
    assert gated.deletes == [], "nothing is deleted after a Cancel"
    assert {"setting": "softDelete", "to": "Enabled", "effect": "changed"} in report["restoredSettings"]
    config = estate.rsb.backup_resource_vault_configs.get("rsv", rg)
    assert config.properties.soft_delete_feature_state == "Enabled", "the vault is left as it was found"


def test_an_unauthorised_caller_is_refused_and_nothing_starts(stack: Stack) -> None:
    estate = stack.estate()
    vault_id = estate.rs_vault(estate.group())
    before = len(stack.runner.query())
    assert stack.http("POST", "teardowns", {"vaultId": vault_id}, key=None)[0] == 401  # no function key
    status, body = stack.http("POST", "teardowns", {"vaultId": vault_id}, principal=None)
    assert status == 401 and body["code"] == "Unauthenticated"
    # the platform's authentication headers, forged by a function-key holder, prove nothing (issue #14)
    status, body = stack.http(
        "POST", "teardowns", {"vaultId": vault_id}, principal=None,
        headers={"x-ms-client-principal-id": ADMIN, "x-ms-client-principal-name": "admin@example.com"},
    )
    assert status == 401 and body["code"] == "Unauthenticated"
    status, body = stack.http("POST", "teardowns", {"vaultId": vault_id}, principal=STRANGER)
    assert status == 403 and body["code"] == "CallerNotAllowed"
    other = vault_id.replace(SUB, "99999999-9999-4999-8999-999999999999")
    status, body = stack.http("POST", "teardowns", {"vaultId": other})
    assert status == 403 and body["code"] == "SubscriptionNotManaged"
    status, body = stack.http("POST", "teardowns", {"vaultId": "../../etc/passwd"})
    assert status == 400 and "Traceback" not in json.dumps(body)
    assert len(stack.runner.query()) == before


def _failed_delete_event(stack: Stack, estate: Estate, rg: str, vault_id: str) -> dict[str, Any]:
    """Try to delete the non-empty vault as a user would; return the ResourceDeleteFailure ARM raised."""
    seen: list[dict[str, Any]] = []
    stack.sandbox.subscribe(seen.extend, included_event_types=["Microsoft.Resources.ResourceDeleteFailure"])
    with pytest.raises(Exception, match=r"(?i)cannot be deleted|not empty|existing resources"):
        estate.rs.vaults.begin_delete(rg, "rsv").result()
    return eventually(
        lambda: next((e for e in seen if str(e.get("subject", "")).lower() == vault_id.lower()), None),
        10,
        "the failed delete event",
    )


def test_a_failed_delete_of_a_vault_without_the_opt_in_tag_is_refused(stack: Stack) -> None:
    estate = stack.estate()
    rg = estate.group()
    vault_id = estate.rs_vault(rg)
    estate.protect_vm(rg, "rsv", "vm-1")
    event = _failed_delete_event(stack, estate, rg, vault_id)
    request = teardown_request_from_event(event_intents.classify(event), allowed_subscriptions=[SUB])
    writes = write_count(stack.sandbox)
    report = stack.finish(stack.run(request))
    assert report["outcome"] == "refused" and "opt-in tag" in report["reason"]
    assert write_count(stack.sandbox) == writes
    assert not vault_gone(stack, vault_id)


def test_a_failed_delete_of_a_vault_tagged_auto_is_torn_down(stack: Stack) -> None:
    estate = stack.estate()
    rg = estate.group()
    vault_id = estate.rs_vault(rg, tags={"backup-steward:teardown": "auto"})
    estate.protect_vm(rg, "rsv", "vm-1")
    event = _failed_delete_event(stack, estate, rg, vault_id)
    request = teardown_request_from_event(event_intents.classify(event), allowed_subscriptions=[SUB])
    report = stack.finish(stack.run(request))
    assert report["outcome"] == "deleted", report["reason"]
    assert report["approvedBy"] == "tag:backup-steward:teardown=auto"
    assert vault_gone(stack, vault_id)


def test_a_backup_vault_tears_down_too(stack: Stack) -> None:
    estate = stack.estate()
    rg = estate.group()
    vault_id, instances = estate.backup_vault_with_instances(rg, soft_deleted=1, live=2)
    plan = stack.plan(vault_id)
    kinds = [s["kind"] for s in plan["plan"]["steps"]]
    assert kinds == [
        "disable-soft-delete",
        "undelete-instances",
        "stop-instances",
        "delete-instances",
        "delete-policies",
        "verify-empty",
        "delete-vault",
    ]
    report = stack.finish(stack.run(approved_run(vault_id, plan["fingerprint"])))
    assert report["outcome"] == "deleted", report["reason"]
    assert vault_gone(stack, vault_id)
    assert {d["name"] for d in report["deleted"] if d["type"] == "backupInstance"} == set(instances)


def test_an_always_on_backup_vault_deletes_its_policies_after_the_purge(stack: Stack) -> None:
    """AlwaysOn soft delete keeps deleted instances soft-deleted, and Azure refuses to delete a policy that
    soft-deleted instances still reference (``UserErrorPolicyAssociatedWithSoftDeletedItems``,
    terraform-provider-azurerm#25011): the policies go after the purge wait, and the saga ends deleted."""
    estate = stack.estate()
    rg = estate.group()
    vault_id, instances = estate.backup_vault_with_instances(rg, soft_deleted=0, live=2, soft_delete="AlwaysOn")
    plan = stack.plan(vault_id)
    kinds = [s["kind"] for s in plan["plan"]["steps"]]
    assert kinds.index("await-purge") < kinds.index("delete-policies") < kinds.index("delete-vault"), kinds
    instance = stack.run(approved_run(vault_id, plan["fingerprint"]))
    stack.wait_phase(instance, "waiting-for-purge")
    assert [p.name for p in estate.dp.backup_policies.list(rg, "bv")] == ["disk-policy"], "kept while it waits"
    stack.sandbox.advance(15 * DAY)
    report = stack.finish(instance)
    assert report["outcome"] == "deleted", report["reason"]
    assert vault_gone(stack, vault_id)
    assert {d["name"] for d in report["deleted"] if d["type"] == "backupPolicy"} == {"disk-policy"}
    assert {d["name"] for d in report["deleted"] if d["type"] == "backupInstance"} == set(instances)


def test_no_activity_waits_for_an_operation_the_saga_polls_it_on_durable_timers(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One activity never needs more than functionTimeout (host.json): deleting backup data, unregistering a
    container and removing Site Recovery objects are sent by one activity and followed by the orchestrator
    (durable timer at Retry-After, one status poll per activity), not by an activity sleeping."""
    waited: list[float] = []

    def no_waiting_inside_an_activity(seconds: float) -> None:
        waited.append(seconds)
        raise AssertionError(f"an activity slept {seconds} s waiting for an operation")

    monkeypatch.setattr(bootstrap.teardown_ops(), "_sleep", no_waiting_inside_an_activity)
    estate = stack.estate()
    rg = estate.group()
    vault_id = estate.rs_vault(rg, soft_delete="Disabled", enhanced="Disabled")
    estate.protect_vm(rg, "rsv", "vm-1")
    estate.protect_vm(rg, "rsv", "vm-2")
    estate.site_recovery(vault_id)
    stack.backups_ran()
    plan = stack.plan(vault_id)
    report = stack.finish(stack.run(approved_run(vault_id, plan["fingerprint"])))
    assert report["outcome"] == "deleted", report["reason"]
    assert waited == []
    effects = {(d["type"], d["effect"]) for d in report["deleted"]}
    assert {("backupItem", "deleted"), ("siteRecovery", "removed"), ("vault", "deleted")} <= effects
    # a Backup vault too: instances stopped and deleted, then the vault, each followed by the orchestrator
    bv_id, instances = estate.backup_vault_with_instances(rg, soft_deleted=0, live=2, soft_delete="Off")
    plan = stack.plan(bv_id)
    report = stack.finish(stack.run(approved_run(bv_id, plan["fingerprint"])))
    assert report["outcome"] == "deleted", report["reason"]
    assert waited == [] and vault_gone(stack, bv_id)
    assert {d["name"] for d in report["deleted"] if d["type"] == "backupInstance"} == set(instances)


def test_the_demo_plans_runs_and_prints_the_plan_and_progress(stack: Stack) -> None:
    from sandbox.teardown_demo import demo_teardown

    estate = stack.estate()
    rg = estate.group()
    vault_id = estate.rs_vault(rg)
    estate.protect_vm(rg, "rsv", "vm-1")
    estate.protect_vm(rg, "rsv", "vm-2")
    lines: list[str] = []
    report = demo_teardown(stack.runner, vault_id, out=lines.append)
    assert report["outcome"] == "deleted"
    text = "\n".join(lines)
    assert "plan sha256:" in text and "delete-vm-items" in text and "2 target(s)" in text
    assert "teardown: deleted" in text and "steps]" in text
    assert vault_gone(stack, vault_id)


def test_a_run_without_a_fingerprint_waits_for_an_approval_of_the_fresh_plan(stack: Stack) -> None:
    estate = stack.estate()
    rg = estate.group()
    vault_id = estate.rs_vault(rg)
    estate.protect_vm(rg, "rsv", "vm-1")
    status, started = stack.http("POST", "teardowns", {"vaultId": vault_id, "dryRun": False})
    assert status == 202
    waiting = stack.wait_phase(started["id"], "awaiting-approval")
    assert waiting["fingerprint"] in waiting["needs"] and "/approve" in waiting["needs"]
    assert not vault_gone(stack, vault_id)
    status, _ = stack.http(
        "POST", f"teardowns/{started['id']}/approve", {"fingerprint": "sha256:" + "0" * 64}, principal=STRANGER
    )
    assert status == 403
    status, _ = stack.http("POST", f"teardowns/{started['id']}/approve", {"fingerprint": waiting["fingerprint"]})
    assert status == 202
    report = stack.finish(started["id"])
    assert report["outcome"] == "deleted" and report["approvedBy"] == ADMIN


def test_injected_faults_are_retried_and_the_teardown_converges(stack: Stack) -> None:
    from sandbox.arm.config import FaultConfig

    estate = stack.estate()
    rg = estate.group()
    vault_id = estate.rs_vault(rg)
    for index in range(6):
        estate.protect_vm(rg, "rsv", f"vm-{index}")
    estate.model.seed_mars_server(vault_id, f"mars-{estate.tag}")
    stack.backups_ran()
    plan = stack.plan(vault_id)
    faults = FaultConfig(seed=7, server_error={"read": 0.15, "write": 0.2, "delete": 0.25, "action": 0.2}, lro_fail=0.0)
    stack.sandbox.configure_faults(faults)
    try:
        report = stack.finish(stack.run(approved_run(vault_id, plan["fingerprint"])), timeout=240)
    finally:
        stack.sandbox.configure_faults(FaultConfig())
    assert report["outcome"] == "deleted", (report["reason"], report.get("lastError"))
    assert vault_gone(stack, vault_id)


def test_something_new_in_the_vault_mid_saga_is_not_deleted_and_protections_come_back(stack: Stack) -> None:
    estate = stack.estate()
    rg = estate.group()
    vault_id = estate.rs_vault(rg, soft_delete="Enabled", enhanced="AlwaysON")
    container, item = estate.protect_vm(rg, "rsv", "vm-old")
    stack.backups_ran()
    estate.model.seed_soft_deleted_item(vault_id, container, item, days_left=3)
    plan = stack.plan(vault_id)
    instance = stack.run(approved_run(vault_id, plan["fingerprint"]))
    stack.wait_phase(instance, "waiting-for-purge")
    estate.protect_vm(rg, "rsv", "vm-newcomer")  # protected while the saga waits: nobody reviewed this one
    stack.sandbox.advance(4 * DAY)
    report = stack.finish(instance)
    assert report["outcome"] == "failed" and "did not cover" in report["reason"]
    assert any("vm-newcomer" in r["name"] for r in report["remaining"])
    assert {"setting": "softDelete", "to": "Enabled", "effect": "changed"} in report["restoredSettings"]
    assert len(list(estate.rsb.backup_protected_items.list("rsv", rg))) == 1
    assert not vault_gone(stack, vault_id)


def test_a_private_endpoint_in_a_subscription_the_app_does_not_manage_is_left_in_place(stack: Stack) -> None:
    """A vault's private endpoint connection names its endpoint by id, and that endpoint may live in any subscription
    (or tenant): whoever cannot approve on the vault asks for a manual connection, and the vault's owner approves it
    (MicrosoftDocs/azure-docs articles/private-link/private-endpoint-overview.md, "Access to a private link
    resource using approval workflow"; the owner of the resource "can delete a private endpoint connection in any
    state", after which "the private endpoint owner can only delete the resource"). An approved teardown removes the
    vault's connection (the vault's side) and deletes the endpoint only where the app may act (STEWARD_SUBSCRIPTIONS):
    a vault in a managed subscription is no licence to delete another subscription's network resources."""
    from sandbox.arm.config import SECOND_SUBSCRIPTION
    from sandbox.arm.providers.network import seed_private_endpoint
    from steward.cloud.teardown_ops import NETWORK_API_VERSION

    estate = stack.estate()
    vault_id = estate.rs_vault(estate.group("rg-pe-far"))
    stack.clients.resources(SECOND_SUBSCRIPTION).resource_groups.create_or_update("rg-consumer",
                                                                                  {"location": "westeurope"})
    far = (f"/subscriptions/{SECOND_SUBSCRIPTION}/resourceGroups/rg-consumer/providers/Microsoft.Network/"
           "privateEndpoints/pe-far")
    estate.model.seed_private_endpoint(vault_id, "pe-far", far)
    seed_private_endpoint(stack.sandbox.ctx, far, "westeurope", vault_id)
    near = estate.private_endpoint(vault_id, "pe-near")

    def exists(endpoint_id: str) -> bool:
        subscription = endpoint_id.split("/")[2]
        return bool(stack.clients.resources(subscription).resources.check_existence_by_id(
            endpoint_id, api_version=NETWORK_API_VERSION))

    assert exists(far) and exists(near)
    status, started = stack.http("POST", "teardowns", {"vaultId": vault_id, "dryRun": True})
    assert status == 202, started
    plan = stack.finish(started["id"])
    assert plan["outcome"] == "planned", plan["reason"]
    status, approved = stack.http("POST", f"teardowns/{started['id']}/approve", {"fingerprint": plan["fingerprint"]})
    assert status == 202, approved
    report = stack.finish(approved["id"])
    assert report["outcome"] == "deleted", report["reason"]
    assert exists(far), "the teardown deleted a private endpoint in a subscription outside STEWARD_SUBSCRIPTIONS"
    assert not exists(near), "the endpoint in the vault's (managed) subscription is removed, as the script does"
    [far_effect] = [d for d in report["deleted"] if d.get("name") == "pe-far"]
    assert "left in place" in str(far_effect) and "STEWARD_SUBSCRIPTIONS" in str(far_effect), far_effect
