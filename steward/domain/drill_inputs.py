"""The restore drill's activity inputs as records of the one record codec (``steward/domain/records.py``).

``orchestrators/drill.py`` builds each as a record and ``activities/drill.py`` reads it back through the codec.
Their keys were camelCase already (``drillId``, ``target``, ``pointId``, ``groupId`` ...) and stay so; only the role
grants ``drill_grant`` was sent named their role definition ``role_definition_guid``: they are
:class:`~steward.domain.protection_inputs.RoleGrant` records now (``roleDefinitionGuid``), and an input queued
before still reads for one release (``tests/orchestrators/test_activity_input_history.py`` feeds the inputs
recorded before the change to these records). The drill report keeps its ``vaultRoles`` as it was (a report is no
activity input). The target travels as its :class:`~steward.domain.drill_records.DrillTarget` record.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from steward.domain.drill_records import DrillTarget
from steward.domain.protection_inputs import RoleGrant
from steward.domain.records import Record

__all__ = [
    "DrillCandidatesQuery",
    "DrillCleanup",
    "DrillGrants",
    "DrillJobRef",
    "DrillOperationLook",
    "DrillReportToRecord",
    "DrillRestoreQuery",
    "DrillRestoreStart",
    "DrillStillThere",
    "DrillTargetStep",
    "RestoreReadyNotice",
]

#: a field left out of the record while it has its default (a request that does not use it)
_UNLESS_SET: Final = {"omit_default": True}


@dataclass(frozen=True)
class DrillCandidatesQuery(Record):
    """``drill_candidates``: the resources named (none: every one a drill rule covers) in the subscriptions named."""

    resources: tuple[str, ...] = ()
    subscriptions: tuple[str, ...] = ()


@dataclass(frozen=True)
class DrillTargetStep(Record):
    """``drill_points`` (the target's recovery points) and ``drill_prepare`` (the drill's group for it)."""

    target: DrillTarget
    drill_id: str = field(default="", metadata=_UNLESS_SET)


@dataclass(frozen=True)
class DrillGrants(Record):
    """``drill_grant``: the roles the target's Backup vault's identity restores with."""

    target: DrillTarget
    grants: tuple[RoleGrant, ...] = ()


@dataclass(frozen=True)
class DrillRestoreStart(Record):
    """``drill_start``: restore ``point_id`` of the target into the drill's group (and, for PostgreSQL, its
    ``account``), or ``validateRestore`` it first (``phase`` ``validate``)."""

    drill_id: str
    target: DrillTarget
    point_id: str
    group_id: str
    account: Mapping[str, Any] | None = None
    phase: str = "restore"


@dataclass(frozen=True)
class DrillOperationLook(Record):
    """``drill_operation``: one look at an operation a drill step started."""

    operation: Mapping[str, Any]


@dataclass(frozen=True)
class DrillJobRef(Record):
    """``drill_job`` and ``drill_cancel_job``: a restore job of a vault; ``group_id``: the drill group it restores
    into (``drill_job`` vouches for it again at each look; absent in inputs recorded before)."""

    vault_id: str
    job_id: str
    group_id: str | None = None


@dataclass(frozen=True)
class DrillRestoreQuery(Record):
    """``drill_restored``: what the restore made - the disks of ``group_id`` not there ``before`` and created during
    the job (a VM), ``new_disk_id`` (a disk), or the containers in the drill's ``account`` (vaulted blobs)."""

    drill_id: str
    target: DrillTarget
    group_id: str
    before: tuple[str, ...] = ()
    new_disk_id: str | None = None
    job_start: str | None = None
    job_end: str | None = None
    #: vaulted blobs: the drill's own account the containers were restored into
    account: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class DrillCleanup(Record):
    """``drill_cleanup``: delete what the drill recorded and that carries its tag."""

    drill_id: str
    recorded: tuple[str, ...] = ()


@dataclass(frozen=True)
class DrillStillThere(Record):
    """``drill_remaining``: which of these ids still exist."""

    ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class DrillReportToRecord(Record):
    """``drill_record``: the drill's report to store and publish."""

    report: Mapping[str, Any]


@dataclass(frozen=True)
class RestoreReadyNotice(Record):
    """``drill_restore_ready``: what the validation hook may check (``restored``) and until when the drill waits."""

    drill_id: str
    resource_id: str
    workload: str
    restored: tuple[str, ...] = ()
    wait_until: str | None = None
