"""``protect_resource``, ``handle_resource_gone`` and ``reconcile_move`` replayed over built histories with fake
activities (``tests/orchestrators/replay.py``): each main branch ends with the outcome it should, after the
activities it should call, waiting on durable timers where it should wait."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest

from orchestrators import protection
from steward import bootstrap
from steward.cloud.errors import TransientAzureError
from steward.domain import protection_flow
from steward.domain.events import EventOrigin, ProtectResource, read_intent
from tests.orchestrators.replay import EPOCH, Replay, nested, replay

SUB = "00000000-0000-4000-8000-000000000001"
GROUP = f"/subscriptions/{SUB}/resourceGroups/rg-app"
DISK = f"{GROUP}/providers/Microsoft.Compute/disks/data-1"
VM = f"{GROUP}/providers/Microsoft.Compute/virtualMachines/vm-1"
BV = f"/subscriptions/{SUB}/resourceGroups/rg-backup/providers/Microsoft.DataProtection/backupVaults/bv-weu"
RSV = f"/subscriptions/{SUB}/resourceGroups/rg-backup/providers/Microsoft.RecoveryServices/vaults/rsv-weu"
OTHER_RSV = f"/subscriptions/{SUB}/resourceGroups/rg-other/providers/Microsoft.RecoveryServices/vaults/rsv-2"
ITEM = f"{RSV}/backupFabrics/Azure/protectionContainers/iaasvmcontainerv2;rg-app;vm-1/protectedItems/vm;rg-app;vm-1"
#: an intent's origin as EventOrigin.to_record writes it (the orchestrators read their input as a typed intent)
ORIGIN = {"correlationId": "corr-1", "eventId": "ev-1", "eventType": "Microsoft.Resources.ResourceWriteSuccess",
          "eventTime": "2026-01-05T08:59:00+00:00", "schema": "EventGrid"}


@pytest.fixture(autouse=True)
def _packaged_rules() -> Any:
    bootstrap.reset()
    yield
    bootstrap.reset()


def facts(resource_id: str, **extra: Any) -> dict[str, Any]:
    kind = "Microsoft.Compute/virtualMachines" if "/virtualMachines/" in resource_id else "Microsoft.Compute/disks"
    return {"id": resource_id, "type": kind, "location": "westeurope", "tags": {}, "identity": "uid-1",
            "managed_by": "", **extra}


def vault(vault_id: str, **extra: Any) -> dict[str, Any]:
    kind = "RecoveryServices" if "RecoveryServices" in vault_id else "Backup"
    return {"id": vault_id, "kind": kind, "location": "westeurope", "tags": {}, "principal_id": "p-1",
            "tenant_id": None, **extra}


def protected_item(state: str = "Protected") -> dict[str, Any]:
    return {"id": ITEM, "properties": {"protectionState": state}}


class Estate:
    """Fake activities over one resource; each answer can be replaced by a test."""

    def __init__(self, resource_id: str = DISK) -> None:
        self.published: list[dict[str, Any]] = []
        self.describe: list[dict[str, Any] | None] = [facts(resource_id)]  # one per call, the last repeats
        self.vaults = [vault(BV), vault(RSV)]
        self.protect_results: list[dict[str, Any]] = [
            {"ok": True, "instance": {"id": f"{BV}/backupInstances/bi-1"}, "created": True}]
        self.backup_status: dict[str, Any] = {"protectionStatus": "NotProtected"}
        self.begin: list[dict[str, Any]] = [{"ok": True, "operation": "op-1"}]
        self.vm_status: list[dict[str, Any]] = [{"status": "Succeeded", "item": protected_item()}]
        self.item: dict[str, Any] | None = protected_item()
        self.failing: set[str] = set()
        self.stopped: list[dict[str, Any]] = []
        self.protections: list[dict[str, Any]] = []
        self.refresh_status: list[dict[str, Any]] = [{"status": "Succeeded"}]

    @staticmethod
    def _next(answers: list[Any]) -> Any:
        return answers.pop(0) if len(answers) > 1 else answers[0]

    def activities(self) -> dict[str, Callable[[Any], Any]]:
        def guard(name: str, fn: Callable[[Any], Any]) -> Callable[[Any], Any]:
            def run(payload: Any) -> Any:
                if name in self.failing:
                    raise TransientAzureError("503 Service Unavailable", status=503, code="ServiceUnavailable")
                return fn(payload)
            return run

        answers: dict[str, Callable[[Any], Any]] = {
            "describe_resource": lambda p: self._next(self.describe),
            "decide_protection": lambda p: protection_flow.decide(p["facts"], bootstrap.rules()).to_record(),
            "find_vaults": lambda p: [v for v in self.vaults if v["kind"] == p["kind"]],
            "create_vault": lambda p: {"ok": True, "vault": vault(BV, tags={"backup-steward:default": "true"})},
            "grant_vault_roles": lambda p: {"ok": True, "created": [g["role"] for g in p["grants"]]},
            "protect_in_backup_vault": lambda p: self._next(self.protect_results),
            "vm_backup_status": lambda p: self.backup_status,
            "read_vm_item": lambda p: self.item,
            "begin_vm_protection": lambda p: self._next(self.begin),
            "vm_protection_status": lambda p: self._next(self.vm_status),
            "refresh_vm_containers": lambda p: {"ok": True, "operation": "refresh-1"},
            "vault_operation_status": lambda p: self._next(self.refresh_status),
            "publish_outcomes": lambda p: self.published.extend(p["outcomes"]) or {"published": len(p["outcomes"])},
            "find_protections": lambda p: self.protections,
            "vault_region": lambda p: "westeurope",
            "stop_protection_retain": lambda p: self.stopped.append(p["protection"]) or {"ok": True},
            "steward_scope": lambda p: {"subscription_ids": [SUB], "tenants": {SUB: "t-1"}, "unreachable": []},
            "list_resources": lambda p: self.listed(p["scope"]),
            "list_vaults": lambda p: self.vaults,
        }
        return {name: guard(name, fn) for name, fn in answers.items()}

    def listed(self, scope: str) -> list[dict[str, Any]]:
        return []


def protect(estate: Estate, resource_id: str = DISK, **intent: Any) -> Replay:
    result = replay(protection.protect_resource, {"kind": "protect", "resourceId": resource_id, "origin": ORIGIN,
                                                  **intent}, activities=estate.activities())
    assert result.status == "Completed", result.error
    return result


def test_a_disk_is_protected_in_its_regions_backup_vault_and_the_outcome_published() -> None:
    estate = Estate()
    result = protect(estate)
    assert result.output["status"] == "Protected"
    assert result.output["vaultId"] == BV and result.output["correlationId"] == "corr-1"
    assert result.names() == ["describe_resource", "decide_protection", "find_vaults", "grant_vault_roles",
                              "protect_in_backup_vault", "publish_outcomes"]
    assert [o["status"] for o in estate.published] == ["Protected"]
    assert result.custom_status == {"status": "Protected", "vault": BV}


def test_a_quiet_protection_publishes_nothing() -> None:
    estate = Estate()
    result = protect(estate, quiet=True)
    assert result.output["status"] == "Protected"
    assert "publish_outcomes" not in result.names() and estate.published == []


def test_a_resource_still_being_created_is_looked_at_again_on_a_durable_timer() -> None:
    estate = Estate()
    estate.describe = [facts(DISK, provisioning_state="Creating"), facts(DISK, provisioning_state="Succeeded")]
    result = protect(estate)
    assert result.output["status"] == "Protected"
    assert result.names().count("describe_resource") == 2
    assert result.now - EPOCH >= timedelta(seconds=protection_flow.READY_POLL_SECONDS)


def test_a_resource_whose_create_failed_is_not_protected() -> None:
    estate = Estate()
    estate.describe = [facts(DISK, provisioning_state="Failed")]
    result = protect(estate)
    assert result.output["status"] == "Failed" and "provisioningState Failed" in result.output["reason"]
    assert "decide_protection" not in result.names()


def test_a_resource_gone_before_protection_ends_resource_gone() -> None:
    estate = Estate()
    estate.describe = [None]
    assert protect(estate).output["status"] == "ResourceGone"


def test_the_opt_out_tag_and_an_unsupported_type_end_before_any_vault_is_looked_for() -> None:
    estate = Estate()
    estate.describe = [facts(DISK, tags={"backup-steward:opt-out": "true"})]
    opted = protect(estate)
    assert opted.output["status"] == "OptedOut" and "find_vaults" not in opted.names()
    site = f"{GROUP}/providers/Microsoft.Web/sites/web-1"
    estate = Estate()
    estate.describe = [{**facts(site), "type": "Microsoft.Web/sites"}]
    unsupported = protect(estate, resource_id=site)
    assert unsupported.output["status"] == "Unsupported" and "find_vaults" not in unsupported.names()


def test_a_disk_attached_to_a_vm_ends_covered_by_vm_not_opted_out() -> None:
    """Issue 20: the disk a VM's backup covers has its own outcome (it was ``OptedOut``, like the opt-out tag)."""
    estate = Estate()
    estate.describe = [facts(DISK, managed_by=VM)]
    result = protect(estate)
    assert result.output["status"] == "CoveredByVm" and "find_vaults" not in result.names()
    assert "covered by the VM's backup" in result.output["reason"] and result.output["correlationId"] == "corr-1"
    assert [o["status"] for o in estate.published] == ["CoveredByVm"]


