"""A small confirming pika publisher for the bridges: persistent, mandatory, JSON, and every
publish waits for the broker's confirm (an unroutable or refused message is an error)."""
from __future__ import annotations

import json
import logging
import os
import time

import pika

INBOUND_EXCHANGE = "intake.inbound"
log = logging.getLogger("bridge")


def amqp_url(variable: str) -> str:
    url = os.environ.get(variable) or os.environ.get("BRIDGE_AMQP_URL")
    if url:
        return url
    log.warning("%s not set: using guest on localhost — development only", variable)
    return "amqp://guest:guest@127.0.0.1:5672/%2F"


class Publisher:
    def __init__(self, url: str, attempts: int = 10):
        self.url = url
        self.attempts = attempts
        self.connection = None
        self.channel = None

    def _connect(self):
        for attempt in range(1, self.attempts + 1):
            try:
                self.connection = pika.BlockingConnection(pika.URLParameters(self.url))
                self.channel = self.connection.channel()
                self.channel.confirm_delivery()
                return
            except pika.exceptions.AMQPConnectionError as exc:
                log.warning("broker not reachable (%s), attempt %d", exc, attempt)
                time.sleep(min(2 * attempt, 10))
        raise SystemExit(f"cannot reach the broker at {self.url.split('@')[-1]}")

    def publish(self, routing_key: str, body: dict, message_id: str | None = None):
        """Publish and wait for the confirm; reconnect once if the connection dropped."""
        payload = json.dumps(body, ensure_ascii=False).encode("utf-8")
        properties = pika.BasicProperties(content_type="application/json", content_encoding="utf-8",
                                          delivery_mode=2, message_id=message_id)
        for attempt in (1, 2):
            if self.channel is None or self.channel.is_closed:
                self._connect()
            try:
                self.channel.basic_publish(INBOUND_EXCHANGE, routing_key, payload, properties,
                                           mandatory=True)
                return
            except (pika.exceptions.UnroutableError, pika.exceptions.NackError):
                raise
            except pika.exceptions.AMQPError as exc:
                log.warning("publish failed (%s); reconnecting", exc)
                self.channel = None
                if attempt == 2:
                    raise

    def close(self):
        if self.connection is not None and self.connection.is_open:
            self.connection.close()
