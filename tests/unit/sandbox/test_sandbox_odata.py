"""The $filter subset: eq/and only, quotes escaped by doubling, everything else a 400 that says why."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sandbox.arm.errors import ArmError
from sandbox.arm.odata import parse_filter

FIELDS = ("backupManagementType", "itemType", "policyName")


def quoted(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def test_the_backup_filters_parse_into_fields() -> None:
    text = "backupManagementType eq 'AzureIaasVM' and itemType eq 'VM'"
    assert parse_filter(text, FIELDS) == {"backupManagementType": "AzureIaasVM", "itemType": "VM"}


def test_field_names_are_matched_case_insensitively_and_spelled_as_allowed() -> None:
    assert parse_filter("ITEMTYPE EQ 'VM'", FIELDS) == {"itemType": "VM"}


def test_empty_filters_mean_no_filter() -> None:
    assert parse_filter(None, FIELDS) == {}
    assert parse_filter("   ", FIELDS) == {}


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("itemType ne 'VM'", "only the 'eq' operator"),
        ("itemType eq 'VM' or itemType eq 'X'", "only 'and'"),
        ("vaultName eq 'v'", "unknown field 'vaultName'"),
        ("itemType eq 'VM' and itemType eq 'X'", "more than once"),
        ("itemType eq 'VM", "expected a quoted value"),
        ("(itemType eq 'VM')", "expected a field name"),
        ("startswith(itemType, 'V')", "unknown field 'startswith'"),
        ("itemType eq 'VM' and", "expected a field name"),
    ],
)
def test_anything_outside_the_subset_is_a_400_naming_the_problem(text: str, reason: str) -> None:
    with pytest.raises(ArmError) as caught:
        parse_filter(text, FIELDS)
    assert caught.value.status == 400 and caught.value.code == "InvalidFilter"
    assert reason in caught.value.message


def test_the_error_code_can_be_the_providers_own() -> None:
    with pytest.raises(ArmError) as caught:
        parse_filter("x eq 'y'", FIELDS, error_code="BMSUserErrorInvalidFilter")
    assert caught.value.code == "BMSUserErrorInvalidFilter"


@given(st.text(), st.text())
def test_any_value_round_trips_through_odata_quoting(first: str, second: str) -> None:
    text = f"itemType eq {quoted(first)} and policyName eq {quoted(second)}"
    assert parse_filter(text, FIELDS) == {"itemType": first, "policyName": second}


@given(st.text(max_size=80))
def test_arbitrary_text_either_parses_to_allowed_fields_or_is_a_400(text: str) -> None:
    try:
        parsed = parse_filter(text, FIELDS)
    except ArmError as exc:
        assert exc.status == 400
    else:
        assert set(parsed) <= set(FIELDS)


def test_an_injection_attempt_inside_quotes_stays_a_value() -> None:
    value = "x' or itemType eq 'VM"
    assert parse_filter(f"itemType eq {quoted(value)}", FIELDS) == {"itemType": value}
