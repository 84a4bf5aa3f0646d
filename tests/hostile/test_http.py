"""Hostile HTTP requests (``corpus/http.yaml``) to the teardown and audit routes of the running app: each gets
the documented status and a short JSON error (no stack trace, no internal path), and none writes to ARM or
starts an orchestration."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from tests.hostile.conftest import ADMIN, OID_CLAIM, STRANGER, SUB1, App, load_corpus

OTHER = "99999999-9999-4999-8999-999999999999"
VAULT = f"/subscriptions/{SUB1}/resourceGroups/rg-h/providers/Microsoft.RecoveryServices/vaults/rsv-h"
CASES = load_corpus("http.yaml")
MAX_MESSAGE = 1024
MAX_ANSWER = 4096
LEAKS = ("Traceback", 'File "', "/work/", "site-packages", '.py"', "Exception")


def _b64(value: Any) -> str:
    return base64.b64encode(json.dumps(value).encode()).decode()


PLACEHOLDERS: dict[str, Any] = {
    "{sub}": SUB1,
    "{other}": OTHER,
    "{vault}": VAULT,
    "{admin}": ADMIN,
    "{stranger}": STRANGER,
    "{long}": "a" * 5000,
    "{admin_claims}": _b64({"claims": [{"typ": OID_CLAIM, "val": ADMIN}]}),
    "{stranger_claims}": _b64({"claims": [{"typ": OID_CLAIM, "val": STRANGER}]}),
    "{stranger_role_claims}": _b64(
        {"claims": [{"typ": OID_CLAIM, "val": STRANGER}, {"typ": "roles", "val": "Reader"}]}
    ),
    "{huge_claims}": _b64({"claims": [{"typ": "roles", "val": "r" * 100} for _ in range(200)]}),
}
WHOLE: dict[str, Any] = {"{many_subs}": [f"{i:08x}-0000-4000-8000-000000000000" for i in range(101)]}


def fill(value: Any) -> Any:
    if isinstance(value, str):
        if value in WHOLE:
            return WHOLE[value]
        for name, text in PLACEHOLDERS.items():
            value = value.replace(name, text)
        return value
    if isinstance(value, list):
        return [fill(v) for v in value]
    if isinstance(value, dict):
        return {k: fill(v) for k, v in value.items()}
    return value


def body_of(case: dict[str, Any]) -> bytes | None:
    if "raw" in case:
        return str(case["raw"]).encode()
    if "raw_hex" in case:
        return bytes.fromhex(case["raw_hex"].replace(" ", ""))
    if "size" in case:
        return json.dumps({"vaultId": VAULT, "padding": "x" * case["size"]}).encode()
    if "body" in case:
        return json.dumps(fill(case["body"])).encode()
    return None


def headers_of(app: App, case: dict[str, Any]) -> dict[str, str]:
    principal = case.get("principal", "admin")
    headers: dict[str, str] = {"Content-Type": case.get("content_type", "application/json")}
    if principal == "admin":
        headers.update(app.auth(ADMIN))
    elif principal == "stranger":
        headers.update(app.auth(STRANGER))
    elif principal == "stranger-with-role":
        headers.update(app.auth(STRANGER, ("Reader",)))
    elif isinstance(principal, dict):
        headers.update({k: fill(v) for k, v in principal["headers"].items()})
    key = case.get("key", True)
    if key == "wrong":
        headers["x-functions-key"] = "not-the-key"
    return headers


def send(app: App, case: dict[str, Any]) -> tuple[int, dict[str, str], bytes]:
    key = case.get("key", True)
    path = fill(case["path"])
    if key == "query-wrong":
        path += "?code=not-the-key"
    return app.request(case["method"], path, body_of(case), headers_of(app, case), key=key is True)


def test_the_corpus_is_well_formed() -> None:
    names = [c["name"] for c in CASES]
    assert len(names) == len(set(names))
    assert all(400 <= c["expect"]["status"] < 500 for c in CASES)
    assert all(c["expect"].get("code") for c in CASES), "every refusal names its code"


@pytest.mark.parametrize("case", CASES, ids=lambda c: c["name"])
def test_a_hostile_request_gets_a_short_clear_error_and_changes_nothing(app: App, case: dict[str, Any]) -> None:
    before = app.state()
    status, headers, answer = send(app, case)
    app.settle()
    assert app.state() == before, "a hostile request wrote to ARM or started an orchestration"
    assert status == case["expect"]["status"], answer[:300]
    assert len(answer) <= MAX_ANSWER
    text = answer.decode("utf-8", "replace")
    assert not any(leak in text for leak in LEAKS), text[:300]
    body = json.loads(answer)
    # one error shape (RFC 9457 problem details), whether the app or the host (no or a wrong key) refused
    assert headers["Content-Type"].startswith("application/problem+json")
    assert {"type", "title", "status", "detail", "code"} <= set(body), body
    assert body["status"] == status and body["code"] == case["expect"]["code"]
    assert body["type"].endswith("/" + body["code"]) and body["title"]
    assert 0 < len(body["detail"]) <= MAX_MESSAGE
    assert app.function_key not in text
