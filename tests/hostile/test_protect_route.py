"""``POST /api/protect`` (issue 19 item 3) is guarded like the teardown and drill routes: the function key alone,
a forged platform header, an invalid token or a caller who is not allowed starts nothing and writes nothing."""

from __future__ import annotations

import json

from tests.hostile.conftest import ADMIN, STRANGER, SUB1, App, forged_platform_headers

VM = f"/subscriptions/{SUB1}/resourceGroups/rg-app/providers/Microsoft.Compute/virtualMachines/vm-hostile"


def _code(answer: bytes) -> str:
    return str(json.loads(answer)["code"])


def test_the_protect_route_needs_the_key_and_an_allowed_callers_token(app: App) -> None:
    before = app.state()
    body = json.dumps({"resourceId": VM}).encode()
    status, headers, answer = app.request("POST", "protect", body)
    assert (status, _code(answer)) == (401, "Unauthenticated")
    assert headers["WWW-Authenticate"] == 'Bearer realm="backup-steward"'
    assert app.request("POST", "protect", body, forged_platform_headers(ADMIN))[0] == 401
    status, _, answer = app.request("POST", "protect", body, {"Authorization": "Bearer not.a.token"})
    assert (status, _code(answer)) == (401, "InvalidToken")
    status, _, answer = app.request("POST", "protect", body, app.auth(STRANGER))
    assert (status, _code(answer)) == (403, "CallerNotAllowed")
    assert app.request("POST", "protect", body, app.auth(ADMIN), key=False)[0] == 401
    status, _, answer = app.request("GET", "protect/protect-" + "0" * 24, None, app.auth(STRANGER))
    assert (status, _code(answer)) == (403, "CallerNotAllowed")
    app.settle()
    assert app.state() == before, "a refused request wrote to ARM or started an orchestration"
    status, _, answer = app.request("GET", "protect/protect-" + "0" * 24, None, app.auth(ADMIN))
    assert (status, _code(answer)) == (404, "ProtectionNotFound"), "and the allowed caller is let in"
