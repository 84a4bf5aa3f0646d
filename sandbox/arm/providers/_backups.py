"""Backups that actually happen: jobs, schedules and durations shared by the two backup providers' job modules.

Not a provider (the leading underscore keeps discovery away): :mod:`recoveryservices_jobs` and
:mod:`dataprotection_jobs` build on it.

- :class:`Job` / :class:`JobBook`: a backup or restore job runs from ``start`` to ``end`` on the virtual clock;
  the book is settled lazily (every request to a job module, and a hidden wake-up on the sandbox's operation
  engine so that ``sb.advance()`` alone finishes jobs and makes restored resources appear). A job's
  ``on_done`` runs exactly once, when its end has come: it creates the recovery point or the restored
  resources, or raises :class:`JobFailed` to end the job ``Failed`` with Azure's error.
- :func:`daily_occurrences` / :func:`interval_occurrences`: when a policy's schedule fires between two instants.
- :class:`BackupTiming`: every modelled duration, in Azure seconds, replaceable per sandbox (``timing`` attribute
  of each job module). Azure publishes no job durations; every value here is INFERRED (order of magnitude only).
"""

from __future__ import annotations

import heapq
import itertools
import re
import threading
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from typing import Any

from sandbox.arm.errors import ArmError


@dataclass
class BackupTiming:
    """Modelled durations (Azure seconds). INFERRED: Azure documents none of these; tests may set any value."""

    #: on-demand backup / restore trigger: how long the operation runs before the job exists and it succeeds
    trigger_operation: float = 10.0
    #: Recovery Services Azure VM backup job (snapshot + transfer to vault)
    rs_vm_backup: float = 1800.0
    #: Recovery Services Azure VM restore (restore disks) job
    rs_vm_restore: float = 3600.0
    #: Backup vault jobs, by datasource type (lower-case ARM type) and operation
    dp_backup: dict[str, float] = field(default_factory=lambda: {
        "microsoft.compute/disks": 300.0,
        "microsoft.dbforpostgresql/flexibleservers": 1800.0,
        "microsoft.storage/storageaccounts/blobservices": 600.0,
    })
    dp_restore: dict[str, float] = field(default_factory=lambda: {
        "microsoft.compute/disks": 900.0,
        "microsoft.dbforpostgresql/flexibleservers": 2700.0,
        "microsoft.storage/storageaccounts/blobservices": 1800.0,
    })
    #: validateRestore operation
    validate_restore: float = 30.0
    #: a job cancellation takes effect after this long
    cancel_operation: float = 30.0
    #: Retry-After the trigger answers carry (TriggerBackup_Post / TriggerRestore examples: 60)
    retry_after: float = 60.0


