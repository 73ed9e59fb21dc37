"""The gateway's live-stream records (collection ``live_events``; rules: services/gateway/live.py).

Each lifecycle event the pages are told about is kept as a record numbered 1, 2, 3 … (the
number ``n`` is the SSE ``id``; the record's ``_id`` is the number as 12 digits, ``key(n)``: the
embedded store checks a NUMERIC ``_id`` — or any numeric unique key — against every document of
the collection on each insert, a string ``_id`` by its storage key). A batch of events costs ONE
insert:

- the numbers continue from the newest record; this process remembers the next one, and takes a
  number only once the one before it is in the store (it wrote it, or read it as the newest), so
  records appear in order and without gaps — a stream reading "after N" misses nothing;
- another gateway that took a number first makes the insert stop at that record (unique _id):
  read the newest again and go on from there;
- ``event_id`` is unique too: an event delivered twice stops the insert at its record, which is
  skipped, and the rest goes on.

The newest ``KEEP`` records are kept. Every search is one the embedded store serves from an
index: the newest record and "after N" by the numeric index on ``n``, an operation's opening by
its own scalar key ``opening_of`` (not ``{operation_id, type}``: two equalities walk the
collection there).
"""
from __future__ import annotations

import threading

from pymongo.errors import BulkWriteError, DuplicateKeyError

from shared import storage

from .live import record

KEEP = 50000
RENUMBER_MIGRATION = "live_events_n"   # _renumber_old's marker (storage.run_once)
_LOCK = threading.Lock()            # one append at a time per process
_NEXT: dict[str, int] = {}          # per collection: the number this process gives next
_INDEXED: set[str] = set()


def key(number: int) -> str:
    """A record's ``_id``: its number as 12 digits (sorts as the number does)."""
    return f"{number:012d}"


def ensure_indexes(events) -> None:
    """Once per process: event_id unique (records kept before the index: the first stays), the
    number ``n``, an operation's opening by ``opening_of``; records kept before with a numeric
    ``_id`` are given theirs."""
    if events.full_name in _INDEXED:
        return
    _renumber_old(events)
    try:
        events.create_index("event_id", unique=True, name="event_id_unique")
    except DuplicateKeyError:
        seen = set()
        for doc in events.find({}, {"event_id": 1}).sort("_id", 1):
            if doc.get("event_id") in seen:
                events.delete_one({"_id": doc["_id"]})
            seen.add(doc.get("event_id"))
        events.create_index("event_id", unique=True, name="event_id_unique")
    events.create_index("n")
    events.create_index("opening_of")
    if "operation_id_1_type_1" in events.index_information():
        events.drop_index("operation_id_1_type_1")           # replaced by opening_of
    _INDEXED.add(events.full_name)


def _renumber_old(events) -> None:
    """Once per store: records kept before ``n`` existed (a numeric ``_id``) become the same
    record under ``key(n)``; then a marker (later starts: one read by _id)."""
    def step():
        done = 0
        for doc in list(events.find({"n": {"$exists": False}})):
            number = doc.pop("_id")
            if not isinstance(number, int):
                continue
            doc.update(_id=key(number), n=number)
            if doc.get("type") == "joint_operation_opened" and doc.get("operation_id"):
                doc["opening_of"] = doc["operation_id"]
            events.replace_one({"_id": doc["_id"]}, doc, upsert=True)
            events.delete_one({"_id": number})
            done += 1
        return done
    storage.run_once(events.database, RENUMBER_MIGRATION, step)


