"""Loading a rules document: YAML or JSON text, bounded, validated against the schema the caller passes in
(``steward.rules_file`` reads ``rules.schema.json``; the domain reads no file), errors with line and field."""

from __future__ import annotations

import itertools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, TypeAlias

import jsonschema
import yaml

from steward.domain.drill_rules import build_drill_rules
from steward.domain.errors import InvalidResourceId, InvalidRules, RuleProblem
from steward.domain.ids import ResourceId
from steward.domain.kernel import normalise_region
from steward.domain.rules.model import (
    DEFAULT_FILL_PERCENT,
    DEFAULT_OPT_OUT_TAG,
    DEFAULT_VAULT_TAG,
    BlobTier,
    ExplicitVault,
    MatchCondition,
    OnDelete,
    ProtectionRule,
    ProtectionSpec,
    RequiredVaultSettings,
    RuleSet,
    TagCondition,
    VaultSetSpec,
)
from steward.domain.rules.routing import vault_kind_name
from steward.domain.workloads import PermissionsScope, workload_for

#: Bound on a rules document; real ones are a few KB.
MAX_RULES_BYTES: Final = 256 * 1024
#: Bound on YAML nodes, so that a hostile document cannot make validation expensive.
MAX_RULES_NODES: Final = 20_000
#: Bound on nesting (a rules document needs about six levels); deeper input would exhaust the recursion of
#: YAML composition and schema validation.
MAX_RULES_DEPTH: Final = 32
#: Bound on the schema problems reported for one document (validation stops there).
MAX_RULES_PROBLEMS: Final = 50
#: libyaml's parser when PyYAML was built with it (about 10x faster); the pure-Python one otherwise. Both are safe
#: loaders: no tags that construct objects.
_LOADER: Final[type[yaml.SafeLoader]] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

SUPPORTED_TYPES: Final = (
    "Microsoft.Compute/virtualMachines",
    "Microsoft.Compute/disks",
    "Microsoft.Storage/storageAccounts",
    "Microsoft.DBforPostgreSQL/flexibleServers",
)

_CONTAINER = re.compile(r"[a-z0-9](?:[a-z0-9]|-(?=[a-z0-9])){2,62}")

Path_: TypeAlias = tuple[str | int, ...]


def _field(path: Sequence[str | int]) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


class _Positions:
    """Line of every node of the document, by path (the key's line for mapping values)."""

    def __init__(self) -> None:
        self.lines: dict[Path_, int] = {}

    def line(self, path: Sequence[str | int]) -> int | None:
        current: Path_ = tuple(path)
        while True:
            if current in self.lines:
                return self.lines[current]
            if not current:
                return None
            current = current[:-1]


def _compose(text: str, source: str) -> tuple[Any, _Positions]:
    """Parse YAML (JSON is YAML too) into plain data, recording lines. Refuses aliases, duplicate keys,
    non-string keys and oversized documents."""
    positions = _Positions()
    try:
        depth = nodes = 0
        # the parser is iterative (safe on any input); the limits apply while parsing, before anything is built
        for event in yaml.parse(text, Loader=_LOADER):
            line = event.start_mark.line + 1 if event.start_mark else None
            if isinstance(event, yaml.AliasEvent):
                raise InvalidRules([RuleProblem(source, line, "", "YAML aliases (*name) are not allowed in rules")])
            if isinstance(event, (yaml.ScalarEvent, yaml.CollectionStartEvent)):
                nodes += 1
                if nodes > MAX_RULES_NODES:
                    raise InvalidRules(
                        [
                            RuleProblem(
                                source, line, "", f"the document is too large (more than {MAX_RULES_NODES} values)"
                            )
                        ]
                    )
            if isinstance(event, yaml.CollectionStartEvent):
                depth += 1
                if depth > MAX_RULES_DEPTH:
                    raise InvalidRules([RuleProblem(source, line, "", f"nested deeper than {MAX_RULES_DEPTH} levels")])
            elif isinstance(event, yaml.CollectionEndEvent):
                depth -= 1
        node = yaml.compose(text, Loader=_LOADER)  # bounded in depth and size by the pass above
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line = mark.line + 1 if mark is not None else None
        raise InvalidRules([RuleProblem(source, line, "", f"not valid YAML/JSON: {error.problem or error}")]) from None
    except yaml.YAMLError as error:
        raise InvalidRules([RuleProblem(source, None, "", f"not valid YAML/JSON: {error}")]) from None
    if node is None:
        raise InvalidRules([RuleProblem(source, 1, "", "the document is empty")])
    problems: list[RuleProblem] = []
    scalars = yaml.SafeLoader("")
    try:
        data = _to_data(node, (), _Walk(positions, problems, source, scalars))
    finally:
        scalars.dispose()
    if problems:
        raise InvalidRules(problems)
    return data, positions


