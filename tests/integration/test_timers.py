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
