"""Which resources an audit run starts protection for (STEWARD_AUDIT_REMEDIATE_LIMIT): BKP-001 findings only,
never a resource whose only item is soft-deleted, at most the limit, in an order that rotates between runs."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from steward.domain.audit import (
    REMEDIABLE_CONTROL,
    EstateInventory,
    ProtectableResource,
    audit,
    id_key,
    remediation_plan,
)
from tests.unit.audit.audit_estate_builders import NOW, SUB_A, healthy_estate, item_for, rs_vault, rules, vm


def _estate(
    unprotected: int, soft_deleted: int = 0
) -> tuple[EstateInventory, tuple[ProtectableResource, ...], tuple[ProtectableResource, ...]]:
    estate = healthy_estate()
    vault = rs_vault()
    naked = tuple(vm(f"vm-naked-{i:02d}") for i in range(unprotected))
    soft = tuple(vm(f"vm-soft-{i:02d}") for i in range(soft_deleted))
    return replace(
        estate,
        resources=(*estate.resources, *naked, *soft),
        protected_items=(
            *estate.protected_items,
            *(item_for(r, vault, soft_deleted=True, purge_at=NOW + timedelta(days=5)) for r in soft),
        ),
    ), naked, soft


def test_only_unprotected_resources_are_remediated_and_soft_deleted_ones_need_a_person() -> None:
    estate, naked, soft = _estate(unprotected=3, soft_deleted=2)
    result = audit(estate, rules(), NOW)
    flagged = {id_key(f.resource_id) for f in result.findings if f.control_id == REMEDIABLE_CONTROL}
    assert flagged == {id_key(r.id) for r in (*naked, *soft)}, "the estate must give BKP-001 for both kinds"

    plan = remediation_plan(result, limit=10)
    assert sorted(plan.protect) == sorted(r.id for r in naked)
    assert list(plan.needs_person) == sorted((r.id for r in soft), key=str.lower)
    assert plan.deferred == 0


def test_a_healthy_estate_needs_no_remediation() -> None:
    plan = remediation_plan(audit(healthy_estate(), rules(), NOW), limit=10)
    assert plan.protect == () and plan.deferred == 0 and plan.needs_person == ()


def test_the_limit_bounds_a_run_and_the_rest_is_deferred() -> None:
    estate, naked, _ = _estate(unprotected=12)
    result = audit(estate, rules(), NOW)
    plan = remediation_plan(result, limit=5)
    assert len(plan.protect) == 5 and plan.deferred == 7
    assert set(plan.protect) <= {r.id for r in naked}
    assert remediation_plan(result, limit=5) == plan, "the same run plans the same"
    assert remediation_plan(result, limit=0).protect == ()


def test_the_order_rotates_between_runs_so_one_stuck_resource_does_not_block_the_rest() -> None:
    estate, _, _ = _estate(unprotected=12)
    firsts = {remediation_plan(audit(estate, rules(), NOW + timedelta(days=d)), limit=1).protect[0]
              for d in range(8)}
    assert len(firsts) > 1


def test_a_negative_limit_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="limit"):
        remediation_plan(audit(healthy_estate(), rules(), NOW), limit=-1)


def test_the_plan_travels_as_a_json_record() -> None:
    estate, _, _ = _estate(unprotected=2, soft_deleted=1)
    record = remediation_plan(audit(estate, rules(), NOW), limit=1).to_record()
    assert set(record) == {"protect", "deferred", "needsPerson"}
    assert len(record["protect"]) == 1 and record["deferred"] == 1 and len(record["needsPerson"]) == 1
    assert all(sub == SUB_A for sub in (r.split("/")[2] for r in record["protect"]))
