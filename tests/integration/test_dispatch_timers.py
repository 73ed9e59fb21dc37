"""Supervision on durable timers, under the controllable clock (shared.clock), on the real broker and
store: 预警 at 80% of the time, 督办 at the deadline, escalation to the leadership group after 4
more working hours; a restart fires what fell due while dispatch was down, exactly once; parking
stops the clock and an extension moves the timers.

A case dispatched on Saturday 2026-11-28 10:00 (暴露垃圾, 4h) starts its clock on Monday 08:30:
warning Monday 11:42 (3h12m), 督办 Monday 14:30, escalation Tuesday 09:30 (3h + 1h)."""
from collections import Counter

from services.dispatch.service import DispatchService
from tests.dispatch_support import (  # noqa: F401  (fixtures)
    UNIT, UTC, dispatch_config, local, ok, platform, post, register, relayed, saturday_morning, set_clock,
    taken, wait_case, wire,
)
from tests.helpers import wait_until


def history_types(doc):
    return Counter(entry["type"] for entry in doc["history"])


def fired(db, case_id, kind, what):
    return wait_case(db, case_id, lambda doc: history_types(doc)[kind] >= 1 and not doc.get("_pending"), what)


def test_warning_then_supervision_then_escalation_as_the_clock_moves(platform, config, db):
    events_q, sms_q = wire(config), "notify.sms-outbox"
    case_id = register(config, "E0101")
    doc = relayed(db, case_id)
    assert [(entry["kind"], entry["due_at"]) for entry in doc["_timers"]] == [
        ("warn", local(2026, 11, 30, 11, 42).astimezone(UTC)),
        ("supervise", local(2026, 11, 30, 14, 30).astimezone(UTC)),
        ("escalate", local(2026, 12, 1, 9, 30).astimezone(UTC))]

    set_clock(local(2026, 11, 30, 11, 43))
    doc = fired(db, case_id, "case_warned", "the 80% warning")
    assert history_types(doc)["case_supervised"] == 0
    set_clock(local(2026, 11, 30, 14, 31))
    doc = fired(db, case_id, "case_supervised", "督办")
    assert history_types(doc)["case_escalated"] == 0
    set_clock(local(2026, 12, 1, 9, 31))
    doc = fired(db, case_id, "case_escalated", "escalation")
    assert doc["_timers"] == [] and doc["_next_due"] is None

    counts = history_types(doc)
    assert (counts["case_warned"], counts["case_supervised"], counts["case_escalated"]) == (1, 1, 1)
    published = {body["type"]: body["payload"] for body in taken(config, events_q)}
    assert 0.8 <= published["case_warned"]["share_used"] < 0.81          # fired at 11:43
    assert published["case_escalated"]["escalated_to"] == "lead.group"
    notes = {body["payload"]["kind"]: body["payload"] for body in taken(config, sms_q)}
    assert set(notes) == {"dispatch", "warning", "supervision", "escalation", "double_chief", "liaison"}
    assert notes["escalation"]["unit_id"] == "lead.group"
    assert {person["name"] for person in notes["escalation"]["recipients"]} == {"唐丽", "徐涛芳"}
    assert "督办" in notes["supervision"]["message"] and "2026-11-30 14:30" in notes["supervision"]["message"]


def test_a_restart_fires_what_fell_due_while_down_exactly_once(container_factory, config, db, saturday_morning):
    events_q = wire(config)
    first = container_factory(DispatchService, dispatch_config(config))
    first.start()
    case_id = register(config, "E0101")
    relayed(db, case_id)
    first.kill()                                      # dispatch goes away with three timers pending
    set_clock(local(2026, 12, 1, 10, 0))              # all three fall due while it is down
    container_factory(DispatchService, dispatch_config(config)).start()
    doc = fired(db, case_id, "case_escalated", "the timers after the restart")
    wait_until(lambda: db("dispatch").cases.find_one({"_id": case_id, "_next_due": None, "_pending": False}),
               what="nothing left to fire or publish")
    counts = history_types(db("dispatch").cases.find_one({"_id": case_id}))
    assert (counts["case_warned"], counts["case_supervised"], counts["case_escalated"]) == (1, 1, 1)
    published = Counter(body["event_id"] for body in taken(config, events_q))
    assert published == Counter({f"{case_id}.dispatched.1": 1, f"{case_id}.notified.1": 1,
                                 f"{case_id}.notified.double_chief": 1, f"{case_id}.notified.liaison": 1,
                                 f"{case_id}.warned.1": 1, f"{case_id}.notified.warning.1": 1,
                                 f"{case_id}.supervised.1": 1, f"{case_id}.notified.supervision.1": 1,
                                 f"{case_id}.escalated.1": 1, f"{case_id}.notified.escalation.1": 1})


