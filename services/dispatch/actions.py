"""The unit's and the centre's actions on a case — pure: 签收, 回退, 延期, 挂账, 阶段报告, 反馈,
核查 (closing, judged by shared.on_time), 返工 and 调整紧急程度. Each returns its fields, events,
history and notifications in the :class:`~services.dispatch.model.Change` it fills."""
from __future__ import annotations

from datetime import timedelta

from shared import on_time as rule_on_time
from shared.contracts.api.case_actions import refusal

from . import first_contact, report_check
from . import notices as notifications
from .assignment import _assign
from .model import Change, Context, Forbidden, Refused, _apply, _notify, ms, working_seconds
from .supervision import _inspector, _reschedule


ACTIONS = ("accept", "return", "request_extension", "decide_extension", "request_park", "decide_park",
           "unpark", "report_stage", "feedback", "verify", "set_urgency", "request_check", "check_report", "cancel")


def apply_action(doc: dict, action: str, data: dict, ctx: Context) -> Change:
    """One action on a case; ``data`` is validated by services.dispatch.schemas."""
    if action not in ACTIONS:
        raise Refused(f"未知的操作 {action} (unknown action)")
    change = Change(doc["_id"])
    doc = dict(doc)
    globals()[f"_{action}"](doc, change, data, ctx)
    return change


def _require_allowed(doc, action):
    """What the state allows: the contract's rule (the gateway lists allowed_actions by it too)."""
    reason = refusal(action, doc)
    if reason:
        raise Refused(reason)


def _require_unit(doc, data):
    if data.get("actor_unit") != doc["unit_id"]:
        raise Forbidden(f"案件当前由 {doc['unit_id']} 处置，{data.get('actor_unit')} 不能执行此操作 "
                        f"(the case is assigned to {doc['unit_id']})")


def _require_role(ctx, data, needed: str, what: str):
    if ctx.settings.rank(data.get("role")) < ctx.settings.rank(needed):
        raise Forbidden(f"{what}需要「{needed}」或更高级别的审批人，当前角色为「{data.get('role')}」"
                        f"(needs role {needed} or higher)")


def _accept(doc, change, data, ctx):
    _require_allowed(doc, "accept")
    _require_unit(doc, data)
    _apply(doc, change, {"state": "accepted", "accepted_at": ctx.now})
    change.event("case_accepted", {"unit_id": doc["unit_id"], "actor": data["actor"], "at": ctx.now,
                                   "sequence": doc["sequence"], "note": data.get("note", "")},
                 f"{doc['_id']}.accepted.{doc['sequence']}.{doc['_version']}")
    change.record("case_accepted", ctx.now, data["actor"], data.get("note", ""), unit_id=doc["unit_id"])
    first_contact.answered(doc, change, ctx, data["actor"])        # 首问负责: the case has an owner


