"""``steward protect|teardown|drill``: the jobs of the app's HTTP API from a shell, in the style of ``az``.

    steward protect RESOURCE_ID                       protect one resource now, wait for its outcome
    steward teardown plan|approve|status|cancel VAULT plan a vault's teardown, approve the plan's fingerprint, ...
    steward drill run [--resource ID] [--dry-run]     a restore drill; steward drill status|cancel DRILL_ID
    steward drill validate DRILL_ID --pass|--fail     answer the drill's validation hook

Where they call (first found wins):

* the API: ``--api URL`` (the app's ``https://<app>.azurewebsites.net/api``), else ``BACKUP_STEWARD_API``, else
  the local stack's ``var/local/stack.json`` (``make local``: it works out of the box);
* the function key: ``--key``, else ``BACKUP_STEWARD_KEY``, else the local stack's;
* the caller's access token: ``BACKUP_STEWARD_TOKEN`` (never a flag: a command line shows in ``ps``), else the
  local stack's Entra ID (the token ``steward local token`` prints), else azure-identity:
  ``DefaultAzureCredential().get_token("<audience>/.default")`` with ``--audience`` or ``BACKUP_STEWARD_AUDIENCE``
  (the application id URI, ``api://<app id>``), validated by the app as every route does (README "Caller
  identity"). The variables start with ``BACKUP_STEWARD_``, not ``STEWARD_``: they are no app settings.

Every request carries the access token and the function key, so: the API must be https, or http on this machine
(the local stack); a redirect is never followed (urllib would send both to the ``Location``, exit 2 naming it);
what an answer says is printed without control characters (tests/hostile/test_cli_credentials.py).

Exit codes, for pipelines: 0 done (and, for protect, teardown and drills, an outcome that is not a failure); 1 the
app refused (403, 404, 409, 429) or the outcome is a failure (a protection ``Failed``/``NoVault``/``Conflict``...,
a teardown not ``deleted``, a drill not ``Succeeded``) or still running at ``--timeout``, or an answer it cannot
read through its record (a drill's report, a teardown's report, custom status or plan); 2 usage or configuration
(bad arguments, no API configured, no credential, 400/401/413/415 answers); 3 unreachable (no connection, the
local Entra ID down, 5xx, 503 ``AuthorityUnavailable``). An error answer (RFC 9457 problem details) is printed
as one line on stderr: ``steward teardown: refused (409 FingerprintMismatch): ...``.

While waiting, a progress line is written to stderr when it is a terminal (``--quiet`` silences it).
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import ssl
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, TextIO

from steward.cli_output import OUTPUTS, write_rows
from steward.domain.drill_records import DrillReport
from steward.domain.errors import InvalidValue, StewardError
from steward.domain.protection import ProtectionShown
from steward.domain.run_status import RunProgress
from steward.domain.teardown.plan import TeardownPlan
from steward.domain.teardown.results import TeardownReport, TeardownShown

EXIT_OK: Final = 0
EXIT_REFUSED: Final = 1
EXIT_USAGE: Final = 2
EXIT_UNREACHABLE: Final = 3
ENV_API: Final = "BACKUP_STEWARD_API"
ENV_KEY: Final = "BACKUP_STEWARD_KEY"
ENV_TOKEN: Final = "BACKUP_STEWARD_TOKEN"  # noqa: S105 - the name of a variable, no secret
ENV_AUDIENCE: Final = "BACKUP_STEWARD_AUDIENCE"
ENV_CA_BUNDLE: Final = "BACKUP_STEWARD_CA_BUNDLE"
#: runtime statuses of Durable Functions after which an instance does not move again
TERMINAL: Final = frozenset({"Completed", "Failed", "Terminated", "Canceled"})
#: protection outcomes that are failures to a pipeline (the others: protected, or the rules say it need not be)
FAILED_PROTECTIONS: Final = frozenset(
    {"Failed", "Conflict", "NoVault", "AmbiguousVault", "Unsupported", "VaultTenantChanged", "ResourceGone"}
)
GOOD_TEARDOWNS: Final = frozenset({"deleted", "already-gone"})
#: statuses the app answers for a usage or configuration problem of the caller (the others refuse the request)
_USAGE_STATUSES: Final = frozenset({400, 401, 413, 415})


class CliError(StewardError):
    """A failure with its exit code and one line for stderr."""

    def __init__(self, exit_code: int, message: str) -> None:
        super().__init__(message)
        self.exit_code = exit_code
        self.message = message


class Problem(CliError):
    """An error answer of the app: RFC 9457 problem details (``code``, ``detail``), or whatever the host sent."""

    def __init__(self, status: int, body: Mapping[str, Any], retry_after: str | None = None) -> None:
        self.status = status
        self.code = printable(str(body.get("code") or ""))[:64] or None
        self.detail = printable(str(body.get("detail") or body.get("title") or "")).strip()[:2000]
        self.body = dict(body)
        if status in _USAGE_STATUSES:
            exit_code, what = EXIT_USAGE, "rejected"
        elif status >= 500:
            exit_code, what = EXIT_UNREACHABLE, "unavailable"
        else:
            exit_code, what = EXIT_REFUSED, "refused"
        named = f"{status} {self.code}" if self.code else str(status)
        wait = f" (retry after {retry_after} s)" if retry_after else ""
        detail = self.detail or ("no detail: the function key is missing or wrong?" if status == 401 else "no detail")
        super().__init__(exit_code, f"{what} ({named}): {detail}{wait}")


TokenSource = Callable[[], str]
#: hosts a plain-http API may be on: the local stack's (the token and the key never cross a network unencrypted)
LOOPBACK_HOSTS: Final = frozenset({"localhost", "127.0.0.1", "::1"})


def printable(text: str) -> str:
    """``text`` without control characters: what an answer says is printed on the caller's terminal, and an answer
    (a hostile or mistaken endpoint's) must not drive it (ANSI escape sequences, carriage returns)."""
    return "".join(c if c.isprintable() else " " for c in text)


def on_this_machine(host: str) -> bool:
    """Whether ``host`` (a URL's host name) is the loopback interface: ``localhost`` or a loopback address
    (127.0.0.0/8, ::1). A DNS name that only starts like one (``127.0.0.1.example.com``) is not."""
    if host in LOOPBACK_HOSTS:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_transport(api: str) -> None:
    """CliError(2) unless ``api`` is https, or http on the loopback interface: every request carries the caller's
    access token and the function key."""
    parts = urllib.parse.urlsplit(api)
    scheme, host = parts.scheme.lower(), (parts.hostname or "").lower()
    if scheme == "https" and host:
        return
    if scheme == "http" and on_this_machine(host):
        return
    if scheme not in ("http", "https") or not host:
        raise CliError(EXIT_USAGE, f"the API must be an http(s) URL, not {printable(api)[:200]!r}")
    raise CliError(EXIT_USAGE, f"the API {printable(api)[:200]!r} is plain http on a host that is not this machine: "
                   "the access token and the function key would cross the network unencrypted; use https")


class _RefuseRedirects(urllib.request.HTTPRedirectHandler):
    """No redirect is followed: urllib would send the request's headers, the bearer token and the function key
    included, to wherever the answer points (another host, or plain http)."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:  # urllib's (req, fp, code, msg, headers, newurl)
        return None


@dataclass
class Connection:
    """Where and as whom the CLI calls the app."""

    api: str
    key: str | None
    token_source: TokenSource
    ca_bundle: str | None = None
    timeout: float = 30.0
    _token: str | None = field(default=None, repr=False)

    def token(self) -> str:
        if self._token is None:
            self._token = self.token_source()
        return self._token

    def call(self, method: str, path: str, body: Any = None) -> Any:
        """One request; the parsed JSON answer, or Problem / CliError(3) when unreachable."""
        url = self.api.rstrip("/") + path
        check_transport(url)  # before the token is asked for or anything is sent
        headers = {"Authorization": f"Bearer {self.token()}", "Accept": "application/json"}
        if self.key:
            headers["x-functions-key"] = self.key
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        request = urllib.request.Request(url, data=data, headers=headers, method=method)  # noqa: S310 - http(s) only
        context = ssl.create_default_context(cafile=self.ca_bundle) if url.lower().startswith("https://") else None
        opener = urllib.request.build_opener(_RefuseRedirects(), urllib.request.HTTPSHandler(context=context))
        try:
            with opener.open(request, timeout=self.timeout) as answer:
                text = answer.read()
        except urllib.error.HTTPError as error:
            if 300 <= error.code < 400:
                where = printable(str(error.headers.get("Location") or "nowhere"))[:200]
                raise CliError(EXIT_USAGE, f"{self.api} answered {error.code}, a redirect to {where}: not followed "
                               "(the token and the key go only to the API configured); configure the URL it "
                               "names if it is the app's") from None
            raw = error.read()
            try:
                parsed = json.loads(raw) if raw else {}
            except ValueError:
                parsed = {}
            raise Problem(error.code, parsed if isinstance(parsed, dict) else {},
                          error.headers.get("Retry-After")) from None
        except (urllib.error.URLError, OSError) as error:
            reason = getattr(error, "reason", error)
            raise CliError(EXIT_UNREACHABLE, f"cannot reach {self.api}: {printable(str(reason))[:300]}") from None
        try:
            return json.loads(text) if text else None
        except ValueError:
            raise CliError(EXIT_UNREACHABLE, f"{method} {path} did not answer JSON") from None


def local_stack(state_dir: Path) -> dict[str, Any] | None:
    """The local stack's description (``make local`` writes it), or None."""
    path = state_dir / "local" / "stack.json"
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return document if isinstance(document, dict) and document.get("api") else None


def check_local_api(api: str, state_dir: Path) -> None:
    """CliError(2) unless the local stack's ``api`` is on this machine. Its file is found from the working directory
    (``--state-dir``, by default ``var``), which whoever wrote the checkout chose, and the CLI falls back to it when
    no API is configured: it would get the caller's token and key (``BACKUP_STEWARD_TOKEN``/``_KEY``)."""
    parts = urllib.parse.urlsplit(api)
    if parts.scheme.lower() in ("http", "https") and on_this_machine((parts.hostname or "").lower()):
        return
    raise CliError(EXIT_USAGE, f"{state_dir / 'local' / 'stack.json'} names the API {printable(api)[:200]!r}, which "
                   "is not on this machine: a local stack's file is not followed elsewhere (it would get your token "
                   f"and key); pass --api (or set {ENV_API}) to call a deployed app")


def azure_identity_token(audience: str, credential: Any = None) -> str:
    """An access token for the app's registration through azure-identity, as ``az`` users have one: the
    ``DefaultAzureCredential`` chain (environment, workload identity, managed identity, Azure CLI, ...)."""
    from azure.core.exceptions import ClientAuthenticationError

    if credential is None:
        from steward.cloud.clients import default_credential

        credential = default_credential()
    scope = audience.rstrip("/") + "/.default"
    try:
        return str(credential.get_token(scope).token)
    except ClientAuthenticationError as error:
        first = str(error.message if hasattr(error, "message") else error).strip().splitlines()[:1]
        raise CliError(EXIT_USAGE, f"no access token for {scope} from azure-identity: {' '.join(first)}") from None


def connect(args: argparse.Namespace, env: Mapping[str, str], credential: Any = None) -> Connection:
    """The connection from flags, then the environment, then the local stack (module docstring)."""
    stack = local_stack(Path(args.state_dir))
    api = args.api or env.get(ENV_API)
    local = stack is not None and (not api or api.rstrip("/") == str(stack["api"]).rstrip("/"))
    if not api:
        if stack is None:
            raise CliError(EXIT_USAGE, f"no API to call: pass --api https://<app>.azurewebsites.net/api or set "
                           f"{ENV_API}; or start the local stack (make local) here")
        api = str(stack["api"])
        check_local_api(api, Path(args.state_dir))
    key = args.key or env.get(ENV_KEY) or (str((stack or {}).get("keys", {}).get("function") or "") if local else "")
    given = env.get(ENV_TOKEN)
    audience = args.audience or env.get(ENV_AUDIENCE)
    source: TokenSource
    if given:
        def source() -> str:
            return str(given)
    elif local and stack is not None:
        def source() -> str:
            from sandbox.playground import TokenError, mint_token

            try:
                return str(mint_token(stack))
            except TokenError as error:
                raise CliError(EXIT_UNREACHABLE, f"the local Entra ID gave no token: {error}") from None
    elif audience:
        def source() -> str:
            return azure_identity_token(audience, credential)
    else:
        raise CliError(EXIT_USAGE, f"no way to get an access token: pass --audience api://<app id> (or set "
                       f"{ENV_AUDIENCE}) for azure-identity, or set {ENV_TOKEN}")
    return Connection(api=api, key=key or None, token_source=source, timeout=args.request_timeout,
                      ca_bundle=args.ca_bundle or env.get(ENV_CA_BUNDLE))


class Progress:
    """One line on stderr, rewritten in place, when stderr is a terminal; nothing otherwise."""

    def __init__(self, err: TextIO, enabled: bool) -> None:
        self.err, self.enabled, self.width = err, enabled, 0

    def show(self, text: str) -> None:
        if self.enabled:
            self.err.write("\r" + text.ljust(self.width))
            self.err.flush()
            self.width = len(text)

    def close(self) -> None:
        if self.enabled and self.width:
            self.err.write("\r" + " " * self.width + "\r")
            self.err.flush()
            self.width = 0


@dataclass
class Waiter:
    """Polls a status route until its instance ends, at most ``timeout`` seconds."""

    connection: Connection
    progress: Progress
    timeout: float
    interval: float = 1.0
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic

    def until_done(self, path: str, label: str, describe: Callable[[dict[str, Any]], str]) -> dict[str, Any]:
        started = self.clock()
        try:
            while True:
                status = self.connection.call("GET", path) or {}
                state = str(status.get("runtimeStatus") or "")
                elapsed = self.clock() - started
                self.progress.show(f"{label}: {state} {describe(status)} [{elapsed:.0f} s]".replace("  ", " "))
                if state in TERMINAL:
                    return dict(status)
                if elapsed >= self.timeout:
                    raise CliError(EXIT_REFUSED, f"{label} is still {state or 'pending'} after {self.timeout:.0f} s; "
                                   f"ask again later with its status command")
                self.sleep(self.interval)
        finally:
            self.progress.close()


def _dict(value: Any) -> dict[str, Any]:
    """``value`` when it is a JSON object, else an empty one (answers are read leniently)."""
    return value if isinstance(value, dict) else {}


def _phase(status: Mapping[str, Any]) -> str:
    """The progress line of a run's custom status, read through its record: a drill's or an audit's
    :class:`RunProgress` (a teardown's status carries its ``phase`` too), a protection's :class:`ProtectionShown`;
    empty when there is none or it is no such record."""
    custom = status.get("customStatus")
    if not isinstance(custom, dict):
        return ""
    try:
        if custom.get("phase"):
            progress = RunProgress.from_record(custom)
            done, total = progress.done, progress.total
            return f"{progress.phase} {done}/{total}" if total is not None else progress.phase
        return ProtectionShown.from_record(custom).status.value if custom.get("status") else ""
    except InvalidValue:
        return ""


def _print_document(out: TextIO, document: Any) -> None:
    json.dump(document, out, indent=2, default=str)
    out.write("\n")


# ---- protect ------------------------------------------------------------------------------------------------

PROTECT_COLUMNS: Final = ("resourceId", "status", "reason", "vaultId", "policy", "rule")


def protect(args: argparse.Namespace, connection: Connection, waiter: Waiter, out: TextIO) -> int:
    started = connection.call("POST", "/protect", {"resourceId": args.resource_id})
    instance_id = str(started["id"])
    if args.no_wait:
        write_rows(out, [{"id": instance_id, "resourceId": started.get("resourceId"), "runtimeStatus": "Pending"}],
                   ("id", "resourceId", "runtimeStatus"), args.output)
        return EXIT_OK
    status = waiter.until_done(f"/protect/{instance_id}", f"protect {args.resource_id.rsplit('/', 1)[-1]}", _phase)
    outcome = status.get("outcome") if isinstance(status.get("outcome"), dict) else None
    if outcome is None:
        raise CliError(EXIT_REFUSED, f"protection {instance_id} ended {status.get('runtimeStatus')} without an "
                       "outcome")
    if args.output == "json":
        _print_document(out, {"id": instance_id, "runtimeStatus": status.get("runtimeStatus"), "outcome": outcome})
    else:
        write_rows(out, [outcome], PROTECT_COLUMNS, args.output)
    return EXIT_REFUSED if str(outcome.get("status")) in FAILED_PROTECTIONS else EXIT_OK


# ---- teardown -----------------------------------------------------------------------------------------------

STEP_COLUMNS: Final = ("kind", "count", "fingerprint")
TEARDOWN_COLUMNS: Final = ("id", "runtimeStatus", "phase", "outcome", "fingerprint", "vaultId")


@dataclass(frozen=True)
class TeardownAnswer:
    """A teardown's status answer (``GET /api/teardowns/{id}``) read through its records: the report (its
    orchestration's output, once it ended), the custom status and the plan (the report's, else the status's
    summary: its steps without their targets); None where the answer has none."""

    id: str
    runtime_status: str | None
    report: TeardownReport | None
    shown: TeardownShown | None
    plan: TeardownPlan | None
    #: each plan step's kind and count as the answer states them (a summary's steps carry no targets to count)
    steps: tuple[tuple[str, int], ...]

    @property
    def fingerprint(self) -> str | None:
        return (self.plan.fingerprint if self.plan else None) or (self.report.fingerprint if self.report else None) \
            or (self.shown.fingerprint if self.shown else None)

    @property
    def outcome(self) -> str | None:
        return self.report.outcome.value if self.report else None


def _read_teardown(status: Any) -> TeardownAnswer:
    """``status`` (a teardown status answer) through :class:`TeardownAnswer`; CliError(1) naming what cannot be
    read, as a drill's unreadable report is refused (a partial or garbled answer is not guessed at)."""
    if not isinstance(status, dict) or not isinstance(status.get("id"), str) or not status["id"]:
        raise CliError(EXIT_REFUSED, f"a teardown's status cannot be read: no id in the answer ({_gist(status)})")
    name = printable(status["id"])[:120]
    runtime = status.get("runtimeStatus")
    if runtime is not None and not isinstance(runtime, str):
        raise CliError(EXIT_REFUSED, f"teardown {name}: its runtimeStatus cannot be read ({_gist(runtime)})")
    parts: dict[str, Any] = {}
    for key, kind, what in (("report", TeardownReport, "report"), ("customStatus", TeardownShown, "custom status"),
                            ("plan", TeardownPlan, "plan")):
        value = status.get(key)
        if value is None:
            parts[key] = None
            continue
        try:
            parts[key] = kind.from_record(value)
        except (ValueError, TypeError, AttributeError) as error:  # InvalidValue is a ValueError; a StepKind too
            raise CliError(EXIT_REFUSED, f"teardown {name}: its {what} cannot be read "
                           f"({printable(str(error))[:300]})") from None
    steps: list[tuple[str, int]] = []
    if parts["plan"] is not None:
        for step, raw in zip(parts["plan"].steps, status["plan"].get("steps") or [], strict=True):
            count = raw.get("count", step.count) if isinstance(raw, dict) else step.count
            if not isinstance(count, int) or isinstance(count, bool) or count < 0:
                raise CliError(EXIT_REFUSED, f"teardown {name}: its plan cannot be read (step {step.kind.value} "
                               f"counts {_gist(count)})")
            steps.append((step.kind.value, count))
    return TeardownAnswer(status["id"], runtime, parts["report"], parts["customStatus"], parts["plan"],
                          tuple(steps))


def _gist(value: Any) -> str:
    return printable(json.dumps(value, default=str))[:120]


def _answer_id(answer: Any, what: str) -> str:
    """The instance id a start or approve answer names (``{"id": ...}``); CliError(1) when it names none."""
    value = answer.get("id") if isinstance(answer, dict) else None
    if not isinstance(value, str) or not value:
        raise CliError(EXIT_REFUSED, f"{what}: the answer cannot be read: it names no instance ({_gist(answer)})")
    return value


def _summary(answer: TeardownAnswer, vault: str | None = None) -> dict[str, Any]:
    report, shown = answer.report, answer.shown
    return {"id": answer.id, "runtimeStatus": answer.runtime_status, "phase": shown.phase if shown else None,
            "outcome": answer.outcome, "fingerprint": answer.fingerprint,
            "vaultId": vault or (report.vault_id if report else None) or (shown.vault_id if shown else None)}


def _pending(instance_id: str) -> TeardownAnswer:
    return TeardownAnswer(instance_id, "Pending", None, None, None, ())


def _teardown_phase(status: Mapping[str, Any]) -> str:
    """The progress line of a teardown's custom status read through :class:`TeardownShown`: the step under way and
    its count while it runs (``delete-vm-items 1/2``), else its phase (``awaiting-approval``, ``waiting-for-purge``
    ...) and the step; empty when it is no such record."""
    custom = status.get("customStatus")
    if not isinstance(custom, dict):
        return ""
    try:
        shown = TeardownShown.from_record(custom)
    except InvalidValue:
        return ""
    words = [] if shown.phase == "running" and shown.current_step else [shown.phase]
    if shown.current_step:
        words.append(shown.current_step)
        step = next((s for s in shown.steps if isinstance(s, dict) and s.get("kind") == shown.current_step), {})
        if isinstance(step.get("done"), int) and isinstance(step.get("total"), int):
            words.append(f"{step['done']}/{step['total']}")
    return printable(" ".join(words))


def _teardown_id(target: str) -> tuple[str, str | None]:
    """(plan or teardown instance id, the vault id when a vault was named); CliError(2) for neither."""
    if target.startswith("teardown-"):
        return target, None
    from steward.domain.errors import InvalidValue
    from steward.domain.teardown import plan_instance_id

    try:
        return plan_instance_id(target), target
    except InvalidValue as error:
        raise CliError(EXIT_USAGE, f"{target!r} is neither a vault id nor a teardown id: {error}") from None


def _run_of(
    connection: Connection, plan: TeardownAnswer, vault: str | None
) -> tuple[dict[str, Any], TeardownAnswer] | None:
    """The run an approval of this plan's fingerprint started, as answered and read (None: not approved over HTTP
    yet)."""
    from steward.domain.teardown import run_instance_id

    fingerprint = plan.fingerprint
    if vault is None or fingerprint is None:
        return None
    try:
        status = connection.call("GET", f"/teardowns/{run_instance_id(vault, fingerprint)}")
    except Problem as problem:
        if problem.status == 404:
            return None
        raise
    return dict(status) if isinstance(status, dict) else {}, _read_teardown(status)


def _show_plan(out: TextIO, status: Mapping[str, Any], answer: TeardownAnswer, vault: str, output: str) -> None:
    fingerprint = answer.fingerprint
    steps = [{"kind": kind, "count": count, "fingerprint": fingerprint} for kind, count in answer.steps]
    if output == "json":
        _print_document(out, {"id": answer.id, "runtimeStatus": answer.runtime_status,
                              "vaultId": vault, "fingerprint": fingerprint, "plan": status.get("plan")})
        return
    if output == "table":
        out.write(f"plan {answer.id}: {len(steps)} step(s), fingerprint {fingerprint}\n")
        out.write(f"approve it: steward teardown approve {vault} --fingerprint {fingerprint}\n")
    write_rows(out, steps, STEP_COLUMNS if output == "csv" else STEP_COLUMNS[:2], output)


def teardown(args: argparse.Namespace, connection: Connection, waiter: Waiter, out: TextIO) -> int:
    if args.action == "plan":
        _teardown_id(args.vault)  # a usage error before any request
        started = connection.call("POST", "/teardowns", {"vaultId": args.vault, "dryRun": True})
        instance_id = _answer_id(started, "steward teardown plan")
        if args.no_wait:
            write_rows(out, [_summary(_pending(instance_id), args.vault)], TEARDOWN_COLUMNS, args.output)
            return EXIT_OK
        status = waiter.until_done(f"/teardowns/{instance_id}", "plan", _teardown_phase)
        planned = _read_teardown(status)
        if planned.outcome not in ("planned", "replanned") or planned.plan is None:
            write_rows(out, [_summary(planned, args.vault)], TEARDOWN_COLUMNS, args.output)
            return EXIT_REFUSED
        _show_plan(out, status, planned, args.vault, args.output)
        return EXIT_OK
    instance_id, vault = _teardown_id(args.vault)
    answered = connection.call("GET", f"/teardowns/{instance_id}")
    current = _read_teardown(answered)
    if args.action == "status":
        run = _run_of(connection, current, vault)
        document, shown = run if run is not None else (dict(answered), current)
        if args.output == "json":
            _print_document(out, document)
        else:
            write_rows(out, [_summary(shown, vault)], TEARDOWN_COLUMNS, args.output)
        return EXIT_OK
    if args.action == "cancel":
        run = _run_of(connection, current, vault)
        target = run[1] if run is not None and run[1].runtime_status not in TERMINAL else current
        answer = connection.call("POST", f"/teardowns/{target.id}/cancel")
        cancelled = _answer_id(answer, "steward teardown cancel")
        write_rows(out, [{"id": cancelled, "cancelRequested": True}], ("id", "cancelRequested"), args.output)
        return EXIT_OK
    # approve
    fingerprint = current.fingerprint
    chosen = args.fingerprint or (fingerprint if args.yes else None)
    if not chosen:
        raise CliError(EXIT_USAGE, f"name the fingerprint you reviewed: --fingerprint {fingerprint or 'sha256:...'}"
                       " (or --yes to approve the plan as it is now)")
    answer = connection.call("POST", f"/teardowns/{instance_id}/approve", {"fingerprint": chosen})
    run_id = _answer_id(answer, "steward teardown approve")
    if args.no_wait:
        write_rows(out, [_summary(_pending(run_id), vault)], TEARDOWN_COLUMNS, args.output)
        return EXIT_OK
    status = waiter.until_done(f"/teardowns/{run_id}", "teardown", _teardown_phase)
    ran = _read_teardown(status)
    if args.output == "json":
        _print_document(out, status)
    else:
        write_rows(out, [_summary(ran, vault)], TEARDOWN_COLUMNS, args.output)
    return EXIT_OK if ran.outcome in GOOD_TEARDOWNS else EXIT_REFUSED


# ---- drills -------------------------------------------------------------------------------------------------

DRILL_COLUMNS: Final = ("resourceId", "outcome", "rtoSeconds", "reason")


def _drill_rows(report: DrillReport) -> list[dict[str, Any]]:
    if report.dry_run:
        return [{"resourceId": r, "outcome": "chosen (dry run)"} for r in report.chosen]
    return [dict(r) for r in report.results if isinstance(r, dict)]


def _drill_report(status: Mapping[str, Any]) -> DrillReport | None:
    """The drill's report (its orchestration's output) read through its record; None while it runs."""
    report = status.get("report")
    if not isinstance(report, dict):
        return None
    try:
        return DrillReport.from_record(report)
    except InvalidValue as error:
        raise CliError(EXIT_REFUSED, f"drill {status.get('id')}: its report cannot be read ({error})") from None


def drill(args: argparse.Namespace, connection: Connection, waiter: Waiter, out: TextIO) -> int:
    if args.action == "run":
        body: dict[str, Any] = {"dryRun": bool(args.dry_run)}
        if args.resource:
            body["resources"] = list(args.resource)
        if args.subscription:
            body["subscriptions"] = list(args.subscription)
        started = connection.call("POST", "/drills", body)
        drill_id = str(started["id"])
        if args.no_wait:
            write_rows(out, [{"id": drill_id, "runtimeStatus": "Pending"}], ("id", "runtimeStatus"), args.output)
            return EXIT_OK
        status = waiter.until_done(f"/drills/{drill_id}", "drill", _phase)
    elif args.action == "status":
        status = dict(connection.call("GET", f"/drills/{args.drill_id}"))
    elif args.action == "validate":
        # the user validation hook's answer: 202 while the drill waits for it, 409 DrillNotAwaitingValidation else
        verdict: dict[str, Any] = {"result": args.result}
        if args.detail is not None:
            verdict["detail"] = args.detail
        answer = _dict(connection.call("POST", f"/drills/{args.drill_id}/validation", verdict))
        row = {"id": answer.get("id"), "resourceId": answer.get("resourceId"), "result": answer.get("result")}
        if args.output == "json":
            _print_document(out, answer)
        else:
            write_rows(out, [row], ("id", "resourceId", "result"), args.output)
        return EXIT_OK
    else:
        answer = connection.call("POST", f"/drills/{args.drill_id}/cancel")
        write_rows(out, [{"id": answer.get("id"), "cancelRequested": True}], ("id", "cancelRequested"), args.output)
        return EXIT_OK
    report = _drill_report(status)
    if args.output == "json":
        _print_document(out, status)
    elif report is None:
        write_rows(out, [{"id": status.get("id"), "runtimeStatus": status.get("runtimeStatus"),
                          "phase": _phase(status)}], ("id", "runtimeStatus", "phase"), args.output)
    else:
        write_rows(out, _drill_rows(report), DRILL_COLUMNS, args.output)
    if args.action == "status":
        return EXIT_OK
    if status.get("runtimeStatus") != "Completed" or report is None or report.cancelled:
        return EXIT_REFUSED
    failed = [r for r in report.results if str(r.get("outcome")) != "Succeeded"]
    return EXIT_REFUSED if failed else EXIT_OK


# ---- parsers ------------------------------------------------------------------------------------------------


def _common() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    where = common.add_argument_group("connection (default: the environment, else the local stack)")
    where.add_argument("--api", help=f"the app's API base URL, .../api (env {ENV_API})")
    where.add_argument("--key", help=f"the function key (env {ENV_KEY})")
    where.add_argument("--audience", help=f"application id URI to get a token for with azure-identity, "
                       f"api://<app id> (env {ENV_AUDIENCE}; {ENV_TOKEN} gives a token directly)")
    where.add_argument("--ca-bundle", help=f"CA bundle for https (env {ENV_CA_BUNDLE})")
    where.add_argument("--state-dir", default="var", help="where the local stack keeps var/local/stack.json")
    where.add_argument("--request-timeout", type=float, default=30.0, help="seconds per request (default 30)")
    common.add_argument("--output", "-o", choices=OUTPUTS, default="table", help="table (default), json or csv")
    common.add_argument("--quiet", "-q", action="store_true", help="no progress line on stderr")
    return common


def _waiting(parser: argparse.ArgumentParser, seconds: int) -> None:
    parser.add_argument("--no-wait", action="store_true", help="start it and print its id; do not wait")
    parser.add_argument("--timeout", type=float, default=seconds, help=f"seconds to wait (default {seconds})")


def protect_parser(program: str = "steward protect") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=program, parents=[_common()], formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Protect one resource now: POST /api/protect starts protect_resource (as its write event "
                    "would), then the outcome the rules decided. Exit 1 for a failed outcome (Failed, NoVault, "
                    "Conflict, AmbiguousVault, ...).",
        epilog=f"example:\n  {program} /subscriptions/$SUB/resourceGroups/rg-app/providers/"
               "Microsoft.Compute/virtualMachines/vm-web-1 --output json")
    parser.add_argument("resource_id", metavar="RESOURCE_ID", help="the ARM id of a VM, disk, storage account or "
                        "PostgreSQL flexible server")
    _waiting(parser, 900)
    return parser


def teardown_parser(program: str = "steward teardown") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=program, formatter_class=argparse.RawDescriptionHelpFormatter,
        description="A vault's teardown: plan it (a dry run: nothing deleted), approve the plan's fingerprint (the "
                    "teardown runs), follow it, cancel it (what was done is compensated where it can be).",
        epilog=f"example:\n  {program} plan $VAULT\n  {program} approve $VAULT --fingerprint sha256:...\n"
               f"  {program} status $VAULT --output json")
    actions = parser.add_subparsers(dest="action", required=True, metavar="plan|approve|status|cancel")
    common = _common()
    target = "VAULT (its ARM id) or a teardown id"
    plan = actions.add_parser("plan", parents=[common], help="plan a vault's teardown (dry run)",
                              formatter_class=argparse.RawDescriptionHelpFormatter,
                              epilog=f"example:\n  {program} plan /subscriptions/$SUB/resourceGroups/rg-legacy/"
                                     "providers/Microsoft.RecoveryServices/vaults/rsv-legacy")
    plan.add_argument("vault", metavar="VAULT", help="the vault's ARM id")
    _waiting(plan, 600)
    approve = actions.add_parser("approve", parents=[common], help="approve the plan's fingerprint: it runs",
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=f"example:\n  {program} approve $VAULT --fingerprint sha256:9c...")
    approve.add_argument("vault", metavar="VAULT", help=target)
    approve.add_argument("--fingerprint", help="the fingerprint of the plan you reviewed (sha256:...)")
    approve.add_argument("--yes", action="store_true", help="approve the plan as it is now, without naming it")
    _waiting(approve, 3600)
    status = actions.add_parser("status", parents=[common], help="the plan, or the run of its approval",
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=f"example:\n  {program} status $VAULT --output json")
    status.add_argument("vault", metavar="VAULT", help=target)
    cancel = actions.add_parser("cancel", parents=[common], help="cancel the running teardown of the vault",
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=f"example:\n  {program} cancel $VAULT")
    cancel.add_argument("vault", metavar="VAULT", help=target)
    return parser


