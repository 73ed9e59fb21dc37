"""scoring service: an idempotent event log, indicators derived from it."""
from __future__ import annotations

from nameko.rpc import rpc
from pymongo.errors import DuplicateKeyError

from shared import storage
from shared.health import Heartbeat
from shared.messaging.consumer import consume_reliably

from . import rules


class ScoringService:
    name = "scoring"

    db = storage.MongoDatabase()
    heartbeat = Heartbeat()

    @consume_reliably("scoring.lifecycle-events")
    def on_lifecycle_event(self, event: dict):
        try:
            self.db.events.insert_one({
                "_id": event["event_id"], "type": event["type"], "producer": event["producer"],
                "occurred_at": event["occurred_at"], "correlation_id": event["correlation_id"],
                "unit": rules.unit_of(event), "payload": event["payload"],
                "recorded_at": storage.now_utc()})
        except DuplicateKeyError:
            pass                                        # the same event again: counted once

    @rpc
    def summary(self, correlation_id: str | None = None) -> dict:
        match = {"correlation_id": correlation_id} if correlation_id else {}
        counts = list(self.db.events.aggregate([
            {"$match": match}, {"$group": {"_id": "$type", "n": {"$sum": 1}}}]))
        return rules.summarise(counts)

    @rpc
    def events_for(self, correlation_id: str) -> list:
        return [storage.public(doc) for doc in
                self.db.events.find({"correlation_id": correlation_id}).sort("occurred_at", 1)]
