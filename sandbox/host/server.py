"""The local Functions host: the app's HTTP routes, its Event Grid webhook, its timers, and Durable.

One loopback HTTP server serves

* ``/{routePrefix}/{route}`` - the app's HTTP triggers, called with a real ``func.HttpRequest``; their
  ``func.HttpResponse`` is returned as is. Auth levels are enforced with keys made at start: ``function``
  routes take the function key or the master key (``code`` query parameter or ``x-functions-key`` header),
  ``admin`` routes the master key, ``anonymous`` routes nothing. A refused key answers 401 with an RFC 9457
  problem (``application/problem+json``, code ``FunctionKeyRequired`` when none was sent, ``FunctionKeyInvalid``
  when a wrong one was): the local host says which, where Azure's host answers an empty 401 for both
  (``FunctionInvocationMiddleware`` returns ASP.NET Core's ``UnauthorizedResult``; docs/azure-facts.md).
* ``/runtime/webhooks/eventgrid?functionName=X&code=<eventgrid_extension key>`` - Event Grid delivery:
  the ``SubscriptionValidation`` handshake, then one invocation of the Event Grid trigger per event
  (Event Grid schema; CloudEvents 1.0 too, with its OPTIONS abuse-protection handshake).
* ``/runtime/webhooks/durabletask/...`` (system key ``durabletask_extension``) and ``/durabletask/...``
  (the rpc base the Durable client binding points at) - the Durable management API over the runner.
* ``/admin/functions/{name}`` (master key) - run a non-HTTP function now, as the real host's admin API
  does; a timer trigger fires with ``past_due`` false.

Async functions (every function with a Durable client binding is async) run on one long-lived event
loop, as in the Python worker; sync functions run on the request's thread.

Every request leaves one access log line (logger ``sandbox.host``: method, target, status, milliseconds) with
the key in the target's ``code=`` replaced by ``***``; no log line of the host shows a key.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
import re
import secrets
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

import azure.functions as func
from azure.functions import meta
from azure.functions.eventgrid import EventGridEventInConverter
from azure.functions.timer import TimerRequestConverter

from sandbox.clock import VirtualClock
from sandbox.clock import busy as clock_busy
from sandbox.durable.discovery import EVENT_GRID, TIMER, FunctionCatalog, RegisteredFunction
from sandbox.durable.logs import HOST_LOGGER, log_context
from sandbox.durable.management import (
    DURABLE_SYSTEM_KEY,
    RPC_PREFIX,
    WEBHOOK_PREFIX,
    ApiResponse,
    ManagementApi,
    query_dict,
    write_response,
)
from sandbox.durable.runner import DurableRunner

from .errors import UnknownTrigger
from .ncrontab import NCronSchedule

log = logging.getLogger(HOST_LOGGER)

EVENTGRID_PATH = "/runtime/webhooks/eventgrid"
EVENTGRID_SYSTEM_KEY = "eventgrid_extension"
PAST_DUE_AFTER = timedelta(seconds=60)


@dataclass(frozen=True)
class HostKeys:
    """Keys made at start: the default function key, the master key, and the extensions' system keys."""

    function_key: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    master_key: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    system_keys: Mapping[str, str] = field(default_factory=lambda: {
        DURABLE_SYSTEM_KEY: secrets.token_urlsafe(24), EVENTGRID_SYSTEM_KEY: secrets.token_urlsafe(24)})


@dataclass(frozen=True)
class InvocationContext:
    """What a function receives for a ``context`` parameter (the parts of ``func.Context`` apps use)."""

    invocation_id: str
    function_name: str
    function_directory: str = ""
    trace_context: Any = None
    retry_context: Any = None


@dataclass(frozen=True)
class _Route:
    function: RegisteredFunction
    pattern: re.Pattern[str]


def _route_pattern(template: str) -> re.Pattern[str]:
    out = []
    for segment in template.strip("/").split("/"):
        match = re.fullmatch(r"\{(\*?)([A-Za-z_][A-Za-z0-9_]*)(?::[^}?]+)?(\?)?\}", segment)
        if match is None:
            out.append("/" + re.escape(segment))
        elif match.group(1):
            out.append(f"(?:/(?P<{match.group(2)}>.*))?")
        elif match.group(3):
            out.append(f"(?:/(?P<{match.group(2)}>[^/]+))?")
        else:
            out.append(f"/(?P<{match.group(2)}>[^/]+)")
    return re.compile("^" + "".join(out) + "/?$", re.IGNORECASE)


