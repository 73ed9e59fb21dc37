"""Joint-operation rules (城管+N) — pure: no I/O, no clock, no broker.

Every function takes the operation document as it is stored and returns what must change:
an :class:`Effects` with the fields to set, the messages to log, the department messages to
send, the lifecycle events to publish and the operation's new list of durable timers. The
service (service.py) saves all of it in ONE atomic update (state + outbox + timers + applied id).

Department states, in order (a state never goes back):
``requested`` → ``accepted`` → ``on_site`` (报到) → ``acting`` → ``disposed``;
or ``rejected`` (with a reason), or ``cancelled`` (released by the lead).

Deadlines per department and urgency (config/departments.yaml): the Accept/Reject is due
``ack_minutes`` after the request, the check-in ``checkin_minutes`` after it. A missed deadline
re-notifies the department (a Request again, or a check-in reminder Update) every
``renotify_minutes``, ``max_renotifications`` times, then escalates to the lead unit and the
command centre. ``on_time`` is judged on the platform's receive time against the original
deadline (a re-notification does not move it).

Only the lead unit closes an operation, and only when every participating department has
reported its disposition, unless the lead forces it with a note ("事不完，人不走"). A department
cannot leave an open operation: an Ack that withdraws an acceptance or an Update ``leave`` is
refused with an Error that says why; so is anything a department sends after the close.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from shared.contracts.base import isoformat
from shared.contracts.departments import CONTRACT_VERSION, PLATFORM_SENDER

LEAD_UNIT = "dept.chengguan"
SENDER = PLATFORM_SENDER
REQUEST_TTL = timedelta(hours=24)
TRIGGERS = ("class_rule", "whistle", "escalation")
STATE_ORDER = {"requested": 0, "accepted": 1, "on_site": 2, "acting": 3, "disposed": 4}
PARTICIPATING = ("requested", "accepted", "on_site", "acting", "disposed")
STAGE_STATE = {"checkin": "on_site", "action": "acting", "disposition": "disposed"}
STATE_NAMES = {"requested": "已发送请求", "accepted": "已接受", "rejected": "已拒绝", "on_site": "已到场报到",
               "acting": "处置中", "disposed": "已处置", "cancelled": "已解除"}
TIMER_KINDS = {"acceptance": "acceptance_due", "checkin": "checkin_due"}


class Refused(Exception):
    """A command that the rules refuse (HTTP 4xx): ``status``, a Chinese+English message."""

    def __init__(self, status: int, message: str, fields: dict | None = None):
        super().__init__(message)
        self.status, self.message, self.fields = status, message, fields


@dataclass
class Effects:
    set_fields: dict = field(default_factory=dict)
    messages: list = field(default_factory=list)     # entries for the operation's message log
    outgoing: list = field(default_factory=list)     # (routing_key, body) to departments.requests
    events: list = field(default_factory=list)       # (event_type, payload, event_id)
    timers: list | None = None                       # the operation's whole new timer list
    refused: dict | None = None                      # set when a department message was refused


# ------------------------------------------------------------------ ids and deadlines
def operation_id_for(case_id: str, trigger: str, key: str | None = None) -> str:
    """``OP-<case>`` for the class rule (one per case: a redelivered event finds it), and
    ``OP-<case>-W<key>`` / ``OP-<case>-E<key>`` for a whistle / an escalation."""
    if trigger == "class_rule":
        return f"OP-{case_id}"
    if key:
        return f"OP-{case_id}-{'W' if trigger == 'whistle' else 'E'}{key}"
    return f"OP-{case_id}-{trigger}"


def distribution_id(operation_id: str, department: str, kind: str, seq: int = 1) -> str:
    return f"{operation_id}.{department}.{kind.lower()}.{seq}"


def short_hash(text: str, size: int = 12) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()[:size]


def _minutes(dept_info: dict | None, key: str, urgency: str, default: int) -> int:
    value = (dept_info or {}).get(key)
    if isinstance(value, dict):
        value = value.get(urgency, value.get("normal"))
    return int(default if value is None else value)


def checkin_deadline(department: dict | None, urgency: str, opened_at: datetime) -> datetime:
    return opened_at + timedelta(minutes=_minutes(department, "checkin_minutes", urgency, 30))


def ack_deadline(department: dict | None, urgency: str, sent_at: datetime) -> datetime:
    return sent_at + timedelta(minutes=_minutes(department, "ack_minutes", urgency, 5))


def renotify_interval(department: dict | None, urgency: str) -> timedelta:
    return timedelta(minutes=_minutes(department, "renotify_minutes", urgency, 5))


def lead_info(unit: dict | None, unit_id: str) -> dict:
    """Lead unit name and on-duty contact (值班员 first) from a units.yaml entry."""
    unit = unit or {}
    contacts = unit.get("contacts") or []
    duty = next((c for c in contacts if "值班" in (c.get("role") or "")), contacts[0] if contacts else None)
    contact = f"{duty.get('name', '')} {duty.get('phone', '')}".strip() if duty else ""
    return {"unit_id": unit_id, "name": unit.get("name", unit_id), "contact": contact}


def ms_iso(moment: datetime) -> str:
    """ISO 8601 UTC to the millisecond (what the store keeps), so a message re-sent from the
    stored operation says exactly what the first one said."""
    return isoformat(moment.replace(microsecond=moment.microsecond // 1000 * 1000))


def _iso(moment):
    return ms_iso(moment) if isinstance(moment, datetime) else moment


def _urgency(operation: dict) -> str:
    return operation.get("urgency") or (operation.get("case") or {}).get("urgency") or "normal"


def _place(operation: dict) -> dict:
    if operation.get("place"):
        return operation["place"]
    case = operation.get("case") or {}
    return {"address": case.get("address", ""), "location": case.get("location"),
            "grid_code": case.get("grid_code"), "street_id": case.get("street_id")}


def _envelope(operation_id: str, department: str, kind: str, dist_id: str, now: datetime,
              payload: dict, references=(), ttl: timedelta = REQUEST_TTL) -> dict:
    return {
        "schema_version": CONTRACT_VERSION,
        "distribution_id": dist_id,
        "sender": SENDER,
        "recipients": [department],
        "kind": kind,
        "sent_at": ms_iso(now),
        "expires_at": ms_iso(now + ttl),
        "incident_id": operation_id,
        "in_reply_to": None,
        "references": list(references),
        "payload": payload,
    }


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


def _log(direction: str, department: str, message: dict, now: datetime, **extra) -> dict:
    entry = {"direction": direction, "at": now, "department": department, "kind": message.get("kind"),
             "distribution_id": message.get("distribution_id"), "message": message}
    entry.update(extra)
    return entry


def _timer(operation_id: str, department: str, awaiting: str, attempt: int, due_at: datetime) -> dict:
    return {"id": f"{operation_id}.{department}.{awaiting}.{attempt}", "due_at": due_at,
            "kind": TIMER_KINDS[awaiting], "data": {"department": department, "awaiting": awaiting,
                                                    "attempt": attempt}}


def _timers_without(timers: list, department: str, *awaiting: str) -> list:
    kinds = {TIMER_KINDS[a] for a in awaiting}
    return [t for t in timers if not ((t.get("data") or {}).get("department") == department
                                      and t["kind"] in kinds)]


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


# ------------------------------------------------------------------ department replies
def apply_reply(dept_state: dict, reply: dict) -> dict:
    """New state of one department after a reply (the department's own ``sent_at`` is kept as
    ``answered_at`` / ``<stage>_at``). See :func:`receive_reply` for the whole effect."""
    state = dict(dept_state)
    at = reply["sent_at"]
    if reply["kind"] == "Ack":
        state["state"] = reply["payload"]["status"]          # accepted | rejected
        state["answered_at"] = at
        state["reason"] = reply["payload"].get("reason", "")
    elif reply["kind"] == "Update":
        stage = reply["payload"]["stage"]
        new = STAGE_STATE[stage]
        if STATE_ORDER.get(new, 0) >= STATE_ORDER.get(state.get("state"), 0):
            state["state"] = new
        state[f"{stage}_at"] = at
    elif reply["kind"] == "Error":
        state["last_error"] = reply["payload"].get("message", "")
    return state


def _sent_ids(operation: dict, department: str) -> dict:
    """distribution id → kind of every platform message sent to this department."""
    return {entry["distribution_id"]: entry["kind"] for entry in operation.get("messages", [])
            if entry["direction"] == "out" and entry["department"] == department}


def _error_message(operation: dict, department: str, refused: dict, code: str, text: str,
                   now: datetime, seq: int) -> dict:
    original = (operation["departments"].get(department) or {}).get("distribution_id")
    message = _envelope(operation["_id"], department, "Error",
                        distribution_id(operation["_id"], department, "Error", seq), now,
                        {"code": code, "message": text,
                         "refused_distribution_id": refused["distribution_id"]},
                        references=[ref for ref in (original,) if ref])
    message["in_reply_to"] = refused["distribution_id"]
    return message


def _refuse(operation: dict, department: str, reply_json: dict, code: str, text: str,
            now: datetime) -> Effects:
    seq = int(operation.get("seq", 0)) + 1
    error = _error_message(operation, department, reply_json, code, text, now, seq)
    effects = Effects(set_fields={"seq": seq}, refused={"code": code, "reason": text})
    effects.messages.append(_log("in", department, reply_json, now, refused=code, reason=text))
    effects.messages.append(_log("out", department, error, now))
    effects.outgoing.append((f"{department}.error", error))
    effects.events.append(("department_reply_refused", {
        "operation_id": operation["_id"], "department": department,
        "distribution_id": reply_json["distribution_id"], "kind": reply_json["kind"],
        "code": code, "reason": text, "at": now},
        f"{operation['_id']}.{department}.refused.{short_hash(reply_json['distribution_id'])}"))
    return effects


def _on_time(received: datetime, deadline: datetime | None) -> bool | None:
    return None if deadline is None else received <= deadline


def receive_reply(operation: dict, reply: dict, reply_json: dict, now: datetime) -> Effects:
    """What a department's Ack / Update / Error does to the operation. ``reply`` is the loaded
    message (dates parsed), ``reply_json`` the same as JSON for the log. The caller has checked
    that the sender is a department of this operation and is who it claims to be."""
    dept = reply["sender"]
    state = dict(operation["departments"][dept])
    kind, payload = reply["kind"], reply["payload"]
    op_id = operation["_id"]
    sent = _sent_ids(operation, dept)
    answering = sent.get(reply["in_reply_to"])
    acknowledging = kind == "Ack" and answering in ("Update", "Cancel")
    closed = operation.get("state") != "open"
    if closed and not acknowledging:
        when = operation.get("closed_at")
        return _refuse(operation, dept, reply_json, "operation_closed",
                       f"联合行动 {op_id} 已于 {_iso(when)} 由牵头单位结束，不再接收消息 "
                       f"(the operation is closed)", now)
    if state["state"] == "cancelled" and not acknowledging:
        return _refuse(operation, dept, reply_json, "released",
                       f"贵单位已被牵头单位解除本次联合行动任务，无需再报 (you were released from {op_id})", now)
    if answering is None:
        return _refuse(operation, dept, reply_json, "unknown_reference",
                       f"in_reply_to {reply['in_reply_to']} 不是平台发给贵单位的消息 "
                       f"(not a message sent to you in {op_id})", now)
    event_id = f"{op_id}.{dept}.in.{short_hash(reply['distribution_id'])}"
    base_event = {"operation_id": op_id, "department": dept, "distribution_id": reply["distribution_id"],
                  "kind": kind, "replied_at": reply["sent_at"], "received_at": now,
                  "in_reply_to": reply["in_reply_to"], "reason": ""}
    timers = list(operation.get("_timers") or [])
    effects = Effects()
    log_entry = _log("in", dept, reply_json, now)

    if kind == "Error":
        state["last_error"] = f"{payload['code']}: {payload['message']}"
        state["last_error_at"] = now
        effects.events.append(("department_replied", {**base_event, "status": "error",
                                                      "reason": payload["message"]}, event_id))
    elif kind == "Ack" and answering != "Request":
        state.setdefault("acknowledged", []).append({"distribution_id": reply["in_reply_to"], "at": now})
        effects.events.append(("department_replied", {**base_event, "status": "acknowledged"}, event_id))
    elif kind == "Ack":
        status = payload["status"]
        if state["state"] == "requested":
            on_time = _on_time(now, state.get("ack_deadline"))
            state.update({"state": status, "answered_at": reply["sent_at"], "answer_received_at": now,
                          "acceptance_on_time": on_time, "reason": payload.get("reason", "")})
            state[f"{status}_at"] = now
            timers = _timers_without(timers, dept, "acceptance")
            if status == "rejected":
                timers = _timers_without(timers, dept, "checkin")
            effects.events.append(("department_replied", {
                **base_event, "status": status, "reason": payload.get("reason", ""), "on_time": on_time,
                "deadline": state.get("ack_deadline"), "measure": "acceptance"}, event_id))
        elif status == "rejected" and state["state"] in PARTICIPATING:
            return _refuse(operation, dept, reply_json, "cannot_leave",
                           "事不完，人不走：贵单位已接受本次联合行动，在牵头单位结束行动前不能退出 "
                           "(you accepted; you cannot leave an open operation)", now)
        else:
            # the same answer again (e.g. to a re-notification): kept, no change
            log_entry["note"] = "repeated answer"
    elif kind == "Update":
        stage = payload["stage"]
        if stage == "leave":
            return _refuse(operation, dept, reply_json, "cannot_leave",
                           "事不完，人不走：联合行动由牵头单位结束前，参与部门不能退出 "
                           "(a department cannot leave an open operation)", now)
        if state["state"] == "rejected":
            return _refuse(operation, dept, reply_json, "not_participating",
                           "贵单位已拒绝本次联合行动，请先发送 Ack accepted (you rejected this operation)", now)
        if state["state"] == "requested":            # an Update implies the acceptance
            state.update({"state": "accepted", "accepted_at": now, "answer_received_at": now,
                          "acceptance_on_time": _on_time(now, state.get("ack_deadline")),
                          "accepted_implicitly": True})
            timers = _timers_without(timers, dept, "acceptance")
        new = STAGE_STATE[stage]
        if STATE_ORDER[new] >= STATE_ORDER.get(state["state"], 0):
            state["state"] = new
        event = {**base_event, "status": new, "stage": stage, "reason": payload.get("note", "")}
        if stage == "checkin" and not state.get("checkin_received_at"):
            on_time = _on_time(now, state.get("checkin_deadline"))
            state.update({"checkin_at": reply["sent_at"], "checkin_received_at": now,
                          "checkin_on_time": on_time, "checkin_officers": payload.get("officers", [])})
            timers = _timers_without(timers, dept, "checkin")
            event.update({"on_time": on_time, "deadline": state.get("checkin_deadline"), "measure": "checkin"})
        elif stage == "action":
            state["action_at"] = reply["sent_at"]
            state.setdefault("actions", []).append({"at": now, "sent_at": reply["sent_at"],
                                                    "note": payload.get("note", "")})
        elif stage == "disposition":
            state.update({"disposition_at": reply["sent_at"], "disposition_received_at": now,
                          "disposition_note": payload.get("note", "")})
            timers = _timers_without(timers, dept, "acceptance", "checkin")
        effects.events.append(("department_replied", event, event_id))
    state["last_reply_at"] = now
    effects.set_fields[f"departments.{dept}"] = state
    effects.messages.append(log_entry)
    effects.timers = timers
    return effects


# ------------------------------------------------------------------ missing replies
def on_timer(operation: dict, timer: dict, now: datetime, dept_info: dict | None, *,
             command_centre: str) -> Effects:
    """A deadline passed: re-notify the silent department, or escalate after the last
    re-notification. A timer whose reply came meanwhile only disappears."""
    data = timer.get("data") or {}
    dept, awaiting = data.get("department"), data.get("awaiting")
    timers = [t for t in (operation.get("_timers") or []) if t["id"] != timer["id"]]
    effects = Effects(timers=timers)
    state = (operation.get("departments") or {}).get(dept)
    if operation.get("state") != "open" or state is None:
        return effects
    still_missing = (state["state"] == "requested" if awaiting == "acceptance"
                     else state["state"] in ("requested", "accepted"))
    if not still_missing:
        return effects
    state = {**state, "renotified": dict(state.get("renotified") or {}),
             "escalated": dict(state.get("escalated") or {})}
    urgency = _urgency(operation)
    done = int(state["renotified"].get(awaiting, 0))
    limit = int((dept_info or {}).get("max_renotifications", 1))
    op_id = operation["_id"]
    deadline = state["ack_deadline"] if awaiting == "acceptance" else state["checkin_deadline"]
    if done < limit:
        attempt = done + 1
        if awaiting == "acceptance":
            message = build_request(operation, dept, dept_info, now, seq=attempt + 1)
            state.setdefault("request_ids", []).append(message["distribution_id"])
            routing = f"{dept}.request"
        else:
            seq = int(operation.get("seq", 0)) + 1
            effects.set_fields["seq"] = seq
            message = _envelope(op_id, dept, "Update", distribution_id(op_id, dept, "Update", seq), now, {
                "reason": "reminder", "awaiting": "checkin", "operation_state": "open",
                "note": f"请于 {_iso(state['checkin_deadline'])} 前到场报到（已超时），并发送 Update checkin "
                        f"(check-in overdue)"}, references=[state["distribution_id"]])
            routing = f"{dept}.update"
        state["renotified"][awaiting] = attempt
        effects.outgoing.append((routing, message))
        effects.messages.append(_log("out", dept, message, now, note=f"re-notification {attempt} ({awaiting})"))
        effects.events.append(("department_renotified", {
            "operation_id": op_id, "department": dept, "attempt": attempt, "at": now, "awaiting": awaiting,
            "distribution_id": message["distribution_id"], "deadline": deadline},
            f"{op_id}.{dept}.{awaiting}.renotified.{attempt}"))
        effects.timers = timers + [_timer(op_id, dept, awaiting, attempt + 1,
                                          now + renotify_interval(dept_info, urgency))]
    else:
        lead = operation["lead_unit"]
        what = "接受/拒绝答复" if awaiting == "acceptance" else "到场报到"
        text = (f"【联合行动督办】{op_id}（案件 {operation.get('case_id') or '-'}，{_place(operation).get('address') or ''}）："
                f"{state.get('name', dept)} 未在 {_iso(deadline)} 前完成{what}，已提醒 {done} 次仍无回应，"
                f"请牵头单位与指挥中心协调。")
        state["escalated"][awaiting] = now
        effects.messages.append({"direction": "internal", "at": now, "department": dept, "kind": "Escalation",
                                 "distribution_id": None, "message": {"to": [lead, command_centre], "text": text}})
        effects.set_fields["notifications"] = list(operation.get("notifications") or []) + [
            {"at": now, "to": [lead, command_centre], "department": dept, "awaiting": awaiting, "text": text}]
        effects.events.append(("department_escalated", {
            "operation_id": op_id, "department": dept, "escalated_to": [lead, command_centre], "at": now,
            "awaiting": awaiting, "attempts": done, "message": text, "case_id": operation.get("case_id")},
            f"{op_id}.{dept}.{awaiting}.escalated"))
    effects.set_fields[f"departments.{dept}"] = state
    return effects


# ------------------------------------------------------------------ the coordinator's Update, Cancel, close
def _require_open(operation: dict):
    if operation.get("state") != "open":
        raise Refused(409, f"联合行动 {operation['_id']} 已结束（{operation.get('state')}），不能再修改 "
                           f"(the operation is {operation.get('state')})")


def _targets(operation: dict, departments: list[str] | None) -> list[str]:
    participating = [dept for dept, st in operation["departments"].items() if st["state"] in PARTICIPATING]
    if not departments:
        return participating
    unknown = [d for d in departments if d not in operation["departments"]]
    if unknown:
        raise Refused(400, f"不是本次联合行动的部门 (not in this operation): {', '.join(unknown)}",
                      {"departments": [f"{d} 不在本次行动中" for d in unknown]})
    inactive = [d for d in departments if d not in participating]
    if inactive:
        raise Refused(409, f"这些部门已拒绝或已解除 (rejected or released): {', '.join(inactive)}")
    return list(departments)


def _authorise(operation: dict, by_unit: str, allowed: tuple, what: str):
    if by_unit not in allowed:
        raise Refused(403, f"只有牵头单位 {operation['lead_unit']} 可以{what} (only the lead unit may do this)",
                      {"by": {"unit_id": [f"应为 {', '.join(a for a in allowed if a)}"]}})


def coordinator_update(operation: dict, by: dict, note: str, changes: dict, departments: list[str] | None,
                       now: datetime, *, command_centre: str) -> Effects:
    """An Update to the participating departments, referencing each one's original Request."""
    _require_open(operation)
    _authorise(operation, by["unit_id"], (operation["lead_unit"], command_centre), "更新联合行动")
    targets = _targets(operation, departments)
    seq = int(operation.get("seq", 0))
    effects = Effects(set_fields={})
    place = dict(_place(operation))
    where = changes.get("where") or {}
    for key in ("address", "location", "grid_code", "street_id"):
        if where.get(key) not in (None, ""):
            place[key] = where[key]
    if where:
        effects.set_fields["place"] = place
    if changes.get("legal_basis"):
        effects.set_fields["legal_basis"] = changes["legal_basis"]
    ids = []
    for dept in targets:
        seq += 1
        payload = {"reason": "change", "note": note, "operation_state": "open"}
        if where:
            payload["where"] = {k: place.get(k) for k in ("address", "location", "grid_code", "street_id")}
        if changes.get("description"):
            payload["what"] = {"description": changes["description"]}
        message = _envelope(operation["_id"], dept, "Update", distribution_id(operation["_id"], dept, "Update", seq),
                            now, payload, references=[operation["departments"][dept]["distribution_id"]])
        ids.append(message["distribution_id"])
        effects.outgoing.append((f"{dept}.update", message))
        effects.messages.append(_log("out", dept, message, now, by=by))
    effects.set_fields["seq"] = seq
    effects.events.append(("joint_operation_updated", {
        "operation_id": operation["_id"], "kind": "Update", "note": note, "at": now, "departments": targets,
        "by": by["unit_id"], "distribution_ids": ids}, f"{operation['_id']}.update.{seq}"))
    return effects


