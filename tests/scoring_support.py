"""Helpers for the scoring integration tests: publish hand-made events through the real broker,
wait for the scoring service to have folded them, put the platform clock after November."""
from __future__ import annotations

import random
from datetime import datetime, timezone

from shared import clock
from shared.messaging.publisher import ConfirmedPublisher
from shared.messaging.topology import SERVICE_EXCHANGES
from services.scoring import rules
from tests.helpers import wait_until

# "Now" for the scenario: 2026-12-02 12:00 local, after the month, before December's deadlines.
AS_OF = datetime(2026, 12, 2, 4, 0, tzinfo=timezone.utc)


def clock_offset_seconds() -> float:
    return (AS_OF - datetime.now(timezone.utc)).total_seconds()


def set_clock():
    clock.reset()
    clock.advance(seconds=clock_offset_seconds())


def publish_all(config, events, duplicates: int = 0, seed: int = 5):
    """Publish every event (plus ``duplicates`` random copies) in a shuffled order, each on its
    producer's exchange with its type as routing key, as the producers do."""
    batch = list(events) + random.Random(seed).sample(list(events), duplicates)
    random.Random(seed + 1).shuffle(batch)
    publisher = ConfirmedPublisher(config["AMQP_URI"])
    try:
        for event in batch:
            publisher.publish(SERVICE_EXCHANGES[event["producer"]], event["type"], event,
                              message_id=event["event_id"])
    finally:
        publisher.close()
    return batch


def folded_total(events) -> int:
    """Σ over subjects of the number of events folded: what the facts' ``n`` add up to at the end."""
    unique = {event["event_id"]: event for event in events}
    return sum(len(rules.subjects_of(event)) for event in unique.values())


def wait_for_facts(scoring_db, events, timeout=60):
    expected = folded_total(events)

    def done():
        total = sum(doc["n"] for doc in scoring_db.facts.find({}, {"n": 1}))
        return total == expected or None
    wait_until(done, timeout=timeout, what=f"scoring to fold {expected} subject-events")


def strip_as_of(report: dict) -> dict:
    return {key: value for key, value in report.items() if key != "as_of"}
