"""``steward local``: the local stack to play with (``make local``).

    steward local up     ARM sandbox + Durable runner + local Functions host around function_app.py, with the
                         demo's estate seeded, a local operator principal allowed, function keys kept in
                         var/local/keys.json across restarts, and copy-paste curl commands printed
    steward local env    shell exports for another terminal: eval "$(steward local env)"; LOCAL_AUTH carries a
                         bearer token from the sandbox's Entra ID (an hour; run it again for a new one)
    steward local token  just such a token: curl -H "Authorization: Bearer $(steward local token)" ...

``steward local up`` writes ``var/local/stack.json`` (URLs, keys, the principal, the seeded ids; mode 0600)
for ``steward local env``. The same stack without seeding or keys is ``python -m sandbox.host up``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shlex
import signal
import sys
import threading
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, Final, TextIO

REPO: Final = Path(__file__).resolve().parents[1]
DEFAULT_STATE: Final = Path("var")
#: The operator the local stack allows to tear down and audit (the local caller of the curl examples).
LOCAL_PRINCIPAL: Final = "10ca1000-0000-4000-8000-00000000a11c"
EXIT_OK: Final = 0
EXIT_START_FAILED: Final = 2


def state_paths(state: Path) -> dict[str, Path]:
    base = state / "local"
    return {"dir": base, "keys": base / "keys.json", "stack": base / "stack.json", "reports": base / "reports",
            "arm": base / "arm", "db": state / "durable.sqlite"}


def _write_private(path: Path, document: Mapping[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        json.dump(document, handle, indent=2)
    path.chmod(0o600)


def stable_keys(path: Path) -> Any:
    """The host's keys from ``path``, made (and saved, mode 0600) on the first start: curl lines keep working
    across restarts, as a Function App's keys do."""
    from sandbox.host.server import HostKeys

    try:
        saved = json.loads(path.read_text(encoding="utf-8"))
        return HostKeys(function_key=saved["function"], master_key=saved["master"], system_keys=dict(saved["system"]))
    except (OSError, ValueError, KeyError, TypeError):
        keys = HostKeys()
        _write_private(path, {"function": keys.function_key, "master": keys.master_key,
                              "system": dict(keys.system_keys)})
        return keys


class TokenError(Exception):
    """The local stack's Entra ID gave no token (the stack is not running, or refused)."""


def mint_token(stack_file: Mapping[str, Any], principal: str | None = None, roles: Sequence[str] = ()) -> str:
    """An access token for the app's routes from the sandbox's Entra ID (``POST {app_token_url}``), for the local
    principal unless told otherwise: what ``az account get-access-token --resource <app id URI>`` gives on Azure."""
    import ssl
    import urllib.error
    import urllib.request

    arm = stack_file.get("arm") or {}
    url = arm.get("app_token_url")
    if not url:
        raise TokenError("the local stack runs without the ARM sandbox: no Entra ID to ask for a token")
    body = json.dumps({"principalId": principal or stack_file["principal"], "roles": list(roles)}).encode()
    request = urllib.request.Request(url, data=body, method="POST", headers={"content-type": "application/json"})  # noqa: S310 - the loopback sandbox
    context = ssl.create_default_context(cafile=arm.get("ca_bundle"))
    try:
        with urllib.request.urlopen(request, timeout=10, context=context) as answer:  # noqa: S310 - loopback
            return str(json.loads(answer.read())["access_token"])
    except (OSError, ValueError, KeyError) as error:
        raise TokenError(f"no token from {url}: {error}") from None


def auth_header(token: str) -> str:
    """The header callers of the teardown and audit routes send: a bearer token the app validates."""
    return f"Authorization: Bearer {token}"


def seed_estate(stack: Any, out: TextIO) -> dict[str, str]:
    """The demo's vaults and pre-existing resources, plus a legacy vault full of content to tear down."""
    from sandbox.arm.config import DEFAULT_SUBSCRIPTION
    from sandbox.arm.providers.recoveryservices import recovery_services
    from sandbox.demo import WEU, Console, Demo, build_estate
    from sandbox.estate import Estate
    from steward.cloud.clients import CloudClients

    clients = CloudClients(replace(stack.sandbox.cloud_target(), polling_interval=0.05))
    ids = build_estate(Demo(stack, clients, Console(out)))
    legacy = Estate(clients, DEFAULT_SUBSCRIPTION)
    legacy.resource_group("rg-legacy", WEU)
    ids["rsv-legacy"] = legacy.recovery_services_vault("rg-legacy", "rsv-legacy", WEU, default=False)
    recovery_services(stack.sandbox).seed_every_kind(ids["rsv-legacy"], prefix="legacy")
    # as in the demo: unregistering the vault's storage account needs Storage Account Contributor on it, which the
    # deployment grants the app's identity where the vault's storage accounts are
    from sandbox.arm.providers.authorization_model import grant_built_in_role

    grant_built_in_role(stack.sandbox.store, stack.sandbox.config.default_principal_id, "Storage Account Contributor",
                        ids["rsv-legacy"].split("/providers/")[0], stack.sandbox.clock.now())
    print(f"  and a legacy vault full of backup content to tear down: {ids['rsv-legacy']}", file=out)
    return ids


