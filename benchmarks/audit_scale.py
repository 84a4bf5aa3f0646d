"""Audit at scale on the sandbox: 1,000 -> 100,000 protectable resources over 20 subscriptions.

The sandbox runs in a child process (so the audit's memory is measured alone in this one) with ARM's read
throttle and per-request latency model on, at clock scale 1 (Azure time = real time). Per subscription it
holds N/20 resources, a quarter each VMs, managed disks, storage accounts and PostgreSQL flexible servers, in
one region with one Recovery Services vault and one Backup vault; 5% of the VMs are protected through ARM
(real PUTs and LROs), so protected items grow with N too. The resources themselves are seeded straight into
the sandbox's store (creating 100,000 through ARM would measure the sandbox, not the audit).

Measured per size: ARM requests the audit made (by kind and status, from the sandbox's counters), 429s,
modelled Azure time of the inventory (sandbox clock), wall time of the pure audit (first pass, untraced), and
peak Python memory of inventory + audit (a second, traced pass) and the process's max RSS.
Results: ``artifacts/benchmarks/audit_scale.json``.

    python -m benchmarks.audit_scale [--sizes 1000 10000 100000] [--subscriptions 20]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import platform
import resource
import sys
import time
import tracemalloc
import urllib.request
from datetime import datetime
from pathlib import Path
from typing import Any

OUTPUT = Path("artifacts/benchmarks/audit_scale.json")
REGION = "westeurope"
TYPES = (
    "Microsoft.Compute/virtualMachines",
    "Microsoft.Compute/disks",
    "Microsoft.Storage/storageAccounts",
    "Microsoft.DBforPostgreSQL/flexibleServers",
)


def subscription_ids(count: int) -> list[str]:
    return [f"00000000-0000-4000-8000-{index:012d}" for index in range(1, count + 1)]


def _serve(size: int, subs: int, channel: Any, stop: Any) -> None:
    """Child process: sandbox + estate; sends connection facts; serves until told to stop."""
    from sandbox.arm import ArmSandbox, LatencyConfig, SandboxConfig, SubscriptionSpec, ThrottleConfig
    from sandbox.estate import Estate
    from steward.cloud.clients import CloudClients
    from steward.cloud.protection import RecoveryServicesProtection

    specs = tuple(SubscriptionSpec(s, display_name=f"bench {i}") for i, s in enumerate(subscription_ids(subs)))
    sb = ArmSandbox(SandboxConfig(subscriptions=specs, scale=3600.0)).start()
    clients = CloudClients(sb.cloud_target(polling_interval=0.01))
    protect = RecoveryServicesProtection(clients)
    per_sub = size // subs
    for sub in subscription_ids(subs):
        estate = Estate(clients, sub)
        estate.resource_group("rg-app", REGION)
        estate.resource_group("rg-backup", REGION)
        rsv = estate.recovery_services_vault("rg-backup", "rsv", REGION)
        estate.backup_vault("rg-backup", "bv", REGION)
        vms = []
        for index in range(per_sub):
            rtype = TYPES[index % 4]
            name = f"r{index}"
            rid = f"/subscriptions/{sub}/resourceGroups/rg-app/providers/{rtype}/{name}"
            sb.store.put({"id": rid, "name": name, "type": rtype, "location": REGION,
                          "tags": {"env": "bench"}, "properties": {}})
            if rtype == TYPES[0]:
                vms.append(rid)
        policy = protect.policy_id(rsv, "DefaultPolicy")
        assert policy is not None
        for vm in vms[: max(1, len(vms) // 20)]:
            protect.enable_vm(rsv, vm, policy)
    sb.advance(2 * 3600)  # first backups
    sb.clock.set_scale(1.0)
    sb.configure_throttle(ThrottleConfig(enabled=True))
    sb.configure_latency(LatencyConfig(enabled=True))
    sb.counters.reset()
    channel.send({"endpoint": sb.endpoint, "ca_bundle": str(sb.ca_bundle), "token_url": sb.token_url})
    stop.wait()
    sb.stop()


def _admin(facts: dict[str, Any], path: str) -> Any:
    import ssl

    context = ssl.create_default_context(cafile=facts["ca_bundle"])
    with urllib.request.urlopen(facts["endpoint"] + path, timeout=30, context=context) as answer:
        return json.loads(answer.read())


def measure(size: int, subs: int) -> dict[str, Any]:
    from steward.cloud.clients import CloudClients, CloudTarget
    from steward.cloud.inventory import ArmEstateReader, read_estate
    from steward.domain.audit import RuleExpectations, audit
    from steward.rules_file import default_rules_text, load_rules

    context = multiprocessing.get_context("fork")
    parent, child = context.Pipe()
    stop = context.Event()
    server = context.Process(target=_serve, args=(size, subs, child, stop), daemon=True)
    seeded_at = time.monotonic()
    server.start()
    try:
        facts = parent.recv()
        seed_seconds = time.monotonic() - seeded_at
        target = CloudTarget(arm_endpoint=facts["endpoint"], credential_kind="sandbox",
                             sandbox_token_url=facts["token_url"], ca_bundle=facts["ca_bundle"])
        clients = CloudClients(target)
        rules = load_rules(default_rules_text(), "defaults")
        # Pass 1: requests and time (no tracing: at clock scale 1 its overhead would count as Azure time).
        azure_start = datetime.fromisoformat(_admin(facts, "/sandbox/clock")["now"])
        wall = time.monotonic()
        reader = ArmEstateReader(clients)
        inventory = read_estate(reader, subscription_ids(subs), concurrency=8)
        read_wall = time.monotonic() - wall
        azure_end = datetime.fromisoformat(_admin(facts, "/sandbox/clock")["now"])
        counters = _admin(facts, "/sandbox/counters")
        audit_wall = time.monotonic()
        result = audit(inventory, RuleExpectations(rules, inventory.vaults), azure_end)
        audit_seconds = time.monotonic() - audit_wall
        del inventory
        # Pass 2: peak Python memory of inventory + audit, traced.
        tracemalloc.start()
        inventory = read_estate(ArmEstateReader(clients), subscription_ids(subs), concurrency=8)
        audit(inventory, RuleExpectations(rules, inventory.vaults), azure_end)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    finally:
        stop.set()
        server.join(timeout=30)
    by_kind = counters.get("byKind", {})
    return {
        "resources": len(inventory.resources),
        "subscriptions": subs,
        "vaults": len(inventory.vaults),
        "protected_items": len(inventory.protected_items),
        "findings": len(result.findings),
        "coverage": round(result.coverage.total.ratio, 4),
        "arm_requests": counters.get("total"),
        "arm_requests_by_kind": by_kind,
        "throttled_429": sum(int(v.get("429", 0)) for v in by_kind.values()),
        "client_paced_seconds": round(reader.stats.paced_seconds, 3),
        "azure_seconds_inventory": round((azure_end - azure_start).total_seconds(), 2),
        "wall_seconds_inventory": round(read_wall, 2),
        "wall_seconds_audit": round(audit_seconds, 3),
        "peak_traced_mib": round(peak / 2**20, 1),
        "max_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "seed_seconds": round(seed_seconds, 1),
        "gaps": len(inventory.gaps),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.audit_scale", description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000, 100000])
    parser.add_argument("--subscriptions", type=int, default=20)
    parser.add_argument("--output", type=Path, default=OUTPUT)
    args = parser.parse_args(argv)
    runs = []
    for size in args.sizes:
        run = measure(size, args.subscriptions)
        runs.append(run)
        print(json.dumps(run), flush=True)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps({
        "benchmark": "audit_scale",
        "python": sys.version.split()[0],
        "machine": platform.machine(),
        "runs": runs,
    }, indent=2))
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
