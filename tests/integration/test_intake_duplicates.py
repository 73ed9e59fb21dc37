"""Duplicates and reopening, on the real broker and store: a report of the same class within
~50 m of an open case is linked (duplicate_of) and its reporter subscribed; a repeat within N days
after closing reopens the case as rework; after N days it is a new case."""
import pytest
import requests
from nameko.standalone.rpc import ClusterRpcProxy

from shared import clock, storage
from tests.helpers import drain, observer, wait_until
from tests.integration.intake_support import INSIDE, close_case, dispatch_event, start, wait_case

EAST_30M = {"lon": INSIDE["lon"] + 0.000311, "lat": INSIDE["lat"]}     # ≈ 30 m east
EAST_80M = {"lon": INSIDE["lon"] + 0.000828, "lat": INSIDE["lat"]}     # ≈ 80 m east
NORTH_10M = {"lon": INSIDE["lon"], "lat": INSIDE["lat"] + 0.00009}      # ≈ 10 m north


@pytest.fixture(autouse=True)
def reset_clock():
    clock.reset()
    yield
    clock.reset()


def report(location, class_code="E0101", **extra):
    return {"channel": "web", "class_code": class_code, "location": location,
            "description": "垃圾堆积", **extra}


def collect(config, queue, into, types):
    into.extend(body for body, _ in drain(config, queue))
    return all(any(e["type"] == t for e in into) for t in types)


def test_reports_of_one_problem_arriving_together_open_one_case(container_factory, config, db):
    """Eight citizens report the same pile of garbage at the same moment (within ~10 m): one case,
    seven duplicates linked to it — not several cases racing each other."""
    import eventlet
    running = start(container_factory, config)
    places = [INSIDE, NORTH_10M] * 4

    def submit(number):
        with ClusterRpcProxy(running.config) as rpc:
            return rpc.intake.submit_report(report(places[number], reporter={"phone": f"1390000000{number}"}))
    pool = eventlet.GreenPool(8)
    answers = list(pool.imap(submit, range(8)))
    assert sorted(answer["status"] for answer in answers) == ["duplicate"] * 7 + ["registered"]
    assert len({answer["case_id"] for answer in answers}) == 1
    assert db("intake").cases.count_documents({}) == 1
    case = db("intake").cases.find_one({})
    assert len(case["report_ids"]) == 8 and case["duplicate_count"] == 7
    # claims are not deleted when a filing ends: each is held by a filing that is done (its report)
    claims = list(db("intake").filing_claims.find({}))
    assert claims and all(db("intake").reports.find_one({"_id": claim["holder"]}) for claim in claims)


def test_a_filing_takes_over_the_claims_of_a_finished_filing_without_waiting_for_their_lease(
        container_factory, config, db):
    """Claims stay after a filing (no release write); the next report of the same place finds
    their holder's report and takes them over at once (a 10 s lease would otherwise hold it)."""
    running = start(container_factory, config)
    with ClusterRpcProxy(running.config) as rpc:
        first = rpc.intake.submit_report(report(INSIDE))
        held = {claim["_id"]: claim["holder"] for claim in db("intake").filing_claims.find({})}
        clock.advance(seconds=-60)          # the first filing's leases cannot run out during this test
        second = rpc.intake.submit_report(report(NORTH_10M))
    assert set(held.values()) == {first["report_id"]} and len(held) == 4
    assert second["status"] == "duplicate" and second["case_id"] == first["case_id"]
    holders = {claim["_id"]: claim["holder"] for claim in db("intake").filing_claims.find({})}
    shared = set(held) & set(holders)
    assert shared and all(holders[key] == second["report_id"] for key in shared)


