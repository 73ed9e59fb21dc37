"""Dispatch rules — pure (no I/O). Routing, deadlines on the business calendar, the case lifecycle
after registration, and supervision timers.

Every function takes the case document as read from the store and returns a :class:`Change`: the
fields to set, the history entries, the events, the notifications and the new list of durable
timers. The service saves a Change in ONE atomic update (shared.storage.update) against the version
it read, so a state change, its events, its notifications and its timers are never apart.

States: ``dispatched`` (派遣, waiting for the unit) → ``accepted`` (签收, 处置中) → ``feedback_given``
(已反馈, 待核查) → ``closed`` (结案). ``parked`` (挂账) stops the clock. A return (回退) re-dispatches
at once; a failed verification or a reopening (返工) puts the case back to ``accepted``.

Intermediate stages (阶段时限, e.g. 违法建设: 责令停工 within 4 working hours, 拆除 within 20 days)
come from the class in the taxonomy and start with each assignment. The unit reports each stage
(``report_stage``); a stage due before the case deadline that is not reported in time gets its
own 督办 (``stage_overdue``); a stage due with the deadline is supervised by the deadline itself.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from shared import on_time as rule_on_time
from shared import timers as timerlib

from . import notifications
from .routing import Settings, load_settings

STATES = ("dispatched", "accepted", "parked", "feedback_given", "closed")
STATE_LABELS = {"dispatched": "已派遣（待签收）", "accepted": "处置中", "parked": "挂账",
                "feedback_given": "已反馈（待核查）", "closed": "已结案"}
OPEN_STATES = ("dispatched", "accepted")          # the handling clock runs
LABELS = {
    "report_received": "受理", "case_registered": "立案", "case_dispatched": "派遣",
    "case_accepted": "签收", "case_returned": "回退", "extension_requested": "申请延期",
    "extension_decided": "延期审批", "park_requested": "申请挂账", "park_refused": "挂账未批准",
    "case_parked": "挂账", "case_unparked": "解除挂账", "case_feedback_given": "处置反馈",
    "case_verified": "核查", "case_closed": "结案", "case_rework_ordered": "返工",
    "case_warned": "预警", "case_supervised": "督办", "case_escalated": "升级（领导小组）",
    "case_ownership_disputed": "权属争议", "ownership_decided": "权属裁定",
    "case_urgency_changed": "调整紧急程度", "verification_overdue": "核查超时提醒",
    "case_reopened": "重复举报重新打开", "case_stage_reported": "阶段报告", "case_stage_overdue": "阶段超时督办",
}
TIMER_KINDS = ("warn", "supervise", "escalate", "verify_overdue", "stage_overdue")


class Refused(Exception):
    """The action is not allowed in the case's current state (HTTP 422)."""


class Forbidden(Exception):
    """This actor may not do this (wrong unit, approver rank too low) (HTTP 403)."""


@dataclass
class Context:
    now: datetime
    district: object
    settings: Settings

    def __post_init__(self):
        self.now = ms(self.now)

    @property
    def calendar(self):
        return self.district.calendar


@dataclass
class Change:
    case_id: str
    set: dict = field(default_factory=dict)
    history: list = field(default_factory=list)
    events: list = field(default_factory=list)         # (type, payload, event_id)
    notes: list = field(default_factory=list)          # notifications
    timers: list | None = None                         # the whole new list, or None: unchanged

    def event(self, event_type: str, payload: dict, event_id: str):
        self.events.append((event_type, dict(payload, case_id=self.case_id), event_id))

    def record(self, entry_type: str, at: datetime, actor: str, reason: str = "", **details):
        entry = {"type": entry_type, "label": LABELS.get(entry_type, entry_type), "at": at,
                 "actor": actor, "reason": reason or ""}
        entry.update({key: value for key, value in details.items() if value is not None})
        self.history.append(entry)


def ms(moment: datetime) -> datetime:
    """Millisecond precision: what the store keeps, so values compare equal after a round trip."""
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


