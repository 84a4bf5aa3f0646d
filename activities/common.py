"""Activities every orchestration may use: what the app is allowed to act on."""

from __future__ import annotations

from typing import Any

import azure.durable_functions as df

from steward import bootstrap
from steward.cloud.protection import SubscriptionReader
from steward.domain.protection_results import StewardScope

bp = df.Blueprint()


@bp.activity_trigger(input_name="request")
def steward_scope(request: dict[str, Any]) -> dict[str, Any]:
    """The subscriptions this deployment manages (from settings), for orchestrations that reconcile."""
    settings = bootstrap.settings()
    tenants = SubscriptionReader(bootstrap.clients()).tenants(settings.subscriptions)
    return StewardScope(
        # the subscriptions the app can still act on
        subscription_ids=tuple(s for s in settings.subscriptions if tenants.get(s.lower()) is not None),
        tenants={s: t for s, t in tenants.items() if t is not None},
        # managed subscriptions whose tenant no longer accepts the app's token: moved to another tenant
        unreachable=tuple(s for s, t in tenants.items() if t is None),
    ).to_record()
