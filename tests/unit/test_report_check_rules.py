"""核实 of a public report (services/dispatch/report_check.py), the contract's rule for the three
actions, and scoring's 核实数 / 按期核实数 per inspector — hand-computed values."""
from datetime import datetime, timedelta, timezone

import pytest

from services.dispatch import rules
from services.dispatch.routing import build_settings, load_settings
from services.scoring import checks
from services.scoring import rules as scoring_rules
from shared.contracts.api.case_actions import refusal
from tests.unit.test_dispatch_rules import DISTRICT, UNIT, act, dispatched, local, types

CENTRE = {"actor": "值班员张"}
INSPECTOR = {"actor": "insp.li", "actor_name": "李明"}
UTC = timezone.utc


def checked_case(at=local(2026, 11, 30, 9, 0)):
    doc, _ = dispatched(channel="open311")
    doc, change = act(doc, "request_check", at, **CENTRE)
    return doc, change


def test_the_centre_sends_the_grid_inspector_with_a_due_time_from_settings():
    # Monday 09:00 + 1 working hour (routing.yaml report_check.within) = 10:00
    doc, change = checked_case()
    assert types(change) == ["case_check_requested"]
    payload = change.events[0][1]
    assert payload["inspector_id"] == DISTRICT.grid("500190001001001")["responsible"]["grid_inspector"]
    assert payload["due_at"] == local(2026, 11, 30, 10, 0).astimezone(UTC)
    assert [t["kind"] for t in doc["_timers"] if t["kind"] == "check_overdue"] == ["check_overdue"]
    assert change.notes and "核实" in change.notes[0]["message"]
    # a second task while one is open is refused; an inspector's own report needs none
    with pytest.raises(rules.Refused):
        act(doc, "request_check", local(2026, 11, 30, 9, 5), **CENTRE)
    own, _ = dispatched(channel="inspector")
    with pytest.raises(rules.Refused):
        act(own, "request_check", local(2026, 11, 30, 9, 0), **CENTRE)


def test_the_inspector_answers_on_time_or_late():
    doc, _ = checked_case()
    on_time, change = act(doc, "check_report", local(2026, 11, 30, 10, 0), genuine=True, **INSPECTOR)
    assert types(change) == ["case_checked"]
    assert change.events[0][1]["on_time"] is True and change.events[0][1]["inspector_name"] == "李明"
    assert not [t for t in on_time["_timers"] if t["kind"] == "check_overdue"]       # answered: no timer
    late, change = act(doc, "check_report", local(2026, 11, 30, 10, 1), genuine=True, **INSPECTOR)
    assert change.events[0][1]["on_time"] is False
    # the answer is refused without an open task; 属实 does not allow 不立案
    assert refusal("check_report", on_time) and refusal("cancel", on_time)


def test_an_unanswered_check_is_supervised_once():
    doc, _ = checked_case()
    timer = next(t for t in doc["_timers"] if t["kind"] == "check_overdue")
    change = rules.fire_timer(doc, timer, rules.Context(local(2026, 11, 30, 10, 0).astimezone(UTC), DISTRICT,
                                                        load_settings(district=DISTRICT)))
    assert [h["type"] for h in change.history] == ["check_overdue"]
    assert change.set["check"]["overdue_at"] is not None and change.notes[0]["unit_id"] == "centre.command"
    assert not [t for t in change.timers if t["kind"] == "check_overdue"]


def test_not_genuine_lets_the_centre_decide_not_to_file():
    doc, _ = checked_case()
    assert refusal("cancel", doc)                                         # not answered yet
    doc, _ = act(doc, "check_report", local(2026, 11, 30, 9, 30), genuine=False, note="现场无垃圾", **INSPECTOR)
    assert refusal("cancel", doc) is None
    doc, change = act(doc, "cancel", local(2026, 11, 30, 9, 40), reason="核实不属实，不予立案", **CENTRE)
    assert types(change) == ["case_cancelled"] and doc["state"] == "cancelled" and doc["_timers"] == []
    with pytest.raises(rules.Refused):                                    # nothing more on it
        act(doc, "accept", local(2026, 11, 30, 9, 50), **UNIT)


def test_the_time_limit_is_a_setting():
    settings = build_settings({"report_check": {"within": "30m"}}, DISTRICT)
    doc, _ = dispatched(channel="hotline")
    change = rules.apply_action(doc, "request_check", CENTRE,
                                rules.Context(local(2026, 11, 30, 9, 0).astimezone(UTC), DISTRICT, settings))
    assert change.events[0][1]["due_at"] == local(2026, 11, 30, 9, 30).astimezone(UTC)


# ------------------------------------------------------------------ scoring: 核实数 / 按期核实数
def _entry(event_type, payload, at):
    return {"type": event_type, "payload": payload, "at": at, "occurred_at": at}


def test_scoring_counts_each_task_for_the_inspector_who_answered():
    t0 = datetime(2026, 11, 30, 1, 0, tzinfo=UTC)
    due = t0 + timedelta(hours=1)
    entries = [
        _entry("case_check_requested", {"sequence": 1, "inspector_id": "insp.li", "due_at": due}, t0),
        _entry("case_checked", {"sequence": 1, "inspector_id": "insp.li", "inspector_name": "李明",
                                "genuine": False, "due_at": due, "on_time": True}, due),
        _entry("case_check_requested", {"sequence": 2, "inspector_id": "insp.li", "due_at": due + timedelta(hours=2)},
               due + timedelta(hours=1)),
        _entry("case_checked", {"sequence": 2, "inspector_id": "insp.wang", "inspector_name": "王芳",
                                "genuine": True, "due_at": due + timedelta(hours=2), "on_time": False},
               due + timedelta(hours=3)),
        _entry("case_check_requested", {"sequence": 3, "inspector_id": "insp.li", "due_at": due + timedelta(hours=5)},
               due + timedelta(hours=4)),                                  # never answered
    ]
    fact = {"checks": []}
    for entry in entries:
        checks.fold(fact, entry["type"], entry["payload"], entry["at"])
    counted, names = {}, {}

    def add(key, name, n=1):
        counted.setdefault(key, {}).setdefault(name, 0)
        counted[key][name] += int(n)
    limit = t0 + timedelta(days=1)
    checks.tally([{"kind": "case", **fact}], lambda moment: t0 <= moment < limit, limit, add, names)
    # 李明: task 1 on time, task 3 unanswered past its due → 2 tasks, 1 on time; 王芳: 1 task, late
    assert counted == {"insp.li": {"verify_tasks": 2, "verify_tasks_on_time": 1},
                       "insp.wang": {"verify_tasks": 1, "verify_tasks_on_time": 0}}
    assert names == {"insp.li": "李明", "insp.wang": "王芳"}


def test_a_cancelled_case_is_not_due():
    fact = {"checks": [], "cancelled_at": None}
    checks.fold(fact, "case_cancelled", {"reason": "不属实"}, datetime(2026, 11, 30, 2, 0, tzinfo=UTC))
    assert checks.cancelled_before(fact, datetime(2026, 12, 1, tzinfo=UTC))
    assert not checks.cancelled_before(fact, datetime(2026, 11, 30, 1, 0, tzinfo=UTC))
    assert scoring_rules is not None
