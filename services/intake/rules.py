"""Filing rules (立案) — pure: no broker, no store, no clock (``now`` is passed in).

Given a validated report, the district's reference data and what intake already knows (nearby
cases, decided ownership disputes), decide:

* **file** a new case (class, grid, community, street, owner and the deadline inputs), or
* **reject** it with a reason the reporter can read (unknown class, outside the district, filing
  standard not met, inspector report without photo, problem seen too long ago), or
* **link** it to an open case of the same class within ~50 m (``duplicate_of``), or
* **reopen** a case of the same class closed within N days (返工).

Also here: the ownership-dispute ladder (community → street → department → leadership, each
with a working-time deadline), the case-status projection from dispatch's events, and the
attribute normalisation used by the schemas.
"""
from __future__ import annotations

import hashlib
from datetime import datetime, timedelta, timezone

from shared import geo, time_limits
from shared.refdata.intake_data import ARBITRATION_LEVELS, distance_m, local_time_between
from shared.refdata.spatial import covering_decision

# ===================================================================== ids
def report_id_for(report: dict, generated: str) -> str:
    if report.get("external_id"):
        return f"{report['channel']}-{report['external_id']}"
    return generated


def case_id_for(report_id: str, received_at: datetime) -> str:
    digest = hashlib.sha1(report_id.encode()).hexdigest()[:8].upper()
    return f"C{received_at:%Y%m%d}-{digest}"


def reporter_id(report: dict) -> str | None:
    """Who to subscribe: inspector id, leader, account id or phone (in that order)."""
    if report.get("inspector_id"):
        return f"inspector:{report['inspector_id']}"
    leader = report.get("leader") or {}
    if leader.get("name"):
        return f"leader:{leader['name']}"
    reporter = report.get("reporter") or {}
    for key in ("account_id", "phone", "email"):
        if reporter.get(key):
            return f"{key}:{reporter[key]}"
    if report.get("sensor_id"):
        return f"sensor:{report['sensor_id']}"
    return None


# ===================================================================== attributes
def _number_text(value: float) -> str:
    return f"{value:g}"


def normalise_attributes(minor: dict, raw: dict, tz) -> tuple[dict, dict]:
    """Check attribute answers against the class's typed attributes.

    Returns ``(clean, errors)``: clean values by code (numbers as float, lists as lists of keys,
    datetimes as ISO strings), and field errors by code.  Unknown codes are ignored (tolerant).
    """
    clean: dict = {}
    errors: dict = {}
    defined = {attribute["code"]: attribute for attribute in minor.get("attributes") or []}
    for code, value in (raw or {}).items():
        attribute = defined.get(code)
        if attribute is None or value is None or value == "" or value == []:
            continue
        datatype = attribute["datatype"]
        keys = [v["key"] for v in attribute.get("values") or []]
        if datatype == "number":
            number = None
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                number = float(value) if abs(value) < 1e12 else None
            elif isinstance(value, str) and len(value) <= 32:
                try:
                    number = float(value.strip())
                except ValueError:
                    number = None
            if number is None or number != number or abs(number) > 1e9:
                errors[code] = [f"{attribute['description']}应为数字 (must be a number)"]
            else:
                clean[code] = number
        elif datatype in ("string", "text"):
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                value = _number_text(value)
            limit = 200 if datatype == "string" else 4000
            if not isinstance(value, str) or len(value) > limit:
                errors[code] = [f"{attribute['description']}应为不超过 {limit} 字的文字"]
            elif datatype == "string" and ("\n" in value or "\r" in value):
                errors[code] = [f"{attribute['description']}不能换行 (string: no line breaks)"]
            else:
                clean[code] = value
        elif datatype == "datetime":
            parsed = None
            if isinstance(value, str) and len(value) <= 40:
                try:
                    parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
                except ValueError:
                    parsed = None
            if parsed is None:
                errors[code] = [f"{attribute['description']}应为 ISO 8601 时间，如 2026-11-23T23:10:00+08:00"]
            else:
                if parsed.tzinfo is None:
                    parsed = parsed.replace(tzinfo=tz)
                clean[code] = parsed.isoformat()
        elif datatype == "singlevaluelist":
            if isinstance(value, list) and len(value) == 1:
                value = value[0]
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                value = _number_text(value)
            if not isinstance(value, str) or value not in keys:
                errors[code] = [f"{attribute['description']}只能是 {', '.join(keys)} 之一"]
            else:
                clean[code] = value
        elif datatype == "multivaluelist":
            values = value if isinstance(value, list) else [value]
            if len(values) > len(keys) * 2 or not all(isinstance(v, str) and v in keys for v in values):
                errors[code] = [f"{attribute['description']}的每一项只能是 {', '.join(keys)} 之一"]
            else:
                clean[code] = sorted(set(values), key=keys.index)
    return clean, errors


