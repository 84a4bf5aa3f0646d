"""Restore drill at scale on the sandbox: one drill of ``--resources`` protected resources (200 by default, VMs,
managed disks and PostgreSQL flexible servers in turn), ARM requests per drilled resource against the REST
minimum of each type, and the drill's Azure time on the discrete clock.

The real app (``function_app.py`` on the local host + Durable runner) protects the estate from its creation
events; the sandbox's backups run for eight days; then ``restore_drill`` starts as the timer starts it (everything
due; the rules' budgets let all of them in). ARM's throttle and latency model are on; the sandbox's restore jobs
last what ``sandbox/arm/providers/_backups.py`` ``BackupTiming`` models (VM 3,600 s, disk 900 s, PostgreSQL
2,700 s; inferred, Azure documents none). Requests are the app's only (its principal), attributed to a resource
by the names in their paths; what names none (the protection lists, the drill group, its disk lists) is the
drill's shared part. Results: ``artifacts/benchmarks/drill_scale.json``.

    python -m benchmarks.drill_scale [--resources 200] [--clock discrete|scaled] [--scale 600]

The REST minimum (``MINIMUM``) is what any client needs to do the same drill on Azure's REST API, request by
request with its reason, following each operation with one look after it ended (a client that knew every
duration); what the app adds is the polling of operations and jobs it cannot know the end of.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any, Final

from benchmarks.common import APP_PRINCIPAL, ArmCall, by_kind, machine, start_app_stack, table, wait_until, write_result

OUTPUT: Final = Path("artifacts/benchmarks/drill_scale.json")
GROUP: Final = "rg-drill-bench"
REGION: Final = "westeurope"
TYPES: Final = ("vm", "disk", "postgres")
#: one rule per type: a rule takes at most 100 resources per run (the schema's maxConcurrent maximum)
DRILLS: Final = "\ndrills:\n" + "".join(f"""  - name: bench-{name}
    match: {{types: [{rtype}]}}
    every: P7D
    recoveryPoint: latest
    lifetime: P1D
    budgets: {{maxConcurrent: 100}}
