"""Helpers for the dispatch integration tests: a platform with dispatch and the gateway in nameko
containers on the real broker and store, a clock set to a known moment, cases registered by
publishing intake's case_registered event, and HTTP calls to the case actions."""
from __future__ import annotations

import uuid
from datetime import datetime, timezone
from zoneinfo import ZoneInfo

import pytest
import requests

from services.dispatch.service import DispatchService
from services.gateway.service import GatewayService
from shared import clock
from shared.contracts.base import utcnow
from shared.contracts.events import make_event
from shared.refdata import load_district
from tests.conftest import free_port
from tests.helpers import drain, observer, publish, queue_depth, wait_until

CST = ZoneInfo("Asia/Shanghai")
UTC = timezone.utc
DISTRICT = load_district()
TIANSHENG = {"grid_code": "500190001001001", "street_id": "street.tianshengjie",
             "location": {"lon": 106.3904, "lat": 29.8338}}
UNIT = {"actor": "王天怡", "actor_unit": "street.tianshengjie"}


def local(y, mo, d, h, mi=0) -> datetime:
    return datetime(y, mo, d, h, mi, tzinfo=CST)


def set_clock(moment: datetime):
    """Move the platform clock (this process: the services under test run here) to ``moment``."""
    clock.advance(seconds=(moment - clock.now()).total_seconds())


@pytest.fixture
def saturday_morning():
    """Saturday 2026-11-28 10:00 in the district: a case dispatched now starts its clock on
    Monday 08:30, so deadlines are exact whatever the test's own running time."""
    clock.reset()
    set_clock(local(2026, 11, 28, 10, 0))
    yield
    clock.reset()


def dispatch_config(config, **extra):
    return dict(config, TIMER_POLL_SECONDS=0.1, **extra)


class Platform(str):
    """The gateway's base URL; ``.dispatch`` is the dispatch container."""
    dispatch = None


@pytest.fixture
def platform(container_factory, config, db, saturday_morning):
    """dispatch + gateway; returns the gateway's base URL."""
    port = free_port()
    dispatch = container_factory(DispatchService, dispatch_config(config))
    dispatch.start()
    container_factory(GatewayService, dict(config, WEB_SERVER_ADDRESS=f"127.0.0.1:{port}")).start()
    base = Platform(f"http://127.0.0.1:{port}")
    base.dispatch = dispatch
    log_in(base, db)
    return base


# ------------------------------------------------------------------ logging in (services/gateway/auth.py)
_ACCOUNTS = {}      # gateway base URL → (accounts collection, {identity: key})


def log_in(base, db):
    """Let ``post``/``ok`` log in to this gateway: each call uses an account matching the identity
    its body names (the gateway itself ignores those body fields and takes them from the key)."""
    _ACCOUNTS[str(base)] = (db("gateway").accounts, {})


def operator_headers(base) -> dict:
    """The command centre's login, for reports, reads and lists."""
    from services.gateway.auth import new_key
    accounts, keys = _ACCOUNTS[str(base)]
    if "operator" not in keys:
        keys["operator"] = new_key(accounts, "指挥中心值班员", "operator")
    return {"Authorization": f"Bearer {keys['operator']}"}


def key_for(base, action, body) -> str:
    """The account for a call: a unit account of ``actor_unit`` named ``actor``; for ``role`` an
    operator approving with that rank (``leader``: the admin); for verify an inspector named ``actor``."""
    from services.gateway.auth import new_key
    accounts, keys = _ACCOUNTS[str(base)]
    actor = body.get("actor") or "测试"
    if body.get("role"):
        role = body["role"]
        identity = ("admin", "区领导", None) if role == "leader" else ("operator", actor, role)
    elif action.replace("-", "_") == "verify":
        identity = ("inspector", actor, None)
    else:
        identity = ("unit", actor, body.get("actor_unit") or UNIT["actor_unit"])
    if identity not in keys:
        kind, name, scope = identity
        keys[identity] = new_key(accounts, name, kind, unit_id=scope if kind == "unit" else None,
                                 approver=scope if kind == "operator" else None)
    return keys[identity]


def settle(platform, config, *queues):
    """Stop dispatch gracefully (running handlers finish and ack); then every message it was
    given is either applied and acked, or back in its queue — check those queues are empty."""
    for queue in queues:
        wait_until(lambda: queue_depth(config, queue) == 0, what=f"{queue} to be delivered")
    platform.dispatch.stop()
    for queue in queues:
        assert queue_depth(config, queue) == 0, f"{queue} still holds messages"


def new_case_id() -> str:
    return f"C20261128-{uuid.uuid4().hex[:8].upper()}"


def register(config, class_code="E0101", place=TIANSHENG, case_id=None, urgency="normal", **extra):
    """Publish intake's case_registered for a case at ``place`` (as intake would)."""
    minor = DISTRICT.minor_class(class_code)
    case_id = case_id or new_case_id()
    owner = place["street_id"] if minor["owner"] == "street" else minor["owner"]
    event = make_event("case_registered", {
        "case_id": case_id, "report_id": f"rpt-{case_id}", "channel": "inspector",
        "class_code": class_code, "class_name": minor["name"], "class_kind": minor["kind"],
        "urgency": urgency, "location": place["location"], "address": "天生路18号",
        "grid_code": place["grid_code"], "street_id": place["street_id"], "owner_unit": owner,
        "joint_partners": [], "description": "测试案件", "registered_at": utcnow(), **extra,
    }, producer="intake", correlation_id=case_id, event_id=f"rpt-{case_id}.registered")
    publish(config, "intake.events", "case_registered", event)
    return case_id


def wait_case(db, case_id, check=lambda doc: True, what="the case"):
    cases = db("dispatch").cases
    return wait_until(lambda: (lambda doc: doc if doc and check(doc) else None)(cases.find_one({"_id": case_id})),
                      timeout=20, what=what)


def relayed(db, case_id):
    """The case once its outbox has been published."""
    return wait_case(db, case_id, lambda doc: not doc.get("_pending"), "the outbox to be published")


def post(base, case_id, action, **body):
    return requests.post(f"{base}/api/cases/{case_id}/actions/{action}", json=body, timeout=15,
                         headers={"Authorization": f"Bearer {key_for(base, action, body)}"})


def ok(base, case_id, action, **body) -> dict:
    answer = post(base, case_id, action, **body)
    assert answer.status_code == 200, answer.text
    return answer.json()["case"]


def wire(config, routing_key="#"):
    return observer(config, "dispatch.events", routing_key, name=f"test.dispatch.{routing_key}".replace("#", "all"))


def taken(config, queue):
    return [body for body, _ in drain(config, queue)]


__all__ = ["CST", "UTC", "DISTRICT", "TIANSHENG", "UNIT", "local", "set_clock", "saturday_morning",
           "platform", "register", "wait_case", "relayed", "post", "ok", "wire", "taken", "new_case_id",
           "dispatch_config", "settle", "log_in", "key_for", "operator_headers"]
