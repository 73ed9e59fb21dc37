"""Business-calendar deadline arithmetic (shared/calendar.py).

Expected values are worked out by hand in local time (Asia/Shanghai, UTC+8), with working
periods 08:30–12:00 and 14:00–17:30 (7 working hours a day) and the 2026 State Council holiday
schedule.  Reminders used below: 2026-03-10 is a Tuesday, 2026-03-13 a Friday; 2026-09-30 is a
Wednesday; 2026-10-10 (Saturday) and 2026-09-20 (Sunday) are make-up working days; 2026-02-14
(Saturday) is a make-up working day and 2026-02-15..23 is the Spring Festival holiday.
"""
from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.calendar import BusinessCalendar, parse_duration

CST = ZoneInfo("Asia/Shanghai")
UTC = timezone.utc


def d(day: str) -> date:
    return date.fromisoformat(day)


HOLIDAYS_2026 = (
    [d("2026-01-01"), d("2026-01-02"), d("2026-01-03")]
    + [d("2026-02-%02d" % n) for n in range(15, 24)]
    + [d("2026-04-04"), d("2026-04-05"), d("2026-04-06")]
    + [d("2026-05-%02d" % n) for n in range(1, 6)]
    + [d("2026-06-19"), d("2026-06-20"), d("2026-06-21")]
    + [d("2026-09-25"), d("2026-09-26"), d("2026-09-27")]
    + [d("2026-10-%02d" % n) for n in range(1, 8)]
)
MAKEUP_2026 = [d("2026-01-04"), d("2026-02-14"), d("2026-02-28"), d("2026-05-09"),
               d("2026-09-20"), d("2026-10-10")]


@pytest.fixture(scope="module")
def cal() -> BusinessCalendar:
    return BusinessCalendar(
        "Asia/Shanghai",
        [("08:30", "12:00"), ("14:00", "17:30")],
        weekend=[5, 6],
        holidays=HOLIDAYS_2026,
        makeup_days=MAKEUP_2026,
    )


def local(y, mo, dd, h, mi=0) -> datetime:
    return datetime(y, mo, dd, h, mi, tzinfo=CST)


@pytest.mark.parametrize(
    "start, duration, expected",
    [
        # inside the morning period, runs over lunch: 09:00-12:00 = 3h, then 14:00 + 1h
        (local(2026, 3, 10, 9, 0), "4h", local(2026, 3, 10, 15, 0)),
        # starts in the lunch break: the clock starts at 14:00
        (local(2026, 3, 10, 12, 30), "2h", local(2026, 3, 10, 16, 0)),
        # 11:30-12:00 = 30m, the other 30m from 14:00
        (local(2026, 3, 10, 11, 30), "1h", local(2026, 3, 10, 14, 30)),
        # ends exactly at the end of the morning period: 12:00, not 14:00
        (local(2026, 3, 10, 9, 0), "3h", local(2026, 3, 10, 12, 0)),
        # starts exactly at a period start
        (local(2026, 3, 10, 14, 0), "3.5h", local(2026, 3, 10, 17, 30)),
        # starts exactly at the end of the day: next morning
        (local(2026, 3, 10, 17, 30), "30m", local(2026, 3, 11, 9, 0)),
        # starts exactly at 08:30
        (local(2026, 3, 10, 8, 30), "30m", local(2026, 3, 10, 9, 0)),
        # night: clock starts 08:30 next day; 08:30-12:00 = 3.5h, then 14:00 + 30m
        (local(2026, 3, 10, 20, 0), "4h", local(2026, 3, 11, 14, 30)),
        # early morning before work
        (local(2026, 3, 11, 6, 45), "1h", local(2026, 3, 11, 9, 30)),
        # Friday 16:30-17:30 = 1h, then Monday 08:30 + 1h
        (local(2026, 3, 13, 16, 30), "2h", local(2026, 3, 16, 9, 30)),
        # reported on a Saturday: clock starts Monday 08:30
        (local(2026, 3, 14, 10, 0), "30m", local(2026, 3, 16, 9, 0)),
        # National Day: 1.5h on 30 Sep, 1-7 Oct off, then 08:30 + 2.5h on Thu 8 Oct
        (local(2026, 9, 30, 16, 0), "4h", local(2026, 10, 8, 11, 0)),
        # make-up Saturday 10 Oct is a working day: 30m on Friday, 30m on Saturday
        (local(2026, 10, 9, 17, 0), "1h", local(2026, 10, 10, 9, 0)),
        # make-up Sunday 20 Sep: reported Saturday 19 Sep, handled on Sunday
        (local(2026, 9, 19, 10, 0), "1h", local(2026, 9, 20, 9, 30)),
        # more than a day of hours: Tue 10:00-12:00 2h + 3.5h = 5.5h; Wed 08:30 + 1.5h = 10:00
        (local(2026, 3, 10, 10, 0), "7h", local(2026, 3, 11, 10, 0)),
        # a timedelta is working time as well
        (local(2026, 3, 10, 9, 0), timedelta(minutes=90), local(2026, 3, 10, 10, 30)),
    ],
)
def test_add_working_hours(cal, start, duration, expected):
    deadline = cal.add_working_time(start, duration)
    assert deadline.tzinfo is not None and deadline.utcoffset() == timedelta(0)
    assert deadline == expected
    assert cal.to_local(deadline).replace(tzinfo=None) == expected.replace(tzinfo=None)


