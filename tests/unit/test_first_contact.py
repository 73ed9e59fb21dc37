"""首问负责 and 限时回复 (services/dispatch/first_contact.py): the first unit owes the citizen a
reply until the case has an owner; the reply deadline is a durable timer with its 督办."""
from __future__ import annotations

import pytest

from services.dispatch import first_contact, rules
from services.dispatch.routing import build_settings, load_settings
from tests.unit.test_dispatch_rules import DISTRICT, UNIT, act, dispatched, fire, local, registered, stored

OTHER = {"actor": "卢明洋", "actor_unit": "street.beiquan"}


def test_a_citizens_request_gives_the_first_unit_a_reply_deadline_of_two_working_hours():
    # Saturday 10:00: the clock starts Monday 08:30; 2 working hours → 10:30
    doc, change = dispatched(case_id="C1")
    duty = doc["first_contact"]
    assert duty["unit_id"] == "street.tianshengjie" and duty["due_at"] == local(2026, 11, 30, 10, 30)
    assert duty["replied_at"] is None
    entry = next(h for h in doc["history"] if h["type"] == "first_contact")
    assert entry["label"] == "首问负责（限时回复）" and "须于 2026-11-30 10:30 前答复市民" in entry["reason"]
    assert [(t["id"], t["due_at"]) for t in doc["_timers"] if t["kind"] == "first_reply"] == [
        ("C1.first_reply.1", local(2026, 11, 30, 10, 30))]


def test_an_inspectors_report_has_no_reply_duty():
    doc, _ = dispatched(case_id="C2", channel="inspector")
    assert "first_contact" not in doc and not [t for t in doc["_timers"] if t["kind"] == "first_reply"]


def test_signing_for_the_case_answers_on_time_and_the_timer_goes():
    doc, _ = dispatched(case_id="C3")
    doc, change = act(doc, "accept", local(2026, 11, 30, 9, 0), **UNIT)
    duty = doc["first_contact"]
    assert duty["replied_at"] == local(2026, 11, 30, 9, 0) and duty["on_time"] is True
    assert duty["replied_by"] == "street.tianshengjie"
    reply = next(h for h in doc["history"] if h["type"] == "first_reply")
    assert reply["label"] == "首问回复" and "已答复市民（按时）" in reply["reason"]
    assert "first_reply" not in [t["kind"] for t in doc["_timers"]]


def test_a_returned_case_stays_the_first_units_duty_and_is_supervised_when_nobody_answers():
    doc, _ = dispatched(case_id="C4")
    doc, _ = act(doc, "return", local(2026, 11, 30, 9, 0), reason="不属于本街道", to_unit="street.beiquan", **UNIT)
    assert doc["unit_id"] != "street.tianshengjie"
    assert doc["first_contact"]["unit_id"] == "street.tianshengjie"          # still the first unit's
    timer = next(t for t in doc["_timers"] if t["kind"] == "first_reply")
    assert timer["due_at"] == local(2026, 11, 30, 10, 30) and timer["id"] == "C4.first_reply.2"
    doc, change = fire(doc, "first_reply", local(2026, 11, 30, 10, 31))
    assert [(t, p["unit_id"], p["reason"]) for t, p, _ in change.events] == [
        ("case_supervised", "street.tianshengjie", "first_reply")]
    assert change.events[0][2] == "C4.supervised.first_reply"
    note = change.notes[0]
    assert note["kind"] == "first_reply_overdue" and note["unit_id"] == "street.tianshengjie"
    assert "答复时限 2026-11-30 10:30 已过" in note["message"]
    entry = doc["history"][-1]
    assert entry["type"] == "first_reply_overdue" and entry["label"] == "首问回复超时督办"
    assert "first_reply" not in [t["kind"] for t in doc["_timers"]]           # supervised once
    # the owner signs later: answered, late
    owner = {"actor": "值班员", "actor_unit": doc["unit_id"]}
    doc, _ = act(doc, "accept", local(2026, 11, 30, 11, 0), **owner)
    assert doc["first_contact"]["on_time"] is False and doc["first_contact"]["replied_by"] == doc["unit_id"]


def test_a_timer_that_fires_after_the_reply_does_nothing():
    doc, _ = dispatched(case_id="C5")
    timer = next(t for t in doc["_timers"] if t["kind"] == "first_reply")
    doc, _ = act(doc, "accept", local(2026, 11, 30, 9, 0), **UNIT)
    doc["_timers"] = list(doc["_timers"]) + [timer]          # a late delivery of the old timer
    change = rules.fire_timer(doc, timer, rules.Context(local(2026, 11, 30, 11, 0), DISTRICT, load_settings(district=DISTRICT)))
    assert change.events == [] and change.notes == []


def test_the_policy_is_a_setting():
    settings = build_settings({"first_contact": {"reply_within": "30m", "channels": ["hotline"]}}, district=DISTRICT)
    assert first_contact.policy(settings) == {"reply_within": "30m", "channels": ["hotline"]}
    with pytest.raises(ValueError, match="first_contact.reply_within"):     # refused when loaded
        build_settings({"first_contact": {"reply_within": "soon"}}, district=DISTRICT)


def test_the_citizen_hears_a_first_reply_supervision_as_such():
    """intake's copy (services/intake/case_status.py) tells 首问 督办 from a deadline 督办: the
    contract carries the reason."""
    from services.intake import case_status
    from shared.contracts.events import load_event, make_event
    for reason, words in (("first_reply", "首问单位天生街道未按时答复，已督办"), ("", "已超过处置时限，已督办天生街道")):
        body = make_event("case_supervised", {"case_id": "C1", "unit_id": "street.tianshengjie",
                                              "at": local(2026, 11, 30, 10, 31), "deadline": local(2026, 11, 30, 10, 30),
                                              "reason": reason},
                          producer="dispatch", correlation_id="C1", event_id=f"C1.sup.{reason}")
        event = load_event(body)
        assert event["payload"]["reason"] == reason
        fields = case_status.event_fields(event, lambda unit: "天生街道", "Asia/Shanghai")
        assert fields["status_notes"] == words
