"""Audit results: stable ids, new and resolved findings, coverage, trend, JSON schema, ordering."""

from __future__ import annotations

import json
import random
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import jsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from steward.domain.audit import (
    CONTROLS,
    SCHEMA_VERSION,
    TREND_LENGTH,
    AuditError,
    AuditResult,
    EstateInventory,
    ImmutabilityState,
    InvalidPreviousResult,
    ProtectionStatus,
    Severity,
    SoftDeleteState,
    audit,
    finding_id,
)
from tests.unit.audit.audit_estate_builders import (
    NOW,
    SUB_A,
    SUB_B,
    backup_vault,
    disk,
    healthy_estate,
    instance_for,
    item_for,
    rs_vault,
    rules,
    storage,
    vm,
)

SCHEMA_PATH = Path(__file__).resolve().parents[3] / "steward" / "report" / "schema" / "audit-result.v1.json"


def schema() -> dict[str, object]:
    return json.loads(SCHEMA_PATH.read_text())  # type: ignore[no-any-return]


def messy_estate() -> EstateInventory:
    """Something of everything: unprotected, stale, soft-deleted, orphaned, weak vault, two subscriptions."""
    estate = healthy_estate()
    weak = rs_vault(
        "rsv-b",
        sub=SUB_B,
        location="northeurope",
        soft_delete=SoftDeleteState.OFF,
        immutability=ImmutabilityState.DISABLED,
        cross_region_restore=False,
    )
    vm_b, vm_c = vm("vm-b", sub=SUB_B, location="northeurope"), vm("vm-c", sub=SUB_B, location="northeurope")
    return replace(
        estate,
        subscriptions=(SUB_A, SUB_B),
        resources=(*estate.resources, vm_b, vm_c, storage("st-unprotected")),
        vaults=(*estate.vaults, weak, backup_vault("bv-empty")),
        protected_items=(
            *estate.protected_items,
            item_for(vm_b, weak, last_backup=NOW - timedelta(days=3)),
            item_for(
                vm("vm-deleted", sub=SUB_B, location="northeurope"),
                weak,
                soft_deleted=True,
                purge_at=NOW + timedelta(days=5),
            ),
        ),
    )


def test_finding_ids_are_stable_across_runs_and_case() -> None:
    first = audit(messy_estate(), rules(), NOW)
    second = audit(messy_estate(), rules(), NOW + timedelta(hours=1))
    assert [f.id for f in first.findings] == [f.id for f in second.findings]
    assert finding_id("BKP-001", "/subscriptions/A/x") == finding_id("BKP-001", "/SUBSCRIPTIONS/a/X/")
    assert finding_id("BKP-001", "/subscriptions/a/x") != finding_id("BKP-002", "/subscriptions/a/x")


def test_first_run_reports_everything_new_and_nothing_resolved() -> None:
    result = audit(messy_estate(), rules(), NOW)
    assert result.findings
    assert result.new_finding_ids == {f.id for f in result.findings}
    assert result.resolved == ()


def test_new_and_resolved_against_the_previous_run() -> None:
    before = audit(messy_estate(), rules(), NOW)
    estate = messy_estate()
    # Fix the unprotected storage account, break the disk.
    st_unprotected = estate.resources[-1]
    fixed = instance_for(st_unprotected, estate.vaults[1], policy="blob-default")
    broken = replace(estate.backup_instances[0], protection_status="ProtectionStopped")
    after_estate = replace(estate, backup_instances=(broken, *estate.backup_instances[1:], fixed))
    after = audit(after_estate, rules(), NOW + timedelta(days=1), previous=before)
    [new] = after.new_findings
    assert (new.control_id, new.resource_id) == ("BKP-004", broken.id)
    assert [(f.control_id, f.resource_id) for f in after.resolved] == [("BKP-001", st_unprotected.id)]
    assert len(after.findings) == len(before.findings)


def test_previous_round_trips_through_json() -> None:
    before = audit(messy_estate(), rules(), NOW)
    restored = AuditResult.from_json(json.loads(json.dumps(before.to_json())))
    assert restored.findings == before.findings
    assert restored.coverage == before.coverage
    again = audit(messy_estate(), rules(), NOW + timedelta(days=1), previous=restored)
    assert again.new_finding_ids == frozenset()
    assert again.resolved == ()


