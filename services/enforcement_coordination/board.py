"""Views of an operation — pure: the board's summary and the entries of its case's timeline.
"""
from __future__ import annotations

from .operation import STATE_NAMES, _place


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
