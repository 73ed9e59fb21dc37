"""Joint-operation rules without I/O: opening, replies, deadlines, the coordinator's commands,
closing only by the lead, and who may send a reply. Times are hand-computed."""
from datetime import datetime, timedelta, timezone

import pytest

from services.enforcement_coordination import rules
from shared.contracts.departments import load_platform_message

T0 = datetime(2026, 11, 23, 8, 0, tzinfo=timezone.utc)
LEAD = {"unit_id": "dept.chengguan", "name": "区城市管理局", "contact": "龙秀明 023-68280024"}
INFOS = {
    "police": {"name": "区公安分局", "ack_minutes": {"normal": 5, "urgent": 3},
               "checkin_minutes": {"normal": 30, "urgent": 15}, "renotify_minutes": {"normal": 5},
               "max_renotifications": 1},
    "environment": {"name": "区生态环境局", "ack_minutes": {"normal": 5}, "checkin_minutes": {"normal": 30},
                    "renotify_minutes": {"normal": 5}, "max_renotifications": 2},
}
CASE = {"case_id": "C1", "class_code": "E0302", "class_name": "渣土车抛洒滴漏", "urgency": "normal",
        "location": {"lon": 106.39, "lat": 29.83}, "address": "天生路18号", "grid_code": "500190001001001",
        "registered_at": T0 - timedelta(minutes=2)}


def opened(departments=("police", "environment"), **kwargs):
    operation, effects = rules.open_operation("OP-C1", dict(CASE), list(departments), "class_rule", T0,
                                              dept_infos=INFOS, lead=LEAD, **kwargs)
    operation["_timers"] = effects.timers
    return operation, effects


def apply(operation, effects):
    """What the service's atomic update does, in memory."""
    op = dict(operation)
    for key, value in effects.set_fields.items():
        if key.startswith("departments."):
            op["departments"] = {**op["departments"], key.split(".", 1)[1]: value}
        else:
            op[key] = value
    op["messages"] = list(op.get("messages", [])) + list(effects.messages)
    if effects.timers is not None:
        op["_timers"] = effects.timers
    return op


def reply(operation, dept, kind, payload, minutes, in_reply_to=None, rid=None):
    request_id = in_reply_to or operation["departments"][dept]["distribution_id"]
    message = {"schema_version": "1.1", "distribution_id": rid or f"{dept}-{kind}-{minutes}", "sender": dept,
               "recipients": ["dcg.coordination"], "kind": kind, "sent_at": T0 + timedelta(minutes=minutes),
               "incident_id": operation["_id"], "in_reply_to": request_id, "payload": payload}
    return message, T0 + timedelta(minutes=minutes)


def receive(operation, dept, kind, payload, minutes, **kwargs):
    message, now = reply(operation, dept, kind, payload, minutes, **kwargs)
    effects = rules.receive_reply(operation, message, {**message, "sent_at": now.isoformat()}, now)
    return apply(operation, effects), effects


def test_opening_sends_one_request_per_department_with_its_deadlines():
    operation, effects = opened()
    assert [key for key, _ in effects.outgoing] == ["police.request", "environment.request"]
    request = effects.outgoing[0][1]
    load_platform_message(request)                              # valid against the contract
    assert request["distribution_id"] == "OP-C1.police.request.1" and request["recipients"] == ["police"]
    assert request["payload"]["when"] == {"reported_at": "2026-11-23T07:58:00Z", "ack_deadline": "2026-11-23T08:05:00Z",
                                          "checkin_deadline": "2026-11-23T08:30:00Z"}
    assert request["payload"]["lead"]["contact"] == "龙秀明 023-68280024"
    assert request["payload"]["operation"]["departments"] == ["police", "environment"]
    assert request["expires_at"] == "2026-11-24T08:00:00Z"
    assert [(t["id"], t["due_at"]) for t in effects.timers] == [
        ("OP-C1.police.acceptance.1", T0 + timedelta(minutes=5)), ("OP-C1.police.checkin.1", T0 + timedelta(minutes=30)),
        ("OP-C1.environment.acceptance.1", T0 + timedelta(minutes=5)),
        ("OP-C1.environment.checkin.1", T0 + timedelta(minutes=30))]
    assert [e[0] for e in effects.events] == ["joint_operation_opened", "department_request_sent",
                                              "department_request_sent"]


