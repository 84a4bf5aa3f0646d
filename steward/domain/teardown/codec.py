"""The teardown records' codec: camelCase keys derived from dataclass fields, lenient enums by value,
times as ISO 8601. Record field names are a contract: running orchestrations keep them in their history."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import MISSING, dataclass, fields
from datetime import datetime
from enum import StrEnum
from typing import Any, ClassVar, Final, TypeVar, cast, get_type_hints

from steward.domain.errors import InvalidValue
from steward.domain.kernel import (
    LenientEnum,
    format_time,
    parse_time,
)

RECORD_VERSION: Final = 1


#: A teardown request, event or record is malformed; the message says what is wrong. The shared kernel's error
#: (a vault id, a time or a state it could not read), under the teardown's name.
InvalidTeardownInput = InvalidValue


# --------------------------------------------------------------------------------------------- time


def req_time(value: datetime) -> str:
    text = format_time(value)
    assert text is not None
    return text


def record_str(record: Mapping[str, Any], key: str, *, optional: bool = False) -> Any:
    value = record.get(key)
    if value is None and optional:
        return None
    if not isinstance(value, str) or (not value and not optional):
        raise InvalidTeardownInput(f"field {key!r} must be a non-empty string (got {value!r})")
    return value


# --------------------------------------------------------------------------------------------- records

RecordT = TypeVar("RecordT", bound="FlatRecord")


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


@dataclass(frozen=True)
class _Codec:
    """How one dataclass field crosses the durable boundary."""

    name: str
    key: str
    hint: Any
    default: Any  # dataclasses.MISSING when the field is required
    may_be_empty: bool = False  # a required string that may be "" (or absent from older records)
    omit_default: bool = False  # left out of the record while it has its default (a field added later)

    def dump(self, value: Any) -> Any:
        if isinstance(value, StrEnum):
            return value.value
        if isinstance(value, datetime) or self.hint == datetime | None:
            return format_time(value)
        return value

    def load(self, record: Mapping[str, Any]) -> Any:
        required = self.default is MISSING
        hint = self.hint
        if isinstance(hint, type) and issubclass(hint, LenientEnum):
            return hint.parse(record.get(self.key, None if required else self.default.value))
        if hint == datetime | None:
            return parse_time(record.get(self.key))
        if hint is str:
            if required and not self.may_be_empty:
                return record_str(record, self.key)
            return str(record.get(self.key) or ("" if required else self.default))
        if hint == str | None:
            return record_str(record, self.key, optional=True)
        if hint is bool:
            return bool(record.get(self.key, self.default))
        if hint is int:
            value = record.get(self.key, self.default)
            if isinstance(value, bool) or not isinstance(value, int | str):
                raise InvalidTeardownInput(f"field {self.key!r} must be an integer (got {value!r})")
            return int(value)
        raise TypeError(f"no record codec for {self.name}: {hint!r}")  # a programming error, caught by tests


class FlatRecord:
    """``to_record``/``from_record`` derived from the dataclass fields, for records whose fields are strings,
    booleans, integers, lenient enums and times: keys are the camelCase field names (a contract, see the module
    docstring), enums travel by value, times as ISO 8601; a field without a default must be present (a string
    non-empty). A class with a ``type_name`` writes it first as ``type`` (the targets of steps)."""

    type_name: ClassVar[str | None] = None

    @classmethod
    def _codecs(cls) -> tuple[_Codec, ...]:
        cached: tuple[_Codec, ...] | None = cls.__dict__.get("_codecs_cache")
        if cached is None:
            hints = get_type_hints(cls)
            cached = tuple(
                _Codec(
                    f.name,
                    _camel(f.name),
                    hints[f.name],
                    f.default,
                    bool(f.metadata.get("may_be_empty")),
                    bool(f.metadata.get("omit_default")),
                )
                for f in fields(cast(Any, cls))
            )
            cls._codecs_cache = cached  # type: ignore[attr-defined]
        return cached

    def to_record(self) -> dict[str, Any]:
        record: dict[str, Any] = {"type": self.type_name} if self.type_name else {}
        for codec in self._codecs():
            value = getattr(self, codec.name)
            if codec.omit_default and value == codec.default:
                continue  # older records (and fingerprints) stay as they were
            record[codec.key] = codec.dump(value)
        return record

    @classmethod
    def from_record(cls: type[RecordT], record: Mapping[str, Any]) -> RecordT:
        values = {codec.name: codec.load(record) for codec in cls._codecs()}
        return cast(RecordT, cast(Any, cls)(**values))