def exports(stack_file: Mapping[str, Any], token: str) -> list[str]:
    """``export`` lines for a shell: the API base, the function key, the caller header, the seeded vault. The
    names start with ``LOCAL_``, not ``STEWARD_``: they are no app settings (the CLI would warn about them)."""
    values = {
        "LOCAL_API": stack_file["api"],
        "LOCAL_KEY": stack_file["keys"]["function"],
        "LOCAL_AUTH": auth_header(token),
        "LOCAL_DB": stack_file["durable_db"],
        "VAULT": stack_file.get("estate", {}).get("rsv-legacy", ""),
    }
    arm = stack_file.get("arm") or {}
    values.update({k: v for k, v in {"LOCAL_ARM_ENDPOINT": arm.get("endpoint"),
                                     "LOCAL_CA_BUNDLE": arm.get("ca_bundle"),
                                     "LOCAL_TOKEN_URL": arm.get("token_url")}.items() if v})
    return [f"export {name}={shlex.quote(str(value))}" for name, value in values.items()]


#: (what, curl command, CLI equivalent) - the commands use the variables `steward local env` exports.
EXAMPLES: Final[tuple[tuple[str, str, str], ...]] = (
    (
        "1. dry run: plan the teardown of the legacy vault (nothing is deleted)",
        'ID=$(curl -sS -X POST "$LOCAL_API/teardowns" -H "x-functions-key: $LOCAL_KEY" -H "$LOCAL_AUTH" '
        "-H 'content-type: application/json' -d \"{\\\"vaultId\\\": \\\"$VAULT\\\", \\\"dryRun\\\": true}\" "
        "| jq -r .id); echo \"$ID\"",
        "",
    ),
    (
        "2. status: the plan, its steps and its fingerprint (repeat until runtimeStatus is Completed)",
        'curl -sS "$LOCAL_API/teardowns/$ID" -H "x-functions-key: $LOCAL_KEY" -H "$LOCAL_AUTH" '
        "| jq '{runtimeStatus, fingerprint: .plan.fingerprint, steps: [.plan.steps[]? | {kind, count}]}'",
        'steward instances show "$ID" --db "$LOCAL_DB"',
    ),
    (
        "3. approve the plan's fingerprint: the teardown runs (a new instance; its id is in the answer)",
        'FP=$(curl -sS "$LOCAL_API/teardowns/$ID" -H "x-functions-key: $LOCAL_KEY" -H "$LOCAL_AUTH" '
        '| jq -r .plan.fingerprint); RUN=$(curl -sS -X POST "$LOCAL_API/teardowns/$ID/approve" '
        '-H "x-functions-key: $LOCAL_KEY" -H "$LOCAL_AUTH" -H \'content-type: application/json\' '
        "-d \"{\\\"fingerprint\\\": \\\"$FP\\\"}\" | jq -r .id); echo \"$RUN\"",
        "",
    ),
    (
        "4. the run's status, then its report (HTML)",
        'curl -sS "$LOCAL_API/teardowns/$RUN" -H "x-functions-key: $LOCAL_KEY" -H "$LOCAL_AUTH" '
        "| jq '{runtimeStatus, phase: .customStatus.phase, outcome: .report.outcome}'; "
        'curl -sS "$LOCAL_API/teardowns/$RUN/report.html" -H "x-functions-key: $LOCAL_KEY" '
        '-H "$LOCAL_AUTH" -o teardown-report.html',
        'steward instances --db "$LOCAL_DB" --output table',
    ),
    (
        "5. audit the estate now, then read the latest report",
        'curl -sS -X POST "$LOCAL_API/audits" -H "x-functions-key: $LOCAL_KEY" -H "$LOCAL_AUTH"; echo; '
        'sleep 5; curl -sS "$LOCAL_API/audits/latest" -H "x-functions-key: $LOCAL_KEY" -H "$LOCAL_AUTH" '
        "| jq '{resources: .coverage.total.resources, coverage: .coverage.total.ratio, "
        "findings: [.findings[]? | {severity, control, resourceId}]}'",
        'steward audit --arm-endpoint "$LOCAL_ARM_ENDPOINT" --ca-bundle "$LOCAL_CA_BUNDLE" '
        '--sandbox-token-url "$LOCAL_TOKEN_URL" --format table',
    ),
)