def test_parking_stops_the_clock_and_an_extension_moves_the_timers(platform, config, db):
    parked_id, extended_id = register(config, "E0101"), register(config, "E0101")
    for case_id in (parked_id, extended_id):
        relayed(db, case_id)
    # parked from Saturday: no timer runs while it is parked, whatever the clock says
    case = ok(platform, parked_id, "request-park", expected_version=1, reason="需财政立项", **UNIT)
    case = ok(platform, parked_id, "decide-park", expected_version=case["version"], actor="李主任",
              role="centre", approved=True)
    assert db("dispatch").cases.find_one({"_id": parked_id})["_timers"] == []
    # extended by a working day: 督办 moves from Monday 14:30 to Tuesday 14:30; warning at 80% of
    # 11h = 8h48m after Monday 08:30 → Tuesday 10:18
    case = ok(platform, extended_id, "request-extension", expected_version=1, reason="需调运机械", extra="1d",
              **UNIT)
    ok(platform, extended_id, "decide-extension", expected_version=case["version"], actor="李主任",
       role="centre", approved=True)

    set_clock(local(2026, 12, 1, 10, 19))             # past the old deadline, past the new warning
    doc = fired(db, extended_id, "case_warned", "the warning of the extended deadline")
    assert history_types(doc)["case_supervised"] == 0   # the old 14:30 督办 was moved, not fired
    assert [entry["kind"] for entry in doc["_timers"]] == ["supervise", "escalate"]
    assert doc["_timers"][0]["due_at"] == local(2026, 12, 1, 14, 30).astimezone(UTC)

    parked = db("dispatch").cases.find_one({"_id": parked_id})
    assert parked["state"] == "parked" and "case_warned" not in history_types(parked)
    # unparked on Tuesday 10:19 with the 4h it had left: 1h41m to 12:00, 14:00 + 2h19m → 16:19
    case = ok(platform, parked_id, "unpark", expected_version=parked["_version"], actor="李主任", role="centre")
    assert case["deadline"].startswith("2026-12-01T16:19")
    set_clock(local(2026, 12, 1, 16, 20))
    doc = fired(db, parked_id, "case_supervised", "督办 after unparking")
    assert history_types(doc)["case_warned"] == 1


def test_a_stage_of_an_illegal_building_case_is_supervised_and_reported_over_http(platform, config, db):
    """违法建设 (E0303): 责令停工 within 4 working hours of dispatch (Monday 14:30 here). One case
    reports it in time through the API; the other is silent and gets the stage's 督办 once."""
    sms_q = "notify.sms-outbox"
    silent, reported = register(config, "E0303"), register(config, "E0303")
    for case_id in (silent, reported):
        relayed(db, case_id)
        ok(platform, case_id, "accept", expected_version=1, **UNIT)
    case = ok(platform, reported, "report-stage", expected_version=2, stage="责令停工",
              note="已下达责令停工通知书", photo="/media/09de32d2650204b09fedf1dfbb22e656", **UNIT)
    assert case["stages"][0]["reported_at"] and case["stages"][0]["on_time"] is True
    assert all(entry["kind"] != "stage_overdue" for entry in case["supervision"])
    unknown = post(platform, reported, "report-stage", expected_version=3, stage="拆迁", **UNIT)
    assert unknown.status_code == 422 and "责令停工、拆除" in unknown.json()["error"]["message"]

    set_clock(local(2026, 11, 30, 14, 31))
    doc = fired(db, silent, "case_stage_overdue", "the stage's 督办")
    assert history_types(doc)["case_supervised"] == 0                    # the case itself is not late
    notes = [body["payload"] for body in taken(config, sms_q) if body["payload"]["kind"] == "stage_overdue"]
    assert [note["case_id"] for note in notes] == [silent]
    assert "「责令停工」应于 2026-11-30 14:30 前完成" in notes[0]["message"]
    assert history_types(db("dispatch").cases.find_one({"_id": reported}))["case_stage_overdue"] == 0