def _return(doc, change, data, ctx):
    """回退: re-dispatched at once. The return counts against whoever made the assignment (the
    command centre for routing, a unit whose suggestion sent it there). The second return of a
    case raises an ownership dispute; the case goes to the place's street (属地兜底) meanwhile."""
    _require_allowed(doc, "return")
    _require_unit(doc, data)
    if doc.get("disputed"):
        raise Refused("该案件已因两次回退进入权属争议（裁定前由属地单位先行处置；裁定后以裁定为准），"
                      "不能再回退 (ownership disputed: no further returns)")
    decision = doc.get("ownership_decision") or {}
    if decision.get("owner_unit") == doc["unit_id"]:
        raise Refused("权属已裁定由本单位负责，不能回退 (ownership was decided: no return)")
    case_id, unit, now = doc["_id"], doc["unit_id"], ctx.now
    count = doc.get("return_count", 0) + 1
    caused_by = doc.get("routed_by") or ctx.settings.command_centre
    returned_by = [entry["unit_id"] for entry in doc.get("returns") or []] + [unit]
    street = doc.get("street_id") or doc["case"].get("owner_unit")
    suggestion = data.get("to_unit")
    if suggestion is not None:
        if suggestion not in ctx.district.units:
            raise Refused(f"建议的单位 {suggestion} 不存在 (unknown unit)")
        if suggestion == unit:
            raise Refused("不能把案件回退给自己 (cannot return a case to yourself)")
    disputed = count >= 2
    if disputed:
        target, routed_by, rule = street, ctx.settings.command_centre, "属地兜底：权属争议裁定前由属地街镇处置"
    elif suggestion and suggestion not in returned_by:
        target, routed_by, rule = suggestion, unit, f"回退时 {unit} 指出的权属单位"
    else:
        fallback = [candidate for candidate in (street, doc["case"].get("owner_unit"))
                    if candidate and candidate not in returned_by]
        if not fallback:
            raise Refused("请指明应由哪个单位处置 (to_unit) (say which unit owns it)")
        target, routed_by, rule = fallback[0], ctx.settings.command_centre, "回退后改派属地街镇"
    returns = list(doc.get("returns") or []) + [{
        "unit_id": unit, "caused_by": caused_by, "actor": data["actor"], "reason": data["reason"],
        "at": now, "to_unit": target, "sequence": doc["sequence"]}]
    _apply(doc, change, {"return_count": count, "returns": returns})
    change.event("case_returned", {"unit_id": unit, "caused_by": caused_by, "actor": data["actor"],
                                   "reason": data["reason"], "return_count": count, "at": now,
                                   "to_unit": target, "sequence": doc["sequence"]},
                 f"{case_id}.returned.{count}")
    change.record("case_returned", now, data["actor"], data["reason"], unit_id=unit, caused_by=caused_by,
                  to_unit=target, return_count=count)
    if disputed:
        units = list(dict.fromkeys(returned_by + ([suggestion] if suggestion else [])))
        _apply(doc, change, {"disputed": {"at": now, "units": units, "interim_owner": target,
                                          "dispute_id": None}})
        case = doc["case"]
        change.event("case_ownership_disputed", {
            "units": units, "at": now, "interim_owner": target, "location": case.get("location"),
            "grid_code": doc.get("grid_code"), "class_code": doc["class_code"],
            "reason": data["reason"]}, f"{case_id}.disputed.1")
        change.record("case_ownership_disputed", now, "system", "案件被两次回退，权属存在争议",
                      units=units, interim_owner=target)
    _assign(doc, change, target, ctx, routed_by=routed_by, rule=rule, reason=data["reason"],
            previous_unit=unit)


def _pending_extension(doc):
    return next((entry for entry in doc.get("extensions") or []
                 if entry["state"] == "pending" and entry["assignment"] == doc["sequence"]), None)


def _approved_extensions(doc):
    return [entry for entry in doc.get("extensions") or []
            if entry["state"] == "approved" and entry["assignment"] == doc["sequence"]]


def _request_extension(doc, change, data, ctx):
    _require_allowed(doc, "request_extension")
    _require_unit(doc, data)
    number = len(_approved_extensions(doc)) + 1
    approvers = ctx.settings.extension_approvers
    if number > len(approvers):
        raise Refused(f"延期次数已达上限（{len(approvers)} 次）(no more extensions allowed)")
    required = approvers[number - 1]
    entry = {"number": number, "assignment": doc["sequence"], "extra": data["extra"],
             "reason": data["reason"], "requested_by": data["actor"], "requested_at": ctx.now,
             "required_role": required, "state": "pending"}
    _apply(doc, change, {"extensions": list(doc.get("extensions") or []) + [entry]})
    change.event("extension_requested", {"unit_id": doc["unit_id"], "actor": data["actor"],
                                         "reason": data["reason"], "extra": data["extra"],
                                         "sequence": number, "at": ctx.now, "required_role": required},
                 f"{doc['_id']}.extension_requested.{doc['sequence']}.{number}.{doc['_version']}")
    change.record("extension_requested", ctx.now, data["actor"], data["reason"], unit_id=doc["unit_id"],
                  extra=data["extra"], number=number, required_role=required)


