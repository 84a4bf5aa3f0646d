"""Onboarding an estate that predates the app (``STEWARD_AUDIT_REMEDIATE_LIMIT``): N VMs and N/4 detached disks
exist, no event ever told the app about them; one scheduled audit finds them (BKP-001) and starts protection
for each. Measured on the sandbox with ARM's throttle and latency model on, for each remediation fan-out:

* Azure seconds from the timer to the audit's end (every protection verified or refused), and the rate;
* the app's ARM requests and 429s;
* exactly once: every resource protected, one item / instance each.

    python -m benchmarks.remediation [--vms 200] [--fan-outs 8 32] [--scale 20]
"""

from __future__ import annotations

import argparse
import concurrent.futures
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from benchmarks.common import (
    APP_PRINCIPAL,
    ARTIFACTS,
    AppStack,
    by_kind,
    machine,
    start_app_stack,
    table,
    throttled,
    write_result,
)
from benchmarks.protection_speed import REGION, vm_body
from steward.domain.audit.runs import AuditSummary

OUTPUT = ARTIFACTS / "remediation.json"
GROUP = "rg-legacy"
DISK_BODY = {"location": REGION, "sku": {"name": "Premium_LRS"},
             "properties": {"creationData": {"createOption": "Empty"}, "diskSizeGB": 32}}


def _legacy_estate(app: AppStack, vms: int, disks: int) -> tuple[list[str], list[str]]:
    """Vaults, then VMs and disks created while no event subscription exists (the estate the app inherits)."""
    from sandbox.arm.config import DEFAULT_SUBSCRIPTION
    from sandbox.estate import Estate
    from steward.cloud.protection import READ_API_VERSIONS

    estate = Estate(app.creator, DEFAULT_SUBSCRIPTION)
    estate.resource_group("rg-backup", REGION)
    estate.recovery_services_vault("rg-backup", "rsv-weu", REGION)
    estate.backup_vault("rg-backup", "bv-weu", REGION)
    estate.resource_group(GROUP, REGION)
    vm_ids = [estate.rid(GROUP, "Microsoft.Compute/virtualMachines", f"vm-{i:04d}") for i in range(vms)]
    disk_ids = [estate.rid(GROUP, "Microsoft.Compute/disks", f"data-{i:04d}") for i in range(disks)]
    client = app.creator.resources(DEFAULT_SUBSCRIPTION).resources

    def create(rid: str) -> None:
        kind = "microsoft.compute/virtualmachines" if "/virtualMachines/" in rid else "microsoft.compute/disks"
        body = vm_body() if kind.endswith("virtualmachines") else DISK_BODY
        client.begin_create_or_update_by_id(rid, api_version=READ_API_VERSIONS[kind], parameters=body,
                                            polling=False)

    with app.sandbox.events.unsubscribed():
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            list(pool.map(create, vm_ids + disk_ids))
        app.sandbox.advance(900)  # the create operations end (and raise their events to nobody)
    return vm_ids, disk_ids


