"""What dispatch's API shows — pure: a case and its list summary, every time in the district's
local time (ISO 8601 with offset, +08:00)."""
from __future__ import annotations

from datetime import datetime

from . import notices as notifications
from .model import STATE_LABELS


def to_local(value, calendar):
    """Every datetime in a structure → ISO 8601 in the calendar's local time (Asia/Shanghai)."""
    if isinstance(value, datetime):
        return calendar.to_local(value).isoformat()
    if isinstance(value, dict):
        return {key: to_local(item, calendar) for key, item in value.items()}
    if isinstance(value, list):
        return [to_local(item, calendar) for item in value]
    return value


def case_view(doc: dict, district, *, history: bool = True) -> dict:
    """What the API shows: the case with its version (for expected_version), times in local time."""
    cal = district.calendar
    case = doc.get("case") or {}
    body = {
        "case_id": doc["_id"], "version": doc.get("_version"), "state": doc["state"],
        "state_label": STATE_LABELS.get(doc["state"], doc["state"]),
        "unit_id": doc.get("unit_id"), "unit_name": notifications.unit_name(district, doc.get("unit_id")),
        "class_code": doc.get("class_code"), "class_name": case.get("class_name"),
        "case_kind": doc.get("case_kind"), "urgency": doc.get("urgency"), "time_limit": doc.get("time_limit"),
        "grid_code": doc.get("grid_code"), "street_id": doc.get("street_id"),
        "address": case.get("address"), "description": case.get("description"),
        "location": case.get("location"), "registered_at": case.get("registered_at"),
        "dispatched_at": doc.get("dispatched_at"), "assigned_at": doc.get("assigned_at"),
        "accepted_at": doc.get("accepted_at"),
        "deadline": doc.get("deadline"), "original_deadline": doc.get("original_deadline"),
        "deadline_utc": doc["deadline"].isoformat() if isinstance(doc.get("deadline"), datetime) else None,
        "sequence": doc.get("sequence"), "routed_by": doc.get("routed_by"), "rule": doc.get("rule"),
        "return_count": doc.get("return_count", 0), "returns": doc.get("returns", []),
        "disputed": doc.get("disputed"), "extensions": doc.get("extensions", []),
        "extended": doc.get("extended", False), "park": doc.get("park"),
        "parked_ever": doc.get("parked_ever", False), "feedback": doc.get("feedback"),
        "verifications": doc.get("verifications", []), "rework_count": doc.get("rework_count", 0),
        "closures": doc.get("closures", 0), "closed_at": doc.get("closed_at"), "on_time": doc.get("on_time"),
        "stages": doc.get("stages") or [],
        "check": doc.get("check"), "cancelled_at": doc.get("cancelled_at"),      # 核实 (report_check.py)
        "channel": case.get("channel"),
        "supervision": [{"kind": entry["kind"], "label": {"warn": "预警", "supervise": "督办",
                                                          "escalate": "升级", "verify_overdue": "核查超时提醒",
                                                          "check_overdue": "核实时限",
                                                          "stage_overdue": "阶段督办"}
                         .get(entry["kind"], entry["kind"]), "due_at": entry["due_at"]}
                        for entry in sorted(doc.get("_timers") or [], key=lambda entry: entry["due_at"])],
        "notifications": doc.get("notifications", []),
        "case": {key: value for key, value in case.items() if key not in ("reporter_id",)},
    }
    if history:
        body["history"] = doc.get("history", [])
    return to_local(body, cal)


def summary_view(doc: dict, district) -> dict:
    full = case_view(doc, district, history=False)
    keep = ("case_id", "version", "state", "state_label", "unit_id", "unit_name", "class_code", "class_name",
            "case_kind", "urgency", "grid_code", "street_id", "address", "dispatched_at", "deadline",
            "return_count", "rework_count", "extended", "parked_ever", "closed_at", "on_time",
            "location", "deadline_utc", "sequence", "park", "extensions", "check",
            "channel")   # + what allowed_actions needs
    return {key: full.get(key) for key in keep}
