"""Evaluation periods (考核周期) — pure. Periods are whole local days in the district's timezone.
The period grammar is part of the scoring API (the gateway checks a ``period`` with it, scoring
computes with it; services/scoring/periods.py re-exports this module).

    2026-11-23               a day
    2026-W48                 an ISO week (Monday to Sunday)
    2026-11                  a month
    2026-Q4                  a quarter (季度考核)
    2026                     a year (年度考核)
    2026-11-01..2026-11-15   a custom period, both days included

``start`` and ``end`` are aware UTC datetimes; ``end`` is exclusive.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

_DAY = re.compile(r"^(\d{4})-(\d{2})-(\d{2})$")
_WEEK = re.compile(r"^(\d{4})-W(\d{2})$")
_MONTH = re.compile(r"^(\d{4})-(\d{2})$")
_QUARTER = re.compile(r"^(\d{4})-Q([1-4])$")
_YEAR = re.compile(r"^(\d{4})$")
_CUSTOM = re.compile(r"^(\d{4}-\d{2}-\d{2})\.\.(\d{4}-\d{2}-\d{2})$")
MAX_CUSTOM_DAYS = 366

PERIOD_HELP = ("周期格式 (period format): 2026-11-23 | 2026-W48 | 2026-11 | 2026-Q4 | 2026 | "
               "2026-11-01..2026-11-15")


class PeriodError(ValueError):
    pass


@dataclass(frozen=True)
class Period:
    kind: str            # day | week | month | quarter | year | custom
    label: str
    first_day: date      # local
    last_day: date       # local, included
    tz: str

    @property
    def start(self) -> datetime:
        return _local_midnight(self.first_day, self.tz)

    @property
    def end(self) -> datetime:
        return _local_midnight(self.last_day + timedelta(days=1), self.tz)

    def contains(self, moment: datetime | None) -> bool:
        return moment is not None and self.start <= moment < self.end

    @property
    def title(self) -> str:
        """The period in Chinese, for bulletins."""
        if self.kind == "month":
            return f"{self.first_day.year}年{self.first_day.month}月"
        if self.kind == "quarter":
            return f"{self.first_day.year}年第{(self.first_day.month - 1) // 3 + 1}季度"
        if self.kind == "year":
            return f"{self.first_day.year}年度"
        if self.kind == "day":
            return f"{self.first_day.year}年{self.first_day.month}月{self.first_day.day}日"
        if self.kind == "week":
            year, week, _ = self.first_day.isocalendar()
            return f"{year}年第{week}周"
        return f"{self.first_day.isoformat()} 至 {self.last_day.isoformat()}"

    def as_dict(self) -> dict:
        return {"kind": self.kind, "label": self.label, "title": self.title,
                "first_day": self.first_day.isoformat(), "last_day": self.last_day.isoformat(),
                "start": local_iso(self.start, self.tz), "end": local_iso(self.end, self.tz),
                "timezone": self.tz}


def local_iso(moment: datetime | None, tz: str) -> str | None:
    """ISO 8601 in the district's local time with its offset (2026-12-01T08:00:00+08:00); a naive
    moment is UTC (what a store that drops tzinfo keeps)."""
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(ZoneInfo(tz)).isoformat()


def _local_midnight(day: date, tz: str) -> datetime:
    return datetime.combine(day, time(0), tzinfo=ZoneInfo(tz)).astimezone(timezone.utc)


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise PeriodError(f"日期无效 (invalid date) {text!r}") from exc


def month_period(year: int, month: int, tz: str) -> Period:
    if not 1 <= month <= 12:
        raise PeriodError(f"月份无效 (invalid month) {year}-{month:02d}")
    first = date(year, month, 1)
    following = date(year + (month == 12), month % 12 + 1, 1)
    return Period("month", f"{year}-{month:02d}", first, following - timedelta(days=1), tz)


def parse_period(text: str, tz: str = "Asia/Shanghai") -> Period:
    text = (text or "").strip()
    if match := _MONTH.match(text):
        return month_period(int(match[1]), int(match[2]), tz)
    if _DAY.match(text):
        day = _date(text)
        return Period("day", day.isoformat(), day, day, tz)
    if match := _WEEK.match(text):
        try:
            monday = date.fromisocalendar(int(match[1]), int(match[2]), 1)
        except ValueError as exc:
            raise PeriodError(f"周无效 (invalid ISO week) {text!r}") from exc
        year, week, _ = monday.isocalendar()
        return Period("week", f"{year}-W{week:02d}", monday, monday + timedelta(days=6), tz)
    if match := _QUARTER.match(text):
        year, quarter = int(match[1]), int(match[2])
        first, last = month_period(year, 3 * quarter - 2, tz), month_period(year, 3 * quarter, tz)
        return Period("quarter", f"{year}-Q{quarter}", first.first_day, last.last_day, tz)
    if match := _YEAR.match(text):
        year = int(match[1])
        return Period("year", str(year), date(year, 1, 1), date(year, 12, 31), tz)
    if match := _CUSTOM.match(text):
        first, last = _date(match[1]), _date(match[2])
        if last < first:
            raise PeriodError("结束日期早于开始日期 (the period ends before it starts)")
        if (last - first).days + 1 > MAX_CUSTOM_DAYS:
            raise PeriodError(f"自定义周期最长 {MAX_CUSTOM_DAYS} 天 (at most {MAX_CUSTOM_DAYS} days)")
        return Period("custom", f"{first.isoformat()}..{last.isoformat()}", first, last, tz)
    raise PeriodError(f"无法识别的周期 {text!r}；{PERIOD_HELP}")


def month_of(moment: datetime, tz: str) -> Period:
    local = moment.astimezone(ZoneInfo(tz))
    return month_period(local.year, local.month, tz)


def months_in(period: Period) -> list[Period]:
    """The calendar months a period spans (a quarter's three, a year's twelve)."""
    out, year, month = [], period.first_day.year, period.first_day.month
    while (year, month) <= (period.last_day.year, period.last_day.month):
        out.append(month_period(year, month, period.tz))
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return out


def previous_months(period: Period, count: int) -> list[Period]:
    """``count`` months ending with the month of ``period`` (oldest first)."""
    year, month = period.first_day.year, period.first_day.month
    out = []
    for _ in range(count):
        out.append(month_period(year, month, period.tz))
        year, month = (year - 1, 12) if month == 1 else (year, month - 1)
    return list(reversed(out))
