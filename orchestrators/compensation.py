"""``reconcile_teardowns``: restore the vaults a lost teardown left weakened.

Input ``{"teardowns": {"live": [instance ids], "snapshotAt": ISO time, "skewSeconds"?: int},
"subscriptions"?: [...]}``: the snapshot of running teardowns a doorway with the Durable client took
(``entrypoints/reconcile_timer.teardown_snapshot``) before this orchestration reads any marker. Without a
snapshot nothing is restored (a running teardown could not be told from a lost one). Output
``{"reconciled": [...], "left": [...], "gaps": [...]}``. Started at start-up and hourly by
``entrypoints/reconcile_timer.py`` and, as a sub-orchestration, by every audit (``orchestrators/audit.py``),
which reports what it restored as VLT-006 findings.
"""

from __future__ import annotations

from collections.abc import Generator
from datetime import timedelta
from typing import Any, Final

import azure.durable_functions as df

from steward.domain.compensation import ReconcileAction, decide_reconciliation
from steward.domain.kernel import parse_time

bp = df.Blueprint()

RETRY: Final = df.RetryOptions(first_retry_interval_in_milliseconds=5_000, max_number_of_attempts=4)
#: Markers younger than this before the snapshot wait for the next run (clocks of two hosts may differ).
DEFAULT_SKEW_SECONDS: Final = 300
#: Vaults restored at once.
FAN_OUT: Final = 8


@bp.orchestration_trigger(context_name="context")
def reconcile_teardowns(context: df.DurableOrchestrationContext) -> Generator[Any, Any, dict[str, Any]]:
    request = context.get_input() or {}
    snapshot = request.get("teardowns") or {}
    snapshot_at = parse_time(snapshot.get("snapshotAt")) if isinstance(snapshot, dict) else None
    found = yield context.call_activity_with_retry(
        "teardown_find_marked_vaults", RETRY, {"subscriptions": request.get("subscriptions") or []}
    )
    markers = list(found.get("markers") or [])
    if snapshot_at is None:
        left = [{"vaultId": m["vaultId"], "action": "leave", "reason": "no snapshot of running teardowns"}
                for m in markers]
        return {"reconciled": [], "left": left, "gaps": list(found.get("gaps") or [])}
    skew = timedelta(seconds=int(snapshot.get("skewSeconds", DEFAULT_SKEW_SECONDS)))
    live = [str(i) for i in snapshot.get("live") or []]
    decisions = [
        decide_reconciliation(m["vaultId"], m["marker"], live_instances=live, snapshot_at=snapshot_at, skew=skew)
        for m in markers
    ]
    restore = [d for d in decisions if d.action is ReconcileAction.RESTORE]
    reconciled: list[dict[str, Any]] = []
    for start in range(0, len(restore), FAN_OUT):
        reconciled += yield context.task_all([
            context.call_activity_with_retry(
                "teardown_reconcile_vault", RETRY, {"vaultId": d.vault_id, "marker": d.raw, "reason": d.reason}
            )
            for d in restore[start : start + FAN_OUT]
        ])
    return {
        "reconciled": reconciled,
        "left": [d.to_record() for d in decisions if d.action is not ReconcileAction.RESTORE],
        "gaps": list(found.get("gaps") or []),
    }