class LocalHost:
    """Serves one app's triggers on loopback and drives its timers on the virtual clock."""

    def __init__(self, catalog: FunctionCatalog, runner: DurableRunner, *, host: str = "127.0.0.1",
                 port: int = 0, keys: HostKeys | None = None, route_prefix: str = "api",
                 clock: VirtualClock | None = None, run_timers: bool = True) -> None:
        self.catalog = catalog
        self.runner = runner
        self.keys = keys or HostKeys()
        self.route_prefix = route_prefix.strip("/")
        self.clock = clock or runner.clock
        self._server = ThreadingHTTPServer((host, port), _handler_for(self))
        self._server.daemon_threads = True
        self.origin = f"http://{host}:{self._server.server_address[1]}"
        self.durable = ManagementApi(runner, self.origin, self.keys.system_keys[DURABLE_SYSTEM_KEY])
        self._routes = [_Route(f, _route_pattern(f.route or f.name)) for f in catalog.routes]
        self._threads: list[threading.Thread] = []
        self.timers = TimerScheduler(self, self.clock) if run_timers else None

    # ---- lifecycle ----------------------------------------------------------------------------------------

    def start(self) -> LocalHost:
        thread = threading.Thread(target=self._server.serve_forever, name="host-http", daemon=True)
        thread.start()
        self._threads.append(thread)
        if self.timers is not None:
            self.timers.start()
        log.info("local host listening", extra={"origin": self.origin, "routes": len(self._routes)})
        return self

    def stop(self) -> None:
        if self.timers is not None:
            self.timers.stop()
        self._server.shutdown()
        self._server.server_close()
        for thread in self._threads:
            thread.join(timeout=5)

    def __enter__(self) -> LocalHost:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---- URLs ---------------------------------------------------------------------------------------------

    @property
    def api_base(self) -> str:
        return f"{self.origin}/{self.route_prefix}" if self.route_prefix else self.origin

    @property
    def rpc_base_url(self) -> str:
        return f"{self.origin}{RPC_PREFIX}"

    def eventgrid_url(self, function_name: str) -> str:
        return (f"{self.origin}{EVENTGRID_PATH}?functionName={function_name}"
                f"&code={self.keys.system_keys[EVENTGRID_SYSTEM_KEY]}")

    def binding_context(self, correlation_id: str | None = None) -> str:
        """The ``durableClient`` binding JSON, for callers outside a trigger (tests, scripts)."""
        return self.durable.binding_context(self.rpc_base_url, correlation_id)

    # ---- invocation ---------------------------------------------------------------------------------------

    def invoke(self, function: RegisteredFunction, trigger_value: Any, correlation_id: str) -> Any:
        """Call a function as the worker does: trigger argument, Durable client binding, optional context."""
        kwargs: dict[str, Any] = {function.trigger_arg: trigger_value}
        if function.client_arg:
            kwargs[function.client_arg] = self.binding_context(correlation_id)
        parameters = inspect.signature(function.user_function).parameters
        invocation_id = uuid.uuid4().hex
        if "context" in parameters and "context" not in kwargs:
            kwargs["context"] = InvocationContext(invocation_id, function.name)
        with log_context(correlation_id=correlation_id):
            log.info("invoking %s", function.name, extra={"trigger": function.trigger_type,
                                                          "invocation_id": invocation_id})
            if inspect.iscoroutinefunction(function.user_function):
                return run_on_worker_loop(_with_context(function.user_function(**kwargs), correlation_id))
            return function.user_function(**kwargs)

    def fire_timer(self, name: str, past_due: bool = False, scheduled: datetime | None = None) -> None:
        """Run a timer trigger now."""
        function = self._function(name, TIMER)
        now = self.clock.now()
        info = {"Schedule": {"AdjustForDST": True}, "IsPastDue": past_due,
                "ScheduleStatus": {"Last": (scheduled or now).isoformat(), "Next": None,
                                   "LastUpdated": now.isoformat()}}
        timer = TimerRequestConverter.decode(meta.Datum(type="json", value=json.dumps(info)), trigger_metadata=None)
        self.invoke(function, timer, f"timer-{function.name}-{uuid.uuid4().hex[:12]}")

    def deliver_events(self, function_name: str, events: list[dict[str, Any]]) -> None:
        """Invoke an Event Grid trigger once per event (what the webhook does after validation). Every event is
        converted before any is invoked, so a delivery the worker cannot convert invokes nothing."""
        function = self._function(function_name, EVENT_GRID)
        decoded = [(decode_event(item), str(item.get("id") or uuid.uuid4().hex)) for item in events]
        for event, correlation_id in decoded:
            self.invoke(function, event, correlation_id)

    def _function(self, name: str, kind: str) -> RegisteredFunction:
        if not self.catalog.has(name, kind):
            known = sorted(f.name for f in self.catalog.of_kind(kind))
            raise UnknownTrigger(f"no {kind} function named {name!r} (the app registers {known})")
        return self.catalog.get(name, kind)

    # ---- HTTP dispatch ------------------------------------------------------------------------------------

    def _key_refusal(self, level: str, query: Mapping[str, str],
                     headers: Mapping[str, str]) -> tuple[int, bytes, dict[str, str]] | None:
        """None when the request carries a key the route's auth level accepts; else the 401 to answer."""
        if level == "anonymous":
            return None
        given = query.get("code") or headers.get("x-functions-key")
        accepted = (self.keys.master_key,) if level == "admin" else (self.keys.function_key, self.keys.master_key)
        if given in accepted:
            return None
        kind = "the master key" if level == "admin" else "a function key (or the master key)"
        if not given:
            return host_problem(401, "FunctionKeyRequired", "A function key is required",
                                f"this route needs {kind}: send it in the x-functions-key header or the code "
                                "query parameter")
        return host_problem(401, "FunctionKeyInvalid", "The function key is not valid",
                            f"the key sent is not {kind} of this host (keys are printed by `steward local up` and "
                            "kept in var/)")

    def handle(self, method: str, raw_path: str, headers: Mapping[str, str], body: bytes) -> tuple[int, bytes,
                                                                                                   dict[str, str]]:
        split = urlsplit(raw_path)
        query = query_dict(split.query)
        path = split.path
        try:
            if path.startswith(RPC_PREFIX):
                return _api(self.durable.handle(method, path[len(RPC_PREFIX):], query, body))
            if path.startswith(WEBHOOK_PREFIX):
                return _api(self.durable.handle(method, path[len(WEBHOOK_PREFIX):], query, body, public=True))
            if path.rstrip("/") == EVENTGRID_PATH:
                return self._eventgrid(method, query, headers, body)
            if path.startswith("/admin/"):
                return self._admin(method, path, query, headers, body)
            prefix = f"/{self.route_prefix}" if self.route_prefix else ""
            if path.lower().startswith(prefix.lower() + "/") or (prefix and path.lower() == prefix.lower()):
                return self._route(method, path[len(prefix):], query, headers, body=body, raw_path=raw_path)
        except UnknownTrigger as exc:
            return host_problem(404, "NoSuchFunction", "No such function", str(exc))
        return host_problem(404, "NoSuchRoute", "No function serves this route", f"no function serves {path}")

    def _route(self, method: str, path: str, query: Mapping[str, str],
               headers: Mapping[str, str], *, body: bytes, raw_path: str) -> tuple[int, bytes, dict[str, str]]:
        for route in self._routes:
            match = route.pattern.match(path or "/")
            if match is None or method.upper() not in route.function.methods:
                continue
            refused = self._key_refusal(route.function.auth_level, query, headers)
            if refused is not None:
                return refused
            params = {k: v for k, v in match.groupdict().items() if v is not None}
            request = func.HttpRequest(method.upper(), f"{self.origin}{raw_path}", headers=dict(headers),
                                       params=dict(query), route_params=params, body=body)
            correlation = headers.get("x-correlation-id") or headers.get("x-ms-client-request-id") \
                or uuid.uuid4().hex
            result = self.invoke(route.function, request, correlation)
            status, payload, out_headers = _http_result(result)
            out_headers.setdefault("x-correlation-id", correlation)
            return status, payload, out_headers
        return host_problem(404, "NoSuchRoute", "No function serves this route",
                            f"no {method} route of the app matches {path}")

    def _eventgrid(self, method: str, query: Mapping[str, str], headers: Mapping[str, str],
                   body: bytes) -> tuple[int, bytes, dict[str, str]]:
        given = query.get("code")
        if given != self.keys.system_keys[EVENTGRID_SYSTEM_KEY]:
            code, title = ("FunctionKeyInvalid", "The key is not valid") if given else \
                ("FunctionKeyRequired", "A key is required")
            return host_problem(401, code, title, "Event Grid delivers with the eventgrid_extension system key in the "
                                "code query parameter (the webhook URL the host printed)")
        name = query.get("functionName", "")
        self._function(name, EVENT_GRID)
        if method == "OPTIONS":  # CloudEvents abuse protection
            origin = headers.get("webhook-request-origin", "*")
            return 200, b"", {"WebHook-Allowed-Origin": origin, "WebHook-Allowed-Rate": "*"}
        if method != "POST":
            return host_problem(405, "MethodNotAllowed", "Event Grid delivers with POST", f"{method} is not a delivery")
        try:
            payload = json.loads(body or b"[]")
        except (ValueError, RecursionError) as exc:  # a body the host cannot read: 400, Event Grid dead-letters it
            return host_problem(400, "InvalidDelivery", "The delivery is not Event Grid's",
                                f"the delivery is not JSON: {str(exc)[:200]}")
        events = payload if isinstance(payload, list) else [payload]
        if not all(isinstance(item, dict) for item in events):
            return host_problem(400, "InvalidDelivery", "The delivery is not Event Grid's",
                                "an Event Grid delivery is an event object or an array of them")
        kind = headers.get("aeg-event-type", "Notification")
        if kind == "SubscriptionValidation":
            code = (events[0].get("data") or {}).get("validationCode") if events else None
            if not isinstance(code, str):
                return host_problem(400, "InvalidDelivery", "The delivery is not Event Grid's",
                                    "a SubscriptionValidation event carries data.validationCode")
            log.info("event grid subscription validated for %s", name)
            return _json(200, {"validationResponse": code})
        try:
            self.deliver_events(name, events)
        except UndecodableEvent as exc:  # raised before any event was invoked: the delivery changed nothing
            return host_problem(400, "InvalidDelivery", "The delivery is not Event Grid's", str(exc))
        except Exception:
            log.exception("event grid trigger %s failed", name)
            # 500 makes Event Grid retry; the cause is in the log above, not in the answer (it may name a secret)
            return host_problem(500, "TriggerFailed", "The Event Grid trigger failed",
                                f"{name} raised; the host's log has the cause")
        return 200, b"", {}

    def _admin(self, method: str, path: str, query: Mapping[str, str], headers: Mapping[str, str],
               body: bytes) -> tuple[int, bytes, dict[str, str]]:
        refused = self._key_refusal("admin", query, headers)
        if refused is not None:
            return refused
        if path.rstrip("/") == "/admin/host/status":
            return _json(200, {"state": "Running", "id": "local-steward-host"})
        match = re.fullmatch(r"/admin/functions/([^/]+)/?", path)
        if match is None or method != "POST":
            return host_problem(404, "NoSuchRoute", "No admin operation here", f"no admin operation {method} {path}")
        name = match.group(1)
        if self.catalog.has(name, TIMER):
            self.fire_timer(name)
            return 202, b"", {}
        if self.catalog.has(name, EVENT_GRID):
            data = json.loads(body or b"{}").get("input") or "{}"
            self.deliver_events(name, [json.loads(data) if isinstance(data, str) else data])
            return 202, b"", {}
        raise UnknownTrigger(f"no timer or Event Grid function named {name!r}")


