"""Vault sets (issue 19 item 1): the rules' ``vaultSet`` target and the pure choice among a set's vaults."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from steward.domain.ids import ResourceId
from steward.domain.kernel import VaultKind
from steward.domain.rules import (
    InvalidRules,
    NoVault,
    Protect,
    VaultChosen,
    VaultSet,
    choose_vault,
    decision_from_record,
    route,
    set_members,
)
from steward.domain.rules.vault_sets import (
    RS_DATASOURCE_LIMIT,
    RS_VM_LIMIT,
    Member,
    SetChosen,
    SetNeedsVault,
    VaultLoad,
    capacity_refusal,
    choose_in_set,
    next_vault,
    room,
)
from steward.rules_file import load_rules
from tests.unit.domain.test_rules import SUB, VM_TYPE, facts, vault

RSV = "Microsoft.RecoveryServices/vaults"
RULES = f"""
version: 1
rules:
  - name: vms
    match: {{types: [{VM_TYPE}]}}
    protect:
      vault: {{vaultSet: {{namePrefix: rsv-weu-}}}}
  - name: disks
    match: {{types: [Microsoft.Compute/disks]}}
    protect:
      vault: {{vaultSet: {{tag: {{name: backup-set, value: disks}}}}}}
"""


def rs_set(prefix: str = "rsv-weu-", fill: int = 90) -> VaultSet:
    return VaultSet(VaultKind.RECOVERY_SERVICES, SUB, "westeurope", name_prefix=prefix, fill_percent=fill)


def member(name: str, vms: int = 0, items: int | None = None, group: str = "rg-backup") -> Member:
    rid = ResourceId.parse(f"/subscriptions/{SUB}/resourceGroups/{group}/providers/{RSV}/{name}")
    return Member(rid, VaultLoad(vms if items is None else items, vms))


def test_a_rule_names_a_vault_set_by_prefix_or_tag_and_the_decision_carries_the_fill_threshold() -> None:
    rules = load_rules(RULES, "sets.yaml", vault_fill_percent=75)
    vm = route(facts(VM_TYPE, "vm1"), rules)
    assert isinstance(vm, Protect) and vm.vault == VaultSet(
        VaultKind.RECOVERY_SERVICES, SUB, "westeurope", name_prefix="rsv-weu-", fill_percent=75)
    disk = route(facts("Microsoft.Compute/disks", "d1"), rules)
    assert isinstance(disk, Protect) and isinstance(disk.vault, VaultSet)
    assert (disk.vault.vault_kind, disk.vault.tag_name, disk.vault.tag_value) == (VaultKind.BACKUP, "backup-set",
                                                                                  "disks")
    assert decision_from_record(vm.to_record()) == vm  # the decision crosses the durable boundary unchanged
    assert vm.to_record()["vault"]["kind"] == "vault-set"


@pytest.mark.parametrize("target", [
    "{vaultSet: {}}",
    "{vaultSet: {namePrefix: rsv-, tag: {name: a, value: b}}}",
    "{vaultSet: {namePrefix: 9rsv}}",
    "{vaultSet: {tag: {name: a}}}",
])
def test_a_vault_set_names_exactly_one_of_a_prefix_or_a_tag(target: str) -> None:
    text = f"version: 1\nrules:\n  - name: r\n    protect:\n      vault: {target}\n"
    with pytest.raises(InvalidRules) as caught:
        load_rules(text, "bad.yaml")
    assert any("vault" in p.field for p in caught.value.problems)


def test_members_are_the_sets_vaults_of_the_kind_region_and_subscription() -> None:
    rules = load_rules(RULES, "sets.yaml")
    decision = route(facts(VM_TYPE, "vm1"), rules)
    assert isinstance(decision, Protect)
    found = [vault(VaultKind.RECOVERY_SERVICES, "rsv-weu-01"), vault(VaultKind.RECOVERY_SERVICES, "RSV-WEU-02"),
             vault(VaultKind.RECOVERY_SERVICES, "rsv-neu-01"), vault(VaultKind.RECOVERY_SERVICES, "rsv-weu-x",
                                                                     location="northeurope"),
             vault(VaultKind.BACKUP, "rsv-weu-bv")]
    assert [c.id.name for c in set_members(decision, found)] == ["rsv-weu-01", "RSV-WEU-02"]
    tagged = route(facts("Microsoft.Compute/disks", "d1"), rules)
    assert isinstance(tagged, Protect)
    bvs = [vault(VaultKind.BACKUP, "bv-a", **{"Backup-Set": "disks"}), vault(VaultKind.BACKUP, "bv-b")]
    assert [c.id.name for c in set_members(tagged, bvs)] == ["bv-a"]
    # without loads (the audit), the set's first member stands for it; none is NoVault
    assert isinstance(choose_vault(decision, found), VaultChosen)
    assert isinstance(choose_vault(decision, []), NoVault)


def test_the_member_with_the_most_room_is_chosen_and_full_ones_are_passed_over() -> None:
    chosen = choose_in_set(rs_set(), [member("rsv-weu-01", 500), member("rsv-weu-02", 200), member("rsv-weu-03", 899)])
    assert isinstance(chosen, SetChosen) and chosen.vault_id.name == "rsv-weu-02"
    # at 90 % (900 of 1,000 VMs) a member is passed over even when it has the most room left of the rest
    chosen = choose_in_set(rs_set(), [member("rsv-weu-01", 900), member("rsv-weu-02", 899)])
    assert isinstance(chosen, SetChosen) and chosen.vault_id.name == "rsv-weu-02"
    # the datasource limit counts too: 950 items of other workloads leave room for 1,050, not 1,000
    assert room(VaultKind.RECOVERY_SERVICES, VaultLoad(items=1950, vms=0)) == 50


def test_past_the_threshold_the_set_needs_its_next_vault_with_a_fallback_below_the_limit() -> None:
    needs = choose_in_set(rs_set(), [member("rsv-weu-01", 950), member("rsv-weu-02", 999)])
    assert isinstance(needs, SetNeedsVault)
    assert needs.create.name == "rsv-weu-03" and needs.create.resource_group == "rg-backup"
    assert needs.fallback is not None and needs.fallback.name == "rsv-weu-01"
    full = choose_in_set(rs_set(), [member("rsv-weu-01", RS_VM_LIMIT), member("rsv-weu-02", 1, RS_DATASOURCE_LIMIT)])
    assert isinstance(full, SetNeedsVault) and full.fallback is None
    empty = choose_in_set(rs_set(), [])
    assert isinstance(empty, SetNeedsVault) and empty.create.name == "rsv-weu-01"
    assert empty.create.resource_group == "rg-backup-steward-westeurope" and "has no vault yet" in empty.reason


def test_a_vault_azure_refused_as_full_is_left_out_whatever_the_stale_count_says() -> None:
    members = [member("rsv-weu-01", 10), member("rsv-weu-02", 20)]
    first = choose_in_set(rs_set(), members)
    assert isinstance(first, SetChosen)
    again = choose_in_set(rs_set(), members, refused=[first.vault_id])
    assert isinstance(again, SetChosen) and again.vault_id.name == "rsv-weu-02"
    last = choose_in_set(rs_set(), members, refused=[m.id for m in members])
    assert isinstance(last, SetNeedsVault) and last.fallback is None and "refused" in last.reason


def test_next_vault_names_skip_taken_ones_and_tag_sets_carry_their_tag() -> None:
    assert next_vault(rs_set(), [member("rsv-weu-02").id]).name == "rsv-weu-03"
    assert next_vault(rs_set(), [member("rsv-weu-01").id, member("rsv-weu-03").id]).name == "rsv-weu-04"
    tag_set = VaultSet(VaultKind.BACKUP, SUB, "westeurope", tag_name="backup-set", tag_value="Prod Disks")
    made = next_vault(tag_set, [])
    assert made.name == "bv-prod-disks-westeurope-01"
    assert made.tags == {"backup-steward:created-by": "backup-steward", "backup-set": "Prod Disks"}


def test_capacity_refusals_are_told_by_code_never_by_message() -> None:
    assert capacity_refusal("BMSUserErrorVaultVMLimitReached")
    assert capacity_refusal("SomeOtherQuotaExceeded")
    assert not capacity_refusal("BMSUserErrorProtectableItemAlreadyProtected")
    # limits that are no vault's capacity (review): Azure Backup's block on repeated attempts (azure-cli#32441) and
    # a VM's restore point collection limit; another member would not help
    assert not capacity_refusal("CloudDosTimeboudLimitReached")
    assert not capacity_refusal("UserErrorRpCollectionLimitReached")
    assert not capacity_refusal(None) and not capacity_refusal("")


loads = st.lists(st.tuples(st.integers(0, RS_VM_LIMIT), st.integers(0, 1200)), min_size=0, max_size=6)


@settings(max_examples=200, deadline=None)
@given(loads, st.integers(1, 100), st.data())
def test_the_choice_is_deterministic_never_refused_never_full_and_has_the_most_room(
    found: list[tuple[int, int]], fill: int, data: st.DataObject
) -> None:
    members = [member(f"rsv-weu-{i:02d}", vms, vms + extra) for i, (vms, extra) in enumerate(found)]
    refused = data.draw(st.lists(st.sampled_from([m.id for m in members]), unique=True) if members else st.just([]))
    target = rs_set(fill=fill)
    choice = choose_in_set(target, members, refused)
    shuffled = data.draw(st.permutations(members))
    assert choose_in_set(target, shuffled, refused) == choice
    rooms = {m.id: room(VaultKind.RECOVERY_SERVICES, m.load or VaultLoad()) for m in members}
    if isinstance(choice, SetChosen):
        assert choice.vault_id not in refused and rooms[choice.vault_id] > 0
        below = [m.id for m in members if m.id not in refused and rooms[m.id] > 0
                 and 100 * max((m.load or VaultLoad()).vms / RS_VM_LIMIT,
                               (m.load or VaultLoad()).items / RS_DATASOURCE_LIMIT) < fill]
        assert rooms[choice.vault_id] == max(rooms[i] for i in below)
    else:
        assert choice.fallback is None or (choice.fallback not in refused and rooms[choice.fallback] > 0)
        assert choice.create.name.lower() not in {m.id.name.lower() for m in members}


def test_candidates_of_a_backup_vault_set_spread_by_fewest_instances() -> None:
    target = VaultSet(VaultKind.BACKUP, SUB, "westeurope", name_prefix="bv-")
    bvs = [Member(vault(VaultKind.BACKUP, name).id, VaultLoad(items=n)) for name, n in (("bv-1", 40), ("bv-2", 7))]
    chosen = choose_in_set(target, bvs)
    assert isinstance(chosen, SetChosen) and chosen.vault_id.name == "bv-2" and "no published limit" in chosen.reason
