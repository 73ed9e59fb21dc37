"""A year of a district, preloaded into the benchmark's embedded store (issue 19).

Two steps, two interpreters, because the services' pure functions run on the platform's Python
(.venv) and the store's engine on the store's (.venv-store):

1. ``build`` (platform Python): ``count`` closed cases spread over the past year, made by the
   services' OWN pure functions (a pool of distinct cases, repeated across the year with new
   ids and moved times), exactly as the services would have written them:
   intake's filing decision, report and case (``services.intake.filing``), the case's lifecycle
   in dispatch (``rules.new_case``, then 签收 / 处置反馈 / 核查通过 through ``rules.apply_action``),
   intake's copy of the status (``case_status.project``), coordination's copy of every
   case, and scoring's event log and facts (``rules.log_entry`` / ``rules.fold``) over every
   event of the case. Each aggregate carries the storage envelope a save leaves behind once
   its relay has published (``_version``, ``_applied``, empty ``_outbox``, no timers). The
   documents go to a BSON file.
2. ``index``: the platform starts once on an EMPTY store under the year's prefix, so every
   service makes its own indexes and marks its start-up migrations (they own both).
3. ``load`` (store Python, ``python -m bench.year_load --load FILE --sqlite PATH``): bulk
   inserts straight into that SQLite file through mongoeco's engine, which fills the indexes
   as the documents go in (the wire protocol inserts about 30–150 documents a second here; the
   engine in process several hundred).

``prepare(workdir, count)`` does all three once, keeps the loaded file in artifacts/bench/ and copies
it into the stack's folder before the stack starts (``bench.run``). Reproduce alone:

    PYTHONPATH=$PWD .venv/bin/python -m bench.year_load --count 2000 --out var/year.bson
"""
from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import time
from collections import defaultdict
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STORE_PYTHON = ROOT / ".venv-store" / "bin" / "python"


# ------------------------------------------------------------------ build (platform Python)
def _envelope(doc: dict, version: int, applied: list) -> dict:
    """What shared.storage leaves on an aggregate once its relay has published everything."""
    return {**doc, "_timers": [], "_next_due": None, "_due_ms": None, "_version": version, "_outbox": [],
            "_pending": False, "_applied": applied[-500:]}


def _events(entries) -> list[dict]:
    """The event envelopes of outbox entries, as a consumer loads them (what the relays published)."""
    from shared.contracts.events import load_event
    return [load_event(entry["body"]) for entry in entries if entry["body"].get("type")]


def one_case(district, policy, settings, report: dict, at: datetime, rng) -> dict | None:
    """The documents of one closed case, per "<service>.<collection>"; None if not filed."""
    from services.dispatch import rules as dispatch_rules
    from services.intake import case_status, filing
    from services.intake import rules as intake_rules
    from services.intake.answers import token
    from shared.contracts.events import new_id
    from shared.messaging import outbox

    report_id = new_id("rpt")
    decision = filing.decide(report, district, now=at, policy=policy)
    if not decision["accepted"] or decision.get("gap_place"):
        return None
    tz = district.calendar.tz
    received = filing.received_event(report_id, report, at)
    case_id = intake_rules.case_id_for(report_id, at, tz)
    registration = filing.registration(case_id, report_id, report, decision, received, at, None)
    intake_case = dict(registration.create)
    intake_events = _events(outbox.event(*event) for event in registration.events)
    registered = next(e for e in intake_events if e["type"] == "case_registered")

    # dispatch: the new case, then 签收, 处置反馈, 核查通过 (closed), each a Change applied in order
    moment = at + timedelta(seconds=rng.uniform(1, 5))
    ctx = dispatch_rules.Context(moment, district, settings)
    doc, change = dispatch_rules.new_case(registered["payload"], ctx)
    doc["history"], doc["notifications"] = list(change.history), list(change.notes)
    doc["_version"] = 1
    dispatch_events = _events(outbox.event(t, p, case_id, i, causation_id=registered["event_id"])
                              for t, p, i in change.events)
    unit = doc["unit_id"]
    steps = [("accept", {"actor": f"{unit}.handler", "actor_unit": unit}, rng.uniform(0.2, 3)),
             ("feedback", {"actor": f"{unit}.handler", "actor_unit": unit, "after_photo": f"photo-{case_id}",
                           "note": "已处置"}, rng.uniform(1, 30)),
             ("verify", {"actor": "inspector-bench", "passed": True, "note": "核查通过"}, rng.uniform(0.5, 8))]
    for action, data, hours in steps:
        moment += timedelta(hours=hours)
        change = dispatch_rules.apply_action(doc, action, data, dispatch_rules.Context(moment, district, settings))
        doc.update(change.set)
        doc["history"] = doc["history"] + change.history
        doc["notifications"] = doc["notifications"] + change.notes
        doc["_version"] += 1
        dispatch_events += _events(outbox.event(t, p, case_id, i) for t, p, i in change.events)
    dispatch_case = _envelope(doc, doc.pop("_version"), [registered["event_id"]])

    # intake's copy of the status, from dispatch's events (what case_status applies)
    def unit_name(unit_id):
        return (district.units.get(unit_id) or {}).get("name", unit_id or "")
    for event in dispatch_events:
        intake_case.update(case_status.project(intake_case, event, unit_name, tz))
    report_doc = filing.filed_report(report_id, report, intake_case, at, token(), None, "")
    intake_case = _envelope(intake_case, 1 + len(dispatch_events), [report_id])
    report_doc = _envelope(report_doc, 1, [])

    # scoring: the event log and the facts folded from it
    from services.scoring import rules as scoring_rules
    from services.scoring.store import locator
    logged = [scoring_rules.log_entry(event, at) for event in intake_events + dispatch_events]
    subjects = defaultdict(list)
    for entry in logged:
        for subject in entry["subjects"]:
            subjects[subject].append(entry)
    facts = [scoring_rules.fold(subject, entries, locator(district)) for subject, entries in subjects.items()]
    coordination = {"_id": case_id, **registered["payload"], "seen_at": at}
    noted = {"_id": report_id, "case_id": case_id}            # FilingStore._note_case
    return {"intake.reports": [report_doc], "intake.cases": [intake_case], "intake.report_cases": [noted], "dispatch.cases": [dispatch_case],
            "coordination.cases": [coordination], "scoring.events": logged, "scoring.facts": facts}


