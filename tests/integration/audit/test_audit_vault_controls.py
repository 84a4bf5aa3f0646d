"""Vault-setting and drift controls on a sandbox estate of their own: a vault whose immutability is only
unlocked and whose cross-region restore is off, protecting a VM the rules want in another vault."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from sandbox.arm import ArmSandbox, SandboxConfig
from sandbox.arm.config import DEFAULT_SUBSCRIPTION
from sandbox.estate import Estate
from steward.cloud.clients import CloudClients
from steward.cloud.inventory import ArmEstateReader, read_estate
from steward.domain.audit import AuditResult, ImmutabilityState, RuleExpectations, audit
from steward.rules_file import load_rules
from tests.integration.audit.audit_sandbox_estate import protect_vm

SUB = DEFAULT_SUBSCRIPTION


def rules_text(gold_vault: str, required: str) -> str:
    return f"""
version: 1
rules:
  - name: gold-vms
    match: {{types: [Microsoft.Compute/virtualMachines]}}
    protect:
      vault: {{id: "{gold_vault}", region: westeurope}}
      requiredVaultSettings: {required}
  - name: nothing-else
    match: {{}}
    optOut: out of scope here
"""


@pytest.fixture(scope="module")
def estate() -> Iterator[tuple[ArmSandbox, CloudClients, dict[str, str]]]:
    sb = ArmSandbox(SandboxConfig(scale=3600.0)).start()
    try:
        clients = CloudClients(sb.cloud_target(polling_interval=0.01))
        one = Estate(clients, SUB)
        one.resource_group("rg", "westeurope")
        ids = {
            "weak": one.recovery_services_vault("rg", "rsv-weak", "westeurope", default=False),
            "gold": one.recovery_services_vault("rg", "rsv-gold", "westeurope", default=False),
            "vm": one.vm("rg", "vm1", "westeurope"),
        }
        patch: dict[str, Any] = {
            "properties": {
                "securitySettings": {"immutabilitySettings": {"state": "Unlocked"}},
                "redundancySettings": {"crossRegionRestore": "Disabled"},
            }
        }
        from azure.mgmt.recoveryservices.models import PatchVault

        clients.recovery_services(SUB).vaults.begin_update(
            "rg", "rsv-weak", PatchVault(patch), polling_interval=0.01
        ).result()
        protect_vm(clients, ids["weak"], ids["vm"])
        sb.advance(2 * 3600)
        yield sb, clients, ids
    finally:
        sb.stop()


def run(estate: tuple[ArmSandbox, CloudClients, dict[str, str]], required: str) -> AuditResult:
    sb, clients, ids = estate
    inventory = read_estate(ArmEstateReader(clients), [SUB])
    rules = load_rules(rules_text(ids["gold"], required), "test")
    return audit(inventory, RuleExpectations(rules, inventory.vaults), sb.clock.now())


def on(result: AuditResult, resource_id: str) -> set[str]:
    return {f.control_id for f in result.findings if f.resource_id.lower() == resource_id.lower()}


def test_the_reader_sees_the_patched_settings(estate: tuple[ArmSandbox, CloudClients, dict[str, str]]) -> None:
    _, clients, ids = estate
    inventory = read_estate(ArmEstateReader(clients), [SUB])
    weak = next(v for v in inventory.vaults if v.id.lower() == ids["weak"].lower())
    assert weak.immutability is ImmutabilityState.UNLOCKED
    assert weak.cross_region_restore is False


def test_vlt002_and_vlt003_fire_when_the_rule_requires_more(
    estate: tuple[ArmSandbox, CloudClients, dict[str, str]],
) -> None:
    _, _, ids = estate
    result = run(estate, "{immutability: Locked, crossRegionRestore: true}")
    assert on(result, ids["weak"]) == {"VLT-002", "VLT-003"}


def test_vlt002_and_vlt003_are_silent_when_the_vault_meets_the_rule(
    estate: tuple[ArmSandbox, CloudClients, dict[str, str]],
) -> None:
    _, _, ids = estate
    result = run(estate, "{immutability: Unlocked}")
    assert on(result, ids["weak"]) == set()


def test_drf001_fires_for_protection_outside_the_rules_vault_and_not_for_the_rules_vault(
    estate: tuple[ArmSandbox, CloudClients, dict[str, str]],
) -> None:
    _, clients, ids = estate
    result = run(estate, "{}")
    assert on(result, ids["vm"]) == {"DRF-001"}
    assert on(result, ids["gold"]) == {"VLT-005"}
    # Protected in the rule's own vault instead: no drift.
    inventory = read_estate(ArmEstateReader(clients), [SUB])
    rules = load_rules(rules_text(ids["weak"], "{}"), "test")
    assert on(audit(inventory, RuleExpectations(rules, inventory.vaults), estate[0].clock.now()), ids["vm"]) == set()
