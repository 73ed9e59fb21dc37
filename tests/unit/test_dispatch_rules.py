"""Dispatch rules without broker or store: routing (条块结合、以块为主), deadlines on the business
calendar, the lifecycle branches, supervision timers and what on_time means.

Expected values are worked out by hand in local time (Asia/Shanghai, UTC+8) with working periods
08:30–12:00 and 14:00–17:30 (7 working hours a day) and the 2026 holiday schedule of
shared/refdata/default_district/calendar.yaml. Reminders: 2026-03-10 is a Tuesday, 2026-03-13 a
Friday; 2026-09-30 a Wednesday and 10-01..07 the National Day holiday; 2026-10-10 (Saturday) a
make-up working day; 2026-02-14 (Saturday) a make-up working day and 02-15..23 Spring Festival;
2026-11-28 is a Saturday, 2026-11-30 a Monday.
"""
from datetime import datetime, timezone
from zoneinfo import ZoneInfo

import pytest
from marshmallow import ValidationError

from services.dispatch import notifications, rules
from services.dispatch.routing import RoutingError, build_settings, load_settings
from services.dispatch.schemas import ACTION_SCHEMAS, CaseQuery, action_name
from shared import timers as timerlib
from shared.refdata import load_district

CST = ZoneInfo("Asia/Shanghai")
UTC = timezone.utc
DISTRICT = load_district()
SETTINGS = load_settings(district=DISTRICT)

TIANSHENG = {"grid_code": "500190001001001", "street_id": "street.tianshengjie",
             "location": {"lon": 106.3904, "lat": 29.8338}}
WENQUANLU = {"grid_code": "500190002001001", "street_id": "street.beiquan",           # 北温泉度假区
             "location": {"lon": 106.398024, "lat": 29.833482}}
TONGJIAXI = {"grid_code": "500190101001001", "street_id": "town.tongjiaxi",            # a town
             "location": {"lon": 106.386074, "lat": 29.822771}}


def local(y, mo, d, h, mi=0) -> datetime:
    return datetime(y, mo, d, h, mi, tzinfo=CST)


def registered(class_code="E0101", place=TIANSHENG, owner=None, urgency="normal", case_id="C1", **extra):
    minor = DISTRICT.minor_class(class_code)
    if owner is None:
        owner = place["street_id"] if minor["owner"] == "street" else minor["owner"]
    return {"case_id": case_id, "report_id": f"rpt-{case_id}", "channel": "web", "class_code": class_code,
            "class_name": minor["name"], "class_kind": minor["kind"], "urgency": urgency,
            "location": place["location"], "address": "天生路18号", "grid_code": place["grid_code"],
            "street_id": place["street_id"], "owner_unit": owner, "joint_partners": [], "description": "",
            "registered_at": datetime(2026, 11, 28, 2, 0, tzinfo=UTC), **extra}


def ctx(at: datetime, settings=SETTINGS) -> rules.Context:
    return rules.Context(at.astimezone(UTC), DISTRICT, settings)


def stored(doc: dict, change: rules.Change, version: int = 1) -> dict:
    """What the store holds after a change (the service does this in one atomic update)."""
    doc = dict(doc)
    doc.update(change.set)
    doc["history"] = list(doc.get("history") or []) + change.history
    doc["notifications"] = list(doc.get("notifications") or []) + change.notes
    if change.timers is not None:
        doc["_timers"] = change.timers
    doc["_version"] = version
    return doc


def dispatched(at=local(2026, 11, 28, 10), **case):
    doc, change = rules.new_case(registered(**case), ctx(at))
    return stored(doc, change), change


def act(doc, action, at, **data):
    change = rules.apply_action(doc, action, data, ctx(at))
    return stored(doc, change, doc["_version"] + 1), change


def types(change):
    return [event_type for event_type, _, _ in change.events]


UNIT = {"actor": "王天怡", "actor_unit": "street.tianshengjie"}


