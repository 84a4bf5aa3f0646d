"""Drill rules (issue 17 item 1): the ``drills`` section of a rules document.

A drill rule says which protected resources are restored on a schedule, and how:

.. code-block:: yaml

    drills:
      - name: vms-weekly
        match: {types: [Microsoft.Compute/virtualMachines], tags: {env: prod}, rules: [prod-vms]}
        every: P7D                       # ISO 8601 duration: how often each matching resource is drilled
        share: 0.25                      # of the matching resources per run ...
        minimum: 1                       # ... and at least this many
        recoveryPoint: latest            # or {random: {window: P7D}}
        resourceGroup: backup-steward-drill-{region}   # per region and subscription ({region}, {subscription})
        lifetime: PT6H                   # restored resources may live this long
        budgets: {maxConcurrent: 5, maxRestoredGb: 512}
        validationHook: {timeout: PT1H}  # optional: wait for POST /api/drills/{id}/validation (default PT1H)

The first drill rule that matches a resource applies (as with protection rules). ``match.rules`` names protection
rules: the resource must be protected by one of them. The schema is the ``drills`` property of
``steward/domain/rules.schema.json`` (the one copy of the rules schema); the builder reports problems with the
line and the field, as the rest of the loader does. Pure: no I/O, no clock.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Final

from steward.domain.drills import DrillBudget, PointChoice

__all__ = [
    "DRILL_GROUP_DEFAULT",
    "DrillMatch",
    "DrillRule",
    "build_drill_rules",
    "parse_duration",
]

#: The drill resource group when a rule names none: one per region and subscription (the app creates it).
DRILL_GROUP_DEFAULT: Final = "backup-steward-drill-{region}"
_DURATION = re.compile(
    r"P(?!$)(?:(?P<weeks>\d+)W)?(?:(?P<days>\d+)D)?(?:T(?=\d)(?:(?P<hours>\d+)H)?(?:(?P<minutes>\d+)M)?"
    r"(?:(?P<seconds>\d+)S)?)?"
)
_GROUP_NAME = re.compile(r"[\w().-]{0,89}[\w()-]")
#: a drill longer than this is not a drill; a resource drilled less often than yearly is not proven
_MAX_LIFETIME: Final = timedelta(days=7)
_MAX_EVERY: Final = timedelta(days=366)
_MIN_EVERY: Final = timedelta(hours=1)
#: how long a drill waits for the user's validation hook when ``validationHook`` names no ``timeout``
VALIDATION_TIMEOUT_DEFAULT: Final = timedelta(hours=1)
_MAX_VALIDATION_TIMEOUT: Final = timedelta(hours=12)


def parse_duration(text: str) -> timedelta:
    """``P7D``, ``PT6H``, ``P1W``, ``P1DT12H``: weeks, days, hours, minutes, seconds (no years or months: their
    length varies). ValueError when it is not such a duration or is zero."""
    found = _DURATION.fullmatch(text) if isinstance(text, str) else None
    if found is None:
        raise ValueError(f"{text!r} is not an ISO 8601 duration of weeks, days, hours, minutes, seconds (e.g. P7D)")
    parts = {k: int(v) for k, v in found.groupdict().items() if v}
    value = timedelta(weeks=parts.get("weeks", 0), days=parts.get("days", 0), hours=parts.get("hours", 0),
                      minutes=parts.get("minutes", 0), seconds=parts.get("seconds", 0))
    if value <= timedelta(0):
        raise ValueError(f"{text!r} is zero")
    return value


def format_duration(value: timedelta) -> str:
    """The ISO 8601 form of ``value`` (days, hours, minutes, seconds)."""
    seconds = int(value.total_seconds())
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    time = "".join(f"{n}{u}" for n, u in ((hours, "H"), (minutes, "M"), (secs, "S")) if n)
    return "P" + (f"{days}D" if days else "") + (f"T{time}" if time else "") if seconds else "PT0S"


@dataclass(frozen=True)
class DrillMatch:
    types: frozenset[str] | None = None  # lower-cased
    tags: tuple[tuple[str, str], ...] = ()  # (name, value): the tag must equal the value (names case-blind)
    rules: frozenset[str] | None = None  # lower-cased protection rule names

    def holds(self, resource_type: str, tags: Mapping[str, str], protected_by: str | None) -> bool:
        if self.types is not None and resource_type.lower() not in self.types:
            return False
        if self.rules is not None and (protected_by is None or protected_by.lower() not in self.rules):
            return False
        lowered = {k.lower(): v for k, v in tags.items()}
        return all(lowered.get(name.lower()) == value for name, value in self.tags)

    def to_record(self) -> dict[str, Any]:
        return {"types": None if self.types is None else sorted(self.types), "tags": dict(self.tags),
                "rules": None if self.rules is None else sorted(self.rules)}


@dataclass(frozen=True)
class DrillRule:
    name: str
    match: DrillMatch
    every: timedelta
    budget: DrillBudget
    point: PointChoice
    window: timedelta | None  # random points: how far back
    resource_group: str  # template with {region} / {subscription}
    lifetime: timedelta
    line: int | None = None
    #: the user validation hook: how long a drill waits for ``POST /api/drills/{id}/validation`` (None: no hook)
    validation_timeout: timedelta | None = None

    def group_for(self, region: str, subscription: str) -> str:
        """The drill resource group's name in ``region`` and ``subscription``."""
        return self.resource_group.replace("{region}", region.lower()).replace("{subscription}", subscription.lower())

    def to_record(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "match": self.match.to_record(),
            "every": format_duration(self.every),
            "share": self.budget.share,
            "minimum": self.budget.minimum,
            "recoveryPoint": self.point.value,
            "window": None if self.window is None else format_duration(self.window),
            "resourceGroup": self.resource_group,
            "lifetime": format_duration(self.lifetime),
            "maxConcurrent": self.budget.max_concurrent,
            "maxRestoredGb": self.budget.max_restored_gb,
            "validationHook": None if self.validation_timeout is None
            else {"timeout": format_duration(self.validation_timeout)},
            "line": self.line,
        }


