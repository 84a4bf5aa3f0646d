"""What a provider handler receives (:class:`Request`) and returns (:class:`Response`)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from sandbox.arm.errors import bad_request


@dataclass(frozen=True)
class Principal:
    """Who called: the object id and tenant named in the sandbox token."""

    object_id: str
    tenant_id: str
    claims: Mapping[str, Any] = field(default_factory=dict)


@dataclass
class Request:
    """One ARM request as a handler sees it.

    ``path`` is the URL path as sent (percent-decoded), ``params`` the values of the route template's
    ``{placeholders}`` (decoded), ``query`` every query parameter (first value wins), ``headers`` keys lower-cased.
    """

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    raw_body: bytes
    base_url: str  # "https://127.0.0.1:PORT"
    target: str = ""  # the raw path and query as received
    principal: Principal | None = None
    params: dict[str, str] = field(default_factory=dict)
    correlation_id: str = ""
    request_id: str = ""
    client_ip: str = "127.0.0.1"
    kind: str = "read"  # read | write | delete | action (throttling bucket and event type)
    #: what the automatic Event Grid event will say (None for reads and event-less routes); a handler may
    #: replace it (``dataclasses.replace``) before starting an LRO, e.g. to name another resource
    event_facts: Any = None
    _json: Any = field(default=None, repr=False)
    _parsed: bool = field(default=False, repr=False)

    @property
    def api_version(self) -> str | None:
        return self.query.get("api-version")

    @property
    def url(self) -> str:
        """The full request URL (base + path + query), as ARM echoes in events and nextLinks."""
        if self.target:
            return self.base_url + self.target
        return self.base_url + self.path + (("?" + urlencode(self.query)) if self.query else "")

    @property
    def raw_path(self) -> str:
        """The path as sent (still percent-encoded)."""
        return self.target.split("?", 1)[0] if self.target else self.path

    @property
    def client_request_id(self) -> str:
        return self.headers.get("x-ms-client-request-id", "")

    def param(self, name: str) -> str:
        return self.params[name]

    def json(self) -> Any:
        """The JSON body (``None`` when empty); a malformed body is ARM's 400 ``InvalidRequestContent``."""
        if not self._parsed:
            self._parsed = True
            if self.raw_body.strip():
                try:
                    self._json = json.loads(self.raw_body)
                except ValueError as exc:
                    raise bad_request(
                        "InvalidRequestContent", f"The request content was invalid and could not be deserialized: {exc}"
                    ) from exc
        return self._json

    def json_object(self) -> dict[str, Any]:
        """The body, required to be a JSON object."""
        body = self.json()
        if not isinstance(body, dict):
            raise bad_request("InvalidRequestContent", "The request content must be a JSON object.")
        return body


@dataclass
class Response:
    """A handler's answer. ``body`` is JSON-serialised (None -> empty body)."""

    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    #: set by handlers that want the emitted event to name another resource than the request path.
    event_resource_id: str | None = None
    #: False suppresses the automatic Event Grid event for this answer.
    raise_event: bool = True


def ok(body: Any = None, headers: Mapping[str, str] | None = None) -> Response:
    return Response(200, body, dict(headers or {}))


def created(body: Any = None, headers: Mapping[str, str] | None = None) -> Response:
    return Response(201, body, dict(headers or {}))


def accepted(headers: Mapping[str, str] | None = None, body: Any = None) -> Response:
    return Response(202, body, dict(headers or {}))


def no_content(headers: Mapping[str, str] | None = None) -> Response:
    return Response(204, None, dict(headers or {}))
