"""Intake's start-up migrations: what a search needs that documents saved by an older intake
lack. Each runs once per store behind a marker (``storage.run_once``), so a start costs one
read per migration when nothing is missing. Idempotent: two instances starting
together both run it, harmlessly.

- ``cases.dup_cell``: the cell key the duplicate search reads (cells.py, filing.registration);
- ``report_cases``: the case of a report whose report document was never written (a crash
  between the case write and the report write), found before by a multikey scan of
  ``cases.report_ids``;
- ``dispute_cells``: every dispute listed in the cells its place touches;
- ``reports.received_day``: the day key the Open311 date-window list reads.

An intake of the previous version still running after the marker is written would save cases
without ``dup_cell`` (not found as duplicates): upgrade all instances together."""
from __future__ import annotations

import logging

from shared import storage

from . import cells, filing

log = logging.getLogger(__name__)

DUP_CELL, REPORT_CASES, DISPUTE_CELLS, RECEIVED_DAY = \
    "cases.dup_cell", "report_cases", "dispute_cells", "reports.received_day"


def _dup_cells(database) -> int:
    done = 0
    for case in database.cases.find({}, {"_id": 1, "class_code": 1, "location": 1, "dup_cell": 1}):
        location = case.get("location") or {}
        if case.get("dup_cell") or location.get("lon") is None or not case.get("class_code"):
            continue
        database.cases.update_one({"_id": case["_id"]}, {"$set": {"dup_cell": cells.duplicate_cell(
            case["class_code"], location["lon"], location["lat"])}})
        done += 1
    return done


def _report_cases(database) -> int:
    done = 0
    for case in database.cases.find({}, {"_id": 1, "report_ids": 1}):
        for report_id in case.get("report_ids") or []:
            if database.reports.find_one({"_id": report_id}, {"_id": 1}) is None:
                database.report_cases.update_one({"_id": report_id}, {"$setOnInsert": {"case_id": case["_id"]}},
                                                 upsert=True)
                done += 1
    return done


def list_in_cells(database, dispute_id: str, bbox: dict) -> None:
    """List a dispute in every cell its place's box touches (cells.py), by ``_id``."""
    keys = cells.cells_over(bbox["min_lon"], bbox["min_lat"], bbox["max_lon"], bbox["max_lat"])
    if len(keys) >= cells.MAX_CELLS:
        log.warning("dispute %s: its place touches more than %d cells; listed in the first ones",
                    dispute_id, cells.MAX_CELLS)
    for key in keys:
        database.dispute_cells.update_one({"_id": key}, {"$addToSet": {"dispute_ids": dispute_id}}, upsert=True)


def _dispute_cells(database) -> int:
    done = 0
    for dispute in database.disputes.find({}, {"_id": 1, "bbox": 1}):
        if dispute.get("bbox"):
            list_in_cells(database, dispute["_id"], dispute["bbox"])
            done += 1
    return done


def _received_days(database) -> int:
    done = 0
    for report in database.reports.find({}, {"_id": 1, "received_at": 1, "received_day": 1}):
        if report.get("received_day") or report.get("received_at") is None:
            continue
        database.reports.update_one({"_id": report["_id"]},
                                    {"$set": {"received_day": filing.received_day(report["received_at"])}})
        done += 1
    return done


STEPS = ((DUP_CELL, _dup_cells), (REPORT_CASES, _report_cases), (DISPUTE_CELLS, _dispute_cells),
         (RECEIVED_DAY, _received_days))


def run(database) -> dict:
    """Run every migration this store has not run yet; {name: documents changed}."""
    changed = {name: storage.run_once(database, name, lambda step=step: step(database)) for name, step in STEPS}
    return {name: count for name, count in changed.items() if count is not None}