@dataclass
class _Walk:
    positions: _Positions
    problems: list[RuleProblem]
    source: str
    scalars: yaml.SafeLoader


def _to_data(node: yaml.Node, path: Path_, walk: _Walk) -> Any:
    positions, problems, source = walk.positions, walk.problems, walk.source
    positions.lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        result: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else None
            if key is None or key_node.tag != "tag:yaml.org,2002:str":
                problems.append(
                    RuleProblem(source, key_node.start_mark.line + 1, _field(path), "every key must be a plain string")
                )
                continue
            if key in result:
                problems.append(
                    RuleProblem(source, key_node.start_mark.line + 1, _field((*path, key)), "duplicate key")
                )
                continue
            positions.lines[(*path, key)] = key_node.start_mark.line + 1
            result[key] = _to_data(value_node, (*path, key), walk)
        return result
    if isinstance(node, yaml.SequenceNode):
        return [_to_data(item, (*path, index), walk) for index, item in enumerate(node.value)]
    try:
        return walk.scalars.construct_object(node, deep=True)
    except (yaml.YAMLError, ValueError) as error:
        problems.append(RuleProblem(source, node.start_mark.line + 1, _field(path), f"invalid value: {error}"))
        return None


_TYPE_NAMES: Final = {
    "string": "a string",
    "integer": "an integer",
    "boolean": "true or false",
    "object": "a mapping",
    "array": "a list",
}


def _schema_problem(error: jsonschema.ValidationError, positions: _Positions, source: str) -> list[RuleProblem]:
    path = list(error.absolute_path)
    if error.validator == "additionalProperties" and isinstance(error.instance, Mapping):
        schema = error.schema if isinstance(error.schema, Mapping) else {}
        allowed = set(schema.get("properties", {}))
        extras = sorted(k for k in error.instance if k not in allowed)
        return [
            RuleProblem(
                source,
                positions.line([*path, extra]),
                _field([*path, extra]),
                f"unknown field {extra!r}; allowed here: {', '.join(sorted(allowed))}",
            )
            for extra in extras
        ]
    if error.validator == "required":
        message = str(error.message).replace("is a required property", "is missing")
    elif error.validator == "type":
        wanted = error.validator_value
        names = [_TYPE_NAMES.get(str(w), str(w)) for w in (wanted if isinstance(wanted, list) else [wanted])]
        message = f"must be {' or '.join(names)}, got {error.instance!r}"
        if isinstance(error.instance, bool | int | float) and "string" in str(wanted):
            message += " (quote it: YAML reads true/yes/on and numbers as non-strings)"
    elif error.validator == "oneOf" and path and path[-1] == "vault":
        message = (
            "must be 'regional-default', {regionalDefault: {subscription: <guid>}}, "
            "{id: <vault id>, region: <region>} or {vaultSet: {namePrefix: <prefix>} | {tag: {name, value}}}"
        )
    elif error.validator == "oneOf" and len(path) == 2 and path[0] == "rules":
        message = "a rule needs exactly one of 'protect' or 'optOut'"
    elif error.validator == "oneOf" and path and path[-1] == "recoveryPoint":
        message = "must be 'latest' or {random: {window: <ISO 8601 duration, e.g. P7D>}}"
    elif error.validator == "pattern" and path and path[-1] in {"every", "lifetime", "window", "timeout"}:
        message = f"{error.instance!r} is not an ISO 8601 duration of weeks, days, hours, minutes, seconds (e.g. P7D)"
    elif error.validator == "oneOf" and len(path) >= 2 and path[-2] == "tags":
        message = "a tag condition is a string (equals), {exists: true} or {absent: true}"
    elif error.validator == "pattern":
        message = f"{error.instance!r} is not in the expected form ({error.validator_value})"
    else:
        message = str(error.message)
    if len(message) > 300:
        message = message[:297] + "..."
    return [RuleProblem(source, positions.line(path), _field(path), message)]


@dataclass(frozen=True)
class RulesSchema:
    """The JSON Schema of rules documents and its validator, built once. The schema lives in one file,
    ``steward/domain/rules.schema.json``; ``steward.rules_file`` reads it (the domain reads no file)."""

    document: Mapping[str, Any]
    validator: Any  # a jsonschema Draft 2020-12 validator of ``document``

    @classmethod
    def of(cls, document: Mapping[str, Any]) -> RulesSchema:
        jsonschema.Draft202012Validator.check_schema(document)
        return cls(document, jsonschema.Draft202012Validator(document))


