"""Event Grid: ARM's events for writes/deletes/actions, delivered at least once (callbacks and webhooks)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import pytest
from azure.core.credentials import AzureKeyCredential
from azure.core.exceptions import HttpResponseError
from azure.eventgrid import EventGridEvent, EventGridPublisherClient

from sandbox.arm import ArmSandbox, EventDeliveryConfig
from steward.cloud.clients import CloudClients
from tests.shared_fixtures import EVENT_GRID, needs

from .conftest import SUB, core_config, make_group
from .test_sandbox_serving import raw

FIXTURES = EVENT_GRID
ACCOUNT_BODY = {"location": "westeurope", "sku": {"name": "Standard_LRS"}, "kind": "StorageV2"}


def fixture_event(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / f"Microsoft.Resources.{name}.eventgrid-schema.json").read_text())[0]


@pytest.fixture
def fresh() -> Iterator[ArmSandbox]:
    sandbox = ArmSandbox(core_config()).start()
    yield sandbox
    sandbox.stop()


def make_account(sb: ArmSandbox, clients: CloudClients, group: str, name: str) -> str:
    account = f"/subscriptions/{SUB}/resourceGroups/{group}/providers/Microsoft.Storage/storageAccounts/{name}"
    clients.resources(SUB).resources.begin_create_or_update_by_id(
        account, ACCOUNT_BODY, api_version="2024-01-01"
    ).result()
    return account


@needs(FIXTURES)
def test_write_and_delete_events_have_the_documented_shape(fresh: ArmSandbox) -> None:
    clients = CloudClients(fresh.cloud_target(principal_id="6d3b9f2e-0000-4000-8000-0000000000aa"))
    make_group(clients, "rg-ev")
    account = make_account(fresh, clients, "rg-ev", "stevents")
    clients.resources(SUB).resources.begin_delete_by_id(account, api_version="2024-01-01").result()
    by_type = {e["eventType"]: e for e in fresh.events.raised if e["subject"].lower() == account.lower()}

    write, documented_write = by_type["Microsoft.Resources.ResourceWriteSuccess"], fixture_event("ResourceWriteSuccess")
    assert set(write) == set(documented_write)
    assert set(write["data"]) == set(documented_write["data"])  # a create: no httpRequest
    assert set(write["data"]["claims"]) <= set(documented_write["data"]["claims"])
    assert write["subject"] == account.replace("resourceGroups", "resourcegroups")
    assert write["topic"] == f"/subscriptions/{SUB}"
    assert write["data"]["operationName"] == "Microsoft.Storage/storageAccounts/write"
    assert write["data"]["resourceProvider"] == "Microsoft.Storage"
    assert write["data"]["status"] == "Succeeded" and write["data"]["subscriptionId"] == SUB
    oid = "http://schemas.microsoft.com/identity/claims/objectidentifier"
    assert write["data"]["claims"][oid] == "6d3b9f2e-0000-4000-8000-0000000000aa"
    assert (write["dataVersion"], write["metadataVersion"]) == ("2", "1")

    delete, documented_delete = by_type["Microsoft.Resources.ResourceDeleteSuccess"], fixture_event(
        "ResourceDeleteSuccess"
    )
    assert set(delete["data"]) == set(documented_delete["data"])
    assert delete["data"]["httpRequest"]["method"] == "DELETE"
    assert delete["data"]["httpRequest"]["url"].startswith(fresh.endpoint + account)
    assert delete["data"]["operationName"] == "Microsoft.Storage/storageAccounts/delete"


def test_updates_carry_http_request_and_failures_raise_failure_events(fresh: ArmSandbox) -> None:
    clients = CloudClients(fresh.cloud_target())
    make_group(clients, "rg-upd")
    make_group(clients, "rg-upd")  # an update of an existing group
    writes = [e for e in fresh.events.raised if e["data"]["operationName"].endswith("resourceGroups/write")]
    assert "httpRequest" not in writes[0]["data"] and writes[1]["data"]["httpRequest"]["method"] == "PUT"
    with pytest.raises(HttpResponseError):
        clients.resources(SUB).resource_groups.create_or_update("rg-upd", {"location": "eastus"})
    assert fresh.events.raised[-1]["eventType"] == "Microsoft.Resources.ResourceWriteFailure"
    assert fresh.events.raised[-1]["data"]["status"] == "Failed"
    reads_before = len(fresh.events.raised)
    clients.resources(SUB).resource_groups.get("rg-upd")
    assert len(fresh.events.raised) == reads_before  # reads raise nothing


def test_subscribers_get_every_event_at_least_once_with_duplicates(fresh: ArmSandbox) -> None:
    fresh.configure_events(EventDeliveryConfig(seed=7, duplicate_probability=1.0))
    received: list[dict[str, Any]] = []
    fresh.subscribe(received.extend)
    clients = CloudClients(fresh.cloud_target())
    for i in range(3):
        make_group(clients, f"rg-dup-{i}")
    assert fresh.events.drain(timeout=5)
    ids = [e["id"] for e in received]
    assert sorted(set(ids)) == sorted(e["id"] for e in fresh.events.raised)
    assert all(ids.count(i) == 2 for i in set(ids))


def test_delivery_reorders_deterministically_from_the_seed(fresh: ArmSandbox) -> None:
    def delivered_order(seed: int) -> list[int]:
        # one delivery at a time: the seeded schedule is what is pinned (overlapping deliveries finish in any order)
        fresh.configure_events(EventDeliveryConfig(seed=seed, reorder_jitter_seconds=600, max_concurrent_deliveries=1))
        got: list[dict[str, Any]] = []
        subscription = fresh.subscribe(got.extend)
        fresh.events.publish([{"id": str(n), "eventType": "Test", "subject": "/x"} for n in range(20)])
        assert fresh.events.drain(timeout=5)
        fresh.events.unsubscribe(subscription)
        return [int(e["id"]) for e in got]

    first = delivered_order(3)
    assert sorted(first) == list(range(20)) and first != list(range(20))
    assert delivered_order(3) == first


@pytest.mark.parametrize("limit", [1, 4])
def test_deliveries_overlap_up_to_the_configured_limit_per_subscription(fresh: ArmSandbox, limit: int) -> None:
    """Event Grid delivers each event at once to every matching subscription, unordered, adapting its rate to a
    Function (delivery-and-retry.md, handler-functions.md): a slow subscriber does not get one POST at a time."""
    fresh.configure_events(EventDeliveryConfig(max_concurrent_deliveries=limit))
    lock, state = threading.Lock(), {"now": 0, "peak": 0}

    def slow(batch: list[dict[str, Any]]) -> None:
        with lock:
            state["now"] += 1
            state["peak"] = max(state["peak"], state["now"])
        time.sleep(0.1)
        with lock:
            state["now"] -= 1

    subscription = fresh.subscribe(slow)
    started = time.monotonic()
    fresh.events.publish([{"id": str(n), "eventType": "Test", "subject": "/x"} for n in range(8)])
    assert fresh.events.drain(timeout=10)
    elapsed = time.monotonic() - started
    fresh.events.unsubscribe(subscription)
    assert state["peak"] == limit
    assert subscription.delivered == 8
    if limit > 1:
        assert elapsed < 8 * 0.1 * 0.75  # not one after the other


def test_a_failing_subscriber_is_retried_on_the_event_grid_schedule(fresh: ArmSandbox) -> None:
    attempts: list[str] = []

    def flaky(batch: list[dict[str, Any]]) -> None:
        attempts.append(batch[0]["id"])
        if attempts.count(batch[0]["id"]) < 3:
            raise RuntimeError("subscriber down")

    subscription = fresh.subscribe(flaky, included_event_types=["Microsoft.Resources.ResourceWriteSuccess"])
    make_group(CloudClients(fresh.cloud_target()), "rg-retry")
    assert fresh.events.drain(timeout=5)  # 10 s + 30 s of Azure time pass in milliseconds
    assert len(attempts) == 3 and len(set(attempts)) == 1
    assert (subscription.delivered, subscription.failed_attempts) == (1, 2)


class _Webhook(BaseHTTPRequestHandler):
    received: list[dict[str, Any]]
    validate: bool = True
    fail_first: int = 0

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if self.headers.get("aeg-event-type") == "SubscriptionValidation":
            code = body[0]["data"]["validationCode"] if self.validate else "wrong"
            payload = json.dumps({"validationResponse": code}).encode()
            self.send_response(200)
        elif type(self).fail_first > 0:
            type(self).fail_first -= 1
            payload = b""
            self.send_response(503)
        else:
            self.received.extend(body)
            payload = b""
            self.send_response(200)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args: Any) -> None:
        return None


@pytest.fixture
def webhook() -> Iterator[tuple[str, type[_Webhook]]]:
    handler = type("Hook", (_Webhook,), {"received": [], "validate": True, "fail_first": 1})
    server = HTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=lambda: server.serve_forever(poll_interval=0.02), daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/runtime/webhooks/eventgrid?functionName=f", handler
    server.shutdown()


def test_webhooks_validate_then_receive_events_with_retries(
    fresh: ArmSandbox, webhook: tuple[str, type[_Webhook]]
) -> None:
    url, hook = webhook
    status, _, body = raw(fresh, "POST", "/sandbox/eventgrid/subscriptions", {"endpoint": url}, token=None)
    assert status == 201
    make_group(CloudClients(fresh.cloud_target()), "rg-hook")
    assert fresh.events.drain(timeout=5)
    assert [e["subject"] for e in hook.received] == [f"/subscriptions/{SUB}/resourcegroups/rg-hook"]
    _, _, listed = raw(fresh, "GET", "/sandbox/eventgrid/subscriptions", token=None)
    assert listed["value"][0]["failedAttempts"] == 1 and listed["value"][0]["delivered"] == 1
    hook.validate = False
    status, _, body = raw(fresh, "POST", "/sandbox/eventgrid/subscriptions", {"endpoint": url}, token=None)
    assert (status, body["error"]["code"]) == (400, "WebhookValidationFailed")


def test_custom_topic_accepts_the_publisher_client(fresh: ArmSandbox) -> None:
    endpoint = fresh.endpoint + "/sandbox/eventgrid/topics/outcomes/api/events"
    # the legacy publisher only takes transport options per call
    client = EventGridPublisherClient(endpoint, AzureKeyCredential(fresh.config.topic_key))
    client.send([EventGridEvent(subject="/protection/vm1", event_type="Steward.ProtectionSucceeded",
                                data={"resourceId": "vm1"}, data_version="1")], connection_verify=fresh.ca_bundle)
    events = fresh.events.topic_events("outcomes")
    assert [e["eventType"] for e in events] == ["Steward.ProtectionSucceeded"]
    assert events[0]["data"] == {"resourceId": "vm1"}
    _, _, over_http = raw(fresh, "GET", "/sandbox/eventgrid/topics/outcomes/events", token=None)
    assert over_http["value"] == events
    wrong = EventGridPublisherClient(endpoint, AzureKeyCredential("nope"))
    with pytest.raises(HttpResponseError) as caught:
        wrong.send([EventGridEvent(subject="s", event_type="t", data={}, data_version="1")],
                   connection_verify=fresh.ca_bundle)
    assert caught.value.status_code == 401


def test_subscriptions_filter_like_event_grid(fresh: ArmSandbox) -> None:
    moves: list[dict[str, Any]] = []
    fresh.subscribe(
        moves.extend,
        included_event_types=["Microsoft.Resources.ResourceWriteSuccess"],
        advanced_filters=[{"operatorType": "StringIn", "key": "data.operationName",
                           "values": ["microsoft.resources/subscriptions/resourcegroups/WRITE"]}],
        subject_ends_with="/rg-keep",
    )
    clients = CloudClients(fresh.cloud_target())
    make_group(clients, "rg-keep")
    make_group(clients, "rg-skip")
    clients.resources(SUB).resource_groups.begin_delete("rg-keep").result()
    assert fresh.events.drain(timeout=5)
    assert [e["subject"] for e in moves] == [f"/subscriptions/{SUB}/resourcegroups/rg-keep"]
    with pytest.raises(ValueError, match="operatorType"):
        fresh.subscribe(moves.extend, advanced_filters=[{"operatorType": "NumberIn", "key": "x", "values": []}])
