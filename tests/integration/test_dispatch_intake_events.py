"""What dispatch takes from intake besides new cases, on the real broker and store:
case_reopened (a repeat report after closing → 返工 back to the unit) and the ownership dispute
(a case returned twice → case_ownership_disputed; intake's ownership_decided → re-dispatch)."""
from shared.contracts.base import utcnow
from shared.contracts.events import make_event
from tests.dispatch_support import (  # noqa: F401  (fixtures)
    UNIT, ok, platform, register, relayed, saturday_morning, settle, taken, wait_case, wire,
)
from tests.helpers import drain, publish, wait_until


def intake_event(event_type, payload, correlation_id, event_id):
    return make_event(event_type, payload, producer="intake", correlation_id=correlation_id, event_id=event_id)


def close(platform, case_id):
    case = ok(platform, case_id, "accept", expected_version=1, **UNIT)
    case = ok(platform, case_id, "feedback", expected_version=case["version"],
              after_photo="/media/394659692a460258b45a99f1424ea357", **UNIT)
    return ok(platform, case_id, "verify", expected_version=case["version"], actor="严勇", passed=True)


def test_a_reopened_case_goes_back_to_its_unit_as_rework_once(platform, config, db):
    case_id = register(config, "E0101")
    relayed(db, case_id)
    assert close(platform, case_id)["state"] == "closed"
    reopened = intake_event("case_reopened", {"case_id": case_id, "report_id": "rpt-again",
                                              "reason": "市民再次举报：垃圾又堆起来了", "reopened_at": utcnow()},
                            case_id, "rpt-again.reopened")
    publish(config, "intake.events", "case_reopened", reopened)
    publish(config, "intake.events", "case_reopened", reopened)          # delivered twice
    doc = wait_case(db, case_id, lambda doc: doc["state"] == "accepted" and not doc["_pending"], "the rework")
    settle(platform, config, "dispatch.case-reopened")
    doc = db("dispatch").cases.find_one({"_id": case_id})
    types = [entry["type"] for entry in doc["history"]]
    assert types.count("case_reopened") == 1 and types.count("case_rework_ordered") == 1
    assert doc["rework_count"] == 1 and doc["unit_id"] == "street.tianshengjie"
    kinds = [body["payload"]["kind"] for body in taken(config, "notify.sms-outbox")]
    assert kinds.count("rework") == 1


def test_reopening_an_unknown_case_is_dead_lettered_with_its_reason(platform, config, db):
    publish(config, "intake.events", "case_reopened", intake_event(
        "case_reopened", {"case_id": "C-NOWHERE", "report_id": "r9", "reason": "再次举报", "reopened_at": utcnow()},
        "C-NOWHERE", "r9.reopened"))
    (body, headers), = wait_until(lambda: drain(config, "dispatch.case-reopened.dlq"), what="the dead letter")
    assert body["payload"]["case_id"] == "C-NOWHERE" and "unknown case" in headers["x-dead-letter-reason"]


def test_two_returns_dispute_the_case_and_the_decision_redispatches_it(platform, config, db):
    disputed_q = wire(config, "case_ownership_disputed")
    case_id = register(config, "E0506")                  # 乱堆物堆料 → 天生街道
    relayed(db, case_id)
    case = ok(platform, case_id, "return", expected_version=1, reason="系市政施工遗留", to_unit="dept.municipal",
              **UNIT)
    case = ok(platform, case_id, "return", expected_version=case["version"], reason="不属于市政设施",
              actor="市政值班员", actor_unit="dept.municipal")
    assert case["unit_id"] == "street.tianshengjie" and case["disputed"]["interim_owner"] == "street.tianshengjie"
    relayed(db, case_id)
    (event,) = taken(config, disputed_q)
    assert event["payload"]["units"] == ["street.tianshengjie", "dept.municipal"]
    assert event["payload"]["location"] == {"lon": 106.3904, "lat": 29.8338}

    # intake opens the dispute, arbitration decides; the decision names only the dispute
    now = utcnow()
    publish(config, "intake.events", "ownership_dispute_opened", intake_event("ownership_dispute_opened", {
        "dispute_id": "D-1", "case_id": case_id, "location": {"lon": 106.3904, "lat": 29.8338},
        "interim_owner": "street.tianshengjie", "level": "street", "deadline": now, "opened_at": now},
        case_id, "D-1.opened"))
    decided = intake_event("ownership_decided", {
        "dispute_id": "D-1", "owner_unit": "dept.housing", "level": "street", "decided_by": "天生街道争议协调会",
        "decided_at": now}, "D-1", "D-1.decided")
    publish(config, "intake.events", "ownership_decided", decided)
    publish(config, "intake.events", "ownership_decided", decided)          # twice: applied once
    doc = wait_case(db, case_id, lambda doc: doc["unit_id"] == "dept.housing" and not doc["_pending"],
                    "the re-dispatch to the decided owner")
    assert doc["sequence"] == 4 and doc["routed_by"] == "arbitration.street" and doc["state"] == "dispatched"
    settle(platform, config, "dispatch.ownership")
    types = [entry["type"] for entry in db("dispatch").cases.find_one({"_id": case_id})["history"]]
    assert types.count("ownership_decided") == 1 and types.count("case_dispatched") == 4
    assert drain(config, "dispatch.ownership.dlq") == []
