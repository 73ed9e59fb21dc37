"""Liveness: every service instance writes a heartbeat to the platform database; the gateway
reads them to answer ``GET /health``."""
from __future__ import annotations

import logging
import os
import socket
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from kombu import Connection
from nameko.extensions import DependencyProvider

from . import storage
from .config import database_name
from .contracts.base import local_times

log = logging.getLogger(__name__)

LOCAL = ZoneInfo("Asia/Shanghai")
SERVICES = ("intake", "dispatch", "coordination", "scoring", "participation", "gateway")
STALE_AFTER = timedelta(seconds=35)   # three missed beats at the default HEARTBEAT_SECONDS (10 s)


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
        self.interval = float(config.get("HEARTBEAT_SECONDS", 10))   # one upsert per 10 s
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
        seen = local_iso(beat["at"])           # one offset (+08:00), so the text orders like the time
        if entry["last_seen"] is None or seen > entry["last_seen"]:
            entry["last_seen"] = seen
    return result


def local_iso(value):
    """A time as people read it: Asia/Shanghai, ISO 8601 with its offset (+08:00). A naive
    datetime is UTC (what the store keeps); text that is not a time is returned as it is."""
    if value in (None, ""):
        return value
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return value
    return local_times(value, LOCAL)


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


# ------------------------------------------------------------------ queues
DEFAULT_BACKLOG_LIMIT = 1000


def backlog_limit(config: dict) -> int:
    return int(config.get("QUEUE_BACKLOG_LIMIT") or DEFAULT_BACKLOG_LIMIT)


def queue_problem(row: dict, limit: int) -> str | None:
    """Why a queue (a management-API row: name, messages, consumers) needs an operator, or None.

    - a dead-letter queue holds messages (someone must look at them: dcgctl dlq show);
    - an inbox or outbox holds messages and nothing consumes it (its reader is down);
    - any other backlog has grown past ``limit`` (QUEUE_BACKLOG_LIMIT)."""
    name, messages, consumers = row["name"], int(row.get("messages") or 0), int(row.get("consumers") or 0)
    if name.endswith(".dlq"):
        return f"死信队列有 {messages} 条消息 (dead letters waiting)" if messages else None
    if messages and not consumers and ("inbox" in name or "outbox" in name):
        return f"有 {messages} 条消息却无人消费 (no consumer)"
    if messages > limit:
        return f"积压 {messages} 条，超过 {limit} (backlog over the limit)"
    return None


def queue_problems(config: dict, management=None) -> list[dict]:
    """[{queue, messages, consumers, reason}] for every queue of the platform's vhost that
    ``queue_problem`` flags; one entry with queue None when the management API cannot be read."""
    from .management import Management
    mgmt = management or Management.from_config(config)
    try:
        rows = mgmt.queues(timeout=5)        # /health must answer quickly
    except Exception as exc:  # noqa: BLE001 - unreadable queues are themselves a problem
        log.warning("queue check failed: %s", exc)
        return [{"queue": None, "messages": None, "consumers": None,
                 "reason": f"无法读取队列状态 (management API unreadable): {str(exc)[:200]}"}]
    limit = backlog_limit(config)
    problems = []
    for row in sorted(rows, key=lambda r: r["name"]):
        reason = queue_problem(row, limit)
        if reason:
            problems.append({"queue": row["name"], "messages": row.get("messages", 0),
                             "consumers": row.get("consumers", 0), "reason": reason})
    return problems


def platform_status(config: dict, platform_db, management=None) -> dict:
    """What ``GET /health`` and ``dcgctl health`` answer: every service, the broker, the store,
    the queues that need an operator, and "up" only when nothing is wrong (else "degraded",
    with every reason in ``reasons``)."""
    store = store_state(platform_db.client)
    services = service_states(platform_db) if store == "up" else {}
    broker = broker_state(config["AMQP_URI"])
    queues = queue_problems(config, management) if broker == "up" else []
    reasons = []
    if broker != "up":
        reasons.append("消息中间件不可用 (broker down)")
    if store != "up":
        reasons.append("存储不可用 (store down)")
    reasons += [f"服务 {name} 未运行 (service down)" for name, entry in services.items() if entry["state"] != "up"]
    reasons += [f"{row['queue'] or 'queues'}: {row['reason']}" for row in queues]
    return {"status": "degraded" if reasons else "up", "reasons": reasons, "services": services,
            "broker": broker, "store": store, "queues": queues}
