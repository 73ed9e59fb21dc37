"""Operations, as plain functions over the RabbitMQ management API, AMQP and the store.
``shared/cli.py`` (``bin/dcgctl``) is the command line over them."""
from __future__ import annotations

import hashlib
import json
from urllib.parse import quote

from kombu import Connection

from . import health
from .config import database_name
from .management import Management
from .messaging import topology
from .messaging.consumer import platform_user
from .messaging.publisher import ConfirmedPublisher, raw_body
from .storage import mongo_client


# ------------------------------------------------------------------ queues
def owner_of(queue_name: str) -> str:
    base = queue_name[:-4] if queue_name.endswith(".dlq") else queue_name
    for spec in topology.all_queues():
        if spec.name == base:
            return spec.owner
    if base.startswith("platform."):
        return "platform"
    if base.startswith("rpc-"):                      # nameko's RPC queue of a service
        return base[4:]
    return base.split(".")[0] if "." in base else "(unknown)"


def queues(mgmt: Management, limit: int = health.DEFAULT_BACKLOG_LIMIT) -> dict[str, list[dict]]:
    """{owner: [{name, messages, ready, unacked, consumers, publish_rate, deliver_rate, problem}]}
    ``problem``: why the queue needs an operator (shared.health.queue_problem), or None."""
    grouped: dict[str, list[dict]] = {}
    for q in mgmt.queues():
        stats = q.get("message_stats") or {}
        row = {"name": q["name"], "messages": q.get("messages", 0),
               "ready": q.get("messages_ready", 0), "unacked": q.get("messages_unacknowledged", 0),
               "consumers": q.get("consumers", 0),
               "publish_rate": round((stats.get("publish_details") or {}).get("rate", 0.0), 2),
               "deliver_rate": round((stats.get("deliver_get_details") or {}).get("rate", 0.0), 2)}
        row["problem"] = health.queue_problem(row, limit)
        grouped.setdefault(owner_of(q["name"]), []).append(row)
    for rows in grouped.values():
        rows.sort(key=lambda row: row["name"])
    return dict(sorted(grouped.items()))


# ------------------------------------------------------------------ dead letters
# list, show, replay and purge read the queue the same way (AMQP, not the management API's
# statistics, which lag), and name each letter by the same id (``letter_id``), so they agree.
def dead_letter_queues(config, mgmt: Management) -> list[dict]:
    """Every DLQ with the number of dead letters it holds now (as ``dlq show`` counts them)."""
    names = sorted(q["name"] for q in mgmt.queues() if q["name"].endswith(".dlq"))
    with Connection(config["AMQP_URI"]) as connection:
        channel = connection.default_channel
        return [{"name": name, "messages": _depth(channel, name), "owner": owner_of(name)} for name in names]


def _depth(channel, queue: str) -> int:
    _, ready, _ = channel.queue_declare(queue, passive=True)
    return ready


def letter_id(message) -> str:
    """A dead letter's id: its message_id (the consumer gives one to every letter it parks); a
    letter parked without one (before that) is named by a digest of its body and failure time."""
    props = message.properties
    if props.get("message_id"):
        return props["message_id"]
    headers = props.get("application_headers") or {}
    digest = hashlib.sha256(bytes(raw_body(message)) + str(headers.get("x-failed-at")).encode()).hexdigest()
    return f"body-{digest[:16]}"


def _decode(payload: bytes):
    try:
        return json.loads(payload)
    except (TypeError, ValueError):
        return payload.decode("utf-8", "replace") if isinstance(payload, (bytes, bytearray)) else payload


def _walk(config, dlq: str, visit, stop_after: int | None = None) -> int:
    """Take the dead letters of ``dlq`` in turn (unacked, so none is lost if we die) and ask
    ``visit(message)`` what to do: "ack" removes it, anything else keeps it; every kept letter
    is requeued in place when the channel closes. Only the letters there at the start are
    visited (a replayed letter that fails again at once is not replayed twice), at most
    ``stop_after``. Returns how many letters the queue held at the start."""
    with Connection(config["AMQP_URI"]) as connection:
        channel = connection.channel()
        try:
            total = _depth(channel, dlq)
            for _ in range(total if stop_after is None else min(total, stop_after)):
                message = channel.basic_get(dlq, no_ack=False)
                if message is None:
                    break
                if visit(channel.message_to_python(message)) == "ack":
                    channel.basic_ack(message.delivery_tag)
        finally:
            channel.close()           # the broker requeues everything not acked
    return total


