"""核实 of a public report — pure (no I/O).

A report from the public (the citizens' app / Open311, the web page, the 12345 hotline) is filed
and dispatched at once; the standard's 核实 — an inspector checking on site that the problem is
real — runs beside it. The command centre sends the task (``request_check``) for an open case to
the inspector of its grid (``supervision._inspector``: the reporting inspector, else the grid's),
due ``within`` of working time (config/routing.yaml ``report_check``; default 1 working hour); which channels are checked is
the contract's ``CHECKED_CHANNELS`` (shared/contracts/api/case_actions.py).
The inspector answers from the inspector page (``check_report``): 属实 or 不属实, with a note when
不属实. A 不属实 answer lets the centre decide 不立案 (``cancel``): the case is withdrawn from its
unit, its timers stop, and scoring no longer counts it as due.

Supervised like the other deadlines: a durable timer (``check_overdue``) at the due time; an
unanswered task then gets a 核实超时督办 entry and a notice to the command centre. Scoring counts
each task for the inspector who answered it (else the one it was sent to): 核实数 and 按期核实数.
"""
from __future__ import annotations

from shared import on_time
from shared import timer_entries as timerlib
from shared.calendar import valid_duration

from .model import Change, Context, _apply, ms
from .notices import local_text, recipients, unit_name

DEFAULTS = {"within": "1h"}      # which reports: the contract's CHECKED_CHANNELS (case_actions.py)


def policy(settings) -> dict:
    """The 核实 policy from the dispatch settings (``report_check`` in routing.yaml)."""
    raw = dict(DEFAULTS, **(getattr(settings, "report_check", None) or {}))
    if not valid_duration(str(raw["within"])):
        raise ValueError(f"report_check.within {raw['within']!r} is not a working-time duration (e.g. 1h, 30m)")
    return {"within": str(raw["within"])}


def _what(doc) -> str:
    case = doc["case"]
    return f"案件 {doc['_id']}（{case.get('class_name', case.get('class_code'))}，{case.get('address') or '见地图'}）"


def request(doc: dict, change: Change, data: dict, ctx: Context, inspector: str | None) -> None:
    """发起核实 (the command centre): a task for the grid's inspector, due ``within`` from now."""
    rules = policy(ctx.settings)
    channel = doc["case"].get("channel")
    number = (doc.get("check") or {}).get("sequence", 0) + 1
    due = ms(ctx.calendar.add_working_time(ctx.now, rules["within"]))
    check = {"sequence": number, "inspector_id": inspector, "requested_by": data["actor"],
             "requested_at": ctx.now, "due_at": due, "answered_at": None, "answered_by": None,
             "answered_name": None, "genuine": None, "note": data.get("note", ""), "on_time": None,
             "overdue_at": None}
    _apply(doc, change, {"check": check})
    change.event("case_check_requested", {"unit_id": doc["unit_id"], "sequence": number, "inspector_id": inspector,
                                          "channel": channel, "actor": data["actor"], "due_at": due,
                                          "at": ctx.now}, f"{doc['_id']}.check_requested.{number}")
    change.record("case_check_requested", ctx.now, data["actor"],
                  f"请{inspector or '网格监督员'}于 {local_text(ctx.district, due)} 前现场核实", unit_id=doc["unit_id"],
                  inspector=inspector, due_at=due)
    street = doc.get("street_id") or doc["unit_id"]
    words = ctx.settings.notify_roles.get("verification", ctx.settings.notify_roles.get("dispatch", []))
    change.notes.append({"id": f"{doc['_id']}.notified.check.{number}", "kind": "report_check",
                         "case_id": doc["_id"], "unit_id": street, "recipients": recipients(ctx.district, street, words),
                         "message": f"【大城管·核实】{_what(doc)}为公众上报，请网格监督员{inspector or ''}于 "
                                    f"{local_text(ctx.district, due)} 前到现场核实是否属实。", "at": ctx.now})


