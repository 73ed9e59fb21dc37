"""Graduated enforcement without I/O: the ladder 说服→教育→引导→警告→处罚, 首违不罚 from the
history and the no-penalty list, and 限期整改 follow-ups. Expected steps worked out by hand."""
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import yaml

from services.enforcement_coordination import enforcement as e

NOW = datetime(2026, 11, 23, 8, 0, tzinfo=timezone.utc)
POLICY = e.Policy.from_mapping({
    "lookback_days": 365, "rectify_hours": {"default": 72, "E0501": 24},
    "no_penalty_list": [{"class_code": "E0501", "note": "首次占道经营"}, "E0201"]})
PARTY = {"ref": "P-1", "kind": "licence"}


def past(class_code, step, days_ago, vid=None):
    return {"violation_id": vid or f"V{days_ago}", "class_code": class_code, "step": step,
            "at": NOW - timedelta(days=days_ago)}


def violation(class_code="E0501", severity="minor", corrected=False, vid="VNEW", **extra):
    return {"violation_id": vid, "class_code": class_code, "severity": severity, "corrected": corrected, **extra}


def test_first_minor_listed_violation_corrected_on_the_spot_is_not_penalised():
    decision = e.decide([], violation(corrected=True), POLICY, NOW)
    assert decision["step"] == "educate" and decision["exempt"] is True and decision["order"] is None
    assert "首违不罚" in decision["reason"] and "第三十三条" in decision["basis"]


def test_first_minor_violation_not_yet_corrected_gets_persuasion_and_a_rectification_order():
    decision = e.decide([], violation(), POLICY, NOW)
    assert decision["step"] == "persuade" and decision["pending_exempt"] and not decision["exempt"]
    assert decision["order"] == {"due_at": NOW + timedelta(hours=24)}          # E0501: 24 hours


@pytest.mark.parametrize("case,expected_step,why", [
    (violation(class_code="E0504", corrected=True), "persuade", "不在首违不罚清单"),   # not listed
    (violation(severity="general", corrected=True), "educate", "不属轻微"),            # not minor
    (violation(severity="serious", corrected=True), "penalise", "情节严重"),
])
def test_no_exemption_off_the_list_or_when_not_minor(case, expected_step, why):
    decision = e.decide([], case, POLICY, NOW)
    assert decision["step"] == expected_step and not decision["exempt"] and why in decision["reason"]


def test_the_taxonomy_can_veto_the_list():
    decision = e.decide([], violation(corrected=True), POLICY, NOW, taxonomy_eligible=False)
    assert not decision["exempt"] and decision["step"] == "persuade"


@pytest.mark.parametrize("history,expected", [
    ([past("E0501", "educate", 30)], "guide"),                                          # 2nd: one above 教育
    ([past("E0501", "educate", 60), past("E0501", "guide", 30)], "warn"),               # 3rd
    ([past("E0501", "educate", 90), past("E0501", "guide", 60), past("E0501", "warn", 30)], "penalise"),
    ([past("E0501", "penalise", 10)], "penalise"),                                      # capped
    ([past("E0501", "warn", 400)], "educate"),                                          # out of the window → first
    ([past("E0201", "warn", 10)], "educate"),                                           # another class → first
])
def test_repeats_climb_the_ladder_from_the_history(history, expected):
    decision = e.decide(history, violation(corrected=True), POLICY, NOW)
    assert decision["step"] == expected
    if expected == "educate":       # first of its class in the window: 首违不罚 again
        assert decision["exempt"]
    else:
        assert not decision["exempt"] and decision["order"] is None     # corrected on the spot: no order


def test_a_repeat_not_corrected_gets_an_order_unless_it_is_penalised():
    decision = e.decide([past("E0501", "educate", 30)], violation(), POLICY, NOW)
    assert decision["step"] == "guide" and decision["order"] == {"due_at": NOW + timedelta(hours=24)}
    decision = e.decide([past("E0501", "warn", 30)], violation(), POLICY, NOW)
    assert decision["step"] == "penalise" and decision["order"] is None


def test_rectification_follow_up_corrected_in_time_gives_first_violation_exemption():
    record, events, timers = e.record_violation([], PARTY, violation(officer="执法队员 张"), POLICY, NOW, True)
    assert record["status"] == "rectifying" and record["order"]["order_id"] == "VNEW-R1"
    assert [t["id"] for t in timers] == ["VNEW-R1"] and timers[0]["due_at"] == NOW + timedelta(hours=24)
    assert [k for k, _, _ in events] == ["enforcement_decided", "rectification_ordered"]
    assert events[0][1]["party_id"] == "P-1" and events[0][1]["step"] == "persuade"
    checked, events, timers = e.resolve_order(record, PARTY, True, NOW + timedelta(hours=20), POLICY, "核查员 王")
    assert checked["step"] == "educate" and checked["exempt"] is True and checked["status"] == "closed"
    assert [k for k, _, _ in events] == ["rectification_checked", "enforcement_decided"] and timers == []
    assert events[1][1]["first_violation_exempt"] is True and events[1][1]["decision_id"] == "VNEW.d2"


def test_not_corrected_by_the_deadline_climbs_one_step_each_time_until_the_penalty():
    record, _, _ = e.record_violation([], PARTY, violation(), POLICY, NOW, True)
    steps = [record["step"]]
    moment = NOW
    while record["order"]:
        moment = record["order"]["due_at"]
        record, events, timers = e.resolve_order(record, PARTY, False, moment, POLICY, "system")
        steps.append(record["step"])
        assert events[0][1]["corrected"] is False and events[0][1]["next_step"] == record["step"]
    assert steps == ["persuade", "educate", "guide", "warn", "penalise"]
    assert moment == NOW + timedelta(hours=24 * 4)          # four 24-hour orders
    assert record["exempt"] is False and len(record["orders"]) == 4 and record["status"] == "closed"


def test_a_repeat_corrected_after_an_order_is_closed_without_a_new_step():
    record, _, _ = e.record_violation([past("E0501", "educate", 30)], PARTY, violation(), POLICY, NOW, True)
    checked, events, _ = e.resolve_order(record, PARTY, True, NOW + timedelta(hours=1), POLICY, "核查员")
    assert checked["step"] == "guide" and [k for k, _, _ in events] == ["rectification_checked"]


@pytest.mark.parametrize("kind,number,ok", [
    ("id_card", "11010519491231002X", True), ("id_card", "110105194912310021", False),
    ("id_card", "1101051949", False), ("licence", "91350100M000100Y43", True),
    ("licence", "91350100M000100Y44", False), ("plate", "渝A12345", True), ("plate", "渝AD12345", True),
    ("plate", "AB12345", False), ("passport", "E1234567", False),
])
def test_party_numbers_are_checked(kind, number, ok):
    assert (e.party_problem(kind, number) is None) is ok


def test_the_party_reference_is_stable_and_reveals_nothing():
    ref = e.party_ref("plate", "渝a 12345")
    assert ref == e.party_ref("plate", "渝A12345") and ref.startswith("P-") and "12345" not in ref
    assert ref != e.party_ref("id_card", "渝A12345")


def test_the_shipped_policy_file_loads_and_lists_known_classes():
    path = Path(e.__file__).with_name("enforcement.yaml")
    policy = e.Policy.from_mapping(yaml.safe_load(path.read_text(encoding="utf-8")))
    assert "E0501" in policy.no_penalty and policy.start_step["serious"] == "penalise"
    with pytest.raises(ValueError):
        e.Policy.from_mapping({"start_step": {"minor": "scold"}})
