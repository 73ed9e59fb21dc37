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

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from shared import geo, time_limits
from shared.refdata.intake_data import distance_m
from shared.refdata.spatial import covering_decision

from .cells import duplicate_cell
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
    owned = district.resolve_owner(minor["code"], lon, lat, overrides)   # the responsibility map
    owner, source, street_id = owned["owner"], owned["source"], owned["street_id"]

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
        "time_limit": None,                                  # shared.time_limits, below
        "stages": list(minor.get("stages") or []),
        "attributes": dict(attributes),
        "media_urls": list(report.get("media_urls") or []) + list(report.get("photo_refs") or []),
        "inspector_id": report.get("inspector_id"),
        "reporter_id": reporter_id(report),
        "object_code": report.get("object_code"),
        "leader": report.get("leader"),
        "sensor_id": report.get("sensor_id"),
    }
    case["time_limit"] = time_limits.time_limit(district, case)   # the limit dispatch applies
    return {"accepted": True, "case": case, "gap_place": gap_place,
            "override": override["_id"] if override else None}


def assess(report: dict, district, **kwargs) -> dict:
    """The filing decision in its first shape: ``{"accepted": True, "case"}`` or
    ``{"accepted": False, "reason"}`` (see :func:`decide` for the whole decision)."""
    decision = decide(report, district, **kwargs)
    if decision["accepted"]:
        return {"accepted": True, "case": decision["case"]}
    return {"accepted": False, "reason": decision["reason"]}


def covering_override(overrides, minor: dict, lon: float, lat: float) -> dict | None:
    """The decided ownership that applies to this class at this point: a class-scoped decision
    for the same class first, then an area decision (which sets the 属地 owner, so it applies
    to classes owned by 'street'): shared.refdata."""
    return covering_decision(overrides, minor["code"], minor.get("owner"), lon, lat)


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
    width, height = geo.degrees(2 * radius_m, 70)
    vx, vy = round(lon / width), round(lat / height)
    return sorted(f"{class_code}:{x}:{y}" for x in (vx - 1, vx) for y in (vy - 1, vy))


def match_existing(candidates, class_code: str, point: dict, now: datetime, policy: dict) -> dict | None:
    """An open case of the same class within the radius (registered within the window) →
    ``{"action": "duplicate"}``; else a case closed within ``reopen_within_days`` →
    ``{"action": "reopen"}``; nearest first; a cancelled case (不立案) is never linked.
    None → a new case."""
    radius = policy["duplicates"]["radius_m"]
    window = timedelta(days=policy["duplicates"]["open_case_window_days"])
    reopen = timedelta(days=policy["duplicates"]["reopen_within_days"])
    open_hits, closed_hits = [], []
    for case in candidates:
        if case.get("class_code") != class_code or case.get("state") == "cancelled":
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


# ===================================================================== what filing writes
@dataclass
class Change:
    """What one filing step writes to one aggregate, the way dispatch's rules return a change:
    the document to create (``create``), or the update of the one read at its version (``set``,
    ``push``, ``inc``); its events as ``(type, payload, correlation_id, event_id)``; the message id
    it applies. The service applies it with shared.storage (filing_store.py)."""
    collection: str
    doc_id: str
    create: dict | None = None
    set: dict = field(default_factory=dict)
    push: dict = field(default_factory=dict)
    inc: dict = field(default_factory=dict)
    events: list = field(default_factory=list)
    applied: str | None = None


def received_event(report_id: str, report: dict, now: datetime) -> tuple:
    return ("report_received", {
        "report_id": report_id, "channel": report["channel"], "class_code": report["class_code"],
        "location": report["location"], "description": report.get("description", ""),
        "reporter_id": reporter_id(report), "inspector_id": report.get("inspector_id"),
        "inspector_name": report.get("inspector_name"), "received_at": now, "external_id": report.get("external_id"),
        "urgency": report.get("urgency") or "normal", "photo_refs": report.get("photo_refs") or [],
    }, report_id, f"{report_id}.received")


def received_day(moment: datetime) -> str:
    """A report's ``received_day``: the UTC date it was received (``YYYY-MM-DD``). A date window
    is searched one day at a time by this key (the embedded store serves no range from an index)."""
    return f"{moment.astimezone(timezone.utc):%Y-%m-%d}"


def days_back(start: datetime, end: datetime) -> list[str]:
    """The ``received_day`` keys of a window, newest first."""
    first, day = start.astimezone(timezone.utc).date(), end.astimezone(timezone.utc).date()
    days = []
    while day >= first:
        days.append(f"{day:%Y-%m-%d}")
        day -= timedelta(days=1)
    return days


def _report_doc(report_id: str, report: dict, now: datetime, token: str, filer: dict | None, **outcome) -> dict:
    return {"_id": report_id, "report": report, "channel": report["channel"],
            "class_code": report["class_code"], "received_at": now, "received_day": received_day(now),
            "updated_at": now, **outcome,
            "token": token, "reporter_id": reporter_id(report), **(filer or {})}


def rejection(report_id: str, report: dict, reason: str, reason_code: str, received: tuple, now: datetime,
              token: str, filer: dict | None, notice: str, **extra) -> Change:
    """Not filed (a rule said no, or a stall permit covers it): the report document, closed, with
    its reason, ``report_received`` and ``report_rejected``."""
    doc = _report_doc(report_id, report, now, token, filer, status="rejected", reason=reason,
                      reason_code=reason_code, **extra)
    doc["service_notice"] = notice
    return Change("reports", report_id, create=doc, events=[received, ("report_rejected", {
        "report_id": report_id, "channel": report["channel"], "reason": reason,
        "inspector_id": report.get("inspector_id"), "reason_code": reason_code,
        "class_code": report["class_code"], "rejected_at": now,
    }, report_id, f"{report_id}.rejected")])


