"""Fan-out — pure: one operation becomes one Request per department (EDXL-DE style: explicit
recipient, expiry, incident reference), with its acceptance and check-in timers and the
``joint_operation_opened`` / ``department_request_sent`` events.
"""
from __future__ import annotations

from datetime import datetime, timedelta

from .deadlines import _timer, ack_deadline, checkin_deadline
from .operation import (REQUEST_TTL, TRIGGERS, Effects, Refused, _envelope, _iso, _log, _place, _urgency,
                        distribution_id)


# ------------------------------------------------------------------ the Request
def build_request(operation: dict, department: str, dept_info: dict | None, now: datetime, *,
                  seq: int = 1, ttl: timedelta = REQUEST_TTL) -> dict:
    """The EDXL-DE style Request one department receives (``seq`` > 1: a re-notification,
    which repeats the original deadlines and references the first request)."""
    case = operation.get("case") or {}
    urgency = _urgency(operation)
    state = (operation.get("departments") or {}).get(department) or {}
    place = _place(operation)
    checkin = state.get("checkin_deadline") or checkin_deadline(dept_info, urgency, now)
    ack = state.get("ack_deadline") or ack_deadline(dept_info, urgency, now)
    lead = operation.get("lead") or {"unit_id": operation["lead_unit"], "name": "区城市管理综合行政执法支队",
                                     "contact": "023-68280000"}
    original = distribution_id(operation["_id"], department, "Request", 1)
    payload = {
        "what": {"case_id": case.get("case_id"), "class_code": case.get("class_code"),
                 "class_name": case.get("class_name", ""), "description": case.get("description", ""),
                 "urgency": urgency},
        "where": {"address": place.get("address", ""), "location": place.get("location"),
                  "grid_code": place.get("grid_code"), "street_id": place.get("street_id")},
        "when": {"reported_at": _iso(case.get("registered_at")),
                 "ack_deadline": _iso(ack), "checkin_deadline": _iso(checkin)},
        "lead": {"unit_id": lead["unit_id"], "name": lead.get("name", ""), "contact": lead.get("contact", "")},
        "legal_basis": operation.get("legal_basis", "") or "",
        "operation": {"trigger": operation.get("trigger"),
                      "departments": list(operation.get("department_order")
                                          or (operation.get("departments") or {}).keys() or [department]),
                      "requested_by": operation.get("requested_by"),
                      "reason": operation.get("reason", "") or ""},
        "renotification": seq - 1,
    }
    return _envelope(operation["_id"], department, "Request",
                     distribution_id(operation["_id"], department, "Request", seq), now, payload,
                     references=[original] if seq > 1 else [], ttl=ttl)


# ------------------------------------------------------------------ opening
def open_operation(operation_id: str, case: dict, departments: list[str], trigger: str, now: datetime, *,
                   dept_infos: dict, lead: dict, requested_by: str | None = None, reason: str = "",
                   urgency: str | None = None, place: dict | None = None, legal_basis: str = "",
                   ttl: timedelta = REQUEST_TTL) -> tuple[dict, Effects]:
    """A new operation and what opening it sends: one Request per department, their
    acceptance and check-in timers, ``joint_operation_opened`` and ``department_request_sent``."""
    if trigger not in TRIGGERS:
        raise Refused(400, f"未知的发起方式 (unknown trigger) {trigger}")
    departments = list(dict.fromkeys(departments))
    if not departments:
        raise Refused(400, "至少需要一个参与部门 (name at least one department)", {"departments": ["不能为空"]})
    unknown = [dept for dept in departments if dept not in dept_infos]
    if unknown:
        raise Refused(400, f"未知的部门 (unknown departments): {', '.join(unknown)}",
                      {"departments": [f"未知的部门 {dept}" for dept in unknown]})
    urgency = urgency or case.get("urgency") or "normal"
    case_place = {"address": case.get("address", ""), "location": case.get("location"),
                  "grid_code": case.get("grid_code"), "street_id": case.get("street_id")}
    operation = {
        "_id": operation_id, "case": case, "case_id": case.get("case_id"),
        "lead_unit": lead["unit_id"], "lead": lead, "trigger": trigger,
        "requested_by": requested_by, "reason": reason, "urgency": urgency,
        "place": {**case_place, **{k: v for k, v in (place or {}).items() if v not in (None, "")}},
        "legal_basis": legal_basis or "", "state": "open", "opened_at": now,
        "department_order": departments, "departments": {}, "messages": [], "notifications": [],
        "seq": 0,
    }
    effects = Effects(timers=[])
    effects.events.append(("joint_operation_opened", {
        "operation_id": operation_id, "case_id": case.get("case_id"), "lead_unit": lead["unit_id"],
        "departments": departments, "trigger": trigger, "opened_at": now,
        "requested_by": requested_by, "reason": reason, "urgency": urgency,
        "class_code": case.get("class_code"), "place": operation["place"]}, f"{operation_id}.opened"))
    for dept in departments:
        info = dept_infos[dept]
        state = {"state": "requested", "name": info.get("name", dept), "unit_id": info.get("unit_id"),
                 "sent_at": now, "ack_deadline": ack_deadline(info, urgency, now),
                 "checkin_deadline": checkin_deadline(info, urgency, now),
                 "renotified": {"acceptance": 0, "checkin": 0}, "escalated": {}}
        operation["departments"][dept] = state
        request = build_request(operation, dept, info, now, ttl=ttl)
        state["distribution_id"] = request["distribution_id"]
        state["request_ids"] = [request["distribution_id"]]
        operation["messages"].append(_log("out", dept, request, now))
        effects.outgoing.append((f"{dept}.request", request))
        effects.events.append(("department_request_sent", {
            "operation_id": operation_id, "department": dept, "distribution_id": request["distribution_id"],
            "sent_at": now, "checkin_deadline": state["checkin_deadline"],
            "ack_deadline": state["ack_deadline"], "case_id": case.get("case_id")},
            f"{request['distribution_id']}.sent"))
        effects.timers.append(_timer(operation_id, dept, "acceptance", 1, state["ack_deadline"]))
        effects.timers.append(_timer(operation_id, dept, "checkin", 1, state["checkin_deadline"]))
    return operation, effects
