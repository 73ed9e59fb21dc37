"""Intake's copy of a case on the real broker and store: dispatch's events arrive out of order
(``case_closed`` before the ``case_verified`` of the same change) and the running intake still ends
on closed — Open311 shows it closed, the citizen's 回访 is accepted, and a new report within 50 m is
a new case. Also: 回访 only from the key that filed the request (a citizen who did not answer is
recorded too), and ``external_id`` scoped per account."""
import requests
from nameko.standalone.rpc import ClusterRpcProxy

from services.gateway import auth
from shared import storage
from tests.helpers import wait_until
from tests.integration.intake_support import INSIDE, api_key, dispatch_event, start, wait_case

NORTH_10M = {"lon": INSIDE["lon"], "lat": INSIDE["lat"] + 0.00009}      # ≈ 10 m north
UNIT = "street.tianshengjie"


def post_request(running, key, location=INSIDE, **extra):
    answer = requests.post(f"{running.url}/open311/v2/requests.json", timeout=15, data={
        "api_key": key, "service_code": "E0101", "lat": location["lat"], "long": location["lon"],
        "description": "垃圾堆积", "attribute[area_m2]": "2", **extra})
    assert answer.status_code == 201, answer.text
    return answer.json()[0]["service_request_id"]


def status(running, request_id):
    return requests.get(f"{running.url}/open311/v2/requests/{request_id}.json", timeout=10).json()[0]


def test_a_case_closed_before_its_verification_is_closed_for_open311_callbacks_and_new_reports(
        container_factory, config, db):
    running = start(container_factory, config, gateway=True, extra={"INTAKE_REOPEN_DAYS": 0})
    key, other_key = api_key(db), api_key(db)
    request_id = post_request(running, key)
    case_id = db("intake").reports.find_one({"_id": request_id})["case_id"]
    now = storage.now_utc()
    common = {"case_id": case_id, "unit_id": UNIT}
    dispatch_event(running.config, "case_dispatched", dict(common, case_kind="committed", dispatched_at=now,
                                                           deadline=now), f"{case_id}.dispatched.1", version=1)
    dispatch_event(running.config, "case_accepted", dict(common, actor="张三", at=now), f"{case_id}.accepted",
                   version=2)
    dispatch_event(running.config, "case_feedback_given", dict(common, actor="张三", after_photo="photo://a", at=now),
                   f"{case_id}.feedback", version=3)
    # verification and closing are one change of dispatch (version 4): the close overtakes it
    dispatch_event(running.config, "case_closed", dict(common, deadline=now, on_time=True, closed_at=now),
                   f"{case_id}.closed.1", version=4, seq=1)
    wait_case(db, case_id, lambda c: len(c["history"]) == 4, "the close applied")
    dispatch_event(running.config, "case_verified", dict(common, inspector_id="insp-1", passed=True, at=now),
                   f"{case_id}.verified.1", version=4, seq=0)
    case = wait_case(db, case_id, lambda c: len(c["history"]) == 5, "the late verification applied")
    assert case["state"] == "closed"

    shown = status(running, request_id)
    assert shown["status"] == "closed" and "已结案" in shown["status_notes"]

    url = f"{running.url}/open311/v2/requests/{request_id}/satisfaction.json"
    rating = {"responded": "true", "resolved": "true", "satisfied": "true"}
    stranger = requests.post(url, data={**rating, "api_key": other_key}, timeout=10)
    assert stranger.status_code == 403 and "提交该诉求的账号" in stranger.json()[0]["description"]
    done = requests.post(url, data={**rating, "api_key": key}, timeout=10)
    assert done.status_code == 201, done.text
    assert done.json()[0]["satisfied"] is True

    # the same problem again, 10 m away: a new case, not a duplicate of the closed one
    again = post_request(running, key, NORTH_10M)
    filed = db("intake").reports.find_one({"_id": again})
    assert filed["status"] == "registered" and filed["case_id"] != case_id


def test_a_callback_the_citizen_did_not_answer_is_recorded(container_factory, config, db):
    running = start(container_factory, config, gateway=True)
    key = api_key(db)
    request_id = post_request(running, key)
    case_id = db("intake").reports.find_one({"_id": request_id})["case_id"]
    now = storage.now_utc()
    dispatch_event(running.config, "case_closed", {"case_id": case_id, "unit_id": UNIT, "deadline": now,
                                                   "on_time": True, "closed_at": now}, f"{case_id}.closed.1")
    wait_case(db, case_id, lambda c: c["state"] == "closed", "closed")
    url = f"{running.url}/open311/v2/requests/{request_id}/satisfaction.json"
    answer = requests.post(url, data={"api_key": key, "responded": "false"}, timeout=10)
    assert answer.status_code == 201, answer.text
    assert answer.json()[0]["responded"] is False and answer.json()[0]["satisfied"] is None
    half = requests.post(url, data={"api_key": key, "responded": "true"}, timeout=10)
    assert half.status_code == 400 and "resolved" in half.text          # answered: both questions
    again = requests.post(url, data={"api_key": key, "responded": "true", "resolved": "true",
                                     "satisfied": "true"}, timeout=10)
    assert again.status_code == 409                                      # recorded once
    report = wait_until(lambda: (lambda r: r if not r["_pending"] else None)(
        db("intake").reports.find_one({"_id": request_id})), what="satisfaction_recorded published")
    assert report["satisfaction"]["responded"] is False


def test_external_id_is_scoped_per_account(container_factory, config, db):
    running = start(container_factory, config, gateway=True)
    accounts = db("gateway").accounts
    first, second = (auth.new_key(accounts, name, "citizen") for name in ("市民 甲", "市民 乙"))

    def send(key, description="垃圾堆积"):
        return requests.post(f"{running.url}/api/reports", headers={"Authorization": f"Bearer {key}"}, timeout=15,
                             json={"class_code": "E0101", "location": INSIDE, "description": description,
                                   "external_id": "APP-1", "attributes": {"area_m2": 2}})
    one = send(first)
    assert one.status_code == 201, one.text
    other = send(second)                     # another account, the same id of its own
    assert other.status_code == 201, other.text
    assert other.json()["report_id"] != one.json()["report_id"]
    assert db("intake").reports.count_documents({}) == 2
    assert send(first).json() == one.json()                       # re-sent: the same report
    changed = send(first, "另一件事")
    assert changed.status_code == 409 and "external_id" in changed.json()["error"]["message"]
    # the rule behind it, in intake itself
    with ClusterRpcProxy(running.config) as rpc:
        assert rpc.intake.submit_report({"channel": "web", "class_code": "E0101", "location": INSIDE,
                                         "external_id": "APP-1"})["status"] == "duplicate"
