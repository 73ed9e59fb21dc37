"""Prometheus metrics for every service (prometheus_client). Each process serves them on
``METRICS_HOST:METRICS_PORT`` (port 0 = off) at ``/metrics``; the host is 127.0.0.1 unless
configured otherwise (a Prometheus on another machine: METRICS_HOST=0.0.0.0 behind a firewall)."""
from __future__ import annotations

import logging

from prometheus_client import Counter, Gauge, Histogram, start_http_server

log = logging.getLogger(__name__)

MESSAGES = Counter("dcg_messages_total", "Messages a consumer finished, by outcome",
                   ["service", "queue", "outcome"])      # ok | retried | dead_lettered | invalid
RETRIES = Counter("dcg_retries_total", "Messages sent to a delay queue for another attempt",
                  ["service", "queue"])
DEAD_LETTERS = Counter("dcg_dead_letters_total", "Messages parked in a dead-letter queue",
                       ["service", "queue", "error_type"])
HANDLER_SECONDS = Histogram("dcg_handler_seconds", "Time a handler took", ["service", "queue"],
                            buckets=(.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10))
OUTBOX_PUBLISHED = Counter("dcg_outbox_published_total", "Events the outbox relay published",
                           ["service"])
OUTBOX_LAG = Histogram("dcg_outbox_lag_seconds", "From an event's creation to its confirmed publish",
                       ["service"], buckets=(.01, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60))
OUTBOX_PENDING = Gauge("dcg_outbox_pending_documents", "Documents with unpublished events",
                       ["service"])
TIMERS_FIRED = Counter("dcg_timers_fired_total", "Durable timers fired", ["service", "outcome"])
TIMER_LAG = Histogram("dcg_timer_lag_seconds", "How late a durable timer fired after its due time",
                      ["service"], buckets=(.1, .5, 1, 2, 5, 10, 30, 60, 300))

STORE_COMMANDS = Counter("dcg_store_commands_total",
                         "Store commands this process sent, by kind (pymongo command monitoring)",
                         ["process", "kind"])   # insert | update | findAndModify | find | aggregate | delete | other
STORE_OTHER = Counter("dcg_store_other_commands_total", "The store commands counted as other, by name",
                      ["process", "command"])
PROCESS = ["-"]             # the process's name for STORE_COMMANDS (set by shared.runner)

_started = False


def serve(port: int, host: str | None = None):
    """Start the /metrics endpoint once per process (port 0: metrics stay in-process only)."""
    global _started
    if _started or not port:
        return
    host = host or "127.0.0.1"
    start_http_server(int(port), addr=host)
    _started = True
    log.info("metrics on %s:%s/metrics", host, port)
