"""Joint operations on the real broker and store, with departments played by hand (pika):
the three ways an operation starts, silence until escalation (moving the platform clock),
the coordinator's Update and Cancel, closing only by the lead, and a department that tries
to leave or talks after the close."""
import uuid

import pytest

from services.gateway.service import GatewayService
from shared import clock
from shared.contracts import errors
from shared.contracts.departments import load_platform_message
from tests.conftest import free_port
from tests.helpers import drain, wait_until

from tests.integration.coordination_support import (Api, Events, api_keys, dept_states, inbox, operation,
                                                    register_case, reply, rpc, send_reply, start_coordination,
                                                    vhost_url, wait_operation, watch_events)

LEAD = "dept.chengguan"
CENTRE = "center.command"


@pytest.fixture(autouse=True)
def reset_clock():
    clock.reset()
    yield
    clock.reset()


@pytest.fixture
def coordination(container_factory, config):
    return start_coordination(container_factory, config)


@pytest.fixture
def events(config):
    return Events(config, watch_events(config))


@pytest.fixture
def gateway(container_factory, config, coordination):
    from services.dispatch.service import DispatchService     # who owns a case now: dispatch's view
    container_factory(DispatchService, config).start()
    port = free_port()
    container_factory(GatewayService, dict(config, WEB_SERVER_ADDRESS=f"127.0.0.1:{port}")).start()
    return Api(f"http://127.0.0.1:{port}")


@pytest.fixture
def keys(db):
    return api_keys(db)


def known_case(config, db, dispatched=False, **kwargs):
    case_id = register_case(config, **kwargs)
    wait_until(lambda: db("coordination").cases.find_one({"_id": case_id}), what="coordination to keep the case")
    if dispatched:                                      # assigned to its unit (the gateway checks that)
        wait_until(lambda: (db("dispatch").cases.find_one({"_id": case_id}) or {}).get("unit_id"),
                   what="dispatch to assign the case")
    return case_id


def one_request(config, dept):
    messages = wait_until(lambda: inbox(config, dept), what=f"a request in dept.{dept}.inbox")
    assert len(messages) == 1, messages
    return load_platform_message(messages[0]) and messages[0]


# ------------------------------------------------------------------ the three starts
def test_class_rule_opens_an_operation_with_one_request_per_department(config, db, coordination, events):
    case_id = register_case(config, class_code="E0406", joint=["police"])     # 暴力抗法 → 城管 + police
    op = wait_operation(db, f"OP-{case_id}", lambda d: d["_pending"] is False, "the operation and its sends")
    assert op["trigger"] == "class_rule" and op["lead_unit"] == LEAD and op["state"] == "open"
    assert op["case_id"] == case_id and op["place"]["address"] == "天生路18号"
    assert op["lead"]["name"].startswith("区城市管理局") and "023-68280024" in op["lead"]["contact"]
    assert dept_states(op) == {"police": "requested"}

    request = one_request(config, "police")
    assert request["kind"] == "Request" and request["sender"] == "dcg.coordination"
    assert request["recipients"] == ["police"] and request["incident_id"] == f"OP-{case_id}"
    assert request["distribution_id"] == f"OP-{case_id}.police.request.1"
    assert request["schema_version"] == "1.1" and request["expires_at"] > request["sent_at"]
    payload = request["payload"]
    assert payload["what"]["case_id"] == case_id and payload["what"]["class_code"] == "E0406"
    assert payload["where"]["location"] == {"lon": 106.40, "lat": 29.83}
    assert payload["lead"]["unit_id"] == LEAD
    # police: ack due 5 min, check-in 30 min after the request (normal urgency)
    sent = op["departments"]["police"]["sent_at"]
    assert (op["departments"]["police"]["ack_deadline"] - sent).total_seconds() == 5 * 60
    assert (op["departments"]["police"]["checkin_deadline"] - sent).total_seconds() == 30 * 60
    wait_until(lambda: events.of("department_request_sent", department="police"), what="request_sent event")
    opened = events.of("joint_operation_opened")[0]["payload"]
    assert opened["departments"] == ["police"] and opened["trigger"] == "class_rule"


