"""Filing decisions (立案) — pure: no broker, no store, no clock (``now`` is passed in).

Given a validated report, the district's reference data and what intake already knows (nearby
cases, decided ownership disputes), decide:

* **file** a new case (class, grid, community, street, owner and the deadline inputs), or
* **reject** it with a reason the reporter can read (unknown class, outside the district, filing
  standard not met, inspector report without photo, problem seen too long ago), or
* **link** it to an open case of the same class within ~50 m (``duplicate_of``), or
* **reopen** a case of the same class closed within N days (返工).
"""
from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone

from shared.refdata.intake_data import distance_m, geometry_covers

from .rules import check_filing_standard, reporter_id


# ===================================================================== filing
def reject(reason: str, code: str) -> dict:
    return {"accepted": False, "reason": reason, "reason_code": code}


def decide(report: dict, district, *, now: datetime | None = None, policy: dict | None = None,
           overrides=()) -> dict:
    """The filing decision for one validated report.

    ``overrides``: decided ownership disputes near the point (dicts with ``geometry``,
    ``scope`` area|class, ``class_code``, ``owner_unit``, ``_id``).
    Returns ``{"accepted": False, "reason", "reason_code"}`` or
    ``{"accepted": True, "case": {...}, "gap_place": {...} | None, "override": id | None}``.
    """
    policy = policy or district.policy()
    now = now or datetime.now(timezone.utc)
    tz = district.calendar.tz
    try:
        minor = district.minor_class(report["class_code"])
    except KeyError:
        return reject(f"未知的问题类别 {report['class_code']}", "unknown_class")

    seen = report.get("reported_at")
    max_age = policy["filing"]["max_report_age_days"]
    if isinstance(seen, datetime) and max_age and now - seen > timedelta(days=max_age):
        local = seen.astimezone(tz)
        return reject(f"问题发现于 {local:%Y-%m-%d %H:%M}，已超过 {max_age:g} 天受理时限，"
                      f"请核实现场后重新上报", "stale")

    point = report["location"]
    lon, lat = float(point["lon"]), float(point["lat"])
    located = district.locate(lon, lat)
    if located is None:
        nearest = district.nearest_grid(lon, lat)
        tolerance = policy["location"]["outside_tolerance_m"]
        if nearest["distance_m"] > tolerance:
            return reject(f"位置 ({lon:.6f}, {lat:.6f}) 不在{district.name}辖区内："
                          f"距最近的单元网格约 {nearest['distance_m']:.0f} 米", "outside_district")

    channel = report.get("channel")
    if (channel == "inspector" and policy["filing"]["inspector_requires_photo"]
            and not (report.get("photo_refs") or report.get("media_urls"))):
        return reject("信息采集员上报须附问题照片（photo_refs），不予立案", "no_photo")

    attributes = report.get("attributes") or {}
    bypass = channel == "road_office" and policy["filing"]["road_office_bypasses_standard"]
    if not bypass:
        reason = check_filing_standard(minor, attributes, tz)
        if reason:
            return reject(reason, "filing_standard")

    # ---------------------------------------------------------------- owner
    override = covering_override(overrides, minor, lon, lat)
    gap_place = None
    if located is None:
        street_id = district.nearest_street(lon, lat)
        nearest = district.nearest_grid(lon, lat)
        community_code, community_name = None, None
        if override is None or override.get("scope") != "area":
            gap_place = district.gap_place(lon, lat)
            gap_place["nearest_grid"] = nearest["grid_code"]
            gap_place["nearest_community"] = nearest["community_name"]
    else:
        street_id = located["street_id"]
        community_code, community_name = located["community_code"], located["community_name"]
    if override is not None:
        owner, source = override["owner_unit"], "ownership_decided"
    elif minor["owner"] != "street":
        owner, source = minor["owner"], "class"
    elif located is not None:
        owner, source = street_id, "grid_street"
    else:
        owner, source = street_id, "gap_nearest_street"

    urgency = report.get("urgency") or ("urgent" if channel == "road_office" else "normal")
    case = {
        "class_code": minor["code"],
        "class_name": minor["name"],
        "class_kind": minor["kind"],
        "urgency": urgency,
        "location": {"lon": lon, "lat": lat},
        "address": report.get("address", ""),
        "grid_code": located["grid_code"] if located else None,
        "community_code": community_code,
        "community_name": community_name,
        "street_id": street_id,
        "owner_unit": owner,
        "owner_source": source,
        "gap": located is None,
        "joint_partners": list(minor.get("joint") or []),
        "description": report.get("description", ""),
        "case_kind": minor["case_kind"],
        "time_limit": minor["deadline"][urgency],
        "stages": list(minor.get("stages") or []),
        "attributes": dict(attributes),
        "media_urls": list(report.get("media_urls") or []) + list(report.get("photo_refs") or []),
        "inspector_id": report.get("inspector_id"),
        "reporter_id": reporter_id(report),
        "object_code": report.get("object_code"),
        "leader": report.get("leader"),
        "sensor_id": report.get("sensor_id"),
    }
    return {"accepted": True, "case": case, "gap_place": gap_place,
            "override": override["_id"] if override else None}


