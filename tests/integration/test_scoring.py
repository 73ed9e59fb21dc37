"""Scoring on the real broker and store: the hand-built November scenario (tests/scoring_scenario.py)
is published event by event, shuffled and with duplicates, through RabbitMQ into a running
scoring service; the HTTP API must give every hand-computed value. Duplicates change nothing,
and recomputing from the event log (the recompute command) gives exactly the live numbers."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from services.gateway.auth import new_key
from services.gateway.service import GatewayService
from services.scoring.service import ScoringService
from shared import clock
from shared.contracts.events import make_event
from tests import scoring_scenario as S
from tests.conftest import free_port
from tests.helpers import publish, queue_depth, wait_until
from tests.scoring_support import (clock_offset_seconds, publish_all, set_clock, strip_as_of,
                                   wait_for_facts)

ROOT = Path(__file__).resolve().parents[2]
QUEUE = "scoring.lifecycle-events"


@pytest.fixture(autouse=True)
def after_november():
    set_clock()
    yield
    clock.reset()


@pytest.fixture
def scoring_db(db):
    return db("scoring")


LOGIN = {}         # gateway base URL → the leader's Authorization header (services/gateway/auth.py)


@pytest.fixture
def gateway(container_factory, config, db):
    port = free_port()
    container_factory(GatewayService, dict(config, WEB_SERVER_ADDRESS=f"127.0.0.1:{port}")).start()
    LOGIN[f"http://127.0.0.1:{port}"] = {"Authorization": f"Bearer {new_key(db('gateway').accounts, '区领导', 'leader')}"}
    return f"http://127.0.0.1:{port}"


def get(base, path, **params):
    return requests.get(f"{base}{path}", params=params, timeout=20, headers=LOGIN[base])


def assert_block(block, expected, where):
    for code, (numerator, denominator) in expected.items():
        got = block[code]
        assert (got["numerator"], got["denominator"], got["value"]) == (
            numerator, denominator, S.r(numerator, denominator)), f"{where} {code}: {got}"


def test_the_hand_built_month_through_the_broker_gives_every_hand_computed_value(
        container_factory, config, scoring_db, gateway):
    container_factory(ScoringService, config).start()
    events = S.build()
    publish_all(config, events, duplicates=25)             # shuffled, 25 delivered twice
    wait_for_facts(scoring_db, events)
    assert scoring_db.events.count_documents({}) == len(events)   # each event logged once

    answer = get(gateway, "/api/scoring/indicators", period=S.MONTH)
    assert answer.status_code == 200, answer.text
    report = answer.json()
    assert report["period"]["label"] == "2026-11" and report["period"]["title"] == "2026年11月"
    assert_block(report["district"]["indicators"], S.EXPECTED_DISTRICT, "district")
    for unit_id, expected in S.EXPECTED_UNITS.items():
        assert_block(report["units"][unit_id]["indicators"], expected, unit_id)
    for code, expected in S.EXPECTED_GRIDS.items():
        assert_block(report["grids"][code]["indicators"], expected, code)
    for key, expected in S.EXPECTED_INSPECTORS.items():
        assert_block(report["inspectors"][key]["indicators"], expected, key)
    for key, expected in S.EXPECTED_PARTNERS.items():
        assert_block(report["partners"][key]["indicators"], expected, key)
    for unit_id, expected in S.EXPECTED_COMPOSITE.items():
        composite = report["units"][unit_id]["composite"]
        assert {key: composite[key] for key in expected} == expected, unit_id

    # evaluation by role (CJ/T 292 / GB/T 30428.4): centre, handling units, inspectors, regions
    assert_block(report["roles"]["centre"]["indicators"], S.EXPECTED_CENTRE, "centre")
    handlers = {row["unit_id"]: row for row in report["roles"]["handlers"]}
    for unit_id, expected in S.EXPECTED_HANDLERS.items():
        assert (handlers[unit_id]["counts"]["overdue_closed"], handlers[unit_id]["counts"]["overdue_open"]) == \
            (expected["overdue_closed"], expected["overdue_open"]), unit_id
        assert_block(handlers[unit_id]["indicators"], {"handle_ontime_rate": expected["handle_ontime_rate"]}, unit_id)
    assert {row["status"] for row in report["roles"]["regions"] if row["type"] == "park"} == {"无案件"}
    # the quarter: its months' composite scores, composed with equal weights
    quarter = get(gateway, "/api/scoring/indicators", period="2026-Q4").json()
    assert quarter["period"]["title"] == "2026年第4季度"
    months = quarter["composed"][S.A]["months"]
    assert months["2026-10"]["score"] == 26.41 and months["2026-11"]["score"] == 48.83
    scored = [m["score"] for m in months.values() if m["score"] is not None]
    assert quarter["composed"][S.A]["value"] == round(sum(scored) / len(scored), 2)

    unit = get(gateway, f"/api/scoring/indicators/unit/{S.A}", period=S.MONTH).json()
    assert unit["entry"]["name"] == "天生街道" and unit["entry"]["composite"]["value"] == 48.83
    week = get(gateway, f"/api/scoring/indicators/unit/{S.A}", period="2026-W45").json()
    assert_block(week["entry"]["indicators"], {"closure_rate": (2, 2), "ontime_rate": (1, 2)}, "week")
    partner = get(gateway, "/api/scoring/indicators/partner/environment", period=S.MONTH).json()
    assert partner["entry"]["indicators"]["checkin_ontime_rate"]["value"] == 0.0   # the late one

    ranking = get(gateway, "/api/scoring/rankings", month=S.MONTH, unit_type="street").json()
    assert [table["group"] for table in ranking["rankings"]] == ["street"]
    table = ranking["rankings"][0]
    assert [(e["rank"], e["unit_id"], e["composite"]) for e in table["ranked"]] == S.EXPECTED_STREET_RANKING
    assert [e["unit_id"] for e in table["unranked"]] == S.EXPECTED_STREET_UNRANKED

    exposure = get(gateway, "/api/scoring/exposure", period=S.MONTH).json()["cases"]
    assert [(c["case_id"], c["overdue_hours"], c["status"]) for c in exposure] == S.EXPECTED_EXPOSURE
    assert exposure[1]["problem_photos"] == ["https://media.dcg.example/A2-problem.png"]
    assert exposure[1]["after_photo"] == "https://media.dcg.example/A2-after.png"


def test_bad_queries_get_field_level_errors(container_factory, config, gateway):
    container_factory(ScoringService, config).start()
    answer = get(gateway, "/api/scoring/rankings", month="2026-13", unit_type="village")
    assert answer.status_code == 400
    assert set(answer.json()["error"]["fields"]) == {"month", "unit_type"}
    answer = get(gateway, "/api/scoring/indicators/planet/x", period="2026-11-31")
    assert answer.status_code == 400
    assert set(answer.json()["error"]["fields"]) == {"level", "period"}
    answer = get(gateway, f"/api/scoring/indicators/unit/{S.A}", period="2026-11")
    assert answer.status_code == 404                          # nothing recorded for it
    assert get(gateway, "/api/scoring/bulletins/2026-11.pdf").status_code == 404
    assert get(gateway, "/api/scoring/bulletins/2026-11.doc").status_code == 400


def test_a_bad_event_goes_to_the_dead_letter_queue_with_its_reason(container_factory, config, scoring_db):
    container_factory(ScoringService, config).start()
    good = make_event("case_supervised", {"case_id": "C-DLQ", "unit_id": S.A, "deadline": S.T("11-25 17:00"),
                                          "at": S.T("11-26 09:00")},
                      producer="dispatch", correlation_id="C-DLQ", event_id="C-DLQ.supervised")
    bad = dict(good, event_id="C-DLQ.bad", payload={"case_id": "C-DLQ"})       # no unit_id, no at
    publish(config, "dispatch.events", "case_supervised", bad)
    publish(config, "dispatch.events", "case_supervised", good)
    wait_until(lambda: scoring_db.facts.find_one({"_id": "case:C-DLQ"}), what="the good event")
    wait_until(lambda: queue_depth(config, f"{QUEUE}.dlq") == 1, what="the bad event in the DLQ")
    assert scoring_db.events.count_documents({}) == 1


def test_redelivering_every_event_changes_nothing(container_factory, config, scoring_db, gateway):
    service = container_factory(ScoringService, config)
    service.start()
    events = S.build()
    publish_all(config, events)
    wait_for_facts(scoring_db, events)
    facts_before = {doc["_id"]: doc for doc in scoring_db.facts.find({})}
    report_before = strip_as_of(get(gateway, "/api/scoring/indicators", period=S.MONTH).json())

    publish_all(config, events, seed=99)                      # the whole month delivered again
    wait_until(lambda: queue_depth(config, QUEUE) == 0, what="every copy delivered")
    service.stop()                                            # waits for the workers in flight
    assert queue_depth(config, QUEUE) == 0 and queue_depth(config, f"{QUEUE}.dlq") == 0
    assert scoring_db.events.count_documents({}) == len(events)
    assert {doc["_id"]: doc for doc in scoring_db.facts.find({})} == facts_before

    container_factory(ScoringService, config).start()
    assert strip_as_of(get(gateway, "/api/scoring/indicators", period=S.MONTH).json()) == report_before


def recompute(test_env, *args):
    env = {**os.environ, **test_env, "PYTHONPATH": str(ROOT),
           "DCG_CLOCK_OFFSET_SECONDS": str(clock_offset_seconds())}
    done = subprocess.run([sys.executable, "-m", "services.scoring.recompute", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)
    return done


def test_replay_from_the_event_log_equals_the_live_path(container_factory, config, test_env,
                                                        scoring_db, gateway):
    container_factory(ScoringService, config).start()
    events = S.build()
    publish_all(config, events, duplicates=10)
    wait_for_facts(scoring_db, events)
    live = {period: strip_as_of(get(gateway, "/api/scoring/indicators", period=period).json())
            for period in (S.MONTH, "2026-10", "2026-W45")}

    # 1. the recompute command folds the whole log into facts_replay and compares
    done = recompute(test_env, "--check", "--period", S.MONTH, "--period", "2026-10",
                     "--period", "2026-W45", "--json")
    assert done.returncode == 0, done.stdout + done.stderr
    outcome = json.loads(done.stdout)
    assert outcome["equal"] is True and outcome["different_fact_count"] == 0
    assert outcome["events"] == len(events)
    assert [p["equal"] for p in outcome["periods"]] == [True, True, True]
    assert outcome["periods"][0]["district"]["ontime_rate"] == S.r(8, 13)

    # 2. lose every live fact, rebuild them from the log: the same numbers
    scoring_db.facts.drop()
    done = recompute(test_env, "--period", S.MONTH)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "重算完成" in done.stdout
    for period, before in live.items():
        assert strip_as_of(get(gateway, "/api/scoring/indicators", period=period).json()) == before, period
    assert scoring_db.recomputes.count_documents({}) == 2


def test_a_started_service_has_made_its_indexes_before_any_event(container_factory, config, scoring_db):
    """A store loaded after the service started (the benchmark's year) fills the indexes as its
    documents go in; an index made lazily by the first worker would be built over all of them."""
    from services.scoring import rules as scoring_rules
    from services.scoring import store
    container_factory(ScoringService, config).start()
    events = scoring_db[store.EVENTS].index_information()
    assert {f"{field}_1" for field in scoring_rules.SUBJECT_FIELDS} | {"correlation_id_1"} <= set(events)
    assert "kind_1_due_at_1" in scoring_db[store.FACTS].index_information()
