"""A nameko entrypoint that never acks-and-drops.

``@consume_reliably("dispatch.case-registered")`` on a service method:

1. decodes the body (JSON; a body sent without a content type is parsed too);
2. validates it with the queue's marshmallow loader: invalid → straight to the dead-letter
   queue with the field errors as reason (retrying cannot fix it);
3. runs the handler in a worker; on success the message is acked;
4. on an unexpected error the message is republished to a delay queue (``platform.retry.*``)
   with its attempt count, and comes back to its queue after the delay; once the delays are
   used up it goes to ``<queue>.dlq`` with the error, the exception type and its origin;
5. the original is acked only after the retry or dead-letter copy is confirmed by the broker.
   If that publish fails, the original is requeued instead. Nothing is lost either way.

Handlers must be idempotent (delivery is at least once): see shared.storage.
"""
from __future__ import annotations

import json
import logging
import time
import traceback
import uuid
from functools import partial

from kombu import Consumer as KombuConsumer
from marshmallow import ValidationError
from nameko.exceptions import ContainerBeingKilled
from nameko.extensions import Entrypoint, SharedExtension
from nameko.messaging import QueueConsumer

from .. import metrics
from ..config import retry_delays
from ..contracts.events import load_event
from . import department_errors, failures, topology
from .publisher import ConfirmedPublisher, raw_body

log = logging.getLogger(__name__)


class PermanentError(Exception):
    """Raised by a handler for a message that can never succeed: dead-letter at once."""


def decode_body(body):
    """JSON object from whatever kombu handed us (dict, or str/bytes without content type)."""
    if isinstance(body, (bytes, bytearray)):
        try:
            body = body.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ValidationError({"_body": [f"消息体不是 UTF-8 文本 (body is not UTF-8 text): {exc}"]}) from exc
    if isinstance(body, str):
        try:
            body = json.loads(body)
        except json.JSONDecodeError as exc:
            raise ValidationError({"_body": [f"消息体不是合法 JSON (body is not JSON): {exc}"]}) from exc
        except RecursionError:          # found by make fuzz: a deeply nested body killed the service
            raise ValidationError({"_body": ["消息体嵌套过深 (body is nested too deeply)"]}) from None
    if not isinstance(body, dict):
        raise ValidationError({"_body": ["消息体必须是 JSON 对象 (body must be a JSON object)"]})
    return body


def platform_user(amqp_uri: str) -> str:
    """The broker user the platform connects as (the user of AMQP_URI)."""
    from kombu import Connection
    return Connection(amqp_uri).userid or "guest"


def first_delivery(message, queue_name: str, platform_user: str | None) -> dict:
    """``{routing_key, user_id}`` as the broker vouched for them when the message first arrived.

    A copy back from the platform's retry queues, or replayed from the DLQ, comes through the
    default exchange with the queue's name as routing key, and is sent as the platform's own
    user (AMQP ``user_id``, which RabbitMQ checks against the publishing connection); its
    ``x-origin-*`` headers, written by FailureRouter, carry what the first delivery said. Those
    headers are believed only on such a copy: on any other message (a department's, or anyone
    publishing without the platform's user_id) they are ignored, so they cannot be forged."""
    info, headers = message.delivery_info or {}, message.headers or {}
    user_id = (message.properties or {}).get("user_id")
    if (platform_user and user_id == platform_user and info.get("exchange") == ""
            and info.get("routing_key") == queue_name and headers.get("x-origin-routing-key")):
        return {"routing_key": headers["x-origin-routing-key"], "user_id": headers.get("x-origin-user-id")}
    return {"routing_key": info.get("routing_key"), "user_id": user_id}


