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


def due_documents(rows, now: datetime, batch: int) -> tuple[list, int, datetime | None]:
    """A timer loop's round, from its read of the documents with pending timers (``_id``,
    ``_next_due``, ``_timer_lease``): the ids due now that no one holds, earliest first, at most
    ``batch``; how many documents are due in all (held by another instance included); and the
    earliest ``_next_due`` still to come (None: nothing later)."""
    due_rows = sorted((row for row in rows if row.get("_next_due") is not None and row["_next_due"] <= now),
                      key=lambda row: row["_next_due"])
    free = [row["_id"] for row in due_rows if row.get("_timer_lease") is None or row["_timer_lease"] < now]
    later = min((row["_next_due"] for row in rows if row.get("_next_due") is not None and row["_next_due"] > now),
                default=None)
    return free[:batch], len(due_rows), later