def missing_required(minor: dict, attributes: dict) -> list[str]:
    return [attribute["code"] for attribute in minor.get("attributes") or []
            if attribute.get("required") and attribute["code"] not in attributes]


def _condition(attribute: dict, value, tz) -> tuple[bool, str]:
    """(met, readable explanation when not met) of one attribute's files_if."""
    condition = attribute["files_if"]
    description, unit = attribute["description"], attribute.get("unit") or ""
    names = {v["key"]: v["name"] for v in attribute.get("values") or []}
    if attribute["datatype"] == "number":
        checks = {"gt": (lambda t: value > t, "未超过"), "gte": (lambda t: value >= t, "未达到"),
                  "lt": (lambda t: value < t, "不低于"), "lte": (lambda t: value <= t, "超过")}
        for key, threshold in condition.items():
            test, words = checks[key]
            if not test(threshold):
                return False, (f"{description}为 {_number_text(value)}{unit}，"
                               f"{words} {_number_text(threshold)}{unit}")
        return True, ""
    if attribute["datatype"] == "singlevaluelist":
        if value in condition["in"]:
            return True, ""
        return False, f"{description}为“{names.get(value, value)}”"
    if attribute["datatype"] == "multivaluelist":
        if set(value) & set(condition["in"]):
            return True, ""
        return False, f"{description}未包含需立案的情形"
    if attribute["datatype"] == "datetime":
        start, end = condition["local_time_between"]
        local = datetime.fromisoformat(value).astimezone(tz)
        if local_time_between(local.time(), start, end):
            return True, ""
        return False, f"{description}为当地时间 {local:%H:%M}，不在 {start}–{end} 时段"
    return True, ""


def check_filing_standard(minor: dict, attributes: dict, tz) -> str | None:
    """None when the measurable filing standard is met (or nothing measurable was given);
    otherwise the readable reason."""
    results = []
    for attribute in minor.get("attributes") or []:
        if attribute.get("files_if") and attribute["code"] in attributes:
            results.append(_condition(attribute, attributes[attribute["code"]], tz))
    if not results:
        return None
    met = [ok for ok, _ in results]
    passed = any(met) if minor.get("filing_mode", "any") == "any" else all(met)
    if passed:
        return None
    failed = "；".join(text for ok, text in results if not ok)
    return f"不符合“{minor['name']}”立案标准：{failed}。立案标准：{minor['filing_standard']}"


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
    """The decided ownership that applies to this class at this point (shared.refdata)."""
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


# ===================================================================== ownership disputes
def level_index(level: str) -> int:
    return ARBITRATION_LEVELS.index(level)


def level_info(policy: dict, level: str) -> dict:
    for entry in policy["ownership"]["levels"]:
        if entry["level"] == level:
            return dict(entry)
    raise KeyError(level)


def next_level(level: str) -> str | None:
    index = level_index(level)
    return ARBITRATION_LEVELS[index + 1] if index + 1 < len(ARBITRATION_LEVELS) else None


def arbiter(policy: dict, level: str, street_id: str | None, community: str | None) -> str:
    """Who settles the dispute at a level: the community (its liaison), the street, the
    competent department, the leadership group."""
    info = level_info(policy, level)
    if info.get("arbiter"):
        return info["arbiter"]
    if level == "street":
        return street_id or ""
    return f"community:{community}" if community else (street_id or "")


def level_deadline(district, policy: dict, level: str, start: datetime) -> datetime:
    return district.calendar.add_working_time(start, level_info(policy, level)["deadline"])


def can_decide(dispute: dict, owner_unit: str, units: dict) -> tuple[str, str] | None:
    """None if the decision may be recorded, else ``(status, reason)``: ``conflict`` (already
    decided) or ``invalid`` (not a unit that can own a place)."""
    if dispute.get("state") != "open":
        return "conflict", f"争议 {dispute['_id']} 已确权（{dispute.get('owner_unit')}），不能再次裁定"
    unit = units.get(owner_unit)
    if unit is None:
        return "invalid", f"未知的责任单位 {owner_unit}"
    if unit.get("type") == "leadership":
        return "invalid", "领导小组不能作为责任单位，请指定街镇、园城、部门或作业单位"
    return None


# ===================================================================== case status projection
def _local(moment, tz) -> str:
    if moment is None:
        return ""
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment.replace("Z", "+00:00"))
    return f"{moment.astimezone(tz):%Y-%m-%d %H:%M}"