# ====================================================================== routing
@pytest.mark.parametrize("class_code, place, expected, rule_word", [
    ("C0101", TIANSHENG, "dept.water", "部件"),                  # component → its professional department
    ("C0104", TONGJIAXI, "dept.power", "部件"),                  # also in a town
    ("E0501", TIANSHENG, "street.tianshengjie", "街面秩序"),      # street order → the street (块)
    ("E0501", TONGJIAXI, "town.tongjiaxi", "街面秩序"),
    ("E0504", TIANSHENG, "dept.traffic_police", "默认"),          # 机动车乱停放 stays with traffic police
    ("E0102", TIANSHENG, "op.cleaning", "默认"),                  # outsourced in the urban streets
    ("E0102", TONGJIAXI, "town.tongjiaxi", "外包"),               # … not in the towns
    ("C0108", TONGJIAXI, "town.tongjiaxi", "外包"),               # street lamps in a town: the town
    ("E0101", WENQUANLU, "park.beiwenquan", "园城"),              # place rule: the resort handles it
    ("E0504", WENQUANLU, "dept.traffic_police", "默认"),          # … except what it excludes
    ("E0101", TONGJIAXI, "town.tongjiaxi", "镇村"),
])
def test_routing_table_per_class_and_place(class_code, place, expected, rule_word):
    plan = SETTINGS.route(registered(class_code, place), DISTRICT)
    assert plan["unit_id"] == expected
    assert rule_word in plan["rule"]


def test_a_point_in_a_gap_keeps_intakes_interim_owner():
    gap = {"grid_code": None, "street_id": "street.dongyang", "location": {"lon": 106.3960, "lat": 29.8302}}
    assert SETTINGS.route(registered("E0101", gap), DISTRICT)["unit_id"] == "street.dongyang"
    assert SETTINGS.route(registered("C0101", gap), DISTRICT)["unit_id"] == "dept.water"


def test_case_kinds_come_from_the_taxonomy():
    assert SETTINGS.route(registered("C0106"), DISTRICT)["case_kind"] == "immediate"     # 燃气井盖 即办
    assert SETTINGS.route(registered("C0101"), DISTRICT)["case_kind"] == "committed"     # 承诺
    assert SETTINGS.route(registered("E0301", owner="dept.chengguan"), DISTRICT)["case_kind"] == "coordination"


def test_a_bad_routing_table_is_refused_with_every_problem_named():
    with pytest.raises(RoutingError) as error:
        build_settings({"rules": [{"name": "x", "when": {"class": ["E9999"], "colour": "red"}, "route": "dept.nowhere"}],
                        "supervision": {"warn_share": 1.5, "escalate_after": "soon"}}, DISTRICT)
    text = str(error.value)
    for needle in ("E9999", "colour", "dept.nowhere", "warn_share", "escalate_after"):
        assert needle in text


def test_overrides_from_the_environment_beat_the_file():
    settings = build_settings({"supervision": {"warn_share": 0.8, "by_kind": {"immediate": {"warn_share": 0.5}}}},
                              DISTRICT, {"DISPATCH_WARN_SHARE": "0.9", "DISPATCH_ESCALATE_AFTER": "1d"})
    assert settings.supervision.warn_share == 0.9 and settings.supervision.escalate_after == "1d"
    assert settings.supervision_for("immediate").warn_share == 0.9


