"""The headers of a failed message, for every consumer of the platform (pure, no I/O): the nameko
consumers (shared/messaging/consumer.py) and the plain pika programs (bridges/sms_sender.py) park
and retry messages the same way, so ``dcgctl dlq`` shows and replays them alike.

- a retry goes to ``platform.retry.<ms>ms`` with ``x-attempt`` and ``x-last-error``; after the
  delay the broker hands it back to its queue;
- a dead letter goes to ``platform.dead-letter`` (routing key: the queue), i.e. ``<queue>.dlq``,
  with ``x-dead-letter-reason``, ``x-error-type``, ``x-error-details``, ``x-failed-at`` and
  ``x-failed-by``;
- both keep ``x-origin-*``: where the message first came from.
"""
from __future__ import annotations

import os
import socket
import time


def origin_headers(headers: dict | None, queue_name: str, exchange: str, routing_key: str,
                   user_id: str | None) -> dict:
    """The message's headers plus where it first came from (kept across retries)."""
    headers = dict(headers or {})
    headers.setdefault("x-origin-queue", queue_name)
    headers.setdefault("x-origin-exchange", exchange or "")
    headers.setdefault("x-origin-routing-key", routing_key or "")
    if user_id:      # who the broker vouched for (the republished copy is sent as the platform)
        headers.setdefault("x-origin-user-id", user_id)
    return headers


def next_retry(headers: dict, delays: list[int], error: str) -> tuple[int | None, dict]:
    """``(delay_ms, headers)`` for the next retry, or ``(None, headers)`` once the delays are used
    up (then: dead-letter, ``attempts(headers) + 1`` attempts made)."""
    attempt = attempts(headers)
    if attempt >= len(delays):
        return None, headers
    return delays[attempt], dict(headers, **{"x-attempt": attempt + 1, "x-last-error": str(error)[:2000]})


def attempts(headers: dict) -> int:
    """How many retries the message has had so far."""
    return int((headers or {}).get("x-attempt", 0) or 0)


def dead_letter_headers(headers: dict, reason: str, error_type: str, details: str = "") -> dict:
    return dict(headers, **{
        "x-dead-letter-reason": str(reason)[:4000],
        "x-error-type": error_type,
        "x-error-details": str(details)[-4000:],
        "x-failed-at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "x-failed-by": f"{socket.gethostname()}:{os.getpid()}",
    })
