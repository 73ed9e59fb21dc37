"""Found by `make fuzz` (issue 15): a deeply nested AMQP body killed every consuming service
(RecursionError escaped the consumer). It is now dead-lettered with a reason, and the service lives."""
import json

from tests.factories import case_registered
from tests.helpers import publish, queue_depth, wait_until
from tests.integration.test_reliable_messaging import QUEUE, dead_letters, start


def test_deeply_nested_and_oversized_bodies_are_dead_lettered_and_the_service_lives(container_factory, config, db):
    container = start(container_factory, config)
    levels = 100_000
    hostile = [(b"[" * levels + b"]" * levels, "application/json"),
               (('{"a":' * levels + "1" + "}" * levels).encode(), ""),
               (json.dumps(case_registered())[:-1].encode() + b', "deep": ' + b"[" * levels + b"]" * levels + b"}", "")]
    for body, content_type in hostile:
        publish(config, "intake.events", "case_registered", body, content_type=content_type, content_encoding="")
    letters = []
    wait_until(lambda: letters.extend(dead_letters(config)) or len(letters) >= len(hostile), what="dead letters")
    assert len(letters) == len(hostile)
    assert all(headers["x-error-type"] in ("decode_error", "validation") and headers["x-dead-letter-reason"]
               for _, headers in letters)
    assert not container._died.ready()
    event = case_registered()                                       # and it still works
    publish(config, "intake.events", "case_registered", event)
    wait_until(lambda: db("dispatch").done.find_one({"_id": event["payload"]["case_id"]}), what="a good one")
    assert queue_depth(config, QUEUE) == 0
