"""Durable timers: warnings, 督办, check-in deadlines, re-notifications, follow-up checks.

A timer is kept IN its aggregate document (``_timers``; ``_next_due`` is the earliest, and
``_timer_set`` is 1 while there is one), so it is scheduled in the same atomic update as the
state change that needs it, and survives any restart. ``@timer_due("cases")`` marks the service
method that fires them: a background loop fires the due timers, and runs the method once per due
timer with ``(aggregate_id, timer)``. The method applies the effect and removes the timer in one
``storage.update(..., timers=timers.without(doc, timer), applied=timer["id"])`` — so a timer
that fired while the service was down fires after the restart, and exactly once.

A round costs three store commands, whatever the collection holds (issue 19: on the embedded
store only ONE equality on an indexed top-level field, or on ``_id``, is served by an index;
ranges, ``$in``, ``$or`` and two conditions together walk the whole collection):
1. ``find({_timer_set: 1})`` (indexed): every document with a pending timer — the open work, not
   the closed cases of a year — with ``_next_due`` and ``_timer_lease`` only; which are due and
   free, and when to look again, is picked here (``timer_entries.due_documents``);
2. ONE ``update`` command leasing them: a statement per document selected by ``_id`` alone (the
   store's by-id path), whose change is a pipeline that stamps this round's holder id and lease
   ONLY IF the document still has a due timer and nobody holds it (checked atomically on the
   document, so several instances never fire the same document at once);
3. ``find({_timer_holder: <this round>})`` (indexed): the documents this round holds, with their
   timers as they are now.
Documents saved before ``_timer_set`` existed get it once per store and collection, at the
first start (``migrate``, marker ``migrations/timer_set.<collection>``).
"""
from __future__ import annotations

import logging
import uuid
from datetime import datetime, timedelta, timezone

import eventlet
from eventlet.event import Event
from nameko.extensions import Entrypoint
from pymongo import UpdateOne

from . import metrics, storage
from .config import database_name

log = logging.getLogger(__name__)
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
NEVER = datetime(9999, 1, 1, tzinfo=timezone.utc)
BATCH = 100          # documents leased per round
WRITES = 200         # statements per update command of the migration
CONCURRENCY = 20     # documents fired at once (a Monday 08:30 backlog fires in batches)


from .timer_entries import due, due_documents, pending, timer, without  # noqa: F401,E402  (pure)


def lease_change(now: datetime, until: datetime, holder: str) -> list:
    """The pipeline update that leases one document to ``holder`` until ``until`` — only if it
    still has a timer due at ``now`` and nobody holds it; otherwise it leaves it as it is."""
    free = {"$and": [{"$eq": ["$_timer_set", 1]},
                     {"$lte": [{"$ifNull": ["$_next_due", NEVER]}, now]},
                     {"$lt": [{"$ifNull": ["$_timer_lease", EPOCH]}, now]}]}
    return [{"$set": {"_timer_holder": {"$cond": [free, holder, "$_timer_holder"]},
                      "_timer_lease": {"$cond": [free, until, "$_timer_lease"]}}}]


# ``_timer_set`` from the document's own ``_next_due`` (so a save racing the migration is kept)
TIMER_SET_FROM_NEXT_DUE = [{"$set": {"_timer_set": {
    "$cond": [{"$eq": [{"$ifNull": ["$_next_due", None]}, None]}, None, 1]}}}]


def migrate(collection) -> int:
    """Once per store and collection: give the documents saved before ``_timer_set`` existed
    that field (one walk of the collection, then a marker in ``migrations``, ``_id``
    ``timer_set.<collection>``; later starts cost one read by ``_id``). Each document is written
    by ``_id`` alone, from its own current ``_next_due``. Returns how many were written.

    A service of the previous version still running after the marker is written saves timers
    without ``_timer_set`` (they would not fire): upgrade all instances together."""
    def step():
        ids = [row["_id"] for row in collection.find({}, {"_next_due": 1, "_timer_set": 1})
               if (row.get("_next_due") is not None) != (row.get("_timer_set") == 1)]
        for start in range(0, len(ids), WRITES):
            collection.bulk_write([UpdateOne({"_id": doc_id}, TIMER_SET_FROM_NEXT_DUE)
                                   for doc_id in ids[start:start + WRITES]], ordered=False)
        return len(ids)
    return storage.run_once(collection.database, migration_name(collection.name), step) or 0


def migration_name(collection_name: str) -> str:
    """The marker of ``migrate`` for one collection (storage.run_once)."""
    return f"timer_set.{collection_name}"


