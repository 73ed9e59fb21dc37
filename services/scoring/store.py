"""The indicator store on MongoDB (plain pymongo, so it runs on MongoDB and on the embedded store).

Collections of the scoring database (``<DB_PREFIX>scoring``):

- ``events``     the event log, one document per event_id — the source of truth;
- ``facts``      one document per subject (case / report / partner request), each the pure fold
                 of that subject's events (services/scoring/rules.py), with ``n`` = the number of
                 events it was folded from;
- ``bulletins``  the rendered monthly bulletins (HTML + PDF), for download over HTTP;
- ``recomputes`` one record per run of the recompute command.

Live path: ``record_batch`` inserts a batch of events in one command (a duplicate hits the unique
_id and is skipped), then refolds their subjects from the log (one indexed read per subject: an
event has at most one subject of each kind, kept in the top-level field ``subject_<kind>``;
the embedded store serves an equality on such a field from its index but walks the whole log
for an ``$in``, an equality on the ``subjects`` array or on a dotted path) and writes, in one bulk
write, each fact only if it was folded from MORE
events than the stored one (``n`` grows with the set of events, so a slower worker that read
fewer events can never overwrite a newer fact). The recompute path folds the same subjects from
the same log with the same function.
"""
from __future__ import annotations

import time
from collections import defaultdict

from eventlet import GreenPool
from pymongo import ASCENDING, ReplaceOne, UpdateOne
from pymongo.errors import BulkWriteError

from shared import storage

from . import evaluation, indicators, practices, practices_data, roles, rules
from .periods import months_in

EVENTS, FACTS, REPLAY, BULLETINS, RUNS = "events", "facts", "facts_replay", "bulletins", "recomputes"
SUBJECT_FIELDS_MIGRATION = "subject_fields"   # label_subjects's marker (storage.run_once)
BATCH = 200
READS_AT_ONCE = 8      # a batch's subjects are read this many at a time (one indexed read each)
# the live consumer's largest batch: a backlog drains in batches this big, and a case's events in
# one batch share one read and one fact write, so the bigger the batch, the fewer store trips per
# event (at 100 a batch scoring fell behind the chaos load after a fault and never caught up)
MAX_BATCH = 500
# behind a backlog (full batches) scoring runs this share of the time and rests the rest, so that
# new reports are still registered and dispatched while it catches up (shared/messaging/batch.py)
BACKLOG_SHARE = 0.5


def ensure_indexes(db, facts: str = FACTS) -> None:
    events = db[EVENTS]
    if "subjects_1" in events.index_information():     # the old multikey index: it made every
        events.drop_index("subjects_1")                  # refresh walk the log (issue 19)
    for field in rules.SUBJECT_FIELDS:
        events.create_index(field)
    events.create_index("correlation_id")
    label_subjects(db)
    collection = db[facts]
    for field in ("due_at", "registered_at", "received_at", "sent_at", "effective_deadline",
                  "dispatches.at", "returns.at", "verifications.at", "supervisions.at", "callback.at"):
        collection.create_index([("kind", ASCENDING), (field, ASCENDING)])


def locator(district):
    def locate(lon, lat):
        try:
            return district.locate(lon, lat)
        except (ValueError, TypeError):
            return None
    return locate


def label_subjects(db) -> int:
    """Once per store: give the events logged before the ``subject_<kind>`` fields existed those
    fields (one walk of the log, then a marker document; later starts cost one read by _id)."""
    def step():
        updates = [update for entry in db[EVENTS].find({}, {"type": 1, "payload": 1, "subjects": 1,
                                                            **{field: 1 for field in rules.SUBJECT_FIELDS}})
                   for update in [relabel(entry)] if update]
        for index in range(0, len(updates), BATCH):
            db[EVENTS].bulk_write(updates[index:index + BATCH], ordered=False)
        return len(updates)
    return storage.run_once(db, SUBJECT_FIELDS_MIGRATION, step) or 0


