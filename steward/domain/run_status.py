"""What a long orchestration shows while it runs (its Durable custom status): a record on the one codec.

Read by the HTTP status routes and the command line (``steward drill status``, ``steward audit ...``) through
:meth:`RunProgress.from_record`; written by the audit and the restore drill. Keys as the plain dicts had them (a
field left unset is left out), so statuses recorded before read alike.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from steward.domain.records import Record

__all__ = ["RunProgress"]

_UNSET = {"omit_default": True}


@dataclass(frozen=True)
class RunProgress(Record):
    """The phase a run is in and, where it has them, how far it got (``done`` of ``total``), the resource it works
    on, the Azure job it follows, until when it waits and what it restored (a drill's validation wait)."""

    phase: str
    done: int | None = field(default=None, metadata=_UNSET)
    total: int | None = field(default=None, metadata=_UNSET)
    resource_id: str | None = field(default=None, metadata=_UNSET)
    job_id: str | None = field(default=None, metadata=_UNSET)
    #: as ``datetime.isoformat()`` wrote it
    wait_until: str | None = field(default=None, metadata=_UNSET)
    restored: tuple[str, ...] | None = field(default=None, metadata=_UNSET)
