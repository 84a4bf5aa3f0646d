"""Throttle discipline (issue 9, item 5): the app's share of throttled requests and its throughput under a
sustained burst in one subscription, with ARM's throttle ON, with and without the client-side pacer
(``steward.cloud.throttle``, wired in ``steward.cloud.clients``).

The ARM sandbox runs at clock scale 1 (its token buckets refill in real seconds: writes 200 + 10/s, reads
250 + 25/s per principal and subscription; POST counts as a write). ``--vms`` VMs exist in one subscription
(written straight into the sandbox's store: the creator's requests are not under test) beside one Recovery
Services vault. ``--workers`` threads (the app's parallel activities) each protect VMs through the app's own
adapter (``steward.cloud.protection.RecoveryServicesProtection``) as ``protect_resource`` does on its minimum
path: ``backupStatus`` (POST), PUT of the protected item (accepted, not awaited), GET of the item. A step that
fails after the SDK's own retries is retried by the worker after 1 s (what the activity retry does).

Scale-out (issue 15, item 4): ``--instances N`` runs N app instances, as Flex Consumption would: N separate
pacers (``CloudTarget.pacing_instance``), ``--workers`` threads each, one principal, one subscription, the VMs
split between them. They share ARM's bucket only through the counts ARM reports on every answer.

Figures, per mode (``paced`` = the app's default clients, steering by the reported counts; ``unsteered`` = the
pacer without steering, ``PacingLimits(steer_below_seconds=0)``, i.e. the pacer before issue 15;
``unpaced`` = ``CloudTarget(pacing=None)``):
* throttled share = the app's 429 answers / all its ARM requests;
* write throughput = successful writes per second over the burst, and the same after the bucket's initial
  capacity (``steady``), each as a fraction of the write refill rate (10/s); VMs protected per second.

    python -m benchmarks.throttle_discipline [--vms 600] [--workers 32] [--instances 1] [--modes paced unpaced]
    python -m benchmarks.throttle_discipline --vms 300 --workers 4 --instances 1 4 16 --modes paced unsteered

Results: ``artifacts/benchmarks/throttle_discipline.json`` and a table on stdout.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import dataclasses
import os
import time
from typing import Any, Final

from benchmarks.common import APP_PRINCIPAL, ARTIFACTS, RequestLog, by_status, machine, table, write_result

OUTPUT: Final = ARTIFACTS / "throttle_discipline.json"
REGION: Final = "westeurope"
GROUP: Final = "rg-burst"
VM_TYPE: Final = "Microsoft.Compute/virtualMachines"
WRITE_KINDS: Final = frozenset({"write", "action"})


def _seed_estate(sandbox: Any, vms: int) -> tuple[str, list[str]]:
    from sandbox.arm.config import DEFAULT_SUBSCRIPTION
    from sandbox.estate import Estate
    from steward.cloud.clients import CloudClients

    creator_target = sandbox.cloud_target(principal_id="00000000-0000-4000-8000-00000000c0de")
    creator = CloudClients(dataclasses.replace(creator_target, polling_interval=0.05, pacing=None))
    estate = Estate(creator, DEFAULT_SUBSCRIPTION)
    estate.resource_group(GROUP, REGION)
    vault = estate.recovery_services_vault(GROUP, "rsv-burst", REGION)
    ids = []
    for index in range(vms):
        rid = estate.rid(GROUP, VM_TYPE, f"vm-{index:04d}")
        sandbox.store.put({"id": rid, "name": f"vm-{index:04d}", "type": VM_TYPE, "location": REGION, "tags": {},
                           "properties": {"provisioningState": "Succeeded", "vmId": f"{index:08d}"}})
        ids.append(rid)
    return vault, ids


def _protect(protection: Any, vault: str, policy: str, vm: str) -> int:
    """One VM on the minimum path; returns how many times a step had to be retried by the worker."""
    retries = 0
    for step in (lambda: protection.backup_status(vm, REGION),
                 lambda: protection.begin_enable_vm(vault, vm, policy),
                 lambda: protection.vm_item(vault, vm)):
        for attempt in range(20):
            try:
                step()
                break
            except Exception:
                if attempt == 19:
                    raise
                retries += 1
                time.sleep(1.0)
    return retries


def _load() -> float:
    return os.getloadavg()[0]


def measure(mode: str, vms: int, workers: int, instances: int = 1) -> dict[str, Any]:
    from sandbox.arm import ArmSandbox, SandboxConfig
    from sandbox.arm.config import ThrottleConfig
    from steward.cloud.clients import CloudClients
    from steward.cloud.protection import RecoveryServicesProtection
    from steward.cloud.throttle import PacerStats, PacingLimits

    throttle = ThrottleConfig(enabled=True)
    sandbox = ArmSandbox(SandboxConfig(scale=1.0, throttle=throttle)).start()
    try:
        log = RequestLog(sandbox)
        vault, ids = _seed_estate(sandbox, vms)
        target = dataclasses.replace(sandbox.cloud_target(principal_id=APP_PRINCIPAL), polling_interval=0.05)
        if mode == "unpaced":
            target = dataclasses.replace(target, pacing=None)
        elif mode == "unsteered":
            target = dataclasses.replace(target, pacing=PacingLimits(steer_below_seconds=0.0))
        fleet = [CloudClients(dataclasses.replace(target, pacing_instance=f"instance-{n}")) for n in range(instances)]
        protections = [RecoveryServicesProtection(c) for c in fleet]
        protection = protections[0]
        policy = protection.policy_id(vault, "DefaultPolicy")
        assert policy, "the vault has no DefaultPolicy"
        load_before = _load()
        mark = log.mark()
        started = time.monotonic()

        def instance(n: int) -> int:
            with concurrent.futures.ThreadPoolExecutor(workers) as pool:
                return sum(pool.map(lambda vm: _protect(protections[n], vault, policy, vm), ids[n::instances]))

        with concurrent.futures.ThreadPoolExecutor(instances) as fleet_pool:
            retries = sum(fleet_pool.map(instance, range(instances)))
        elapsed = time.monotonic() - started
        calls = log.since(mark, APP_PRINCIPAL)
        writes_ok = [c for c in calls if c.kind in WRITE_KINDS and 200 <= c.status < 300]
        throttled = sum(1 for c in calls if c.status == 429)
        window = (max(c.answered for c in calls) - min(c.arrived for c in calls)).total_seconds()
        # the second half of the window: the bucket's initial capacity is long spent, what is left is the refill
        # (a steering pacer leaves part of the capacity unspent, which "steady" below counts against it)
        half = min(c.arrived for c in calls) + (max(c.answered for c in calls) - min(c.arrived for c in calls)) / 2
        tail_writes = sum(1 for c in writes_ok if c.answered >= half)
        capacity, refill = throttle.writes.capacity, throttle.writes.refill_per_second
        items = sum(1 for vm in ids if protection.vm_item(vault, vm) is not None)
        stats = [c.pacer.stats for c in fleet if c.pacer is not None]
        pacer = {f.name: sum(getattr(st, f.name) for st in stats) for f in dataclasses.fields(PacerStats)}
        return {
            "mode": mode,
            "instances": instances,
            "vms": vms,
            "workers": workers,
            "clock_scale": 1.0,
            "load_1min_before_after": [round(load_before, 2), round(_load(), 2)],
            "requests": len(calls),
            "by_status": by_status(calls),
            "throttled_429": throttled,
            "throttled_share": round(throttled / len(calls), 4) if calls else 0.0,
            "successful_writes": len(writes_ok),
            "window_seconds": round(window, 2),
            "elapsed_real_seconds": round(elapsed, 2),
            "writes_per_second": round(len(writes_ok) / window, 3),
            "fraction_of_write_refill": round(len(writes_ok) / window / refill, 3),
            "steady_writes_per_second": round(max(0, len(writes_ok) - capacity) / window, 3),
            "steady_fraction_of_write_refill": round(max(0, len(writes_ok) - capacity) / window / refill, 3),
            "second_half_fraction_of_write_refill": round(tail_writes / (window / 2) / refill, 3),
            "ceiling_writes_per_second": round((capacity + refill * window) / window, 3),
            "vms_protected_per_second": round(vms / elapsed, 3),
            "worker_retries": retries,
            "every_vm_has_one_item": items == vms,
            "pacer": pacer if stats else None,
        }
    finally:
        sandbox.stop()


def render(result: dict[str, Any]) -> str:
    rows = [(r["mode"], r.get("instances", 1), r["requests"], r["throttled_429"], f"{100 * r['throttled_share']:.2f}%",
             r["writes_per_second"], r["fraction_of_write_refill"], r["steady_fraction_of_write_refill"],
             r.get("second_half_fraction_of_write_refill"),
             r["vms_protected_per_second"], r["worker_retries"], str(r["every_vm_has_one_item"]))
            for r in result["runs"]]
    return table(("mode", "instances", "requests", "429", "throttled share", "writes/s", "of refill",
                  "steady of refill", "2nd half of refill", "VMs/s", "worker retries", "all protected"), rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.throttle_discipline", description=__doc__)
    parser.add_argument("--vms", type=int, default=600)
    parser.add_argument("--workers", type=int, default=32)
    parser.add_argument("--instances", nargs="+", type=int, default=[1],
                        help="app instances with separate pacers (one run per value and mode)")
    parser.add_argument("--modes", nargs="+", default=["paced", "unpaced"], choices=["paced", "unsteered", "unpaced"])
    args = parser.parse_args(argv)
    runs = [measure(mode, args.vms, args.workers, n) for n in args.instances for mode in args.modes]
    result = {"benchmark": "throttle_discipline", "machine": machine(), "write_bucket": {"capacity": 200,
              "refill_per_second": 10.0}, "target": "throttled share <= 1%, throughput near the refill rate",
              "runs": runs}
    write_result(OUTPUT, result)
    print(render(result))
    print(f"written to {OUTPUT}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
