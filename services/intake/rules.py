"""Filing rules (立案) — pure: no broker, no store. Given a validated report and the district's
reference data, decide: a case (with class, grid, owner) or a rejection with a reason."""
from __future__ import annotations

import hashlib
from datetime import datetime


def report_id_for(report: dict, generated: str) -> str:
    if report.get("external_id"):
        return f"{report['channel']}-{report['external_id']}"
    return generated


def case_id_for(report_id: str, received_at: datetime) -> str:
    digest = hashlib.sha1(report_id.encode()).hexdigest()[:8].upper()
    return f"C{received_at:%Y%m%d}-{digest}"


def assess(report: dict, district) -> dict:
    """Return {"accepted": True, "case": {...}} or {"accepted": False, "reason": "..."}."""
    try:
        minor = district.minor_class(report["class_code"])
    except KeyError:
        return {"accepted": False, "reason": f"未知的问题类别 {report['class_code']}"}
    point = report["location"]
    place = district.locate(point["lon"], point["lat"])
    if place is None:
        street = district.nearest_street(point["lon"], point["lat"])
        street_id = street["street_id"] if isinstance(street, dict) else street
        place = {"grid_code": None, "street_id": street_id, "gap": True}
    owner = resolve_owner(minor, place)
    return {"accepted": True, "case": {
        "class_code": minor["code"],
        "class_name": minor["name"],
        "class_kind": minor["kind"],
        "urgency": report.get("urgency", "normal"),
        "location": point,
        "address": report.get("address", ""),
        "grid_code": place.get("grid_code"),
        "street_id": place.get("street_id"),
        "owner_unit": owner,
        "joint_partners": list(minor.get("joint") or []),
        "description": report.get("description", ""),
    }}


def resolve_owner(minor: dict, place: dict) -> str:
    """条块结合、以块为主: class owner 'street' means the street of the place."""
    owner = minor.get("owner") or "street"
    if owner == "street":
        return place["street_id"]
    return owner