_WORKER_LOOP: asyncio.AbstractEventLoop | None = None
_WORKER_LOOP_LOCK = threading.Lock()


def worker_loop() -> asyncio.AbstractEventLoop:
    """The process's one event loop for async functions, as in the Python worker.

    It must be one loop for the life of the process: the Durable client keeps a module-global aiohttp
    session, which only works on the loop that created it.
    """
    global _WORKER_LOOP
    with _WORKER_LOOP_LOCK:
        if _WORKER_LOOP is None:
            _WORKER_LOOP = asyncio.new_event_loop()
            threading.Thread(target=_WORKER_LOOP.run_forever, name="worker-event-loop", daemon=True).start()
        return _WORKER_LOOP


def run_on_worker_loop(coroutine: Any, timeout: float = 300) -> Any:
    """Run a coroutine on the worker loop from any thread and return its result."""
    return asyncio.run_coroutine_threadsafe(coroutine, worker_loop()).result(timeout=timeout)


async def _with_context(coroutine: Any, correlation_id: str) -> Any:
    with log_context(correlation_id=correlation_id):
        return await coroutine


def _http_result(result: Any) -> tuple[int, bytes, dict[str, str]]:
    if isinstance(result, func.HttpResponse):
        headers = dict(result.headers.items())
        if result.mimetype and not any(k.lower() == "content-type" for k in headers):
            headers["Content-Type"] = f"{result.mimetype}; charset={result.charset}"
        return result.status_code, result.get_body() or b"", headers
    if result is None:
        return 204, b"", {}
    text = result if isinstance(result, str) else json.dumps(result)
    return 200, text.encode(), {"Content-Type": "text/plain; charset=utf-8"}


