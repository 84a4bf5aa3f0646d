"""``steward``: the command line of Backup Steward.

    steward demo                 the main job on the embedded local Azure sandbox (make demo)
    steward sandbox serve        the local ARM sandbox alone; prints its endpoint, CA bundle and token URL
    steward local up             sandbox + Durable runner + local Functions host around function_app.py, a seeded
                                 estate, stable keys in var/, curl examples (make local); steward local env
    steward instances [show ID]  Durable instances of a local run
    steward audit ...            audit the estate (against the sandbox or, with credentials, Azure)
    steward rules check|explain|schema   validate rules; what they decide for a resource (no Azure needed)
    steward settings check       validate the app settings offline (environment, --env-file, --local-settings)
    steward protect RESOURCE_ID  protect one resource now through the app's HTTP API; waits for the outcome
    steward teardown plan|approve|status|cancel VAULT   a vault's teardown through the HTTP API
    steward drill run [--resource ID] [--dry-run]       a restore drill (steward drill status|validate|cancel ID)
                                 (these three call the deployed app: --api/--key/--audience or BACKUP_STEWARD_*;
                                 with nothing set, the local stack of `steward local up`; --output table|json|csv;
                                 exit 0 ok, 1 refused or failed, 2 usage/configuration, 3 unreachable)
    steward why RESOURCE_ID      why a resource is (not) protected: its latest outcome, the latest audit and the
                                 rules together (alias: steward explain); --output table|json|csv

The sandbox commands need the development install (``make`` creates it); they are not deployed.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable


def _demo(argv: list[str]) -> int:
    from sandbox.demo import main

    return int(main(argv) or 0)


def _sandbox(argv: list[str]) -> int:
    from sandbox.arm.__main__ import main

    return int(main(argv, program="steward sandbox") or 0)


def _local(argv: list[str]) -> int:
    from sandbox.playground import main

    return int(main(argv, program="steward local") or 0)


def _instances(argv: list[str]) -> int:
    from sandbox.durable.__main__ import main

    if argv[:1] == ["show"]:
        return int(main(argv, program="steward instances") or 0)
    return int(main(["instances", *argv], program="steward") or 0)


def _audit(argv: list[str]) -> int:
    from steward.audit_cli import main

    return int(main(argv) or 0)


def _settings(argv: list[str]) -> int:
    from steward.settings_cli import main

    return int(main(argv) or 0)


def _rules(argv: list[str]) -> int:
    from steward.rules_cli import main

    return int(main(argv) or 0)


def _why(argv: list[str]) -> int:
    from steward.why_cli import main

    return int(main(argv) or 0)


def _explain(argv: list[str]) -> int:
    from steward.why_cli import main

    return int(main(argv, program="steward explain") or 0)


def _job(job: str) -> Callable[[list[str]], int]:
    def run(argv: list[str]) -> int:
        from steward.api_cli import main

        return main(job, argv)

    return run


COMMANDS: dict[str, Callable[[list[str]], int]] = {
    "demo": _demo,
    "sandbox": _sandbox,
    "local": _local,
    "instances": _instances,
    "audit": _audit,
    "rules": _rules,
    "settings": _settings,
    "why": _why,
    "explain": _explain,
    "protect": _job("protect"),
    "teardown": _job("teardown"),
    "drill": _job("drill"),
}


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in {"-h", "--help", "help"}:
        print(__doc__)
        return 0 if args else 2
    command = COMMANDS.get(args[0])
    if command is None:
        print(f"steward: unknown command {args[0]!r}; commands: {', '.join(COMMANDS)}", file=sys.stderr)
        return 2
    try:
        return command(args[1:])
    except BrokenPipeError:
        # the reader went away (`| head`): no traceback. Python's "Note on SIGPIPE" (signal module docs)
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
