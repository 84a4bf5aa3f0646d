"""Forged and self-approved teardowns (issue #14: requests are never approvals; four eyes; issue #20: a wrong
fingerprint is refused), against the real app on the local host with the ARM sandbox: custom events through the
Event Grid webhook, failed deletes raised by the sandbox as ARM raises them, approvals over HTTP. Each attack
ends with the vault and its backup item still in the sandbox.

The app runs as production is configured (four eyes on, a requests topic), with two allowed principals."""

from __future__ import annotations

import dataclasses
import json
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from azure.core.exceptions import ResourceNotFoundError

from sandbox.durable.errors import InstanceNotRunning
from sandbox.host.local import OUTCOME_TOPIC
from steward import bootstrap
from steward.cloud.clients import CloudClients
from tests.hostile.conftest import ADMIN, REQUESTS_TOPIC, STRANGER, SUB1, App, start_app
from tests.integration.teardown.conftest import HOUR, Estate

SECOND_ADMIN = "aaaaaaaa-0000-4000-8000-00000000ad02"
FOREIGN_TOPIC = f"/subscriptions/{SUB1}/resourceGroups/rg-else/providers/Microsoft.EventGrid/topics/evgt-anything"
TAG = "backup-steward:teardown"
CUSTOM = "BackupSteward.Teardown.Requested"


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[App]:
    running = start_app(
        tmp_path_factory.mktemp("teardown-events"),
        {
            "STEWARD_TEARDOWN_ALLOWED_PRINCIPALS": f"{ADMIN},{SECOND_ADMIN}",
            "STEWARD_TEARDOWN_REQUESTS_TOPIC_ID": REQUESTS_TOPIC,
            "STEWARD_TEARDOWN_FOUR_EYES": "true",
        },
    )
    try:
        yield running
    finally:
        running.stack.stop()
        bootstrap.reset()


# ---- helpers ----------------------------------------------------------------------------------------------


def estate(app: App) -> Estate:
    return Estate(app.sandbox, app.clients)


def opted_in_vault(app: App, tag_value: str = "true") -> tuple[Estate, str, str]:
    """A Recovery Services vault with one protected VM (backups run), carrying the opt-in tag."""
    owner = estate(app)
    rg = owner.group()
    vault_id = owner.rs_vault(rg, tags={TAG: tag_value})
    owner.protect_vm(rg, "rsv", "vm-1")
    app.stack.advance(2 * HOUR)  # the first backup runs, so the inventory (and its fingerprint) settles
    return owner, rg, vault_id


def intact(owner: Estate, rg: str) -> bool:
    """The vault and its backup item are still there."""
    try:
        owner.rs.vaults.get(rg, "rsv")
    except ResourceNotFoundError:
        return False
    return len(list(owner.rsb.backup_protected_items.list("rsv", rg))) == 1


def http(app: App, method: str, path: str, body: Any = None, principal: str = ADMIN) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    status, _headers, raw = app.request(method, path, data, app.auth(principal))  # a verified caller
    return status, json.loads(raw or b"null")


def dry_run(app: App, vault_id: str, principal: str = ADMIN) -> dict[str, Any]:
    status, started = http(app, "POST", "teardowns", {"vaultId": vault_id}, principal)
    assert status == 202, started
    report = app.stack.runner.wait_for(started["id"], timeout=60)["output"]  # type: ignore[union-attr]
    assert report["outcome"] == "planned", report
    return {"id": started["id"], "fingerprint": report["fingerprint"]}


def deliver(app: App, event: dict[str, Any]) -> int:
    """POST one event to the app's Event Grid webhook, as Event Grid (or anyone with the key) would."""
    request = urllib.request.Request(
        app.host.eventgrid_url("on_subscription_event"),
        method="POST",
        data=json.dumps([event]).encode(),
        headers={"Content-Type": "application/json", "aeg-event-type": "Notification"},
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)


