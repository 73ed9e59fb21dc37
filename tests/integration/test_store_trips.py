"""Store trips (issue 19), against the real broker and store: a save's events are published by
the relay right after the save (not by its poll, which here would come only after 10 minutes),
its outbox is cleared, and every store command is counted by kind for Prometheus."""
from nameko.rpc import rpc

from shared import metrics, storage
from shared.messaging.relay import OutboxRelay
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