def test_urgent_deadlines_and_unknown_departments():
    operation, _ = opened(urgency="urgent")
    assert operation["departments"]["police"]["checkin_deadline"] == T0 + timedelta(minutes=15)
    assert operation["departments"]["police"]["ack_deadline"] == T0 + timedelta(minutes=3)
    with pytest.raises(rules.Refused) as info:
        opened(departments=("police", "weather"))
    assert info.value.status == 400 and "weather" in info.value.message


def test_accept_then_check_in_on_time_and_late():
    operation, _ = opened()
    operation, effects = receive(operation, "police", "Ack", {"status": "accepted"}, 4)
    event = effects.events[0][1]
    assert event["measure"] == "acceptance" and event["on_time"] is True and event["status"] == "accepted"
    assert [t["id"] for t in operation["_timers"] if "police" in t["id"]] == ["OP-C1.police.checkin.1"]
    operation, effects = receive(operation, "police", "Update", {"stage": "checkin", "note": "到场"}, 31)
    event = effects.events[0][1]
    assert event["measure"] == "checkin" and event["on_time"] is False and event["status"] == "on_site"
    assert operation["departments"]["police"]["checkin_on_time"] is False
    assert not [t for t in operation["_timers"] if "police" in t["id"]]


def test_a_rejection_stops_every_timer_of_that_department():
    operation, _ = opened()
    operation, effects = receive(operation, "environment", "Ack", {"status": "rejected", "reason": "无人"}, 6)
    assert operation["departments"]["environment"]["state"] == "rejected"
    assert effects.events[0][1]["on_time"] is False          # 6 minutes > 5
    assert not [t for t in operation["_timers"] if "environment" in t["id"]]
    _, effects = receive(operation, "environment", "Update", {"stage": "checkin"}, 7)
    assert effects.refused["code"] == "not_participating" and effects.outgoing[0][0] == "environment.error"


def test_states_never_go_back_and_an_update_implies_acceptance():
    operation, _ = opened()
    operation, _ = receive(operation, "police", "Update", {"stage": "disposition", "note": "完毕"}, 3)
    state = operation["departments"]["police"]
    assert state["state"] == "disposed" and state["accepted_implicitly"] and state["acceptance_on_time"]
    operation, _ = receive(operation, "police", "Update", {"stage": "action"}, 4)
    assert operation["departments"]["police"]["state"] == "disposed"


def test_a_department_cannot_leave_and_nothing_is_taken_after_the_close():
    operation, _ = opened()
    operation, _ = receive(operation, "police", "Ack", {"status": "accepted"}, 1)
    _, effects = receive(operation, "police", "Update", {"stage": "leave"}, 2)
    assert effects.refused["code"] == "cannot_leave"
    error = effects.outgoing[0][1]
    assert error["kind"] == "Error" and error["in_reply_to"] == "police-Update-2"
    assert error["references"] == ["OP-C1.police.request.1"] and "事不完，人不走" in error["payload"]["message"]
    load_platform_message(error)
    _, effects = receive(operation, "police", "Ack", {"status": "rejected", "reason": "撤"}, 2)
    assert effects.refused["code"] == "cannot_leave"
    effects = rules.leave_request(operation, "police", "另有任务", T0)
    assert effects.refused["code"] == "cannot_leave" and effects.outgoing == []

    closing = rules.close(operation, {"unit_id": "dept.chengguan"}, "收队", True, T0 + timedelta(minutes=9))
    closed = apply(operation, closing)
    assert closed["state"] == "closed" and closed["_timers"] == [] and closed["forced"]
    _, effects = receive(closed, "police", "Update", {"stage": "action"}, 10)
    assert effects.refused["code"] == "operation_closed"
    update_id = closing.outgoing[0][1]["distribution_id"]           # the "closed" Update may be acked
    _, effects = receive(closed, "police", "Ack", {"status": "accepted"}, 10, in_reply_to=update_id)
    assert effects.refused is None and effects.events[0][1]["status"] == "acknowledged"