def _moved(value, delta, ids):
    """``value`` with every time moved by ``delta`` and every old id (in strings) replaced."""
    if isinstance(value, dict):
        return {key: _moved(item, delta, ids) for key, item in value.items()}
    if isinstance(value, list):
        return [_moved(item, delta, ids) for item in value]
    if isinstance(value, datetime):
        return value + delta
    if isinstance(value, str):
        for old, new in ids:
            if old in value:
                value = value.replace(old, new)
    return value


def build(count: int, out: Path, prefix: str, seed: int = 2026, end: datetime | None = None,
          templates: int = 400) -> dict:
    """Write ``count`` closed cases of the past year to ``out`` (BSON: {db, coll, doc} records).

    ``templates`` distinct cases are made by the services' pure functions (one_case: random
    class and place, the real filing, routing, deadlines and folds); the year repeats them
    across its days, each copy with its own report and case ids and its times moved to its day
    (made whole by the pure functions, 50,000 cases would take most of an hour here)."""
    import bson

    from bench.run import class_mix, make_report
    from services.dispatch.routing import load_settings
    from services.dispatch import listing as dispatch_listing
    from shared import storage
    from services.intake.filing import received_day
    from services.intake import rules as intake_rules
    from shared.contracts.events import new_id
    from shared.refdata import load_district

    district = load_district()
    policy = district.policy()
    settings = load_settings({}, district)
    tz = district.calendar.tz
    rng = random.Random(seed)
    mix = [(codes, weight) for codes, weight in class_mix(district) if codes]
    end = end or datetime.now(timezone.utc) - timedelta(days=3)
    start = end - timedelta(days=365)
    begin = time.time()
    pool = []
    while len(pool) < min(count, templates):
        at = start + timedelta(days=rng.uniform(0, 365))
        report = make_report(district, mix, rng, rng.choice(["web", "web", "hotline"]))
        report["reported_at"] = at
        docs = one_case(district, policy, settings, report, at, rng)
        if docs is not None:
            case = docs["intake.cases"][0]
            pool.append((at, case["_id"], case["report_id"], docs))
    made_templates = time.time() - begin
    step = (end - start) / max(1, count)
    counts: dict[str, int] = defaultdict(int)
    dispatched = []                 # (case id, dispatched_at): the case list's day lists
    with open(out, "wb") as sink:
        for number in range(count):
            template_at, case_id, report_id, docs = pool[number % len(pool)]
            at = start + step * number
            new_report = new_id("rpt")
            ids = [(case_id, intake_rules.case_id_for(new_report, at, tz)), (report_id, new_report)]
            moved = _moved(docs, at - template_at, ids)
            for doc in moved["intake.reports"]:        # a key made from a moved time (filing.received_day)
                doc["received_day"] = received_day(doc["received_at"])
            for name, items in moved.items():
                service, collection = name.split(".", 1)
                for doc in items:
                    sink.write(bson.encode({"db": f"{prefix}{service}", "coll": collection, "doc": doc}))
                    counts[name] += 1
            if number and number % 10000 == 0:
                print(f"  built {number} cases ({time.time() - begin:.0f} s)", flush=True)
            dispatched += [(doc["_id"], doc["dispatched_at"]) for doc in moved["dispatch.cases"]]
        for day, entries in dispatch_listing.by_day(dispatched).items():
            sink.write(bson.encode({"db": f"{prefix}dispatch", "coll": dispatch_listing.DAYS,
                                    "doc": {"_id": day, "cases": entries}}))
            counts[f"dispatch.{dispatch_listing.DAYS}"] += 1
        for service, name in migration_markers():       # the year's documents have what they add
            sink.write(bson.encode({"db": f"{prefix}{service}", "coll": storage.MIGRATIONS,
                                    "doc": storage.migration_marker(name)}))
            counts[f"{service}.{storage.MIGRATIONS}"] += 1
    return {"cases": count, "templates": len(pool), "template_seconds": round(made_templates, 1),
            "documents": dict(counts), "build_seconds": round(time.time() - begin, 1)}


