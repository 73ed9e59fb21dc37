"""Store trips (issue 19), against the real broker and store: a save's events are published by
the relay right after the save (not by its poll, which here would come only after 10 minutes),
its outbox is cleared (the clears of several saves in one update command, never an event that
was not published), and every store command is counted by kind for Prometheus."""
from nameko.rpc import rpc

from shared import metrics, storage
from shared.messaging.relay import Clears, OutboxRelay
from tests.helpers import drain, observer, wait_until


class ToySaver:
    name = "dispatch"
    db = storage.MongoDatabase()
    relay = OutboxRelay("cases")

    @rpc
    def noop(self):
        return None


def test_a_save_is_published_right_after_it_and_its_outbox_cleared_without_the_poll(
        container_factory, config, db):
    container = container_factory(ToySaver, dict(config, OUTBOX_POLL_SECONDS=600))
    container.start()
    queue = observer(config, "dispatch.events", "owner_notified", name="test.store-trips")
    cases = db("dispatch").cases
    storage.create(cases, {"_id": "C-1", "state": "new"})
    wait_until(lambda: cases.find_one({"_id": "C-1"}), what="the case")
    event = storage.outbox_entry("dispatch.events", "owner_notified",
                                 {"event_id": "E-1", "type": "owner_notified", "payload": {"case_id": "C-1"}})
    before = {kind: count(kind) for kind in ("update", "findAndModify")}
    assert storage.update(cases, "C-1", 1, set_fields={"state": "notified"}, events=[event])

    got = []
    wait_until(lambda: got.extend(drain(config, queue)) or got, what="the published event")
    assert [body["payload"]["case_id"] for body, _ in got] == ["C-1"]
    wait_until(lambda: cases.find_one({"_id": "C-1"})["_pending"] is False, what="the outbox cleared")
    assert cases.find_one({"_id": "C-1"})["_outbox"] == []
    # the save and the one clearing update: no lease, no search, no second clearing update
    assert {kind: count(kind) - before[kind] for kind in before} == {"update": 2, "findAndModify": 0}


def test_the_clears_of_saves_published_within_the_linger_go_in_one_update_command(
        container_factory, config, db):
    container = container_factory(ToySaver, dict(config, OUTBOX_POLL_SECONDS=600, OUTBOX_CLEAR_SECONDS=3))
    container.start()
    queue = observer(config, "dispatch.events", "owner_notified", name="test.store-trips-batch")
    cases = db("dispatch").cases
    before = count("update")
    for number in range(3):
        storage.create(cases, {"_id": f"C-{number}", "state": "new"}, events=[notified(f"C-{number}")])

    got = []
    wait_until(lambda: got.extend(drain(config, queue)) or len(got) >= 3, what="the three events")
    wait_until(lambda: cases.count_documents({"_pending": False}) == 3, what="the outboxes cleared")
    assert [doc["_outbox"] for doc in cases.find({})] == [[], [], []]
    assert count("update") - before == 1          # three saves, one clearing command


def test_a_clear_never_drops_an_event_saved_after_the_publish(db):
    cases = db("dispatch").cases
    storage.create(cases, {"_id": "C-1"}, events=[notified("C-1", "E-1")])
    clears = Clears()
    clears.add(cases.full_name, "C-1", ["E-1"])                          # E-1 published at version 1
    storage.update(cases, "C-1", 1, events=[notified("C-1", "E-2")])   # saved again before the clear
    clears.flush(cases)
    doc = cases.find_one({"_id": "C-1"})
    assert [entry["id"] for entry in doc["_outbox"]] == ["E-2"] and doc["_pending"] is True


def test_two_published_saves_of_one_document_are_cleared_together(db):
    cases = db("dispatch").cases
    storage.create(cases, {"_id": "C-1"}, events=[notified("C-1", "E-1")])
    storage.update(cases, "C-1", 1, events=[notified("C-1", "E-2")])
    clears = Clears()
    clears.add(cases.full_name, "C-1", ["E-1"])
    clears.add(cases.full_name, "C-1", ["E-2"])
    before = count("update")
    clears.flush(cases)
    doc = cases.find_one({"_id": "C-1"})
    assert doc["_outbox"] == [] and doc["_pending"] is False
    assert count("update") - before == 1 and not clears.pending


