"""``steward why RESOURCE_ID`` (alias ``steward explain``): why is this resource protected or not?

One answer from three sources, each named in the answer:

* the **latest outcome**: the newest protection outcome for the resource in the local Durable store (the
  output of ``protect_resource``, ``reconcile_move``, ``handle_resource_gone`` or an audit's remediation), with
  its status, reason, rule, vault, instance and correlation id; an instance still running for it is named too;
* the **latest audit report** (``latest.json`` in the reports directory): its findings for the resource, or that
  the audit found none (and whether it covered the resource's subscription at all);
* the **rules**: what they decide for the resource now, from its facts (read from ARM when a target is known,
  else ``--location`` / ``--tag`` / ``--attached-to``, else the region an audit finding names).

By default everything comes from the running local stack (``make local``): ``--state-dir var`` names its store,
reports and sandbox. Exit codes, for pipelines: 0 the resource is protected (the latest outcome says so, or,
without one, the latest audit covered it and found nothing although the rules want it protected); 1 it is not,
or nothing says it is; 2 bad usage or nothing to read.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Final, TextIO

from azure.core.exceptions import AzureError

from steward.cli_output import write_rows
from steward.domain.errors import InvalidRecord, InvalidResourceId, InvalidRules, StewardError
from steward.domain.ids import ResourceId
from steward.domain.protection import SUCCESSFUL, OutcomeStatus, ProtectionOutcome
from steward.domain.rules import OptOut, Protect, ResourceFacts, RuleSet, Unsupported, route

EXIT_PROTECTED, EXIT_NOT_PROTECTED, EXIT_USAGE = 0, 1, 2
OUTPUTS: Final = ("table", "json", "csv")
EXAMPLE: Final = (
    "example (after 'make local', in the repository):\n"
    "  steward why /subscriptions/<sub>/resourceGroups/rg-shop/providers/Microsoft.Compute/virtualMachines/vm-web "
    "--output json\n"
    "  steward why <disk id> --no-arm --location westeurope --attached-to <vm id>   (rules from given facts)"
)
#: Statuses that mean the resource is protected, by name (the ``SUCCESSFUL`` outcomes).
PROTECTED_STATUSES: Final = frozenset(s.value for s in SUCCESSFUL)
RUNNING: Final = frozenset({"Pending", "Running", "ContinuedAsNew"})


# ---- the latest outcome -------------------------------------------------------------------------------------


def _outcome_records(value: Any) -> Iterator[Mapping[str, Any]]:
    """Every protection outcome record inside an orchestration output (a record, a list, nested documents), in
    today's camelCase shape whichever shape the output was written in (snake_case before issue 16's codec)."""
    if isinstance(value, Mapping):
        named = value.get("resourceId", value.get("resource_id"))
        if isinstance(value.get("status"), str) and isinstance(named, str):
            record: dict[str, Any] | None
            try:
                record = ProtectionOutcome.from_record(value).to_record()
            except (InvalidRecord, ValueError, TypeError, KeyError):
                record = None  # a status and a resource id, but not a protection outcome (another orchestration's)
            if record is not None:
                yield record
        for item in value.values():
            if isinstance(item, Mapping | list):
                yield from _outcome_records(item)
    elif isinstance(value, list):
        for item in value:
            yield from _outcome_records(item)


def _parsed(text: str | None) -> Any:
    if not text:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return None


def _names(value: Any, key: str) -> bool:
    """Whether an orchestration input names the resource (``resourceId`` anywhere in it)."""
    if isinstance(value, Mapping):
        return any((k == "resourceId" and isinstance(v, str) and v.lower() == key) or _names(v, key)
                   for k, v in value.items())
    if isinstance(value, list):
        return any(_names(v, key) for v in value)
    return False


def latest_outcome(db: Path, resource_id: str) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """(the newest outcome for the resource with its instance, an instance still running for it) from the
    local Durable store."""
    from sandbox.durable.store import DurableStore

    key = resource_id.lower()
    found: list[tuple[str, dict[str, Any]]] = []
    running: dict[str, Any] | None = None
    for record in DurableStore(db).instances():
        instance = {"instance": record.instance_id, "orchestrator": record.name, "runtimeStatus": record.status,
                    "updated": record.updated, "hostCorrelationId": record.correlation_id}
        if record.status in RUNNING:
            if _names(_parsed(record.input), key) and (running is None or record.updated > running["updated"]):
                running = {**instance, "customStatus": _parsed(record.custom_status)}
            continue
        for outcome in _outcome_records(_parsed(record.output)):
            if str(outcome["resourceId"]).lower() == key:
                found.append((record.updated, {**instance, **dict(outcome)}))
    if not found:
        return None, running
    latest = max(found, key=lambda pair: pair[0])[1]
    return latest, running if running is not None and running["updated"] > latest["updated"] else None


# ---- the latest audit ---------------------------------------------------------------------------------------


def latest_audit(reports: Path, resource_id: str) -> dict[str, Any] | None:
    """The latest audit report's findings for the resource, or None when no report is stored."""
    path = reports / "latest.json"
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    key = resource_id.lower()
    findings = [
        {k: f.get(k) for k in ("severity", "control", "title", "why", "fix", "location")}
        for f in document.get("findings") or [] if str(f.get("resourceId") or "").lower() == key
    ]
    subscription = ResourceId.parse(resource_id).subscription_id.lower()
    audited = {str(s).lower() for s in document.get("subscriptions") or []}
    return {"generatedAt": document.get("generatedAt"), "report": str(path),
            "coversSubscription": not audited or subscription in audited, "findings": findings}