def cli_command() -> str:
    """How to run the CLI from here: this interpreter (relative to the working directory when inside it, e.g.
    ``.venv/bin/python``) with ``-m steward.cli`` - it works outside an activated venv."""
    executable = Path(sys.executable)
    try:
        shown = str(executable.relative_to(Path.cwd()))
    except ValueError:
        shown = str(executable)
    return f"{shlex.quote(shown)} -m steward.cli"


def examples_text(cli: str, state_dir: Path = DEFAULT_STATE) -> str:
    """The copy-paste block ``up`` prints: the ``env`` line (naming ``--state-dir`` when it is not the default, or
    the line would read another stack's, or none), then each example's curl and CLI lines."""
    where = "" if state_dir == DEFAULT_STATE else f" --state-dir {shlex.quote(str(state_dir))}"
    lines = [
        "Try it from another terminal in this directory (needs curl and jq):",
        f'eval "$({cli} local env{where})"',
    ]
    for what, curl, equivalent in EXAMPLES:
        lines.append(f"# {what}")
        lines.append(curl)
        if equivalent:
            lines.append(f"#   CLI: {equivalent.replace('steward ', cli + ' ', 1)}")
    return "\n".join(lines)


def start_failed(program: str, error: BaseException, err: TextIO) -> int:
    """One line per problem, no traceback: the settings (or the schedule) are what the operator must fix."""
    problems = getattr(error, "problems", None)
    if problems:
        if len(problems) == 1:
            print(f"{program} up: cannot start: invalid setting {problems[0]}", file=err)
        else:
            print(f"{program} up: cannot start: {len(problems)} invalid settings:", file=err)
            for problem in problems:
                print(f"  {problem}", file=err)
    else:
        print(f"{program} up: cannot start: {type(error).__name__}: {error}", file=err)
    return EXIT_START_FAILED


def up(args: argparse.Namespace, program: str, out: TextIO, err: TextIO, stop: threading.Event | None) -> int:
    from sandbox.arm import SandboxConfig
    from sandbox.clock import VirtualClock
    from sandbox.durable.errors import DurableRunnerError
    from sandbox.durable.logs import configure_json_logging
    from sandbox.host.errors import LocalHostError
    from sandbox.host.local import LocalStack
    from steward.domain.errors import StewardError

    paths = state_paths(Path(args.state_dir).resolve())
    root_handler = None if args.quiet_logs else configure_json_logging(
        getattr(logging, args.log_level.upper(), logging.INFO))
    clock = VirtualClock(scale=args.scale)
    principal = args.principal.lower()
    settings = {
        "STEWARD_TEARDOWN_ALLOWED_PRINCIPALS": principal,
        "STEWARD_AUDIT_ALLOWED_PRINCIPALS": principal,
        "STEWARD_REPORTS_DIR": str(paths["reports"].resolve()),
    }
    settings = {k: v for k, v in settings.items() if k not in os.environ}  # an operator's own setting wins
    stack = LocalStack(app="function_app", app_root=REPO, db_path=str(paths["db"]),
                       arm_config=SandboxConfig(clock=clock, state_dir=paths["arm"]),
                       settings=settings, host_port=args.port, keys=stable_keys(paths["keys"]))
    app_logger = logging.getLogger("steward")
    propagates = app_logger.propagate
    quieted = _quiet_app_lines() if args.quiet_logs else ()
    if root_handler is not None:
        # the app prints its own JSON lines (function_app.py configures this very handler; configure() is
        # idempotent): once, not again through the root - from the start, since the start already runs the app
        # (the reconcile timer runs on start-up) and its lines were printed twice until the start returned
        from steward import logs

        logs.configure()
        app_logger.propagate = False
    try:
        stack.start()
    except (StewardError, LocalHostError, DurableRunnerError, ValueError) as error:
        _give_back_logging(root_handler, propagates, quieted)
        return start_failed(program, error, err)
    try:
        described = stack.describe()
        estate = {} if args.no_seed else seed_estate(stack, out)
        stack_file = {**described, "principal": principal, "estate": estate,
                      "keys": {"function": described["keys"]["function"], "master": described["keys"]["master"]}}
        _write_private(paths["stack"], stack_file)
        from sandbox.host.__main__ import _human

        print(_human(described), file=out)
        print(f"Local operator principal  {principal}  (allowed to tear down and audit)", file=out)
        print(examples_text(cli_command(), Path(args.state_dir)), file=out, flush=True)
        stopped = stop or threading.Event()
        if stop is None:
            for signum in (signal.SIGINT, signal.SIGTERM):
                signal.signal(signum, lambda *_: stopped.set())
        stopped.wait()
        return EXIT_OK
    finally:
        stack.stop()
        _give_back_logging(root_handler, propagates, quieted)