def test_same_class_nearby_while_open_is_linked_and_its_reporter_subscribed(container_factory, config, db):
    running = start(container_factory, config, gateway=True)
    seen = observer(config, "intake.events")
    with ClusterRpcProxy(running.config) as rpc:
        first = rpc.intake.submit_report(report(INSIDE, reporter={"phone": "13800000001"}))
        second = rpc.intake.submit_report(report(EAST_30M, reporter={"account_id": "acct-2"}))
        other_class = rpc.intake.submit_report(report(EAST_30M, class_code="E0102"))
        farther = rpc.intake.submit_report(report(EAST_80M))
    assert first["status"] == "registered"
    assert second["status"] == "duplicate" and second["case_id"] == first["case_id"]
    assert second["duplicate_of"] == first["case_id"] and 28 < second["distance_m"] < 32
    assert other_class["status"] == "registered" and other_class["case_id"] != first["case_id"]
    assert farther["status"] == "registered" and farther["case_id"] != first["case_id"]

    case = db("intake").cases.find_one({"_id": first["case_id"]})
    assert case["report_ids"] == [first["report_id"], second["report_id"]]
    assert [s["reporter_id"] for s in case["subscribers"]] == ["phone:13800000001", "account_id:acct-2"]
    assert case["duplicate_count"] == 1
    events = []
    wait_until(lambda: collect(config, seen, events, ["report_linked_as_duplicate"]), what="the link event")
    linked = next(e for e in events if e["type"] == "report_linked_as_duplicate")
    assert linked["correlation_id"] == first["case_id"]
    assert linked["payload"]["report_id"] == second["report_id"]
    assert linked["payload"]["reporter_id"] == "account_id:acct-2"
    # the duplicate's Open311 status follows its case
    one = requests.get(f"{running.url}/open311/v2/requests/{second['report_id']}.json", timeout=10).json()[0]
    assert one["status"] == "open" and one["status_notes"].startswith(f"重复上报，已并入案件 {first['case_id']}")
    # re-sent (same external id): still one report, one link
    with ClusterRpcProxy(running.config) as rpc:
        again = [rpc.intake.submit_report(report(EAST_30M, channel="hotline", external_id="T-9"))
                 for _ in range(2)]
    assert again[0] == again[1] and again[0]["status"] == "duplicate"
    assert db("intake").cases.find_one({"_id": first["case_id"]})["duplicate_count"] == 2


def test_repeat_after_closing_reopens_within_the_window_then_is_a_new_case(container_factory, config, db):
    running = start(container_factory, config, extra={"INTAKE_REOPEN_DAYS": 3})
    seen = observer(config, "intake.events")
    with ClusterRpcProxy(running.config) as rpc:
        first = rpc.intake.submit_report(report(INSIDE))
        case_id = first["case_id"]
        close_case(running.config, case_id)
        wait_case(db, case_id, lambda c: c["state"] == "closed", "closed")
        clock.advance(days=2)                                 # within the 3-day window
        repeat = rpc.intake.submit_report(report(NORTH_10M, reporter={"phone": "13800000009"}))
        assert repeat["status"] == "reopened" and repeat["case_id"] == case_id
        case = db("intake").cases.find_one({"_id": case_id})
        assert case["state"] == "reopened" and case["reopen_count"] == 1
        assert case["subscribers"][-1]["reporter_id"] == "phone:13800000009"
        events = []
        wait_until(lambda: collect(config, seen, events, ["case_reopened"]), what="case_reopened")
        reopened = next(e for e in events if e["type"] == "case_reopened")["payload"]
        assert reopened["case_id"] == case_id and reopened["report_id"] == repeat["report_id"]
        assert reopened["unit_id"] == "street.tianshengjie" and reopened["reopen_count"] == 1
        assert "重新打开" in reopened["reason"]

        # a close that was delayed (older than the reopening) does not close it again
        stale = storage.now_utc().replace(year=2020)
        dispatch_event(running.config, "case_closed", {"case_id": case_id, "unit_id": "street.tianshengjie",
                                                       "deadline": stale, "on_time": True, "closed_at": stale},
                       f"{case_id}.closed.stale", version=1)
        # dispatch orders the rework; a third report is then a plain duplicate of the open case
        dispatch_event(running.config, "case_rework_ordered", {"case_id": case_id, "unit_id": "street.tianshengjie",
                                                               "reason": "重复出现，返工", "at": storage.now_utc()},
                       f"{case_id}.rework.1")
        wait_case(db, case_id, lambda c: c["state"] == "rework" and len(c["history"]) == 3,
                  "the rework and the stale close applied")
        assert [h["applied"] for h in db("intake").cases.find_one({"_id": case_id})["history"]
                if h["type"] == "case_closed"] == [True, False]
        third = rpc.intake.submit_report(report(EAST_30M))
        assert third["status"] == "duplicate" and third["case_id"] == case_id

        close_case(running.config, case_id)
        wait_case(db, case_id, lambda c: c["state"] == "closed" and c["reopen_count"] == 1, "closed again")
        clock.advance(days=4)                                 # past the window
        later = rpc.intake.submit_report(report(INSIDE))
        assert later["status"] == "registered" and later["case_id"] != case_id