def project(case: dict, event: dict, unit_name, tz) -> dict:
    """The fields of intake's case view that a dispatch event changes (``{}``: nothing).

    ``unit_name(unit_id)`` → display name.  A ``case_closed`` older than the last reopening is
    ignored (it was delayed in a retry), so a reopened case does not look closed again.
    """
    kind, payload = event["type"], event["payload"]
    unit = payload.get("unit_id") or case.get("unit_id")
    name = unit_name(unit) if unit else ""
    at = payload.get("at") or payload.get("dispatched_at") or payload.get("closed_at")
    fields: dict = {"updated_at": at} if at else {}
    if kind == "case_dispatched":
        fields.update(state="dispatched", unit_id=unit, deadline=payload["deadline"],
                      dispatched_at=payload["dispatched_at"],
                      status_notes=f"已派遣至{name}，处置时限 {_local(payload['deadline'], tz)}")
    elif kind == "case_accepted":
        fields.update(state="accepted", status_notes=f"{name}已受理，正在处置")
    elif kind == "case_returned":
        fields.update(state="returned", status_notes=f"{name}回退：{payload.get('reason', '')}，正在重新派遣")
    elif kind == "case_feedback_given":
        fields.update(state="feedback", status_notes=f"{name}已反馈处置结果，待核查")
    elif kind == "case_verified":
        if payload.get("passed"):
            fields.update(state="verified", status_notes="现场核查通过，待结案")
        else:
            fields.update(state="rework", status_notes=f"现场核查未通过，返工：{payload.get('note', '')}")
    elif kind == "case_closed":
        reopened = case.get("reopened_at")
        closed_at = payload["closed_at"]
        if reopened is not None and _as_dt(closed_at) < _as_dt(reopened):
            return {}
        timing = "按期" if payload.get("on_time") else "超期"
        fields.update(state="closed", closed_at=closed_at, on_time=payload.get("on_time"),
                      updated_at=closed_at,
                      status_notes=f"已结案（{timing}），处置单位：{name}")
    elif kind == "case_rework_ordered":
        fields.update(state="rework", status_notes=f"返工：{payload.get('reason', '')}")
    elif kind == "case_parked":
        fields.update(state="parked", status_notes=f"挂账：{payload.get('reason', '')}")
    elif kind == "case_unparked":
        fields.update(state="dispatched", deadline=payload["new_deadline"],
                      status_notes=f"恢复处置，新时限 {_local(payload['new_deadline'], tz)}")
    elif kind == "extension_decided":
        if payload.get("approved") and payload.get("new_deadline"):
            fields.update(deadline=payload["new_deadline"],
                          status_notes=f"延期已批准，新时限 {_local(payload['new_deadline'], tz)}")
        else:
            fields.update(status_notes="延期申请未获批准，按原时限处置")
    elif kind == "case_supervised":
        fields.update(status_notes=f"已超过处置时限，已督办{name}")
    elif kind == "case_escalated":
        fields.update(status_notes=f"已升级至{unit_name(payload.get('escalated_to'))}督办")
    else:
        return {}
    return fields


# ------------------------------------------------------------------ notices to reporters
NOTICE_CHANNELS = {"phone": "sms", "account_id": "app", "email": "email"}


def reporter_notices(case: dict, event: dict, unit_name, tz) -> list[dict]:
    """What to tell the citizens subscribed to a case when dispatch moves it (``[]``: nothing).

    Every reporter reachable by phone, account or e-mail hears that the case was dispatched (to
    whom, by when), and that it was closed; inspectors, leaders and sensors do not (they see the
    case in their own tools). One notice per reporter per event: its id comes from both."""
    kind, payload = event["type"], event["payload"]
    what = f"您反映的问题（案件 {case['_id']}，{case.get('class_name') or case.get('class_code')}）"
    if kind == "case_dispatched":
        name = unit_name(payload.get("unit_id")) if payload.get("unit_id") else "责任单位"
        notice_kind, text = "dispatched", (f"【大城管】{what}已立案并派遣至{name}处置，"
                                           f"处置时限 {_local(payload['deadline'], tz)}。")
    elif kind == "case_closed":
        notice_kind, text = "closed", f"【大城管】{what}已处置完毕并结案，感谢您的参与，欢迎对处理结果进行评价。"
    else:
        return []
    notices, seen = [], set()
    for subscriber in case.get("subscribers") or []:
        reporter = subscriber.get("reporter_id") or ""
        channel = NOTICE_CHANNELS.get(reporter.split(":", 1)[0])
        if channel is None or reporter in seen:
            continue
        seen.add(reporter)
        notices.append({"id": f"{event['event_id']}.notice.{subscriber['report_id']}", "case_id": case["_id"],
                        "report_id": subscriber["report_id"], "reporter_id": reporter, "channel": channel,
                        "kind": notice_kind, "message": text})
    return notices


def _as_dt(value):
    if isinstance(value, str):
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=timezone.utc)
    return value


def is_open(case: dict) -> bool:
    return case.get("state") != "closed"