def test_a_street_whistles_on_its_own_case_over_http(config, db, gateway, keys, events):
    case_id = known_case(config, db, dispatched=True, class_code="E0101")     # 暴露垃圾: no partners
    assert operation(db, f"OP-{case_id}") is None
    street = gateway.as_(keys["street"])
    body = {"case_id": case_id, "departments": ["environment", "construction"], "request_id": "w1",
            "requested_by": {"unit_id": "street.beiquan", "person": "冒名：区长本人"},   # a unit acts as itself
            "reason": "工地夜间偷倒建筑垃圾，需生态环境、住建到场", "urgency": "urgent"}
    assert gateway.post("/api/operations", json=body).status_code == 401        # no key
    answer = street.post("/api/operations", json=body)
    assert answer.status_code == 201, answer.text
    op = answer.json()["operation"]
    assert op["_id"] == f"OP-{case_id}-Ww1" and op["trigger"] == "whistle"
    assert op["lead_unit"] == "street.tianshengjie" and op["requested_by"] == "street.tianshengjie"
    assert op["urgency"] == "urgent" and "天生街道 城管办" in op["reason"] and "冒名" not in op["reason"]
    for dept in ("environment", "construction"):
        request = one_request(config, dept)
        assert request["payload"]["operation"]["trigger"] == "whistle"
        assert request["payload"]["lead"]["unit_id"] == "street.tianshengjie"
    doc = operation(db, op["_id"])       # urgent: environment and construction check in within 20 minutes
    for dept in ("environment", "construction"):
        state = doc["departments"][dept]
        assert (state["checkin_deadline"] - state["sent_at"]).total_seconds() == 20 * 60
        assert (state["ack_deadline"] - state["sent_at"]).total_seconds() == 3 * 60

    again = street.post("/api/operations", json=body)                           # same request_id
    assert again.status_code == 200 and again.json()["operation"]["_id"] == op["_id"]
    assert inbox(config, "environment") == []                                    # nothing sent twice

    board = street.get("/api/operations?state=open").json()["operations"]
    assert [o["operation_id"] for o in board] == [op["_id"]]
    assert gateway.as_(keys["police"]).get("/api/operations").json()["operations"] == []   # not asked to join
    assert gateway.as_(keys["citizen"]).get("/api/operations").status_code == 403
    rows = gateway.as_(keys["operator"]).get(f"/api/cases/{case_id}/operations").json()["operations"]
    assert rows[0]["departments"]["environment"]["state"] == "requested"


def test_whistle_input_errors_are_field_level(config, db, gateway, keys):
    case_id = known_case(config, db, dispatched=True)
    not_its_case = gateway.as_(keys["water"]).post("/api/operations", json={
        "case_id": case_id, "departments": ["police"], "reason": "x"})
    assert not_its_case.status_code == 403                           # only on a case it may see
    operator = gateway.as_(keys["operator"])
    not_a_street = operator.post("/api/operations", json={
        "case_id": case_id, "departments": ["police"], "reason": "x", "requested_by": {"unit_id": "dept.water"}})
    assert not_a_street.status_code == 400                           # the centre names the street that asked
    assert "unit_id" in not_a_street.json()["error"]["fields"]["requested_by"]
    missing = operator.post("/api/operations", json={"departments": [], "requested_by": {}})
    assert missing.status_code == 400
    assert {"case_id", "departments", "reason"} <= set(missing.json()["error"]["fields"])
    unknown_dept = operator.post("/api/operations", json={
        "case_id": case_id, "departments": ["police", "weather"], "reason": "x",
        "requested_by": {"unit_id": "street.tianshengjie"}})
    assert unknown_dept.status_code == 400 and "departments" in unknown_dept.json()["error"]["fields"]
    unknown_case = operator.post("/api/operations", json={
        "case_id": "C-NOPE", "departments": ["police"], "reason": "x", "requested_by": {"unit_id": "street.tianshengjie"}})
    assert unknown_case.status_code == 404
    escalation_by_a_street = gateway.as_(keys["street"]).post("/api/operations", json={
        "case_id": case_id, "departments": ["police"], "reason": "x", "trigger": "escalation"})
    assert escalation_by_a_street.status_code == 403


def test_a_dispatcher_escalates_a_case(config, db, coordination, events):
    case_id = known_case(config, db, class_code="E0501")                      # 占道经营, normally the street's
    answer = rpc(coordination, "escalate_case", case_id, ["market", "police"],
                 {"unit_id": "center.command", "person": "调度员 李"}, "多次劝离无效，摊主聚集", "e1")
    assert answer["ok"] and answer["created"], answer
    op = answer["operation"]
    assert op["_id"] == f"OP-{case_id}-Ee1" and op["trigger"] == "escalation" and op["lead_unit"] == LEAD
    assert set(op["departments"]) == {"market", "police"}
    one_request(config, "market")
    one_request(config, "police")
    wait_until(lambda: events.of("joint_operation_opened", trigger="escalation"), what="opened event")


