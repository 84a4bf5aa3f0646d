"""Shared pieces of the sandbox benchmarks: a per-principal request log, the app stack, statistics, tables.

``RequestLog`` instruments an in-process ``ArmSandbox`` (it wraps the instance's ARM pipeline and its custom
topic sink; no sandbox file changes): every ARM request is recorded with the caller's principal, the op kind
the sandbox throttles by (read / write / delete / action), the status, and the virtual (Azure) time it
arrived and was answered; every outcome event the app publishes is stamped with the virtual time it reached
the topic. The sandbox's own ``RequestCounters`` count by kind and status only, so this is how the figures
are split between the estate's creator and the app (as ARM's buckets are: per subscription + principal).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import platform
import shutil
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
ARTIFACTS = Path("artifacts/benchmarks")
#: the estate's creator (a person or a pipeline) and the app act as different principals, as in Azure
CREATOR_PRINCIPAL = "00000000-0000-4000-8000-00000000c0de"
APP_PRINCIPAL = "00000000-0000-4000-8000-0000000057e0"


@dataclasses.dataclass(frozen=True)
class ArmCall:
    principal: str
    kind: str  # read | write | delete | action (the sandbox's throttling kind)
    method: str
    path: str
    status: int  # 0 = connection reset
    arrived: datetime  # virtual time the request reached the pipeline
    answered: datetime  # virtual time the answer left it (after the modelled latency)


@dataclasses.dataclass(frozen=True)
class Published:
    at: datetime  # virtual time the event reached the topic
    data: dict[str, Any]


class RequestLog:
    """Every ARM request and every published outcome of one sandbox, with principals and virtual times."""

    def __init__(self, sandbox: Any) -> None:
        self._sandbox = sandbox
        self._lock = threading.Lock()
        self.calls: list[ArmCall] = []
        self.published: list[Published] = []
        arm, publish = sandbox._arm, sandbox.events.publish_to_topic
        clock = sandbox.clock

        def logged_arm(req: Any) -> Any:
            arrived = clock.now()
            answer = arm(req)
            principal = req.principal.object_id.lower() if req.principal is not None else ""
            status = int(getattr(answer, "status", 0))
            call = ArmCall(principal, str(req.kind or "read"), req.method, req.path, status, arrived, clock.now())
            with self._lock:
                self.calls.append(call)
            return answer

        def logged_publish(topic: str, events: list[dict[str, Any]]) -> None:
            publish(topic, events)
            now = clock.now()
            with self._lock:
                self.published.extend(Published(now, dict(e.get("data") or {})) for e in events)

        sandbox._arm = logged_arm
        sandbox.events.publish_to_topic = logged_publish

    def mark(self) -> int:
        with self._lock:
            return len(self.calls)

    def since(self, mark: int = 0, principal: str | None = None) -> list[ArmCall]:
        with self._lock:
            calls = self.calls[mark:]
        return [c for c in calls if principal is None or c.principal == principal.lower()]

    def outcomes_for(self, resource_id: str) -> list[Published]:
        with self._lock:
            published = list(self.published)
        return [p for p in published if str(p.data.get("resourceId", "")).lower() == resource_id.lower()]

    def outcomes(self) -> list[Published]:
        with self._lock:
            return list(self.published)


def by_kind(calls: Iterable[ArmCall]) -> dict[str, int]:
    counts = Counter(c.kind for c in calls)
    return {k: counts.get(k, 0) for k in ("read", "write", "action", "delete")}


def by_status(calls: Iterable[ArmCall]) -> dict[str, int]:
    return {str(s): n for s, n in sorted(Counter(c.status for c in calls).items())}


def throttled(calls: Iterable[ArmCall]) -> dict[str, int]:
    """429s by kind."""
    counts = Counter(c.kind for c in calls if c.status == 429)
    return {k: counts.get(k, 0) for k in ("read", "write", "action", "delete")}


def percentile(values: Sequence[float], p: float) -> float:
    """Linear interpolation between closest ranks (numpy's default); p in 0..100."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = (len(ordered) - 1) * p / 100.0
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """A Markdown table (readable in a terminal and pastable into the README)."""
    text_rows = [[_cell(v) for v in row] for row in rows]
    widths = [max([len(h)] + [len(r[i]) for r in text_rows]) for i, h in enumerate(headers)]
    line = "| " + " | ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)) + " |"
    rule = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    body = ["| " + " | ".join(v.ljust(w) if i == 0 else v.rjust(w)
                              for i, (v, w) in enumerate(zip(r, widths, strict=True))) + " |" for r in text_rows]
    return "\n".join([line, rule, *body])


def _cell(value: Any) -> str:
    if isinstance(value, float):
        if math.isnan(value):
            return "-"
        return f"{value:,.4f}" if abs(value) < 1 else f"{value:,.2f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def machine() -> dict[str, Any]:
    return {"python": platform.python_version(), "cpus": os.cpu_count(), "platform": platform.platform()}


def write_result(path: Path, result: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2, default=str) + "\n")