def test_only_the_lead_closes_and_only_when_the_work_is_done():
    operation, _ = opened(departments=("police",))
    with pytest.raises(rules.Refused) as info:
        rules.close(operation, {"unit_id": "dept.police"}, "", False, T0)
    assert info.value.status == 403
    with pytest.raises(rules.Refused) as info:
        rules.close(operation, {"unit_id": "dept.chengguan"}, "", False, T0)
    assert info.value.status == 409 and info.value.fields == {"outstanding": ["police"]}
    with pytest.raises(rules.Refused) as info:
        rules.close(operation, {"unit_id": "dept.chengguan"}, " ", True, T0)
    assert info.value.status == 400
    operation, _ = receive(operation, "police", "Update", {"stage": "disposition"}, 20)
    effects = rules.close(operation, {"unit_id": "dept.chengguan"}, "完成", False, T0 + timedelta(minutes=21))
    assert effects.outgoing[0][1]["payload"] == {"reason": "closed", "operation_state": "closed", "note": "完成"}
    assert effects.events[-1][1]["outstanding"] == [] and effects.events[-1][1]["forced"] is False


def test_silence_is_renotified_then_escalated_to_the_lead_and_the_command_centre():
    operation, _ = opened(departments=("police",))
    timer = operation["_timers"][0]
    effects = rules.on_timer(operation, timer, T0 + timedelta(minutes=5), INFOS["police"], command_centre="center.command")
    operation = apply(operation, effects)
    again = effects.outgoing[0][1]
    assert effects.outgoing[0][0] == "police.request" and again["distribution_id"] == "OP-C1.police.request.2"
    assert again["references"] == ["OP-C1.police.request.1"] and again["payload"]["renotification"] == 1
    assert again["payload"]["when"]["ack_deadline"] == "2026-11-23T08:05:00Z"        # not moved
    second = [t for t in operation["_timers"] if t["kind"] == "acceptance_due"]
    assert [(t["id"], t["due_at"]) for t in second] == [("OP-C1.police.acceptance.2", T0 + timedelta(minutes=10))]
    effects = rules.on_timer(operation, second[0], T0 + timedelta(minutes=10), INFOS["police"],
                             command_centre="center.command")
    operation = apply(operation, effects)
    kind, payload, event_id = effects.events[0]
    assert kind == "department_escalated" and payload["escalated_to"] == ["dept.chengguan", "center.command"]
    assert payload["attempts"] == 1 and event_id == "OP-C1.police.acceptance.escalated"
    assert "区公安分局" in payload["message"] and effects.outgoing == []
    assert [t["kind"] for t in operation["_timers"]] == ["checkin_due"]

    reminder = rules.on_timer(operation, operation["_timers"][0], T0 + timedelta(minutes=30), INFOS["police"],
                              command_centre="center.command")
    message = reminder.outgoing[0][1]
    assert message["kind"] == "Update" and message["payload"]["awaiting"] == "checkin"
    load_platform_message(message)


def test_a_timer_whose_reply_came_meanwhile_only_disappears():
    operation, _ = opened(departments=("police",))
    timer = operation["_timers"][0]
    operation, _ = receive(operation, "police", "Ack", {"status": "accepted"}, 2)
    effects = rules.on_timer(operation, timer, T0 + timedelta(minutes=5), INFOS["police"], command_centre="c")
    assert effects.outgoing == [] and effects.events == []


def test_update_and_cancel_reference_each_original_request():
    operation, _ = opened()
    effects = rules.coordinator_update(operation, {"unit_id": "dept.chengguan"}, "范围扩大", {"where": {"address": "天生路30号"}},
                                       None, T0, command_centre="center.command")
    assert [(k, m["references"]) for k, m in effects.outgoing] == [
        ("police.update", ["OP-C1.police.request.1"]), ("environment.update", ["OP-C1.environment.request.1"])]
    assert effects.outgoing[0][1]["payload"]["where"]["address"] == "天生路30号"
    operation = apply(operation, effects)
    effects = rules.cancel(operation, {"unit_id": "center.command"}, "已自行清理", ["police"], T0,
                           command_centre="center.command")
    cancel = effects.outgoing[0][1]
    assert cancel["kind"] == "Cancel" and cancel["distribution_id"] == "OP-C1.police.cancel.3"
    operation = apply(operation, effects)
    assert operation["departments"]["police"]["state"] == "cancelled"
    assert not [t for t in operation["_timers"] if "police" in t["id"]]
    with pytest.raises(rules.Refused) as info:                  # the whole operation: the lead only
        rules.cancel(operation, {"unit_id": "center.command"}, "x", None, T0, command_centre="center.command")
    assert info.value.status == 403
    with pytest.raises(rules.Refused):
        rules.coordinator_update(operation, {"unit_id": "street.x"}, "x", {}, None, T0, command_centre="c")