def test_no_vault_in_the_region_creates_the_regional_default_and_protects_in_it() -> None:
    estate = Estate()
    estate.vaults = []
    result = protect(estate)
    assert "create_vault" in result.names()
    assert result.output["status"] == "Protected" and result.output["vaultId"] == BV


def test_a_refusal_until_new_role_assignments_apply_is_waited_out_on_durable_timers() -> None:
    estate = Estate()
    pending = {"ok": False, "code": "UserErrorMissingRequiredPermissions", "message": "not yet"}
    estate.protect_results = [pending, pending, {"ok": True, "instance": {"id": "bi-1"}, "created": True}]
    result = protect(estate)
    assert result.output["status"] == "Protected"
    assert result.names().count("protect_in_backup_vault") == 3
    waits = protection_flow.RBAC_BACKOFF_SECONDS
    assert result.now - EPOCH >= timedelta(seconds=waits[0] + waits[1])


def test_an_activity_that_keeps_failing_ends_failed_and_is_still_published() -> None:
    estate = Estate()
    estate.failing = {"grant_vault_roles"}
    result = protect(estate)
    assert result.output["status"] == "Failed" and "gave up after retries" in result.output["reason"]
    assert result.names().count("grant_vault_roles") > 1, "retried on durable timers first"
    assert [o["status"] for o in estate.published] == ["Failed"]