# ====================================================================== deadlines at dispatch
@pytest.mark.parametrize("class_code, place, urgency, at, expected", [
    # Tuesday 16:30, 4h: 16:30–17:30 = 1h, Wednesday 08:30 + 3h → 11:30
    ("E0101", TIANSHENG, "normal", local(2026, 3, 10, 16, 30), local(2026, 3, 11, 11, 30)),
    # the night: Monday 22:35 → Tuesday 08:30 + 4h: 3.5h to 12:00, 14:00 + 0.5h → 14:30
    ("E0101", TIANSHENG, "normal", local(2026, 11, 23, 22, 35), local(2026, 11, 24, 14, 30)),
    # the weekend: Friday 17:00, 4h: 0.5h Friday, Monday 08:30 + 3.5h → 12:00 (end of a period)
    ("E0101", TIANSHENG, "normal", local(2026, 3, 13, 17, 0), local(2026, 3, 16, 12, 0)),
    # National Day: Wednesday 2026-09-30 15:00, 4h: 2.5h that day, 10-01..07 off → 10-08 08:30 + 1.5h
    ("E0101", TIANSHENG, "normal", local(2026, 9, 30, 15, 0), local(2026, 10, 8, 10, 0)),
    # a make-up working day: Friday 2026-10-09 17:00, 消防栓 1d → Saturday 10-10 (调休上班) 17:00
    ("C0107", TIANSHENG, "normal", local(2026, 10, 9, 17, 0), local(2026, 10, 10, 17, 0)),
    # Spring Festival: Friday 2026-02-13 16:00, 交通标志牌 2d → Sat 02-14 (make-up) is day 1,
    # 02-15..23 off, Tuesday 02-24 is day 2 → 16:00
    ("C0202", TIANSHENG, "normal", local(2026, 2, 13, 16, 0), local(2026, 2, 24, 16, 0)),
    # urgency changes the deadline: 暴露垃圾 urgent is 2h: Monday 11:00 → 12:00 (1h), 14:00 + 1h
    ("E0101", TIANSHENG, "urgent", local(2026, 11, 30, 11, 0), local(2026, 11, 30, 15, 0)),
    # place changes it too: 暴露垃圾 in a town is 1d: Tuesday 10:00 → Wednesday 10:00
    ("E0101", TONGJIAXI, "normal", local(2026, 3, 10, 10, 0), local(2026, 3, 11, 10, 0)),
    # Saturday 10:00 → the clock starts Monday 08:30; 4h → 14:30
    ("E0101", TIANSHENG, "normal", local(2026, 11, 28, 10, 0), local(2026, 11, 30, 14, 30)),
])
def test_deadline_on_the_business_calendar(class_code, place, urgency, at, expected):
    doc, change = dispatched(at, class_code=class_code, place=place, urgency=urgency)
    assert doc["deadline"] == expected.astimezone(UTC)
    assert doc["deadline"].tzinfo is not None                      # stored in UTC …
    payload = change.events[0][1]
    assert change.events[0][0] == "case_dispatched" and payload["deadline"] == expected.astimezone(UTC)
    view = rules.case_view(doc, DISTRICT)
    assert view["deadline"] == expected.isoformat()                # … shown in local time
    assert view["deadline"].endswith("+08:00")


def test_the_first_dispatch_keeps_its_deterministic_event_ids():
    doc, change = dispatched(case_id="C77")
    assert [event_id for _, _, event_id in change.events] == ["C77.dispatched.1"]
    assert [note["id"] for note in change.notes] == ["C77.notified.1", "C77.notified.double_chief",
                                                     "C77.notified.liaison"]
    assert doc["notifications"][0]["recipients"] == [{"name": "冯伟远", "role": "值班员", "phone": "13900026800"}]  # the duty mobile, not the desk landline
    assert "2026-11-30 14:30" in doc["notifications"][0]["message"]


# ====================================================================== supervision timers
def due(doc, kind):
    return next(entry["due_at"] for entry in doc["_timers"] if entry["kind"] == kind)


def test_warning_at_80_percent_supervision_at_the_deadline_escalation_after_4_more_hours():
    doc, _ = dispatched()                           # Saturday → Monday 08:30 … 14:30 (4h)
    # 80% of 4h = 3h12m after Monday 08:30 → 11:42
    assert due(doc, "warn") == local(2026, 11, 30, 11, 42).astimezone(UTC)
    assert due(doc, "supervise") == local(2026, 11, 30, 14, 30).astimezone(UTC)
    # 4 working hours after 14:30: 3h to 17:30, Tuesday 08:30 + 1h → 09:30
    assert due(doc, "escalate") == local(2026, 12, 1, 9, 30).astimezone(UTC)


def test_immediate_cases_warn_at_half_time_and_escalate_sooner():
    doc, _ = dispatched(class_code="C0106")         # 燃气井盖 即办, 2h: Monday 08:30 … 10:30
    assert doc["case_kind"] == "immediate"
    assert due(doc, "warn") == local(2026, 11, 30, 9, 30).astimezone(UTC)       # 50%
    # escalation 2h after 10:30: 1.5h to 12:00, 14:00 + 0.5h → 14:30
    assert due(doc, "escalate") == local(2026, 11, 30, 14, 30).astimezone(UTC)


def fire(doc, kind, at):
    timer = next(entry for entry in doc["_timers"] if entry["kind"] == kind)
    change = rules.fire_timer(doc, timer, ctx(at))
    return stored(doc, change, doc["_version"] + 1), change


