"""Activities every orchestration may use: what the app is allowed to act on."""

from __future__ import annotations

from typing import Any

import azure.durable_functions as df

from steward import bootstrap
from steward.cloud.protection import SubscriptionReader

bp = df.Blueprint()


@bp.activity_trigger(input_name="request")
def steward_scope(request: dict[str, Any]) -> dict[str, Any]:
    """The subscriptions this deployment manages (from settings), for orchestrations that reconcile."""
    settings = bootstrap.settings()
    tenants = SubscriptionReader(bootstrap.clients()).tenants(settings.subscriptions)
    return {"subscription_ids": list(settings.subscriptions), "tenants": tenants}
