"""The ``restore_drill`` orchestration's records on the one record codec (``steward/domain/records.py``): its input,
a drill target, each activity result it reads (``activities/drill.py`` writes them, ``orchestrators/drill.py``
reads them) and its output, the drill's report (:class:`DrillReport`). The keys are the ones these results had
before they were records (camelCase already), so a drill in flight replays its history unchanged
(``tests/orchestrators/test_drill_records.py``).

What Azure answered and the drill only passes on (an operation to follow, a job's error, the restored disks'
sizes) travels inside them as it came.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Final

from steward.domain.drills import DrillBudget, PointChoice
from steward.domain.records import Record

__all__ = [
    "CleanedUp",
    "DrillCandidates",
    "DrillCarried",
    "DrillGranted",
    "DrillPrepared",
    "DrillRecorded",
    "DrillReport",
    "DrillRequest",
    "DrillStarted",
    "DrillTarget",
    "JobError",
    "JobState",
    "OperationState",
    "RecoveryPoints",
    "RestoreReadyPublished",
    "RestoredResources",
    "StillThere",
    "Workload",
]

#: a field left out of the record while it has its default: each result keeps the keys it had
_UNLESS_SET: Final = {"omit_default": True}
_MAY_BE_EMPTY: Final = {"may_be_empty": True}


class Workload(StrEnum):
    VM = "virtualMachine"
    DISK = "disk"
    POSTGRES = "postgresqlFlexibleServer"
    BLOB = "blob"


@dataclass(frozen=True)
class DrillRequest(Record):
    """``restore_drill``'s input (``entrypoints/drill_http.py``: the HTTP start and the timer)."""

    resources: tuple[str, ...] = ()
    subscriptions: tuple[str, ...] = ()
    dry_run: bool = False
    requested_by: str | None = None
    trigger: str = ""
    past_due: bool = False


@dataclass(frozen=True)
class BudgetRecord(Record):
    """A drill rule's budget as a target carries it."""

    share: float
    minimum: int
    max_concurrent: int
    max_restored_gb: float | None = None

    def budget(self) -> DrillBudget:
        return DrillBudget(share=float(self.share), minimum=self.minimum, max_concurrent=self.max_concurrent,
                           max_restored_gb=None if self.max_restored_gb is None else float(self.max_restored_gb))


@dataclass(frozen=True)
class DrillTarget(Record):
    """One protected resource a drill rule covers (an entry of ``drill_candidates``' targets): what selection and
    the restore need. Times in seconds; ``expected``: the source's disks (id, size, SKU) the validation compares."""

    resource_id: str
    rule: str
    workload: Workload | None = None  # always written by drill_candidates; selection alone does not need it
    name: str = field(default="", metadata=_MAY_BE_EMPTY)
    type: str = field(default="", metadata=_MAY_BE_EMPTY)
    location: str = field(default="", metadata=_MAY_BE_EMPTY)
    subscription: str = field(default="", metadata=_MAY_BE_EMPTY)
    vault_id: str = field(default="", metadata=_MAY_BE_EMPTY)
    vault_location: str = field(default="", metadata=_MAY_BE_EMPTY)
    protection_id: str = field(default="", metadata=_MAY_BE_EMPTY)
    datastore: str = field(default="", metadata=_MAY_BE_EMPTY)
    every: float = 0.0
    lifetime: float | None = None
    point: PointChoice = PointChoice.LATEST
    window: float | None = None
    group: str = field(default="", metadata=_MAY_BE_EMPTY)
    budget: BudgetRecord | None = None
    size_gb: float = 0.0
    expected: tuple[Any, ...] = ()
    validation_timeout: float | None = None
    last_drill_at: str | None = None


@dataclass(frozen=True)
class DrillCandidates(Record):
    """``drill_candidates``' result: the targets, and what was skipped and why (passed on to the report)."""

    targets: tuple[DrillTarget, ...] = ()
    skipped: tuple[Any, ...] = ()


@dataclass(frozen=True)
class DrillCarried(Record):
    """What one generation of ``restore_drill`` hands to the next (it continues as new every few resources): when
    the drill started, the targets chosen, those waiting and skipped, the results so far, the index of the next
    target, and whether a Cancel came."""

    started_at: datetime = field(metadata={"keep_offset": True})
    chosen: tuple[DrillTarget, ...] = ()
    waiting: tuple[Any, ...] = ()
    skipped: tuple[Any, ...] = ()
    results: tuple[Any, ...] = ()
    next: int = 0
    cancelled: bool = False


@dataclass(frozen=True)
class RecoveryPoint(Record):
    id: str
    time: datetime


@dataclass(frozen=True)
class RecoveryPoints(Record):
    """``drill_points``' result: the target's recovery points."""

    points: tuple[RecoveryPoint, ...] = ()


@dataclass(frozen=True)
class DrillGroup(Record):
    """The drill's resource group (``owned``: it carries the drill-group tag; ``created`` by this call)."""

    id: str
    created: bool = False
    owned: bool = False


@dataclass(frozen=True)
class StagingAccount(Record):
    """The drill's own storage account (VM disks' staging, PostgreSQL files): its create may still run
    (``operation``, None when none)."""

    id: str
    operation: Mapping[str, Any] | None = None
    name: str = field(default="", metadata=_UNLESS_SET)