def test_timers_fire_once_and_notify_the_right_people():
    doc, _ = dispatched(case_id="C9", channel="inspector")     # an inspector's: no 首问 reply timer
    doc, change = fire(doc, "warn", local(2026, 11, 30, 11, 42))
    assert types(change) == ["case_warned"] and change.events[0][2] == "C9.warned.1"
    assert change.events[0][1]["share_used"] == 0.8
    assert [note["kind"] for note in change.notes] == ["warning"]
    assert [entry["kind"] for entry in doc["_timers"]] == ["supervise", "escalate"]
    doc, change = fire(doc, "supervise", local(2026, 11, 30, 14, 30))
    assert types(change) == ["case_supervised"]
    assert {person["role"] for person in change.notes[0]["recipients"]} == {"主任", "分管城市管理副主任"}
    doc, change = fire(doc, "escalate", local(2026, 12, 1, 9, 30))
    assert types(change) == ["case_escalated"] and change.events[0][1]["escalated_to"] == "lead.group"
    assert change.notes[0]["unit_id"] == "lead.group"
    assert doc["_timers"] == []
    assert rules.fire_timer(doc, {"id": "C9.warn.1", "kind": "warn"}, ctx(local(2026, 12, 1, 10))) is None


def test_a_timer_that_outlived_its_state_just_goes_away():
    doc, _ = dispatched()
    doc, _ = act(doc, "accept", local(2026, 11, 30, 9), **UNIT)
    stale = next(entry for entry in doc["_timers"] if entry["kind"] == "warn")
    doc, _ = act(doc, "feedback", local(2026, 11, 30, 10), after_photo="http://img/after.jpg", **UNIT)
    doc["_timers"].append(stale)                    # as if the feedback and the timer raced
    change = rules.fire_timer(doc, stale, ctx(local(2026, 11, 30, 11, 42)))
    assert change.events == [] and stale["id"] not in {entry["id"] for entry in change.timers}


# ====================================================================== the lifecycle
def test_happy_path_accept_feedback_verify_close_on_time():
    doc, _ = dispatched()
    doc, change = act(doc, "accept", local(2026, 11, 30, 9), **UNIT)
    assert doc["state"] == "accepted" and types(change) == ["case_accepted"]
    doc, change = act(doc, "feedback", local(2026, 11, 30, 13), after_photo="http://img/after.jpg",
                      note="已清运", **UNIT)
    # verification within 2 working hours: 13:00 is the lunch break → 14:00 + 2h = 16:00
    assert doc["feedback"]["verify_due_at"] == local(2026, 11, 30, 16).astimezone(UTC)
    assert [entry["kind"] for entry in doc["_timers"]] == ["verify_overdue"]
    assert change.notes[0]["kind"] == "verification" and "严勇" in change.notes[0]["message"]  # grid inspector
    doc, change = act(doc, "verify", local(2026, 11, 30, 15), actor="严勇", passed=True, note="已清理干净")
    assert types(change) == ["case_verified", "case_closed"]
    verified, closed = change.events[0][1], change.events[1][1]
    assert verified["due_at"] == local(2026, 11, 30, 16).astimezone(UTC) and verified["inspector_id"] == "严勇"
    assert closed["on_time"] is True and closed["extended"] is False and closed["parked"] is False
    assert closed["handled_at"] == local(2026, 11, 30, 13).astimezone(UTC)
    assert doc["state"] == "closed" and doc["_timers"] == []


def test_late_feedback_is_not_on_time():
    doc, _ = dispatched()
    doc, _ = act(doc, "accept", local(2026, 11, 30, 9), **UNIT)
    doc, _ = act(doc, "feedback", local(2026, 11, 30, 14, 31), after_photo="http://img/a.jpg", **UNIT)
    doc, change = act(doc, "verify", local(2026, 11, 30, 15), actor="严勇", passed=True)
    assert change.events[1][1]["on_time"] is False