def items_for(events, batch: list[dict], to_local=None) -> list[dict]:
    """The records for a batch of lifecycle events, in order (None-records dropped). An event that
    names only its operation takes units and departments from the operation's opening: from the
    same batch, or from the store (one indexed read per operation not opened in the batch)."""
    opened_here = {(event.get("payload") or {}).get("operation_id") for event in batch
                   if event.get("type") == "joint_operation_opened"}
    wanted = {(event.get("payload") or {}).get("operation_id") for event in batch
              if event.get("type") != "joint_operation_opened"} - opened_here - {None}
    openings = {}
    for operation_id in sorted(wanted):
        doc = events.find_one({"opening_of": operation_id})
        if doc is not None:
            openings[operation_id] = doc
    items = []
    for event in batch:
        operation_id = (event.get("payload") or {}).get("operation_id")
        opening = openings.get(operation_id) if event.get("type") != "joint_operation_opened" else None
        item = record(event, opening, to_local)
        if item is None:
            continue
        if item["type"] == "joint_operation_opened" and operation_id:
            item["opening_of"] = operation_id
            openings.setdefault(operation_id, item)
        items.append(item)
    return items


def keep(events, items: list[dict]) -> list[int]:
    """Append ``items`` after the newest record, in one insert (module docstring). Returns the
    numbers given (an event kept before gets none)."""
    if not items:
        return []
    ensure_indexes(events)
    name, numbers, pending = events.full_name, [], list(items)
    with _LOCK:
        while pending:
            if name not in _NEXT:
                _NEXT[name] = newest(events) + 1
            first = _NEXT[name]
            error = None
            try:
                events.insert_many([dict(item, _id=key(first + index), n=first + index)
                                    for index, item in enumerate(pending)],
                                   ordered=True)
                inserted = len(pending)
            except BulkWriteError as exc:
                errors = exc.details.get("writeErrors") or []
                if not errors or errors[0].get("code") != 11000:
                    raise
                inserted, error = exc.details.get("nInserted", 0), errors[0]
            numbers += range(first, first + inserted)
            _NEXT[name] = first + inserted
            if inserted:
                _NEWEST[name] = max(_NEWEST.get(name, 0), first + inserted - 1)
            if error is None:
                break
            if "event_id" in (error.get("keyPattern") or {}) or "event_id_unique" in error.get("errmsg", ""):
                pending = pending[inserted + 1:]          # delivered twice: kept already
            else:
                _NEXT.pop(name, None)                      # the number was taken: read the newest
                pending = pending[inserted:]
    for number in numbers:
        if number % 1000 == 0:
            events.delete_many({"n": {"$lte": number - KEEP}})
    return numbers


def after(events, last: int, limit: int = 200) -> list[dict]:
    """The records after number ``last``, in order, at most ``limit``: each read by its ``_id``
    (the numbers have no gaps, so the next one is ``key(last + 1)``; an equality on ``_id`` is
    the embedded store's fastest read, where a range on ``n`` sorted by it is filtered over the
    whole collection). A stream that resumes before the oldest kept record is moved up to it
    once, by ``resume_from``."""
    found = []
    while len(found) < limit:
        doc = events.find_one({"_id": key(last + 1)})
        if doc is None:
            break
        found.append(doc)
        last = doc["n"]
    return found


def resume_from(events, last: int) -> int:
    """Where a stream resuming after ``last`` (its Last-Event-ID) goes on: there, or just before
    the oldest kept record if the ones after ``last`` were trimmed."""
    return max(last, newest(events) - KEEP)


_NEWEST: dict[str, int] = {}       # per collection: the newest number this process has seen


def newest(events) -> int:
    """The number of the newest record (0: none yet). The first call in a process sorts the
    collection (the embedded store reads every record for it); later ones go on from the newest
    seen, looking the next numbers up by ``_id`` (the numbers have no gaps): forward in doubling
    steps, then halving — a few reads however many records other gateways added meanwhile."""
    name = events.full_name
    if name not in _NEWEST:
        doc = events.find_one({}, {"n": 1}, sort=[("n", -1)])
        _NEWEST[name] = doc["n"] if doc else 0
        return _NEWEST[name]

    def kept(number):
        return events.find_one({"_id": key(number)}, {"_id": 1}) is not None
    low, step = _NEWEST[name], 1
    while kept(low + step):
        low, step = low + step, step * 2
    high = low + step                                      # low is kept (or the start), high is not
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (middle, high) if kept(middle) else (low, middle)
    _NEWEST[name] = low
    return low
