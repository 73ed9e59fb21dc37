"""The case list's default view (GET /api/cases without a filter), found by keys the store
serves by equality — pure: the day key, the day list's entry and the page.

The embedded store sorts and counts a collection by walking all of it, and a district files
tens of thousands of cases a year. So every dispatched case is also listed under the UTC day
of its dispatch, in ``case_days`` (``_id``: the day; ``cases``: ``{id, at}`` entries), written
just before the case itself with ``$addToSet``. A delivery seen twice lists the case twice,
with a later ``at``; the earliest entry is the case's own (the one written before the case was
created), so the page keeps the earliest. The unfiltered list reads the day documents (one per
day with cases: about 365 a year, however many cases), pages them here and reads the page's
cases by ``_id``. A filtered list queries the cases themselves (service.list_cases)."""
from __future__ import annotations

from datetime import datetime, timezone

DAYS = "case_days"


def day_key(moment: datetime) -> str:
    """The UTC day of a dispatch: ``YYYY-MM-DD`` (a naive time is taken as UTC)."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(timezone.utc)
    return moment.date().isoformat()


def listing(case_id: str, dispatched_at: datetime) -> tuple[str, dict]:
    """Where a case is listed: its day document's ``_id`` and the entry added to it."""
    return day_key(dispatched_at), {"id": case_id, "at": dispatched_at}


def by_day(cases) -> dict[str, list[dict]]:
    """The day lists' entries of ``(case_id, dispatched_at)`` pairs, grouped by day document."""
    days: dict[str, list[dict]] = {}
    for case_id, dispatched_at in cases:
        day, entry = listing(case_id, dispatched_at)
        days.setdefault(day, []).append(entry)
    return days


def page(day_docs, number: int, per_page: int) -> tuple[int, list[str]]:
    """(total, the case ids of page ``number``): newest dispatch first, ties by id, as the
    filtered list sorts (``dispatched_at`` descending, ``_id`` ascending)."""
    first: dict[str, datetime] = {}
    for doc in day_docs:
        for entry in doc.get("cases") or []:
            known = first.get(entry["id"])
            if known is None or entry["at"] < known:
                first[entry["id"]] = entry["at"]
    ordered = sorted(sorted(first), key=first.__getitem__, reverse=True)   # stable: ids stay ascending
    start = (number - 1) * per_page
    return len(ordered), ordered[start:start + per_page]
