"""Scoring's event log is found by subject through scalar, indexed fields (issue 19): an event has at
most one subject of each kind, kept in the top-level field ``subject_<kind>``. A store written before those
fields existed is labelled once at start-up, and its facts are folded from the same events."""
import pytest

from services.scoring import rules, store
from shared import storage
from shared.contracts.events import load_event
from shared.refdata import load_district
from tests import scoring_scenario as S


@pytest.fixture(scope="module")
def district():
    return load_district()


def test_a_log_written_before_the_subject_fields_is_labelled_once_and_refolds_the_same(db, district):
    scoring = db("scoring")
    events = [load_event(event) for event in S.build()]
    entries = [rules.log_entry(event) for event in events]
    expected = {fact["_id"]: fact for fact in rules.fold_all(entries, store.locator(district))}
    old = [{key: value for key, value in entry.items() if key not in rules.SUBJECT_FIELDS} for entry in entries]
    scoring[store.EVENTS].insert_many(old)
    scoring[store.EVENTS].create_index("subjects")          # the old multikey index

    store.ensure_indexes(scoring)

    indexes = scoring[store.EVENTS].index_information()
    assert "subjects_1" not in indexes
    assert {f"{field}_1" for field in rules.SUBJECT_FIELDS} <= set(indexes)

    def labels(entry):
        return {field: entry[field] for field in rules.SUBJECT_FIELDS if field in entry}
    labelled = {entry["_id"]: labels(entry) for entry in scoring[store.EVENTS].find({})}
    assert labelled == {entry["_id"]: labels(entry) for entry in entries}
    assert labelled[next(e["event_id"] for e in events if e["type"] == "case_registered"
                         and e["payload"]["case_id"] == "A1")] == {"subject_case": "case:A1",
                                                                    "subject_report": "report:rpt-A1"}
    assert scoring[storage.MIGRATIONS].find_one({"_id": store.SUBJECT_FIELDS_MIGRATION})["documents"] == len(entries)

    store.ensure_indexes(scoring)                            # a second start walks nothing
    assert scoring[storage.MIGRATIONS].find_one({"_id": store.SUBJECT_FIELDS_MIGRATION})["documents"] == len(entries)

    store.refresh(scoring, expected, district)
    stored = {fact["_id"]: fact for fact in scoring[store.FACTS].find({})}
    assert {key: (fact["n"], fact["kind"]) for key, fact in stored.items()} == \
        {key: (fact["n"], fact["kind"]) for key, fact in expected.items()}


def test_a_batch_refolds_every_subject_it_touches_from_the_whole_log(db, district):
    scoring = db("scoring")
    store.ensure_indexes(scoring)
    events = [load_event(event) for event in S.build()]
    half = len(events) // 2
    store.record_batch(scoring, events[:half], district)
    store.record_batch(scoring, events[half:] + events[:5], district)      # 5 redelivered
    expected = {fact["_id"]: fact for fact in rules.fold_all([rules.log_entry(e) for e in events],
                                                             store.locator(district))}
    stored = {fact["_id"]: fact for fact in scoring[store.FACTS].find({})}
    assert {key: fact["n"] for key, fact in stored.items()} == {key: fact["n"] for key, fact in expected.items()}