def custom_event(vault_id: str, requester: str, fingerprint: str | None, topic: str = REQUESTS_TOPIC) -> dict[str, Any]:
    data: dict[str, Any] = {"vaultId": vault_id, "requester": requester}
    if fingerprint is not None:
        data["planFingerprint"] = fingerprint
    return {
        "id": str(uuid.uuid4()),
        "topic": topic,
        "subject": vault_id,
        "eventType": CUSTOM,
        "eventTime": "2026-12-01T08:00:00Z",
        "dataVersion": "1",
        "data": data,
    }


def rejections(app: App) -> list[str]:
    return [
        str(e["data"].get("reason"))
        for e in app.sandbox.events.topic_events(OUTCOME_TOPIC)
        if e.get("eventType") == "BackupSteward.Event.Rejected"
    ]


def new_instances(app: App, before: list[str]) -> list[str]:
    return [i for i in app.orchestrations() if i not in before]


def wait_phase(app: App, instance_id: str, phase: str, timeout: float = 60) -> dict[str, Any]:
    runner = app.stack.runner
    assert runner is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = runner.status(instance_id)
        custom = status.get("customStatus") or {}
        if custom.get("phase") == phase:
            return custom  # type: ignore[no-any-return]
        if status.get("runtimeStatus") in ("Completed", "Failed", "Terminated"):
            raise AssertionError(f"{instance_id} ended before {phase}: {status.get('output')}")
        time.sleep(0.05)
    raise AssertionError(f"{instance_id} did not reach {phase}")


def cancel(app: App, instance_id: str) -> dict[str, Any]:
    status, body = http(app, "POST", f"teardowns/{instance_id}/cancel", {})
    assert status == 202, body
    return app.stack.runner.wait_for(instance_id, timeout=60)["output"]  # type: ignore[union-attr,no-any-return]


# ---- custom events: requests, never approvals ---------------------------------------------------------------


def test_a_custom_event_from_a_foreign_topic_is_rejected_and_starts_nothing(app: App) -> None:
    owner, rg, vault_id = opted_in_vault(app)
    plan = dry_run(app, vault_id)
    before, published = app.orchestrations(), len(rejections(app))
    assert deliver(app, custom_event(vault_id, ADMIN, plan["fingerprint"], topic=FOREIGN_TOPIC)) == 200
    app.settle()
    assert new_instances(app, before) == [], "a custom event from a foreign topic started a teardown"
    reasons = rejections(app)[published:]
    assert len(reasons) == 1 and "only from the requests topic" in reasons[0]
    assert intact(owner, rg)


def test_a_strangers_custom_event_with_a_dry_run_fingerprint_deletes_nothing(app: App) -> None:
    owner, rg, vault_id = opted_in_vault(app)
    plan = dry_run(app, vault_id)
    before, published = app.orchestrations(), len(rejections(app))
    assert deliver(app, custom_event(vault_id, STRANGER, plan["fingerprint"])) == 200
    app.settle()
    assert new_instances(app, before) == [], "a stranger's custom event started a teardown"
    reasons = rejections(app)[published:]
    assert len(reasons) == 1 and "not in STEWARD_TEARDOWN_ALLOWED_PRINCIPALS" in reasons[0]
    assert intact(owner, rg), "the stranger's event deleted backup data"


def test_an_allowed_requesters_custom_event_only_plans_and_waits_for_an_http_approval(app: App) -> None:
    owner, rg, vault_id = opted_in_vault(app)
    plan = dry_run(app, vault_id)
    before = app.orchestrations()
    assert deliver(app, custom_event(vault_id, ADMIN, plan["fingerprint"])) == 200
    [instance] = new_instances(app, before)
    status = wait_phase(app, instance, "awaiting-approval")
    assert "never an approval" in status["needs"] and status["fingerprint"] == plan["fingerprint"]
    assert intact(owner, rg)
    report = cancel(app, instance)
    assert report["outcome"] == "cancelled" and report["deleted"] == [] and report["source"] == "custom-event"
    assert report["requestedBy"] == ADMIN and "not verified" in report["requesterIdentity"]
    assert intact(owner, rg)