""" for name, rtype in (("vm", "Microsoft.Compute/virtualMachines"), ("disk", "Microsoft.Compute/disks"),
                        ("postgres", "Microsoft.DBforPostgreSQL/flexibleServers")))

#: The least a client needs per drilled resource, on Azure's REST API (kind, count, reason). Operations (LROs) are
#: looked at once, after they ended. Per drill, not per resource: reading what is protected (one list per vault),
#: making the drill group (one PUT per region), and the vault identity's Disk Restore Operator on it (one PUT).
MINIMUM: Final[dict[str, list[tuple[str, int, str]]]] = {
    "vm": [
        ("read", 1, "GET the source VM: its tags and region (which drill rule applies) and its disks"),
        ("read", 1, "GET the source VM's OS disk: the size and SKU the restored disk must have"),
        ("read", 1, "GET the item's recoveryPoints: the point to restore"),
        ("write", 1, "PUT the staging storage account (RestoreDisks needs one in the vault's region)"),
        ("read", 1, "GET the account's create operation once it ended"),
        ("action", 1, "POST recoveryPoints/{rp}/restore (RestoreDisks into the drill group)"),
        ("read", 1, "GET the restore's operation status: it names the job (properties.jobId)"),
        ("read", 1, "GET the job once it ended: status, start and end (the RTO)"),
        ("read", 1, "GET the drill group's disks: the job names no restored disk"),
        ("write", 1, "PATCH the restored disk's tags (the drill's id: cleanup deletes only what carries it)"),
        ("delete", 1, "DELETE the restored disk"),
        ("delete", 1, "DELETE the staging account"),
        ("read", 1, "GET each deleted resource once its delete ended (nothing left)"),
    ],
    "disk": [
        ("read", 1, "GET the source disk: tags, region, size and SKU"),
        ("read", 1, "GET the instance's recoveryPoints"),
        ("action", 1, "POST validateRestore (the Backup vault checks the target and its rights)"),
        ("read", 1, "GET validateRestore's operation once it ended"),
        ("action", 1, "POST restore (a new disk in the drill group)"),
        ("read", 1, "GET the restore's operation: it names the job"),
        ("read", 1, "GET the job once it ended"),
        ("read", 1, "GET the new disk: size and SKU to validate"),
        ("write", 1, "PATCH the new disk's tags"),
        ("delete", 1, "DELETE the new disk"),
        ("read", 1, "GET the disk once its delete ended"),
    ],
    "postgres": [
        ("read", 1, "GET the source server: tags, region, storage size"),
        ("read", 1, "GET the instance's recoveryPoints"),
        ("write", 1, "PUT the drill's storage account (the files' target)"),
        ("read", 1, "GET the account's create operation once it ended"),
        ("write", 1, "PUT the account's drill-restore container (a files restore needs an existing container)"),
        ("write", 1, "PUT the vault identity's Storage Blob Data Contributor on the account"),
        ("action", 1, "POST validateRestore"),
        ("read", 1, "GET validateRestore's operation once it ended"),
        ("action", 1, "POST restore (as files into the account)"),
        ("read", 1, "GET the restore's operation: it names the job"),
        ("read", 1, "GET the job once it ended"),
        ("delete", 1, "DELETE the account"),
        ("read", 1, "GET the account once its delete ended"),
    ],
}
MINIMUM_PER_DRILL: Final = [
    ("read", 2, "GET the Recovery Services items and the Backup vault instances (one list per vault)"),
    ("write", 1, "PUT the drill group (one per region and subscription)"),
    ("write", 1, "PUT the Backup vault identity's Disk Restore Operator on the drill group"),
]


def minimum_of(kind_rows: list[tuple[str, int, str]]) -> dict[str, int]:
    counts: Counter[str] = Counter()
    for kind, count, _ in kind_rows:
        counts[kind] += count
    return {k: counts.get(k, 0) for k in ("read", "write", "action", "delete")}


def _names(kind: str, index: int) -> str:
    return {"vm": f"bvm{index:04d}", "disk": f"bdisk{index:04d}", "postgres": f"bpg{index:04d}"}[kind]


def _create_estate(app: Any, count: int) -> dict[str, str]:
    """The vaults and ``count`` resources (VM, disk, PostgreSQL in turn), created without waiting for their
    operations (the sandbox ends them on its clock and raises the events). Returns resource id -> type key."""
    from sandbox.arm.config import DEFAULT_SUBSCRIPTION
    from sandbox.clock import busy
    from sandbox.estate import Estate
    from steward.cloud.protection import READ_API_VERSIONS

    estate = Estate(app.creator, DEFAULT_SUBSCRIPTION)
    with busy(app.clock, "creator"):
        estate.resource_group(GROUP, REGION)
    estate.recovery_services_vault(GROUP, "rsv-bench", REGION)
    estate.backup_vault(GROUP, "bv-bench", REGION)
    client = app.creator.resources(DEFAULT_SUBSCRIPTION).resources
    bodies = {
        "vm": ("Microsoft.Compute/virtualMachines", {"location": REGION, "properties": {
            "hardwareProfile": {"vmSize": "Standard_D2s_v5"},
            "storageProfile": {"osDisk": {"createOption": "FromImage"}}}}),
        "disk": ("Microsoft.Compute/disks", {"location": REGION, "sku": {"name": "Premium_LRS"}, "properties": {
            "creationData": {"createOption": "Empty"}, "diskSizeGB": 64}}),
        "postgres": ("Microsoft.DBforPostgreSQL/flexibleServers", {
            "location": REGION, "sku": {"name": "Standard_D2ds_v5", "tier": "GeneralPurpose"},
            "properties": {"version": "16", "storage": {"storageSizeGB": 128}}}),
    }
    created: dict[str, str] = {}
    for index in range(count):
        kind = TYPES[index % len(TYPES)]
        rtype, body = bodies[kind]
        rid = estate.rid(GROUP, rtype, _names(kind, index))
        with busy(app.clock, "creator"):
            client.begin_create_or_update_by_id(rid, api_version=READ_API_VERSIONS[rtype.lower()],
                                                parameters=body, polling=False)
        created[rid] = kind
    return created


def _owner(call: ArmCall, names: dict[str, str]) -> str | None:
    """The drilled resource a request is about (the first of its names in the path), or None (shared)."""
    path = call.path.lower()
    for token in re.findall(r"[a-z0-9][a-z0-9._-]*", path):
        owner = names.get(token)
        if owner is not None:
            return owner
    for name, owner in names.items():
        if name in path:
            return owner
    return None


def _shape(call: ArmCall) -> str:
    """A request's method and path with names and ids taken out (to count what kind of request it is)."""
    path = call.path.split("?", 1)[0]
    parts = path.strip("/").split("/")
    kept = [p if i % 2 == 0 or p.lower() in ("default",) else "{}" for i, p in enumerate(parts)]
    return f"{call.method} /" + "/".join(kept)