def cancel(operation: dict, by: dict, reason: str, departments: list[str] | None, now: datetime, *,
           command_centre: str) -> Effects:
    """Release some departments (lead or command centre), or cancel the whole operation (lead
    only): a Cancel to each, referencing its original Request; their timers stop."""
    _require_open(operation)
    whole = not departments
    if whole:
        _authorise(operation, by["unit_id"], (operation["lead_unit"],), "撤销整个联合行动")
    else:
        _authorise(operation, by["unit_id"], (operation["lead_unit"], command_centre), "解除部门任务")
    targets = _targets(operation, departments)
    seq = int(operation.get("seq", 0))
    effects = Effects(set_fields={})
    timers = list(operation.get("_timers") or [])
    ids = []
    for dept in targets:
        seq += 1
        message = _envelope(operation["_id"], dept, "Cancel", distribution_id(operation["_id"], dept, "Cancel", seq),
                            now, {"reason": reason, "whole_operation": whole},
                            references=[operation["departments"][dept]["distribution_id"]])
        ids.append(message["distribution_id"])
        effects.outgoing.append((f"{dept}.cancel", message))
        effects.messages.append(_log("out", dept, message, now, by=by))
        state = dict(operation["departments"][dept])
        state.update({"state": "cancelled", "cancelled_at": now, "cancel_reason": reason,
                      "state_before_cancel": operation["departments"][dept]["state"]})
        effects.set_fields[f"departments.{dept}"] = state
        timers = _timers_without(timers, dept, "acceptance", "checkin")
    effects.set_fields["seq"] = seq
    effects.events.append(("joint_operation_updated", {
        "operation_id": operation["_id"], "kind": "Cancel", "note": reason, "at": now, "departments": targets,
        "by": by["unit_id"], "distribution_ids": ids}, f"{operation['_id']}.cancel.{seq}"))
    if whole:
        timers = []
        effects.set_fields.update({"state": "cancelled", "closed_at": now, "closed_by": by,
                                   "close_note": reason})
        effects.events.append(("joint_operation_closed", {
            "operation_id": operation["_id"], "closed_by": by["unit_id"], "note": reason, "closed_at": now,
            "outcome": "cancelled", "forced": False, "outstanding": [], "case_id": operation.get("case_id")},
            f"{operation['_id']}.closed"))
    effects.timers = timers
    return effects


