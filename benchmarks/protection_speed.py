"""Auto-protection speed on the sandbox (issue 5, item 7): latency, ARM requests against the minimum, a burst.

The real app (``function_app.py``) runs on the local host + Durable runner against the ARM sandbox with ARM's
per-request latency model ON and ARM's documented throttle ON (token buckets per subscription + principal:
reads 250 refilling 25/s, writes 200 refilling 10/s; POST counts as a write). The estate is created through
the real SDK as a separate principal (``CREATOR_PRINCIPAL``); the app acts as ``APP_PRINCIPAL``
(``STEWARD_SANDBOX_PRINCIPAL_ID``), so each has its own buckets, as in Azure.

1. **Latency** - N resources of each type (VM, managed disk, storage account, PostgreSQL flexible server),
   created one at a time in a seeded order in one resource group that holds the region's default Recovery
   Services vault and Backup vault. Times are virtual (Azure) time on the sandbox clock:
   * *creation event*: ``eventTime`` of the ``Microsoft.Resources.ResourceWriteSuccess`` event the sandbox
     raises for the resource when its create operation ends (the event the app's Event Grid trigger gets);
   * *verified*: the moment the sandbox answered the app's last successful GET of the protected item (VM) or
     backup instance (others) before the app published its outcome - the read that proves the protection;
   * *outcome*: the moment the app's ``Protected`` outcome event reached the outcome topic.
   The creation itself is fast-forwarded (the clock is advanced over the create operation while the app is
   idle) since it is not measured.
2. **ARM requests per protected resource** by kind, from the same runs (only the app's principal), against
   the minimum the REST operations need (see ``MINIMUM_REASONS``), and the ratio.
3. **Burst** - ``--vms`` creations (1,000 by default) of ``--type`` (``vm``, ``disk``, ``storage``,
   ``postgres``, or ``mixed``: the four in turn, a quarter each, in a seeded order) fired by the creator as fast
   as its own write bucket allows, in one subscription and resource group (with the region's default Recovery
   Services vault and/or Backup vault), while the app protects them. Throughput = protections verified per
   virtual second (first creation event -> last verification, and steady: 10th -> 90th completion), reported
   against the *binding bucket*: the protections per second ARM's per-principal buckets allow at the type's
   minimum request mix (``binding_bucket``: writes + actions share the write bucket's 10/s, reads the read
   bucket's 25/s; VM 5.0/s by writes, disk / storage / PostgreSQL 3.33/s by writes, mixed 3.64/s; with the
   rules' ``protect.roleScope: resourceGroup`` (``--role-scope``; the Backup-vault rules then name the burst's
   vault ``bv-burst`` by id, as a wider scope requires) the roles are a few assignments for the whole burst and
   a Backup-vault resource costs 2 writes and 6 reads: 4.17/s by reads); against a cold burst's *propagation
   floor* (the shortest window any client can reach when the roles are new, ``propagation_floor``); 429s by
   principal and kind; whether every resource ended protected exactly once (one protected item or backup
   instance naming it, one successful PUT); real and virtual elapsed time.

The clock scale matters: every real second the Python process spends counts ``scale`` Azure seconds, so our
own overhead (event delivery, replays, HTTPS) inflates the virtual figures by ``real seconds x scale``.
The output reports both, and the modelled floor (what Azure's modelled latencies and LRO durations alone
take on the minimum path).

    python -m benchmarks.protection_speed [--per-type 10] [--vms 1000] [--type vm|disk|storage|postgres|mixed]
        [--scale 20] [--burst-scale 20]
        [--activity-slots N] [--seed 5] [--skip-latency] [--skip-burst]

Results: ``artifacts/benchmarks/protection_speed.json`` and a table on stdout.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import dataclasses
import math
import random
import sys
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from benchmarks.common import (
    APP_PRINCIPAL,
    ARTIFACTS,
    CREATOR_PRINCIPAL,
    REPO,
    AppStack,
    ArmCall,
    by_kind,
    by_status,
    machine,
    percentile,
    start_app_stack,
    table,
    throttled,
    wait_until,
    write_result,
)

OUTPUT: Final = ARTIFACTS / "protection_speed.json"
REGION: Final = "westeurope"
GROUP: Final = "rg-bench"
#: longest modelled create operation of the four types (PostgreSQL flexible server: 300 s)
CREATE_FAST_FORWARD_SECONDS: Final = 301.0
KINDS: Final = ("read", "write", "action")


@dataclasses.dataclass(frozen=True)
class ResourceType:
    key: str
    arm_type: str
    estate_method: str
    vault: str  # "rs" | "bv"
    name_prefix: str


TYPES: Final = (
    ResourceType("vm", "Microsoft.Compute/virtualMachines", "vm", "rs", "vm"),
    ResourceType("disk", "Microsoft.Compute/disks", "disk", "bv", "disk"),
    ResourceType("storage", "Microsoft.Storage/storageAccounts", "storage_account", "bv", "stbench"),
    ResourceType("postgres", "Microsoft.DBforPostgreSQL/flexibleServers", "postgres", "bv", "pg-bench"),
)
TYPE_BY_KEY: Final = {t.key: t for t in TYPES}


# ---- the minimum the REST API needs ----------------------------------------------------------------------

MINIMUM_REASONS: Final = {
    "rs": [
        "read: GET the VM - the creation event carries only the id; the region (vault choice, backupStatus path)"
        " and the tags (opt-out rule) are in the resource",
        "action: POST locations/{region}/backupStatus - the issue requires the conflict check before enabling",
        "read: GET the protected item before the PUT - the app must never PUT over a soft-deleted item (recoverable"
        " data; a person undeletes it), and neither backupStatus nor the PUT is documented to say the item is"
        " soft-deleted (docs/azure-facts.md: the sandbox's refusal code is inferred): a requirement of the app,"
        " counted here, not a REST need",
        "write: PUT protectedItems/VM;iaasvmcontainerv2;{rg};{vm} (direct PUT, no container refresh needed)",
        "read: ceil(LRO duration / Retry-After) looks at the operation, each after the Retry-After (durable timers)",
        "read: GET the protected item to verify IRPending/Protected",
        "not counted (amortisable per subscription+region, or derivable): listing vaults, GET of the policy"
        " (its id is {vault}/backupPolicies/{name})",
    ],
    "bv": [
        "read: GET the resource (region, tags, attachment)",
        "write: PUT one role assignment per role the vault identity needs on the resource itself (deterministic"
        " name: a PUT is idempotent, so no list first); roles on the resource group (disk snapshot group:"
        " Disk Snapshot Contributor, PostgreSQL: Reader) once per group",
        "action: POST validateForBackup (the issue requires it; the API would accept the PUT without it) +"
        " ceil(30 s / 10 s) looks at its status, each after the Retry-After; its result body is not needed (a"
        " client that knew a validation takes 30 s could wait it out and look once: 2 reads fewer, and with"
        " roleScope resourceGroup the write bucket would bind at 5.0/s instead of the reads' 4.17/s; the app waits"
        " longer than Retry-After only when the same operation took longer before, operations.wait_seconds)",
        "write: PUT backupInstances/{deterministic name} (idempotent: no GET first) +"
        " ceil(LRO duration / Retry-After) looks at its status",
        "read: GET the backup instance to verify",
        "not counted (amortisable or derivable): listing Backup vaults, GET of the policy",
        "RBAC propagation, counted apart (minimum_with_propagation): a validation Azure refuses while the vault"
        " identity's new role assignments propagate ('up to 10 minutes', role-based-access-control/"
        "troubleshooting.md) costs at least its POST and one look at its end; how many are refused depends on the"
        " delay, which no client knows, and on how often the client asks (the app: 30/60/120/240 s after each"
        " refusal) - a trade of requests against latency (a client that waited the documented 10 minutes first"
        " would be refused none), not a REST minimum",
    ],
}
#: what one validation refused during RBAC propagation costs at least: its POST and one look at its end
PROPAGATION_PROBE_REQUESTS: Final = 2


def _lro_polls(duration: float, retry_after: float) -> int:
    return max(1, math.ceil(duration / retry_after))


def _timings() -> dict[str, Any]:
    from sandbox.arm.config import LatencyConfig
    from sandbox.arm.providers.dataprotection import DURATIONS, RETRY_AFTER
    from sandbox.arm.providers.recoveryservices_model import Timing

    rs = Timing()
    return {
        "latency": dict(LatencyConfig().seconds),
        "rs_enable": (float(rs.configure_protection), float(rs.retry_after)),
        "bv_validate": (float(DURATIONS["validate"]), float(RETRY_AFTER["validate"])),
        "bv_instance": (float(DURATIONS["instance"]), float(RETRY_AFTER["instance"])),
    }


#: the rules' ``protect.roleScope`` values (Az.DataProtection ``Set-AzDataProtectionMSIPermission
#: -PermissionsScope Resource|ResourceGroup|Subscription``): where the vault identity's roles go
ROLE_SCOPES: Final = ("resource", "resourceGroup", "subscription")


def _group_scoped_roles(arm_type: str, role_scope: str = "resource") -> tuple[int, int]:
    """(roles on the resource, roles shared by the burst's one resource group) the app's workload model asks for
    under ``role_scope``: with ``resourceGroup`` or ``subscription`` every role is one assignment for the whole
    burst (one group, one subscription; a disk's Disk Snapshot Contributor stays on its snapshot group, the burst's
    group, under both), none per resource."""
    from steward.domain import workloads

    workload = workloads.workload_for(arm_type)
    assert workload is not None, arm_type
    if role_scope != "resource":
        return 0, len(workload.roles)
    on_resource = sum(1 for r in workload.roles if r.scope is workloads.RoleScope.RESOURCE)
    return on_resource, len(workload.roles) - on_resource


#: what each app request is for (checked in order; the first match names it)
CATEGORIES: Final = (
    ("LRO poll", lambda m, p: m == "GET" and any(x in p for x in ("/operationsstatus/", "/operationstatus/",
                                                                  "/operationresults/"))),
    ("backupStatus", lambda m, p: p.endswith("/backupstatus")),
    ("validateForBackup", lambda m, p: p.endswith("/validateforbackup")),
    ("list vaults", lambda m, p: m == "GET" and p.endswith(("/vaults", "/backupvaults"))),
    ("GET policy", lambda m, p: m == "GET" and "/backuppolicies/" in p),
    ("list role assignments", lambda m, p: m == "GET" and p.endswith("/roleassignments")),
    ("PUT role assignment", lambda m, p: m == "PUT" and "/roleassignments/" in p),
    ("PUT item/instance", lambda m, p: m == "PUT" and ("/protecteditems/" in p or "/backupinstances/" in p)),
    ("GET item/instance", lambda m, p: m == "GET" and ("/protecteditems/" in p or "/backupinstances/" in p)),
    ("GET resource", lambda m, p: m == "GET" and any(
        f"/{t.arm_type.lower()}/" in p for t in TYPES)),
)


def category(method: str, path: str) -> str:
    lower = path.lower()
    return next((name for name, matches in CATEGORIES if matches(method, lower)), f"other {method}")


def minimum_requests(rtype: ResourceType, count: int, role_scope: str = "resource") -> dict[str, Any]:
    """Minimum requests for ``count`` resources of a type in one resource group: per request category and
    per kind (per resource), and the floor of modelled Azure time on that path (latencies of the sequential
    requests + LRO waits rounded up to the Retry-After the API sends). ``role_scope``: the rules'
    ``protect.roleScope`` (``ROLE_SCOPES``)."""
    t = _timings()
    lat = t["latency"]
    if rtype.vault == "rs":
        duration, retry = t["rs_enable"]
        polls = _lro_polls(duration, retry)
        per = {"GET resource": 1.0, "backupStatus": 1.0, "PUT item/instance": 1.0, "LRO poll": float(polls),
               "GET item/instance": 2.0}
        floor = (lat["read"] + lat["action"] + lat["read"] + lat["write"] + polls * (retry + lat["read"])
                 + lat["read"])
    else:
        v_duration, v_retry = t["bv_validate"]
        i_duration, i_retry = t["bv_instance"]
        v_polls, i_polls = _lro_polls(v_duration, v_retry), _lro_polls(i_duration, i_retry)
        on_resource, on_group = _group_scoped_roles(rtype.arm_type, role_scope)
        per = {"GET resource": 1.0, "PUT role assignment": on_resource + on_group / count,
               "validateForBackup": 1.0, "PUT item/instance": 1.0, "LRO poll": float(v_polls + i_polls),
               "GET item/instance": 1.0}
        floor = (lat["read"] + on_resource * lat["write"] + lat["action"] + v_polls * (v_retry + lat["read"])
                 + lat["write"] + i_polls * (i_retry + lat["read"]) + lat["read"])
    kinds = {"read": 0.0, "write": 0.0, "action": 0.0}
    for name, n in per.items():
        kinds[KIND_OF_CATEGORY[name]] += n
    return {
        "per_resource": {k: round(v, 3) for k, v in kinds.items()},
        "by_category": {k: round(v, 3) for k, v in per.items()},
        "total": round(sum(kinds.values()), 3),
        "modelled_floor_seconds": round(floor, 2),
        "reasoning": MINIMUM_REASONS[rtype.vault],
    }


KIND_OF_CATEGORY: Final = {"GET resource": "read", "backupStatus": "action", "validateForBackup": "action",
                           "PUT item/instance": "write", "PUT role assignment": "write", "LRO poll": "read",
                           "GET item/instance": "read"}


# ---- creating resources ----------------------------------------------------------------------------------

def _forwarding_estate(app: AppStack) -> Any:
    """``sandbox.estate.Estate`` whose creations jump the clock over the create operation (app idle)."""
    from sandbox.arm.config import DEFAULT_SUBSCRIPTION
    from sandbox.estate import Estate
    from steward.cloud.protection import READ_API_VERSIONS

    sandbox = app.sandbox

    class ForwardingEstate(Estate):
        def _put(self, rid: str, rtype: str, body: dict[str, Any]) -> dict[str, Any]:
            client = self.clients.resources(self.subscription_id).resources
            poller = client.begin_create_or_update_by_id(
                rid, api_version=READ_API_VERSIONS[rtype.lower()], parameters=body,
                polling_interval=self.clients.target.polling_interval,
            )
            if not app.discrete:  # a discrete clock jumps over the create operation by itself
                sandbox.advance(CREATE_FAST_FORWARD_SECONDS)
            return dict(poller.result().as_dict())

    return ForwardingEstate(app.creator, DEFAULT_SUBSCRIPTION)


def _parse_event_time(text: str) -> datetime:
    return datetime.strptime(text[:26], "%Y-%m-%dT%H:%M:%S.%f").replace(tzinfo=UTC)


def creation_events(app: AppStack) -> dict[str, datetime]:
    """Resource id (lower case) -> eventTime of its first ``ResourceWriteSuccess`` event (virtual time)."""
    first: dict[str, datetime] = {}
    for event in list(app.sandbox.events.raised):
        if event["eventType"] != "Microsoft.Resources.ResourceWriteSuccess":
            continue
        key, when = event["subject"].lower(), _parse_event_time(event["eventTime"])
        if key not in first or when < first[key]:
            first[key] = when
    return first


def item_suffix(rtype: ResourceType, resource_id: str) -> str:
    """How the path of the app's verifying GET ends (lower case)."""
    from steward.cloud.protection import instance_name

    parts = resource_id.split("/")
    group, name = parts[4], parts[-1]
    if rtype.vault == "rs":
        return f"/protecteditems/vm;iaasvmcontainerv2;{group};{name}".lower()
    return f"/backupinstances/{instance_name(resource_id)}".lower()


def verified_at(calls: list[ArmCall], suffix: str, before: datetime) -> datetime | None:
    proofs = [c.answered for c in calls
              if c.method == "GET" and c.status == 200 and c.path.lower().endswith(suffix) and c.answered <= before]
    return max(proofs) if proofs else None


# ---- 1 + 2: latency and requests per resource ------------------------------------------------------------

def measure_per_type(per_type: int, scale: float, seed: int, types: tuple[ResourceType, ...] = TYPES,
                     timeout: float = 300.0, *, rbac_seconds: float | None = None, clock: str = "scaled",
                     extra_activity_cpu_ms: float = 0.0) -> dict[str, Any]:
    """``rbac_seconds``: the sandbox's RBAC propagation delay (None: its default, 180 s). New role assignments
    refuse validation until it passes, and every refused validation costs a POST and its polls the minimum
    does not count; 0 measures the app's requests without that wait. ``clock``/``extra_activity_cpu_ms``: see
    ``benchmarks.common.start_app_stack``."""
    app = start_app_stack(scale=scale, seed=seed, clock=clock, extra_activity_cpu_ms=extra_activity_cpu_ms)
    if rbac_seconds is not None:
        from sandbox.arm import PropagationConfig

        app.stack.sandbox.configure_propagation(PropagationConfig(rbac_seconds=rbac_seconds))
    try:
        estate = _forwarding_estate(app)
        estate.resource_group(GROUP, REGION)
        rsv = estate.recovery_services_vault(GROUP, "rsv-bench", REGION)
        bv = estate.backup_vault(GROUP, "bv-bench", REGION)
        app.settle()
        order = [(t, i) for t in types for i in range(per_type)]
        random.Random(seed).shuffle(order)
        samples = []
        for rtype, index in order:
            samples.append(_protect_one(app, estate, rtype, index, timeout))
        return {
            "clock_scale": scale if not app.discrete else None,
            "clock": app.clock_facts(),
            "rbac_seconds": app.stack.sandbox.ctx.propagation.rbac_seconds,
            "per_type": per_type,
            "vaults": {"recovery_services": rsv, "backup": bv},
            "samples": samples,
            "app_429": sum(s["app_429"] for s in samples),
            "summary": summarise(samples, types, per_type),
            "longest_activity_seconds": longest_activities(app),
        }
    finally:
        app.stop()


def longest_activities(app: AppStack) -> dict[str, dict[str, Any]]:
    """Per resource type: the longest activity execution of its protections in Azure seconds (scheduled ->
    completed in the orchestration's history) and its name - how long one protection holds a worker's activity
    slot at most (an SDK poller inside an activity held one for the whole operation, issue 15)."""
    from azure.durable_functions.models.history import HistoryEventType

    scheduled, completed = int(HistoryEventType.TASK_SCHEDULED), int(HistoryEventType.TASK_COMPLETED)
    out: dict[str, dict[str, Any]] = {}
    for record in app.runner.query():
        history = app.runner.history(record.instance_id)
        started = next((e for e in history if e.get("EventType") in (0, "ExecutionStarted")), {})
        resource = str(started.get("Input") or "").lower()
        rtype = next((t for t in TYPES if f"/{t.arm_type.lower()}/" in resource), None)
        if rtype is None:
            continue
        begun = {e["EventId"]: e for e in history if e.get("EventType") == scheduled}
        for event in history:
            if event.get("EventType") != completed or event.get("TaskScheduledId") not in begun:
                continue
            start = begun[event["TaskScheduledId"]]
            took = (_parse_event_time(str(event["Timestamp"])) - _parse_event_time(str(start["Timestamp"])))
            seconds = round(took.total_seconds(), 3)
            if seconds > out.get(rtype.key, {}).get("seconds", -1.0):
                out[rtype.key] = {"seconds": seconds, "activity": start.get("Name")}
    return out


def _protect_one(app: AppStack, estate: Any, rtype: ResourceType, index: int, timeout: float) -> dict[str, Any]:
    mark = app.log.mark()
    wall0 = time.perf_counter()
    rid = getattr(estate, rtype.estate_method)(GROUP, f"{rtype.name_prefix}{index:03d}", REGION)
    created_wall = time.perf_counter()
    outcome = wait_until(lambda: app.log.outcomes_for(rid), timeout, f"the outcome for {rid}")[0]
    outcome_wall = time.perf_counter()
    app.settle(timeout)
    calls = app.log.since(mark, APP_PRINCIPAL)
    event = creation_events(app).get(rid.lower())
    verified = verified_at(calls, item_suffix(rtype, rid), outcome.at)
    own = [c for c in calls if not (rtype.key == "vm" and "/microsoft.compute/disks/" in c.path.lower())]
    return {
        "type": rtype.key,
        "resource_id": rid,
        "status": outcome.data.get("status"),
        "event_to_verified_seconds": _seconds(event, verified),
        "event_to_outcome_seconds": _seconds(event, outcome.at),
        "outcome_real_seconds": round(outcome_wall - created_wall, 3),
        "requests": by_kind(own),
        "os_disk_requests": by_kind(c for c in calls if c not in own),
        "by_category": dict(Counter(category(c.method, c.path) for c in own)),
        "app_429": sum(1 for c in calls if c.status == 429),
        # every validation but the last was refused (the resource ends protected once): RBAC propagation
        "refused_validations": max(0, sum(1 for c in own if category(c.method, c.path) == "validateForBackup") - 1),
        "app_requests": [f"{c.method} {c.status} {_short(c.path)}" for c in own],
        "create_real_seconds": round(created_wall - wall0, 3),
    }


def _seconds(start: datetime | None, end: datetime | None) -> float:
    return math.nan if start is None or end is None else round((end - start).total_seconds(), 3)


def _short(path: str) -> str:
    """A request path without the subscription / group prefix (readable in the JSON)."""
    marker = path.lower().find("/providers/")
    return path[marker:] if marker >= 0 else path


def summarise(samples: list[dict[str, Any]], types: tuple[ResourceType, ...], per_type: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for rtype in types:
        mine = [s for s in samples if s["type"] == rtype.key]
        ok = [s for s in mine if s["status"] == "Protected"]
        verified = [s["event_to_verified_seconds"] for s in ok if not math.isnan(s["event_to_verified_seconds"])]
        outcome = [s["event_to_outcome_seconds"] for s in ok if not math.isnan(s["event_to_outcome_seconds"])]
        real = [s["outcome_real_seconds"] for s in ok]
        minimum = minimum_requests(rtype, per_type)
        app_per = {k: round(sum(s["requests"][k] for s in mine) / max(1, len(mine)), 3) for k in KINDS}
        app_total = round(sum(app_per.values()), 3)
        os_disk = {k: round(sum(s["os_disk_requests"][k] for s in mine) / max(1, len(mine)), 3) for k in KINDS}
        categories = sorted({name for s in mine for name in s["by_category"]} | set(minimum["by_category"]))
        by_category = {
            name: {"app": round(sum(s["by_category"].get(name, 0) for s in mine) / max(1, len(mine)), 3),
                   "minimum": minimum["by_category"].get(name, 0.0)}
            for name in categories
        }
        out[rtype.key] = {
            "resources": len(mine),
            "protected": len(ok),
            "statuses": dict(Counter(str(s["status"]) for s in mine)),
            "event_to_verified_seconds": {"p50": round(percentile(verified, 50), 2),
                                          "p95": round(percentile(verified, 95), 2),
                                          "min": round(min(verified), 2) if verified else math.nan,
                                          "max": round(max(verified), 2) if verified else math.nan},
            "event_to_outcome_seconds": {"p50": round(percentile(outcome, 50), 2),
                                         "p95": round(percentile(outcome, 95), 2)},
            "real_seconds_to_outcome": {"p50": round(percentile(real, 50), 3), "p95": round(percentile(real, 95), 3)},
            "requests_per_resource": {**app_per, "total": app_total},
            "os_disk_requests_per_vm": os_disk if rtype.key == "vm" else None,
            "minimum": minimum,
            "by_category": by_category,
            "ratio_to_minimum": round(app_total / minimum["total"], 2),
        }
        if rtype.vault == "bv":
            probes = round(sum(s.get("refused_validations", 0) for s in mine) / max(1, len(mine)), 3)
            with_propagation = round(minimum["total"] + probes * PROPAGATION_PROBE_REQUESTS, 3)
            out[rtype.key].update(refused_validations_per_resource=probes,
                                  minimum_with_propagation=with_propagation,
                                  ratio_with_propagation=round(app_total / with_propagation, 2))
    return out


# ---- 3: the burst ----------------------------------------------------------------------------------------

def vm_body() -> dict[str, Any]:
    """What ``sandbox.estate.Estate.vm`` sends (a VM from an image: its OS disk appears as a disk too)."""
    return {
        "location": REGION, "tags": {},
        "properties": {"hardwareProfile": {"vmSize": "Standard_D2s_v5"},
                       "storageProfile": {"osDisk": {"createOption": "FromImage"}}},
    }


#: what ``sandbox.estate.Estate`` sends for each type (an empty, unattached disk: the app protects it itself)
BODIES: Final = {
    "vm": vm_body,
    "disk": lambda: {"location": REGION, "tags": {}, "sku": {"name": "Premium_LRS"},
                     "properties": {"creationData": {"createOption": "Empty"}, "diskSizeGB": 64}},
    "storage": lambda: {"location": REGION, "tags": {}, "kind": "StorageV2", "sku": {"name": "Standard_LRS"},
                        "properties": {}},
    "postgres": lambda: {"location": REGION, "tags": {},
                         "sku": {"name": "Standard_D2ds_v5", "tier": "GeneralPurpose"},
                         "properties": {"version": "16", "storage": {"storageSizeGB": 128}}},
}
#: the burst's ``--type`` choices: one type, or ``mixed`` (the four in turn, a quarter each, shuffled)
BURST_TYPES: Final = (*TYPE_BY_KEY, "mixed")


def burst_resources(type_key: str, count: int, subscription_id: str, seed: int) -> list[tuple[ResourceType, str]]:
    """The burst's resources in creation order (seeded): ``count`` of one type, or the four types in turn."""
    kinds = TYPES if type_key == "mixed" else (TYPE_BY_KEY[type_key],)
    planned = []
    for i in range(count):
        rtype = kinds[i % len(kinds)]
        # storage account names: 3-24 lower-case letters and digits
        name = f"st{rtype.name_prefix}{i:05d}" if rtype.key == "storage" else f"{rtype.name_prefix}-{i:04d}"
        planned.append((rtype, f"/subscriptions/{subscription_id}/resourceGroups/{GROUP}/providers/"
                               f"{rtype.arm_type}/{name}"))
    random.Random(seed).shuffle(planned)
    return planned


def _fire_vm_creations(app: AppStack, vm_ids: list[str], threads: int) -> dict[str, Any]:
    """``_fire_creations`` of VMs only (the vault-set benchmark's burst)."""
    return _fire_creations(app, [(TYPE_BY_KEY["vm"], rid) for rid in vm_ids], threads)


def _fire_creations(app: AppStack, resources: list[tuple[ResourceType, str]], threads: int) -> dict[str, Any]:
    """PUT every resource as fast as the creator's write bucket allows; do not wait for the create operations
    (the sandbox ends them on its clock and raises the events). Returns the creator's own retry count."""
    from azure.core.exceptions import HttpResponseError

    from sandbox.arm.config import DEFAULT_SUBSCRIPTION
    from steward.cloud.protection import READ_API_VERSIONS

    client = app.creator.resources(DEFAULT_SUBSCRIPTION).resources
    retries = Counter[str]()

    from sandbox.clock import busy
    from steward.cloud import azure_time

    def create(resource: tuple[ResourceType, str]) -> None:
        # on a discrete clock the creator is runnable work too: virtual time moves only while it waits (throttle)
        with busy(app.clock, "creator"):
            _create(*resource)

    def _create(rtype: ResourceType, rid: str) -> None:
        api_version = READ_API_VERSIONS[rtype.arm_type.lower()]
        for _attempt in range(1000):
            try:
                client.begin_create_or_update_by_id(rid, api_version=api_version, parameters=BODIES[rtype.key](),
                                                    polling=False)
                return
            except HttpResponseError as error:
                if error.status_code != 429:
                    raise
                retries["throttled"] += 1
                headers = error.response.headers if error.response is not None else {}
                hint, whole = headers.get("retry-after-ms"), headers.get("retry-after")
                azure_time.sleep(float(hint) / 1000 if hint else float(whole) if whole else 0.05)
        raise RuntimeError(f"creating {rid} was throttled 1000 times")

    with concurrent.futures.ThreadPoolExecutor(threads, thread_name_prefix="creator") as pool:
        list(pool.map(create, resources))
    return {"creator_sdk_gave_up_then_retried": retries["throttled"]}


def binding_bucket(resources: list[tuple[ResourceType, str]], role_scope: str = "resource") -> dict[str, Any]:
    """Protections per Azure second ARM's per-principal buckets allow at the burst's minimum request mix.

    The mix is ``minimum_requests`` (``MINIMUM_REASONS``) averaged over the burst's resources, with the
    group-scoped role assignments of the Backup-vault types amortised over that type's count in the burst (one
    resource group). Writes and actions (POST) share the write bucket (``sandbox.arm.throttle``: an action is
    a write, as in ARM); reads have their own. The binding bucket is the lower of refill / requests per
    resource; the initial tokens (200 writes, 250 reads) are spent early and not counted: over a long burst
    only the refill binds. A VM: 1 POST + 1 PUT = 2 writes -> 10 / 2 = 5.0/s (reads 4 -> 6.25/s); a disk:
    1 role PUT + 1 validateForBackup + 1 instance PUT (+ the snapshot group's role, once) = 3
    writes -> 3.33/s (reads 6 -> 4.17/s); storage: 3 writes -> 3.33/s; PostgreSQL: 3 (+ Reader on the
    group, once) -> 3.33/s; mixed (a quarter each): 2.75 writes -> 3.64/s (reads 5.5 -> 4.55/s). A validation
    Azure refuses while the vault identity's new roles propagate costs a POST more (``MINIMUM_REASONS``): not
    in the minimum, so it shows as a burst below the binding bucket.

    ``role_scope`` ``resourceGroup`` or ``subscription`` (the rules' ``protect.roleScope``): the roles are a few
    assignments for the whole burst, so a disk, a storage account or a PostgreSQL server costs 2 writes
    (validateForBackup, the instance PUT) and 6 reads: the read bucket binds at 25 / 6 = 4.17/s."""
    from sandbox.arm.config import ThrottleConfig

    counts = Counter(rtype.key for rtype, _ in resources)
    total = max(1, len(resources))
    mix = {"read": 0.0, "write": 0.0, "action": 0.0}
    for key, count in counts.items():
        per = minimum_requests(TYPE_BY_KEY[key], count, role_scope)["per_resource"]
        for kind in mix:
            mix[kind] += per[kind] * count / total
    throttle = ThrottleConfig()
    writes = mix["write"] + mix["action"]
    by_bucket = {"writes": throttle.writes.refill_per_second / writes if writes else math.inf,
                 "reads": throttle.reads.refill_per_second / mix["read"] if mix["read"] else math.inf}
    binding = min(by_bucket, key=lambda name: by_bucket[name])
    return {"types": dict(counts), "role_scope": role_scope,
            "minimum_per_resource": {k: round(v, 3) for k, v in mix.items()},
            "protections_per_second_by_bucket": {k: round(v, 3) for k, v in by_bucket.items()},
            "binding": binding, "protections_per_second": round(by_bucket[binding], 3)}


def measure_burst(vms: int, *, scale: float, seed: int, activity_slots: int | None, creator_threads: int = 8,
                  timeout: float = 3600.0, clock: str = "scaled", extra_activity_cpu_ms: float = 0.0,
                  instances: int = 1, type_key: str = "vm", role_scope: str = "resource",
                  warm: bool = False) -> dict[str, Any]:
    """A burst of ``vms`` creations of ``type_key`` (``BURST_TYPES``; ``mixed``: the four types in turn).

    ``role_scope``: the rules' ``protect.roleScope`` for the Backup-vault types (``ROLE_SCOPES``; ``resource``:
    the packaged default rules). ``warm``: before the burst, one resource of each Backup-vault type in it is
    protected through the app and the clock is moved past the RBAC propagation delay, as in a resource group
    that already held protected resources (the roles of a group / subscription scope then exist; at the resource
    scope only the delay is known): not part of the measured burst."""
    from sandbox.arm.config import DEFAULT_SUBSCRIPTION, ThrottleConfig
    from sandbox.estate import Estate
    from steward.cloud.protection import BackupVaultProtection, RecoveryServicesProtection

    if role_scope not in ROLE_SCOPES:
        raise ValueError(f"role_scope must be one of {ROLE_SCOPES}, not {role_scope!r}")
    # the burst's Backup vault, created below: a wider roleScope needs its vault named by id (review finding 2)
    bv_id = (f"/subscriptions/{DEFAULT_SUBSCRIPTION}/resourceGroups/{GROUP}/providers/Microsoft.DataProtection/"
             "backupVaults/bv-burst")
    settings = {} if role_scope == "resource" else {"STEWARD_RULES": rules_with_role_scope(role_scope, bv_id)}
    app = start_app_stack(scale=scale, seed=seed, activity_slots=activity_slots, clock=clock,
                          extra_activity_cpu_ms=extra_activity_cpu_ms, instances=instances, settings=settings)
    try:
        estate = Estate(app.creator, DEFAULT_SUBSCRIPTION)
        estate.resource_group(GROUP, REGION)
        resources = burst_resources(type_key, vms, DEFAULT_SUBSCRIPTION, seed)
        vaults = {}
        if any(rtype.vault == "rs" for rtype, _ in resources):
            vaults["rs"] = estate.recovery_services_vault(GROUP, "rsv-burst", REGION)
        if any(rtype.vault == "bv" for rtype, _ in resources):
            vaults["bv"] = estate.backup_vault(GROUP, "bv-burst", REGION)
            assert vaults["bv"].lower() == bv_id.lower(), (vaults["bv"], bv_id)
        app.settle()
        warmed = _warm_up(app, resources, timeout) if warm else []
        # fresh, full buckets for the burst (the set-up above used a few tokens)
        app.sandbox.configure_throttle(ThrottleConfig(enabled=True))
        mark = app.log.mark()
        bus = app.sandbox.events
        raised0, delivered0 = len(bus.raised), sum(s.delivered for s in bus.subscriptions())
        virtual0, wall0, cpu0 = app.sandbox.clock.now(), time.perf_counter(), time.process_time()
        creator = _fire_creations(app, resources, creator_threads)
        fired_virtual, fired_wall = app.sandbox.clock.now(), time.perf_counter()

        wanted = {rid.lower() for _, rid in resources}
        quiet_since: list[float] = []

        def finished() -> bool:
            """Every resource has an outcome - or every resource's event was raised, delivered and its
            orchestration ended (failed ones publish nothing), and that held for 3 real seconds."""
            done = {str(p.data.get("resourceId", "")).lower() for p in app.log.outcomes()}
            if wanted <= done:
                return True
            quiet = wanted <= set(creation_events(app)) and app.sandbox.events.drain(0.01) and app.idle()
            if not quiet:
                quiet_since.clear()
                return False
            quiet_since.append(time.monotonic())
            return quiet_since[-1] - quiet_since[0] >= 3.0

        wait_until(finished, timeout, f"outcomes for {vms} resources", poll=0.5)
        app.settle(timeout)
        virtual1, wall1, cpu1 = app.sandbox.clock.now(), time.perf_counter(), time.process_time()
        protected_in = {"rs": RecoveryServicesProtection(app.creator), "bv": BackupVaultProtection(app.creator)}
        report = _burst_report(app, vaults, resources, mark=mark, virtual=(virtual0, fired_virtual, virtual1),
                               wall=(wall0, fired_wall, wall1), creator=creator, adapters=protected_in,
                               role_scope=role_scope, roles_exist=warm and role_scope != "resource")
        report["type"] = type_key
        report["role_scope"] = role_scope
        report["warm_up"] = warmed
        # one process runs sandbox, host, runner and activities: near 1.0 means the GIL, not Azure, paced it
        report["clock"] = app.clock_facts()
        # issue 15 item 4: N modelled app instances (own slots, pacer, clients), one task hub
        report["instances"] = instances
        report["activities_by_instance"] = dict(sorted(app.runner.stats.activities_by_instance.items()))
        report["process_cpu_seconds_per_real_second"] = round((cpu1 - cpu0) / max(wall1 - wall0, 1e-9), 2)
        # issue 15 item 3: what the harness's Event Grid did (the local stack subscribes with the Bicep filter)
        report["event_grid"] = {
            "events_raised_per_resource": round((len(bus.raised) - raised0) / max(1, vms), 2),
            "deliveries_to_the_app_per_resource": round(
                (sum(s.delivered for s in bus.subscriptions()) - delivered0) / max(1, vms), 2),
            "max_concurrent_deliveries": bus.config.max_concurrent_deliveries,
        }
        return report
    finally:
        app.stop()


def rules_with_role_scope(role_scope: str, vault_id: str) -> str:
    """The packaged default rules with ``protect.roleScope: role_scope`` on every Backup-vault rule, each naming
    the Backup vault ``vault_id`` (in ``REGION``) by id: a roleScope other than ``resource`` is refused at load for
    ``regional-default`` or a vault set (review finding 2). JSON, which ``STEWARD_RULES`` reads as YAML."""
    import json

    import yaml

    from steward.domain import workloads

    rules = yaml.safe_load((REPO / "steward" / "domain" / "default_rules.yaml").read_text())
    for rule in rules["rules"]:
        kinds = {workloads.workload_for(t) for t in rule.get("match", {}).get("types", [])}
        if "protect" in rule and kinds and all(k is not None and k.roles for k in kinds):
            rule["protect"]["roleScope"] = role_scope
            rule["protect"]["vault"] = {"id": vault_id, "region": REGION}
    return json.dumps(rules)


def propagation_floor(backup_vault_resources: int, rbac_seconds: float,
                      last_event_after: float = 0.0) -> dict[str, Any]:
    """The shortest window (first creation event -> last verification) ANY client can reach for a burst of
    ``backup_vault_resources`` whose vault identity gets NEW role assignments, under ARM's write bucket and the
    sandbox's RBAC propagation delay - a lower bound, not a schedule.

    Every validation that passes comes at least ``rbac_seconds`` after a grant, so after the first creation event
    (no grant can precede it). From then on each resource still needs 2 writes (its passing validateForBackup
    and its instance PUT; a refused validation only adds writes), and the write bucket holds at most its
    capacity then (200) and refills 10/s: the last instance PUT comes no sooner than rbac_seconds + (2n - 200) /
    10, and its operation takes the modelled instance duration (60 s) before the verifying GET can see it. The
    creations' own pace, the validations' 30 s and every latency are left out (the bound only gets lower).

    ``last_event_after``: seconds from the first creation event to the last Backup-vault resource's (a PostgreSQL
    server's event comes when its 300-s create operation ends): no client hears of it sooner, its grant comes
    after, its instance PUT (refused without the roles, like validateForBackup) rbac_seconds after that, and the
    PUT's operation takes its 60 s - the window is at least the later of the two."""
    from sandbox.arm.config import ThrottleConfig
    from sandbox.arm.providers.dataprotection import DURATIONS

    writes = ThrottleConfig().writes
    after = max(0.0, 2 * backup_vault_resources - writes.capacity) / writes.refill_per_second
    by_bucket = rbac_seconds + after + DURATIONS["instance"]
    by_arrival = last_event_after + rbac_seconds + DURATIONS["instance"]
    reason = (f"{rbac_seconds:g} s RBAC propagation + {after:g} s for the 2 writes per resource left once roles apply "
              f"({writes.capacity:g} tokens, {writes.refill_per_second:g}/s) + {DURATIONS['instance']:g} s instance "
              "operation") if by_bucket >= by_arrival else (
              f"the last creation event {last_event_after:g} s after the first + {rbac_seconds:g} s RBAC propagation "
              f"+ {DURATIONS['instance']:g} s instance operation")
    return {"seconds": round(max(by_bucket, by_arrival), 1), "rbac_seconds": rbac_seconds, "reason": reason}


def _vault_role_assignments(app: AppStack, vault_id: str | None) -> dict[str, int] | None:
    """The Backup vault identity's role assignments in the sandbox after the burst, by scope kind."""
    from sandbox.arm.providers.authorization_model import RoleAssignments

    if vault_id is None:
        return None
    principal = str(app.sandbox.ctx.store.get(vault_id)["identity"]["principalId"]).lower()
    kinds = Counter[str]()
    for record in RoleAssignments(app.sandbox.ctx.store).all():
        props = record["properties"]
        if str(props["principalId"]).lower() == principal:
            depth = str(props["scope"]).strip("/").count("/")
            kinds["subscription" if depth == 1 else "resourceGroup" if depth == 3 else "resource"] += 1
    return {"total": sum(kinds.values()), **dict(sorted(kinds.items()))}


def _warm_up(app: AppStack, resources: list[tuple[ResourceType, str]], timeout: float) -> list[dict[str, Any]]:
    """Protect one resource of each Backup-vault type of the burst through the app (the burst's group), then move
    the clock past the RBAC propagation bound: the state of a group that already held protected
    resources (older than the documented 10-minute propagation bound). Returns what each warm-up ended with."""
    from sandbox.arm.config import DEFAULT_SUBSCRIPTION

    kinds = sorted({rtype.key for rtype, _ in resources if rtype.vault == "bv"})
    warm = [(TYPE_BY_KEY[k], f"/subscriptions/{DEFAULT_SUBSCRIPTION}/resourceGroups/{GROUP}/providers/"
                             f"{TYPE_BY_KEY[k].arm_type}/{'stwarm' if k == 'storage' else 'warm-'}{k[:8]}")
            for k in kinds]
    if not warm:
        return []
    _fire_creations(app, warm, 1)
    wanted = {rid.lower() for _, rid in warm}

    def outcomes() -> dict[str, str]:
        return {str(p.data.get("resourceId", "")).lower(): str(p.data.get("status"))
                for p in app.log.outcomes() if str(p.data.get("resourceId", "")).lower() in wanted}

    wait_until(lambda: wanted <= set(outcomes()), timeout, "the warm-up protections", poll=0.2)
    app.settle(timeout)
    # past Azure's documented propagation bound (10 minutes, RBAC_REGRANT_SECONDS), as a group's roles are once its
    # first protections are older than that: the app then waits for none (a younger shared assignment it would)
    from steward.domain.protection_flow import RBAC_REGRANT_SECONDS

    app.sandbox.clock.advance(max(float(app.sandbox.ctx.propagation.rbac_seconds), RBAC_REGRANT_SECONDS) + 1.0)
    ended = outcomes()
    return [{"resource": rid, "status": ended[rid.lower()]} for _, rid in warm]


def _protections(vaults: dict[str, str], adapters: dict[str, Any]) -> Counter[str]:
    """Source resource id (lower case) -> how many protected items / backup instances name it, in the vaults."""
    sources = Counter[str]()
    if "rs" in vaults:
        sources.update(str((i.get("properties") or {}).get("sourceResourceId", "")).lower()
                       for i in adapters["rs"].vm_items(vaults["rs"]))
    if "bv" in vaults:
        sources.update(str(((i.get("properties") or {}).get("dataSourceInfo") or {}).get("resourceID", "")).lower()
                       for i in adapters["bv"].instances(vaults["bv"]))
    return sources


def _burst_report(app: AppStack, vaults: dict[str, str], resources: list[tuple[ResourceType, str]], *, mark: int,
                  virtual: tuple[datetime, ...], wall: tuple[float, ...], creator: dict[str, Any],
                  adapters: dict[str, Any], role_scope: str = "resource", roles_exist: bool = False) -> dict[str, Any]:
    from sandbox.arm.config import ThrottleConfig

    calls = app.log.since(mark)
    app_calls = [c for c in calls if c.principal == APP_PRINCIPAL.lower()]
    creator_calls = [c for c in calls if c.principal == CREATOR_PRINCIPAL.lower()]
    created = creation_events(app)
    ids = [rid for _, rid in resources]
    events = {v.lower(): created.get(v.lower()) for v in ids}

    def is_item(path: str) -> bool:
        return "/protecteditems/" in path or "/backupinstances/" in path

    proofs = [c for c in app_calls if c.method == "GET" and c.status == 200 and is_item(c.path.lower())]
    outcomes_by_resource: dict[str, list[Any]] = {}
    for published in app.log.outcomes():
        outcomes_by_resource.setdefault(str(published.data.get("resourceId", "")).lower(), []).append(published)
    verified: dict[str, datetime | None] = {}
    statuses: dict[str, Counter[str]] = {}
    for rtype, rid in resources:
        published = outcomes_by_resource.get(rid.lower(), [])
        statuses[rid.lower()] = Counter(str(p.data.get("status")) for p in published)
        first_protected = min((p.at for p in published if p.data.get("status") == "Protected"), default=None)
        verified[rid.lower()] = None if first_protected is None else verified_at(
            proofs, item_suffix(rtype, rid), first_protected)
    done_times = sorted(t for t in verified.values() if t is not None)
    first_event = min((t for t in events.values() if t is not None), default=None)
    window = _seconds(first_event, done_times[-1] if done_times else None)
    n = len(done_times)
    steady = math.nan
    if n >= 10:
        lo, hi = done_times[n // 10], done_times[(9 * n) // 10]
        span = (hi - lo).total_seconds()
        steady = ((9 * n) // 10 - n // 10) / span if span > 0 else math.nan
    latencies = [(verified[k] - events[k]).total_seconds() for k in verified  # type: ignore[operator]
                 if verified[k] is not None and events[k] is not None]

    items = _protections(vaults, adapters)
    wanted = {v.lower() for v in ids}
    # an instance PUT that modifies the container list of a vaulted blob instance is a PUT of the same path:
    # counted too (none in this burst: the default rules back storage accounts up operationally)
    item_puts = Counter(c.path.lower().split("?")[0] for c in app_calls
                        if c.method == "PUT" and is_item(c.path.lower()) and c.status < 300)
    orchestrations = app.runtime_statuses()
    failures = _failures(app)
    refill = ThrottleConfig().writes.refill_per_second
    protections = sum(1 for v in wanted if statuses[v].get("Protected", 0) >= 1)
    rate = n / window if window and not math.isnan(window) and window > 0 else math.nan
    count = max(1, len(ids))
    app_writes = sum(1 for c in app_calls if c.kind in ("write", "action") and c.status < 400) / count
    app_reads = sum(1 for c in app_calls if c.kind == "read" and c.status < 400) / count
    bucket = binding_bucket(resources, role_scope)
    validations = sum(1 for c in app_calls if category(c.method, c.path) == "validateForBackup" and c.status < 400)
    bv_count = sum(1 for rtype, _ in resources if rtype.vault == "bv")
    hold = _timings()["rs_enable"][0]
    bv_events = [events[rid.lower()] for rtype, rid in resources if rtype.vault == "bv" and events[rid.lower()]]
    floor = propagation_floor(bv_count, float(app.sandbox.ctx.propagation.rbac_seconds),
                              _seconds(first_event, max(bv_events)) if bv_events else 0.0) \
        if bv_count and not roles_exist else None
    return {
        "resources": len(ids),
        "clock_scale": float(app.sandbox.clock.scale) if not app.discrete else None,
        "activity_slots": app.activity_slots,
        "creator_threads_put_seconds_virtual": round((virtual[1] - virtual[0]).total_seconds(), 1),
        "elapsed_virtual_seconds": round((virtual[2] - virtual[0]).total_seconds(), 1),
        "elapsed_real_seconds": round(wall[2] - wall[0], 1),
        "creation_real_seconds": round(wall[1] - wall[0], 1),
        "protection_window_virtual_seconds": window,
        "protections_per_virtual_second": round(rate, 4),
        "fraction_of_write_refill": round(rate / refill, 4),
        "steady_protections_per_virtual_second_p10_p90": round(steady, 4),
        "binding_bucket": bucket,
        "steady_fraction_of_binding_bucket": round(steady / bucket["protections_per_second"], 3),
        "window_fraction_of_binding_bucket": round(rate / bucket["protections_per_second"], 3),
        # what the app's own request mix allows against the bucket (1.0: no request beyond the minimum's writes),
        # and how busy it kept the write bucket over the window (the initial 200 tokens included)
        # of the subscription's 4,000 (Azure RBAC's fixed limit): what the burst left to the vault identity
        "vault_identity_role_assignments": _vault_role_assignments(app, vaults.get("bv")),
        # new role assignments: no client can end the burst sooner (propagation_floor); None: the roles existed
        "propagation_floor": floor,
        "window_fraction_of_propagation_floor": round(floor["seconds"] / window, 3)
        if floor and window and not math.isnan(window) and window > 0 else None,
        "app_mix_fraction_of_binding_bucket": round(
            min(refill / app_writes if app_writes else math.inf,
                ThrottleConfig().reads.refill_per_second / app_reads if app_reads else math.inf)
            / bucket["protections_per_second"], 3),
        "app_writes_fraction_of_write_refill": round(app_writes * count / window / refill, 3)
        if window and not math.isnan(window) and window > 0 else math.nan,
        "event_to_verified_seconds": {"p50": round(percentile(latencies, 50), 1),
                                      "p95": round(percentile(latencies, 95), 1),
                                      "max": round(max(latencies), 1) if latencies else math.nan},
        "ceilings_per_virtual_second": {
            "write_throttle": round(refill / app_writes, 3) if app_writes else math.nan,
            "read_throttle": round(ThrottleConfig().reads.refill_per_second / app_reads, 3) if app_reads else math.nan,
            "activity_slots": round(app.activity_slots / hold, 3),
            "explanation": "write/read: bucket refill / the app's successful writes (PUT+POST) or reads per "
                           "resource (its own mix, not the minimum); activity slots: slots / "
                           f"{hold:.0f} s, the modelled VM enable LRO an enable activity once waited out while "
                           "holding its slot",
        },
        "app": {"requests": by_kind(app_calls), "by_status": by_status(app_calls),
                "throttled_429": throttled(app_calls),
                "throttled_fraction": round(sum(1 for c in app_calls if c.status == 429) / max(1, len(app_calls)), 5),
                "by_category_per_resource": {name: round(k / count, 3) for name, k in sorted(
                    Counter(category(c.method, c.path) for c in app_calls).items())},
                "validations_per_backup_vault_resource": round(validations / bv_count, 3) if bv_count else None,
                "writes_per_resource": round(app_writes, 3), "reads_per_resource": round(app_reads, 3)},
        "creator": {"requests": by_kind(creator_calls), "by_status": by_status(creator_calls),
                    "throttled_429": throttled(creator_calls), **creator},
        "exactly_once": {
            "every_resource_protected": protections == len(wanted),
            "resources_without_outcome": sum(1 for v in wanted if not statuses[v]),
            "resources_with_one_item": sum(1 for v in wanted if items.get(v) == 1),
            "resources_without_item": sorted(v for v in wanted if items.get(v, 0) == 0)[:10],
            "resources_with_several_items": sorted(v for v in wanted if items.get(v, 0) > 1)[:10],
            "successful_item_puts": sum(item_puts.values()),
            "items_put_more_than_once": sum(1 for n_ in item_puts.values() if n_ > 1),
            "outcome_statuses": dict(sum((statuses[v] for v in wanted), Counter())),
            "resources_with_several_outcomes": sum(1 for v in wanted if sum(statuses[v].values()) > 1),
        },
        "orchestrations": dict(orchestrations),
        "failures": failures,
        "sandbox_counters_whole_run": app.sandbox.counters.snapshot(),  # set-up included; cross-check
    }


def _failures(app: AppStack) -> dict[str, Any]:
    """Failed activity attempts (retried by the orchestrations) and failed orchestrations, with reasons."""
    from azure.durable_functions.models.history import HistoryEventType

    reasons = Counter[str]()
    failed_attempts = 0
    failed_instances = []
    for record in app.runner.query():
        if record.status == "Failed":
            failed_instances.append(record.instance_id)
        for event in app.runner.history(record.instance_id):
            if event.get("EventType") in (int(HistoryEventType.TASK_FAILED), "TaskFailed"):
                failed_attempts += 1
                reasons[str(event.get("Reason", ""))[:160]] += 1
    examples = [{"instance_id": i, "output": str(app.runner.status(i).get("output"))[:400]}
                for i in failed_instances[:3]]
    return {"failed_activity_attempts": failed_attempts, "reasons": dict(reasons.most_common(5)),
            "failed_orchestrations": len(failed_instances), "failed_examples": examples}


# ---- report ----------------------------------------------------------------------------------------------

def render(result: dict[str, Any]) -> str:
    lines = []
    per = result.get("latency")
    if per:
        lines.append(f"Creation event -> verified protection, Azure (virtual) seconds; latency model + throttle on; "
                     f"{_clock_text(per)}; RBAC propagation {per.get('rbac_seconds', 180.0):g} s; "
                     f"{per['per_type']} per type, one at a time")
        rows = []
        for key, s in per["summary"].items():
            m = s["minimum"]
            rows.append([key, f"{s['protected']}/{s['resources']}", s["event_to_verified_seconds"]["p50"],
                         s["event_to_verified_seconds"]["p95"], s["event_to_outcome_seconds"]["p50"],
                         m["modelled_floor_seconds"], s["real_seconds_to_outcome"]["p50"]])
        lines.append(table(["type", "protected", "p50 s", "p95 s", "outcome p50 s", "modelled floor s",
                            "real s p50"], rows))
        lines.append("")
        lines.append("ARM requests per protected resource (app principal) vs the minimum the REST API needs")
        rows = []
        for key, s in per["summary"].items():
            a, m = s["requests_per_resource"], s["minimum"]["per_resource"]
            probes = s.get("refused_validations_per_resource")
            propagation = "-" if probes is None else (
                f"{probes:g} refused: {a['total']:g} / {s['minimum_with_propagation']:g} = "
                f"{s['ratio_with_propagation']}")
            rows.append([key, *(f"{a[k]:g} / {m[k]:g}" for k in KINDS), f"{a['total']:g} / {s['minimum']['total']:g}",
                         s["ratio_to_minimum"], propagation])
        lines.append(table(["type", "read app/min", "write app/min", "action app/min", "total app/min", "ratio",
                            "validations refused during RBAC propagation (POST + 1 look each): app / min"], rows))
        lines.append("")
        lines.append("The same, per request category (app / minimum, per resource)")
        keys = list(per["summary"])
        names = sorted({n for s in per["summary"].values() for n in s["by_category"]})
        rows = [[name, *(_pair(per["summary"][k]["by_category"].get(name)) for k in keys)] for name in names]
        lines.append(table(["category", *keys], rows))
        longest = per.get("longest_activity_seconds") or {}
        if longest:
            lines.append("longest activity execution per type, Azure s (how long a protection holds an activity slot): "
                         + ", ".join(f"{k} {v['seconds']:g} ({v['activity']})" for k, v in longest.items()))
        vm = per["summary"].get("vm")
        if vm and vm.get("os_disk_requests_per_vm"):
            lines.append(f"(each VM's OS disk raises its own write event: the app spends "
                         f"{vm['os_disk_requests_per_vm']} more per VM deciding it is covered by the VM)")
        lines.append("")
    burst = result.get("burst")
    if burst:
        bucket = burst["binding_bucket"]
        lines.append(f"Burst: {burst['resources']} creations of {burst.get('type', 'vm')} in one subscription, "
                     f"write throttle on (200 tokens, 10/s per principal), {_clock_text(burst)}, "
                     f"{burst.get('instances', 1)} app instance(s), {burst['activity_slots']} activity slots, "
                     f"roleScope {burst.get('role_scope', 'resource')}"
                     f"{', warm (one of each type protected first)' if burst.get('warm_up') else ''}")
        once = burst["exactly_once"]
        ceilings = burst["ceilings_per_virtual_second"]
        rows = [
            ["protections / virtual s (first event -> last verified)", burst["protections_per_virtual_second"]],
            ["  steady rate, 10th -> 90th completion", burst["steady_protections_per_virtual_second_p10_p90"]],
            [f"binding bucket at the minimum mix ({bucket['binding']}; "
             f"{_kinds_text(bucket['minimum_per_resource'])} r/w/a per resource)", bucket["protections_per_second"]],
            ["  steady / window as a fraction of it",
             f"{burst['steady_fraction_of_binding_bucket']} / {burst['window_fraction_of_binding_bucket']}"],
            ["window no client can beat with new role assignments (s) / reached fraction of it",
             f"{burst['propagation_floor']['seconds']} / {burst['window_fraction_of_propagation_floor']}"
             if burst.get("propagation_floor") else "- (no new role assignments)"],
            ["the vault identity's role assignments after the burst (of the subscription's 4,000)",
             str(burst.get("vault_identity_role_assignments") or "-")],
            ["ceiling at the app's own mix: write throttle / read throttle",
             f"{ceilings['write_throttle']} / {ceilings['read_throttle']}"],
            ["  the app's mix as a fraction of the binding bucket / write bucket kept busy (window)",
             f"{burst.get('app_mix_fraction_of_binding_bucket')} / {burst.get('app_writes_fraction_of_write_refill')}"],
            ["event -> verified p50 / p95 / max (virtual s)",
             f"{burst['event_to_verified_seconds']['p50']} / {burst['event_to_verified_seconds']['p95']} / "
             f"{burst['event_to_verified_seconds']['max']}"],
            ["429s to the app (read/write/action)", _kinds_text(burst["app"]["throttled_429"])],
            ["429s to the creator (read/write/action)", _kinds_text(burst["creator"]["throttled_429"])],
            ["app requests (read/write/action)", _kinds_text(burst["app"]["requests"])],
            ["app requests per resource by category", burst["app"]["by_category_per_resource"]],
            ["every resource protected / resources with exactly one item", f"{once['every_resource_protected']} / "
             f"{once['resources_with_one_item']} of {burst['resources']}"],
            ["resources without any outcome", once["resources_without_outcome"]],
            ["item/instance PUTs (successful) / PUT more than once",
             f"{once['successful_item_puts']} / {once['items_put_more_than_once']}"],
            ["outcome statuses", once["outcome_statuses"]],
            ["orchestrations", burst["orchestrations"]],
            ["failed activity attempts / failed orchestrations",
             f"{burst['failures']['failed_activity_attempts']} / {burst['failures']['failed_orchestrations']}"],
            ["elapsed virtual s / real s", f"{burst['elapsed_virtual_seconds']} / {burst['elapsed_real_seconds']}"],
            ["activity executions by instance", burst.get("activities_by_instance", {})],
        ]
        lines.append(table(["burst", "value"], rows))
        for reason, count in burst["failures"]["reasons"].items():
            lines.append(f"  {count} x failed activity attempt: {reason}")
    return "\n".join(lines)


def _clock_text(part: dict[str, Any]) -> str:
    facts = part.get("clock") or {}
    extra = facts.get("extra_activity_cpu_ms") or 0
    text = "discrete clock" if facts.get("clock") == "discrete" else f"clock scale {part.get('clock_scale'):g}"
    text += f" (load {facts.get('load_average_1m')})"
    return text + (f", +{extra:g} ms CPU per activity" if extra else "")


def _pair(figures: dict[str, float] | None) -> str:
    return "-" if figures is None else f"{figures['app']:g} / {figures['minimum']:g}"


def _kinds_text(counts: dict[str, Any]) -> str:
    return "/".join(f"{counts.get(k, 0):g}" for k in KINDS)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.protection_speed", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--per-type", type=int, default=10, help="resources of each type for latency/requests")
    parser.add_argument("--vms", type=int, default=1000, help="resource creations in the burst (of --type)")
    parser.add_argument("--type", choices=BURST_TYPES, default="vm", dest="burst_type",
                        help="what the burst creates: one type, or mixed (the four in turn, a quarter each)")
    parser.add_argument("--scale", type=float, default=20.0, help="Azure seconds per real second (latency run)")
    parser.add_argument("--burst-scale", type=float, default=20.0, help="Azure seconds per real second (burst)")
    parser.add_argument("--activity-slots", type=int, default=None,
                        help="override host.json maxConcurrentActivityFunctions in the burst (N instances x 8)")
    parser.add_argument("--instances", type=int, default=1,
                        help="app instances the runner models in the burst (Flex Consumption scale-out: each has "
                             "host.json's activity slots and its own ARM pacer; one task hub)")
    parser.add_argument("--role-scope", choices=ROLE_SCOPES, default="resource",
                        help="the rules' protect.roleScope for the Backup-vault types in the burst")
    parser.add_argument("--warm", action="store_true",
                        help="protect one resource of each Backup-vault type first and let its roles apply "
                             "(a group that already held protected resources), outside the measured burst")
    parser.add_argument("--creator-threads", type=int, default=8)
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--timeout", type=float, default=3600.0, help="real seconds the burst may take")
    parser.add_argument("--clock", choices=("scaled", "discrete"), default="scaled",
                        help="scaled: Azure time runs --scale x real time (our CPU counts as Azure time); discrete: "
                             "time jumps to the next deadline when nothing is runnable (our CPU costs none)")
    parser.add_argument("--extra-activity-cpu", type=float, default=0.0, metavar="MS",
                        help="burn MS real milliseconds at the start of every activity (shows what depends on CPU)")
    parser.add_argument("--skip-latency", action="store_true")
    parser.add_argument("--skip-burst", action="store_true")
    parser.add_argument("--rbac-seconds", type=float, default=None,
                        help="sandbox RBAC propagation delay in the latency run (default: the sandbox's 180 s)")
    parser.add_argument("--output", type=Path, default=OUTPUT)
    args = parser.parse_args(argv)

    started = time.perf_counter()
    result: dict[str, Any] = {"benchmark": "protection_speed", "seed": args.seed, "machine": machine(),
                              "principals": {"app": APP_PRINCIPAL, "creator": CREATOR_PRINCIPAL}}
    if not args.skip_latency:
        result["latency"] = measure_per_type(args.per_type, args.scale, args.seed, rbac_seconds=args.rbac_seconds,
                                             clock=args.clock, extra_activity_cpu_ms=args.extra_activity_cpu)
    if not args.skip_burst:
        result["burst"] = measure_burst(args.vms, scale=args.burst_scale, seed=args.seed,
                                        activity_slots=args.activity_slots, creator_threads=args.creator_threads,
                                        timeout=args.timeout, clock=args.clock,
                                        extra_activity_cpu_ms=args.extra_activity_cpu, instances=args.instances,
                                        type_key=args.burst_type, role_scope=args.role_scope, warm=args.warm)
    result["real_seconds"] = round(time.perf_counter() - started, 1)
    write_result(args.output, result)
    print(render(result))
    print(f"\n(results: {args.output}; {result['real_seconds']} real s)")
    ok = True
    if "latency" in result:
        ok = all(s["protected"] == s["resources"] for s in result["latency"]["summary"].values())
    if "burst" in result:
        ok = ok and bool(result["burst"]["exactly_once"]["every_resource_protected"])
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
