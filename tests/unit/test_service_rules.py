"""The services' business rules, without broker or store."""
from datetime import datetime, timezone

from services.dispatch import rules as dispatch_rules
from services.enforcement_coordination import rules as coordination_rules
from services.intake import filing
from services.intake import rules as intake_rules
from shared.refdata import load_district

INSIDE = {"lon": 106.3904, "lat": 29.8338}        # 天生路社区第1网格, 天生街道
GAP = {"lon": 106.3960, "lat": 29.8302}           # 盲区 between streets


def report(class_code, location=INSIDE, **extra):
    return {"channel": "web", "class_code": class_code, "location": location, "description": "",
            "urgency": "normal", **extra}


def test_street_order_event_goes_to_the_street_of_its_grid():
    decision = filing.assess(report("E0101"), load_district())
    assert decision["accepted"]
    assert decision["case"]["grid_code"] == "500190001001001"
    assert decision["case"]["owner_unit"] == "street.tianshengjie"
    assert decision["case"]["joint_partners"] == []


def test_component_goes_to_its_professional_department():
    decision = filing.assess(report("C0101"), load_district())
    assert decision["case"]["owner_unit"] == "dept.water"
    assert decision["case"]["class_kind"] == "component"


def test_point_in_a_gap_goes_to_the_nearest_street_so_the_clock_runs():
    decision = filing.assess(report("E0101", GAP), load_district())
    assert decision["accepted"]
    assert decision["case"]["grid_code"] is None
    assert decision["case"]["owner_unit"] == "street.dongyang"


def test_unknown_class_is_rejected_with_a_readable_reason():
    decision = filing.assess(report("E9999"), load_district())
    assert decision == {"accepted": False, "reason": "未知的问题类别 E9999"}


def test_case_id_is_stable_for_the_same_report():
    moment = datetime(2026, 11, 23, 8, 0, tzinfo=timezone.utc)
    assert intake_rules.case_id_for("hotline-123", moment) == intake_rules.case_id_for("hotline-123", moment)
    assert intake_rules.case_id_for("hotline-123", moment).startswith("C20261123-")
    assert intake_rules.report_id_for({"channel": "hotline", "external_id": "123"}, "x") == "hotline-123"


def test_dispatch_deadline_is_on_the_business_calendar():
    district = load_district()
    case = {"case_id": "C1", "class_code": "E0101", "class_name": "暴露垃圾", "urgency": "normal",
            "owner_unit": "street.tianshengjie"}
    # Monday 2026-11-23 16:30 Beijing = 08:30 UTC; 4 working hours: 1h today, 3h tomorrow morning
    # (08:30–11:30) → Tuesday 11:30 Beijing = 03:30 UTC.
    plan = dispatch_rules.plan_dispatch(case, district, datetime(2026, 11, 23, 8, 30, tzinfo=timezone.utc))
    assert plan["deadline"] == datetime(2026, 11, 24, 3, 30, tzinfo=timezone.utc)
    assert plan["unit_id"] == "street.tianshengjie" and plan["case_kind"] == "committed"


def test_one_request_per_department_with_checkin_deadline():
    now = datetime(2026, 11, 23, 8, 0, tzinfo=timezone.utc)
    operation = {"_id": "OP-C1", "lead_unit": "dept.chengguan", "case": {
        "case_id": "C1", "class_code": "E0302", "urgency": "urgent", "location": INSIDE,
        "registered_at": now}}
    request = coordination_rules.build_request(operation, "police", {"checkin_minutes": {"urgent": 15}}, now)
    assert request["recipients"] == ["police"] and request["kind"] == "Request"
    assert request["incident_id"] == "OP-C1"
    assert request["payload"]["when"]["checkin_deadline"] == "2026-11-23T08:15:00Z"
    assert request["payload"]["when"]["reported_at"] == "2026-11-23T08:00:00Z"


def test_department_state_follows_its_replies():
    state = {"state": "requested"}
    ack = {"kind": "Ack", "sent_at": "t1", "payload": {"status": "rejected", "reason": "警力不足"}}
    assert coordination_rules.apply_reply(state, ack)["state"] == "rejected"
    checkin = {"kind": "Update", "sent_at": "t2", "payload": {"stage": "checkin"}}
    after = coordination_rules.apply_reply({"state": "accepted"}, checkin)
    assert after["state"] == "on_site" and after["checkin_at"] == "t2"
