"""Supervision (督办) on durable timers — pure: 预警 at a share of the handling time, 督办 at the
deadline, 升级 after a further while, the verification deadline and the stage deadlines; what a
timer does when it falls due."""
from __future__ import annotations

from datetime import timedelta

from shared import timer_entries as timerlib

from . import first_contact, report_check
from . import notices as notifications
from .model import OPEN_STATES, Change, Context, _apply, _notify, ms, working_seconds


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
    return out + first_contact.timers(doc) + report_check.timers(doc)   # 首问限时回复, 核实时限


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
    elif kind == "first_reply":
        return first_contact.fire(doc, change, ctx)
    elif kind == "check_overdue":
        return report_check.fire(doc, change, ctx)
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
