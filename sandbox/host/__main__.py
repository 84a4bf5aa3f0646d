"""``python -m sandbox.host up``: ARM sandbox + Durable runner + local host around ``function_app.py``.

Prints the URLs (routes, Event Grid webhook, Durable webhook) and the keys made for this run, then serves
until interrupted. ``--json`` prints the same as one JSON object (for scripts).
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from sandbox.clock import VirtualClock
from sandbox.durable.logs import configure_json_logging

from .local import LocalStack


def _human(described: dict[str, Any]) -> str:
    lines = [f"Local Functions host  {described['host']}"]
    for name, route in described["routes"].items():
        lines.append(f"  {name:<28} {','.join(route['methods']):<12} {route['url']}  ({route['auth']})")
    for name, url in described["eventgrid"].items():
        lines.append(f"  {name:<28} EVENTGRID    {url}")
    for name, schedule in described["timers"].items():
        lines.append(f"  {name:<28} TIMER        {schedule}")
    lines.append(f"Durable webhook       {described['durable_webhook']}   (store {described['durable_db']})")
    for name, key in described["keys"].items():
        lines.append(f"key {name:<28} {key}")
    if described["arm"]:
        arm = described["arm"]
        lines.append(f"ARM sandbox           {arm['endpoint']}  token {arm['token_url']}  CA {arm['ca_bundle']}")
        lines.append(f"App access tokens     POST {arm['app_token_url']}  {{\"principalId\": \"<object id>\"}}"
                     "  -> send as 'Authorization: Bearer <access_token>'")
    else:
        lines.append("ARM sandbox           (not started)")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sandbox.host", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="start ARM sandbox, Durable runner and host; print URLs and keys")
    up.add_argument("--app", default="function_app", help="app module name or path (default function_app)")
    up.add_argument("--root", default=".", help="app root holding host.json (default .)")
    up.add_argument("--db", default=None, help="Durable store (default ROOT/var/durable.sqlite)")
    up.add_argument("--port", type=int, default=7071)
    up.add_argument("--no-arm", action="store_true", help="do not start the ARM sandbox")
    up.add_argument("--scale", type=float, default=1.0, help="virtual seconds per real second")
    up.add_argument("--json", action="store_true", help="print URLs and keys as one JSON object")
    up.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)
    configure_json_logging(getattr(logging, args.log_level.upper(), logging.INFO))
    root = Path(args.root).resolve()
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    stack = LocalStack(app=args.app, app_root=root, db_path=args.db, arm=False if args.no_arm else None,
                       clock=VirtualClock(scale=args.scale), host_port=args.port)
    try:
        stack.start()
    except Exception as error:  # noqa: BLE001 - bad settings, a bad schedule, an app that does not load: one line
        from sandbox.playground import start_failed

        return start_failed(parser.prog, error, sys.stderr)
    described = stack.describe()
    print(json.dumps(described) if args.json else _human(described), flush=True)
    stopped = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stopped.set())
    stopped.wait()
    stack.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
