"""Joint-operation rules — pure. Who must join, the request each department receives, and how
a reply changes a department's state."""
from __future__ import annotations

from datetime import datetime, timedelta

from shared.contracts.base import isoformat
from shared.contracts.departments import CONTRACT_VERSION

LEAD_UNIT = "dept.chengguan"
SENDER = "dcg.coordination"
REQUEST_TTL = timedelta(hours=24)


def operation_id_for(case_id: str, trigger: str) -> str:
    return f"OP-{case_id}" if trigger == "class_rule" else f"OP-{case_id}-{trigger}"


def distribution_id(operation_id: str, department: str, kind: str, seq: int = 1) -> str:
    return f"{operation_id}.{department}.{kind.lower()}.{seq}"


def checkin_deadline(department: dict | None, urgency: str, opened_at: datetime) -> datetime:
    minutes = ((department or {}).get("checkin_minutes") or {}).get(urgency, 30)
    return opened_at + timedelta(minutes=int(minutes))


def build_request(operation: dict, department: str, dept_info: dict | None, now: datetime) -> dict:
    """The EDXL-DE style Request one department receives."""
    case = operation["case"]
    return {
        "schema_version": CONTRACT_VERSION,
        "distribution_id": distribution_id(operation["_id"], department, "Request"),
        "sender": SENDER,
        "recipients": [department],
        "kind": "Request",
        "sent_at": isoformat(now),
        "expires_at": isoformat(now + REQUEST_TTL),
        "incident_id": operation["_id"],
        "in_reply_to": None,
        "payload": {
            "what": {"case_id": case.get("case_id"), "class_code": case.get("class_code"),
                     "class_name": case.get("class_name", ""), "description": case.get("description", "")},
            "where": {"address": case.get("address", ""), "location": case.get("location"),
                      "grid_code": case.get("grid_code")},
            "when": {"reported_at": _iso(case.get("registered_at")),
                     "checkin_deadline": isoformat(checkin_deadline(dept_info, case.get("urgency", "normal"), now))},
            "lead": {"unit_id": operation["lead_unit"], "name": "区城市管理综合行政执法支队",
                     "contact": "023-68280000"},
            "legal_basis": operation.get("legal_basis", ""),
        },
    }


def _iso(moment):
    return isoformat(moment) if isinstance(moment, datetime) else moment


def apply_reply(dept_state: dict, reply: dict) -> dict:
    """New state of one department after a reply (Ack accepted/rejected, Update stages)."""
    state = dict(dept_state)
    at = reply["sent_at"]
    if reply["kind"] == "Ack":
        state["state"] = reply["payload"]["status"]          # accepted | rejected
        state["answered_at"] = at
        state["reason"] = reply["payload"].get("reason", "")
    elif reply["kind"] == "Update":
        stage = reply["payload"]["stage"]
        state["state"] = {"checkin": "on_site", "action": "acting", "disposition": "disposed"}[stage]
        state[f"{stage}_at"] = at
    elif reply["kind"] == "Error":
        state["state"] = "error"
        state["reason"] = reply["payload"].get("message", "")
    return state
