"""A reliable consumer that hands its handler several messages at once.

``@consume_batches("scoring.lifecycle-events", max_batch=100, linger_seconds=0.3)`` on a
service method taking a list of validated messages. Everything ``consume_reliably`` promises
holds per message (shared/messaging/consumer.py):

- each message is decoded and validated on arrival; an invalid one is dead-lettered with its
  reason at once and never reaches the handler;
- the valid ones wait in memory, unacked, until ``max_batch`` have arrived or the first of them
  has waited ``linger_seconds`` (config ``<linger_config>`` overrides the default); then ONE
  worker runs the handler with all of them;
- every message of the batch is acked only after the handler returned: a crash before that
  leaves them unacked and the broker delivers them again (at least once: handlers must be
  idempotent, as for single messages);
- if the handler raises on a batch of several, each message is run again alone, so a poison
  message is retried and dead-lettered on its own and the others go through — unless the
  error says the store could not be reached (pymongo's ``ConnectionFailure``: refused, closed,
  timed out, no server). No message is to blame for that, so the whole batch is run again
  after a pause (0.5 s, doubling to 5 s), up to ``UNAVAILABLE_ATTEMPTS`` times, before it is
  split. Split at once, a store restart turned each batch of 100 into 100 runs of one (each
  its own store trips) and sent the failures through the retry queues, spending their
  attempts: under ``make chaos-cluster`` scoring then fell further behind after every store
  restart;
- one batch runs at a time per consumer; what arrives meanwhile forms the next batch, so under
  load batches grow by themselves (up to ``max_batch``) and the store sees one trip per batch;
- a background consumer may take only a share of the time while it is behind
  (``backlog_share``, config ``<share_config>``): after a FULL batch (a backlog) it rests
  ``elapsed * (1 - share) / share`` before the next. Scoring takes half: catching up after a
  fault it ran batch after batch of 500 and left the embedded store (one operation at a time)
  no room for the case path, so new reports were not registered until it had caught up.

The messages come on a channel of their own, with a prefetch of ``2 * max_batch``.
"""
from __future__ import annotations

import logging
import threading
import time

import eventlet
from eventlet.event import Event
from nameko.exceptions import ContainerBeingKilled
from pymongo.errors import ConnectionFailure

from .. import metrics
from ..contracts.events import load_event
from .consumer import ReliableConsumer, ReliableQueueConsumer

log = logging.getLogger(__name__)
UNAVAILABLE_ATTEMPTS = 12        # whole-batch runs while the store cannot be reached (~45 s of pauses)


class BatchQueueConsumer(ReliableQueueConsumer):
    """A queue consumer (own connection and channel) whose prefetch lets a batch fill."""

    @property
    def prefetch_count(self):
        return max([2 * provider.max_batch for provider in self._providers] or [self.container.max_workers])


