"""The gateway's live-stream records (collection ``live_events``; rules: services/gateway/live.py).

Each lifecycle event the pages are told about is kept as a record numbered 1, 2, 3 … (the
number is the record's ``_id`` and the SSE ``id``). A batch of events costs ONE insert:

- the numbers continue from the newest record; this process remembers the next one, and takes a
  number only once the one before it is in the store (it wrote it, or read it as the newest), so
  records appear in order and without gaps — a stream reading "after N" misses nothing;
- another gateway that took a number first makes the insert stop at that record (unique _id):
  read the newest again and go on from there;
- ``event_id`` is unique too: an event delivered twice stops the insert at its record, which is
  skipped, and the rest goes on.

The newest ``KEEP`` records are kept.
"""
from __future__ import annotations

import threading

from pymongo.errors import BulkWriteError, DuplicateKeyError

from .live import record

KEEP = 50000
_LOCK = threading.Lock()            # one append at a time per process
_NEXT: dict[str, int] = {}          # per collection: the number this process gives next
_INDEXED: set[str] = set()


def ensure_indexes(events) -> None:
    """Once per process: event_id unique (records kept before the index: the first stays), and
    the operation's opening found by its id."""
    if events.full_name in _INDEXED:
        return
    try:
        events.create_index("event_id", unique=True, name="event_id_unique")
    except DuplicateKeyError:
        seen = set()
        for doc in events.find({}, {"event_id": 1}).sort("_id", 1):
            if doc.get("event_id") in seen:
                events.delete_one({"_id": doc["_id"]})
            seen.add(doc.get("event_id"))
        events.create_index("event_id", unique=True, name="event_id_unique")
    events.create_index([("operation_id", 1), ("type", 1)])
    _INDEXED.add(events.full_name)


def items_for(events, batch: list[dict], to_local=None) -> list[dict]:
    """The records for a batch of lifecycle events, in order (None-records dropped). An event that
    names only its operation takes units and departments from the operation's opening: from the
    same batch, or from the store (one read for the whole batch)."""
    wanted = {(event.get("payload") or {}).get("operation_id") for event in batch
              if event.get("type") != "joint_operation_opened"} - {None}
    openings = {}
    if wanted:
        openings = {doc["operation_id"]: doc for doc in events.find(
            {"operation_id": {"$in": sorted(wanted)}, "type": "joint_operation_opened"})}
    items = []
    for event in batch:
        operation_id = (event.get("payload") or {}).get("operation_id")
        opening = openings.get(operation_id) if event.get("type") != "joint_operation_opened" else None
        item = record(event, opening, to_local)
        if item is None:
            continue
        if item["type"] == "joint_operation_opened" and operation_id:
            openings.setdefault(operation_id, item)
        items.append(item)
    return items


def keep(events, items: list[dict]) -> list[int]:
    """Append ``items`` after the newest record, in one insert (module docstring). Returns the
    numbers given (an event kept before gets none)."""
    if not items:
        return []
    ensure_indexes(events)
    key, numbers, pending = events.full_name, [], list(items)
    with _LOCK:
        while pending:
            if key not in _NEXT:
                newest = events.find_one({}, {"_id": 1}, sort=[("_id", -1)])
                _NEXT[key] = (newest["_id"] if newest else 0) + 1
            first = _NEXT[key]
            error = None
            try:
                events.insert_many([dict(item, _id=first + index) for index, item in enumerate(pending)],
                                   ordered=True)
                inserted = len(pending)
            except BulkWriteError as exc:
                errors = exc.details.get("writeErrors") or []
                if not errors or errors[0].get("code") != 11000:
                    raise
                inserted, error = exc.details.get("nInserted", 0), errors[0]
            numbers += range(first, first + inserted)
            _NEXT[key] = first + inserted
            if error is None:
                break
            if "event_id" in (error.get("keyPattern") or {}) or "event_id_unique" in error.get("errmsg", ""):
                pending = pending[inserted + 1:]          # delivered twice: kept already
            else:
                _NEXT.pop(key, None)                      # the number was taken: read the newest
                pending = pending[inserted:]
    for number in numbers:
        if number % 1000 == 0:
            events.delete_many({"_id": {"$lte": number - KEEP}})
    return numbers
