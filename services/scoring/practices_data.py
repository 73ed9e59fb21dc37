"""What the practices' indicators read from scoring's event log (the I/O half of
services/scoring/practices.py): the period's closures with their classes, and the enforcement
decisions of the period and of the closed cases."""
from __future__ import annotations


def events_721(db, period, events: str = "events") -> dict:
    start, end = period.start, period.end
    log = db[events]
    closures = [dict(e["payload"], case_id=e["payload"].get("case_id"))
                for e in log.find({"type": "case_closed", "at": {"$gte": start, "$lt": end}}).sort("at", 1)]
    case_ids = sorted({c["case_id"] for c in closures if c.get("case_id")})
    classes = {e["payload"]["case_id"]: e["payload"].get("class_code")
               for e in log.find({"type": "case_registered", "payload.case_id": {"$in": case_ids}})}
    decisions = {}
    for entry in log.find({"type": "enforcement_decided", "payload.case_id": {"$in": case_ids}}):
        decisions[entry["_id"]] = dict(entry["payload"], in_period=False)
    for entry in log.find({"type": "enforcement_decided", "at": {"$gte": start, "$lt": end}}):
        decisions[entry["_id"]] = dict(entry["payload"], in_period=True)
    return {"closures": closures, "classes": classes, "decisions": list(decisions.values())}
