"""The Event Grid filters in Bicep say EXACTLY what the event classifier (``steward.domain.events``) acts on.

Read from ``infra/modules/subscription-events.bicep`` (the system topic of each target subscription) and
``infra/modules/request-events.bicep`` (the teardown requests topic), compared two ways:

* with the classifier's constants: the ``data.operationName`` values are the protected types' ``/write``
  and ``/delete``, the move action and the vault deletes, nothing more or less;
* by running the classifier on synthetic events: every filter value and every included event type lets
  through something the classifier acts on (nothing delivered in vain), and every event the classifier
  acts on passes the filter (nothing lost), over every resource event type and a universe of operations.

Both modules load their filter from ``infra/event-filters.json`` (``loadJsonContent``), the file the local stack
(``sandbox.host.local``) subscribes with too: the last tests check that the sandbox, so subscribed, lets through
exactly what the Bicep filter does.

Event Grid's ``StringIn`` is case-insensitive, and so is the filter model here.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pytest

from sandbox.arm.events import EventSubscription
from sandbox.host.local import EVENT_FILTERS, system_topic_filter
from steward.domain import events
from tests.infra.templates import MODULES, app_catalog, one_resource, parse

SUBSCRIPTION = "3f2a1b4c-0000-4000-8000-00000000c0de"
MAX_ADVANCED_FILTER_VALUES = 25  # Event Grid's limit over all advanced filters of one subscription
RESOURCE_EVENT_TYPES = tuple(
    f"Microsoft.Resources.Resource{action}{outcome}"
    for action in ("Write", "Delete", "Action")
    for outcome in ("Success", "Failure", "Cancel")
)
STATUS = {"Success": "Succeeded", "Failure": "Failed", "Cancel": "Canceled"}
OBJECT_ID_CLAIM = "http://schemas.microsoft.com/identity/claims/objectidentifier"
REQUESTER = "5e0c0000-0000-4000-8000-0000000000aa"


@dataclass(frozen=True)
class Filter:
    """An event subscription filter: included event types AND (optionally) ``data.operationName`` StringIn."""

    event_types: frozenset[str]
    operation_names: frozenset[str] | None

    def passes(self, event: Mapping[str, Any]) -> bool:
        if event["eventType"] not in self.event_types:
            return False
        if self.operation_names is None:
            return True
        operation = str((event.get("data") or {}).get("operationName", ""))
        return operation.lower() in self.operation_names


def _resolve_filter(file: str, spec: Any) -> Any:
    """The filter object itself: a literal, or ``<var>.<key>`` where ``var = loadJsonContent('<file>')``."""
    accessor = spec.get("operator") if isinstance(spec, dict) else None
    if not accessor:
        return spec
    assert accessor["type"] == "property_accessor", spec
    variable, key = accessor["operands"]["operand_1"], accessor["operands"]["operand_2"]
    loader = parse(MODULES / file)["variables"][variable]["value"]["function"]
    assert loader["type"] == "load_json_content" and loader["parameters"]["json_path"] is None, loader
    loaded = (MODULES / file).parent / loader["parameters"]["file_path"]
    assert loaded.resolve() == EVENT_FILTERS.resolve(), f"{file} loads {loaded}, not {EVENT_FILTERS}"
    return json.loads(loaded.read_text())[key]


def _filter_of(file: str, type_name: str) -> tuple[Filter, list[str], dict[str, Any]]:
    subscription = one_resource(MODULES / file, type_name)
    spec = _resolve_filter(file, subscription["properties"]["filter"])
    types = spec["includedEventTypes"]
    assert isinstance(types, list) and all(isinstance(t, str) for t in types), "event types must be literals"
    values: list[str] | None = None
    for advanced in spec.get("advancedFilters") or []:
        assert advanced == {**advanced, "operatorType": "StringIn", "key": "data.operationName"}, advanced
        assert values is None, "one data.operationName filter, not several"
        values = advanced["values"]
        assert isinstance(values, list) and all(isinstance(v, str) for v in values), "values must be literals"
    lowered = None if values is None else frozenset(v.lower() for v in values)
    return Filter(frozenset(types), lowered), list(values or []), subscription


SYSTEM_FILTER, SYSTEM_VALUES, SYSTEM_SUBSCRIPTION = _filter_of(
    "subscription-events.bicep", "Microsoft.EventGrid/systemTopics/eventSubscriptions"
)
REQUEST_FILTER, _, REQUEST_SUBSCRIPTION = _filter_of(
    "request-events.bicep", "Microsoft.EventGrid/topics/eventSubscriptions"
)


def handled_operations() -> dict[str, type[events.Intent]]:
    """Operation names the classifier acts on (lower-cased), from its constants, with the intent each yields."""
    handled: dict[str, type[events.Intent]] = {}
    for canonical in events.PROTECTED_TYPES.values():
        handled[f"{canonical}/write".lower()] = events.ProtectResource
        handled[f"{canonical}/delete".lower()] = events.ResourceGone
    handled[f"{events.BLOB_CONTAINER_TYPE}/write".lower()] = events.ContainerCreated
    handled[events.MOVE_RESOURCES_OPERATION.lower()] = events.ResourcesMoved
    for operation in events.VAULT_DELETE_OPERATIONS:
        handled[operation.lower()] = events.VaultDeleteFailed
    return handled


def _resource_for(operation: str) -> str:
    """A resource id the operation could concern (the move's subject is the source resource group)."""
    group = f"/subscriptions/{SUBSCRIPTION}/resourceGroups/rg-apps"
    type_path = operation.rsplit("/", 1)[0]
    if type_path.lower() == events.MOVE_RESOURCES_OPERATION.lower().rsplit("/", 1)[0]:
        return group
    provider, *types = type_path.split("/")
    segments = "/".join(f"{t}/{t.lower()[:6]}01" for t in types)
    return f"{group}/providers/{provider}/{segments}"


def resource_event(event_type: str, operation: str) -> dict[str, Any]:
    """A well-formed subscription system topic event, as Event Grid delivers it."""
    resource = _resource_for(operation)
    outcome = next(o for o in STATUS if event_type.endswith(o))
    return {
        "id": f"evt-{abs(hash((event_type, operation))):x}",
        "topic": f"/subscriptions/{SUBSCRIPTION}",
        "subject": resource,
        "eventType": event_type,
        "eventTime": "2026-11-25T09:00:00+00:00",
        "dataVersion": "2",
        "metadataVersion": "1",
        "data": {
            "operationName": operation,
            "resourceUri": resource,
            "resourceProvider": operation.split("/", 1)[0],
            "status": STATUS[outcome],
            "subscriptionId": SUBSCRIPTION,
            "tenantId": "72f988bf-0000-4000-8000-000000000001",
            "correlationId": "9b1a7c2e-0000-4000-8000-000000000042",
            "claims": {OBJECT_ID_CLAIM: REQUESTER},
        },
    }


def acts_on(event: Mapping[str, Any]) -> bool:
    return not isinstance(events.classify(event), events.Ignored)


def operation_universe() -> set[str]:
    """Operations to try: the filter's, the classifier's, and their neighbours (other verbs on the same types,
    the same verbs on unprotected types, vault writes, other resource group actions), in two casings."""
    types = [*events.PROTECTED_TYPES.values(), *events.VAULT_DELETE_OPERATIONS.values(), events.BLOB_CONTAINER_TYPE]
    types += ["Microsoft.Network/virtualNetworks", "Microsoft.Compute/snapshots", "Microsoft.Web/sites"]
    verbs = ["write", "delete", "action", "start/action", "restart/action"]
    found = {f"{t}/{v}" for t, v in itertools.product(types, verbs)}
    found |= set(SYSTEM_VALUES) | set(handled_operations())
    found |= {
        events.MOVE_RESOURCES_OPERATION,
        "Microsoft.Resources/subscriptions/resourceGroups/validateMoveResources/action",
        "Microsoft.Resources/subscriptions/resourceGroups/write",
        "Microsoft.Resources/subscriptions/resourceGroups/delete",
    }
    return found | {o.lower() for o in found} | {o.upper() for o in found}


# ---- the filter against the classifier's constants ----------------------------------------------------------


def test_filter_values_are_exactly_the_classifier_operations() -> None:
    values = [v.lower() for v in SYSTEM_VALUES]
    assert len(values) == len(set(values)), f"duplicate filter values: {SYSTEM_VALUES}"
    assert set(values) == set(handled_operations()), (
        f"filter has {sorted(set(values) - set(handled_operations()))} extra, "
        f"lacks {sorted(set(handled_operations()) - set(values))}"
    )
    assert len(values) <= MAX_ADVANCED_FILTER_VALUES


def test_filter_event_types_are_resource_events_only() -> None:
    assert SYSTEM_FILTER.event_types <= set(RESOURCE_EVENT_TYPES)


def test_subscription_delivers_to_the_apps_event_grid_trigger() -> None:
    """Both subscriptions name ``functions/<name>`` of the one Event Grid trigger the app registers."""
    triggers = {f.name for f in app_catalog().event_grid}
    for subscription in (SYSTEM_SUBSCRIPTION, REQUEST_SUBSCRIPTION):
        destination = subscription["properties"]["destination"]
        assert destination["endpointType"] == "AzureFunction"
        resource_id = destination["properties"]["resourceId"]
        assert resource_id.startswith("${functionAppId}/functions/"), resource_id
        assert {resource_id.rsplit("/", 1)[-1]} == triggers


def test_subscriptions_retry_and_dead_letter() -> None:
    for subscription in (SYSTEM_SUBSCRIPTION, REQUEST_SUBSCRIPTION):
        properties = subscription["properties"]
        assert set(properties["retryPolicy"]) == {"maxDeliveryAttempts", "eventTimeToLiveInMinutes"}
        dead_letter = properties["deadLetterWithResourceIdentity"]
        assert dead_letter["identity"] == {"type": "SystemAssigned"}
        assert dead_letter["deadLetterDestination"]["endpointType"] == "StorageBlob"
        assert properties["eventDeliverySchema"] == "EventGridSchema"


# ---- the filter against the classifier's behaviour --------------------------------------------------------


@pytest.mark.parametrize("operation", SYSTEM_VALUES)
def test_every_filter_value_yields_an_intent(operation: str) -> None:
    acting = [t for t in sorted(SYSTEM_FILTER.event_types) if acts_on(resource_event(t, operation))]
    assert acting, f"no included event type makes the classifier act on {operation!r}: it is filtered in for nothing"


@pytest.mark.parametrize("event_type", sorted(SYSTEM_FILTER.event_types))
def test_every_included_event_type_yields_an_intent(event_type: str) -> None:
    acting = [v for v in SYSTEM_VALUES if acts_on(resource_event(event_type, v))]
    assert acting, f"the classifier acts on no {event_type} event the filter lets through"


@pytest.mark.parametrize("operation", sorted(handled_operations()))
def test_every_handled_operation_passes_the_filter(operation: str) -> None:
    expected = handled_operations()[operation]
    event_type = {
        events.ProtectResource: "Microsoft.Resources.ResourceWriteSuccess",
        events.ContainerCreated: "Microsoft.Resources.ResourceWriteSuccess",
        events.ResourceGone: "Microsoft.Resources.ResourceDeleteSuccess",
        events.ResourcesMoved: "Microsoft.Resources.ResourceActionSuccess",
        events.VaultDeleteFailed: "Microsoft.Resources.ResourceDeleteFailure",
    }[expected]
    event = resource_event(event_type, _canonical(operation))
    assert isinstance(events.classify(event), expected)
    assert SYSTEM_FILTER.passes(event), f"{event_type} {operation} is acted on but filtered out"


def _canonical(operation: str) -> str:
    return next((v for v in SYSTEM_VALUES if v.lower() == operation), operation)


def test_nothing_the_classifier_acts_on_is_filtered_out() -> None:
    """Exhaustive over every resource event type x the operation universe: acted on => passes the filter."""
    lost = []
    checked = 0
    for event_type, operation in itertools.product(RESOURCE_EVENT_TYPES, sorted(operation_universe())):
        event = resource_event(event_type, operation)
        try:
            acted = acts_on(event)
        except events.InvalidEvent as error:  # a well-formed synthetic event must classify
            pytest.fail(f"{event_type} {operation}: {error}")
        checked += 1
        if acted and not SYSTEM_FILTER.passes(event):
            lost.append((event_type, operation))
    assert not lost, f"acted on but filtered out: {lost[:10]}"
    assert checked > 500


def test_unrelated_events_are_filtered_out() -> None:
    for event_type, operation in [
        ("Microsoft.Resources.ResourceWriteSuccess", "Microsoft.Network/virtualNetworks/write"),
        ("Microsoft.Resources.ResourceWriteSuccess", "Microsoft.RecoveryServices/vaults/write"),
        ("Microsoft.Resources.ResourceActionSuccess", "Microsoft.Compute/virtualMachines/start/action"),
        ("Microsoft.Resources.ResourceWriteFailure", "Microsoft.Compute/virtualMachines/write"),
        ("Microsoft.Resources.ResourceDeleteSuccess",
         "Microsoft.Storage/storageAccounts/blobServices/containers/delete"),
        ("Microsoft.Resources.ResourceWriteSuccess", "Microsoft.Storage/storageAccounts/blobServices/write"),
        ("Microsoft.Resources.ResourceDeleteCancel", "Microsoft.RecoveryServices/vaults/delete"),
    ]:
        assert not SYSTEM_FILTER.passes(resource_event(event_type, operation)), (event_type, operation)


# ---- the teardown requests topic ------------------------------------------------------------------------


def test_requests_topic_delivers_only_teardown_requests() -> None:
    assert events.TEARDOWN_REQUESTED_EVENT_TYPE in REQUEST_FILTER.event_types
    assert REQUEST_FILTER.event_types == {events.TEARDOWN_REQUESTED_EVENT_TYPE}
    assert REQUEST_FILTER.operation_names is None
    vault = f"/subscriptions/{SUBSCRIPTION}/resourceGroups/rg-bk/providers/Microsoft.RecoveryServices/vaults/rsv-old"
    request = {
        "id": "req-1",
        "subject": vault,
        "eventType": events.TEARDOWN_REQUESTED_EVENT_TYPE,
        "eventTime": "2026-11-25T09:00:00+00:00",
        "dataVersion": "1.0",
        "topic": f"/subscriptions/{SUBSCRIPTION}/resourceGroups/rg-steward/providers/Microsoft.EventGrid/topics/req",
        "data": {"vaultId": vault, "requester": REQUESTER, "planFingerprint": "fp:0123abcd"},
    }
    assert REQUEST_FILTER.passes(request)
    assert isinstance(events.classify(request), events.TeardownRequested)
    assert not REQUEST_FILTER.passes({**request, "eventType": "Microsoft.Resources.ResourceWriteSuccess"})


# ---- the local stack subscribes with the same filter -----------------------------------------------------


def test_both_modules_load_their_filter_from_the_one_file() -> None:
    for file, type_name in (("subscription-events.bicep", "Microsoft.EventGrid/systemTopics/eventSubscriptions"),
                            ("request-events.bicep", "Microsoft.EventGrid/topics/eventSubscriptions")):
        spec = one_resource(MODULES / file, type_name)["properties"]["filter"]
        assert "operator" in spec, f"{file} writes its filter literally: keep it in {EVENT_FILTERS.name}"


def test_the_local_stack_subscribes_with_the_bicep_filter() -> None:
    """The sandbox's own filter model (``EventSubscription.wants``), given the local stack's subscription, lets
    through exactly the events the Bicep filter does: over every resource event type x the operation universe."""
    spec = system_topic_filter()
    local = EventSubscription(id="local", webhook_url="https://127.0.0.1/x",
                              included_event_types=tuple(spec["included_event_types"]),
                              advanced_filters=tuple(spec["advanced_filters"]))
    differ = [(t, o) for t, o in itertools.product(RESOURCE_EVENT_TYPES, sorted(operation_universe()))
              if local.wants(resource_event(t, o)) != SYSTEM_FILTER.passes(resource_event(t, o))]
    assert not differ, f"the local stack and the Bicep filter disagree on {differ[:10]}"
    assert local.wants(resource_event("Microsoft.Resources.ResourceWriteSuccess",
                                      "Microsoft.Compute/virtualMachines/write"))
    assert not local.wants(resource_event("Microsoft.Resources.ResourceWriteSuccess",
                                          "Microsoft.Network/networkInterfaces/write"))


# ---- new blob containers (issue 19 item 2) -------------------------------------------------------------


def test_a_new_blob_container_passes_the_filter_and_names_its_account() -> None:
    """A container write in a storage account reaches the app (Bicep and the local stack alike) and becomes a
    ContainerCreated intent about the account; the account's own write stays a ProtectResource."""
    operation = "Microsoft.Storage/storageAccounts/blobServices/containers/write"
    account = f"/subscriptions/{SUBSCRIPTION}/resourceGroups/rg-apps/providers/Microsoft.Storage/storageAccounts/st01"
    event = resource_event("Microsoft.Resources.ResourceWriteSuccess", operation)
    container = f"{account}/blobServices/default/containers/invoices"
    event = {**event, "subject": container, "data": {**event["data"], "resourceUri": container}}
    assert SYSTEM_FILTER.passes(event)
    spec = system_topic_filter()
    local = EventSubscription(id="local", webhook_url="https://127.0.0.1/x",
                              included_event_types=tuple(spec["included_event_types"]),
                              advanced_filters=tuple(spec["advanced_filters"]))
    assert local.wants(event)
    intent = events.classify(event)
    assert isinstance(intent, events.ContainerCreated)
    assert str(intent.resource_id) == account and intent.container_id.name == "invoices"
    assert intent.instance_id.startswith("containers:")
    assert events.intent_from_record(intent.to_record()) == intent
    deleted = {**event, "eventType": "Microsoft.Resources.ResourceDeleteSuccess",
               "data": {**event["data"], "operationName": operation.replace("/write", "/delete")}}
    assert isinstance(events.classify(deleted), events.Ignored) and not SYSTEM_FILTER.passes(deleted)