class BatchConsumer(ReliableConsumer):
    queue_consumer = BatchQueueConsumer()

    def __init__(self, queue_name: str, loader=load_event, max_batch: int = 100,
                 linger_seconds: float = 0.3, linger_config: str | None = None,
                 backlog_share: float = 1.0, share_config: str | None = None, **kwargs):
        self.max_batch = max_batch
        self.linger_default, self.linger_config = linger_seconds, linger_config
        self.share_default, self.share_config = backlog_share, share_config
        super().__init__(queue_name, loader, **kwargs)

    def setup(self):
        super().setup()
        self.linger = self._setting(self.linger_config, self.linger_default)
        self.share = min(max(self._setting(self.share_config, self.share_default), 0.05), 1.0)
        self.waiting: list[tuple[dict, object, float]] = []     # (validated, message, arrived)
        self.wake = threading.Event()
        self.halt = threading.Event()
        self.flusher = None
        self.stopping = False

    def _setting(self, key, default) -> float:
        configured = (self.container.config or {}).get(key) if key else None
        return float(default if configured in (None, "") else configured)

    def stop(self):
        """What waits is handled now, without lingering, while the channel is still open to ack
        it; then the consumer is cancelled (a message still waiting after that is requeued)."""
        self.stopping = True
        self.halt.set()
        self._drain()
        super().stop()
        self._drain()
        for _, message, _ in self.waiting:
            self._settle(message, requeue=True)
        self.waiting = []

    def _drain(self):
        self.wake.set()
        if self.flusher is not None:
            self.flusher.wait()

    def handle_message(self, body, message):
        loaded = self.load(body, message)
        if loaded is None:
            return
        self.waiting.append((loaded, message, time.monotonic()))
        if len(self.waiting) >= self.max_batch:
            self.wake.set()
        if self.flusher is None:
            self.flusher = self.container.spawn_managed_thread(self._flush, identifier=f"batches:{self.queue_name}")

    # -- the one flushing loop (a managed thread while messages wait)
    def _flush(self):
        try:
            while self.waiting:
                deadline = self.waiting[0][2] + self.linger
                while (not self.stopping and len(self.waiting) < self.max_batch
                       and time.monotonic() < deadline):
                    self.wake.wait(max(0.0, deadline - time.monotonic()))
                    self.wake.clear()
                batch, self.waiting = self.waiting[:self.max_batch], self.waiting[self.max_batch:]
                started = time.monotonic()
                self._run(batch)
                if len(batch) == self.max_batch and self.share < 1.0 and not self.stopping:
                    # behind a backlog: leave the store to others a while (a stop ends the rest)
                    self.halt.wait(rest_after(time.monotonic() - started, self.share))
        except Exception:  # noqa: BLE001 - never kill the container; the broker has them all
            log.exception("batch consumer on %s failed; its messages are requeued", self.queue_name)
            for _, message, _ in self.waiting:
                self._settle(message, requeue=True)
            self.waiting = []
        finally:
            self.flusher = None

    def _run(self, batch):
        """Run the handler on ``batch``; ack all, or isolate the failure message by message
        (after running it whole again while the store cannot be reached)."""
        pause = 0.5
        for attempt in range(1, UNAVAILABLE_ATTEMPTS + 1):
            started = time.monotonic()
            exc_info = self._run_once(batch)
            if (not exc_info or len(batch) == 1 or self.stopping or attempt == UNAVAILABLE_ATTEMPTS
                    or not isinstance(exc_info[1], ConnectionFailure)):
                return self._settle_batch(batch, exc_info, started)
            log.warning("a batch of %d from %s could not reach the store (%s); the whole batch again in %.1f s",
                        len(batch), self.queue_name, exc_info[1], pause)
            eventlet.sleep(pause)
            pause = min(2 * pause, 5.0)

    def _run_once(self, batch):
        """One run of the handler on the whole batch: None, or the exc_info it raised (False:
        the container is being killed, the batch is requeued)."""
        started, finished, outcome = time.monotonic(), Event(), {}

        def handle_result(worker_ctx, result=None, exc_info=None):
            outcome["exc_info"] = exc_info
            finished.send()
            return result, exc_info

        try:
            self.container.spawn_worker(self, ([loaded for loaded, _, _ in batch],), {},
                                        handle_result=handle_result)
        except ContainerBeingKilled:
            for _, message, _ in batch:
                self._settle(message, requeue=True)
            return False
        finished.wait()
        metrics.HANDLER_SECONDS.labels(self.container.service_name, self.queue_name).observe(
            time.monotonic() - started)
        return outcome.get("exc_info")

    def _settle_batch(self, batch, exc_info, started):
        if exc_info is False:
            return
        if exc_info is None:
            for _, message, _ in batch:
                self._settle(message)
                self._count("ok")
            log.info("handled %d messages from %s in %.0f ms", len(batch), self.queue_name,
                     (time.monotonic() - started) * 1000, extra={"queue": self.queue_name})
        elif len(batch) == 1:
            self.route_failure(batch[0][1], exc_info)
        else:
            log.warning("a batch of %d from %s failed (%s); running each alone", len(batch),
                        self.queue_name, exc_info[1])
            for item in batch:
                self._run([item])


def rest_after(elapsed: float, share: float) -> float:
    """Seconds to rest after a run of ``elapsed`` seconds so that runs take ``share`` of the time."""
    return max(0.0, elapsed) * (1.0 - share) / share


consume_batches = BatchConsumer.decorator