@pytest.mark.parametrize(
    "start, duration, expected",
    [
        # same time of day, next working day
        (local(2026, 3, 10, 10, 0), "1d", local(2026, 3, 11, 10, 0)),
        # Friday night: clock starts Monday 08:30; two working days later is Wednesday 08:30
        (local(2026, 3, 13, 20, 0), "2d", local(2026, 3, 18, 8, 30)),
        # lunch break: clock starts 14:00, next working day 14:00
        (local(2026, 3, 10, 12, 30), "1d", local(2026, 3, 11, 14, 0)),
        # Friday before Spring Festival: the next working day is the make-up Saturday 14 Feb
        (local(2026, 2, 13, 15, 0), "1d", local(2026, 2, 14, 15, 0)),
        # from the make-up Saturday: 15-23 Feb off, Tuesday 24 Feb
        (local(2026, 2, 14, 15, 0), "1d", local(2026, 2, 24, 15, 0)),
        # 违法建设 20 working days from Mon 14 Sep: 15,16,17,18, 20(make-up Sun), 21,22,23,24,
        # 28,29,30, 8,9, 10(make-up Sat), 12,13,14,15,16 Oct → Fri 16 Oct
        (local(2026, 9, 14, 10, 0), "20d", local(2026, 10, 16, 10, 0)),
        # combined: 1 working day, then 2 working hours → Wed 10:00 + 2h = 12:00
        (local(2026, 3, 10, 10, 0), "1d2h", local(2026, 3, 11, 12, 0)),
    ],
)
def test_add_working_days(cal, start, duration, expected):
    assert cal.add_working_time(start, duration) == expected


def test_start_given_in_utc_returns_utc(cal):
    start = datetime(2026, 3, 10, 1, 0, tzinfo=UTC)  # 09:00 in Chongqing
    deadline = cal.add_working_time(start, "4h")
    assert deadline == datetime(2026, 3, 10, 7, 0, tzinfo=UTC)  # 15:00 local
    assert deadline.tzinfo == UTC


def test_working_days(cal):
    assert cal.is_working_day(d("2026-03-10"))        # Tuesday
    assert not cal.is_working_day(d("2026-03-14"))    # Saturday
    assert not cal.is_working_day(d("2026-10-01"))    # National Day
    assert not cal.is_working_day(d("2026-02-17"))    # Spring Festival (a Tuesday)
    assert cal.is_working_day(d("2026-10-10"))        # make-up Saturday
    assert cal.is_working_day(d("2026-09-20"))        # make-up Sunday
    # a datetime is judged on its local date: 2026-10-09 17:00 UTC is 10 Oct 01:00 in Chongqing
    assert cal.is_working_day(datetime(2026, 10, 9, 17, 0, tzinfo=UTC))
    assert not cal.is_working_day(datetime(2026, 10, 10, 16, 30, tzinfo=UTC))  # Sun 11 Oct 00:30


def test_is_working_time(cal):
    assert cal.is_working_time(local(2026, 3, 10, 8, 30))
    assert not cal.is_working_time(local(2026, 3, 10, 12, 0))
    assert cal.is_working_time(local(2026, 3, 10, 17, 29))
    assert not cal.is_working_time(local(2026, 3, 14, 10, 0))


@pytest.mark.parametrize(
    "a, b, expected",
    [
        # 09:00-12:00 3h + 14:00-16:00 2h
        (local(2026, 3, 10, 9, 0), local(2026, 3, 10, 16, 0), timedelta(hours=5)),
        # lunch break only
        (local(2026, 3, 10, 12, 5), local(2026, 3, 10, 13, 55), timedelta(0)),
        # Friday 16:00-17:30 1.5h + Monday 08:30-10:00 1.5h
        (local(2026, 3, 13, 16, 0), local(2026, 3, 16, 10, 0), timedelta(hours=3)),
        # across the National Day block: 30m on 30 Sep + 30m on 8 Oct
        (local(2026, 9, 30, 17, 0), local(2026, 10, 8, 9, 0), timedelta(hours=1)),
        # a whole working week Mon 00:00 → Sat 00:00: 5 × 7h
        (local(2026, 3, 9, 0, 0), local(2026, 3, 14, 0, 0), timedelta(hours=35)),
        # reversed order gives a negative duration
        (local(2026, 3, 10, 16, 0), local(2026, 3, 10, 9, 0), -timedelta(hours=5)),
    ],
)
def test_working_time_between(cal, a, b, expected):
    assert cal.working_time_between(a, b) == expected


