"""Issue 19 as a failing test: every query the services make is served by an index.

A small pipeline runs on the real broker and on the embedded store over SQLite (its own store
process in a temporary folder: the session's in-memory store has no SQLite plan to read), with
the query log on (shared/query_log.py): reports filed, registered, linked as duplicates, re-sent,
one in the 盲区 (a gap: an ownership dispute, decided, then a report there), the case taken to
closed through the gateway (dispatch), intake's reads and lists. Then every recorded shape is
replayed with ``explain`` (bench.index_check) and each one classified ``scan`` fails the test,
unless it is in ALLOWED below (whole reads of small, bounded collections, by design).

Whole reads (an empty filter) fail too, unless allowed: a whole read of a collection that grows
with the data costs as much as a scan. The timer loops' searches are checked like the rest
(``{_timer_set: 1}``, the lease by ``_id``, ``{_timer_holder}``: shared/timers.py).

What it covers: the query shapes intake, dispatch, the gateway, coordination, participation and
scoring make along a case's life (a street-owned case: no joint operation is opened). Not covered:
coordination's joint operations and
participation's own entrypoints, intake's sensor
channel, stall permits, returned-twice disputes and the Open311 date-window list (their keys are
the same kinds as those checked here: ``_id`` and one scalar equality; see test_intake_cells)."""
from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
import requests
from nameko.standalone.rpc import ClusterRpcProxy

from bench import index_check
from services.enforcement_coordination.service import CoordinationService
from services.participation.service import ParticipationService
from services.scoring.service import ScoringService
from shared import metrics, query_log, storage
from shared.query_log import shape
from tests.conftest import embedded_store
from tests.dispatch_support import (  # noqa: F401  (fixtures)
    UNIT, local, log_in, ok, operator_headers, saturday_morning, set_clock,
)
from tests.helpers import wait_until
from tests.integration.intake_support import GAP, INSIDE, start

EAST_30M = {"lon": INSIDE["lon"] + 0.000311, "lat": INSIDE["lat"]}     # ≈ 30 m east: a duplicate

# (database without its prefix, collection, command, filter shape): scans and whole reads
# accepted by design, each of a small collection that does not grow with the data.
ALLOWED = {
    # the filing claims in flight (a few per filing being filed right now, deleted when it is
    # filed): released in one delete by their ids
    ("intake", "filing_claims", "delete", '{"_id": {"$in": ["str"]}, "holder": "str"}'),
    # the 四定 stall permit register (a district's permits: tens), read whole for a street-trading report
    ("intake", "stall_permits", "find", "{}"),
    # one heartbeat per running process (ops health reads them all)
    ("platform", "heartbeats", "find", "{}"),
    # participation's shop register (shops.yaml plus the shops registered over the API)
    ("participation", "shops", "find", "{}"),
    # the newest live record, sorted ONCE per gateway process (later: _id lookups; the collection
    # keeps at most live_records.KEEP records)
    ("gateway", "live_events", "find", "{}"),
    # the unfiltered case list: 16 documents per day with dispatched cases (listing.SHARDS), each
    # listing a share of that day's case ids; the page's cases are then read by _id (dispatch/listing.py)
    ("dispatch", "case_days", "find", "{}"),
}




@pytest.fixture(scope="module")
def store_uri(tmp_path_factory):
    """This module's own embedded store, on SQLite (overrides the session's in-memory one)."""
    env = {key: value for key, value in os.environ.items() if key != "EMBEDDED_STORE_PASSWORD"}
    yield from embedded_store("--data", str(tmp_path_factory.mktemp("sqlite-store")), env=env)


@pytest.fixture
def queries(tmp_path, monkeypatch):
    """The query log of this process (every container here runs in it)."""
    folder = tmp_path / "queries"
    folder.mkdir()
    monkeypatch.setattr(storage, "QUERY_LOG", str(folder))
    monkeypatch.setattr(query_log, "_seen", set())
    return folder


def file(rpc, location, class_code="E0101", **extra):
    return rpc.intake.submit_report({"channel": "web", "class_code": class_code, "location": location,
                                     "description": "垃圾堆积", "reporter": {"phone": "13800000001"}, **extra})


