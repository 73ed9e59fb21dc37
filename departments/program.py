"""A department's system joined to the platform over AMQP, with pika only.

It consumes its inbox ``dept.<id>.inbox`` and answers on the exchange ``departments.replies``
with routing key ``<id>.<kind>``:

- a ``Request`` → an ``Ack`` (accepted, or rejected with a reason), then, if accepted, the
  ``Update``s: check-in on site (报到), an action, the disposition;
- a re-notified ``Request`` (same incident) → the same answer again, referencing it;
- an ``Update`` or a ``Cancel`` from the platform → an ``Ack``; a Cancel, or an Update saying the
  lead closed the operation, stops the Updates still planned for that operation;
- an ``Error`` from the platform (it refused one of our messages) → kept in the history only.

Nothing is lost when the program is killed (SIGKILL) and restarted. Its history file
``<DEPT_HISTORY_DIR>/<id>.jsonl`` is a journal, written and fsynced BEFORE the inbox message is
acked: what it ``received``, every reply it ``planned`` (the whole reply, with the time it is
due), every reply it ``sent`` (after the broker confirmed it) and what was ``cancelled``. On
start it replays the journal and sends every planned reply not yet sent (at once if overdue).
A message received but not yet journalled was not acked, so the broker delivers it again.
Reply ids are deterministic (``<id>.<kind>.<stage>.<hash of the message answered>``), so a
reply sent twice across a crash is applied once by the platform.

Every publish carries ``user_id`` = our broker user (RabbitMQ refuses a publish whose user_id is
not the connection's user, so the platform knows who sent it), is persistent, mandatory and
waits for the publisher confirm.

Settings (environment):
  DEPT_AMQP_URL          amqp://user:password@host:5672/vhost — else the credentials file. On a
                         cluster, one URL per node separated by ';': the program connects to the
                         first that answers and, when its node dies, to the next
  DEPT_CREDENTIALS_FILE  JSON with "url" (default <DEPT_SECRETS_DIR or var/secrets/departments>/<id>.json,
                         written by `dcgctl users apply`); else guest on localhost (development only)
  DEPT_REJECT_RATE       0..1, share of Requests rejected (default 0)
  DEPT_REJECT_REASON     the reason given when rejecting
  DEPT_ACK_SECONDS       delay before the Accept/Reject (default 0.5)
  DEPT_CHECKIN_SECONDS   delay from acceptance to check-in on site (default 2)
  DEPT_ACTION_SECONDS    delay from check-in to the action report (default 2)
  DEPT_DISPOSE_SECONDS   delay from the action to the disposition (default 3)
  DEPT_SILENT            1 = never answer (a demo of re-notification and escalation)
  DEPT_SEED              seed of the reject draw (repeatable demos)
  DEPT_HISTORY_DIR       where the journal lives (default var/departments)
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import random
import signal
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import pika

CONTRACT_VERSION = "1.1"
REPLIES_EXCHANGE = "departments.replies"
log = logging.getLogger("department")


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def short_hash(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()[:16]


def node_parameters(url: str, heartbeat: int = 30, start: int = 0) -> list:
    """pika's connection parameters, one per listed node (';'-separated), beginning at node
    ``start`` (the one after the node that failed last), each tried once in turn."""
    nodes = [part.strip() for part in url.split(";") if part.strip()]
    params = []
    for node in nodes[start % len(nodes):] + nodes[:start % len(nodes)]:
        one = pika.URLParameters(node)
        one.heartbeat = heartbeat
        one.connection_attempts = 1
        params.append(one)
    return params


def resolve_url(dept_id: str) -> str:
    """DEPT_AMQP_URL, else the credentials file written by `dcgctl users apply`, else guest."""
    url = os.environ.get("DEPT_AMQP_URL")
    if url:
        return url
    folder = Path(os.environ.get("DEPT_SECRETS_DIR") or "var/secrets/departments")
    path = Path(os.environ.get("DEPT_CREDENTIALS_FILE") or folder / f"{dept_id}.json")
    if path.is_file():
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)["url"]
    log.warning("no credentials for %s (DEPT_AMQP_URL or %s): using guest on localhost — development only",
                dept_id, path)
    return "amqp://guest:guest@127.0.0.1:5672/%2F"


class Journal:
    """Append-only JSON lines, fsynced: the department's history and its pending work."""

    def __init__(self, path: Path):
        self.path = path
        self.path.parent.mkdir(parents=True, exist_ok=True)

    def append(self, *entries: dict):
        with open(self.path, "a", encoding="utf-8") as handle:
            for entry in entries:
                handle.write(json.dumps({"at": now_iso(), **entry}, ensure_ascii=False) + "\n")
            handle.flush()
            os.fsync(handle.fileno())

    def entries(self) -> list[dict]:
        if not self.path.exists():
            return []
        out = []
        with open(self.path, encoding="utf-8") as handle:
            for line in handle:
                try:
                    out.append(json.loads(line))
                except ValueError:
                    continue            # a line cut by a crash: its message was not acked
        return out


