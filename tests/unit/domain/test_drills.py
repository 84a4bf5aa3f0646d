"""Drill candidate selection and recovery point choice (steward/domain/drills.py): examples and properties."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from steward.domain.drills import (
    DeferReason,
    DrillBudget,
    DrillCandidate,
    InvalidDrillPlan,
    PointChoice,
    RecoveryPointRef,
    drill_order,
    pick_recovery_point,
    select_candidates,
)

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
SUB = "/subscriptions/00000000-0000-4000-8000-000000000001/resourceGroups/rg/providers/Microsoft.Compute/disks/"


def disk(name: str, size: float = 32, days_ago: float | None = None) -> DrillCandidate:
    last = None if days_ago is None else NOW - timedelta(days=days_ago)
    return DrillCandidate(SUB + name, "disk", size, last)


def test_never_drilled_first_then_the_oldest_drill() -> None:
    picked = select_candidates([disk("a", days_ago=1), disk("b", days_ago=30), disk("c"), disk("d", days_ago=10)],
                               DrillBudget(share=0.5, minimum=1))
    assert [c.resource_id.rsplit("/", 1)[-1] for c in picked.chosen] == ["c", "b"]
    assert {(d.candidate.resource_id.rsplit("/", 1)[-1], d.reason) for d in picked.deferred} == {
        ("d", DeferReason.SHARE), ("a", DeferReason.SHARE)}


def test_the_minimum_applies_but_never_beyond_the_concurrency_budget() -> None:
    candidates = [disk(n) for n in "abcdef"]
    assert len(select_candidates(candidates, DrillBudget(share=0.1, minimum=3)).chosen) == 3
    limited = select_candidates(candidates, DrillBudget(share=0.1, minimum=3, max_concurrent=4), running=3)
    assert len(limited.chosen) == 1
    assert {d.reason for d in limited.deferred} == {DeferReason.CONCURRENCY}


def test_a_resource_larger_than_the_whole_budget_is_reported_and_skipped_a_tight_fit_stops_the_walk() -> None:
    candidates = [disk("huge", 5000), disk("a", 100, 30), disk("b", 300, 20), disk("c", 10, 10)]
    picked = select_candidates(candidates, DrillBudget(share=1, minimum=0, max_restored_gb=350))
    assert [c.resource_id.rsplit("/", 1)[-1] for c in picked.chosen] == ["a"]
    reasons = {d.candidate.resource_id.rsplit("/", 1)[-1]: d.reason for d in picked.deferred}
    assert reasons == {"huge": DeferReason.LARGER_THAN_BUDGET, "b": DeferReason.RESTORE_BUDGET,
                       "c": DeferReason.RESTORE_BUDGET}


def test_bad_plans_are_refused_with_what_is_wrong() -> None:
    with pytest.raises(InvalidDrillPlan, match="share"):
        DrillBudget(share=0)
    with pytest.raises(InvalidDrillPlan, match="twice"):
        select_candidates([disk("a"), DrillCandidate((SUB + "A").upper(), "disk", 1)], DrillBudget(share=1))
    with pytest.raises(InvalidDrillPlan, match="window"):
        pick_recovery_point([], choice=PointChoice.LATEST, now=NOW, window=timedelta(0), seed="x")


candidate_lists = st.lists(
    st.builds(
        DrillCandidate,
        resource_id=st.text("abcdefgh", min_size=1, max_size=6).map(lambda s: SUB + s),
        workload=st.sampled_from(["disk", "virtualMachine"]),
        size_gb=st.floats(0, 2000),
        last_drill_at=st.none() | st.integers(0, 400).map(lambda d: NOW - timedelta(days=d)),
    ),
    max_size=25,
    unique_by=lambda c: c.resource_id.lower(),
)
budgets = st.builds(DrillBudget, share=st.floats(0.01, 1), minimum=st.integers(0, 10),
                    max_concurrent=st.integers(1, 10), max_restored_gb=st.none() | st.floats(1, 3000))


@settings(max_examples=300, deadline=None)
@given(candidate_lists, budgets, st.integers(0, 12), st.randoms())
def test_selection_respects_every_budget_accounts_for_everyone_and_ignores_input_order(
    candidates: list[DrillCandidate], budget: DrillBudget, running: int, rng: object
) -> None:
    picked = select_candidates(candidates, budget, running=running)
    assert sorted(c.resource_id for c in picked.chosen + tuple(d.candidate for d in picked.deferred)) == sorted(
        c.resource_id for c in candidates)
    assert len(picked.chosen) <= max(0, budget.max_concurrent - running)
    assert len(picked.chosen) <= max(budget.minimum, math.ceil(budget.share * len(candidates)))
    if budget.max_restored_gb is not None:
        assert picked.restored_gb <= budget.max_restored_gb + 1e-6
    order = drill_order(candidates)
    chosen = set(picked.chosen)
    # no candidate that could have fitted was passed over in favour of one later in the drill order
    skipped = [c for c in order if c not in chosen]
    for waiting in skipped:
        reason = next(d.reason for d in picked.deferred if d.candidate == waiting)
        if reason is not DeferReason.LARGER_THAN_BUDGET:
            assert all(order.index(c) < order.index(waiting) for c in chosen)
    shuffled = list(candidates)
    rng.shuffle(shuffled)  # type: ignore[attr-defined]
    assert select_candidates(shuffled, budget, running=running) == picked


points = st.lists(st.builds(RecoveryPointRef, id=st.text("0123456789", min_size=1, max_size=5),
                            time=st.integers(0, 60 * 24).map(lambda m: NOW - timedelta(minutes=m * 30))),
                  max_size=20, unique_by=lambda p: p.id)


@settings(max_examples=300, deadline=None)
@given(points, st.none() | st.integers(1, 30).map(lambda d: timedelta(days=d)), st.text(max_size=8))
def test_a_point_is_picked_from_the_window_the_latest_is_newest_and_random_is_repeatable(
    found: list[RecoveryPointRef], window: timedelta | None, seed: str
) -> None:
    latest = pick_recovery_point(found, choice=PointChoice.LATEST, now=NOW, window=window, seed=seed)
    chosen = pick_recovery_point(found, choice=PointChoice.RANDOM, now=NOW, window=window, seed=seed)
    eligible = [p for p in found if window is None or p.time >= NOW - window]
    if not eligible:
        assert latest is None and chosen is None
        return
    assert latest is not None and latest.time == max(p.time for p in eligible)
    assert chosen in eligible
    assert pick_recovery_point(list(reversed(found)), choice=PointChoice.RANDOM, now=NOW, window=window,
                               seed=seed) == chosen