# ------------------------------------------------------------------ a silent department
def test_a_silent_department_is_renotified_then_escalated(config, vhost, db, coordination, events):
    case_id = register_case(config, class_code="E0406", joint=["police", "environment"])
    op_id = f"OP-{case_id}"
    wait_operation(db, op_id, lambda d: True, "the operation")
    env_request = one_request(config, "environment")
    police_request = one_request(config, "police")
    url = vhost_url(vhost)
    send_reply(url, reply(env_request, "Ack", {"status": "accepted"}))
    send_reply(url, reply(env_request, "Update", {"stage": "checkin", "note": "到场"}))
    wait_operation(db, op_id, lambda d: d["departments"]["environment"]["state"] == "on_site", "environment on site")

    clock.advance(minutes=6)                          # police's 5-minute answer deadline has passed
    doc = wait_operation(db, op_id, lambda d: d["departments"]["police"]["renotified"]["acceptance"] == 1,
                         "the first re-notification")
    again = one_request(config, "police")
    assert again["distribution_id"] == f"{op_id}.police.request.2"
    assert again["references"] == [police_request["distribution_id"]]
    assert again["payload"]["renotification"] == 1
    assert again["payload"]["when"] == police_request["payload"]["when"]          # same deadlines
    assert not doc["departments"]["police"]["escalated"]

    clock.advance(minutes=6)                          # still silent after the re-notification
    doc = wait_operation(db, op_id, lambda d: "acceptance" in d["departments"]["police"]["escalated"],
                         "escalation of the missing answer")
    escalated = wait_until(lambda: events.of("department_escalated", department="police"), what="event")[0]
    assert escalated["payload"]["escalated_to"] == [LEAD, CENTRE]
    assert escalated["payload"]["awaiting"] == "acceptance" and escalated["payload"]["attempts"] == 1
    assert doc["notifications"][0]["to"] == [LEAD, CENTRE] and "区公安分局" in doc["notifications"][0]["text"]

    clock.advance(minutes=19)                         # 31 minutes: the check-in is overdue too
    wait_operation(db, op_id, lambda d: d["departments"]["police"]["renotified"]["checkin"] == 1,
                   "a check-in reminder")
    reminder = one_request(config, "police")
    assert reminder["kind"] == "Update" and reminder["payload"]["reason"] == "reminder"
    assert reminder["payload"]["awaiting"] == "checkin" and reminder["references"] == [police_request["distribution_id"]]
    clock.advance(minutes=6)
    wait_operation(db, op_id, lambda d: "checkin" in d["departments"]["police"]["escalated"], "check-in escalation")
    # environment is untouched: answered and checked in on time, no timers left for it
    doc = operation(db, op_id)
    assert not doc["departments"]["environment"]["escalated"]
    assert all(t["data"]["department"] != "environment" for t in doc["_timers"])
    assert inbox(config, "environment") == []

    # police finally answers: applied, and judged late
    send_reply(url, reply(police_request, "Ack", {"status": "accepted"}))
    late = wait_until(lambda: events.of("department_replied", department="police"), what="police's late answer")
    assert late[0]["payload"]["on_time"] is False and late[0]["payload"]["measure"] == "acceptance"
    on_time = events.of("department_replied", department="environment")
    assert [(e["payload"]["measure"], e["payload"]["on_time"]) for e in on_time] == [
        ("acceptance", True), ("checkin", True)]


