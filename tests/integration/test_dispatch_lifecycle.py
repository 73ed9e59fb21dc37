"""A case through every state over HTTP, on the real broker and store: dispatch → return (回退,
re-dispatched at once) → accept → two extensions (the second needs a higher approver) → parking
(挂账, the clock stops) → unparking → feedback → failed verification (返工) → feedback → verified
and closed (结案). Deadlines are hand-computed on the business calendar (local time, UTC+8).

The clock is set to Saturday 2026-11-28 10:00: the first clock starts on Monday 08:30."""
from tests.dispatch_support import (  # noqa: F401  (fixtures)
    UNIT, UTC, local, ok, platform, post, register, relayed, saturday_morning, set_clock, taken,
    wait_case, wire,
)
from tests.helpers import drain, observer

SANITATION = {"actor": "环卫处老周", "actor_unit": "dept.sanitation"}


def test_a_case_walks_through_every_state_and_branch(platform, config, db):
    events_q = wire(config)
    sms_q = "notify.sms-outbox"
    case_id = register(config, "E0101")                   # 暴露垃圾 → 天生街道
    doc = wait_case(db, case_id, what="dispatch")
    assert doc["unit_id"] == "street.tianshengjie" and doc["state"] == "dispatched"
    assert doc["deadline"] == local(2026, 11, 30, 14, 30).astimezone(UTC)       # Monday 08:30 + 4h

    # 回退 with a suggestion: re-dispatched at once to the sanitation department
    case = ok(platform, case_id, "return", expected_version=1, reason="属环卫作业范围，应由环卫处置",
              to_unit="dept.sanitation", **UNIT)
    assert case["unit_id"] == "dept.sanitation" and case["state"] == "dispatched" and case["sequence"] == 2
    assert case["return_count"] == 1 and case["returns"][0]["caused_by"] == "centre.command"
    assert case["deadline"] == "2026-11-30T14:30:00+08:00"                      # shown in local time

    # the old unit can no longer act on it
    refused = post(platform, case_id, "accept", expected_version=case["version"], **UNIT)
    assert refused.status_code == 403

    case = ok(platform, case_id, "accept", expected_version=case["version"], **SANITATION)
    assert case["state"] == "accepted"

    # 1st extension: a duty operator may not approve it, the centre director may
    case = ok(platform, case_id, "request-extension", expected_version=case["version"], reason="需调运大型机械",
              extra="1d", **SANITATION)
    low = post(platform, case_id, "decide-extension", expected_version=case["version"], actor="值班员",
               role="operator", approved=True)
    assert low.status_code == 403 and "centre" in low.json()["error"]["message"]
    case = ok(platform, case_id, "decide-extension", expected_version=case["version"], actor="李主任",
              role="centre", approved=True, reason="同意延期一个工作日")
    assert case["deadline"] == "2026-12-01T14:30:00+08:00" and case["extended"] is True
    assert case["original_deadline"] == "2026-11-30T14:30:00+08:00"
    assert {entry["kind"]: entry["due_at"] for entry in case["supervision"]}["supervise"] == \
        "2026-12-01T14:30:00+08:00"                                           # the timers moved too

    # 2nd extension: the centre director is not enough, a leader is
    case = ok(platform, case_id, "request-extension", expected_version=case["version"], reason="材料未到",
              extra="4h", **SANITATION)
    assert post(platform, case_id, "decide-extension", expected_version=case["version"], actor="李主任",
                role="centre", approved=True).status_code == 403
    case = ok(platform, case_id, "decide-extension", expected_version=case["version"], actor="赵区长",
              role="leader", approved=True)
    assert case["deadline"] == "2026-12-02T09:30:00+08:00"          # Tuesday 14:30 + 4h → Wednesday 09:30
    third = post(platform, case_id, "request-extension", expected_version=case["version"], reason="再延",
                 extra="1h", **SANITATION)
    assert third.status_code == 422

    # 挂账 with approval: the clock stops (no supervision timers)
    case = ok(platform, case_id, "request-park", expected_version=case["version"], reason="需财政立项", **SANITATION)
    case = ok(platform, case_id, "decide-park", expected_version=case["version"], actor="李主任", role="centre",
              approved=True)
    assert case["state"] == "parked" and case["supervision"] == []
    # Saturday 10:00 → Wednesday 09:30 left: Monday 7h + Tuesday 7h + Wednesday 1h = 15h
    assert case["park"]["remaining_s"] == 15 * 3600

    # unparked on Monday 09:00: 15h from then → Monday 6.5h, Tuesday 7h, Wednesday 08:30 + 1.5h → 10:00
    set_clock(local(2026, 11, 30, 9, 0))
    case = ok(platform, case_id, "unpark", expected_version=case["version"], actor="李主任", role="centre",
              reason="资金已落实")
    assert case["state"] == "accepted" and case["deadline"].startswith("2026-12-02T10:00:00")

    # feedback with an "after" photo, verification fails → 返工
    bad = post(platform, case_id, "feedback", expected_version=case["version"], after_photo="not a url",
               **SANITATION)
    assert bad.status_code == 400 and "after_photo" in bad.json()["error"]["fields"]
    case = ok(platform, case_id, "feedback", expected_version=case["version"],
              after_photo="/media/60cb2d271dfca4428c6125eec7c3e273", note="已清运", **SANITATION)
    assert case["state"] == "feedback_given"
    assert case["feedback"]["verify_due_at"].startswith("2026-11-30T11:00")    # 09:00 + 2 working hours
    case = ok(platform, case_id, "verify", expected_version=case["version"], actor="严勇", passed=False,
              note="仍有垃圾残留")
    assert case["state"] == "accepted" and case["rework_count"] == 1
    assert case["deadline"].startswith("2026-11-30T15:00")                     # 09:00 + 4h: 12:00, 14:00 + 1h

    case = ok(platform, case_id, "feedback", expected_version=case["version"],
              after_photo="/media/e81a03cfe084e2519220b6045150c2f9", **SANITATION)
    case = ok(platform, case_id, "verify", expected_version=case["version"], actor="严勇", passed=True,
              note="已清理干净")
    assert case["state"] == "closed" and case["on_time"] is False            # extended and parked
    assert case["supervision"] == []

    relayed(db, case_id)
    history = [entry["type"] for entry in db("dispatch").cases.find_one({"_id": case_id})["history"]]
    assert history == [
        "case_dispatched", "case_returned", "case_dispatched", "case_accepted",
        "extension_requested", "extension_decided", "extension_requested", "extension_decided",
        "park_requested", "case_parked", "case_unparked", "case_feedback_given", "case_verified",
        "case_rework_ordered", "case_feedback_given", "case_verified", "case_closed"]

    published = taken(config, events_q)
    by_type = {}
    for body in published:
        by_type.setdefault(body["type"], []).append(body)
    closed = by_type["case_closed"][0]["payload"]
    assert closed["on_time"] is False and closed["extended"] is True and closed["parked"] is True
    assert closed["unit_id"] == "dept.sanitation" and closed["rework_count"] == 1
    assert by_type["case_returned"][0]["payload"]["caused_by"] == "centre.command"
    assert [e["payload"]["sequence"] for e in by_type["case_dispatched"]] == [1, 2]
    assert [e["payload"]["approved"] for e in by_type["extension_decided"]] == [True, True]
    assert [e["payload"]["passed"] for e in by_type["case_verified"]] == [False, True]
    assert len({body["event_id"] for body in published}) == len(published)     # each once
    # the notification outbox (stands in for the SMS gateway): dispatch ×2, verification ×2, rework
    kinds = [body["payload"]["kind"] for body in taken(config, sms_q)]
    assert sorted(kinds) == ["dispatch", "dispatch", "double_chief", "liaison", "rework", "verification",
                             "verification"]   # 双长制, 联络员 once, at the first dispatch (stretch.py)
    assert drain(config, "dispatch.case-registered.dlq") == []


