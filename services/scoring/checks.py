"""核实 (on-site check of a public report) in the indicators — pure.

dispatch owns the task (services/dispatch/report_check.py) and judges each answer on time or not
against the task's own due time (shared/on_time.in_time); scoring folds its events into the case
fact and counts, per inspector (by 工号, shown by name):

- 核实数 (``verify_tasks``): tasks answered in the period, plus tasks still unanswered whose due
  time passed in the period (before "as of");
- 按期核实数 (``verify_tasks_on_time``): of those, answered no later than the due time.

A task counts for the inspector who answered it, else for the one it was sent to.
A case the centre cancelled (不立案) after a 不属实 核实 is no longer due (应结案) from then on.
"""
from __future__ import annotations

from datetime import datetime, timezone

EVENTS = ("case_check_requested", "case_checked", "case_cancelled")


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment


def fold(fact: dict, kind: str, payload: dict, at: datetime) -> None:
    """Apply one of ``EVENTS`` to a case fact (its ``checks`` list and ``cancelled_at``)."""
    checks = fact.setdefault("checks", [])
    if kind == "case_check_requested":
        if not any(c["sequence"] == payload["sequence"] for c in checks):
            checks.append({"sequence": payload["sequence"], "inspector_id": payload.get("inspector_id"),
                           "due_at": payload["due_at"], "requested_at": at, "answered_at": None,
                           "answered_by": None, "answered_name": None, "on_time": None, "genuine": None})
    elif kind == "case_checked":
        task = next((c for c in checks if c["sequence"] == payload["sequence"]), None)
        if task is None:                         # the answer overtook the request: keep what it says
            task = {"sequence": payload["sequence"], "inspector_id": None, "due_at": payload["due_at"],
                    "requested_at": None}
            checks.append(task)
        task.update(answered_at=at, answered_by=payload["inspector_id"], answered_name=payload.get("inspector_name"),
                    on_time=bool(payload["on_time"]), genuine=payload["genuine"])
        checks.sort(key=lambda c: c["sequence"])
    elif kind == "case_cancelled" and fact.get("cancelled_at") is None:
        fact["cancelled_at"] = at


def cancelled_before(fact: dict, limit: datetime) -> bool:
    at = fact.get("cancelled_at")
    return at is not None and _utc(at) < _utc(limit)


def tally(cases: list[dict], in_period, limit: datetime, add, names: dict) -> None:
    """Count every case's 核实 tasks of the period: ``add(inspector, count_name, n)``; ``names``
    gets 工号 → 姓名 from the answers."""
    for fact in cases:
        for task in fact.get("checks") or ():
            answered = task["answered_at"] is not None and _utc(task["answered_at"]) < _utc(limit)
            if answered:
                if not in_period(_utc(task["answered_at"])):
                    continue
                key, timely = task["answered_by"], task["on_time"]
                if task.get("answered_name"):
                    names[key] = task["answered_name"]
            elif in_period(_utc(task["due_at"])) and _utc(task["due_at"]) < _utc(limit):
                key, timely = task["inspector_id"], False          # overdue, unanswered
            else:
                continue
            if key:
                add(key, "verify_tasks")
                add(key, "verify_tasks_on_time", bool(timely))
