"""Scoring rules, part 1 — pure: from the event log to one *fact* document per subject.

The event log (one document per event_id) is the source of truth. Every event that counts
belongs to one or more *subjects* (the others are only logged):

    case:<case_id>                      the case's lifecycle events (CASE_EVENTS)
    report:<report_id>                  report_received / report_rejected / case_registered /
                                        report_linked_as_duplicate / case_reopened
    request:<operation_id>:<department> department_request_sent / department_replied

A subject's fact is ``fold(subject, events)``: a pure function of the SET of its events (they
are sorted here by business time and event id, so arrival order never matters and a duplicate
event changes nothing). The live path refolds a subject from the log after each event; the
recompute command refolds every subject from the log. Same function, same input — the same
facts, which is why "replay equals live". Facts hold no configuration: weights, deadlines for
fallbacks and period boundaries are applied at query time (services/scoring/indicators.py).
"""
from __future__ import annotations

from datetime import datetime, timezone

from . import checks

# The events a fact is folded from (others — owner_notified, case_warned … — are logged only).
CASE_EVENTS = {"case_registered", "case_dispatched", "case_returned", "extension_requested",
               "extension_decided", "case_parked", "case_unparked", "case_feedback_given",
               "case_verified", "case_rework_ordered", "case_closed", "case_reopened",
               "satisfaction_recorded", "case_supervised", "joint_operation_opened", *checks.EVENTS}
REPORT_EVENTS = {"report_received", "report_rejected", "case_registered",
                 "report_linked_as_duplicate", "case_reopened"}
REQUEST_EVENTS = {"department_request_sent", "department_replied"}
REVIEW_EVENTS = {"community_review_submitted"}     # 社区评议 (participation)

# The payload field holding an event's business time (else "at", else the envelope's time).
TIME_FIELDS = {
    "report_received": "received_at", "case_registered": "registered_at",
    "report_linked_as_duplicate": "linked_at", "case_reopened": "reopened_at",
    "satisfaction_recorded": "recorded_at", "case_dispatched": "dispatched_at",
    "case_closed": "closed_at", "department_request_sent": "sent_at",
    "department_replied": "replied_at", "joint_operation_opened": "opened_at",
    "joint_operation_closed": "closed_at", "ownership_dispute_opened": "opened_at",
    "ownership_decided": "decided_at", "owner_notified": "notified_at",
    "report_rejected": "rejected_at",
    "community_review_submitted": "submitted_at",
}

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


# ---------------------------------------------------------------------------- the log entry
def unit_of(event: dict) -> str | None:
    """The unit an event is about, for the log (informative; facts attribute precisely)."""
    payload = event["payload"]
    return payload.get("unit_id") or payload.get("owner_unit") or payload.get("department")


def subjects_of(event: dict) -> list[str]:
    kind, payload = event["type"], event["payload"]
    keys = []
    if kind in CASE_EVENTS and payload.get("case_id"):
        keys.append(f"case:{payload['case_id']}")
    if kind in REPORT_EVENTS and payload.get("report_id"):
        keys.append(f"report:{payload['report_id']}")
    if kind in REQUEST_EVENTS and payload.get("operation_id") and payload.get("department"):
        keys.append(f"request:{payload['operation_id']}:{payload['department']}")
    if kind in REVIEW_EVENTS and payload.get("review_id"):
        keys.append(f"review:{payload['review_id']}")
    return keys


def subject_fields(subjects: list[str]) -> dict[str, str]:
    """The subjects as top-level scalar fields, one per kind ({"subject_case": "case:A1",
    "subject_report": "report:R1"}): an event has at most one subject of each kind, and the
    embedded store serves an equality on a top-level scalar field from its index (not one on an
    array, nor on a dotted path)."""
    return {f"subject_{subject.split(':', 1)[0]}": subject for subject in subjects}


def subject_field(subject: str) -> str:
    """The log field that holds ``subject`` (an equality on it finds the subject's events)."""
    return f"subject_{subject.split(':', 1)[0]}"