def wait_until(predicate: Callable[[], Any], timeout: float, what: str, poll: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(poll)


@dataclasses.dataclass
class AppStack:
    """The real app (function_app.py) on the local host + Durable runner + ARM sandbox, instrumented."""

    stack: Any  # sandbox.host.local.LocalStack
    log: RequestLog
    creator: Any  # CloudClients acting as CREATOR_PRINCIPAL
    workdir: Path
    activity_slots: int
    extra_activity_cpu_ms: float = 0.0

    @property
    def sandbox(self) -> Any:
        return self.stack.sandbox

    @property
    def runner(self) -> Any:
        return self.stack.runner

    def runtime_statuses(self) -> Counter[str]:
        # one read of the instances table: ``status_body``'s runtimeStatus is the record's status, and a
        # per-instance status() (a query and three JSON parses each) on every 50 ms poll made the benchmark's
        # own wait O(N) per poll, a tenth of the CPU of a 400-VM burst (issue 19)
        return Counter(record.status for record in self.runner.store.instances())

    def idle(self) -> bool:
        statuses = self.runtime_statuses()
        return all(s in {"Completed", "Failed", "Terminated"} for s in statuses)

    def settle(self, timeout: float = 120.0) -> None:
        """Wait until events are delivered and no orchestration is pending or running."""
        time.sleep(0.1)
        self.sandbox.events.drain(timeout)
        wait_until(self.idle, timeout, "orchestrations to finish", poll=0.1)

    @property
    def clock(self) -> Any:
        return self.stack.sandbox.clock

    @property
    def discrete(self) -> bool:
        from sandbox.clock import DiscreteClock

        return isinstance(self.clock, DiscreteClock)

    def clock_facts(self) -> dict[str, Any]:
        """What the clock was: discrete (jumps, watchdog reports) or scaled (its scale); the machine's load."""
        facts: dict[str, Any] = {"clock": "discrete" if self.discrete else "scaled",
                                 "load_average_1m": round(os.getloadavg()[0], 2)}
        if self.discrete:
            facts.update(jumps=self.clock.jumps, watchdog_reports=len(self.clock.watchdog_reports),
                         first_watchdog_report=(self.clock.watchdog_reports or [None])[0])
        else:
            facts["scale"] = float(self.clock.scale)
        facts["extra_activity_cpu_ms"] = self.extra_activity_cpu_ms
        return facts

    def stop(self) -> None:
        from steward import bootstrap
        from steward.cloud import azure_time

        try:
            self.stack.stop()
        finally:
            if self.discrete:
                azure_time.reset()
                self.clock.close()
            bootstrap.reset()
            shutil.rmtree(self.workdir, ignore_errors=True)


def start_app_stack(*, scale: float, seed: int, activity_slots: int | None = None,
                    throttle: bool = True, latency: bool = True, settings: dict[str, str] | None = None,
                    clock: str = "scaled", extra_activity_cpu_ms: float = 0.0, instances: int = 1) -> AppStack:
    """Start the stack with ARM's throttle and latency model as asked, the app acting as APP_PRINCIPAL.

    ``activity_slots`` overrides host.json's ``maxConcurrentActivityFunctions`` (one Functions instance has
    that many; N instances scaled out have N times as many) through a copy of host.json in a temp app root.

    ``clock``: ``scaled`` runs Azure time at ``scale`` x real time (our own CPU counts as Azure time);
    ``discrete`` uses ``sandbox.clock.DiscreteClock`` (time jumps to the next deadline when nothing is runnable:
    our CPU costs no Azure time) and installs it as the app's ``steward.cloud.azure_time``. ``scale`` is then
    unused. ``extra_activity_cpu_ms`` burns that much real time at the start of every activity execution (to
    show which figures depend on our CPU). ``instances``: app instances the Durable runner models (Flex
    Consumption scale-out), each with ``activity_slots`` slots and its own clients, pacer and ARM cache.
    """
    from sandbox.arm import SandboxConfig
    from sandbox.arm.config import EventDeliveryConfig, LatencyConfig, ThrottleConfig
    from sandbox.clock import AzureTime, DiscreteClock, VirtualClock
    from sandbox.host.local import LocalStack
    from steward.cloud import azure_time
    from steward.cloud.clients import CloudClients

    if clock not in ("scaled", "discrete"):
        raise ValueError(f"clock must be 'scaled' or 'discrete', not {clock!r}")
    the_clock: Any = DiscreteClock() if clock == "discrete" else VirtualClock(scale=scale)
    if clock == "discrete":
        azure_time.install(AzureTime(the_clock))

    workdir = Path(tempfile.mkdtemp(prefix="steward-bench-"))
    host_json = json.loads((REPO / "host.json").read_text())
    durable = host_json.setdefault("extensions", {}).setdefault("durableTask", {})
    if activity_slots is not None:
        durable["maxConcurrentActivityFunctions"] = activity_slots
    slots = int(durable.get("maxConcurrentActivityFunctions", 16))
    (workdir / "host.json").write_text(json.dumps(host_json))
    config = SandboxConfig(
        clock=the_clock,
        events=EventDeliveryConfig(seed=seed),
        throttle=ThrottleConfig(enabled=throttle),
        latency=LatencyConfig(enabled=latency),
    )
    stack = LocalStack(
        app="function_app",  # no function_app.py in the temp root: imported as the module from the repo
        app_root=workdir,
        db_path=str(workdir / "durable.sqlite"),
        arm_config=config,
        # the audit timer's schedule must resolve at load; timers do not run here (protection only)
        settings={"STEWARD_SANDBOX_PRINCIPAL_ID": APP_PRINCIPAL, "STEWARD_AUDIT_SCHEDULE": "0 0 0 1 1 *",
                  "STEWARD_REPORTS_DIR": str(workdir / "reports"), **(settings or {})},
        run_timers=False,
        instances=instances,
    )
    try:
        stack.start()
    except BaseException:
        if clock == "discrete":
            azure_time.reset()
            the_clock.close()
        raise
    try:
        log = RequestLog(stack.sandbox)
        target = dataclasses.replace(stack.sandbox.cloud_target(principal_id=CREATOR_PRINCIPAL), polling_interval=0.05)
        if extra_activity_cpu_ms > 0:
            _burn_before_activities(stack.runner, extra_activity_cpu_ms / 1000.0)
        return AppStack(stack, log, CloudClients(target), workdir, slots * instances, extra_activity_cpu_ms)
    except BaseException:
        stack.stop()
        if clock == "discrete":
            azure_time.reset()
            the_clock.close()
        raise


def burn(seconds: float) -> None:
    """Keep this thread busy for ``seconds`` of real time (stand-in for slower code or a slower machine)."""
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


def _burn_before_activities(runner: Any, seconds: float) -> None:
    invoke = runner._invoke_activity

    def slower(work: Any) -> Any:
        burn(seconds)
        return invoke(work)

    runner._invoke_activity = slower