def working_seconds(calendar, a: datetime, b: datetime) -> int:
    return int(calendar.working_time_between(a, b).total_seconds())


# ====================================================================== dispatch
def plan_dispatch(case: dict, district, now: datetime, settings: Settings | None = None) -> dict:
    """Route a registered case and start its clock: ``{unit_id, rule, case_kind, time_limit,
    deadline}``. The deadline is ``time_limit`` of working time after ``now`` (the clock starts at
    dispatch; outside working hours at the next working period)."""
    settings = settings or load_settings(district=district)
    plan = settings.route(case, district)
    plan["deadline"] = ms(district.calendar.add_working_time(now, plan["time_limit"]))
    return plan


def new_case(case: dict, ctx: Context) -> tuple[dict, Change]:
    """The dispatch document of a newly registered case, and its first change (dispatch)."""
    plan = plan_dispatch(case, ctx.district, ctx.now, ctx.settings)
    doc = {
        "_id": case["case_id"], "case": case, "state": "dispatched",
        "class_code": case["class_code"], "grid_code": case.get("grid_code"),
        "dispute_id": case.get("dispute_id"),
        "street_id": case.get("street_id"), "urgency": case.get("urgency", "normal"),
        "case_kind": plan["case_kind"], "time_limit": plan["time_limit"],
        "dispatched_at": ctx.now, "return_count": 0, "returns": [], "units_involved": [],
        "disputed": None, "extensions": [], "park": None, "feedback": None, "verifications": [],
        "rework_count": 0, "closures": 0, "closed_at": None, "on_time": None, "epoch": 0,
        "sequence": 0, "notifications": [], "history": [],
    }
    change = Change(case["case_id"])
    _assign(doc, change, plan["unit_id"], ctx, routed_by=ctx.settings.command_centre,
            rule=plan["rule"], reason="", notify_id=f"{case['case_id']}.notified.1")
    return doc, change


def _assign(doc: dict, change: Change, unit_id: str, ctx: Context, *, routed_by: str, rule: str,
            reason: str, previous_unit: str | None = None, notify_id: str | None = None,
            actor: str | None = None):
    """Give the case to a unit (first dispatch or re-dispatch): a fresh deadline and clock.
    The actor of an automatic (re-)dispatch is the command centre, on whose behalf it routes."""
    cal = ctx.calendar
    actor = actor or ctx.settings.command_centre
    sequence = doc.get("sequence", 0) + 1
    deadline = ms(cal.add_working_time(ctx.now, doc["time_limit"]))
    fields = {
        "state": "dispatched", "unit_id": unit_id, "sequence": sequence, "assigned_at": ctx.now,
        "routed_by": routed_by, "rule": rule, "deadline": deadline, "original_deadline": deadline,
        "clock": {"resumed_at": ctx.now, "allowed_s": working_seconds(cal, ctx.now, deadline)},
        "fired": {}, "extended": False, "parked_ever": False, "park": None,
        "accepted_at": None, "feedback": None,
    }
    involved = list(doc.get("units_involved") or [])
    if unit_id not in involved:
        involved.append(unit_id)
    fields["units_involved"] = involved
    fields["stages"] = stage_plan(doc["class_code"], ctx)
    _apply(doc, change, fields)
    case_id = doc["_id"]
    change.event("case_dispatched", {
        "unit_id": unit_id, "case_kind": doc["case_kind"], "dispatched_at": ctx.now,
        "deadline": deadline, "sequence": sequence, "time_limit": doc["time_limit"],
        "urgency": doc["urgency"], "routed_by": routed_by, "rule": rule,
        "previous_unit": previous_unit, "reason": reason or ""}, f"{case_id}.dispatched.{sequence}")
    change.record("case_dispatched", ctx.now, actor, reason, unit_id=unit_id, sequence=sequence,
                  deadline=deadline, rule=rule, routed_by=routed_by, time_limit=doc["time_limit"])
    _notify(doc, change, ctx, "dispatch", unit_id, note_id=notify_id)
    _reschedule(doc, change, ctx)