def relabel(entry: dict) -> UpdateOne | None:
    """The update that gives a logged event its current subjects (``rules.subjects_of`` and the
    ``subject_<kind>`` fields), or None when it has them."""
    subjects = rules.subjects_of(entry)
    fields = rules.subject_fields(subjects)
    if subjects == entry.get("subjects") and all(entry.get(field) == fields.get(field)
                                                 for field in rules.SUBJECT_FIELDS):
        return None
    update = {"$set": {"subjects": subjects, **fields}}
    stale = {field: "" for field in rules.SUBJECT_FIELDS if field not in fields and field in entry}
    if stale:
        update["$unset"] = stale
    return UpdateOne({"_id": entry["_id"]}, update)


# ---------------------------------------------------------------------------- live path
def record(db, event: dict, district) -> bool:
    """Log one validated event and refresh the facts of its subjects. True if it was new."""
    return bool(record_batch(db, [event], district))


def record_batch(db, events: list[dict], district) -> int:
    """Log a batch of validated events and refresh the facts of their subjects: one insert (per
    BATCH events), one read per subject and one write of facts for the whole batch. Returns how
    many events were new.

    An event logged before (a redelivery) hits the unique _id and is skipped; its subjects are
    refreshed anyway — the first delivery may have died between the log and the facts."""
    now = storage.now_utc()
    entries = list({entry["_id"]: entry for entry in (rules.log_entry(event, now) for event in events)}.values())
    new = len(entries)
    for index in range(0, len(entries), BATCH):             # the embedded store chokes on very large ones
        try:
            db[EVENTS].insert_many(entries[index:index + BATCH], ordered=False)
        except BulkWriteError as exc:
            errors = exc.details.get("writeErrors") or []
            if any(error.get("code") != 11000 for error in errors) or exc.details.get("writeConcernErrors"):
                raise
            new -= len(errors)
    refresh(db, {subject for entry in entries for subject in entry["subjects"]}, district)
    return new


def refresh(db, subjects, district, facts: str = FACTS) -> None:
    """Fold ``subjects`` again from the log (one indexed read each) and store their facts (one write)."""
    subjects = sorted(subjects)
    if not subjects:
        return
    def events_of(subject):
        return subject, list(db[EVENTS].find({rules.subject_field(subject): subject}))
    groups = dict(GreenPool(READS_AT_ONCE).imap(events_of, subjects))    # the store works on several
    locate = locator(district)
    write_facts(db[facts], [rules.fold(subject, groups[subject], locate) for subject in subjects if groups[subject]])


def _guard(fact: dict, allow_equal: bool) -> dict:
    return {"_id": fact["_id"], "n": {"$lte": fact["n"]} if allow_equal else {"$lt": fact["n"]}}


def write_facts(collection, facts: list[dict], allow_equal: bool = False) -> int:
    """Store facts in one bulk write, each unless the stored one was folded from more events (or
    as many, unless ``allow_equal``): n grows with the set of events, so a slower worker that
    read fewer events never overwrites a newer fact. Returns how many were written."""
    if not facts:
        return 0
    try:
        result = collection.bulk_write([ReplaceOne(_guard(fact, allow_equal), fact, upsert=True) for fact in facts],
                                       ordered=False)
    except BulkWriteError as exc:
        errors = exc.details.get("writeErrors") or []
        if any(error.get("code") != 11000 for error in errors) or exc.details.get("writeConcernErrors"):
            raise
        return len(facts) - len(errors)       # the others: a newer fact is already there
    return result.matched_count + result.upserted_count


# ---------------------------------------------------------------------------- queries
def facts_for_period(db, period, facts: str = FACTS) -> list[dict]:
    """Every fact that may count in the period (indicators.compute filters exactly)."""
    start, end = period.start, period.end
    in_range = {"$gte": start, "$lt": end}
    case_query = {"kind": "case", "$or": [
        {"due_at": in_range}, {"registered_at": in_range},
        {"dispatches": {"$elemMatch": {"at": in_range}}},
        {"returns": {"$elemMatch": {"at": in_range}}},
        {"verifications": {"$elemMatch": {"at": in_range}}},
        {"supervisions": {"$elemMatch": {"at": in_range}}},
        {"callback.at": in_range},
        # exposure candidates: past their deadline before the end, not closed before the start
        {"effective_deadline": {"$lt": end}, "closed_at": None},
        {"effective_deadline": {"$lt": end}, "closed_at": {"$gte": start}},
    ]}
    found = {doc["_id"]: doc for doc in db[facts].find(case_query)}
    for query in ({"kind": "report", "received_at": in_range},
                  {"kind": "request", "sent_at": in_range},
                  {"kind": "review", "period_start": in_range}):
        for doc in db[facts].find(query):
            found[doc["_id"]] = doc
    return [found[key] for key in sorted(found)]


