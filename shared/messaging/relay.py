"""The outbox relay: publishes the events aggregates saved in their ``_outbox``.

Runs as a background thread inside each service. A save with events wakes it and names the
document and its events (shared.storage.wake_relays), so it publishes right after the save,
from memory. Clearing what went out is not urgent (a crash before the clear only publishes
those events again: at least once, as always), so the clears wait up to
``OUTBOX_CLEAR_SECONDS`` (1 s) and the clears of every document published meanwhile go in ONE
update command per collection (``clear_published``): one store trip per collection per second
at most, instead of one per save. Searching for pending documents is only the fallback: at
start (what a crash left), after a failure, and every ``OUTBOX_POLL_SECONDS`` (30 s), always
after the waiting clears are written; what it finds is leased (findAndModify, which reads the
outbox too) and cleared with one update. A document is leased before its events are
published, so several instances of a service never relay the same document at once; a lease
left by a killed instance expires and another instance takes over. Each event is published
with confirms and ``mandatory``; only then is it pulled from the outbox.
"""
from __future__ import annotations

import logging
import time
from datetime import datetime, timedelta

from nameko.extensions import DependencyProvider
from pymongo import UpdateOne

from .. import metrics, storage
from .publisher import ConfirmedPublisher

log = logging.getLogger(__name__)

LEASE = timedelta(seconds=10)   # how long a relay may hold a document before another takes over
BATCH = 100
CLEAR_SECONDS = 1.0             # how long published events may wait in the outbox to be cleared


def relay_collection(collection, publisher: ConfirmedPublisher, lease=LEASE, service="", ids=None,
                     to_clear: "Clears | None" = None) -> int:
    """Publish the pending outboxes of one collection. Returns how many events went out.

    ``ids``: the documents this process just saved with events (published right away, no
    search; what went out is noted in ``to_clear``, or cleared at once without it); None:
    search for every pending document (the fallback poll after a crash).
    A document whose events cannot be published now keeps them (and is tried again when its
    lease runs out); the other documents are not held up by it."""
    sent = 0
    failures = 0
    if ids is None:
        ids = [doc["_id"] for doc in collection.find({"_pending": True}, {"_id": 1}).limit(BATCH)]
    for aggregate_id in ids:
        try:
            if isinstance(ids, dict):        # saved by this process: its events are in memory
                clears = to_clear if to_clear is not None else Clears()
                sent += _relay_saved(collection, aggregate_id, *ids[aggregate_id], publisher, service, clears)
                if to_clear is None:
                    clears.flush(collection)
            else:
                sent += _relay_document(collection, aggregate_id, publisher, lease, service)
        except Exception as exc:  # noqa: BLE001
            failures += 1
            log.warning("outbox relay: %s %s not published yet: %s", collection.name, aggregate_id, exc)
    if failures and not sent:
        raise RelayStalled(f"{failures} outbox documents in {collection.name} could not be published")
    return sent


class RelayStalled(Exception):
    pass


def _relay_saved(collection, aggregate_id, _version, entries, publisher, service="", clears=None) -> int:
    """Publish the events this process just saved, from memory (no store trip), and note what
    went out in ``clears``, written later with the other documents' clears (Clears.flush)."""
    published = []
    try:
        _publish(publisher, entries, service, published)
    finally:
        if published:
            clears.add(collection.full_name, aggregate_id, published)
    return len(published)