# ------------------------------------------------------------------ Update, Cancel, close, leave
def test_update_cancel_leave_and_close_by_the_lead_only(config, vhost, db, gateway, keys, events):
    case_id = register_case(config, class_code="E0302", joint=["transport", "police", "environment"])
    op_id = f"OP-{case_id}"
    wait_operation(db, op_id, lambda d: True, "the operation")
    first = {dept: one_request(config, dept) for dept in ("transport", "police", "environment")}
    url = vhost_url(vhost)
    for dept in ("transport", "police", "environment"):
        send_reply(url, reply(first[dept], "Ack", {"status": "accepted"}))
    wait_operation(db, op_id, lambda d: set(dept_states(d).values()) == {"accepted"}, "three acceptances")

    # Update from the coordinator: each participating department, referencing its Request
    operator, lead = gateway.as_(keys["operator"]), gateway.as_(keys["lead"])
    answer = operator.post(f"/api/operations/{op_id}/updates", json={
        "by": {"unit_id": LEAD, "person": "许明"}, "note": "抛洒点延伸至天生路30号，请一并处置",
        "where": {"address": "天生路18-30号"}})
    assert answer.status_code == 200, answer.text
    updates = {dept: one_request(config, dept) for dept in ("transport", "police", "environment")}
    for dept, update in updates.items():
        assert update["kind"] == "Update" and update["references"] == [first[dept]["distribution_id"]]
        assert update["payload"]["reason"] == "change" and update["payload"]["where"]["address"] == "天生路18-30号"
    send_reply(url, reply(updates["police"], "Ack", {"status": "accepted"}))       # functional ack of the Update
    wait_operation(db, op_id, lambda d: d["departments"]["police"].get("acknowledged"), "the Update's ack")
    assert operation(db, op_id)["place"]["address"] == "天生路18-30号"

    # Cancel: the lead releases transport
    answer = lead.post(f"/api/operations/{op_id}/cancel", json={
        "by": {}, "reason": "运输企业已自行清理", "departments": ["transport"]})
    assert answer.status_code == 200, answer.text
    cancel = one_request(config, "transport")
    assert cancel["kind"] == "Cancel" and cancel["references"] == [first["transport"]["distribution_id"]]
    assert cancel["payload"]["reason"] == "运输企业已自行清理" and cancel["payload"]["whole_operation"] is False
    assert dept_states(operation(db, op_id))["transport"] == "cancelled"
    late = reply(first["transport"], "Update", {"stage": "checkin"})
    send_reply(url, late)                               # a released department reporting: told so
    error = one_request(config, "transport")
    assert error["kind"] == "Error" and error["payload"]["code"] == "released"
    assert error["in_reply_to"] == late["distribution_id"]

    # a department cannot leave an open operation: over AMQP …
    leave = reply(first["police"], "Update", {"stage": "leave", "note": "警力需回撤"})
    send_reply(url, leave)
    error = one_request(config, "police")
    assert error["payload"]["code"] == "cannot_leave" and "事不完，人不走" in error["payload"]["message"]
    withdraw = reply(first["police"], "Ack", {"status": "rejected", "reason": "改变主意"})
    send_reply(url, withdraw)
    assert one_request(config, "police")["payload"]["code"] == "cannot_leave"
    # … nor over HTTP
    police = gateway.as_(keys["police"])
    answer = police.post(f"/api/operations/{op_id}/departments/police/leave", json={"reason": "另有任务"})
    assert answer.status_code == 409 and "事不完，人不走" in answer.json()["error"]["message"]
    assert police.post(f"/api/operations/{op_id}/departments/environment/leave").status_code == 403
    assert dept_states(operation(db, op_id))["police"] == "accepted"

    # only the lead closes, and only when the work is done
    answer = gateway.as_(keys["water"]).post(f"/api/operations/{op_id}/close", json={"by": {"unit_id": LEAD}})
    assert answer.status_code == 403                    # a unit acts as itself: dept.water is not the lead
    assert police.post(f"/api/operations/{op_id}/close", json={"by": {"unit_id": LEAD}}).status_code == 403
    answer = lead.post(f"/api/operations/{op_id}/close", json={"by": {}})
    assert answer.status_code == 409 and set(answer.json()["error"]["fields"]["outstanding"]) == {"police", "environment"}
    for dept in ("police", "environment"):
        send_reply(url, reply(first[dept], "Update", {"stage": "checkin"}))
        send_reply(url, reply(first[dept], "Update", {"stage": "disposition", "note": "路面已清洗"}))
    wait_operation(db, op_id, lambda d: dept_states(d)["police"] == dept_states(d)["environment"] == "disposed",
                   "two dispositions")
    answer = lead.post(f"/api/operations/{op_id}/close", json={"by": {"person": "许明"}, "note": "路面恢复"})
    assert answer.status_code == 200, answer.text
    closed = operation(db, op_id)
    assert closed["state"] == "closed" and closed["_timers"] == []
    for dept in ("police", "environment"):
        note = one_request(config, dept)
        assert note["kind"] == "Update" and note["payload"]["operation_state"] == "closed"
    assert inbox(config, "transport") == []             # released: not told again

    # after the close, a department message gets an Error with the reason
    after = reply(first["environment"], "Update", {"stage": "action", "note": "补充"})
    send_reply(url, after)
    error = one_request(config, "environment")
    assert error["payload"]["code"] == "operation_closed" and error["in_reply_to"] == after["distribution_id"]
    again = operator.post(f"/api/operations/{op_id}/updates", json={"by": {"unit_id": LEAD}, "note": "x"})
    assert again.status_code == 409

    # every message in and out is kept, with its time
    doc = operation(db, op_id)
    kinds = [(m["direction"], m["department"], m["kind"]) for m in doc["messages"]]
    assert kinds.count(("out", "police", "Request")) == 1 and kinds.count(("in", "police", "Ack")) == 3
    assert all(m["at"] for m in doc["messages"])
    refused = [m for m in doc["messages"] if m.get("refused")]
    assert sorted(m["refused"] for m in refused) == ["cannot_leave", "cannot_leave", "cannot_leave",
                                                     "operation_closed", "released"]
    closed_event = wait_until(lambda: events.of("joint_operation_closed"), what="closed event")[0]["payload"]
    assert closed_event["closed_by"] == LEAD and closed_event["outstanding"] == [] and not closed_event["forced"]
    assert {e["payload"]["code"] for e in events.of("department_reply_refused")} == {
        "released", "cannot_leave", "operation_closed"}