def test_return_redispatches_at_once_and_counts_against_whoever_made_the_assignment():
    doc, _ = dispatched(class_code="E0506")        # 乱堆物堆料 → the street by the routing table
    doc, change = act(doc, "return", local(2026, 11, 30, 9), reason="系市政设施维修遗留，应由市政处置",
                      to_unit="dept.municipal", **UNIT)
    assert types(change) == ["case_returned", "case_dispatched"]
    returned, redispatched = change.events[0][1], change.events[1][1]
    assert returned["caused_by"] == "centre.command"            # the routing was wrong
    assert returned["return_count"] == 1 and returned["to_unit"] == "dept.municipal"
    assert redispatched["unit_id"] == "dept.municipal" and redispatched["sequence"] == 2
    assert redispatched["routed_by"] == "street.tianshengjie"     # on the street's word
    # a fresh clock for the new unit: Monday 09:00 + 1d → Tuesday 09:00
    assert doc["deadline"] == local(2026, 12, 1, 9).astimezone(UTC)
    assert change.notes[0]["unit_id"] == "dept.municipal"
    # the department sends it back: this return counts against the street that suggested it,
    # and a case returned twice is disputed; it goes to the place's street meanwhile (属地兜底)
    municipal = {"actor": "市政值班员", "actor_unit": "dept.municipal"}
    doc, change = act(doc, "return", local(2026, 11, 30, 10), reason="不属于市政设施", **municipal)
    assert types(change) == ["case_returned", "case_ownership_disputed", "case_dispatched"]
    assert change.events[0][1]["caused_by"] == "street.tianshengjie"
    disputed = change.events[1][1]
    assert disputed["units"] == ["street.tianshengjie", "dept.municipal"]
    assert disputed["interim_owner"] == "street.tianshengjie" and disputed["location"] == TIANSHENG["location"]
    assert doc["unit_id"] == "street.tianshengjie" and doc["sequence"] == 3
    with pytest.raises(rules.Refused):
        act(doc, "return", local(2026, 11, 30, 11), reason="again", **UNIT)


def test_only_the_assigned_unit_may_act_for_the_unit():
    doc, _ = dispatched()
    with pytest.raises(rules.Forbidden):
        act(doc, "accept", local(2026, 11, 30, 9), actor="x", actor_unit="street.beiquan")


def test_extensions_move_the_deadline_and_the_second_needs_a_higher_approver():
    doc, _ = dispatched()                           # deadline Monday 14:30
    doc, _ = act(doc, "accept", local(2026, 11, 30, 9), **UNIT)
    doc, change = act(doc, "request_extension", local(2026, 11, 30, 10), reason="需调运大型机械", extra="1d", **UNIT)
    assert change.events[0][1]["required_role"] == "centre"
    with pytest.raises(rules.Forbidden):            # a duty operator may not approve it
        act(doc, "decide_extension", local(2026, 11, 30, 10), actor="值班员", role="operator", approved=True)
    doc, change = act(doc, "decide_extension", local(2026, 11, 30, 10, 5), actor="李主任", role="centre",
                      approved=True, reason="同意")
    new = local(2026, 12, 1, 14, 30).astimezone(UTC)              # 1 working day after Monday 14:30
    assert change.events[0][1]["new_deadline"] == new and doc["deadline"] == new
    assert due(doc, "supervise") == new                          # the timers moved with it
    # 80% of 4h + 7h = 11h → 8h48m after Monday 08:30: Monday 7h, Tuesday 08:30 + 1h48m → 10:18
    assert due(doc, "warn") == local(2026, 12, 1, 10, 18).astimezone(UTC)
    assert doc["original_deadline"] == local(2026, 11, 30, 14, 30).astimezone(UTC)
    doc, change = act(doc, "request_extension", local(2026, 12, 1, 9), reason="材料未到", extra="4h", **UNIT)
    assert change.events[0][1]["sequence"] == 2 and change.events[0][1]["required_role"] == "leader"
    with pytest.raises(rules.Forbidden):            # the centre director is not enough the second time
        act(doc, "decide_extension", local(2026, 12, 1, 9, 5), actor="李主任", role="centre", approved=True)
    doc, change = act(doc, "decide_extension", local(2026, 12, 1, 9, 5), actor="赵区长", role="leader",
                      approved=True)
    # Tuesday 14:30 + 4h: 3h to 17:30, Wednesday 08:30 + 1h → 09:30
    assert doc["deadline"] == local(2026, 12, 2, 9, 30).astimezone(UTC)
    with pytest.raises(rules.Refused):              # no third extension
        act(doc, "request_extension", local(2026, 12, 1, 10), reason="再延", extra="1h", **UNIT)