def measure(vms: int, disks: int, fan_out: int, *, scale: float, seed: int, timeout: float,
            clock: str = "scaled") -> dict[str, Any]:
    from orchestrators import audit as audit_orchestrator
    from sandbox.arm.config import ThrottleConfig
    from tests.chaos.checker import protections

    # every VM and detached disk is a BKP-001 finding (the VMs' OS disks are attached: the VM's backup covers them)
    limit = min(1000, vms + disks)
    app = start_app_stack(scale=scale, seed=seed, settings={"STEWARD_AUDIT_REMEDIATE_LIMIT": str(limit)},
                          clock=clock)
    saved = audit_orchestrator.REMEDIATION_FAN_OUT
    audit_orchestrator.REMEDIATION_FAN_OUT = fan_out  # type: ignore[misc]
    try:
        vm_ids, disk_ids = _legacy_estate(app, vms, disks)
        app.settle()
        app.sandbox.configure_throttle(ThrottleConfig(enabled=True))  # fresh buckets for the run
        mark = app.log.mark()
        virtual0, wall0 = app.sandbox.clock.now(), time.perf_counter()
        before = {i.instance_id for i in app.runner.query()}
        app.stack.host.fire_timer("audit_timer")
        started = [i.instance_id for i in app.runner.query()
                   if i.instance_id not in before and i.name == "audit_estate"]
        assert started, "the timer started no audit"
        status = app.runner.wait_for(started[0], timeout=timeout)
        virtual1, wall1 = app.sandbox.clock.now(), time.perf_counter()
        output = AuditSummary.from_record(status["output"]) if status.get("output") else None
        remediation = output.remediation.to_record() if output is not None else {}
        calls = [c for c in app.log.since(mark) if c.principal == APP_PRINCIPAL.lower()]
        held = Counter(source for _, _, source in protections(app.sandbox))
        wanted = [r.lower() for r in vm_ids + disk_ids]
        elapsed = (virtual1 - virtual0).total_seconds()
        protected = sum(1 for r in wanted if held.get(r) == 1)
        return {
            "vms": vms, "disks": disks, "fan_out": fan_out, "clock_scale": None if app.discrete else scale,
            "clock": app.clock_facts(),
            "audit_status": status.get("runtimeStatus"),
            "elapsed_virtual_seconds": round(elapsed, 1),
            "elapsed_real_seconds": round(wall1 - wall0, 1),
            "protections_per_virtual_second": round(protected / elapsed, 4) if elapsed > 0 else None,
            "remediation": remediation,
            "app_requests": by_kind(calls),
            "app_requests_per_resource": round(len(calls) / max(1, len(wanted)), 2),
            "app_throttled_429": throttled(calls),
            "throttled_share": round(sum(throttled(calls).values()) / max(1, len(calls)), 4),
            "exactly_once": {"resources": len(wanted), "protected_once": protected,
                             "several": sum(1 for r in wanted if held.get(r, 0) > 1),
                             "none": sum(1 for r in wanted if held.get(r, 0) == 0)},
        }
    finally:
        audit_orchestrator.REMEDIATION_FAN_OUT = saved  # type: ignore[misc]
        app.stop()


def render(result: dict[str, Any]) -> str:
    rows = []
    for r in result["runs"]:
        once = r["exactly_once"]
        rows.append([r["fan_out"], f"{r['vms']} VMs + {r['disks']} disks", r["elapsed_virtual_seconds"],
                     r["protections_per_virtual_second"], r["app_requests_per_resource"],
                     sum(r["app_throttled_429"].values()), f"{once['protected_once']}/{once['resources']}",
                     r["remediation"].get("outcomes")])
    return ("Onboarding an estate that predates the app: one audit with remediation\n" + table(
        ["fan-out", "estate", "Azure s", "protected / Azure s", "ARM req / resource", "429s", "once", "outcomes"],
        rows))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.remediation", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--vms", type=int, default=200)
    parser.add_argument("--disks", type=int, default=None, help="detached disks (default: a quarter of --vms)")
    parser.add_argument("--fan-outs", type=int, nargs="+", default=[8, 32])
    parser.add_argument("--scale", type=float, default=20.0, help="Azure seconds per real second")
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--timeout", type=float, default=3600.0, help="real seconds one audit may take")
    parser.add_argument("--clock", choices=("scaled", "discrete"), default="scaled",
                        help="discrete: Azure time jumps to the next deadline when nothing is runnable")
    parser.add_argument("--output", type=Path, default=OUTPUT)
    args = parser.parse_args(argv)
    disks = args.vms // 4 if args.disks is None else args.disks
    started = time.perf_counter()
    runs = [measure(args.vms, disks, fan_out, scale=args.scale, seed=args.seed, timeout=args.timeout, clock=args.clock)
            for fan_out in args.fan_outs]
    result = {"benchmark": "remediation", "seed": args.seed, "machine": machine(), "runs": runs,
              "real_seconds": round(time.perf_counter() - started, 1)}
    write_result(args.output, result)
    print(render(result))
    print(f"\n(results: {args.output}; {result['real_seconds']} real s)")
    ok = all(r["audit_status"] == "Completed" and r["exactly_once"]["protected_once"] == r["exactly_once"]["resources"]
             for r in runs)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
