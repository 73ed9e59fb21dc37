"""dispatch service: thin nameko entrypoints over services.dispatch.rules."""
from __future__ import annotations

from nameko.rpc import rpc

from shared import storage
from shared.health import Heartbeat
from shared.messaging import outbox
from shared.messaging.consumer import consume_reliably
from shared.messaging.relay import OutboxRelay
from shared.refdata import load_district

from . import rules




class DispatchService:
    name = "dispatch"

    db = storage.MongoDatabase()
    relay = OutboxRelay("cases")
    heartbeat = Heartbeat()

    @consume_reliably("dispatch.case-registered")
    def on_case_registered(self, event: dict):
        case = event["payload"]
        if self.db.cases.find_one({"_id": case["case_id"]}, {"_id": 1}):
            return                                      # duplicate delivery: already dispatched
        district = load_district()
        now = storage.now_utc()
        plan = rules.plan_dispatch(case, district, now)
        unit = district.units.get(plan["unit_id"], {"name": plan["unit_id"]})
        local_deadline = district.calendar.to_local(plan["deadline"])
        text = rules.notification_text(case, plan, unit["name"], local_deadline)
        case_id = case["case_id"]
        events = [
            outbox.event("case_dispatched", {"case_id": case_id, "unit_id": plan["unit_id"],
                                       "case_kind": plan["case_kind"], "dispatched_at": now,
                                       "deadline": plan["deadline"]}, case_id, f"{case_id}.dispatched.1"),
            outbox.event("owner_notified", {"case_id": case_id, "unit_id": plan["unit_id"],
                                      "channel": "sms-outbox", "message": text, "notified_at": now},
                   case_id, f"{case_id}.notified.1"),
        ]
        storage.create(self.db.cases, {
            "_id": case_id, "state": "dispatched", "case": case, "unit_id": plan["unit_id"],
            "case_kind": plan["case_kind"], "time_limit": plan["time_limit"],
            "dispatched_at": now, "deadline": plan["deadline"],
            "notifications": [{"unit_id": plan["unit_id"], "message": text, "at": now}],
        }, events, applied=event["event_id"])

    @rpc
    def get_case(self, case_id: str):
        return storage.public(self.db.cases.find_one({"_id": case_id}))