def test_one_principal_cannot_request_by_event_and_approve_alone(app: App) -> None:
    """A custom event's requester is what its sender wrote: ADMIN names SECOND_ADMIN as requester, then approves.
    With four eyes that first approval only confirms the request (ADMIN becomes the verified requester), and
    ADMIN's second approval is refused; another principal's approval runs it."""
    owner, rg, vault_id = opted_in_vault(app)
    plan = dry_run(app, vault_id)
    before = app.orchestrations()
    assert deliver(app, custom_event(vault_id, SECOND_ADMIN, None)) == 200
    [instance] = new_instances(app, before)
    wait_phase(app, instance, "awaiting-approval")
    approve = {"fingerprint": plan["fingerprint"]}
    status, body = http(app, "POST", f"teardowns/{instance}/approve", approve, ADMIN)
    assert status == 202, body
    runner = app.stack.runner
    assert runner is not None
    deadline = time.monotonic() + 30
    while (runner.status(instance).get("customStatus") or {}).get("confirmedBy") != ADMIN:
        assert time.monotonic() < deadline, runner.status(instance)
        time.sleep(0.05)
    assert wait_phase(app, instance, "awaiting-approval") and intact(owner, rg), "one approval ran a custom request"
    status, body = http(app, "POST", f"teardowns/{instance}/approve", approve, ADMIN)
    assert status == 403 and body["code"] == "FourEyesRequired", body
    # around the route, the orchestrator refuses it too and keeps waiting
    runner.raise_event(instance, "TeardownApproved", {**approve, "approvedBy": ADMIN})
    while "four eyes" not in str((runner.status(instance).get("customStatus") or {}).get("lastError")):
        assert time.monotonic() < deadline + 30, runner.status(instance)
        time.sleep(0.05)
    assert intact(owner, rg)
    status, body = http(app, "POST", f"teardowns/{instance}/approve", approve, SECOND_ADMIN)
    assert status == 202, body
    report = runner.wait_for(instance, timeout=120)["output"]
    assert report["outcome"] == "deleted", report["reason"]
    assert (report["requestedBy"], report["confirmedBy"], report["approvedBy"]) == (SECOND_ADMIN, ADMIN, SECOND_ADMIN)


def test_an_auto_vault_is_not_torn_down_by_a_custom_event_with_a_made_up_fingerprint(app: App) -> None:
    owner, rg, vault_id = opted_in_vault(app, "auto")
    before = app.orchestrations()
    assert deliver(app, custom_event(vault_id, ADMIN, "deadbeef")) == 200
    [instance] = new_instances(app, before)
    wait_phase(app, instance, "awaiting-approval")
    assert intact(owner, rg), "a made-up fingerprint on an auto vault deleted backup data"
    report = cancel(app, instance)
    assert report["outcome"] == "cancelled" and report["approvedBy"] is None
    assert intact(owner, rg)


# ---- failed portal deletes: auto only for an allowed deleting user ------------------------------------------


def delete_as(app: App, principal: str, rg: str) -> None:
    """The user's own delete through ARM, which refuses it (the vault is not empty) and raises the event."""
    target = dataclasses.replace(app.sandbox.cloud_target(principal_id=principal), polling_interval=0.05)
    with pytest.raises(Exception, match=r"(?i)cannot be deleted|existing resources|not empty"):
        CloudClients(target).recovery_services(SUB1).vaults.begin_delete(rg, "rsv").result()


def test_a_strangers_failed_delete_of_an_auto_vault_only_plans(app: App) -> None:
    owner, rg, _vault_id = opted_in_vault(app, "auto")
    before = app.orchestrations()
    delete_as(app, STRANGER, rg)
    # the event is delivered asynchronously: wait for the teardown it starts
    deadline = time.monotonic() + 30
    while not new_instances(app, before) and time.monotonic() < deadline:
        time.sleep(0.05)
    app.settle()
    assert intact(owner, rg), "a stranger's failed delete of an auto vault deleted backup data"
    [instance] = new_instances(app, before)
    report = app.stack.runner.status(instance)["output"]  # type: ignore[union-attr]
    assert report["outcome"] == "planned", report
    assert report["requestedBy"] == STRANGER and "not in STEWARD_TEARDOWN_ALLOWED_PRINCIPALS" in report["reason"]


