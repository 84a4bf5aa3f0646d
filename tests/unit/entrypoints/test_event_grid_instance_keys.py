"""Instance ids of moves and failed vault deletes are keyed by the event's id, never by ARM's correlation id.

ARM takes ``data.correlationId`` from the caller's ``x-ms-correlation-request-id`` (ARM RPC
``common-api-details.md``; docs/azure-facts.md, "Events"): whoever may write to a resource group chooses it, and
one Terraform session or deployment shares one. Keyed on it, a caller with write on a group could collapse another's
move onto its own running reconcile, and a caller who may attempt a vault delete could make an allowed principal's
failed delete look handled for ever. The event ``id`` is Event Grid's unique identifier, written by ARM on the
subscription system topic (MicrosoftDocs/azure-docs ``articles/event-grid/event-schema-subscriptions.md``), and a
redelivery keeps it: redeliveries still collapse. Instances started under the old, correlation-keyed ids are read
so that a redelivery of THEIR event starts nothing, and nothing else matches them.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any, cast

import azure.durable_functions as df
import pytest

from entrypoints.event_grid import handle_event
from steward import bootstrap
from steward.cloud.publisher import MemoryPublisher
from steward.domain.ids import ResourceId
from steward.domain.teardown import RequestSource, TeardownRequest, plan_instance_id
from steward.settings import Settings

SUB = "0b1e4a7c-1111-4c2d-9e3f-5a6b7c8d9e0f"
GROUP = f"/subscriptions/{SUB}/resourceGroups/rg-app"
VAULT = f"/subscriptions/{SUB}/resourceGroups/rg-app/providers/Microsoft.RecoveryServices/vaults/rsv-app"
MOVE = "Microsoft.Resources/subscriptions/resourceGroups/moveResources/action"
VAULT_DELETE = "Microsoft.RecoveryServices/vaults/delete"
CHOSEN = "c0ffee00-0000-4000-8000-00000000beef"  # one x-ms-correlation-request-id, sent by two callers
ATTACKER, OWNER = "aaaaaaaa-0000-4000-8000-0000000000aa", "bbbbbbbb-0000-4000-8000-0000000000bb"
RUNNING, COMPLETED = df.OrchestrationRuntimeStatus.Running, df.OrchestrationRuntimeStatus.Completed


class Durable:
    """Durable's client as the doorway uses it: status (with input) and start."""

    def __init__(self) -> None:
        self.instances: dict[str, SimpleNamespace] = {}
        self.started: list[tuple[str, str]] = []

    async def get_status(self, instance_id: str, show_input: bool = False) -> SimpleNamespace | None:
        return self.instances.get(instance_id)

    async def start_new(self, name: str, instance_id: str, payload: Any) -> str:
        self.started.append((name, instance_id))
        self.instances[instance_id] = SimpleNamespace(runtime_status=RUNNING, input_=payload)
        return instance_id

    def finish_all(self) -> None:
        for status in self.instances.values():
            status.runtime_status = COMPLETED


@pytest.fixture
def durable() -> Iterator[Durable]:
    bootstrap.use(settings=Settings(subscriptions=(SUB,)), publisher=MemoryPublisher())
    yield Durable()
    bootstrap.use()


def event(operation: str, subject: str, event_id: str, *, caller: str = OWNER, correlation: str = CHOSEN,
          time: str = "2026-12-06T08:00:00.1234567Z") -> dict[str, Any]:
    action, outcome, status = ("Action", "Success", "Succeeded") if operation == MOVE else ("Delete", "Failure",
                                                                                          "Failed")
    return {
        "id": event_id, "topic": f"/subscriptions/{SUB}", "subject": subject,
        "eventType": f"Microsoft.Resources.Resource{action}{outcome}", "eventTime": time, "dataVersion": "2",
        "data": {"operationName": operation, "resourceUri": subject, "status": status, "subscriptionId": SUB,
                 "tenantId": "72f988bf-86f1-41af-91ab-2d7cd011db47", "correlationId": correlation,
                 "claims": {"http://schemas.microsoft.com/identity/claims/objectidentifier": caller}},
    }