def outstanding(operation: dict) -> list[str]:
    """Participating departments that have not reported their disposition yet."""
    return [dept for dept, st in operation["departments"].items()
            if st["state"] in PARTICIPATING and st["state"] != "disposed"]


def close(operation: dict, by: dict, note: str, force: bool, now: datetime) -> Effects:
    """Only the lead closes, and only when the work is done (事不完，人不走) — or with ``force``
    and a note saying why. Every participating department is told with an Update ``closed``."""
    _require_open(operation)
    _authorise(operation, by["unit_id"], (operation["lead_unit"],), "结束联合行动")
    missing = outstanding(operation)
    if missing and not force:
        names = "、".join(operation["departments"][d].get("name", d) for d in missing)
        raise Refused(409, f"事不完，人不走：{names} 尚未报告处置结果，不能结束联合行动；如确需结束请 force=true 并说明理由 "
                           f"(departments still working: {', '.join(missing)})", {"outstanding": missing})
    if force and missing and not (note or "").strip():
        raise Refused(400, "强制结束必须说明理由 (a forced close needs a note)", {"note": ["强制结束必须说明理由"]})
    seq = int(operation.get("seq", 0))
    effects = Effects(set_fields={}, timers=[])
    for dept, st in operation["departments"].items():
        if st["state"] not in PARTICIPATING:
            continue
        seq += 1
        message = _envelope(operation["_id"], dept, "Update", distribution_id(operation["_id"], dept, "Update", seq),
                            now, {"reason": "closed", "operation_state": "closed",
                                  "note": note or "牵头单位已结束本次联合行动，感谢配合"},
                            references=[st["distribution_id"]])
        effects.outgoing.append((f"{dept}.update", message))
        effects.messages.append(_log("out", dept, message, now, by=by))
    effects.set_fields.update({"seq": seq, "state": "closed", "closed_at": now, "closed_by": by,
                               "close_note": note, "forced": bool(force and missing),
                               "outstanding_at_close": missing})
    effects.events.append(("joint_operation_closed", {
        "operation_id": operation["_id"], "closed_by": by["unit_id"], "note": note or "", "closed_at": now,
        "outcome": "completed", "forced": bool(force and missing), "outstanding": missing,
        "case_id": operation.get("case_id")}, f"{operation['_id']}.closed"))
    return effects