def show_dead_letters(config, dlq: str, limit: int = 20) -> dict:
    """Peek (the letters stay in the queue): {queue, total, letters: [id, reason, origin, …]}
    with the first ``limit`` letters; ``total`` counts as ``dead_letter_queues`` does."""
    letters = []
    total = _walk(config, dlq, lambda message: letters.append(_letter(message, dlq)), stop_after=limit)
    return {"queue": dlq, "total": total, "letters": letters}


def _letter(message, dlq):
    props = message.properties
    headers = props.get("application_headers") or {}
    return {
        "message_id": letter_id(message),
        "reason": headers.get("x-dead-letter-reason") or _death_reason(headers),
        "error_type": headers.get("x-error-type"),
        "origin_queue": headers.get("x-origin-queue") or dlq[:-4],
        "origin_exchange": headers.get("x-origin-exchange"),
        "origin_routing_key": headers.get("x-origin-routing-key"),
        "failed_at": local_iso(headers.get("x-failed-at")),
        "attempts": headers.get("x-attempt", 0),
        "body": _decode(raw_body(message)),
    }


def _death_reason(headers):
    deaths = headers.get("x-death") or []
    return f"rejected by the broker ({deaths[0].get('reason')})" if deaths else None


RESET_HEADERS = ("x-attempt", "x-last-error", "x-dead-letter-reason", "x-error-type",
                 "x-error-details", "x-failed-at", "x-failed-by", "x-death")


def replay(config, dlq: str, message_id: str | None = None) -> int:
    """Send dead letters back to the queue they came from (all, or the one with message_id).
    Each is republished with confirms, as the platform's own user, before it is removed from
    the DLQ; its attempt count starts again. Returns how many were replayed."""
    origin_default = dlq[:-4] if dlq.endswith(".dlq") else dlq
    publisher = ConfirmedPublisher(config["AMQP_URI"])
    user = platform_user(config["AMQP_URI"])
    replayed = 0

    def visit(message):
        nonlocal replayed
        if message_id and letter_id(message) != message_id:
            return "keep"
        props = message.properties
        headers = dict(props.get("application_headers") or {})
        origin = headers.get("x-origin-queue") or origin_default
        headers = {key: value for key, value in headers.items() if key not in RESET_HEADERS}
        headers["x-replayed-from"] = dlq
        publisher.publish("", origin, raw_body(message), headers=headers,
                          message_id=letter_id(message),
                          correlation_id=props.get("correlation_id"),
                          content_type=props.get("content_type") or "application/octet-stream",
                          content_encoding=props.get("content_encoding") or "binary",
                          user_id=user)
        replayed += 1
        return "ack"
    try:
        _walk(config, dlq, visit)
    finally:
        publisher.close()
    return replayed


def purge(config, dlq: str, message_id: str) -> int:
    """Delete the dead letter(s) with this id from ``dlq``, and nothing else. Returns how many.
    (Emptying a whole DLQ is ``purge_all``, which the CLI asks for by name.)"""
    removed = 0

    def visit(message):
        nonlocal removed
        if letter_id(message) == message_id:
            removed += 1
            return "ack"
        return "keep"
    _walk(config, dlq, visit)
    return removed


def purge_all(mgmt: Management, dlq: str):
    mgmt.delete(f"queues/{mgmt.v}/{quote(dlq, safe='')}/contents")


