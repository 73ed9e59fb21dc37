"""The batching consumer (shared/messaging/batch.py) keeps every promise of the reliable
consumer, on the real broker and store: several messages reach the handler in one call; each is
acked only after the handler returned (a container killed mid-batch loses nothing); a message
whose handler fails is retried and dead-lettered alone while the rest of its batch goes through;
an invalid one is dead-lettered at once; a batch that could not reach the store is run again
whole, not split."""
import time

import eventlet
from pymongo.errors import AutoReconnect

from shared import storage
from shared.messaging.batch import consume_batches
from tests.factories import case_registered
from tests.helpers import drain, publish, queue_depth, wait_until

QUEUE = "scoring.lifecycle-events"


class ToyBatches:
    """Stands on scoring's queue in a throw-away vhost."""
    name = "scoring"
    db = storage.MongoDatabase()

    @consume_batches(QUEUE, max_batch=20, linger_seconds=0.5)
    def handle(self, events):
        self.db.calls.insert_one({"size": len(events)})
        for event in events:
            if event["payload"]["description"] == "boom":
                raise RuntimeError("模拟故障 boom")
        if any(event["payload"]["description"] == "slow" for event in events) \
                and self.db.calls.count_documents({}) == 1:
            eventlet.sleep(30)                           # the container is killed meanwhile
        for event in events:
            self.db.done.update_one({"_id": event["event_id"]}, {"$inc": {"n": 1}}, upsert=True)


class StoreAway:
    """Its first two runs find the store unreachable (as while it restarts)."""
    name = "scoring"
    db = storage.MongoDatabase()

    @consume_batches(QUEUE, max_batch=20, linger_seconds=0.5)
    def handle(self, events):
        self.db.calls.insert_one({"size": len(events)})
        if self.db.calls.count_documents({}) <= 2:
            raise AutoReconnect("127.0.0.1:27017: [Errno 111] Connection refused")
        for event in events:
            self.db.done.update_one({"_id": event["event_id"]}, {"$inc": {"n": 1}}, upsert=True)


def send(config, events):
    for event in events:
        publish(config, "intake.events", "case_registered", event)


def test_several_messages_reach_the_handler_in_one_call_and_are_all_acked(container_factory, config, db):
    container_factory(ToyBatches, config).start()
    events = [case_registered() for _ in range(12)]
    send(config, events)
    wait_until(lambda: db("scoring").done.count_documents({}) == 12 or None, what="every event handled")
    sizes = [doc["size"] for doc in db("scoring").calls.find({})]
    assert sum(sizes) == 12 and len(sizes) < 12 and max(sizes) > 1
    assert all(doc["n"] == 1 for doc in db("scoring").done.find({}))
    wait_until(lambda: queue_depth(config, QUEUE) == 0 or None, what="the queue acked empty")


def test_a_failing_message_is_dead_lettered_alone_and_the_rest_of_its_batch_goes_through(
        container_factory, config, db):
    container_factory(ToyBatches, config).start()
    good = [case_registered() for _ in range(5)]
    bad = case_registered(description="boom")
    send(config, good[:2] + [bad] + good[2:])
    letters = wait_until(lambda: drain(config, f"{QUEUE}.dlq"), what="a dead letter")
    assert [body["event_id"] for body, _ in letters] == [bad["event_id"]]
    _, headers = letters[0]
    assert "RuntimeError: 模拟故障 boom" in headers["x-dead-letter-reason"]
    assert headers["x-error-type"] == "handler_error"
    wait_until(lambda: db("scoring").done.count_documents({}) == 5 or None, what="the good ones")
    assert {doc["_id"] for doc in db("scoring").done.find({})} == {event["event_id"] for event in good}


def test_an_invalid_message_is_dead_lettered_at_once_and_never_reaches_the_handler(
        container_factory, config, db):
    container_factory(ToyBatches, config).start()
    event = case_registered()
    del event["payload"]["owner_unit"]
    send(config, [event, case_registered()])
    body, headers = wait_until(lambda: drain(config, f"{QUEUE}.dlq"), what="a dead letter")[0]
    assert headers["x-error-type"] == "validation" and "owner_unit" in headers["x-dead-letter-reason"]
    wait_until(lambda: db("scoring").done.count_documents({}) == 1 or None, what="the valid one")
    assert db("scoring").done.find_one({"_id": event["event_id"]}) is None


