"""Drills with STEWARD_SUBSCRIPTIONS empty ("empty: none", README settings): a drill restores disks and VMs and
creates storage accounts, so with no managed subscription it may act on none - as the teardown refuses every
vault then - instead of on every subscription the app's identity can list."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from activities import drill as drill_activities
from entrypoints.caller_checks import RequestRefused
from entrypoints.drill_http import check_scope
from steward import bootstrap
from steward.domain.drill_inputs import DrillCandidatesQuery
from steward.settings import Settings

SUB = "00000000-0000-4000-8000-000000000001"
VM = f"/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm1"


@pytest.mark.parametrize(
    "request_",
    [{"resources": [VM], "subscriptions": []}, {"resources": [], "subscriptions": [SUB]},
     {"resources": [], "subscriptions": []}],
)
def test_with_no_managed_subscription_the_drill_route_refuses(request_: dict[str, list[str]]) -> None:
    with pytest.raises(RequestRefused) as refused:
        check_scope(request_, ())
    assert (refused.value.status, refused.value.code) == (403, "OutsideSubscriptions")
    assert "STEWARD_SUBSCRIPTIONS" in refused.value.message


def test_a_managed_subscription_still_passes_and_another_is_refused() -> None:
    check_scope({"resources": [VM], "subscriptions": []}, (SUB,))
    with pytest.raises(RequestRefused):
        check_scope({"resources": [VM.replace(SUB, SUB[:-1] + "2")], "subscriptions": []}, (SUB,))


@pytest.fixture
def unmanaged(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    bootstrap.use(settings=Settings(subscriptions=()))

    class Reader:
        def __init__(self, clients: object) -> None:
            raise AssertionError("the drill must not list every subscription the identity can see")

    monkeypatch.setattr(drill_activities, "ArmEstateReader", Reader, raising=False)
    monkeypatch.setattr(bootstrap, "clients", lambda: None)
    yield
    monkeypatch.undo()  # bootstrap.clients again before use() forgets what was built
    bootstrap.use()


def test_the_timers_drill_of_everything_due_covers_no_subscription_when_none_is_managed(unmanaged: None) -> None:
    assert drill_activities._subscriptions(DrillCandidatesQuery()) == []


def test_with_no_managed_subscription_an_audit_of_a_named_subscription_is_refused() -> None:
    """The same rule for ``POST /api/audits`` (the review's finding 3): it audited - and remediated - any
    subscription a caller named while STEWARD_SUBSCRIPTIONS was empty."""
    from entrypoints import audit_timer

    bootstrap.use(settings=Settings(subscriptions=()))
    try:
        with pytest.raises(RequestRefused) as refused:
            audit_timer._requested_subscriptions(b'{"subscriptions": ["%s"]}' % SUB.encode())
        assert (refused.value.status, refused.value.code) == (403, "SubscriptionNotManaged")
        bootstrap.use(settings=Settings(subscriptions=(SUB,)))
        assert audit_timer._requested_subscriptions(b'{"subscriptions": ["%s"]}' % SUB.encode()) == []
    finally:
        bootstrap.use()


def test_a_validation_detail_keeps_newlines_and_tabs_but_no_other_control_characters() -> None:
    from entrypoints.caller_checks import RequestRefused
    from entrypoints.drill_http import validation_from_http

    kept = validation_from_http(b'{"result": "fail", "detail": "two lines\\nand\\ta tab"}')
    assert kept == {"result": "fail", "detail": "two lines\nand\ta tab"}
    # what the OpenAPI pattern allows is accepted (schemathesis sends it): other Unicode, no-break spaces included
    assert validation_from_http(b'{"result": "pass", "detail": "a\\u00a0b\\u2028c \\u00e9"}')["detail"]
    for bad in ("\\u001b[2J", "bell\\u0007", "back\\rwards", "nul\\u0000", "csi\\u009b2J", "del\\u007f"):
        try:
            validation_from_http(('{"result": "pass", "detail": "' + bad + '"}').encode())
        except RequestRefused as refused:
            assert (refused.status, refused.code) == (400, "InvalidRequest")
        else:
            raise AssertionError(f"{bad!r} was accepted")
