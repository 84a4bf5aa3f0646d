"""The audit against real rule sets (steward.domain.rules): the packaged defaults and custom documents."""

from __future__ import annotations

from dataclasses import replace

from steward.domain.audit import (
    EstateInventory,
    ImmutabilityState,
    RuleExpectations,
    SoftDeleteState,
    audit,
)
from steward.rules_file import default_rules_text, load_rules
from tests.unit.audit.audit_estate_builders import NOW, SUB_A, backup_vault, healthy_estate, rs_vault, vm

DEFAULTS = load_rules(default_rules_text(), "defaults")

STRICT_RULES = """
version: 1
rules:
  - name: prod-vms
    match:
      types: [Microsoft.Compute/virtualMachines]
      tags: {env: prod}
    protect:
      vault: regional-default
      policy: GoldPolicy
      rpoHours: 12
      requiredVaultSettings: {softDelete: AlwaysOn, immutability: Locked, crossRegionRestore: true}
  - name: the-rest
    match: {}
    optOut: not in scope of this test
"""


def run(estate: EstateInventory, rules_text: str | None = None) -> dict[str, list[str]]:
    rule_set = load_rules(rules_text, "test") if rules_text else DEFAULTS
    result = audit(estate, RuleExpectations(rule_set, estate.vaults), NOW)
    found: dict[str, list[str]] = {}
    for f in result.findings:
        found.setdefault(f.control_id, []).append(f.resource_id)
    return found


def test_the_healthy_estate_passes_the_default_rules() -> None:
    assert run(healthy_estate()) == {}


def test_default_rules_use_the_rule_policy_names() -> None:
    estate = healthy_estate()
    wrong = replace(
        estate.backup_instances[0],
        policy_id=estate.backup_instances[0].policy_id.replace(  # type: ignore[union-attr]
            "disk-default", "weekly"
        ),
    )
    assert run(replace(estate, backup_instances=(wrong, *estate.backup_instances[1:]))) == {
        "BKP-002": [estate.resources[1].id]
    }


def test_opt_out_tag_means_no_protection_needed() -> None:
    estate = healthy_estate()
    opted = vm("vm-scratch", **{"backup-steward:opt-out": "true"})
    assert run(replace(estate, resources=(*estate.resources, opted))) == {}


def test_a_vm_in_a_region_without_a_vault_is_unprotected_and_the_rule_has_no_target() -> None:
    estate = healthy_estate()
    far = vm("vm-far", location="eastus")
    found = run(replace(estate, resources=(*estate.resources, far)))
    assert found["BKP-001"] == [far.id]
    assert found["DRF-002"] == [f"/subscriptions/{SUB_A}"]


def test_two_untagged_vaults_in_a_region_make_the_target_ambiguous_and_the_tag_resolves_it() -> None:
    estate = healthy_estate()
    second = rs_vault("rsv-second")
    found = run(replace(estate, vaults=(*estate.vaults, second)))
    assert "DRF-002" in found and "VLT-005" in found
    tagged = replace(estate.vaults[0], tags={"backup-steward:default": "true"})
    found = run(replace(estate, vaults=(tagged, estate.vaults[1], second)))
    assert "DRF-002" not in found
    assert found == {"VLT-005": [second.id]}


def test_protection_in_a_vault_other_than_the_tagged_default_is_drift() -> None:
    estate = healthy_estate()
    default = rs_vault("rsv-default", tags={"backup-steward:default": "true"})
    found = run(replace(estate, vaults=(*estate.vaults, default)))
    assert found["DRF-001"] == [estate.resources[0].id]


def test_required_vault_settings_and_rpo_come_from_the_rule() -> None:
    estate = healthy_estate()
    prod = vm("vm1", env="prod")
    weak = replace(
        estate.vaults[0],
        soft_delete=SoftDeleteState.ON,
        immutability=ImmutabilityState.UNLOCKED,
        cross_region_restore=False,
    )
    item = estate.protected_items[0]  # DefaultPolicy, last backup 2 h ago
    found = run(
        replace(
            estate, resources=(prod, *estate.resources[1:]), vaults=(weak, backup_vault()), protected_items=(item,)
        ),
        STRICT_RULES,
    )
    assert found["BKP-002"] == [prod.id]
    assert found["VLT-001"] == found["VLT-002"] == found["VLT-003"] == [weak.id]
    # the opted-out disk/storage/postgres are protected anyway: drift
    assert len(found["DRF-001"]) == 3
    assert "BKP-005" not in found  # 2 h < 12 h


def test_audit_takes_a_rule_set_directly() -> None:
    estate = healthy_estate()
    far = vm("vm-far", location="eastus")
    more = replace(estate, resources=(*estate.resources, far))
    direct = audit(more, DEFAULTS, NOW)
    wrapped = audit(more, RuleExpectations(DEFAULTS, more.vaults), NOW)
    assert direct.to_json() == wrapped.to_json()
    assert {f.control_id for f in direct.findings} == {"BKP-001", "DRF-002"}
