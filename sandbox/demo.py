"""``make demo``: the real app on the embedded local Azure, showing what it does for a small estate.

It starts the ARM sandbox, the Durable runner and the local Functions host (``LocalStack``), builds an
estate through the real Azure SDK clients the way a platform team would, and lets the app react to the
events the sandbox raises. Nothing here calls the app directly except through its own triggers.
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import json
import logging
import os
import re
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from sandbox.arm import SandboxConfig
from sandbox.arm.config import DEFAULT_SUBSCRIPTION, SECOND_SUBSCRIPTION
from sandbox.clock import VirtualClock
from sandbox.estate import VAULTED_BLOBS_RULE, Estate
from sandbox.host.local import OUTCOME_TOPIC, LocalStack
from steward.cloud.clients import CloudClients
from steward.domain.audit.runs import AuditSummary


def cli_command() -> str:
    from sandbox.playground import cli_command as command

    return command()

REPO = Path(__file__).resolve().parents[1]
WEU, NEU, EUS = "westeurope", "northeurope", "eastus"
DAY = 24 * 3600.0
#: Azure seconds the drill act adds at each look at the drill (every 0.1 s): the restore jobs' Azure hours (a VM's
#: disks take one) pass about three times faster than the clock's scale alone would let them
FAST_FORWARD = 120.0
#: the platform team's operator, allowed to tear down and drill (``STEWARD_TEARDOWN_ALLOWED_PRINCIPALS``); the CLI
#: acts as this principal, with tokens from the sandbox's Entra ID
OPERATOR = "de300000-0000-4000-8000-00000000a11c"
#: the application team's validation hook (a Logic App or a function on Azure) answering the drill's RestoreReady
HOOK = "de300000-0000-4000-8000-0000000000f0"
DRILL_RULES = """
drills:
  - name: weekly-restore-proof
    description: Every protected resource restored out of place once a week; the team's hook validates it.
    every: P7D
    recoveryPoint: latest
    lifetime: PT6H
    validationHook: {timeout: PT2H}
    budgets: {maxConcurrent: 5, maxRestoredGb: 1024}
"""


def demo_rules() -> str:
    """The default rules, the vaulted-blobs rule before the storage accounts' default one, and a drill rule."""
    from steward.rules_file import default_rules_text

    head, rest = default_rules_text().split("\nrules:\n", 1)
    return f"{head}\nrules:{VAULTED_BLOBS_RULE}{rest.rstrip()}\n{DRILL_RULES}"


class Console:
    def __init__(self, stream: Any = None) -> None:
        self.stream = stream if stream is not None else sys.stdout  # the current one, not the one at import
        self.started = time.monotonic()
        #: (act number, real seconds it took), filled as the acts go
        self.acts: list[tuple[str, float]] = []
        self._act: tuple[str, float] | None = None

    def step(self, title: str) -> None:
        self.end_act()
        number = title.split(".", 1)[0]
        self._act = (number, time.monotonic()) if number.isdigit() else None
        print(f"\n== {title}", file=self.stream, flush=True)

    def end_act(self) -> None:
        if self._act is not None:
            self.acts.append((self._act[0], time.monotonic() - self._act[1]))
            self._act = None

    def line(self, text: str = "") -> None:
        print(text, file=self.stream, flush=True)

    def table(self, headers: list[str], rows: Iterable[list[str]]) -> None:
        rows = [list(map(str, r)) for r in rows]
        widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
        fmt = "  ".join(f"{{:<{w}}}" for w in widths)
        self.line(fmt.format(*headers))
        self.line(fmt.format(*("-" * w for w in widths)))
        for row in rows:
            self.line(fmt.format(*row))


def short(resource_id: str | None) -> str:
    if not resource_id:
        return "-"
    parts = resource_id.split("/")
    return f"{parts[4]}/{parts[-1]}" if len(parts) > 4 else resource_id


