"""MongoDB for nameko services: a connection per container, a database per service, and
aggregates that keep their state change, their outgoing events and the ids of the messages
they have applied in ONE document, changed by ONE atomic update.

That single update is what makes the platform lose nothing and do nothing twice:
- ``_outbox``  events waiting to be published; the relay publishes them with confirms and
               pulls them out afterwards (a crash in between publishes them again: at least once);
- ``_applied`` ids of the messages already applied; a redelivered message matches nothing;
- ``_version`` optimistic concurrency: an update made from a stale read is refused.

Everything here is plain pymongo, so it runs the same on MongoDB and on the embedded store.
"""
from __future__ import annotations

import json
import logging
import os
import threading
from datetime import datetime

from nameko.extensions import DependencyProvider, SharedExtension
from pymongo import MongoClient, monitoring
from pymongo.errors import DuplicateKeyError

from . import clock, metrics
from .config import database_name

log = logging.getLogger(__name__)

SAVED_KEEP = 10000           # saves remembered for the relay per collection (beyond: the poll)
APPLIED_KEEP = 500          # how many applied message ids an aggregate remembers
_saved: dict[str, dict] = {}       # "<db>.<collection>" -> {id: (version, stamped events)}, for the relay
_relay_waiters: set = set()        # each relay loop's Event (green under eventlet)
_clears: list = []                 # each relay's published events waiting for their clear
_timer_waiters: set = set()        # each timer loop's Event


def waiter(kind: str) -> threading.Event:
    """An Event a relay ("relay") or timer ("timers") loop waits on; saves set it."""
    event = threading.Event()
    (_relay_waiters if kind == "relay" else _timer_waiters).add(event)
    return event


def register_clears(clears, present: bool = True):
    """A relay's published events waiting to be cleared (shared.messaging.relay.Clears): a save
    of one of those documents in this process clears them in its own update (see ``update``)."""
    if clears is None:
        return
    if present and clears not in _clears:
        _clears.append(clears)
    elif not present and clears in _clears:
        _clears.remove(clears)


def _waiting_clear(collection, aggregate_id):
    """(the relay's Clears, the published ids) of a document whose clear has not been written."""
    full_name = getattr(collection, "full_name", "")
    for clears in list(_clears):
        ids = clears.waiting(full_name, aggregate_id)
        if ids:
            return clears, list(ids)
    return None, None


def forget_waiter(event):
    _relay_waiters.discard(event)
    _timer_waiters.discard(event)


class Conflict(Exception):
    """The aggregate changed since it was read (optimistic concurrency)."""


def now_utc() -> datetime:
    return clock.now()


# Every store command this process sends, counted by kind (``dcg_store_commands_total``):
# what ``make bench`` reads to give store writes and reads per case and per service.
WRITES = ("insert", "update", "findAndModify", "delete")
READS = ("find", "aggregate")
KINDS = {"insert": "insert", "update": "update", "findAndModify": "findAndModify",
         "findandmodify": "findAndModify", "find": "find", "getMore": "find",
         "aggregate": "aggregate", "count": "aggregate", "delete": "delete"}


class CommandCounter(monitoring.CommandListener):
    """pymongo command monitoring: one Prometheus increment per command started. With
    STORE_QUERY_LOG set (``make bench``), each query shape is also written once to that folder
    (bench/index_check.py checks every one against the indexes with ``explain``)."""

    def started(self, event):
        kind = KINDS.get(event.command_name, "other")
        metrics.STORE_COMMANDS.labels(metrics.PROCESS[0], kind).inc()
        if kind == "other":
            metrics.STORE_OTHER.labels(metrics.PROCESS[0], event.command_name).inc()
        if QUERY_LOG:
            from .query_log import record
            record(QUERY_LOG, metrics.PROCESS[0], event)

    def succeeded(self, event):
        pass

    def failed(self, event):
        pass


