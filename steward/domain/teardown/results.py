"""The teardown activities' results, the saga's custom status (:class:`TeardownShown`) and its output, the
report (:class:`TeardownReport`), as records of the one record codec (``steward/domain/records.py``), read by
``orchestrators/teardown.py`` through the codec. Keys as the activities wrote them by hand before (camelCase
already), so a teardown in flight replays its history unchanged; a field a result did not always carry is left
out while it is unset.

An effect on one target comes back as a :class:`StepResult`: done (``effect``: the target's effect record),
sent (``pending``: the operation the orchestrator follows on durable timers, with its ``target``), or refused
(``refusal``: a :class:`Refusal` whose ``kind`` the saga decides on).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from steward.domain.records import Record
from steward.domain.teardown.request import TeardownOutcome

__all__ = [
    "ChunkResults",
    "OperationLook",
    "ProtectionsRestored",
    "Refusal",
    "ReportLinks",
    "ReportStored",
    "StepResult",
    "TeardownLimits",
    "TeardownReport",
    "TeardownShown",
    "VaultMarked",
    "VaultUnmarked",
]

#: a field left out of the record while it has its default: each result keeps the keys it had
_UNLESS_SET: Final = {"omit_default": True}


@dataclass(frozen=True)
class TeardownLimits(Record):
    """``teardown_limits``' result: what the saga runs with (it may not read the environment): writes in flight,
    the approval timeout, the length of one wait, four eyes (0/1) and the allowed principals (lower case)."""

    max_parallel_writes: int
    approval_timeout_hours: int
    wait_chunk_hours: int
    four_eyes: int = 0
    allowed_principals: tuple[str, ...] = ()


@dataclass(frozen=True)
class Refusal(Record):
    """A refusal Azure will repeat: ``kind`` (``needs-security-approval``, ``immutability-locked``,
    ``missing-permission``, ``refused`` ...), ARM's code and status when there was one, and the message."""

    kind: str = "refused"
    code: str | None = field(default=None, metadata=_UNLESS_SET)
    status: int | None = field(default=None, metadata=_UNLESS_SET)
    message: str = field(default="", metadata=_UNLESS_SET)

    @property
    def said(self) -> str:
        return self.message or "refused"


@dataclass(frozen=True)
class StepResult(Record):
    """One effect activity's result on one target (``teardown_set_setting`` names its ``setting`` instead)."""

    ok: bool
    effect: Mapping[str, Any] | None = field(default=None, metadata=_UNLESS_SET)
    pending: Mapping[str, Any] | None = field(default=None, metadata=_UNLESS_SET)
    refusal: Refusal | None = field(default=None, metadata=_UNLESS_SET)
    target: Mapping[str, Any] | None = field(default=None, metadata=_UNLESS_SET)
    setting: str | None = field(default=None, metadata=_UNLESS_SET)

    @property
    def target_id(self) -> str:
        """The id of the target it reached (its effect's, else the target's), lower case; "" when neither."""
        return str((self.effect or self.target or {}).get("id", "")).lower()

    @property
    def refused(self) -> Refusal:
        return self.refusal or Refusal()


@dataclass(frozen=True)
class OperationLook(Record):
    """``teardown_operation_status``' result: one look at an operation an effect started (``running``,
    ``succeeded``, ``failed`` on Azure's side with its ``message``, and the wait Azure asks for), or the refusal
    it ended with."""

    ok: bool
    state: str = field(default="", metadata=_UNLESS_SET)
    retry_after: float | None = field(default=None, metadata=_UNLESS_SET)
    message: str = field(default="", metadata=_UNLESS_SET)
    refusal: Refusal | None = field(default=None, metadata=_UNLESS_SET)


@dataclass(frozen=True)
class VaultMarked(Record):
    """``teardown_mark_vault``'s result: ``none`` (nothing to record, nothing written) or the marker's effect, the
    settings an earlier, lost teardown turned off that this one inherits, and the marker written; or a refusal."""

    ok: bool
    effect: str = field(default="", metadata=_UNLESS_SET)
    inherited: tuple[str, ...] = field(default=(), metadata=_UNLESS_SET)
    marker: Mapping[str, Any] | None = field(default=None, metadata=_UNLESS_SET)
    refusal: Refusal | None = field(default=None, metadata=_UNLESS_SET)


@dataclass(frozen=True)
class ProtectionsRestored(Record):
    """``teardown_restore_protections``' result: each setting put back (``effect``; ``failed`` with its error)."""

    ok: bool
    restored: tuple[Any, ...] = ()


@dataclass(frozen=True)
class VaultUnmarked(Record):
    """``teardown_unmark_vault``'s result: what removing this instance's marker did."""

    ok: bool
    effect: str = ""


@dataclass(frozen=True)
class ReportLinks(Record):
    """Where a stored report can be read: its JSON and its HTML (null where the store gave none)."""

    json_url: str | None = None
    html_url: str | None = None


@dataclass(frozen=True)
class ReportStored(ReportLinks):
    """``teardown_record_report``'s result: where the report was stored (its links first), the outcome events
    published and the HTML's size."""

    published: int = 0
    html_bytes: int = 0

    def links(self) -> ReportLinks:
        return ReportLinks(json_url=self.json_url, html_url=self.html_url)


@dataclass(frozen=True)
class TeardownReport(Record):
    """The one report every teardown ends with (``steward.report.teardown.build_report``): ``teardown_vault``'s
    output, the stored report and the outcome event's source. The request's facts, who approved and confirmed,
    when it ran, the plan (as its record) and what each step did, deleted, changed, restored and left, as the saga
    recorded them; ``links`` (the stored report's) once it is stored."""

    version: int
    instance_id: str
    vault_id: str | None
    outcome: TeardownOutcome
    reason: str = field(metadata={"may_be_empty": True})
    requested_by: str | None = None
    requester_identity: str = "unknown"
    approved_by: str | None = None
    confirmed_by: str | None = None
    source: str | None = None
    correlation_id: str | None = None
    requested_at: str | None = None
    started_at: str | None = None
    finished_at: str | None = None
    dry_run: bool | None = None
    approved_fingerprint: str | None = None
    fingerprint: str | None = None
    plan: Mapping[str, Any] | None = None
    steps: tuple[Any, ...] = ()
    deleted: tuple[Any, ...] = ()
    changed_settings: tuple[Any, ...] = ()
    restored_settings: tuple[Any, ...] = ()
    remaining: tuple[Any, ...] = ()
    last_error: str | None = None
    links: ReportLinks | None = field(default=None, metadata=_UNLESS_SET)


@dataclass(frozen=True)
class TeardownShown(Record):
    """``teardown_vault``'s custom status: the phase, the vault, the step under way, each step's counts, the last
    error, until when it waits and for what, who confirmed a custom-event request, the plan's fingerprint, status
    and summary (its steps without their targets) and how many targets were deleted."""

    phase: str
    vault_id: str | None = None
    current_step: str | None = None
    steps: tuple[Any, ...] = ()
    last_error: str | None = None
    waiting_until: str | None = None
    needs: str | None = None
    confirmed_by: str | None = None
    fingerprint: str | None = None
    plan_status: str | None = None
    plan: Mapping[str, Any] | None = None
    deleted_count: int = 0


@dataclass(frozen=True)
class ChunkResults(Record):
    """``teardown_step_chunk``'s output: one :class:`StepResult` per target it reached, in order (it stops at the
    first refusal)."""

    results: tuple[StepResult, ...] = ()
