"""What the teardown's records share beyond the one record codec (``steward.domain.records``): the record
version, the error a malformed one raises and the required time. Record field names are a contract: running
orchestrations keep them in their history."""

from __future__ import annotations

from datetime import datetime
from typing import Final

from steward.domain.errors import InvalidValue
from steward.domain.kernel import (
    format_time,
)
from steward.domain.records import record_str

RECORD_VERSION: Final = 1


#: A teardown request, event or record is malformed; the message says what is wrong. The shared kernel's error
#: (a vault id, a time or a state it could not read), under the teardown's name.
InvalidTeardownInput = InvalidValue


# --------------------------------------------------------------------------------------------- time


def req_time(value: datetime) -> str:
    text = format_time(value)
    assert text is not None
    return text


__all__ = ["RECORD_VERSION", "InvalidTeardownInput", "record_str", "req_time"]
