"""A managed-identity token endpoint for the sandbox, in the App Service / Azure Functions form, so that any
Azure client that supports managed identity and a custom cloud can log in to the sandbox unchanged.

App Service and Functions give an app ``IDENTITY_ENDPOINT`` (a plain-HTTP loopback URL) and ``IDENTITY_HEADER``
(a secret). A client sends ``GET {IDENTITY_ENDPOINT}?resource={resource}&api-version=2019-08-01`` with the
header ``X-IDENTITY-HEADER: {IDENTITY_HEADER}`` (optionally ``client_id``/``principal_id``/``mi_res_id`` for a
user-assigned identity) and gets ``{"access_token", "expires_on", "resource", "token_type", "client_id"}``
(source: App Service docs, ``app-service/overview-managed-identity.md``, "REST endpoint reference"; the same
request azure-identity's ``AppServiceCredential``/MSAL send). A missing or wrong header is refused (the docs:
the header "is used to help mitigate server-side request forgery (SSRF) attacks"); the status and body of that
refusal are **inferred** (400 with an error text).

The tokens are the sandbox's own ARM tokens for the identity's principal, valid against the sandbox's ARM
endpoint. Only loopback is served.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
import uuid
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

#: the api-version App Service's identity endpoint speaks (the docs' "2019-08-01")
API_VERSION = "2019-08-01"
PATH = "/msi/token"

Mint = Callable[[str, list[str]], tuple[str, int]]


class IdentityEndpoint:
    """``IdentityEndpoint(mint, principal_id).start()``; then ``env()`` gives ``IDENTITY_ENDPOINT``/``_HEADER``."""

    def __init__(self, mint: Mint, principal_id: str, client_id: str | None = None) -> None:
        self.mint = mint
        self.principal_id = principal_id
        # An identity's client (application) id and its object (principal) id differ in Entra ID; making them
        # equal would hide an appid-vs-oid mix-up in a client. Derived, so it is stable for one principal.
        self.client_id = client_id or str(uuid.uuid5(uuid.NAMESPACE_URL, f"sandbox-msi-client:{principal_id}"))
        self.secret = secrets.token_urlsafe(24)
        self.requests = 0
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        assert self._server is not None, "start() first"
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}{PATH}"

    def env(self) -> dict[str, str]:
        return {"IDENTITY_ENDPOINT": self.url, "IDENTITY_HEADER": self.secret}

    def start(self) -> IdentityEndpoint:
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                return None

            def do_GET(self) -> None:
                status, body = endpoint.answer(self.path, {k.lower(): v for k, v in self.headers.items()})
                payload = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, name="sandbox-msi", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def answer(self, target: str, headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
        self.requests += 1
        split = urlsplit(target)
        query = {k: v[0] for k, v in parse_qs(split.query).items()}
        if split.path.rstrip("/").lower() != PATH:
            return 404, {"error": "not_found", "error_description": f"no identity endpoint at {split.path}"}
        if not secrets.compare_digest(headers.get("x-identity-header", ""), self.secret):
            return 400, {"error": "invalid_request", "error_description": "X-IDENTITY-HEADER is missing or wrong"}
        if query.get("api-version") != API_VERSION:
            return 400, {"error": "invalid_request", "error_description": f"api-version must be {API_VERSION}"}
        resource = query.get("resource")
        if not resource:
            return 400, {"error": "invalid_request", "error_description": "the resource parameter is required"}
        wanted = query.get("client_id") or query.get("principal_id")
        if wanted and wanted.lower() not in (self.client_id.lower(), self.principal_id.lower()):
            return 400, {"error": "invalid_request", "error_description": f"no identity {wanted} on this app"}
        token, expires = self.mint(self.principal_id, [resource.rstrip("/") + "/.default"])
        return 200, {
            "access_token": token,
            "expires_on": str(expires),
            "resource": resource,
            "token_type": "Bearer",
            "client_id": self.client_id,
        }

    def __enter__(self) -> IdentityEndpoint:
        return self

    def __exit__(self, *args: object) -> None:
        self.stop()


def sandbox_identity_endpoint(sandbox: Any, principal_id: str | None = None) -> IdentityEndpoint:
    """An identity endpoint that mints the ``sandbox``'s ARM tokens for ``principal_id`` (default principal)."""
    principal = principal_id or sandbox.config.default_principal_id

    def mint(who: str, scopes: list[str]) -> tuple[str, int]:
        issuer = sandbox._issuer
        assert issuer is not None, "start() the sandbox first"
        return issuer.mint(who, sandbox.default_tenant, int(time.time()), scopes)  # type: ignore[no-any-return]

    return IdentityEndpoint(mint, principal)
