"""Ownership gaps (真空/盲区) on the real broker and store: a point in no grid goes to the nearest
street (属地兜底) and raises a dispute that climbs community → street → department → leadership
on durable timers; the decision updates the responsibility map, so the next case at that place
goes straight to the decided owner. Also: a case returned twice (dispatch's event) opens a
dispute for its class at its place."""
import functools
import pytest
import requests
from nameko.standalone.rpc import ClusterRpcProxy

from shared import clock, storage
from shared.refdata import load_district
from tests.helpers import drain, observer, wait_until
from tests.integration.intake_support import GAP, INSIDE, dispatch_event, start

GAP_EAST = {"lon": 106.3975, "lat": 29.8302}       # same 盲区, nearest street 北泉街道
GAP_WEST = {"lon": 106.3945, "lat": 29.8302}       # same 盲区, nearest street 东阳街道
EDGE_100M = {"lon": 106.3840, "lat": 29.8200}      # 100 m outside the grid map (within tolerance)
FAR_OUT = {"lon": 106.3700, "lat": 29.8100}        # far outside the district


@pytest.fixture(autouse=True)
def reset_clock():
    clock.reset()
    yield
    clock.reset()


def report(location, class_code="E0506"):
    return {"channel": "web", "class_code": class_code, "location": location, "description": "测试"}


def test_gap_default_owner_four_levels_decision_and_the_next_case(container_factory, config, db):
    running = start(container_factory, config, gateway=True)
    seen = observer(config, "intake.events")
    disputes = db("intake").disputes
    with ClusterRpcProxy(running.config) as rpc:
        first = rpc.intake.submit_report(report(GAP))
        second = rpc.intake.submit_report(report(GAP_EAST, "E0101"))
    assert first["status"] == "registered" and first["grid_code"] is None
    assert first["owner_unit"] == "street.dongyang" and first["owner_source"] == "gap_nearest_street"
    assert second["owner_unit"] == "street.beiquan"              # its own nearest street, meanwhile
    dispute_id = first["dispute_id"]
    assert dispute_id.startswith("OD-gap-") and second["dispute_id"] == dispute_id
    dispute = wait_until(lambda: (lambda d: d if d and len(d["case_ids"]) == 2 else None)(
        disputes.find_one({"_id": dispute_id})), what="both cases on one dispute")
    assert disputes.count_documents({}) == 1
    assert dispute["level"] == "community" and dispute["state"] == "open"
    assert dispute["interim_owner"] == "street.dongyang" and dispute["arbiter"] == "community:东阳社区"
    district = load_district()
    assert dispute["deadline"] == district.calendar.add_working_time(dispute["opened_at"], "1d")

    # nobody decides: each deadline passing moves it up one level (durable timers)
    for level, arbiter in (("street", "street.dongyang"), ("department", "dept.chengguan"),
                           ("leadership", "lead.group")):
        clock.advance(days=20)
        dispute = wait_until(lambda: (lambda d: d if d["level"] == level else None)(
            disputes.find_one({"_id": dispute_id})), what=f"escalation to {level}")
        assert dispute["arbiter"] == arbiter
    clock.advance(days=20)
    wait_until(lambda: disputes.find_one({"_id": dispute_id})["overdue"], what="overdue at the top")
    assert disputes.find_one({"_id": dispute_id})["level"] == "leadership"

    url = f"{running.url}/api/intake/disputes/{dispute_id}/decision"
    from services.gateway import auth
    accounts = db("gateway").accounts
    operator = {"Authorization": f"Bearer {auth.new_key(accounts, '值班员', 'operator')}"}
    leader = {"Authorization": f"Bearer {auth.new_key(accounts, '区领导', 'leader')}"}
    assert requests.post(url, json={"owner_unit": "street.beiquan", "decided_by": "x"}, timeout=10).status_code == 401
    assert requests.post(url, json={"owner_unit": "street.beiquan", "decided_by": "x"}, headers=leader,
                         timeout=10).status_code == 403                  # the leader account is read-only
    post = functools.partial(requests.post, headers=operator, timeout=10)
    assert post(url, json={"owner_unit": "lead.group", "decided_by": "x"}).status_code == 400
    bad = post(url, json={"owner_unit": "street.nowhere", "decided_by": "x"})
    assert bad.status_code == 400 and "street.nowhere" in bad.json()["error"]["message"]
    decided = post(url, json={"owner_unit": "street.beiquan", "decided_by": "冒名：区长本人",
                              "note": "区大城管工作领导小组第12次会议：新建道路移交北泉街道管理"})
    assert decided.status_code == 200, decided.text
    assert decided.json()["state"] == "decided" and decided.json()["decided_level"] == "leadership"
    assert disputes.find_one({"_id": dispute_id})["decided_by"] == "值班员"     # the key's account, not the body
    assert post(url, json={"owner_unit": "street.dongyang", "decided_by": "x"}).status_code == 409
    assert post(f"{running.url}/api/intake/disputes/OD-nothing/decision",
                json={"owner_unit": "street.dongyang", "decided_by": "x"}).status_code == 404
    listed = requests.get(f"{running.url}/api/intake/disputes?state=decided", headers=operator, timeout=10).json()
    assert [d["_id"] for d in listed] == [dispute_id]

    events = []

    def all_events():
        events.extend(body for body, _ in drain(config, seen))
        return any(e["type"] == "ownership_decided" for e in events)
    wait_until(all_events, what="ownership_decided")
    opened = [e["payload"] for e in events if e["type"] == "ownership_dispute_opened"]
    assert len(opened) == 1 and opened[0]["level"] == "community" and opened[0]["trigger"] == "gap"
    assert [e["payload"]["to_level"] for e in events if e["type"] == "ownership_dispute_escalated"] == \
        ["street", "department", "leadership"]
    decision = next(e["payload"] for e in events if e["type"] == "ownership_decided")
    assert decision["owner_unit"] == "street.beiquan" and decision["level"] == "leadership"
    assert sorted(decision["case_ids"]) == sorted([first["case_id"], second["case_id"]])
    assert decision["interim_owner"] == "street.dongyang"

    # the responsibility map changed: the next case anywhere in that 盲区 goes to 北泉街道 at once
    with ClusterRpcProxy(running.config) as rpc:
        third = rpc.intake.submit_report(report(GAP_WEST, "E0501"))
        lamp = rpc.intake.submit_report(report(GAP, "C0108"))
    assert third["owner_unit"] == "street.beiquan" and third["owner_source"] == "ownership_decided"
    assert third["dispute_id"] is None and disputes.count_documents({}) == 1
    assert lamp["owner_unit"] == "op.municipal"                 # a class owned by a department keeps it