def run(resources: int, *, clock: str, scale: float, seed: int, timeout: float) -> dict[str, Any]:
    from steward.domain import drill_flow as flow
    from steward.rules_file import default_rules_text

    app = start_app_stack(scale=scale, seed=seed, clock=clock, settings={
        "STEWARD_RULES": default_rules_text() + DRILLS, "STEWARD_DRILL_SCHEDULE": "0 0 0 1 1 *"})
    try:
        wall0 = time.perf_counter()
        created = _create_estate(app, resources)
        wanted = {r.lower() for r in created}

        def protected() -> bool:
            done = {str(p.data.get("resourceId", "")).lower() for p in app.log.outcomes()
                    if p.data.get("status") == "Protected"}
            return wanted <= done

        wait_until(protected, timeout, f"{resources} protections", poll=0.5)
        app.settle(timeout)
        # eight days of scheduled backups: every resource has a recovery point (PostgreSQL: the weekly vault-tier one)
        app.clock.advance(8 * 24 * 3600.0)
        app.settle(timeout)
        setup_wall = time.perf_counter() - wall0

        mark = app.log.mark()
        drill_id = "drill-bench-" + str(seed)
        virtual0, wall0 = app.clock.now(), time.perf_counter()
        app.runner.start_new("restore_drill", drill_id, {"resources": [], "subscriptions": [], "dryRun": False,
                                                         "trigger": "timer"})
        before = {i.instance_id for i in app.runner.query()}
        status = app.runner.wait_for(drill_id, timeout=timeout)
        # the app hears the drill's own writes and deletes (staging accounts, restored disks) as resource events:
        # each starts a protection (OptedOut: in the drill group) or a gone-handling, whose requests count here too
        reactions = Counter(i.name for i in app.runner.query() if i.instance_id not in before
                            and i.instance_id != drill_id)
        azure_seconds = (app.clock.now() - virtual0).total_seconds()
        wall = time.perf_counter() - wall0
        report = status.get("output") or {}
        results = report.get("results") or []
        outcomes = Counter(str(r.get("outcome")) for r in results)

        # every name a drilled resource's requests carry: its own, its staging account, its restored disk
        names: dict[str, str] = {}
        kind_of = {rid.lower(): kind for rid, kind in created.items()}
        for rid in created:
            name = rid.rsplit("/", 1)[-1].lower()
            names[name] = rid.lower()
            names[flow.staging_account_name(drill_id, rid)] = rid.lower()
            names[flow.restored_disk_name(drill_id, name).lower()] = rid.lower()
        for result in results:
            job = str(result.get("restoreJobId") or "").rsplit("/", 1)[-1].lower()
            if job:
                names[job] = str(result["resourceId"]).lower()
            for restored in result.get("restored") or []:
                names[str(restored["id"]).rsplit("/", 1)[-1].lower()] = str(result["resourceId"]).lower()
        calls = app.log.since(mark, APP_PRINCIPAL)
        per_resource: dict[str, list[ArmCall]] = {}
        shared: list[ArmCall] = []
        for call in calls:
            owner = _owner(call, names)
            (per_resource.setdefault(owner, []) if owner else shared).append(call)

        types: dict[str, Any] = {}
        for kind in TYPES:
            ids = [rid for rid, k in kind_of.items() if k == kind]
            if not ids:
                continue
            own = [c for rid in ids for c in per_resource.get(rid, [])]
            measured = {k: round(v / len(ids), 2) for k, v in by_kind(own).items()}
            minimum = minimum_of(MINIMUM[kind])
            job_reads = [c for rid in ids for c in per_resource.get(rid, [])
                         if "/backupjobs/" in c.path.lower() and c.method == "GET"]
            types[kind] = {
                "resources": len(ids),
                "requests_per_resource": measured,
                "total_per_resource": round(len(own) / len(ids), 2),
                "minimum_per_resource": minimum,
                "minimum_total": sum(minimum.values()),
                "ratio": round((len(own) / len(ids)) / max(sum(minimum.values()), 1), 2),
                "job_polls_per_resource": round(len(job_reads) / len(ids), 2),
                "minimum_reasons": [{"kind": k, "count": n, "why": why} for k, n, why in MINIMUM[kind]],
            }
        rto = {kind: [float(r["rtoSeconds"]) for r in results
                      if kind_of.get(str(r["resourceId"]).lower()) == kind and r.get("rtoSeconds") is not None]
               for kind in TYPES}
        minimum_total = sum(sum(minimum_of(MINIMUM[kind_of[rid]]).values()) for rid in kind_of)
        minimum_total += sum(n for _, n, _ in MINIMUM_PER_DRILL)
        restore_time = sum(sum(v) for v in rto.values())
        left = sum(len(r.get("left") or []) for r in results)
        remaining = [r["id"] for r in app.sandbox.store.list()
                     if any(k.lower() == flow.DRILL_TAG and v == drill_id for k, v in (r.get("tags") or {}).items())]
        return {
            "resources": resources,
            "drill_id": drill_id,
            "runtime_status": status.get("runtimeStatus"),
            "outcomes": dict(outcomes),
            "azure_seconds": round(azure_seconds, 1),
            "sum_of_restore_jobs_seconds": round(restore_time, 1),
            "wall_seconds": round(wall, 1),
            "setup_wall_seconds": round(setup_wall, 1),
            "requests": {"total": len(calls), "by_kind": by_kind(calls), "per_resource": round(
                len(calls) / max(resources, 1), 2), "shared": len(shared), "shared_by_kind": by_kind(shared),
                "shared_shapes": dict(Counter(_shape(c) for c in shared).most_common(12)),
                "throttled_429": sum(1 for c in calls if c.status == 429)},
            "minimum": {"total": minimum_total, "per_drill": [{"kind": k, "count": n, "why": why}
                                                              for k, n, why in MINIMUM_PER_DRILL]},
            "ratio_to_minimum": round(len(calls) / max(minimum_total, 1), 2),
            "types": types,
            "rto_seconds": {k: {"n": len(v), "mean": round(sum(v) / len(v), 1) if v else None}
                            for k, v in rto.items()},
            "orchestrations_caused_by_the_drills_writes": dict(reactions),
            "left_by_report": left,
            "tagged_resources_remaining": remaining,
            **app.clock_facts(),
            "machine": machine(),
        }
    finally:
        app.stop()


