"""Intake's copy of a case's status, fed by dispatch's lifecycle events — pure: no I/O.

The copy (state, unit, deadline, notes, closing) is behind Open311's status, duplicate linking,
reopening (返工) and the 回访. Dispatch owns the case; its events reach intake in any order
(retries, redeliveries, one change's events overtaking each other: ``case_closed`` before the
``case_verified`` of the same change). So every field here is computed from the event alone and
applied by the owner's position (``shared.projection``): the copy ends where in-order delivery
ends, whatever the order or duplication. Intake's own write on the copy (reopening) is a
``projection.local`` write: only a newer event of dispatch overrides it.

Also here: what the subscribed reporters are told when their case is dispatched and closed.
"""
from __future__ import annotations

from datetime import datetime

from shared import projection


def _local(moment, tz) -> str:
    if moment is None:
        return ""
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment.replace("Z", "+00:00"))
    return f"{moment.astimezone(tz):%Y-%m-%d %H:%M}"


def event_fields(event: dict, unit_name, tz) -> dict:
    """What a dispatch event says about the case (``{}``: nothing), from the event alone.

    ``unit_name(unit_id)`` → display name (reference data, not the copy)."""
    kind, payload = event["type"], event["payload"]
    unit = payload.get("unit_id")
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
        timing = "按期" if payload.get("on_time") else "超期"
        fields.update(state="closed", closed_at=payload["closed_at"], on_time=payload.get("on_time"),
                      updated_at=payload["closed_at"], status_notes=f"已结案（{timing}），处置单位：{name}")
    elif kind == "case_cancelled":                # 不立案 after a 不属实 核实 (dispatch's report_check.py)
        fields.update(state="cancelled", closed_at=payload["at"],
                      status_notes="经现场核实，反映的问题不属实，不予立案")
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
    elif kind == "case_supervised" and payload.get("reason") == "first_reply":
        fields.update(status_notes=f"首问单位{name}未按时答复，已督办")          # 首问负责
    elif kind == "case_supervised":
        fields.update(status_notes=f"已超过处置时限，已督办{name}")
    elif kind == "case_escalated":
        fields.update(status_notes=f"已升级至{unit_name(payload.get('escalated_to'))}督办")
    else:
        return {}
    return fields


def project(case: dict, event: dict, unit_name, tz) -> dict:
    """The ``$set`` that applies a dispatch event to intake's copy ``case`` (``{}``: nothing):
    only the fields this event is the latest word on (shared.projection.merge)."""
    fields = event_fields(event, unit_name, tz)
    return projection.merge(case, fields, event) if fields else {}


def reopen_fields(case: dict, now: datetime, reason: str) -> dict:
    """The ``$set`` of intake reopening a closed case (a repeat report, 返工): a local write that
    holds until dispatch says more (a delayed ``case_closed`` does not close it again)."""
    return projection.local(case, {"state": "reopened", "reopened_at": now, "updated_at": now,
                                   "status_notes": f"结案后再次出现，已重新打开，返工（{reason}）"})


def sets_state(changes: dict) -> bool:
    """Did this ``$set`` move the case's state (is its event the latest word on the state)?"""
    return "state" in changes


def is_open(case: dict) -> bool:
    return case.get("state") not in ("closed", "cancelled")


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
