"""One owner per fact, through intake and dispatch on the real broker and store (issue 14):
after 确权 the case goes where the citizen was told; the filing notice's time limit is the one
dispatch applies; dispatch's dispute copy converges when the decision overtakes the opening."""
import pytest
from nameko.standalone.rpc import ClusterRpcProxy

from shared import clock
from shared.contracts.base import utcnow
from shared.contracts.events import make_event
from tests.helpers import drain, publish, wait_until
from tests.integration.intake_support import GAP, start

GAP_WEST = {"lon": 106.3945, "lat": 29.8302}       # same 盲区, nearest street 东阳街道, ~145 m from GAP
TONGJIAXI = {"lon": 106.386074, "lat": 29.822771}   # a grid of 童家溪镇 (a town)


@pytest.fixture(autouse=True)
def reset_clock():
    clock.reset()
    yield
    clock.reset()


def report(location, class_code):
    return {"channel": "web", "class_code": class_code, "location": location, "description": "测试"}


def dispatched(db, case_id, check=lambda doc: True, what="the dispatch"):
    return wait_until(lambda: (lambda doc: doc if doc and check(doc) and not doc.get("_pending") else None)(
        db("dispatch").cases.find_one({"_id": case_id})), timeout=30, what=what)


def test_a_decided_gap_owner_gets_the_next_street_order_case(container_factory, config, db):
    running = start(container_factory, config, dispatch=True)
    with ClusterRpcProxy(running.config) as rpc:
        first = rpc.intake.submit_report(report(GAP, "E0506"))
        assert first["owner_unit"] == "street.dongyang" and first["dispute_id"]
        dispatched(db, first["case_id"], lambda doc: doc["unit_id"] == "street.dongyang")
        wait_until(lambda: db("intake").disputes.find_one({"_id": first["dispute_id"]}), what="the dispute")
        decided = rpc.intake.decide_ownership(first["dispute_id"], {
            "owner_unit": "street.longfengqiao", "decided_by": "区大城管工作领导小组", "note": "移交龙凤桥街道"})
        assert decided["status"] == "decided", decided
        # the case with the interim owner moves to the decided one
        dispatched(db, first["case_id"], lambda doc: doc["unit_id"] == "street.longfengqiao",
                   "the re-dispatch after 确权")
        second = rpc.intake.submit_report(report(GAP_WEST, "E0506"))     # 街面秩序, later, same 盲区
    assert second["status"] == "registered" and second["owner_unit"] == "street.longfengqiao"
    assert "责任单位：龙凤桥街道" in second["service_notice"]
    doc = dispatched(db, second["case_id"], what="the second case's dispatch")
    assert doc["unit_id"] == "street.longfengqiao"                      # where the citizen was told
    assert "确权" in doc["rule"]
    copy = db("dispatch").disputes.find_one({"_id": first["dispute_id"]})
    assert copy["owner_unit"] == "street.longfengqiao" and copy["interim_owner"] == "street.dongyang"
    assert drain(config, "dispatch.ownership.dlq") == [] and drain(config, "dispatch.case-registered.dlq") == []


def test_the_filing_notice_tells_the_time_limit_dispatch_applies(container_factory, config, db):
    running = start(container_factory, config, dispatch=True)
    with ClusterRpcProxy(running.config) as rpc:
        filed = rpc.intake.submit_report(report(TONGJIAXI, "E0101"))     # 暴露垃圾 in a town
    assert filed["status"] == "registered" and filed["owner_unit"] == "town.tongjiaxi"
    assert "处置时限 1个工作日" in filed["service_notice"] and filed["time_limit"] == "1d"
    doc = dispatched(db, filed["case_id"])
    assert doc["time_limit"] == "1d"


def intake_event(event_type, payload, correlation_id, event_id, version):
    event = make_event(event_type, payload, producer="intake", correlation_id=correlation_id, event_id=event_id)
    return dict(event, aggregate_id=payload["dispute_id"], aggregate_version=version, aggregate_seq=0)


def test_a_decision_that_overtakes_the_opening_still_moves_the_case(container_factory, config, db):
    running = start(container_factory, config, dispatch=True)
    with ClusterRpcProxy(running.config) as rpc:
        filed = rpc.intake.submit_report(report({"lon": 106.3904, "lat": 29.8338}, "E0506"))
    case_id = filed["case_id"]
    dispatched(db, case_id, lambda doc: doc["unit_id"] == "street.tianshengjie")
    now = utcnow()
    decided = intake_event("ownership_decided", {
        "dispute_id": "OD-x", "owner_unit": "dept.housing", "level": "street", "decided_by": "天生街道争议协调会",
        "decided_at": now}, "OD-x", "OD-x.decided", 3)
    opened = intake_event("ownership_dispute_opened", {
        "dispute_id": "OD-x", "case_id": case_id, "location": {"lon": 106.3904, "lat": 29.8338},
        "interim_owner": "street.tianshengjie", "level": "street", "deadline": now, "opened_at": now},
        case_id, "OD-x.opened", 1)
    publish(running.config, "intake.events", "ownership_decided", decided)       # the decision first
    wait_until(lambda: db("dispatch").disputes.find_one({"_id": "OD-x"}), what="the copy of the decision")
    publish(running.config, "intake.events", "ownership_dispute_opened", opened)
    publish(running.config, "intake.events", "ownership_decided", decided)       # and again
    doc = dispatched(db, case_id, lambda doc: doc["unit_id"] == "dept.housing", "the re-dispatch")
    copy = db("dispatch").disputes.find_one({"_id": "OD-x"})
    assert copy["owner_unit"] == "dept.housing" and copy["level"] == "street" and copy["case_id"] == case_id
    wait_until(lambda: db("dispatch").cases.find_one({"_id": case_id})["_version"] == doc["_version"],
               what="a settled case")
    types = [entry["type"] for entry in db("dispatch").cases.find_one({"_id": case_id})["history"]]
    assert types.count("ownership_decided") == 1
