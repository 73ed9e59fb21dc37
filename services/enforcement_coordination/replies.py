"""Department replies — pure: what an Ack / Update / Error does to the operation (department
states only move forward: requested → accepted → on_site (报到) → acting → disposed), what is
refused with an Error that says why (after the close, after a release, leaving an open
operation: 事不完，人不走), and whether a reply really comes from the department it names.
"""
from __future__ import annotations

from datetime import datetime

from .deadlines import _timers_without
from .operation import (PARTICIPATING, STAGE_STATE, STATE_ORDER, Effects, _envelope, _iso, _log,
                        distribution_id, short_hash)


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