def parse_rules(
    text: str,
    source: str = "<rules>",
    *,
    schema: RulesSchema,
    opt_out_tag: str | None = None,
    vault_default_tag: str = DEFAULT_VAULT_TAG,
    vault_fill_percent: int = DEFAULT_FILL_PERCENT,
) -> RuleSet:
    """Parse and validate a rules document against ``schema``. ``opt_out_tag`` (from settings) overrides the
    document's. Raises :class:`InvalidRules` listing every problem with its line and field.
    ``steward.rules_file.load_rules`` is this with the packaged schema."""
    if len(text.encode("utf-8", "surrogatepass")) > MAX_RULES_BYTES:
        raise InvalidRules([RuleProblem(source, None, "", f"the document is larger than {MAX_RULES_BYTES} bytes")])
    data, positions = _compose(text, source)
    errors = sorted(
        itertools.islice(schema.validator.iter_errors(data), MAX_RULES_PROBLEMS + 1),
        key=lambda e: (positions.line(list(e.absolute_path)) or 0, str(e.message)),
    )
    problems = [
        problem
        for error in _best_errors(errors[:MAX_RULES_PROBLEMS])
        for problem in _schema_problem(error, positions, source)
    ]
    if len(errors) > MAX_RULES_PROBLEMS:
        problems.append(
            RuleProblem(
                source,
                None,
                "",
                f"more problems not listed: the first {MAX_RULES_PROBLEMS} "
                "found are shown; fix them and validate again",
            )
        )
    if problems:
        raise InvalidRules(problems)
    rules: list[ProtectionRule] = []
    seen: dict[str, int | None] = {}
    for index, rule_data in enumerate(data["rules"]):
        rule = _build_rule(rule_data, ("rules", index), positions, source, problems)
        key = rule.name.lower()
        if key in seen:
            problems.append(
                RuleProblem(
                    source,
                    positions.line(("rules", index, "name")),
                    _field(("rules", index, "name")),
                    f"rule name {rule.name!r} is used twice (first on line {seen[key]})",
                )
            )
        seen[key] = rule.line
        rules.append(rule)

    def drill_problem(where: Sequence[str | int], message: str) -> None:
        problems.append(RuleProblem(source, positions.line(where), _field(where), message))

    drills = build_drill_rules(
        data.get("drills") or [],
        line=positions.line,
        problem=drill_problem,
        protection_rules=[r.name for r in rules if r.protect is not None],
        supported_types=SUPPORTED_TYPES,
    )
    if problems:
        raise InvalidRules(problems)
    return RuleSet(
        tuple(rules),
        source=source,
        opt_out_tag=opt_out_tag or data.get("optOutTag") or DEFAULT_OPT_OUT_TAG,
        vault_default_tag=vault_default_tag,
        drills=drills,
        vault_fill_percent=vault_fill_percent,
    )


def _best_errors(errors: list[jsonschema.ValidationError]) -> list[jsonschema.ValidationError]:
    """One error per location: for a oneOf, the branch error is more useful than each branch's complaint."""
    result: list[jsonschema.ValidationError] = []
    seen: set[tuple[tuple[str | int, ...], str]] = set()
    for error in errors:
        key = (tuple(error.absolute_path), str(error.validator))
        if key in seen:
            continue
        seen.add(key)
        result.append(error)
    return result


def _build_rule(
    data: Mapping[str, Any], path: Path_, positions: _Positions, source: str, problems: list[RuleProblem]
) -> ProtectionRule:
    name = data["name"]
    match = _build_match(data.get("match") or {}, (*path, "match"))
    protect = None
    if "protect" in data:
        protect = _build_protect(
            data["protect"], (*path, "protect"), match=match, positions=positions, source=source, problems=problems
        )
    return ProtectionRule(name, match, protect, data.get("optOut"), positions.line(path))


def _build_match(data: Mapping[str, Any], path: Path_) -> MatchCondition:
    tags = tuple(
        TagCondition(name, equals=value)
        if isinstance(value, str)
        else TagCondition(name, exists=bool(value.get("exists")), absent=bool(value.get("absent")))
        for name, value in (data.get("tags") or {}).items()
    )
    types = data.get("types")
    groups = data.get("resourceGroups")
    subs = data.get("subscriptions")
    regions = data.get("regions")
    return MatchCondition(
        types=None if types is None else frozenset(t.lower() for t in types),
        tags=tags,
        resource_groups=None if groups is None else tuple(g.lower() for g in groups),
        subscriptions=None if subs is None else frozenset(s.lower() for s in subs),
        regions=None if regions is None else frozenset(normalise_region(r) for r in regions),
    )