def test_a_vm_is_protected_in_its_recovery_services_vault_after_its_operation_is_followed() -> None:
    estate = Estate(VM)
    estate.vm_status = [{"status": "InProgress"}, {"status": "Succeeded", "item": protected_item("IRPending")}]
    result = protect(estate, resource_id=VM)
    assert result.output["status"] == "Protected" and result.output["vaultId"] == RSV
    assert result.names()[:5] == ["describe_resource", "decide_protection", "find_vaults", "vm_backup_status",
                                  "begin_vm_protection"]
    assert result.names().count("vm_protection_status") == 2
    assert "grant_vault_roles" not in result.names()


def test_a_vm_protected_in_another_vault_is_a_conflict_and_never_moved() -> None:
    estate = Estate(VM)
    estate.backup_status = {"protectionStatus": "Protected", "vaultId": OTHER_RSV}
    result = protect(estate, resource_id=VM)
    assert result.output["status"] == "Conflict"
    assert "begin_vm_protection" not in result.names()


def test_a_vm_whose_stopped_item_is_in_the_chosen_vault_is_resumed() -> None:
    estate = Estate(VM)
    estate.backup_status = {"protectionStatus": "Protected", "vaultId": RSV}
    estate.item = protected_item("ProtectionStopped")
    result = protect(estate, resource_id=VM)
    assert result.output["status"] == "Resumed"
    estate = Estate(VM)
    estate.backup_status = {"protectionStatus": "Protected", "vaultId": RSV}
    assert protect(estate, resource_id=VM).output["status"] == "AlreadyProtected"


def test_a_vm_the_vault_has_not_discovered_is_refreshed_and_tried_again() -> None:
    estate = Estate(VM)
    undiscovered = {"ok": False, "code": "BMSUserErrorDataSourceObjectNotFound", "message": "not registered"}
    estate.begin = [undiscovered, {"ok": True, "operation": "op-2"}]
    result = protect(estate, resource_id=VM)
    assert result.output["status"] == "Protected"
    names = result.names()
    assert names.count("begin_vm_protection") == 2
    assert names.index("refresh_vm_containers") < names.index("vault_operation_status")


def test_a_refresh_that_failed_on_azures_side_is_refreshed_again_not_the_protections_end() -> None:
    """The chaos run's seed 8: the refresh's operation ended Failed with InternalServerError and the VM's
    protection ended Failed; a server-side failure is one of the bounded refreshes, and the next round refreshes
    again. A refusal (any other code) still ends it, naming the step."""
    estate = Estate(VM)
    undiscovered = {"ok": False, "code": "BMSUserErrorDataSourceObjectNotFound", "message": "not registered"}
    estate.begin = [undiscovered, undiscovered, {"ok": True, "operation": "op-2"}]
    estate.refresh_status = [{"status": "Failed", "error": {"code": "InternalServerError", "message": "boom"}},
                             {"status": "Succeeded"}]
    result = protect(estate, resource_id=VM)
    assert result.output["status"] == "Protected", result.output
    assert result.names().count("refresh_vm_containers") == 2
    estate = Estate(VM)
    estate.begin = [undiscovered]
    estate.refresh_status = [{"status": "Failed", "error": {"code": "UserErrorSomething", "message": "no"}}]
    result = protect(estate, resource_id=VM)
    assert result.output["status"] == "Failed" and "refresh" in result.output["reason"]