# ---- the rules ----------------------------------------------------------------------------------------------


def rules_answer(rules: RuleSet, facts: ResourceFacts, source: str) -> dict[str, Any]:
    """What the rules decide for the resource, as the outcome it would have before any vault is looked for."""
    decision = route(facts, rules)
    record = decision.to_record()
    if isinstance(decision, Protect):
        expected = "protect"
    elif isinstance(decision, OptOut | Unsupported):
        from steward.domain.protection_flow import not_protected_status

        expected = not_protected_status(decision).value
    answer = {"decision": record["kind"], "expected": expected, "rule": record.get("rule"),
              "reason": record.get("reason") or "", "rulesSource": rules.source,
              "facts": {"location": facts.region, "tags": dict(facts.tags), "attachedTo": facts.attached_to or None,
                        "from": source}}
    if isinstance(decision, Protect):
        answer["policy"] = decision.policy
        answer["vault"] = record["vault"]
    return answer


def _facts_from_arm(target: Mapping[str, Any], resource_id: str) -> tuple[ResourceFacts | None, str]:
    from steward.cloud.clients import CloudClients, CloudTarget
    from steward.cloud.protection import ResourceReader

    cloud = CloudTarget(arm_endpoint=str(target["endpoint"]), credential_kind="sandbox",
                        sandbox_token_url=target.get("token_url"), ca_bundle=target.get("ca_bundle"),
                        polling_interval=1.0)
    read = ResourceReader(CloudClients(cloud)).describe(resource_id)
    if read is None:
        return None, "ARM: the resource does not exist"
    return ResourceFacts(id=ResourceId.parse(read.id), location=read.location, tags=dict(read.tags),
                         type=read.type, attached_to=read.managed_by), f"ARM ({target['endpoint']})"


# ---- the answer ---------------------------------------------------------------------------------------------


def _is_protected(outcome: Mapping[str, Any] | None, audit: Mapping[str, Any] | None,
                  rules: Mapping[str, Any] | None) -> bool:
    """The latest outcome says so; without one, an audit that covered it found nothing although the rules want
    it protected (the audit flags a resource the rules want protected that is not). Nothing known: not."""
    if outcome is not None:
        return str(outcome.get("status")) in PROTECTED_STATUSES
    return (audit is not None and audit["coversSubscription"] and not audit["findings"]
            and rules is not None and rules["decision"] == "protect")