# ------------------------------------------------------------------ topology
def topology_diff(config, mgmt: Management) -> dict:
    """What the topology declares and the broker lacks (or has differently), and extra queues."""
    wanted_queues = {}
    wanted_exchanges = set()
    for item in topology.declarations(config):
        if hasattr(item, "queue_arguments"):
            wanted_queues[item.name] = item.queue_arguments or {}
        else:
            wanted_exchanges.add(item.name)
    have_queues = {q["name"]: q.get("arguments") or {} for q in mgmt.get(f"queues/{mgmt.v}")}
    have_exchanges = {e["name"] for e in mgmt.get(f"exchanges/{mgmt.v}")}
    different = sorted(name for name, args in wanted_queues.items()
                       if name in have_queues and {k: v for k, v in have_queues[name].items()} != args)
    return {
        "missing_exchanges": sorted(wanted_exchanges - have_exchanges),
        "missing_queues": sorted(set(wanted_queues) - set(have_queues)),
        "different_arguments": different,
        "extra_queues": sorted(name for name in set(have_queues) - set(wanted_queues)
                               if not name.startswith("amq.") and "rpc" not in name),
    }


# ------------------------------------------------------------------ timeline, health
def timeline(config, case_id: str) -> list[dict]:
    """Every lifecycle event of a case, from every service, in order (from scoring's event log,
    which records each event once)."""
    client = mongo_client(config["MONGO_URI"])
    try:
        events = client[database_name(config, "scoring")]["events"]
        rows = events.find({"$or": [{"correlation_id": case_id}, {"payload.case_id": case_id}]})
        result = []
        for row in rows:
            payload = row.get("payload") or {}
            result.append({"at": local_iso(row["occurred_at"]), "type": row["type"], "producer": row["producer"],
                           "actor": payload.get("actor") or payload.get("inspector_id") or payload.get("department"),
                           "unit": row.get("unit"), "reason": payload.get("reason"), "payload": payload})
        return sorted(result, key=lambda row: row["at"])
    finally:
        client.close()


def platform_health(config) -> dict:
    """The same answer as the gateway's ``GET /health`` (shared.health.platform_status)."""
    client = mongo_client(config["MONGO_URI"])
    try:
        return health.platform_status(config, client[database_name(config, "platform")])
    finally:
        client.close()


# ------------------------------------------------------------------ times for people
local_iso = health.local_iso          # Asia/Shanghai, ISO 8601 with its offset (+08:00)


# ------------------------------------------------------------------ store backup / restore
def backup(config, directory) -> dict:
    """Every platform database (``<DB_PREFIX>*``) to ``<dir>/<db>/<collection>.jsonl``
    (MongoDB Extended JSON, so dates and ids round-trip). Works on MongoDB and the emulator."""
    from pathlib import Path

    from bson import json_util
    prefix = config.get("DB_PREFIX", "dcg_")
    counts = {}
    client = mongo_client(config["MONGO_URI"])
    try:
        for db_name in client.list_database_names():
            if not db_name.startswith(prefix):
                continue
            folder = Path(directory) / db_name
            folder.mkdir(parents=True, exist_ok=True)
            for name in client[db_name].list_collection_names():
                rows = 0
                with open(folder / f"{name}.jsonl", "w", encoding="utf-8") as handle:
                    for doc in client[db_name][name].find({}):
                        handle.write(json_util.dumps(doc, json_options=json_util.CANONICAL_JSON_OPTIONS) + "\n")
                        rows += 1
                counts[f"{db_name}.{name}"] = rows
    finally:
        client.close()
    return counts


def restore(config, directory, drop: bool = False) -> dict:
    """Load a backup made by ``backup``. Existing documents with the same _id are replaced."""
    from pathlib import Path

    from bson import json_util
    from pymongo import ReplaceOne
    counts = {}
    client = mongo_client(config["MONGO_URI"])
    try:
        for folder in sorted(Path(directory).iterdir()):
            if not folder.is_dir():
                continue
            for path in sorted(folder.glob("*.jsonl")):
                collection = client[folder.name][path.stem]
                if drop:
                    collection.drop()
                docs = [json_util.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]
                if docs:
                    collection.bulk_write([ReplaceOne({"_id": doc["_id"]}, doc, upsert=True) for doc in docs])
                counts[f"{folder.name}.{path.stem}"] = len(docs)
    finally:
        client.close()
    return counts