class DepartmentProgram:
    def __init__(self, dept_id: str, name: str, amqp_url: str | None = None, *, reject_rate: float | None = None,
                 ack_seconds: float | None = None, checkin_seconds: float | None = None,
                 action_seconds: float | None = None, dispose_seconds: float | None = None,
                 silent: bool | None = None, history_dir: str | None = None, seed=None):
        env = os.environ

        def setting(value, key, default):
            return float(env.get(key, default) if value is None else value)

        self.dept_id = dept_id
        self.name = name
        self.amqp_url = amqp_url or resolve_url(dept_id)
        self.username = node_parameters(self.amqp_url)[0].credentials.username
        self.reject_rate = setting(reject_rate, "DEPT_REJECT_RATE", 0)
        self.reject_reason = env.get("DEPT_REJECT_REASON") or f"{name}：当前警力/人员已全部出勤，无法派员，请协调其他力量"
        self.ack_seconds = setting(ack_seconds, "DEPT_ACK_SECONDS", 0.5)
        self.checkin_seconds = setting(checkin_seconds, "DEPT_CHECKIN_SECONDS", 2)
        self.action_seconds = setting(action_seconds, "DEPT_ACTION_SECONDS", 2)
        self.dispose_seconds = setting(dispose_seconds, "DEPT_DISPOSE_SECONDS", 3)
        self.silent = (env.get("DEPT_SILENT", "0") == "1") if silent is None else silent
        seed = env.get("DEPT_SEED") if seed is None else seed
        self.random = random.Random(seed)
        self.journal = Journal(Path(history_dir or env.get("DEPT_HISTORY_DIR", "var/departments")) / f"{dept_id}.jsonl")
        self.inbox = f"dept.{dept_id}.inbox"
        self.connection = None
        self.channel = None
        self.received: set[str] = set()
        self.decisions: dict[str, dict] = {}      # incident → {"status", "reason"}
        self.pending: dict[str, dict] = {}        # reply id → planned reply
        self.sent: set[str] = set()
        self.stopped: set[str] = set()            # incidents cancelled or closed
        self.recover()

    # ------------------------------------------------------------------ the journal
    def recover(self):
        """Rebuild what was received, decided, planned and sent from the journal."""
        for entry in self.journal.entries():
            kind = entry.get("type") or entry.get("direction")
            if kind == "received":
                self.received.add(entry["message"]["distribution_id"])
            elif kind == "decided":
                self.decisions[entry["incident_id"]] = {"status": entry["status"], "reason": entry.get("reason", "")}
            elif kind == "planned":
                self.pending[entry["item"]["id"]] = entry["item"]
            elif kind == "sent":
                self.sent.add(entry["message"]["distribution_id"])
                self.pending.pop(entry["message"]["distribution_id"], None)
            elif kind == "cancelled":
                self.stopped.add(entry["incident_id"])
                for item_id in entry.get("dropped", []):
                    self.pending.pop(item_id, None)
        if self.pending:
            log.info("%s: resuming %d planned replies from %s", self.dept_id, len(self.pending), self.journal.path)

    # ------------------------------------------------------------------ planning replies
    def _item(self, request: dict, kind: str, payload: dict, due: float, stage: str = "") -> dict:
        tag = f"{kind.lower()}{'.' + stage if stage else ''}"
        return {"id": f"{self.dept_id}.{tag}.{short_hash(request['distribution_id'])}", "due": due, "kind": kind,
                "incident_id": request["incident_id"], "in_reply_to": request["distribution_id"],
                "recipient": request.get("sender", "dcg.coordination"), "payload": payload, "stage": stage}

    def plan(self, request: dict) -> tuple[list[dict], list[dict]]:
        """The replies to a platform message, and extra journal entries (decisions, cancels)."""
        kind, incident, now = request["kind"], request["incident_id"], time.time()
        extra: list[dict] = []
        if not str(request.get("schema_version", "")).startswith("1."):
            return [self._item(request, "Error", {"code": "unsupported_version",
                                                  "message": f"不支持的协议版本 {request.get('schema_version')}"}, now)], extra
        if kind == "Request":
            decided = self.decisions.get(incident)
            if decided is not None:                       # a re-notification: the same answer again
                return [self._item(request, "Ack", dict(decided), now)], extra
            status = "rejected" if self.random.random() < self.reject_rate else "accepted"
            answer = {"status": status, "reason": self.reject_reason if status == "rejected" else ""}
            extra.append({"type": "decided", "incident_id": incident, **answer})
            items = [self._item(request, "Ack", answer, now + self.ack_seconds)]
            if status == "accepted":
                at = now + self.ack_seconds + self.checkin_seconds
                location = ((request.get("payload") or {}).get("where") or {}).get("location")
                items.append(self._item(request, "Update", {"stage": "checkin", "note": f"{self.name}已到达现场报到",
                                                            "officers": [f"{self.dept_id}-值班组"],
                                                            "location": location}, at, "checkin"))
                at += self.action_seconds
                items.append(self._item(request, "Update", {"stage": "action", "note": f"{self.name}正在现场处置",
                                                            "officers": []}, at, "action"))
                at += self.dispose_seconds
                items.append(self._item(request, "Update", {"stage": "disposition",
                                                            "note": f"{self.name}处置完毕", "officers": []},
                                        at, "disposition"))
            return items, extra
        if kind in ("Update", "Cancel"):
            items = [self._item(request, "Ack", {"status": "accepted", "reason": ""}, now)]
            payload = request.get("payload") or {}
            if kind == "Cancel" or payload.get("operation_state") == "closed":
                dropped = [item_id for item_id, item in self.pending.items()
                           if item["incident_id"] == incident and item["kind"] == "Update"]
                extra.append({"type": "cancelled", "incident_id": incident, "dropped": dropped,
                              "by": request["distribution_id"]})
            return items, extra
        return [], extra                                   # Error: kept in the history only

    # ------------------------------------------------------------------ sending
    def publish(self, item: dict) -> dict:
        message = {
            "schema_version": CONTRACT_VERSION,
            "distribution_id": item["id"],
            "sender": self.dept_id,
            "recipients": [item["recipient"]],
            "kind": item["kind"],
            "sent_at": now_iso(),
            "expires_at": None,
            "incident_id": item["incident_id"],
            "in_reply_to": item["in_reply_to"],
            "references": [],
            "payload": item["payload"],
        }
        self.channel.basic_publish(
            REPLIES_EXCHANGE, f"{self.dept_id}.{item['kind'].lower()}", json.dumps(message, ensure_ascii=False),
            pika.BasicProperties(content_type="application/json", delivery_mode=2, user_id=self.username,
                                 message_id=message["distribution_id"], correlation_id=item["incident_id"]),
            mandatory=True)                                # raises unless the broker confirmed it
        self.journal.append({"type": "sent", "message": message})
        self.sent.add(item["id"])
        self.pending.pop(item["id"], None)
        log.info("%s sent %s %s for %s", self.dept_id, item["kind"], item.get("stage") or "", item["incident_id"])
        return message

    def fire(self, item_id: str):
        item = self.pending.get(item_id)
        if item is None:
            return                                          # sent already, or dropped by a Cancel
        try:
            self.publish(item)
        except (pika.exceptions.UnroutableError, pika.exceptions.NackError) as exc:
            log.warning("%s: reply %s not confirmed (%s); retrying in 5 s", self.dept_id, item_id, exc)
            self.connection.call_later(5, lambda: self.fire(item_id))

    def schedule(self, item: dict):
        delay = max(0.0, item["due"] - time.time())
        self.connection.call_later(delay, lambda item_id=item["id"]: self.fire(item_id))

    # ------------------------------------------------------------------ the inbox
    def on_message(self, channel, method, properties, body):
        try:
            request = json.loads(body)
            request["kind"], request["incident_id"], request["distribution_id"]  # noqa: B018
        except (ValueError, KeyError, TypeError) as exc:
            log.error("unreadable message in %s: %s", self.inbox, exc)
            channel.basic_nack(method.delivery_tag, requeue=False)   # → dept.<id>.inbox.dlq
            return
        if request["distribution_id"] in self.received:
            channel.basic_ack(method.delivery_tag)                    # a redelivery: work already journalled
            return
        if self.silent:
            self.journal.append({"type": "received", "message": request, "note": "silent"})
            self.received.add(request["distribution_id"])
            channel.basic_ack(method.delivery_tag)
            return
        items, extra = self.plan(request)
        self.journal.append({"type": "received", "message": request}, *extra,
                            *({"type": "planned", "item": item} for item in items))
        self.received.add(request["distribution_id"])
        for entry in extra:
            if entry["type"] == "decided":
                self.decisions[entry["incident_id"]] = {"status": entry["status"], "reason": entry["reason"]}
            elif entry["type"] == "cancelled":
                self.stopped.add(entry["incident_id"])
                for item_id in entry["dropped"]:
                    self.pending.pop(item_id, None)
        for item in items:
            self.pending[item["id"]] = item
        channel.basic_ack(method.delivery_tag)                        # journalled: safe to ack
        for item in items:
            if item["due"] <= time.time():
                self.fire(item["id"])
            else:
                self.schedule(item)
        log.info("%s %s for %s received", self.dept_id, request["kind"], request["incident_id"])

    # ------------------------------------------------------------------ loop
    def run(self):
        logging.basicConfig(level=logging.INFO, format=f"%(asctime)s {self.dept_id} %(message)s")
        stopping = {"flag": False}

        def stop(signum, frame):  # noqa: ARG001
            stopping["flag"] = True
            if self.connection is not None:
                self.connection.add_callback_threadsafe(self.connection.close)

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        failed = 0                 # connection losses so far: start the next try one node further
        while not stopping["flag"]:
            try:
                self.connection = pika.BlockingConnection(node_parameters(self.amqp_url, start=failed))
                self.channel = self.connection.channel()
                self.channel.confirm_delivery()
                self.channel.basic_qos(prefetch_count=10)
                for item in list(self.pending.values()):            # resume the journal's pending work
                    self.schedule(item)
                self.channel.basic_consume(self.inbox, self.on_message)
                log.info("%s (%s) listening on %s as %s", self.name, self.dept_id, self.inbox, self.username)
                self.channel.start_consuming()
            except pika.exceptions.ConnectionClosedByBroker as exc:
                log.warning("broker closed the connection: %s", exc)
                failed += 1
            except pika.exceptions.AMQPConnectionError as exc:
                if stopping["flag"]:
                    break
                failed += 1
                log.warning("cannot reach the broker (%s); retrying in 2s", exc)
            except pika.exceptions.ChannelClosedByBroker as exc:
                log.error("channel closed by the broker: %s", exc)
            finally:
                if self.connection is not None and self.connection.is_open:
                    try:
                        self.connection.close()
                    except pika.exceptions.AMQPError:
                        pass
            if not stopping["flag"]:
                time.sleep(2)
        return 0


def main(dept_id: str, name: str):
    sys.exit(DepartmentProgram(dept_id, name).run())