class UndecodableEvent(ValueError):
    """The worker cannot convert the event into ``func.EventGridEvent`` (e.g. an eventTime it cannot parse)."""


def decode_event(item: dict[str, Any]) -> Any:
    try:
        return EventGridEventInConverter.decode(meta.Datum(type="json", value=json.dumps(item)),
                                                trigger_metadata=None)
    except (ValueError, TypeError, KeyError, AttributeError, RecursionError) as exc:
        # RecursionError is no ValueError: the worker's converter json.loads the event (azure-functions
        # ``EventGridEventInConverter.decode``), and an event nested too deep fails there like a bad one
        raise UndecodableEvent(f"the event cannot be converted to an EventGridEvent: {str(exc)[:200]}") from exc


_KEY_IN_TARGET = re.compile(r"([?&]code=)[^&#]*", re.IGNORECASE)


def redact_target(target: str) -> str:
    """A URL or request target with its ``code=`` key replaced: keys go to the operator once, never to a log."""
    return _KEY_IN_TARGET.sub(r"\1***", target)


def _json(status: int, body: Any) -> tuple[int, bytes, dict[str, str]]:
    return status, json.dumps(body).encode(), {"Content-Type": "application/json"}


HOST_PROBLEM_TYPE = "tag:backup-steward,2026:local-host/"


