"""The gateway's live-stream records on the real store (services/gateway/live_api.append): one
insert per event, numbered in order without gaps — also when several workers or gateways append
at once — and an event delivered twice is kept once."""
import eventlet

from services.gateway import live_api


def item(event_id):
    return {"event_id": event_id, "type": "case_dispatched", "label": "派遣", "case_id": "c1",
            "units": ["u1"], "departments": []}


def test_records_are_numbered_in_order_and_a_redelivery_adds_nothing(db):
    events = db("gateway").live_events
    assert [live_api.append(events, item(f"e{n}")) for n in range(3)] == [1, 2, 3]
    assert live_api.append(events, item("e1")) is None                     # delivered twice
    assert [doc["event_id"] for doc in events.find({}).sort("_id", 1)] == ["e0", "e1", "e2"]


def test_concurrent_appends_from_two_gateways_leave_no_gap_and_no_double(db):
    events = db("gateway").live_events
    live_api.append(events, item("first"))

    def gateway(name):
        for n in range(15):
            if n % 4 == 0:
                live_api._NEXT.pop(events.full_name, None)      # as a process that has not seen the newest
            live_api.append(events, item(f"{name}-{n}"))
            live_api.append(events, item(f"{name}-{n}"))                       # and a redelivery
            eventlet.sleep(0)

    pool = eventlet.GreenPool()
    for name in ("a", "b", "c"):
        pool.spawn(gateway, name)
    pool.waitall()
    numbers = [doc["_id"] for doc in events.find({}).sort("_id", 1)]
    assert numbers == list(range(1, 47))
    assert len({doc["event_id"] for doc in events.find({})}) == 46