def _build_protect(
    data: Mapping[str, Any],
    path: Path_,
    *,
    match: MatchCondition,
    positions: _Positions,
    source: str,
    problems: list[RuleProblem],
) -> ProtectionSpec:
    def problem(where: Sequence[str | int], message: str) -> None:
        problems.append(RuleProblem(source, positions.line((*path, *where)), _field((*path, *where)), message))

    vault_data = data["vault"]
    vault: str | ExplicitVault | VaultSetSpec = "regional-default"
    vault_subscription: str | None = None
    if isinstance(vault_data, Mapping) and "id" in vault_data:
        try:
            vault_id = ResourceId.parse(vault_data["id"])
        except InvalidResourceId as error:
            problem(("vault", "id"), str(error))
        else:
            explicit = ExplicitVault(vault_id, normalise_region(vault_data["region"]))
            if vault_id.vault_kind is None:
                problem(("vault", "id"), f"{vault_id.full_type} is not a Recovery Services vault or a Backup vault")
            else:
                for type_key in sorted(match.types or ()):
                    workload = workload_for(type_key)
                    if workload is not None and workload.vault_kind is not explicit.vault_kind:
                        problem(
                            ("vault", "id"),
                            f"{workload.resource_type} needs a {vault_kind_name(workload.vault_kind)}, "
                            f"not a {vault_kind_name(explicit.vault_kind)}",
                        )
            vault = explicit
    elif isinstance(vault_data, Mapping) and "vaultSet" in vault_data:
        given = vault_data["vaultSet"]
        tag = given.get("tag") or {}
        vault = VaultSetSpec(
            str(given.get("namePrefix") or ""), str(tag.get("name") or ""), str(tag.get("value") or "")
        )
        vault_subscription = given.get("subscription")
    elif isinstance(vault_data, Mapping):
        vault_subscription = (vault_data.get("regionalDefault") or {}).get("subscription")
    datastore = data.get("datastore") or {}
    containers = tuple(datastore.get("blobContainers") or ())
    for index, container in enumerate(containers):
        if not _CONTAINER.fullmatch(container):
            problem(
                ("datastore", "blobContainers", index),
                f"{container!r} is not a blob container name (3-63 lower-case letters, digits and single hyphens)",
            )
    snapshot_group = datastore.get("snapshotResourceGroup")
    if snapshot_group is not None:
        try:
            ResourceId.parse(f"/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/{snapshot_group}")
        except InvalidResourceId as error:
            problem(("datastore", "snapshotResourceGroup"), str(error).split(": ", 1)[-1])
    role_scope = PermissionsScope(data.get("roleScope", PermissionsScope.RESOURCE.value))
    needs_none = False
    if "roleScope" in data:
        for type_key in sorted(match.types or ()):
            workload = workload_for(type_key)
            if workload is not None and not workload.roles:
                needs_none = True
                problem(
                    ("roleScope",),
                    f"roleScope applies to the Backup-vault workloads (disks, storage accounts, PostgreSQL flexible "
                    f"servers), whose vault identity needs role assignments; {workload.resource_type} is protected "
                    f"in a {vault_kind_name(workload.vault_kind)}, which needs none: drop roleScope or split the rule",
                )
    pinned = isinstance(vault_data, Mapping) and "id" in vault_data  # an id that does not parse is reported above
    if role_scope is not PermissionsScope.RESOURCE and not pinned and not needs_none:
        # review finding 2: a group- or subscription-wide grant goes to the identity of whatever vault the rule
        # resolves to. "regional-default" falls back to the only vault of the region, tagged or not
        # (vault_choice), and a vault set admits any vault by name prefix or tag (vault_sets): whoever may create
        # or tag a vault could receive backup and snapshot rights over every disk, storage account or server of
        # the group or subscription. A wider scope is therefore only for a vault the operator pinned by its id.
        given = "a vault set" if isinstance(vault, VaultSetSpec) else "regional-default"
        problem(
            ("roleScope",),
            f"roleScope {role_scope.value} grants the vault's identity its roles on every resource of the "
            f"{'resource group' if role_scope is PermissionsScope.RESOURCE_GROUP else 'subscription'}, so it needs "
            f"the vault named by id (vault: {{id: ..., region: ...}}), not {given}: anyone who can create or tag a "
            "vault in the region could otherwise become the vault that receives the grant. Name the vault by id, "
            "or drop roleScope (resource, least privilege)",
        )
    settings = data.get("requiredVaultSettings") or {}
    soft_delete = settings.get("softDelete")
    immutability = settings.get("immutability")
    tier = datastore.get("blobTier")
    return ProtectionSpec(
        vault=vault,
        vault_subscription=vault_subscription,
        policy=data.get("policy"),
        datastore_snapshot_group=snapshot_group,
        blob_tier=None if tier is None else BlobTier(tier),
        blob_containers=containers,
        on_delete=OnDelete(data.get("onDelete", "retain")),
        rpo_hours=data.get("rpoHours"),
        required_settings=RequiredVaultSettings(
            soft_delete=None if soft_delete is None else ("AlwaysOn" if soft_delete.lower() == "alwayson" else "On"),
            immutability=None if immutability is None else ("Locked" if immutability == "Locked" else "Unlocked"),
            cross_region_restore=settings.get("crossRegionRestore"),
        ),
        role_scope=role_scope,
    )
