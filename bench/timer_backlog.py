"""Timers falling due at once (a Monday 08:30 after a weekend, or a restart): how many the
platform's timer loop (shared/timers.py) fires per second on the real store.

A backlog of aggregates, each with one overdue timer, is written straight to the store; a
service with one ``@timer_due`` entrypoint fires them (lease, worker, the worker's own
``storage.update`` removing the timer, release), exactly the path dispatch's 督办 timers take.
``--closed N`` also stores N documents with no timer (closed cases: what a year leaves in
``dispatch.cases``), so the figures show whether a round's cost grows with the data stored.
Run as its own process (eventlet patches first):
    python -m bench.timer_backlog --mongo-uri mongodb://… --count 300 [--closed 5000]
"""
from __future__ import annotations

import eventlet

eventlet.monkey_patch()  # noqa: E402

import argparse  # noqa: E402
import json  # noqa: E402
import time  # noqa: E402
import uuid  # noqa: E402
from datetime import timedelta  # noqa: E402

from nameko.containers import ServiceContainer  # noqa: E402

from shared import metrics, storage, timers  # noqa: E402


def fired_so_far() -> float:
    """Timers fired by this process (the loop's own counter: watching costs the store nothing)."""
    return metrics.TIMERS_FIRED.labels("timerbench", "ok")._value.get()


def store_commands() -> dict:
    return {sample.labels["kind"]: sample.value for metric in metrics.STORE_COMMANDS.collect()
            for sample in metric.samples if sample.name.endswith("_total")}


class BacklogService:
    name = "timerbench"
    db = storage.MongoDatabase()

    @timers.timer_due("items")
    def fire(self, aggregate_id, entry):
        doc = self.db.items.find_one({"_id": aggregate_id})
        storage.update(self.db.items, aggregate_id, doc["_version"], set_fields={"fired": True},
                       timers=timers.without(doc, entry["id"]), applied=entry["id"])


def main(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument("--mongo-uri", required=True)
    parser.add_argument("--count", type=int, default=300, help="overdue timers, one per document")
    parser.add_argument("--closed", type=int, default=0, help="documents without timers stored beside them")
    args = parser.parse_args(argv)
    prefix = f"timerbench_{uuid.uuid4().hex[:6]}_"
    config = {"MONGO_URI": args.mongo_uri, "DB_PREFIX": prefix, "TIMER_POLL_SECONDS": 1,
              "AMQP_URI": "memory://"}
    client = storage.mongo_client(args.mongo_uri)
    items = client[f"{prefix}timerbench"]["items"]
    for field in ("_timer_set", "_timer_holder"):     # the loop's indexes, before the data (as in service)
        items.create_index(field)
    due_at = storage.now_utc() - timedelta(minutes=5)
    documents = []
    for number in range(args.count):
        entry = timers.timer(f"t{number}", due_at, "督办")
        documents.append({"_id": f"item-{number}", "_version": 1, "_timers": [entry], "_next_due": due_at,
                          "_due_ms": storage.due_ms(due_at), "_timer_set": 1,
                          "_outbox": [], "_pending": False, "_applied": []})
    items.insert_many(documents)
    closed = [{"_id": f"closed-{number}", "_version": 3, "state": "closed", "_timers": [], "_next_due": None,
               "_due_ms": None, "_timer_set": None, "_outbox": [], "_pending": False, "_applied": []}
              for number in range(args.closed)]
    for start in range(0, len(closed), 500):
        items.insert_many(closed[start:start + 500])
    # written as the current version saves them: the timer loop's one-off migration is done
    client[f"{prefix}timerbench"][storage.MIGRATIONS].insert_one(storage.migration_marker(timers.migration_name("items")))
    container = ServiceContainer(BacklogService, config)
    before = store_commands()
    begin = time.time()
    container.start()
    deadline = begin + 600
    while time.time() < deadline and fired_so_far() < args.count:
        eventlet.sleep(0.05)
    seconds = time.time() - begin
    trips = {kind: count - before.get(kind, 0) for kind, count in store_commands().items()}
    fired = items.count_documents({"fired": True})
    container.stop()
    client.drop_database(f"{prefix}timerbench")
    client.close()
    print(json.dumps({"backlog": args.count, "closed": args.closed, "fired": fired, "seconds": round(seconds, 2),
                      "timers_fired_per_s": round(fired / seconds, 1),
                      "store_commands_per_timer": round(sum(trips.values()) / max(1, fired), 2),
                      "store_commands": trips, "load_average": list(__import__("os").getloadavg())}))


if __name__ == "__main__":
    main()
