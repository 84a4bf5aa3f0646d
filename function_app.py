"""Backup Steward - the Azure Functions app (Python v2 programming model, Durable Functions).

This file only wires blueprints together; every trigger, orchestrator and activity lives in its module:

* ``entrypoints/``   triggers: Event Grid subscription events, teardown HTTP routes, the audit timer
* ``orchestrators/`` deterministic orchestrations: protect / gone / move, teardown saga, audit
* ``activities/``    one Azure fact or effect each
"""

from __future__ import annotations

import azure.durable_functions as df
import azure.functions as func

from activities import common as common_activities
from activities import protection as protection_activities
from entrypoints import event_grid
from orchestrators import protection as protection_orchestrators
from steward import logs

logs.configure()

app = df.DFApp(http_auth_level=func.AuthLevel.FUNCTION)

for blueprint in (
    event_grid.bp,
    protection_orchestrators.bp,
    common_activities.bp,
    protection_activities.bp,
):
    app.register_functions(blueprint)
