"""Scoring recompute on a large event log: events per second of the whole command.

    python -m bench.recompute_load --events 100000 [--store sqlite|memory] [--mongo-uri URI]

Loads a synthetic log into a fresh scoring database (copies of the hand-built November scenario,
tests/scoring_scenario.py — every kind of event the facts fold, 115 events a copy — each copy
with its own case, report, operation and event ids), then times the recompute command
(services/scoring/recompute.py) three ways: ``repair`` on a store without facts (every fact
written), ``repair`` again (nothing changed: the steady state), and ``--check`` (rebuild into
facts_replay and compare with live). Unless --mongo-uri is given, it starts its own embedded
store (SQLite in a temporary folder, as ``make run`` uses, or memory).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import tempfile
import time
import uuid

from bench.stack import ROOT, STORE_PYTHON, free_port, port_open

BATCH = 200


def synthetic_log(count: int) -> list[dict]:
    """``count`` log entries: copies of the scenario with every id made unique per copy."""
    from services.scoring import rules
    from shared.contracts.events import load_event
    from tests.scoring_scenario import build
    template = [load_event(json.loads(json.dumps(event, default=str))) for event in build()]
    id_fields = ("case_id", "report_id", "operation_id", "distribution_id")
    entries = []
    copy = 0
    while len(entries) < count:
        suffix = f"-k{copy}"
        for event in template:
            payload = {key: (f"{value}{suffix}" if key in id_fields and isinstance(value, str) else value)
                       for key, value in event["payload"].items()}
            clone = dict(event, event_id=event["event_id"] + suffix,
                         correlation_id=f"{event['correlation_id']}{suffix}", payload=payload)
            entries.append(rules.log_entry(clone, clone["occurred_at"]))
            if len(entries) == count:
                break
        copy += 1
    return entries


def load(db, entries):
    db.events.drop()
    for name in ("facts", "facts_replay", "recomputes"):
        db[name].drop()
    for index in range(0, len(entries), BATCH):
        db.events.insert_many(entries[index:index + BATCH])


def measure(config, periods) -> dict:
    from services.scoring import recompute
    out = {}
    for label, check in (("repair_empty", False), ("repair_steady", False), ("check", True)):
        begin = time.perf_counter()
        outcome = recompute.recompute(config, periods, check=check)
        seconds = time.perf_counter() - begin
        out[label] = {"events": outcome["events"], "seconds": round(seconds, 3),
                      "events_per_s": round(outcome["events"] / seconds),
                      "fold_seconds": outcome["seconds"], "changed": outcome.get("changed"),
                      "equal": outcome.get("equal")}
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.recompute_load", description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--store", choices=("sqlite", "memory"), default="sqlite")
    parser.add_argument("--mongo-uri", default=None)
    parser.add_argument("--period", action="append", default=None, help="default: 2026-11 (the scenario's month)")
    args = parser.parse_args(argv)
    from shared.config import load_config
    from shared.storage import mongo_client
    proc = None
    uri = args.mongo_uri
    if not uri:
        port = free_port()
        folder = tempfile.mkdtemp(prefix="dcg-recompute-")
        argv = [str(STORE_PYTHON), str(ROOT / "deploy" / "embedded_store.py"), "--port", str(port)]
        argv += ["--memory"] if args.store == "memory" else ["--data", folder]
        proc = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 30
        while not port_open(port):
            if time.time() > deadline or proc.poll() is not None:
                raise SystemExit("the embedded store did not start")
            time.sleep(0.1)
        uri = f"mongodb://127.0.0.1:{port}/?directConnection=true"
    prefix = f"rc_{uuid.uuid4().hex[:6]}_"
    config = load_config(environ={**os.environ, "MONGO_URI": uri, "DB_PREFIX": prefix})
    client = mongo_client(uri)
    try:
        begin = time.perf_counter()
        load(client[f"{prefix}scoring"], synthetic_log(args.events))
        loaded = time.perf_counter() - begin
        result = {"events": args.events, "store": "uri" if args.mongo_uri else args.store,
                  "load_seconds": round(loaded, 1), "load_average": list(os.getloadavg()),
                  **measure(config, args.period or ["2026-11"])}
        print(json.dumps(result, ensure_ascii=False))
    finally:
        try:
            if args.mongo_uri:
                client.drop_database(f"{prefix}scoring")
            client.close()
        finally:
            if proc:
                proc.terminate()
                proc.wait(10)
                shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
