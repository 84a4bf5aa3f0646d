"""``reconcile_teardowns``: restore the vaults a lost teardown left weakened.

Input ``{"teardowns": {"live": [instance ids], "snapshotAt": ISO time, "skewSeconds"?: int},
"subscriptions"?: [...]}``: the snapshot of running teardowns a doorway with the Durable client took
(``entrypoints/reconcile_timer.teardown_snapshot``) before this orchestration reads any marker. Without a
snapshot nothing is restored (a running teardown could not be told from a lost one). Output
``{"reconciled": [...], "left": [...], "gaps": [...]}``. Started at start-up and hourly by
``entrypoints/reconcile_timer.py`` and, as a sub-orchestration, by every audit (``orchestrators/audit.py``),
which reports what it restored as VLT-006 findings.

The input, the activity's result and the output are records of ``steward/domain/compensation.py``
(``ReconcileRequest``, ``MarkedVaults``, ``ReconcileResult``) on the one codec, keys as before.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any, Final

import azure.durable_functions as df

from steward.domain.compensation import (
    DEFAULT_SKEW_SECONDS,
    MarkedVaults,
    ReconcileAction,
    ReconcileRequest,
    ReconcileResult,
    decide_reconciliation,
)
from steward.domain.teardown.inputs import MarkedVaultsQuery, VaultToReconcile

bp = df.Blueprint()

RETRY: Final = df.RetryOptions(first_retry_interval_in_milliseconds=5_000, max_number_of_attempts=4)
__all__ = ["DEFAULT_SKEW_SECONDS", "FAN_OUT", "RETRY", "bp", "reconcile_teardowns"]
#: Vaults restored at once.
FAN_OUT: Final = 8


@bp.orchestration_trigger(context_name="context")
def reconcile_teardowns(context: df.DurableOrchestrationContext) -> Generator[Any, Any, dict[str, Any]]:
    # an input that is not a ReconcileRequest fails here, before any activity
    request = ReconcileRequest.from_record(context.get_input() or {})
    snapshot = request.teardowns
    found = MarkedVaults.from_record((yield context.call_activity_with_retry(
        "teardown_find_marked_vaults", RETRY, MarkedVaultsQuery(request.subscriptions).to_record()
    )))
    if snapshot is None or snapshot.snapshot_at is None:
        left = [{"vaultId": m.vault_id, "action": "leave", "reason": "no snapshot of running teardowns"}
                for m in found.markers]
        return ReconcileResult(left=tuple(left), gaps=found.gaps).to_record()
    snapshot_at = snapshot.snapshot_at
    decisions = [
        decide_reconciliation(m.vault_id, m.marker, live_instances=list(snapshot.live), snapshot_at=snapshot_at,
                              skew=snapshot.skew)
        for m in found.markers
    ]
    restore = [d for d in decisions if d.action is ReconcileAction.RESTORE]
    reconciled: list[dict[str, Any]] = []
    for start in range(0, len(restore), FAN_OUT):
        reconciled += yield context.task_all([
            context.call_activity_with_retry(
                "teardown_reconcile_vault", RETRY, VaultToReconcile(d.vault_id, d.raw, d.reason).to_record()
            )
            for d in restore[start : start + FAN_OUT]
        ])
    return ReconcileResult(
        reconciled=tuple(reconciled),
        left=tuple(d.to_record() for d in decisions if d.action is not ReconcileAction.RESTORE),
        gaps=found.gaps,
    ).to_record()