def test_lead_cancels_the_whole_operation_and_a_forced_close_needs_a_note(config, db, coordination):
    case_id = register_case(config, class_code="E0303", joint=["construction", "planning"])
    op_id = f"OP-{case_id}"
    wait_operation(db, op_id, lambda d: True, "the operation")
    for dept in ("construction", "planning"):
        one_request(config, dept)
    with pytest.raises(errors.Forbidden):                 # the whole operation: the lead only
        rpc(coordination, "cancel_operation", op_id, {"by": {"unit_id": CENTRE}, "reason": "误报"})
    with pytest.raises(errors.Invalid) as forced:
        rpc(coordination, "close_operation", op_id, {"by": {"unit_id": LEAD}, "force": True})
    assert "note" in forced.value.fields
    done = rpc(coordination, "cancel_operation", op_id, {"by": {"unit_id": LEAD}, "reason": "经核实为合法临时建筑"})
    assert done["ok"] and done["operation"]["state"] == "cancelled"
    for dept in ("construction", "planning"):
        cancel = one_request(config, dept)
        assert cancel["kind"] == "Cancel" and cancel["payload"]["whole_operation"] is True
    assert operation(db, op_id)["_timers"] == []


def test_replies_for_unknown_operations_or_departments_are_dead_lettered(config, vhost, db, coordination):
    case_id = register_case(config, class_code="E0406", joint=["police"])
    wait_operation(db, f"OP-{case_id}", lambda d: True, "the operation")
    request = one_request(config, "police")
    url = vhost_url(vhost)
    stranger = reply(request, "Ack", {"status": "accepted"}, sender="market")         # not in this operation
    send_reply(url, stranger)
    ghost = dict(reply(request, "Ack", {"status": "accepted"}), incident_id="OP-NOPE")
    send_reply(url, ghost)
    bad = reply(request, "Ack", {"status": "rejected"})                                 # no reason
    send_reply(url, bad)
    dead = wait_until(lambda: drain(config, "coordination.department-replies.dlq") or None, what="dead letters")
    while len(dead) < 3:
        dead += wait_until(lambda: drain(config, "coordination.department-replies.dlq") or None, what="more")
    reasons = {body["distribution_id"]: headers["x-dead-letter-reason"] for body, headers in dead}
    assert "不是联合行动" in reasons[stranger["distribution_id"]]
    assert "OP-NOPE" in reasons[ghost["distribution_id"]]
    assert "reason" in reasons[bad["distribution_id"]]
    assert dept_states(operation(db, f"OP-{case_id}")) == {"police": "requested"}


