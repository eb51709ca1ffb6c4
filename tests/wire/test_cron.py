"""EventBridge schedule expressions: parsing (and refusing with the rule broken) and the next
firing after a given instant, with fixed instants standing in for the clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lamina.wire.cron import Cron, Rate, ScheduleExpressionError, next_fire, parse

NEW_YORK = ZoneInfo("America/New_York")
PARIS = ZoneInfo("Europe/Paris")


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)  # type: ignore[misc]


def fires(expression: str, after: datetime, zone: ZoneInfo | None = None) -> datetime | None:
    return next_fire(parse(expression), after, zone or UTC)


def firings(expression: str, after: datetime, count: int, zone: ZoneInfo | None = None) -> list:
    found: list[datetime] = []
    for _ in range(count):
        nxt = fires(expression, after, zone)
        assert nxt is not None
        found.append(nxt)
        after = nxt
    return found


# --- rate ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "seconds"),
    [
        ("rate(1 minute)", 60),
        ("rate(5 minutes)", 300),
        ("rate(1 hour)", 3600),
        ("rate(12 hours)", 43_200),
        ("rate(1 day)", 86_400),
        ("rate(7 days)", 604_800),
    ],
)
def test_a_rate_fires_every_period_after_the_last_firing(expression: str, seconds: int) -> None:
    start = utc(2024, 1, 1, 10, 20, 30)
    rate = parse(expression)
    assert isinstance(rate, Rate)
    assert rate.seconds == seconds
    assert firings(expression, start, 3) == [
        start + timedelta(seconds=seconds * n) for n in (1, 2, 3)
    ]
    # A rate ignores time zones: it counts seconds.
    assert fires(expression, start, NEW_YORK) == start + timedelta(seconds=seconds)


@pytest.mark.parametrize(
    ("expression", "rule"),
    [
        ("rate(1 hours)", "with a value of 1 the unit must be singular (hour)"),
        ("rate(5 hour)", "with a value above 1 the unit must be plural (hours)"),
        ("rate(1 minutes)", "with a value of 1 the unit must be singular (minute)"),
        ("rate(0 minutes)", "the value '0' must be a positive integer"),
        ("rate(-5 minutes)", "the value '-5' must be a positive integer"),
        ("rate(1.5 hours)", "the value '1.5' must be a positive integer"),
        ("rate(2 weeks)", "the unit 'weeks' must be minute(s), hour(s) or day(s)"),
        ("rate(5minutes)", "must be rate(<value> <unit>), such as rate(5 minutes)"),
        ("rate(5 minutes", "must be rate(<value> <unit>), such as rate(5 minutes)"),
    ],
)
def test_malformed_rates_are_refused_with_the_rule(expression: str, rule: str) -> None:
    with pytest.raises(ScheduleExpressionError) as caught:
        parse(expression)
    assert str(caught.value) == f"{expression!r}: {rule}"


# --- cron parsing ----------------------------------------------------------------------------


def test_the_issue_s_example_parses_into_its_fields() -> None:
    cron = parse("cron(0 0-6 ? * MON-FRI *)")
    assert isinstance(cron, Cron)
    assert cron.minutes == (0,)
    assert cron.hours == (0, 1, 2, 3, 4, 5, 6)
    assert cron.months == tuple(range(1, 13))
    assert cron.years == tuple(range(1970, 2200))
    assert cron.days_of_month is None
    assert cron.days_of_week is not None
    assert cron.days_of_week.days == frozenset({2, 3, 4, 5, 6})


@pytest.mark.parametrize(
    ("field", "values"),
    [
        ("0,15,45", (0, 15, 45)),
        ("*/20", (0, 20, 40)),
        ("5/20", (5, 25, 45)),
        ("10-30/10", (10, 20, 30)),
        ("58-2", (0, 1, 2, 58, 59)),  # a range that wraps
        ("7", (7,)),
    ],
)
def test_minutes_take_lists_steps_and_ranges(field: str, values: tuple[int, ...]) -> None:
    cron = parse(f"cron({field} * * * ? *)")
    assert isinstance(cron, Cron)
    assert cron.minutes == values


def test_names_are_case_insensitive_and_ranges_of_weekdays_wrap() -> None:
    cron = parse("cron(0 0 ? jan,JUL,Dec FRI-mon *)")
    assert isinstance(cron, Cron)
    assert cron.months == (1, 7, 12)
    assert cron.days_of_week is not None
    assert cron.days_of_week.days == frozenset({6, 7, 1, 2})


@pytest.mark.parametrize(
    ("expression", "rule"),
    [
        (
            "cron(0 0 * * * *)",
            "exactly one of day-of-month (*) and day-of-week (*) must be '?'",
        ),
        (
            "cron(0 0 ? * ? *)",
            "exactly one of day-of-month (?) and day-of-week (?) must be '?'",
        ),
        (
            "cron(0 0 * * ?)",
            "must have 6 fields (minutes hours day-of-month month day-of-week year), not 5",
        ),
        ("cron(60 0 * * ? *)", "minutes field '60': 60 is out of range 0-59"),
        ("cron(0 24 * * ? *)", "hours field '24': 24 is out of range 0-23"),
        ("cron(0 0 32 * ? *)", "day-of-month field '32': 32 is out of range 1-31"),
        ("cron(0 0 0 * ? *)", "day-of-month field '0': 0 is out of range 1-31"),
        ("cron(0 0 * 13 ? *)", "month field '13': 13 is out of range 1-12"),
        (
            "cron(0 0 * FOO ? *)",
            "month field 'FOO': 'FOO' must be a number 1-12 or a name (JAN-DEC)",
        ),
        ("cron(0 0 ? * 8 *)", "day-of-week field '8': 8 is out of range 1-7"),
        ("cron(0 0 ? * 6#6 *)", "day-of-week field '6#6': the week '6' after '#' must be 1-5"),
        ("cron(0 0 * * ? 2200)", "year field '2200': 2200 is out of range 1970-2199"),
        ("cron(*/0 0 * * ? *)", "minutes field '*/0': the step '0' must be a positive integer"),
        ("cron(0,,5 0 * * ? *)", "minutes field '0,,5': a list must not have empty items"),
        ("cron(0 0 32W * ? *)", "day-of-month field '32W': 32 is out of range 1-31"),
    ],
)
def test_malformed_crons_are_refused_naming_the_field_and_rule(expression: str, rule: str) -> None:
    with pytest.raises(ScheduleExpressionError) as caught:
        parse(expression)
    assert str(caught.value) == f"{expression!r}: {rule}"


@pytest.mark.parametrize("expression", ["", "every 5 minutes", "at(2024-01-01T00:00:00)"])
def test_anything_else_is_refused_naming_both_forms(expression: str) -> None:
    with pytest.raises(ScheduleExpressionError, match=r"must be rate\(<value> <unit>\) or cron"):
        parse(expression)


# --- cron: the next firing (UTC) -------------------------------------------------------------


def test_weekday_nights_from_midnight_to_six() -> None:
    friday_late = utc(2024, 3, 1, 6, 30)  # a Friday, after the last firing of the night
    assert firings("cron(0 0-6 ? * MON-FRI *)", friday_late, 8) == [
        utc(2024, 3, 4, h) for h in range(7)
    ] + [utc(2024, 3, 5, 0)]


def test_every_minute_and_steps() -> None:
    assert fires("cron(* * * * ? *)", utc(2024, 1, 1, 10, 7, 30)) == utc(2024, 1, 1, 10, 8)
    assert fires("cron(0/15 * * * ? *)", utc(2024, 1, 1, 10, 7)) == utc(2024, 1, 1, 10, 15)
    # Exactly at a firing: the next one, never the same instant again.
    assert fires("cron(0/15 * * * ? *)", utc(2024, 1, 1, 10, 15)) == utc(2024, 1, 1, 10, 30)
    assert fires("cron(0/15 * * * ? *)", utc(2024, 12, 31, 23, 50)) == utc(2025, 1, 1, 0, 0)


def test_the_last_day_of_the_month_follows_month_lengths_and_leap_years() -> None:
    assert firings("cron(0 12 L * ? *)", utc(2024, 1, 31, 12), 4) == [
        utc(2024, 2, 29, 12),
        utc(2024, 3, 31, 12),
        utc(2024, 4, 30, 12),
        utc(2024, 5, 31, 12),
    ]
    assert fires("cron(0 12 L * ? *)", utc(2023, 2, 1)) == utc(2023, 2, 28, 12)


def test_the_31st_fires_only_in_months_that_have_one() -> None:
    assert firings("cron(0 0 31 * ? *)", utc(2024, 1, 31, 1), 3) == [
        utc(2024, 3, 31),
        utc(2024, 5, 31),
        utc(2024, 7, 31),
    ]


def test_february_29th_waits_for_the_next_leap_year() -> None:
    assert fires("cron(0 0 29 2 ? *)", utc(2024, 3, 1)) == utc(2028, 2, 29)
    assert fires("cron(0 0 29 2 ? *)", utc(2099, 3, 1)) == utc(2104, 2, 29)  # 2100 is not leap


def test_nearest_weekday_never_leaves_the_month() -> None:
    # 2024-06-15 is a Saturday: the Friday before.
    assert fires("cron(0 9 15W * ? *)", utc(2024, 6, 1)) == utc(2024, 6, 14, 9)
    # 2024-09-15 is a Sunday: the Monday after.
    assert fires("cron(0 9 15W * ? *)", utc(2024, 9, 1)) == utc(2024, 9, 16, 9)
    # 2024-06-01 is a Saturday: not Friday May 31st but Monday June 3rd.
    assert fires("cron(0 9 1W * ? *)", utc(2024, 5, 31)) == utc(2024, 6, 3, 9)
    # 2024-03-31 is a Sunday: not Monday April 1st but Friday March 29th.
    assert fires("cron(0 9 31W * ? *)", utc(2024, 3, 1)) == utc(2024, 3, 29, 9)
    # A weekday is itself.
    assert fires("cron(0 9 10W * ? *)", utc(2024, 6, 1)) == utc(2024, 6, 10, 9)


def test_last_weekday_of_the_month() -> None:
    assert firings("cron(0 18 LW * ? *)", utc(2024, 3, 1), 3) == [
        utc(2024, 3, 29, 18),  # the 31st is a Sunday
        utc(2024, 4, 30, 18),
        utc(2024, 5, 31, 18),
    ]


def test_nth_weekday_of_the_month() -> None:
    # The third Friday; May 2024 has one on the 17th, and a fifth Friday does not always exist.
    assert firings("cron(0 10 ? * 6#3 *)", utc(2024, 3, 1), 3) == [
        utc(2024, 3, 15, 10),
        utc(2024, 4, 19, 10),
        utc(2024, 5, 17, 10),
    ]
    assert firings("cron(0 10 ? * FRI#5 *)", utc(2024, 1, 1), 2) == [
        utc(2024, 3, 29, 10),
        utc(2024, 5, 31, 10),
    ]


def test_last_weekday_of_a_kind() -> None:
    # The last Monday of May (Memorial Day in the US).
    assert fires("cron(0 0 ? 5 2L *)", utc(2024, 1, 1)) == utc(2024, 5, 27)
    assert fires("cron(0 0 ? 5 MONL *)", utc(2024, 6, 1)) == utc(2025, 5, 26)
    # `L` alone in day-of-week is Saturday.
    assert fires("cron(0 0 ? * L *)", utc(2024, 6, 3)) == utc(2024, 6, 8)


def test_the_year_field_limits_firings() -> None:
    assert fires("cron(0 0 1 1 ? 2030)", utc(2024, 6, 1)) == utc(2030, 1, 1)
    assert fires("cron(0 0 1 1 ? 2030)", utc(2030, 1, 1)) is None
    assert fires("cron(0 0 1 1 ? 2020-2022)", utc(2024, 6, 1)) is None
    assert fires("cron(0 0 30 2 ? *)", utc(2024, 1, 1)) is None  # never


# --- cron: time zones and daylight saving time -----------------------------------------------


def test_a_time_zone_moves_the_utc_instant_with_its_offset() -> None:
    # 09:00 in Paris: 08:00 UTC in winter, 07:00 UTC in summer.
    assert fires("cron(0 9 * * ? *)", utc(2024, 1, 15), PARIS) == utc(2024, 1, 15, 8)
    assert fires("cron(0 9 * * ? *)", utc(2024, 7, 15), PARIS) == utc(2024, 7, 15, 7)


def test_spring_forward_skips_a_local_time_that_does_not_exist() -> None:
    # New York, 2024-03-10: 02:00 becomes 03:00, so 02:30 does not happen that day.
    after = utc(2024, 3, 9, 8)  # 03:00 EST on the 9th
    assert firings("cron(30 2 * * ? *)", after, 3, NEW_YORK) == [
        utc(2024, 3, 11, 6, 30),  # 02:30 EDT on the 11th; nothing on the 10th
        utc(2024, 3, 12, 6, 30),
        utc(2024, 3, 13, 6, 30),
    ]
    # Times on either side of the gap are unaffected.
    assert fires("cron(59 1 * * ? *)", utc(2024, 3, 10), NEW_YORK) == utc(2024, 3, 10, 6, 59)
    assert fires("cron(0 3 * * ? *)", utc(2024, 3, 10), NEW_YORK) == utc(2024, 3, 10, 7, 0)


def test_fall_back_fires_a_repeated_local_time_once() -> None:
    # New York, 2024-11-03: 02:00 EDT becomes 01:00 EST, so 01:30 happens twice.
    first = fires("cron(30 1 * * ? *)", utc(2024, 11, 2, 12), NEW_YORK)
    assert first == utc(2024, 11, 3, 5, 30)  # 01:30 EDT
    # Not again at 01:30 EST (06:30 UTC): the next day's.
    assert fires("cron(30 1 * * ? *)", first, NEW_YORK) == utc(2024, 11, 4, 6, 30)


def test_an_hourly_schedule_across_fall_back_does_not_repeat_the_hour() -> None:
    start = utc(2024, 11, 3, 4, 30)  # 00:30 EDT
    assert firings("cron(0 * * * ? *)", start, 3, NEW_YORK) == [
        utc(2024, 11, 3, 5),  # 01:00 EDT
        utc(2024, 11, 3, 7),  # 02:00 EST (01:00 EST is the repeat, skipped)
        utc(2024, 11, 3, 8),
    ]


def test_an_hourly_schedule_across_spring_forward_has_one_hour_less() -> None:
    start = utc(2024, 3, 10, 5, 30)  # 00:30 EST
    assert firings("cron(0 * * * ? *)", start, 3, NEW_YORK) == [
        utc(2024, 3, 10, 6),  # 01:00 EST
        utc(2024, 3, 10, 7),  # 03:00 EDT
        utc(2024, 3, 10, 8),
    ]


def test_days_are_local_days() -> None:
    # Mondays at 23:30 in New York are Tuesdays in UTC.
    assert fires("cron(30 23 ? * MON *)", utc(2024, 6, 1), NEW_YORK) == utc(2024, 6, 4, 3, 30)


def test_a_naive_instant_is_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        next_fire(parse("rate(1 minute)"), datetime(2024, 1, 1))


# --- properties ------------------------------------------------------------------------------


def _field(low: int, high: int) -> st.SearchStrategy[str]:
    value = st.integers(low, high)
    return st.one_of(
        st.just("*"),
        value.map(str),
        st.tuples(value, value).map(lambda p: f"{min(p)}-{max(p)}"),
        st.tuples(value, st.integers(1, high - low + 1)).map(lambda p: f"{p[0]}/{p[1]}"),
        st.lists(value, min_size=1, max_size=4).map(lambda v: ",".join(map(str, v))),
    )


@settings(max_examples=150, deadline=None)
@given(
    minutes=_field(0, 59),
    hours=_field(0, 23),
    days=_field(1, 28),
    weekdays=_field(1, 7),
    months=_field(1, 12),
    use_weekdays=st.booleans(),
    after=st.datetimes(datetime(2020, 1, 1), datetime(2030, 1, 1), timezones=st.just(UTC)),
)
def test_the_next_firing_matches_every_field_and_none_is_skipped(
    minutes: str,
    hours: str,
    days: str,
    weekdays: str,
    months: str,
    use_weekdays: bool,
    after: datetime,
) -> None:
    dom, dow = ("?", weekdays) if use_weekdays else (days, "?")
    cron = parse(f"cron({minutes} {hours} {dom} {months} {dow} *)")
    assert isinstance(cron, Cron)
    found = next_fire(cron, after)
    assert found is not None
    assert found > after

    def matches(moment: datetime) -> bool:
        return (
            moment.minute in cron.minutes
            and moment.hour in cron.hours
            and moment.month in cron.months
            and moment.day in cron.days(moment.year, moment.month)
        )

    assert matches(found)
    # No matching minute in between: scan the days in between, hour by hour.
    moment = after.replace(second=0, microsecond=0) + timedelta(minutes=1)
    while moment < found:
        if moment.day in cron.days(moment.year, moment.month) and moment.month in cron.months:
            if moment.hour in cron.hours:
                assert not matches(moment), f"{moment} matches before {found}"
                moment += timedelta(minutes=1)
                continue
            moment = moment.replace(minute=0) + timedelta(hours=1)
            continue
        moment = moment.replace(hour=0, minute=0) + timedelta(days=1)