SUBJECT_KINDS = ("case", "report", "request", "review")
SUBJECT_FIELDS = tuple(f"subject_{kind}" for kind in SUBJECT_KINDS)


def event_time(event: dict) -> datetime:
    payload = event["payload"]
    field = TIME_FIELDS.get(event["type"], "at")
    return payload.get(field) or payload.get("at") or event.get("occurred_at") or EPOCH


def log_entry(event: dict, recorded_at: datetime | None = None) -> dict:
    """The event-log document for a validated envelope (``shared.contracts.events.load_event``)."""
    subjects = subjects_of(event)
    return {
        "_id": event["event_id"], "type": event["type"], "producer": event["producer"],
        "occurred_at": event["occurred_at"], "correlation_id": event["correlation_id"],
        "unit": unit_of(event), "payload": event["payload"], "at": event_time(event),
        "subjects": subjects, **subject_fields(subjects), "recorded_at": recorded_at,
    }


def _order(entry: dict):
    return (_utc(entry.get("at") or event_time(entry)), entry["_id"])


def _utc(moment):
    if moment is None:
        return EPOCH
    if moment.tzinfo is None:                  # a store that drops tzinfo keeps UTC
        return moment.replace(tzinfo=timezone.utc)
    return moment


# ---------------------------------------------------------------------------- folding
def fold(subject: str, entries: list[dict], locate=None) -> dict:
    """The fact of one subject from its log entries. ``locate(lon, lat)`` → {grid_code,
    street_id} or None (the reference data's grid lookup) places reports that never became a case."""
    entries = sorted({entry["_id"]: entry for entry in entries}.values(), key=_order)  # a set
    kind = subject.split(":", 1)[0]
    if kind == "case":
        fact = fold_case(subject.split(":", 1)[1], entries)
    elif kind == "report":
        fact = fold_report(subject.split(":", 1)[1], entries, locate)
    elif kind == "request":
        _, operation_id, department = subject.split(":", 2)
        fact = fold_request(operation_id, department, entries)
    elif kind == "review":
        fact = fold_review(subject.split(":", 1)[1], entries)
    else:
        raise ValueError(f"unknown subject {subject!r}")
    fact["_id"] = subject
    fact["n"] = len(entries)
    return fact


def fold_all(entries, locate=None) -> list[dict]:
    """Every subject's fact from a whole log (the recompute path), ordered by subject."""
    groups: dict[str, list] = {}
    for entry in entries:
        for subject in subjects_of(entry):
            groups.setdefault(subject, []).append(entry)
    return [fold(subject, items, locate) for subject, items in sorted(groups.items())]


