"""The Durable HTTP management API the real ``DurableOrchestrationClient`` calls, and its binding context.

The client (azure-functions-durable 1.7.0) sends, relative to the binding's ``rpcBaseUrl``:

==========  =====================================================  ==============================
POST        ``orchestrators/{name}[/{instanceId}]`` body: input     202 + payload / 409 / 400
GET         ``instances/{id}?showHistory=&showInput=...``          200 / 202 / 400 / 404 + status
GET         ``instances/?createdTimeFrom=&runtimeStatus=...``      200 + list of statuses
DELETE      ``instances/{id}``                                     200 {instancesDeleted} / 404
DELETE      ``instances/?createdTimeFrom=&runtimeStatus=...``      200 {instancesDeleted} / 404
POST        ``instances/{id}/raiseEvent/{event}`` body: data        202 / 404 / 410
POST        ``instances/{id}/terminate?reason=``                    202 / 404 / 410
==========  =====================================================  ==============================

Bodies are posted with aiohttp's ``json=``: the client's already-serialised input text arrives as a JSON
string, which is exactly the text the orchestration receives as input. The same API is served under
``/runtime/webhooks/durabletask/`` (the public webhook, system key ``durabletask_extension`` required),
which is what the check-status response's URLs point at.

The runner's rpc base URL may carry ``c/{correlation-id}/``: the local host builds one binding context
per trigger invocation with that prefix, so the instances a trigger starts inherit its correlation id.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlsplit

from dateutil.parser import parse as parse_datetime

from .errors import InstanceAlreadyExists, InstanceNotFound, InstanceNotRunning, UnknownFunction
from .runner import DurableRunner

RPC_PREFIX = "/durabletask/"
WEBHOOK_PREFIX = "/runtime/webhooks/durabletask/"
DURABLE_SYSTEM_KEY = "durabletask_extension"


@dataclass(frozen=True)
class ApiResponse:
    status: int
    body: Any = None
    headers: tuple[tuple[str, str], ...] = ()

    def encoded(self) -> bytes:
        return b"" if self.body is None else json.dumps(self.body).encode()


class ManagementApi:
    """Request -> response over the runner; mounted by ``ManagementServer`` and by the local host."""

    def __init__(self, runner: DurableRunner, public_base: str, system_key: str | None = None) -> None:
        self.runner = runner
        self.public_base = public_base.rstrip("/")
        self.system_key = system_key

    # ---- URLs ---------------------------------------------------------------------------------------------

    def _suffix(self) -> str:
        hub = self.runner.config.task_hub
        code = f"&code={self.system_key}" if self.system_key else ""
        return f"taskHub={hub}&connection=Storage{code}"

    def management_payload(self, instance_id: str) -> dict[str, str]:
        base = f"{self.public_base}{WEBHOOK_PREFIX.rstrip('/')}/instances/{quote(instance_id, safe='')}"
        q = self._suffix()
        return {
            "id": instance_id,
            "statusQueryGetUri": f"{base}?{q}",
            "sendEventPostUri": f"{base}/raiseEvent/{{eventName}}?{q}",
            "terminatePostUri": f"{base}/terminate?reason={{text}}&{q}",
            "rewindPostUri": f"{base}/rewind?reason={{text}}&{q}",
            "purgeHistoryDeleteUri": f"{base}?{q}",
            "restartPostUri": f"{base}/restart?{q}",
            "suspendPostUri": f"{base}/suspend?reason={{text}}&{q}",
            "resumePostUri": f"{base}/resume?reason={{text}}&{q}",
        }

    def binding_context(self, rpc_base_url: str, correlation_id: str | None = None) -> str:
        """The JSON the host passes a ``durableClient`` binding (what ``DurableOrchestrationClient`` parses)."""
        q = self._suffix()
        web = f"{self.public_base}{WEBHOOK_PREFIX.rstrip('/')}"
        rpc = rpc_base_url if correlation_id is None else f"{rpc_base_url}c/{quote(correlation_id, safe='')}/"
        management = self.management_payload("INSTANCEID")
        management["id"] = "INSTANCEID"
        return json.dumps({
            "taskHubName": self.runner.config.task_hub,
            "creationUrls": {
                "createNewInstancePostUri": f"{web}/orchestrators/{{functionName}}[/{{instanceId}}]?{q}",
                "createAndWaitOnNewInstancePostUri":
                    f"{web}/orchestrators/{{functionName}}[/{{instanceId}}]"
                    f"?timeout={{timeoutInSeconds}}&pollingInterval={{intervalInSeconds}}&{q}",
            },
            "managementUrls": management,
            "baseUrl": web,
            "requiredQueryStringParameters": f"code={self.system_key}" if self.system_key else "",
            "rpcBaseUrl": rpc,
            "httpBaseUrl": "",
            "maxGrpcMessageSizeInBytes": 0,
            "grpcHttpClientTimeout": "00:01:40",
        })

    # ---- dispatch -----------------------------------------------------------------------------------------

    def handle(self, method: str, path: str, query: dict[str, str], body: bytes, *,
               public: bool = False) -> ApiResponse:
        """``path`` is relative to the prefix (``orchestrators/x``, ``instances/id/terminate`` ...)."""
        if public and self.system_key and query.get("code") != self.system_key:
            return ApiResponse(401, {"Message": "a valid durabletask_extension system key (code=) is required"})
        parts = [unquote(p) for p in path.strip("/").split("/")] if path.strip("/") else []
        correlation = None
        if len(parts) >= 2 and parts[0] == "c":
            correlation, parts = parts[1], parts[2:]
        try:
            return self._route(method, parts, query, body, correlation)
        except UnknownFunction as exc:
            return ApiResponse(400, {"ExceptionMessage": str(exc), "Message": str(exc)})
        except InstanceNotFound as exc:
            return ApiResponse(404, {"Message": str(exc)})
        except InstanceNotRunning as exc:
            return ApiResponse(410, {"Message": str(exc)})
        # HttpApiHandler.HandleStartOrchestratorRequestAsync: OrchestrationAlreadyExistsException -> 409 Conflict in
        # current releases (older 2.x releases: 500 "Something went wrong while processing your request")
        except InstanceAlreadyExists as exc:
            return ApiResponse(409, {"Message": str(exc)})
        except ValueError as exc:
            return ApiResponse(400, {"Message": str(exc)})

    def _route(self, method: str, parts: list[str], query: dict[str, str], body: bytes,
               correlation: str | None) -> ApiResponse:
        if method == "POST" and parts[:1] == ["orchestrators"] and len(parts) in (2, 3):
            instance_id = self.runner.start_new(parts[1], parts[2] if len(parts) == 3 else None,
                                                input_json=_payload_text(body), correlation_id=correlation)
            payload = self.management_payload(instance_id)
            return ApiResponse(202, payload, (("Location", payload["statusQueryGetUri"]),))
        if parts[:1] != ["instances"]:
            return ApiResponse(404, {"Message": f"no management operation at /{'/'.join(parts)}"})
        if len(parts) == 1 or (len(parts) == 2 and parts[1] == ""):
            return self._collection(method, query)
        instance_id = parts[1]
        if method == "GET" and len(parts) == 2:
            status = self.runner.status(instance_id, show_history=_flag(query, "showHistory"),
                                        show_input=query.get("showInput", "true").lower() != "false")
            return ApiResponse(_status_code(status["runtimeStatus"]), status)
        if method == "DELETE" and len(parts) == 2:
            deleted = self.runner.purge(instance_id)
            return ApiResponse(200, {"instancesDeleted": deleted}) if deleted else ApiResponse(404, None)
        if method == "POST" and len(parts) == 4 and parts[2] == "raiseEvent":
            self.runner.raise_event(instance_id, parts[3], data_json=_payload_text(body) or "null")
            return ApiResponse(202, None)
        if method == "POST" and len(parts) == 3 and parts[2] == "terminate":
            self.runner.terminate(instance_id, query.get("reason", ""))
            return ApiResponse(202, None)
        return ApiResponse(501, {"Message": f"{method} /{'/'.join(parts)} is not supported by the local runner"})

    def _collection(self, method: str, query: dict[str, str]) -> ApiResponse:
        created_from = _datetime(query.get("createdTimeFrom"))
        created_to = _datetime(query.get("createdTimeTo"))
        statuses = [s for s in query.get("runtimeStatus", "").split(",") if s] or None
        if method == "GET":
            records = self.runner.query(created_from, created_to, statuses, query.get("instanceIdPrefix"))
            return ApiResponse(200, [self.runner.status(r.instance_id, show_input=_flag(query, "showInput"))
                                     for r in records])
        if method == "DELETE":
            deleted = self.runner.purge_where(created_from, created_to, statuses)
            return ApiResponse(200, {"instancesDeleted": deleted}) if deleted else ApiResponse(404, None)
        return ApiResponse(405, {"Message": f"{method} is not allowed on instances/"})


def _payload_text(body: bytes) -> str | None:
    """The JSON text of a posted input or event payload.

    The Python client serialises the value itself and then posts that text with aiohttp's ``json=``, so
    its body is a JSON string holding JSON text: that inner text is the payload. Any other body (a raw
    HTTP caller posting ``{"a": 1}`` or ``"ok"``) is the payload's JSON text as it stands.
    """
    if not body.strip():
        return None
    value = json.loads(body)
    if value is None:
        return None
    if isinstance(value, str):
        try:
            json.loads(value)
        except json.JSONDecodeError:
            return body.decode()
        return value
    return body.decode()


def _flag(query: dict[str, str], name: str) -> bool:
    return query.get(name, "").lower() == "true"


def _datetime(text: str | None) -> datetime | None:
    return parse_datetime(text) if text else None


def _status_code(runtime_status: str) -> int:
    return {"Completed": 200, "Failed": 500, "Terminated": 400}.get(runtime_status, 202)


def query_dict(raw_query: str) -> dict[str, str]:
    return {k: v[-1] for k, v in parse_qs(raw_query, keep_blank_values=True).items()}


class ManagementServer:
    """A loopback HTTP server for the rpc API (``/durabletask/``) and the public webhook paths."""

    def __init__(self, runner: DurableRunner, host: str = "127.0.0.1", port: int = 0,
                 system_key: str | None = None) -> None:
        self.runner = runner
        self._server = ThreadingHTTPServer((host, port), _handler_for(self))
        self._server.daemon_threads = True
        self.origin = f"http://{host}:{self._server.server_address[1]}"
        self.api = ManagementApi(runner, self.origin, system_key)
        self._thread: threading.Thread | None = None

    @property
    def rpc_base_url(self) -> str:
        return f"{self.origin}{RPC_PREFIX}"

    def binding_context(self, correlation_id: str | None = None) -> str:
        return self.api.binding_context(self.rpc_base_url, correlation_id)

    def start(self) -> ManagementServer:
        self._thread = threading.Thread(target=self._server.serve_forever, name="durable-management",
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def _handler_for(server: ManagementServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            return

        def _serve(self) -> None:
            split = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            if split.path.startswith(RPC_PREFIX):
                response = server.api.handle(self.command, split.path[len(RPC_PREFIX):], query_dict(split.query),
                                             body)
            elif split.path.startswith(WEBHOOK_PREFIX):
                response = server.api.handle(self.command, split.path[len(WEBHOOK_PREFIX):],
                                             query_dict(split.query), body, public=True)
            else:
                response = ApiResponse(404, {"Message": f"nothing at {split.path}"})
            write_response(self, response.status, response.encoded(), dict(response.headers),
                           "application/json")

        do_GET = do_POST = do_DELETE = do_PUT = _serve

    return Handler


def write_response(handler: BaseHTTPRequestHandler, status: int, body: bytes, headers: dict[str, str],
                   content_type: str | None) -> None:
    handler.send_response(status)
    if content_type and body and not any(k.lower() == "content-type" for k in headers):
        handler.send_header("Content-Type", content_type)
    for key, value in headers.items():
        if key.lower() != "content-length":
            handler.send_header(key, value)
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    if body and handler.command != "HEAD":
        handler.wfile.write(body)
