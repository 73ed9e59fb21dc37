"""Helpers for the coordination tests: register cases, play a department by hand with pika,
read inboxes and the events coordination published — all on the real broker and store."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from urllib.parse import quote

import pika
from nameko.testing.services import entrypoint_hook

from services.enforcement_coordination.service import CoordinationService
from shared.contracts.base import utcnow
from shared.messaging import topology
from tests.factories import case_registered
from tests.helpers import drain, observer, publish, wait_until

ROOT = Path(__file__).resolve().parents[2]
AMQP_HOSTPORT = os.environ.get("TEST_AMQP_HOSTPORT", "127.0.0.1:5672")


def start_coordination(container_factory, config, **overrides):
    """The coordination service in this test's vhost and databases; timers polled often."""
    cfg = dict(config, TIMER_POLL_SECONDS=0.1, **overrides)
    container = container_factory(CoordinationService, cfg)
    container.start()
    return container


def rpc(container, method, *args, **kwargs):
    with entrypoint_hook(container, method) as hook:
        return hook(*args, **kwargs)


def watch_events(config, name="test.coordination-events"):
    """A queue receiving every coordination event (declare it before anything happens)."""
    return observer(config, topology.SERVICE_EXCHANGES["coordination"], "#", name=name)


class Events:
    """Everything that arrived on an observer queue so far (kept across calls)."""

    def __init__(self, config, queue):
        self.config, self.queue, self.seen = config, queue, []

    def all(self):
        self.seen += [body for body, _ in drain(self.config, self.queue)]
        return self.seen

    def of(self, event_type, **match):
        return [e for e in self.all() if e["type"] == event_type
                and all(e["payload"].get(k) == v for k, v in match.items())]


def register_case(config, case_id=None, class_code="E0101", joint=(), owner="street.tianshengjie", **kwargs):
    """Publish case_registered as intake would; returns the case id."""
    case_id = case_id or f"C20261123-{uuid.uuid4().hex[:8].upper()}"
    event = case_registered(case_id=case_id, class_code=class_code, joint=joint, owner=owner, **kwargs)
    event["payload"]["address"] = "天生路18号"
    publish(config, "intake.events", "case_registered", event)
    return case_id


def open_joint(config, db, departments=("police", "environment"), class_code="E0302"):
    """A joint operation for ``departments``, once coordination opened it: (operation id,
    {department: the Request the platform sent it})."""
    case_id = register_case(config, class_code=class_code, joint=list(departments))
    op_id = f"OP-{case_id}"
    op = wait_operation(db, op_id, lambda d: True, "the operation")
    return op_id, {m["department"]: m["message"] for m in op["messages"] if m["kind"] == "Request"}


def vhost_url(vhost, user="guest", password="guest"):
    return f"amqp://{quote(user, safe='')}:{quote(password, safe='')}@{AMQP_HOSTPORT}/{quote(vhost, safe='')}"


def send_reply(url, message, routing_key=None, user_id="guest"):
    """Publish a department reply with pika (confirmed), as a department system would."""
    connection = pika.BlockingConnection(pika.URLParameters(url))
    try:
        channel = connection.channel()
        channel.confirm_delivery()
        channel.basic_publish(
            "departments.replies", routing_key or f"{message['sender']}.{message['kind'].lower()}",
            json.dumps(message, ensure_ascii=False),
            pika.BasicProperties(content_type="application/json", delivery_mode=2, user_id=user_id,
                                 message_id=message["distribution_id"]), mandatory=True)
    finally:
        connection.close()


def reply(request, kind, payload, sender=None, distribution_id=None):
    """A department's reply to a platform message."""
    sender = sender or request["recipients"][0]
    return {"schema_version": "1.1", "distribution_id": distribution_id or f"{sender}-{uuid.uuid4().hex[:12]}",
            "sender": sender, "recipients": ["dcg.coordination"], "kind": kind,
            "sent_at": utcnow().isoformat().replace("+00:00", "Z"), "incident_id": request["incident_id"],
            "in_reply_to": request["distribution_id"], "payload": payload}


def inbox(config, dept):
    return [body for body, _ in drain(config, f"dept.{dept}.inbox")]


def operation(db, operation_id):
    return db("coordination").operations.find_one({"_id": operation_id})


def wait_operation(db, operation_id, check, what, timeout=20):
    def probe():
        doc = operation(db, operation_id)
        return doc if doc is not None and check(doc) else None
    return wait_until(probe, timeout=timeout, what=what)


def dept_states(doc):
    return {dept: state["state"] for dept, state in doc["departments"].items()}


def start_program(dept, url, history_dir, **env):
    """A department program as its own process (plain pika), with fast timing by default."""
    settings = {"DEPT_ACK_SECONDS": "0", "DEPT_CHECKIN_SECONDS": "0.2", "DEPT_ACTION_SECONDS": "0.2",
                "DEPT_DISPOSE_SECONDS": "0.2", **{k: str(v) for k, v in env.items()}}
    return subprocess.Popen(
        [sys.executable, "-m", f"departments.{dept}"], cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT), "DEPT_AMQP_URL": url, "DEPT_HISTORY_DIR": str(history_dir),
             **settings},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def stop_programs(procs):
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
    for proc in procs:
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


class Api:
    """The gateway over HTTP with one account's API key (auth: services/gateway/auth.py)."""

    def __init__(self, base, key=None):
        self.base, self.key = base, key

    def as_(self, key):
        return Api(self.base, key)

    def _headers(self):
        return {"Authorization": f"Bearer {self.key}"} if self.key else {}

    def get(self, path, **kwargs):
        import requests
        return requests.get(f"{self.base}{path}", headers=self._headers(), timeout=15, **kwargs)

    def post(self, path, json=None, **kwargs):
        import requests
        return requests.post(f"{self.base}{path}", json=json, headers=self._headers(), timeout=15, **kwargs)


def api_keys(db):
    """One account per role this feature uses, in this test's gateway database."""
    from services.gateway.auth import new_key
    accounts = db("gateway").accounts
    return {
        "operator": new_key(accounts, "指挥中心值班员", "operator"),
        "street": new_key(accounts, "天生街道 城管办", "unit", unit_id="street.tianshengjie"),
        "lead": new_key(accounts, "区城管局 值班", "unit", unit_id="dept.chengguan"),
        "water": new_key(accounts, "区水务局", "unit", unit_id="dept.water"),
        "police": new_key(accounts, "区公安分局 联络员", "partner", department="police"),
        "inspector": new_key(accounts, "网格员 小李", "inspector"),
        "citizen": new_key(accounts, "市民", "citizen"),
    }
