"""Liveness: every service instance writes a heartbeat to the platform database; the gateway
reads them to answer ``GET /health``."""
from __future__ import annotations

import logging
import os
import socket
from datetime import timedelta

from kombu import Connection
from nameko.extensions import DependencyProvider

from . import storage
from .config import database_name

log = logging.getLogger(__name__)

SERVICES = ("intake", "dispatch", "coordination", "scoring", "participation", "gateway")
STALE_AFTER = timedelta(seconds=10)


class Heartbeat(DependencyProvider):
    """Every service has one: its liveness heartbeat, and the log context of each worker (the
    correlation id of the message being handled goes into every log line it writes)."""

    connection = storage.MongoConnection()

    def worker_setup(self, worker_ctx):
        from .logs import set_correlation_id
        set_correlation_id(worker_ctx.context_data.get("correlation_id"))

    def worker_teardown(self, worker_ctx):
        from .logs import set_correlation_id
        set_correlation_id(None)

    def setup(self):
        config = self.container.config
        self.interval = float(config.get("HEARTBEAT_SECONDS", 2))
        self.collection = self.connection.client[database_name(config, "platform")]["heartbeats"]
        self.instance = f"{socket.gethostname()}:{os.getpid()}:{id(self.container):x}"
        try:   # old instances' beats expire instead of piling up
            self.collection.create_index("at", expireAfterSeconds=24 * 3600)
        except Exception as exc:  # noqa: BLE001 - the store may not be up yet; beats still work
            log.warning("could not index heartbeats: %s", exc)
        self._running = False
        self._gt = None

    def start(self):
        self._running = True
        self._gt = self.container.spawn_managed_thread(self._run, identifier="heartbeat")

    def beat(self, state="up"):
        self.collection.update_one(
            {"_id": f"{self.container.service_name}@{self.instance}"},
            {"$set": {"service": self.container.service_name, "instance": self.instance,
                      "state": state, "at": storage.now_utc(), "pid": os.getpid()}},
            upsert=True)

    def _run(self):
        import eventlet
        while self._running:
            try:
                self.beat()
            except Exception as exc:  # noqa: BLE001 - the store may be restarting
                log.warning("heartbeat failed: %s", exc)
            eventlet.sleep(self.interval)

    def stop(self):
        self._running = False
        if self._gt is not None:
            self._gt.kill()
        try:
            self.beat("stopped")
        except Exception:  # noqa: BLE001
            pass

    def kill(self):
        self._running = False
        if self._gt is not None:
            self._gt.kill()


def service_states(database, now=None) -> dict:
    """{service: {"state": "up"|"down", "instances": n, "last_seen": iso}} from heartbeats."""
    now = now or storage.now_utc()
    result = {name: {"state": "down", "instances": 0, "last_seen": None} for name in SERVICES}
    for beat in database["heartbeats"].find({}):
        entry = result.setdefault(beat["service"], {"state": "down", "instances": 0, "last_seen": None})
        fresh = beat.get("state") == "up" and now - beat["at"] <= STALE_AFTER
        if fresh:
            entry["instances"] += 1
            entry["state"] = "up"
        seen = beat["at"].isoformat()
        if entry["last_seen"] is None or seen > entry["last_seen"]:
            entry["last_seen"] = seen
    return result


def broker_state(amqp_uri: str) -> str:
    try:
        with Connection(amqp_uri, connect_timeout=3) as connection:
            connection.ensure_connection(max_retries=1)
        return "up"
    except Exception as exc:  # noqa: BLE001
        log.warning("broker check failed: %s", exc)
        return "down"


def store_state(client) -> str:
    try:
        client.admin.command("ping")
        return "up"
    except Exception as exc:  # noqa: BLE001
        log.warning("store check failed: %s", exc)
        return "down"