def test_a_stored_result_of_another_major_version_is_refused() -> None:
    data = audit(healthy_estate(), rules(), NOW).to_json()
    with pytest.raises(InvalidPreviousResult, match=r"schemaVersion .2\.0."):
        AuditResult.from_json({**data, "schemaVersion": "2.0"})
    with pytest.raises(InvalidPreviousResult, match="malformed"):
        AuditResult.from_json({"schemaVersion": SCHEMA_VERSION, "findings": [{"id": "x"}]})


def test_trend_carries_earlier_runs_and_is_bounded() -> None:
    result: AuditResult | None = None
    for day in range(TREND_LENGTH + 5):
        result = audit(messy_estate(), rules(), NOW + timedelta(days=day), previous=result)
    assert result is not None
    assert len(result.trend) == TREND_LENGTH + 1
    assert result.trend[-1].generated_at == NOW + timedelta(days=TREND_LENGTH + 4)
    times = [p.generated_at for p in result.trend]
    assert times == sorted(times)


def test_coverage_by_subscription_region_and_type() -> None:
    result = audit(messy_estate(), rules(), NOW)
    cov = result.coverage
    assert (cov.total.resources, cov.total.required, cov.total.required_protected) == (7, 7, 5)
    assert cov.by_subscription[SUB_B.lower()].resources == 2
    assert cov.by_subscription[SUB_B.lower()].required_protected == 1
    assert cov.by_region["northeurope"].ratio == 0.5
    assert cov.by_type["Microsoft.Storage/storageAccounts"].required_protected == 1
    assert cov.by_type["Microsoft.Storage/storageAccounts"].required == 2
    assert cov.total.ratio == pytest.approx(5 / 7)


def test_coverage_is_full_when_nothing_is_required() -> None:
    result = audit(replace(healthy_estate(), protected_items=(), backup_instances=()), rules(must_protect=False), NOW)
    assert result.coverage.total.ratio == 1.0
    assert result.coverage.total.protected == 0


def test_json_output_matches_the_checked_in_schema() -> None:
    before = audit(messy_estate(), rules(), NOW)
    after = audit(healthy_estate(), rules(), NOW + timedelta(days=1), previous=before)
    for result in (before, after):
        jsonschema.validate(result.to_json(), schema())
    assert after.to_json()["resolved"]


def test_the_schema_rejects_what_it_should() -> None:
    data = audit(messy_estate(), rules(), NOW).to_json()
    bad = json.loads(json.dumps(data))
    bad["findings"][0]["severity"] = "catastrophic"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, schema())
    missing = {k: v for k, v in data.items() if k != "coverage"}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(missing, schema())


def test_findings_are_ordered_worst_first() -> None:
    ranks = [f.severity.rank for f in audit(messy_estate(), rules(), NOW).findings]
    assert ranks == sorted(ranks, reverse=True)


def test_severity_threshold_and_parsing() -> None:
    result = audit(messy_estate(), rules(), NOW)
    assert Severity.parse(" HIGH ") is Severity.HIGH
    high = result.at_or_above(Severity.HIGH)
    assert {f.severity for f in high} <= {Severity.CRITICAL, Severity.HIGH}
    assert len(result.at_or_above(Severity.INFO)) == len(result.findings)
    with pytest.raises(AuditError, match="unknown severity 'urgent'"):
        Severity.parse("urgent")


def test_now_must_be_timezone_aware() -> None:
    with pytest.raises(AuditError, match="timezone-aware"):
        audit(healthy_estate(), rules(), NOW.replace(tzinfo=None))


def test_the_control_registry_is_well_formed() -> None:
    for control_id, control in CONTROLS.items():
        assert control.id == control_id
        assert control.title and control.description and control.fix


def test_arm_state_names_normalise_across_vault_kinds() -> None:
    assert ProtectionStatus.from_arm("protectionconfigured") is ProtectionStatus.PROTECTED
    assert ProtectionStatus.from_arm("IRPending") is ProtectionStatus.PENDING
    assert ProtectionStatus.from_arm("RetentionSchedulesSuspended") is ProtectionStatus.SUSPENDED
    assert ProtectionStatus.from_arm("SomethingNew") is ProtectionStatus.UNKNOWN
    assert SoftDeleteState.from_arm("AlwaysON") is SoftDeleteState.ALWAYS_ON
    assert SoftDeleteState.from_arm("Enabled") is SoftDeleteState.ON
    assert SoftDeleteState.from_arm("Off") is SoftDeleteState.OFF
    assert SoftDeleteState.from_arm(None) is SoftDeleteState.UNKNOWN
    assert ImmutabilityState.from_arm("Locked") is ImmutabilityState.LOCKED
    assert ImmutabilityState.from_arm(None) is ImmutabilityState.UNKNOWN


