"""The teardown marker on a vault: Microsoft.Resources/tags at the vault's scope (merge, compare-and-delete),
found by a tag filter, and the vault's other tags left alone."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from azure.core.exceptions import HttpResponseError

from steward.cloud.teardown_ops import TeardownOps
from steward.cloud.vault_markers import VaultMarkers
from steward.domain.compensation import MARKER_TAG, TeardownMarker
from steward.domain.teardown import SettingChange, VaultRef

from .conftest import Estate

AT = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def _marker(instance: str, **earlier: str) -> TeardownMarker:
    return TeardownMarker.for_changes(instance, AT, [SettingChange(k, v, "Disabled") for k, v in earlier.items()])


def test_the_sandbox_serves_tags_at_a_vault_scope_with_azures_limits(estate: Estate) -> None:
    rg = estate.group()
    vault_id = estate.rs_vault(rg, tags={"owner": "team-a"})
    tags = estate.clients.resources(estate.subscription).tags
    tags.begin_update_at_scope(vault_id, {"operation": "Merge", "properties": {"tags": {"a": "1"}}}).result()
    assert estate.rs.vaults.get(rg, "rsv").tags == {"owner": "team-a", "a": "1"}
    tags.begin_update_at_scope(vault_id, {"operation": "Delete", "properties": {"tags": {"a": "2"}}}).result()
    assert estate.rs.vaults.get(rg, "rsv").tags == {"owner": "team-a", "a": "1"}  # another value: kept
    tags.begin_update_at_scope(vault_id, {"operation": "Delete", "properties": {"tags": {"a": "1"}}}).result()
    assert estate.rs.vaults.get(rg, "rsv").tags == {"owner": "team-a"}
    with pytest.raises(HttpResponseError) as caught:
        tags.begin_update_at_scope(vault_id, {"operation": "Merge", "properties": {"tags": {"v": "x" * 257}}}).result()
    assert caught.value.status_code == 400
    many = {f"t{i}": "x" for i in range(50)}
    with pytest.raises(HttpResponseError):
        tags.begin_update_at_scope(vault_id, {"operation": "Merge", "properties": {"tags": many}}).result()


def test_a_marker_is_written_once_found_and_removed_only_by_its_teardown(estate: Estate, ops: TeardownOps) -> None:
    rg = estate.group()
    vault = VaultRef.parse(estate.rs_vault(rg, tags={"owner": "team-a"}))
    markers = VaultMarkers(ops)
    first = _marker("teardown-rsv-1", softDelete="Enabled", enhancedSecurity="Enabled")
    assert markers.mark(vault, first) == ("marked", first)
    assert markers.mark(vault, first) == ("unchanged", first)
    assert estate.rs.vaults.get(rg, "rsv").tags == {"owner": "team-a", MARKER_TAG: first.encode()}
    assert (vault.id, first.encode()) in list(markers.find(estate.subscription))
    # a second teardown over an interrupted one keeps the older earlier values and owns the marker
    second = _marker("teardown-rsv-2")
    effect, merged = markers.mark(vault, second)
    assert effect == "marked" and TeardownMarker.decode(markers.read(vault)) == merged
    assert merged.instance_id == "teardown-rsv-2"
    assert dict(merged.earlier) == {"softDelete": "Enabled", "enhancedSecurity": "Enabled"}
    assert markers.unmark(vault, "teardown-rsv-1") == "unchanged"
    assert markers.unmark(vault, "teardown-rsv-2") == "removed"
    assert markers.unmark(vault, "teardown-rsv-2") == "unchanged"
    assert estate.rs.vaults.get(rg, "rsv").tags == {"owner": "team-a"}


def test_markers_on_a_backup_vault_and_the_current_settings(estate: Estate, ops: TeardownOps) -> None:
    rg = estate.group()
    vault = VaultRef.parse(estate.backup_vault(rg))
    markers = VaultMarkers(ops)
    assert markers.mark(vault, _marker("teardown-bv-1", softDelete="Enabled"))[0] == "marked"
    assert markers.read(vault) is not None
    assert markers.current_settings(vault) == {"softDelete": "Enabled", "immutability": "Disabled"}
    assert markers.unmark(vault) == "removed"
