"""``make demo``: the real app on the embedded local Azure, showing what it does for a small estate.

It starts the ARM sandbox, the Durable runner and the local Functions host (``LocalStack``), builds an
estate through the real Azure SDK clients the way a platform team would, and lets the app react to the
events the sandbox raises. Nothing here calls the app directly except through its own triggers.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from sandbox.arm import SandboxConfig
from sandbox.arm.config import DEFAULT_SUBSCRIPTION, SECOND_SUBSCRIPTION
from sandbox.clock import VirtualClock
from sandbox.estate import Estate
from sandbox.host.local import OUTCOME_TOPIC, LocalStack
from steward.cloud.clients import CloudClients


def cli_command() -> str:
    from sandbox.playground import cli_command as command

    return command()

REPO = Path(__file__).resolve().parents[1]
WEU, NEU, EUS = "westeurope", "northeurope", "eastus"


class Console:
    def __init__(self, stream: Any = None) -> None:
        self.stream = stream if stream is not None else sys.stdout  # the current one, not the one at import
        self.started = time.monotonic()

    def step(self, title: str) -> None:
        print(f"\n== {title}", file=self.stream, flush=True)

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
    out.step("5. The scheduled audit runs (the timer trigger fires)")
    runner, host = demo.stack.runner, demo.stack.host
    assert runner is not None and host is not None
    before = {i.instance_id for i in runner.query()}
    host.fire_timer("audit_timer")
    demo.wait(lambda: any(i.name == "audit_estate" and i.instance_id not in before for i in runner.query()),
              "the audit to start")
    instance = next(i.instance_id for i in runner.query() if i.name == "audit_estate" and i.instance_id not in before)
    status = runner.wait_for(instance, timeout=120)
    output = status.get("output") or {}
    severities = output.get("findingsBySeverity") or {}
    out.line(f"  {output.get('resources', '?')} resources in {output.get('subscriptions', '?')} subscriptions; "
             "findings: " + ", ".join(f"{k} {v}" for k, v in severities.items() if v))
    latest = reports / "latest.json"
    if latest.exists():
        import json

        result = json.loads(latest.read_text())
        rank = {"critical": 0, "high": 1, "medium": 2, "low": 3, "info": 4}
        for finding in sorted(result.get("findings", []), key=lambda f: rank.get(f.get("severity", ""), 9))[:8]:
            out.line(f"  {finding.get('severity', ''):8} {finding.get('control', ''):8} "
                     f"{short(finding.get('resourceId'))}: {str(finding.get('title', ''))[:70]}")
    fixed = output.get("remediation") or {}
    if fixed.get("enabled"):
        counted = ", ".join(f"{k} {v}" for k, v in sorted((fixed.get("outcomes") or {}).items())) or "nothing to do"
        out.line(f"  remediation (STEWARD_AUDIT_REMEDIATE_LIMIT={fixed.get('limit')}): it started protection for "
                 f"{fixed.get('started')} unprotected resource(s): {counted}")
        for outcome in (o for o in demo.outcomes() if o.get("correlationId") == instance):
            out.line(f"    {short(outcome['resourceId']):34} {outcome['status']:10} {short(outcome.get('vaultId'))}")
    out.line(f"  HTML report: {reports / 'latest.html'}  (also GET {host.api_base}/audits/latest.html)")


def teardown_a_vault(demo: Demo) -> None:
    """The last act: a legacy vault full of every kind of content is planned, approved and deleted."""
    from sandbox.arm.providers.recoveryservices import recovery_services
    from sandbox.teardown_demo import demo_teardown

    out = demo.out
    out.step("6. A legacy vault full of every kind of content is torn down: plan, approve, run")
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
    assert demo.stack.runner is not None
    demo_teardown(demo.stack.runner, vault_id, requested_by="platform-team@demo", out=out.line, timeout=120)


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
                       settings={"STEWARD_REPORTS_DIR": str(reports), "STEWARD_AUDIT_REMEDIATE_LIMIT": "20"},
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
        demo = Demo(stack, clients, out)
        described = stack.describe()
        out.line(f"ARM sandbox {stack.sandbox.endpoint} | Functions host {described['host']}")
        build_estate(demo)
        made = protect_new_resources(demo)
        move_and_delete(demo, made)
        audit_the_estate(demo, reports)
        teardown_a_vault(demo)
        out.step("Summary")
        counts: dict[str, int] = {}
        for outcome in demo.outcomes():
            counts[outcome["status"]] = counts.get(outcome["status"], 0) + 1
        out.line("  outcomes: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
        out.line(f"  ARM requests served: {stack.sandbox.counters.get()} | "
                 f"Azure time elapsed: {(clock.now() - clock._start).total_seconds() / 60:.1f} min | "
                 f"real time: {time.monotonic() - out.started:.1f} s")
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
