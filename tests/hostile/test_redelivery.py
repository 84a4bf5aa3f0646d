"""A redelivered failed-delete event (Event Grid delivers at least once and retries for up to 24 h) must not
run an ``auto`` teardown again: against the real app on the local host, with four eyes off (the demo's setting,
where the auto path tears down on one allowed user's failed delete). Its own module: one local stack per
process at a time (the composition root is the process's)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from steward import bootstrap
from tests.hostile.conftest import ADMIN, App, start_app
from tests.hostile.test_teardown_events import HOUR, SECOND_ADMIN, TAG, delete_as, deliver, intact, opted_in_vault


@pytest.fixture(scope="module")
def one_person(tmp_path_factory: pytest.TempPathFactory) -> Iterator[App]:
    """The app as the demo runs it: four eyes off, so an allowed user's failed delete of an ``auto`` vault runs."""
    running = start_app(
        tmp_path_factory.mktemp("teardown-events-one-person"),
        {"STEWARD_TEARDOWN_ALLOWED_PRINCIPALS": f"{ADMIN},{SECOND_ADMIN}", "STEWARD_TEARDOWN_FOUR_EYES": "false"},
    )
    try:
        yield running
    finally:
        running.stack.stop()
        bootstrap.reset()


def test_a_redelivered_failed_delete_does_not_tear_down_the_vault_re_created_since(one_person: App) -> None:
    """Event Grid delivers at least once (retries up to 24 h): the same failed-delete event arriving again after
    its auto teardown ended must start nothing. It used to start the teardown again, auto-approved by a delete
    the user made of the *previous* vault: the owner's re-created vault (same name, same tag) was torn down
    (fails on the previous code). With four eyes on, the redelivery would only plan again."""
    app = one_person
    owner, rg, vault_id = opted_in_vault(app, "auto")
    delete_as(app, SECOND_ADMIN, rg)
    deadline = time.monotonic() + 60
    while intact(owner, rg) and time.monotonic() < deadline:
        time.sleep(0.1)
    app.settle()
    assert not intact(owner, rg), "the allowed user's failed delete of an auto vault did not tear it down"
    [event] = [
        e for e in app.sandbox.events.raised
        if e.get("eventType") == "Microsoft.Resources.ResourceDeleteFailure"
        and str(e.get("subject", "")).lower() == vault_id.lower()
    ]
    # the owner builds the vault again from the same template (same name, same tag) and protects a VM
    owner.rs_vault(rg, tags={TAG: "auto"})
    owner.protect_vm(rg, "rsv", "vm-2")
    app.stack.advance(2 * HOUR)
    assert intact(owner, rg)
    assert 200 <= deliver(app, event) < 300  # the same event again, as Event Grid redelivers it
    time.sleep(0.5)
    app.settle()
    assert intact(owner, rg), "a redelivered failed-delete event tore down the vault re-created since"
