"""``ArmSandbox``: the HTTPS server, the ARM request pipeline, and the Python control surface.

Pipeline for an ARM request: bearer token -> settle due LROs -> route -> injected fault -> token bucket ->
latency -> api-version -> subscription / tenant / resource-group checks -> provider handler -> Event Grid
event -> ARM headers (``x-ms-request-id``, ``x-ms-correlation-request-id``, ``x-ms-ratelimit-remaining-*``).
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import socket
import ssl
import tempfile
import threading
import time
import uuid
from dataclasses import replace
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from sandbox.arm import caller_rbac
from sandbox.arm.certs import make_certificates
from sandbox.arm.config import (
    EventDeliveryConfig,
    FaultConfig,
    LatencyConfig,
    PropagationConfig,
    SandboxConfig,
    ThrottleConfig,
)
from sandbox.arm.context import ProviderContext, SubscriptionDirectory
from sandbox.arm.counters import RequestCounters
from sandbox.arm.entra import AUTHORITY_PATH, EntraIssuer
from sandbox.arm.errors import ArmError, resource_group_not_found, subscription_not_found
from sandbox.arm.events import EventBus, EventCallback, EventSubscription, RequestFacts
from sandbox.arm.faults import FaultInjector
from sandbox.arm.http import Request, Response
from sandbox.arm.ids import ParsedId, parse_id
from sandbox.arm.lro import OperationEngine
from sandbox.arm.paging import Pager
from sandbox.arm.routing import KIND_BY_METHOD, Route, Router
from sandbox.arm.store import ResourceStore, write_json_atomically
from sandbox.arm.throttle import Throttle
from sandbox.arm.tokens import InvalidToken, TokenIssuer
from sandbox.clock import TOKEN_HEADER, DiscreteClock, VirtualClock, let_pollers_inherit, stop_pollers_inheriting
from sandbox.clock import serving as clock_serving

log = logging.getLogger(__name__)

_RESET = object()  # a handler answer meaning "drop the connection"


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._open_lock:
            self._open.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._open_lock:
            self._open.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        """Close kept-alive client connections so their handler threads end with the server."""
        with self._open_lock:
            open_sockets = list(self._open)
        for sock in open_sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "ArmSandbox/1.0"
    sandbox: ArmSandbox  # set on the subclass made per server

    def setup(self) -> None:
        super().setup()
        # headers and body go out in separate writes: without NODELAY, Nagle + delayed ACK add ~40 ms a call
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s " + format, self.address_string(), *args)

    def _serve(self) -> None:
        try:
            self.sandbox._serve(self)
        except (ConnectionError, ssl.SSLError, TimeoutError):
            self.close_connection = True

    do_GET = do_PUT = do_POST = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _serve


def _parse_raw(req: Request) -> ParsedId:
    """The request path's scope, split on the encoded path (an encoded '/' stays inside its name)."""
    raw = parse_id(req.raw_path)
    return ParsedId(
        text=unquote(raw.text),
        subscription_id=unquote(raw.subscription_id) if raw.subscription_id is not None else None,
        resource_group=unquote(raw.resource_group) if raw.resource_group is not None else None,
        namespace=unquote(raw.namespace) if raw.namespace is not None else None,
        types=tuple(unquote(t) for t in raw.types),
        names=tuple(unquote(n) for n in raw.names),
    )


def _collapse_empty_segments(path: str) -> str:
    """``/a//b/`` -> ``/a/b/``: ARM routes on non-empty segments (a trailing slash is kept as sent)."""
    while "//" in path:
        path = path.replace("//", "/")
    return path


def _api_versions_text(versions: frozenset[str]) -> str:
    return ",".join(sorted(versions, reverse=True))


