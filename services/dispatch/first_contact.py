"""首问负责 and 限时回复 (Jincheng) — pure (no I/O).

The first unit that receives a citizen's request (the unit it is first dispatched to) owns the
reply to the citizen until the case has an owner: until a unit signs for it (签收). If the first
unit returns it (回退), the reply is still its duty while the case finds its owner. The reply is
due ``reply_within`` of working time after the first dispatch (config/routing.yaml
``first_contact``; default 2 working hours, for the channels citizens use: open311, web, hotline).

It is supervised like any other deadline: a durable timer (``first_reply``) at the due moment;
when the case still has no owner then, a 督办 (``case_supervised`` with ``reason: first_reply``,
counted against the first unit in scoring like every 督办) and a notice to that unit. The
timeline shows 首问负责 (opened, with its deadline), 首问回复 (answered: by whom, on time or not)
and 首问回复超时督办.
"""
from __future__ import annotations

from shared import timer_entries as timerlib
from shared.calendar import valid_duration

from .model import Change, Context, _apply, ms
from .notices import local_text, recipients, unit_name

DEFAULTS = {"reply_within": "2h", "channels": ["open311", "web", "hotline"]}


def policy(settings) -> dict:
    """The first-contact policy from the dispatch settings (``first_contact`` in routing.yaml)."""
    raw = dict(DEFAULTS, **(getattr(settings, "first_contact", None) or {}))
    if not valid_duration(str(raw["reply_within"])):
        raise ValueError(f"first_contact.reply_within {raw['reply_within']!r} is not a working-time "
                         f"duration (e.g. 2h, 30m, 1d)")
    return {"reply_within": str(raw["reply_within"]), "channels": [str(c) for c in raw["channels"]]}


def _record(change: Change, kind: str, at, actor: str, reason: str, **details):
    change.record(kind, at, actor, reason, **details)       # labels: model.LABELS

def open_duty(doc: dict, change: Change, ctx: Context) -> None:
    """At the first dispatch of a citizen's request: the first unit owes the reply."""
    rules = policy(ctx.settings)
    if doc["case"].get("channel") not in rules["channels"]:
        return
    due = ms(ctx.calendar.add_working_time(ctx.now, rules["reply_within"]))
    duty = {"unit_id": doc["unit_id"], "due_at": due, "reply_within": rules["reply_within"],
            "replied_at": None, "replied_by": None, "on_time": None, "supervised_at": None}
    _apply(doc, change, {"first_contact": duty})
    _record(change, "first_contact", ctx.now, ctx.settings.command_centre,
            f"{unit_name(ctx.district, doc['unit_id'])}首问负责，须于 {local_text(ctx.district, due)} 前答复市民",
            unit_id=doc["unit_id"], due_at=due)


def answered(doc: dict, change: Change, ctx: Context, actor: str) -> None:
    """The case has an owner (a unit signed for it): the reply duty is met."""
    duty = doc.get("first_contact")
    if not duty or duty["replied_at"]:
        return
    on_time = ctx.now <= duty["due_at"]
    _apply(doc, change, {"first_contact": dict(duty, replied_at=ctx.now, replied_by=doc["unit_id"],
                                               on_time=on_time)})
    change.timers = timerlib.without(doc if change.timers is None else change.timers, "first_reply")
    who = unit_name(ctx.district, doc["unit_id"])
    _record(change, "first_reply", ctx.now, actor, f"{who}签收，已答复市民（{'按时' if on_time else '超时'}）",
            unit_id=doc["unit_id"], first_unit=duty["unit_id"], on_time=on_time)


def timers(doc: dict) -> list[dict]:
    """The reply timer while the duty is open and not yet supervised (its id carries the epoch,
    like every timer of the case: a reschedule replaces it)."""
    duty = doc.get("first_contact")
    if not duty or duty["replied_at"] or duty["supervised_at"] or doc["state"] == "closed":
        return []
    return [timerlib.timer(f"{doc['_id']}.first_reply.{doc.get('epoch', 0)}", duty["due_at"], "first_reply")]


def fire(doc: dict, change: Change, ctx: Context) -> Change:
    """The reply deadline passed: 督办 the first unit if the case still has no owner."""
    duty = doc.get("first_contact")
    if not duty or duty["replied_at"] or duty["supervised_at"]:
        return change
    unit, case_id = duty["unit_id"], doc["_id"]
    change.set["first_contact"] = dict(duty, supervised_at=ctx.now)
    reason = f"首问单位{unit_name(ctx.district, unit)}未在 {local_text(ctx.district, duty['due_at'])} 前答复市民"
    change.event("case_supervised", {"unit_id": unit, "deadline": duty["due_at"], "at": ctx.now,
                                     "reason": "first_reply"}, f"{case_id}.supervised.first_reply")
    _record(change, "first_reply_overdue", ctx.now, "system", reason, unit_id=unit)
    words = ctx.settings.notify_roles.get("supervision", ctx.settings.notify_roles.get("dispatch", []))
    case = doc["case"]
    what = f"案件 {case_id}（{case.get('class_name', case.get('class_code'))}，{case.get('address') or '见地图'}）"
    change.notes.append({"id": f"{case_id}.notified.first_reply", "kind": "first_reply_overdue",
                         "case_id": case_id, "unit_id": unit,
                         "recipients": recipients(ctx.district, unit, words),
                         "message": f"【大城管·首问督办】{unit_name(ctx.district, unit)}：{what}由贵单位首问，"
                                    f"答复时限 {local_text(ctx.district, duty['due_at'])} 已过，请立即答复市民。",
                         "at": ctx.now})
    return change