def _decide_extension(doc, change, data, ctx):
    _require_allowed(doc, "decide_extension")
    pending = _pending_extension(doc)
    _require_role(ctx, data, pending["required_role"], f"第 {pending['number']} 次延期")
    now, old = ctx.now, doc["deadline"]
    decided = dict(pending, state="approved" if data["approved"] else "refused", decided_by=data["actor"],
                   decided_role=data.get("role"), decided_at=now, decision_reason=data.get("reason", ""))
    extensions = [decided if entry is pending else entry for entry in doc["extensions"]]
    fields = {"extensions": extensions}
    new_deadline = None
    if data["approved"]:
        cal = ctx.calendar
        new_deadline = ms(cal.add_working_time(old, pending["extra"]))
        added = working_seconds(cal, old, new_deadline)
        decided["new_deadline"] = new_deadline
        fields.update(deadline=new_deadline, extended=True,
                      clock=dict(doc["clock"], allowed_s=doc["clock"]["allowed_s"] + added))
    _apply(doc, change, fields)
    change.event("extension_decided", {"unit_id": doc["unit_id"], "approved": data["approved"],
                                       "actor": data["actor"], "reason": data.get("reason", ""),
                                       "sequence": pending["number"], "new_deadline": new_deadline,
                                       "at": now, "role": data.get("role"), "old_deadline": old},
                 f"{doc['_id']}.extension_decided.{doc['sequence']}.{pending['number']}.{doc['_version']}")
    change.record("extension_decided", now, data["actor"], data.get("reason", ""), unit_id=doc["unit_id"],
                  approved=data["approved"], new_deadline=new_deadline, number=pending["number"],
                  role=data.get("role"))
    if data["approved"]:
        _reschedule(doc, change, ctx)


def _request_park(doc, change, data, ctx):
    _require_allowed(doc, "request_park")
    _require_unit(doc, data)
    park = {"state": "requested", "requested_by": data["actor"], "reason": data["reason"],
            "requested_at": ctx.now}
    _apply(doc, change, {"park": park})
    change.event("park_requested", {"unit_id": doc["unit_id"], "actor": data["actor"],
                                    "reason": data["reason"], "at": ctx.now},
                 f"{doc['_id']}.park_requested.{doc['_version']}")
    change.record("park_requested", ctx.now, data["actor"], data["reason"], unit_id=doc["unit_id"])


def _decide_park(doc, change, data, ctx):
    _require_allowed(doc, "decide_park")
    park = doc.get("park") or {}
    _require_role(ctx, data, ctx.settings.park_approver, "挂账")
    now, case_id = ctx.now, doc["_id"]
    if not data["approved"]:
        _apply(doc, change, {"park": dict(park, state="refused", decided_by=data["actor"], decided_at=now)})
        change.event("park_refused", {"unit_id": doc["unit_id"], "actor": data["actor"],
                                      "reason": data.get("reason", ""), "at": now},
                     f"{case_id}.park_refused.{doc['_version']}")
        change.record("park_refused", now, data["actor"], data.get("reason", ""), unit_id=doc["unit_id"])
        return
    remaining = max(0, working_seconds(ctx.calendar, now, doc["deadline"]))
    _apply(doc, change, {"state": "parked", "parked_ever": True, "park": dict(
        park, state="parked", approver=data["actor"], decided_at=now, parked_at=now,
        remaining_s=remaining, resume_state=doc["state"])})
    change.event("case_parked", {"unit_id": doc["unit_id"], "actor": park["requested_by"],
                                 "approver": data["actor"], "reason": park["reason"], "at": now,
                                 "remaining_seconds": remaining}, f"{case_id}.parked.{doc['_version']}")
    change.record("case_parked", now, data["actor"], park["reason"], unit_id=doc["unit_id"],
                  remaining_seconds=remaining, requested_by=park["requested_by"])
    _reschedule(doc, change, ctx)               # parked: no supervision timers, the clock stops


def _unpark(doc, change, data, ctx):
    _require_allowed(doc, "unpark")
    _require_role(ctx, data, ctx.settings.park_approver, "解除挂账")
    park, now, cal = doc["park"], ctx.now, ctx.calendar
    new_deadline = ms(cal.add_working_time(now, timedelta(seconds=park["remaining_s"])))
    _apply(doc, change, {
        "state": park.get("resume_state", "accepted"), "deadline": new_deadline,
        "clock": dict(doc["clock"], resumed_at=now),
        "park": dict(park, state="unparked", unparked_at=now, unparked_by=data["actor"])})
    change.event("case_unparked", {"unit_id": doc["unit_id"], "actor": data["actor"],
                                   "new_deadline": new_deadline, "at": now,
                                   "reason": data.get("reason", "")},
                 f"{doc['_id']}.unparked.{doc['_version']}")
    change.record("case_unparked", now, data["actor"], data.get("reason", ""), unit_id=doc["unit_id"],
                  new_deadline=new_deadline)
    _reschedule(doc, change, ctx)