class ArmSandbox:
    """A local Azure Resource Manager over HTTPS. ``ArmSandbox(SandboxConfig(...)).start()``."""

    def __init__(self, config: SandboxConfig | None = None) -> None:
        self.config = config or SandboxConfig()
        cfg = self.config
        saved = self._read_state_file()
        if cfg.clock is not None:
            self.clock: VirtualClock = cfg.clock
        else:
            start = cfg.clock_start
            if start is None and saved and saved.get("clock"):
                start = datetime.fromisoformat(saved["clock"])
            self.clock = VirtualClock(start=start, scale=cfg.scale)
        self.store = ResourceStore()
        self.subscriptions = SubscriptionDirectory(cfg.subscriptions, cfg.extra_tenants)
        self.counters = RequestCounters()
        self.faults = FaultInjector(cfg.faults)
        self.throttle = Throttle(cfg.throttle)
        #: principals whose own RBAC is checked on every request (sandbox/arm/caller_rbac.py); empty: nobody's
        self.rbac_principals: set[str] = set()
        self.latency = cfg.latency
        self.events = EventBus(self.clock, cfg.events)
        self.operations = OperationEngine(self.clock, self.events, self.faults)
        self.operations.retry_after_mode = cfg.retry_after
        self.pager = Pager(cfg.page_size)
        self.router = Router()
        self.ctx = ProviderContext(
            store=self.store,
            clock=self.clock,
            operations=self.operations,
            events=self.events,
            pager=self.pager,
            config=cfg,
            subscriptions=self.subscriptions,
        )
        self._server: _HTTPServer | None = None
        self._threads: list[threading.Thread] = []
        self._stopped = threading.Event()
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._issuer: TokenIssuer | None = None
        self._entra: EntraIssuer | None = None
        self._saved_version = -1
        self.endpoint = ""
        self.ca_bundle = ""
        self.token_url = ""
        if saved:
            self.store.load(saved.get("store", {}))
            for sub in saved.get("subscriptions", []):
                if self.subscriptions.get(sub["subscription_id"]):
                    self.subscriptions.move_to_tenant(sub["subscription_id"], sub["tenant_id"])
        from sandbox.arm import admin
        from sandbox.arm.providers import register_all

        self._admin = admin.AdminApi(self)
        self.providers = register_all(self.router, self.ctx, cfg.providers)

    # -- lifecycle ------------------------------------------------------------------------------
    def start(self) -> ArmSandbox:
        """Start listening; a second call on a started sandbox is a no-op (so ``with sb.start():`` works)."""
        if self._server is not None:
            return self
        cfg = self.config
        if cfg.state_dir is not None:
            directory = Path(cfg.state_dir)
        else:
            self._tmp = tempfile.TemporaryDirectory(prefix="arm-sandbox-")
            directory = Path(self._tmp.name)
        certs = make_certificates(directory)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(certs.server_cert, certs.server_key)
        handler = type("_BoundHandler", (_Handler,), {"sandbox": self})
        server = _HTTPServer((cfg.host, cfg.port), handler)
        server.socket = context.wrap_socket(server.socket, server_side=True, do_handshake_on_connect=False)
        self._server = server
        port = server.server_address[1]
        self.endpoint = f"https://{cfg.host}:{port}"
        self.ca_bundle = str(certs.ca_bundle)
        self.token_url = self.endpoint + "/sandbox/token"
        self._issuer = TokenIssuer(audience=self.endpoint, lifetime_seconds=cfg.token_lifetime_seconds)
        self._entra = EntraIssuer(self.endpoint + AUTHORITY_PATH, client_id=cfg.app_client_id,
                                  app_id_uri=cfg.app_id_uri, lifetime_seconds=cfg.token_lifetime_seconds)
        client_ssl = ssl.create_default_context(cafile=self.ca_bundle)
        self.events._ssl = client_ssl
        self.events.start()
        self._spawn("sandbox-https", lambda: server.serve_forever(poll_interval=0.02))
        self._spawn("sandbox-lro", lambda: self.operations.run_until_stopped(self._stopped))
        if isinstance(self.clock, DiscreteClock):
            # what is due on the sandbox's side is runnable work, and its next due time a deadline
            self.clock.add_probe(self.operations.clock_probe)
            self.clock.add_probe(self.events.clock_probe)
            let_pollers_inherit(self.clock)
        if cfg.state_file is not None:
            self._spawn("sandbox-snapshot", self._snapshot_loop)
        return self

    def _spawn(self, name: str, target: Any) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    def stop(self) -> None:
        self._stopped.set()
        if isinstance(self.clock, DiscreteClock):
            self.clock.remove_probe(self.operations.clock_probe)
            self.clock.remove_probe(self.events.clock_probe)
            stop_pollers_inheriting(self.clock)
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server.close_connections()
        self.events.stop()
        for thread in self._threads:
            thread.join(timeout=5)
        if self.config.state_file is not None:
            self.save_state()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> ArmSandbox:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- client side ----------------------------------------------------------------------------
    def cloud_target(self, principal_id: str | None = None, **kwargs: Any) -> Any:
        """A ``steward.cloud.clients.CloudTarget`` for this sandbox (extra kwargs go to CloudTarget)."""
        from steward.cloud.clients import CloudTarget

        return CloudTarget(
            arm_endpoint=self.endpoint,
            credential_kind="sandbox",
            sandbox_token_url=self.token_url,
            sandbox_principal_id=principal_id or self.config.default_principal_id,
            ca_bundle=self.ca_bundle,
            **kwargs,
        )

    def mint_token(self, principal_id: str | None = None, tenant_id: str | None = None) -> str:
        """A bearer token for ``principal_id`` in ``tenant_id`` (default tenant when None)."""
        assert self._issuer is not None, "start() the sandbox first"
        token, _ = self._issuer.mint(
            principal_id or self.config.default_principal_id, tenant_id or self.default_tenant, int(time.time())
        )
        return token

    @property
    def entra(self) -> EntraIssuer:
        """The local Entra ID that signs RS256 access tokens for the app's own routes (not for ARM)."""
        assert self._entra is not None, "start() the sandbox first"
        return self._entra

    def app_token(self, principal_id: str, tenant_id: str | None = None, **kwargs: Any) -> str:
        """An Entra access token for the Backup Steward API (``roles``, ``audience``, ``now``... as
        :meth:`sandbox.arm.entra.EntraIssuer.claims`)."""
        return self.entra.mint(principal_id, tenant_id or self.default_tenant, **kwargs)

    def app_auth_settings(self) -> dict[str, str]:
        """The app's token-validation settings for this sandbox: authority, tenant, audiences (app id URI and
        client id), and the CA bundle its discovery documents are served under."""
        return {
            "STEWARD_AUTH_AUTHORITY": self.entra.authority,
            "STEWARD_AUTH_TENANTS": self.default_tenant,
            "STEWARD_AUTH_AUDIENCES": f"{self.entra.app_id_uri},{self.entra.client_id}",
        }

    @property
    def default_tenant(self) -> str:
        """The tenant tokens are minted for when none is asked: the first configured subscription's."""
        subs = self.config.subscriptions
        return subs[0].tenant_id if subs else self.config.extra_tenants[0]

    # -- control surface (also under /sandbox/...) ---------------------------------------------
    def subscribe(self, callback: EventCallback, **filters: Any) -> EventSubscription:
        """In-process Event Grid delivery: ``callback(list[dict])`` per batch, at least once."""
        return self.events.subscribe(callback, **filters)

    def subscribe_webhook(self, url: str, **filters: Any) -> EventSubscription:
        return self.events.subscribe_webhook(url, **filters)

    def advance(self, seconds: float) -> datetime:
        """Jump the virtual clock and end every LRO that became due."""
        now = self.clock.advance(seconds)
        self.operations.settle_due()
        return now

    def configure_faults(self, faults: FaultConfig) -> None:
        self.faults.reconfigure(faults)

    def configure_throttle(self, throttle: ThrottleConfig) -> None:
        self.throttle.reconfigure(throttle)

    def configure_latency(self, latency: LatencyConfig) -> None:
        self.latency = latency

    def configure_events(self, delivery: EventDeliveryConfig) -> None:
        self.events.reconfigure(delivery)

    def enforce_caller_rbac(self, principal_id: str, enforce: bool = True) -> None:
        """Sandbox control: from now on every ARM request of ``principal_id`` needs its action in the roles that
        principal holds (ARM's 403 ``AuthorizationFailed`` otherwise; ``sandbox/arm/caller_rbac.py``)."""
        (self.rbac_principals.add if enforce else self.rbac_principals.discard)(principal_id.lower())

    def configure_propagation(self, propagation: PropagationConfig) -> None:
        """RBAC propagation delay, VM write events on accept, VM discovery (config.PropagationConfig)."""
        self.ctx.propagation = propagation

    def configure_role_assignment_limit(self, limit: int) -> None:
        """Role assignments per subscription past which a new one is refused ``RoleAssignmentLimitExceeded``
        (config.SandboxConfig.role_assignments_per_subscription; Azure's is 4,000)."""
        self.ctx.role_assignment_limit = int(limit)

    def move_subscription(self, subscription_id: str, tenant_id: str) -> None:
        """Sandbox-only: move a subscription to another tenant (as a tenant admin would in the portal)."""
        self.subscriptions.move_to_tenant(subscription_id, tenant_id)

    def dump_state(self) -> dict[str, Any]:
        return {
            "clock": self.clock.now().isoformat(),
            "subscriptions": self.subscriptions.dump(),
            "store": self.store.dump(),
        }

    def save_state(self) -> None:
        if self.config.state_file is not None:
            write_json_atomically(Path(self.config.state_file), self.dump_state())
            self._saved_version = self.store.version

    def _read_state_file(self) -> dict[str, Any] | None:
        path = self.config.state_file
        if path is None or not Path(path).exists():
            return None
        data: dict[str, Any] = json.loads(Path(path).read_text())
        return data

    def _snapshot_loop(self) -> None:
        while not self._stopped.wait(0.5):
            if self.store.version != self._saved_version:
                try:
                    self.save_state()
                except OSError:
                    log.exception("saving sandbox state failed")

    # -- request handling -----------------------------------------------------------------------
    def _serve(self, h: _Handler) -> None:
        # on a discrete clock, an in-flight request is runnable work: it holds the token its sender handed over
        # (or one of its own), and the modelled latency below, a clock wait, releases it
        with clock_serving(self.clock, h.headers.get(TOKEN_HEADER), f"ARM {h.command} request"):
            self._serve_request(h)

    def _serve_request(self, h: _Handler) -> None:
        split = urlsplit(h.path)
        # ARM treats an empty path segment as absent: the SDKs' generic resource calls send
        # ``providers/{namespace}//{type}/{name}`` when the parent resource path is empty
        # (azure-mgmt-resource ``resources.get(..., parent_resource_path="", ...)``), and ARM serves them.
        path = _collapse_empty_segments(split.path)
        target = path + ("?" + split.query if split.query else "")
        query = {k: v[0] for k, v in parse_qs(split.query, keep_blank_values=True).items()}
        length = int(h.headers.get("Content-Length") or 0)
        body = h.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in h.headers.items()}
        req = Request(
            method=h.command.upper(),
            path=unquote(path),
            query=query,
            headers=headers,
            raw_body=body,
            base_url=self.endpoint,
            target=target,
            # ARM keeps the caller's x-ms-correlation-request-id as the operation's correlation id (ARM RPC
            # common-api-details.md, client request headers), so the events carry what the caller chose
            correlation_id=headers.get("x-ms-correlation-request-id") or str(uuid.uuid4()),
            request_id=str(uuid.uuid4()),
            client_ip=h.client_address[0],
        )
        lower = req.path.lower()
        if lower.startswith("/sandbox/"):
            answer: Any = self._admin.handle(req)
        elif lower.rstrip("/") == "/metadata/endpoints":
            answer = self._metadata()
        else:
            answer = self._arm(req)
        if answer is _RESET:
            self._reset(h)
            return
        self._write(h, req, answer)

    def _reset(self, h: _Handler) -> None:
        h.close_connection = True
        try:
            h.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            h.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def _write(self, h: _Handler, req: Request, response: Response) -> None:
        payload = b"" if response.body is None else json.dumps(response.body).encode()
        h.send_response(response.status)
        headers = {
            "x-ms-request-id": req.request_id,
            "x-ms-correlation-request-id": req.correlation_id,
            **response.headers,
        }
        if payload:
            headers.setdefault("Content-Type", "application/json; charset=utf-8")
        for name, value in headers.items():
            h.send_header(name, value)
        h.send_header("Content-Length", str(len(payload)))
        h.end_headers()
        if req.method != "HEAD" and payload:
            h.wfile.write(payload)

    def _metadata(self) -> Response:
        endpoint = self.endpoint
        body = {
            "portal": endpoint,
            "authentication": {
                "loginEndpoint": self.endpoint + "/sandbox/login",
                "audiences": [endpoint, endpoint + "/"],
                "tenant": "common",
                "identityProvider": "AAD",
            },
            "media": endpoint,
            "graphAudience": endpoint,
            "graph": endpoint,
            "name": "AzureSandbox",
            "suffixes": {"storage": "core.windows.net", "keyVaultDns": "vault.azure.net"},
            "batch": endpoint,
            "resourceManager": endpoint + "/",
            "vmImageAliasDoc": "",
            "activeDirectoryDataLake": "",
            "sqlManagement": endpoint,
            "microsoftGraphResourceId": endpoint + "/",
            "appInsightsResourceId": endpoint,
            "appInsightsTelemetryChannelResourceId": endpoint,
            "attestationResourceId": endpoint,
            "synapseAnalyticsResourceId": endpoint,
            "logAnalyticsResourceId": endpoint,
            "ossrDbmsResourceId": endpoint,
        }
        return Response(200, body)

    # -- the ARM pipeline -----------------------------------------------------------------------
    def _virtual_epoch(self) -> float:
        return self.clock.now().timestamp()

    def _arm(self, req: Request) -> Any:
        assert self._issuer is not None
        try:
            req.principal = self._issuer.verify(req.headers.get("authorization"), int(time.time()))
        except InvalidToken as exc:
            response = Response(
                401,
                ArmError(401, "InvalidAuthenticationToken", str(exc)).body(),
                {
                    "WWW-Authenticate": (
                        f'Bearer authorization_uri="{self.endpoint}/sandbox/login/{self.default_tenant}", '
                        f'error="invalid_token", error_description="{exc}"'
                    )
                },
            )
            self.counters.count("read" if req.method in ("GET", "HEAD") else "write", 401)
            return response
        self.operations.settle_due()
        match = self.router.resolve(req.method, req.raw_path)
        head_via_get = False
        if match is None and req.method == "HEAD":  # existence checks, answered from the GET route
            match = self.router.resolve("GET", req.raw_path)
            head_via_get = match is not None
        route = match[0] if match else None
        req.kind = route.kind if route else KIND_BY_METHOD.get(req.method, "read")
        if match:
            req.params = match[1]
        parsed = _parse_raw(req)
        scope = parsed.subscription_id or f"tenant:{req.principal.tenant_id}"

        fault = self.faults.decide(req.kind, req.method, req.path, self._virtual_epoch())
        if fault.kind == "reset":
            self.counters.count_reset(req.kind)
            return _RESET
        extra_headers: dict[str, str] = {}
        decision = self.throttle.take(scope, req.principal.object_id, req.kind, self._virtual_epoch())
        scope_word = "subscription" if parsed.subscription_id else "tenant"
        # Every answer says what is left (request-limits-and-throttling.md, "Remaining requests"); a subscription
        # request also reports the global bucket, as real answers do (x-ms-ratelimit-remaining-subscription-
        # global-writes: 2999 beside ...-subscription-writes: 199; the header name is observed, not in the table)
        extra_headers[f"x-ms-ratelimit-remaining-{scope_word}-{decision.bucket}"] = str(decision.remaining)
        if decision.global_remaining is not None:
            extra_headers[f"x-ms-ratelimit-remaining-{scope_word}-global-{decision.bucket}"] = str(
                decision.global_remaining)
        if fault.kind == "throttle" or not decision.allowed:
            wait = decision.retry_after_seconds if not decision.allowed else self.faults.config.storm_seconds
            response = self._throttled(req, scope, decision.bucket, wait)
            response.headers.update(extra_headers)
            self.counters.count(req.kind, 429)
            return response
        if fault.kind == "server_error":
            code = "ServiceUnavailable" if fault.status == 503 else "InternalServerError"
            response = Response(
                fault.status, ArmError(fault.status, code, "The server had an error (sandbox-injected fault).").body()
            )
            response.headers.update(extra_headers)
            self.counters.count(req.kind, fault.status)
            return response
        if self.latency.enabled:
            self.clock.sleep(float(self.latency.seconds.get(req.kind, 0.0)))

        try:
            self._check_caller_rbac(req, route)
            response = self._route(req, route)
        except ArmError as exc:
            response = Response(exc.status, exc.body(), dict(exc.headers))
        if head_via_get:
            response = Response(204 if response.status == 200 else response.status, None, response.headers)
        response.headers.update(extra_headers)
        self.counters.count(req.kind, response.status)
        return response

    def _throttled(self, req: Request, scope: str, bucket: str, wait: float) -> Response:
        assert req.principal is not None
        kind_word = {"reads": "read", "writes": "write", "deletes": "delete"}[bucket]
        err = ArmError(
            429,
            "SubscriptionRequestsThrottled" if not scope.startswith("tenant:") else "TenantRequestsThrottled",
            f"Number of '{kind_word}' requests for subscription '{scope}' actor '{req.principal.object_id}' "
            f"exceeded. Please try again after '{math.ceil(wait)}' seconds after the last request.",
        )
        return Response(429, err.body(), self.operations.retry_after_headers(wait))

    def _check_caller_rbac(self, req: Request, route: Route | None) -> None:
        if not self.rbac_principals or req.principal is None or route is None:
            return
        if req.principal.object_id.lower() not in self.rbac_principals:
            return
        if not req.path.lower().startswith("/subscriptions/"):
            return
        caller_rbac.check(self.store, req.principal.object_id, method=req.method, kind=req.kind, path=req.path,
                          operation=route.operation, raw_body=req.raw_body)

    def _route(self, req: Request, route: Route | None) -> Response:
        parsed = _parse_raw(req)
        version = req.api_version
        if version is None or version == "":
            raise ArmError(
                400,
                "MissingApiVersionParameter",
                "The api-version query parameter (?api-version=) is required for all requests.",
            )
        if route is None:
            return self._no_route(req, parsed)
        if version not in route.api_versions:
            raise self._unsupported_api_version(req, route, parsed, version)
        if route.check_scope:
            self._check_scope(req, parsed)
            self._check_not_moving(req, parsed)
        if route.events and req.kind in ("write", "delete", "action"):
            req.event_facts = self._facts(req, route)
        try:
            response = route.handler(req)
        except ArmError:
            if req.event_facts is not None:
                self.events.raise_resource_event(req.event_facts, "Failed")
            raise
        except Exception as exc:
            log.exception("handler for %s %s crashed", req.method, req.path)
            raise ArmError(500, "InternalServerError", f"The sandbox provider failed: {exc}") from exc
        if req.event_facts is not None and response.raise_event:
            facts = req.event_facts
            if response.event_resource_id:
                facts = replace(facts, resource_id=response.event_resource_id)
            self.events.raise_resource_event(facts, "Succeeded" if response.status < 400 else "Failed")
        return response

    def _unsupported_api_version(self, req: Request, route: Route, parsed: Any, version: str) -> ArmError:
        """ARM's answer to an api-version the route does not serve.

        ``Microsoft.Resources`` itself (subscriptions, groups, deployments, generic resources) answers
        ``InvalidApiVersionParameter`` with the supported list. A resource provider's type answers
        ``NoRegisteredProviderFound``: "No registered resource provider found for location '{l}' and API version
        '{v}' for type '{t}'. The supported api-versions are '…'. The supported locations are '…'." — the text as
        Azure writes it in Azure/azure-cli#28496, #28368, Azure/azure-resource-manager-schemas#33. The sandbox
        keeps no per-type region list, so the message ends after the versions (inferred simplification), and
        the location is the resource's own, else the body's, else ``global`` (inferred).
        """
        if route.namespace.lower() == "microsoft.resources" or not parsed.types:
            return ArmError(
                400,
                "InvalidApiVersionParameter",
                f"The api-version '{version}' is invalid. The supported versions are "
                f"'{_api_versions_text(route.api_versions)}'.",
            )
        location = ""
        if parsed.names:
            top = f"/subscriptions/{parsed.subscription_id}"
            if parsed.resource_group is not None:
                top += f"/resourceGroups/{parsed.resource_group}"
            top += f"/providers/{parsed.namespace}/{parsed.types[0]}/{parsed.names[0]}"
            existing = self.store.get(top) if parsed.subscription_id else None
            location = str((existing or {}).get("location") or "")
        if not location and req.method in ("PUT", "PATCH"):
            try:
                body = req.json()
            except ArmError:
                body = None
            if isinstance(body, dict) and isinstance(body.get("location"), str):
                location = body["location"]
        rtype = "/".join(parsed.types)
        supported = ", ".join(sorted(route.api_versions))
        return ArmError(
            400,
            "NoRegisteredProviderFound",
            f"No registered resource provider found for location '{(location or 'global').lower().replace(' ', '')}' "
            f"and API version '{version}' for type '{rtype}'. The supported api-versions are '{supported}'.",
        )

    def _check_scope(self, req: Request, parsed: Any) -> None:
        assert req.principal is not None
        if parsed.subscription_id is None:
            return
        spec = self.subscriptions.get(parsed.subscription_id)
        if spec is None:
            raise subscription_not_found(parsed.subscription_id)
        if spec.tenant_id.lower() != req.principal.tenant_id.lower():
            raise ArmError(
                401,
                "InvalidAuthenticationTokenTenant",
                f"The access token is from the wrong issuer 'https://sts.windows.net/{req.principal.tenant_id}/'. "
                f"It must match the tenant 'https://sts.windows.net/{spec.tenant_id}/' associated with this "
                "subscription. Please use the authority (URL) "
                f"'https://login.windows.net/{spec.tenant_id}' to get the token.",
            )
        parts = req.raw_path.strip("/").split("/")
        if parsed.resource_group is not None and len(parts) > 4:
            group_id = f"/subscriptions/{parsed.subscription_id}/resourceGroups/{parsed.resource_group}"
            if not self.store.exists(group_id):
                raise resource_group_not_found(parsed.resource_group)

    def _check_not_moving(self, req: Request, parsed: Any) -> None:
        """Writes and deletes in a group that a move holds are refused (ARM locks both groups)."""
        group_id = parsed.resource_group_id
        if req.kind == "read" or group_id is None or group_id.lower() not in self.ctx.locked_groups:
            return
        if req.path.rstrip("/").lower().endswith("/validatemoveresources"):
            return
        raise ArmError(
            409,
            "ScopeLocked",
            f"The scope '{req.path}' cannot perform write operation because following scope(s) are locked: "
            f"'{group_id}'. The resource group is locked while resources are being moved.",
        )

    def _no_route(self, req: Request, parsed: Any) -> Response:
        assert req.principal is not None
        self._check_scope(req, parsed)
        namespace = parsed.namespace
        if self.router.path_known(req.raw_path):
            raise ArmError(
                405,
                "MethodNotAllowed",
                f"The requested resource does not support http method '{req.method}'.",
            )
        if namespace and "/providers/" in req.path.lower() and not self.router.knows_namespace(namespace):
            raise ArmError(
                404,
                "InvalidResourceNamespace",
                f"The resource namespace '{namespace}' is invalid.",
            )
        rtype = "/".join(parsed.types) or req.path
        raise ArmError(
            404,
            "InvalidResourceType",
            f"The resource type '{rtype}' could not be found in the namespace '{namespace or 'Microsoft.Resources'}' "
            f"for api version '{req.api_version}'.",
        )

    def _facts(self, req: Request, route: Route) -> RequestFacts:
        assert req.principal is not None
        path = req.path.rstrip("/")
        if req.kind == "action":
            resource_id, _, action = path.rpartition("/")
            verb = f"{action}/action"
        else:
            resource_id, verb = path, req.kind
        parsed = parse_id(resource_id)
        operation = route.operation or f"{parsed.full_type}/{verb}"
        spec = self.subscriptions.get(parsed.subscription_id or "")
        return RequestFacts(
            kind=req.kind,
            resource_id=resource_id,
            operation_name=operation,
            subscription_id=parsed.subscription_id or "",
            tenant_id=spec.tenant_id if spec else req.principal.tenant_id,
            principal=req.principal,
            correlation_id=req.correlation_id,
            client_request_id=req.client_request_id,
            client_ip=req.client_ip,
            method=req.method,
            url=req.url,
            is_update=req.kind == "write" and self.store.exists(resource_id),
        )