def test_an_allowed_users_failed_delete_of_an_auto_vault_still_needs_a_second_person(app: App) -> None:
    """Four eyes holds on the ``auto`` path too: the deleting user is the requester, and a principal who may tag
    the vault could otherwise set ``auto`` and delete alone (found in review; fails on the previous code, which
    tore the vault down with approvedBy ``tag:…=auto``)."""
    owner, rg, _vault_id = opted_in_vault(app, "auto")
    before = app.orchestrations()
    delete_as(app, SECOND_ADMIN, rg)
    deadline = time.monotonic() + 30
    while not new_instances(app, before) and time.monotonic() < deadline:
        time.sleep(0.05)
    [instance] = new_instances(app, before)
    planned = app.stack.runner.wait_for(instance, timeout=60)["output"]  # type: ignore[union-attr]
    assert planned["outcome"] == "planned" and "four eyes" in planned["reason"], planned
    assert intact(owner, rg), "the deleting user's auto tag tore the vault down alone"
    fingerprint = planned["fingerprint"]
    status, refused = http(app, "POST", f"teardowns/{instance}/approve", {"fingerprint": fingerprint}, SECOND_ADMIN)
    assert status == 403 and refused["code"] == "FourEyesRequired", refused
    assert intact(owner, rg)
    status, approved = http(app, "POST", f"teardowns/{instance}/approve", {"fingerprint": fingerprint}, ADMIN)
    assert status == 202, approved
    report = app.stack.runner.wait_for(approved["id"], timeout=120)["output"]  # type: ignore[union-attr]
    assert report["outcome"] == "deleted", report["reason"]
    assert report["requestedBy"] == SECOND_ADMIN and report["approvedBy"] == ADMIN


def failed_delete(vault_id: str, principal: str, topic: str) -> dict[str, Any]:
    """A ``ResourceDeleteFailure`` of the vault as ARM raises it (the fields the sandbox's events carry)."""
    return {
        "id": str(uuid.uuid4()),
        "topic": topic,
        "subject": vault_id,
        "eventType": "Microsoft.Resources.ResourceDeleteFailure",
        "eventTime": "2026-12-01T08:00:00Z",
        "dataVersion": "2",
        "data": {
            "operationName": "Microsoft.RecoveryServices/vaults/delete",
            "resourceUri": vault_id,
            "resourceProvider": "Microsoft.RecoveryServices",
            "status": "Failed",
            "subscriptionId": SUB1,
            "correlationId": str(uuid.uuid4()),
            "claims": {"http://schemas.microsoft.com/identity/claims/objectidentifier": principal},
            "authorization": {"action": "Microsoft.RecoveryServices/vaults/delete", "scope": vault_id,
                              "evidence": {"principalId": principal, "role": "Owner"}},
        },
    }


def test_a_failed_delete_forged_on_another_topic_with_an_allowed_users_claims_is_rejected(app: App) -> None:
    """Regression (the app held): the claims of an allowed user count only on the subscription's system topic
    (Event Grid stamps ``topic``); the same event from the requests topic or a foreign one starts nothing. The
    control - a stranger's claims on the system topic - shows the event's shape is one the app acts on."""
    owner, rg, vault_id = opted_in_vault(app, "auto")
    for topic in (REQUESTS_TOPIC, FOREIGN_TOPIC, f"/subscriptions/{SUB1}/resourceGroups/{rg}", "/subscriptions"):
        before, published = app.orchestrations(), len(rejections(app))
        assert deliver(app, failed_delete(vault_id, SECOND_ADMIN, topic)) == 200
        app.settle()
        assert new_instances(app, before) == [] and intact(owner, rg), topic
        assert "topic" in rejections(app)[published], topic
    before = app.orchestrations()
    assert deliver(app, failed_delete(vault_id, STRANGER, f"/subscriptions/{SUB1}")) == 200
    app.settle()
    [instance] = new_instances(app, before)
    assert app.stack.runner.status(instance)["output"]["outcome"] == "planned"  # type: ignore[union-attr]
    assert intact(owner, rg)


# ---- four eyes and the wrong fingerprint ----------------------------------------------------------------------