def test_a_case_handled_in_time_closes_on_time(platform, config, db):
    closed_q = observer(config, "dispatch.events", "case_closed", name="test.closed")
    case_id = register(config, "C0101", urgency="urgent")  # 上水井盖, urgent: 1h → dept.water
    doc = wait_case(db, case_id, what="dispatch")
    assert doc["unit_id"] == "dept.water" and doc["deadline"] == local(2026, 11, 30, 9, 30).astimezone(UTC)
    water = {"actor": "水务抢修班", "actor_unit": "dept.water"}
    set_clock(local(2026, 11, 30, 8, 40))
    case = ok(platform, case_id, "accept", expected_version=1, **water)
    set_clock(local(2026, 11, 30, 9, 10))           # before the 80% warning (09:18): no timer races us
    case = ok(platform, case_id, "feedback", expected_version=case["version"],
              after_photo="/media/4b1c59c7728e2b1cb65f6cb20aaf5cf9", note="已更换井盖", **water)
    set_clock(local(2026, 11, 30, 10, 0))
    case = ok(platform, case_id, "verify", expected_version=case["version"], actor="严勇", passed=True)
    assert case["on_time"] is True and case["closed_at"].startswith("2026-11-30T10:00")
    relayed(db, case_id)
    (closed,) = [body["payload"] for body in taken(config, closed_q)]
    assert closed["on_time"] is True and closed["extended"] is False and closed["parked"] is False
    assert closed["deadline"].startswith("2026-11-30T01:30:00")      # in UTC on the wire (09:30 local)
    assert closed["deadline"].endswith(("Z", "+00:00"))


def test_bad_input_gets_field_level_errors_and_unknown_things_404(platform, config, db):
    case_id = register(config, "E0101")
    wait_case(db, case_id)
    answer = post(platform, case_id, "request-extension", expected_version="x", extra="soon", actor="")
    assert answer.status_code == 400
    # actor and actor_unit come from the API key now (services/gateway/auth.py), not from the body
    assert set(answer.json()["error"]["fields"]) == {"expected_version", "extra", "reason"}
    assert post(platform, case_id, "teleport", expected_version=1).status_code == 404
    assert post(platform, "C-NOPE", "accept", expected_version=1, **UNIT).status_code == 404
    refused = post(platform, case_id, "verify", expected_version=1, actor="严勇", passed=True)
    assert refused.status_code == 422 and refused.json()["error"]["state"] == "dispatched"
