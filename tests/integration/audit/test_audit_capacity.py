"""The audit's capacity controls on a sandbox estate (issue 19): CAP-001 from the VM items a vault lists, CAP-002
from the subscription's activity log (the policy writes of the last 24 hours), read through the ARM inventory."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest

from sandbox.arm import ArmSandbox, SandboxConfig
from sandbox.arm.config import DEFAULT_SUBSCRIPTION
from sandbox.arm.providers.recoveryservices import recovery_services
from sandbox.estate import Estate
from steward.cloud.clients import CloudClients
from steward.cloud.inventory import ArmEstateReader, read_estate
from steward.domain.audit import audit
from steward.rules_file import default_rules_text, load_rules

SUB = DEFAULT_SUBSCRIPTION
POLICY = {"properties": {"backupManagementType": "AzureWorkload", "workLoadType": "SQLDataBase"}}


@pytest.fixture(scope="module")
def estate() -> Iterator[tuple[ArmSandbox, CloudClients, dict[str, str]]]:
    sb = ArmSandbox(SandboxConfig(scale=3600.0)).start()
    try:
        clients = CloudClients(sb.cloud_target(polling_interval=0.01))
        one = Estate(clients, SUB)
        one.resource_group("rg", "westeurope")
        ids = {name: one.recovery_services_vault("rg", name, "westeurope", default=False)
               for name in ("rsv-busy", "rsv-full", "rsv-calm")}
        recovery_services(sb).model.seed_vm_items(ids["rsv-full"], 950, prefix="old")
        rsb = clients.recovery_services_backup(SUB)
        for n in range(41):
            rsb.protection_policies.create_or_update("rsv-busy", "rg", f"p{n % 3}", POLICY)
        for n in range(39):
            rsb.protection_policies.create_or_update("rsv-calm", "rg", f"p{n % 3}", POLICY)
        yield sb, clients, ids
    finally:
        sb.stop()


def _findings(sb: ArmSandbox, clients: CloudClients, *, hours_later: float = 0) -> dict[str, list[str]]:
    now = sb.clock.now() + timedelta(hours=hours_later)
    inventory = read_estate(ArmEstateReader(clients, now=lambda: now), [SUB])
    result = audit(inventory, load_rules(default_rules_text(), "defaults"), now)
    found: dict[str, list[str]] = {}
    for finding in result.findings:
        found.setdefault(finding.control_id, []).append(finding.resource_id.rsplit("/", 1)[-1])
    return found


def test_a_vault_past_its_threshold_and_one_whose_policy_budget_is_nearly_spent_are_reported(
    estate: tuple[ArmSandbox, CloudClients, dict[str, str]],
) -> None:
    sb, clients, _ = estate
    inventory = read_estate(ArmEstateReader(clients, now=sb.clock.now), [SUB])
    changes = {v.id.rsplit("/", 1)[-1]: v.policy_changes_24h for v in inventory.vaults}
    assert changes == {"rsv-busy": 41, "rsv-full": 0, "rsv-calm": 39}
    found = _findings(sb, clients)
    assert found["CAP-001"] == ["rsv-full"]
    assert found["CAP-002"] == ["rsv-busy"]


def test_the_budget_recovers_as_its_changes_age_out_of_the_24_hours(
    estate: tuple[ArmSandbox, CloudClients, dict[str, str]],
) -> None:
    sb, clients, _ = estate
    assert "CAP-002" not in _findings(sb, clients, hours_later=25)
