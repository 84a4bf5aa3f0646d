"""Vaults filling up (issue 19 item 1): a burst of VM creations in one region whose rule names a vault set, with
``STEWARD_AUTO_CREATE_VAULTS`` on, on the real app + local Durable runner + ARM sandbox (throttle and latency on).

The set starts as one empty vault (``rsv-bench-01``); at ``STEWARD_VAULT_FILL_PERCENT`` of Azure's 1,000 VMs the
app creates the next one. The default run is Azure's numbers: 2,500 VMs at 90 % fill three vaults (900, 900,
700 when the counts are exact). Figures: Azure time on the discrete clock (``sandbox/clock.py``: our CPU costs
none), the app's ARM requests per VM, each vault's VMs at the end (none may be above Azure's limit), the writes
Azure refused as the vault was full (the race for a vault's last slots), every VM protected exactly once.

    python -m benchmarks.vault_sets                     # 2,500 VMs, 90 %
    python -m benchmarks.vault_sets --vms 30 --fill-percent 1   # small: 10 VMs fill a vault
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any, Final

from benchmarks.common import (
    APP_PRINCIPAL,
    ARTIFACTS,
    by_kind,
    by_status,
    machine,
    start_app_stack,
    table,
    throttled,
    wait_until,
    write_result,
)
from benchmarks.protection_speed import _fire_vm_creations, creation_events

OUTPUT: Final = ARTIFACTS / "vault_sets.json"
REGION: Final = "westeurope"
GROUP: Final = "rg-bench"
VAULTS: Final = "rg-vaults"
PREFIX: Final = "rsv-bench-"
#: Azure's limit (backup support matrix): the benchmark checks no vault ever holds more
VM_LIMIT: Final = 1000


def rules_text() -> str:
    return f"""
version: 1
rules:
  - name: vms
    match: {{types: [Microsoft.Compute/virtualMachines]}}
    protect:
      vault: {{vaultSet: {{namePrefix: {PREFIX}}}}}
      policy: DefaultPolicy
