"""NCRONTAB schedules as the Functions timer trigger reads them: six fields, seconds first.

``{second} {minute} {hour} {day} {month} {day-of-week}``; each field takes ``*``, numbers, ranges
``a-b``, steps ``*/n`` and ``a-b/n``, lists ``a,b``, and month / weekday names (``JAN``, ``MON``).
Day of month and day of week combine like cron: when both are restricted, either may match.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from .errors import InvalidSchedule

_MONTHS = {
    n: i + 1
    for i, n in enumerate(["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"])
}
_DAYS = {n: i for i, n in enumerate(["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"])}
_BOUNDS = ((0, 59), (0, 59), (0, 23), (1, 31), (1, 12), (0, 6))
_NAMES: tuple[dict[str, int], ...] = ({}, {}, {}, {}, _MONTHS, _DAYS)
_FIELD = ("second", "minute", "hour", "day", "month", "day-of-week")


def _value(text: str, index: int) -> int:
    upper = text.upper()
    if upper in _NAMES[index]:
        return _NAMES[index][upper]
    if not upper.isdigit():
        raise InvalidSchedule(f"{_FIELD[index]} field: {text!r} is not a number or a name")
    number = int(upper)
    if index == 5 and number == 7:
        return 0
    low, high = _BOUNDS[index]
    if not low <= number <= high:
        raise InvalidSchedule(f"{_FIELD[index]} field: {number} is outside {low}-{high}")
    return number


def _field(text: str, index: int) -> frozenset[int]:
    low, high = _BOUNDS[index]
    values: set[int] = set()
    for part in text.split(","):
        base, _, step_text = part.partition("/")
        step = 1
        if step_text:
            if not step_text.isdigit() or int(step_text) == 0:
                raise InvalidSchedule(f"{_FIELD[index]} field: step {step_text!r} must be a positive number")
            step = int(step_text)
        if base == "*":
            start, end = low, high
        elif "-" in base:
            a, b = base.split("-", 1)
            start, end = _value(a, index), _value(b, index)
        else:
            start = _value(base, index)
            end = high if step_text else start
        if end < start:
            raise InvalidSchedule(f"{_FIELD[index]} field: range {base!r} runs backwards")
        values.update(range(start, end + 1, step))
    return frozenset(values)


@dataclass(frozen=True)
class NCronSchedule:
    text: str
    seconds: frozenset[int]
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]
    days_restricted: bool
    weekdays_restricted: bool

    @classmethod
    def parse(cls, text: str) -> NCronSchedule:
        fields = text.split()
        if len(fields) != 6:
            raise InvalidSchedule(
                f"schedule {text!r} has {len(fields)} fields; NCRONTAB needs 6 (second minute hour day month "
                "day-of-week)")
        parsed = [_field(f, i) for i, f in enumerate(fields)]
        seconds, minutes, hours, days, months, weekdays = parsed
        return cls(text, seconds, minutes, hours, days, months, weekdays,
                   days_restricted=fields[3] != "*", weekdays_restricted=fields[5] != "*")

    def _day_matches(self, day: datetime) -> bool:
        if day.month not in self.months:
            return False
        dom = day.day in self.days
        dow = (day.weekday() + 1) % 7 in self.weekdays
        if self.days_restricted and self.weekdays_restricted:
            return dom or dow
        return dom and dow

    def next_after(self, moment: datetime) -> datetime:
        """The first occurrence strictly after ``moment`` (same tzinfo)."""
        start = moment.replace(microsecond=0) + timedelta(seconds=1)
        day = start.replace(hour=0, minute=0, second=0)
        for _ in range(366 * 8):
            if self._day_matches(day):
                for hour in sorted(self.hours):
                    for minute in sorted(self.minutes):
                        for second in sorted(self.seconds):
                            candidate = day.replace(hour=hour, minute=minute, second=second)
                            if candidate >= start:
                                return candidate
            day += timedelta(days=1)
        raise InvalidSchedule(f"schedule {self.text!r} never fires")
