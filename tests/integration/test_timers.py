"""Durable timers on the real store: they fire once, they survive a restart, and two
instances of a service never fire the same timer twice. Time is moved with shared.clock."""
from datetime import timedelta

import pytest
from nameko.rpc import rpc

from shared import clock, storage, timers
from tests.helpers import wait_until


class Reminder:
    name = "dispatch"
    db = storage.MongoDatabase()

    @timers.timer_due("cases", poll_seconds=0.1)
    def on_timer(self, case_id, timer):
        doc = self.db.cases.find_one({"_id": case_id})
        storage.update(self.db.cases, case_id, doc["_version"], push={"fired": [timer["id"]]},
                       timers=timers.without(doc, timer["id"]), applied=timer["id"])

    @rpc
    def noop(self):
        return None


@pytest.fixture(autouse=True)
def reset_clock():
    clock.reset()
    yield
    clock.reset()


def schedule(db, case_id, *offsets_minutes):
    now = storage.now_utc()
    storage.create(db("dispatch").cases, {"_id": case_id, "fired": []}, timers=[
        timers.timer(f"{case_id}.t{i}", now + timedelta(minutes=m), "warn") for i, m in enumerate(offsets_minutes)])


def test_a_timer_fires_once_when_its_time_comes(container_factory, config, db):
    schedule(db, "C1", 10, 60)
    container_factory(Reminder, config).start()
    cases = db("dispatch").cases
    clock.advance(minutes=11)
    wait_until(lambda: cases.find_one({"_id": "C1", "fired": ["C1.t0"]}), what="the first timer")
    doc = cases.find_one({"_id": "C1"})
    assert [t["id"] for t in doc["_timers"]] == ["C1.t1"]       # the later one still waits
    clock.advance(minutes=60)
    wait_until(lambda: len(cases.find_one({"_id": "C1"})["fired"]) == 2, what="the second timer")
    doc = cases.find_one({"_id": "C1"})
    assert doc["fired"] == ["C1.t0", "C1.t1"] and doc["_timers"] == [] and doc["_next_due"] is None
    assert doc["_timer_set"] is None                # no longer read by the loop's round


def test_timers_that_fell_due_while_the_service_was_down_fire_after_restart_exactly_once(
        container_factory, config, db):
    schedule(db, "C2", 5)
    first = container_factory(Reminder, config)
    first.start()
    first.kill()                                   # the service goes away
    clock.advance(minutes=30)                      # the timer falls due while it is down
    container_factory(Reminder, config).start()    # restart
    cases = db("dispatch").cases
    wait_until(lambda: cases.find_one({"_id": "C2"})["fired"], what="the overdue timer")
    import time
    time.sleep(0.5)                                # several more polls
    assert cases.find_one({"_id": "C2"})["fired"] == ["C2.t0"]


def test_two_instances_fire_each_timer_once(container_factory, config, db):
    for n in range(20):
        schedule(db, f"C3-{n}", 1)
    container_factory(Reminder, config).start()
    container_factory(Reminder, config).start()
    clock.advance(minutes=2)
    cases = db("dispatch").cases
    wait_until(lambda: cases.count_documents({"_next_due": None}) == 20, what="every timer")
    assert all(doc["fired"] == [f"{doc['_id']}.t0"] for doc in cases.find({}))


def test_documents_saved_before_timer_set_existed_get_it_once_and_fire(container_factory, config, db):
    cases = db("dispatch").cases
    schedule(db, "C4", 5)
    schedule(db, "C5")                                   # no timer
    cases.update_one({"_id": "C4"}, {"$unset": {"_timer_set": ""}})       # saved by an older version
    cases.update_one({"_id": "C5"}, {"$unset": {"_timer_set": ""}})
    clock.advance(minutes=6)
    container_factory(Reminder, config).start()
    wait_until(lambda: cases.find_one({"_id": "C4"})["fired"], what="the migrated document's timer")
    marker = db("dispatch").migrations.find_one({"_id": timers.migration_name("cases")})
    assert marker["documents"] == 1                      # C4 only: C5 has no timer
    assert "_timer_set" not in cases.find_one({"_id": "C5"})
    assert timers.migrate(cases) == 0                    # once per store: the marker says it ran


def test_the_lease_takes_a_due_document_nobody_holds_and_only_once(db):
    cases = db("dispatch").cases
    schedule(db, "C6", 1)
    schedule(db, "C7", 60)
    now = (storage.now_utc() + timedelta(minutes=2)).replace(microsecond=0)     # BSON keeps ms
    until = now + timedelta(seconds=30)
    for doc_id in ("C6", "C7"):
        cases.update_one({"_id": doc_id}, timers.lease_change(now, until, "first"))
    cases.update_one({"_id": "C6"}, timers.lease_change(now, until, "second"))    # another instance
    assert [doc["_id"] for doc in cases.find({"_timer_holder": "first"})] == ["C6"]   # C7 is not due
    assert cases.find_one({"_id": "C6"})["_timer_lease"] == until
    later = until + timedelta(seconds=1)                 # the first holder's lease ran out
    cases.update_one({"_id": "C6"}, timers.lease_change(later, later + timedelta(seconds=30), "second"))
    assert cases.find_one({"_id": "C6"})["_timer_holder"] == "second"
