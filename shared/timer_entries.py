"""A durable timer as data (pure): the entries an aggregate keeps in ``_timers``. The loop that
fires them is shared/timers.py; rules modules build and drop timers with these functions."""
from __future__ import annotations

from datetime import datetime


def timer(timer_id: str, due_at: datetime, kind: str, **data) -> dict:
    return {"id": timer_id, "due_at": due_at, "kind": kind, "data": data}


def pending(document: dict) -> list[dict]:
    return list(document.get("_timers") or [])


def without(document_or_timers, *timer_ids_or_kinds) -> list[dict]:
    """The timer list minus the timers with these ids or kinds."""
    timers = document_or_timers if isinstance(document_or_timers, list) else pending(document_or_timers)
    drop = set(timer_ids_or_kinds)
    return [entry for entry in timers if entry["id"] not in drop and entry["kind"] not in drop]


def due(document: dict, now: datetime) -> list[dict]:
    return sorted((entry for entry in pending(document) if entry["due_at"] <= now),
                  key=lambda entry: entry["due_at"])