class Clears:
    """Published events waiting to be cleared from their outboxes, per collection (full name)
    and document.

    Each document's clear is conditional on the outbox's content, never on its version (a
    copy update without events may have changed the document since, and must not leave it
    pending for the fallback poll): ``_outbox`` is emptied only while it holds exactly the
    published events (``$size`` and ``$all`` on their ids); otherwise (saved again with new
    events, older events still waiting, a publish that failed half-way) only the published
    events are pulled and the rest stays pending for the next save's round or the fallback
    poll. Another instance's fallback poll may publish the same events before the clear: at
    least once, as always. A save of the document in this process before the clear does the
    clear itself, in its own update (shared.storage.update: ``waiting_clear``/``forget``)."""

    def __init__(self):
        self.pending: dict[str, dict] = {}       # "<db>.<collection>" -> {id: [published event ids]}
        self.since: float | None = None          # when the oldest waiting clear was noted

    def add(self, full_name, aggregate_id, ids):
        self.pending.setdefault(full_name, {}).setdefault(aggregate_id, []).extend(ids)
        if self.since is None:
            self.since = time.monotonic()

    def waiting(self, full_name, aggregate_id) -> list | None:
        return (self.pending.get(full_name) or {}).get(aggregate_id)

    def forget(self, full_name, aggregate_id):
        """Cleared by the document's own save (shared.storage.update)."""
        docs = self.pending.get(full_name)
        if docs is not None:
            docs.pop(aggregate_id, None)
        self._tidy()

    def _tidy(self):
        for name in [name for name, docs in self.pending.items() if not docs]:
            del self.pending[name]
        if not self.pending:
            self.since = None

    def __len__(self):
        return sum(len(docs) for docs in self.pending.values())

    def due(self, now: float, linger: float) -> float | None:
        """Seconds until the waiting clears should be written (0: now); None: nothing waits."""
        if self.since is None:
            return None
        return 0.0 if len(self) >= BATCH else max(0.0, self.since + linger - now)

    def flush(self, collection) -> None:
        """Write the waiting clears of one collection: ONE update command, three statements
        per document: the full clear; else the pull of its published events; and an outbox
        left empty by that pull is no longer pending."""
        docs = self.pending.pop(collection.full_name, None)
        self._tidy()
        if not docs:
            return
        ops = []
        for aggregate_id, ids in docs.items():
            ops += [UpdateOne({"_id": aggregate_id, "_outbox": {"$size": len(ids)}, "_outbox.id": {"$all": ids}},
                              {"$set": {"_outbox": [], "_pending": False}}),
                    UpdateOne({"_id": aggregate_id, "_outbox.id": {"$in": ids}},
                              {"$pull": {"_outbox": {"id": {"$in": ids}}}}),
                    UpdateOne({"_id": aggregate_id, "_outbox": {"$size": 0}, "_pending": True},
                              {"$set": {"_pending": False}})]
        try:
            collection.bulk_write(ops, ordered=True)
        except Exception:
            for aggregate_id, ids in docs.items():       # written with the next round's
                self.add(collection.full_name, aggregate_id, ids)
            raise


def _publish(publisher, entries, service, published: list) -> None:
    """Publish outbox entries in order (with confirms); ``published`` collects the ids that went,
    so the caller clears exactly those even when a later one fails."""
    for entry in entries:
        publisher.publish(entry["exchange"], entry["routing_key"], entry["body"],
                          headers=entry.get("headers") or {}, message_id=entry["id"],
                          correlation_id=entry["body"].get("correlation_id"))
        published.append(entry["id"])
        _observe_lag(service, entry)


def _relay_document(collection, aggregate_id, publisher, lease, service="") -> int:
    """Two store trips: the lease (findAndModify, which also reads the outbox) and one update
    that clears what was published."""
    now = storage.now_utc()
    doc = collection.find_one_and_update(
        {"_id": aggregate_id, "_pending": True,
         "$or": [{"_lease": None}, {"_lease": {"$lt": now}}]},
        {"$set": {"_lease": now + lease}},
        projection={"_outbox": 1, "_version": 1}, return_document=True)
    if doc is None:
        return 0              # another instance holds it, or it was emptied meanwhile
    outbox = doc.get("_outbox", [])
    published = []
    try:
        _publish(publisher, outbox, service, published)
    finally:
        storage.forget_saved(collection.full_name, aggregate_id, published)
        cleared = False
        if len(published) == len(outbox):
            # Unchanged since the lease (same version): the outbox is exactly what went out.
            cleared = collection.update_one(
                {"_id": aggregate_id, "_version": doc.get("_version")},
                {"$set": {"_outbox": [], "_pending": False, "_lease": None}}).matched_count == 1
        if not cleared:
            # Saved again meanwhile (its new events stay, and that save woke us again) or a
            # publish failed: pull only what went out; the document stays pending.
            collection.update_one({"_id": aggregate_id},
                                  {"$pull": {"_outbox": {"id": {"$in": published}}},
                                   "$set": {"_lease": None}})
    return len(published)


def _observe_lag(service, entry):
    metrics.OUTBOX_PUBLISHED.labels(service).inc()
    created = entry["body"].get("occurred_at") or entry["body"].get("sent_at")
    if created:
        try:
            moment = datetime.fromisoformat(created.replace("Z", "+00:00"))
        except (TypeError, ValueError):
            return
        metrics.OUTBOX_LAG.labels(service).observe(max(0.0, (storage.now_utc() - moment).total_seconds()))