def test_a_refused_extension_changes_nothing_and_does_not_use_up_the_first_approver():
    doc, _ = dispatched()
    doc, _ = act(doc, "request_extension", local(2026, 11, 30, 10), reason="r", extra="1d", **UNIT)
    doc, change = act(doc, "decide_extension", local(2026, 11, 30, 10), actor="李主任", role="centre",
                      approved=False, reason="理由不充分")
    assert change.events[0][1]["approved"] is False and change.timers is None
    assert doc["deadline"] == local(2026, 11, 30, 14, 30).astimezone(UTC) and not doc["extended"]
    doc, change = act(doc, "request_extension", local(2026, 11, 30, 11), reason="r", extra="1d", **UNIT)
    assert change.events[0][1]["required_role"] == "centre"


def test_parking_stops_the_clock_and_unparking_restarts_it_with_the_time_left():
    doc, _ = dispatched()                           # Monday 08:30 … 14:30
    doc, _ = act(doc, "accept", local(2026, 11, 30, 9), **UNIT)
    doc, _ = act(doc, "request_park", local(2026, 11, 30, 10), reason="需市财政立项资金", **UNIT)
    with pytest.raises(rules.Forbidden):
        act(doc, "decide_park", local(2026, 11, 30, 10), actor="值班员", role="operator", approved=True)
    doc, change = act(doc, "decide_park", local(2026, 11, 30, 10), actor="李主任", role="centre", approved=True)
    assert doc["state"] == "parked" and doc["_timers"] == []
    # left at 10:00: 10:00–12:00 and 14:00–14:30 = 2.5h
    assert change.events[0][1]["remaining_seconds"] == 9000
    # unparked on Thursday 16:00: 1.5h to 17:30, Friday 08:30 + 1h → 09:30
    doc, change = act(doc, "unpark", local(2026, 12, 3, 16), actor="李主任", role="centre", reason="资金到位")
    assert doc["state"] == "accepted"
    assert doc["deadline"] == local(2026, 12, 4, 9, 30).astimezone(UTC) == due(doc, "supervise")
    doc, _ = act(doc, "feedback", local(2026, 12, 4, 9), after_photo="http://img/a.jpg", **UNIT)
    doc, change = act(doc, "verify", local(2026, 12, 4, 10), actor="严勇", passed=True)
    closed = change.events[1][1]
    assert closed["parked"] is True and closed["on_time"] is False      # parking never inflates on-time


def test_a_failed_verification_orders_rework_with_a_fresh_window():
    doc, _ = dispatched()
    doc, _ = act(doc, "accept", local(2026, 11, 30, 9), **UNIT)
    doc, _ = act(doc, "feedback", local(2026, 11, 30, 10), after_photo="http://img/a.jpg", **UNIT)
    doc, change = act(doc, "verify", local(2026, 11, 30, 11), actor="严勇", passed=False, note="仍有垃圾残留")
    assert types(change) == ["case_verified", "case_rework_ordered"]
    assert change.events[0][1]["passed"] is False
    assert doc["state"] == "accepted" and doc["rework_count"] == 1
    # 4h from Monday 11:00: 1h to 12:00, 14:00 + 3h → 17:00
    assert doc["deadline"] == local(2026, 11, 30, 17).astimezone(UTC)
    assert change.notes[0]["kind"] == "rework"
    doc, _ = act(doc, "feedback", local(2026, 11, 30, 14, 20), after_photo="http://img/b.jpg", **UNIT)
    doc, change = act(doc, "verify", local(2026, 11, 30, 15), actor="严勇", passed=True)
    closed = change.events[1][1]
    # the passing feedback (14:20) came before the original deadline (14:30): on time
    assert closed["on_time"] is True and closed["rework_count"] == 1


def test_a_reopened_case_goes_back_to_its_unit_as_rework_and_closes_a_second_time():
    doc, _ = dispatched()
    doc, _ = act(doc, "accept", local(2026, 11, 30, 9), **UNIT)
    doc, _ = act(doc, "feedback", local(2026, 11, 30, 10), after_photo="http://img/a.jpg", **UNIT)
    doc, _ = act(doc, "verify", local(2026, 11, 30, 11), actor="严勇", passed=True)
    change = rules.reopen(doc, {"payload": {"case_id": "C1", "report_id": "r2", "reason": "市民再次举报"}},
                          ctx(local(2026, 12, 1, 9)))
    doc = stored(doc, change, doc["_version"] + 1)
    assert types(change) == ["case_rework_ordered"] and change.events[0][1]["source"] == "reopened"
    assert doc["state"] == "accepted" and doc["unit_id"] == "street.tianshengjie"
    doc, _ = act(doc, "feedback", local(2026, 12, 1, 10), after_photo="http://img/c.jpg", **UNIT)
    doc, change = act(doc, "verify", local(2026, 12, 1, 11), actor="严勇", passed=True)
    assert change.events[1][2] == "C1.closed.2" and change.events[1][1]["closure"] == 2
    assert change.events[1][1]["on_time"] is False