# ------------------------------------------------------------------ load (store Python)
def load(path: str, sqlite: str, overwrite: tuple = (), batch: int = 2000) -> dict:
    """Bulk insert the records of ``path`` into the SQLite file ``sqlite`` through mongoeco's engine
    (its indexes, made beforehand by the services themselves, are filled as the documents go in).
    The documents of the collections named in ``overwrite`` (the migration markers) replace
    the ones the services wrote on their empty start."""
    import asyncio
    import sqlite3

    import bson
    from mongoeco.engines.sqlite import SQLiteEngine

    from deploy import store_patches
    store_patches.apply()                        # the engine as the served store runs it

    async def run():
        Path(sqlite).parent.mkdir(parents=True, exist_ok=True)
        engine = SQLiteEngine(sqlite)
        await engine.connect()
        groups: dict[tuple, list] = defaultdict(list)
        total, begin, loaded = 0, time.time(), set()

        async def flush(key):
            nonlocal total
            docs = groups.pop(key, [])
            if key[1] in overwrite:
                for doc in docs:
                    await engine.insert_document(key[0], key[1], doc, overwrite=True)
            elif docs:
                await engine.insert_documents(key[0], key[1], docs)
            total += len(docs)
            loaded.add(key)

        with open(path, "rb") as source:
            for record in bson.decode_file_iter(source, bson.CodecOptions(tz_aware=True)):
                key = (record["db"], record["coll"])
                groups[key].append(record["doc"])
                if len(groups[key]) >= batch:
                    await flush(key)
        for key in list(groups):
            await flush(key)
        indexes = {f"{db}.{coll}": sorted(name for name in await engine.index_information(db, coll) if name != "_id_")
                   for db, coll in sorted(loaded)}
        await engine.disconnect()
        with sqlite3.connect(sqlite) as connection:      # everything into the file: it is renamed next
            connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return {"documents": total, "load_seconds": round(time.time() - begin, 1), "indexes": indexes}

    return asyncio.run(run())


# the documents' shapes: a new version when they change (v2: intake's cases carry ``dup_cell``,
# its reports ``received_day``, ``report_cases`` names each report's case, intake's migrations
# are marked as run; v3: scoring's log entries carry ``subject_<kind>``; v4: dispatch's
# ``case_days``, every service's start-up migration marked as run; v5: loaded into a store whose
# indexes the services made while it was empty; v6: dispatch's day lists in shards; v7: scoring's
# indexes made at its start, not by its first worker — v6's year had none of them)
CACHE_VERSION = "v7"
# the collections whose timer loop migrates them once (shared/timers.migrate)
TIMER_COLLECTIONS = (("dispatch", "cases"), ("intake", "disputes"), ("coordination", "operations"),
                     ("coordination", "parties"))


def migration_markers() -> list[tuple[str, str]]:
    """(service database, marker) of every start-up migration of the platform (storage.run_once):
    a store whose documents already have what they add is marked as past them."""
    from services.dispatch import listing
    from services.gateway import live_records
    from services.intake import migrations
    from services.scoring import store
    from shared import timers
    return [("intake", name) for name, _ in migrations.STEPS] + [
        ("dispatch", listing.DAYS), ("scoring", store.SUBJECT_FIELDS_MIGRATION),
        ("gateway", live_records.RENUMBER_MIGRATION)] + [
        (database, timers.migration_name(collection)) for database, collection in TIMER_COLLECTIONS]


