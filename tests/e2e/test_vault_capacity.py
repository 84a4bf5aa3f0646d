"""Vaults fill up (issue 19 item 1), end to end on the local host: the sandbox enforces Azure's per-vault limits
(lowered here: a vault of 2 VMs stands for one of 1,000) and the real app meets them."""

from __future__ import annotations

from pathlib import Path

from sandbox.arm.providers import recoveryservices_errors as err
from sandbox.arm.providers.recoveryservices import recovery_services
from sandbox.arm.providers.recoveryservices_model import VaultLimits, default_policies
from steward.cloud.protection import RecoveryServicesProtection
from tests.e2e.conftest import SUB1, Harness, start_harness

WEU = "westeurope"


def _small_vaults(h: Harness, vms: int) -> None:
    recovery_services(h.sandbox).model.limits = VaultLimits(vms=vms)


def test_a_regions_default_vault_takes_vms_until_azure_refuses_then_protection_fails(harness: Harness) -> None:
    """A rule naming one vault (here the regional default) behaves as before vault sets: the vault takes VMs until
    Azure refuses, and the refused VM's outcome is Failed with Azure's code; nothing spills anywhere else."""
    h = harness
    _small_vaults(h, 2)
    est = h.estate()
    est.resource_group("rg-app", WEU)
    rsv = est.recovery_services_vault("rg-app", "rsv-weu", WEU)
    spare = est.recovery_services_vault("rg-app", "rsv-spare", WEU, default=False)
    first = [est.vm("rg-app", f"vm-{n}", WEU) for n in (1, 2)]
    for vm in first:
        h.wait_outcome(vm, "Protected")
    third = est.vm("rg-app", "vm-3", WEU)
    outcome = h.wait_outcome(third, "Failed", timeout=60)
    assert err.VAULT_VM_LIMIT.code in outcome["reason"]
    assert outcome["vaultId"].lower() == rsv.lower()
    rs = RecoveryServicesProtection(h.clients)
    assert len(rs.vm_items(rsv)) == 2
    assert rs.vm_items(spare) == []  # a rule naming one vault never spills


SET_RULES = """
version: 1
rules:
  - name: vms
    match: {types: [Microsoft.Compute/virtualMachines]}
    protect:
      vault: {vaultSet: {namePrefix: rsv-weu-}}
      policy: DefaultPolicy
"""


def _set_harness(tmp_path: Path, **settings: str) -> Harness:
    return start_harness(tmp_path, settings={"STEWARD_RULES": SET_RULES, **settings})


def test_a_vault_set_past_its_threshold_grows_by_a_vault_with_the_same_secure_defaults(tmp_path: Path) -> None:
    h = _set_harness(tmp_path, STEWARD_AUTO_CREATE_VAULTS="true")
    try:
        est = h.estate()
        est.resource_group("rg-backup", WEU)
        first = est.recovery_services_vault("rg-backup", "rsv-weu-01", WEU, default=False)
        # 900 of Azure's 1,000 VMs: at the default threshold of 90 % the set moves on
        recovery_services(h.sandbox).model.seed_vm_items(first, 900, prefix="old")
        est.resource_group("rg-app", WEU)
        vm = est.vm("rg-app", "vm-new", WEU)
        outcome = h.wait_outcome(vm, "Protected", timeout=60)
        vault = h.clients.recovery_services(SUB1).vaults.get(resource_group_name="rg-backup", vault_name="rsv-weu-02")
        assert outcome["vaultId"].lower() == vault.id.lower()
        soft_delete = vault.properties.security_settings.soft_delete_settings
        assert soft_delete.soft_delete_state == "Enabled" and soft_delete.enhanced_security_state == "Enabled"
        assert vault.identity.type == "SystemAssigned" and vault.location == WEU
        assert vault.tags == {"backup-steward:created-by": "backup-steward"}  # never the regional default's tag
        assert len(RecoveryServicesProtection(h.clients).vm_items(first)) == 900
    finally:
        h.stack.stop()


def test_two_protections_racing_for_a_sets_last_slot_do_not_both_take_it(tmp_path: Path) -> None:
    """Both vaults of the set have one slot left (999 of 1,000 VMs, past the threshold; the set may not grow) and two
    VMs arrive at once. Before the reservations both chose the same member (equal counts, ties by name) and Azure
    refused the second PUT as the vault was full, that protection then taking the other member's slot; now the
    first reservation holds the slot and the second protection reserves the other member's. No vault ends above
    its limit."""
    h = _set_harness(tmp_path)
    try:
        est = h.estate()
        est.resource_group("rg-backup", WEU)
        members = [est.recovery_services_vault("rg-backup", f"rsv-weu-0{n}", WEU, default=False) for n in (1, 2)]
        model = recovery_services(h.sandbox).model
        for n, vault_id in enumerate(members):
            model.seed_vm_items(vault_id, 999, prefix=f"old{n}")
        est.resource_group("rg-app", WEU)
        vms = [est.vm("rg-app", f"vm-race-{n}", WEU) for n in (1, 2)]
        outcomes = [h.wait_outcome(vm, timeout=90) for vm in vms]
        assert [o["status"] for o in outcomes] == ["Protected", "Protected"], outcomes
        assert {o["vaultId"].lower() for o in outcomes} == {m.lower() for m in members}
        rs = RecoveryServicesProtection(h.clients)
        assert [len(rs.vm_items(m)) for m in members] == [1000, 1000]
        # before the reservations the loser's PUT was refused (1 in each of 3 runs at load ~3): none now
        assert h.sandbox.counters.get("write", 400) == 0
    finally:
        h.stack.stop()