def test_an_ownership_decision_moves_a_case_still_with_the_interim_owner():
    doc, _ = dispatched(class_code="E0506")
    doc, _ = act(doc, "return", local(2026, 11, 30, 9), reason="r1", to_unit="dept.municipal", **UNIT)
    doc, _ = act(doc, "return", local(2026, 11, 30, 10), reason="r2", actor="m", actor_unit="dept.municipal")
    decision = {"dispute_id": "D1", "owner_unit": "dept.housing", "level": "department", "decided_by": "区城管局"}
    change = rules.ownership_decided(doc, decision, "street.tianshengjie", ctx(local(2026, 11, 30, 15)))
    assert types(change) == ["case_dispatched"]
    assert change.events[0][1]["unit_id"] == "dept.housing" and change.events[0][1]["sequence"] == 4
    assert change.events[0][1]["routed_by"] == "arbitration.department"
    moved = stored(doc, change, doc["_version"] + 1)
    # not with the interim owner any more: nothing moves
    assert types(rules.ownership_decided(moved, decision, "street.tianshengjie", ctx(local(2026, 11, 30, 16)))) == []


def test_urgency_change_recomputes_the_deadline_from_the_dispatch():
    doc, _ = dispatched()
    doc, change = act(doc, "set_urgency", local(2026, 11, 30, 9), actor="值班员", role="operator",
                      urgency="urgent", reason="临近学校")
    # urgent 暴露垃圾 2h from Monday 08:30 → 10:30
    assert doc["deadline"] == doc["original_deadline"] == local(2026, 11, 30, 10, 30).astimezone(UTC)


def test_states_refuse_what_does_not_fit():
    doc, _ = dispatched()
    with pytest.raises(rules.Refused):             # feedback before accepting
        act(doc, "feedback", local(2026, 11, 30, 9), after_photo="http://img/a.jpg", **UNIT)
    with pytest.raises(rules.Refused):
        act(doc, "verify", local(2026, 11, 30, 9), actor="严勇", passed=True)
    with pytest.raises(rules.Refused):
        act(doc, "unpark", local(2026, 11, 30, 9), actor="李主任", role="centre")


# ====================================================================== schemas and notifications
def test_action_schemas_give_field_level_errors():
    with pytest.raises(ValidationError) as error:
        ACTION_SCHEMAS["request_extension"]().load({"expected_version": 0, "actor": "", "extra": "soon"})
    assert set(error.value.messages) == {"expected_version", "actor", "actor_unit", "extra", "reason"}
    with pytest.raises(ValidationError) as error:
        ACTION_SCHEMAS["verify"]().load({"expected_version": 3, "actor": "严勇", "passed": False})
    assert "note" in error.value.messages
    with pytest.raises(ValidationError) as error:
        ACTION_SCHEMAS["feedback"]().load({"expected_version": 3, "actor": "a", "actor_unit": "u",
                                           "after_photo": "not a url"})
    assert "after_photo" in error.value.messages
    loaded = ACTION_SCHEMAS["accept"]().load({"expected_version": "3", "actor": "a", "actor_unit": "u",
                                             "something_new": 1})           # unknown fields tolerated
    assert loaded["expected_version"] == 3
    assert action_name("request-extension") == "request_extension" and action_name("fly") is None
    with pytest.raises(ValidationError):
        CaseQuery().load({"state": "lost", "per_page": "1000"})


def test_recipients_fall_back_to_every_contact():
    assert [p["role"] for p in notifications.recipients(DISTRICT, "lead.group", ["办公室主任"])] == \
        ["办公室主任（区城管局局长兼）"]
    assert len(notifications.recipients(DISTRICT, "lead.group", ["no such role"])) == 3


