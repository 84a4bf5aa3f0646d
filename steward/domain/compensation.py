"""Crash-proof compensation of the teardown saga: the marker a vault carries while a teardown has weakened it,
and the reconciler's decisions. Pure: no SDK, no I/O, no clock.

Why a tag on the vault. The saga's own compensation lives in its Durable history; a lost task hub (its storage
deleted, the local runner's SQLite removed) loses it, and the vault stays with soft delete and enhanced
security off. Before the saga turns a protection off it therefore writes :data:`MARKER_TAG` on the vault: the
teardown's instance id, when, and the settings as they were. The tag lives with the vault (it survives the task
hub and the report store, and moves with the vault), anyone can see it in the portal, and the audit already
reads every vault's tags. It is written with ``Microsoft.Resources/tags/default`` PATCH ``Merge`` and removed
with ``Delete`` (never a whole-``tags`` PATCH of the vault, which replaces every tag: a user's concurrent edit
would be lost). Limits (MicrosoftDocs/azure-docs ``azure-resource-manager/management/tag-resources.md``,
Limitations): at most 50 tags per resource, a name of at most 512 characters, a value of at most 256; the
marker's name is 31 characters and :meth:`TeardownMarker.encode` refuses a value over 256 (the saga then does
not weaken the vault at all).

A marker can be forged by anyone who may write the vault's tags. The reconciler therefore only ever makes a
vault *stronger*: it turns back on what the marker says was on, never turns anything off, and never sets a
``Locked`` immutability (irreversible; a teardown never changes a locked vault). Nor can a forged marker cancel
the restore of what a teardown turns off: a teardown taking a marker over keeps, per setting, the stronger
earlier value (:meth:`TeardownMarker.merged_with`, also when the marker names its own predictable instance id),
and a claimed ``AlwaysON``/``Locked`` restores the strongest reversible value instead of nothing.

Who decides that the teardown is gone. A function with the Durable client (the start-up timer, the audit's
doorways) takes a snapshot of the live teardown instances (:data:`LIVE_RUNTIME_STATUSES`) and its time; the
reconciler then reads the markers. A marker whose instance is not live is acted on only when it was written
before the snapshot (less a clock-skew margin): a teardown that started after the snapshot is not in it, and its
fresh marker must not be mistaken for an orphan.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Final

from steward.domain.kernel import format_time, parse_time
from steward.domain.records import Record
from steward.domain.teardown import InvalidTeardownInput, SettingChange

__all__ = [
    "LIVE_RUNTIME_STATUSES",
    "MARKER_TAG",
    "MAX_TAG_VALUE",
    "InvalidMarker",
    "MarkedVault",
    "MarkedVaults",
    "ReconcileAction",
    "ReconcileDecision",
    "ReconcileRequest",
    "ReconcileResult",
    "TeardownMarker",
    "TeardownSnapshot",
    "VaultReconciled",
    "decide_reconciliation",
    "restore_changes",
]

#: The tag a vault carries while a teardown has (or is about to have) weakened it.
MARKER_TAG: Final = "backup-steward:teardown-restore"
#: Azure's limits (tag-resources.md): tag value 256 characters, name 512, 50 tags per resource.
MAX_TAG_VALUE: Final = 256
MAX_TAG_NAME: Final = 512
MARKER_VERSION: Final = 1
#: Runtime statuses of a Durable instance that may still act (and compensate) itself.
LIVE_RUNTIME_STATUSES: Final = frozenset({"Pending", "Running", "ContinuedAsNew", "Suspended"})
#: Settings a teardown changes, with their values from weakest to strongest.
_STRENGTH: Final[Mapping[str, tuple[str, ...]]] = {
    "softDelete": ("disabled", "enabled", "alwayson"),
    "enhancedSecurity": ("disabled", "enabled", "alwayson"),
    "immutability": ("disabled", "unlocked", "locked"),
}
#: Never set by a reconciler: irreversible.
_NEVER_SET: Final = frozenset(
    {("immutability", "locked"), ("softDelete", "alwayson"), ("enhancedSecurity", "alwayson")}
)

#: What the reconciler sets for a marker claiming an irreversible earlier value (a claim no teardown makes).
_STRONGEST_REVERSIBLE: Final[Mapping[str, str]] = {
    "softDelete": "Enabled",
    "enhancedSecurity": "Enabled",
    "immutability": "Unlocked",
}


class InvalidMarker(InvalidTeardownInput):
    """A marker tag that cannot be read, or one too long for a tag value."""


def _strength(setting: str, value: str) -> int:
    order = _STRENGTH.get(setting)
    if order is None:
        raise InvalidMarker(f"{setting!r} is not a setting a teardown changes")
    text = value.strip().lower()
    return order.index(text) if text in order else 0


@dataclass(frozen=True)
class TeardownMarker:
    """Which teardown weakened the vault, when it said so, and the settings as they were before."""

    instance_id: str
    at: datetime
    earlier: tuple[tuple[str, str], ...]

    @classmethod
    def for_changes(cls, instance_id: str, at: datetime, changes: Iterable[SettingChange]) -> TeardownMarker:
        earlier: dict[str, str] = {}
        for change in changes:
            _strength(change.setting, change.from_value)  # refuses an unknown setting
            earlier.setdefault(change.setting, change.from_value)
        return cls(instance_id, at, tuple(sorted(earlier.items())))

    def merged_with(self, older: TeardownMarker | None) -> TeardownMarker:
        """This teardown's marker over one found on the vault (an interrupted earlier teardown's, or a forged
        one): per setting the *stronger* earlier value wins - an interrupted teardown's values are the vault's
        before anything was weakened, and a planted marker claiming weaker ones must not cancel the restore of
        what this teardown turns off; this instance now owns the marker."""
        if older is None:
            return self
        values = dict(self.earlier)
        for setting, value in older.earlier:
            mine = values.get(setting)
            if mine is None or _strength(setting, value) >= _strength(setting, mine):
                values[setting] = value
        return TeardownMarker(self.instance_id, min(self.at, older.at), tuple(sorted(values.items())))

    def earlier_value(self, setting: str) -> str | None:
        return dict(self.earlier).get(setting)

    def encode(self) -> str:
        text = json.dumps(
            {"v": MARKER_VERSION, "i": self.instance_id, "t": format_time(self.at), "s": dict(self.earlier)},
            separators=(",", ":"),
            sort_keys=True,
        )
        if len(text) > MAX_TAG_VALUE:
            raise InvalidMarker(f"the marker is {len(text)} characters; a tag value holds at most {MAX_TAG_VALUE}")
        return text

    @classmethod
    def decode(cls, text: object) -> TeardownMarker:
        if not isinstance(text, str) or len(text) > MAX_TAG_VALUE:
            raise InvalidMarker("a marker is a string of at most 256 characters")
        try:
            data = json.loads(text)
        except ValueError:
            raise InvalidMarker("the marker is not JSON") from None
        if not isinstance(data, dict) or data.get("v") != MARKER_VERSION:
            raise InvalidMarker("the marker is not a version-1 object")
        instance, settings = data.get("i"), data.get("s")
        if not isinstance(instance, str) or not instance or not isinstance(settings, dict):
            raise InvalidMarker("the marker needs an instance id and its settings")
        at = parse_time(data.get("t"))
        if at is None:
            raise InvalidMarker("the marker needs its time")
        earlier = []
        for setting, value in settings.items():
            if not isinstance(value, str):
                raise InvalidMarker(f"the earlier value of {setting!r} must be a string")
            _strength(str(setting), value)
            earlier.append((str(setting), value))
        return cls(instance, at, tuple(sorted(earlier)))

    def to_record(self) -> dict[str, Any]:
        return {"instanceId": self.instance_id, "at": format_time(self.at), "earlier": dict(self.earlier)}


def restore_changes(marker: TeardownMarker, current: Mapping[str, str]) -> tuple[SettingChange, ...]:
    """What turns the vault back to the marker's earlier settings: only changes that make it stronger, in the
    order soft delete, enhanced security, immutability; nothing irreversible (``AlwaysON``, ``Locked``)."""
    changes = []
    for setting in _STRENGTH:
        wanted = marker.earlier_value(setting)
        if wanted is None:
            continue
        if (setting, wanted.strip().lower()) in _NEVER_SET:
            # a teardown never turns an irreversible setting off, so the claim is wrong (or forged): restore the
            # strongest reversible value rather than nothing (it is a no-op when the vault still has it)
            wanted = _STRONGEST_REVERSIBLE[setting]
        now = current.get(setting, "Disabled")
        if _strength(setting, now) < _strength(setting, wanted):
            changes.append(SettingChange(setting, now, wanted))
    return tuple(changes)


class ReconcileAction(StrEnum):
    RESTORE = "restore"
    LEAVE = "leave"
    UNREADABLE = "unreadable"


@dataclass(frozen=True)
class ReconcileDecision:
    vault_id: str
    action: ReconcileAction
    reason: str
    marker: TeardownMarker | None = None
    raw: str = ""

    def to_record(self) -> dict[str, Any]:
        return {
            "vaultId": self.vault_id,
            "action": self.action.value,
            "reason": self.reason,
            "marker": self.raw,
            "instanceId": self.marker.instance_id if self.marker else None,
        }


def decide_reconciliation(
    vault_id: str,
    raw: object,
    *,
    live_instances: Iterable[str],
    snapshot_at: datetime,
    skew: timedelta,
) -> ReconcileDecision:
    """Restore a marked vault when the teardown that marked it no longer runs; leave it to a running one."""
    try:
        marker = TeardownMarker.decode(raw)
    except InvalidMarker as error:
        return ReconcileDecision(
            vault_id, ReconcileAction.UNREADABLE, f"the {MARKER_TAG} tag cannot be read: {error}", raw=str(raw)[:256]
        )
    text = str(raw)
    if marker.instance_id in set(live_instances):
        return ReconcileDecision(
            vault_id, ReconcileAction.LEAVE,
            f"teardown {marker.instance_id} still runs; it restores the settings itself", marker, text,
        )
    if marker.at > snapshot_at - skew:
        return ReconcileDecision(
            vault_id, ReconcileAction.LEAVE,
            f"marked at {format_time(marker.at)}, too close to the snapshot of running teardowns "
            f"({format_time(snapshot_at)}); the next reconciliation decides",
            marker, text,
        )
    return ReconcileDecision(
        vault_id, ReconcileAction.RESTORE,
        f"teardown {marker.instance_id} no longer runs (its task hub was lost, or it ended before restoring the "
        "settings it had turned off)",
        marker, text,
    )


# ---- the reconcile_teardowns orchestration's records (its input, its activity's result, its output) -----------
# Keys as the orchestration read them before these records (histories in flight replay unchanged).

#: Markers younger than this before the snapshot wait for the next run (clocks of two hosts may differ).
DEFAULT_SKEW_SECONDS: Final = 300


@dataclass(frozen=True)
class TeardownSnapshot(Record):
    """The running teardowns a doorway with the Durable client saw (``entrypoints/reconcile_timer``):
    ``{"live": [instance ids], "snapshotAt": ISO time, "skewSeconds"?: int}``. Without ``snapshotAt`` nothing
    is restored (a running teardown could not be told from a lost one)."""

    live: tuple[str, ...] = ()
    snapshot_at: datetime | None = None
    skew_seconds: int = DEFAULT_SKEW_SECONDS

    @property
    def skew(self) -> timedelta:
        return timedelta(seconds=self.skew_seconds)


@dataclass(frozen=True)
class ReconcileRequest(Record):
    """``reconcile_teardowns``' input: the snapshot (absent, null or empty: none) and the subscriptions to
    search for markers (none: the managed ones)."""

    closed = True

    teardowns: TeardownSnapshot | None = None
    subscriptions: tuple[str, ...] = ()

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> ReconcileRequest:
        if isinstance(record, Mapping) and not record.get("teardowns") and "teardowns" in record:
            record = {k: v for k, v in record.items() if k != "teardowns"}  # {} or null: no snapshot
        return super().from_record(record)


@dataclass(frozen=True)
class MarkedVault(Record):
    """A vault carrying the teardown marker tag, and the tag's value (read by the reconciler, maybe not a
    marker at all)."""

    vault_id: str
    marker: str = field(default="", metadata={"may_be_empty": True})


@dataclass(frozen=True)
class MarkedVaults(Record):
    """``teardown_find_marked_vaults``' result: the marked vaults, and the subscriptions it could not read."""

    markers: tuple[MarkedVault, ...] = ()
    gaps: tuple[Any, ...] = ()


