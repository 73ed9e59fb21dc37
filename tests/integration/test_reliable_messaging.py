"""The messaging guarantees every service relies on, against the real broker and store:
a failing handler is retried, then dead-lettered with its reason; bad input is dead-lettered at
once; nothing is acked and dropped; a duplicate delivery has no second effect."""
import json

from nameko.rpc import rpc

from shared import storage
from shared.messaging import topology
from shared.messaging.consumer import consume_reliably
from tests.factories import case_registered
from tests.helpers import drain, publish, queue_depth, wait_until

QUEUE = "dispatch.case-registered"


class ToyConsumer:
    """Stands on the dispatch queue in a throw-away vhost; fails on request."""
    name = "dispatch"
    db = storage.MongoDatabase()

    @consume_reliably(QUEUE)
    def handle(self, event):
        payload = event["payload"]
        attempts = self.db.attempts.find_one_and_update(
            {"_id": event["event_id"]}, {"$inc": {"n": 1}}, upsert=True, return_document=True)["n"]
        if payload["description"] == "boom":
            raise RuntimeError("模拟故障 boom")
        if payload["description"] == "flaky" and attempts == 1:
            raise ConnectionError("store briefly away")
        storage.create(self.db.done, {"_id": payload["case_id"]}, applied=event["event_id"])

    @rpc
    def ping(self):
        return "pong"


def start(container_factory, config):
    container = container_factory(ToyConsumer, config)
    container.start()
    return container


def dead_letters(config):
    return drain(config, f"{QUEUE}.dlq")


def test_handler_error_is_retried_then_dead_lettered_with_reason(container_factory, config, db):
    start(container_factory, config)
    event = case_registered(description="boom")
    publish(config, "intake.events", "case_registered", event)

    letters = wait_until(lambda: dead_letters(config), what="a dead letter")
    assert len(letters) == 1
    body, headers = letters[0]
    assert body["event_id"] == event["event_id"]                  # the original, unchanged
    assert "RuntimeError: 模拟故障 boom" in headers["x-dead-letter-reason"]
    assert "after 3 attempts" in headers["x-dead-letter-reason"]
    assert headers["x-origin-queue"] == QUEUE
    assert headers["x-origin-exchange"] == "intake.events"
    assert headers["x-origin-routing-key"] == "case_registered"
    assert headers["x-error-type"] == "handler_error"
    assert "Traceback" in headers["x-error-details"]
    # two delayed retries, then the dead letter: three attempts in all
    assert db("dispatch").attempts.find_one({"_id": event["event_id"]})["n"] == 3
    assert queue_depth(config, QUEUE) == 0


def test_transient_error_succeeds_on_retry_and_nothing_is_dead_lettered(container_factory, config, db):
    start(container_factory, config)
    event = case_registered(description="flaky")
    publish(config, "intake.events", "case_registered", event)
    case_id = event["payload"]["case_id"]
    wait_until(lambda: db("dispatch").done.find_one({"_id": case_id}), what="the retried handler")
    assert db("dispatch").attempts.find_one({"_id": event["event_id"]})["n"] == 2
    assert dead_letters(config) == []


def test_invalid_message_is_dead_lettered_at_once_with_field_errors(container_factory, config, db):
    start(container_factory, config)
    event = case_registered()
    del event["payload"]["owner_unit"]
    event["payload"]["urgency"] = "whenever"
    publish(config, "intake.events", "case_registered", event)

    body, headers = wait_until(lambda: dead_letters(config), what="a dead letter")[0]
    assert headers["x-error-type"] == "validation"
    reason = headers["x-dead-letter-reason"]
    assert "owner_unit" in reason and "urgency" in reason
    assert db("dispatch").attempts.count_documents({}) == 0       # never reached the handler


def test_body_that_is_not_json_is_dead_lettered_not_looped(container_factory, config):
    start(container_factory, config)
    publish(config, "intake.events", "case_registered", b"{not json", content_type="application/json")
    publish(config, "intake.events", "case_registered", b"plain words", content_type="text/plain")
    letters = []
    wait_until(lambda: letters.extend(dead_letters(config)) or len(letters) >= 2, what="dead letters")
    assert sorted(headers["x-error-type"] for _, headers in letters) == ["decode_error", "decode_error"]
    assert {body for body, _ in letters} == {"{not json", "plain words"}   # kept as sent
    assert queue_depth(config, QUEUE) == 0