@dataclasses.dataclass
class Demo:
    stack: LocalStack
    clients: CloudClients
    out: Console
    #: the demo's state directory; the CLI acts find the host through its ``local/stack.json``
    work: Path | None = None

    @property
    def sandbox(self) -> Any:
        return self.stack.sandbox

    def outcomes(self) -> list[dict[str, Any]]:
        return [e["data"] for e in self.sandbox.events.topic_events(OUTCOME_TOPIC)
                if str(e.get("eventType", "")).startswith("BackupSteward.Protection.")]

    def wait(self, predicate: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return
            time.sleep(0.1)
        raise SystemExit(f"demo: timed out waiting for {what}")

    def outcome_of(self, resource_id: str, statuses: set[str] | None = None) -> dict[str, Any] | None:
        for outcome in reversed(self.outcomes()):
            if outcome["resourceId"].lower() == resource_id.lower() and (
                statuses is None or outcome["status"] in statuses
            ):
                return outcome
        return None

    def wait_outcomes(self, ids: list[str], statuses: set[str] | None = None) -> list[dict[str, Any]]:
        self.wait(lambda: all(self.outcome_of(i, statuses) for i in ids), "protection outcomes")
        return [self.outcome_of(i, statuses) or {} for i in ids]

    def settle(self, timeout: float = 60.0) -> None:
        """Until no orchestration is pending or running (what the app started from the last events is done)."""
        runner = self.stack.runner
        assert runner is not None
        ended = {"Completed", "Failed", "Terminated"}
        time.sleep(0.2)
        self.wait(lambda: all(runner.status(i.instance_id)["runtimeStatus"] in ended for i in runner.query()),
                  "the app to finish what it started")

    def steward(self, job: str, *argv: str, shown: str, echo: bool = True) -> tuple[int, str]:
        """``steward JOB ARGV...`` (steward/api_cli.py) against the demo's host, as an operator types it: the line
        ``shown`` is printed, then what the command printed (unless ``echo`` is False). Returns (exit code, its
        stdout)."""
        from steward import api_cli

        assert self.work is not None, "the CLI acts need the demo's state directory"
        self.out.line(f"  $ steward {job} {shown}")
        printed = io.StringIO()
        # env={}: a BACKUP_STEWARD_API in the operator's shell must not send the demo's requests to a real app
        code = api_cli.main(job, [*argv, "--state-dir", str(self.work)], stdout=printed, stderr=sys.stderr, env={},
                            interval=0.2)
        for line in printed.getvalue().splitlines() if echo else ():
            self.out.line(f"    {line.rstrip()}")
        if code != 0:
            self.out.line(f"    (exit code {code})")
        return code, printed.getvalue()

    def api(self, principal: str) -> Any:
        """The app's HTTP API as ``principal`` (a function key and a token from the sandbox's Entra ID)."""
        from steward.api_cli import Connection

        host = self.stack.host
        assert host is not None
        token = self.stack.bearer(principal)["Authorization"].split(" ", 1)[1]
        return Connection(api=host.api_base, key=host.keys.function_key, token_source=lambda: token)


def build_estate(demo: Demo) -> dict[str, str]:
    out = demo.out
    prod, dev = Estate(demo.clients, DEFAULT_SUBSCRIPTION), Estate(demo.clients, SECOND_SUBSCRIPTION)
    out.step("1. The platform team's vaults (one per region and subscription, tagged backup-steward:default)")
    ids: dict[str, str] = {}
    prod.resource_group("rg-backup-weu", WEU)
    prod.resource_group("rg-backup-neu", NEU)
    dev.resource_group("rg-backup-dev", WEU)
    ids["rsv-weu"] = prod.recovery_services_vault("rg-backup-weu", "rsv-prod-weu", WEU)
    ids["bv-weu"] = prod.backup_vault("rg-backup-weu", "bv-prod-weu", WEU)
    ids["rsv-neu"] = prod.recovery_services_vault("rg-backup-neu", "rsv-prod-neu", NEU)
    ids["rsv-dev"] = dev.recovery_services_vault("rg-backup-dev", "rsv-dev-weu", WEU)
    for key in ("rsv-weu", "bv-weu", "rsv-neu", "rsv-dev"):
        out.line(f"  {short(ids[key]):34} {ids[key].split('/providers/')[1].split('/')[0]}")
    with demo.sandbox.events.unsubscribed():  # older than the app: no event will ever tell it about these
        prod.resource_group("rg-erp", WEU)
        ids["vm-erp"] = prod.vm("rg-erp", "vm-erp-legacy", WEU)
        ids["st-erp"] = prod.storage_account("rg-erp", "sterplegacy01", WEU)
    out.line(f"  and, from before Backup Steward, {short(ids['vm-erp'])} and {short(ids['st-erp'])}: never backed up")
    return ids


def protect_new_resources(demo: Demo) -> dict[str, str]:
    out = demo.out
    prod = Estate(demo.clients, DEFAULT_SUBSCRIPTION)
    out.step("2. Application teams create resources; nobody mentions backup")
    prod.resource_group("rg-shop", WEU)
    prod.resource_group("rg-shop-neu", NEU)
    prod.resource_group("rg-lab", EUS)
    made = {
        "vm-web": prod.vm("rg-shop", "vm-shop-web", WEU),
        "vm-api": prod.vm("rg-shop", "vm-shop-api", WEU),
        "vm-scratch": prod.vm("rg-shop", "vm-scratch", WEU, tags={"backup-steward:opt-out": "true"}),
        "disk": prod.disk("rg-shop", "disk-shop-data", WEU),
        "storage": prod.storage_account("rg-shop", "stshopweu01", WEU),
        "postgres": prod.postgres("rg-shop", "pg-shop-weu", WEU),
        "vm-neu": prod.vm("rg-shop-neu", "vm-shop-dr", NEU),
        "vm-lab": prod.vm("rg-lab", "vm-lab-eus", EUS),
    }
    out.line(f"  created {len(made)} resources (plus the VMs' OS disks); the sandbox raised their events")
    outcomes = demo.wait_outcomes(list(made.values()))
    out.step("3. What Backup Steward did (its outcome events)")
    out.table(
        ["resource", "status", "vault", "rule / reason"],
        [[short(o["resourceId"]), o["status"], short(o.get("vaultId")),
          (o.get("rule") or "") + ((" - " + o["reason"][:70]) if o.get("reason") else "")] for o in outcomes],
    )
    return made


def move_and_delete(demo: Demo, made: dict[str, str]) -> None:
    out = demo.out
    prod = Estate(demo.clients, DEFAULT_SUBSCRIPTION)
    out.step("4. A VM moves to another resource group; another is deleted")
    prod.resource_group("rg-shop-v2", WEU)
    moved = prod.rid("rg-shop-v2", "Microsoft.Compute/virtualMachines", "vm-shop-api")
    prod.move("rg-shop", [made["vm-api"]], f"/subscriptions/{DEFAULT_SUBSCRIPTION}/resourceGroups/rg-shop-v2")
    lineage = demo.wait_outcomes([moved], {"Reprotected", "Failed", "Conflict"})[0]
    # deleted once the move is reconciled: a VM deleted while reconcile_move compares rg-shop with what the
    # vaults protect from it has also "left its resource group" and is flagged Failed beside its Retained
    # (which of the two the demo printed last was a race)
    prod.delete(made["vm-web"])
    gone = demo.wait_outcomes([made["vm-web"]], {"Retained", "LeftAsIs", "ResourceGone", "Failed"})[0]
    out.line(f"  moved:   {short(lineage['previousResourceId'])} -> {short(lineage['resourceId'])}: "
             f"{lineage['status']} ({lineage['reason']})")
    old_item = lineage["previousItemId"].split("/protectedItems/")[-1]
    out.line(f"           old item {old_item} keeps its recovery points")
    out.line(f"  deleted: {short(gone['resourceId'])}: {gone['status']} ({gone['reason']})")


def audit_the_estate(demo: Demo, reports: Path) -> None:
    """The audit timer fires (as its NCRONTAB schedule would): coverage and safety findings, HTML report."""
    out = demo.out
    out.step("6. The scheduled audit runs (the timer trigger fires)")
    runner, host = demo.stack.runner, demo.stack.host
    assert runner is not None and host is not None
    before = {i.instance_id for i in runner.query()}
    host.fire_timer("audit_timer")
    demo.wait(lambda: any(i.name == "audit_estate" and i.instance_id not in before for i in runner.query()),
              "the audit to start")
    instance = next(i.instance_id for i in runner.query() if i.name == "audit_estate" and i.instance_id not in before)
    status = runner.wait_for(instance, timeout=120)
    summary = AuditSummary.from_record(status["output"])  # the orchestration's output record
    severities = summary.findings_by_severity or {}
    out.line(f"  {summary.resources if summary.resources is not None else '?'} resources in "
             f"{summary.subscriptions} subscriptions; "
             "findings: " + ", ".join(f"{k} {v}" for k, v in severities.items() if v))
    latest = reports / "latest.json"
    if latest.exists():
        import json

        result = json.loads(latest.read_text())
        rank = {"critical": 0, "high": 1, "medium": 2, "low": 3, "info": 4}
        ranked = sorted(result.get("findings", []), key=lambda f: rank.get(f.get("severity", ""), 9))
        # the eight most severe, and every container left out of a vaulted blob backup (act 5's 101st)
        for finding in ranked[:8] + [f for f in ranked[8:] if f.get("control") == "BKP-007"]:
            out.line(f"  {finding.get('severity', ''):8} {finding.get('control', ''):8} "
                     f"{short(finding.get('resourceId'))}: {str(finding.get('title', ''))[:70]}")
    fixed = summary.remediation
    if fixed.enabled:
        counted = ", ".join(f"{k} {v}" for k, v in sorted(fixed.outcomes.items())) or "nothing to do"
        out.line(f"  remediation (STEWARD_AUDIT_REMEDIATE_LIMIT={fixed.limit}): it started protection for "
                 f"{fixed.started} unprotected resource(s): {counted}")
        for outcome in (o for o in demo.outcomes() if o.get("correlationId") == instance):
            out.line(f"    {short(outcome['resourceId']):34} {outcome['status']:10} {short(outcome.get('vaultId'))}")
    out.line(f"  HTML report: {reports / 'latest.html'}  (also GET {host.api_base}/audits/latest.html)")


def new_blob_containers(demo: Demo) -> None:
    """Issue 19 item 2: vaulted blob backup covers the containers its backup instance lists, at most 100; a new
    container's write event has the app add it; the 101st is left out and the outcome says why."""
    from sandbox.estate import VAULTED_BLOB_POLICY
    from steward.cloud.protection import BackupVaultProtection
    from steward.domain.blob_containers import containers_of
    from steward.domain.ids import ResourceId

    out = demo.out
    prod = Estate(demo.clients, DEFAULT_SUBSCRIPTION)
    out.step("5. New blob containers in a storage account under vaulted blob backup")
    vault = prod.rid("rg-backup-weu", "Microsoft.DataProtection/backupVaults", "bv-prod-weu")
    prod.backup_policy(vault, "blob-vaulted", VAULTED_BLOB_POLICY)
    account = prod.storage_account("rg-shop", "stshopdocs01", WEU, tags={"blob-tier": "vaulted"})

    def listed() -> list[str]:
        for instance in BackupVaultProtection(demo.clients).instances(vault):
            source = instance["properties"]["dataSourceInfo"]["resourceID"]
            if ResourceId.parse(source) == ResourceId.parse(account):
                return containers_of(instance)
        return []

    protected = demo.wait_outcomes([account])[0]
    demo.settle()
    out.line(f"  {short(account)} (tagged blob-tier=vaulted): {protected['status']} by rule {protected.get('rule')} "
             f"in {short(vault)}; containers listed: {', '.join(listed()) or 'none yet'}")
    if not listed():  # Azure refuses a vaulted blob backup without a container: the first container protects it
        out.line("    (no container yet: Azure refuses a vaulted blob backup without one, so its first container's "
                 "event protects it)")
    prod.blob_container(account, "invoices")

    def added(name: str) -> dict[str, Any] | None:
        return next((o for o in reversed(demo.outcomes()) if o["resourceId"].lower() == account.lower()
                     and name in ((o.get("details") or {}).get("added") or [])), None)

    demo.wait(lambda: added("invoices") is not None, "the new container's outcome")
    demo.settle()
    out.line(f"  container invoices created -> {(added('invoices') or {})['status']}: the backup instance's list "
             f"grows from none to {', '.join(listed())}")
    with demo.sandbox.events.unsubscribed():  # the data plane (Blob REST, azcopy) raises no ARM event
        for index in range(1, 100):
            prod.blob_container(account, f"c{index:03d}")
    out.line("  a migration creates 99 more (c001..c099) through the Blob API: no ARM event, nothing happens yet")
    prod.blob_container(account, "c100")

    def left_out() -> dict[str, Any] | None:  # not the account's first LeftAsIs (no container yet)
        return next((o for o in reversed(demo.outcomes()) if o["resourceId"].lower() == account.lower()
                     and (o.get("details") or {}).get("leftOut")), None)

    demo.wait(lambda: left_out() is not None, "the 101st container's outcome")
    left = left_out() or {}
    details = left.get("details") or {}
    out.line(f"  container c100 created, the account's 101st -> {left['status']}: "
             f"{len(details.get('added') or [])} added, the list holds {len(listed())}")
    for entry in details.get("leftOut") or []:
        out.line(f"    left out {entry['container']}: {entry['reason']}")


def drill_restores(demo: Demo, reports: Path, targets: list[str]) -> dict[str, Any]:
    """Issue 17: a week of Azure time runs the policies' backups; ``steward drill run`` restores a VM's disks, a
    disk and a PostgreSQL server out of place; the team's validation hook hears RestoreReady, checks the restored
    objects through ARM and answers pass; the drill deletes what it restored; the report says the RTOs."""
    from steward.domain.drill_flow import DRILL_TAG, RESTORE_READY

    out = demo.out
    out.step("7. A restore drill proves the backups restore: a VM's disks, a disk, a PostgreSQL server")
    demo.stack.advance(8 * DAY)  # the daily VM and disk backups, and PostgreSQL's weekly vault-tier one
    demo.settle()
    out.line("  8 days of Azure time pass: the policies' scheduled backups run (and, while the drill runs, Azure time "
             f"is fast-forwarded {FAST_FORWARD:g} s every 0.1 s)")
    code, printed = demo.steward("drill", "run", *(a for t in targets for a in ("--resource", t)), "--no-wait",
                                 "--output", "json", shown="run --resource $VM --resource $DISK --resource $PG "
                                 "--no-wait -o json", echo=False)
    if code != 0:
        raise SystemExit(f"demo: steward drill run failed (exit code {code})")
    drill_id = str(json.loads(printed)[0]["id"])
    out.line(f"    started {drill_id}")
    hook, answered = demo.api(HOOK), set()

    def validate() -> bool:
        """The hook: every RestoreReady of this drill (on Azure, an Event Grid subscription to the app's topic
        delivers them; here the sandbox's copy of the topic is read), its restored objects read back through ARM,
        then pass (fail when one is missing)."""
        for event in demo.sandbox.events.topic_events(OUTCOME_TOPIC):
            data = event.get("data") or {}
            if event.get("eventType") != RESTORE_READY or data.get("drillId") != drill_id:
                continue
            if event["id"] in answered:
                continue
            answered.add(event["id"])
            restored = [str(r) for r in data.get("restored") or []]
            found = [r for r in restored if _exists(demo.clients, r)]
            result = "pass" if found == restored else "fail"
            hook.call("POST", f"/drills/{drill_id}/validation",
                      {"result": result, "detail": f"{len(found)}/{len(restored)} restored object(s) read back"})
            out.line(f"  hook: RestoreReady for {short(event.get('subject'))}: {len(found)}/{len(restored)} restored "
                     f"object(s) read back through ARM -> {result}")
        status = demo.stack.runner.status(drill_id) if demo.stack.runner else {}
        if status.get("runtimeStatus") in ("Completed", "Failed", "Terminated"):
            return True
        demo.stack.advance(FAST_FORWARD)  # the restore jobs take Azure hours: skip ahead while the drill waits
        return False

    demo.wait(validate, "the drill to end", timeout=240)
    code, printed = demo.steward("drill", "status", drill_id, shown=f"status {drill_id}")
    report = (demo.stack.runner.status(drill_id) if demo.stack.runner else {}).get("output") or {}
    rto = ", ".join(f"{r.get('workload')} {float(r['rtoSeconds']) / 60:.0f} min (from a "
                    f"{float((r.get('recoveryPoint') or {}).get('ageSeconds') or 0) / 3600:.0f} h old point)"
                    for r in report.get("results") or [] if r.get("rtoSeconds"))
    out.line(f"  measured RTO (restore job, Azure time): {rto}")
    left = [r["id"] for r in demo.sandbox.store.list()
            if any(k.lower() == DRILL_TAG and v == drill_id for k, v in (r.get("tags") or {}).items())]
    deleted = sum(len(r.get("deleted") or []) for r in report.get("results") or [])
    out.line(f"  cleanup: {deleted} object(s) the drill created deleted; carrying its tag now: {len(left)}")
    page = reports / "drills" / f"{drill_id}.html"
    out.line(f"  drill report: {page} (and {page.with_suffix('.json').name}; RTO per type over time)")
    return dict(report)


def _exists(clients: CloudClients, resource_id: str) -> bool:
    """Whether ARM has ``resource_id`` (a GET by id with the type's API version)."""
    from azure.core.exceptions import ResourceNotFoundError

    from sandbox.estate import CONTAINER_API_VERSION
    from steward.cloud.protection import READ_API_VERSIONS

    provider = resource_id.split("/providers/", 1)[1].split("/")
    rtype = "/".join(provider[0:2]).lower()
    version = CONTAINER_API_VERSION if "/containers/" in resource_id.lower() else READ_API_VERSIONS[rtype]
    try:
        clients.resources(resource_id.split("/")[2]).resources.get_by_id(resource_id, api_version=version)
    except ResourceNotFoundError:
        return False
    return True


def teardown_a_vault(demo: Demo) -> None:
    """The last act: a legacy vault full of every kind of content is planned, approved and deleted with the CLI
    (``steward teardown plan|approve|status``) over the app's HTTP API, as an operator does it."""
    from sandbox.arm.providers.recoveryservices import recovery_services

    out = demo.out
    out.step("8. A legacy vault full of every kind of content is torn down with the CLI: plan, approve, status")
    legacy = Estate(demo.clients, DEFAULT_SUBSCRIPTION)
    legacy.resource_group("rg-legacy", WEU)
    vault_id = legacy.recovery_services_vault("rg-legacy", "rsv-legacy", WEU, default=False)
    made = recovery_services(demo.sandbox).seed_every_kind(vault_id, prefix="legacy")
    out.line("  seeded: " + ", ".join(f"{len(v)} {k}" for k, v in sorted(made.items())))
    # unregistering the vault's storage account needs Storage Account Contributor on it (backup-rbac-rs-vault.md):
    # the deployment grants the app's identity that role where the vault's storage accounts are
    from sandbox.arm.providers.authorization_model import grant_built_in_role

    grant_built_in_role(demo.sandbox.store, demo.sandbox.config.default_principal_id, "Storage Account Contributor",
                        vault_id.split("/providers/")[0], demo.sandbox.clock.now())
    out.line("  the app's identity holds Storage Account Contributor on rg-legacy (to unregister its storage account)")
    out.line(f"  VAULT={vault_id}")
    out.line(f"  (the CLI finds the demo's host in {demo.work}/local/stack.json: --state-dir; on Azure, --api and "
             "azure-identity)")
    code, printed = demo.steward("teardown", "plan", vault_id, shown="plan $VAULT")
    found = re.search(r"fingerprint (sha256:[0-9a-f]+)", printed)
    if code != 0 or found is None:
        raise SystemExit(f"demo: the teardown plan failed (exit code {code})")
    fingerprint = found.group(1)
    code, _ = demo.steward("teardown", "approve", vault_id, "--fingerprint", fingerprint, "--timeout", "120",
                           shown=f"approve $VAULT --fingerprint {fingerprint[:15]}...")
    if code != 0:
        raise SystemExit(f"demo: the approved teardown did not delete the vault (exit code {code})")
    code, printed = demo.steward("teardown", "status", vault_id, "--output", "json", shown="status $VAULT -o json",
                                 echo=False)
    status = json.loads(printed) if code == 0 else {}
    report = status.get("report") or {}
    out.line(f"    ({len(printed.splitlines())} lines of JSON: the run {status.get('runtimeStatus')}, its plan and "
             "report; the report says:)")
    out.line(f"teardown: {report.get('outcome')} - {report.get('reason')}")
    out.line(f"  deleted {len(report.get('deleted') or [])} object(s); {len(report.get('remaining') or [])} remain")
    links = report.get("links") or {}
    if links.get("htmlUrl"):
        out.line(f"  report: {links['htmlUrl']}")


def azure_time(seconds: float) -> str:
    """``63.3 min``, or ``8 d 5.1 h`` once the drill act moved the clock by days."""
    if seconds < 2 * 3600:
        return f"{seconds / 60:.1f} min"
    days, rest = divmod(seconds, DAY)
    return f"{int(days)} d {rest / 3600:.1f} h" if days else f"{rest / 3600:.1f} h"


def write_stack_file(work: Path, described: dict[str, Any]) -> Path:
    """``local/stack.json`` as ``make local`` writes it (sandbox/playground.py; mode 0600, it holds the keys): the
    CLI's ``--state-dir`` finds the host, its function key and the Entra ID that gives the operator a token."""
    path = work / "local" / "stack.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    document = {**described, "principal": OPERATOR, "estate": {},
                "keys": {"function": described["keys"]["function"], "master": described["keys"]["master"]}}
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        json.dump(document, handle, indent=2)
    return path


