"""EventBridge schedule expressions: `rate(5 minutes)` and six-field `cron(...)`, parsed, and
the next firing time after a given instant.

Pure: the time zone is passed in as a `tzinfo` (the caller loads it with `zoneinfo`).

The rules are EventBridge's:

- `rate(value unit)`: value a positive integer; unit `minute`, `hour` or `day`, singular
  exactly when value is 1 (`rate(1 hours)` and `rate(5 hour)` are refused). A rate counts
  from the moment the rule was created (or last fired); it ignores time zones.
- `cron(minutes hours day-of-month month day-of-week year)`: minutes 0-59, hours 0-23,
  day-of-month 1-31, month 1-12 or JAN-DEC, day-of-week 1-7 (1 = Sunday) or SUN-SAT,
  year 1970-2199. Every field takes `*`, values, ranges `a-b`, lists `a,b` and steps `a/n`,
  `*/n`, `a-b/n`. Exactly one of day-of-month and day-of-week is `?`. Day-of-month also takes
  `L` (the last day), `LW` (the last weekday) and `nW` (the weekday nearest day n, never
  crossing into another month); day-of-week takes `L` (Saturday, as in Quartz), `nL` (the
  last such day of the month) and `n#k` (the k-th such day). A range may wrap (`FRI-MON`,
  `22-2`).

Time zones (EventBridge Scheduler's rules): a local time that does not exist because clocks
spring forward is skipped; a local time that happens twice because clocks fall back fires
once, the first time.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo

MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
WEEKDAYS = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")
YEARS = (1970, 2199)
RATE_UNITS = {"minute": 60, "hour": 3600, "day": 86_400}

_RATE = re.compile(r"rate\((?P<value>[^\s)]+)\s+(?P<unit>[^\s)]+)\)")
_CRON = re.compile(r"cron\((?P<fields>[^)]*)\)")
FORMS = (
    "rate(<value> <unit>) or cron(<minutes> <hours> <day-of-month> <month> <day-of-week> <year>)"
)


class ScheduleExpressionError(ValueError):
    """A malformed expression; the message names the expression, the part and the rule."""


@dataclass(frozen=True, slots=True)
class Rate:
    value: int
    unit: str  # minute, hour or day

    @property
    def seconds(self) -> int:
        return self.value * RATE_UNITS[self.unit]


@dataclass(frozen=True, slots=True)
class DaysOfMonth:
    days: frozenset[int] = frozenset()
    last: bool = False  # L
    last_weekday: bool = False  # LW
    nearest_weekday: frozenset[int] = frozenset()  # nW


@dataclass(frozen=True, slots=True)
class DaysOfWeek:
    days: frozenset[int] = frozenset()  # 1 = Sunday ... 7 = Saturday
    last: frozenset[int] = frozenset()  # nL: the last such day of the month
    nth: frozenset[tuple[int, int]] = frozenset()  # n#k: (weekday, k)


@dataclass(frozen=True, slots=True)
class Cron:
    minutes: tuple[int, ...]  # sorted
    hours: tuple[int, ...]
    months: tuple[int, ...]
    years: tuple[int, ...]
    days_of_month: DaysOfMonth | None  # None: `?`
    days_of_week: DaysOfWeek | None  # None: `?`

    def days(self, year: int, month: int) -> list[int]:
        """The days of this month the expression fires on, in order."""
        length = calendar.monthrange(year, month)[1]
        if self.days_of_month is not None:
            return _month_days(self.days_of_month, year, month, length)
        assert self.days_of_week is not None
        return _week_days(self.days_of_week, year, month, length)


Schedule = Rate | Cron


def parse(expression: str) -> Schedule:
    """`rate(...)` or `cron(...)`; raises ScheduleExpressionError naming the rule broken."""
    if not isinstance(expression, str):
        raise ScheduleExpressionError(f"{expression!r}: must be {FORMS}")
    text = expression.strip()
    if text.startswith("rate("):
        return _parse_rate(text)
    if text.startswith("cron("):
        return _parse_cron(text)
    raise ScheduleExpressionError(f"{expression!r}: must be {FORMS}")


def next_fire(schedule: Schedule, after: datetime, zone: tzinfo = UTC) -> datetime | None:
    """The first firing strictly after `after` (an aware datetime), in UTC; None if the
    expression never fires again. A `Rate` fires every period counted from `after`."""
    if after.tzinfo is None:
        raise ValueError("after must be an aware datetime")
    if isinstance(schedule, Rate):
        return (after + timedelta(seconds=schedule.seconds)).astimezone(UTC)
    return _next_cron(schedule, after.astimezone(UTC), zone)


# --- rate ------------------------------------------------------------------------------------


def _parse_rate(text: str) -> Rate:
    match = _RATE.fullmatch(text)
    if match is None:
        raise ScheduleExpressionError(
            f"{text!r}: must be rate(<value> <unit>), such as rate(5 minutes)"
        )
    raw, unit = match["value"], match["unit"]
    if not raw.isdigit() or int(raw) < 1:
        raise ScheduleExpressionError(f"{text!r}: the value {raw!r} must be a positive integer")
    value = int(raw)
    singular = unit.removesuffix("s")
    if singular not in RATE_UNITS:
        raise ScheduleExpressionError(
            f"{text!r}: the unit {unit!r} must be minute(s), hour(s) or day(s)"
        )
    if value == 1 and unit != singular:
        raise ScheduleExpressionError(
            f"{text!r}: with a value of 1 the unit must be singular ({singular})"
        )
    if value > 1 and unit == singular:
        raise ScheduleExpressionError(
            f"{text!r}: with a value above 1 the unit must be plural ({singular}s)"
        )
    return Rate(value, singular)


# --- cron parsing ----------------------------------------------------------------------------


def _parse_cron(text: str) -> Cron:
    match = _CRON.fullmatch(text)
    if match is None:
        raise ScheduleExpressionError(f"{text!r}: must be {FORMS}")
    fields = match["fields"].split()
    if len(fields) != 6:
        raise ScheduleExpressionError(
            f"{text!r}: must have 6 fields (minutes hours day-of-month month day-of-week "
            f"year), not {len(fields)}"
        )
    minutes, hours, dom, month, dow, year = fields
    if (dom == "?") == (dow == "?"):
        raise ScheduleExpressionError(
            f"{text!r}: exactly one of day-of-month ({dom}) and day-of-week ({dow}) must be '?'"
        )
    where = _Where(text)
    return Cron(
        minutes=_sorted(_values(where, "minutes", minutes, 0, 59)),
        hours=_sorted(_values(where, "hours", hours, 0, 23)),
        months=_sorted(_values(where, "month", month, 1, 12, MONTHS)),
        years=_sorted(_values(where, "year", year, *YEARS)),
        days_of_month=None if dom == "?" else _days_of_month(where, dom),
        days_of_week=None if dow == "?" else _days_of_week(where, dow),
    )


@dataclass(frozen=True, slots=True)
class _Where:
    expression: str

    def error(self, field: str, item: str, rule: str) -> ScheduleExpressionError:
        return ScheduleExpressionError(f"{self.expression!r}: {field} field {item!r}: {rule}")


def _sorted(values: set[int]) -> tuple[int, ...]:
    return tuple(sorted(values))


def _number(
    where: _Where, field: str, item: str, text: str, low: int, high: int, names: tuple[str, ...]
) -> int:
    upper = text.upper()
    if names and upper in names:
        return names.index(upper) + low
    if not text.isdigit():
        named = f" or a name ({names[0]}-{names[-1]})" if names else ""
        raise where.error(field, item, f"{text!r} must be a number {low}-{high}{named}")
    value = int(text)
    if not low <= value <= high:
        raise where.error(field, item, f"{value} is out of range {low}-{high}")
    return value


def _values(
    where: _Where,
    field: str,
    text: str,
    low: int,
    high: int,
    names: tuple[str, ...] = (),
) -> set[int]:
    values: set[int] = set()
    for item in text.split(","):
        if not item:
            raise where.error(field, text, "a list must not have empty items")
        values |= _item(where, field, item, low, high, names)
    return values


def _item(
    where: _Where, field: str, item: str, low: int, high: int, names: tuple[str, ...]
) -> set[int]:
    span, slash, step_text = item.partition("/")
    step = 1
    if slash:
        if not step_text.isdigit() or int(step_text) < 1:
            raise where.error(field, item, f"the step {step_text!r} must be a positive integer")
        step = int(step_text)
    if span == "*":
        start, end = low, high
    elif "-" in span:
        first, _, last = span.partition("-")
        start = _number(where, field, item, first, low, high, names)
        end = _number(where, field, item, last, low, high, names)
    else:
        start = _number(where, field, item, span, low, high, names)
        # `a/n` runs from a to the end of the field; a bare value is itself.
        end = high if slash else start
    if end >= start:
        return set(range(start, end + 1, step))
    # A wrapping range (FRI-MON, 22-2) runs to the field's end and on from its start.
    size = high - low + 1
    return {low + (start - low + i) % size for i in range(0, end + size - start + 1, step)}


def _days_of_month(where: _Where, text: str) -> DaysOfMonth:
    days: set[int] = set()
    last = last_weekday = False
    nearest: set[int] = set()
    for item in text.split(","):
        upper = item.upper()
        if upper == "L":
            last = True
        elif upper == "LW":
            last_weekday = True
        elif upper.endswith("W"):
            nearest.add(_number(where, "day-of-month", item, item[:-1], 1, 31, ()))
        elif upper == "?":
            raise where.error("day-of-month", item, "'?' must stand alone")
        else:
            days |= _item(where, "day-of-month", item, 1, 31, ())
    return DaysOfMonth(frozenset(days), last, last_weekday, frozenset(nearest))


def _days_of_week(where: _Where, text: str) -> DaysOfWeek:
    days: set[int] = set()
    last: set[int] = set()
    nth: set[tuple[int, int]] = set()
    field = "day-of-week"
    for item in text.split(","):
        upper = item.upper()
        if upper == "L":
            days.add(7)  # Quartz: L alone is the last day of the week, Saturday
        elif upper.endswith("L"):
            last.add(_number(where, field, item, item[:-1], 1, 7, WEEKDAYS))
        elif "#" in upper:
            day, _, k = item.partition("#")
            weekday = _number(where, field, item, day, 1, 7, WEEKDAYS)
            if not k.isdigit() or not 1 <= int(k) <= 5:
                raise where.error(field, item, f"the week {k!r} after '#' must be 1-5")
            nth.add((weekday, int(k)))
        elif upper == "?":
            raise where.error(field, item, "'?' must stand alone")
        else:
            days |= _item(where, field, item, 1, 7, WEEKDAYS)
    return DaysOfWeek(frozenset(days), frozenset(last), frozenset(nth))


# --- which days of a month -------------------------------------------------------------------


def _weekday(year: int, month: int, day: int) -> int:
    """1 = Sunday ... 7 = Saturday (Python's Monday = 0 moved to AWS's numbering)."""
    return (date(year, month, day).weekday() + 1) % 7 + 1


def _nearest_weekday(year: int, month: int, day: int, length: int) -> int:
    weekday = _weekday(year, month, day)
    if weekday == 7:  # Saturday: the Friday before, unless that is in the month before
        return day - 1 if day > 1 else day + 2
    if weekday == 1:  # Sunday: the Monday after, unless that is in the month after
        return day + 1 if day < length else day - 2
    return day


def _month_days(spec: DaysOfMonth, year: int, month: int, length: int) -> list[int]:
    days = {d for d in spec.days if d <= length}
    if spec.last:
        days.add(length)
    if spec.last_weekday:
        days.add(_nearest_weekday(year, month, length, length))
    days |= {_nearest_weekday(year, month, d, length) for d in spec.nearest_weekday if d <= length}
    return sorted(days)


def _week_days(spec: DaysOfWeek, year: int, month: int, length: int) -> list[int]:
    first = _weekday(year, month, 1)
    days: set[int] = set()
    for day in range(1, length + 1):
        weekday = (first - 1 + day - 1) % 7 + 1
        if weekday in spec.days:
            days.add(day)
        if (weekday, (day - 1) // 7 + 1) in spec.nth:
            days.add(day)
        if weekday in spec.last and day + 7 > length:
            days.add(day)
    return sorted(days)


# --- the next firing -------------------------------------------------------------------------


def _next_cron(cron: Cron, after: datetime, zone: tzinfo) -> datetime | None:
    start = after.astimezone(zone).date()
    for year in cron.years:
        if year < start.year:
            continue
        for month in cron.months:
            if (year, month) < (start.year, start.month):
                continue
            for day in cron.days(year, month):
                if date(year, month, day) < start:
                    continue
                found = _first_on(cron, year, month, day, after, zone)
                if found is not None:
                    return found
    return None


def _first_on(
    cron: Cron, year: int, month: int, day: int, after: datetime, zone: tzinfo
) -> datetime | None:
    # Local times in order map to increasing UTC instants once skipped (spring forward) and
    # repeated (fall back, second pass) times are left out, so the first one after `after`
    # is the answer.
    for hour in cron.hours:
        for minute in cron.minutes:
            instant = _local_instant(datetime(year, month, day, hour, minute), zone)
            if instant is not None and instant > after:
                return instant
    return None


def _local_instant(local: datetime, zone: tzinfo) -> datetime | None:
    """The UTC instant of a wall-clock time: its first occurrence (fold 0) when it happens
    twice, None when it does not happen at all."""
    instant = local.replace(tzinfo=zone, fold=0).astimezone(UTC)
    if instant.astimezone(zone).replace(tzinfo=None) != local:
        return None
    return instant