def test_bytes_that_are_not_text_or_come_without_headers_are_dead_lettered_and_the_service_lives(
        container_factory, config, db):
    """Found by `make fuzz`: a body that is not UTF-8 killed the service, and a text body sent
    without a content encoding could not be parked (it was requeued for ever)."""
    container = start(container_factory, config)
    odd = [(b"\xff\xfe\x00", "text/plain", "utf-8"), (b"\xff\xfe\x00", "", ""),
           (b"{not json", "", ""), ("纯文本".encode(), "", "binary")]
    for body, content_type, encoding in odd:
        publish(config, "intake.events", "case_registered", body, content_type=content_type,
                content_encoding=encoding)
    letters = []
    wait_until(lambda: letters.extend(dead_letters(config)) or len(letters) >= len(odd), what="dead letters")
    assert len(letters) == len(odd)
    assert all(headers["x-error-type"] in ("decode_error", "validation") and headers["x-dead-letter-reason"]
               for _, headers in letters)
    assert not container._died.ready()
    event = case_registered()                                       # and it still works
    publish(config, "intake.events", "case_registered", event)
    wait_until(lambda: db("dispatch").done.find_one({"_id": event["payload"]["case_id"]}), what="a good one")
    assert queue_depth(config, QUEUE) == 0


def test_json_sent_without_content_type_is_accepted(container_factory, config, db):
    """A pika publisher that forgets content_type still gets its message handled."""
    start(container_factory, config)
    event = case_registered()
    publish(config, "intake.events", "case_registered", json.dumps(event).encode(),
            content_type="", content_encoding="")
    wait_until(lambda: db("dispatch").done.find_one({"_id": event["payload"]["case_id"]}),
               what="the handler")
    assert dead_letters(config) == []


def test_duplicate_delivery_has_no_second_effect(container_factory, config, db):
    start(container_factory, config)
    event = case_registered()
    for _ in range(3):
        publish(config, "intake.events", "case_registered", event)
    case_id = event["payload"]["case_id"]
    wait_until(lambda: db("dispatch").attempts.find_one({"_id": event["event_id"], "n": 3}),
               what="three deliveries")
    done = list(db("dispatch").done.find({"_id": case_id}))
    assert len(done) == 1 and done[0]["_version"] == 1


def test_unroutable_publish_is_an_error_not_a_silent_drop(config):
    from shared.messaging.publisher import ConfirmedPublisher, Unroutable
    import pytest
    publisher = ConfirmedPublisher(config["AMQP_URI"])
    try:
        with pytest.raises(Unroutable):
            publisher.publish("intake.inbound", "nobody.listens.here", {"x": 1})
    finally:
        publisher.close()


def test_topology_is_idempotent_and_every_consumer_has_a_dlq(config):
    first = topology.apply(config)
    second = topology.apply(config)
    assert first == second
    for spec in topology.consumer_queues():
        assert f"{spec.name}.dlq" in first
        assert queue_depth(config, f"{spec.name}.dlq") == 0


def test_events_saved_before_a_crash_are_published_when_the_service_comes_back(
        container_factory, config, db):
    """The process died after saving its change and before publishing: the outbox still
    holds the event, and the relay of the restarted service publishes it."""
    from services.dispatch.service import DispatchService
    from shared.messaging.outbox import event as _event
    from tests.helpers import observer
    wire = observer(config, "dispatch.events", "case_dispatched")
    storage.create(db("dispatch").cases, {"_id": "C-crashed", "state": "dispatched"}, [
        _event("case_dispatched", {"case_id": "C-crashed", "unit_id": "street.tianshengjie",
                                   "case_kind": "committed", "dispatched_at": storage.now_utc(),
                                   "deadline": storage.now_utc()}, "C-crashed", "C-crashed.dispatched.1")])
    container_factory(DispatchService, config).start()
    got = wait_until(lambda: drain(config, wire), what="the relayed event")
    assert [body["event_id"] for body, _ in got] == ["C-crashed.dispatched.1"]
    wait_until(lambda: db("dispatch").cases.find_one({"_id": "C-crashed", "_pending": False}),
               what="the outbox to be emptied")
