"""Live updates — pure: what of a lifecycle event the pages are told, and who may be told it.

The gateway consumes dispatch's, coordination's and intake's lifecycle events (queue
``gateway.live-events``), keeps each as a small numbered record in its own store
(services/gateway/live_api.py) and streams the records to the signed-in pages by Server-Sent
Events. The number is the SSE ``id``: a page that reconnects (after a gateway restart too) sends
``Last-Event-ID`` and gets every record after it that it may see.

A record names only what a page needs to refresh the right thing (the case, the operation, the
type and its Chinese label, when, which units and departments it concerns); the page then reads
the case or operation through the API, with the caller's own rights.

Who sees a record: the readers (command centre, leader, inspector) everything; a unit the records
of its cases and of the operations it leads, asked for or owns the case of; a partner department
the records of the operations it is invited to; other roles nothing.
"""
from __future__ import annotations

from shared.contracts.api.case_actions import STATE_LABELS

from .auth import READ_ALL

EVENT_LABELS = {
    "case_registered": "立案", "case_dispatched": "派遣", "case_accepted": "签收", "case_returned": "回退",
    "extension_requested": "申请延期", "extension_decided": "延期审批", "park_requested": "申请挂账",
    "park_refused": "挂账未批准", "case_parked": "挂账", "case_unparked": "解除挂账",
    "case_feedback_given": "处置反馈", "case_stage_reported": "阶段报告", "case_stage_overdue": "阶段超时督办",
    "case_verified": "核查", "case_closed": "结案", "case_rework_ordered": "返工", "case_warned": "预警",
    "case_supervised": "督办", "case_escalated": "升级（领导小组）", "case_ownership_disputed": "权属争议",
    "ownership_dispute_opened": "权属争议", "ownership_decided": "权属裁定", "case_urgency_changed": "调整紧急程度",
    "case_reopened": "重复举报重新打开", "joint_operation_opened": "联合行动发起",
    "department_request_sent": "通知部门", "department_replied": "部门答复", "department_escalated": "部门未响应升级",
    "department_renotified": "再次通知部门", "joint_operation_updated": "联合行动更新",
    "joint_operation_closed": "联合行动结束",
}
UNIT_KEYS = ("unit_id", "to_unit", "from_unit", "lead_unit", "requested_by", "owner_unit", "previous_unit")


def record(event: dict, operation: dict | None = None, to_local=None) -> dict | None:
    """The record kept for a lifecycle event (``operation``: the record of the operation's opening,
    for an event that names only the operation; ``to_local``: the district calendar's, for the
    time shown). None: nothing a page shows."""
    kind, payload = event.get("type"), event.get("payload") or {}
    if kind not in EVENT_LABELS:
        return None
    units = {payload[key] for key in UNIT_KEYS if isinstance(payload.get(key), str) and payload[key]}
    departments = {dept for dept in payload.get("departments") or [] if isinstance(dept, str)}
    if isinstance(payload.get("department"), str):
        departments.add(payload["department"])
    if operation:
        units |= set(operation.get("units") or ())
        departments |= set(operation.get("departments") or ())
    body = {"event_id": event.get("event_id"), "type": kind, "label": EVENT_LABELS[kind],
            "at": _local(event.get("occurred_at"), to_local), "case_id": payload.get("case_id") or (operation or {}).get("case_id"),
            "operation_id": payload.get("operation_id"), "units": sorted(units), "departments": sorted(departments)}
    if payload.get("state") in STATE_LABELS:
        body["state_label"] = STATE_LABELS[payload["state"]]
    return body


def _local(moment, to_local):
    from datetime import datetime
    if isinstance(moment, str):
        try:
            moment = datetime.fromisoformat(moment.replace("Z", "+00:00"))
        except ValueError:
            return moment
    if isinstance(moment, datetime) and to_local is not None:
        return to_local(moment).isoformat()
    return moment.isoformat() if isinstance(moment, datetime) else moment


def visible(principal, item: dict) -> bool:
    if principal is None:
        return False
    if principal.role in READ_ALL:
        return True
    if principal.role == "unit":
        return bool(principal.unit_id) and principal.unit_id in (item.get("units") or ())
    if principal.role == "partner":
        return bool(principal.department) and principal.department in (item.get("departments") or ())
    return False


def sse(item: dict) -> str:
    """One record as a Server-Sent Event (``id`` = its number, for Last-Event-ID)."""
    import json
    data = {key: value for key, value in item.items() if key not in ("_id", "n", "opening_of", "units", "departments")}
    return f"id: {item['n']}\nevent: change\ndata: {json.dumps(data, ensure_ascii=False, default=str)}\n\n"