def stage_plan(class_code: str, ctx: Context) -> list[dict]:
    """The class's intermediate stages, each due its working time after now (the assignment)."""
    try:
        stages = ctx.district.minor_class(class_code).get("stages") or []
    except KeyError:
        return []
    return [{"name": stage["name"], "time_limit": stage["deadline"],
             "due_at": ms(ctx.calendar.add_working_time(ctx.now, stage["deadline"])),
             "reported_at": None, "reported_by": None, "note": "", "photo": None, "on_time": None}
            for stage in stages]


def _apply(doc: dict, change: Change, fields: dict):
    """Set fields on the in-memory document and in the change (later rules see the new values)."""
    doc.update(fields)
    change.set.update(fields)


def _notify(doc: dict, change: Change, ctx: Context, kind: str, unit_id: str, note_id: str | None = None,
            people: list | None = None, **extra):
    settings = ctx.settings
    words = settings.notify_roles.get(kind, settings.notify_roles.get("dispatch", []))
    if people is None:
        people = notifications.recipients(ctx.district, unit_id, words)
    message = notifications.text(kind, ctx.district, doc["case"], doc, **extra)
    note_id = note_id or f"{doc['_id']}.notified.{kind}.{doc.get('_version', 0)}.{len(change.notes) + 1}"
    change.notes.append({"id": note_id, "kind": kind, "case_id": doc["_id"], "unit_id": unit_id,
                         "recipients": people, "message": message, "at": ctx.now})


# ====================================================================== supervision timers
def _reschedule(doc: dict, change: Change, ctx: Context):
    """The case's timers for its current state and deadline (a new epoch: new timer ids)."""
    epoch = doc.get("epoch", 0) + 1
    _apply(doc, change, {"epoch": epoch})
    change.timers = supervision_timers(doc, ctx)


def supervision_timers(doc: dict, ctx: Context) -> list[dict]:
    """预警 at ``warn_share`` of the allowed working time, 督办 at the deadline, 升级 after a further
    ``escalate_after``; while feedback waits, the verification deadline. A stage that already
    fired for this deadline is not scheduled again, nor one that fired in this assignment and
    would be due at once."""
    cal, now = ctx.calendar, ctx.now
    case_id, epoch = doc["_id"], doc.get("epoch", 0)
    fired = doc.get("fired") or {}
    out = []
    if doc["state"] in OPEN_STATES:
        sup = ctx.settings.supervision_for(doc["case_kind"])
        deadline = doc["deadline"]
        key = deadline.isoformat()
        resumed = doc["clock"]["resumed_at"]
        allowed = timedelta(seconds=doc["clock"]["allowed_s"])
        remaining = cal.working_time_between(resumed, deadline)
        lead = remaining - allowed * (1 - sup.warn_share)
        lead = timedelta(seconds=max(0, round(lead.total_seconds())))
        stages = [("warn", ms(cal.add_working_time(resumed, lead))),
                  ("supervise", deadline),
                  ("escalate", ms(cal.add_working_time(deadline, sup.escalate_after)))]
        for kind, due in stages:
            if fired.get(kind) == key or (kind in fired and due <= now):
                continue
            out.append(timerlib.timer(f"{case_id}.{kind}.{epoch}", due, kind, deadline=deadline))
        for index, stage in enumerate(doc.get("stages") or []):
            mark = f"stage:{index}"
            if stage["reported_at"] or stage["due_at"] >= doc.get("original_deadline", deadline) \
                    or fired.get(mark) == stage["due_at"].isoformat():
                continue
            out.append(timerlib.timer(f"{case_id}.stage{index}.{epoch}", stage["due_at"], "stage_overdue",
                                      stage=index, name=stage["name"]))
    elif doc["state"] == "feedback_given" and doc.get("feedback"):
        due = doc["feedback"]["verify_due_at"]
        if "verify_overdue" not in fired:
            out.append(timerlib.timer(f"{case_id}.verify_overdue.{epoch}", due, "verify_overdue"))
    return out


