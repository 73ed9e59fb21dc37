"""Missing replies — pure: when a department's acceptance or check-in deadline passes it is
re-notified (a Request again, or a check-in reminder Update), ``max_renotifications`` times,
then escalated to the lead unit and the command centre.
"""
from __future__ import annotations

from datetime import datetime

from .deadlines import _timer, renotify_interval
from .fanout import build_request
from .operation import Effects, _envelope, _iso, _log, _place, _urgency, distribution_id


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
