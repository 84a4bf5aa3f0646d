"""``entrypoints.problems``: the one error shape (RFC 9457 problem details) and its catalogue of codes."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest

from entrypoints import problems
from entrypoints.caller_checks import RequestRefused

REPO = Path(__file__).resolve().parents[3]
#: the calls that name a problem code as their second argument
RAISERS = {"RequestRefused", "_Refused", "response"}


def codes_in_code() -> set[str]:
    """Every code a route can answer: the string second argument of RequestRefused(...), the audit routes'
    _Refused(...) and problems.response(...), in every module of the app."""
    found: set[str] = set()
    for path in [*REPO.glob("entrypoints/*.py"), *REPO.glob("steward/**/*.py")]:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Call) or len(node.args) < 2:
                continue
            name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            code = node.args[1]
            if name in RAISERS and isinstance(code, ast.Constant) and isinstance(code.value, str):
                found.add(code.value)
    return found


def test_a_problem_has_the_rfc_9457_members_and_our_code() -> None:
    body = problems.body(409, "FingerprintMismatch", "fingerprint a is not b", currentFingerprint="sha256:b")
    assert list(body)[:5] == ["type", "title", "status", "detail", "code"]
    assert body["type"] == "tag:backup-steward,2026:problem/FingerprintMismatch"
    assert body["title"] == "The fingerprint is not the current plan's"
    assert (body["status"], body["detail"], body["code"]) == (409, "fingerprint a is not b", "FingerprintMismatch")
    assert body["currentFingerprint"] == "sha256:b"


def test_the_title_belongs_to_the_code_and_the_detail_to_the_occurrence() -> None:
    one, other = problems.body(404, "TeardownNotFound", "no teardown a"), problems.body(404, "TeardownNotFound", "b")
    assert one["title"] == other["title"] and one["detail"] != other["detail"]
    assert problems.body(418, "SomethingNew", "x")["title"] == "I'm a Teapot"  # an unlisted code: the status phrase


def test_a_long_detail_is_bounded_and_an_extension_cannot_replace_a_member() -> None:
    assert len(problems.body(400, "InvalidRequest", "x" * 5000)["detail"]) == problems.MAX_DETAIL
    with pytest.raises(ValueError, match="title"):
        problems.body(400, "InvalidRequest", "x", title="something else")


def test_the_answer_is_problem_json_with_the_refusals_headers() -> None:
    refusal = RequestRefused(429, "TooManyRequests", "slow down", retry_after=7)
    answer = problems.refused(refusal)
    assert answer.status_code == 429
    assert answer.headers["Content-Type"] == "application/problem+json"
    assert answer.headers["Retry-After"] == "7"
    assert json.loads(answer.get_body())["code"] == "TooManyRequests"
    assert problems.code_of(answer) == "TooManyRequests"
    with pytest.raises(ValueError, match="error"):
        problems.response(200, "Fine", "not a problem")


def test_every_code_a_route_can_answer_has_a_title() -> None:
    codes = codes_in_code()
    assert {"FingerprintMismatch", "CallerNotAllowed", "TooManyRequests", "AuditAlreadyRunning"} <= codes
    untitled = sorted(codes - set(problems.TITLES))
    assert not untitled, f"codes without a title in entrypoints/problems.py: {untitled}"


def test_the_readme_lists_every_code() -> None:
    section = (REPO / "README.md").read_text(encoding="utf-8").split("### Errors", 1)[1].split("\n### ", 1)[0]
    listed = set(re.findall(r"`([A-Z][A-Za-z]+)`", section)) | {"InvalidSubscription", "InvalidSubscriptions"}
    missing = sorted(set(problems.TITLES) - listed - {"ContractMissing"})
    assert not missing, f"README 'Errors' does not list {missing}"


def test_no_route_answers_an_error_outside_this_module() -> None:
    """Every answer of status 400 or more in entrypoints/ goes through ``problems`` (a literal error status given
    to ``_json`` or ``func.HttpResponse`` would be a second error shape)."""
    offenders = []
    for path in REPO.glob("entrypoints/*.py"):
        if path.name == "problems.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Call):
                continue
            name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            if name not in {"_json", "HttpResponse"}:
                continue
            statuses = [node.args[0]] if name == "_json" and node.args else []
            statuses += [k.value for k in node.keywords if k.arg == "status_code"]
            if any(isinstance(s, ast.Constant) and isinstance(s.value, int) and s.value >= 400 for s in statuses):
                offenders.append(f"{path.name}:{node.lineno}")
    assert not offenders, offenders
