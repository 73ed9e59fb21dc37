"""The case list's default view (GET /api/cases without a filter), found by keys the store
serves by equality — pure: the day key, the day list's entry and the page.

The embedded store sorts and counts a collection by walking all of it, and a district files
tens of thousands of cases a year. So every dispatched case is also listed under the UTC day
of its dispatch, in ``case_days`` (``_id``: the day and one of SHARDS shards chosen by the
case id, ``2026-12-02#07``; ``cases``: ``{id, at}`` entries), written just before the case
itself with ``$addToSet``. A day is split in shards because the store rewrites the whole
document on every ``$addToSet`` and compares the new entry with each one held: with one
document a day holding 1,000 entries (the chaos runs file 1,100 cases in one day) an update
took 260–320 ms of the embedded store's time (measured beside the chaos load). A delivery seen twice lists the case twice, with a later ``at``; the earliest
entry is the case's own (the one written before the case was created), so the page keeps the
earliest. The unfiltered list reads the day documents (SHARDS per day with cases, and the one
unsharded document per day stores written before the shards still hold), pages them here and
reads the page's cases by ``_id``. A filtered list queries the cases themselves
(service.list_cases)."""
from __future__ import annotations

import zlib
from datetime import datetime, timezone

DAYS = "case_days"
SHARDS = 16


def day_key(moment: datetime) -> str:
    """The UTC day of a dispatch: ``YYYY-MM-DD`` (a naive time is taken as UTC)."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(timezone.utc)
    return moment.date().isoformat()


def listing(case_id: str, dispatched_at: datetime) -> tuple[str, dict]:
    """Where a case is listed: its day document's ``_id`` (the day and the case's shard) and the
    entry added to it."""
    shard = zlib.crc32(case_id.encode("utf-8")) % SHARDS
    return f"{day_key(dispatched_at)}#{shard:02d}", {"id": case_id, "at": dispatched_at}


def by_day(cases) -> dict[str, list[dict]]:
    """The day lists' entries of ``(case_id, dispatched_at)`` pairs, grouped by day document
    (a day's shard)."""
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
