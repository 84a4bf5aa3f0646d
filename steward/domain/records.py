"""The one record codec: how a domain value crosses the durable boundary and becomes published event data.

A class that derives from :class:`Record` (a frozen dataclass) gets ``to_record()`` / ``from_record()`` from its
fields: keys are the camelCase field names, enums travel by value, times as ISO 8601, a mapping as a JSON
object. Activity inputs and outputs, orchestration outputs and the data of published events are such records:
the intents an orchestration starts with (``events.py``), the rules' decisions, protection refs and outcomes,
the teardown inventory.

Record keys are a contract: a running orchestration keeps the records it received in its history and reads
them again on every replay, and event subscribers filter on them. Records written before this codec
(``ProtectionRef`` and ``ProtectionOutcome`` used ``dataclasses.asdict``: snake_case keys) are still read for one
release: :meth:`Record.from_record` takes a field's snake_case key when its camelCase key is absent
(``tests/orchestrators/test_record_history.py`` replays a history recorded before the change).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import MISSING, dataclass, fields
from datetime import datetime
from enum import StrEnum
from types import NoneType
from typing import Any, ClassVar, TypeVar, cast, get_args, get_origin, get_type_hints

from steward.domain.errors import InvalidResourceId, InvalidValue
from steward.domain.ids import ResourceId
from steward.domain.kernel import LenientEnum, format_time, parse_time

__all__ = ["Record", "camel", "record_str"]

RecordT = TypeVar("RecordT", bound="Record")


def camel(name: str) -> str:
    """``source_resource_id`` -> ``sourceResourceId``."""
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def record_str(record: Mapping[str, Any], key: str, *, optional: bool = False) -> Any:
    """``record[key]`` as a non-empty string (or None when ``optional`` and absent); :class:`InvalidValue`."""
    value = record.get(key)
    if value is None and optional:
        return None
    if not isinstance(value, str) or (not value and not optional):
        raise InvalidValue(f"field {key!r} must be a non-empty string (got {value!r})")
    return value


@dataclass(frozen=True)
class _Codec:
    """How one dataclass field crosses the durable boundary."""

    name: str
    key: str
    hint: Any
    default: Any  # dataclasses.MISSING when the field is required
    may_be_empty: bool = False  # a required string that may be "" (or absent from older records)
    omit_default: bool = False  # left out of the record while it has its default (a field added later)
    keep_offset: bool = False  # a time written by ``datetime.isoformat()`` (``+00:00``), as records before had it

    def dump(self, value: Any) -> Any:
        if isinstance(value, Record):
            return value.to_record()
        if isinstance(value, ResourceId):
            return str(value)
        if isinstance(value, datetime) and self.keep_offset:
            return value.isoformat()
        if isinstance(value, StrEnum):
            return value.value
        if isinstance(value, datetime) or self.hint == datetime | None:
            return format_time(value)
        if isinstance(value, Mapping):
            return dict(value)
        if isinstance(value, tuple):
            return [v.to_record() if isinstance(v, Record) else v for v in value]
        return value

    def load(self, record: Mapping[str, Any]) -> Any:
        required = self.default is MISSING
        hint = self.hint
        if isinstance(hint, type) and issubclass(hint, LenientEnum):
            return hint.parse(record.get(self.key, None if required else self.default.value))
        if isinstance(hint, type) and issubclass(hint, StrEnum):
            value = record.get(self.key, None if required else self.default.value)
            try:
                return hint(value)
            except ValueError:
                raise InvalidValue(f"field {self.key!r}: {value!r} is not a {hint.__name__}") from None
        if hint == datetime | None:
            return parse_time(record.get(self.key))
        if hint is datetime:
            moment = parse_time(record.get(self.key))
            if moment is None:
                raise InvalidValue(f"field {self.key!r} must be an ISO 8601 time (got {record.get(self.key)!r})")
            return moment
        if hint is ResourceId or hint == ResourceId | None:
            text = record_str(record, self.key, optional=hint is not ResourceId)
            try:
                return None if text is None else ResourceId.parse(text)
            except InvalidResourceId as error:
                raise InvalidValue(f"field {self.key!r}: {error}") from None
        optional_enum = _optional_enum(hint)
        if optional_enum is not None:
            value = record.get(self.key)
            try:
                return None if value is None else optional_enum(value)
            except ValueError:
                raise InvalidValue(f"field {self.key!r}: {value!r} is not a {optional_enum.__name__}") from None
        tagged = _tagged_records(hint)
        if tagged:
            given: Any = record.get(self.key)
            tags = {str(cls.type_name): cls for cls in tagged}
            tag = given.get(tagged[0].tag_key) if isinstance(given, Mapping) else None
            chosen = tags.get(tag) if isinstance(tag, str) else None
            if chosen is None:
                raise InvalidValue(f"field {self.key!r} must be an object whose kind is one of {sorted(tags)}")
            return chosen.from_record(given)
        nested = _nested_record(hint)
        if nested is not None:
            value = record.get(self.key)
            if value is None and hint is not nested:
                return None
            if not isinstance(value, Mapping):
                raise InvalidValue(f"field {self.key!r} must be a {nested.__name__} object (got {value!r:.80})")
            return nested.from_record(value)
        if hint is str:
            if required and not self.may_be_empty:
                return record_str(record, self.key)
            return str(record.get(self.key) or ("" if required else self.default))
        if hint == str | None:
            return record_str(record, self.key, optional=True)
        if hint is bool:
            return bool(record.get(self.key, self.default))
        if hint == bool | None:
            value = record.get(self.key)
            if value is not None and not isinstance(value, bool):
                raise InvalidValue(f"field {self.key!r} must be true, false or null (got {value!r})")
            return value
        if get_origin(hint) is tuple and get_args(hint) == (str, ...):
            value = record.get(self.key) or []
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise InvalidValue(f"field {self.key!r} must be a list of strings")
            return tuple(value)
        if hint == tuple[str, ...] | None:
            value = record.get(self.key)
            if value is not None and (not isinstance(value, list) or not all(isinstance(v, str) for v in value)):
                raise InvalidValue(f"field {self.key!r} must be a list of strings or null")
            return None if value is None else tuple(value)
        listed = _listed(hint)
        if listed is not None:
            value = record.get(self.key) or []
            if not isinstance(value, list):
                raise InvalidValue(f"field {self.key!r} must be a list (got {type(value).__name__})")
            if listed is Any:
                return tuple(value)  # JSON values passed on as they came
            if not all(isinstance(v, Mapping) for v in value):
                raise InvalidValue(f"field {self.key!r} must be a list of {listed.__name__} objects")
            return tuple(listed.from_record(v) for v in value)
        if hint is float or hint == float | None:
            value = record.get(self.key)
            if value is None and (hint is not float or not required):
                return None if hint is not float else self.default
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise InvalidValue(f"field {self.key!r} must be a number (got {value!r:.80})")
            return value  # as the record holds it: an integer stays one
        if _optional_mapping(hint):
            value = record.get(self.key)
            if value is not None and not isinstance(value, Mapping):
                raise InvalidValue(f"field {self.key!r} must be an object or null (got {type(value).__name__})")
            return None if value is None else dict(value)
        if hint == int | str | None:  # a value Azure types differently by service (a job error's code), kept as given
            value = record.get(self.key)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int | str)):
                raise InvalidValue(f"field {self.key!r} must be an integer, a string or null (got {value!r:.80})")
            return value
        if hint == int | None:
            value = record.get(self.key)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
                raise InvalidValue(f"field {self.key!r} must be an integer or null (got {value!r:.80})")
            return value
        if hint is int:
            value = record.get(self.key, self.default)
            if isinstance(value, bool) or not isinstance(value, int | str):
                raise InvalidValue(f"field {self.key!r} must be an integer (got {value!r})")
            try:
                return int(value)
            except ValueError:
                raise InvalidValue(f"field {self.key!r} must be an integer (got {value!r:.80})") from None
        if get_origin(hint) in (Mapping, dict):
            value = record.get(self.key) or {}
            if not isinstance(value, Mapping):
                raise InvalidValue(f"field {self.key!r} must be an object (got {type(value).__name__})")
            return dict(value)
        raise TypeError(f"no record codec for {self.name}: {hint!r}")  # a programming error, caught by tests


def _optional_mapping(hint: Any) -> bool:
    """A ``Mapping[str, Any] | None`` (or ``dict``) field: a JSON object or null."""
    args = [a for a in get_args(hint) if a is not NoneType]
    return len(args) == 1 and len(get_args(hint)) == 2 and get_origin(args[0]) in (Mapping, dict)


def _optional_enum(hint: Any) -> type[StrEnum] | None:
    """The (strict) enum of an ``Enum | None`` field, else None."""
    args = [a for a in get_args(hint) if a is not NoneType]
    if len(args) == 1 and len(get_args(hint)) == 2 and isinstance(args[0], type) and issubclass(args[0], StrEnum):
        return None if issubclass(args[0], LenientEnum) else args[0]
    return None


def _tagged_records(hint: Any) -> list[type[Record]]:
    """The record classes of a field that holds one of several (``ExplicitVault | RegionalDefaultVault``), each
    told apart by its tag (``type_name`` under ``tag_key``); empty for any other field."""
    args = list(get_args(hint))
    if len(args) < 2 or not all(isinstance(a, type) and issubclass(a, Record) and a.type_name for a in args):
        return []
    return args


def _listed(hint: Any) -> Any:
    """The element of a ``tuple[SomeRecord, ...]`` (a list of records) or ``tuple[Any, ...]`` (a list of JSON
    values passed on unread) field, else None."""
    if get_origin(hint) is not tuple:
        return None
    args = get_args(hint)
    if len(args) != 2 or args[1] is not Ellipsis:
        return None
    element = args[0]
    if element is Any or (isinstance(element, type) and issubclass(element, Record)):
        return element
    return None


def _nested_record(hint: Any) -> type[Record] | None:
    """The :class:`Record` class a field holds (``Principal`` or ``Principal | None``), else None."""
    args = [a for a in get_args(hint) if a is not NoneType] if get_args(hint) else [hint]
    if len(args) == 1 and isinstance(args[0], type) and issubclass(args[0], Record):
        return args[0]
    return None


class Record:
    """``to_record``/``from_record`` derived from the dataclass fields, for records whose fields are strings,
    booleans, integers, enums (lenient or strict), times, resource ids, JSON objects and other records: keys
    are the camelCase field names, enums travel by value, times as ISO 8601, a ``tuple[SomeRecord, ...]`` as a
    list of records and a ``tuple[Any, ...]`` as a list of JSON values passed on unread; a field without a
    default must be present (a string non-empty).
    A class with a ``type_name`` writes it first under ``tag_key`` (``type``: the targets of teardown steps;
    ``kind``: intents, decisions and vault targets), which tells apart the records a field may hold."""

    type_name: ClassVar[str | None] = None
    tag_key: ClassVar[str] = "type"
    #: Refuse a record with a key that is no field's (camelCase or, for older records, snake_case) beyond
    #: ``extra_keys``: for an orchestration's input, so that another orchestration's record is not taken for it.
    closed: ClassVar[bool] = False
    extra_keys: ClassVar[frozenset[str]] = frozenset()

    @classmethod
    def _codecs(cls) -> tuple[_Codec, ...]:
        cached: tuple[_Codec, ...] | None = cls.__dict__.get("_codecs_cache")
        if cached is None:
            hints = get_type_hints(cls)
            cached = tuple(
                _Codec(
                    f.name,
                    camel(f.name),
                    hints[f.name],
                    f.default if f.default_factory is MISSING else f.default_factory(),
                    bool(f.metadata.get("may_be_empty")),
                    bool(f.metadata.get("omit_default")),
                    bool(f.metadata.get("keep_offset")),
                )
                for f in fields(cast(Any, cls))
            )
            cls._codecs_cache = cached  # type: ignore[attr-defined]
        return cached

    def to_record(self) -> dict[str, Any]:
        record: dict[str, Any] = {self.tag_key: self.type_name} if self.type_name else {}
        for codec in self._codecs():
            value = getattr(self, codec.name)
            if codec.omit_default and value == codec.default:
                continue  # older records (and fingerprints) stay as they were
            record[codec.key] = codec.dump(value)
        return record

    @classmethod
    def read(cls: type[RecordT], value: RecordT | Mapping[str, Any]) -> RecordT:
        """``value`` when it already is this record, else the record :meth:`from_record` reads from it: for the
        helpers that take an activity's result either as its record or as the mapping the history holds."""
        return value if isinstance(value, cls) else cls.from_record(cast(Mapping[str, Any], value))

    @classmethod
    def from_record(cls: type[RecordT], record: Mapping[str, Any]) -> RecordT:
        if not isinstance(record, Mapping):
            raise InvalidValue(f"a {cls.__name__} record must be an object")
        codecs = cls._codecs()
        if cls.closed:
            known = {c.key for c in codecs} | {c.name for c in codecs} | cls.extra_keys
            known |= {cls.tag_key} if cls.type_name else set()
            unknown = sorted(str(k) for k in record if k not in known)
            if unknown:
                raise InvalidValue(f"not a {cls.__name__} record: unknown field(s) {unknown[:5]}")
        # LEGACY (one release): records written before the camelCase codec used the snake_case field names
        legacy = {c.key: record[c.name] for c in codecs if c.key != c.name and c.key not in record and c.name in record}
        view = {**record, **legacy} if legacy else record
        values = {codec.name: codec.load(view) for codec in codecs}
        return cast(RecordT, cast(Any, cls)(**values))