def _report_stage(doc, change, data, ctx):
    """The unit reports an intermediate stage done (e.g. 责令停工), with a note and a photo."""
    _require_allowed(doc, "report_stage")
    _require_unit(doc, data)
    stages = [dict(stage) for stage in doc.get("stages") or []]
    names = [stage["name"] for stage in stages]
    if data["stage"] not in names:
        raise Refused(f"此类案件没有阶段「{data['stage']}」；可报告的阶段：{'、'.join(names) or '无'} "
                      f"(unknown stage)")
    index = names.index(data["stage"])
    stage = stages[index]
    if stage["reported_at"]:
        when = notifications.local_text(ctx.district, stage["reported_at"])
        raise Refused(f"阶段「{stage['name']}」已于 {when} 报告 (already reported)")
    on_time = rule_on_time.in_time(ctx.now, stage["due_at"])
    stage.update(reported_at=ctx.now, reported_by=data["actor"], note=data.get("note", ""),
                 photo=data.get("photo"), on_time=on_time)
    _apply(doc, change, {"stages": stages})
    change.event("case_stage_reported", {"unit_id": doc["unit_id"], "actor": data["actor"], "stage": stage["name"],
                                         "note": stage["note"], "photo": stage["photo"], "at": ctx.now,
                                         "due_at": stage["due_at"], "on_time": on_time},
                 f"{doc['_id']}.stage.{index}.{doc['sequence']}")
    change.record("case_stage_reported", ctx.now, data["actor"], stage["note"], unit_id=doc["unit_id"],
                  stage=stage["name"], on_time=on_time, photo=stage["photo"])
    _reschedule(doc, change, ctx)


def _feedback(doc, change, data, ctx):
    _require_allowed(doc, "feedback")
    _require_unit(doc, data)
    now, cal = ctx.now, ctx.calendar
    sup = ctx.settings.supervision_for(doc["case_kind"])
    due = ms(cal.add_working_time(now, sup.verify_within))
    fields = {"state": "feedback_given", "feedback": {
        "actor": data["actor"], "at": now, "after_photo": data["after_photo"],
        "note": data.get("note", ""), "verify_due_at": due}}
    pending = _pending_extension(doc)
    if pending:                                   # handled: a pending request lapses
        fields["extensions"] = [dict(entry, state="withdrawn") if entry is pending else entry
                                for entry in doc["extensions"]]
    if (doc.get("park") or {}).get("state") == "requested":
        fields["park"] = dict(doc["park"], state="withdrawn")
    _apply(doc, change, fields)
    change.event("case_feedback_given", {"unit_id": doc["unit_id"], "actor": data["actor"],
                                         "note": data.get("note", ""), "after_photo": data["after_photo"],
                                         "at": now, "verify_due_at": due},
                 f"{doc['_id']}.feedback.{doc['_version']}")
    change.record("case_feedback_given", now, data["actor"], data.get("note", ""), unit_id=doc["unit_id"],
                  after_photo=data["after_photo"], verify_due_at=due)
    inspector = _inspector(doc, ctx)
    street = doc.get("street_id") or doc["unit_id"]
    _notify(doc, change, ctx, "verification", street, inspector=inspector, due=due)
    _reschedule(doc, change, ctx)


def _verify(doc, change, data, ctx):
    _require_allowed(doc, "verify")
    now, case_id, unit = ctx.now, doc["_id"], doc["unit_id"]
    due = doc["feedback"]["verify_due_at"]
    verification = {"inspector_id": data["actor"], "passed": data["passed"], "note": data.get("note", ""),
                    "at": now, "due_at": due, "on_time": rule_on_time.in_time(now, due)}
    _apply(doc, change, {"verifications": list(doc.get("verifications") or []) + [verification]})
    number = len(doc["verifications"])
    change.event("case_verified", {"unit_id": unit, "inspector_id": data["actor"], "passed": data["passed"],
                                   "note": data.get("note", ""), "due_at": due, "at": now},
                 f"{case_id}.verified.{number}")
    change.record("case_verified", now, data["actor"], data.get("note", ""), unit_id=unit,
                  passed=data["passed"])
    if data["passed"]:
        handled_at = doc["feedback"]["at"]
        approved = [entry for entry in doc.get("extensions") or [] if entry.get("new_deadline")]
        on_time = rule_on_time.closed_on_time(
            extended=bool(doc.get("extended")), parked=bool(doc.get("parked_ever")), handled_at=handled_at,
            original_deadline=doc["original_deadline"],
            extension_moves_deadline=ctx.settings.extension_moves_deadline,
            extended_deadline=approved[-1]["new_deadline"] if approved else None, closed_at=now)
        closure = doc.get("closures", 0) + 1
        _apply(doc, change, {"state": "closed", "closed_at": now, "on_time": on_time, "closures": closure})
        change.event("case_closed", {
            "unit_id": unit, "deadline": doc["deadline"], "on_time": on_time,
            "extended": bool(doc.get("extended")), "parked": bool(doc.get("parked_ever")),
            "closed_at": now, "original_deadline": doc["original_deadline"], "handled_at": handled_at,
            "closure": closure, "rework_count": doc.get("rework_count", 0),
            "return_count": doc.get("return_count", 0), "inspector_id": data["actor"]},
            f"{case_id}.closed.{closure}")
        change.record("case_closed", now, data["actor"], data.get("note", ""), unit_id=unit, on_time=on_time)
        _reschedule(doc, change, ctx)             # closed: no timers
    else:
        _rework(doc, change, ctx, source="verification", actor=data["actor"],
                reason=data.get("note") or "核查未通过")