"""


def measure(vms: int, *, fill_percent: int, seed: int, timeout: float, creator_threads: int = 8) -> dict[str, Any]:
    from sandbox.arm.config import DEFAULT_SUBSCRIPTION, ThrottleConfig
    from sandbox.estate import Estate
    from steward.cloud.protection import RecoveryServicesProtection

    settings = {"STEWARD_RULES": rules_text(), "STEWARD_AUTO_CREATE_VAULTS": "true",
                "STEWARD_VAULT_FILL_PERCENT": str(fill_percent)}
    app = start_app_stack(scale=1.0, seed=seed, clock="discrete", settings=settings)
    try:
        estate = Estate(app.creator, DEFAULT_SUBSCRIPTION)
        estate.resource_group(GROUP, REGION)
        estate.resource_group(VAULTS, REGION)
        estate.recovery_services_vault(VAULTS, f"{PREFIX}01", REGION, default=False)
        app.settle()
        app.sandbox.configure_throttle(ThrottleConfig(enabled=True))
        vm_ids = [estate.rid(GROUP, "Microsoft.Compute/virtualMachines", f"vm-{i:04d}") for i in range(vms)]
        random.Random(seed).shuffle(vm_ids)
        mark = app.log.mark()
        virtual0, wall0 = app.sandbox.clock.now(), time.perf_counter()
        creator = _fire_vm_creations(app, vm_ids, creator_threads)
        wanted = {v.lower() for v in vm_ids}

        def finished() -> bool:
            done = {str(p.data.get("resourceId", "")).lower() for p in app.log.outcomes()}
            return wanted <= done

        wait_until(finished, timeout, f"outcomes for {vms} VMs", poll=0.5)
        app.settle(timeout)
        virtual1, wall1 = app.sandbox.clock.now(), time.perf_counter()

        calls = [c for c in app.log.since(mark) if c.principal == APP_PRINCIPAL.lower()]
        rs = RecoveryServicesProtection(app.creator)
        vaults = sorted((v for v in rs.all_vaults(DEFAULT_SUBSCRIPTION) if v.id.rsplit("/", 1)[-1].startswith(PREFIX)),
                        key=lambda v: v.id)
        per_vault: dict[str, int] = {}
        sources: Counter[str] = Counter()
        for vault in vaults:
            items = rs.vm_items(vault.id)
            per_vault[vault.id.rsplit("/", 1)[-1]] = len(items)
            sources.update(str((i.get("properties") or {}).get("sourceResourceId", "")).lower() for i in items)
        statuses: Counter[str] = Counter()
        outcomes_per_vm: Counter[str] = Counter()
        for published in app.log.outcomes():
            vm = str(published.data.get("resourceId", "")).lower()
            if vm in wanted:
                statuses[str(published.data.get("status"))] += 1
                outcomes_per_vm[vm] += 1
        events = creation_events(app)
        first_event = min((events[v] for v in wanted if v in events), default=None)
        last_outcome = max((p.at for p in app.log.outcomes()), default=None)
        refused = [c for c in calls if c.method == "PUT" and "/protecteditems/" in c.path.lower() and c.status == 400]
        creates = [c for c in calls if c.method == "PUT" and "/microsoft.recoveryservices/vaults/" in c.path.lower()
                   and c.path.lower().count("/") == 8 and c.status < 300]
        return {
            "vms": vms,
            "fill_percent": fill_percent,
            "vault_limit": VM_LIMIT,
            "clock": app.clock_facts(),
            "elapsed_virtual_seconds": round((virtual1 - virtual0).total_seconds(), 1),
            "first_event_to_last_outcome_virtual_seconds": None if first_event is None or last_outcome is None
            else round((last_outcome - first_event).total_seconds(), 1),
            "elapsed_real_seconds": round(wall1 - wall0, 1),
            "vaults": per_vault,
            "vaults_created": len(vaults) - 1,
            "vault_create_puts": len(creates),
            "max_vms_in_a_vault": max(per_vault.values(), default=0),
            "no_vault_above_its_limit": all(n <= VM_LIMIT for n in per_vault.values()),
            "item_puts_refused_vault_full": len(refused),
            "app": {"requests": by_kind(calls), "by_status": by_status(calls), "throttled_429": throttled(calls),
                    "requests_per_vm": round(len(calls) / max(1, vms), 2)},
            "creator": creator,
            "exactly_once": {
                "every_vm_protected": statuses.get("Protected", 0) == vms and all(sources.get(v) == 1 for v in wanted),
                "vms_with_several_items": sum(1 for v in wanted if sources.get(v, 0) > 1),
                "vms_without_item": sum(1 for v in wanted if sources.get(v, 0) == 0),
                "outcome_statuses": dict(statuses),
                "vms_with_several_outcomes": sum(1 for v in wanted if outcomes_per_vm[v] > 1),
            },
            "orchestrations": dict(app.runtime_statuses()),
        }
    finally:
        app.stop()


def render(result: dict[str, Any]) -> str:
    once = result["exactly_once"]
    rows = [[name, count, f"{100 * count / result['vault_limit']:.1f}%"] for name, count in result["vaults"].items()]
    return "\n".join([
        f"Vault set: {result['vms']} VMs in {REGION}, fill threshold {result['fill_percent']}%, "
        f"{result['vaults_created']} vault(s) created (clock {result['clock']['clock']}, "
        f"load {result['clock']['load_average_1m']})",
        table(["vault", "VMs", "of Azure's 1,000"], rows),
        f"no vault above its limit: {result['no_vault_above_its_limit']}; item PUTs Azure refused as the vault was "
        f"full: {result['item_puts_refused_vault_full']}; every VM protected exactly once: "
        f"{once['every_vm_protected']} ({once['outcome_statuses']})",
        f"Azure time: {result['elapsed_virtual_seconds']} s in all, first event -> last outcome "
        f"{result['first_event_to_last_outcome_virtual_seconds']} s; real {result['elapsed_real_seconds']} s",
        f"app ARM requests: {result['app']['requests']} ({result['app']['requests_per_vm']} per VM), "
        f"429s {result['app']['throttled_429']}",
    ])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vms", type=int, default=2500)
    parser.add_argument("--fill-percent", type=int, default=90)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--timeout", type=float, default=7200.0, help="real seconds the run may take")
    parser.add_argument("--output", type=Path, default=OUTPUT)
    args = parser.parse_args(argv)
    result = {"machine": machine(),
              "burst": measure(args.vms, fill_percent=args.fill_percent, seed=args.seed, timeout=args.timeout)}
    write_result(args.output, result)
    print(render(result["burst"]))
    ok = result["burst"]["no_vault_above_its_limit"] and result["burst"]["exactly_once"]["every_vm_protected"]
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
