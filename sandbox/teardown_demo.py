"""Plan, print, run and follow one teardown - the last act of ``make demo``.

``demo_teardown(orchestrations, vault_id)`` needs only something that starts and reads orchestrations the way
the local Durable runner does (``start_new``, ``status``); it plans (dry run), prints the plan, runs it with
the plan's fingerprint as the approval, prints each change of progress, and prints the report's summary.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from steward.domain.teardown import RequestSource, TeardownRequest, instance_id_for

TERMINAL = frozenset({"Completed", "Failed", "Terminated"})


class Orchestrations(Protocol):
    def start_new(self, name: str, instance_id: str | None = None, input: Any = None) -> str: ...

    def status(self, instance_id: str) -> dict[str, Any]: ...


def plan_lines(plan: Mapping[str, Any]) -> list[str]:
    lines = [f"plan {plan.get('fingerprint')} ({plan.get('status')})"]
    for index, step in enumerate(plan.get("steps") or [], start=1):
        extra = f" until {step['waitUntil']}" if step.get("waitUntil") else ""
        lines.append(f"  {index:2d}. {step['kind']:<38} {step['count']:>5} target(s){extra}")
    for blocker in plan.get("blockers") or []:
        lines.append(f"  ! {blocker['kind']}: {blocker['reason']} -> {blocker['actionNeeded']}")
    return lines


def progress_line(custom: Mapping[str, Any]) -> str:
    steps = custom.get("steps") or []
    done = sum(1 for s in steps if s.get("outcome") == "done")
    current = next((s for s in steps if s.get("kind") == custom.get("currentStep")), None)
    where = f"{current['kind']} {current['done']}/{current['total']}" if current else custom.get("phase")
    extra = f", waiting until {custom['waitingUntil']}" if custom.get("waitingUntil") else ""
    needs = f", needs: {custom['needs']}" if custom.get("needs") else ""
    error = f", last error: {custom['lastError']}" if custom.get("lastError") else ""
    return f"  [{done}/{len(steps)} steps] {where}{extra}{needs}{error}"


def _wait(
    orchestrations: Orchestrations, instance_id: str, out: Callable[[str], None], timeout: float
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    last = ""
    while True:
        status = orchestrations.status(instance_id)
        custom = status.get("customStatus")
        if isinstance(custom, Mapping) and custom.get("steps"):
            line = progress_line(custom)
            if line != last:
                out(line)
                last = line
        if status.get("runtimeStatus") in TERMINAL:
            return status
        if time.monotonic() > deadline:
            raise TimeoutError(f"teardown {instance_id} did not finish within {timeout:.0f} s")
        time.sleep(0.1)


def demo_teardown(
    orchestrations: Orchestrations,
    vault_id: str,
    *,
    requested_by: str = "demo",
    out: Callable[[str], None] = print,
    timeout: float = 300.0,
) -> dict[str, Any]:
    """Dry run, print the plan, run it approved, print progress and the outcome. Returns the report."""
    planning = TeardownRequest(vault_id, requested_by, RequestSource.HTTP, dry_run=True)
    out(f"teardown: planning {vault_id}")
    status = _wait(
        orchestrations,
        orchestrations.start_new("teardown_vault", instance_id_for(planning), planning.to_record()),
        out,
        timeout,
    )
    report = status.get("output") or {}
    plan = report.get("plan") or {}
    for line in plan_lines(plan):
        out(line)
    if plan.get("status") not in ("ready", "needs-security-approval"):
        out(f"teardown: not run ({report.get('outcome')}: {report.get('reason')})")
        return dict(report)
    run = TeardownRequest(
        vault_id, requested_by, RequestSource.HTTP, dry_run=False, approved_fingerprint=str(plan["fingerprint"])
    )
    out(f"teardown: running, approved {plan['fingerprint']}")
    status = _wait(
        orchestrations, orchestrations.start_new("teardown_vault", instance_id_for(run), run.to_record()), out, timeout
    )
    report = status.get("output") or {}
    out(f"teardown: {report.get('outcome')} - {report.get('reason')}")
    out(f"  deleted {len(report.get('deleted') or [])} object(s); {len(report.get('remaining') or [])} remain")
    links = report.get("links") or {}
    if links.get("htmlUrl"):
        out(f"  report: {links['htmlUrl']}")
    return dict(report)