def fire_timer(doc: dict, timer: dict, ctx: Context) -> Change | None:
    """A durable timer fell due. None when it is gone already (cancelled or fired)."""
    if timer["id"] not in {entry["id"] for entry in doc.get("_timers") or []}:
        return None
    change = Change(doc["_id"])
    change.timers = timerlib.without(doc, timer["id"])
    kind, case_id, epoch = timer["kind"], doc["_id"], timer["id"].rsplit(".", 1)[-1]
    fired = dict(doc.get("fired") or {})
    unit = doc["unit_id"]
    if kind in ("warn", "supervise", "escalate") and doc["state"] in OPEN_STATES:
        deadline = doc["deadline"]
        fired[kind] = deadline.isoformat()
        if kind == "warn":
            allowed = doc["clock"]["allowed_s"] or 1
            left = working_seconds(ctx.calendar, max(ctx.now, doc["clock"]["resumed_at"]), deadline)
            share = round(min(1.0, max(0.0, (allowed - left) / allowed)), 3)
            change.event("case_warned", {"unit_id": unit, "share_used": share, "deadline": deadline,
                                         "at": ctx.now}, f"{case_id}.warned.{epoch}")
            change.record("case_warned", ctx.now, "system", f"处置时限已用 {share:.0%}", unit_id=unit)
            _notify(doc, change, ctx, "warning", unit, note_id=f"{case_id}.notified.warning.{epoch}",
                    share=share)
        elif kind == "supervise":
            change.event("case_supervised", {"unit_id": unit, "deadline": deadline, "at": ctx.now},
                         f"{case_id}.supervised.{epoch}")
            change.record("case_supervised", ctx.now, "system", "超过处置时限", unit_id=unit)
            _notify(doc, change, ctx, "supervision", unit, note_id=f"{case_id}.notified.supervision.{epoch}")
        else:
            to = ctx.settings.escalate_to
            change.event("case_escalated", {"unit_id": unit, "escalated_to": to, "at": ctx.now,
                                            "deadline": deadline}, f"{case_id}.escalated.{epoch}")
            change.record("case_escalated", ctx.now, "system", "督办后仍未办结", unit_id=unit,
                          escalated_to=to)
            words = ctx.settings.notify_roles.get("escalation", [])
            people = notifications.recipients(ctx.district, to, words)
            _notify(doc, change, ctx, "escalation", to, note_id=f"{case_id}.notified.escalation.{epoch}",
                    people=people, to=to)
        change.set["fired"] = fired
    elif kind == "stage_overdue" and doc["state"] in OPEN_STATES:
        index, stages = timer["data"]["stage"], doc.get("stages") or []
        stage = stages[index] if index < len(stages) else None
        if stage is None or stage["reported_at"] or stage["name"] != timer["data"]["name"]:
            return change                          # reported meanwhile, or a former assignment's
        fired[f"stage:{index}"] = stage["due_at"].isoformat()
        change.set["fired"] = fired
        due = notifications.local_text(ctx.district, stage["due_at"])
        reason = f"「{stage['name']}」应于 {due} 前完成，尚未报告"
        change.event("case_stage_overdue", {"unit_id": unit, "stage": stage["name"], "due_at": stage["due_at"],
                                            "at": ctx.now}, f"{case_id}.stage_overdue.{index}.{epoch}")
        change.record("case_stage_overdue", ctx.now, "system", reason, unit_id=unit, stage=stage["name"])
        _notify(doc, change, ctx, "stage_overdue", unit, note_id=f"{case_id}.notified.stage_overdue.{index}.{epoch}",
                stage=stage["name"], due=stage["due_at"])
    elif kind == "verify_overdue" and doc["state"] == "feedback_given":
        fired[kind] = doc["feedback"]["verify_due_at"].isoformat()
        change.set["fired"] = fired
        inspector = _inspector(doc, ctx)
        change.record("verification_overdue", ctx.now, "system", "超过核查时限", unit_id=unit,
                      inspector=inspector)
        street = doc.get("street_id") or unit
        _notify(doc, change, ctx, "verification_overdue", street,
                note_id=f"{case_id}.notified.verification_overdue.{epoch}",
                inspector=inspector, due=doc["feedback"]["verify_due_at"])
    return change


