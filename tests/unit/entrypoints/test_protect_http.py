"""``POST /api/protect`` (issue 19 item 3): the body is one resource id, validated as the drill route validates its
ids; the orchestration's input is what an Event Grid write would give ``protect_resource``."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from entrypoints.caller_checks import RequestRefused
from entrypoints.protect_http import REQUEST_EVENT_TYPE, intent_for, protect_request_from_http
from steward.domain.events import ProtectResource

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
