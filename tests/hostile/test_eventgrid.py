"""Hostile Event Grid deliveries (``corpus/eventgrid.yaml``): each is refused or ignored with a bounded reason,
through ``entrypoints.event_grid.handle_event`` and through the local host's Event Grid webhook, and none
starts an orchestration or writes to ARM."""

from __future__ import annotations

import copy
import json
import urllib.error
import urllib.request
from typing import Any

import pytest

from entrypoints.event_grid import handle_event
from sandbox.host.local import OUTCOME_TOPIC
from tests.hostile.conftest import REQUESTS_TOPIC, SUB1, App, load_corpus

OTHER = "99999999-9999-4999-8999-999999999999"  # not in STEWARD_SUBSCRIPTIONS
VM = f"/subscriptions/{SUB1}/resourceGroups/rg-h/providers/Microsoft.Compute/virtualMachines/vm-h"
VAULT = f"/subscriptions/{SUB1}/resourceGroups/rg-h/providers/Microsoft.RecoveryServices/vaults/rsv-h"
GROUP = f"/subscriptions/{SUB1}/resourceGroups/rg-h"
CASES = load_corpus("eventgrid.yaml")
#: what a rejection may tell (the reason published with BackupSteward.Event.Rejected)
MAX_REASON = 600
#: what the webhook may answer in its body
MAX_ANSWER = 2048
LEAKS = ("Traceback", 'File "', "/work/", "site-packages", '.py"')


def _resource_event(event_type: str, operation: str, resource: str, status: str) -> dict[str, Any]:
    return {
        "id": "hostile-1",
        "topic": f"/subscriptions/{SUB1}",
        "subject": resource,
        "eventType": event_type,
        "eventTime": "2026-11-25T08:00:00Z",
        "dataVersion": "2",
        "data": {
            "operationName": operation,
            "resourceUri": resource,
            "status": status,
            "subscriptionId": SUB1,
            "tenantId": "11111111-1111-4111-8111-111111111111",
            "correlationId": "c0ffee00-0000-4000-8000-000000000001",
            "claims": {"http://schemas.microsoft.com/identity/claims/objectidentifier": "oid-1"},
        },
    }


BASES: dict[str, dict[str, Any]] = {
    "vm_write": _resource_event(
        "Microsoft.Resources.ResourceWriteSuccess", "Microsoft.Compute/virtualMachines/write", VM, "Succeeded"
    ),
    "vault_delete_failed": _resource_event(
        "Microsoft.Resources.ResourceDeleteFailure", "Microsoft.RecoveryServices/vaults/delete", VAULT, "Failed"
    ),
    "move": _resource_event(
        "Microsoft.Resources.ResourceActionSuccess",
        "Microsoft.Resources/subscriptions/resourceGroups/moveResources/action",
        GROUP,
        "Succeeded",
    ),
    "teardown_requested": {
        "id": "hostile-td",
        "topic": REQUESTS_TOPIC,  # the configured requests topic: each case is refused for its own reason
        "subject": VAULT,
        "eventType": "BackupSteward.Teardown.Requested",
        "eventTime": "2026-11-25T08:00:00Z",
        "dataVersion": "1",
        "data": {
            "vaultId": VAULT,
            "requester": "aaaaaaaa-0000-4000-8000-00000000ad01",
            "planFingerprint": "sha256:" + "a" * 64,
        },
    },
}


def _fill(value: Any) -> Any:
    if isinstance(value, str):
        return value.replace("{sub}", SUB1).replace("{other}", OTHER).replace("{vm}", VM).replace("{vault}", VAULT)
    if isinstance(value, list):
        return [_fill(v) for v in value]
    if isinstance(value, dict):
        return {k: _fill(v) for k, v in value.items()}
    return value


def _merge(target: dict[str, Any], patch: dict[str, Any]) -> None:
    for key, value in patch.items():
        if value is None:
            target.pop(key, None)
        elif isinstance(value, dict) and isinstance(target.get(key), dict):
            _merge(target[key], value)
        else:
            target[key] = value


def _set(event: dict[str, Any], path: str, value: Any) -> None:
    *parents, last = path.split(".")
    node = event
    for part in parents:
        node = node.setdefault(part, {})
    node[last] = value


def _big(fill: dict[str, Any]) -> Any:
    if "nest" in fill:
        value: Any = "deep"
        for _ in range(fill["nest"]):
            value = {"n": value}
        return value
    if "list" in fill:
        return [dict(fill["list"]) for _ in range(fill["times"])]
    return _fill(fill.get("prefix", "")) + fill["repeat"] * fill["times"]


