"""The app's process in a chaos run: the local Functions host + Durable runner around ``function_app.py``,
attached to an ARM sandbox that lives in ANOTHER process (the chaos driver), so the driver can SIGKILL this
one at any moment and start it again on the same SQLite history.

    python -m tests.chaos.app_process '<json spec>'

The spec names the sandbox (endpoint, CA bundle, token URL, topic key, subscriptions), the runner's SQLite
file, the host's port and keys (the same on every restart, so Event Grid's webhook subscription and the
function key stay valid) and the clock scale. The runner's virtual clock starts at the sandbox's "now"
(``GET /sandbox/clock``) with the same scale, so durable timers and Azure time agree. Prints ``READY`` and
serves until killed.
"""

from __future__ import annotations

import json
import ssl
import sys
import time
import urllib.request
from datetime import datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]


def sandbox_now(endpoint: str, ca_bundle: str) -> tuple[datetime, float]:
    context = ssl.create_default_context(cafile=ca_bundle)
    with urllib.request.urlopen(f"{endpoint}/sandbox/clock", timeout=10, context=context) as answer:
        body: dict[str, Any] = json.loads(answer.read())
    return datetime.fromisoformat(body["now"]), float(body["scale"])


def app_settings(spec: dict[str, Any]) -> dict[str, str]:
    from sandbox.host import local

    endpoint = spec["endpoint"]
    return {
        local.ARM_ENDPOINT: endpoint,
        local.CREDENTIAL: "sandbox",
        local.SANDBOX_TOKEN_URL: spec["token_url"],
        local.CA_BUNDLE: spec["ca_bundle"],
        local.EVENTS_TOPIC_ENDPOINT: f"{endpoint}/sandbox/eventgrid/topics/{local.OUTCOME_TOPIC}/api/events",
        local.EVENTS_TOPIC_KEY: spec["topic_key"],
        local.SUBSCRIPTIONS: ",".join(spec["subscriptions"]),
        local.SANDBOX_PRINCIPAL_ID: spec["principal_id"],
        **spec.get("auth", {}),
        **spec.get("settings", {}),
    }


def serve(spec: dict[str, Any]) -> None:
    from sandbox.clock import VirtualClock
    from sandbox.host.local import LocalStack
    from sandbox.host.server import HostKeys

    now, scale = sandbox_now(spec["endpoint"], spec["ca_bundle"])
    keys = spec["keys"]
    stack = LocalStack(
        app="function_app",
        app_root=REPO,
        db_path=spec["db"],
        arm=False,
        clock=VirtualClock(start=now, scale=scale),
        settings=app_settings(spec),
        host_port=int(spec["port"]),
        keys=HostKeys(function_key=keys["function"], master_key=keys["master"], system_keys=keys["system"]),
        run_timers=False,
    ).start()
    print("READY", json.dumps({"eventgrid": stack.describe()["eventgrid"]}), flush=True)
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    serve(json.loads(sys.argv[1]))