# Properties ---------------------------------------------------------------------------------------------

STATES = ["Protected", "IRPending", "ProtectionStopped", "ProtectionError", "BackupsSuspended"]


@st.composite
def estates(draw: st.DrawFn) -> EstateInventory:
    subs = [SUB_A, SUB_B]
    regions = ["westeurope", "northeurope"]
    vaults = [
        rs_vault(
            f"rsv-{i}",
            sub=draw(st.sampled_from(subs)),
            location=draw(st.sampled_from(regions)),
            soft_delete=draw(st.sampled_from(list(SoftDeleteState))),
        )
        for i in range(draw(st.integers(0, 3)))
    ]
    bvaults = [backup_vault(f"bv-{i}", location=draw(st.sampled_from(regions))) for i in range(draw(st.integers(0, 2)))]
    resources = []
    items = []
    instances = []
    for i in range(draw(st.integers(0, 12))):
        make = draw(st.sampled_from([vm, disk]))
        resource = make(f"r{i}", sub=draw(st.sampled_from(subs)), location=draw(st.sampled_from(regions)))
        if draw(st.booleans()):
            resources.append(resource)  # else: only its backup exists (orphan)
        if make is vm and vaults and draw(st.booleans()):
            items.append(
                item_for(
                    resource,
                    draw(st.sampled_from(vaults)),
                    state=draw(st.sampled_from(STATES)),
                    soft_deleted=draw(st.booleans()),
                    last_backup=draw(st.one_of(st.none(), st.just(NOW - timedelta(hours=40)))),
                )
            )
        if make is disk and bvaults and draw(st.booleans()):
            instances.append(instance_for(resource, draw(st.sampled_from(bvaults))))
    return EstateInventory(tuple(subs), tuple(resources), tuple(vaults + bvaults), tuple(items), tuple(instances))


@settings(max_examples=60, deadline=None)
@given(estates(), st.randoms())
def test_the_audit_does_not_depend_on_inventory_order(estate: EstateInventory, rnd: random.Random) -> None:
    def shuffled(items: tuple[object, ...]) -> tuple[object, ...]:
        copy = list(items)
        rnd.shuffle(copy)
        return tuple(copy)

    other = EstateInventory(
        estate.subscriptions,
        shuffled(estate.resources),
        shuffled(estate.vaults),  # type: ignore[arg-type]
        shuffled(estate.protected_items),
        shuffled(estate.backup_instances),
    )  # type: ignore[arg-type]
    assert audit(estate, rules(), NOW).to_json() == audit(other, rules(), NOW).to_json()


@settings(max_examples=60, deadline=None)
@given(estates())
def test_invariants_of_any_audit(estate: EstateInventory) -> None:
    result = audit(estate, rules(), NOW)
    ids = [f.id for f in result.findings]
    assert len(ids) == len(set(ids))
    assert all(f.control_id in CONTROLS and f.severity is CONTROLS[f.control_id].severity for f in result.findings)
    cov = result.coverage
    assert cov.total.resources == len(estate.resources)
    for table in (cov.by_subscription, cov.by_region, cov.by_type):
        assert sum(c.resources for c in table.values()) == cov.total.resources
        assert sum(c.required_protected for c in table.values()) == cov.total.required_protected
    unprotected = {f.resource_id for f in result.findings if f.control_id == "BKP-001"}
    assert len(unprotected) == cov.total.required - sum(
        1
        for r in estate.resources
        if any(i.source_id == r.id and not i.soft_deleted for i in (*estate.protected_items,))
        or any(i.datasource_id == r.id for i in estate.backup_instances)
    )
    jsonschema.validate(result.to_json(), schema())
    again = audit(estate, rules(), NOW + timedelta(hours=1), previous=result)
    # Only the RPO control depends on time, and backups only grow older: an hour later nothing resolves.
    assert again.resolved == ()
    assert {f.control_id for f in again.new_findings} <= {"BKP-005"}
