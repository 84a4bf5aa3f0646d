"""``POST /api/drills/{id}/validation`` (issue 17, the user validation hook) is guarded like the other drill
routes: the function key alone, a forged platform header, an invalid token or a caller who is not allowed raises
nothing into a drill; an unknown drill is 404, a malformed id or body 400 / 413 / 415, and a drill that is not
waiting for a validation (finished, or already decided) 409. The route never starts an orchestration."""

from __future__ import annotations

import json
import time

from tests.hostile.conftest import ADMIN, STRANGER, App, forged_platform_headers

UNKNOWN = "drill-" + "0" * 24


def _code(answer: bytes) -> str:
    return str(json.loads(answer)["code"])


def test_the_validation_route_needs_the_key_and_an_allowed_callers_token(app: App) -> None:
    before = app.state()
    body = json.dumps({"result": "pass"}).encode()
    path = f"drills/{UNKNOWN}/validation"
    status, headers, answer = app.request("POST", path, body)
    assert (status, _code(answer)) == (401, "Unauthenticated")
    assert headers["WWW-Authenticate"] == 'Bearer realm="backup-steward"'
    assert app.request("POST", path, body, forged_platform_headers(ADMIN))[0] == 401
    status, _, answer = app.request("POST", path, body, {"Authorization": "Bearer not.a.token"})
    assert (status, _code(answer)) == (401, "InvalidToken")
    status, _, answer = app.request("POST", path, body, app.auth(STRANGER))
    assert (status, _code(answer)) == (403, "CallerNotAllowed")
    assert app.request("POST", path, body, app.auth(ADMIN), key=False)[0] == 401
    app.settle()
    assert app.state() == before, "a refused request wrote to ARM or started an orchestration"
    status, _, answer = app.request("POST", path, body, app.auth(ADMIN))
    assert (status, _code(answer)) == (404, "DrillNotFound"), "and the allowed caller is let in"


def test_malformed_ids_and_bodies_are_refused_before_any_drill_is_read(app: App) -> None:
    before = app.state()
    auth = app.auth(ADMIN)
    path = f"drills/{UNKNOWN}/validation"
    cases = [
        ("drills/DRILL-UPPER/validation", b'{"result": "pass"}', auth, 400, "InvalidInstanceId"),
        (path, b"not json", auth, 400, "InvalidJson"),
        (path, b"[]", auth, 400, "InvalidRequest"),
        (path, b'{"result": "PASS"}', auth, 400, "InvalidValidationResult"),
        (path, b'{"result": true}', auth, 400, "InvalidValidationResult"),
        (path, b'{}', auth, 400, "InvalidValidationResult"),
        (path, b'{"result": "pass", "resourceId": "/x"}', auth, 400, "UnknownField"),
        (path, b'{"result": "pass", "by": "someone-else"}', auth, 400, "UnknownField"),
        (path, json.dumps({"result": "fail", "detail": 7}).encode(), auth, 400, "InvalidRequest"),
        (path, json.dumps({"result": "fail", "detail": None}).encode(), auth, 400, "InvalidRequest"),
        (path, json.dumps({"result": "fail", "detail": "x" * 4001}).encode(), auth, 400, "InvalidRequest"),
        # escape sequences for the terminals `steward drill status` prints the detail on (before: 404, accepted)
        (path, json.dumps({"result": "fail", "detail": "ok\x1b[2J\x1b]0;owned\x07"}).encode(), auth, 400,
         "InvalidRequest"),
        (path, json.dumps({"result": "fail", "detail": "line\rover"}).encode(), auth, 400, "InvalidRequest"),
        (path, json.dumps({"result": "fail", "detail": "x" * 20_000}).encode(), auth, 413, "BodyTooLarge"),
        (path, b"[" * 100_000, auth, 413, "BodyTooLarge"),
        (path, b'{"result": "pass"}', {**auth, "Content-Type": "text/plain"}, 415, "UnsupportedMediaType"),
    ]
    for route, body, headers, status, code in cases:
        got, _, answer = app.request("POST", route, body, headers)
        assert (got, _code(answer)) == (status, code), (route, body[:60], answer[:300])
    app.settle()
    assert app.state() == before


def test_a_drill_not_waiting_for_validation_is_409_and_gets_no_event(app: App) -> None:
    auth = app.auth(ADMIN)
    status, _, answer = app.request("POST", "drills", json.dumps({"dryRun": True}).encode(), auth)
    assert status == 202, answer
    drill_id = json.loads(answer)["id"]
    app.settle()
    for result in ("pass", "fail", "pass"):  # finished: never waiting, however often it is told
        status, _, answer = app.request("POST", f"drills/{drill_id}/validation",
                                        json.dumps({"result": result}).encode(), auth)
        assert (status, _code(answer)) == (409, "DrillNotAwaitingValidation"), answer
    time.sleep(0.2)
    status, _, answer = app.request("GET", f"drills/{drill_id}", None, auth)
    assert status == 200 and json.loads(answer)["runtimeStatus"] == "Completed", answer