def test_a_vm_protection_operation_that_never_ends_fails_after_the_poll_window() -> None:
    estate = Estate(VM)
    estate.vm_status = [{"status": "InProgress"}]
    result = protect(estate, resource_id=VM)
    assert result.output["status"] == "Failed" and "did not finish" in result.output["reason"]
    assert result.names().count("vm_protection_status") == protection_flow.VM_ITEM_POLL_ATTEMPTS


# ---- handle_resource_gone ------------------------------------------------------------------------------------

def gone(estate: Estate, **intent: Any) -> Replay:
    result = replay(protection.handle_resource_gone, {"kind": "gone", "resourceId": VM, "origin": ORIGIN, **intent},
                    activities=estate.activities())
    assert result.status == "Completed", result.error
    return result


def ref(state: str = "Protected") -> dict[str, Any]:
    return {"vaultId": RSV, "itemId": ITEM, "sourceId": VM, "identity": "uid-1", "kind": "RecoveryServices",
            "state": state}


def test_a_deleted_vms_protection_is_stopped_and_its_recovery_points_kept() -> None:
    estate = Estate(VM)
    estate.protections = [ref()]
    estate.describe = [None]
    result = gone(estate)
    assert [o["status"] for o in result.output] == ["Retained"]
    assert estate.stopped == [ref()]
    assert [o["status"] for o in estate.published] == ["Retained"]


def test_a_resource_that_still_answers_is_rechecked_then_left_as_is() -> None:
    estate = Estate(VM)
    estate.protections = [ref()]
    result = gone(estate)  # describe keeps answering the same incarnation
    assert [o["status"] for o in result.output] == ["LeftAsIs"]
    assert estate.stopped == []
    assert result.names().count("describe_resource") == 1 + protection_flow.GONE_RECHECKS
    assert result.now - EPOCH >= timedelta(seconds=protection_flow.GONE_RECHECKS * protection_flow.GONE_RECHECK_SECONDS)


def test_a_stopped_protection_is_left_and_no_protection_means_resource_gone() -> None:
    estate = Estate(VM)
    estate.protections = [ref("ProtectionStopped")]
    estate.describe = [None]
    assert [o["status"] for o in gone(estate).output] == ["LeftAsIs"]
    assert estate.stopped == []
    estate = Estate(VM)
    estate.protections = []
    assert [o["status"] for o in gone(estate).output] == ["ResourceGone"]


# ---- reconcile_move --------------------------------------------------------------------------------------------

NEW_VM = f"/subscriptions/{SUB}/resourceGroups/rg-new/providers/Microsoft.Compute/virtualMachines/vm-1"
NEW_ITEM = f"{RSV}/backupFabrics/Azure/protectionContainers/c2/protectedItems/vm;rg-new;vm-1"


class MovedEstate(Estate):
    def listed(self, scope: str) -> list[dict[str, Any]]:
        if scope == GROUP:
            return []  # the VM left its group
        return [facts(NEW_VM)]


def move(estate: Estate, protect_child: Callable[[Any, str], Any]) -> Replay:
    result = replay(protection.reconcile_move, {"kind": "moved", "sourceGroup": GROUP, "origin": ORIGIN},
                    activities=estate.activities(), subs={"protect_resource": protect_child})
    assert result.status == "Completed", result.error
    return result


def test_a_moved_vm_is_protected_anew_before_its_old_item_is_stopped() -> None:
    estate = MovedEstate(VM)
    estate.protections = [ref()]
    children: list[tuple[Any, str]] = []

    def child(payload: Any, instance_id: str) -> dict[str, Any]:
        children.append((payload, instance_id))
        return {"status": "Protected", "resourceId": NEW_VM, "vaultId": RSV, "itemId": NEW_ITEM}

    result = move(estate, child)
    assert [o["status"] for o in result.output] == ["Reprotected"]
    assert result.output[0]["previousItemId"] == ITEM
    [(payload, instance_id)] = children
    assert payload["resourceId"] == NEW_VM and payload["quiet"] is True
    # the child's intent is a typed ProtectResource carrying the move event's own origin
    child_intent = read_intent(payload, ProtectResource)
    assert child_intent.quiet and child_intent.origin == EventOrigin.from_record(ORIGIN)
    assert instance_id == "instance-1:protect:0"
    assert estate.stopped == [ref()]
    assert [c.name for c in result.calls].index("protect_resource") < result.names().index("stop_protection_retain")


