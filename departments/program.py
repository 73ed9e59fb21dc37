"""A department's system joined to the platform over AMQP, with pika only.

It consumes its inbox ``dept.<id>.inbox``; for every Request it answers at once with an Ack
(accepted, or rejected with a reason), then reports its check-in on site (报到), an action and
a disposition as Updates. Replies go to the exchange ``departments.replies`` with routing key
``<id>.<kind>``. The inbox message is acked only after the reply is confirmed by the broker.
It keeps a history of what it received and did in ``<history dir>/<id>.jsonl``.

Settings (environment): DEPT_AMQP_URL, DEPT_REJECT_RATE (0..1), DEPT_CHECKIN_SECONDS,
DEPT_ACTION_SECONDS, DEPT_DISPOSE_SECONDS, DEPT_SILENT (1 = never answer: a demo of escalation),
DEPT_HISTORY_DIR.
"""
from __future__ import annotations

import json
import logging
import os
import random
import signal
import sys
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

import pika

CONTRACT_VERSION = "1.0"
REPLIES_EXCHANGE = "departments.replies"
log = logging.getLogger("department")


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat().replace("+00:00", "Z")


class DepartmentProgram:
    def __init__(self, dept_id: str, name: str, amqp_url: str | None = None, *,
                 reject_rate: float | None = None, checkin_seconds: float | None = None,
                 action_seconds: float | None = None, dispose_seconds: float | None = None,
                 silent: bool | None = None, history_dir: str | None = None, seed=None):
        env = os.environ
        self.dept_id = dept_id
        self.name = name
        self.amqp_url = amqp_url or env.get("DEPT_AMQP_URL") or "amqp://guest:guest@127.0.0.1:5672/%2F"
        self.reject_rate = float(env.get("DEPT_REJECT_RATE", 0) if reject_rate is None else reject_rate)
        self.checkin_seconds = float(env.get("DEPT_CHECKIN_SECONDS", 2) if checkin_seconds is None else checkin_seconds)
        self.action_seconds = float(env.get("DEPT_ACTION_SECONDS", 2) if action_seconds is None else action_seconds)
        self.dispose_seconds = float(env.get("DEPT_DISPOSE_SECONDS", 3) if dispose_seconds is None else dispose_seconds)
        self.silent = (env.get("DEPT_SILENT", "0") == "1") if silent is None else silent
        self.history = Path(history_dir or env.get("DEPT_HISTORY_DIR", "var/departments")) / f"{dept_id}.jsonl"
        self.history.parent.mkdir(parents=True, exist_ok=True)
        self.random = random.Random(seed)
        self.inbox = f"dept.{dept_id}.inbox"
        self.connection = None
        self.channel = None

    # ------------------------------------------------------------------ messages
    def reply(self, request: dict, kind: str, payload: dict) -> dict:
        message = {
            "schema_version": CONTRACT_VERSION,
            "distribution_id": f"{self.dept_id}-{uuid.uuid4().hex}",
            "sender": self.dept_id,
            "recipients": [request.get("sender", "dcg.coordination")],
            "kind": kind,
            "sent_at": now_iso(),
            "expires_at": None,
            "incident_id": request["incident_id"],
            "in_reply_to": request["distribution_id"],
            "payload": payload,
        }
        self.channel.basic_publish(
            REPLIES_EXCHANGE, f"{self.dept_id}.{kind.lower()}", json.dumps(message, ensure_ascii=False),
            pika.BasicProperties(content_type="application/json", delivery_mode=2,
                                 message_id=message["distribution_id"]),
            mandatory=True)
        self.remember("sent", message)
        return message

    def remember(self, direction: str, message: dict):
        with open(self.history, "a", encoding="utf-8") as handle:
            handle.write(json.dumps({"at": now_iso(), "direction": direction, "message": message},
                                    ensure_ascii=False) + "\n")

    def decide(self, request: dict) -> tuple[str, str]:
        if self.random.random() < self.reject_rate:
            return "rejected", f"{self.name}：当前警力/人员已全部出勤，无法派员，请协调其他力量"
        return "accepted", ""

    def on_message(self, channel, method, properties, body):
        try:
            request = json.loads(body)
            kind, incident = request["kind"], request["incident_id"]
            request["distribution_id"]
        except (ValueError, KeyError, TypeError) as exc:
            log.error("unreadable message in %s: %s", self.inbox, exc)
            # The platform broke the contract: park it in the inbox's dead-letter queue.
            channel.basic_nack(method.delivery_tag, requeue=False)
            return
        self.remember("received", request)
        if self.silent:
            channel.basic_ack(method.delivery_tag)
            return
        if kind == "Request":
            status, reason = self.decide(request)
            self.reply(request, "Ack", {"status": status, "reason": reason})
            if status == "accepted":
                self.schedule(self.checkin_seconds, request, "checkin", f"{self.name}已到达现场报到")
                self.schedule(self.checkin_seconds + self.action_seconds, request, "action",
                              f"{self.name}正在现场处置")
                self.schedule(self.checkin_seconds + self.action_seconds + self.dispose_seconds,
                              request, "disposition", f"{self.name}处置完毕")
        elif kind in ("Update", "Cancel"):
            self.reply(request, "Ack", {"status": "accepted", "reason": ""})
        log.info("%s %s for %s answered", self.dept_id, kind, incident)
        channel.basic_ack(method.delivery_tag)

    def schedule(self, delay: float, request: dict, stage: str, note: str):
        def send():
            self.reply(request, "Update", {"stage": stage, "note": note, "officers": []})
        self.connection.call_later(delay, send)

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
        while not stopping["flag"]:
            try:
                params = pika.URLParameters(self.amqp_url)
                params.heartbeat = 30
                self.connection = pika.BlockingConnection(params)
                self.channel = self.connection.channel()
                self.channel.confirm_delivery()
                self.channel.basic_qos(prefetch_count=10)
                self.channel.basic_consume(self.inbox, self.on_message)
                log.info("%s (%s) listening on %s", self.name, self.dept_id, self.inbox)
                self.channel.start_consuming()
            except pika.exceptions.ConnectionClosedByBroker as exc:
                log.warning("broker closed the connection: %s", exc)
            except pika.exceptions.AMQPConnectionError as exc:
                if stopping["flag"]:
                    break
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