def summary(result: dict[str, Any]) -> str:
    rows = [(kind, t["resources"], t["total_per_resource"], t["minimum_total"], t["ratio"],
             t["job_polls_per_resource"], result["rto_seconds"][kind]["mean"])
            for kind, t in result["types"].items()]
    head = (f"Drill of {result['resources']} resources ({result['clock']} clock, load {result['load_average_1m']}): "
            f"{result['runtime_status']}, outcomes {result['outcomes']}; {result['azure_seconds']:,.0f} Azure s "
            f"(restore jobs alone {result['sum_of_restore_jobs_seconds']:,.0f} s), {result['wall_seconds']:,.0f} s "
            f"real; {result['requests']['total']:,} ARM requests ({result['requests']['per_resource']} per resource, "
            f"{result['requests']['shared']} shared) against a minimum of {result['minimum']['total']:,} = "
            f"{result['ratio_to_minimum']}x; 429s {result['requests']['throttled_429']}; "
            f"left {result['left_by_report']}, tagged remaining {len(result['tagged_resources_remaining'])}")
    return head + "\n" + table(("type", "resources", "requests/resource", "minimum", "ratio", "job polls",
                                "RTO mean s"), rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--resources", type=int, default=200)
    parser.add_argument("--clock", choices=("scaled", "discrete"), default="discrete",
                        help="discrete (default): Azure time jumps to the next deadline when nothing is runnable")
    parser.add_argument("--scale", type=float, default=600.0, help="Azure seconds per real second (scaled clock)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--timeout", type=float, default=7200.0, help="real seconds to wait for each phase")
    parser.add_argument("--output", type=Path, default=OUTPUT)
    args = parser.parse_args(argv)
    result = run(args.resources, clock=args.clock, scale=args.scale, seed=args.seed, timeout=args.timeout)
    write_result(args.output, result)
    print(summary(result))
    ok = (result["runtime_status"] == "Completed" and result["outcomes"].get("Succeeded") == args.resources
          and not result["tagged_resources_remaining"] and result["left_by_report"] == 0)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
