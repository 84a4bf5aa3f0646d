"""ARM resource ids: parse, normalise, compare case-insensitively, derive parents.

Accepted shapes (everything is under one subscription; tenant-level ids are not ours to act on)::

    /subscriptions/{guid}
    /subscriptions/{guid}/resourceGroups/{rg}
    /subscriptions/{guid}[/resourceGroups/{rg}]/providers/{Namespace}/{type}/{name}[/{childType}/{childName}]...
    .../{a resource}/providers/{Namespace}/{type}/{name}...   (extension resources, e.g. role assignments)

ARM treats ids case-insensitively (Event Grid even lower-cases parts of ``subject``), so equality and hash go
through :attr:`ResourceId.key`; ``str(rid)`` keeps the casing it was given, with the three keywords
(``subscriptions``, ``resourceGroups``, ``providers``) in their canonical spelling and no trailing slash.

The parser is strict on purpose: these ids end up in request URLs and in OData ``$filter`` strings, so
anything that could change a URL's or a filter's structure is refused with :class:`InvalidResourceId`:
empty or ``.``/``..`` segments, ``?``, ``#``, ``%`` escapes, backslashes, quotes, whitespace and control or
format characters, and over-long input.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property, total_ordering
from typing import Final

from steward.domain.errors import InvalidResourceId
from steward.domain.kernel import VaultKind

__all__ = [
    "MAX_ID_LENGTH",
    "MAX_NAME_LENGTH",
    "MAX_RESOURCE_GROUP_LENGTH",
    "InvalidResourceId",
    "ProviderSection",
    "ResourceId",
    "is_subscription_guid",
]

#: Bound on the whole id. ARM request URLs are limited to a few KB; no real resource id comes close.
MAX_ID_LENGTH: Final = 2048
#: ARM's documented limit for resource group names.
MAX_RESOURCE_GROUP_LENGTH: Final = 90
#: Bound on any other name segment (the longest documented per-type name limits are in the low hundreds).
MAX_NAME_LENGTH: Final = 260
#: Bound on nesting: provider sections times type/name pairs. Real ids have a handful.
MAX_DEPTH: Final = 16

_GUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_NAMESPACE = re.compile(r"[A-Za-z][A-Za-z0-9]*(?:\.[A-Za-z][A-Za-z0-9]*)+")
_TYPE = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,99}")
#: Characters refused anywhere, with the reason given to the caller.
_FORBIDDEN: Final[dict[str, str]] = {
    "?": "a query string is not part of a resource id",
    "#": "a fragment is not part of a resource id",
    "%": "percent-escapes are not allowed",
    "\\": "backslashes are not allowed",
    "'": "quotes are not allowed",
    '"': "quotes are not allowed",
    "<": "'<' is not allowed",
    ">": "'>' is not allowed",
    "&": "'&' is not allowed",
    "*": "'*' is not allowed",
}

_RESOURCES_NAMESPACE: Final = "Microsoft.Resources"


def is_subscription_guid(text: str) -> bool:
    """True when ``text`` is a subscription id in GUID form (any case)."""
    return _GUID.fullmatch(text) is not None


@dataclass(frozen=True)
class ProviderSection:
    """One ``providers/{namespace}/{type}/{name}[/{type}/{name}]...`` run of an id."""

    namespace: str
    types: tuple[str, ...]
    names: tuple[str, ...]

    @property
    def full_type(self) -> str:
        return "/".join((self.namespace, *self.types))

    def text(self) -> str:
        pairs = "/".join(f"{t}/{n}" for t, n in zip(self.types, self.names, strict=True))
        return f"/providers/{self.namespace}/{pairs}"


def _shown(text: str) -> str:
    """The offending input, safe to echo: repr() neutralises control characters; long input is cut."""
    return repr(text if len(text) <= 120 else text[:117] + "...")


def _fail(text: str, reason: str) -> InvalidResourceId:
    return InvalidResourceId(f"invalid resource id {_shown(text)}: {reason}")


def _check_characters(text: str) -> None:
    for position, char in enumerate(text):
        reason = _FORBIDDEN.get(char)
        if reason is not None:
            raise _fail(text, f"{reason} ({char!r} at position {position})")
        if char.isspace():
            raise _fail(text, f"whitespace is not allowed ({char!r} at position {position})")
        if unicodedata.category(char).startswith("C"):
            raise _fail(text, f"control or format character {char!r} at position {position}")


def _check_name(text: str, what: str, name: str, limit: int = MAX_NAME_LENGTH) -> None:
    if name in {".", ".."}:
        raise _fail(text, f"{what} {name!r} is a path traversal segment")
    if len(name) > limit:
        raise _fail(text, f"{what} is {len(name)} characters long (at most {limit})")


@total_ordering
@dataclass(frozen=True, eq=False)
class ResourceId:
    """A parsed ARM resource id. Build with :meth:`parse`; compare, hash and sort case-insensitively."""

    subscription_id: str
    resource_group: str | None = None
    sections: tuple[ProviderSection, ...] = ()

    # ---- construction -------------------------------------------------------------------------------

    @classmethod
    def parse(cls, text: object) -> ResourceId:
        """Parse ``text``; raise :class:`InvalidResourceId` saying what is wrong."""
        if not isinstance(text, str):
            raise InvalidResourceId(f"invalid resource id: expected a string, got {type(text).__name__}")
        if not text:
            raise InvalidResourceId("invalid resource id: it is empty")
        if len(text) > MAX_ID_LENGTH:
            raise _fail(text, f"it is {len(text)} characters long (at most {MAX_ID_LENGTH})")
        _check_characters(text)
        if not text.startswith("/"):
            raise _fail(text, "it must start with '/subscriptions/'")
        body = text[1:-1] if text.endswith("/") and len(text) > 1 else text[1:]
        segments = body.split("/")
        for index, segment in enumerate(segments):
            if not segment:
                raise _fail(text, f"empty segment {index + 1} (a doubled or trailing '/')")
            if segment in {".", ".."}:
                raise _fail(text, f"segment {index + 1} {segment!r} is a path traversal segment")
        return cls._from_segments(text, segments)

    @classmethod
    def _from_segments(cls, text: str, segments: list[str]) -> ResourceId:
        if segments[0].lower() != "subscriptions":
            raise _fail(text, f"it must start with '/subscriptions/', not '/{segments[0]}'")
        if len(segments) < 2:
            raise _fail(text, "the subscription id is missing")
        subscription = segments[1]
        if not is_subscription_guid(subscription):
            raise _fail(text, f"the subscription id {subscription!r} is not a GUID")
        rest = segments[2:]
        group: str | None = None
        if rest and rest[0].lower() == "resourcegroups":
            if len(rest) < 2:
                raise _fail(text, "the resource group name is missing after 'resourceGroups'")
            group = rest[1]
            _check_name(text, "resource group name", group, MAX_RESOURCE_GROUP_LENGTH)
            if group.endswith("."):
                raise _fail(text, f"resource group name {group!r} must not end with '.'")
            rest = rest[2:]
        sections = cls._sections(text, rest)
        return cls(subscription, group, sections)

    @staticmethod
    def _sections(text: str, rest: list[str]) -> tuple[ProviderSection, ...]:
        sections: list[ProviderSection] = []
        index = 0
        depth = 0
        while index < len(rest):
            if rest[index].lower() != "providers":
                where = "the resource group" if not sections else "a resource"
                raise _fail(text, f"expected 'providers' after {where}, got {rest[index]!r}")
            if index + 1 >= len(rest):
                raise _fail(text, "the provider namespace is missing after 'providers'")
            namespace = rest[index + 1]
            if not _NAMESPACE.fullmatch(namespace) or len(namespace) > 100:
                raise _fail(text, f"{namespace!r} is not a provider namespace like 'Microsoft.Compute'")
            index += 2
            types: list[str] = []
            names: list[str] = []
            while index < len(rest) and rest[index].lower() != "providers":
                type_segment = rest[index]
                if not _TYPE.fullmatch(type_segment):
                    raise _fail(text, f"{type_segment!r} is not a resource type segment")
                if index + 1 >= len(rest):
                    raise _fail(text, f"the name after resource type {type_segment!r} is missing")
                _check_name(text, f"name of {type_segment!r}", rest[index + 1])
                types.append(type_segment)
                names.append(rest[index + 1])
                index += 2
                depth += 1
                if depth > MAX_DEPTH:
                    raise _fail(text, f"it nests more than {MAX_DEPTH} resource types")
            if not types:
                raise _fail(text, f"no resource type follows provider namespace {namespace!r}")
            sections.append(ProviderSection(namespace, tuple(types), tuple(names)))
        return tuple(sections)

    @classmethod
    def try_parse(cls, text: object) -> ResourceId | None:
        """:meth:`parse`, or None when ``text`` is not an id we accept (e.g. a management-group or root scope
        such as ``/providers/Microsoft.Management/managementGroups/mg`` or ``/``, which role assignments carry)."""
        try:
            return cls.parse(text)
        except InvalidResourceId:
            return None

    @classmethod
    def subscription(cls, subscription_id: str) -> ResourceId:
        """The id of a subscription scope, validated."""
        return cls.parse(f"/subscriptions/{subscription_id}")

    # ---- text and identity --------------------------------------------------------------------------

    @cached_property
    def _text(self) -> str:
        text = f"/subscriptions/{self.subscription_id}"
        if self.resource_group is not None:
            text += f"/resourceGroups/{self.resource_group}"
        return text + "".join(section.text() for section in self.sections)

    def __str__(self) -> str:
        return self._text

    def __repr__(self) -> str:
        return f"ResourceId({self._text!r})"

    @cached_property
    def key(self) -> str:
        """The lower-cased canonical text: what equality, hashing and ordering use."""
        return self._text.lower()

    def __eq__(self, other: object) -> bool:
        if isinstance(other, ResourceId):
            return self.key == other.key
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self.key)

    def __lt__(self, other: object) -> bool:
        if isinstance(other, ResourceId):
            return self.key < other.key
        return NotImplemented

    def same_as(self, text: str) -> bool:
        """True when ``text`` parses to this id (case-insensitively); False when it differs or is invalid."""
        try:
            return ResourceId.parse(text) == self
        except InvalidResourceId:
            return False

    # ---- what it is ---------------------------------------------------------------------------------

    @property
    def is_subscription(self) -> bool:
        return self.resource_group is None and not self.sections

    @property
    def is_resource_group(self) -> bool:
        return self.resource_group is not None and not self.sections

    @property
    def is_extension(self) -> bool:
        """True for an extension resource (a second ``providers`` section, e.g. a role assignment)."""
        return len(self.sections) > 1

    @property
    def provider(self) -> str:
        """The last provider section's namespace; ``Microsoft.Resources`` for groups and subscriptions."""
        return self.sections[-1].namespace if self.sections else _RESOURCES_NAMESPACE

    @property
    def types(self) -> tuple[str, ...]:
        """The type segments of the last provider section (("vaults", "backupFabrics", ...))."""
        if self.sections:
            return self.sections[-1].types
        return ("resourceGroups",) if self.resource_group is not None else ("subscriptions",)

    @property
    def names(self) -> tuple[str, ...]:
        """The names of the last provider section, one per type segment."""
        if self.sections:
            return self.sections[-1].names
        return (self.resource_group,) if self.resource_group is not None else (self.subscription_id,)

    @property
    def full_type(self) -> str:
        """``Microsoft.Compute/virtualMachines``, child types appended; ``Microsoft.Resources/resourceGroups``
        for a group, ``Microsoft.Resources/subscriptions`` for a subscription."""
        return "/".join((self.provider, *self.types))

    @property
    def type_key(self) -> str:
        """:attr:`full_type` lower-cased, for case-insensitive type comparisons."""
        return self.full_type.lower()

    def is_type(self, full_type: str) -> bool:
        """Case-insensitive comparison of :attr:`full_type` with ``full_type``."""
        return self.type_key == full_type.lower()

    @property
    def vault_kind(self) -> VaultKind | None:
        """The kind of vault this id names, or None when it names no vault."""
        return VaultKind.of_type(self.full_type)

    @property
    def name(self) -> str:
        """The last name: the resource's, the group's, or the subscription id."""
        return self.names[-1]

    # ---- relatives ----------------------------------------------------------------------------------

    @property
    def parent(self) -> ResourceId | None:
        """One level up: a child's parent, an extension's extended resource, a resource's group or
        subscription, a group's subscription; None for a subscription."""
        if self.sections:
            last = self.sections[-1]
            if len(last.types) > 1:
                shorter = ProviderSection(last.namespace, last.types[:-1], last.names[:-1])
                return ResourceId(self.subscription_id, self.resource_group, (*self.sections[:-1], shorter))
            return ResourceId(self.subscription_id, self.resource_group, self.sections[:-1])
        if self.resource_group is not None:
            return ResourceId(self.subscription_id)
        return None

    def ancestors(self) -> Iterator[ResourceId]:
        """Every parent up to and including the subscription, nearest first."""
        current = self.parent
        while current is not None:
            yield current
            current = current.parent

    def is_within(self, scope: ResourceId) -> bool:
        """True when this id is ``scope`` or lies below it."""
        return self.key == scope.key or self.key.startswith(scope.key + "/")

    @property
    def resource_group_id(self) -> ResourceId | None:
        if self.resource_group is None:
            return None
        return ResourceId(self.subscription_id, self.resource_group)

    @property
    def subscription_scope(self) -> ResourceId:
        return ResourceId(self.subscription_id)

    @property
    def top_level(self) -> ResourceId:
        """The top-level resource of the last provider section (a protected item's vault); self otherwise."""
        if not self.sections or len(self.sections[-1].types) == 1:
            return self
        last = self.sections[-1]
        top = ProviderSection(last.namespace, last.types[:1], last.names[:1])
        return ResourceId(self.subscription_id, self.resource_group, (*self.sections[:-1], top))

    def child(self, type_segment: str, name: str) -> ResourceId:
        """A child resource: ``vault.child("backupPolicies", "DefaultPolicy")``. On a group, a subscription
        or to start an extension resource, pass ``"Namespace/type"``: ``rg.child("Microsoft.Compute/disks",
        "d1")``. The result is validated like parsed input."""
        if "/" in name:
            raise InvalidResourceId(f"invalid child of {self._text!r}: the name {name!r} contains '/'")
        if "/" in type_segment:
            namespace, _, types = type_segment.partition("/")
            return ResourceId.parse(f"{self._text}/providers/{namespace}/{types}/{name}")
        if not self.sections:
            raise InvalidResourceId(
                f"invalid child of {self._text!r}: {type_segment!r} needs its provider namespace "
                "('Namespace/type') below a resource group or subscription"
            )
        if type_segment.lower() == "providers":
            raise InvalidResourceId(f"invalid child of {self._text!r}: 'providers' is not a resource type")
        return ResourceId.parse(f"{self._text}/{type_segment}/{name}")