def test_fraction_used_for_the_80_percent_warning(cal):
    start = local(2026, 3, 10, 9, 0)
    deadline = cal.add_working_time(start, "4h")  # 15:00, checked above
    # 09:00-12:00 = 3h, 14:00-14:12 = 12m: 3.2h of 4h
    assert cal.fraction_used(start, deadline, local(2026, 3, 10, 14, 12)) == pytest.approx(0.8)
    assert cal.fraction_used(start, deadline, local(2026, 3, 10, 13, 0)) == pytest.approx(0.75)
    assert cal.fraction_used(start, deadline, local(2026, 3, 10, 16, 0)) == pytest.approx(1.25)


def test_parse_duration():
    assert parse_duration("4h") == (0, timedelta(hours=4))
    assert parse_duration("30m") == (0, timedelta(minutes=30))
    assert parse_duration("20d") == (20, timedelta(0))
    assert parse_duration("1d4h30m") == (1, timedelta(hours=4, minutes=30))
    for bad in ("", "4", "4x", "h4", "1.5d", "-2h", "4 hours"):
        with pytest.raises(ValueError):
            parse_duration(bad)


def test_bad_inputs(cal):
    with pytest.raises(ValueError):
        cal.add_working_time(datetime(2026, 3, 10, 9, 0), "4h")  # naive
    with pytest.raises(ValueError):
        cal.working_time_between(datetime(2026, 3, 10, 9, 0), local(2026, 3, 10, 10, 0))
    with pytest.raises(ValueError):
        cal.add_working_time(local(2026, 3, 10, 9, 0), "four hours")
    with pytest.raises(ValueError):
        BusinessCalendar(periods=[("12:00", "08:30")])
    with pytest.raises(ValueError):
        BusinessCalendar(periods=[("08:30", "12:00"), ("11:00", "17:30")])
    with pytest.raises(ValueError):
        BusinessCalendar(holidays=[d("2026-10-10")], makeup_days=[d("2026-10-10")])


def test_from_mapping_reads_yaml_times_and_dates():
    # Unquoted 12:00 is read by YAML 1.1 as the integer 720 (minutes): it must still work.
    data = yaml.safe_load(
        """
        timezone: Asia/Shanghai
        working_hours:
          - {start: "08:30", end: 12:00}
          - [14:00, 17:30]
        weekend: [saturday, sunday]
        holidays:
          - {name: 国庆节, dates: [2026-10-01, 2026-10-02]}
          - 2026-10-03
          - {name: range, from: 2026-10-04, to: 2026-10-07}
        makeup_workdays:
          - {date: 2026-10-10, name: 调休}
        """
    )
    cal = BusinessCalendar.from_mapping(data)
    assert cal.working_time_per_day == timedelta(hours=7)
    assert [d_ for d_ in (d("2026-10-%02d" % n) for n in range(1, 9)) if cal.is_working_day(d_)] \
        == [d("2026-10-08")]
    assert cal.is_working_day(d("2026-10-10"))
    assert cal.add_working_time(local(2026, 9, 30, 16, 0), "4h") == local(2026, 10, 8, 11, 0)


def test_packaged_calendar_has_2026_and_2027():
    from shared.refdata import load_district

    cal = load_district().calendar
    assert cal.timezone_name == "Asia/Shanghai"
    assert cal.working_time_per_day == timedelta(hours=7)
    assert not cal.is_working_day(d("2026-02-17"))   # 2026 春节
    assert cal.is_working_day(d("2026-02-28"))       # 2026 make-up Saturday
    assert not cal.is_working_day(d("2026-10-05"))   # 2026 国庆
    assert not cal.is_working_day(d("2027-02-08"))   # 2027 春节 (provisional)
    assert not cal.is_working_day(d("2027-10-06"))   # 2027 国庆 (provisional)
    assert cal.is_working_day(d("2027-10-09"))       # 2027 make-up Saturday (provisional)
    # Friday 25 Sep 2026 is 中秋节: Thursday 24 Sep 17:00 + 1h → 30m, then Monday 28 Sep 09:00
    assert cal.add_working_time(local(2026, 9, 24, 17, 0), "1h") == local(2026, 9, 28, 9, 0)


@settings(max_examples=200, deadline=None)
@given(
    start=st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2027, 12, 1),
                       timezones=st.just(CST)),
    minutes=st.integers(min_value=1, max_value=60 * 7 * 25),
)
def test_property_deadline_uses_exactly_the_duration(cal, start, minutes):
    deadline = cal.add_working_time(start, f"{minutes}m")
    assert deadline > start
    assert cal.working_time_between(start, deadline) == timedelta(minutes=minutes)
    # the deadline is never in the lunch break, at night or on a day off (period ends are allowed)
    just_before = deadline - timedelta(microseconds=1)
    assert cal.is_working_time(just_before)
