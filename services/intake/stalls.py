"""Street-stall permits "四定" (Meishan: 定点 place, 定量 quantity, 定类 goods, 定时 time) —
pure rules and the permit schema; no I/O.

A report of street trading (``STREET_TRADING`` classes) at a permitted stall, inside its place
and its time window, is not a violation: intake closes it with that reason and tells the
reporter, instead of filing a case.

Edges (tested): place — a point with radius r covers distances ≤ r (great-circle), a polygon
covers its boundary; time — the daily window is [start, end) in local time (start included,
end excluded; end < start crosses midnight and belongs to the day it started); validity dates
are local dates, both included.
"""
from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import yaml
from shapely.geometry import Point, Polygon

from shared import geo
from shared.config import ROOT
from shared.contracts.api.intake import (HHMM, STREET_TRADING, PermitSchema, PlaceSchema,  # noqa: F401
                                         WindowSchema)

DEFAULT_FILE = ROOT / "shared" / "refdata" / "default_district" / "stall_permits.yaml"


def load_permit(data: dict) -> dict:
    return PermitSchema().load(data)


def dump_permit(permit: dict) -> dict:
    out = dict(permit)
    for key in ("valid_from", "valid_to"):
        if isinstance(out.get(key), date):
            out[key] = out[key].isoformat()
    return out


def default_permits(path=None) -> list[dict]:
    try:
        with open(path or DEFAULT_FILE, encoding="utf-8") as handle:
            raw = yaml.safe_load(handle) or {}
    except FileNotFoundError:
        return []
    return [load_permit(item) for item in raw.get("permits") or []]


# ------------------------------------------------------------------ place
distance_m = geo.distance_m


def in_place(place: dict, lon: float, lat: float) -> bool:
    if place.get("polygon"):
        return Polygon(place["polygon"]).covers(Point(lon, lat))
    plon, plat = place["point"]
    return distance_m(plon, plat, lon, lat) <= float(place["radius_m"]) + 1e-6


# ------------------------------------------------------------------ time
def _hhmm(text: str) -> time:
    hours, minutes = (int(part) for part in text.split(":"))
    return time(hours, minutes)


def in_window(permit: dict, moment: datetime, tz: str) -> bool:
    """Whether ``moment`` lies in one of the permit's daily windows [start, end) (local)."""
    local = moment.astimezone(_zone(tz))
    start, end = _hhmm(permit["window"]["start"]), _hhmm(permit["window"]["end"])
    for day in (local.date(), local.date() - timedelta(days=1)):   # a window may start yesterday
        opens = datetime.combine(day, start, tzinfo=_zone(tz))
        closes = datetime.combine(day + timedelta(days=1) if end <= start else day, end, tzinfo=_zone(tz))
        if not (opens <= local < closes):
            continue
        if not (_date(permit["valid_from"]) <= day <= _date(permit["valid_to"])):
            continue
        if day.isoweekday() in permit.get("days", range(1, 8)):
            return True
    return False


def _date(value) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value))


# ------------------------------------------------------------------ the check
def permitted_stall(permits, class_code: str, lon: float, lat: float, moment: datetime, tz: str,
                    stall_count: float | None = None) -> dict | None:
    """The permit that makes this street-trading report no violation, or None.

    定量: when the reporter counted the stalls (attribute ``stall_count``), a permit covers them
    only up to its ``quantity``; more stalls than permitted at the place is a violation, filed
    as usual. A report without a count is judged on place, goods class and time alone."""
    if class_code not in STREET_TRADING:
        return None
    for permit in sorted(permits, key=lambda p: p["permit_id"]):
        if permit.get("revoked") or class_code not in permit.get("classes", STREET_TRADING):
            continue
        if stall_count is not None and stall_count > permit.get("quantity", 1):
            continue
        if in_place(permit["place"], lon, lat) and in_window(permit, moment, tz):
            return permit
    return None


def closing_reason(permit: dict) -> str:
    window = permit["window"]
    return (f"经核对“四定”摊点登记，该处为许可摊点（许可编号 {permit['permit_id']}，{permit['holder']}，"
            f"经营{permit['goods']}，许可时段 {window['start']}–{window['end']}），在许可地点和时段内经营，"
            f"不属违法经营，不予立案，感谢您的监督")


NOT_YOURS = "此编号已由其他单位登记，不能替换 (registered by another unit: not yours to replace)"


def may_replace(existing: dict | None, unit_id: str | None) -> bool:
    """Who may register a permit (or a shop) under an id: anyone when the id is new; the command
    centre (``unit_id`` None) always; a unit only what it registered itself. (Which territory a
    unit may register in is the gateway's access rule: services/gateway/access.py ``territory``.)"""
    return existing is None or unit_id is None or existing.get("registered_by") == unit_id


def permit_id_ok(value: str) -> bool:
    return bool(re.fullmatch(r"[A-Za-z0-9_.\-]{1,64}", value or ""))


def _zone(tz):
    """A timezone given by name or as a tzinfo (the calendar's)."""
    return tz if not isinstance(tz, str) else ZoneInfo(tz)