PREFIX = "bench_year_"          # the year's database prefix (bench.run gives its Stack the same)


def prepare(workdir: Path, count: int, cache: Path | None = None) -> dict:
    """A store file holding a year of ``count`` cases at ``workdir/mongo/store.sqlite3`` (the
    file bench.stack's store opens), under the database prefix PREFIX. Built and loaded once
    into ``cache`` (artifacts/bench/year-<CACHE_VERSION>-<count>.sqlite3), then copied: later runs take seconds."""
    import shutil

    from shared import storage
    cache = Path(cache or ROOT / "artifacts" / "bench" / f"year-{CACHE_VERSION}-{count}.sqlite3")
    target = Path(workdir) / "mongo" / "store.sqlite3"
    target.parent.mkdir(parents=True, exist_ok=True)
    figures = {"cases": count, "cached": cache.exists()}
    if not cache.exists():
        cache.parent.mkdir(parents=True, exist_ok=True)
        out = cache.with_suffix(".bson")
        built = build(count, out, PREFIX)
        print(f"year built: {built['cases']} cases, {sum(built['documents'].values())} documents "
              f"in {built['build_seconds']} s; the platform starts once on an empty store to make its indexes …",
              flush=True)
        partial = cache.with_suffix(".partial")
        partial.unlink(missing_ok=True)
        figures["index_seconds"] = index(partial)
        print(f"the services made their indexes on the empty store in {figures['index_seconds']} s; "
              f"loading the year into it (once, cached as {cache}) …", flush=True)
        done = subprocess.run([str(STORE_PYTHON), "-m", "bench.year_load", "--load", str(out),
                               "--sqlite", str(partial), "--overwrite", storage.MIGRATIONS],
                              cwd=ROOT, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
                              capture_output=True, text=True)
        if done.returncode:
            raise RuntimeError(f"year load failed: {done.stderr[-800:]}")
        figures.update(built, **json.loads(done.stdout.strip().splitlines()[-1]))
        bare = [name for name, names in figures["indexes"].items() if not names]
        print(f"year loaded in {figures['load_seconds']} s; collections with no index but _id: "
              f"{', '.join(bare) or 'none'}", flush=True)
        partial.rename(cache)
        for suffix in ("-wal", "-shm"):                     # emptied by the checkpoint
            Path(f"{partial}{suffix}").unlink(missing_ok=True)
        out.unlink()
        (cache.with_suffix(".json")).write_text(json.dumps(figures, ensure_ascii=False), encoding="utf-8")
    else:
        figures.update(json.loads(cache.with_suffix(".json").read_text(encoding="utf-8")), cached=True)
    begin = time.time()
    shutil.copyfile(cache, target)
    figures["copy_seconds"] = round(time.time() - begin, 1)
    return figures


def index(store_file: Path) -> float:
    """Start the platform once on an empty store (the year's database prefix) so that every
    service creates its own indexes and runs its start-up migrations (they own both; the loader
    writes documents only), then fold SQLite's write-ahead log into ``store_file``. The year is
    loaded into it afterwards: mongoeco fills an index as documents go in, but building one over
    700,000 stored documents at a service's start took more than 17 minutes (issue 19). Seconds taken."""
    import shutil
    import sqlite3
    import tempfile

    from bench.stack import PLATFORM_ENV, Stack
    workdir = Path(tempfile.mkdtemp(prefix="year-index-", dir=ROOT / "var"))
    target = workdir / "mongo" / "store.sqlite3"
    begin = time.time()
    try:
        with Stack("year-index", store="sqlite", db_prefix=PREFIX, workdir=workdir, env=PLATFORM_ENV):
            pass
        with sqlite3.connect(target) as connection:
            connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        shutil.move(target, store_file)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return round(time.time() - begin, 1)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=50_000)
    parser.add_argument("--out", help="build: the BSON file to write")
    parser.add_argument("--prefix", default="year_")
    parser.add_argument("--load", help="load: the BSON file to read (run with .venv-store's Python)")
    parser.add_argument("--sqlite", help="load: the store's SQLite file")
    parser.add_argument("--overwrite", action="append", default=[],
                        help="load: a collection whose documents replace the stored ones (repeatable)")
    args = parser.parse_args(argv)
    if args.load:
        print(json.dumps(load(args.load, args.sqlite, tuple(args.overwrite))))
    else:
        print(json.dumps(build(args.count, Path(args.out), args.prefix), ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
