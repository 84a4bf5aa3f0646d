"""The teardown reconciler's doorway: at start-up and every hour, snapshot the running teardowns (the Durable
client can; an orchestration cannot) and start ``reconcile_teardowns`` with it.

Start-up: a timer with ``run_on_startup``. Microsoft's timer-trigger reference says to use ``runOnStartup``
rarely because it fires whenever the host starts (a restart, a scale-out, a deployment); here that is the point:
a host that lost its task hub starts again, and the reconciler is idempotent (it restores only vaults whose
teardown is not running, only towards stronger settings) with one instance id per minute, so instances of a
scaled-out app collapse onto one run. The hourly schedule and every audit (``orchestrators/audit.py``) catch the
rest.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any, Final

import azure.durable_functions as df
import azure.functions as func

from steward.domain.compensation import LIVE_RUNTIME_STATUSES
from steward.domain.kernel import format_time

LOG = logging.getLogger("steward.entry")
ORCHESTRATOR: Final = "reconcile_teardowns"
TEARDOWN_PREFIX: Final = "teardown-"
SCHEDULE: Final = "0 41 * * * *"
ACTIVE: Final = frozenset({"Pending", "Running", "ContinuedAsNew"})
#: A marker written less than this before the snapshot is left to the next run: the marker's time is another
#: host's clock (the activity that wrote it), and a teardown started just after the snapshot is not in it.
CLOCK_SKEW_SECONDS = 300

bp = df.Blueprint()


async def teardown_snapshot(client: df.DurableOrchestrationClient) -> dict[str, Any]:
    """The teardown instances that may still act, and when that was seen (wall clock, as the markers' time)."""
    at = datetime.now(UTC)
    statuses = [
        df.OrchestrationRuntimeStatus(s) for s in sorted(LIVE_RUNTIME_STATUSES)
        if s in df.OrchestrationRuntimeStatus.__members__
    ]
    running = await client.get_status_by(runtime_status=statuses)
    live = sorted(
        {str(s.instance_id) for s in running if str(s.instance_id or "").startswith(TEARDOWN_PREFIX)}
    )
    return {"live": live, "snapshotAt": format_time(at), "skewSeconds": CLOCK_SKEW_SECONDS}


@bp.timer_trigger(schedule=SCHEDULE, arg_name="timer", run_on_startup=True)
@bp.durable_client_input(client_name="client")
async def teardown_reconcile_timer(timer: func.TimerRequest, client: df.DurableOrchestrationClient) -> None:
    del timer
    instance_id = "reconcile-" + datetime.now(UTC).strftime("%Y%m%dT%H%M")
    status = await client.get_status(instance_id)
    if status is not None and status.runtime_status is not None and status.runtime_status.value in ACTIVE:
        return
    snapshot = await teardown_snapshot(client)
    await client.start_new(ORCHESTRATOR, instance_id, {"teardowns": snapshot})
    # the run's correlation id: its instance id (per wall-clock minute, so a run that ended may be started again
    # under it) and the moment of its snapshot, which names this run alone
    LOG.info("teardown reconciliation started",
             extra={"instance_id": instance_id, "correlation_id": f"{instance_id}@{snapshot['snapshotAt']}",
                    "live": len(snapshot["live"])})
