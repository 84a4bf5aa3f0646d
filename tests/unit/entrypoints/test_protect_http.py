"""``POST /api/protect`` (issue 19 item 3): the body is one resource id, validated as the drill route validates its
ids; the orchestration's input is what an Event Grid write would give ``protect_resource``."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import azure.functions as func
import pytest

from entrypoints import protect_http, routes
from entrypoints.caller_checks import RequestRefused
from entrypoints.protect_http import REQUEST_EVENT_TYPE, intent_for, protect_request_from_http
from steward import bootstrap
from steward.domain.events import ProtectResource
from steward.settings import Settings

VM = (
    "/subscriptions/00000000-0000-4000-8000-000000000001/resourceGroups/rg-app/providers/Microsoft.Compute"
    "/virtualMachines/vm-1"
)


def test_a_resource_id_is_accepted_and_normalised() -> None:
    assert protect_request_from_http(json.dumps({"resourceId": VM}).encode()) == VM


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        (b"", 400, "InvalidJson"),
        (b"[]", 400, "InvalidRequest"),
        (b"{}", 400, "InvalidResourceId"),
        (json.dumps({"resourceId": VM, "vault": "x"}).encode(), 400, "UnknownField"),
        (json.dumps({"resourceId": "/subscriptions/nope"}).encode(), 400, "InvalidResourceId"),
        (json.dumps({"resourceId": 7}).encode(), 400, "InvalidResourceId"),
        (b" " * 5000, 413, "BodyTooLarge"),
    ],
)
def test_a_bad_body_is_refused_naming_what_is_wrong(body: bytes, status: int, code: str) -> None:
    with pytest.raises(RequestRefused) as refused:
        protect_request_from_http(body)
    assert (refused.value.status, refused.value.code) == (status, code)


def test_the_intent_is_what_the_event_doorway_starts_protect_resource_with() -> None:
    now = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
    intent = intent_for(VM, "protect-" + "a" * 24, "operator-oid", now)
    parsed = ProtectResource.from_record(intent)  # the same record shape the classifier's intent has
    assert str(parsed.resource_id) == VM
    assert parsed.origin.event_type == REQUEST_EVENT_TYPE and parsed.origin.correlation_id == "protect-" + "a" * 24
    assert intent["requestedBy"] == "operator-oid" and intent["kind"] == "protect"


class Client:
    def __init__(self) -> None:
        self.started: list[tuple[str, str, Any]] = []

    async def start_new(self, name: str, instance_id: str, payload: Any) -> str:
        self.started.append((name, instance_id, payload))
        return instance_id


def _post(client: Client, body: bytes) -> func.HttpResponse:
    req = func.HttpRequest("POST", "https://app.example/api/protect", headers={"content-type": "application/json"},
                           body=body)
    run = protect_http.protect_http_start._function.get_user_function().__wrapped__  # below the durable binding
    answer: func.HttpResponse = asyncio.run(run(req, client))
    return answer


@pytest.fixture
def allowed(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    managed = ("00000000-0000-4000-8000-000000000001",)
    bootstrap.use(settings=Settings(teardown_rate_per_minute=2, subscriptions=managed))
    monkeypatch.setattr(routes, "allowed_caller", lambda req: "operator-oid")
    yield
    bootstrap.use()


def test_the_route_starts_protect_resource_then_meters_the_caller(allowed: None) -> None:
    client = Client()
    first = _post(client, json.dumps({"resourceId": VM}).encode())
    assert first.status_code == 202
    answer = json.loads(first.get_body())
    assert first.headers["Location"] == f"https://app.example/api/protect/{answer['id']}"
    [(name, instance_id, payload)] = client.started
    assert (name, instance_id, payload["resourceId"]) == ("protect_resource", answer["id"], VM)
    assert _post(client, json.dumps({"resourceId": VM}).encode()).status_code == 202
    refused = _post(client, json.dumps({"resourceId": VM}).encode())
    assert refused.status_code == 429 and json.loads(refused.get_body())["code"] == "TooManyRequests"
    assert len(client.started) == 2


def test_a_resource_outside_the_managed_subscriptions_is_refused(allowed: None) -> None:
    outside = VM.replace("000000000001", "000000000009")
    refused = _post(Client(), json.dumps({"resourceId": outside}).encode())
    assert refused.status_code == 403 and json.loads(refused.get_body())["code"] == "OutsideSubscriptions"
    assert refused.headers["Content-Type"] == "application/problem+json"
