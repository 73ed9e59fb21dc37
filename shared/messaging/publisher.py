"""Publishing with publisher confirms and ``mandatory``: a publish returns only when the broker
has taken responsibility for the message, and an unroutable message is an error, not a drop."""
from __future__ import annotations

import json
import logging
import threading

from kombu import Producer

from .connection import amqp_connection, node_uris

log = logging.getLogger(__name__)


def raw_body(message) -> bytes:
    """The body as bytes, to park or retry it unchanged whatever its headers claim (the client
    library hands over text when the message named a text encoding)."""
    body = message.body
    if isinstance(body, str):
        try:
            return body.encode(message.content_encoding or "utf-8")
        except LookupError:                     # "binary" or a made-up encoding name
            return body.encode("utf-8")
    return bytes(body)


class Unroutable(Exception):
    """The broker returned the message: no queue is bound for its routing key."""


class ConfirmedPublisher:
    """One confirm-mode channel, safe to share between green threads (a lock serialises)."""

    def __init__(self, amqp_uri: str, heartbeat: int | None = None):
        self.amqp_uri = amqp_uri
        self.heartbeat = heartbeat
        self._lock = threading.RLock()
        self._connection = None
        self._producer = None
        self._returned = []

    def _on_return(self, exception, exchange, routing_key, message):
        self._returned.append((exchange, routing_key, str(exception)))

    def _ensure(self):
        if self._producer is None:
            # on a cluster: every node once round the list (kombu fails over round-robin)
            self._connection = amqp_connection(self.amqp_uri, transport_options={"confirm_publish": True})
            self._connection.ensure_connection(max_retries=max(3, 2 * len(node_uris(self.amqp_uri))))
            self._producer = Producer(self._connection.channel(), on_return=self._on_return)

    def close(self):
        with self._lock:
            if self._connection is not None:
                try:
                    self._connection.release()
                except Exception:  # noqa: BLE001 - closing a dead connection is not an error
                    pass
            self._connection = self._producer = None

    def publish(self, exchange: str, routing_key: str, body, *, headers: dict | None = None,
                message_id: str | None = None, content_type: str = "application/json",
                content_encoding: str = "utf-8", mandatory: bool = True, correlation_id=None,
                user_id: str | None = None):
        """Publish persistently and wait for the broker's confirm. Raises on failure."""
        if isinstance(body, (dict, list)):
            body = json.dumps(body, ensure_ascii=False)
        with self._lock:
            for attempt in (1, 2):
                try:
                    self._ensure()
                    self._returned.clear()
                    self._producer.publish(
                        body, exchange=exchange, routing_key=routing_key, headers=headers or {},
                        message_id=message_id, correlation_id=correlation_id,
                        content_type=content_type, content_encoding=content_encoding,
                        delivery_mode=2, mandatory=mandatory, retry=False,
                        **({"user_id": user_id} if user_id else {}))
                    # basic.return arrives before the confirm; drain anything pending.
                    if self._returned:
                        raise Unroutable(f"no queue bound to {exchange!r} for {routing_key!r}")
                    return
                except Unroutable:
                    raise
                except Exception as exc:  # noqa: BLE001 - reconnect once, then give up
                    log.warning("publish to %s failed (%s), reconnecting", exchange, exc)
                    self.close()
                    if attempt == 2:
                        raise