def fold_case(case_id: str, entries: list[dict]) -> dict:
    fact = {
        "kind": "case", "case_id": case_id, "registered_at": None, "report_id": None,
        "channel": None, "class_code": None, "class_name": None, "address": "", "description": "",
        "owner_unit": None, "grid_code": None, "street_id": None, "inspector_id": None,
        "media_urls": [], "unit": None, "dispatches": [], "deadline": None,
        "effective_deadline": None, "returns": [], "extension_requests": 0,
        "extension_approvals": [], "parks": [], "parked_now": False, "feedbacks": [],
        "after_photo": None, "verifications": [], "reworks": [], "closes": [], "reopens": [],
        "closed_at": None, "first_closed_at": None, "due_at": None, "callback": None,
        "supervisions": [], "joint_operations": 0, "checks": [], "cancelled_at": None,
    }
    timeline = []          # (at, what, value): what changes the effective deadline
    for entry in entries:
        kind, p, at = entry["type"], entry["payload"], _utc(entry.get("at") or event_time(entry))
        if kind == "case_registered" and fact["registered_at"] is None:
            fact.update({
                "registered_at": p["registered_at"], "report_id": p.get("report_id"),
                "channel": p.get("channel"), "class_code": p.get("class_code"),
                "class_name": p.get("class_name"), "address": p.get("address") or "",
                "description": p.get("description") or "", "owner_unit": p.get("owner_unit"),
                "grid_code": p.get("grid_code"), "street_id": p.get("street_id"),
                "inspector_id": p.get("inspector_id"), "media_urls": list(p.get("media_urls") or [])})
        elif kind == "case_dispatched":
            fact["dispatches"].append({"unit_id": p["unit_id"], "at": at, "deadline": p["deadline"],
                                       "sequence": p.get("sequence") or 1})
            timeline.append((at, "dispatch", p["deadline"]))
        elif kind == "case_returned":
            fact["returns"].append({"unit_id": p["unit_id"], "caused_by": p["caused_by"], "at": at,
                                    "reason": p.get("reason", "")})
        elif kind == "extension_requested":
            fact["extension_requests"] += 1
        elif kind == "extension_decided" and p.get("approved"):
            fact["extension_approvals"].append({"at": at, "new_deadline": p.get("new_deadline")})
            if p.get("new_deadline"):
                timeline.append((at, "extend", p["new_deadline"]))
        elif kind == "case_parked":
            fact["parks"].append({"at": at, "what": "park"})
            timeline.append((at, "park", None))
        elif kind == "case_unparked":
            fact["parks"].append({"at": at, "what": "unpark"})
            timeline.append((at, "unpark", p["new_deadline"]))
        elif kind == "case_feedback_given":
            fact["feedbacks"].append({"at": at, "unit_id": p["unit_id"], "after_photo": p["after_photo"],
                                      "verify_due_at": p.get("verify_due_at")})
            fact["after_photo"] = p["after_photo"]
        elif kind == "case_verified":
            fact["verifications"].append({"at": at, "inspector_id": p["inspector_id"],
                                          "passed": p["passed"], "due_at": p.get("due_at"),
                                          "unit_id": p["unit_id"]})
        elif kind == "case_rework_ordered":
            fact["reworks"].append({"at": at, "unit_id": p["unit_id"], "reason": p.get("reason", "")})
        elif kind == "case_closed":
            fact["closes"].append({"at": at, "unit_id": p["unit_id"], "on_time": p["on_time"],
                                   "extended": bool(p.get("extended")), "parked": bool(p.get("parked")),
                                   "deadline": p.get("deadline"), "handled_at": p.get("handled_at"),
                                   "original_deadline": p.get("original_deadline")})
        elif kind == "case_reopened":
            fact["reopens"].append(at)
        elif kind == "satisfaction_recorded":
            fact["callback"] = {"at": at, "responded": p["responded"], "resolved": p["resolved"],
                                "satisfied": p["satisfied"], "unit_id": p.get("unit_id")}
        elif kind == "case_supervised":
            fact["supervisions"].append({"at": at, "unit_id": p["unit_id"]})
        elif kind == "joint_operation_opened":
            fact["joint_operations"] += 1
        elif kind in checks.EVENTS:                      # 核实 and 不立案 (checks.py)
            checks.fold(fact, kind, p, at)

    if fact["dispatches"]:
        last = max(fact["dispatches"], key=lambda d: (d["sequence"], _utc(d["at"])))
        fact["unit"], fact["deadline"] = last["unit_id"], last["deadline"]
    else:
        fact["unit"] = fact["owner_unit"]
    effective, parked_now = None, False
    for _, what, value in sorted(timeline, key=lambda item: _utc(item[0])):
        if what == "park":
            parked_now = True
        else:
            effective, parked_now = value, False
    if fact["closes"]:
        last_close = fact["closes"][-1]
        fact["first_closed_at"] = fact["closes"][0]["at"]
        if not any(_utc(at) > _utc(last_close["at"]) for at in fact["reopens"]):
            fact["closed_at"] = last_close["at"]
            fact["unit"] = last_close["unit_id"]
            parked_now = False
    fact["parked_now"] = parked_now
    fact["effective_deadline"] = None if parked_now else effective
    ends = [moment for moment in (fact["deadline"], fact["first_closed_at"]) if moment is not None]
    fact["due_at"] = min(ends, key=_utc) if ends else None
    return fact


