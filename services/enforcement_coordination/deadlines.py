"""Deadlines of a department in a joint operation — pure: the Accept/Reject is due
``ack_minutes`` after the request, the check-in (报到) ``checkin_minutes`` after it, per
department and urgency (config/departments.yaml); a silent department is re-notified every
``renotify_minutes``. Each deadline is a durable timer of the operation.
"""
from __future__ import annotations

from datetime import datetime, timedelta

from .operation import TIMER_KINDS


def _minutes(dept_info: dict | None, key: str, urgency: str, default: int) -> int:
    value = (dept_info or {}).get(key)
    if isinstance(value, dict):
        value = value.get(urgency, value.get("normal"))
    return int(default if value is None else value)


def checkin_deadline(department: dict | None, urgency: str, opened_at: datetime) -> datetime:
    return opened_at + timedelta(minutes=_minutes(department, "checkin_minutes", urgency, 30))


def ack_deadline(department: dict | None, urgency: str, sent_at: datetime) -> datetime:
    return sent_at + timedelta(minutes=_minutes(department, "ack_minutes", urgency, 5))


def renotify_interval(department: dict | None, urgency: str) -> timedelta:
    return timedelta(minutes=_minutes(department, "renotify_minutes", urgency, 5))


def _timer(operation_id: str, department: str, awaiting: str, attempt: int, due_at: datetime) -> dict:
    return {"id": f"{operation_id}.{department}.{awaiting}.{attempt}", "due_at": due_at,
            "kind": TIMER_KINDS[awaiting], "data": {"department": department, "awaiting": awaiting,
                                                    "attempt": attempt}}


def _timers_without(timers: list, department: str, *awaiting: str) -> list:
    kinds = {TIMER_KINDS[a] for a in awaiting}
    return [t for t in timers if not ((t.get("data") or {}).get("department") == department
                                      and t["kind"] in kinds)]