def _inspector(doc: dict, ctx: Context) -> str | None:
    """Who verifies: the inspector who reported it, else the grid's inspector."""
    case = doc["case"]
    if case.get("inspector_id"):
        return case["inspector_id"]
    try:
        grid = ctx.district.grid(doc.get("grid_code") or "")
    except KeyError:
        return None
    return (grid.get("responsible") or {}).get("grid_inspector")


# ====================================================================== unit and centre actions
ACTIONS = ("accept", "return", "request_extension", "decide_extension", "request_park", "decide_park",
           "unpark", "report_stage", "feedback", "verify", "set_urgency")


def apply_action(doc: dict, action: str, data: dict, ctx: Context) -> Change:
    """One action on a case; ``data`` is validated by services.dispatch.schemas."""
    if action not in ACTIONS:
        raise Refused(f"未知的操作 {action} (unknown action)")
    change = Change(doc["_id"])
    doc = dict(doc)
    globals()[f"_{action}"](doc, change, data, ctx)
    return change


def _require_state(doc, *states, what=""):
    if doc["state"] not in states:
        allowed = "、".join(STATE_LABELS[state] for state in states)
        raise Refused(f"案件当前状态为「{STATE_LABELS.get(doc['state'], doc['state'])}」，"
                      f"只有「{allowed}」的案件才能{what} (not allowed in state {doc['state']})")


def _require_unit(doc, data):
    if data.get("actor_unit") != doc["unit_id"]:
        raise Forbidden(f"案件当前由 {doc['unit_id']} 处置，{data.get('actor_unit')} 不能执行此操作 "
                        f"(the case is assigned to {doc['unit_id']})")


def _require_role(ctx, data, needed: str, what: str):
    if ctx.settings.rank(data.get("role")) < ctx.settings.rank(needed):
        raise Forbidden(f"{what}需要「{needed}」或更高级别的审批人，当前角色为「{data.get('role')}」"
                        f"(needs role {needed} or higher)")


def _accept(doc, change, data, ctx):
    _require_state(doc, "dispatched", what="签收")
    _require_unit(doc, data)
    _apply(doc, change, {"state": "accepted", "accepted_at": ctx.now})
    change.event("case_accepted", {"unit_id": doc["unit_id"], "actor": data["actor"], "at": ctx.now,
                                   "sequence": doc["sequence"], "note": data.get("note", "")},
                 f"{doc['_id']}.accepted.{doc['sequence']}.{doc['_version']}")
    change.record("case_accepted", ctx.now, data["actor"], data.get("note", ""), unit_id=doc["unit_id"])


def _return(doc, change, data, ctx):
    """回退: re-dispatched at once. The return counts against whoever made the assignment (the
    command centre for routing, a unit whose suggestion sent it there). The second return of a
    case raises an ownership dispute; the case goes to the place's street (属地兜底) meanwhile."""
    _require_state(doc, "dispatched", "accepted", what="回退")
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
    _require_state(doc, "dispatched", "accepted", what="申请延期")
    _require_unit(doc, data)
    if _pending_extension(doc):
        raise Refused("已有待审批的延期申请 (an extension request is already pending)")
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
    pending = _pending_extension(doc)
    if pending is None:
        raise Refused("没有待审批的延期申请 (no pending extension request)")
    _require_state(doc, "dispatched", "accepted", what="审批延期")
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
    _require_state(doc, "dispatched", "accepted", what="申请挂账")
    _require_unit(doc, data)
    if (doc.get("park") or {}).get("state") == "requested":
        raise Refused("已有待审批的挂账申请 (a parking request is already pending)")
    park = {"state": "requested", "requested_by": data["actor"], "reason": data["reason"],
            "requested_at": ctx.now}
    _apply(doc, change, {"park": park})
    change.event("park_requested", {"unit_id": doc["unit_id"], "actor": data["actor"],
                                    "reason": data["reason"], "at": ctx.now},
                 f"{doc['_id']}.park_requested.{doc['_version']}")
    change.record("park_requested", ctx.now, data["actor"], data["reason"], unit_id=doc["unit_id"])


