"""The classifier on blob container events (issue 19 item 2): a successful write of a container is a
ContainerCreated about its storage account; the trust checks hold for it as for every other event."""

from __future__ import annotations

import pytest

from steward.domain.events import ContainerCreated, Ignored, InvalidEvent, classify, intent_from_record
from tests.unit.domain.test_events import SUB, resource_event

ACCOUNT = f"/subscriptions/{SUB}/resourceGroups/rg-data/providers/Microsoft.Storage/storageAccounts/stdata1"
CONTAINER = f"{ACCOUNT}/blobServices/default/containers/invoices"
WRITE = "Microsoft.Storage/storageAccounts/blobServices/containers/write"


def test_a_container_write_is_a_container_created_about_its_account() -> None:
    intent = classify(resource_event("Microsoft.Resources.ResourceWriteSuccess", WRITE, CONTAINER))
    assert isinstance(intent, ContainerCreated)
    assert str(intent.resource_id) == ACCOUNT and str(intent.container_id) == CONTAINER
    assert intent.correlation_id == "c0ffee00-0000-0000-0000-000000000001"
    assert intent_from_record(intent.to_record()) == intent


def test_every_container_of_one_account_collapses_onto_one_instance_other_accounts_do_not() -> None:
    first = classify(resource_event("Microsoft.Resources.ResourceWriteSuccess", WRITE, CONTAINER))
    second = classify(resource_event("Microsoft.Resources.ResourceWriteSuccess", WRITE.upper(),
                                     CONTAINER.replace("invoices", "logs").upper(), event_id="e2"))
    other = classify(resource_event("Microsoft.Resources.ResourceWriteSuccess", WRITE,
                                    CONTAINER.replace("stdata1", "stdata2"), event_id="e3"))
    assert first.instance_id == second.instance_id != other.instance_id
    assert str(first.instance_id).startswith("containers:")
    protect = classify(resource_event("Microsoft.Resources.ResourceWriteSuccess",
                                      "Microsoft.Storage/storageAccounts/write", ACCOUNT))
    assert protect.instance_id != first.instance_id  # the account's own protection runs apart


@pytest.mark.parametrize(("event_type", "operation"), [
    ("Microsoft.Resources.ResourceDeleteSuccess", "Microsoft.Storage/storageAccounts/blobServices/containers/delete"),
    ("Microsoft.Resources.ResourceWriteFailure", WRITE),
    ("Microsoft.Resources.ResourceWriteCancel", WRITE),
])
def test_container_deletes_and_failed_writes_are_ignored(event_type: str, operation: str) -> None:
    assert isinstance(classify(resource_event(event_type, operation, CONTAINER)), Ignored)


def test_a_forged_container_event_is_refused() -> None:
    with pytest.raises(InvalidEvent, match="name different resources"):
        classify(resource_event("Microsoft.Resources.ResourceWriteSuccess", WRITE, CONTAINER,
                                subject=CONTAINER.replace("stdata1", "stother")))
    with pytest.raises(InvalidEvent, match="does not match the resource type"):
        classify(resource_event("Microsoft.Resources.ResourceWriteSuccess", WRITE, ACCOUNT))
