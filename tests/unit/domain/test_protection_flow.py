"""The pure decisions of auto-protection."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from steward.domain import protection_flow as flow
from steward.domain import rules
from steward.domain.ids import ResourceId
from steward.domain.protection import OutcomeStatus, ProtectionRef
from steward.rules_file import default_rules_text, load_rules

SUB = "00000000-0000-4000-8000-000000000001"
SUB2 = "00000000-0000-4000-8000-000000000002"
RSV = f"/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.RecoveryServices/vaults/rsv"
OTHER_RSV = f"/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.RecoveryServices/vaults/team"
BV = f"/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.DataProtection/backupVaults/bv"


def vm(group: str, name: str, sub: str = SUB) -> str:
    return f"/subscriptions/{sub}/resourceGroups/{group}/providers/Microsoft.Compute/virtualMachines/{name}"


def disk(group: str, name: str) -> str:
    return f"/subscriptions/{SUB}/resourceGroups/{group}/providers/Microsoft.Compute/disks/{name}"


DEFAULTS = load_rules(default_rules_text(), "defaults")


def decide(resource_id: str, location: str = "westeurope", tags: dict[str, str] | None = None) -> rules.Protect:
    decision = flow.decide({"id": resource_id, "location": location, "tags": tags or {},
                            "type": ResourceId.parse(resource_id).full_type}, DEFAULTS)
    assert isinstance(decision, rules.Protect)
    return decision


def test_vm_precheck_separates_already_protected_from_conflict() -> None:
    assert flow.vm_precheck({"protectionStatus": "NotProtected"}, RSV) is None
    same = flow.vm_precheck({"protectionStatus": "Protected", "vaultId": RSV.upper()}, RSV)
    assert same is not None and same.status is OutcomeStatus.ALREADY_PROTECTED
    other = flow.vm_precheck({"protectionStatus": "Protected", "vaultId": OTHER_RSV}, RSV)
    assert other is not None and other.status is OutcomeStatus.CONFLICT and OTHER_RSV in other.reason


def test_choose_keeps_the_found_vault_record_and_never_another_region() -> None:
    decision = decide(vm("app", "web"))
    tagged = {"id": RSV, "location": "westeurope", "tags": {"backup-steward:default": "true"}, "principal_id": None}
    north = {"id": OTHER_RSV, "location": "northeurope", "tags": {"backup-steward:default": "true"}}
    chosen = flow.choose(decision, [north, tagged])
    assert chosen.vault == tagged
    nothing = flow.choose(decision, [north])
    assert nothing.vault is None and nothing.status is OutcomeStatus.NO_VAULT


def test_disk_role_grants_are_scoped_to_the_disk_and_its_snapshot_group() -> None:
    rid = disk("data", "d1")
    grants = flow.role_grants(decide(rid), {"id": rid, "location": "westeurope"}, {"id": BV, "principal_id": "p"})
    scopes = {g.role: g.scope for g in grants}
    assert scopes == {
        "Disk Backup Reader": rid,
        "Disk Snapshot Contributor": f"/subscriptions/{SUB}/resourceGroups/data",
    }


def test_backup_instance_body_follows_the_spec_shape_for_disks() -> None:
    rid = disk("data", "d1")
    body = flow.backup_instance_body({"id": rid, "location": "westeurope"}, decide(rid), "/policy/id")
    props = body["properties"]
    assert props["objectType"] == "BackupInstance"
    assert props["dataSourceInfo"]["datasourceType"] == "Microsoft.Compute/disks"
    assert props["dataSourceInfo"]["resourceID"] == rid
    params = props["policyInfo"]["policyParameters"]["dataStoreParametersList"][0]
    assert params["dataStoreType"] == "OperationalStore"
    assert params["resourceGroupId"] == f"/subscriptions/{SUB}/resourceGroups/data"


def test_enable_results_map_conflict_codes_to_conflicts() -> None:
    intent = {"resourceId": disk("a", "b"), "origin": {"correlationId": "c"}}
    conflict = flow.outcome_of_enable(intent, {"ok": False, "code": "UserErrorDppDatasourceAlreadyProtected",
                                               "message": "m"}, {"vault_id": BV})
    assert conflict.status is OutcomeStatus.CONFLICT and conflict.correlation_id == "c"
    failed = flow.outcome_of_enable(intent, {"ok": False, "code": "UserErrorMissingRequiredPermissions",
                                             "message": "m"}, {})
    assert failed.status is OutcomeStatus.FAILED
    done = flow.outcome_of_enable(intent, {"ok": True, "instance": {"id": "x"}, "created": False}, {})
    assert done.status is OutcomeStatus.ALREADY_PROTECTED


def ref(source: str, item: str = "item") -> ProtectionRef:
    item_id = f"{RSV}/backupFabrics/Azure/protectionContainers/c/protectedItems/{item}"
    return ProtectionRef(vault_id=RSV, item_id=item_id, source_id=source, state="Protected")


def test_a_moved_vm_is_matched_by_type_and_name_to_the_one_unprotected_candidate() -> None:
    old = ref(vm("a", "web"))
    candidates = [{"id": vm("b", "web")}, {"id": disk("b", "web")}, {"id": vm("b", "api")}]
    matches, unmatched = flow.match_moves([old], candidates, [old])
    assert [m.new_resource_id for m in matches] == [vm("b", "web")] and not unmatched


def test_two_candidates_or_an_already_protected_one_is_never_guessed() -> None:
    old = ref(vm("a", "web"))
    two = [{"id": vm("b", "web")}, {"id": vm("c", "web", SUB2)}]
    assert flow.match_moves([old], two, [old]) == ([], [old])
    protected_elsewhere = ref(vm("b", "web"), "other")
    assert flow.match_moves([old], [{"id": vm("b", "web")}], [old, protected_elsewhere]) == ([], [old])


def test_moved_out_keeps_only_protections_whose_source_left_the_group() -> None:
    stay, gone = ref(vm("a", "stay")), ref(vm("a", "gone"))
    assert flow.moved_out([stay, gone], [{"id": vm("a", "stay").upper().replace("SUBSCRIPTIONS", "subscriptions")}]) \
        == [gone]


def test_tenant_flags_name_vaults_whose_identity_left_with_another_tenant() -> None:
    vaults = [{"id": RSV, "tenant_id": "t-old"}, {"id": BV, "tenant_id": "t-new"}]
    flags = flow.tenant_flags(vaults, {SUB: "t-new"})
    assert [f.resource_id for f in flags] == [RSV]
    assert flags[0].status is OutcomeStatus.VAULT_TENANT_CHANGED and "role assignments" in flags[0].reason


names = st.text(alphabet="abcdefgh", min_size=1, max_size=4)


@given(st.lists(st.tuples(st.sampled_from(["a", "b", "c"]), names), min_size=1, max_size=6, unique=True),
       st.lists(st.tuples(st.sampled_from(["b", "c", "d"]), names), max_size=8, unique=True))
def test_matches_only_pair_same_type_and_name_and_never_reuse_a_protected_resource(
    old: list[tuple[str, str]], found: list[tuple[str, str]]
) -> None:
    protections = [ref(vm(g, n), f"{g}-{n}") for g, n in old]
    candidates = [{"id": vm(g, n)} for g, n in found]
    matches, unmatched = flow.match_moves(protections, candidates, protections)
    protected_ids = {ResourceId.parse(p.source_id) for p in protections}
    assert len(matches) + len(unmatched) == len(protections)
    for match in matches:
        new, previous = ResourceId.parse(match.new_resource_id), ResourceId.parse(match.old.source_id)
        assert new.name.lower() == previous.name.lower() and new.type_key == previous.type_key
        assert new not in protected_ids


def test_a_disk_attached_to_a_vm_is_left_to_the_vms_backup() -> None:
    rid = disk("app", "vm1_OsDisk_1")
    decision = flow.decide({"id": rid, "location": "westeurope", "tags": {}, "type": "Microsoft.Compute/disks",
                            "managed_by": vm("app", "vm1")}, DEFAULTS)
    assert isinstance(decision, rules.OptOut) and "covered by the VM's backup" in decision.reason
    assert isinstance(flow.decide({"id": rid, "location": "westeurope", "tags": {}}, DEFAULTS), rules.Protect)


def test_the_audit_expects_what_protection_does_for_attached_disks() -> None:
    from steward.domain.audit import ProtectableResource, RuleExpectations

    expectations = RuleExpectations(DEFAULTS, [])
    attached = ProtectableResource(disk("app", "os"), "Microsoft.Compute/disks", "westeurope", {},
                                   attached_to=vm("app", "vm1"))
    detached = ProtectableResource(disk("app", "data"), "Microsoft.Compute/disks", "westeurope", {})
    assert not expectations.expect(attached).must_protect
    assert expectations.expect(detached).must_protect


def test_vm_protection_is_verified_only_when_the_operation_succeeded_and_the_item_protects() -> None:
    intent = {"resourceId": vm("app", "vm1"), "origin": {"correlationId": "c"}}
    common = {"vault_id": RSV, "policy": "DefaultPolicy", "rule": "virtual-machines"}
    item = {"id": f"{RSV}/x", "properties": {"protectionState": "IRPending"}}
    assert flow.vm_operation_verdict(intent, {"status": "InProgress", "item": item}, common) is None
    done = flow.vm_operation_verdict(intent, {"status": "Succeeded", "item": item}, common)
    assert done is not None and done.status is OutcomeStatus.PROTECTED and done.item_id == f"{RSV}/x"
    failed = flow.vm_operation_verdict(
        intent, {"status": "Failed", "error": {"code": "InternalServerError", "message": "boom"}}, common)
    assert failed is not None and failed.status is OutcomeStatus.FAILED and "InternalServerError" in failed.reason
    vanished = flow.vm_operation_verdict(intent, {"status": "Succeeded", "item": None}, common)
    assert vanished is not None and vanished.status is OutcomeStatus.FAILED


def test_only_an_operation_azure_failed_on_its_own_side_is_started_again() -> None:
    assert flow.retry_operation({"status": "Failed", "error": {"code": "InternalServerError"}})
    refused = {"status": "Failed", "error": {"code": "BMSUserErrorProtectableItemAlreadyProtected"}}
    assert not flow.retry_operation(refused)
    assert not flow.retry_operation({"status": "Succeeded"})


# ---- issue #13: readiness, VM discovery, RBAC propagation ------------------------------------------------------


def test_readiness_waits_while_provisioning_and_refuses_a_failed_create() -> None:
    assert flow.readiness({"provisioning_state": "Succeeded"}).ready
    assert flow.readiness({"provisioning_state": ""}).ready  # types without a provisioningState
    for state in ("Creating", "Updating", "ResolvingDNS", "Deleting"):
        assert flow.readiness({"provisioning_state": state}).wait, state
    failed = flow.readiness({"provisioning_state": "Failed"})
    assert not failed.ready and not failed.wait and failed.verdict is not None
    assert failed.verdict.status is OutcomeStatus.FAILED
    assert "provisioningState Failed" in failed.verdict.reason


def test_only_refusals_naming_an_unknown_item_start_a_discovery_and_it_is_bounded() -> None:
    assert flow.undiscovered({"ok": False, "code": "BMSUserErrorInvalidConfigureProtectionRequest"})
    assert not flow.undiscovered({"ok": False, "code": "BMSUserErrorProtectableItemAlreadyProtected"})
    assert not flow.undiscovered({"ok": True})
    waits = [flow.discovery_wait(n) for n in range(flow.VM_DISCOVERY_REFRESHES + 1)]
    assert waits[-1] is None and all(w is not None for w in waits[:-1])
    assert "2 refresh" in flow.discovery_failed("put", {"code": "X", "message": "m"}, 2)


def test_rbac_waits_back_off_until_a_deadline_of_at_least_fifteen_minutes() -> None:
    assert flow.awaiting_rbac({"ok": False, "code": "UserErrorMissingRequiredPermissions"})
    assert not flow.awaiting_rbac({"ok": False, "code": "UserErrorDppDatasourceAlreadyProtected"})
    waited, attempt, waits = 0.0, 0, []
    while (wait := flow.rbac_wait(attempt, waited)) is not None:
        waits.append(wait)
        waited += wait
        attempt += 1
    assert waited >= 15 * 60
    assert waits == sorted(waits)
    assert "waiting 30 minutes" in flow.rbac_gave_up({"code": "c", "message": "m"}, 1800)["message"]


def test_a_backup_instance_in_a_failed_state_is_no_protection() -> None:
    def instance(status: str, current: str, error: dict[str, str] | None = None) -> dict[str, object]:
        details = {"errorDetails": error} if error else {}
        return {"properties": {"protectionStatus": {"status": status, **details}, "currentProtectionState": current}}

    assert flow.instance_failure(None) is None
    assert flow.instance_failure(instance("ProtectionConfigured", "ProtectionConfigured")) is None
    assert flow.instance_failure(instance("ConfiguringProtection", "ConfiguringProtection")) is None
    failed = flow.instance_failure(instance("ConfiguringProtectionFailed", "ConfiguringProtectionFailed",
                                            {"code": "UserErrorX", "message": "no"}))
    assert failed == {"state": "ConfiguringProtectionFailed", "code": "UserErrorX", "message": "no"}
    # ProtectionError is a CurrentProtectionState; the Status enum lacks it, yet clients read it there too
    error = flow.instance_failure({"properties": {"currentProtectionState": "protectionerror",
                                                  "protectionErrorDetails": {"code": "E", "message": "m"}}})
    assert error == {"state": "protectionerror", "code": "E", "message": "m"}
    assert flow.failure_text(error) == "protectionerror (E: m)"


def test_reconfigured_outcomes_say_what_failed_and_how_often() -> None:
    intent = {"resourceId": disk("rg", "d1")}
    common = {"vault_id": BV, "policy": "p", "rule": "r"}
    failure = {"state": "ConfiguringProtectionFailed", "code": "E", "message": "m"}
    ok = flow.outcome_of_enable(intent, {"ok": True, "instance": {"id": "x"}, "created": True}, common)
    assert flow.reconfigured(ok, []) is ok
    done = flow.reconfigured(ok, [failure])
    assert done.status is OutcomeStatus.PROTECTED
    assert "ConfiguringProtectionFailed (E: m)" in done.reason and "1 time(s)" in done.reason
    assert done.details["reconfigured"] == [failure]
    refused = flow.outcome_of_enable(intent, {"ok": False, "code": flow.CONFIGURATION_FAILED, "message": "x"},
                                     common)
    failed = flow.reconfigured(refused, [failure, failure])
    assert failed.status is OutcomeStatus.FAILED
    assert failed.reason.startswith(f"{flow.CONFIGURATION_FAILED}: x - after 2 failed configuration(s)")
    assert flow.configuration_failed({"ok": False, "code": flow.CONFIGURATION_FAILED})
    assert not flow.configuration_failed({"ok": True, "code": flow.CONFIGURATION_FAILED})


def test_an_operation_runs_until_one_of_arms_three_terminal_statuses_in_any_case() -> None:
    """ARM: "Succeeded | Failed | Canceled | {resource provider values}" (async-operations.md); Data Protection
    spells its running state "Inprogress" (backup-azure-dataprotection-use-rest-api-backup-disks.md)."""
    for running in ("InProgress", "Inprogress", "inprogress", "Running", "Accepted", "NotStarted", "Provisioning", ""):
        assert flow.operation_running(running), running
    for ended, spelled in (("Succeeded", "Succeeded"), ("succeeded", "Succeeded"), ("FAILED", "Failed"),
                           ("Canceled", "Canceled"), ("Cancelled", "Canceled")):
        assert not flow.operation_running(ended) and flow.operation_status(ended) == spelled
    assert flow.operation_status("Inprogress") == "Inprogress"
    intent = {"resourceId": vm("app", "vm1"), "origin": {"correlationId": "c"}}
    common = {"vault_id": RSV, "policy": "DefaultPolicy", "rule": "virtual-machines"}
    item = {"id": f"{RSV}/x", "properties": {"protectionState": "IRPending"}}
    assert flow.vm_operation_verdict(intent, {"status": "Inprogress", "item": item}, common) is None
    done = flow.vm_operation_verdict(intent, {"status": "succeeded", "item": item}, common)
    assert done is not None and done.status is OutcomeStatus.PROTECTED


@pytest.mark.parametrize(
    ("state", "code", "remedy"),
    [
        ("ProtectionError", "UserErrorBackupConfigurationFailed", flow.REMEDY_SYNC),  # Azure Service Operator's case
        ("protectionerror", "usererrorx", flow.REMEDY_SYNC),  # case-insensitive enums and codes
        ("ProtectionError", "InternalError", flow.REMEDY_PUT),  # not a user error: nothing documents a sync
        ("ProtectionError", "", flow.REMEDY_PUT),
        ("ConfiguringProtectionFailed", "UserErrorBackupConfigurationFailed", flow.REMEDY_PUT),  # terminal for ASO
    ],
)
def test_the_remedy_is_azures_sync_only_for_a_protection_error_with_a_user_error(
    state: str, code: str, remedy: str
) -> None:
    assert flow.remedy_for({"state": state, "code": code, "message": "m"}) == remedy


def test_reconfigured_outcomes_say_when_azure_synced_the_instance() -> None:
    intent = {"resourceId": disk("rg", "d1")}
    common = {"vault_id": BV, "policy": "p", "rule": "r"}
    failure = {"state": "ProtectionError", "code": "UserErrorX", "message": "m"}
    ok = flow.outcome_of_enable(intent, {"ok": True, "instance": {"id": "x"}, "created": False}, common)
    synced = flow.reconfigured(ok, [failure], [flow.REMEDY_SYNC])
    assert synced.status is OutcomeStatus.PROTECTED
    assert "synced by Azure (POST .../sync) 1 time(s): now protected" in synced.reason
    assert synced.details["remedies"] == ["sync"] and synced.details["reconfigured"] == [failure]
    mixed = flow.reconfigured(ok, [failure, failure], [flow.REMEDY_PUT, flow.REMEDY_SYNC])
    assert "synced by Azure (POST .../sync) or validated and PUT again 2 time(s)" in mixed.reason
    assert "remedies" not in flow.reconfigured(ok, [failure], [flow.REMEDY_PUT]).details