def fold_report(report_id: str, entries: list[dict], locate=None) -> dict:
    fact = {"kind": "report", "report_id": report_id, "received_at": None, "channel": None,
            "inspector_id": None, "inspector_name": None, "grid_code": None, "street_id": None,
            "outcome": "pending",
            "case_id": None, "reason": None, "decided_at": None}
    outcomes = set()
    location = None
    for entry in entries:
        kind, p = entry["type"], entry["payload"]
        if kind == "report_received" and fact["received_at"] is None:
            fact.update({"received_at": p["received_at"], "channel": p.get("channel"),
                         "inspector_id": p.get("inspector_id"), "inspector_name": p.get("inspector_name")})
            location = p.get("location")
        elif kind == "report_rejected":
            outcomes.add("rejected")
            fact["reason"] = p.get("reason")
            fact["inspector_id"] = fact["inspector_id"] or p.get("inspector_id")
            fact["channel"] = fact["channel"] or p.get("channel")
        elif kind == "case_registered":
            outcomes.add("registered")
            fact.update({"case_id": p["case_id"], "grid_code": p.get("grid_code"),
                         "street_id": p.get("street_id")})
            fact["inspector_id"] = fact["inspector_id"] or p.get("inspector_id")
            fact["channel"] = fact["channel"] or p.get("channel")
        elif kind == "report_linked_as_duplicate":
            outcomes.add("duplicate")
            fact["case_id"] = fact["case_id"] or p["case_id"]
        elif kind == "case_reopened":
            outcomes.add("reopened")
            fact["case_id"] = fact["case_id"] or p["case_id"]
    for outcome in ("registered", "duplicate", "reopened", "rejected"):
        if outcome in outcomes:
            fact["outcome"] = outcome
            break
    # 核实: the first decision on the report (立案, 不立案 or 合并), for the centre's 按期核实率
    decisions = [_utc(event_time(e)) for e in entries
                 if e["type"] in ("case_registered", "report_rejected", "report_linked_as_duplicate")]
    fact["decided_at"] = min(decisions) if decisions else None
    if fact["grid_code"] is None and location and locate is not None:
        found = locate(location["lon"], location["lat"])
        if found:
            fact["grid_code"], fact["street_id"] = found["grid_code"], found["street_id"]
    return fact


def fold_request(operation_id: str, department: str, entries: list[dict]) -> dict:
    fact = {"kind": "request", "operation_id": operation_id, "department": department,
            "case_id": None, "sent_at": None, "ack_deadline": None, "checkin_deadline": None,
            "replies": {}}
    for entry in entries:
        kind, p = entry["type"], entry["payload"]
        if kind == "department_request_sent" and fact["sent_at"] is None:
            fact.update({"sent_at": p["sent_at"], "checkin_deadline": p.get("checkin_deadline"),
                         "ack_deadline": p.get("ack_deadline"),
                         "case_id": p.get("case_id") or entry.get("correlation_id")})
        elif kind == "department_replied":
            status = p["status"]
            if status not in fact["replies"]:          # the first reply of each status counts
                fact["replies"][status] = {"at": p["replied_at"], "on_time": p.get("on_time"),
                                           "kind": p.get("kind")}
    return fact


def fold_review(review_id: str, entries: list[dict]) -> dict:
    """社区评议: one representative's score for one unit and month, filed at the month's start."""
    fact = {"kind": "review", "review_id": review_id, "unit_id": None, "score": None,
            "period": None, "period_start": None, "community_code": None, "submitted_at": None}
    for entry in entries:
        if entry["type"] == "community_review_submitted" and fact["score"] is None:
            p = entry["payload"]
            fact.update({"unit_id": p["unit_id"], "score": p["score"], "period": p["period"],
                         "period_start": p["period_start"], "community_code": p["community_code"],
                         "submitted_at": p["submitted_at"]})
    return fact