def test_a_moved_vm_not_protected_anew_keeps_its_old_item() -> None:
    estate = MovedEstate(VM)
    estate.protections = [ref()]
    result = move(estate, lambda payload, child: {"status": "NoVault", "resourceId": NEW_VM, "reason": "none"})
    assert [o["status"] for o in result.output] == ["NoVault"]
    assert estate.stopped == []


def test_a_moved_vm_is_protected_anew_by_the_real_protect_resource() -> None:
    estate = MovedEstate(VM)
    estate.protections = [ref()]
    estate.describe = [facts(NEW_VM)]
    new_item = {"id": NEW_ITEM, "properties": {"protectionState": "Protected"}}
    estate.vm_status = [{"status": "Succeeded", "item": new_item}]
    result = move(estate, nested(protection.protect_resource, activities=estate.activities()))
    assert [o["status"] for o in result.output] == ["Reprotected"]
    assert estate.published == result.output, "the child was quiet; the parent published the lineage"


def test_a_moved_resource_without_a_single_match_is_reported_for_a_person() -> None:
    estate = Estate(VM)  # nothing lists the VM anywhere: it left its group and no match exists
    estate.protections = [ref()]
    result = move(estate, lambda payload, child: pytest.fail("nothing to protect"))
    assert [o["status"] for o in result.output] == ["Failed"]
    assert "a person should look" in result.output[0]["reason"]
    assert estate.stopped == []


def test_a_resource_deleted_while_its_group_moved_is_left_to_its_delete_not_reported_as_a_lost_move() -> None:
    """The demo's race (move vm-api, delete vm-web from one group): the move's run saw vm-web gone from the group,
    found it nowhere and published Failed after the delete's own run had stopped the item (Retained)."""
    estate = Estate(VM)
    stopped = {**ref(), "state": "ProtectionStopped"}
    answers = [[ref()], [stopped]]  # active when the move's run starts; stopped by the delete's run meanwhile
    estate.protections = answers[0]
    activities = estate.activities()
    activities["find_protections"] = lambda p: answers.pop(0) if len(answers) > 1 else answers[0]
    result = replay(protection.reconcile_move, {"kind": "moved", "sourceGroup": GROUP, "origin": ORIGIN},
                    activities=activities, subs={"protect_resource": lambda payload, child: pytest.fail("none")})
    assert result.status == "Completed", result.error
    assert result.output == [] and estate.published == []
    assert result.now - EPOCH >= timedelta(seconds=protection_flow.MOVE_SETTLE_SECONDS)
    assert result.names().count("find_protections") == 2


def test_a_failed_instance_configuration_is_done_again_a_bounded_number_of_times() -> None:
    """ConfiguringProtectionFailed / ProtectionError: configured again after a durable wait, at most
    BV_CONFIGURE_ATTEMPTS configurations, and the outcome names what failed."""
    estate = Estate()
    failure = {"state": "ProtectionError", "code": "UserErrorX", "message": "no"}
    failed = {"ok": False, "code": protection_flow.CONFIGURATION_FAILED, "message": "reads back ProtectionError",
              "failure": failure, "instance": {"id": "bi-1"}}
    estate.protect_results = [failed]
    result = protect(estate)
    attempts = protection_flow.BV_CONFIGURE_ATTEMPTS
    assert result.output["status"] == "Failed"
    assert result.names().count("protect_in_backup_vault") == attempts
    assert result.output["details"]["reconfigured"] == [failure] * (attempts - 1)
    assert f"at most {attempts} configurations" in result.output["reason"]
    assert result.now - EPOCH >= timedelta(seconds=protection_flow.BV_RECONFIGURE_SECONDS * (attempts - 1))

    estate = Estate()
    estate.protect_results = [failed, {"ok": True, "instance": {"id": "bi-1"}, "created": True}]
    result = protect(estate)
    assert result.output["status"] == "Protected" and result.names().count("protect_in_backup_vault") == 2
    assert "PUT again 1 time(s)" in result.output["reason"]