QUERY_LOG = os.environ.get("STORE_QUERY_LOG")
COMMANDS = CommandCounter()


# On a MongoDB replica set (the URI names ``replicaSet``), unless the URI says otherwise:
# - w=majority: a write is acknowledged once a majority of members has it, so a primary that
#   steps down (or dies) cannot take an acknowledged write with it (a rollback);
# - retryWrites: a single-document write interrupted by a step-down is sent once more to the
#   new primary, and the server applies it once (its transaction number). A message whose
#   handler failed anyway is redelivered and applied once: its id is in the aggregate's
#   ``_applied`` (see save / apply_once below), written by the same atomic update;
# - readConcernLevel=majority and readPreference=primary: reads come from the primary and see
#   only majority-committed data, so a service reads back what it wrote (a version it checks
#   with ``_version``), also after a step-down, and never a write that a rollback undoes.
REPLICA_SET_DEFAULTS = {"w": "majority", "retryWrites": True, "readConcernLevel": "majority",
                        "readPreference": "primary"}


def client_options(uri: str) -> dict:
    """The replica-set defaults the URI does not set itself (none for a single server)."""
    from pymongo.uri_parser import parse_uri
    options = parse_uri(uri, validate=False, warn=True)["options"]
    if "replicaSet" not in options:
        return {}
    return {key: value for key, value in REPLICA_SET_DEFAULTS.items() if key not in options}


SOCKET_TIMEOUT_MS = 60000   # a store that never answers a command (it was killed mid-command and
                            # restarted, say) fails it after a minute instead of hanging its worker


def mongo_client(uri: str) -> MongoClient:
    options = client_options(uri)
    if "sockettimeoutms" not in uri.lower():
        options["socketTimeoutMS"] = SOCKET_TIMEOUT_MS
    return MongoClient(uri, tz_aware=True, serverSelectionTimeoutMS=5000, connect=False,
                       event_listeners=[COMMANDS], **options)


MIGRATIONS = "migrations"   # per database: one marker document per start-up migration that ran


def migration_marker(name: str, documents: int = 0) -> dict:
    """The record that the migration ``name`` ran (bench/year_load.py writes it for its year)."""
    return {"_id": name, "ran_at": now_utc(), "documents": documents}


def run_once(database, name: str, step) -> int | None:
    """Run ``step()`` (it returns how many documents it changed) unless this database's
    ``migrations`` holds the marker ``name``; then write the marker. None when it had run, so a
    later start costs one read by ``_id``. Two instances starting together may both run the
    step: every step must be idempotent."""
    markers = database[MIGRATIONS]
    if markers.find_one({"_id": name}, {"_id": 1}) is not None:
        return None
    documents = step()
    markers.replace_one({"_id": name}, migration_marker(name, documents), upsert=True)
    if documents:
        log.info("migration %s.%s: %d documents", database.name, name, documents)
    return documents


def outbox_entry(exchange: str, routing_key: str, body: dict, headers: dict | None = None) -> dict:
    """An outgoing message to save with the aggregate. The body must already be JSON: checked
    here, so a bad body fails the handler that made it instead of blocking the relay later."""
    json.dumps(body)
    message_id = body.get("event_id") or body.get("distribution_id")
    return {"id": message_id, "exchange": exchange, "routing_key": routing_key,
            "body": body, "headers": headers or {}}


def stamp(events, aggregate_id, version: int) -> list:
    """The events of one change, each event envelope stamped with its aggregate's id and position
    (the version after the change, and its index in the change): shared/projection.py."""
    stamped = []
    for seq, entry in enumerate(events):
        body = entry.get("body")
        if isinstance(body, dict) and "event_id" in body and "type" in body:
            body = dict(body, aggregate_id=str(aggregate_id), aggregate_version=version, aggregate_seq=seq)
            entry = dict(entry, body=body)
        stamped.append(entry)
    return stamped


def next_due(timers) -> datetime | None:
    return min((entry["due_at"] for entry in timers), default=None)


