"""Teardown speed on the sandbox: the saga against the official script's order run item by item.

Two identical Recovery Services vaults are seeded with ``--items`` backup items of mixed kinds (VMs, SQL and
SAP HANA databases in VM-app containers, Azure Files shares in storage containers, MARS file/folder items
under registered servers), a tenth of them soft-deleted, soft delete and enhanced security on. ARM's
documented throttle is switched on (per subscription + principal: writes and deletes 200-token buckets
refilling 10/s, reads 250 refilling 25/s, in Azure time), so is the per-request latency model, and the
sandbox's modelled LRO durations apply (deleting backup data: 60 Azure seconds).

* ``saga``: the ``teardown_vault`` orchestration on the Durable runner, fan-out bounded by
  ``--parallel`` (``STEWARD_MAX_PARALLEL_WRITES``), one activity per item.
* ``reference``: the D-script order (the same plan, the same idempotent adapters) executed one item at a
  time, no parallelism - what ``delete-recovery-services-vault.ps1`` does.

Reported per run: Azure time (virtual clock) and wall time to a deleted vault, ARM writes (PUT/PATCH/DELETE/
POST) against the minimum (one per thing to change or delete), 429s, and the ratio reference / saga.
Results: ``artifacts/benchmarks/teardown.json``.

    python -m benchmarks.teardown [--items 1000] [--parallel 20] [--scale 600]

The clock scale matters: Azure time is measured on the virtual clock, so every real millisecond the Python
process spends counts ``scale`` ms of Azure time. At 600 the modelled Azure latencies (ARM's per-request
latency model on, 60 s per backup-data delete) dominate our own overhead; at 3600 they no longer do. The
sandbox runs in this process, so its CPU counts too: ``--scale 120`` is more faithful (measured on this
machine: saga 5,270 s vs reference 67,712 s of Azure time, 12.9x, 1,093 writes = the minimum, no 429) but
takes ~30 minutes, mostly seeding; at 600 the same run gave 6.7x. ``--clock discrete`` takes our CPU out of Azure
time: 1,000 items 3,457.1 vs 65,956.2 Azure s (19.1x, 1,094 writes against 1,093, no 429; ~22 minutes real, most
of it the reference's polls), 100 items 9.9x (README "Teardown" says where the saga's time goes).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

OUTPUT = Path("artifacts/benchmarks/teardown.json")
HOUR = 3600.0


def _seed(estate: Any, rg: str, items: int) -> str:
    """A vault with ``items`` items: 60% VMs, 15% SQL, 10% HANA, 10% Azure Files, 5% MARS; 10% soft-deleted."""
    from tests.integration.teardown.conftest import STORAGE_TYPE, VM_TYPE

    vault_id = estate.rs_vault(rg, "rsv", soft_delete="Enabled", enhanced="Enabled")
    counts = {"vm": int(items * 0.60), "sql": int(items * 0.15), "hana": int(items * 0.10), "afs": int(items * 0.10)}
    counts["mars"] = items - sum(counts.values())
    vm_items: list[tuple[str, str]] = []
    for index in range(counts["vm"]):
        vm_items.append(estate.protect_vm(rg, "rsv", f"vm-{index}"))
    sql_policy = estate.workload_policy(rg, "rsv", "SqlPolicy", "AzureWorkload")
    afs_policy = estate.workload_policy(rg, "rsv", "AfsPolicy", "AzureStorage")
    for kind, workload, item_type, per in (
        ("sql", "SQLDataBase", "AzureVmWorkloadSQLDatabase", 10),
        ("hana", "SAPHanaDatabase", "AzureVmWorkloadSAPHanaDatabase", 10),
    ):
        for index in range(counts[kind]):
            host = f"{kind}vm{index // per}"
            container = f"VMAppContainer;compute;{rg};{host}"
            if index % per == 0:
                estate.register(rg, "rsv", container, "VMAppContainer", estate.resource(rg, VM_TYPE, host), workload)
            prefix = "SQLDataBase;mssqlserver" if kind == "sql" else "SAPHanaDatabase;hxe"
            estate.protect_workload(rg, "rsv", container, f"{prefix};db{index}", item_type, sql_policy)
    for index in range(counts["afs"]):
        account = f"sa{estate.tag}{index // 10}"
        container = f"StorageContainer;Storage;{rg};{account}"
        if index % 10 == 0:
            account_id = estate.resource(rg, STORAGE_TYPE, account)
            estate.register(rg, "rsv", container, "StorageContainer", account_id)
            # unregistering it needs Storage Account Contributor on the account (backup-rbac-rs-vault.md)
            estate.grant(estate.sandbox.config.default_principal_id, "17d1049b-9a84-46fb-8f53-869881c3d3ab", account_id)
        estate.protect_workload(
            rg, "rsv", container, f"AzureFileShare;share{index}", "AzureFileShareProtectedItem", afs_policy
        )
    servers = max(1, counts["mars"] // 10)
    for server in range(servers):
        share = counts["mars"] // servers + (1 if server < counts["mars"] % servers else 0)
        estate.model.seed_mars_server(vault_id, f"mars-{server}", items=[f"D:\\data{i}" for i in range(share)])
    estate.sandbox.advance(2 * HOUR)
    for container, item in vm_items[: items // 10]:
        estate.model.seed_soft_deleted_item(vault_id, container, item, days_left=10)
    return vault_id


def _writes(sandbox: Any) -> int:
    return sum(sandbox.counters.get(kind=k) for k in ("write", "delete", "action"))


def _minimum_writes(plan: Any) -> int:
    """One ARM write per setting change and per target of every acting step (the floor for any tool)."""
    from steward.domain.teardown import StepKind

    total = 0
    for step in plan.steps:
        if step.kind in (StepKind.AWAIT_PURGE, StepKind.VERIFY_EMPTY):
            continue
        total += len(step.setting_changes) or step.count
    return total


def _measure(sandbox: Any, run: Any) -> dict[str, Any]:
    clock = sandbox.clock
    writes0, throttled0 = _writes(sandbox), sandbox.counters.get(status=429)
    azure0: datetime = clock.now()
    wall0 = time.perf_counter()
    outcome = run()
    return {
        "outcome": outcome,
        "azure_seconds": round((clock.now() - azure0).total_seconds(), 1),
        "wall_seconds": round(time.perf_counter() - wall0, 2),
        "arm_writes": _writes(sandbox) - writes0,
        "throttled_429": sandbox.counters.get(status=429) - throttled0,
    }


def _reference(ops: Any, vault_id: str, sandbox: Any) -> str:
    """The official order, one item at a time (the same plan and adapters as the saga)."""
    from steward.domain.teardown import SETTINGS_STEPS, StepKind, VaultRef, plan_teardown

    vault = VaultRef.parse(vault_id)
    plan = plan_teardown(ops.inventory(vault, sandbox.clock.now()), sandbox.clock.now())
    act = {
        StepKind.UNDELETE_ITEMS: ops.undelete_item,
        StepKind.DISABLE_PROTECTION_INTENTS: ops.disable_intent,
        StepKind.UNREGISTER_MARS_SERVERS: ops.unregister_server,
        StepKind.UNREGISTER_BACKUP_SERVERS: ops.unregister_server,
        StepKind.REMOVE_PRIVATE_ENDPOINTS: ops.remove_private_endpoint,
    }
    for step in plan.steps:
        if step.kind in SETTINGS_STEPS:
            for change in step.setting_changes:
                ops.set_setting(vault, change.setting, change.to_value)
        elif step.kind is StepKind.VERIFY_EMPTY:
            continue
        elif step.kind is StepKind.DELETE_VAULT:
            return str(ops.delete_vault(vault).effect)
        else:
            name = step.kind.value
            method = act.get(step.kind) or (
                ops.delete_item
                if name.startswith("delete-")
                else ops.unregister_container
                if name.startswith("unregister-")
                else ops.remove_site_recovery
            )
            for target in step.targets:
                method(vault, target)
    return "not-deleted"


def run(items: int, parallel: int, scale: float, clock: str = "scaled") -> dict[str, Any]:
    """``clock``: ``scaled`` (Azure time runs ``scale`` x real time) or ``discrete`` (``sandbox.clock.DiscreteClock``:
    time jumps to the next deadline when nothing is runnable, so our CPU costs no Azure time; ``scale`` unused)."""
    from sandbox.clock import AzureTime, DiscreteClock
    from steward.cloud import azure_time

    discrete = DiscreteClock() if clock == "discrete" else None
    if discrete is not None:
        azure_time.install(AzureTime(discrete))
    try:
        return _run(items, parallel, scale, discrete)
    finally:
        if discrete is not None:
            azure_time.reset()
            discrete.close()


def _run(items: int, parallel: int, scale: float, discrete: Any) -> dict[str, Any]:
    import azure.durable_functions as df

    import activities.teardown as teardown_activities
    import orchestrators.teardown as teardown_orchestrator
    from sandbox.arm.config import LatencyConfig, ThrottleConfig
    from sandbox.clock import busy
    from sandbox.durable import DurableRunner, RunnerConfig
    from steward import bootstrap
    from steward.cloud.clients import CloudClients
    from steward.cloud.publisher import MemoryPublisher
    from steward.cloud.teardown_ops import TeardownOps
    from steward.domain.teardown import RequestSource, TeardownRequest, VaultRef, instance_id_for, plan_teardown
    from steward.report.store import LocalReportStore
    from steward.settings import Settings
    from tests.integration.teardown.conftest import Estate, start_sandbox

    sandbox = start_sandbox(scale=scale, page_size=200, **({"clock": discrete} if discrete is not None else {}))
    workdir = Path(tempfile.mkdtemp(prefix="teardown-bench-"))
    try:
        clients = CloudClients(dataclasses.replace(sandbox.cloud_target(), polling_interval=0.05))
        estate = Estate(sandbox, clients)
        seed0 = time.perf_counter()
        saga_rg, reference_rg = estate.group("saga"), estate.group("reference")
        saga_vault = _seed(estate, saga_rg, items)
        reference_vault = _seed(estate, reference_rg, items)
        seeding = round(time.perf_counter() - seed0, 1)
        ops = TeardownOps(clients, wait_budget_seconds=300, max_poll_seconds=0.5)
        plan = plan_teardown(ops.inventory(VaultRef.parse(saga_vault), sandbox.clock.now()), sandbox.clock.now())
        minimum = _minimum_writes(plan)
        sandbox.configure_throttle(ThrottleConfig(enabled=True))
        sandbox.configure_latency(LatencyConfig(enabled=True))

        bootstrap.use(
            ops=ops,
            settings=Settings(max_parallel_writes=parallel, teardown_four_eyes=False),
            report_store=LocalReportStore(workdir / "reports"),
            publisher=MemoryPublisher(),
        )
        app = df.DFApp()
        app.register_functions(teardown_activities.bp)
        app.register_functions(teardown_orchestrator.bp)
        config = RunnerConfig(db_path=str(workdir / "durable.sqlite"), max_activity_workers=max(16, parallel))
        with DurableRunner(app, config, clock=sandbox.clock) as runner:
            request = TeardownRequest(
                saga_vault, "benchmark", RequestSource.HTTP, dry_run=False, approved_fingerprint=plan.fingerprint
            )

            def saga() -> str:
                instance = runner.start_new("teardown_vault", instance_id_for(request), request.to_record())
                status = runner.wait_for(instance, timeout=3600)
                return str((status.get("output") or {}).get("outcome"))

            saga_result = _measure(sandbox, saga)
        def reference() -> str:
            # on a discrete clock the script is runnable work: Azure time moves only while it waits
            with busy(sandbox.clock, "reference teardown"):
                return _reference(ops, reference_vault, sandbox)

        reference_result = _measure(sandbox, reference)
        return {
            "items": items,
            "soft_deleted": items // 10,
            "parallel": parallel,
            "clock_scale": scale if discrete is None else None,
            "clock": "scaled" if discrete is None else "discrete",
            "watchdog_reports": None if discrete is None else len(discrete.watchdog_reports),
            "load_average_1m": round(os.getloadavg()[0], 2),
            "seeding_wall_seconds": seeding,
            "minimum_arm_writes": minimum,
            "saga": saga_result,
            "reference": reference_result,
            "ratio_azure_time": round(reference_result["azure_seconds"] / max(saga_result["azure_seconds"], 1e-9), 2),
            "ratio_wall_time": round(reference_result["wall_seconds"] / max(saga_result["wall_seconds"], 1e-9), 2),
            "saga_writes_over_minimum": round(saga_result["arm_writes"] / max(minimum, 1), 3),
        }
    finally:
        bootstrap.use()
        sandbox.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=1000)
    parser.add_argument("--parallel", type=int, default=20)
    parser.add_argument("--scale", type=float, default=600.0, help="Azure seconds per real second")
    parser.add_argument("--clock", choices=("scaled", "discrete"), default="scaled",
                        help="discrete: Azure time jumps to the next deadline when nothing is runnable")
    parser.add_argument("--output", type=Path, default=OUTPUT)
    args = parser.parse_args(argv)
    result = run(args.items, args.parallel, args.scale, args.clock)
    result["python"] = platform.python_version()
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2))
    json.dump(result, sys.stdout, indent=2)
    print()
    ok = result["saga"]["outcome"] == "deleted" and result["reference"]["outcome"] == "deleted"
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