class FailureRouter(SharedExtension):
    """Publishes failed messages to a delay queue or to the consumer's dead-letter queue."""

    def setup(self):
        self.publisher = ConfirmedPublisher(self.container.config["AMQP_URI"])
        self.platform_user = platform_user(self.container.config["AMQP_URI"])
        self.delays = retry_delays(self.container.config)

    def stop(self):
        self.publisher.close()

    kill = stop

    def _origin_headers(self, message, queue_name):
        info = message.delivery_info or {}
        return failures.origin_headers(message.headers, queue_name, info.get("exchange", ""),
                                       info.get("routing_key", ""), (message.properties or {}).get("user_id"))

    def _republish(self, message, exchange, routing_key, headers, message_id=None):
        props = message.properties or {}
        self.publisher.publish(
            exchange, routing_key, raw_body(message), headers=headers,
            message_id=message_id or props.get("message_id"), correlation_id=props.get("correlation_id"),
            content_type=message.content_type or "application/octet-stream",
            content_encoding=message.content_encoding or "binary",
            user_id=self.platform_user)      # the copy is the platform's: x-origin-* may be trusted

    def dead_letter(self, message, queue_name, reason, error_type, details=""):
        metrics.DEAD_LETTERS.labels(self.container.service_name, queue_name, error_type).inc()
        headers = failures.dead_letter_headers(self._origin_headers(message, queue_name), reason,
                                               error_type, details)
        # every parked message has an id, so it can be shown, replayed or purged on its own
        message_id = (message.properties or {}).get("message_id") or f"dl-{uuid.uuid4().hex}"
        self._republish(message, topology.DEAD_LETTER_EXCHANGE, queue_name, headers, message_id)
        log.error("dead-lettered a message from %s: %s", queue_name, reason,
                  extra={"queue": queue_name, "reason": str(reason)})
        if department_errors.fed_by_departments(queue_name):
            self._tell_department(message, queue_name, reason, error_type)

    def _tell_department(self, message, queue_name, reason, error_type):
        """The department whose reply was parked gets an Error in its inbox (the letter itself
        is already safe in the DLQ, so a failure here is only logged)."""
        try:
            routing_key = first_delivery(message, queue_name, self.platform_user)["routing_key"]
            notice = department_errors.error_notice(message, routing_key, reason, error_type)
            if notice:
                self.publisher.publish(topology.DEPT_REQUESTS, notice[0], notice[1],
                                       message_id=notice[1]["distribution_id"], user_id=self.platform_user)
        except Exception:  # noqa: BLE001
            log.exception("could not tell the department about a dead-lettered reply on %s", queue_name)

    def retry_or_dead_letter(self, message, queue_name, exc, details):
        headers = self._origin_headers(message, queue_name)
        attempt = failures.attempts(headers)
        delay, headers = failures.next_retry(headers, self.delays, f"{type(exc).__name__}: {exc}")
        if delay is not None:
            self._republish(message, topology.retry_queue_name(delay), queue_name, headers)
            metrics.RETRIES.labels(self.container.service_name, queue_name).inc()
            log.warning("handler on %s failed (%s); retry %d in %d ms", queue_name, exc,
                        attempt + 1, delay)
            return "retried"
        self.dead_letter(message, queue_name,
                         f"{type(exc).__name__}: {exc} (after {attempt + 1} attempts)",
                         "handler_error", details)
        return "dead_lettered"


class ReliableQueueConsumer(QueueConsumer):
    """nameko's QueueConsumer, but a body kombu cannot decode is dead-lettered, not fatal."""

    def get_consumers(self, consumer_cls, channel):
        for provider in self._providers:
            consumer = consumer_cls(
                queues=[provider.queue],
                callbacks=[partial(self.handle_message, provider)],
                accept=["json"],
                on_decode_error=partial(self._undecodable, provider),
            )
            consumer.qos(prefetch_count=self.prefetch_count)
            self._consumers[provider] = consumer
        return self._consumers.values()

    def _undecodable(self, provider, message, exc):
        provider.reject_undecodable(message, exc)