def test_a_department_without_amqp_replies_over_http(container_factory, config, db):
    """Department replies over HTTP: the same envelope; the sender is the account's department,
    so police cannot answer for environment, and a department outside the operation is refused."""
    import requests

    from services.dispatch.service import DispatchService
    from services.enforcement_coordination.service import CoordinationService
    from services.gateway import auth
    from services.gateway.service import GatewayService
    from services.intake.service import IntakeService
    from tests.conftest import free_port
    from tests.helpers import wait_until
    port = free_port()
    for cls in (IntakeService, DispatchService, CoordinationService):
        container_factory(cls, config).start()
    container_factory(GatewayService, dict(config, WEB_SERVER_ADDRESS=f"127.0.0.1:{port}")).start()
    base = f"http://127.0.0.1:{port}"
    accounts = db("gateway").accounts
    bearer = lambda key: {"Authorization": f"Bearer {key}"}                          # noqa: E731
    operator = bearer(auth.new_key(accounts, "值班员", "operator"))
    police = bearer(auth.new_key(accounts, "公安联络员", "partner", department="police"))
    market = bearer(auth.new_key(accounts, "市场监管联络员", "partner", department="market"))
    answer = requests.post(f"{base}/api/reports", headers=operator, timeout=15, json={
        "class_code": "E0302", "location": {"lon": 106.3904, "lat": 29.8338}, "description": "渣土车抛洒"})
    case_id = answer.json()["case_id"]
    operation_id = f"OP-{case_id}"
    request = wait_until(lambda: (db("coordination").operations.find_one({"_id": operation_id}) or {})
                         .get("departments", {}).get("police"), what="the police request")
    reply = {"schema_version": "1.0", "distribution_id": "police-http-1", "recipients": ["dcg.coordination"],
             "kind": "Ack", "sent_at": "2026-11-23T08:00:00Z", "in_reply_to": request["distribution_id"],
             "payload": {"status": "accepted"}, "sender": "environment"}        # the sender is ignored
    url = f"{base}/api/operations/{operation_id}/replies"
    assert requests.post(url, json=reply, timeout=15).status_code == 401
    assert requests.post(url, json=reply, headers=operator, timeout=15).status_code == 403
    assert requests.post(url, json={**reply, "payload": {"status": "maybe"}}, headers=police,
                         timeout=15).status_code == 400
    assert requests.post(url, json=reply, headers=market, timeout=15).status_code == 403   # not in it
    done = requests.post(url, json=reply, headers=police, timeout=15)
    assert done.status_code == 201, done.text
    departments = done.json()["operation"]["departments"]
    assert departments["police"]["state"] == "accepted"
    assert departments["environment"]["state"] != "accepted"               # no impersonation

    # the case's timeline shows the joint operation beside intake's and dispatch's entries
    timeline = requests.get(f"{base}/api/cases/{case_id}/timeline", headers=operator, timeout=15).json()
    joint = [e for e in timeline["entries"] if e["source"] == "coordination"]
    labels = [e["label"] for e in joint]
    assert labels[0].startswith("发起联合执法（类别规则（城管+N））") and "区公安分局" in labels[0]
    assert any(label.startswith("向区公安分局") and label.endswith("发送协同请求") for label in labels)
    accepted = [e for e in joint if e["type"] == "department_replied"]
    assert len(accepted) == 1 and accepted[0]["department"] == "police" and "接受协同请求" in accepted[0]["label"]
    assert accepted[0]["at"].endswith("+08:00")                          # shown in Asia/Shanghai
    sources = [e["source"] for e in timeline["entries"]]
    assert sources.index("intake") < sources.index("coordination")      # in time order
    assert "note" not in timeline


def test_a_reply_that_comes_back_from_the_dead_letter_queue_is_still_known_as_its_department(
        config, vhost, db, coordination):
    """A reply that failed once (here: it arrived before its operation) comes back through the
    platform's own path (DLQ replay; the retry queues take the same path) with the default
    exchange and the queue's name as routing key. It must still be judged on the routing key and
    user the broker vouched for when the department sent it — not refused as an impersonation."""
    from shared import ops
    case_id = f"C20261123-{uuid.uuid4().hex[:8].upper()}"
    early = reply({"incident_id": f"OP-{case_id}", "distribution_id": f"OP-{case_id}.police.request.1",
                   "recipients": ["police"]}, "Ack", {"status": "accepted"})
    send_reply(vhost_url(vhost), early)
    dlq = "coordination.department-replies.dlq"
    dead = wait_until(lambda: ops.show_dead_letters(config, dlq)["letters"], what="the early reply dead-lettered")
    assert "未知的联合行动" in dead[0]["reason"] and dead[0]["origin_routing_key"] == "police.ack"

    register_case(config, case_id=case_id, class_code="E0406", joint=["police"])
    wait_operation(db, f"OP-{case_id}", lambda d: dept_states(d) == {"police": "requested"}, "the operation")
    assert ops.replay(config, dlq) == 1
    wait_operation(db, f"OP-{case_id}", lambda d: dept_states(d) == {"police": "accepted"}, "the replayed Ack")
    assert drain(config, dlq) == []