def test_roles_still_refused_past_the_documented_propagation_bound_are_granted_again() -> None:
    estate = Estate()
    pending = {"ok": False, "code": "UserErrorMissingRequiredPermissions", "message": "not yet"}
    estate.protect_results = [pending] * 6 + [{"ok": True, "instance": {"id": "bi-1"}, "created": True}]
    result = protect(estate)
    assert result.output["status"] == "Protected"
    grants = result.inputs("grant_vault_roles")
    assert len(grants) == 2  # the first grant, and one again once the wait passed 10 minutes
    assert "fresh" not in grants[0] and grants[1]["fresh"] is True
    # waits 30, 60, 120, 240, 240 s: the 5th crosses 600 s, so the roles are granted again before the 6th try
    names = result.names()
    regrant = len(names) - 1 - names[::-1].index("grant_vault_roles")
    assert names[:regrant].count("protect_in_backup_vault") == 5


def test_a_vm_operation_is_looked_at_when_azures_retry_after_says_not_every_30_seconds() -> None:
    """Issue 15: polling at 30 s where the server's Retry-After says 60 doubled the status GETs."""
    estate = Estate(VM)
    estate.vaults = [vault(RSV)]
    estate.begin = [{"ok": True, "operation": "op-1", "retry_after": 60}]
    estate.vm_status = [{"status": "Succeeded", "item": protected_item("IRPending")}]
    result = protect(estate, VM)
    assert result.output["status"] == "Protected"
    assert result.names().count("vm_protection_status") == 1
    assert result.now - EPOCH >= timedelta(seconds=60)
    assert protection_flow.vm_poll_plan(60) == (60, 20)  # the same 20 minutes before the outcome is Failed
    assert protection_flow.vm_poll_plan(None) == (protection_flow.VM_ITEM_POLL_SECONDS,
                                                   protection_flow.VM_ITEM_POLL_ATTEMPTS)
    assert protection_flow.vm_poll_plan(1) == (5, 240) and protection_flow.vm_poll_plan(3600)[0] == 300


@pytest.mark.parametrize(
    ("orchestrator", "given"),
    [
        (protection.protect_resource, {"kind": "gone", "resourceId": DISK, "origin": ORIGIN}),
        (protection.handle_resource_gone, {"kind": "gone", "resourceId": VM}),
        (protection.reconcile_move, {"kind": "move", "sourceGroup": GROUP, "origin": ORIGIN}),
        (protection.add_blob_containers, {"kind": "protect", "resourceId": DISK, "origin": ORIGIN}),
    ],
)
def test_an_input_that_is_not_the_orchestrations_intent_fails_before_any_activity(
    orchestrator: Callable[..., Any], given: dict[str, Any]
) -> None:
    """The orchestrators read their input as a typed intent (``read_intent``): a record that is not the intent
    the Event Grid doorway starts them with fails at once, naming what is wrong, instead of acting on it."""
    result = replay(orchestrator, given, activities=Estate().activities())
    assert result.status == "Failed" and "intent" in str(result.error)
    assert result.names() == []


PENDING = {"ok": False, "code": "UserErrorMissingRequiredPermissions", "message": "not yet"}
ACCEPTED = {"ok": True, "instance": {"id": "bi-1"}, "created": True}


def granting(estate: Estate, settle: float | None, *, created: bool = True, probe: bool = True,
             states: list[dict[str, Any]] | None = None) -> None:
    """``grant_vault_roles`` as the activity answers now (the roles created, ``settle_seconds``, ``probe``), and
    ``rbac_settle_state`` answering ``states`` one look after another (the last repeats)."""
    activities = estate.activities
    looks = list(states or [{"settle_seconds": None, "probing": False}])

    def with_settle() -> dict[str, Callable[[Any], Any]]:
        fakes = activities()
        fakes["grant_vault_roles"] = lambda p: {"ok": True, "created": [g["role"] for g in p["grants"]] if created
                                                else [], "settle_seconds": settle, "probe": probe}
        fakes["note_rbac_settle"] = lambda p: {"ok": True}
        fakes["rbac_settle_state"] = lambda p: Estate._next(looks)
        return fakes

    estate.activities = with_settle  # type: ignore[method-assign]


def test_the_probe_notes_how_long_new_roles_took_to_apply() -> None:
    """Issue 15: the validations refused while new roles propagate cost a POST each from ARM's write bucket. The
    protection that finds out (the probe) notes the time from the grant to the validation that passed."""
    estate = Estate()
    granting(estate, None)
    estate.protect_results = [PENDING, PENDING, ACCEPTED]
    result = protect(estate)
    assert result.output["status"] == "Protected"
    assert result.names().count("protect_in_backup_vault") == 3
    # each fake activity takes 1 s: refused at 0 (+1), wait 30, refused (+1), wait 60, the third answered (+1):
    # 93 s from the grant to Azure's answer to the validation that passed
    assert result.inputs("note_rbac_settle") == [{"principalId": "p-1", "seconds": 93}]
    assert result.names().index("note_rbac_settle") > result.names().index("protect_in_backup_vault")

    estate = Estate()  # a probe that never passed still ends the probe, without a time
    granting(estate, None)
    estate.protect_results = [{"ok": False, "code": "UserErrorX", "message": "no"}]
    result = protect(estate)
    assert result.inputs("note_rbac_settle") == [{"principalId": "p-1", "seconds": None}]