def due_ms(moment: datetime | None) -> int | None:
    """``_next_due`` as epoch milliseconds (``_due_ms``). Kept for MongoDB-side tooling; the timer
    loops no longer search it (the embedded store serves no range from an index: ``_timer_set``)."""
    return None if moment is None else int(moment.timestamp() * 1000)


def timer_set(moment: datetime | None) -> int | None:
    """``_timer_set``: 1 while the aggregate has a pending timer (``_next_due``), else None. The
    timer loops read ``{_timer_set: 1}`` — one equality on an indexed top-level field, the one
    search the embedded store serves from an index — so a round reads the open work, not every
    document ever stored (shared/timers.py)."""
    return None if moment is None else 1


def wake_relays(collection=None, aggregate_id=None, version=None, entries=()):
    """After a save with events: the relay of this process publishes them right away from
    memory (no poll, no search, no read); its slow poll is only the fallback after a crash.
    ``version``/``entries``: the aggregate's version after the save and the events it added."""
    if collection is not None and _relay_waiters:      # only a process with a relay keeps them
        saved = _saved.setdefault(getattr(collection, "full_name", ""), {})
        if len(saved) >= SAVED_KEEP:                   # no relay for it: the fallback poll covers
            saved.clear()
        _, before = saved.get(aggregate_id, (None, []))
        saved[aggregate_id] = (version, before + list(entries))
    for event in list(_relay_waiters):
        event.set()


def saved_with_events(full_name: str) -> dict:
    """{id: (version, events)} saved with events in that collection since the last call
    (taken, not copied)."""
    return _saved.pop(full_name, None) or {}


def forget_saved(full_name: str, aggregate_id, message_ids) -> None:
    """The relay published these events another way (its fallback search found the document):
    drop them from what this process remembers, so they are not published twice."""
    saved = _saved.get(full_name)
    if not saved or aggregate_id not in saved:
        return
    version, entries = saved[aggregate_id]
    left = [entry for entry in entries if entry["id"] not in set(message_ids)]
    if left:
        saved[aggregate_id] = (version, left)
    else:
        del saved[aggregate_id]


def wake_timers():
    for event in list(_timer_waiters):
        event.set()


def create(collection, document: dict, events=(), applied: str | None = None,
           timers=()) -> bool:
    """Insert a new aggregate with its first events (and timers). False if it exists already."""
    doc = dict(document)
    doc["_timers"] = list(timers)
    doc["_next_due"] = next_due(doc["_timers"])
    doc["_due_ms"] = due_ms(doc["_next_due"])
    doc["_timer_set"] = timer_set(doc["_next_due"])
    doc["_version"] = 1
    doc["_outbox"] = stamp(events, doc.get("_id"), 1)
    doc["_pending"] = bool(events)
    doc["_applied"] = [applied] if applied else []
    try:
        collection.insert_one(doc)
    except DuplicateKeyError:
        return False
    if events:
        wake_relays(collection, doc.get("_id"), 1, doc["_outbox"])
    if doc["_next_due"] is not None:
        wake_timers()
    return True


