"""Restore drills, the pure part (issue 17 item 3): which protected resources a drill run takes, and which
recovery point each one restores.

No I/O and no clock: the caller passes what it read (candidates with their last drill, recovery points) and the
instant it decides at (the orchestration's ``current_utc_datetime``). Same input, same answer - including the
"random" recovery point, which is a hash of a seed the caller chooses (the drill id), never ``random``.

Selection, in order (AWS Backup restore testing chooses the same way: resources never tested first):

1. Never-drilled resources first, then the one whose last drill is oldest; ties by resource id (case-blind).
2. How many: ``max(minimum, ceil(share * candidates))``, never more than there are.
3. Budgets are hard limits, the minimum does not override them: at most ``max_concurrent - running`` drills,
   and the restored size of the chosen ones at most ``max_restored_gb``. A resource larger than the whole
   size budget can never fit: it is deferred as such (so a report can say so) and the walk goes on. A resource
   that only does not fit in what is left ends the walk: taking smaller ones behind it would starve it forever.

Every candidate comes back exactly once: chosen, or deferred with the reason.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from steward.domain.errors import DomainError


class InvalidDrillPlan(DomainError, ValueError):
    """Drill settings or candidates that cannot be planned from; the message says what is wrong."""


class DeferReason(StrEnum):
    SHARE = "share"  # this run's share (or minimum) is taken
    CONCURRENCY = "concurrency"  # max_concurrent drills would be exceeded
    RESTORE_BUDGET = "restoreBudget"  # the restored-GB budget of this run is used up
    LARGER_THAN_BUDGET = "largerThanBudget"  # alone larger than the restored-GB budget: never fits


@dataclass(frozen=True)
class DrillCandidate:
    resource_id: str
    workload: str  # e.g. "virtualMachine", "disk", "postgresqlFlexibleServer", "blob"
    size_gb: float  # what a restore of it creates (cost-relevant)
    last_drill_at: datetime | None = None  # start of its last drill, whatever the outcome


@dataclass(frozen=True)
class DrillBudget:
    share: float  # of the candidates per run, 0 < share <= 1
    minimum: int = 1
    max_concurrent: int = 5
    max_restored_gb: float | None = None

    def __post_init__(self) -> None:
        if not 0 < self.share <= 1:
            raise InvalidDrillPlan(f"share must be in (0, 1], not {self.share}")
        if self.minimum < 0:
            raise InvalidDrillPlan(f"minimum must be 0 or more, not {self.minimum}")
        if self.max_concurrent < 1:
            raise InvalidDrillPlan(f"max_concurrent must be at least 1, not {self.max_concurrent}")
        if self.max_restored_gb is not None and not self.max_restored_gb > 0:
            raise InvalidDrillPlan(f"max_restored_gb must be positive, not {self.max_restored_gb}")


@dataclass(frozen=True)
class Deferred:
    candidate: DrillCandidate
    reason: DeferReason


@dataclass(frozen=True)
class DrillSelection:
    chosen: tuple[DrillCandidate, ...]
    deferred: tuple[Deferred, ...]

    @property
    def restored_gb(self) -> float:
        return sum(c.size_gb for c in self.chosen)


def drill_order(candidates: Iterable[DrillCandidate]) -> list[DrillCandidate]:
    """Never drilled first, then oldest drill first; ties by resource id (case-blind)."""
    return sorted(candidates, key=lambda c: (c.last_drill_at is not None,
                                             c.last_drill_at.timestamp() if c.last_drill_at else 0.0,
                                             c.resource_id.lower()))


def select_candidates(
    candidates: Sequence[DrillCandidate], budget: DrillBudget, *, running: int = 0
) -> DrillSelection:
    """The resources this run drills, and why each other one waits (see the module docstring)."""
    seen: set[str] = set()
    for candidate in candidates:
        key = candidate.resource_id.lower()
        if key in seen:
            raise InvalidDrillPlan(f"resource '{candidate.resource_id}' is a candidate twice")
        if candidate.size_gb < 0 or math.isnan(candidate.size_gb):
            raise InvalidDrillPlan(f"resource '{candidate.resource_id}' has size {candidate.size_gb} GB")
        seen.add(key)
    if running < 0:
        raise InvalidDrillPlan(f"running drills cannot be {running}")
    ordered = drill_order(candidates)
    wanted = min(len(ordered), max(budget.minimum, math.ceil(budget.share * len(ordered))))
    slots = max(0, budget.max_concurrent - running)
    room = budget.max_restored_gb
    chosen: list[DrillCandidate] = []
    deferred: list[Deferred] = []
    stopped: DeferReason | None = None
    for candidate in ordered:
        if stopped is not None:
            deferred.append(Deferred(candidate, stopped))
            continue
        if len(chosen) >= wanted:
            stopped = DeferReason.SHARE
        elif len(chosen) >= slots:
            stopped = DeferReason.CONCURRENCY
        elif budget.max_restored_gb is not None and candidate.size_gb > budget.max_restored_gb:
            deferred.append(Deferred(candidate, DeferReason.LARGER_THAN_BUDGET))
            continue
        elif room is not None and candidate.size_gb > room:
            stopped = DeferReason.RESTORE_BUDGET
        if stopped is not None:
            deferred.append(Deferred(candidate, stopped))
            continue
        chosen.append(candidate)
        if room is not None:
            room -= candidate.size_gb
    return DrillSelection(tuple(chosen), tuple(deferred))


@dataclass(frozen=True)
class RecoveryPointRef:
    id: str
    time: datetime


class PointChoice(StrEnum):
    LATEST = "latest"
    RANDOM = "random"


def pick_recovery_point(
    points: Sequence[RecoveryPointRef], *, choice: PointChoice, now: datetime, window: timedelta | None, seed: str
) -> RecoveryPointRef | None:
    """The recovery point a drill restores, or None when none qualifies.

    Only points at or before ``now`` and, with a ``window``, no older than ``now - window`` qualify. ``latest``:
    the newest (ties: the greatest id). ``random``: one chosen by a hash of ``seed`` over the qualifying points
    in (time, id) order - the same seed always picks the same point from the same list.
    """
    if window is not None and window <= timedelta(0):
        raise InvalidDrillPlan(f"the recovery point window must be positive, not {window}")
    oldest = now - window if window is not None else None
    eligible = sorted((p for p in points if p.time <= now and (oldest is None or p.time >= oldest)),
                      key=lambda p: (p.time, p.id))
    if not eligible:
        return None
    if choice is PointChoice.LATEST:
        return eligible[-1]
    digest = hashlib.sha256(seed.encode()).digest()
    return eligible[int.from_bytes(digest[:8], "big") % len(eligible)]