def leave_request(operation: dict, department: str, reason: str, now: datetime) -> Effects:
    """A department asking (over HTTP) to leave: always refused while the operation is open."""
    if department not in operation["departments"]:
        raise Refused(404, f"{department} 不是联合行动 {operation['_id']} 的参与部门")
    text = ("事不完，人不走：联合行动由牵头单位结束前，参与部门不能退出 (a department cannot leave an open operation)"
            if operation.get("state") == "open" else
            f"联合行动已结束（{operation.get('state')}），无需退出 (the operation is already {operation.get('state')})")
    request = {"distribution_id": f"{operation['_id']}.{department}.leave.{int(operation.get('seq', 0)) + 1}",
               "kind": "Update", "sender": department, "payload": {"stage": "leave", "note": reason}, "via": "http"}
    effects = _refuse(operation, department, request, "cannot_leave", text, now)
    effects.outgoing = []                       # answered over HTTP, not in the inbox
    effects.messages = effects.messages[:1]
    return effects


# ------------------------------------------------------------------ the board
def summary(operation: dict) -> dict:
    """A compact view for the joint-operation board."""
    return {
        "operation_id": operation["_id"], "case_id": operation.get("case_id"), "state": operation.get("state"),
        "trigger": operation.get("trigger"), "lead_unit": operation.get("lead_unit"),
        "requested_by": operation.get("requested_by"),
        "owner_unit": (operation.get("case") or {}).get("owner_unit"),
        "opened_at": operation.get("opened_at"), "closed_at": operation.get("closed_at"),
        "address": _place(operation).get("address"),
        "departments": {dept: {"state": st["state"], "state_name": STATE_NAMES.get(st["state"], st["state"]),
                               "acceptance_on_time": st.get("acceptance_on_time"),
                               "checkin_on_time": st.get("checkin_on_time"),
                               "escalated": sorted((st.get("escalated") or {}).keys())}
                        for dept, st in (operation.get("departments") or {}).items()},
    }


