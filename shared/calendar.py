"""Business-calendar arithmetic for 处置时限 (handling deadlines). Pure: no I/O, stdlib only.

Every deadline of the platform is computed on a :class:`BusinessCalendar`:

* working periods per working day, e.g. 08:30–12:00 and 14:00–17:30 (7 working hours a day);
* weekend weekdays, public holidays (法定节假日) and make-up working days (调休上班, a weekend
  day that is a working day).  A make-up day beats a holiday, a holiday beats a normal weekday;
* durations in working time: ``"4h"``, ``"30m"``, ``"2d"``, also combined (``"1d4h"``,
  ``"1h30m"``) or fractional (``"1.5h"``); a :class:`~datetime.timedelta` is working time too.

Rules (the same for every service, so deadlines agree everywhere):

* A clock that starts outside working time (night, lunch break, weekend, holiday) starts at the
  next working period's start.  Working time is half-open: 12:00 is not working time, 08:30 is.
* ``h``/``m``: working time is consumed period by period.  A deadline that falls exactly on the
  end of a period is that end (e.g. 12:00), not the start of the next period.
* ``d``: N working days later at the same local time of day as the (normalised) start.
  Then any ``h``/``m`` part of a combined duration is added on top.
* Inputs must be timezone-aware; deadlines are computed in the calendar's local time and
  returned in UTC.
"""
from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta, timezone
from typing import Iterable, Mapping
from zoneinfo import ZoneInfo

__all__ = ["BusinessCalendar", "parse_duration", "WEEKDAY_NAMES"]

UTC = timezone.utc

WEEKDAY_NAMES = {
    "monday": 0, "mon": 0, "周一": 0, "星期一": 0,
    "tuesday": 1, "tue": 1, "周二": 1, "星期二": 1,
    "wednesday": 2, "wed": 2, "周三": 2, "星期三": 2,
    "thursday": 3, "thu": 3, "周四": 3, "星期四": 3,
    "friday": 4, "fri": 4, "周五": 4, "星期五": 4,
    "saturday": 5, "sat": 5, "周六": 5, "星期六": 5,
    "sunday": 6, "sun": 6, "周日": 6, "星期日": 6, "星期天": 6,
}

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)\s*(d|h|m)", re.IGNORECASE)
_DURATION_FULL = re.compile(r"^\s*(?:\d+(?:\.\d+)?\s*[dhm]\s*)+$", re.IGNORECASE)
_MAX_SCAN_DAYS = 3 * 366  # a calendar with no working day for three years is broken


def valid_duration(value) -> bool:
    """A positive working-time duration string ("4h", "2d", "1d4h", "30m")."""
    if not isinstance(value, str):
        return False
    try:
        days, rest = parse_duration(value)
    except ValueError:
        return False
    return days > 0 or rest.total_seconds() > 0


def parse_duration(duration: str | timedelta) -> tuple[int, timedelta]:
    """Split a duration into (working days, working time).

    >>> parse_duration("1d4h")
    (1, datetime.timedelta(seconds=14400))
    """
    if isinstance(duration, timedelta):
        if duration < timedelta(0):
            raise ValueError(f"negative duration {duration!r}")
        return 0, duration
    if not isinstance(duration, str) or not _DURATION_FULL.match(duration):
        raise ValueError(
            f"bad duration {duration!r}: expected e.g. '4h', '30m', '2d', '1d4h' (working time)")
    days = 0
    rest = timedelta(0)
    for number, unit in _DURATION_PART.findall(duration):
        unit = unit.lower()
        if unit == "d":
            if "." in number:
                raise ValueError(f"bad duration {duration!r}: working days must be whole")
            days += int(number)
        elif unit == "h":
            rest += timedelta(hours=float(number))
        else:
            rest += timedelta(minutes=float(number))
    return days, rest


def _parse_hhmm(value) -> time:
    if isinstance(value, time):
        return value
    if isinstance(value, int):  # YAML 1.1 reads 08:30 unquoted as sexagesimal minutes
        return time(value // 60, value % 60)
    match = re.fullmatch(r"\s*(\d{1,2}):(\d{2})\s*", str(value))
    if not match:
        raise ValueError(f"bad time of day {value!r}: expected 'HH:MM'")
    hour, minute = int(match.group(1)), int(match.group(2))
    if hour == 24 and minute == 0:
        raise ValueError("use 23:59 rather than 24:00 for the end of a period")
    return time(hour, minute)


def _as_date(value) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value))