def compute_report(db, period, settings, district, as_of, facts: str = FACTS) -> dict:
    """The period's report, its evaluation by role (roles.py) and, for a quarter or a year, the
    score composed from its months (evaluation.py)."""
    report = indicators.compute(period, facts_for_period(db, period, facts), settings, district, as_of)
    report["roles"] = roles.evaluate(report, district, settings)
    report["practices"] = practices.section(report, practices_data.events_721(db, period), district, settings)
    if period.kind in ("quarter", "year"):
        monthly = [(month.first_day.month, month.label,
                    indicators.compute(month, facts_for_period(db, month, facts), settings, district, as_of))
                   for month in months_in(period) if month.start < rules._utc(as_of)]
        report["composed"] = evaluation.compose(monthly, settings["periods"]["month_weights"],
                                                getattr(district, "units", None))
    return report


# ---------------------------------------------------------------------------- recompute
def rebuild(db, district, target: str = FACTS) -> dict:
    """Fold every subject again from the whole event log into ``target``.

    ``target == "facts"`` repairs the live facts in place (guarded like the live path, so an
    event arriving meanwhile is never lost); any other name is dropped and rebuilt from scratch
    (used by ``--check`` to compare replay with live)."""
    started = time.perf_counter()
    locate = locator(district)
    groups: dict[str, list] = defaultdict(list)
    events = 0
    relabels = []
    for entry in db[EVENTS].find({}):
        events += 1
        update = relabel(entry)
        if update:
            relabels.append(update)
        for subject in rules.subjects_of(entry):
            groups[subject].append(entry)
    for index in range(0, len(relabels), BATCH):
        db[EVENTS].bulk_write(relabels[index:index + BATCH], ordered=False)
    relabelled = len(relabels)
    folded = [rules.fold(subject, entries, locate) for subject, entries in sorted(groups.items())]
    changed = 0
    if target == FACTS:
        before = {doc["_id"]: doc for doc in db[FACTS].find({})}
        different = [fact for fact in folded if before.get(fact["_id"]) != fact]
        for index in range(0, len(different), BATCH):               # guarded, BATCH per trip
            write_facts(db[FACTS], different[index:index + BATCH], allow_equal=True)
        changed = len(different)
        stale = [key for key in before if key not in groups]
        if stale:
            db[FACTS].delete_many({"_id": {"$in": stale}})
        changed += len(stale)
    else:
        db[target].drop()
        for index in range(0, len(folded), BATCH):         # small batches: the embedded store
            db[target].insert_many(folded[index:index + BATCH])   # chokes on very large ones
        ensure_indexes(db, target)
    seconds = round(time.perf_counter() - started, 3)
    return {"events": events, "subjects": len(folded), "changed": changed,
            "relabelled": relabelled, "target": target, "seconds": seconds}


def compare_facts(db, left: str = FACTS, right: str = REPLAY) -> list[str]:
    """Ids of the facts that differ between two collections."""
    a = {doc["_id"]: doc for doc in db[left].find({})}
    b = {doc["_id"]: doc for doc in db[right].find({})}
    return sorted(key for key in a.keys() | b.keys() if a.get(key) != b.get(key))


# ---------------------------------------------------------------------------- bulletins
def save_bulletin(db, month: str, html: str, pdf: bytes, generated_at) -> None:
    db[BULLETINS].replace_one({"_id": month}, {"_id": month, "html": html, "pdf": pdf,
                                               "generated_at": generated_at}, upsert=True)


def load_bulletin(db, month: str) -> dict | None:
    return db[BULLETINS].find_one({"_id": month})


def list_bulletins(db) -> list[dict]:
    return [{"month": doc["_id"], "generated_at": doc["generated_at"]}
            for doc in db[BULLETINS].find({}, {"generated_at": 1}).sort("_id", -1)]