class ReliableConsumer(Entrypoint):
    queue_consumer = ReliableQueueConsumer()
    failures = FailureRouter()

    def __init__(self, queue_name: str, loader=load_event, **kwargs):
        self.queue_name = queue_name
        self.loader = loader
        super().__init__(**kwargs)

    def setup(self):
        self.spec = topology.queue_spec(self.queue_name)
        self.queue = topology.kombu_queue(self.container.config, self.spec)
        self.queue_consumer.register_provider(self)

    def stop(self):
        self.queue_consumer.unregister_provider(self)

    def _settle(self, message, requeue: bool = False):
        """Ack (or requeue) the message on the channel it came on. If that channel died meanwhile
        (its broker node was killed: the consumer is already reconnecting to another node), the
        broker hands the message out again, and the idempotent handler drops the second copy;
        nameko would otherwise let the error out of the result handler and kill the service."""
        try:
            if requeue:
                self.queue_consumer.requeue_message(message)
            else:
                self.queue_consumer.ack_message(message)
        except Exception as exc:  # noqa: BLE001 - connection reset, channel closed, …
            log.warning("could not %s a message from %s (%s: %s); the broker delivers it again",
                        "requeue" if requeue else "ack", self.queue_name, type(exc).__name__, exc)
            return False
        return True

    # -- messages that never reach a worker
    def reject_undecodable(self, message, exc):
        self._dead_letter_then_ack(message, f"无法解码的消息 (undecodable body): {exc}", "decode_error")
        self._count("invalid")

    def _dead_letter_then_ack(self, message, reason, error_type, details=""):
        try:
            self.failures.dead_letter(message, self.queue_name, reason, error_type, details)
        except Exception:  # noqa: BLE001 - could not park it: give it back to the broker
            log.exception("could not dead-letter a message from %s; requeueing", self.queue_name)
            self._settle(message, requeue=True)
            return
        self._settle(message)

    def handle_message(self, body, message):
        try:
            loaded = self.loader(decode_body(body))
        except ValidationError as exc:
            reason = json.dumps(exc.messages, ensure_ascii=False)
            self._dead_letter_then_ack(message, f"校验失败 (validation failed): {reason}", "validation")
            self._count("invalid")
            return
        context_data = {}
        if isinstance(loaded, dict):
            for key in ("correlation_id", "incident_id"):
                if loaded.get(key):
                    context_data["correlation_id"] = loaded[key]
                    break
        started = time.monotonic()
        try:
            self.container.spawn_worker(self, (loaded,), {}, context_data=context_data,
                                        handle_result=partial(self.handle_result, message, started))
        except ContainerBeingKilled:
            self._settle(message, requeue=True)

    def _count(self, outcome):
        metrics.MESSAGES.labels(self.container.service_name, self.queue_name, outcome).inc()

    def handle_result(self, message, started, worker_ctx, result=None, exc_info=None):
        metrics.HANDLER_SECONDS.labels(self.container.service_name, self.queue_name).observe(
            time.monotonic() - started)
        if exc_info is None:
            self._settle(message)
            self._count("ok")
            log.info("handled a message from %s in %.0f ms", self.queue_name,
                     (time.monotonic() - started) * 1000, extra={"queue": self.queue_name})
            return result, exc_info
        exc = exc_info[1]
        details = "".join(traceback.format_exception(*exc_info))
        try:
            if isinstance(exc, (PermanentError, ValidationError)):
                self.failures.dead_letter(message, self.queue_name, f"{type(exc).__name__}: {exc}",
                                          "permanent", details)
                outcome = "dead_lettered"
            else:
                outcome = self.failures.retry_or_dead_letter(message, self.queue_name, exc, details)
        except Exception:  # noqa: BLE001
            log.exception("could not route a failed message from %s; requeueing", self.queue_name)
            self._settle(message, requeue=True)
            return result, exc_info
        self._settle(message)
        self._count(outcome)
        return result, exc_info


consume_reliably = ReliableConsumer.decorator
