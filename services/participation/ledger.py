"""The citizens' point ledger (积分), on the store: one aggregate per citizen with an
append-only ``entries`` list (only ever $push-ed), its balance, and its outbox.

Every change is a read followed by an update guarded by the aggregate's ``_version``
(shared.storage.update): two redemptions that read the same balance cannot both be saved, the
loser reads again and is refused when the balance no longer covers it. So the balance never
goes below zero, whatever the concurrency, on MongoDB and on the embedded store alike."""
from __future__ import annotations

import random
import time

from shared import storage
from shared.messaging import outbox

from . import rules

ATTEMPTS = 200


def _retry(change):
    for attempt in range(ATTEMPTS):
        try:
            return change()
        except storage.Conflict:
            if attempt == ATTEMPTS - 1:
                raise
            time.sleep(random.uniform(0, 0.005 * min(attempt + 1, 10)))   # green under eventlet


def _ensure(collection, citizen: str, now):
    if collection.find_one({"_id": citizen}, {"_id": 1}) is None:
        storage.create(collection, {"_id": citizen, "balance": 0, "earned": 0, "redeemed": 0,
                                    "entries": [], "created_at": now})


def earn(collection, citizen: str, points: int, case: dict, now) -> dict | None:
    """Credit a valid case once (the entry id is the case's: a redelivery credits nothing, however
    late: the whole ledger is checked, not only the remembered message ids). Credits are keyed by
    case and add up, so any order or duplication of the events gives the in-order ledger."""
    entry_id = f"E-{case['case_id']}"
    _ensure(collection, citizen, now)

    def change():
        doc = collection.find_one({"_id": citizen})
        if storage.already_applied(doc, entry_id) or any(e["entry_id"] == entry_id for e in doc["entries"]):
            return None
        balance = doc["balance"] + points
        entry = {"entry_id": entry_id, "kind": "earn", "points": points, "balance": balance, "at": now,
                 "case_id": case["case_id"], "report_id": case["report_id"],
                 "class_code": case.get("class_code"), "note": f"上报问题立案（案件 {case['case_id']}）"}
        event = outbox.event("points_earned", {
            "entry_id": entry_id, "citizen_id": citizen, "points": points, "balance": balance,
            "case_id": case["case_id"], "report_id": case["report_id"],
            "class_code": case.get("class_code"), "at": now}, case["case_id"], f"{entry_id}.earned")
        storage.update(collection, citizen, doc["_version"], push={"entries": [entry]},
                       inc={"balance": points, "earned": points}, events=[event], applied=entry_id)
        return entry
    return _retry(change)


def redeem(collection, citizen: str, item: dict, quantity: int, request_id: str, now) -> dict:
    """Debit ``item.points × quantity`` if the balance covers it. Returns
    {status: redeemed | insufficient | not_found | already, entry?, balance}."""
    entry_id = f"R-{request_id}"
    cost = item["points"] * quantity

    def change():
        doc = collection.find_one({"_id": citizen})
        if doc is None:
            return {"status": "insufficient", "balance": 0,
                    "reason": rules.redemption_problem(0, cost)}
        done = next((e for e in doc["entries"] if e["entry_id"] == entry_id), None)
        if done is not None:
            return {"status": "already", "entry": done, "balance": doc["balance"]}
        problem = rules.redemption_problem(doc["balance"], cost)
        if problem:
            return {"status": "insufficient", "balance": doc["balance"], "reason": problem}
        balance = doc["balance"] - cost
        entry = {"entry_id": entry_id, "kind": "redeem", "points": -cost, "balance": balance, "at": now,
                 "item_code": item["code"], "item_name": item["name"], "quantity": quantity,
                 "note": f"兑换 {item['name']} × {quantity}"}
        event = outbox.event("points_redeemed", {
            "entry_id": entry_id, "citizen_id": citizen, "points": cost, "balance": balance,
            "item_code": item["code"], "quantity": quantity, "at": now}, entry_id, f"{entry_id}.redeemed")
        storage.update(collection, citizen, doc["_version"], push={"entries": [entry]},
                       inc={"balance": -cost, "redeemed": cost}, events=[event], applied=entry_id)
        return {"status": "redeemed", "entry": entry, "balance": balance}
    return _retry(change)