class JobFailed(Exception):
    """Raised by a job's ``on_done``: the job ends Failed with this error code and message."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass
class Job:
    id: str
    vault_id: str
    operation: str  # Backup | Restore (Recovery Services) / Backup | Restore (Data Protection)
    entity: str  # the protected item's friendly name
    start: datetime
    end: datetime
    details: dict[str, Any] = field(default_factory=dict)
    on_done: Callable[[Job], None] | None = None
    status: str = "InProgress"
    error: JobFailed | None = None
    finished_at: datetime | None = None
    user_triggered: bool = False

    @property
    def done(self) -> bool:
        return self.finished_at is not None

    def duration(self, now: datetime) -> timedelta:
        return (self.finished_at or now) - self.start


class JobBook:
    """Every job of one provider; thread-safe; settled lazily on the virtual clock."""

    def __init__(self, *, done_status: str = "Completed", failed_status: str = "Failed") -> None:
        self.lock = threading.RLock()
        self.jobs: dict[str, Job] = {}
        self._pending: list[tuple[datetime, int, str]] = []  # (end, seq, id key) of jobs not yet ended
        self._seq = itertools.count()
        self.done_status = done_status
        self.failed_status = failed_status
        #: sandbox control: the next job of (vault id lower, operation lower) ends Failed with this error
        self.failures: dict[tuple[str, str], list[JobFailed]] = {}

    def add(self, job: Job) -> Job:
        with self.lock:
            self.jobs[job.id.lower()] = job
            if not job.done:
                heapq.heappush(self._pending, (job.end, next(self._seq), job.id.lower()))
            return job

    def next_end(self) -> datetime | None:
        """When the next running job ends (None when none runs)."""
        with self.lock:
            while self._pending and (self.jobs.get(self._pending[0][2]) is None
                                     or self.jobs[self._pending[0][2]].done):
                heapq.heappop(self._pending)
            return self._pending[0][0] if self._pending else None

    def get(self, job_id: str) -> Job | None:
        with self.lock:
            return self.jobs.get(job_id.lower())

    def of_vault(self, vault_id: str) -> list[Job]:
        key = vault_id.lower().rstrip("/")
        with self.lock:
            return [j for j in self.jobs.values() if j.vault_id.lower().rstrip("/") == key]

    def cancel(self, job: Job, now: datetime) -> None:
        """End a running job Cancelled now (its ``on_done`` never runs); an ended job keeps its outcome."""
        with self.lock:
            if job.done:
                return
            job.on_done = None
            job.status = "Cancelled"
            job.finished_at = now

    def fail_next(self, vault_id: str, operation: str, code: str, message: str) -> None:
        with self.lock:
            self.failures.setdefault((vault_id.lower(), operation.lower()), []).append(JobFailed(code, message))

    def settle(self, now: datetime) -> list[Job]:
        """End every job whose time has come, in end order; returns them."""
        ended: list[Job] = []
        with self.lock:
            due = []
            while self._pending and self._pending[0][0] <= now:
                _, _, key = heapq.heappop(self._pending)
                job = self.jobs.get(key)
                if job is not None and not job.done:
                    due.append(job)
            for job in due:
                injected = self.failures.get((job.vault_id.lower(), job.operation.lower()))
                try:
                    if injected:
                        raise injected.pop(0)
                    if job.on_done is not None:
                        job.on_done(job)
                except JobFailed as exc:
                    job.error = exc
                job.status = self.failed_status if job.error is not None else self.done_status
                job.finished_at = job.end
                ended.append(job)
        return ended


def new_job_id() -> str:
    return str(uuid.uuid4())


# -- time ------------------------------------------------------------------------------------------------------
def iso(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_iso(text: str) -> datetime:
    value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def iso_duration(delta: timedelta) -> str:
    """``PT1H2M3.5S`` (the RS job ``duration`` form, e.g. ``PT9.8782791S`` in GetJobDetails)."""
    seconds = max(0.0, delta.total_seconds())
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    text = "PT"
    if hours:
        text += f"{int(hours)}H"
    if minutes:
        text += f"{int(minutes)}M"
    if secs or text == "PT":
        text += f"{secs:.7f}".rstrip("0").rstrip(".") + "S"
    return text


def clock_duration(delta: timedelta) -> str:
    """``HH:MM:SS`` (the Data Protection job ``duration`` form, e.g. ``00:00:00`` in GetJob)."""
    seconds = int(max(0.0, delta.total_seconds()))
    hours, rest = divmod(seconds, 3600)
    return f"{hours:02d}:{rest // 60:02d}:{rest % 60:02d}"


_ISO_PERIOD = re.compile(r"^P(?:(\d+)W)?(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?)?$", re.IGNORECASE)


def parse_period(text: str) -> timedelta:
    """An ISO 8601 duration with weeks/days/hours/minutes/seconds (``P1D``, ``PT4H``, ``P1W``)."""
    match = _ISO_PERIOD.match(text.strip())
    if match is None or not any(match.groups()):
        raise ValueError(f"'{text}' is not an ISO 8601 duration this sandbox reads")
    weeks, days, hours, minutes, seconds = (int(g or 0) for g in match.groups())
    return timedelta(weeks=weeks, days=days, hours=hours, minutes=minutes, seconds=seconds)


def parse_repeating_interval(text: str) -> tuple[datetime, timedelta]:
    """``R/2021-05-23T02:30:00+00:00/P1D`` (a Backup vault policy's ``repeatingTimeIntervals``) -> anchor, period."""
    parts = text.strip().split("/")
    if len(parts) != 3 or not parts[0].upper().startswith("R"):
        raise ValueError(f"'{text}' is not a repeating interval R/<start>/<period>")
    return parse_iso(parts[1]), parse_period(parts[2])


def interval_occurrences(anchor: datetime, period: timedelta, after: datetime, until: datetime) -> list[datetime]:
    """Instants ``anchor + k*period`` with ``after < t <= until``."""
    if period.total_seconds() <= 0 or until <= after:
        return []
    k = max(0, int((after - anchor) / period))
    found = []
    moment = anchor + k * period
    while moment <= until:
        if moment > after:
            found.append(moment)
        moment += period
    return found


_WEEKDAYS = {name: i for i, name in enumerate(("monday", "tuesday", "wednesday", "thursday", "friday", "saturday",
                                                 "sunday"))}


def weekday_numbers(names: Iterable[Any]) -> set[int]:
    return {_WEEKDAYS[str(n).lower()] for n in names if str(n).lower() in _WEEKDAYS}


def times_of_day(values: Iterable[Any]) -> list[time]:
    """The time part of each ``scheduleRunTimes`` entry (Azure ignores the date part)."""
    result = []
    for value in values:
        try:
            moment = parse_iso(str(value))
        except ValueError:
            continue
        result.append(moment.timetz().replace(tzinfo=None))
    return sorted(set(result))


def daily_occurrences(
    run_times: list[time], after: datetime, until: datetime, weekdays: set[int] | None = None
) -> list[datetime]:
    """Instants at one of ``run_times`` (UTC) on every day (or the given weekdays) with ``after < t <= until``."""
    if not run_times or until <= after:
        return []
    found = []
    day = after.astimezone(UTC).date()
    last = until.astimezone(UTC).date()
    while day <= last:
        if weekdays is None or day.weekday() in weekdays:
            for at in run_times:
                moment = datetime.combine(day, at, tzinfo=UTC)
                if after < moment <= until:
                    found.append(moment)
        day += timedelta(days=1)
    return found


_LIST_TIME_FORMATS = ("%Y-%m-%d %I:%M:%S %p", "%Y-%m-%d %H:%M:%S %p", "%Y-%m-%d %H:%M:%S", "%m/%d/%Y %I:%M:%S %p")


def parse_filter_time(text: str, field_name: str, code: str = "BMSUserErrorInvalidInput") -> datetime:
    """A ``$filter`` time as the backup list APIs take it: ``2016-01-01 00:00:00 AM`` (ListJobsWithAllSupported
    Filters, the PowerShell form ``yyyy-MM-dd hh:mm:ss tt``) or ISO 8601. Anything else is a 400."""
    for fmt in _LIST_TIME_FORMATS:
        try:
            return datetime.strptime(text.strip(), fmt).replace(tzinfo=UTC)
        except ValueError:
            continue
    try:
        return parse_iso(text)
    except ValueError:
        raise ArmError(400, code, f"'{text}' is not a valid time for '{field_name}' in $filter "
                                  "(use 'yyyy-MM-dd hh:mm:ss AM' or ISO 8601).") from None


# -- waking the clock -----------------------------------------------------------------------------------------
class _WakeRequest:
    """What :meth:`OperationEngine.begin` reads from a request, for an operation no client asked for."""

    method = "POST"
    path = "sandbox:backup-jobs"
    api_version = None
    event_facts = None
    base_url = ""


class Waker:
    """Runs ``callback`` (a provider's settle) when the next job ends, so ``sb.advance()`` alone ends jobs and
    makes restored resources appear. One wake-up is pending at a time (the earliest asked for): the callback
    settles every due job and asks again for the next end.

    The wake-up is an operation on the sandbox's engine (settled like an LRO, no event). Lock order: the engine's
    settling lock is held while ``callback`` runs, so it may take a provider's lock; a handler holding that lock
    never waits for the engine.
    """

    def __init__(self, ctx: Any, callback: Callable[[], None]) -> None:
        self.ctx = ctx
        self.callback = callback
        self.lock = threading.Lock()
        self.at: datetime | None = None
        self.token = 0

    def ensure(self, when: datetime | None) -> None:
        if when is None:
            return
        with self.lock:
            if self.at is not None and self.at <= when:
                return
            self.at, self.token = when, self.token + 1
            token = self.token
        seconds = max(0.0, (when - self.ctx.clock.now()).total_seconds())

        def run() -> None:
            with self.lock:
                if token == self.token:
                    self.at = None
            self.callback()

        op = self.ctx.operations.begin(_WakeRequest(), duration=seconds, complete=run,
                                       async_url="sandbox:wake/{operationId}")
        op.facts = None  # no Event Grid event: nobody's request