def test_points_outside_the_grid_map(container_factory, config, db):
    running = start(container_factory, config)
    with ClusterRpcProxy(running.config) as rpc:
        edge = rpc.intake.submit_report(report(EDGE_100M))
        far = rpc.intake.submit_report(report(FAR_OUT))
    assert edge["status"] == "registered" and edge["owner_unit"] == "town.tongjiaxi"
    assert edge["dispute_id"].startswith("OD-edge-")
    assert far["status"] == "rejected" and far["reason_code"] == "outside_district"
    assert "不在嘉陵区辖区内" in far["reason"]


def test_a_case_returned_twice_opens_a_dispute_for_its_class_and_place(container_factory, config, db):
    running = start(container_factory, config)
    with ClusterRpcProxy(running.config) as rpc:
        lamp = rpc.intake.submit_report(report(INSIDE, "C0108"))
    case_id = lamp["case_id"]
    dispatch_event(running.config, "case_ownership_disputed", {
        "case_id": case_id, "units": ["op.municipal", "street.tianshengjie"], "at": storage.now_utc()},
        f"{case_id}.disputed.1")
    disputes = db("intake").disputes
    dispute = wait_until(lambda: disputes.find_one({"_id": f"OD-{case_id}"}), what="the dispute")
    assert dispute["scope"] == "class" and dispute["class_code"] == "C0108"
    assert dispute["trigger"] == "returned" and dispute["units"] == ["op.municipal", "street.tianshengjie"]
    assert dispute["interim_owner"] == "street.tianshengjie"
    wait_until(lambda: db("intake").cases.find_one({"_id": case_id})["dispute_id"] == dispute["_id"],
               what="the case marked")
    with ClusterRpcProxy(running.config) as rpc:
        decided = rpc.intake.decide_ownership(dispute["_id"], {"owner_unit": "dept.municipal",
                                                               "decided_by": "区城管局"})
        assert decided["status"] == "decided"
        near = rpc.intake.submit_report(report({"lon": INSIDE["lon"] + 0.000621, "lat": INSIDE["lat"]}, "C0108"))
        other_class = rpc.intake.submit_report(report({"lon": INSIDE["lon"] + 0.000621, "lat": INSIDE["lat"]}, "E0101"))
        farther = rpc.intake.submit_report(report({"lon": INSIDE["lon"] + 0.0031, "lat": INSIDE["lat"]}, "C0108"))
    assert near["owner_unit"] == "dept.municipal" and near["owner_source"] == "ownership_decided"
    assert other_class["owner_unit"] == "street.tianshengjie"
    assert farther["owner_unit"] == "op.municipal"