def pipeline(running, config, db):
    """A case's life through intake, dispatch and the gateway, plus intake's reads and lists."""
    gateway = running.url
    log_in(gateway, db)
    with ClusterRpcProxy(running.config) as rpc:
        first = file(rpc, INSIDE, external_id="T-1")
        assert first["status"] == "registered", first
        assert file(rpc, INSIDE, external_id="T-1")["report_id"] == first["report_id"]     # re-sent
        assert file(rpc, EAST_30M)["status"] == "duplicate"
        gap = file(rpc, GAP)
        dispute = wait_until(lambda: rpc.intake.list_disputes("open"), what="the gap's dispute")[0]
        assert rpc.intake.decide_ownership(dispute["_id"], {"owner_unit": "dept.municipal",
                                                            "decided_by": "区城管局"})["status"] == "decided"
        after = file(rpc, {"lon": GAP["lon"] + 0.0002, "lat": GAP["lat"]}, class_code="C0108")
        assert after["status"] == "registered", after
        rpc.intake.list_disputes(None)
        rpc.intake.get_dispute(dispute["_id"])
        rpc.intake.get_case(first["case_id"])
        rpc.intake.case_view(gap["case_id"])
        rpc.intake.get_report(first["report_id"])
        rpc.intake.open311_request(first["report_id"])
        rpc.intake.open311_requests({"ids": [first["report_id"], gap["report_id"]]})
        rpc.intake.open311_token(first["token"])

    case_id = first["case_id"]
    wait_until(lambda: (db("dispatch").cases.find_one({"_id": case_id}) or {}).get("_pending") is False,
               what="dispatch's case, published")
    case = ok(gateway, case_id, "accept", expected_version=1, **UNIT)
    case = ok(gateway, case_id, "feedback", expected_version=case["version"],
              after_photo="/media/d204b51ff8be722056d816a56a992eba", note="已清运", **UNIT)
    case = ok(gateway, case_id, "verify", expected_version=case["version"], actor="严勇", passed=True, note="现场已清理")
    assert case["state"] == "closed"
    wait_until(lambda: (db("intake").cases.find_one({"_id": case_id}) or {}).get("state") == "closed",
               what="intake's copy of the case, closed")
    for path in (f"/api/cases/{case_id}/timeline", f"/api/cases/{case_id}", "/api/cases?page=1"):
        requests.get(f"{gateway}{path}", headers=operator_headers(gateway), timeout=15)
    with ClusterRpcProxy(running.config) as rpc:
        assert file(rpc, EAST_30M)["status"] == "reopened"                # within the reopen window
    # the open cases' 预警/督办/升级 fall due: the timer loops' lease and read-back run too
    fired = metrics.TIMERS_FIRED.labels("dispatch", "ok")._value.get()
    set_clock(local(2026, 12, 1, 12, 0))
    wait_until(lambda: metrics.TIMERS_FIRED.labels("dispatch", "ok")._value.get() > fired,   # no store read
               what="a timer loop's round firing dispatch's timers", timeout=60)


def key_of(row, prefix) -> tuple:
    return (row["db"].removeprefix(prefix), row["coll"], row["command"],
            json.dumps(shape(row["filter"]), sort_keys=True))


def mark_migrations_run(mongo, prefix):
    """A store past intake's, scoring's, the gateway's and the timer loops' first start: their migrations
    marked as run (their one-off whole reads are not the services' queries; test_intake_migrations,
    test_scoring_log_keys and test_timers run them)."""
    from bench.year_load import migration_markers
    from shared import storage
    for database, name in migration_markers():
        mongo[f"{prefix}{database}"][storage.MIGRATIONS].replace_one({"_id": name}, storage.migration_marker(name),
                                                                     upsert=True)




@pytest.mark.usefixtures("saturday_morning")
def test_every_query_the_services_make_is_served_by_an_index(container_factory, config, db, mongo, queries,
                                                              monkeypatch):
    mark_migrations_run(mongo, config["DB_PREFIX"])
    running = start(container_factory, config, gateway=True, dispatch=True)
    for service in (CoordinationService, ParticipationService, ScoringService):   # they follow every case
        container_factory(service, running.config).start()
    pipeline(running, config, db)
    time.sleep(1.0)                      # the relays' last clears and the timer loops' next round
    monkeypatch.setattr(storage, "QUERY_LOG", None)      # what follows is the check's, not the services'

    recorded = index_check.shapes(queries)
    assert len(recorded) > 20, "the query log recorded too little to check"
    # an empty collection's plan never uses an index (the store has no entries to start from):
    # give each such collection one document, so its plan says what it will be with data
    for name, collection in {(q["db"], q["coll"]) for q in recorded}:
        if mongo[name][collection].find_one({}, {"_id": 1}) is None:
            mongo[name][collection].insert_one({"_id": "index-check-probe"})

    report = index_check.check(mongo, queries)
    prefix = config["DB_PREFIX"]
    scans = []
    whole = [row for row in report["rows"] if row["verdict"] == "whole"]
    for row in report["unindexed"] + report["errors"] + whole:
        key = key_of(row, prefix)
        if key not in ALLOWED:
            scans.append(f"{row['verdict']}: {key[0]}.{key[1]} {row['command']} {key[3]} sort {row['sort']}"
                         f" — {str(row['plan'])[:120]}")
    assert not scans, f"{len(scans)} of {report['shapes']} query shapes not served by an index:\n" + "\n".join(scans)
    checked = {(row["command"], json.dumps(shape(row["filter"]), sort_keys=True)) for row in report["rows"]
               if row["db"] == f"{prefix}dispatch" and row["coll"] == "cases" and row["verdict"] == "index"}
    # the timer loop's round and its read-back (its lease statements are by _id alone)
    assert {("find", '{"_timer_set": "int"}'), ("find", '{"_timer_holder": "str"}')} <= checked, \
        "the timer loop's round was not checked"
    Path(queries, "checked.json").write_text(json.dumps(report, default=str), encoding="utf-8")
