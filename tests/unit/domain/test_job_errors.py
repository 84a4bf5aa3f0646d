"""A backup job's error code keeps the type Azure gives it (docs/azure-facts.md, "Backups, jobs, recovery points
and restores"): an integer from a Recovery Services job (``AzureIaaSVMErrorInfo.errorCode``), a string from a
Backup vault job (``UserFacingError.code``). Neither crashes the drill's records, and the record says which."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from steward.domain.drill_records import JobError, JobState
from steward.domain.errors import InvalidValue

JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
                    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
                    max_leaves=6)


def test_a_recovery_services_job_error_keeps_its_integer_code_and_its_text() -> None:
    error = JobError.of_azure({"errorCode": 400001, "errorString": "Command execution failed.", "errorTitle": "",
                               "recommendations": []})
    assert error == JobError(code=400001, message="Command execution failed.")
    assert error.to_record() == {"code": 400001, "message": "Command execution failed."}


def test_a_backup_vault_job_error_keeps_its_string_code() -> None:
    error = JobError.of_azure({"code": "UserErrorTargetNotFound", "message": "gone"})
    assert error.to_record() == {"code": "UserErrorTargetNotFound", "message": "gone"}


def test_a_zero_code_is_a_code_not_a_missing_one() -> None:
    assert JobError.of_azure({"errorCode": 0, "errorString": "", "code": "other"}).code == 0


@pytest.mark.parametrize("code", [400001, "UserErrorDiskRestoreFailed", "400001", None])
def test_a_job_state_round_trips_its_error_code_with_its_type(code: Any) -> None:
    state = JobState.from_record({"status": "Failed", "error": {"code": code, "message": "m"}})
    assert state.error == JobError(code=code, message="m")
    again = JobState.from_record(state.to_record())
    assert again == state and type(again.error_record["code"] if again.error_record else None) is type(code)


@pytest.mark.parametrize("code", [True, 1.5, [1], {"a": 1}])
def test_a_record_whose_code_is_neither_an_integer_nor_a_string_is_refused_where_it_is_read(code: Any) -> None:
    with pytest.raises(InvalidValue, match="integer, a string or null"):
        JobState.from_record({"status": "Failed", "error": {"code": code, "message": "m"}})


@given(code=JSON, message=JSON)
def test_any_error_azure_could_send_becomes_a_readable_record(code: Any, message: Any) -> None:
    error = JobError.of_azure({"errorCode": code, "errorString": message})
    assert JobState.from_record({"status": "Failed", "error": error.to_record()}).error == error
    assert isinstance(error.code, int | str | None) and not isinstance(error.code, bool)