def run(scale: float, state_dir: Path | None, verbose: bool = False) -> int:
    out = Console()
    work = state_dir or Path(tempfile.mkdtemp(prefix="steward-demo-"))
    work.mkdir(parents=True, exist_ok=True)
    out.line("Backup Steward demo - the real app on the embedded local Azure sandbox")
    out.line(f"(sandbox time runs {scale:g}x real time; state in {work})")
    clock = VirtualClock(scale=scale)
    reports = work / "reports"
    stack = LocalStack(app="function_app", app_root=REPO, db_path=str(work / "durable.sqlite"),
                       arm_config=SandboxConfig(clock=clock, state_dir=work / "arm"),
                       settings={"STEWARD_REPORTS_DIR": str(reports), "STEWARD_AUDIT_REMEDIATE_LIMIT": "20",
                                 "STEWARD_RULES": demo_rules(),
                                 "STEWARD_TEARDOWN_ALLOWED_PRINCIPALS": f"{OPERATOR},{HOOK}"},
                       run_timers=False)
    # the app's metrics, as Application Insights would receive them, collected in memory for the summary
    from steward import telemetry

    metrics = telemetry.use_in_memory()
    # the levels before anything of the app is imported (starting the stack imports it, and the app configures
    # its JSON logs on import): a caller in the same process gets exactly these back
    quieted = {name: logging.getLogger(name).level for name in ("steward", "sandbox", "")}
    stack.start()
    if not verbose:  # the app configures its JSON logs on import; quiet them for a readable demo
        logging.getLogger("steward").setLevel(logging.WARNING)
        logging.getLogger("sandbox").setLevel(logging.ERROR)
        logging.getLogger().setLevel(logging.WARNING)
    try:
        clients = CloudClients(dataclasses.replace(stack.sandbox.cloud_target(), polling_interval=0.05))
        demo = Demo(stack, clients, out, work)
        described = stack.describe()
        write_stack_file(work, described)
        out.line(f"ARM sandbox {stack.sandbox.endpoint} | Functions host {described['host']}")
        ids = build_estate(demo)
        made = protect_new_resources(demo)
        move_and_delete(demo, made)
        new_blob_containers(demo)
        audit_the_estate(demo, reports)
        drill_restores(demo, reports, [ids["vm-erp"], made["disk"], made["postgres"]])
        teardown_a_vault(demo)
        out.end_act()
        out.step("Summary")
        counts: dict[str, int] = {}
        for outcome in demo.outcomes():
            counts[outcome["status"]] = counts.get(outcome["status"], 0) + 1
        out.line("  outcomes: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
        out.line(f"  ARM requests served: {stack.sandbox.counters.get()} | "
                 f"Azure time elapsed: {azure_time((clock.now() - clock._start).total_seconds())} | "
                 f"real time: {time.monotonic() - out.started:.1f} s")
        out.line("  real time per act: " + ", ".join(f"{n}: {t:.1f} s" for n, t in out.acts))
        out.line("  metrics (OpenTelemetry; Application Insights customMetrics when deployed):")
        for line in telemetry.summary_lines(metrics):
            out.line(f"    {line}")
        out.line(f"  Durable history: {cli_command()} instances --db {work / 'durable.sqlite'}")
        return 0
    finally:
        stack.stop()
        telemetry.use_meter_provider(None)
        for name, level in quieted.items():  # a caller in the same process (a test) gets its logging back
            logging.getLogger(name or None).setLevel(level)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="steward demo", description=__doc__,
                                     epilog="example: steward demo --scale 600 --verbose")
    parser.add_argument("--scale", type=float, default=600.0, help="Azure seconds per real second")
    parser.add_argument("--state-dir", type=Path, default=None, help="keep the sandbox and Durable state here")
    parser.add_argument("--verbose", action="store_true", help="show the app's JSON logs")
    args = parser.parse_args(argv)
    return run(args.scale, args.state_dir, args.verbose)


if __name__ == "__main__":
    raise SystemExit(main())