def registration(case_id: str, report_id: str, report: dict, decision: dict, received: tuple, now: datetime,
                 dispute_id: str | None) -> Change:
    """A new case: intake's case document (registered, its first reporter subscribed) and
    ``case_registered`` with everything dispatch needs."""
    fields = decision["case"]
    doc = {
        "_id": case_id, **fields, "report_id": report_id, "report_ids": [report_id],
        "channel": report["channel"], "state": "registered", "registered_at": now,
        "updated_at": now, "unit_id": fields["owner_unit"], "deadline": None,
        "status_notes": "已立案，待派遣", "dispute_id": dispute_id,
        "subscribers": [{"report_id": report_id, "reporter_id": reporter_id(report),
                         "channel": report["channel"], "at": now}],
        "links": [{"report_id": report_id, "kind": "registered", "at": now}],
        "duplicate_count": 0, "reopen_count": 0, "history": [],
        "ownership_override": decision.get("override"),
        "dup_cell": duplicate_cell(fields["class_code"], fields["location"]["lon"], fields["location"]["lat"]),
    }
    return Change("cases", case_id, create=doc, applied=report_id, events=[received, ("case_registered", {
        **fields, "case_id": case_id, "report_id": report_id, "channel": report["channel"],
        "registered_at": now, "dispute_id": dispute_id,
    }, case_id, f"{report_id}.registered")])


def link(case: dict, match: dict, report_id: str, report: dict, class_code: str, received: tuple,
         now: datetime, reopen_fields) -> Change:
    """Link the report to an open case (``match["action"]`` duplicate) or reopen a recently closed
    one (reopen): the report joins ``report_ids``, its reporter the subscribers.
    ``reopen_fields(case, now, reason)``: the case copy's own write (case_status.py)."""
    subscriber = {"report_id": report_id, "reporter_id": reporter_id(report), "channel": report["channel"],
                  "at": now}
    entry = {"report_id": report_id, "kind": match["action"], "at": now, "distance_m": match["distance_m"]}
    case_id = case["_id"]
    change = Change("cases", case_id, applied=report_id,
                    push={"report_ids": [report_id], "subscribers": [subscriber], "links": [entry]})
    if match["action"] == "duplicate":
        change.inc = {"duplicate_count": 1}
        change.events = [received, ("report_linked_as_duplicate", {
            "report_id": report_id, "case_id": case_id, "distance_m": match["distance_m"],
            "linked_at": now, "channel": report["channel"], "class_code": class_code,
            "reporter_id": subscriber["reporter_id"],
            "duplicate_count": case.get("duplicate_count", 0) + 1,
        }, case_id, f"{report_id}.duplicate")]
        return change
    closed_at = case.get("closed_at")
    days = (now - closed_at).total_seconds() / 86400 if closed_at else 0
    reason = (f"结案后 {days:.1f} 天内同一位置（{match['distance_m']:.0f} 米内）再次上报同类问题"
              f"（上报 {report_id}），重新打开返工")
    change.inc = {"reopen_count": 1}
    change.set = reopen_fields(case, now, reason)
    change.events = [received, ("case_reopened", {
        "case_id": case_id, "report_id": report_id, "reason": reason, "reopened_at": now,
        "unit_id": case.get("unit_id"), "closed_at": closed_at,
        "reopen_count": case.get("reopen_count", 0) + 1, "class_code": class_code,
        "distance_m": match["distance_m"],
    }, case_id, f"{report_id}.reopened")]
    return change


REGISTRATION_FIELDS = ("class_code", "class_name", "class_kind", "urgency", "location", "address", "grid_code",
                       "community_code", "community_name", "street_id", "owner_unit", "owner_source", "gap",
                       "joint_partners", "case_kind", "time_limit", "dispute_id")


def outcome(report_id: str, case: dict) -> tuple[str, float | None]:
    """How a report ended on its case: (registered | duplicate | reopened, distance in metres)."""
    kind = "registered" if case.get("report_id") == report_id else "duplicate"
    distance = None
    for entry in case.get("links", []):
        if entry["report_id"] == report_id:
            kind, distance = entry["kind"], entry.get("distance_m")
    return {"registered": "registered", "duplicate": "duplicate", "reopen": "reopened"}[kind], distance


def filed_report(report_id: str, report: dict, case: dict, now: datetime, token: str, filer: dict | None,
                 notice: str) -> dict:
    """The report document of a filed report (written last: its case and events are saved)."""
    status, distance = outcome(report_id, case)
    doc = _report_doc(report_id, report, now, token, filer, status=status, case_id=case["_id"],
                      case={key: case.get(key) for key in REGISTRATION_FIELDS},
                      duplicate_of=case["_id"] if status != "registered" else None, distance_m=distance)
    doc["service_notice"] = notice
    return doc


def answer(doc: dict) -> dict:
    """What the channel is told about its report."""
    reply = {"report_id": doc["_id"], "status": doc["status"], "token": doc.get("token"),
             "service_notice": doc.get("service_notice")}
    if doc["status"] == "rejected":
        reply.update(reason=doc.get("reason"), reason_code=doc.get("reason_code"))
    else:
        case = doc.get("case") or {}
        reply.update(case_id=doc["case_id"], owner_unit=case.get("owner_unit"),
                     grid_code=case.get("grid_code"), street_id=case.get("street_id"),
                     owner_source=case.get("owner_source"), time_limit=case.get("time_limit"),
                     dispute_id=case.get("dispute_id"))
        if doc["status"] != "registered":
            reply.update(duplicate_of=doc["case_id"], distance_m=doc.get("distance_m"))
    return reply
