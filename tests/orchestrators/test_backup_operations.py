"""Backup-vault protection's long-running operations followed by ``protect_resource`` on durable timers (issue 15
item 1): ``protect_in_backup_vault`` starts ``validateForBackup`` and returns at once, the orchestrator waits the
operation's ``Retry-After`` on a durable timer and looks (``backup_operation_status``), then ``begin_backup_instance``
PUTs the instance and the look that sees its end reads the instance back (the verification). Replayed over built
histories with fake activities (``tests/orchestrators/replay.py``)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from azure.durable_functions.models.history.HistoryEventType import HistoryEventType

from steward.domain import operations, protection_flow
from tests.orchestrators.replay import EPOCH, FORMAT, Replay
from tests.orchestrators.test_protection import BV, DISK, Estate, protect

INSTANCE = {"id": f"{BV}/backupInstances/data-1-0123456789ab",
            "properties": {"protectionStatus": {"status": "ProtectionConfigured"},
                           "currentProtectionState": "ProtectionConfigured"}}
FAILED_INSTANCE = {"id": INSTANCE["id"],
                   "properties": {"protectionStatus": {"status": "ConfiguringProtectionFailed",
                                                       "errorDetails": {"code": "UserErrorX", "message": "broke"}},
                                  "currentProtectionState": "ConfiguringProtectionFailed"}}
BODY = {"properties": {"objectType": "BackupInstance", "dataSourceInfo": {"resourceID": DISK}}}


def started(step: str, retry_after: int = 0, **extra: Any) -> dict[str, Any]:
    return operations.OperationStarted(step=operations.Step(step), operation=f"https://arm/op/{step}",
                                       retry_after=retry_after, body=BODY, **extra).to_record()


def state(status: str, retry_after: int = 0, **extra: Any) -> dict[str, Any]:
    return operations.OperationState(status=status, retry_after=retry_after, **extra).to_record()


class Operations(Estate):
    """The Estate of test_protection with the three activities of the followed operations: each list answers one
    call after another (the last repeats)."""

    def __init__(self) -> None:
        super().__init__()
        self.protect_results = [started("validate", retry_after=10)]
        self.validate_states = [state("InProgress", retry_after=10), state("Succeeded")]
        self.begin_results = [started("instance", retry_after=60)]
        self.instance_states = [state("Succeeded", instance=INSTANCE)]

    def activities(self) -> dict[str, Callable[[Any], Any]]:
        fakes = super().activities()

        def look(payload: dict[str, Any]) -> Any:
            assert payload["operation"] == f"https://arm/op/{payload['step']}" and payload["resourceId"] == DISK
            return self._next(self.validate_states if payload["step"] == "validate" else self.instance_states)

        def begin(payload: dict[str, Any]) -> Any:
            assert payload["body"] == BODY  # the body that was validated is the one PUT
            return self._next(self.begin_results)

        fakes["backup_operation_status"] = look
        fakes["begin_backup_instance"] = begin
        return fakes


def elapsed(result: Replay) -> float:
    return (result.now - EPOCH).total_seconds()


def waits(result: Replay) -> list[float]:
    """The durable timers the orchestration created, in seconds from the moment it created each."""
    return [(datetime.strptime(e["FireAt"], FORMAT) - datetime.strptime(e["Timestamp"], FORMAT)).total_seconds()
            for e in result.history if e["EventType"] == HistoryEventType.TIMER_CREATED]


def test_validation_and_the_instance_put_are_followed_on_durable_timers_at_azures_retry_after() -> None:
    estate = Operations()
    result = protect(estate)
    assert result.output["status"] == "Protected" and result.output["itemId"] == INSTANCE["id"]
    assert result.names() == ["describe_resource", "decide_protection", "find_vaults", "grant_vault_roles",
                              "protect_in_backup_vault", "backup_operation_status", "backup_operation_status",
                              "begin_backup_instance", "backup_operation_status", "publish_outcomes"]
    # two looks at the validation 10 s apart (its Retry-After), one at the PUT after its 60 s: no look sooner
    assert waits(result) == [10, 10, 60]
    assert [o["status"] for o in estate.published] == ["Protected"]


def test_an_operation_that_names_no_retry_after_is_looked_at_every_default_wait() -> None:
    estate = Operations()
    estate.protect_results = [started("validate")]
    estate.validate_states = [state("InProgress"), state("InProgress"), state("Succeeded")]
    estate.begin_results = [started("instance")]
    result = protect(estate)
    assert result.output["status"] == "Protected"
    assert waits(result) == [operations.DEFAULT_WAIT_SECONDS] * 4


def test_data_protections_inprogress_spelling_is_still_running_and_any_case_of_succeeded_has_ended() -> None:
    """Microsoft.DataProtection answers ``"status": "Inprogress"`` while an operation runs (its REST article's
    captured answer; Az.DataProtection's Get-AzDataProtectionOperationStatus example); ARM: any status but Succeeded,
    Failed or Canceled means the operation still runs. Found in review: read as the end, the validation was a
    refusal with code "Inprogress" and the disk was never protected."""
    estate = Operations()
    estate.validate_states = [state("Inprogress", retry_after=10), state("Accepted"), state("succeeded")]
    estate.instance_states = [state("Inprogress", retry_after=60), state("Succeeded", instance=INSTANCE)]
    result = protect(estate)
    assert [o["status"] for o in estate.published] == ["Protected"], estate.published
    assert result.names().count("backup_operation_status") == 5
    assert waits(result) == [10, 10, 10, 60, 60]


def test_an_operation_canceled_in_any_case_has_ended_and_is_no_protection() -> None:
    estate = Operations()
    estate.validate_states = [state("canceled", error={"code": "OperationCanceled", "message": "stopped"})]
    result = protect(estate)
    assert result.output["status"] != "Protected"
    assert result.names().count("backup_operation_status") == 1 and "begin_backup_instance" not in result.names()


def test_a_validation_refused_while_new_role_assignments_propagate_is_waited_out_then_followed_again() -> None:
    estate = Operations()
    refused = state("Failed", error={"code": "UserErrorMissingRequiredPermissions", "message": "not yet"})
    estate.validate_states = [refused, state("Succeeded")]
    result = protect(estate)
    assert result.output["status"] == "Protected"
    assert result.names().count("protect_in_backup_vault") == 2
    assert result.names().count("begin_backup_instance") == 1
    assert waits(result) == [10, protection_flow.RBAC_BACKOFF_SECONDS[0], 10, 60]


def test_a_validation_sent_again_is_first_looked_at_after_the_time_the_last_one_took() -> None:
    """A refused validation costs its POST and its looks; sent again while the roles propagate, the same operation
    is looked at once, when the last one ended (waiting longer than Retry-After is allowed), not every 10 s."""
    estate = Operations()
    refused = state("Failed", error={"code": "UserErrorMissingRequiredPermissions", "message": "not yet"})
    running = state("InProgress", retry_after=10)
    estate.validate_states = [running, running, refused, refused, state("Succeeded")]
    result = protect(estate)
    assert result.output["status"] == "Protected"
    assert result.names().count("protect_in_backup_vault") == 3 and result.names().count("backup_operation_status") == 6
    backoff = protection_flow.RBAC_BACKOFF_SECONDS
    # first validation: three looks 10 s apart (it ended, refused, at 30 s); the next two: one look each, after 30 s
    assert waits(result) == [10, 10, 10, backoff[0], 30, backoff[1], 30, 60]


def test_a_datasource_an_instance_of_ours_protects_ends_already_protected_without_a_put() -> None:
    estate = Operations()
    estate.validate_states = [state("Failed", error={"code": operations.DATASOURCE_ALREADY_PROTECTED,
                                                     "message": "already"}, instance=INSTANCE)]
    result = protect(estate)
    assert result.output["status"] == "AlreadyProtected" and result.output["itemId"] == INSTANCE["id"]
    assert "begin_backup_instance" not in result.names()


def test_a_datasource_protected_by_an_instance_not_ours_is_a_conflict() -> None:
    estate = Operations()
    estate.validate_states = [state("Failed", error={"code": operations.DATASOURCE_ALREADY_PROTECTED,
                                                     "message": "protected by another instance"})]
    result = protect(estate)
    assert result.output["status"] == "Conflict", result.output
    assert "begin_backup_instance" not in result.names()


def test_a_failed_instance_of_ours_found_by_validation_is_put_again_and_the_outcome_says_so() -> None:
    estate = Operations()
    estate.validate_states = [state("Failed", error={"code": operations.DATASOURCE_ALREADY_PROTECTED,
                                                     "message": "already"}, instance=FAILED_INSTANCE)]
    result = protect(estate)
    assert result.output["status"] == "Protected"
    assert result.inputs("begin_backup_instance")[0]["repaired"]["state"] == "ConfiguringProtectionFailed"
    assert "ConfiguringProtectionFailed" in result.output["reason"]


def test_a_put_whose_operation_leaves_the_instance_failed_is_configured_again_after_a_durable_wait() -> None:
    estate = Operations()
    estate.instance_states = [state("Failed", error={"code": "UserErrorX", "message": "broke"},
                                    instance=FAILED_INSTANCE), state("Succeeded", instance=INSTANCE)]
    result = protect(estate)
    assert result.output["status"] == "Protected"
    assert result.names().count("begin_backup_instance") == 2
    assert waits(result) == [10, 10, 60, protection_flow.BV_RECONFIGURE_SECONDS, 10, 60]


def test_a_put_refused_at_its_end_is_failed_with_azures_code() -> None:
    estate = Operations()
    estate.instance_states = [state("Failed", error={"code": "UserErrorInvalidPolicy", "message": "no"})]
    result = protect(estate)
    assert result.output["status"] == "Failed"
    assert "UserErrorInvalidPolicy: no" in result.output["reason"]


def test_an_operation_that_failed_on_azures_side_starts_again_a_bounded_number_of_times() -> None:
    estate = Operations()
    broken = state("Failed", error={"code": "InternalServerError", "message": "oops"})
    estate.validate_states = [broken, state("Succeeded")]
    result = protect(estate)
    assert result.output["status"] == "Protected"
    assert result.names().count("protect_in_backup_vault") == 2

    estate = Operations()
    estate.validate_states = [broken]
    result = protect(estate)
    assert result.output["status"] == "Failed" and "InternalServerError" in result.output["reason"]
    assert result.names().count("protect_in_backup_vault") == operations.STARTS


def test_an_operation_that_never_ends_is_failed_after_the_window() -> None:
    estate = Operations()
    estate.protect_results = [started("validate", retry_after=60)]
    estate.validate_states = [state("InProgress", retry_after=60)]
    result = protect(estate)
    assert result.output["status"] == "Failed"
    assert operations.NOT_FINISHED in result.output["reason"]
    assert result.names().count("backup_operation_status") == operations.WINDOW_SECONDS // 60
    assert sum(waits(result)) == operations.WINDOW_SECONDS


def test_a_put_azure_answers_at_once_needs_no_look() -> None:
    estate = Operations()
    estate.begin_results = [operations.OperationStarted(step=operations.Step.INSTANCE, body=BODY,
                                                        instance=INSTANCE).to_record()]
    result = protect(estate)
    assert result.output["status"] == "Protected"
    assert result.names().count("backup_operation_status") == 2  # the validation's only


# ---- stopping protection (recovery points kept) on durable timers ------------------------------------------------

def _stop_estate(states: list[dict[str, Any]]) -> tuple[Operations, list[tuple[str, Any]]]:
    estate = Operations()
    looks: list[tuple[str, Any]] = []
    fakes = estate.activities

    def activities() -> dict[str, Callable[[Any], Any]]:
        answers = fakes()

        def stop(payload: dict[str, Any]) -> Any:
            estate.stopped.append(payload["protection"])
            return operations.OperationStarted(step=operations.Step.STOP, operation="https://arm/op/stop",
                                               retry_after=60).to_record()

        def look(name: str) -> Callable[[Any], Any]:
            def run(payload: dict[str, Any]) -> Any:
                looks.append((name, payload))
                return estate._next(states)
            return run

        answers.update(stop_protection_retain=stop, vault_operation_status=look("vault_operation_status"),
                       backup_operation_status=look("backup_operation_status"))
        return answers

    estate.activities = activities  # type: ignore[method-assign]
    return estate, looks


def test_a_deleted_vms_stop_is_followed_on_durable_timers_through_the_recovery_services_operation() -> None:
    from tests.orchestrators.test_protection import gone, ref

    estate, looks = _stop_estate([state("InProgress"), state("Succeeded")])
    estate.protections = [ref()]
    estate.describe = [None]
    result = gone(estate)
    assert [o["status"] for o in result.output] == ["Retained"]
    assert [name for name, _ in looks] == ["vault_operation_status"] * 2
    assert looks[0][1]["operation"] == "https://arm/op/stop"
    assert waits(result) == [60, 60]


def test_a_deleted_disks_stop_that_azure_refuses_at_its_end_fails_with_the_code() -> None:
    from tests.orchestrators.test_protection import gone

    estate, looks = _stop_estate([state("Failed", error={"code": "UserErrorX", "message": "no"})])
    instance = {"vaultId": BV, "itemId": INSTANCE["id"], "sourceId": DISK, "identity": "uid-1", "kind": "Backup",
                "state": "ProtectionConfigured"}
    estate.protections = [instance]
    estate.describe = [None]
    result = gone(estate, resourceId=DISK)
    assert [o["status"] for o in result.output] == ["Failed"]
    assert result.output[0]["reason"] == "no"  # Azure's message
    assert [name for name, _ in looks] == ["backup_operation_status"]
    assert looks[0][1]["step"] == "stop"


def test_the_probe_notes_the_roles_delay_as_soon_as_a_validation_passed_before_the_instance_put() -> None:
    """Issue 15: the protections waiting for the probe are released when its validation passed, not a whole
    instance PUT (its 60 s operation and the look) later."""
    estate = Operations()
    fakes = estate.activities

    def probing() -> dict[str, Callable[[Any], Any]]:
        answers = fakes()
        answers["grant_vault_roles"] = lambda p: {"ok": True, "created": ["Disk Backup Reader"],
                                                  "settle_seconds": None, "probe": True}
        answers["note_rbac_settle"] = lambda p: {"ok": True}
        return answers

    estate.activities = probing  # type: ignore[method-assign]
    result = protect(estate)
    assert result.output["status"] == "Protected"
    names = result.names()
    assert names.count("note_rbac_settle") == 1
    assert names.index("note_rbac_settle") == names.index("begin_backup_instance") - 1
    assert result.inputs("note_rbac_settle") == [{"principalId": "p-1", "seconds": 1}]  # passed at once
