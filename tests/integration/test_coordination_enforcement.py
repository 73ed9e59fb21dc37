"""Graduated enforcement over HTTP on the real broker and store: 首违不罚, the ladder from a
party's history, and 限期整改 whose follow-up is a durable timer (the platform clock is moved)."""
import pytest

from services.gateway.service import GatewayService
from shared import clock
from tests.conftest import free_port
from tests.helpers import wait_until
from tests.integration.coordination_support import Api, Events, api_keys, start_coordination, watch_events

SHOP = {"kind": "licence", "number": "91350100M000100Y43", "name": "天生路某烧烤店"}
VAN = {"kind": "plate", "number": "渝A12345"}


@pytest.fixture(autouse=True)
def reset_clock():
    clock.reset()
    yield
    clock.reset()


@pytest.fixture
def gateway(container_factory, config, db):
    """The gateway, called as the command centre: a violation found on patrol belongs to no case or
    operation, so no unit owns it (a unit files only on its own case or the operation it leads:
    tests/integration/test_access_matrix.py)."""
    start_coordination(container_factory, config)
    port = free_port()
    container_factory(GatewayService, dict(config, WEB_SERVER_ADDRESS=f"127.0.0.1:{port}")).start()
    keys = api_keys(db)
    api = Api(f"http://127.0.0.1:{port}", keys["operator"])
    api.keys = keys
    return api


def violation(gateway, party, corrected=False, **extra):
    body = {"party": party, "class_code": "E0501", "severity": "minor", "corrected": corrected,
            "officer": "执法队员 张伟", **extra}
    return gateway.post("/api/enforcement/violations", json=body)


def test_first_violation_not_penalised_then_the_ladder_from_the_history(config, db, gateway):
    events = Events(config, watch_events(config))
    bad = violation(gateway, {"kind": "id_card", "number": "110105194912310021"})
    assert bad.status_code == 400 and "number" in bad.json()["error"]["fields"]["party"]

    first = violation(gateway, VAN, corrected=True, violation_id="v1")
    assert first.status_code == 201, first.text
    decided = first.json()["violation"]
    assert decided["step"] == "educate" and decided["exempt"] is True and decided["order"] is None
    again = violation(gateway, VAN, corrected=True, violation_id="v1")          # idempotent
    assert again.status_code == 200 and again.json()["violation"]["decisions"] == first.json()["violation"]["decisions"]

    second = violation(gateway, VAN, corrected=True, violation_id="v2").json()["violation"]
    assert second["step"] == "guide" and second["exempt"] is False and second["prior"] == 1
    history = gateway.get("/api/enforcement/parties/plate/渝A12345").json()
    assert gateway.as_(gateway.keys["police"]).get("/api/enforcement/parties/plate/渝A12345").status_code == 403
    assert [v["step"] for v in history["violations"]] == ["educate", "guide"]

    published = wait_until(lambda: len(events.of("enforcement_decided")) == 2 and events.of("enforcement_decided"),
                           what="two decisions")
    assert [e["payload"]["first_violation_exempt"] for e in published] == [True, False]
    assert all("渝A12345" not in str(e) for e in published)                     # a pseudonym only
    assert published[0]["payload"]["party_id"] == history["party_id"]


def test_rectification_not_corrected_by_the_deadline_moves_up_the_ladder(config, db, gateway):
    answer = violation(gateway, SHOP, violation_id="s1")
    assert answer.status_code == 201, answer.text
    decided = answer.json()["violation"]
    assert decided["step"] == "persuade" and decided["pending_exempt"] is True
    order_id = decided["order"]["order_id"]
    assert order_id == "s1-R1"

    assert gateway.as_(gateway.keys["inspector"]).post(f"/api/enforcement/rectifications/{order_id}/check",
                                                       json={"corrected": False}).status_code == 403
    assert gateway.as_(gateway.keys["lead"]).post(f"/api/enforcement/rectifications/{order_id}/check",
                                                  json={"corrected": False}).status_code == 403   # not its case
    inspector = gateway                                  # the command centre checks (the checker: its key)
    early = inspector.post(f"/api/enforcement/rectifications/{order_id}/check",
                           json={"corrected": False, "inspector": "核查员 李"})
    assert early.status_code == 200 and early.json()["resolved"] is False      # still within the deadline

    clock.advance(hours=25)                                                     # E0501: 24 hours to correct
    parties = db("coordination").parties

    def climbed():
        doc = parties.find_one({})
        return doc if doc and doc["violations"][0]["step"] == "educate" else None
    doc = wait_until(climbed, what="the follow-up check at the deadline")
    record = doc["violations"][0]
    assert record["exempt"] is False and record["orders"][0]["status"] == "not_corrected"
    assert record["orders"][0]["checks"][0]["by"] == "指挥中心值班员"            # the key's, not the body's
    assert record["order"]["order_id"] == "s1-R2" and [t["id"] for t in doc["_timers"]] == ["s1-R2"]

    fixed = inspector.post("/api/enforcement/rectifications/s1-R2/check",
                           json={"corrected": True, "inspector": "核查员 李", "note": "已清理"})
    assert fixed.status_code == 200, fixed.text
    record = fixed.json()["violation"]
    assert record["status"] == "closed" and record["step"] == "educate" and not record["exempt"]
    assert parties.find_one({})["_timers"] == []
    missing = inspector.post("/api/enforcement/rectifications/s1-R2/check", json={"corrected": True, "inspector": "x"})
    assert missing.status_code == 404


def test_corrected_within_the_deadline_is_first_violation_exempt(config, db, gateway):
    answer = violation(gateway, SHOP, violation_id="s2").json()
    order_id = answer["violation"]["order"]["order_id"]
    clock.advance(hours=3)
    fixed = gateway.post(f"/api/enforcement/rectifications/{order_id}/check",
                         json={"corrected": True, "inspector": "核查员 李"}).json()
    assert fixed["violation"]["step"] == "educate" and fixed["violation"]["exempt"] is True
    assert [d["step"] for d in fixed["violation"]["decisions"]] == ["persuade", "educate"]