def summary(resource_id: str, outcome: Mapping[str, Any] | None, running: Mapping[str, Any] | None,
            audit: Mapping[str, Any] | None, rules: Mapping[str, Any] | None) -> str:
    """One sentence: the answer to "why?"."""
    parts: list[str] = []
    if outcome is not None:
        rule = f" (rule {outcome.get('rule')})" if outcome.get("rule") else ""
        reason = outcome.get("reason") or ("protected in " + str(outcome.get("vaultId"))
                                           if outcome.get("vaultId") else "")
        parts.append(f"{outcome['status']}: {reason}{rule}".rstrip(": "))
    elif rules is not None:
        if rules["decision"] == "protect":
            parts.append(f"no outcome recorded yet; the rules would protect it (rule {rules['rule']})")
        else:
            parts.append(f"no outcome recorded yet; the rules say {rules['expected']}: {rules['reason']}")
    else:
        parts.append("no outcome recorded and no rules answer")
    if running is not None:
        parts.append(f"{running['orchestrator']} {running['instance']} is still {running['runtimeStatus']}")
    if audit is not None and audit["findings"]:
        parts.append("the audit of " + str(audit["generatedAt"]) + " finds " + "; ".join(
            f"{f['control']} ({f['severity']}): {f['why'] or f['title']}" for f in audit["findings"]))
    elif audit is not None and audit["coversSubscription"]:
        parts.append(f"the audit of {audit['generatedAt']} finds nothing wrong with it")
    if outcome is not None and rules is not None:
        now = "protect" if rules["decision"] == "protect" else rules["expected"]
        was_protected = str(outcome.get("status")) in PROTECTED_STATUSES
        if (now == "protect") != was_protected and str(outcome.get("status")) not in {
                OutcomeStatus.NO_VAULT.value, OutcomeStatus.AMBIGUOUS_VAULT.value, OutcomeStatus.FAILED.value,
                OutcomeStatus.CONFLICT.value, OutcomeStatus.RESOURCE_GONE.value}:
            parts.append(f"note: the rules now say {now} (rule {rules['rule'] or 'none'}): the resource or the "
                         "rules changed since")
    return "; ".join(parts)


def answer(resource_id: str, outcome: dict[str, Any] | None, running: dict[str, Any] | None,
           audit: dict[str, Any] | None, rules: dict[str, Any] | None) -> dict[str, Any]:
    return {"resource": resource_id, "protected": _is_protected(outcome, audit, rules),
            "why": summary(resource_id, outcome, running, audit, rules),
            "outcome": outcome, "running": running, "audit": audit, "rules": rules}


def _table(document: Mapping[str, Any], out: TextIO) -> None:
    rows = _rows(document)
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        out.write(f"{_shown(key).ljust(width)}  {_shown(value)}\n")


