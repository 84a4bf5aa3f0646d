"""The scheduled estate audit: scope, inventory fanned out per subscription, evaluate, publish.

Deterministic: the time is ``context.current_utc_datetime``; every fact and effect is an activity.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any, Final

import azure.durable_functions as df

bp = df.Blueprint()

RETRY: Final = df.RetryOptions(first_retry_interval_in_milliseconds=5_000, max_number_of_attempts=4)
RETRY.backoff_coefficient = 2.0
RETRY.max_retry_interval_in_milliseconds = 120_000

#: Subscriptions read at once (each read paces itself under its subscription's ARM read throttle).
FAN_OUT: Final = 8


@bp.orchestration_trigger(context_name="context")
def audit_estate(context: df.DurableOrchestrationContext) -> Generator[Any, Any, dict[str, Any]]:
    request = context.get_input() or {}
    now = context.current_utc_datetime
    scope = yield context.call_activity_with_retry(
        "audit_scope", RETRY, {"subscriptions": request.get("subscriptions")}
    )
    subscriptions: list[str] = list(scope["subscriptions"])
    parts: list[dict[str, Any]] = []
    for start in range(0, len(subscriptions), FAN_OUT):
        batch = subscriptions[start : start + FAN_OUT]
        context.set_custom_status({"phase": "inventory", "done": len(parts), "total": len(subscriptions)})
        parts += yield context.task_all(
            [
                context.call_activity_with_retry(
                    "audit_read_subscription", RETRY, {"run": context.instance_id, "subscription_id": sub}
                )
                for sub in batch
            ]
        )
    context.set_custom_status({"phase": "evaluate", "done": len(parts), "total": len(subscriptions)})
    summary = yield context.call_activity_with_retry(
        "audit_evaluate", RETRY, {"parts": [p["part"] for p in parts], "now": now.isoformat()}
    )
    context.set_custom_status({"phase": "publish", "done": len(parts), "total": len(subscriptions)})
    published = yield context.call_activity_with_retry("audit_publish_findings", RETRY, {"report": summary["report"]})
    return {
        **summary,
        "subscriptions": len(subscriptions),
        "inventoryGaps": sum(int(p["gaps"]) for p in parts),
        "events": published["events"],
    }
