"""intake service: thin nameko entrypoints over services.intake.rules."""
from __future__ import annotations

from marshmallow import ValidationError
from nameko.rpc import rpc

from shared import storage
from shared.contracts.base import utcnow
from shared.contracts.events import new_id
from shared.health import Heartbeat
from shared.messaging import outbox
from shared.messaging.consumer import consume_reliably
from shared.messaging.relay import OutboxRelay
from shared.refdata import load_district

from . import rules
from .schemas import ReportSchema, load_inbound_report




class IntakeService:
    name = "intake"

    db = storage.MongoDatabase()
    relay = OutboxRelay("reports")
    heartbeat = Heartbeat()

    @rpc
    def submit_report(self, data: dict) -> dict:
        """Validate and file one report; returns {report_id, status, case_id?, reason?}."""
        try:
            report = ReportSchema().load(data)
        except ValidationError as exc:
            return {"status": "invalid", "errors": exc.messages}
        return self._file(report)

    @consume_reliably("intake.inbound-reports", loader=load_inbound_report)
    def on_inbound_report(self, report: dict):
        self._file(report)

    @rpc
    def get_report(self, report_id: str):
        return storage.public(self.db.reports.find_one({"_id": report_id}))

    @rpc
    def get_case(self, case_id: str):
        return storage.public(self.db.reports.find_one({"case_id": case_id}))

    def _file(self, report: dict) -> dict:
        received_at = utcnow()
        report_id = rules.report_id_for(report, new_id("rpt"))
        existing = self.db.reports.find_one({"_id": report_id})
        if existing is not None:                       # the channel re-sent it
            return self._answer(existing)
        decision = rules.assess(report, load_district())
        correlation = report_id
        events = [outbox.event("report_received", {
            "report_id": report_id, "channel": report["channel"],
            "class_code": report["class_code"], "location": report["location"],
            "description": report.get("description", ""), "received_at": received_at,
        }, correlation, f"{report_id}.received")]
        doc = {"_id": report_id, "report": report, "received_at": received_at}
        if decision["accepted"]:
            case = decision["case"]
            case_id = rules.case_id_for(report_id, received_at)
            doc.update(status="registered", case_id=case_id, case=case)
            events.append(outbox.event("case_registered", {
                **case, "case_id": case_id, "report_id": report_id,
                "channel": report["channel"], "registered_at": received_at,
            }, case_id, f"{report_id}.registered"))
        else:
            doc.update(status="rejected", reason=decision["reason"])
            events.append(outbox.event("report_rejected", {
                "report_id": report_id, "channel": report["channel"], "reason": decision["reason"],
            }, correlation, f"{report_id}.rejected"))
        if not storage.create(self.db.reports, doc, events):
            doc = self.db.reports.find_one({"_id": report_id})
        return self._answer(doc)

    @staticmethod
    def _answer(doc: dict) -> dict:
        answer = {"report_id": doc["_id"], "status": doc["status"]}
        if doc["status"] == "registered":
            answer.update(case_id=doc["case_id"], owner_unit=doc["case"]["owner_unit"],
                          grid_code=doc["case"]["grid_code"])
        else:
            answer["reason"] = doc.get("reason")
        return answer
