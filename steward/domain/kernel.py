"""The shared kernel: the one Azure vocabulary protection, teardown and audit all speak.

One of each:

* :class:`VaultKind` - the two vault kinds and their ARM types; either spelling reads back.
* :class:`VaultRef` - the ARM id of a vault with its kind (strict: it ends up in request URLs). Any other ARM id
  is a :class:`steward.domain.ids.ResourceId`.
* :class:`SoftDeleteState` and :class:`ImmutabilityState` - Azure's spellings. A Recovery Services vault says
  ``Invalid/Enabled/Disabled/AlwaysON`` (azure-mgmt-recoveryservices ``models.SoftDeleteState``), a Backup vault
  ``Off/On/AlwaysOn`` (azure-mgmt-dataprotection ``models.SoftDeleteState``): both read as the same state.
* :func:`normalise_region`, :func:`subscription_of`.
* ISO 8601 times as ARM writes them: :func:`parse_time` (strict), :func:`read_time` (lenient, for what Azure
  answers), :func:`require_time` (strict, must be there), :func:`zoned_time` / :func:`aware_time` (a time that
  must name its zone: raises / or nothing) and :func:`format_time`.

Pure: no Azure SDK, no I/O (``tests/unit/test_purity.py``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Final

from steward.domain.errors import InvalidValue

__all__ = [
    "ImmutabilityState",
    "InvalidValue",
    "LenientEnum",
    "SoftDeleteState",
    "VaultKind",
    "VaultRef",
    "aware_time",
    "format_time",
    "id_key",
    "name_of",
    "normalise_region",
    "parse_time",
    "read_time",
    "require_time",
    "resource_group_of",
    "subscription_of",
    "zoned_time",
]


# --------------------------------------------------------------------------------------------- vault kinds


class VaultKind(StrEnum):
    """The two kinds of vault. The value is the short name rules and records use; :attr:`arm_type` is the
    resource type in the vault's ARM id. ``VaultKind("Microsoft.RecoveryServices/vaults")`` reads too."""

    RECOVERY_SERVICES = "RecoveryServices"
    BACKUP = "Backup"

    @property
    def arm_type(self) -> str:
        return _ARM_TYPES[self]

    @property
    def label(self) -> str:
        return "Recovery Services vault" if self is VaultKind.RECOVERY_SERVICES else "Backup vault"

    @classmethod
    def of_type(cls, resource_type: str) -> VaultKind | None:
        """The kind whose ARM type is ``resource_type`` (any case), or None for any other type."""
        wanted = resource_type.strip().lower()
        return next((kind for kind, arm in _ARM_TYPES.items() if arm.lower() == wanted), None)

    @classmethod
    def _missing_(cls, value: object) -> VaultKind | None:
        if not isinstance(value, str):
            return None
        text = value.strip().lower()
        return next((k for k in cls if k.value.lower() == text), None) or cls.of_type(text)


_ARM_TYPES: Final[dict[VaultKind, str]] = {
    VaultKind.RECOVERY_SERVICES: "Microsoft.RecoveryServices/vaults",
    VaultKind.BACKUP: "Microsoft.DataProtection/backupVaults",
}

