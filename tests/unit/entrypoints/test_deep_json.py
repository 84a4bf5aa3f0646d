"""A small body nested deep enough to exhaust the JSON decoder's recursion limit (a few KiB, well under the 16 KiB
body limit) is a 400 problem like any other body that is not a usable JSON object, not an unhandled
RecursionError (a 500 without a problem body, and a traceback in the log for every such request)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any, cast

import pytest

from entrypoints import problems
from entrypoints.caller_checks import (
    MAX_BODY_BYTES,
    Caller,
    RequestRefused,
    TeardownAccessPolicy,
    approval_from_http,
    teardown_request_from_http,
)
from entrypoints.drill_http import drill_request_from_http
from entrypoints.event_grid import handle_delivery, handle_event
from entrypoints.protect_http import protect_request_from_http
from steward import bootstrap
from steward.cloud.publisher import MemoryPublisher

SUB = "00000000-0000-4000-8000-000000000001"
ALLOWED = "11111111-1111-1111-1111-111111111111"
POLICY = TeardownAccessPolicy.of([ALLOWED], [], [SUB])
CALLER = Caller(ALLOWED, None, frozenset())


def deep(field: str, depth: int = 5000) -> bytes:
    body = b'{"' + field.encode() + b'": ' + b"[" * depth + b"]" * depth + b"}"
    assert len(body) < MAX_BODY_BYTES
    return body


def _is_400_problem(refused: RequestRefused) -> None:
    assert refused.status == 400
    answer = problems.refused(refused)
    assert answer.status_code == 400 and problems.code_of(answer) == refused.code


def test_a_deep_teardown_body_is_a_400_problem() -> None:
    with pytest.raises(RequestRefused) as refused:
        teardown_request_from_http(CALLER, deep("vaultId"), POLICY, now=datetime(2026, 11, 25, tzinfo=UTC))
    _is_400_problem(refused.value)


def test_a_deep_approval_body_is_a_400_problem() -> None:
    with pytest.raises(RequestRefused) as refused:
        approval_from_http(CALLER, deep("fingerprint"), POLICY)
    _is_400_problem(refused.value)


def test_a_deep_drill_body_is_a_400_problem() -> None:
    with pytest.raises(RequestRefused) as refused:
        drill_request_from_http(deep("resources"))
    _is_400_problem(refused.value)


def test_a_deep_protect_body_is_a_400_problem() -> None:
    body = b'{"resourceId": ' + b"[" * 2000 + b"]" * 2000 + b"}"  # within the route's 4 KiB
    with pytest.raises(RequestRefused) as refused:
        protect_request_from_http(body)
    _is_400_problem(refused.value)


# ---- the Event Grid doorway: a delivery is rejected (logged, published once, not retried), never raised


def _nested(depth: int) -> dict[str, object]:
    value: dict[str, object] = {"n": 0}
    for _ in range(depth):
        value = {"n": value}
    return value


@pytest.fixture()
def published() -> Iterator[MemoryPublisher]:
    sink = MemoryPublisher()
    bootstrap.use(publisher=sink)
    yield sink
    bootstrap.use()


def test_a_delivery_whose_data_is_too_deep_to_read_is_rejected_not_raised(published: MemoryPublisher) -> None:
    def too_deep() -> object:
        raise RecursionError("maximum recursion depth exceeded while decoding a JSON object")

    delivered = SimpleNamespace(id="e-deep", topic=f"/subscriptions/{SUB}", subject="/subscriptions/x",
                                event_type="Microsoft.Resources.ResourceWriteSuccess", event_time=None,
                                data_version="2", get_json=too_deep)
    outcome = asyncio.run(handle_delivery(delivered, cast(Any, None)))
    assert outcome == "rejected"
    [rejected] = published.events
    assert rejected.event_type == "BackupSteward.Event.Rejected"
    assert rejected.data["eventId"] == "e-deep" and "RecursionError" in rejected.data["reason"]


def test_an_id_and_a_subject_nested_too_deep_to_print_are_rejected_not_raised(published: MemoryPublisher) -> None:
    """Just under the decoder's limit, so the host decodes the body; printing or encoding the id again deeper in
    the stack (a log line, the Rejected event) raised RecursionError out of the trigger."""
    deep = _nested(990)
    raw = {"id": deep, "subject": deep, "eventType": deep, "eventTime": "2026-11-25T08:00:00Z", "data": {}}
    outcome = asyncio.run(handle_event(raw, cast(Any, None)))
    assert outcome == "rejected"
    [rejected] = published.events
    assert rejected.data["eventId"] is None and rejected.subject == "/unknown"
    assert len(json.dumps(rejected.data)) < 6_000