def _weekday(value) -> int:
    if isinstance(value, int) and 0 <= value <= 6:
        return value
    key = str(value).strip().lower()
    if key in WEEKDAY_NAMES:
        return WEEKDAY_NAMES[key]
    raise ValueError(f"bad weekday {value!r}: use 0 (Monday)..6 (Sunday) or a name like 'saturday'")


class BusinessCalendar:
    """Working days and working hours of one district, in one timezone."""

    def __init__(
        self,
        timezone_name: str = "Asia/Shanghai",
        periods: Iterable[tuple] = (("08:30", "12:00"), ("14:00", "17:30")),
        weekend: Iterable = (5, 6),
        holidays: Iterable = (),
        makeup_days: Iterable = (),
    ):
        self.timezone_name = timezone_name
        self.tz = ZoneInfo(timezone_name)
        parsed = sorted((_parse_hhmm(start), _parse_hhmm(end)) for start, end in periods)
        if not parsed:
            raise ValueError("a business calendar needs at least one working period")
        for (start, end) in parsed:
            if start >= end:
                raise ValueError(f"working period {start:%H:%M}-{end:%H:%M} ends before it starts")
        for (_, end), (start, _) in zip(parsed, parsed[1:]):
            if start < end:
                raise ValueError("working periods overlap")
        self.periods: tuple[tuple[time, time], ...] = tuple(parsed)
        self.weekend: frozenset[int] = frozenset(_weekday(day) for day in weekend)
        if len(self.weekend) >= 7:
            raise ValueError("every weekday is a weekend day: no working day left")
        self.holidays: frozenset[date] = frozenset(_as_date(day) for day in holidays)
        self.makeup_days: frozenset[date] = frozenset(_as_date(day) for day in makeup_days)
        clash = self.holidays & self.makeup_days
        if clash:
            raise ValueError(f"dates are both holiday and make-up working day: {sorted(clash)}")

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_mapping(cls, data: Mapping) -> "BusinessCalendar":
        """Build from a parsed calendar.yaml (see shared/refdata/default_district/calendar.yaml).

        ``working_hours``: list of ``{start, end}`` or ``[start, end]``; ``weekend``: weekday
        names or numbers (0 = Monday); ``holidays`` and ``makeup_workdays``: lists whose items are
        dates or ``{name, dates: [...]}`` / ``{name, date}`` entries.
        """
        periods = []
        for item in data.get("working_hours") or []:
            if isinstance(item, Mapping):
                periods.append((item["start"], item["end"]))
            else:
                start, end = item
                periods.append((start, end))
        return cls(
            timezone_name=data.get("timezone", "Asia/Shanghai"),
            periods=periods or (("08:30", "12:00"), ("14:00", "17:30")),
            weekend=data.get("weekend", (5, 6)),
            holidays=_flatten_dates(data.get("holidays") or []),
            makeup_days=_flatten_dates(data.get("makeup_workdays") or []),
        )

    # ------------------------------------------------------------------ basics
    def __repr__(self) -> str:
        spans = ",".join(f"{s:%H:%M}-{e:%H:%M}" for s, e in self.periods)
        return (f"BusinessCalendar({self.timezone_name}, {spans}, "
                f"{len(self.holidays)} holidays, {len(self.makeup_days)} make-up days)")

    @property
    def working_time_per_day(self) -> timedelta:
        """Working time of one full working day (7h for 08:30–12:00 + 14:00–17:30)."""
        return sum((self._span(day_start, day_end) for day_start, day_end in
                    self._periods_on(date(2001, 1, 1))), timedelta(0))

    def to_local(self, dt: datetime) -> datetime:
        """An aware datetime in the calendar's timezone (naive input is refused)."""
        self._require_aware(dt)
        return dt.astimezone(self.tz)

    def is_working_day(self, day: date | datetime) -> bool:
        """True on a working day: a make-up day, or a non-holiday, non-weekend day."""
        if isinstance(day, datetime):
            day = self.to_local(day).date() if day.tzinfo else day.date()
        if day in self.makeup_days:
            return True
        if day in self.holidays:
            return False
        return day.weekday() not in self.weekend

    def is_working_time(self, dt: datetime) -> bool:
        local = self.to_local(dt)
        if not self.is_working_day(local.date()):
            return False
        return any(start <= local < end for start, end in self._periods_on(local.date()))

    def next_working_day(self, day: date) -> date:
        """The first working day strictly after ``day``."""
        for offset in range(1, _MAX_SCAN_DAYS):
            candidate = day + timedelta(days=offset)
            if self.is_working_day(candidate):
                return candidate
        raise ValueError(f"no working day within {_MAX_SCAN_DAYS} days after {day}")

    def next_working_moment(self, dt: datetime) -> datetime:
        """``dt`` itself if it is working time, else the start of the next working period (local)."""
        local = self.to_local(dt)
        day = local.date()
        for _ in range(_MAX_SCAN_DAYS):
            if self.is_working_day(day):
                for start, end in self._periods_on(day):
                    if local < end:
                        return max(start, local)
            day += timedelta(days=1)
            local = self._combine(day, time(0, 0))
        raise ValueError(f"no working time within {_MAX_SCAN_DAYS} days after {dt}")

    # ------------------------------------------------------------------ deadlines
    def add_working_time(self, start: datetime, duration: str | timedelta) -> datetime:
        """The deadline ``duration`` of working time after ``start``, as an aware UTC datetime."""
        days, rest = parse_duration(duration)
        current = self.next_working_moment(start)
        if days:
            day = current.date()
            for _ in range(days):
                day = self.next_working_day(day)
            current = self._combine(day, current.time().replace(tzinfo=None))
        if rest > timedelta(0):
            current = self._add_time(current, rest)
        return current.astimezone(UTC)

    def working_time_between(self, a: datetime, b: datetime) -> timedelta:
        """Working time elapsed from ``a`` to ``b`` (negative when ``b`` is before ``a``)."""
        self._require_aware(a)
        self._require_aware(b)
        if b < a:
            return -self.working_time_between(b, a)
        a_local, b_local = self.to_local(a), self.to_local(b)
        total = timedelta(0)
        day = a_local.date()
        while day <= b_local.date():
            if self.is_working_day(day):
                for start, end in self._periods_on(day):
                    lo, hi = max(start, a_local), min(end, b_local)
                    if hi > lo:
                        total += self._span(lo, hi)
            day += timedelta(days=1)
        return total

    def fraction_used(self, start: datetime, deadline: datetime, now: datetime) -> float:
        """Share of the working time between ``start`` and ``deadline`` already used at ``now``.

        0.0 before the clock runs, 1.0 at the deadline, above 1.0 when overdue.  Used for the
        "80% of the time used" warning (预警).
        """
        allowed = self.working_time_between(start, deadline)
        used = self.working_time_between(start, now)
        if allowed <= timedelta(0):
            return 1.0 if now >= deadline else 0.0
        return max(used, timedelta(0)) / allowed

    # ------------------------------------------------------------------ internals
    @staticmethod
    def _require_aware(dt: datetime) -> None:
        if not isinstance(dt, datetime):
            raise TypeError(f"expected a datetime, got {type(dt).__name__}")
        if dt.tzinfo is None or dt.tzinfo.utcoffset(dt) is None:
            raise ValueError(f"naive datetime {dt.isoformat()}: deadlines need timezone-aware times")

    def _combine(self, day: date, tod: time) -> datetime:
        return datetime.combine(day, tod, tzinfo=self.tz)

    def _periods_on(self, day: date) -> list[tuple[datetime, datetime]]:
        return [(self._combine(day, start), self._combine(day, end)) for start, end in self.periods]

    @staticmethod
    def _span(lo: datetime, hi: datetime) -> timedelta:
        # Subtract in UTC: same-tzinfo subtraction in Python ignores DST offsets.
        return hi.astimezone(UTC) - lo.astimezone(UTC)

    def _add_time(self, current: datetime, remaining: timedelta) -> datetime:
        day = current.date()
        for _ in range(_MAX_SCAN_DAYS * 10):
            if self.is_working_day(day):
                for start, end in self._periods_on(day):
                    if end <= current:
                        continue
                    lo = max(start, current)
                    available = self._span(lo, end)
                    if remaining <= available:
                        return (lo.astimezone(UTC) + remaining).astimezone(self.tz)
                    remaining -= available
                    current = end
            day += timedelta(days=1)
            current = self._combine(day, time(0, 0))
        raise ValueError("duration too long for the business calendar")


def _flatten_dates(items) -> list[date]:
    out: list[date] = []
    for item in items:
        if isinstance(item, Mapping):
            if "dates" in item:
                out.extend(_as_date(day) for day in item["dates"] or [])
            if "date" in item:
                out.append(_as_date(item["date"]))
            if "from" in item or "to" in item:
                first, last = _as_date(item["from"]), _as_date(item["to"])
                if last < first:
                    raise ValueError(f"date range {first}..{last} runs backwards")
                out.extend(first + timedelta(days=n) for n in range((last - first).days + 1))
        else:
            out.append(_as_date(item))
    return out
