"""Outcome names that mean one thing (issue 20 item 4): ``OptedOut`` (the opt-out tag, or a rule that opts out),
``CoveredByVm`` (a managed disk attached to a VM: the VM's backup covers it) and ``NoMatchingRule`` used to be one
``OptedOut``. Published events keep ``data.legacyStatus: "OptedOut"`` for one release, and every outcome's log line
says the status, the reason and the rule."""

from __future__ import annotations

import json

import pytest

from steward.domain import protection_flow as flow
from steward.domain import rules
from steward.domain.errors import InvalidRecord
from steward.domain.protection import OutcomeStatus, ProtectionOutcome
from steward.domain.rules import OptOut, OptOutBasis, decision_from_record
from steward.rules_file import default_rules_text, load_rules

SUB = "00000000-0000-4000-8000-000000000001"
GROUP = f"/subscriptions/{SUB}/resourceGroups/rg-app"
VM = f"{GROUP}/providers/Microsoft.Compute/virtualMachines/vm1"
DISK = f"{GROUP}/providers/Microsoft.Compute/disks/vm1_OsDisk_1"
DEFAULTS = load_rules(default_rules_text(), "default_rules.yaml")
ONLY_VMS = load_rules(
    "version: 1\nrules:\n  - name: only-vms\n    match: {types: [Microsoft.Compute/virtualMachines]}\n"
    "    protect: {vault: regional-default}\n  - name: dev-out\n    match: {tags: {env: dev}}\n"
    "    optOut: dev resources are rebuilt\n",
    "only-vms.yaml",
)


def _status(facts: dict[str, object], rule_set: rules.RuleSet) -> OutcomeStatus:
    decision = flow.decide({"location": "westeurope", "tags": {}, **facts}, rule_set)
    assert not isinstance(decision, rules.Protect), decision
    # the decision travels as an activity's JSON output: the status comes from the record the orchestrator reads
    again = decision_from_record(json.loads(json.dumps(decision.to_record())))
    assert not isinstance(again, rules.Protect)
    return flow.not_protected_status(again)


def test_each_reason_not_to_protect_has_its_own_outcome() -> None:
    tagged = {"id": VM, "type": "Microsoft.Compute/virtualMachines", "tags": {"backup-steward:opt-out": "true"}}
    attached = {"id": DISK, "type": "Microsoft.Compute/disks", "managed_by": VM}
    unmatched = {"id": DISK, "type": "Microsoft.Compute/disks"}
    by_rule = {"id": DISK, "type": "Microsoft.Compute/disks", "tags": {"env": "dev"}}
    site = {"id": f"{GROUP}/providers/Microsoft.Web/sites/web-1", "type": "Microsoft.Web/sites"}
    assert _status(tagged, DEFAULTS) is OutcomeStatus.OPTED_OUT
    assert _status(attached, DEFAULTS) is OutcomeStatus.COVERED_BY_VM
    assert _status(unmatched, ONLY_VMS) is OutcomeStatus.NO_MATCHING_RULE
    assert _status(by_rule, ONLY_VMS) is OutcomeStatus.OPTED_OUT
    assert _status(site, DEFAULTS) is OutcomeStatus.UNSUPPORTED
    assert {s.value for s in (OutcomeStatus.COVERED_BY_VM, OutcomeStatus.NO_MATCHING_RULE)} == {
        "CoveredByVm", "NoMatchingRule"}


def test_a_decision_recorded_before_the_split_still_reads_as_opted_out() -> None:
    """An orchestration started before the split replays its history: its decide_protection output has no basis,
    and it must end as it would have (OptedOut), not with a status its first run never saw."""
    old = {"kind": "opt-out", "resourceId": DISK, "reason": "attached to VM x: covered by the VM's backup",
           "rule": None}
    decision = decision_from_record(old)
    assert isinstance(decision, OptOut) and decision.basis is None
    assert flow.not_protected_status(decision) is OutcomeStatus.OPTED_OUT
    with pytest.raises(InvalidRecord):
        decision_from_record({**old, "basis": "because"})
    assert decision_from_record({**old, "basis": "covered-by-vm"}) == OptOut(
        decision.resource_id, old["reason"], None, OptOutBasis.COVERED_BY_VM)


@pytest.mark.parametrize(
    ("status", "legacy"),
    [(OutcomeStatus.COVERED_BY_VM, "OptedOut"), (OutcomeStatus.NO_MATCHING_RULE, "OptedOut"),
     (OutcomeStatus.OPTED_OUT, "OptedOut"), (OutcomeStatus.PROTECTED, None)],
)
def test_published_events_keep_the_old_name_readable(status: OutcomeStatus, legacy: str | None) -> None:
    outcome = ProtectionOutcome(status, DISK, reason="r", rule=None, correlation_id="c-1")
    data = outcome.event_data()
    assert outcome.event_type == f"BackupSteward.Protection.{status.value}"
    assert data["status"] == status.value and data.get("legacyStatus") == legacy
    assert {k: v for k, v in data.items() if k != "legacyStatus"} == outcome.to_record()


def test_the_outcome_log_line_says_status_reason_and_rule() -> None:
    line = ProtectionOutcome(OutcomeStatus.NO_VAULT, VM, reason="no Recovery Services vault in westeurope",
                             rule="default-vms").log_line()
    assert line == f"protection outcome NoVault: no Recovery Services vault in westeurope (rule default-vms) {VM}"
    bare = ProtectionOutcome(OutcomeStatus.COVERED_BY_VM, DISK, reason="attached to VM vm1").log_line()
    assert bare == f"protection outcome CoveredByVm: attached to VM vm1 (rule none) {DISK}"