def test_the_requester_cannot_approve_their_own_plan(app: App) -> None:
    owner, rg, vault_id = opted_in_vault(app)
    plan = dry_run(app, vault_id, ADMIN)
    before = app.orchestrations()
    status, body = http(app, "POST", f"teardowns/{plan['id']}/approve", {"fingerprint": plan["fingerprint"]}, ADMIN)
    assert status == 403 and body["code"] == "FourEyesRequired", body
    assert new_instances(app, before) == [] and intact(owner, rg)
    # another allowed principal may, and the report names both
    status, body = http(
        app, "POST", f"teardowns/{plan['id']}/approve", {"fingerprint": plan["fingerprint"]}, SECOND_ADMIN
    )
    assert status == 202, body
    report = app.stack.runner.wait_for(body["id"], timeout=120)["output"]  # type: ignore[union-attr]
    assert report["outcome"] == "deleted", report["reason"]
    assert report["requestedBy"] == ADMIN and report["approvedBy"] == SECOND_ADMIN
    assert report["requesterIdentity"].startswith("verified")


def test_four_eyes_sees_through_the_case_of_an_oid_and_racing_self_approvals(app: App) -> None:
    """Regressions (the app held): the requester's object id in capitals is the same principal; and two
    approvals the requester of a custom event races in (both pass the route's check before the first confirms)
    only confirm: the orchestrator refuses the second, nothing runs until another principal approves."""
    owner, rg, vault_id = opted_in_vault(app)
    plan = dry_run(app, vault_id, ADMIN)
    approve = {"fingerprint": plan["fingerprint"]}
    status, body = http(app, "POST", f"teardowns/{plan['id']}/approve", approve, ADMIN.upper())
    assert status == 403 and body["code"] == "FourEyesRequired", body
    before = app.orchestrations()
    assert deliver(app, custom_event(vault_id, SECOND_ADMIN, None)) == 200
    [instance] = new_instances(app, before)
    wait_phase(app, instance, "awaiting-approval")
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(2) as pool:
        answers = list(pool.map(lambda who: http(app, "POST", f"teardowns/{instance}/approve", approve, who),
                                (ADMIN, ADMIN.upper())))
    assert all(s in (202, 403) for s, _ in answers), answers
    runner = app.stack.runner
    assert runner is not None
    deadline = time.monotonic() + 30
    while (runner.status(instance).get("customStatus") or {}).get("confirmedBy") != ADMIN:
        assert time.monotonic() < deadline, runner.status(instance)
        time.sleep(0.05)
    time.sleep(0.5)
    assert wait_phase(app, instance, "awaiting-approval") and intact(owner, rg), "one principal ran it alone"
    report = cancel(app, instance)
    assert report["outcome"] == "cancelled" and intact(owner, rg)


def test_a_custom_event_cannot_smuggle_an_approval_in_extra_fields(app: App) -> None:
    """Regression (the app held): fields the orchestrator might trust, written into the event, are not carried."""
    owner, rg, vault_id = opted_in_vault(app, "auto")
    plan = dry_run(app, vault_id, ADMIN)
    event = custom_event(vault_id, ADMIN, plan["fingerprint"])
    event["data"].update(
        approvedBy=SECOND_ADMIN, approvedFingerprint=plan["fingerprint"], dryRun=False, source="http",
        confirmedBy=SECOND_ADMIN, optInTag=None, requestedBy=SECOND_ADMIN,
    )
    before = app.orchestrations()
    assert deliver(app, event) == 200
    [instance] = new_instances(app, before)
    status = wait_phase(app, instance, "awaiting-approval")
    assert status["confirmedBy"] is None
    record = app.stack.runner.status(instance)["input"]  # type: ignore[union-attr]
    record = json.loads(record) if isinstance(record, str) else record
    record = record.get("request", record)
    assert record["source"] == "custom-event" and record["requestedBy"] == ADMIN
    assert record["approvedBy"] is None and record["approvedFingerprint"] is None and record["optInTag"]
    assert intact(owner, rg)
    assert cancel(app, instance)["outcome"] == "cancelled" and intact(owner, rg)


