"""The teardown marker and the reconciler's decisions (pure): what fits a tag, what is restored, when."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from steward.domain.compensation import (
    MARKER_TAG,
    MAX_TAG_NAME,
    MAX_TAG_VALUE,
    InvalidMarker,
    ReconcileAction,
    TeardownMarker,
    decide_reconciliation,
    restore_changes,
)
from steward.domain.teardown import RequestSource, SettingChange, TeardownRequest, instance_id_for

AT = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
VAULT = (
    "/subscriptions/00000000-0000-4000-8000-000000000001/resourceGroups/rg/providers/"
    "Microsoft.RecoveryServices/vaults/v"
)
ALL_WEAKENED = [
    SettingChange("softDelete", "Enabled", "Disabled"),
    SettingChange("enhancedSecurity", "Enabled", "Disabled"),
    SettingChange("immutability", "Unlocked", "Disabled"),
]


def _longest_instance_id() -> str:
    name = "v" + "x" * 89  # ARM's longest vault name
    vault = VAULT.rsplit("/", 1)[0] + "/" + name
    request = TeardownRequest(vault, "someone", RequestSource.CUSTOM_EVENT, dry_run=False,
                              approved_fingerprint="sha256:" + "f" * 64, correlation_id="c" * 100)
    return instance_id_for(request)


def test_the_marker_of_the_longest_instance_id_with_every_setting_fits_a_tag_value() -> None:
    assert len(MARKER_TAG) <= MAX_TAG_NAME
    marker = TeardownMarker.for_changes(_longest_instance_id(), AT, ALL_WEAKENED)
    text = marker.encode()
    assert len(text) <= MAX_TAG_VALUE
    assert TeardownMarker.decode(text) == marker


def test_a_marker_too_long_for_a_tag_is_refused_not_cut() -> None:
    with pytest.raises(InvalidMarker):
        TeardownMarker.for_changes("t" * 250, AT, ALL_WEAKENED).encode()


@pytest.mark.parametrize("text", [
    "", "not json", "[]", '{"v":2,"i":"a","t":"2026-01-01T00:00:00Z","s":{}}',
    '{"v":1,"i":"a","s":{}}', '{"v":1,"i":"a","t":"2026-01-01T00:00:00Z","s":{"retention":"14"}}',
    '{"v":1,"i":"","t":"2026-01-01T00:00:00Z","s":{}}', "x" * 300,
])
def test_an_unreadable_marker_is_refused(text: str) -> None:
    with pytest.raises(InvalidMarker):
        TeardownMarker.decode(text)


def test_a_second_teardown_keeps_the_values_from_before_the_first() -> None:
    older = TeardownMarker.for_changes("teardown-1", AT, ALL_WEAKENED[:1])
    newer = TeardownMarker.for_changes("teardown-2", AT + timedelta(hours=1),
                                       [SettingChange("softDelete", "Disabled", "Disabled"), ALL_WEAKENED[1]])
    merged = newer.merged_with(older)
    assert merged.instance_id == "teardown-2" and merged.at == AT
    assert dict(merged.earlier) == {"softDelete": "Enabled", "enhancedSecurity": "Enabled"}


def test_restore_turns_back_on_exactly_what_was_on() -> None:
    marker = TeardownMarker.for_changes("t", AT, ALL_WEAKENED)
    current = {"softDelete": "Disabled", "enhancedSecurity": "Enabled", "immutability": "Disabled"}
    assert restore_changes(marker, current) == (
        SettingChange("softDelete", "Disabled", "Enabled"),
        SettingChange("immutability", "Disabled", "Unlocked"),
    )


STATES = {
    "softDelete": ["Disabled", "Enabled", "AlwaysON", "Invalid"],
    "enhancedSecurity": ["Disabled", "Enabled", "AlwaysON"],
    "immutability": ["Disabled", "Unlocked", "Locked"],
}
RANK = {"disabled": 0, "invalid": 0, "enabled": 1, "unlocked": 1, "alwayson": 2, "locked": 2}


@given(
    earlier=st.fixed_dictionaries({k: st.sampled_from(v) for k, v in STATES.items()}),
    current=st.fixed_dictionaries({k: st.sampled_from(v) for k, v in STATES.items()}),
)
def test_the_reconciler_only_ever_makes_a_vault_stronger_and_never_irreversible(
    earlier: dict[str, str], current: dict[str, str]
) -> None:
    """A marker anyone with tag rights could forge: at worst it turns a protection on."""
    marker = TeardownMarker("forged", AT, tuple(sorted(earlier.items())))
    for change in restore_changes(marker, current):
        assert RANK[change.to_value.lower()] > RANK[change.from_value.lower()]
        assert change.to_value not in ("Locked", "AlwaysON")
        assert change.from_value == current[change.setting]


def _decide(raw: str, live: tuple[str, ...] = (), snapshot: datetime = AT + timedelta(hours=1),
            skew: timedelta = timedelta(minutes=5)) -> ReconcileAction:
    return decide_reconciliation(VAULT, raw, live_instances=live, snapshot_at=snapshot, skew=skew).action


def test_a_marker_of_a_running_teardown_is_left_to_it() -> None:
    raw = TeardownMarker.for_changes("teardown-1", AT, ALL_WEAKENED).encode()
    assert _decide(raw, live=("teardown-1",)) is ReconcileAction.LEAVE


def test_a_marker_of_a_teardown_that_no_longer_runs_is_restored() -> None:
    raw = TeardownMarker.for_changes("teardown-1", AT, ALL_WEAKENED).encode()
    assert _decide(raw, live=("teardown-2",)) is ReconcileAction.RESTORE


def test_a_marker_written_around_the_snapshot_waits_for_the_next_run() -> None:
    """A teardown started after the snapshot is not in it: its fresh marker is not an orphan."""
    raw = TeardownMarker.for_changes("teardown-new", AT, ALL_WEAKENED).encode()
    assert _decide(raw, snapshot=AT + timedelta(minutes=4)) is ReconcileAction.LEAVE
    assert _decide(raw, snapshot=AT + timedelta(minutes=6)) is ReconcileAction.RESTORE


def test_an_unreadable_marker_is_reported_not_acted_on() -> None:
    assert _decide("{garbage") is ReconcileAction.UNREADABLE
