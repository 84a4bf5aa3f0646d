"""The Event Grid doorway reads both delivery schemas the trigger can hand it."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from types import SimpleNamespace

from entrypoints.event_grid import _excerpt, event_as_dict
from steward.domain import events
from tests.shared_fixtures import EVENT_GRID, needs

FIXTURES = EVENT_GRID


@needs(FIXTURES)
def test_an_event_grid_schema_delivery_classifies_like_the_published_sample() -> None:
    text = (FIXTURES / "Microsoft.Resources.ResourceWriteSuccess.eventgrid-schema.json").read_text()
    for placeholder, value in {"{subscription-id}": "00000000-0000-4000-8000-000000000001",
                               "{resource-group}": "rg"}.items():
        text = text.replace(placeholder, value)  # Microsoft's placeholders are not valid ids
    sample = json.loads(text)[0]
    delivered = SimpleNamespace(
        id=sample["id"], topic=sample["topic"], subject=sample["subject"], event_type=sample["eventType"],
        event_time=datetime.fromisoformat(sample["eventTime"].replace("Z", "+00:00")),
        data_version=sample["dataVersion"], get_json=lambda: sample["data"],
    )
    as_read = event_as_dict(delivered)
    assert events.classify(as_read).to_record() == events.classify(sample).to_record()


def test_a_cloudevents_delivery_is_read_as_cloudevents_not_crashed_on() -> None:
    vm = ("/subscriptions/00000000-0000-4000-8000-000000000001/resourceGroups/rg/providers/"
          "Microsoft.Compute/virtualMachines/vm1")
    data = {"resourceUri": vm, "operationName": "Microsoft.Compute/virtualMachines/write", "status": "Succeeded",
            "subscriptionId": "00000000-0000-4000-8000-000000000001", "tenantId": "t", "correlationId": "c"}
    delivered = SimpleNamespace(
        id="e1", source="/subscriptions/00000000-0000-4000-8000-000000000001", subject=vm,
        type="Microsoft.Resources.ResourceWriteSuccess", time=datetime(2026, 11, 25, tzinfo=UTC),
        specversion="1.0", get_json=lambda: data,
    )
    as_read = event_as_dict(delivered)
    assert as_read["specversion"] == "1.0" and "topic" not in as_read
    assert isinstance(events.classify(as_read), events.ProtectResource)


def test_the_rejection_excerpt_is_bounded_even_for_unserialisable_input() -> None:
    deep: list[object] = []
    cursor = deep
    for _ in range(5000):
        cursor.append([])
        cursor = cursor[0]  # type: ignore[assignment]
    assert len(_excerpt(deep)) <= 4000
    assert len(_excerpt("x" * 10_000)) == 4000
