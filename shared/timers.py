"""Durable timers: warnings, 督办, check-in deadlines, re-notifications, follow-up checks.

A timer is kept IN its aggregate document (``_timers``; ``_next_due`` is the earliest), so it
is scheduled in the same atomic update as the state change that needs it, and survives any
restart. ``@timer_due("cases")`` marks the service method that fires them: a background loop
finds documents whose ``_next_due`` has passed, leases them in one update (so several instances
never fire the same document at once), and runs the method once per due timer with
``(aggregate_id, timer)``. The method applies the effect and removes the timer in one
``storage.update(..., timers=timers.without(doc, timer), applied=timer["id"])`` — so a timer
that fired while the service was down fires after the restart, and exactly once.
"""
from __future__ import annotations

import logging
import uuid
from datetime import datetime, timedelta, timezone

import eventlet
from bson import Int64
from eventlet.event import Event
from nameko.extensions import Entrypoint

from . import metrics, storage
from .config import database_name

log = logging.getLogger(__name__)
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
NONE_MS = Int64(0)   # a 64-bit bound: the embedded store's index misses int64 keys against a 32-bit 0
BATCH = 100          # documents per search
CONCURRENCY = 20     # documents fired at once (a Monday 08:30 backlog fires in batches)


from .timer_entries import due, pending, timer, without  # noqa: F401,E402  (the timer list, pure)


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
        try:                                  # the search for due timers is served by an index
            self.collection.create_index("_due_ms")
        except Exception as exc:  # noqa: BLE001 - the store may still be starting
            log.warning("could not index %s._due_ms: %s", self.collection_name, exc)
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

    def _backfill(self):
        """Documents saved before ``_due_ms`` existed get it once, at start (one search by date)."""
        for row in self.collection.find({"_next_due": {"$gt": EPOCH}, "_due_ms": None}, {"_next_due": 1}):
            self.collection.update_one({"_id": row["_id"], "_next_due": row["_next_due"]},
                                       {"$set": {"_due_ms": storage.due_ms(row["_next_due"])}})

    def _run(self):
        # Idle, the loop costs one find per TIMER_POLL_SECONDS: it sleeps until the earliest
        # due timer it saw, and a save that changes timers wakes it (shared.storage.wake_timers).
        backfilled = False
        while self._running:
            self._wake.clear()
            wait = self.poll
            try:
                if not backfilled:
                    self._backfill()
                    backfilled = True
                fired, wait = self.fire_due()
            except Exception as exc:  # noqa: BLE001 - the store may be away; try again
                log.warning("timers on %s: %s", self.collection_name, exc)
                wait = min(self.poll, 5.0)
            self._wake.wait(max(0.0, wait))

    def fire_due(self):
        """Fire every timer due now, BATCH documents at a time, their workers concurrently.
        Returns (how many ran successfully, seconds until the next due timer or the poll).

        Three store trips per batch before the workers run, whatever its size: the search, ONE
        update that leases every due document of the batch that nobody else holds (stamped with
        this round's holder id), and ONE search for the documents this round now holds, with
        their timers. (Was a findAndModify per document.)"""
        now = storage.now_utc()
        now_ms = storage.due_ms(now)
        fired = 0
        rows = list(self.collection.find({"_due_ms": {"$gt": NONE_MS}}, {"_id": 1, "_next_due": 1, "_due_ms": 1})
                    .sort("_due_ms", 1).limit(BATCH + 1))
        due_rows = [row for row in rows if row["_due_ms"] <= now_ms][:BATCH]
        candidates = [row["_id"] for row in due_rows]
        later = [row["_next_due"] for row in rows if row["_due_ms"] > now_ms]
        leased = self._lease(due_rows[-1]["_due_ms"], now) if due_rows else []
        pool = eventlet.GreenPool(CONCURRENCY)
        for count in pool.imap(lambda doc: self._fire_document(doc, now), leased):
            fired += count
        wait = self.poll
        if later:
            wait = min(wait, (later[0] - now).total_seconds())
        if candidates:               # leased elsewhere or failed: look again when a retry is due
            wait = min(wait, self.retry_after.total_seconds())
        if len(candidates) == BATCH and fired:
            wait = 0.0               # a backlog (Monday 08:30): the next batch at once
        return fired, wait

    def _lease(self, last_due_ms, now) -> list:
        """Lease the batch: the documents due up to ``last_due_ms`` (the batch's last) that no one
        holds; returns the leased ones with their timers. Both trips select by the ``_due_ms``
        index; the holder id tells this round's leases from another instance's."""
        holder = uuid.uuid4().hex
        batch = {"_due_ms": {"$gt": NONE_MS, "$lte": min(last_due_ms, storage.due_ms(now))}}
        free = {"$or": [{"_timer_lease": None}, {"_timer_lease": {"$lt": now}}]}
        self.collection.update_many({**batch, **free},
                                    {"$set": {"_timer_lease": now + self.lease, "_timer_holder": holder}})
        return list(self.collection.find({**batch, "_timer_holder": holder}, {"_timers": 1}))

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
