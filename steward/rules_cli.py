"""``steward rules``: check protection rules and see what they decide, before the app acts on them.

    steward rules check [FILE] [--output table|json|csv]   validate a rules document; list its rules
    steward rules explain RESOURCE_ID --location REGION [--tag KEY=VALUE]... [--attached-to VM_ID] [--rules FILE]
                                               what the rules decide for one resource, and which rule decides
    steward rules schema                       the JSON Schema of rules documents (for editors)

Without FILE / ``--rules``: the rules the settings name (``STEWARD_RULES_PATH`` or ``STEWARD_RULES``), else the
packaged defaults. ``explain`` takes the facts from the command line and reads nothing from Azure, so it answers
"what would happen to a VM tagged env=dev in northeurope?" before such a VM exists.

Exit codes: 0 valid (``explain``: the resource is protected); 1 invalid rules (``explain``: not protected);
2 bad usage.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping, Sequence
from typing import Any, Final, TextIO

from steward.cli_output import OUTPUTS, write_rows
from steward.domain import protection_flow
from steward.domain.drill_rules import first_drill
from steward.domain.errors import InvalidResourceId, InvalidRules
from steward.domain.ids import ResourceId
from steward.domain.kernel import VaultKind
from steward.domain.rules import (
    ExplicitVault,
    MatchCondition,
    Protect,
    ProtectionDecision,
    ResourceFacts,
    RuleSet,
    VaultSetSpec,
    route,
)
from steward.rules_file import load_configured_rules, schema_text

EXIT_OK, EXIT_NO, EXIT_USAGE = 0, 1, 2


def _configured(path: str | None, env: Mapping[str, str]) -> RuleSet:
    from steward.settings import RULES, RULES_PATH

    if path:
        return load_configured_rules(path, None)
    return load_configured_rules(env.get(RULES_PATH) or None, env.get(RULES) or None)


def _match_text(match: MatchCondition) -> str:
    parts = []
    if match.types is not None:
        parts.append("type " + "|".join(sorted(t.rsplit("/", 1)[-1] for t in match.types)))
    if match.regions is not None:
        parts.append("region " + "|".join(sorted(match.regions)))
    if match.subscriptions is not None:
        parts.append("subscription " + "|".join(sorted(s[:8] + "…" for s in match.subscriptions)))
    if match.resource_groups is not None:
        parts.append("group " + "|".join(match.resource_groups))
    for tag in match.tags:
        value = "absent" if tag.absent else "any" if tag.exists else tag.equals
        parts.append(f"tag {tag.name}={value}")
    return ", ".join(parts) or "everything"


def _target_text(rules: RuleSet, index: int) -> str:
    rule = rules.rules[index]
    if rule.protect is None:
        return f"opt out ({rule.opt_out or 'opted out'})"
    spec = rule.protect
    if isinstance(spec.vault, ExplicitVault):
        vault = spec.vault.vault_id.name
    elif isinstance(spec.vault, VaultSetSpec):
        given = spec.vault
        named = given.name_prefix + "*" if given.name_prefix else f"{given.tag_name}={given.tag_value}"
        vault = f"the vault set {named}"
    else:
        vault = spec.vault
    policy = spec.policy or "the workload's default policy"
    roles = "" if spec.role_scope == "resource" else f", vault roles per {_ROLE_SCOPE_TEXT[spec.role_scope]}"
    return f"protect in {vault}, {policy}{roles}"


#: how ``check`` and ``explain`` name a rule's ``roleScope``
_ROLE_SCOPE_TEXT: Final = {"resource": "resource (least privilege)", "resourceGroup": "resource group",
                           "subscription": "subscription (a disk's snapshot role per snapshot group)"}


CHECK_COLUMNS = ("index", "name", "line", "when", "then")
EXPLAIN_COLUMNS = ("resource", "type", "region", "decision", "rule", "reason", "vault", "policy")


def check_rows(rules: RuleSet) -> list[dict[str, Any]]:
    return [{"index": index + 1, "name": rule.name, "line": rule.line, "when": _match_text(rule.match),
             "then": _target_text(rules, index)} for index, rule in enumerate(rules.rules)]


def check(rules: RuleSet, out: TextIO, output: str = "table") -> int:
    if output == "json":
        out.write(json.dumps({"source": rules.source, "valid": True, "optOutTag": rules.opt_out_tag,
                              "rules": check_rows(rules)}, indent=2) + "\n")
        return EXIT_OK
    if output == "csv":
        write_rows(out, check_rows(rules), CHECK_COLUMNS, "csv")
        return EXIT_OK
    out.write(f"{rules.source}: valid, {len(rules.rules)} rule(s); opt-out tag {rules.opt_out_tag}=true\n")
    for index, rule in enumerate(rules.rules):
        line = f"line {rule.line}" if rule.line else ""
        out.write(f"  {index + 1:>2}. {rule.name:<32} {line:<9} when {_match_text(rule.match)}\n")
        out.write(f"      -> {_target_text(rules, index)}\n")
    return EXIT_OK


def explain(rules: RuleSet, facts: ResourceFacts) -> dict[str, Any]:
    """The decision and the trace that led to it: each rule in order, whether it matched, until one did."""
    trace: list[dict[str, Any]] = []
    for rule in rules.rules:
        matched = rule.match.holds(facts)
        trace.append({"rule": rule.name, "line": rule.line, "matched": matched})
        if matched:
            break
    decision: ProtectionDecision = route(facts, rules)
    decided_by = getattr(decision, "rule", None)
    if decided_by is None and (any(step["matched"] for step in trace) or decision.kind == "unsupported"):
        trace = []  # decided before any rule is read: the opt-out tag, an unsupported type, an attached disk
    protected_by = decision.rule if isinstance(decision, Protect) else None
    drill = first_drill(rules.drills, facts.type, facts.tags, protected_by)
    roles = None
    if isinstance(decision, Protect) and decision.vault_kind is VaultKind.BACKUP:
        # the Backup vault identity's role assignments, each at the scope the protection would assign it
        roles = [{"role": role.role_name, "scope": scope}
                 for role, scope in protection_flow.role_scopes(decision, facts.id)]
    return {"resource": str(facts.id), "type": facts.type, "region": facts.region, "tags": dict(facts.tags),
            "rules": rules.source, "decision": decision.to_record(), "trace": trace, "roles": roles,
            "drill": None if drill is None else {**drill.to_record(),
                                                 "drillGroup": drill.group_for(facts.region, facts.subscription)}}


def _explain_text(result: dict[str, Any], out: TextIO) -> None:
    decision = result["decision"]
    out.write(f"{result['resource']}\n  {result['type']} in {result['region']}")
    out.write(f", tags {json.dumps(result['tags'])}\n" if result["tags"] else ", no tags\n")
    if not result["trace"]:
        out.write("  decided before the rules are read\n")
    for step in result["trace"]:
        mark = "matches" if step["matched"] else "does not match"
        where = f" (line {step['line']})" if step["line"] else ""
        out.write(f"  rule {step['rule']!r}{where}: {mark}\n")
    if decision["kind"] == "protect":
        vault = decision["vault"]
        if vault["kind"] == "explicit":
            where = vault["vaultId"]
        elif vault["kind"] == "vault-set":
            members = (f"named {vault['namePrefix']}*" if vault.get("namePrefix")
                       else f"tagged {vault.get('tagName')}={vault.get('tagValue')}")
            where = (f"the vault set of {vault['vaultKind']} vaults {members} in {vault['region']} of subscription "
                     f"{vault['subscriptionId']}: the member with the most room below {vault['fillPercent']}% full")
        else:
            where = (f"the {vault['vaultKind']} vault of {vault['region']} in subscription {vault['subscriptionId']} "
                     f"(tagged {vault['defaultTag']}=true, or the only one)")
        out.write(f"=> PROTECT by rule {decision['rule']!r}\n  vault:  {where}\n  policy: {decision['policy']}\n"
                  f"  RPO:    {decision['rpoHours']} h; on delete: {decision['onDelete']}\n")
        if result.get("roles"):  # the Backup vault identity's role assignments (roleScope)
            _roles_text(result, out)
        drill = result.get("drill")
        if drill is None:
            out.write("  drill:  none (no drill rule matches)\n")
        else:
            point = "latest" if drill["window"] is None else f"random within {drill['window']}"
            out.write(f"  drill:  {drill['name']!r} (line {drill['line']}) every {drill['every']}, "
                      f"recovery point {point}, into {drill['drillGroup']}, restored resources live "
                      f"{drill['lifetime']}\n")
    else:
        label = "NOT PROTECTED (" + _NOT_PROTECTED.get(decision.get("basis") or "", "opt out") + ")" \
            if decision["kind"] == "opt-out" else "NOT PROTECTED (unsupported)"
        rule = f" by rule {decision['rule']!r}" if decision.get("rule") else ""
        out.write(f"=> {label}{rule}: {decision['reason']}\n")


def _roles_text(result: Mapping[str, Any], out: TextIO) -> None:
    """Each role assignment the protection needs and where: the resource's own (one per protected resource) or
    shared (one per resource group, snapshot group or subscription, made once for every resource there)."""
    resource = ResourceId.parse(result["resource"])
    chosen = result["decision"].get("roleScope") or "resource"
    roles = result["roles"]
    own = sum(1 for r in roles if ResourceId.parse(r["scope"]) == resource)
    count = f"{len(roles)} role assignment{'s' if len(roles) != 1 else ''}"
    split = ("its own" if own == len(roles) else "shared" if not own
             else f"{own} its own, {len(roles) - own} shared")
    least = ", least privilege" if chosen == "resource" else ""
    out.write(f"  roles:  {count} for the vault identity ({split}; roleScope {chosen}{least})\n")
    for role in roles:
        scope = ResourceId.parse(role["scope"])
        if scope == resource:
            where = "on the resource itself"
        elif scope.resource_group is None:
            where = f"on subscription {scope.subscription_id} (shared with the vault's other protections there)"
        else:
            where = f"on resource group {scope.resource_group} (shared with the vault's other protections there)"
        out.write(f"          {role['role']} {where}\n")


#: How ``explain`` names each opt-out basis (the outcomes OptedOut, CoveredByVm, NoMatchingRule).
_NOT_PROTECTED: Final = {"covered-by-vm": "covered by its VM's backup", "no-rule": "no rule matches"}


def explain_row(result: Mapping[str, Any]) -> dict[str, Any]:
    """The decision as one flat row (``--output csv``)."""
    decision = result["decision"]
    vault = decision.get("vault") or {}
    return {"resource": result["resource"], "type": result["type"], "region": result["region"],
            "decision": decision["kind"], "rule": decision.get("rule") or "", "reason": decision.get("reason") or "",
            "vault": vault.get("vaultId") or vault.get("vaultKind") or "", "policy": decision.get("policy") or ""}


def _tags(pairs: Sequence[str]) -> dict[str, str]:
    tags: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"--tag takes KEY=VALUE, got {pair!r}")
        tags[key.strip()] = value
    return tags


def main(argv: list[str] | None = None, *, out: TextIO | None = None, err: TextIO | None = None,
         env: Mapping[str, str] | None = None) -> int:
    import os

    out, err = out or sys.stdout, err or sys.stderr
    parser = argparse.ArgumentParser(prog="steward rules", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    checking = commands.add_parser("check", help="validate a rules document and list its rules",
                                   description="Validate a rules document and list its rules.",
                                   epilog="example: steward rules check rules.yaml --output csv")
    checking.add_argument("file", nargs="?", help="rules file (YAML or JSON)")
    checking.add_argument("--output", choices=OUTPUTS, default="table", help="table (default), json or csv")
    explaining = commands.add_parser(
        "explain", help="what the rules decide for one resource",
        description="What the rules decide for one resource, and which rule decides (reads nothing from Azure).",
        epilog="example: steward rules explain /subscriptions/<sub>/resourceGroups/rg/providers/"
               "Microsoft.Compute/virtualMachines/vm1 --location westeurope --tag env=dev --output json")
    explaining.add_argument("resource_id", help="the resource's ARM id (it need not exist)")
    explaining.add_argument("--location", required=True, help="its region, e.g. westeurope")
    explaining.add_argument("--tag", action="append", default=[], metavar="KEY=VALUE", help="a tag (repeat)")
    explaining.add_argument("--attached-to", default="", metavar="VM_ID", help="a disk's VM (ARM managedBy)")
    explaining.add_argument("--rules", help="rules file (default: the configured or packaged rules)")
    explaining.add_argument("--output", choices=OUTPUTS, default=None, help="table (default), json or csv")
    explaining.add_argument("--json", action="store_true", help="the same as --output json")
    commands.add_parser("schema", help="the JSON Schema of rules documents",
                        epilog="example: steward rules schema > rules.schema.json")
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:
        return EXIT_OK if exit_.code == 0 else EXIT_USAGE
    environment = os.environ if env is None else env
    if args.command == "schema":
        out.write(schema_text())
        return EXIT_OK
    try:
        rules = _configured(args.file if args.command == "check" else args.rules, environment)
    except InvalidRules as invalid:
        err.write(f"{invalid}\n")
        return EXIT_NO
    if args.command == "check":
        return check(rules, out, args.output)
    try:
        facts = ResourceFacts(ResourceId.parse(args.resource_id), args.location, _tags(args.tag),
                              attached_to=args.attached_to)
    except (InvalidResourceId, ValueError) as bad:
        err.write(f"steward rules explain: {bad}\n")
        return EXIT_USAGE
    result = explain(rules, facts)
    output = args.output or ("json" if args.json else "table")
    if output == "json":
        out.write(json.dumps(result, indent=2) + "\n")
    elif output == "csv":
        write_rows(out, [explain_row(result)], EXPLAIN_COLUMNS, "csv")
    else:
        _explain_text(result, out)
    return EXIT_OK if result["decision"]["kind"] == Protect.kind else EXIT_NO
