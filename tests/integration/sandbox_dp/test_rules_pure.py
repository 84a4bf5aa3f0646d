"""The pure parts of the providers: scope inheritance, assignment filters, workload grants, state rules."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sandbox.arm.errors import ArmError
from sandbox.arm.providers import dataprotection_rules as rules
from sandbox.arm.providers.authorization_model import AssignmentFilter, guid_of_role_definition, scope_covers

SEGMENT = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=8)


@given(st.lists(SEGMENT, min_size=2, max_size=8), st.integers(min_value=1, max_value=8))
def test_a_scope_covers_itself_and_everything_below_it_in_any_case(parts: list[str], cut: int) -> None:
    full = "/" + "/".join(parts)
    prefix = "/" + "/".join(parts[: min(cut, len(parts))])
    assert scope_covers(prefix, full)
    assert scope_covers(prefix.upper(), full)
    assert scope_covers(full, full + "/")
    if len(prefix) < len(full):
        assert not scope_covers(full, prefix)


def test_a_scope_does_not_cover_a_sibling_sharing_its_prefix() -> None:
    assert not scope_covers("/subscriptions/s/resourceGroups/rg", "/subscriptions/s/resourceGroups/rg2/x")
    assert scope_covers("/", "/subscriptions/s")


@pytest.mark.parametrize(
    ("text", "at_scope", "principal"),
    [
        (None, False, None),
        ("atScope()", True, None),
        ("principalId eq 'abc'", False, "abc"),
        ("atScope() and principalId eq 'abc'", True, "abc"),
        ("assignedTo('abc')", False, "abc"),
    ],
)
def test_assignment_filters_the_sdk_sends(text: str | None, at_scope: bool, principal: str | None) -> None:
    parsed = AssignmentFilter.parse(text)
    assert (parsed.at_scope, parsed.principal_id) == (at_scope, principal)


@pytest.mark.parametrize("text", ["roleName eq 'x'", "principalId ne 'a'", "atScope() or principalId eq 'a'"])
def test_other_assignment_filters_are_refused_not_ignored(text: str) -> None:
    with pytest.raises(ArmError) as caught:
        AssignmentFilter.parse(text)
    assert caught.value.status == 400


def test_role_definition_guid_from_any_id_form() -> None:
    guid = "acdd72a7-3385-48ef-bd42-f606fba81ae7"
    assert guid_of_role_definition(f"/subscriptions/s/providers/Microsoft.Authorization/roleDefinitions/{guid}") == guid
    assert guid_of_role_definition(f"/providers/Microsoft.Authorization/roleDefinitions/{guid.upper()}") == guid


def test_disk_grants_name_the_disk_and_the_snapshot_group() -> None:
    disk = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/disks/d"
    workload = rules.workload_for("microsoft.compute/disks")
    assert workload is not None
    grants = rules.required_grants(workload, disk, "/subscriptions/s/resourceGroups/snap")
    assert [(g.role, g.scope) for g in grants] == [
        ("Disk Backup Reader", disk),
        ("Disk Snapshot Contributor", "/subscriptions/s/resourceGroups/snap"),
    ]


def test_postgresql_grants_include_reader_on_the_server_group() -> None:
    server = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.DBforPostgreSQL/flexibleServers/p"
    workload = rules.workload_for(rules.PG_FLEX)
    assert workload is not None
    assert ("Reader", "/subscriptions/s/resourceGroups/rg") in [(g.role, g.scope) for g in
                                                                 rules.required_grants(workload, server, None)]


def test_snapshot_group_must_be_a_group_in_the_disk_subscription() -> None:
    disk = "/subscriptions/s1/resourceGroups/rg/providers/Microsoft.Compute/disks/d"
    workload = rules.WORKLOADS[rules.DISK.lower()]
    assert rules.snapshot_group_problem(disk, "/subscriptions/s1/resourceGroups/snap", workload) is None
    other = "/subscriptions/s2/resourceGroups/x"
    assert "same subscription" in str(rules.snapshot_group_problem(disk, other, workload))
    assert "not a resource group" in str(rules.snapshot_group_problem(disk, disk, workload))
    assert rules.snapshot_group_problem(disk, None, workload) is not None
    assert rules.snapshot_group_problem(disk, None, rules.WORKLOADS[rules.BLOB.lower()]) is None


@pytest.mark.parametrize(
    ("current", "wanted", "allowed"),
    [("On", "Off", True), ("Enabled", "Off", True), ("AlwaysOn", "Off", False), ("AlwaysOn", "On", False),
     ("alwayson", "AlwaysOn", True), ("Off", "AlwaysOn", True)],
)
def test_always_on_soft_delete_is_one_way(current: str, wanted: str, allowed: bool) -> None:
    assert rules.soft_delete_change_allowed(current, wanted) is allowed


def test_locked_immutability_is_one_way() -> None:
    assert rules.immutability_change_allowed("Unlocked", "Disabled")
    assert rules.immutability_change_allowed("Unlocked", "Locked")
    assert not rules.immutability_change_allowed("Locked", "Unlocked")


def test_locations_compare_without_case_or_spaces() -> None:
    assert rules.same_location("West US", "westus")
    assert not rules.same_location("westus", "westus2")