def _rows(document: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The answer as (field, value) lines: the table's, and ``--output csv``'s."""
    rows: list[tuple[str, str]] = [("resource", document["resource"]),
                                   ("protected", "yes" if document["protected"] else "no"),
                                   ("why", document["why"])]
    outcome = document["outcome"]
    if outcome is None:
        rows.append(("outcome", "none recorded in the local Durable store"))
    else:
        rows.append(("outcome", f"{outcome['status']}: {outcome.get('reason') or '-'} "
                                f"(rule {outcome.get('rule') or 'none'})"))
        rows.append(("  instance", f"{outcome['instance']} ({outcome['orchestrator']}, {outcome['runtimeStatus']}, "
                                   f"updated {outcome['updated']})"))
        rows.append(("  vault", str(outcome.get("vaultId") or "-")))
        rows.append(("  correlation", str(outcome.get("correlationId") or "-")))
    if document["running"] is not None:
        running = document["running"]
        rows.append(("running", f"{running['instance']} ({running['orchestrator']}, {running['runtimeStatus']})"))
    audit = document["audit"]
    if audit is None:
        rows.append(("audit", "no audit report stored"))
    else:
        rows.append(("audit", f"{audit['generatedAt']}: {len(audit['findings'])} finding(s)"
                              + ("" if audit["coversSubscription"] else " (its subscription was not audited)")))
        rows.extend((f"  {f['control']}", f"{f['severity']}: {f['why'] or f['title']} - fix: {f['fix']}")
                    for f in audit["findings"])
    rules = document["rules"]
    if rules is None:
        rows.append(("rules", "not applied: no facts (give --location, or reach ARM)"))
    else:
        what = "protect" if rules["decision"] == "protect" else rules["expected"]
        rows.append(("rules", f"{what} (rule {rules['rule'] or 'none'}) {rules['reason']}".rstrip()))
        if "policy" in rules:
            rows.append(("  policy", str(rules["policy"])))
        facts = rules["facts"]
        rows.append(("  facts", f"{facts['location']}, tags {json.dumps(facts['tags'])} from {facts['from']}"))
    return rows


def _shown(text: str) -> str:
    """``text`` for a terminal: a character that is not printable (ESC, BEL, CR, C1 controls, bidi overrides) is
    written as its Python escape (``\\x1b``), so what the store or a report holds cannot drive the terminal."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


# ---- command line -------------------------------------------------------------------------------------------


def build_parser(program: str = "steward why") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=program, description="Why a resource is protected or not: its latest outcome (the local Durable "
        "store), the latest audit report and the rules, together.",
        epilog=EXAMPLE, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("resource_id", metavar="RESOURCE_ID", help="the ARM id of the resource")
    parser.add_argument("--output", choices=OUTPUTS, default="table", help="table (default), json or csv (field,value)")
    parser.add_argument("--state-dir", default="var",
                        help="the local stack's state directory (default var/: its store, reports and sandbox)")
    parser.add_argument("--db", help="the local Durable store (default: the local stack's)")
    parser.add_argument("--reports", help="the audit reports directory (default: STEWARD_REPORTS_DIR, else the "
                                          "local stack's)")
    parser.add_argument("--rules", help="protection rules file (default: the configured or packaged rules)")
    facts = parser.add_argument_group("facts for the rules (default: read from the local stack's ARM)")
    facts.add_argument("--no-arm", action="store_true", help="do not read the resource from ARM")
    facts.add_argument("--location", help="the resource's region")
    facts.add_argument("--tag", action="append", default=[], metavar="KEY=VALUE", help="a tag (repeat)")
    facts.add_argument("--attached-to", metavar="VM_ID", help="a managed disk's VM")
    return parser


def _stack(state_dir: Path) -> dict[str, Any]:
    try:
        return dict(json.loads((state_dir / "local" / "stack.json").read_text(encoding="utf-8")))
    except (OSError, ValueError):
        return {}


def _given_facts(args: argparse.Namespace, rid: ResourceId, audit: Mapping[str, Any] | None
                 ) -> tuple[ResourceFacts | None, str]:
    tags = dict(t.split("=", 1) if "=" in t else (t, "") for t in args.tag)
    location = args.location or next((f["location"] for f in (audit or {}).get("findings") or []
                                      if f.get("location")), None)
    if not location:
        return None, ""
    source = "the command line" if args.location else "the audit finding"
    return ResourceFacts(id=rid, location=location, tags=tags, attached_to=args.attached_to or ""), source


def main(argv: Sequence[str] | None = None, *, program: str = "steward why", stdout: TextIO | None = None,
         stderr: TextIO | None = None) -> int:
    import os

    out, err = stdout or sys.stdout, stderr or sys.stderr
    args = build_parser(program).parse_args(argv)
    try:
        rid = ResourceId.parse(args.resource_id)
    except InvalidResourceId as error:
        err.write(f"{program}: {error}\n")
        return EXIT_USAGE
    resource_id = str(rid)
    state_dir = Path(args.state_dir)
    stack = _stack(state_dir)
    db = Path(args.db or stack.get("durable_db") or state_dir / "durable.sqlite")
    reports = Path(args.reports or os.environ.get("STEWARD_REPORTS_DIR") or state_dir / "local" / "reports")
    outcome, running = latest_outcome(db, resource_id) if db.exists() else (None, None)
    audit = latest_audit(reports, resource_id)
    try:
        from steward.rules_cli import _configured

        rule_set = _configured(args.rules, os.environ)
    except (InvalidRules, OSError) as error:
        err.write(f"{program}: {error}\n")
        return EXIT_USAGE
    facts: ResourceFacts | None = None
    source = ""
    arm = stack.get("arm") or {}
    if args.location or args.no_arm or not arm.get("endpoint"):
        facts, source = _given_facts(args, rid, audit)
    else:
        try:
            facts, source = _facts_from_arm(arm, resource_id)
        except (StewardError, AzureError, OSError, ValueError) as error:
            err.write(f"{program}: could not read the resource from ARM ({error}); the rules use the facts given\n")
            facts, source = _given_facts(args, rid, audit)
    rules = rules_answer(rule_set, facts, source) if facts is not None else None
    if not db.exists() and audit is None and rules is None:
        err.write(f"{program}: nothing to read: no Durable store at {db}, no audit report in {reports}, and no "
                  "facts for the rules (start 'make local', or give --db / --reports / --location)\n")
        return EXIT_USAGE
    document = answer(resource_id, outcome, running, audit, rules)
    if args.output == "json":
        out.write(json.dumps(document, indent=2, default=str) + "\n")
    elif args.output == "csv":
        rows = [{"field": _shown(k.strip()), "value": _shown(v)} for k, v in _rows(document)]
        write_rows(out, rows, ("field", "value"), "csv")
    else:
        _table(document, out)
    return EXIT_PROTECTED if document["protected"] else EXIT_NOT_PROTECTED
