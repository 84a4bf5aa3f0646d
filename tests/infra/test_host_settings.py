"""Host settings for latency (issue 15 item 5): each setting holds the value its reason asks for, and the three
stay consistent with each other when one of them changes.

Sources (docs/azure-facts.md, "Functions host settings for latency"):
- Durable Functions host.json reference: ``storageProvider.maxQueuePollingInterval``, default ``00:00:30``; the
  Azure Storage provider backs off its polling of idle queues up to that interval, so a timer or an activity
  message on an idle task hub can wait that long before it is picked up.
- Durable Functions Azure Storage provider, "Flex Consumption plan": set the always-ready instance count of the
  ``durable`` group to 1 to avoid the cold start.
- App settings reference: ``PYTHON_THREADPOOL_THREAD_COUNT``, the most threads the Python worker runs
  synchronous function invocations on (Python 3.9+: unset means the interpreter's default pool size).
"""

from __future__ import annotations

import json
import re
from typing import Any

from tests.infra.templates import MAIN, MODULES, REPO, body, one_resource, parse

FUNCTION_APP = MODULES / "function-app.bicep"


def _durable() -> dict[str, Any]:
    host = json.loads((REPO / "host.json").read_text())
    durable: dict[str, Any] = host["extensions"]["durableTask"]
    return durable


def _seconds(timespan: str) -> int:
    match = re.fullmatch(r"(\d\d):(\d\d):(\d\d)", timespan)
    assert match, f"not a hh:mm:ss timespan: {timespan!r}"
    hours, minutes, seconds = (int(part) for part in match.groups())
    return hours * 3600 + minutes * 60 + seconds


def test_an_idle_task_hub_is_polled_at_least_every_ten_seconds() -> None:
    """The provider's default back-off (30 s) would add up to 30 s to every durable timer of an idle hub; the
    protection and teardown sagas wait on many timers. 1-10 s: lower costs storage transactions for nothing."""
    interval = _durable()["storageProvider"].get("maxQueuePollingInterval")
    assert interval is not None, "maxQueuePollingInterval unset: the provider's 30 s default applies"
    assert 1 <= _seconds(interval) <= 10


def test_the_python_worker_has_a_thread_for_every_function_the_host_runs_at_once() -> None:
    """Activities and orchestrators are synchronous functions (one worker thread each while they run): fewer
    threads than the host's concurrency limits would hold work the host already dequeued, and its timeouts run."""
    durable = _durable()
    needed = durable["maxConcurrentActivityFunctions"] + durable["maxConcurrentOrchestratorFunctions"]
    settings = one_resource(FUNCTION_APP, "Microsoft.Web/sites")["properties"]["siteConfig"]["appSettings"]
    entry = next(e for e in settings if e["name"] == "PYTHON_THREADPOOL_THREAD_COUNT")
    assert entry["value"] == {"function": {"type": "string", "parameters": {"value_to_convert": "pythonThreadCount"}}}
    threads = parse(FUNCTION_APP)["parameters"]["pythonThreadCount"]["default"]
    assert threads >= needed + 2, f"{threads} threads for {needed} durable functions and the HTTP/Event Grid triggers"


def test_the_always_ready_instance_is_optional_and_names_the_durable_group() -> None:
    scale = one_resource(FUNCTION_APP, "Microsoft.Web/sites")["properties"]["functionAppConfig"]["scaleAndConcurrency"]
    conditional = scale["alwaysReady"]["operator"]
    assert conditional["type"] == "conditional"
    durable_group = {"name": "durable", "instanceCount": "durableAlwaysReadyInstances"}
    assert conditional["operands"]["true_value"] == [durable_group]
    assert conditional["operands"]["false_value"] == []
    assert parse(FUNCTION_APP)["parameters"]["durableAlwaysReadyInstances"]["default"] == 0
    module = next(e for e in parse(MAIN)["modules"].values() if e["detail"]["path"] == "modules/function-app.bicep")
    assert body(module)["params"]["durableAlwaysReadyInstances"] == "durableAlwaysReadyInstances"
    assert parse(MAIN)["parameters"]["durableAlwaysReadyInstances"]["default"] == 0
