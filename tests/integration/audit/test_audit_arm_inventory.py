"""The ARM inventory adapter against the sandbox: the real SDK clients read a built estate, the audit finds
what was built into it, and leaves alone what is healthy."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest

from sandbox.arm import ArmSandbox, PropagationConfig, SandboxConfig, ThrottleConfig
from sandbox.clock import AzureTime, DiscreteClock
from steward.cloud import azure_time
from steward.cloud.clients import CloudClients
from steward.cloud.inventory import ArmEstateReader, ReadPacer, read_estate
from steward.domain.audit import (
    AuditResult,
    EstateInventory,
    RuleExpectations,
    SoftDeleteState,
    audit,
)
from steward.rules_file import default_rules_text, load_rules
from tests.integration.audit.audit_sandbox_estate import SUB1, SUB2, BuiltEstate, build

MISSING_SUB = "00000000-0000-4000-8000-0000000000ff"
STRICT = """
version: 1
rules:
  - name: everything
    match: {}
    protect:
      vault: regional-default
      requiredVaultSettings: {softDelete: AlwaysOn}
"""


@pytest.fixture(scope="module")
def inventory(built: BuiltEstate, clients: CloudClients) -> EstateInventory:
    return read_estate(ArmEstateReader(clients))


@pytest.fixture(scope="module")
def result(inventory: EstateInventory, sandbox: ArmSandbox) -> AuditResult:
    rules = load_rules(default_rules_text(), "defaults")
    return audit(inventory, RuleExpectations(rules, inventory.vaults), sandbox.clock.now())


def findings_on(result: AuditResult, resource_id: str) -> set[str]:
    return {f.control_id for f in result.findings if f.resource_id.lower() == resource_id.lower()}


def item_findings_for(result: AuditResult, source_id: str) -> set[str]:
    return {f.control_id for f in result.findings if f.details.get("source", "").lower() == source_id.lower()}


def test_the_reader_lists_every_subscription_resource_vault_and_item(
    inventory: EstateInventory, built: BuiltEstate
) -> None:
    assert {SUB1, SUB2} <= set(inventory.subscriptions)
    ids = {r.id.lower() for r in inventory.resources}
    assert {built.ids[n].lower() for n in ("vm-ok", "vm-naked", "vm-far", "disk-ok", "st-naked")} <= ids
    assert built.ids["vm-gone"].lower() not in ids
    assert {v.id.lower() for v in inventory.vaults} >= {built.ids[n].lower() for n in ("rsv", "bv", "rsv-empty")}
    sources = {i.source_id.lower() for i in inventory.protected_items}
    assert built.ids["vm-gone"].lower() in sources and built.ids["vm-ok"].lower() in sources
    assert [b.datasource_id.lower() for b in inventory.backup_instances] == [built.ids["disk-ok"].lower()]
    assert inventory.gaps == ()
    tags = next(r.tags for r in inventory.resources if r.id.lower() == built.ids["vm-ok"].lower())
    assert tags == {"owner": "<b>team</b>"}


def test_healthy_resources_have_no_findings(result: AuditResult, built: BuiltEstate) -> None:
    assert findings_on(result, built.ids["vm-ok"]) == set()
    assert findings_on(result, built.ids["disk-ok"]) == set()
    assert findings_on(result, built.ids["rsv"]) == set()


def test_unprotected_resources_are_bkp001(result: AuditResult, built: BuiltEstate) -> None:
    assert findings_on(result, built.ids["vm-naked"]) == {"BKP-001"}
    assert findings_on(result, built.ids["st-naked"]) == {"BKP-001"}


def test_a_vm_in_a_region_without_a_vault_is_unprotected_with_no_target(
    result: AuditResult, built: BuiltEstate
) -> None:
    assert findings_on(result, built.ids["vm-far"]) == {"BKP-001"}
    drifts = [f for f in result.findings if f.control_id == "DRF-002"]
    assert any(built.ids["vm-far"] in f.why and "eastus" in f.why for f in drifts)
    # The sandbox gives every VM an OS disk; the default rules want disks protected too, so the OS disk of
    # vm-far (eastus, no Backup vault there) is a second DRF-002 and every OS disk a BKP-001.
    assert all("eastus" in f.why for f in drifts)


def test_the_enhanced_policy_vm_is_bkp002(result: AuditResult, built: BuiltEstate) -> None:
    assert findings_on(result, built.ids["vm-enhanced"]) == {"BKP-002"}


def test_stopped_protection_is_bkp004(result: AuditResult, built: BuiltEstate) -> None:
    assert item_findings_for(result, built.ids["vm-stopped"]) == {"BKP-004"}


def test_a_deleted_item_on_a_soft_delete_vault_is_bkp006_with_its_purge_date(
    result: AuditResult, built: BuiltEstate
) -> None:
    assert item_findings_for(result, built.ids["vm-softdel"]) == {"BKP-006"}
    [soft] = [f for f in result.findings if f.control_id == "BKP-006"]
    assert soft.details["purgeAt"] > result.generated_at.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert findings_on(result, built.ids["vm-softdel"]) == {"BKP-001"}  # its only item is soft-deleted


def test_an_item_whose_vm_was_deleted_is_orphaned(result: AuditResult, built: BuiltEstate) -> None:
    assert item_findings_for(result, built.ids["vm-gone"]) == {"ORP-001"}


def test_the_empty_vault_is_vlt005(result: AuditResult, built: BuiltEstate) -> None:
    assert findings_on(result, built.ids["rsv-empty"]) == {"VLT-005"}


def test_vault_settings_against_stricter_rules(
    inventory: EstateInventory, sandbox: ArmSandbox, built: BuiltEstate
) -> None:
    rsv = next(v for v in inventory.vaults if v.id.lower() == built.ids["rsv"].lower())
    assert rsv.soft_delete is SoftDeleteState.ON
    strict = audit(inventory, RuleExpectations(load_rules(STRICT, "strict"), inventory.vaults), sandbox.clock.now())
    assert "VLT-001" in findings_on(strict, built.ids["rsv"])
    assert "VLT-001" not in findings_on(strict, built.ids["rsv-empty"])  # holds nothing: no rule applies


def test_the_rpo_breaks_when_azure_time_passes_without_backups(
    inventory: EstateInventory, sandbox: ArmSandbox, built: BuiltEstate, result: AuditResult
) -> None:
    rules = RuleExpectations(load_rules(default_rules_text(), "defaults"), inventory.vaults)
    later = audit(inventory, rules, result.generated_at + timedelta(hours=30), previous=result)
    assert findings_on(later, built.ids["vm-ok"]) == {"BKP-005"}
    assert {f.control_id for f in later.new_findings} == {"BKP-005"}


def test_an_unreadable_subscription_becomes_a_gap_not_a_failure(clients: CloudClients) -> None:
    reader = ArmEstateReader(clients)
    partial = read_estate(reader, [SUB2, MISSING_SUB])
    assert [g.scope for g in partial.gaps] == [f"/subscriptions/{MISSING_SUB}"]
    assert partial.vaults


@pytest.fixture
def discrete_sandbox() -> Iterator[tuple[ArmSandbox, DiscreteClock]]:
    """The audit's estate on a sandbox whose Azure time is the discrete-event clock the benchmarks use, installed
    as the app's ``azure_time``: ARM's read bucket and the reader's pacer refill on the same virtual time, and
    neither moves with the machine's load (the test's own CPU, under a busy token, costs no Azure time)."""
    clock = DiscreteClock()
    azure_time.install(AzureTime(clock))
    sb = ArmSandbox(SandboxConfig(clock=clock, page_size=2, propagation=PropagationConfig(rbac_seconds=0)))
    try:
        with sb:
            yield sb, clock
    finally:
        azure_time.reset()
        clock.close()


def test_reading_under_the_sandbox_read_throttle_gets_no_429(
    discrete_sandbox: tuple[ArmSandbox, DiscreteClock]
) -> None:
    sandbox, clock = discrete_sandbox
    with clock.busy("test"):
        clients = CloudClients(sandbox.cloud_target(polling_interval=0.01))
        build(sandbox, clients)
        sandbox.configure_throttle(ThrottleConfig(enabled=True))
        sandbox.counters.reset()
        # A pacer with a tiny bucket proves pacing happens; ARM's own bucket never runs dry.
        reader = ArmEstateReader(clients, pacer_factory=lambda: ReadPacer(5, 200.0))
        read_estate(reader, [SUB1, SUB2])
    assert sandbox.counters.get(status=429) == 0
    assert reader.stats.requests >= 10
    assert reader.stats.paced_seconds > 0
    assert not clock.watchdog_reports, clock.watchdog_reports[0]