def test_timer_ids_change_with_every_reschedule():
    doc, _ = dispatched(case_id="C5")
    first = {entry["id"] for entry in doc["_timers"]}
    doc, _ = act(doc, "set_urgency", local(2026, 11, 30, 9), actor="o", role="operator", urgency="urgent", reason="r")
    assert first.isdisjoint({entry["id"] for entry in doc["_timers"]})
    assert all(entry["id"].endswith(".2") for entry in timerlib.pending(doc))


# ====================================================================== intermediate stages (阶段时限)
def test_stages_start_with_the_assignment_and_the_unit_reports_them():
    doc, change = dispatched(class_code="E0303")    # 违法建设: 责令停工 4h, 拆除 20d (= the deadline)
    assert [(s["name"], s["time_limit"]) for s in doc["stages"]] == [("责令停工", "4h"), ("拆除", "20d")]
    # Saturday → Monday 08:30; 4 working hours: 3.5h to 12:00, then 14:00 + 0.5h → 14:30
    assert doc["stages"][0]["due_at"] == local(2026, 11, 30, 14, 30).astimezone(UTC)
    assert doc["stages"][1]["due_at"] == doc["deadline"]
    stage_timers = [t for t in doc["_timers"] if t["kind"] == "stage_overdue"]
    assert [(t["id"], t["due_at"]) for t in stage_timers] == [("C1.stage0.1", local(2026, 11, 30, 14, 30).astimezone(UTC))]

    with pytest.raises(rules.Refused):                                     # accept first
        act(doc, "report_stage", local(2026, 11, 30, 9), stage="责令停工", **UNIT)
    doc, _ = act(doc, "accept", local(2026, 11, 30, 9), **UNIT)
    with pytest.raises(rules.Refused) as unknown:
        act(doc, "report_stage", local(2026, 11, 30, 10), stage="拆迁", **UNIT)
    assert "责令停工、拆除" in str(unknown.value)
    with pytest.raises(rules.Forbidden):
        act(doc, "report_stage", local(2026, 11, 30, 10), stage="责令停工", actor="x", actor_unit="street.beiquan")
    doc, change = act(doc, "report_stage", local(2026, 11, 30, 11), stage="责令停工", note="已下达停工通知书",
                      photo="https://media.example/stop.jpg", **UNIT)
    assert types(change) == ["case_stage_reported"] and change.events[0][1]["on_time"] is True
    assert change.events[0][2] == "C1.stage.0.1" and change.history[0]["label"] == "阶段报告"
    assert doc["stages"][0]["reported_by"] == "王天怡" and doc["stages"][0]["note"] == "已下达停工通知书"
    assert "stage_overdue" not in {t["kind"] for t in doc["_timers"]}   # nothing left to supervise
    assert doc["state"] == "accepted"
    with pytest.raises(rules.Refused):
        act(doc, "report_stage", local(2026, 11, 30, 12), stage="责令停工", **UNIT)


def test_a_stage_not_reported_in_time_gets_its_own_supervision():
    doc, _ = dispatched(class_code="E0303", case_id="C7")
    doc, _ = act(doc, "accept", local(2026, 11, 30, 9), **UNIT)
    doc, change = fire(doc, "stage_overdue", local(2026, 11, 30, 14, 30))
    assert types(change) == ["case_stage_overdue"] and change.events[0][1]["stage"] == "责令停工"
    assert change.history[0]["reason"] == "「责令停工」应于 2026-11-30 14:30 前完成，尚未报告"
    assert [note["kind"] for note in change.notes] == ["stage_overdue"]
    assert "「责令停工」应于 2026-11-30 14:30 前完成" in change.notes[0]["message"]
    assert change.notes[0]["unit_id"] == "street.tianshengjie"
    assert "stage_overdue" not in {t["kind"] for t in doc["_timers"]}   # once
    doc, change = act(doc, "report_stage", local(2026, 11, 30, 16), stage="责令停工", **UNIT)
    assert change.events[0][1]["on_time"] is False
    stage_ids = {t["id"] for t in doc["_timers"] if t["kind"] == "stage_overdue"}
    assert stage_ids == set()
    plain, _ = dispatched(class_code="E0101", case_id="C8")               # a class without stages
    assert plain["stages"] == [] and "stage_overdue" not in {t["kind"] for t in plain["_timers"]}
