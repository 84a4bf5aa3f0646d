"""``python -m sandbox.arm serve [--port N] [--scale X] [--state FILE] [--seed N]``."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from pathlib import Path

from sandbox.arm.config import EventDeliveryConfig, FaultConfig, SandboxConfig
from sandbox.arm.identity_endpoint import sandbox_identity_endpoint
from sandbox.arm.server import ArmSandbox


def main(argv: list[str] | None = None, program: str = "python -m sandbox.arm") -> int:
    parser = argparse.ArgumentParser(prog=program, description="Local Azure Resource Manager")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="serve HTTPS on 127.0.0.1 and print endpoint/CA/token URL as JSON",
                           epilog=f"example: {program} serve --port 0 --scale 60 --state-dir var/sandbox")
    serve.add_argument("--port", type=int, default=0, help="port (default: a free one)")
    serve.add_argument("--scale", type=float, default=1.0, help="virtual seconds per real second")
    serve.add_argument("--state", type=Path, default=None, help="JSON snapshot to resume from and save to")
    serve.add_argument("--seed", type=int, default=0, help="seed for faults and event delivery")
    serve.add_argument("--state-dir", type=Path, default=None, help="where the CA and certificates are written")
    args = parser.parse_args(argv)

    config = SandboxConfig(
        port=args.port,
        scale=args.scale,
        state_file=args.state,
        state_dir=args.state_dir,
        faults=FaultConfig(seed=args.seed),
        events=EventDeliveryConfig(seed=args.seed),
    )
    sandbox = ArmSandbox(config).start()
    identity = sandbox_identity_endpoint(sandbox).start()
    info = {
        "endpoint": sandbox.endpoint,
        "ca_bundle": sandbox.ca_bundle,
        "token_url": sandbox.token_url,
        "subscriptions": [s.__dict__ for s in sandbox.subscriptions.all()],
        "tenants": sandbox.subscriptions.tenants(),
        # any client with managed-identity support: export these two, and point it at the endpoint as a cloud
        # whose metadata is {endpoint}/metadata/endpoints (README, "The sandbox for other clients")
        "managed_identity": identity.env(),
        "cloud_metadata": sandbox.endpoint + "/metadata/endpoints?api-version=2022-09-01",
    }
    print(json.dumps(info), flush=True)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    try:
        done.wait()
    except KeyboardInterrupt:
        pass
    finally:
        identity.stop()
        sandbox.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