@dataclass(frozen=True)
class ReconcileResult(Record):
    """``reconcile_teardowns``' output: what ``teardown_reconcile_vault`` restored (its records, passed on),
    the decisions it left, and the subscriptions it could not read."""

    reconciled: tuple[Any, ...] = ()
    left: tuple[Any, ...] = ()
    gaps: tuple[Any, ...] = ()


@dataclass(frozen=True)
class VaultReconciled(Record):
    """``teardown_reconcile_vault``'s result, also the ``BackupSteward.Teardown.Reconciled`` / ``.ReconcileFailed``
    event's data: the vault, the lost teardown that marked it and when, the settings it had before, why it is
    reconciled, each setting restored (``setting``, ``from``, ``to``, ``effect``), the effect (``reconciled``,
    ``failed``, ``unchanged``, ``already-gone``; absent before it is decided), why nothing was done and what became
    of the marker (``removed``, ``kept``), each where it applies."""

    vault_id: str
    instance_id: str
    marked_at: str
    earlier: Mapping[str, Any]
    reason: str = field(default="", metadata={"may_be_empty": True})
    restored: tuple[Any, ...] = ()
    effect: str = field(default="", metadata={"omit_default": True})
    detail: str | None = field(default=None, metadata={"omit_default": True})
    marker: str | None = field(default=None, metadata={"omit_default": True})
