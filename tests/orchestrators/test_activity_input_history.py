"""Activity inputs queued before they became records of the one codec (issue 16 step 4) read the same.

``data/activity_inputs_before_records.json`` holds the inputs the orchestrators scheduled at the commit named in
it, captured from ``tests/orchestrators`` before the change: the protection activities' snake_case dicts
(``resource_id``, ``vault_id``, ``subscription_id`` ...). A deployment finds such inputs queued in the task hub, and
an orchestration in flight keeps them in its history. Each activity reads its input through its record now, and the
codec still takes a field's snake_case key when its camelCase key is absent: an old input must read as the same
record as the camelCase input the orchestrators send now, losing nothing it said. The histories recorded before
(``data/protection_history_*.json``: their ``TaskScheduled`` inputs are the old dicts) replay on today's code to
the same steps (``tests/orchestrators/test_activity_result_history.py``, ``test_record_history.py``); the test
below checks they did hold old inputs and that today's code sends records for the same steps. The activities
themselves answer old inputs as they answer records against the sandbox
(``tests/integration/sandbox_rs/test_old_activity_inputs.py``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from azure.durable_functions.models.history.HistoryEventType import HistoryEventType as E

from orchestrators import audit, compensation, drill, protection, teardown
from steward.domain import drill_inputs
from steward.domain import protection_inputs as inputs
from steward.domain.audit import inputs as audit_inputs
from steward.domain.protection import ProtectionOutcome
from steward.domain.records import Record, camel
from steward.domain.teardown import inputs as teardown_inputs
from tests.orchestrators.replay import replays_as_recorded, scheduled_calls

DATA = Path(__file__).parent / "data"
RECORDED = json.loads((DATA / "activity_inputs_before_records.json").read_text())["inputs"]

#: each protection activity's input record
PROTECTION: dict[str, type[Record]] = {
    "describe_resource": inputs.ResourceAt,
    "vm_backup_status": inputs.ResourceAt,
    "decide_protection": inputs.FactsToDecide,
    "find_vaults": inputs.VaultSearch,
    "create_vault": inputs.VaultToCreate,
    "vault_loads": inputs.VaultLoadsQuery,
    "copy_policy": inputs.PolicyCopy,
    "vault_creation_status": inputs.OperationWatch,
    "vault_operation_status": inputs.OperationWatch,
    "backup_operation_status": inputs.OperationWatch,
    "create_vault_policies": inputs.VaultAt,
    "vault_region": inputs.VaultAt,
    "refresh_vm_containers": inputs.VaultAt,
    "read_vm_item": inputs.VmInVault,
    "begin_vm_protection": inputs.VmInVault,
    "vm_protection_status": inputs.VmInVault,
    "grant_vault_roles": inputs.RoleGrants,
    "protect_in_backup_vault": inputs.BackupInstanceRequest,
    "begin_backup_instance": inputs.BackupInstanceRequest,
    "find_protections": inputs.SubscriptionsQuery,
    "list_vaults": inputs.SubscriptionsQuery,
    "list_resources": inputs.ResourceListing,
    "stop_protection_retain": inputs.StopRetaining,
    "blob_container_state": inputs.BlobContainersAt,
    "set_blob_containers": inputs.BlobContainerChange,
    "publish_outcomes": inputs.OutcomesToPublish,
}
#: each audit activity's input record (audit_read_subscription was sent ``subscription_id``)
AUDIT: dict[str, type[Record]] = {
    "audit_scope": audit_inputs.AuditScopeQuery,
    "audit_read_subscription": audit_inputs.SubscriptionRead,
    "audit_evaluate": audit_inputs.AuditEvaluation,
    "audit_publish_findings": audit_inputs.StoredReport,
    "audit_remediation_plan": audit_inputs.StoredReport,
    "drill_reconcile_leftovers": audit_inputs.LeftoversDue,
}
#: each teardown activity's input record (camelCase keys before as now: ``vaultId``, ``target``, ``instanceId`` ...)
TEARDOWN: dict[str, type[Record]] = {
    "teardown_inventory": teardown_inputs.TeardownVault,
    "teardown_delete_vault": teardown_inputs.TeardownVault,
    "teardown_set_setting": teardown_inputs.SettingToSet,
    "teardown_mark_vault": teardown_inputs.VaultMarking,
    "teardown_unmark_vault": teardown_inputs.VaultMarking,
    "teardown_restore_protections": teardown_inputs.VaultMarking,
    "teardown_delete_item": teardown_inputs.TargetStep,
    "teardown_record_report": teardown_inputs.ReportToRecord,
}
#: the teardown reconciler's (orchestrators/compensation.py)
COMPENSATION: dict[str, type[Record]] = {
    "teardown_find_marked_vaults": teardown_inputs.MarkedVaultsQuery,
    "teardown_reconcile_vault": teardown_inputs.VaultToReconcile,
}
#: the restore drill's (camelCase before, but for ``drill_grant``'s grants: ``role_definition_guid``)
DRILL: dict[str, type[Record]] = {
    "drill_candidates": drill_inputs.DrillCandidatesQuery,
    "drill_points": drill_inputs.DrillTargetStep,
    "drill_prepare": drill_inputs.DrillTargetStep,
    "drill_grant": drill_inputs.DrillGrants,
    "drill_start": drill_inputs.DrillRestoreStart,
    "drill_operation": drill_inputs.DrillOperationLook,
    "drill_job": drill_inputs.DrillJobRef,
    "drill_cancel_job": drill_inputs.DrillJobRef,
    "drill_restored": drill_inputs.DrillRestoreQuery,
    "drill_cleanup": drill_inputs.DrillCleanup,
    "drill_remaining": drill_inputs.DrillStillThere,
    "drill_record": drill_inputs.DrillReportToRecord,
    "drill_restore_ready": drill_inputs.RestoreReadyNotice,
}
RECORDS = {**PROTECTION, **AUDIT, **TEARDOWN, **COMPENSATION, **DRILL}
#: the orchestrators whose recorded histories (``data/*_history_*.json``) replay here
ORCHESTRATORS = {"protection": protection, "audit": audit, "compensation": compensation, "teardown": teardown,
                 "drill": drill}
HISTORIES = [("protection_history_before_typed_results.json", "protection"),
             ("protection_history_snake_case.json", "protection"), ("audit_history_before_records.json", "audit"),
             ("teardown_history_before_records.json", "teardown"), ("drill_history_before_records.json", "drill")]

#: keys whose values are Azure's wire shapes or records of their own, passed on as they are
WIRE = {"body", "instance", "repaired", "facts", "decision", "protection", "outcomes", "tags", "target", "report",
        "account", "operation"}


def _camelised(value: Any) -> Any:
    """``value`` with the keys of the objects in it camelCase (a list of old role grants as records now)."""
    if isinstance(value, dict):
        return {camel(k): _camelised(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_camelised(v) for v in value]
    return value


def _examples(table: dict[str, type[Record]]) -> list[tuple[str, int]]:
    return [(name, i) for name in sorted(table) for i in range(len(RECORDED.get(name, [])))]


def test_the_recorded_inputs_are_the_old_snake_case_dicts() -> None:
    # the data is what it claims: the keys the protection orchestrations sent before the records
    assert RECORDED["describe_resource"][0] == {"resource_id": RECORDED["describe_resource"][0]["resource_id"]}
    assert {"resource_id", "vault_id", "policy"} <= set(RECORDED["begin_vm_protection"][0])
    assert {"principal_id", "grants"} <= set(RECORDED["grant_vault_roles"][0])
    assert "role_definition_guid" in RECORDED["grant_vault_roles"][0]["grants"][0]
    assert {"subscription_id", "resource_group", "always_on"} <= set(
        next(i for i in RECORDED["create_vault"] if "resource_group" in i))
    assert "vault_ids" in RECORDED["vault_loads"][0] and "subscription_ids" in RECORDED["find_protections"][0]
    assert "subscription_id" in RECORDED["audit_read_subscription"][0]
    assert "role_definition_guid" in RECORDED["drill_grant"][0]["grants"][0]
    # every activity the orchestrators call was captured (steward_scope and teardown_limits take no input)
    assert set(RECORDS) <= set(RECORDED)


@pytest.mark.parametrize(("name", "index"), _examples(RECORDS))
def test_an_old_input_reads_as_the_record_the_orchestrators_send_now(name: str, index: int) -> None:
    old = RECORDED[name][index]
    record_type = RECORDS[name]
    read = record_type.from_record(old)
    now = read.to_record()
    # the camelCase input the orchestrators send now reads as the same record
    assert record_type.from_record(now) == read
    assert not [k for k in now if "_" in k], now
    # nothing the old input said is lost: each key it held is in the record, unless it held the default
    for key, value in old.items():
        if key not in WIRE and value not in (None, "", [], {}, False):
            assert now[camel(key)] == _camelised(value), (key, now)


def _outcomes(output: Any) -> list[ProtectionOutcome]:
    return [ProtectionOutcome.from_record(o) for o in (output if isinstance(output, list) else [output])]


def _inputs(history: list[dict[str, Any]]) -> list[tuple[str, Any]]:
    return [(e["Name"], json.loads(e["Input"]) if isinstance(e.get("Input"), str) else e.get("Input"))
            for e in history if e["EventType"] in (int(E.TASK_SCHEDULED), int(E.SUB_ORCHESTRATION_INSTANCE_CREATED))]


@pytest.mark.parametrize(("file", "module"), HISTORIES)
def test_an_orchestration_in_flight_with_old_inputs_in_its_history_replays_as_recorded(file: str, module: str) -> None:
    recorded = json.loads((DATA / file).read_text())["orchestrations"]
    old_keys = 0
    for name, case in recorded.items():
        scheduled = _inputs(case["history"])
        old_keys += sum(1 for _, given in scheduled if isinstance(given, dict) and _old_keys(given))
        orchestrator = case.get("orchestrator", name)
        owner = ORCHESTRATORS[module] if hasattr(ORCHESTRATORS[module], orchestrator) else compensation
        state = replays_as_recorded(getattr(owner, orchestrator), case)
        if module == "protection":
            assert _outcomes(state["output"]) == _outcomes(case["output"])  # older outputs: snake_case keys
        # today's code schedules the same steps with records of the codec (camelCase keys): only the name and order
        # of a step must match a history, never its input, so the old inputs in it do not break the replay
        for action in scheduled_calls(state):
            given = json.loads(action["input"]) if isinstance(action.get("input"), str) else None
            if isinstance(given, dict) and action["functionName"] in RECORDS:
                assert not [k for k in given if "_" in k], (action["functionName"], given)
    # the teardown's inputs had camelCase keys already: its histories replay with the inputs as they were
    assert old_keys > 0 or module == "teardown", "the recorded histories hold inputs with the old keys"


def test_drill_grants_sent_before_name_the_same_roles() -> None:
    for old in RECORDED["drill_grant"]:
        read = drill_inputs.DrillGrants.from_record(old)
        assert [(g.role, g.role_definition_guid, g.scope) for g in read.grants] == [
            (g["role"], g["role_definition_guid"], g["scope"]) for g in old["grants"]]


def _old_keys(given: Any) -> bool:
    """An input (or a ``backoff_call`` child's spec around one) with a snake_case key, in it or in the records it
    holds (a drill's role grants), Azure's wire shapes and other records passed on as they are left aside."""
    if isinstance(given, list):
        return any(_old_keys(v) for v in given)
    if not isinstance(given, dict):
        return False
    return any("_" in k or (k not in WIRE and _old_keys(v)) for k, v in given.items())


def test_the_rbac_settle_inputs_sent_in_their_first_shape_read_the_same() -> None:
    # note_rbac_settle and rbac_settle_state came after the capture (45864cf) with snake_case dicts; records now
    note = inputs.RbacSettleNote.from_record({"principal_id": "p-1", "seconds": 92})
    assert note == inputs.RbacSettleNote("p-1", 92) and note.to_record() == {"principalId": "p-1", "seconds": 92}
    assert inputs.RbacSettleNote.from_record({"principal_id": "p-1", "seconds": None}).seconds is None
    assert inputs.VaultIdentity.from_record({"principal_id": "p-1"}) == inputs.VaultIdentity("p-1")
