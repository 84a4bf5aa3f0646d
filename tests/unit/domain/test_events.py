"""Event classification: Microsoft's published Event Grid samples, both schemas, forged and malformed events,
deterministic instance ids, records that cross the durable boundary, and fuzzing."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from steward.domain.errors import InvalidRecord
from steward.domain.events import (
    MAX_EVENT_BYTES,
    TEARDOWN_REQUESTED_EVENT_TYPE,
    EventSchema,
    Ignored,
    InvalidEvent,
    ProtectResource,
    ResourceGone,
    ResourcesMoved,
    TeardownRequested,
    VaultDeleteFailed,
    classify,
    classify_json,
    intent_from_record,
)
from steward.domain.ids import ResourceId
from tests.shared_fixtures import EVENT_GRID, require

FIXTURES = EVENT_GRID
SUB = "0b1e4a7c-1111-4c2d-9e3f-5a6b7c8d9e0f"
OTHER_SUB = "9f8e7d6c-2222-4b3a-8c9d-0e1f2a3b4c5d"
TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
PLACEHOLDERS = {
    "{subscription-id}": SUB,
    "{resource-group}": "rg-data",
    "{storage-name}": "stdata01",
    "{namespace}": "ns1",
    "{tenant-id}": TENANT,
}


def fixture(name: str, *, substitute: bool = True) -> dict[str, Any]:
    """One event from Microsoft's sample file (a one-element array), with placeholders filled in (the test skips,
    or fails under CI, when the samples are not beside the clone: tests/shared_fixtures.py)."""
    require(FIXTURES)
    text = (FIXTURES / f"{name}.eventgrid-schema.json").read_text()
    if substitute:
        for placeholder, value in PLACEHOLDERS.items():
            text = text.replace(placeholder, value)
    events = json.loads(text)
    assert isinstance(events, list) and len(events) == 1
    event: dict[str, Any] = events[0]
    return event


def resource_event(
    event_type: str,
    operation: str,
    resource: str,
    *,
    status: str | None = None,
    correlation: str = "c0ffee00-0000-0000-0000-000000000001",
    event_id: str = "e1",
    subject: str | None = None,
) -> dict[str, Any]:
    if status is None:
        status = {"Success": "Succeeded", "Failure": "Failed", "Cancel": "Canceled"}[
            next(s for s in ("Success", "Failure", "Cancel") if event_type.endswith(s))
        ]
    return {
        "subject": subject if subject is not None else resource,
        "eventType": event_type,
        "eventTime": "2026-11-25T08:00:00.1234567Z",
        "id": event_id,
        "data": {
            "claims": {
                "appid": "app-1",
                "http://schemas.microsoft.com/identity/claims/objectidentifier": "oid-1",
            },
            "correlationId": correlation,
            "resourceProvider": operation.split("/", maxsplit=1)[0],
            "resourceUri": resource,
            "operationName": operation,
            "status": status,
            "subscriptionId": SUB,
            "tenantId": TENANT,
        },
        "dataVersion": "2",
        "metadataVersion": "1",
        "topic": f"/subscriptions/{SUB}",
    }


def as_cloud_event(event: dict[str, Any]) -> dict[str, Any]:
    return {
        "specversion": "1.0",
        "id": event["id"],
        "type": event["eventType"],
        "source": event["topic"],
        "subject": event["subject"],
        "time": event["eventTime"],
        "datacontenttype": "application/json",
        "data": event["data"],
    }


RG = f"/subscriptions/{SUB}/resourceGroups/rg-app"
VM = f"{RG}/providers/Microsoft.Compute/virtualMachines/vm1"
DISK = f"{RG}/providers/Microsoft.Compute/disks/vm1-os"
STORAGE = f"{RG}/providers/Microsoft.Storage/storageAccounts/stapp"
PG = f"{RG}/providers/Microsoft.DBforPostgreSQL/flexibleServers/pg1"
RSV = f"{RG}/providers/Microsoft.RecoveryServices/vaults/rsv-weu"
BV = f"{RG}/providers/Microsoft.DataProtection/backupVaults/bv-weu"
WRITE = "Microsoft.Resources.ResourceWriteSuccess"
DELETE = "Microsoft.Resources.ResourceDeleteSuccess"
MOVE_OP = "Microsoft.Resources/subscriptions/resourceGroups/moveResources/action"


# ---- Microsoft's samples --------------------------------------------------------------------------


def test_the_published_write_sample_is_a_protect_intent_despite_its_lower_cased_subject() -> None:
    event = fixture("Microsoft.Resources.ResourceWriteSuccess")
    assert "/resourcegroups/" in event["subject"]
    intent = classify(event)
    assert isinstance(intent, ProtectResource)
    assert intent.resource_id == ResourceId.parse(
        f"/subscriptions/{SUB}/resourceGroups/rg-data/providers/Microsoft.Storage/storageAccounts/stdata01"
    )
    assert intent.origin.event_id == "4db48cba-50a2-455a-93b4-de41a3b5b7f6"
    assert intent.origin.operation_name == "Microsoft.Storage/storageAccounts/write"
    assert intent.origin.subscription_id == SUB
    assert intent.origin.tenant_id == TENANT
    assert intent.origin.correlation_id == "{ID}"
    assert intent.origin.principal is not None
    assert intent.origin.principal.object_id == "{ID}"
    assert intent.origin.event_time.isoformat() == "2018-07-19T18:38:04.611735+00:00"
    assert intent.origin.schema is EventSchema.EVENT_GRID
    assert (intent.event_id, intent.correlation_id, intent.subscription_id, intent.tenant_id) == (
        intent.origin.event_id,
        "{ID}",
        SUB,
        TENANT,
    )
    assert intent.principal == intent.origin.principal


def test_the_published_delete_sample_is_a_resource_gone_intent() -> None:
    intent = classify(fixture("Microsoft.Resources.ResourceDeleteSuccess"))
    assert isinstance(intent, ResourceGone)
    assert intent.resource_id.full_type == "Microsoft.Storage/storageAccounts"


def test_the_published_action_sample_list_keys_is_ignored_with_a_reason() -> None:
    intent = classify(fixture("Microsoft.Resources.ResourceActionSuccess"))
    assert isinstance(intent, Ignored)
    assert "listKeys/action" in intent.reason
    assert intent.resource_id is not None


def test_the_published_samples_with_their_placeholder_subscription_are_refused() -> None:
    with pytest.raises(InvalidEvent, match="not a GUID"):
        classify(fixture("Microsoft.Resources.ResourceWriteSuccess", substitute=False))


def test_the_published_samples_classify_the_same_in_the_cloud_events_schema() -> None:
    for name in ("ResourceWriteSuccess", "ResourceDeleteSuccess", "ResourceActionSuccess"):
        event = fixture(f"Microsoft.Resources.{name}")
        grid, cloud = classify(event), classify(as_cloud_event(event))
        assert type(grid) is type(cloud)
        assert cloud.origin.schema is EventSchema.CLOUD_EVENTS
        assert grid.instance_id == cloud.instance_id


# ---- routing ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("resource", "operation"),
    [
        (VM, "Microsoft.Compute/virtualMachines/write"),
        (DISK, "Microsoft.Compute/disks/write"),
        (STORAGE, "Microsoft.Storage/storageAccounts/write"),
        (PG, "Microsoft.DBforPostgreSQL/flexibleServers/write"),
    ],
)
def test_supported_writes_protect_and_deletes_are_gone(resource: str, operation: str) -> None:
    written = classify(resource_event(WRITE, operation, resource))
    assert isinstance(written, ProtectResource)
    assert written.resource_id == ResourceId.parse(resource)
    assert written.origin.principal is not None
    assert written.origin.principal.app_id == "app-1"
    deleted = classify(resource_event(DELETE, operation.replace("/write", "/delete"), resource))
    assert isinstance(deleted, ResourceGone)
    assert deleted.instance_id != written.instance_id


@pytest.mark.parametrize(
    ("event_type", "operation", "resource", "reason"),
    [
        (WRITE, "Microsoft.Compute/virtualMachines/extensions/write", f"{VM}/extensions/ama", "not protected"),
        (
            WRITE,
            "Microsoft.Network/networkInterfaces/write",
            f"{RG}/providers/Microsoft.Network/networkInterfaces/n",
            "not",
        ),
        ("Microsoft.Resources.ResourceWriteFailure", "Microsoft.Compute/virtualMachines/write", VM, "failed"),
        ("Microsoft.Resources.ResourceWriteCancel", "Microsoft.Compute/virtualMachines/write", VM, "cancelled"),
        ("Microsoft.Resources.ResourceDeleteCancel", "Microsoft.RecoveryServices/vaults/delete", RSV, "cancelled"),
        ("Microsoft.Resources.ResourceDeleteFailure", "Microsoft.Compute/disks/delete", DISK, "failed"),
        ("Microsoft.Resources.ResourceActionSuccess", "Microsoft.Compute/virtualMachines/start/action", VM, "not"),
        ("Microsoft.Resources.ResourceActionFailure", MOVE_OP, RG, "failed"),
        (DELETE, "Microsoft.RecoveryServices/vaults/delete", RSV, "not protected"),
    ],
)
def test_everything_else_is_ignored_with_a_reason(event_type: str, operation: str, resource: str, reason: str) -> None:
    intent = classify(resource_event(event_type, operation, resource))
    assert isinstance(intent, Ignored)
    assert reason in intent.reason
    assert intent.instance_id is None


def test_operations_we_do_not_act_on_are_ignored_even_with_ids_our_parser_refuses() -> None:
    group = f"{RG}/providers/Microsoft.Insights/actionGroups/Application Insights Smart Detection"
    intent = classify(resource_event(WRITE, "Microsoft.Insights/actionGroups/write", group))
    assert isinstance(intent, Ignored)
    assert intent.resource_id is None
    assert intent.origin.subscription_id == SUB
    with pytest.raises(InvalidEvent, match="not a valid resource id"):
        classify(resource_event(WRITE, "Microsoft.Compute/virtualMachines/write", VM + " x"))


def test_unknown_event_types_are_ignored() -> None:
    event = resource_event(WRITE, "Microsoft.Compute/virtualMachines/write", VM)
    event["eventType"] = "Microsoft.Storage.BlobCreated"
    intent = classify(event)
    assert isinstance(intent, Ignored)
    assert "Microsoft.Storage.BlobCreated" in intent.reason


def test_a_successful_move_names_the_source_group() -> None:
    intent = classify(resource_event("Microsoft.Resources.ResourceActionSuccess", MOVE_OP, RG.lower()))
    assert isinstance(intent, ResourcesMoved)
    assert intent.source_group == ResourceId.parse(RG)
    assert intent.instance_id.startswith("moved:")
    tolerated = resource_event("Microsoft.Resources.ResourceActionSuccess", MOVE_OP, RG + "/moveResources")
    assert classify(tolerated) == intent


def test_a_move_that_does_not_name_a_group_is_refused() -> None:
    with pytest.raises(InvalidEvent, match="source resource group"):
        classify(resource_event("Microsoft.Resources.ResourceActionSuccess", MOVE_OP, VM))


@pytest.mark.parametrize(
    ("vault", "operation"),
    [(RSV, "Microsoft.RecoveryServices/vaults/delete"), (BV, "Microsoft.DataProtection/backupVaults/delete")],
)
def test_a_failed_vault_delete_is_a_teardown_candidate(vault: str, operation: str) -> None:
    intent = classify(resource_event("Microsoft.Resources.ResourceDeleteFailure", operation, vault))
    assert isinstance(intent, VaultDeleteFailed)
    assert intent.vault_id == ResourceId.parse(vault)
    # another attempt is another event (ARM writes its id): another instance, whatever correlation id it carries
    again = classify(resource_event("Microsoft.Resources.ResourceDeleteFailure", operation, vault, correlation="other",
                                    event_id="e2"))
    assert again.instance_id != intent.instance_id
    same_correlation = classify(resource_event("Microsoft.Resources.ResourceDeleteFailure", operation, vault,
                                               event_id="e2"))
    assert same_correlation.instance_id != intent.instance_id


def teardown_event(**data: Any) -> dict[str, Any]:
    payload = {"vaultId": RSV, "requester": "oid-admin", "planFingerprint": "sha256:" + "ab" * 32} | data
    return {
        "specversion": "1.0",
        "id": "t-1",
        "type": TEARDOWN_REQUESTED_EVENT_TYPE,
        "source": f"/subscriptions/{SUB}/resourceGroups/rg-steward/providers/Microsoft.EventGrid/topics/steward",
        "subject": RSV,
        "time": "2026-11-25T09:00:00Z",
        "data": payload,
    }


def test_a_teardown_request_carries_vault_requester_and_plan() -> None:
    intent = classify(teardown_event())
    assert isinstance(intent, TeardownRequested)
    assert intent.vault_id == ResourceId.parse(RSV)
    assert intent.requester == "oid-admin"
    assert intent.plan_fingerprint.startswith("sha256:")
    assert intent.origin.principal is not None and intent.origin.principal.object_id == "oid-admin"
    other_plan = classify(teardown_event(planFingerprint="sha256:" + "cd" * 32))
    assert other_plan.instance_id == intent.instance_id  # one saga per vault at a time


def test_a_teardown_request_needs_no_fingerprint_and_keeps_its_topic() -> None:
    """A request, not an approval: the fingerprint is optional; the topic (CloudEvents ``source``) is kept for
    the requests-topic check."""
    intent = classify(teardown_event(planFingerprint=None))
    assert isinstance(intent, TeardownRequested) and intent.plan_fingerprint is None
    assert intent.origin.topic == teardown_event()["source"]
    assert intent_from_record(json.loads(json.dumps(intent.to_record()))) == intent
    failed = classify(
        resource_event("Microsoft.Resources.ResourceDeleteFailure", "Microsoft.RecoveryServices/vaults/delete", RSV)
    )
    assert failed.origin.topic is not None and failed.origin.topic.lower() == f"/subscriptions/{SUB}"


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        ({"vaultId": VM}, "not a Recovery Services vault or a Backup vault"),
        ({"vaultId": BV}, "different vaults"),
        ({"requester": ""}, "'data.requester' is missing"),
        ({"planFingerprint": "x"}, "planFingerprint"),
        ({"planFingerprint": "abc'; drop"}, "planFingerprint"),
        ({"vaultId": 7}, "must be a string"),
    ],
)
def test_bad_teardown_requests_are_refused(data: dict[str, Any], reason: str) -> None:
    with pytest.raises(InvalidEvent, match=None) as caught:
        classify(teardown_event(**data))
    assert reason in str(caught.value)


# ---- instance ids ----------------------------------------------------------------------------------------


def test_duplicate_deliveries_and_case_variants_collapse_onto_one_instance() -> None:
    first = classify(resource_event(WRITE, "Microsoft.Compute/virtualMachines/write", VM))
    duplicate = classify(resource_event(WRITE, "Microsoft.Compute/virtualMachines/write", VM.lower(), event_id="e2"))
    assert first.instance_id == duplicate.instance_id
    assert first.instance_id is not None and first.instance_id.startswith("protect:")
    other = classify(resource_event(WRITE, "Microsoft.Compute/virtualMachines/write", VM + "x"))
    assert other.instance_id != first.instance_id


# ---- forged and malformed ------------------------------------------------------------------------------


def test_subject_and_resource_uri_mismatch_is_refused_as_forged() -> None:
    event = resource_event(WRITE, "Microsoft.Compute/virtualMachines/write", VM, subject=VM.replace("vm1", "vm2"))
    with pytest.raises(InvalidEvent, match="forged"):
        classify(event)


def test_subscription_mismatches_are_refused_as_forged() -> None:
    event = resource_event(WRITE, "Microsoft.Compute/virtualMachines/write", VM)
    event["data"]["subscriptionId"] = OTHER_SUB
    with pytest.raises(InvalidEvent, match="forged"):
        classify(event)
    event = resource_event(WRITE, "Microsoft.Compute/virtualMachines/write", VM)
    event["topic"] = f"/subscriptions/{OTHER_SUB}"
    with pytest.raises(InvalidEvent, match="forged"):
        classify(event)


def test_an_operation_that_does_not_match_the_resource_type_is_refused() -> None:
    with pytest.raises(InvalidEvent, match="does not match the resource type"):
        classify(resource_event(WRITE, "Microsoft.Compute/virtualMachines/write", DISK))


def test_a_status_that_contradicts_the_event_type_is_refused() -> None:
    with pytest.raises(InvalidEvent, match="contradicts"):
        classify(resource_event(WRITE, "Microsoft.Compute/virtualMachines/write", VM, status="Failed"))


def _without(path: tuple[str, ...]) -> dict[str, Any]:
    event = resource_event(WRITE, "Microsoft.Compute/virtualMachines/write", VM)
    target = event
    for key in path[:-1]:
        target = target[key]
    del target[path[-1]]
    return event


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda e: _without(("id",)), "'id' is missing"),
        (lambda e: _without(("eventTime",)), "'eventTime' is missing"),
        (lambda e: _without(("subject",)), "no 'subject'"),
        (lambda e: _without(("data",)), "no 'data'"),
        (lambda e: _without(("data", "operationName")), "'data.operationName' is missing"),
        (lambda e: _without(("data", "resourceUri")), "'data.resourceUri' is missing"),
        (lambda e: {**e, "eventTime": "yesterday"}, "not an ISO 8601"),
        (lambda e: {**e, "eventTime": "2026-11-25T08:00:00"}, "no time zone"),
        (lambda e: {**e, "id": 12}, "'id' must be a string"),
        (lambda e: {**e, "data": []}, "'data' must be an object"),
        (lambda e: {**e, "data": {**e["data"], "claims": "x"}}, "'data.claims' must be an object"),
        (lambda e: {**e, "subject": "/subscriptions/../x"}, "not a valid resource id"),
        (lambda e: {**e, "subject": e["subject"] + "\n"}, "control characters"),
        (lambda e: {"hello": "world"}, "neither in the Event Grid schema"),
        (lambda e: {**as_cloud_event(e), "specversion": "0.3"}, "specversion"),
        (lambda e: {**as_cloud_event(e), "data_base64": "AA=="}, "data_base64"),
        (lambda e: {**e, "padding": "x" * MAX_EVENT_BYTES}, "bytes; at most"),
        (lambda e: {**e, "data": {**e["data"], "nan": float("nan")}}, "not plain JSON"),
        (lambda e: {**e, "data": {**e["data"], "set": {1, 2}}}, "not plain JSON"),
    ],
)
def test_malformed_events_raise_invalid_event_with_the_reason(mutate: Any, reason: str) -> None:
    event = mutate(resource_event(WRITE, "Microsoft.Compute/virtualMachines/write", VM))
    with pytest.raises(InvalidEvent, match=None) as caught:
        classify(event)
    assert reason in str(caught.value)
    assert len(str(caught.value)) < 1000


def test_non_objects_and_deeply_nested_json_are_refused() -> None:
    for value in (None, [], "event", 3):
        with pytest.raises(InvalidEvent, match="must be a JSON object"):
            classify(value)
    deep: Any = {}
    for _ in range(100_000):
        deep = {"d": deep}
    with pytest.raises(InvalidEvent, match="not plain JSON"):
        classify({"eventType": "x", "data": deep})
    with pytest.raises(InvalidEvent, match="not valid JSON"):
        classify_json("[" * 200_000 + "]" * 200_000)
    with pytest.raises(InvalidEvent, match="at most"):
        classify_json(" " * (MAX_EVENT_BYTES + 1))
    with pytest.raises(InvalidEvent, match="not valid JSON"):
        classify_json("{")


def test_classify_json_decodes_then_classifies() -> None:
    event = resource_event(WRITE, "Microsoft.Compute/virtualMachines/write", VM)
    assert classify_json(json.dumps(event)) == classify(event)


# ---- records -----------------------------------------------------------------------------------------------


def _all_intents() -> list[Any]:
    return [
        classify(resource_event(WRITE, "Microsoft.Compute/virtualMachines/write", VM)),
        classify(resource_event(DELETE, "Microsoft.Compute/disks/delete", DISK)),
        classify(resource_event("Microsoft.Resources.ResourceActionSuccess", MOVE_OP, RG)),
        classify(
            resource_event("Microsoft.Resources.ResourceDeleteFailure", "Microsoft.RecoveryServices/vaults/delete", RSV)
        ),
        classify(teardown_event()),
        classify(fixture("Microsoft.Resources.ResourceActionSuccess")),
        classify({**resource_event(WRITE, "x/y/write", VM), "eventType": "Other.Event"}),
    ]


def test_intents_round_trip_through_json_records() -> None:
    for intent in _all_intents():
        record = json.loads(json.dumps(intent.to_record()))
        again = intent_from_record(record)
        assert again == intent
        assert again.instance_id == intent.instance_id


def _origin_as_written_before_the_codec(**extra: Any) -> dict[str, Any]:
    return {
        "eventId": "e1",
        "eventType": WRITE,
        "eventTime": "2026-11-25T08:00:00.123456+00:00",
        "schema": "EventGrid",
        "subscriptionId": SUB,
        "tenantId": TENANT,
        "correlationId": "c0ffee00-0000-0000-0000-000000000001",
        "operationName": "Microsoft.Compute/virtualMachines/write",
        "principal": {"objectId": "oid-1", "appId": "app-1"},
        "topic": f"/subscriptions/{SUB}",
        **extra,
    }


def test_intent_records_keep_the_shape_the_hand_written_records_had() -> None:
    """Running orchestrations hold intent records written by the hand-written ``to_record`` (before the
    records codec): the codec writes exactly those keys and values (``eventTime`` keeps its ``+00:00``: reasons
    quote it) and reads them back to the same intent."""
    written_before = {"kind": "protect", "resourceId": VM, "origin": _origin_as_written_before_the_codec()}
    intent = classify(resource_event(WRITE, "Microsoft.Compute/virtualMachines/write", VM))
    assert intent.to_record() == written_before
    assert list(intent.to_record()) == ["kind", "resourceId", "origin"]
    assert intent_from_record(written_before) == intent
    teardown = {
        "kind": "teardown",
        "vaultId": RSV,
        "requester": "oid-1",
        "planFingerprint": None,
        "origin": _origin_as_written_before_the_codec(principal={"objectId": "oid-1", "appId": None}),
    }
    assert intent_from_record(teardown).to_record() == teardown
    ignored = {
        "kind": "ignored",
        "reason": "not ours",
        "resourceId": None,
        "origin": _origin_as_written_before_the_codec(principal=None, subscriptionId=None),
    }
    assert intent_from_record(ignored).to_record() == ignored
    account = f"{RG}/providers/Microsoft.Storage/storageAccounts/sa1"
    container = {
        "kind": "container",
        "containerId": f"{account}/blobServices/default/containers/c1",
        "resourceId": account,
        "origin": _origin_as_written_before_the_codec(),
    }
    again = intent_from_record(container)
    assert again.to_record() == container and list(again.to_record()) == list(container)


@pytest.mark.parametrize(
    "record",
    [None, [], {"kind": "nope"}, {"kind": "protect"}, {"kind": "protect", "resourceId": "/x", "origin": {}}],
)
def test_bad_records_raise_invalid_record(record: Any) -> None:
    with pytest.raises(InvalidRecord):
        intent_from_record(record)


# ---- fuzzing -------------------------------------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=20,
)


@settings(deadline=None)
@given(json_values)
def test_arbitrary_json_never_raises_anything_but_invalid_event(value: Any) -> None:
    try:
        intent = classify(value)
    except InvalidEvent as error:
        assert str(error)
    else:
        assert intent_from_record(json.loads(json.dumps(intent.to_record()))) == intent


_BASES = [
    resource_event(WRITE, "Microsoft.Compute/virtualMachines/write", VM),
    resource_event("Microsoft.Resources.ResourceDeleteFailure", "Microsoft.RecoveryServices/vaults/delete", RSV),
    as_cloud_event(resource_event("Microsoft.Resources.ResourceActionSuccess", MOVE_OP, RG)),
    teardown_event(),
]
_FIELDS = ["id", "eventType", "type", "subject", "topic", "source", "eventTime", "time", "data", "specversion"]
_DATA_FIELDS = ["operationName", "resourceUri", "status", "subscriptionId", "claims", "vaultId", "planFingerprint"]


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(_BASES),
    st.lists(st.tuples(st.sampled_from(_FIELDS + _DATA_FIELDS), json_values), max_size=3),
)
def test_mutated_valid_events_never_raise_anything_but_invalid_event(base: dict[str, Any], edits: list[Any]) -> None:
    event = copy.deepcopy(base)
    for key, value in edits:
        target = event["data"] if key in _DATA_FIELDS and isinstance(event.get("data"), dict) else event
        target[key] = value
    try:
        intent = classify(event)
    except InvalidEvent:
        return
    assert intent_from_record(json.loads(json.dumps(intent.to_record()))) == intent


@settings(deadline=None)
@given(st.lists(st.booleans(), max_size=200))
def test_subject_case_never_changes_the_intent(flips: list[bool]) -> None:
    subject = "".join(c.swapcase() if f else c for c, f in zip(VM, flips + [False] * len(VM), strict=False))
    subject = subject.replace("/SUBSCRIPTIONS/", "/subscriptions/")
    event = resource_event(WRITE, "Microsoft.Compute/virtualMachines/write", VM, subject=subject)
    assert classify(event) == classify(resource_event(WRITE, "Microsoft.Compute/virtualMachines/write", VM))