_NAME = r"[A-Za-z0-9][A-Za-z0-9_.()-]{0,89}"
_VAULT_ID = re.compile(
    r"/subscriptions/(?P<sub>[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})"
    rf"/resourceGroups/(?P<rg>{_NAME})"
    r"/providers/(?P<type>Microsoft\.RecoveryServices/vaults|Microsoft\.DataProtection/backupVaults)"
    rf"/(?P<name>{_NAME})",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class VaultRef:
    """The ARM id of one vault, with its kind. Equality is case-insensitive through ``key``."""

    subscription_id: str
    resource_group: str
    name: str
    kind: VaultKind

    @classmethod
    def parse(cls, text: object) -> VaultRef:
        if not isinstance(text, str):
            raise InvalidValue("the vault id must be a string")
        if len(text) > 512:
            raise InvalidValue("the vault id is too long to be an ARM id")
        match = _VAULT_ID.fullmatch(text.strip().rstrip("/"))
        if match is None:
            raise InvalidValue(
                "the vault id must look like /subscriptions/{guid}/resourceGroups/{rg}/providers/"
                "Microsoft.RecoveryServices/vaults/{name} or .../Microsoft.DataProtection/backupVaults/{name}"
            )
        return cls(match["sub"].lower(), match["rg"], match["name"], VaultKind(match["type"]))

    @property
    def id(self) -> str:
        return (
            f"/subscriptions/{self.subscription_id}/resourceGroups/{self.resource_group}"
            f"/providers/{self.kind.arm_type}/{self.name}"
        )

    @property
    def key(self) -> str:
        return self.id.lower()

    def __eq__(self, other: object) -> bool:
        return isinstance(other, VaultRef) and self.key == other.key

    def __hash__(self) -> int:
        return hash(self.key)

    def __str__(self) -> str:
        return self.id


# --------------------------------------------------------------------------------------------- states


class LenientEnum(StrEnum):
    """An enum read from records and from Azure, whose spelling varies in case: ``parse`` reads any case (and
    the other words Azure has for a member), or falls back to ``default``, or raises :class:`InvalidValue`."""

    @classmethod
    def parse(cls, text: object, default: Any = None) -> Any:
        if isinstance(text, cls):
            return text
        if isinstance(text, str):
            found = _lookup(cls, text)
            if found is not None:
                return found
        if default is not None:
            return default
        raise InvalidValue(f"{text!r} is not one of {', '.join(m.value for m in cls)}")


def _lookup(cls: type[LenientEnum], text: str) -> Any:
    wanted = text.strip().lower()
    return next((m for m in cls if m.value.lower() == wanted), None) or _WORDS.get(cls, {}).get(wanted)


class _VaultSetting(LenientEnum):
    """A vault's protection setting: built from any of Azure's words for it (``SoftDeleteState("On")``), and
    ordered by how much it keeps backup data (``strength``)."""

    @classmethod
    def _missing_(cls, value: object) -> Any:
        return _lookup(cls, value) if isinstance(value, str) else None

    @property
    def strength(self) -> int:
        """Unknown -1, off 0, on (unlocked) 1, can never be turned off (locked) 2."""
        return _STRENGTH.get(self.value, -1)


class SoftDeleteState(_VaultSetting):
    """Soft delete of a vault (and a Recovery Services vault's enhanced security), in Recovery Services'
    spelling; a Backup vault's ``On``/``Off``/``AlwaysOn`` are the same states (``ON``/``OFF`` name them too,
    and ``SoftDeleteState("On")`` reads). ``UNKNOWN``: the vault did not say."""

    ENABLED = "Enabled"
    DISABLED = "Disabled"
    ALWAYS_ON = "AlwaysON"
    INVALID = "Invalid"
    UNKNOWN = "Unknown"
    ON = "Enabled"  # a Backup vault's word for ENABLED
    OFF = "Disabled"  # a Backup vault's word for DISABLED

    @property
    def on_off(self) -> str:
        """The Backup vault's word for it (``On``/``Off``/``AlwaysOn``; ``Invalid``, ``Unknown`` as they are): the
        audit's reports, events and stored inventories have always said it so."""
        return {"Enabled": "On", "Disabled": "Off", "AlwaysON": "AlwaysOn"}.get(self.value, self.value)

    @classmethod
    def from_arm(cls, value: str | None) -> SoftDeleteState:
        """What either vault kind answers; anything else (or nothing) is UNKNOWN."""
        state: SoftDeleteState = cls.parse(value or "", cls.UNKNOWN)
        return cls.UNKNOWN if state is cls.INVALID else state


class ImmutabilityState(_VaultSetting):
    """Immutability of a vault (both kinds spell it alike). ``UNKNOWN``: the vault did not say."""

    DISABLED = "Disabled"
    UNLOCKED = "Unlocked"
    LOCKED = "Locked"
    UNKNOWN = "Unknown"

    @classmethod
    def from_arm(cls, value: str | None) -> ImmutabilityState:
        """What either vault kind answers; nothing or anything else is UNKNOWN."""
        state: ImmutabilityState = cls.parse(value or "", cls.UNKNOWN)
        return state


#: the other words Azure uses for the same states (lower case)
_WORDS: Final[dict[type[LenientEnum], dict[str, Any]]] = {
    SoftDeleteState: {"on": SoftDeleteState.ENABLED, "off": SoftDeleteState.DISABLED,
                      "alwayson": SoftDeleteState.ALWAYS_ON},
}
_STRENGTH: Final[dict[str, int]] = {"Disabled": 0, "Enabled": 1, "Unlocked": 1, "AlwaysON": 2, "Locked": 2}


# --------------------------------------------------------------------------------------------- ids and regions


# Lenient string helpers for ids Azure listed (an inventory keeps what it read); an id that ends up in a request
# is parsed strictly by ``ResourceId`` or ``VaultRef``.


def id_key(resource_id: str) -> str:
    """Case-insensitive comparison key of an ARM id."""
    return resource_id.strip().rstrip("/").lower()


def _segments(resource_id: str) -> list[str]:
    return [s for s in resource_id.strip().split("/") if s]


def subscription_of(resource_id: str) -> str:
    """The (lower-case) subscription id an ARM id starts with, or "" when it starts with none."""
    parts = _segments(resource_id)
    if len(parts) >= 2 and parts[0].lower() == "subscriptions":
        return parts[1].lower()
    return ""


def resource_group_of(resource_id: str) -> str:
    """The resource group an ARM id names, as written, or ""."""
    parts = _segments(resource_id)
    if len(parts) >= 4 and parts[2].lower() == "resourcegroups":
        return parts[3]
    return ""


def name_of(resource_id: str) -> str:
    """The last segment of an ARM id (the resource's name), or ""."""
    parts = _segments(resource_id)
    return parts[-1] if parts else ""


def normalise_region(region: str) -> str:
    """ARM location names: ``West Europe`` and ``westeurope`` are one region."""
    return "".join(region.split()).lower()


# --------------------------------------------------------------------------------------------- time

_ARM_TIME = re.compile(r"(.*T\d{2}:\d{2}:\d{2})(\.\d+)?(Z|[+-]\d{2}:?\d{2})?")
_FRACTION = re.compile(r"(\.\d{6})\d+")


def parse_time(text: object) -> datetime | None:
    """ISO 8601 as ARM writes it (``Z``, up to 7 fractional digits; no zone is UTC) -> aware UTC datetime;
    None or "" -> None; anything else raises :class:`InvalidValue`."""
    if text is None or text == "":
        return None
    if not isinstance(text, str):
        raise InvalidValue(f"expected an ISO 8601 time string, got {type(text).__name__}")
    match = _ARM_TIME.fullmatch(text.strip())
    if match is None:
        raise InvalidValue(f"{text!r} is not an ISO 8601 date-time")
    base, fraction, zone = match.groups()
    micro = (fraction or "")[1:7]
    normalised = base + (("." + micro.ljust(6, "0")) if micro else "") + ("+00:00" if zone in (None, "Z") else zone)
    try:
        parsed = datetime.fromisoformat(normalised)
    except ValueError as error:
        raise InvalidValue(f"{text!r} is not an ISO 8601 date-time: {error}") from error
    return parsed.astimezone(UTC)


def read_time(value: object) -> datetime | None:
    """A time Azure answered, leniently: ``Z``, 7-digit fractions, offsets, no zone (UTC), a datetime; None for
    what does not parse and for ``0001-01-01…`` (Azure's "never")."""
    if value in (None, ""):
        return None
    if isinstance(value, datetime):
        moment = value
    else:
        text = _FRACTION.sub(r"\1", str(value).strip()).replace("Z", "+00:00")
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return None if moment.year < 1971 else moment.astimezone(UTC)


def require_time(text: object) -> datetime:
    """:func:`parse_time` for a time that must be there: None or "" raise :class:`InvalidValue` too."""
    moment = parse_time(text)
    if moment is None:
        raise InvalidValue("expected an ISO 8601 time, got nothing")
    return moment


def zoned_time(text: str) -> datetime:
    """An ISO 8601 time that must name its zone (``Z`` or an offset), as it is; a time without a zone is not
    taken as UTC. Raises :class:`InvalidValue` whose message is a predicate for the caller to put after the
    value's name: ``is not an ISO 8601 time`` or ``has no time zone``."""
    try:
        value = datetime.fromisoformat(text)
    except (TypeError, ValueError):
        raise InvalidValue("is not an ISO 8601 time") from None
    if value.tzinfo is None:
        raise InvalidValue("has no time zone")
    return value


def aware_time(text: object) -> datetime | None:
    """:func:`zoned_time` that answers None for anything else (no zone, not a time, not a string)."""
    if not isinstance(text, str):
        return None
    try:
        return zoned_time(text)
    except InvalidValue:
        return None


def format_time(value: datetime | None, *, whole_seconds: bool = False) -> str | None:
    """Aware datetime -> ``YYYY-MM-DDTHH:MM:SS[.ffffff]Z`` in UTC (naive: taken as UTC); ``whole_seconds`` drops
    the fraction. None stays None."""
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    if whole_seconds:
        return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