def assess(report: dict, district, **kwargs) -> dict:
    """The filing decision in its first shape: ``{"accepted": True, "case"}`` or
    ``{"accepted": False, "reason"}`` (see :func:`decide` for the whole decision)."""
    decision = decide(report, district, **kwargs)
    if decision["accepted"]:
        return {"accepted": True, "case": decision["case"]}
    return {"accepted": False, "reason": decision["reason"]}


def resolve_owner(minor: dict, place: dict) -> str:
    """条块结合、以块为主: class owner 'street' means the street of the place."""
    owner = minor.get("owner") or "street"
    if owner == "street":
        return place["street_id"]
    return owner


def covering_override(overrides, minor: dict, lon: float, lat: float) -> dict | None:
    """The decided ownership that applies to this class at this point: a class-scoped decision
    for the same class first, then an area decision (which sets the 属地 owner, so it applies
    to classes owned by 'street')."""
    best = None
    for override in overrides or ():
        if override.get("state") not in (None, "decided"):
            continue
        if not geometry_covers(override["geometry"], lon, lat):
            continue
        if override.get("scope") == "class":
            if override.get("class_code") == minor["code"]:
                return override
        elif minor.get("owner") == "street" and best is None:
            best = override
    return best


# ===================================================================== duplicates, reopen
def bbox_around(lon: float, lat: float, radius_m: float) -> dict:
    """A lon/lat box that contains the disc of ``radius_m`` around the point (for a query)."""
    from shared.refdata.intake_data import disc
    minx, miny, maxx, maxy = disc(lon, lat, radius_m * 1.05).bounds
    return {"min_lon": minx, "max_lon": maxx, "min_lat": miny, "max_lat": maxy}


def claim_keys(class_code: str, lon: float, lat: float, radius_m: float) -> list[str]:
    """The keys a new filing of ``class_code`` at this point claims while it checks for duplicates
    and files. Any two points closer than ``radius_m`` share at least one key, so two reports of
    one problem arriving together are filed one after the other (the second one links).

    Cells are 2×radius high and at least 2×radius wide (their width in degrees is taken at 70°
    latitude, where a degree of longitude is shortest of anywhere this runs); the keys are the four
    cells around the grid vertex nearest the point. Two points within the radius have nearest
    vertices at most one step apart on each axis, so their blocks of four overlap."""
    height = 2 * radius_m / 110_540
    width = 2 * radius_m / (111_320 * math.cos(math.radians(70)))
    vx, vy = round(lon / width), round(lat / height)
    return sorted(f"{class_code}:{x}:{y}" for x in (vx - 1, vx) for y in (vy - 1, vy))


def match_existing(candidates, class_code: str, point: dict, now: datetime, policy: dict) -> dict | None:
    """An open case of the same class within the radius (registered within the window) →
    ``{"action": "duplicate"}``; else a case closed within ``reopen_within_days`` →
    ``{"action": "reopen"}``; nearest first.  None → a new case."""
    radius = policy["duplicates"]["radius_m"]
    window = timedelta(days=policy["duplicates"]["open_case_window_days"])
    reopen = timedelta(days=policy["duplicates"]["reopen_within_days"])
    open_hits, closed_hits = [], []
    for case in candidates:
        if case.get("class_code") != class_code:
            continue
        location = case.get("location") or {}
        distance = distance_m(point["lon"], point["lat"], location.get("lon"), location.get("lat"))
        if distance > radius:
            continue
        if case.get("state") != "closed":
            registered = case.get("registered_at")
            if registered is None or now - registered <= window:
                open_hits.append((distance, case["_id"]))
        else:
            closed = case.get("closed_at")
            if closed is not None and timedelta(0) <= now - closed <= reopen:
                closed_hits.append((distance, case["_id"]))
    if open_hits:
        distance, case_id = min(open_hits)
        return {"action": "duplicate", "case_id": case_id, "distance_m": round(distance, 1)}
    if closed_hits:
        distance, case_id = min(closed_hits)
        return {"action": "reopen", "case_id": case_id, "distance_m": round(distance, 1)}
    return None
