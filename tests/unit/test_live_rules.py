"""What of a lifecycle event the pages are told, and who is told it (services/gateway/live.py)."""
from datetime import datetime, timezone

from services.gateway import auth
from services.gateway.live import record, sse, visible
from shared.refdata import load_district

OPERATOR = auth.Principal("k1", "值班员", "operator")
LEADER = auth.Principal("k2", "区领导", "leader")
UNIT = auth.Principal("k3", "天生街道", "unit", unit_id="street.tianshengjie")
OTHER = auth.Principal("k4", "北泉街道", "unit", unit_id="street.beiquan")
POLICE = auth.Principal("k5", "公安", "partner", department="police")
CITIZEN = auth.Principal("k6", "市民", "citizen")


def event(kind, **payload):
    return {"event_id": f"e-{kind}", "type": kind, "occurred_at": datetime(2026, 12, 1, 2, 0, tzinfo=timezone.utc),
            "payload": payload}


def test_a_case_event_is_for_the_readers_and_the_owning_unit_in_local_time():
    item = record(event("case_accepted", case_id="C1", unit_id="street.tianshengjie"), None,
                  load_district().calendar.to_local)
    assert item["label"] == "签收" and item["at"] == "2026-12-01T10:00:00+08:00"
    assert [visible(who, item) for who in (OPERATOR, LEADER, UNIT, OTHER, POLICE, CITIZEN)] == [
        True, True, True, False, False, False]


def test_an_operation_event_reaches_its_lead_and_its_departments_through_the_opening():
    opened = record(event("joint_operation_opened", operation_id="J1", case_id="C1",
                          lead_unit="street.tianshengjie", departments=["police"]))
    replied = record(event("department_replied", operation_id="J1", department="environment"), opened)
    assert replied["case_id"] == "C1"
    assert visible(UNIT, replied) and visible(POLICE, replied) and not visible(OTHER, replied)


def test_unknown_events_are_not_streamed_and_a_record_is_one_sse_message_with_its_number():
    assert record(event("owner_notified", case_id="C1")) is None
    item = dict(record(event("case_closed", case_id="C1", unit_id="street.beiquan")), _id="000000000007", n=7)
    text = sse(item)
    assert text.startswith("id: 7\nevent: change\ndata: ") and text.endswith("\n\n") and "units" not in text and "000000000007" not in text