def test_a_grant_that_created_roles_waits_the_noted_time_before_validating_and_notes_nothing_new() -> None:
    estate = Estate()
    granting(estate, 150, probe=False)
    result = protect(estate)
    assert result.output["status"] == "Protected"
    assert result.names().count("protect_in_backup_vault") == 1 and "note_rbac_settle" not in result.names()
    assert result.now - EPOCH >= timedelta(seconds=150)

    estate = Estate()  # the wait was too short: refused once more, and the longer time is noted
    granting(estate, 150, probe=False)
    estate.protect_results = [PENDING, ACCEPTED]
    result = protect(estate)
    assert result.inputs("note_rbac_settle") == [{"principalId": "p-1", "seconds": 150 + 1 + 30 + 1}]

    estate = Estate()  # no role created (all granted before): nothing to wait for
    granting(estate, 150, created=False, probe=False)
    result = protect(estate)
    assert result.now - EPOCH < timedelta(seconds=30) and "note_rbac_settle" not in result.names()


def test_while_another_protection_finds_out_the_others_look_instead_of_sending_refused_validations() -> None:
    estate = Estate()
    granting(estate, None, probe=False, states=[{"settle_seconds": None, "probing": True},
                                                {"settle_seconds": None, "probing": True},
                                                {"settle_seconds": 150, "probing": False}])
    result = protect(estate)
    assert result.output["status"] == "Protected"
    names = result.names()
    assert names.count("rbac_settle_state") == 3 and names.count("protect_in_backup_vault") == 1
    assert names.index("rbac_settle_state") < names.index("protect_in_backup_vault")
    # looks at ~31, ~62, ~93 s; the time learned is 150 s after the grant: validated then, not before
    assert result.now - EPOCH >= timedelta(seconds=150)
    # it passed at once on a time learned from a look: noted again, so the worker its grant ran on learns it too
    assert result.inputs("note_rbac_settle") == [{"principalId": "p-1", "seconds": 150}]

    estate = Estate()  # the probe ended without a time: validate at once, as before
    granting(estate, None, probe=False, states=[{"settle_seconds": None, "probing": False}])
    estate.protect_results = [PENDING, ACCEPTED]
    result = protect(estate)
    assert result.names().count("rbac_settle_state") == 1
    assert result.inputs("note_rbac_settle") == [{"principalId": "p-1", "seconds": 1 + 30 + 1 + 30 + 1}]

    estate = Estate()  # a probe that never ends: the looks stop at the documented bound
    granting(estate, None, probe=False, states=[{"settle_seconds": None, "probing": True}])
    result = protect(estate)
    looks = result.names().count("rbac_settle_state")
    assert looks <= protection_flow.RBAC_REGRANT_SECONDS // protection_flow.RBAC_PROBE_POLL_SECONDS
    assert result.output["status"] == "Protected"


def test_a_grant_result_from_before_settle_seconds_replays_without_the_wait_or_the_note() -> None:
    """An orchestration started on the code before (its recorded grant result has no ``settle_seconds`` nor
    ``probe``) replays the activities its history holds: no timer after the grant, no look, no note."""
    estate = Estate()
    estate.protect_results = [PENDING, ACCEPTED]
    result = protect(estate)
    assert result.output["status"] == "Protected"
    assert "note_rbac_settle" not in result.names() and "rbac_settle_state" not in result.names()