def _request_check(doc, change, data, ctx):
    """发起核实 of a public report (services/dispatch/report_check.py)."""
    _require_allowed(doc, "request_check")
    report_check.request(doc, change, data, ctx, _inspector(doc, ctx))
    _reschedule(doc, change, ctx)


def _check_report(doc, change, data, ctx):
    """核实: the inspector's 属实 / 不属实."""
    _require_allowed(doc, "check_report")
    report_check.answer(doc, change, data, ctx)
    _reschedule(doc, change, ctx)


def _cancel(doc, change, data, ctx):
    """不立案（作废） after a 不属实 核实."""
    _require_allowed(doc, "cancel")
    report_check.cancel(doc, change, data, ctx)


def _rework(doc, change, ctx, *, source: str, actor: str, reason: str):
    """返工: back to the same unit, handling again, with a fresh handling window."""
    now, cal = ctx.now, ctx.calendar
    number = doc.get("rework_count", 0) + 1
    deadline = ms(cal.add_working_time(now, doc["time_limit"]))
    _apply(doc, change, {
        "state": "accepted", "rework_count": number, "deadline": deadline, "feedback": None,
        "clock": {"resumed_at": now, "allowed_s": working_seconds(cal, now, deadline)}, "fired": {},
        "closed_at": None, "on_time": None})
    change.event("case_rework_ordered", {"unit_id": doc["unit_id"], "reason": reason, "at": now,
                                         "source": source, "actor": actor, "sequence": number,
                                         "new_deadline": deadline}, f"{doc['_id']}.rework.{number}")
    change.record("case_rework_ordered", now, actor, reason, unit_id=doc["unit_id"], source=source,
                  new_deadline=deadline)
    _notify(doc, change, ctx, "rework", doc["unit_id"], reason=reason)
    _reschedule(doc, change, ctx)


def _set_urgency(doc, change, data, ctx):
    _require_allowed(doc, "set_urgency")
    _require_role(ctx, data, ctx.settings.urgency_changer, "调整紧急程度")
    if data["urgency"] == doc["urgency"]:
        raise Refused("紧急程度没有变化 (urgency unchanged)")
    if doc.get("extended") or doc.get("parked_ever"):
        raise Refused("已延期或挂账过的案件不能再调整紧急程度 (extended or parked cases keep their deadline)")
    cal, now = ctx.calendar, ctx.now
    limit = ctx.settings.time_limit(doc["case"], ctx.district, data["urgency"])
    start = doc["clock"]["resumed_at"] if doc.get("rework_count") else doc["assigned_at"]
    deadline = ms(cal.add_working_time(start, limit))
    fields = {"urgency": data["urgency"], "time_limit": limit, "deadline": deadline,
              "clock": {"resumed_at": start, "allowed_s": working_seconds(cal, start, deadline)}}
    if not doc.get("rework_count"):
        fields["original_deadline"] = deadline
    _apply(doc, change, fields)
    change.event("case_urgency_changed", {"unit_id": doc["unit_id"], "urgency": data["urgency"],
                                          "actor": data["actor"], "reason": data.get("reason", ""),
                                          "new_deadline": deadline, "at": now},
                 f"{doc['_id']}.urgency.{doc['_version']}")
    change.record("case_urgency_changed", now, data["actor"], data.get("reason", ""), unit_id=doc["unit_id"],
                  urgency=data["urgency"], new_deadline=deadline, time_limit=limit)
    _reschedule(doc, change, ctx)
