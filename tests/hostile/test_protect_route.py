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


def test_an_allowed_caller_cannot_point_the_app_at_what_it_does_not_protect(app: App) -> None:
    """The route starts what an Event Grid write of a VM, disk, storage account or PostgreSQL flexible server
    starts, nothing else: a vault, a VM's extension, a group or a subscription would only make the app's identity
    read it (and retry the read of a type it has no API version for) on the caller's behalf. 400, nothing
    started, no ARM read or write."""
    rg = f"/subscriptions/{SUB1}/resourceGroups/rg-app"
    before, reads = app.state(), app.sandbox.counters.get("read")
    for target in (f"{rg}/providers/Microsoft.RecoveryServices/vaults/rsv-app",
                   f"{VM}/extensions/AzureBackupLinuxExtension",
                   f"{rg}/providers/Microsoft.KeyVault/vaults/kv-app",
                   rg, f"/subscriptions/{SUB1}"):
        status, _, answer = app.request("POST", "protect", json.dumps({"resourceId": target}).encode(),
                                        app.auth(ADMIN))
        assert (status, _code(answer)) in {(400, "UnsupportedResourceType"), (400, "InvalidResourceId")}, target
    app.settle()
    assert app.state() == before, "a refused request wrote to ARM or started an orchestration"
    assert app.sandbox.counters.get("read") == reads, "a refused request read ARM"