def _decide_park(doc, change, data, ctx):
    park = doc.get("park") or {}
    if park.get("state") != "requested":
        raise Refused("没有待审批的挂账申请 (no pending parking request)")
    _require_state(doc, "dispatched", "accepted", what="审批挂账")
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
    _require_state(doc, "parked", what="解除挂账")
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
    _require_state(doc, "accepted", what="报告阶段进展（请先签收）")
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
    _require_state(doc, "accepted", what="反馈（请先签收）")
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
    _require_state(doc, "feedback_given", what="核查")
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
        on_time = rule_on_time.closed_on_time(extended=bool(doc.get("extended")),
                                              parked=bool(doc.get("parked_ever")), handled_at=handled_at,
                                              original_deadline=doc["original_deadline"])
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
    _require_state(doc, "dispatched", "accepted", what="调整紧急程度")
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


# ====================================================================== messages from intake
def reopen(doc: dict, event: dict, ctx: Context) -> Change:
    """case_reopened: a repeat report soon after closing → 返工 back to the unit."""
    change = Change(doc["_id"])
    doc = dict(doc)
    payload = event["payload"]
    if doc["state"] != "closed":
        change.record("case_reopened", ctx.now, "intake", payload["reason"], report_id=payload["report_id"],
                      note="案件未结案，重复举报并入本案")
        return change
    change.record("case_reopened", ctx.now, "intake", payload["reason"], report_id=payload["report_id"])
    _rework(doc, change, ctx, source="reopened", actor="intake", reason=payload["reason"])
    return change


def ownership_decided(doc: dict, decision: dict, interim_owner: str | None, ctx: Context) -> Change:
    """Arbitration decided the owner: a case still with the interim owner goes to the decided one."""
    change = Change(doc["_id"])
    doc = dict(doc)
    owner = decision["owner_unit"]
    interim = interim_owner or (doc.get("disputed") or {}).get("interim_owner")
    change.record("ownership_decided", ctx.now, decision.get("decided_by", "arbitration"),
                  f"{decision.get('level', '')}级裁定权属单位为 {owner}", owner_unit=owner,
                  dispute_id=decision.get("dispute_id"))
    fields = {"ownership_decision": {"owner_unit": owner, "level": decision.get("level"),
                                     "decided_by": decision.get("decided_by"), "decided_at": ctx.now,
                                     "dispute_id": decision.get("dispute_id")}}
    if doc.get("disputed"):
        fields["disputed"] = dict(doc["disputed"], decided_owner=owner, decided_at=ctx.now,
                                  dispute_id=decision.get("dispute_id"))
    _apply(doc, change, fields)
    still_interim = interim is None or doc["unit_id"] == interim
    if doc["state"] in OPEN_STATES and still_interim and owner != doc["unit_id"]:
        _assign(doc, change, owner, ctx, routed_by=f"arbitration.{decision.get('level', 'unknown')}",
                rule="权属争议裁定", reason=f"权属裁定：{owner}", previous_unit=doc["unit_id"],
                actor=decision.get("decided_by", "arbitration"))
    return change


# ====================================================================== views (local time)
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
        "supervision": [{"kind": entry["kind"], "label": {"warn": "预警", "supervise": "督办",
                                                          "escalate": "升级", "verify_overdue": "核查超时提醒",
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
            "location", "deadline_utc")
    return {key: full.get(key) for key in keep}
