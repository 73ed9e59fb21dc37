"""Participation's ledgers are fed by intake's ``case_registered`` events, on the real store. The
credit of a case is keyed by the case (one entry per case, sums commute), so any order, duplication
or redelivery of the events — however late — ends with the same ledger as in-order delivery."""
import uuid
from datetime import datetime, timedelta, timezone

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.participation import ledger, rules
from services.participation.settings import load_settings
from shared.contracts.events import load_event, make_event

T0 = datetime(2026, 11, 23, 2, 0, tzinfo=timezone.utc)
CITIZEN = "phone:13800000000"


def registered(number: int, urgency="normal") -> dict:
    """A case_registered event as participation receives it (built and loaded with the contract)."""
    case_id = f"C20261123-{number:08X}"
    body = make_event("case_registered", {
        "case_id": case_id, "report_id": f"rpt-{number}", "channel": "web", "class_code": "E0101",
        "class_name": "暴露垃圾", "class_kind": "event", "urgency": urgency,
        "location": {"lon": 106.39, "lat": 29.83}, "owner_unit": "street.tianshengjie",
        "registered_at": T0 + timedelta(minutes=number), "reporter_id": CITIZEN},
        producer="intake", correlation_id=case_id, event_id=f"{case_id}.registered")
    body.update(aggregate_id=case_id, aggregate_version=1, aggregate_seq=1)
    return load_event(body)


def deliver(collection, events):
    """What ParticipationService.on_case_registered does with each event's payload."""
    points_settings = load_settings()
    for event in events:
        case = event["payload"]
        ledger.earn(collection, rules.citizen_id(case["reporter_id"]), rules.points_for(case, points_settings),
                    case, case["registered_at"])
    doc = collection.find_one({"_id": CITIZEN})
    return {"balance": doc["balance"], "earned": doc["earned"],
            "entries": sorted((e["entry_id"], e["points"]) for e in doc["entries"])}


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.sampled_from(["normal", "urgent"]), min_size=1, max_size=8), st.randoms(use_true_random=False),
       st.integers(min_value=0, max_value=8))
def test_any_order_and_duplication_give_the_in_order_ledger(mongo, urgencies, rand, extra):
    events = [registered(number, urgency) for number, urgency in enumerate(urgencies)]
    database = mongo[f"t{uuid.uuid4().hex[:8]}_participation"]
    try:
        in_order = deliver(database.in_order, events)
        shuffled = events + [rand.choice(events) for _ in range(extra)]
        rand.shuffle(shuffled)
        assert deliver(database.any_order, shuffled) == in_order
    finally:
        mongo.drop_database(database.name)


def test_a_very_late_redelivery_credits_nothing(mongo):
    """Redelivered after 60 other credits (past the last 50 entries the ledger used to look at)
    and after the citizen's remembered message ids were trimmed."""
    database = mongo[f"t{uuid.uuid4().hex[:8]}_participation"]
    try:
        events = [registered(number) for number in range(60)]
        first = deliver(database.citizens, events)
        database.citizens.update_one({"_id": CITIZEN}, {"$set": {"_applied": []}})     # trimmed
        assert deliver(database.citizens, events[:1]) == first
    finally:
        mongo.drop_database(database.name)