def answer(doc: dict, change: Change, data: dict, ctx: Context) -> None:
    """核实 (the inspector): 属实 or 不属实; on time when no later than the task's due time."""
    check = doc["check"]
    timely = on_time.in_time(ctx.now, check["due_at"])
    answered = dict(check, answered_at=ctx.now, answered_by=data["actor"], answered_name=data.get("actor_name"),
                    genuine=data["genuine"], note=data.get("note", ""), on_time=timely)
    _apply(doc, change, {"check": answered})
    change.event("case_checked", {"unit_id": doc["unit_id"], "sequence": check["sequence"],
                                  "inspector_id": data["actor"], "inspector_name": data.get("actor_name"),
                                  "genuine": data["genuine"], "note": data.get("note", ""), "due_at": check["due_at"],
                                  "on_time": timely, "at": ctx.now}, f"{doc['_id']}.checked.{check['sequence']}")
    verdict = "属实" if data["genuine"] else "不属实"
    change.record("case_checked", ctx.now, data.get("actor_name") or data["actor"],
                  f"核实{verdict}（{'按期' if timely else '超时'}）{('：' + data['note']) if data.get('note') else ''}",
                  unit_id=doc["unit_id"], genuine=data["genuine"], on_time=timely)


def cancel(doc: dict, change: Change, data: dict, ctx: Context) -> None:
    """不立案（作废）: withdrawn from its unit; no timers run any more."""
    _apply(doc, change, {"state": "cancelled", "cancelled_at": ctx.now, "epoch": doc.get("epoch", 0) + 1})
    change.timers = []
    change.event("case_cancelled", {"unit_id": doc["unit_id"], "actor": data["actor"], "reason": data["reason"],
                                    "at": ctx.now}, f"{doc['_id']}.cancelled")
    change.record("case_cancelled", ctx.now, data["actor"], data["reason"], unit_id=doc["unit_id"])
    unit = doc["unit_id"]
    words = ctx.settings.notify_roles.get("dispatch", [])
    change.notes.append({"id": f"{doc['_id']}.notified.cancelled", "kind": "cancelled", "case_id": doc["_id"],
                         "unit_id": unit, "recipients": recipients(ctx.district, unit, words),
                         "message": f"【大城管·不立案】{unit_name(ctx.district, unit)}：{_what(doc)}经核实不属实，"
                                    f"已作废，无需处置。", "at": ctx.now})


def timers(doc: dict) -> list[dict]:
    """The 核实 timer while a task waits for its answer and has not been supervised yet."""
    check = doc.get("check")
    if not check or check["answered_at"] or check["overdue_at"] or doc["state"] in ("closed", "cancelled"):
        return []
    return [timerlib.timer(f"{doc['_id']}.check_overdue.{check['sequence']}.{doc.get('epoch', 0)}",
                           check["due_at"], "check_overdue")]


def fire(doc: dict, change: Change, ctx: Context) -> Change:
    """The 核实 time limit passed unanswered: 核实超时督办 and a notice to the command centre."""
    check = doc.get("check")
    if not check or check["answered_at"] or check["overdue_at"]:
        return change
    change.set["check"] = dict(check, overdue_at=ctx.now)
    due = local_text(ctx.district, check["due_at"])
    change.record("check_overdue", ctx.now, "system", f"{check['inspector_id'] or '网格监督员'}未在 {due} 前核实",
                  unit_id=doc["unit_id"], inspector=check["inspector_id"])
    centre = ctx.settings.command_centre
    words = ctx.settings.notify_roles.get("supervision", ctx.settings.notify_roles.get("dispatch", []))
    change.notes.append({"id": f"{doc['_id']}.notified.check_overdue.{check['sequence']}", "kind": "check_overdue",
                         "case_id": doc["_id"], "unit_id": centre,
                         "recipients": recipients(ctx.district, centre, words),
                         "message": f"【大城管·核实督办】{_what(doc)}的核实任务（{check['inspector_id'] or '网格监督员'}）"
                                    f"应于 {due} 前完成，尚未答复。", "at": ctx.now})
    return change