def first_drill(
    drills: Sequence[DrillRule], resource_type: str, tags: Mapping[str, str], protected_by: str | None
) -> DrillRule | None:
    """The drill rule that applies to a resource protected by rule ``protected_by`` (None: not protected)."""
    if protected_by is None:
        return None
    return next((d for d in drills if d.match.holds(resource_type, tags, protected_by)), None)


Problem = Callable[[Sequence[str | int], str], None]


def build_drill_rules(
    data: Sequence[Mapping[str, Any]],
    *,
    line: Callable[[Sequence[str | int]], int | None],
    problem: Problem,
    protection_rules: Sequence[str],
    supported_types: Sequence[str],
) -> tuple[DrillRule, ...]:
    """Drill rules from schema-valid data; semantic problems go to ``problem(path, message)`` (paths from the
    document root, e.g. ``("drills", 0, "every")``)."""
    known_rules = {name.lower() for name in protection_rules}
    known_types = {t.lower() for t in supported_types}
    result: list[DrillRule] = []
    seen: dict[str, int | None] = {}
    for index, item in enumerate(data):
        path: tuple[str | int, ...] = ("drills", index)
        name = item["name"]
        if name.lower() in seen:
            problem((*path, "name"), f"drill name {name!r} is used twice (first on line {seen[name.lower()]})")
        seen[name.lower()] = line(path)
        match_data = item.get("match") or {}
        for position, type_name in enumerate(match_data.get("types") or ()):
            if type_name.lower() not in known_types:
                problem((*path, "match", "types", position),
                        f"{type_name!r} is not a type Backup Steward protects ({', '.join(supported_types)})")
        for position, rule_name in enumerate(match_data.get("rules") or ()):
            if rule_name.lower() not in known_rules:
                problem((*path, "match", "rules", position), f"there is no protection rule named {rule_name!r}")
        durations: dict[str, timedelta] = {}
        for key in ("every", "lifetime"):
            if key in item:
                try:
                    durations[key] = parse_duration(item[key])
                except ValueError as error:
                    problem((*path, key), str(error))
        every = durations.get("every", timedelta(days=7))
        lifetime = durations.get("lifetime", timedelta(hours=6))
        if not _MIN_EVERY <= every <= _MAX_EVERY:
            problem((*path, "every"), "must be between PT1H and P366D")
        if lifetime > _MAX_LIFETIME:
            problem((*path, "lifetime"), "must be at most P7D: restored resources are a drill's, not a copy")
        window: timedelta | None = None
        point = PointChoice.LATEST
        point_data = item.get("recoveryPoint", "latest")
        if isinstance(point_data, Mapping):
            point = PointChoice.RANDOM
            try:
                window = parse_duration(point_data["random"]["window"])
            except ValueError as error:
                problem((*path, "recoveryPoint", "random", "window"), str(error))
        group = item.get("resourceGroup", DRILL_GROUP_DEFAULT)
        filled = group.replace("{region}", "westeurope").replace("{subscription}",
                                                                 "00000000-0000-0000-0000-000000000000")
        leftover = re.sub(r"\{(region|subscription)\}", "", group)
        if "{" in leftover or "}" in leftover:
            problem((*path, "resourceGroup"), "only {region} and {subscription} may be filled in")
        elif not _GROUP_NAME.fullmatch(filled) or len(filled) > 90:
            problem((*path, "resourceGroup"), f"{group!r} does not make a resource group name (1-90 letters, "
                    "digits, _ - . ( ), not ending with '.')")
        validation_timeout: timedelta | None = None
        hook = item.get("validationHook")
        if hook is not None:
            validation_timeout = VALIDATION_TIMEOUT_DEFAULT
            if "timeout" in hook:
                try:
                    validation_timeout = parse_duration(hook["timeout"])
                except ValueError as error:
                    problem((*path, "validationHook", "timeout"), str(error))
            if validation_timeout > _MAX_VALIDATION_TIMEOUT:
                problem((*path, "validationHook", "timeout"), "must be at most PT12H")
            if validation_timeout > lifetime:
                problem((*path, "validationHook", "timeout"), "must not be longer than the drill's lifetime")
        budgets = item.get("budgets") or {}
        budget = DrillBudget(share=float(item.get("share", 1.0)), minimum=int(item.get("minimum", 1)),
                             max_concurrent=int(budgets.get("maxConcurrent", 5)),
                             max_restored_gb=None if budgets.get("maxRestoredGb") is None
                             else float(budgets["maxRestoredGb"]))
        tags = tuple((str(k), str(v)) for k, v in (match_data.get("tags") or {}).items())
        types = match_data.get("types")
        rules = match_data.get("rules")
        result.append(DrillRule(
            name=name,
            match=DrillMatch(types=None if types is None else frozenset(t.lower() for t in types), tags=tags,
                             rules=None if rules is None else frozenset(r.lower() for r in rules)),
            every=every, budget=budget, point=point, window=window, resource_group=group, lifetime=lifetime,
            line=line(path), validation_timeout=validation_timeout))
    return tuple(result)