def _quiet_app_lines() -> tuple[tuple[logging.Handler, int], ...]:
    """``--quiet-logs``: the app's own JSON handler (``steward.logs``, which function_app.py installs) prints
    warnings and errors only while the stack runs; its INFO lines (the seeding's, the reconcile timer's) printed
    although the flag says they do not. Returns (handler, level) to give back."""
    from steward import logs

    logs.configure()  # idempotent: the handler function_app.py would make, made now so it can be held back
    held = tuple((h, h.level) for h in logging.getLogger("steward").handlers if getattr(h, "_steward", False))
    for handler, _ in held:
        handler.setLevel(logging.WARNING)
    return held


def _give_back_logging(
    root_handler: logging.Handler | None, propagates: bool, quieted: tuple[tuple[logging.Handler, int], ...] = ()
) -> None:
    for handler, level in quieted:
        handler.setLevel(level)
    logging.getLogger("steward").propagate = propagates
    if root_handler is not None:
        logging.getLogger().removeHandler(root_handler)


def _stack_file(args: argparse.Namespace, program: str, err: TextIO) -> dict[str, Any] | None:
    path = state_paths(Path(args.state_dir).resolve())["stack"]
    try:
        return dict(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError):
        print(f"{program} {args.command}: no local stack described in {path}; start one with '{program} up'",
              file=err)
        return None


def env(args: argparse.Namespace, program: str, out: TextIO, err: TextIO) -> int:
    stack_file = _stack_file(args, program, err)
    if stack_file is None:
        return EXIT_START_FAILED
    try:
        token = mint_token(stack_file)
    except TokenError as error:
        print(f"{program} env: {error}", file=err)
        return EXIT_START_FAILED
    print("\n".join(exports(stack_file, token)), file=out)
    return EXIT_OK


def token(args: argparse.Namespace, program: str, out: TextIO, err: TextIO) -> int:
    stack_file = _stack_file(args, program, err)
    if stack_file is None:
        return EXIT_START_FAILED
    try:
        print(mint_token(stack_file, args.principal, args.role), file=out)
    except TokenError as error:
        print(f"{program} token: {error}", file=err)
        return EXIT_START_FAILED
    return EXIT_OK


def main(argv: Sequence[str] | None = None, *, program: str = "steward local", out: TextIO | None = None,
         err: TextIO | None = None, stop: threading.Event | None = None) -> int:
    out, err = out or sys.stdout, err or sys.stderr
    parser = argparse.ArgumentParser(prog=program, description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    starting = commands.add_parser(
        "up", help="start the local stack with a seeded estate; print URLs, keys and curl examples",
        description="Start the ARM sandbox, the Durable runner and the local Functions host around "
                    "function_app.py; seed the demo's estate; print copy-paste curl commands.",
        epilog=f"example: {program} up --scale 60 --port 7071")
    starting.add_argument("--port", type=int, default=7071, help="host port (default 7071, as func start)")
    starting.add_argument("--scale", type=float, default=60.0, help="Azure seconds per real second (default 60)")
    starting.add_argument("--state-dir", default=str(DEFAULT_STATE), help="keys, Durable store, reports (var)")
    starting.add_argument("--principal", default=LOCAL_PRINCIPAL, help="the local operator's object id")
    starting.add_argument("--no-seed", action="store_true", help="start with an empty estate")
    starting.add_argument("--log-level", default="INFO")
    starting.add_argument("--quiet-logs", action="store_true",
                          help="do not print the JSON log lines (the app's warnings and errors still print)")
    exporting = commands.add_parser(
        "env", help="shell exports of the running local stack", description="Print export lines for a shell.",
        epilog=f'example: eval "$({program} env)"')
    exporting.add_argument("--state-dir", default=str(DEFAULT_STATE))
    minting = commands.add_parser(
        "token", help="an access token for the app's routes from the local Entra ID",
        description="Print a bearer token for the app's routes (the local principal's, unless told otherwise).",
        epilog=f'example: curl -H "Authorization: Bearer $({program} token)" ...')
    minting.add_argument("--principal", default=None, help="object id the token names (default: the local one)")
    minting.add_argument("--role", action="append", default=[], help="an app role in the token (repeat)")
    minting.add_argument("--state-dir", default=str(DEFAULT_STATE))
    args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    if args.command == "env":
        return env(args, program, out, err)
    if args.command == "token":
        return token(args, program, out, err)
    return up(args, program, out, err, stop)


if __name__ == "__main__":
    raise SystemExit(main(program="python -m sandbox.playground"))