def test_a_batch_is_acked_only_after_the_handler_returned_so_a_kill_loses_nothing(
        container_factory, config, db):
    first = container_factory(ToyBatches, config)
    first.start()
    events = [case_registered(description="slow")] + [case_registered() for _ in range(4)]
    send(config, events)
    wait_until(lambda: db("scoring").calls.count_documents({}) == 1 or None, what="the first batch running")
    first.kill()                                       # mid-batch: nothing of it was acked
    assert db("scoring").done.count_documents({}) == 0
    container_factory(ToyBatches, config).start()
    wait_until(lambda: db("scoring").done.count_documents({}) == 5 or None, timeout=30,
               what="the redelivered batch")
    assert {doc["_id"] for doc in db("scoring").done.find({})} == {event["event_id"] for event in events}
    wait_until(lambda: queue_depth(config, QUEUE) == 0 or None, what="the queue acked empty")


class SlowToFlush(ToyBatches):
    @consume_batches(QUEUE, max_batch=20, linger_seconds=30)
    def handle(self, events):
        eventlet.sleep(2)                                # a slow store: longer than the consumer's wind-down
        for event in events:
            self.db.done.update_one({"_id": event["event_id"]}, {"$inc": {"n": 1}}, upsert=True)


def test_a_graceful_stop_handles_what_waits_for_its_batch_instead_of_requeueing_it(
        container_factory, config, db):
    container = container_factory(SlowToFlush, config)
    container.start()
    events = [case_registered() for _ in range(5)]
    send(config, events)
    wait_until(lambda: queue_depth(config, QUEUE) == 0 or None, what="every message delivered, unacked")
    container.stop()                                   # long before the 30 s linger
    assert db("scoring").done.count_documents({}) == 5
    assert queue_depth(config, QUEUE) == 0


def test_a_batch_that_cannot_reach_the_store_is_run_again_whole(container_factory, config, db):
    """A store restart is nobody's message: the batch is not split into runs of one, and no
    message spends a retry (or is dead-lettered) for it."""
    container_factory(StoreAway, config).start()
    events = [case_registered() for _ in range(10)]
    send(config, events)
    wait_until(lambda: db("scoring").done.count_documents({}) == 10 or None, timeout=30, what="every event handled")
    sizes = [doc["size"] for doc in db("scoring").calls.find({})]
    assert len(sizes) >= 3 and min(sizes[:3]) == sizes[0] > 1     # the first batch three times, whole
    assert all(doc["n"] == 1 for doc in db("scoring").done.find({}))
    wait_until(lambda: queue_depth(config, QUEUE) == 0 or None, what="the queue acked empty")
    assert drain(config, f"{QUEUE}.dlq") == []


class Background:
    """A background consumer (as scoring): a quarter of the time while it is behind."""
    name = "scoring"
    db = storage.MongoDatabase()

    @consume_batches(QUEUE, max_batch=4, linger_seconds=0.3, backlog_share=0.25)
    def handle(self, events):
        begun = time.monotonic()
        eventlet.sleep(0.3)                              # the batch's store work
        self.db.calls.insert_one({"size": len(events), "begun": begun, "ended": time.monotonic()})


def test_a_background_consumer_behind_a_backlog_rests_between_full_batches(container_factory, config, db):
    """While scoring catches up, the store is left to the case path three quarters of the time:
    after each full batch the consumer rests three times as long as the batch took."""
    container_factory(Background, config).start()
    send(config, [case_registered() for _ in range(14)])
    wait_until(lambda: sum(doc["size"] for doc in db("scoring").calls.find({})) == 14 or None, timeout=30,
               what="every event handled")
    calls = sorted(db("scoring").calls.find({}), key=lambda doc: doc["begun"])
    assert [doc["size"] for doc in calls] == [4, 4, 4, 2]
    for before, after in zip(calls, calls[1:]):
        took = before["ended"] - before["begun"]
        assert after["begun"] - before["ended"] >= 0.9 * 3 * took      # rested after each full batch
    assert drain(config, f"{QUEUE}.dlq") == []