def deliver(durable: Durable, raw: dict[str, Any]) -> str:
    return asyncio.run(handle_event(raw, cast(Any, durable)))


def test_a_reused_correlation_id_does_not_collapse_a_move_onto_another_moves_running_reconcile(
    durable: Durable,
) -> None:
    assert deliver(durable, event(MOVE, GROUP, "move-attacker", caller=ATTACKER)) == "started"
    assert deliver(durable, event(MOVE, GROUP, "move-owner")) == "started"  # its own reconcile, not collapsed
    assert [name for name, _ in durable.started] == ["reconcile_move", "reconcile_move"]
    assert durable.started[0][1] != durable.started[1][1]


def test_a_redelivered_move_still_collapses_whatever_correlation_it_carries(durable: Durable) -> None:
    assert deliver(durable, event(MOVE, GROUP, "move-1")) == "started"
    assert deliver(durable, event(MOVE, GROUP, "move-1", correlation="another")) == "duplicate"  # while running
    durable.finish_all()
    assert deliver(durable, event(MOVE, GROUP, "move-1")) == "duplicate"  # and after (Event Grid's 24 h)
    assert len(durable.started) == 1


def test_a_reused_correlation_id_does_not_make_another_failed_vault_delete_look_handled(durable: Durable) -> None:
    assert deliver(durable, event(VAULT_DELETE, VAULT, "delete-attacker", caller=ATTACKER)) == "started"
    durable.finish_all()  # the attacker's request was refused or cancelled: its instance ended
    assert deliver(durable, event(VAULT_DELETE, VAULT, "delete-owner")) == "started"
    assert [name for name, _ in durable.started] == ["teardown_vault", "teardown_vault"]
    assert deliver(durable, event(VAULT_DELETE, VAULT, "delete-owner")) == "duplicate"  # one event, one teardown


def _old_move_id(correlation: str) -> str:
    """The id ``steward.domain.events`` gave a move before (the correlation id, as the old code hashed it)."""
    parts = "\n".join((ResourceId.parse(GROUP).key, correlation.lower()))
    return "moved:" + hashlib.sha256(parts.encode()).hexdigest()[:32]


def _old_teardown_id(correlation: str) -> str:
    return plan_instance_id(VAULT) + "-" + hashlib.sha256(correlation.encode()).hexdigest()[:8]


def test_a_move_handled_under_its_old_correlation_keyed_id_is_not_started_again(durable: Durable) -> None:
    before = event(MOVE, GROUP, "move-before-the-change")
    durable.instances[_old_move_id(CHOSEN)] = SimpleNamespace(
        runtime_status=RUNNING, input_={"kind": "moved", "origin": {"eventId": "move-before-the-change"}})
    assert deliver(durable, before) == "duplicate"  # Event Grid redelivers it (up to 24 h): nothing new starts
    assert deliver(durable, event(MOVE, GROUP, "another-move")) == "started"  # the same correlation id, not it
    assert len(durable.started) == 1


def test_a_failed_delete_handled_under_its_old_correlation_keyed_id_is_not_started_again(durable: Durable) -> None:
    old = TeardownRequest(VAULT, OWNER, RequestSource.EVENT, True, None, CHOSEN, "backup-steward:teardown",
                          requested_at=None)
    record = old.to_record() | {"requestedAt": "2026-12-06T08:00:00.123456+00:00"}
    assert "eventId" not in record  # as instances started before the change recorded it
    durable.instances[_old_teardown_id(CHOSEN)] = SimpleNamespace(runtime_status=COMPLETED, input_=record)
    assert deliver(durable, event(VAULT_DELETE, VAULT, "delete-before-the-change")) == "duplicate"
    assert deliver(durable, event(VAULT_DELETE, VAULT, "delete-by-another", caller=ATTACKER)) == "started"
    assert deliver(durable, event(VAULT_DELETE, VAULT, "a-later-attempt", time="2026-12-06T09:00:00Z")) == "started"
    assert len(durable.started) == 2
