"""Dispatch (派遣) — pure: route a registered case (shared.routing_table through the routing
settings), start its clock on the business calendar and give it to a unit; the class's
intermediate stages (阶段时限) start with each assignment."""
from __future__ import annotations

from datetime import datetime

from shared import routing_table

from .model import Change, Context, _apply, _notify, ms, working_seconds
from .routing import Settings, load_settings
from . import first_contact
from .stretch import notify_stretch
from .supervision import _reschedule


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
    decided = routing_table.decided_owner(case)
    if decided is not None:                      # filed under a 确权 decision: it sticks (no 回退)
        doc["ownership_decision"] = {"owner_unit": decided, "source": "responsibility_map"}
    change = Change(case["case_id"])
    _assign(doc, change, plan["unit_id"], ctx, routed_by=ctx.settings.command_centre,
            rule=plan["rule"], reason="", notify_id=f"{case['case_id']}.notified.1")
    notify_stretch(doc, change, ctx)             # 双街长/双路长 and 社区联络员 (stretch.py)
    first_contact.open_duty(doc, change, ctx)    # 首问负责, 限时回复 (first_contact.py)
    change.timers = list(change.timers or []) + first_contact.timers(doc)
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