class TimerDue(Entrypoint):
    """``@timer_due("<collection>")``: fire the due timers of that collection's aggregates."""

    def __init__(self, collection: str, poll_seconds: float | None = None, **kwargs):
        self.collection_name = collection
        self.poll_override = poll_seconds
        super().__init__(**kwargs)

    connection = storage.MongoConnection()

    def setup(self):
        config = self.container.config
        self.poll = float(self.poll_override or config.get("TIMER_POLL_SECONDS", 30.0))
        self.lease = timedelta(seconds=float(config.get("TIMER_LEASE_SECONDS", 30)))
        self.retry_after = timedelta(seconds=float(config.get("TIMER_RETRY_SECONDS", 5)))
        self.collection = self.connection.client[
            database_name(config, self.container.service_name)][self.collection_name]
        try:                                  # the round's two searches are served by an index
            self.collection.create_index("_timer_set")
            self.collection.create_index("_timer_holder")
        except Exception as exc:  # noqa: BLE001 - the store may still be starting
            log.warning("could not index %s's timer fields: %s", self.collection_name, exc)
        self._running = False
        self._gt = None

    def start(self):
        self._running = True
        self._wake = storage.waiter("timers")
        self._gt = self.container.spawn_managed_thread(self._run, identifier=f"timers:{self.collection_name}")

    def stop(self):
        self._running = False
        storage.forget_waiter(getattr(self, "_wake", None))
        if self._gt is not None:
            self._gt.kill()

    kill = stop

    def _run(self):
        # Idle, the loop costs one find per TIMER_POLL_SECONDS: it sleeps until the earliest
        # due timer it saw, and a save that changes timers wakes it (shared.storage.wake_timers).
        migrated = False
        while self._running:
            self._wake.clear()
            wait = self.poll
            try:
                if not migrated:
                    migrate(self.collection)
                    migrated = True
                fired, wait = self.fire_due()
            except Exception as exc:  # noqa: BLE001 - the store may be away; try again
                log.warning("timers on %s: %s", self.collection_name, exc)
                wait = min(self.poll, 5.0)
            self._wake.wait(max(0.0, wait))

    def fire_due(self):
        """Fire every timer due now, BATCH documents at a time, their workers concurrently.
        Returns (how many ran successfully, seconds until the next due timer or the poll).

        Three store commands per round before the workers run, whatever the collection holds:
        the read of the documents with pending timers, ONE update command leasing the due and
        free ones (a statement by ``_id`` each), and the read of those this round now holds."""
        now = storage.now_utc()
        rows = list(self.collection.find({"_timer_set": 1}, {"_next_due": 1, "_timer_lease": 1}))
        free, due_count, later = due_documents(rows, now, BATCH)
        leased = self._lease(free, now) if free else []
        fired = 0
        pool = eventlet.GreenPool(CONCURRENCY)
        for count in pool.imap(lambda doc: self._fire_document(doc, now), leased):
            fired += count
        wait = self.poll
        if later is not None:
            wait = min(wait, (later - now).total_seconds())
        if due_count:                # held elsewhere or failed: look again when a retry is due
            wait = min(wait, self.retry_after.total_seconds())
        if len(free) == BATCH and due_count > BATCH and fired:
            wait = 0.0               # a backlog (Monday 08:30): the next batch at once
        return fired, wait

    def _lease(self, ids, now) -> list:
        """Lease these documents to this round (a fresh holder id) in ONE update command, a
        statement by ``_id`` each (``lease_change`` re-checks due and free on the document), and
        return the ones this round holds, with their timers."""
        holder = uuid.uuid4().hex
        change = lease_change(now, now + self.lease, holder)
        self.collection.bulk_write([UpdateOne({"_id": doc_id}, change) for doc_id in ids], ordered=False)
        return list(self.collection.find({"_timer_holder": holder}, {"_timers": 1}))

    def _fire_document(self, doc, now) -> int:
        fired = 0
        aggregate_id = doc["_id"]
        failed = False
        for entry in due(doc, now):
            if self._fire(aggregate_id, entry):
                fired += 1
            else:
                failed = True
        if failed:      # a success released the lease in its own update (storage.update)
            self.collection.update_one({"_id": aggregate_id},
                                       {"$set": {"_timer_lease": now + self.retry_after}})
        return fired

    def _fire(self, aggregate_id, entry) -> bool:
        done = Event()

        def handle_result(worker_ctx, result=None, exc_info=None):
            done.send(exc_info is None)
            return result, exc_info

        self.container.spawn_worker(self, (aggregate_id, entry), {},
                                    context_data={"correlation_id": str(aggregate_id)},
                                    handle_result=handle_result)
        ok = done.wait()
        service = self.container.service_name
        metrics.TIMERS_FIRED.labels(service, "ok" if ok else "failed").inc()
        if ok:
            metrics.TIMER_LAG.labels(service).observe(
                max(0.0, (storage.now_utc() - entry["due_at"]).total_seconds()))
        if not ok:
            log.warning("timer %s on %s failed; will retry", entry["id"], aggregate_id)
        return ok


timer_due = TimerDue.decorator
__all__ = ["timer", "timer_due", "without", "due", "pending"]
