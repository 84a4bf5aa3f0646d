"""Backup Steward - the Azure Functions app (Python v2 programming model, Durable Functions).

This file only wires blueprints together; every trigger, orchestrator and activity lives in its module:

* ``entrypoints/``   triggers: Event Grid subscription events, teardown HTTP routes, the audit timer
* ``orchestrators/`` deterministic orchestrations: protect / gone / move, teardown saga, audit
* ``activities/``    one Azure fact or effect each
"""

from __future__ import annotations

import azure.durable_functions as df
import azure.functions as func

from activities import audit as audit_activities
from activities import common as common_activities
from activities import compensation as compensation_activities
from activities import drill as drill_activities
from activities import protection as protection_activities
from activities import teardown as teardown_activities
from entrypoints import (
    audit_timer,
    drill_http,
    event_grid,
    openapi,
    protect_http,
    reconcile_timer,
    teardown_http,
)
from orchestrators import audit as audit_orchestrators
from orchestrators import compensation as compensation_orchestrators
from orchestrators import drill as drill_orchestrators
from orchestrators import protection as protection_orchestrators
from orchestrators import retrying as retrying_orchestrators
from orchestrators import teardown as teardown_orchestrators
from steward import bootstrap, logs

logs.configure()
# Fail fast: settings and rules are checked when the worker loads the app, not on the first request.
bootstrap.validate()
bootstrap.telemetry()  # Application Insights metrics and traces, when its connection string is set

app = df.DFApp(http_auth_level=func.AuthLevel.FUNCTION)

for blueprint in (
    event_grid.bp,
    teardown_http.bp,
    audit_timer.bp,
    reconcile_timer.bp,
    openapi.bp,
    drill_http.bp,
    protect_http.bp,
    protection_orchestrators.bp,
    teardown_orchestrators.bp,
    audit_orchestrators.bp,
    compensation_orchestrators.bp,
    retrying_orchestrators.bp,
    drill_orchestrators.bp,
    common_activities.bp,
    protection_activities.bp,
    teardown_activities.bp,
    audit_activities.bp,
    compensation_activities.bp,
    drill_activities.bp,
):
    app.register_functions(blueprint)
