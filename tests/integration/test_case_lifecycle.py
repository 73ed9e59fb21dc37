"""End to end through the gateway, on the real broker and store: a citizen's report → intake
registers the case → dispatch routes it → the unit accepts and reports back → the inspector
verifies and the case is closed; the whole timeline (intake and dispatch) in one call, and the
case list with its filters and pagination."""
import pytest
import requests

from services.dispatch import listing as case_listing
from services.dispatch.service import DispatchService, list_old_cases
from services.gateway.service import GatewayService
from services.intake.service import IntakeService
from tests.conftest import free_port
from tests.helpers import drain, wait_until
from tests.dispatch_support import (  # noqa: F401  (fixtures)
    UNIT, dispatch_config, local, log_in, ok, operator_headers, saturday_morning, set_clock, wait_case,
)

INSIDE = {"lon": 106.3904, "lat": 29.8338}          # 天生路社区第1网格, 天生街道
# three grids of 天生街道, far enough apart not to be linked as duplicates of one case
PLACES = [INSIDE, {"lon": 106.394165, "lat": 29.833618}, {"lon": 106.3902, "lat": 29.830084}]


@pytest.fixture
def gateway(container_factory, config, db, saturday_morning):
    port = free_port()
    container_factory(IntakeService, config).start()
    container_factory(DispatchService, dispatch_config(config)).start()
    container_factory(GatewayService, dict(config, WEB_SERVER_ADDRESS=f"127.0.0.1:{port}")).start()
    log_in(f"http://127.0.0.1:{port}", db)
    return f"http://127.0.0.1:{port}"


def report(gateway, description, location=INSIDE):
    answer = requests.post(f"{gateway}/api/reports", json={
        "class_code": "E0101", "location": location, "address": "天生路18号", "description": description,
        "attributes": {"area_m2": 2}, "reporter": {"name": "张三", "phone": "13800000000"}}, timeout=15,
        headers=operator_headers(gateway))
    assert answer.status_code == 201, answer.text
    return answer.json()["case_id"]


def test_a_report_to_a_closed_case_with_its_whole_timeline(gateway, config, db):
    case_id = report(gateway, "路口暴露垃圾约2平方米")
    wait_case(db, case_id, lambda doc: not doc["_pending"], "dispatch")
    case = ok(gateway, case_id, "accept", expected_version=1, **UNIT)
    case = ok(gateway, case_id, "feedback", expected_version=case["version"],
              after_photo="/media/d204b51ff8be722056d816a56a992eba", note="已清运", **UNIT)
    case = ok(gateway, case_id, "verify", expected_version=case["version"], actor="严勇", passed=True,
              note="现场已清理")
    assert case["state"] == "closed" and case["on_time"] is True

    timeline = requests.get(f"{gateway}/api/cases/{case_id}/timeline", timeout=15,
                            headers=operator_headers(gateway)).json()
    entries = timeline["entries"]
    assert [entry["type"] for entry in entries] == [
        "report_received", "case_registered", "case_dispatched", "first_contact", "case_accepted",
        "first_reply", "case_feedback_given", "case_verified", "case_closed"]   # 首问负责: first_contact.py
    assert entries[0]["source"] == "intake" and entries[0]["actor"] == "张三"
    assert "13800000000" not in str(timeline)                            # no reporter phone here
    assert all(entry["at"].endswith("+08:00") for entry in entries)       # local time
    assert [entry["at"] for entry in entries] == sorted(entry["at"] for entry in entries)
    assert entries[4]["actor"] == "王天怡" and entries[7]["actor"] == "严勇"
    assert entries[2]["unit_id"] == "street.tianshengjie" and entries[2]["deadline"] == "2026-11-30T14:30:00+08:00"
    assert timeline["state"] == "closed" and timeline["timezone"] == "Asia/Shanghai"

    # the citizen who reported it heard twice, by SMS: dispatched (to whom, by when), then closed
    notices = []
    wait_until(lambda: notices.extend(body for body, _ in drain(config, "notify.reporter-outbox")) or
               len(notices) >= 2, what="two notices to the reporter")
    assert [(n["payload"]["kind"], n["payload"]["reporter_id"], n["payload"]["channel"]) for n in notices] == [
        ("dispatched", "phone:13800000000", "sms"), ("closed", "phone:13800000000", "sms")]
    assert "天生街道" in notices[0]["payload"]["message"] and "2026-11-30 14:30" in notices[0]["payload"]["message"]
    assert all(n["type"] == "reporter_notified" and n["payload"]["case_id"] == case_id for n in notices)


def test_the_case_list_filters_and_pages(gateway, config, db):
    ids = [report(gateway, f"暴露垃圾 {n}", place) for n, place in enumerate(PLACES)]
    for case_id in ids:
        wait_case(db, case_id, lambda doc: not doc["_pending"], "dispatch")
    ok(gateway, ids[0], "accept", expected_version=1, **UNIT)

    def listing(**query):
        answer = requests.get(f"{gateway}/api/cases", params=query, timeout=15, headers=operator_headers(gateway))
        assert answer.status_code == 200, answer.text
        return answer.json()

    everything = listing(per_page=2)
    assert everything["total"] == 3 and len(everything["items"]) == 2 and everything["page"] == 1
    assert len(listing(per_page=2, page=2)["items"]) == 1
    # the unfiltered list (dispatch's day lists) pages in the filtered list's order
    def order(**query):
        return [item["case_id"] for item in listing(per_page=3, **query)["items"]]
    assert order() == order(overdue="false") and sorted(order()) == sorted(ids)
    assert [item["case_id"] for page in (1, 2) for item in listing(per_page=2, page=page)["items"]] == order()
    # a store saved before the day lists existed: dispatch's start-up migration lists its cases
    store = db("dispatch")
    store[case_listing.DAYS].delete_many({})
    assert listing(per_page=3)["total"] == 0
    assert list_old_cases(store) == 3 and order() == order(overdue="false")
    assert [item["case_id"] for item in listing(state="accepted")["items"]] == [ids[0]]
    assert listing(unit="street.tianshengjie", grid="500190001", **{"class": "E01"})["total"] == 3
    assert listing(grid="500190002")["total"] == 0 and listing(**{"class": "C"})["total"] == 0
    assert listing(since="2026-11-28T00:00:00", until="2026-11-29T00:00:00")["total"] == 3
    assert listing(since="2026-11-29T00:00:00+08:00")["total"] == 0
    assert listing(overdue="true")["total"] == 0 and listing(overdue="false")["total"] == 3
    item = listing(state="dispatched")["items"][0]
    assert item["deadline"] == "2026-11-30T14:30:00+08:00" and item["version"] == 1
    bad = requests.get(f"{gateway}/api/cases", params={"state": "lost", "per_page": 500}, timeout=15,
                       headers=operator_headers(gateway))
    assert bad.status_code == 400 and set(bad.json()["error"]["fields"]) == {"state", "per_page"}
    assert requests.get(f"{gateway}/api/cases/C-NONE/timeline", timeout=15,
                        headers=operator_headers(gateway)).status_code == 404
    set_clock(local(2026, 11, 30, 15, 0))                 # past Monday 14:30: all three overdue
    assert listing(overdue="true")["total"] == 3
