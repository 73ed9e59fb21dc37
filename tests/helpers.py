"""Helpers for tests that talk to the real broker and store."""
from __future__ import annotations

import json
import time

from kombu import Connection, Exchange, Queue

from shared.messaging.publisher import ConfirmedPublisher


def wait_until(check, timeout=20.0, interval=0.1, what="condition"):
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


def publish(config, exchange, routing_key, body, **kwargs):
    publisher = ConfirmedPublisher(config["AMQP_URI"])
    try:
        publisher.publish(exchange, routing_key, body, **kwargs)
    finally:
        publisher.close()


def drain(config, queue_name, limit=10000):
    """Take every message now in a queue (acking them), undecoded: list of (body, headers).
    A JSON body comes back as a dict, anything else as bytes."""
    out = []
    with Connection(config["AMQP_URI"]) as connection:
        channel = connection.default_channel
        while len(out) < limit:
            message = channel.basic_get(queue_name, no_ack=False)
            if message is None:
                break
            body = message.body
            try:
                body = json.loads(body)
            except (TypeError, ValueError, RecursionError):      # a hostile (deep) body stays bytes
                pass
            headers = dict(message.properties.get("application_headers") or {})
            out.append((body, headers))
            channel.basic_ack(message.delivery_tag)
    return out


def observer(config, exchange, routing_key="#", name=None):
    """Declare a test-only queue bound to an exchange; returns its name."""
    name = name or f"test.observer.{exchange}.{routing_key}".replace("#", "all")
    with Connection(config["AMQP_URI"]) as connection:
        queue = Queue(name, Exchange(exchange, type="topic", durable=True, no_declare=True),
                      routing_key=routing_key, durable=True)
        queue(connection.default_channel).declare()
    return name


def queue_depth(config, queue_name):
    with Connection(config["AMQP_URI"]) as connection:
        _, count, _ = connection.default_channel.queue_declare(queue_name, passive=True)
    return count