def test_the_settle_wait_and_what_is_noted_are_bounded_by_the_documented_propagation_time() -> None:
    bound = protection_flow.RBAC_REGRANT_SECONDS
    assert protection_flow.rbac_settle_seconds({"created": ["r"], "settle_seconds": 5_000}) == bound
    assert protection_flow.rbac_settle_seconds({"created": [], "settle_seconds": 100}) is None
    assert protection_flow.rbac_settle_seconds({"created": ["r"], "settle_seconds": 0}) is None  # applied at once
    granted = {"created": ["r"], "settle_seconds": None, "probe": False}
    assert protection_flow.rbac_note(granted, 2, 5_000.0) == {"seconds": bound}
    assert protection_flow.rbac_note(granted, 0, 90.0) is None  # passed at once: nothing seen
    assert protection_flow.rbac_note({"created": ["r"]}, 2, 90.0) is None  # the code before
    assert protection_flow.rbac_note(granted, 1, 89.2) == {"seconds": 90}
    assert protection_flow.rbac_after_poll({"settle_seconds": 150}, 200.0) == 0.0
    assert protection_flow.rbac_after_poll({"settle_seconds": 150}, 100.0) == 50.0
    assert protection_flow.rbac_after_poll({"probing": True}, 100.0) is None
    assert protection_flow.rbac_after_poll({"probing": True}, bound - 10.0) == 0.0


def sharing(estate: Estate, settle: float | None, created_on: str, *, created: bool = False, probe: bool = False,
            states: list[dict[str, Any]] | None = None) -> None:
    """``grant_vault_roles`` answering ``created_on`` (the newest assignment's creation): a group-scoped role
    another protection made (``created`` False: the worker's cache knew it) or one this grant PUT again."""
    granting(estate, settle, created=created, probe=probe, states=states)
    fakes = estate.activities

    def with_time() -> dict[str, Callable[[Any], Any]]:
        answers = fakes()
        grant = answers["grant_vault_roles"]
        answers["grant_vault_roles"] = lambda p: {**grant(p), "created_on": created_on}
        return answers

    estate.activities = with_time  # type: ignore[method-assign]


def _at(seconds: float) -> str:
    return (EPOCH + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def test_a_shared_role_another_protection_just_made_is_waited_for_from_its_creation() -> None:
    """Issue 15 (roleScope resourceGroup): the group's Disk Backup Reader was made 100 s before this protection's
    grant, which sent no PUT (the cache knew it). The worker noted 150 s: validated 150 s after its creation, once
    (not at once, refused, as the grant created nothing of its own)."""
    estate = Estate()
    sharing(estate, 150, _at(-100))
    result = protect(estate)
    assert result.output["status"] == "Protected"
    assert result.names().count("protect_in_backup_vault") == 1 and "note_rbac_settle" not in result.names()
    validated = result.now - EPOCH
    assert timedelta(seconds=50) <= validated < timedelta(seconds=100), validated

    estate = Estate()  # nothing noted yet, the first protection of the group is the probe: look, do not validate
    sharing(estate, None, _at(-10), states=[{"settle_seconds": None, "probing": True},
                                            {"settle_seconds": 120, "probing": False}])
    result = protect(estate)
    names = result.names()
    assert names.count("rbac_settle_state") == 2 and names.count("protect_in_backup_vault") == 1
    assert names.index("rbac_settle_state") < names.index("protect_in_backup_vault")
    assert result.now - EPOCH >= timedelta(seconds=110)  # 120 s after the assignment was made


def test_a_role_made_longer_ago_than_the_documented_bound_is_not_waited_for_and_its_probe_released() -> None:
    """A grant that PUT an existing assignment again (another worker: no cache) made 11 minutes ago claimed this
    worker's probe: the roles have applied, so it validates at once and releases the probe (a note without a
    time) for the protections looking at it."""
    estate = Estate()
    sharing(estate, None, _at(-660), created=True, probe=True)
    result = protect(estate)
    assert result.output["status"] == "Protected"
    names = result.names()
    assert result.inputs("note_rbac_settle") == [{"principalId": "p-1", "seconds": None}]
    assert names.index("note_rbac_settle") < names.index("protect_in_backup_vault")
    assert "rbac_settle_state" not in names and result.now - EPOCH < timedelta(seconds=30)


def test_a_grant_past_the_role_assignment_limit_ends_failed_at_once_naming_the_fix() -> None:
    estate = Estate()
    fakes = estate.activities

    def refusing() -> dict[str, Callable[[Any], Any]]:
        answers = fakes()
        answers["grant_vault_roles"] = lambda p: {"ok": False, "code": "RoleAssignmentLimitExceeded", "status": 400,
                                                  "message": "No more role assignments can be created."}
        return answers

    estate.activities = refusing  # type: ignore[method-assign]
    result = protect(estate)
    assert result.output["status"] == "Failed"
    assert "4,000" in result.output["reason"] and "roleScope: resourceGroup" in result.output["reason"]
    assert result.output["details"]["code"] == "RoleAssignmentLimitExceeded"
    assert result.names().count("grant_vault_roles") == 1 and "protect_in_backup_vault" not in result.names()
    assert [o["status"] for o in estate.published] == ["Failed"]
