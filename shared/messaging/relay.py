"""The outbox relay: publishes the events aggregates saved in their ``_outbox``.

Runs as a background thread inside each service. A document is leased before its events are
published, so several instances of a service never relay the same document at once; a lease
left by a killed instance expires and another instance takes over. Each event is published
with confirms and ``mandatory``; only then is it pulled from the outbox.
"""
from __future__ import annotations

import logging
from datetime import datetime, timedelta

from nameko.extensions import DependencyProvider

from .. import metrics, storage
from .publisher import ConfirmedPublisher

log = logging.getLogger(__name__)

LEASE = timedelta(seconds=10)   # how long a relay may hold a document before another takes over
BATCH = 100


def relay_collection(collection, publisher: ConfirmedPublisher, lease=LEASE, service="") -> int:
    """Publish every pending outbox of one collection. Returns how many events went out.

    A document whose events cannot be published now keeps them (and is tried again when its
    lease runs out); the other documents are not held up by it."""
    sent = 0
    failures = 0
    pending = [doc["_id"] for doc in collection.find({"_pending": True}, {"_id": 1}).limit(BATCH)]
    for aggregate_id in pending:
        try:
            sent += _relay_document(collection, aggregate_id, publisher, lease, service)
        except Exception as exc:  # noqa: BLE001
            failures += 1
            log.warning("outbox relay: %s %s not published yet: %s", collection.name, aggregate_id, exc)
    if failures and not sent:
        raise RelayStalled(f"{failures} outbox documents in {collection.name} could not be published")
    return sent


class RelayStalled(Exception):
    pass


def _relay_document(collection, aggregate_id, publisher, lease, service="") -> int:
    now = storage.now_utc()
    doc = collection.find_one_and_update(
        {"_id": aggregate_id, "_pending": True,
         "$or": [{"_lease": None}, {"_lease": {"$lt": now}}]},
        {"$set": {"_lease": now + lease}},
        projection={"_outbox": 1}, return_document=True)
    if doc is None:
        return 0              # another instance holds it, or it was emptied meanwhile
    published = []
    try:
        for entry in doc.get("_outbox", []):
            publisher.publish(entry["exchange"], entry["routing_key"], entry["body"],
                              headers=entry.get("headers") or {}, message_id=entry["id"],
                              correlation_id=entry["body"].get("correlation_id"))
            published.append(entry["id"])
            _observe_lag(service, entry)
    finally:
        collection.update_one({"_id": aggregate_id},
                              {"$pull": {"_outbox": {"id": {"$in": published}}},
                               "$set": {"_lease": None}})
        collection.update_one({"_id": aggregate_id, "_outbox": {"$size": 0}},
                              {"$set": {"_pending": False}})
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
        self.poll = float(config.get("OUTBOX_POLL_SECONDS", 0.5))
        self.lease = timedelta(seconds=float(config.get("OUTBOX_LEASE_SECONDS", 10)))
        self.database = self.connection.client[
            database_name(config, self.database_name or self.container.service_name)]
        self.publisher = ConfirmedPublisher(config["AMQP_URI"])
        self._running = False
        self._gt = None

    def start(self):
        self._running = True
        self._gt = self.container.spawn_managed_thread(self._run, identifier="outbox-relay")

    def stop(self):
        self._running = False
        storage.wake_relays()
        if self._gt is not None:
            self._gt.wait()
        self.publisher.close()

    def kill(self):
        self._running = False
        if self._gt is not None:
            self._gt.kill()
        self.publisher.close()

    def relay_once(self) -> int:
        service = self.container.service_name
        sent = sum(relay_collection(self.database[name], self.publisher, self.lease, service)
                   for name in self.collections)
        metrics.OUTBOX_PENDING.labels(service).set(
            sum(self.database[name].count_documents({"_pending": True}) for name in self.collections))
        return sent

    def _run(self):
        backoff = self.poll
        while self._running:
            storage._wake_relays.clear()
            try:
                sent = self.relay_once()
                backoff = self.poll
            except Exception as exc:  # noqa: BLE001 - broker or store away: keep trying
                log.warning("outbox relay: %s; retrying in %.1fs", exc, backoff)
                sent = 0
                backoff = min(backoff * 2, 10.0)
            if not sent:
                storage._wake_relays.wait(backoff)

    def get_dependency(self, worker_ctx):
        return self