def update(collection, aggregate_id, version: int, *, set_fields: dict | None = None,
           push: dict | None = None, inc: dict | None = None, events=(),
           applied: str | None = None, timers=None, fold: bool = True) -> bool:
    """Apply one change to an aggregate read at ``version``.

    ``timers``, when given, is the aggregate's whole new list of durable timers (see
    shared.timers): scheduling, cancelling and firing a timer are part of the same update.
    Returns False when ``applied`` was already applied (a duplicate delivery: no effect).
    Raises Conflict when someone else changed the aggregate first.

    When this process's relay has published the document's outbox and not yet cleared it
    (shared.messaging.relay.Clears), this update clears it too: it matches only while the
    outbox holds exactly those published events, and sets the outbox to this change's events
    (one write instead of two). If the outbox holds anything else, the update is made again
    the ordinary way (``fold=False``), and the relay clears later.
    """
    query = {"_id": aggregate_id, "_version": version}
    if applied:
        query["_applied"] = {"$ne": applied}
    change: dict = {"$inc": {"_version": 1, **(inc or {})}}
    sets = dict(set_fields or {})
    if timers is not None:
        sets["_timers"] = list(timers)
        sets["_next_due"] = next_due(sets["_timers"])
        sets["_due_ms"] = due_ms(sets["_next_due"])
        sets["_timer_set"] = timer_set(sets["_next_due"])
        sets["_timer_lease"] = None     # the timers changed: the timer loop's lease is done with
    pushes = {key: {"$each": list(values)} for key, values in (push or {}).items()}
    stamped = stamp(events, aggregate_id, version + 1) if events else []
    if events:
        sets["_pending"] = True
        pushes["_outbox"] = {"$each": stamped}
    if applied:
        pushes["_applied"] = {"$each": [applied], "$slice": -APPLIED_KEEP}
    clears, published = _waiting_clear(collection, aggregate_id) if fold else (None, None)
    if published:
        query.update({"_outbox": {"$size": len(published)}, "_outbox.id": {"$all": published}})
        pushes.pop("_outbox", None)
        sets.update({"_outbox": stamped, "_pending": bool(events)})
    if sets:
        change["$set"] = sets
    if pushes:
        change["$push"] = pushes
    result = collection.update_one(query, change)
    if result.matched_count != 1 and published:      # the outbox holds more: the ordinary way
        return update(collection, aggregate_id, version, set_fields=set_fields, push=push, inc=inc,
                      events=events, applied=applied, timers=timers, fold=False)
    if result.matched_count == 1:
        if published:
            clears.forget(getattr(collection, "full_name", ""), aggregate_id)
        if events:
            wake_relays(collection, aggregate_id, version + 1, stamped)
        if timers is not None:
            wake_timers()
        return True
    current = collection.find_one({"_id": aggregate_id}, {"_version": 1, "_applied": 1})
    if current is None:
        raise KeyError(aggregate_id)
    if applied and applied in current.get("_applied", []):
        return False
    raise Conflict(f"{aggregate_id} is at version {current['_version']}, not {version}")


def retry_on_conflict(change, attempts: int = 8):
    """Run ``change`` (which reads, then updates) again when another worker won the race."""
    for attempt in range(attempts):
        try:
            return change()
        except Conflict:
            if attempt == attempts - 1:
                raise


def already_applied(document: dict | None, message_id: str) -> bool:
    return bool(document) and message_id in document.get("_applied", [])


def public(document: dict | None) -> dict | None:
    """The aggregate without its bookkeeping fields (for RPC answers)."""
    if document is None:
        return None
    return {key: value for key, value in document.items()
            if not key.startswith("_") or key == "_id"}


class MongoConnection(SharedExtension):
    """One MongoClient per container, created in setup() (after eventlet has patched)."""

    _client = None

    @property
    def client(self) -> MongoClient:
        # nameko sets extensions up concurrently: whoever asks first creates the client.
        if self._client is None:
            self._client = mongo_client(self.container.config["MONGO_URI"])
        return self._client

    def stop(self):
        if self._client is not None:
            self._client.close()
            self._client = None

    kill = stop


class MongoDatabase(DependencyProvider):
    """Injects the service's own database (``<DB_PREFIX><service>``)."""

    connection = MongoConnection()

    def __init__(self, name: str | None = None):
        self.name = name

    def setup(self):
        self.database = self.connection.client[
            database_name(self.container.config, self.name or self.container.service_name)]

    def get_dependency(self, worker_ctx):
        return self.database


class PlatformDatabase(MongoDatabase):
    """The shared ``<DB_PREFIX>platform`` database: heartbeats and other cross-service records."""

    def __init__(self):
        super().__init__("platform")