def test_a_run_that_carries_its_own_fingerprint_waits_for_another_principal(app: App) -> None:
    owner, rg, vault_id = opted_in_vault(app)
    plan = dry_run(app, vault_id, ADMIN)
    body = {"vaultId": vault_id, "dryRun": False, "approvedFingerprint": plan["fingerprint"]}
    status, started = http(app, "POST", "teardowns", body, ADMIN)
    assert status == 202, started
    waiting = wait_phase(app, started["id"], "awaiting-approval")
    assert "four eyes" in waiting["needs"] and intact(owner, rg)
    status, refused = http(
        app, "POST", f"teardowns/{started['id']}/approve", {"fingerprint": plan["fingerprint"]}, ADMIN
    )
    assert status == 403 and refused["code"] == "FourEyesRequired"
    # the orchestrator is the authority: an approval event from the requester (around the route) is refused,
    # recorded, and the saga keeps waiting
    app.stack.runner.raise_event(  # type: ignore[union-attr]
        started["id"], "TeardownApproved", {"fingerprint": plan["fingerprint"], "approvedBy": ADMIN}
    )
    runner = app.stack.runner
    assert runner is not None
    deadline = time.monotonic() + 30
    while "four eyes" not in str((runner.status(started["id"]).get("customStatus") or {}).get("lastError")):
        assert time.monotonic() < deadline, runner.status(started["id"])
        time.sleep(0.05)
    assert wait_phase(app, started["id"], "awaiting-approval") and intact(owner, rg)
    # the next approval, from another allowed principal, is the one that runs it
    status, approved = http(
        app, "POST", f"teardowns/{started['id']}/approve", {"fingerprint": plan["fingerprint"]}, SECOND_ADMIN
    )
    assert status == 202, approved
    report = runner.wait_for(started["id"], timeout=120)["output"]
    assert report["outcome"] == "deleted", report["reason"]
    assert report["requestedBy"] == ADMIN and report["approvedBy"] == SECOND_ADMIN


def test_approving_a_wrong_fingerprint_is_refused_naming_the_current_one(app: App) -> None:
    owner, rg, vault_id = opted_in_vault(app)
    plan = dry_run(app, vault_id, ADMIN)
    wrong = "sha256:" + "0" * 64
    before = app.orchestrations()
    status, body = http(app, "POST", f"teardowns/{plan['id']}/approve", {"fingerprint": wrong}, SECOND_ADMIN)
    assert status == 409 and body["code"] == "FingerprintMismatch", body
    assert body["currentFingerprint"] == plan["fingerprint"] and plan["fingerprint"] in body["detail"]
    assert new_instances(app, before) == [] and intact(owner, rg)
    # the same while a run waits for its approval
    status, started = http(app, "POST", "teardowns", {"vaultId": vault_id, "dryRun": False}, ADMIN)
    assert status == 202, started
    wait_phase(app, started["id"], "awaiting-approval")
    status, body = http(app, "POST", f"teardowns/{started['id']}/approve", {"fingerprint": wrong}, SECOND_ADMIN)
    assert status == 409 and body["currentFingerprint"] == plan["fingerprint"], body
    assert cancel(app, started["id"])["outcome"] == "cancelled"
    assert intact(owner, rg)


# ---- a wait that goes on after an approval that did not run it ------------------------------------------------
# The extension schedules an orchestrator's actions one at a time, each after the previous one completed
# (OutOfProcOrchestrationShim.ProcessAsyncActionsV2; sandbox/durable/runner.py ``_walk``): a second ``task_any``
# over a deadline timer and a Cancel waiter raced before would wait, in Azure, for the new approval alone.