def build(case: dict[str, Any]) -> Any:
    """The decoded event of a case (raw cases have none)."""
    if "event" in case:
        return _fill(case["event"])
    event = copy.deepcopy(BASES[case["base"]])
    _merge(event, _fill(case.get("patch") or {}))
    if case.get("fill"):
        value = _big(case["fill"])
        for path in case["fill"]["paths"]:
            _set(event, path, value)
    return event


def body_of(case: dict[str, Any]) -> bytes:
    if "raw" in case:
        return str(case["raw"]).encode()
    depth = (case.get("fill") or {}).get("nest")
    if depth:  # deeper than json.dumps can write: spell it out
        event = build({**case, "fill": None})
        head = json.dumps([event])[:-2]  # drop the closing "}]"
        return (head + ', "nested": ' + '{"n": ' * depth + "0" + "}" * depth + "}]").encode()
    return json.dumps([build(case)]).encode()


def rejections(app: App) -> list[dict[str, Any]]:
    return [
        e
        for e in app.sandbox.events.topic_events(OUTCOME_TOPIC)
        if e.get("eventType") == "BackupSteward.Event.Rejected"
    ]


def test_the_corpus_is_well_formed() -> None:
    names = [c["name"] for c in CASES]
    assert len(names) == len(set(names))
    assert all(c["expect"] in {"rejected", "ignored"} for c in CASES)
    assert all(("raw" in c) + ("event" in c) + ("base" in c) == 1 for c in CASES)


def _direct(case: dict[str, Any]) -> Any:
    return case


@pytest.mark.parametrize("case", [_direct(c) for c in CASES if "raw" not in c], ids=lambda c: c["name"])
def test_handle_event_refuses_or_ignores_and_changes_nothing(app: App, case: dict[str, Any]) -> None:
    before, published = app.state(), len(rejections(app))
    outcome = app.stack.run(handle_event(build(case), app.stack.client()), timeout=60)
    assert outcome == case["expect"]
    app.settle()
    assert app.state() == before, "a hostile event wrote to ARM or started an orchestration"
    if outcome == "rejected":
        new = rejections(app)[published:]
        assert len(new) == 1, "a rejected event is published once (not lost, not repeated)"
        reason = new[0]["data"]["reason"]
        assert reason and len(reason) <= MAX_REASON
        assert not any(leak in reason for leak in LEAKS)
        assert len(json.dumps(new[0]["data"])) <= 6000, "the excerpt is bounded"


def _deliver(app: App, body: bytes) -> tuple[int, bytes]:
    request = urllib.request.Request(
        app.host.eventgrid_url("on_subscription_event"),
        method="POST",
        data=body,
        headers={"Content-Type": "application/json", "aeg-event-type": "Notification"},
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


@pytest.mark.parametrize("case", CASES, ids=lambda c: c["name"])
def test_the_webhook_answers_briefly_and_changes_nothing(app: App, case: dict[str, Any]) -> None:
    before = app.state()
    status, answer = _deliver(app, body_of(case))
    app.settle()
    assert app.state() == before, "a hostile delivery wrote to ARM or started an orchestration"
    # 200: the app handled it (refused or ignored, so Event Grid does not retry it); 400: the delivery itself
    # could not be decoded (the body, or the worker's EventGridEvent conversion) and Event Grid dead-letters it.
    # Never 500: that would make Event Grid retry a delivery that can never succeed.
    if "raw" in case or not isinstance(build(case), dict):
        assert status == 400, status
    else:
        assert status in {200, 400}, status
    assert len(answer) <= MAX_ANSWER
    assert not any(leak in answer.decode("utf-8", "replace") for leak in LEAKS)


def test_the_webhook_needs_its_system_key(app: App) -> None:
    before = app.state()
    url = app.host.eventgrid_url("on_subscription_event").split("&code=")[0] + "&code=wrong"
    request = urllib.request.Request(
        url, method="POST", data=json.dumps([BASES["vm_write"]]).encode(), headers={"aeg-event-type": "Notification"}
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=30)
    assert refused.value.code == 401
    assert app.state() == before


def test_a_protect_event_outside_the_managed_subscriptions_starts_nothing(app: App) -> None:
    vm = VM.replace(SUB1, OTHER)
    event = _resource_event(
        "Microsoft.Resources.ResourceWriteSuccess", "Microsoft.Compute/virtualMachines/write", vm, "Succeeded"
    )
    event["topic"], event["data"]["subscriptionId"] = f"/subscriptions/{OTHER}", OTHER
    before = app.state()
    outcome = app.stack.run(handle_event(event, app.stack.client()), timeout=60)
    app.settle()
    assert outcome in {"ignored", "rejected"}
    assert app.state()[1] == before[1]