def test_a_burst_against_a_set_near_its_threshold_never_fills_a_member_past_it(tmp_path: Path) -> None:
    """Issue 19: the 2,500-VM benchmark filled members to 100 % at a 90 % threshold, as hundreds of protections in
    flight chose from the same counts. The member below the threshold has 15 slots left (885 of Azure's 1,000 VMs)
    and 30 VMs arrive at once on two app instances: each choice is reserved in the set's ledger in the same
    conditional write, so the member ends at exactly 900 (the threshold; no bound beyond it, since no VM is
    protected in the set outside the app) and the other 15 go to the vault the set grows by. Before the
    reservations the member ended past 900 (914 and 919 in two runs with 40 VMs and 20 slots, at load ~30)."""
    # Azure time at 60x real (not 600x): at load ~35 the burst took 6 Azure hours at 600x, the lifetime of a
    # reservation no listing shows yet (vault_sets.RESERVATION_TTL)
    h = start_harness(tmp_path, settings={"STEWARD_RULES": SET_RULES, "STEWARD_AUTO_CREATE_VAULTS": "true"},
                      instances=2, scale=60.0)
    try:
        est = h.estate()
        est.resource_group("rg-backup", WEU)
        first = est.recovery_services_vault("rg-backup", "rsv-weu-01", WEU, default=False)
        recovery_services(h.sandbox).model.seed_vm_items(first, 885, prefix="old")
        est.resource_group("rg-app", WEU)
        vms = [est.vm("rg-app", f"vm-burst-{n:02d}", WEU) for n in range(30)]
        outcomes = [h.wait_outcome(vm, timeout=180) for vm in vms]
        assert [o["status"] for o in outcomes] == ["Protected"] * 30, [o["reason"] for o in outcomes]
        rs = RecoveryServicesProtection(h.clients)
        second = h.clients.recovery_services(SUB1).vaults.get(resource_group_name="rg-backup",
                                                               vault_name="rsv-weu-02").id
        assert (len(rs.vm_items(first)), len(rs.vm_items(second))) == (900, 15)
        assert sorted(o["vaultId"].lower() for o in outcomes).count(first.lower()) == 15
        assert h.sandbox.counters.get("write", 400) == 0  # no PUT refused as the vault was full
    finally:
        h.stack.stop()


POLICY_RULES = SET_RULES.replace("policy: DefaultPolicy", "policy: vm-daily-30")


def test_a_set_grown_by_a_vault_copies_the_rules_policy_into_it_and_the_vm_is_protected_under_it(
    tmp_path: Path,
) -> None:
    """A new vault holds only Azure's DefaultPolicy and EnhancedPolicy: the rule's own policy is copied from the member
    that has it (one GET there, one PUT into the new vault, read-only fields left out), then the VM is protected
    under it. Before the copy the VM ended Failed with PolicyNotFound in the new vault."""
    h = start_harness(tmp_path, settings={"STEWARD_RULES": POLICY_RULES, "STEWARD_AUTO_CREATE_VAULTS": "true"})
    try:
        est = h.estate()
        est.resource_group("rg-backup", WEU)
        first = est.recovery_services_vault("rg-backup", "rsv-weu-01", WEU, default=False)
        model = recovery_services(h.sandbox).model
        daily = next(p for p in default_policies(first) if p.name == "DefaultPolicy").properties
        retention = {**daily["retentionPolicy"], "dailySchedule": {
            **daily["retentionPolicy"]["dailySchedule"], "retentionDuration": {"count": 30, "durationType": "Days"}}}
        model.put_policy(first, "vm-daily-30", {"properties": {**daily, "retentionPolicy": retention,
                                                              "instantRpRetentionRangeInDays": 5}})
        model.seed_vm_items(first, 900, prefix="old")  # past the set's threshold of 90 %
        est.resource_group("rg-app", WEU)
        vm = est.vm("rg-app", "vm-new", WEU)
        outcome = h.wait_outcome(vm, "Protected", timeout=60)
        made = h.clients.recovery_services(SUB1).vaults.get(resource_group_name="rg-backup", vault_name="rsv-weu-02")
        assert outcome["vaultId"].lower() == made.id.lower()
        rs = RecoveryServicesProtection(h.clients)
        items = rs.vm_items(made.id)
        assert len(items) == 1
        assert items[0]["properties"]["policyId"].lower() == f"{made.id}/backupPolicies/vm-daily-30".lower()
        copied = rs.policy(made.id, "vm-daily-30")
        assert copied is not None
        assert copied["properties"]["instantRpRetentionRangeInDays"] == 5
        assert copied["properties"]["retentionPolicy"] == retention
        assert copied["properties"]["protectedItemsCount"] == 1  # Azure's count in the new vault, not the source's
        assert rs.policy(first, "vm-daily-30") is not None  # the source is left as it was
    finally:
        h.stack.stop()