class OutboxRelay(DependencyProvider):
    """Declare on a service with the collections whose aggregates carry an outbox."""

    connection = storage.MongoConnection()

    def __init__(self, *collections: str, database: str | None = None):
        self.collections = collections
        self.database_name = database

    def setup(self):
        from ..config import database_name
        config = self.container.config
        self.poll = float(config.get("OUTBOX_POLL_SECONDS", 30))   # fallback only: saves wake it
        self.linger = float(config.get("OUTBOX_CLEAR_SECONDS", CLEAR_SECONDS))
        self.clears = Clears()
        self.lease = timedelta(seconds=float(config.get("OUTBOX_LEASE_SECONDS", 10)))
        self.database = self.connection.client[
            database_name(config, self.database_name or self.container.service_name)]
        self.publisher = ConfirmedPublisher(config["AMQP_URI"])
        for name in self.collections:      # the fallback search is served by an index
            try:
                self.database[name].create_index("_pending")
            except Exception as exc:  # noqa: BLE001 - the store may still be starting
                log.warning("could not index %s._pending: %s", name, exc)
        self._running = False
        self._gt = None

    def start(self):
        self._running = True
        self._wake = storage.waiter("relay")
        storage.register_clears(self.clears)
        self._gt = self.container.spawn_managed_thread(self._run, identifier="outbox-relay")

    def stop(self):
        self._running = False
        self._wake.set()
        if self._gt is not None:
            self._gt.wait()
        storage.forget_waiter(self._wake)
        storage.register_clears(self.clears, False)
        self.publisher.close()

    def kill(self):
        self._running = False
        storage.forget_waiter(getattr(self, "_wake", None))
        storage.register_clears(getattr(self, "clears", None), False)
        if self._gt is not None:
            self._gt.kill()
        self.publisher.close()

    def relay_once(self, poll: bool = True) -> int:
        """Publish what this process saved since the last round; write the waiting clears once
        they are due; with ``poll`` (after a start, a failure, or every OUTBOX_POLL_SECONDS)
        write every waiting clear first, then search every pending document."""
        service = self.container.service_name
        sent = pending = 0
        for name in self.collections:
            collection = self.database[name]
            saved = storage.saved_with_events(collection.full_name)
            if saved:
                sent += relay_collection(collection, self.publisher, self.lease, service, ids=saved,
                                         to_clear=self.clears)
        if poll or self.clears.due(time.monotonic(), self.linger) == 0:
            self.flush_clears()
        if poll:
            for name in self.collections:
                collection = self.database[name]
                ids = [doc["_id"] for doc in collection.find({"_pending": True}, {"_id": 1}).limit(BATCH)]
                pending += len(ids)
                if ids:
                    sent += relay_collection(collection, self.publisher, self.lease, service, ids=ids)
            metrics.OUTBOX_PENDING.labels(service).set(pending)    # at most BATCH per collection
        return sent

    def flush_clears(self):
        """Write every waiting clear (one update command per collection)."""
        for name in self.collections:
            self.clears.flush(self.database[name])

    def _run(self):
        backoff = min(self.poll, 1.0)
        next_poll = 0.0                      # the first round searches (a crash may have left some)
        while self._running:
            self._wake.clear()
            poll = time.monotonic() >= next_poll
            try:
                sent = self.relay_once(poll)
                if poll:             # a full batch: search again at once, else at the next poll
                    next_poll = 0.0 if sent else time.monotonic() + self.poll
                backoff = min(self.poll, 1.0)
            except Exception as exc:  # noqa: BLE001 - broker or store away: keep trying
                log.warning("outbox relay: %s; retrying in %.1fs", exc, backoff)
                sent = 0
                next_poll = 0.0              # search again once it works
                self._wake.wait(backoff)
                backoff = min(backoff * 2, 10.0)
                continue
            if not sent:
                now = time.monotonic()
                clear_in = self.clears.due(now, self.linger)
                wait = max(0.0, next_poll - now)
                self._wake.wait(wait if clear_in is None else min(wait, clear_in))
        try:                                 # a graceful stop leaves no published event waiting
            self.flush_clears()
        except Exception as exc:  # noqa: BLE001 - the fallback poll publishes them again
            log.warning("outbox relay: clears not written at stop: %s", exc)

    def get_dependency(self, worker_ctx):
        return self
