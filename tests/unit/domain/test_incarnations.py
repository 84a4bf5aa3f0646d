"""The pure decisions around incarnations: a stopped item of a re-created VM is resumed, a soft-deleted one is
left to a person, a delete event stops nothing while the resource exists, and an event id starts work once."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from steward.domain import deliveries
from steward.domain import protection_flow as flow
from steward.domain.protection import OutcomeStatus, ProtectionOutcome, ProtectionRef

SUB = "00000000-0000-4000-8000-000000000001"
RSV = f"/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.RecoveryServices/vaults/rsv"
VM = f"/subscriptions/{SUB}/resourceGroups/app/providers/Microsoft.Compute/virtualMachines/vm1"
ALREADY = flow.Verdict(OutcomeStatus.ALREADY_PROTECTED, f"already protected in {RSV}")
T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def item(state: str, *, soft_deleted: bool = False) -> dict[str, object]:
    return {"id": f"{RSV}/backupFabrics/Azure/protectionContainers/c/protectedItems/i",
            "properties": {"protectionState": state, "isScheduledForDeferredDelete": soft_deleted}}


# ---- resume ----------------------------------------------------------------------------------------------


def test_a_stopped_item_is_resumed_and_a_protecting_one_stays_already_protected() -> None:
    assert flow.already_protected_item(item("ProtectionStopped"), ALREADY, RSV) is None
    for state in ("Protected", "IRPending", "ProtectionError"):
        assert flow.already_protected_item(item(state), ALREADY, RSV) is ALREADY
    assert flow.already_protected_item(None, ALREADY, RSV) is ALREADY  # nothing read: backupStatus stands


def test_a_soft_deleted_item_is_left_to_a_person_never_resumed() -> None:
    verdict = flow.already_protected_item(item("ProtectionStopped", soft_deleted=True), ALREADY, RSV)
    assert verdict is not None and verdict.status is OutcomeStatus.LEFT_AS_IS
    assert "soft-deleted" in verdict.reason and "person" in verdict.reason and RSV in verdict.reason
    refused = flow.outcome_of_enable({"resourceId": VM}, {"ok": False, "code": flow.ITEM_SOFT_DELETED,
                                                          "message": verdict.reason}, {"vault_id": RSV})
    assert refused.status is OutcomeStatus.LEFT_AS_IS and refused.reason == verdict.reason


def test_only_a_protected_result_of_a_resume_reads_resumed() -> None:
    done = ProtectionOutcome(OutcomeStatus.PROTECTED, VM, vault_id=RSV, item_id="i")
    assert flow.resumed(done).status is OutcomeStatus.RESUMED and flow.resumed(done).item_id == "i"
    failed = ProtectionOutcome(OutcomeStatus.FAILED, VM, reason="x")
    assert flow.resumed(failed) is failed
    assert OutcomeStatus.RESUMED in flow.SUCCESSFUL


# ---- delete events against the live resource ---------------------------------------------------------------

GONE_INTENT = {"kind": "gone", "resourceId": VM, "origin": {"eventTime": T0.isoformat()}}


def live(identity: str = "vm-guid-1", created: datetime | None = T0 - timedelta(days=3)) -> dict[str, str]:
    return {"id": VM, "identity": identity, "created_at": "" if created is None else created.isoformat()}


def test_a_confirmed_delete_goes_on() -> None:
    assert flow.alive_after_delete(GONE_INTENT, None, ProtectionRef(RSV, "i", VM, identity="vm-guid-1")) is None


def test_another_incarnation_than_the_item_protected_is_left_alone() -> None:
    alive = flow.alive_after_delete(GONE_INTENT, live("vm-guid-2"), ProtectionRef(RSV, "i", VM, identity="vm-guid-1"))
    assert alive is not None and "another incarnation" in alive.reason and "vm-guid-2" in alive.reason
    assert not alive.recheck


def test_a_resource_created_after_the_delete_event_is_left_alone() -> None:
    alive = flow.alive_after_delete(GONE_INTENT, live(created=T0 + timedelta(seconds=5)), ProtectionRef(RSV, "i", VM))
    assert alive is not None and "re-created" in alive.reason and "exists again" in alive.reason
    assert not alive.recheck


def test_a_resource_that_still_exists_is_never_stopped_on_a_guess() -> None:
    for facts in (live(), live(created=None), live(identity="")):
        alive = flow.alive_after_delete(GONE_INTENT, facts, ProtectionRef(RSV, "i", VM, identity="vm-guid-1"))
        assert alive is not None and "still exists" in alive.reason
        assert alive.recheck  # its delete may still be finishing: looked at again later
    assert flow.alive_after_delete({"resourceId": VM}, live(), None) is not None  # no event time: still alive


# ---- event ids handled once ------------------------------------------------------------------------------


def previous(event_id: str, when: datetime, handled: list[dict[str, str]] | None = None) -> dict[str, object]:
    record: dict[str, object] = {"kind": "protect", "resourceId": VM,
                                 "origin": {"eventId": event_id, "eventTime": when.isoformat()}}
    if handled is not None:
        record[deliveries.HANDLED_KEY] = handled
    return record


def test_a_redelivered_event_is_handled_and_a_new_one_is_not() -> None:
    run = previous("e1", T0)
    assert deliveries.already_handled(run, "e1")
    assert not deliveries.already_handled(run, "e2")
    assert not deliveries.already_handled(None, "e1") and not deliveries.already_handled("not json", "e1")
    assert deliveries.already_handled(json.dumps(run), "e1")  # Durable may hand the input back as text


def test_the_handled_ids_travel_forward_so_an_older_redelivery_is_still_recognised() -> None:
    first = previous("e1", T0)
    second = previous("e2", T0 + timedelta(minutes=1), deliveries.remember(first, "e2", T0 + timedelta(minutes=1)))
    assert deliveries.already_handled(second, "e1") and deliveries.already_handled(second, "e2")


def test_ids_older_than_event_grids_retry_window_are_forgotten() -> None:
    old = previous("e-old", T0 - deliveries.RETRY_WINDOW - timedelta(seconds=1))
    carried = deliveries.remember(old, "e-new", T0)
    assert [e["id"] for e in carried] == ["e-new"]


@given(st.lists(st.text(min_size=1, max_size=8), max_size=300))
def test_the_carried_list_is_bounded_unique_and_starts_with_the_new_event(ids: list[str]) -> None:
    record: object = None
    for n, event_id in enumerate(ids):
        carried = deliveries.remember(record, event_id, T0 + timedelta(seconds=n))
        assert carried[0]["id"] == event_id
        assert len(carried) <= deliveries.MAX_REMEMBERED
        assert len({e["id"] for e in carried}) == len(carried)
        record = previous(event_id, T0 + timedelta(seconds=n), carried)
    if ids:
        assert deliveries.already_handled(record, ids[-1])