def host_problem(status: int, code: str, title: str, detail: str) -> tuple[int, bytes, dict[str, str]]:
    """The local host's own refusal as RFC 9457 problem details (the app's routes build theirs in
    ``entrypoints/problems.py``; this host is not the app and shares no code with it)."""
    body = {"type": HOST_PROBLEM_TYPE + code, "title": title, "status": status, "detail": detail, "code": code}
    return status, json.dumps(body).encode(), {"Content-Type": "application/problem+json"}


def _api(response: ApiResponse) -> tuple[int, bytes, dict[str, str]]:
    headers = dict(response.headers)
    headers.setdefault("Content-Type", "application/json")
    return response.status, response.encoded(), headers


def _handler_for(host: LocalHost) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            return

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            headers = {k.lower(): v for k, v in self.headers.items()}
            started = time.monotonic()
            target = redact_target(self.path)
            try:
                status, payload, out = host.handle(self.command, self.path, headers, body)
            except Exception:
                # The request target carries the function key (code=): log it redacted. The caller gets a 500
                # with an empty body, as from the Functions host, which stopped returning exception details in
                # HTTP responses (Azure/azure-functions-host issue #2706: "an empty string with 500 response code")
                log.exception("request %s %s failed", self.command, target)
                status, payload, out = 500, b"", {}
            write_response(self, status, payload, out, None)
            elapsed = round((time.monotonic() - started) * 1000, 1)
            log.info("%s %s %s", self.command, target, status,
                     extra={"method": self.command, "target": target, "status": status, "ms": elapsed})

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = do_HEAD = _serve

    return Handler


class TimerScheduler:
    """Fires the app's timer triggers on their NCRONTAB schedules, in virtual time."""

    def __init__(self, host: LocalHost, clock: VirtualClock, poll_seconds: float = 0.05) -> None:
        self.host = host
        self.clock = clock
        self.poll_seconds = poll_seconds
        self.schedules = {f.name: NCronSchedule.parse(f.schedule or "") for f in host.catalog.timers}
        self.next_due: dict[str, datetime] = {}
        self.fired: list[tuple[str, datetime, bool]] = []
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        now = self.clock.now()
        self.next_due = {name: s.next_after(now) for name, s in self.schedules.items()}
        for function in self.host.catalog.timers:
            if function.run_on_startup:
                self._fire(function.name, now, past_due=False)
        self._thread = threading.Thread(target=self._loop, name="host-timers", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _loop(self) -> None:
        while not self._stopping.is_set():
            if not self.next_due:
                self._stopping.wait(self.poll_seconds)
                continue
            name, due = min(self.next_due.items(), key=lambda item: item[1])
            if not self.clock.wait_until(due, timeout=self.poll_seconds):
                continue
            now = self.clock.now()
            self.next_due[name] = self.schedules[name].next_after(now)
            self._fire(name, due, past_due=now - due > PAST_DUE_AFTER)

    def _fire(self, name: str, scheduled: datetime, past_due: bool) -> None:
        self.fired.append((name, scheduled, past_due))
        try:
            with clock_busy(self.clock, f"timer trigger {name}"):  # runnable work on a discrete clock
                self.host.fire_timer(name, past_due=past_due, scheduled=scheduled)
        except Exception:
            log.exception("timer trigger %s failed", name)