def test_after_a_refused_approval_a_cancel_still_ends_the_wait(app: App) -> None:
    owner, rg, vault_id = opted_in_vault(app)
    plan = dry_run(app, vault_id, ADMIN)
    body = {"vaultId": vault_id, "dryRun": False, "approvedFingerprint": plan["fingerprint"]}
    status, started = http(app, "POST", "teardowns", body, ADMIN)
    assert status == 202, started
    wait_phase(app, started["id"], "awaiting-approval")
    runner = app.stack.runner
    assert runner is not None
    runner.raise_event(started["id"], "TeardownApproved", {"fingerprint": plan["fingerprint"], "approvedBy": ADMIN})
    deadline = time.monotonic() + 30
    while "four eyes" not in str((runner.status(started["id"]).get("customStatus") or {}).get("lastError")):
        assert time.monotonic() < deadline, runner.status(started["id"])
        time.sleep(0.05)
    status, body = http(app, "POST", f"teardowns/{started['id']}/cancel", {})
    assert status == 202, body
    ended = runner.wait_for(started["id"], timeout=20)  # stayed Running for good on the previous app code
    assert ended["output"]["outcome"] == "cancelled", ended
    assert intact(owner, rg)


def test_after_a_confirmation_the_approval_deadline_still_ends_the_wait(app: App) -> None:
    owner, rg, vault_id = opted_in_vault(app)
    plan = dry_run(app, vault_id)
    before = app.orchestrations()
    assert deliver(app, custom_event(vault_id, SECOND_ADMIN, None)) == 200
    [instance] = new_instances(app, before)
    wait_phase(app, instance, "awaiting-approval")
    status, body = http(app, "POST", f"teardowns/{instance}/approve", {"fingerprint": plan["fingerprint"]}, ADMIN)
    assert status == 202, body
    runner = app.stack.runner
    assert runner is not None
    deadline = time.monotonic() + 30
    while (runner.status(instance).get("customStatus") or {}).get("confirmedBy") != ADMIN:
        assert time.monotonic() < deadline, runner.status(instance)
        time.sleep(0.05)
    app.stack.advance(73 * HOUR)  # past the 72 h approval deadline, with no second approval
    ended = runner.wait_for(instance, timeout=20)  # stayed Running for good on the previous app code
    assert ended["output"]["outcome"] == "approval-expired", ended
    assert intact(owner, rg)


# ---- approvals that name another vault, a changed plan, or a teardown that ended ------------------------------


def test_an_approval_of_one_vaults_plan_does_not_open_the_teardown_of_another(app: App) -> None:
    """The fingerprint covers the vault's id (steward.domain.teardown.fingerprint): vault A's approved fingerprint
    neither approves B's plan nor runs a teardown of B, by the approve route or carried in B's request."""
    owner_a, rg_a, vault_a = opted_in_vault(app)
    owner_b, rg_b, vault_b = opted_in_vault(app)
    plan_a, plan_b = dry_run(app, vault_a, ADMIN), dry_run(app, vault_b, ADMIN)
    assert plan_a["fingerprint"] != plan_b["fingerprint"]
    before = app.orchestrations()
    status, body = http(app, "POST", f"teardowns/{plan_b['id']}/approve", {"fingerprint": plan_a["fingerprint"]},
                        SECOND_ADMIN)
    assert status == 409 and body["code"] == "FingerprintMismatch", body
    assert body["currentFingerprint"] == plan_b["fingerprint"] and new_instances(app, before) == []
    # B's run carrying A's fingerprint: a self-approval, so it waits; A's fingerprint does not approve it either
    carried = {"vaultId": vault_b, "dryRun": False, "approvedFingerprint": plan_a["fingerprint"]}
    status, started = http(app, "POST", "teardowns", carried, ADMIN)
    assert status == 202, started
    wait_phase(app, started["id"], "awaiting-approval")
    status, body = http(app, "POST", f"teardowns/{started['id']}/approve", {"fingerprint": plan_a["fingerprint"]},
                        SECOND_ADMIN)
    assert status == 409 and body["currentFingerprint"] == plan_b["fingerprint"], body
    # around the route (an approval event straight to the instance): the saga compares with a fresh plan of B
    app.stack.runner.raise_event(  # type: ignore[union-attr]
        started["id"], "TeardownApproved", {"fingerprint": plan_a["fingerprint"], "approvedBy": SECOND_ADMIN}
    )
    report = app.stack.runner.wait_for(started["id"], timeout=60)["output"]  # type: ignore[union-attr]
    assert report["outcome"] == "replanned" and report["deleted"] == [], report
    assert intact(owner_a, rg_a) and intact(owner_b, rg_b)


