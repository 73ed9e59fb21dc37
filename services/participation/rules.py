"""participation — pure rules (no I/O): who earns points and how many, the point ledger's
arithmetic, which review a community representative may give, and which shop's frontage
stretch (门前三包) a point lies on."""
from __future__ import annotations

import re
from datetime import datetime, timezone
from zoneinfo import ZoneInfo

from shapely.geometry import LineString, Point, Polygon

from shared import geo

CITIZEN_KINDS = ("account_id", "phone")
PERIOD = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")
COMMUNITY = re.compile(r"^\d{12}$")


# ------------------------------------------------------------------ citizens and points
def citizen_id(reporter_id: str | None) -> str | None:
    """The citizen behind a report (``account_id:…`` or ``phone:…``); None for inspectors,
    leaders, sensors and anonymous reports, which earn no points."""
    if not reporter_id or ":" not in reporter_id:
        return None
    kind, value = reporter_id.split(":", 1)
    if kind not in CITIZEN_KINDS or not value.strip():
        return None
    return f"{kind}:{value.strip()}"


def citizen_from_query(account_id: str | None = None, phone: str | None = None) -> str | None:
    if account_id:
        return f"account_id:{account_id.strip()}"
    if phone:
        return "phone:" + re.sub(r"[\s-]", "", phone)
    return None


def points_for(case: dict, settings: dict) -> int:
    """Points for a report registered as a new case (duplicates and rejections never get here)."""
    points = settings["points"]
    value = int(points.get("by_class", {}).get(case.get("class_code"), points["per_valid_case"]))
    if case.get("urgency") == "urgent":
        value += int(points.get("urgent_bonus", 0))
    return max(value, 0)


def catalogue_item(settings: dict, code: str) -> dict | None:
    return next((item for item in settings["catalogue"] if item["code"] == code), None)


def redemption_problem(balance: int, cost: int) -> str | None:
    """Why a redemption may not be made (the balance never goes below zero)."""
    if cost <= 0:
        return "兑换积分必须大于 0 (the cost must be positive)"
    if balance < cost:
        return f"积分不足：余额 {balance}，需要 {cost} (insufficient points)"
    return None


# ------------------------------------------------------------------ community reviews
def month_start(period: str, tz: str) -> datetime:
    year, month = (int(part) for part in period.split("-"))
    return datetime(year, month, 1, tzinfo=_zone(tz)).astimezone(timezone.utc)


def current_period(now: datetime, tz: str) -> str:
    local = now.astimezone(_zone(tz))
    return f"{local.year:04d}-{local.month:02d}"


def period_problem(period: str, now: datetime, tz: str, months_back: int) -> str | None:
    """A review is for a month that has started and ended at most ``months_back`` months ago."""
    if not PERIOD.match(period or ""):
        return "评议周期格式为 YYYY-MM (period must be YYYY-MM)"
    year, month = (int(part) for part in period.split("-"))
    cur = current_period(now, tz)
    cy, cm = (int(part) for part in cur.split("-"))
    diff = (cy * 12 + cm) - (year * 12 + month)
    if diff < 0:
        return "不能评议尚未开始的周期 (the period has not started)"
    if diff > months_back:
        return f"评议已截止：只能评议本月和前 {months_back} 个月 (the period is closed for reviews)"
    return None


def community_of(grids, code: str) -> dict | None:
    """The community with a 12-digit code (district 6 + street 3 + community 3), from the grids."""
    if not COMMUNITY.match(code or ""):
        return None
    for grid in grids:
        if grid["code"][:12] == code:
            return {"community_code": code, "community_name": grid["community_name"],
                    "street_id": grid["street_id"]}
    return None


def review_problem(community: dict, unit: dict | None, unit_types) -> str | None:
    """Whether this community may rate this unit: a department or operator that serves the
    district, or its own street/town (not another street's)."""
    if unit is None:
        return "没有这个单位 (unknown unit)"
    if unit.get("type") not in unit_types:
        return f"该类单位不参加社区评议 (units of type {unit.get('type')} are not rated)"
    if unit["type"] in ("street", "town") and unit["id"] != community["street_id"]:
        return "只能评议本社区所在的街镇 (a community rates only its own street or town)"
    return None


def review_id(period: str, representative: str, unit_id: str) -> str:
    """One vote per representative per unit per period: the review's unique _id."""
    safe = re.sub(r"[^A-Za-z0-9_.\-]", "_", representative)[:60]
    return f"RV-{period}-{safe}-{unit_id}"


# ------------------------------------------------------------------ geometry in metres
_projector, distance_m = geo.projector, geo.distance_m     # shared.geo: one Earth for the platform


def distance_to_line_m(lon, lat, coords) -> float:
    """Distance in metres from a point to a polyline (local projection around the point)."""
    project = _projector(lon, lat)
    line = LineString([project(x, y) for x, y in coords])
    return line.distance(Point(0, 0))


def stretch_distance(stretch: dict, lon: float, lat: float, default_width: float) -> float | None:
    """How far inside/near a frontage stretch the point is: None when outside it, else the
    distance to the stretch's centre line (0 for a polygon that covers the point)."""
    if stretch.get("polygon"):
        polygon = Polygon(stretch["polygon"])
        return 0.0 if polygon.covers(Point(lon, lat)) else None
    width = float(stretch.get("width_m") or default_width)
    distance = distance_to_line_m(lon, lat, stretch["line"])
    return distance if distance <= width + 1e-9 else None


def shop_at(shops, lon: float, lat: float, default_width: float) -> dict | None:
    """The shop whose frontage stretch covers the point; the nearest centre line wins a tie."""
    best = None
    for shop in shops:
        distance = stretch_distance(shop["frontage"], lon, lat, default_width)
        if distance is not None and (best is None or (distance, shop["shop_id"]) < best[0]):
            best = ((distance, shop["shop_id"]), shop)
    return best[1] if best else None


def frontage_counts(class_code: str, settings: dict) -> bool:
    return class_code in settings["frontage"]["classes"]


def _zone(tz):
    """A timezone given by name or as a tzinfo (the calendar's)."""
    return tz if not isinstance(tz, str) else ZoneInfo(tz)