# ------------------------------------------------------------------ the case's timeline
TRIGGER_NAMES = {"class_rule": "类别规则（城管+N）", "whistle": "街道吹哨", "escalation": "指挥中心升级"}
STAGE_LABELS = {"checkin": "到场报到", "action": "开始现场处置", "disposition": "处置完毕"}
AWAITING_LABELS = {"acceptance": "未按时答复", "checkin": "未按时到场报到"}


def timeline(operation: dict) -> list[dict]:
    """The operation as entries of its case's timeline (who did what, when, why): opened, each
    Request and re-notification, each department's answer, check-in, action and disposition,
    escalations, refused messages, updates and withdrawals by the lead, the close."""
    op_id = operation["_id"]
    states = operation.get("departments") or {}

    def name(dept):
        return (states.get(dept) or {}).get("name") or dept

    def entry(kind, label, at, actor, reason="", department=None, **extra):
        return {"type": kind, "label": label, "at": at, "actor": actor, "reason": reason or "",
                "source": "coordination", "operation_id": op_id, "department": department, **extra}

    lead = operation.get("lead_unit")
    trigger = operation.get("trigger")
    entries = [entry("joint_operation_opened",
                     f"发起联合执法（{TRIGGER_NAMES.get(trigger, trigger)}）：" + "、".join(
                         name(dept) for dept in operation.get("department_order") or states),
                     operation.get("opened_at"), operation.get("requested_by") or lead, operation.get("reason"))]
    requests = {rid for state in states.values() for rid in state.get("request_ids") or []}
    for logged in operation.get("messages") or []:
        dept, kind, at = logged.get("department"), logged.get("kind"), logged.get("at")
        payload = (logged.get("message") or {}).get("payload") or {}
        if logged["direction"] == "out":
            by = logged.get("by") or {}
            by = by.get("unit_id") if isinstance(by, dict) else by
            if kind == "Request":
                renotified = str(logged.get("note", "")).startswith("re-notification")
                label = f"再次通知{name(dept)}" if renotified else f"向{name(dept)}发送协同请求"
                entries.append(entry("department_request_sent", label, at, "platform", department=dept))
            elif kind == "Update" and by and payload.get("operation_state") != "closed":
                entries.append(entry("operation_updated", f"向{name(dept)}发送任务更新", at, by,
                                     payload.get("note") or payload.get("reason"), dept))
            elif kind == "Cancel" and not payload.get("whole_operation"):
                entries.append(entry("department_released", f"解除{name(dept)}的协同任务", at, by or lead,
                                     payload.get("reason") or payload.get("note"), dept))
            continue
        if logged.get("refused"):
            entries.append(entry("department_message_refused", f"拒收{name(dept)}的{kind}消息", at, name(dept),
                                 logged.get("reason"), dept))
        elif kind == "Ack" and (logged.get("message") or {}).get("in_reply_to") in requests:
            accepted = payload.get("status") == "accepted"
            entries.append(entry("department_replied", f"{name(dept)}{'接受' if accepted else '拒绝'}协同请求",
                                 at, name(dept), payload.get("reason"), dept, status=payload.get("status")))
        elif kind == "Update" and payload.get("stage") in STAGE_LABELS:
            entries.append(entry(f"department_{payload['stage']}", f"{name(dept)}{STAGE_LABELS[payload['stage']]}",
                                 at, name(dept), payload.get("note"), dept))
        elif kind == "Error":
            entries.append(entry("department_error", f"{name(dept)}系统报错", at, name(dept),
                                 f"{payload.get('code', '')}: {payload.get('message', '')}", dept))
    for dept, state in states.items():
        for awaiting, at in sorted((state.get("escalated") or {}).items(), key=lambda item: str(item[1])):
            entries.append(entry("department_escalated",
                                 f"{name(dept)}{AWAITING_LABELS.get(awaiting, awaiting)}，已上报牵头单位和指挥中心",
                                 at, "platform", department=dept))
    if operation.get("state") in ("closed", "cancelled") and operation.get("closed_at"):
        by = operation.get("closed_by") or {}
        entries.append(entry(f"joint_operation_{operation['state']}",
                             "联合执法结束" if operation["state"] == "closed" else "联合执法撤销",
                             operation["closed_at"], by.get("unit_id") if isinstance(by, dict) else by,
                             operation.get("close_note") or ""))
    return sorted(entries, key=lambda item: str(item["at"]))