@dataclass(frozen=True)
class DrillPrepared(Record):
    """``drill_prepare``'s result: the drill group and, for a VM or PostgreSQL server, the storage account; or a
    refusal (``ok`` false, ``error``)."""

    ok: bool
    group: DrillGroup | None = field(default=None, metadata=_UNLESS_SET)
    account: StagingAccount | None = field(default=None, metadata=_UNLESS_SET)
    error: Mapping[str, Any] | None = field(default=None, metadata=_UNLESS_SET)


@dataclass(frozen=True)
class DrillGranted(Record):
    """``drill_grant``'s result: the roles newly assigned to the vault's identity (they take minutes to apply)."""

    ok: bool
    created: tuple[str, ...] = ()
    error: Mapping[str, Any] | None = field(default=None, metadata=_UNLESS_SET)
    #: the ids of the role assignments the grants name (newly made or not)
    assignments: tuple[str, ...] = field(default=(), metadata=_UNLESS_SET)


@dataclass(frozen=True)
class DrillStarted(Record):
    """``drill_start``'s result: the restore (or its ``validateRestore``) was sent: the operation to follow (None
    when Azure answered at once), the new disk's id (a disk restore) or the group's disks before (a VM restore);
    or a refusal."""

    ok: bool
    operation: Mapping[str, Any] | None = field(default=None, metadata=_UNLESS_SET)
    new_disk_id: str | None = field(default=None, metadata=_UNLESS_SET)
    before: tuple[str, ...] = field(default=(), metadata=_UNLESS_SET)
    error: Mapping[str, Any] | None = field(default=None, metadata=_UNLESS_SET)


@dataclass(frozen=True)
class OperationState(Record):
    """``drill_operation``'s result: one look at an operation (``running``, ``succeeded``, ``failed``), the wait
    Azure asks for before the next, and a restore's job id."""

    state: str
    retry_after: float | None = field(default=None, metadata=_UNLESS_SET)
    job_id: str | None = field(default=None, metadata=_UNLESS_SET)
    error: Mapping[str, Any] | None = field(default=None, metadata=_UNLESS_SET)


@dataclass(frozen=True)
class JobError(Record):
    """A backup job's first error as Azure gave it. ``code`` keeps Azure's type: a Recovery Services job's
    ``errorDetails[].errorCode`` is an integer (``AzureIaaSVMErrorInfo``; its text is ``errorString``), a Backup
    vault job's ``errorDetails[].code`` a string (``UserFacingError``, with ``message``); docs/azure-facts.md."""

    code: int | str | None = None
    message: str | None = None

    @classmethod
    def of_azure(cls, error: Mapping[str, Any]) -> JobError:
        """From either service's error object; a code of any other JSON type is kept as its text (never a crash)."""
        code = error["errorCode"] if error.get("errorCode") is not None else error.get("code")
        if isinstance(code, bool) or not isinstance(code, int | str | None):
            code = str(code)
        message = error.get("errorString") if error.get("errorString") is not None else error.get("message")
        return cls(code=code, message=None if message is None else str(message))


@dataclass(frozen=True)
class JobState(Record):
    """``drill_job``'s result: the restore job's status, times (its RTO) and error."""

    status: str = ""
    start_time: str | None = None
    end_time: str | None = None
    error: JobError | None = None

    @property
    def error_record(self) -> dict[str, Any] | None:
        """The error as the drill's result and events carry it (``{"code", "message"}``), or None."""
        return None if self.error is None else self.error.to_record()


@dataclass(frozen=True)
class RestoredResources(Record):
    """``drill_restored``'s result: what the restore created (id, size, SKU), tagged with the drill."""

    restored: tuple[Any, ...] = ()


@dataclass(frozen=True)
class CleanedUp(Record):
    """``drill_cleanup``'s result: deleted, deletes still running (operations with the id), left alone and why."""

    deleted: tuple[str, ...] = ()
    pending: tuple[Any, ...] = ()
    skipped: tuple[Any, ...] = ()


@dataclass(frozen=True)
class StillThere(Record):
    """``drill_remaining``'s result: the recorded ids that still exist."""

    remaining: tuple[str, ...] = ()


@dataclass(frozen=True)
class DrillReport(Record):
    """``restore_drill``'s output and the report ``drill_record`` stores: the drill, when it ran, who asked, the
    targets chosen, waiting and skipped, each drilled resource's result and the outcomes counted. A result (what
    was restored, validated, deleted and left, its RTO) travels as the drill wrote it."""

    id: str
    started_at: datetime = field(metadata={"keep_offset": True})
    ended_at: datetime = field(metadata={"keep_offset": True})
    dry_run: bool = False
    requested_by: str | None = None
    cancelled: bool = False
    chosen: tuple[str, ...] = ()
    waiting: tuple[Any, ...] = ()
    skipped: tuple[Any, ...] = ()
    results: tuple[Any, ...] = ()
    outcomes: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class DrillRecorded(Record):
    """``drill_record``'s result: the outcome events made and published, and where the report was stored."""

    events: int
    published: int = 0
    report: str = ""
    json_url: str | None = None
    html_url: str | None = None


@dataclass(frozen=True)
class RestoreReadyPublished(Record):
    """``drill_restore_ready``'s result: how many ``RestoreReady`` events went out (one, or none without a topic)."""

    published: int = 0