def test_an_approved_plan_of_a_vault_that_changed_since_deletes_nothing(app: App) -> None:
    owner, rg, vault_id = opted_in_vault(app)
    plan = dry_run(app, vault_id, ADMIN)
    owner.protect_vm(rg, "rsv", "vm-2")  # the vault changes after the plan was reviewed
    app.stack.advance(2 * HOUR)
    status, approved = http(app, "POST", f"teardowns/{plan['id']}/approve", {"fingerprint": plan["fingerprint"]},
                            SECOND_ADMIN)
    assert status == 202, approved  # the plan's own fingerprint: the route cannot know the vault changed
    report = app.stack.runner.wait_for(approved["id"], timeout=60)["output"]  # type: ignore[union-attr]
    assert report["outcome"] == "replanned" and report["deleted"] == [], report
    assert report["fingerprint"] != plan["fingerprint"]
    owner.rs.vaults.get(rg, "rsv")
    assert len(list(owner.rsb.backup_protected_items.list("rsv", rg))) == 2


def test_an_approval_is_not_replayed_onto_a_teardown_that_ended(app: App) -> None:
    owner, rg, vault_id = opted_in_vault(app)
    plan = dry_run(app, vault_id, ADMIN)
    status, started = http(app, "POST", "teardowns", {"vaultId": vault_id, "dryRun": False}, ADMIN)
    assert status == 202, started
    wait_phase(app, started["id"], "awaiting-approval")
    assert cancel(app, started["id"])["outcome"] == "cancelled"
    before = app.orchestrations()
    status, body = http(app, "POST", f"teardowns/{started['id']}/approve", {"fingerprint": plan["fingerprint"]},
                        SECOND_ADMIN)
    assert status == 409 and body["code"] == "NothingToApprove", body
    # an approval event raised at the ended instance (around the route) is refused, as Azure answers 410 Gone
    with pytest.raises(InstanceNotRunning):
        app.stack.runner.raise_event(  # type: ignore[union-attr]
            started["id"], "TeardownApproved", {"fingerprint": plan["fingerprint"], "approvedBy": SECOND_ADMIN}
        )
    assert app.stack.runner.status(started["id"])["output"]["outcome"] == "cancelled"  # type: ignore[union-attr]
    assert new_instances(app, before) == [] and intact(owner, rg)


def test_approving_the_plan_reaches_the_run_that_waits_for_that_fingerprint(app: App) -> None:
    """Four eyes: the requester asks for a run carrying the plan's fingerprint (it waits for another principal), and
    the second admin approves the plan as ``steward teardown approve VAULT --fingerprint`` does (the plan's id). The
    approval reaches the waiting run, whose id is the one it names; it was answered 202 and lost before (the run
    waited until its deadline). The requester's own approval by that path is still refused."""
    owner, rg, vault_id = opted_in_vault(app)
    plan = dry_run(app, vault_id, SECOND_ADMIN)  # planned by the second admin, run asked for by the first
    body = {"vaultId": vault_id, "dryRun": False, "approvedFingerprint": plan["fingerprint"]}
    status, started = http(app, "POST", "teardowns", body, ADMIN)
    assert status == 202, started
    wait_phase(app, started["id"], "awaiting-approval")
    status, refused = http(app, "POST", f"teardowns/{plan['id']}/approve", {"fingerprint": plan["fingerprint"]},
                           ADMIN)
    assert status == 403 and refused["code"] == "FourEyesRequired", refused
    assert wait_phase(app, started["id"], "awaiting-approval") and intact(owner, rg)
    status, approved = http(app, "POST", f"teardowns/{plan['id']}/approve", {"fingerprint": plan["fingerprint"]},
                            SECOND_ADMIN)
    assert status == 202 and approved["id"] == started["id"], approved
    report = app.stack.runner.wait_for(started["id"], timeout=60)["output"]  # type: ignore[union-attr]
    assert report["outcome"] == "deleted", report["reason"]
    assert report["requestedBy"] == ADMIN and report["approvedBy"] == SECOND_ADMIN