# ------------------------------------------------------------------ who sent it
def sender_problem(reply: dict, routing_key: str | None, user_id: str | None, *, user_prefix: str = "dept.",
                   trusted_users=()) -> str | None:
    """Why a department reply must be refused as an impersonation (None when it is genuine).

    The broker guarantees two things (see shared/broker_users.py): a department user can publish
    only with routing keys ``<its id>.*`` (topic authorisation), and the AMQP ``user_id``
    property, when set, equals the connection's user. So a reply is genuine when its routing key
    starts with ``<sender>.`` and its user_id is ``<prefix><sender>``. ``trusted_users`` (e.g. the
    development ``guest``) may publish for any department, still under the routing-key rule."""
    sender = reply.get("sender") or ""
    if not routing_key or routing_key.split(".", 1)[0] != sender:
        return (f"发送方冒用：sender={sender} 与路由键 {routing_key} 不符 "
                f"(sender does not match the routing key prefix)")
    if not user_id:
        return (f"缺少 AMQP user_id 属性，无法核实发送方 {sender} "
                f"(the user_id message property is required)")
    if user_id in set(trusted_users):
        return None
    if user_id != f"{user_prefix}{sender}":
        return (f"发送方冒用：由用户 {user_id} 发布，却自称 {sender} "
                f"(published by {user_id}, claims to be {sender})")
    return None