def test_a_copy_update_without_events_before_the_clear_does_not_leave_the_document_pending(db):
    cases = db("dispatch").cases
    storage.create(cases, {"_id": "C-1"}, events=[notified("C-1", "E-1")])
    clears = Clears()
    clears.add(cases.full_name, "C-1", ["E-1"])
    storage.update(cases, "C-1", 1, set_fields={"state": "dispatched"})     # version 2, no events
    clears.flush(cases)
    doc = cases.find_one({"_id": "C-1"})
    assert doc["_outbox"] == [] and doc["_pending"] is False and doc["state"] == "dispatched"


def test_a_half_published_save_keeps_its_unpublished_events(db):
    cases = db("dispatch").cases
    storage.create(cases, {"_id": "C-1"}, events=[notified("C-1", "E-1"), notified("C-1", "E-2")])
    clears = Clears()
    clears.add(cases.full_name, "C-1", ["E-1"])                          # E-2's publish failed
    clears.flush(cases)
    doc = cases.find_one({"_id": "C-1"})
    assert [entry["id"] for entry in doc["_outbox"]] == ["E-2"] and doc["_pending"] is True


def test_a_save_before_the_clear_clears_the_published_events_in_its_own_update(db):
    """Intake's copy update for case_dispatched comes within the relay's linger after the case
    was saved and published: that update empties the outbox too (one write, not two)."""
    cases = db("dispatch").cases
    storage.create(cases, {"_id": "C-1"}, events=[notified("C-1", "E-1")])
    clears = Clears()
    clears.add(cases.full_name, "C-1", ["E-1"])                  # published, clear waiting
    storage.register_clears(clears)
    try:
        before = count("update")
        assert storage.update(cases, "C-1", 1, set_fields={"state": "dispatched"},
                              events=[notified("C-1", "E-2")])
    finally:
        storage.register_clears(clears, False)
    doc = cases.find_one({"_id": "C-1"})
    assert [entry["id"] for entry in doc["_outbox"]] == ["E-2"] and doc["_pending"] is True
    assert doc["state"] == "dispatched" and doc["_version"] == 2
    assert count("update") - before == 1 and not clears.pending     # nothing left for the relay


def test_a_save_before_the_clear_keeps_events_the_relay_did_not_publish(db):
    cases = db("dispatch").cases
    storage.create(cases, {"_id": "C-1"}, events=[notified("C-1", "E-1"), notified("C-1", "E-0")])
    clears = Clears()
    clears.add(cases.full_name, "C-1", ["E-1"])                  # E-0 not published
    storage.register_clears(clears)
    try:
        assert storage.update(cases, "C-1", 1, set_fields={"state": "dispatched"},
                              events=[notified("C-1", "E-2")])
    finally:
        storage.register_clears(clears, False)
    doc = cases.find_one({"_id": "C-1"})
    assert [entry["id"] for entry in doc["_outbox"]] == ["E-1", "E-0", "E-2"] and doc["_version"] == 2
    assert clears.waiting(cases.full_name, "C-1") == ["E-1"]      # the relay still clears E-1


def notified(case_id, event_id=None):
    return storage.outbox_entry("dispatch.events", "owner_notified",
                                {"event_id": event_id or f"E-{case_id}", "type": "owner_notified",
                                 "payload": {"case_id": case_id}})


def count(kind):
    return metrics.STORE_COMMANDS.labels(metrics.PROCESS[0], kind)._value.get()


def test_store_commands_are_counted_by_kind(db):
    before = {kind: count(kind) for kind in ("insert", "update", "findAndModify", "find", "delete")}
    things = db("dispatch").things
    things.insert_one({"_id": 1})
    things.update_one({"_id": 1}, {"$set": {"a": 1}})
    things.find_one_and_update({"_id": 1}, {"$set": {"a": 2}})
    list(things.find({}))
    things.delete_one({"_id": 1})
    assert {kind: count(kind) - before[kind] for kind in before} == {
        "insert": 1, "update": 1, "findAndModify": 1, "find": 1, "delete": 1}
