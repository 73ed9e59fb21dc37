"""The gateway's live-stream records on the real store (services/gateway/live_records.py): one
insert per batch, numbered in order without gaps — also when several gateways append at once —
and an event delivered twice is kept once."""
import eventlet

from services.gateway import live_records


def item(event_id, **extra):
    return {"event_id": event_id, "type": "case_dispatched", "label": "派遣", "case_id": "c1",
            "units": ["u1"], "departments": [], **extra}


def test_records_are_numbered_in_order_and_a_redelivery_adds_nothing(db):
    events = db("gateway").live_events
    assert live_records.keep(events, [item("e0"), item("e1")]) == [1, 2]
    # a batch holding a redelivery (twice, even) and new events: only the new ones, still no gap
    assert live_records.keep(events, [item("e2"), item("e1"), item("e3"), item("e3")]) == [3, 4]
    assert live_records.keep(events, [item("e0")]) == []
    assert [(doc["_id"], doc["event_id"]) for doc in events.find({}).sort("n", 1)] == \
        [("000000000001", "e0"), ("000000000002", "e1"), ("000000000003", "e2"), ("000000000004", "e3")]


def test_appends_from_several_gateways_at_once_leave_no_gap_and_no_double(db):
    events = db("gateway").live_events
    live_records.keep(events, [item("first")])

    def gateway(name):
        for n in range(10):
            live_records._NEXT[events.full_name] = 1 + n      # as another process would: a stale next number
            live_records.keep(events, [item(f"{name}-{n}-a"), item(f"{name}-{n}-b")])
            live_records.keep(events, [item(f"{name}-{n}-a")])                 # a redelivery
            eventlet.sleep(0)

    pool = eventlet.GreenPool()
    for name in ("a", "b", "c"):
        pool.spawn(gateway, name)
    pool.waitall()
    numbers = [doc["n"] for doc in events.find({}).sort("n", 1)]
    assert numbers == list(range(1, 62))
    assert len({doc["event_id"] for doc in events.find({})}) == 61


def test_an_event_naming_only_its_operation_is_shown_to_the_operations_units_and_departments(db):
    events = db("gateway").live_events
    opened = {"event_id": "o1", "type": "joint_operation_opened", "occurred_at": "2026-12-01T02:00:00Z",
              "payload": {"operation_id": "op1", "case_id": "c9", "lead_unit": "dept.chengguan",
                          "departments": ["police"]}}
    replied = {"event_id": "o2", "type": "department_replied", "occurred_at": "2026-12-01T02:05:00Z",
               "payload": {"operation_id": "op1", "department": "police", "status": "accepted"}}
    later = {"event_id": "o3", "type": "joint_operation_closed", "occurred_at": "2026-12-01T03:00:00Z",
             "payload": {"operation_id": "op1"}}
    # the opening and a reply in one batch; the close in a later one (the opening read from the store)
    live_records.keep(events, live_records.items_for(events, [opened, replied]))
    live_records.keep(events, live_records.items_for(events, [later]))
    kept = {doc["event_id"]: doc for doc in events.find({})}
    assert kept["o2"]["case_id"] == "c9" and "dept.chengguan" in kept["o2"]["units"]
    assert kept["o3"]["case_id"] == "c9" and kept["o3"]["departments"] == ["police"]


def test_records_kept_with_a_numeric_id_before_are_renumbered_and_numbering_goes_on(db):
    events = db("gateway").live_events
    events.insert_many([dict(item("old1"), _id=1), dict(item("old2"), _id=2),
                        {"_id": 3, "event_id": "old3", "type": "joint_operation_opened", "operation_id": "op7",
                         "case_id": "c7", "units": ["u7"], "departments": ["police"]}])
    live_records._INDEXED.discard(events.full_name)
    live_records._NEXT.pop(events.full_name, None)
    live_records._NEWEST.pop(events.full_name, None)
    replied = {"event_id": "new1", "type": "department_replied", "occurred_at": "2026-12-01T02:05:00Z",
               "payload": {"operation_id": "op7", "department": "police", "status": "accepted"}}
    assert live_records.keep(events, [item("new0")]) == [4]
    assert live_records.keep(events, live_records.items_for(events, [replied])) == [5]
    kept = {doc["n"]: doc for doc in events.find({})}
    assert sorted(kept) == [1, 2, 3, 4, 5] and kept[1]["_id"] == "000000000001"
    assert kept[5]["case_id"] == "c7" and "u7" in kept[5]["units"]          # the opening found by opening_of


def test_a_stream_reads_the_records_after_its_last_in_order_and_resumes_from_the_oldest_kept(db, monkeypatch):
    events = db("gateway").live_events
    live_records.keep(events, [item(f"s{n}") for n in range(6)])
    assert [doc["n"] for doc in live_records.after(events, 2)] == [3, 4, 5, 6]
    assert [doc["event_id"] for doc in live_records.after(events, 0, limit=2)] == ["s0", "s1"]
    assert live_records.after(events, 6) == []
    monkeypatch.setattr(live_records, "KEEP", 3)
    assert live_records.resume_from(events, 1) == 3            # records 1–3 may be gone: go on after 3
    assert live_records.resume_from(events, 5) == 5


def test_the_newest_number_follows_records_other_gateways_added(db):
    events = db("gateway").live_events
    live_records.keep(events, [item("g0")])
    assert live_records.newest(events) == 1
    for count in (1, 2, 5, 37):          # another gateway appends: its numbers come right after
        start = live_records.newest(events) + 1
        events.insert_many([dict(item(f"other-{start + n}"), _id=live_records.key(start + n), n=start + n)
                            for n in range(count)])
        assert live_records.newest(events) == start + count - 1