@pytest.mark.parametrize("routing_key,user_id,trusted,problem", [
    ("police.ack", "dept.police", (), None),
    ("police.ack", "guest", ("guest",), None),
    ("environment.ack", "dept.police", (), "路由键"),
    ("police.ack", "dept.environment", (), "冒用"),
    ("police.ack", None, ("guest",), "user_id"),
    ("police.ack", "guest", (), "冒用"),
])
def test_a_reply_must_come_from_the_department_it_names(routing_key, user_id, trusted, problem):
    found = rules.sender_problem({"sender": "police"}, routing_key, user_id, trusted_users=trusted)
    assert (found is None) if problem is None else (problem in found)


def test_the_operation_reads_as_entries_of_its_case_timeline():
    operation, _ = opened()
    timer = operation["_timers"][0]                                            # police: acceptance due
    operation = apply(operation, rules.on_timer(operation, timer, T0 + timedelta(minutes=5), INFOS["police"],
                                                command_centre="center.command"))
    second = next(t for t in operation["_timers"] if t["id"] == "OP-C1.police.acceptance.2")
    operation = apply(operation, rules.on_timer(operation, second, T0 + timedelta(minutes=10), INFOS["police"],
                                                command_centre="center.command"))
    operation, _ = receive(operation, "environment", "Ack", {"status": "accepted", "reason": ""}, 2)
    operation, _ = receive(operation, "environment", "Update", {"stage": "checkin", "note": "已到达天生路18号"}, 12)
    operation, _ = receive(operation, "environment", "Update", {"stage": "disposition", "note": "已责令停工"}, 20)
    operation, _ = receive(operation, "police", "Ack", {"status": "rejected", "reason": "警力已全部出勤"}, 11)
    operation = apply(operation, rules.close(operation, {"unit_id": "dept.chengguan"}, "处置完毕", False,
                                             T0 + timedelta(minutes=30)))

    entries = rules.timeline(operation)
    assert [(e["at"] - T0, e["label"]) for e in entries] == [
        (timedelta(0), "发起联合执法（类别规则（城管+N））：区公安分局、区生态环境局"),
        (timedelta(0), "向区公安分局发送协同请求"),
        (timedelta(0), "向区生态环境局发送协同请求"),
        (timedelta(minutes=2), "区生态环境局接受协同请求"),
        (timedelta(minutes=5), "再次通知区公安分局"),
        (timedelta(minutes=10), "区公安分局未按时答复，已上报牵头单位和指挥中心"),
        (timedelta(minutes=11), "区公安分局拒绝协同请求"),
        (timedelta(minutes=12), "区生态环境局到场报到"),
        (timedelta(minutes=20), "区生态环境局处置完毕"),
        (timedelta(minutes=30), "联合执法结束"),
    ]
    rejected = entries[6]
    assert rejected["reason"] == "警力已全部出勤" and rejected["actor"] == "区公安分局"
    assert rejected["department"] == "police" and rejected["status"] == "rejected"
    assert entries[-1]["actor"] == "dept.chengguan" and entries[-1]["reason"] == "处置完毕"
    assert all(e["source"] == "coordination" and e["operation_id"] == "OP-C1" for e in entries)


# ------------------------------------------------------------------ who leads (牵头单位)
def test_the_lead_is_the_named_unit_else_the_whistling_street_else_the_bureau():
    bureau = "dept.chengguan"
    assert rules.choose_lead("whistle", "street.tianshengjie", None, bureau) == "street.tianshengjie"
    assert rules.choose_lead("whistle", "center.command", "street.beiquan", bureau) == "street.beiquan"
    assert rules.choose_lead("escalation", "center.command", None, bureau) == bureau
    assert rules.choose_lead("escalation", "center.command", "street.beiquan", bureau) == "street.beiquan"
    assert rules.choose_lead("class_rule", "", None, bureau) == bureau
