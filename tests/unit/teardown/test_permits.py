"""``permits``: ARM's evaluation of the app's effective permissions (Permissions_ListForResource entries)."""

from __future__ import annotations

from steward.cloud.teardown_ops import STORAGE_UNREGISTER_ACTION, permits

ACTION = STORAGE_UNREGISTER_ACTION


def test_a_wildcard_grants_and_a_not_action_takes_back() -> None:
    assert permits([{"actions": ["*"], "notActions": []}], ACTION)
    assert permits([{"actions": ["microsoft.storage/storageaccounts/*"]}], ACTION)
    assert not permits([{"actions": ["*/read"], "notActions": []}], ACTION)
    assert not permits([{"actions": ["*"], "notActions": ["Microsoft.Storage/*"]}], ACTION)
    assert not permits([], ACTION)


def test_one_entry_that_grants_is_enough() -> None:
    entries = [{"actions": ["*/read"]}, {"actions": ["Microsoft.Storage/storageAccounts/*"], "notActions": []}]
    assert permits(entries, ACTION)