def drill_parser(program: str = "steward drill") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=program, formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Restore drills: restore out of place, validate, delete what was restored; the RTO measured.",
        epilog=f"example:\n  {program} run --resource $VM --dry-run\n  {program} status drill-...\n"
               f"  {program} validate drill-... --pass")
    actions = parser.add_subparsers(dest="action", required=True, metavar="run|status|validate|cancel")
    common = _common()
    run = actions.add_parser("run", parents=[common], help="drill named resources, or everything due",
                             formatter_class=argparse.RawDescriptionHelpFormatter,
                             epilog=f"example:\n  {program} run --resource /subscriptions/$SUB/resourceGroups/rg-app/"
                                    "providers/Microsoft.Compute/virtualMachines/vm-web-1 --dry-run")
    run.add_argument("--resource", action="append", default=[], help="a protected resource's ARM id (repeat)")
    run.add_argument("--subscription", action="append", default=[], help="only this subscription (repeat)")
    run.add_argument("--dry-run", action="store_true", help="only say what would be drilled")
    _waiting(run, 3600)
    status = actions.add_parser("status", parents=[common], help="a drill's status and report",
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=f"example:\n  {program} status drill-0123abcd --output json")
    status.add_argument("drill_id", metavar="DRILL_ID")
    validate = actions.add_parser(
        "validate", parents=[common], formatter_class=argparse.RawDescriptionHelpFormatter,
        help="answer a drill's validation hook: pass or fail the restore it waits on",
        description="A drill rule with validationHook waits, after BackupSteward.Drill.RestoreReady, for a pass or "
                    "a fail of the restored resources (POST /api/drills/{id}/validation); the drill deletes them "
                    "after either. Exit 1 when the drill is not waiting (409 DrillNotAwaitingValidation).",
        epilog=f"example:\n  {program} validate drill-0123abcd --fail --detail 'checksum mismatch on /data'")
    validate.add_argument("drill_id", metavar="DRILL_ID")
    verdict = validate.add_mutually_exclusive_group(required=True)
    verdict.add_argument("--pass", dest="result", action="store_const", const="pass",
                         help="the restored resources are good")
    verdict.add_argument("--fail", dest="result", action="store_const", const="fail",
                         help="they are not: the drill ends ValidationFailed")
    validate.add_argument("--detail", help="why (kept in the drill's report; at most 4000 characters)")
    cancel = actions.add_parser("cancel", parents=[common], help="cancel a running drill",
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=f"example:\n  {program} cancel drill-0123abcd")
    cancel.add_argument("drill_id", metavar="DRILL_ID")
    return parser


JOBS: Final[Mapping[str, tuple[Callable[[str], argparse.ArgumentParser], Callable[..., int]]]] = {
    "protect": (protect_parser, protect),
    "teardown": (teardown_parser, teardown),
    "drill": (drill_parser, drill),
}


def main(
    job: str,
    argv: Sequence[str],
    *,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
    env: Mapping[str, str] | None = None,
    credential: Any = None,
    sleep: Callable[[float], None] = time.sleep,
    interval: float = 1.0,
) -> int:
    out, err = stdout or sys.stdout, stderr or sys.stderr
    program = f"steward {job}"
    make_parser, run = JOBS[job]
    parser = make_parser(program)
    try:
        args = parser.parse_args(list(argv))
    except SystemExit as exit_:  # argparse: 0 for --help, 2 for a usage error (printed already)
        return int(exit_.code or 0)
    try:
        connection = connect(args, os.environ if env is None else env, credential)
        progress = Progress(err, enabled=not args.quiet and err.isatty())
        waiter = Waiter(connection, progress, float(getattr(args, "timeout", 0) or 0), interval, sleep)
        return int(run(args, connection, waiter, out))
    except CliError as error:
        print(f"{program}: {error.message}", file=err)
        return error.exit_code
