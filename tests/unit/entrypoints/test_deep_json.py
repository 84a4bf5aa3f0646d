"""A small body nested deep enough to exhaust the JSON decoder's recursion limit (a few KiB, well under the 16 KiB
body limit) is a 400 problem like any other body that is not a usable JSON object, not an unhandled
RecursionError (a 500 without a problem body, and a traceback in the log for every such request)."""

from __future__ import annotations

from datetime import UTC, datetime

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
from entrypoints.protect_http import protect_request_from_http

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
