"""The teardown's and its reconciler's (``orchestrators/compensation.py``) activity inputs as records of the one
record codec (``steward/domain/records.py``).

``orchestrators/teardown.py`` builds each as a record and ``activities/teardown.py`` reads it back through the
codec. Their keys were camelCase already (``vaultId``, ``instanceId``, ``target``, ``operation``) and stay so: an
input queued before the records reads the same (``tests/orchestrators/test_activity_input_history.py`` feeds the
inputs recorded before to these records). A step's ``target`` travels as the target's own record (its ``type``
says which, ``steward.domain.teardown.inventory.target_from_record``), the settings' ``changes`` as
``SettingChange`` records and the report as the report.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from steward.domain.records import Record

__all__ = [
    "MarkedVaultsQuery",
    "OperationToLook",
    "ReportToRecord",
    "SettingToSet",
    "TargetStep",
    "TeardownVault",
    "VaultMarking",
    "VaultToReconcile",
]

#: a field left out of the record while it has its default (a request that does not use it)
_UNLESS_SET: Final = {"omit_default": True}


@dataclass(frozen=True)
class TeardownVault(Record):
    """``teardown_inventory`` and ``teardown_delete_vault``: the vault torn down."""

    vault_id: str


@dataclass(frozen=True)
class SettingToSet(Record):
    """``teardown_set_setting``: one vault setting (``softDelete``, ``enhancedSecurity``, ``immutability``) to
    ``value``."""

    vault_id: str
    setting: str
    value: str


@dataclass(frozen=True)
class VaultMarking(Record):
    """``teardown_mark_vault`` (the run's ``instance_id`` and the ``changes`` its plan makes),
    ``teardown_unmark_vault`` (the ``instance_id`` whose marker goes) and ``teardown_restore_protections`` (the
    ``changes`` to put back): the changes as ``SettingChange`` records."""

    vault_id: str
    instance_id: str = field(default="", metadata=_UNLESS_SET)
    changes: tuple[Any, ...] = field(default=(), metadata=_UNLESS_SET)


@dataclass(frozen=True)
class TargetStep(Record):
    """One step on one ``target`` of the vault (a delete, an undelete, a stop, an unregistration ...), and
    ``teardown_complete_operation``: the ``operation`` it started, ended."""

    vault_id: str
    target: Mapping[str, Any]
    operation: Mapping[str, Any] = field(default_factory=dict, metadata=_UNLESS_SET)


@dataclass(frozen=True)
class OperationToLook(Record):
    """``teardown_operation_status``: one look at the ``operation`` a step started."""

    vault_id: str
    operation: Mapping[str, Any]


@dataclass(frozen=True)
class ReportToRecord(Record):
    """``teardown_record_report``: the final report, stored under ``name`` (the instance id)."""

    report: Mapping[str, Any]
    name: str = ""


@dataclass(frozen=True)
class MarkedVaultsQuery(Record):
    """The reconciler's ``teardown_find_marked_vaults``: the vaults carrying a teardown marker in the subscriptions
    named (none: the managed ones)."""

    subscriptions: tuple[str, ...] = ()


@dataclass(frozen=True)
class VaultToReconcile(Record):
    """The reconciler's ``teardown_reconcile_vault``: the vault a lost teardown left weakened, its ``marker`` as read
    (the tag's text) and why it is restored."""

    vault_id: str
    marker: str
    reason: str = ""
