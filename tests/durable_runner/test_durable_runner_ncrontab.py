"""NCRONTAB schedules of timer triggers (six fields, seconds first) and their binding expressions."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from sandbox.durable.discovery import resolve_setting_expressions
from sandbox.durable.errors import AppLoadError
from sandbox.host import InvalidSchedule, NCronSchedule

MONDAY_NOON = datetime(2026, 11, 23, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(("expression", "expected"), [
    ("0 */5 * * * *", datetime(2026, 11, 23, 12, 5, 0, tzinfo=UTC)),
    ("0 0 3 * * *", datetime(2026, 11, 24, 3, 0, 0, tzinfo=UTC)),
    ("30 15 9-17 * * MON-FRI", datetime(2026, 11, 23, 12, 15, 30, tzinfo=UTC)),
    ("0 0 0 * * SUN", datetime(2026, 11, 29, 0, 0, 0, tzinfo=UTC)),
    ("0 0 6 1 JAN *", datetime(2027, 1, 1, 6, 0, 0, tzinfo=UTC)),
    ("0 0 12 * * 1", datetime(2026, 11, 30, 12, 0, 0, tzinfo=UTC)),
    ("5,10 0 12 * * *", datetime(2026, 11, 23, 12, 0, 5, tzinfo=UTC)),
])
def test_next_occurrence(expression: str, expected: datetime) -> None:
    assert NCronSchedule.parse(expression).next_after(MONDAY_NOON) == expected


@pytest.mark.parametrize(("expression", "complaint"), [
    ("0 */5 * * *", "has 5 fields"),
    ("0 61 * * * *", "minute field: 61 is outside 0-59"),
    ("0 0 * * FOO *", "month field: 'FOO'"),
    ("0 0 5-1 * * *", "runs backwards"),
    ("0 */0 * * * *", "step '0'"),
])
def test_invalid_schedules_say_what_is_wrong(expression: str, complaint: str) -> None:
    with pytest.raises(InvalidSchedule, match=complaint):
        NCronSchedule.parse(expression)


def test_binding_expressions_resolve_from_settings() -> None:
    assert resolve_setting_expressions("%AUDIT%", {"AUDIT": "0 0 2 * * *"}) == "0 0 2 * * *"
    with pytest.raises(AppLoadError, match="%MISSING%"):
        resolve_setting_expressions("%MISSING%", {})
